//! The worker loop: take a job, keep the claim alive, transcode, publish, report, acknowledge.
//!
//! ```text
//! XAUTOCLAIM / XREADGROUP ─ XPENDING (attempt) ─┬─ > max-attempts ─ dead letter + failed + XACK
//!                                               └─ started ─ download ─ ffmpeg ─ upload ─┐
//!            heartbeat (XCLAIM JUSTID) every `heartbeat` while it runs ──────────────────┤
//!                               permanent error ─ failed + XACK ◄──────────────────────────┤
//!                               transient error ─ recorded, left pending (reclaimed later) ┤
//!                                                                   ready + XACK ◄─────────┘
//! ```
//!
//! Shutdown: no new job is taken; a job still downloading or transcoding is abandoned (FFmpeg
//! killed, not acknowledged) and another worker reclaims it after `reclaim-idle`; a job already
//! uploading is finished, since that is short and its output complete.

use std::{sync::Arc, time::Instant};

use aws_sdk_s3::Client;
use streamgate_config::{
    TranscoderConfig,
    contract::{Event, Job, is_valid_content_id},
};
use tokio::sync::watch;
use tracing::Instrument;

use crate::{Error, Package, metrics::Metrics, package, queue::Delivery, queue::Queue, storage};

/// Longest failure message put in a `failed` event.
const MAX_REASON: usize = 2000;
/// Minimum interval between progress events.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Everything a job needs.
#[derive(Clone)]
pub(crate) struct Worker {
    pub(crate) cfg: Arc<TranscoderConfig>,
    pub(crate) queue: Queue,
    pub(crate) s3: Client,
    pub(crate) metrics: Arc<Metrics>,
    /// `[encryption]`'s key-encryption keys, for jobs that ask for encryption.
    pub(crate) wrapper: Option<Arc<streamgate_auth::KeyWrapper>>,
}

impl Worker {
    /// Takes and runs jobs until `shutdown` turns true. Redis errors are retried with
    /// exponential backoff (100 ms to 30 s, with jitter); nothing here panics or returns early.
    pub(crate) async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = std::time::Duration::from_millis(100);
        let mut group_ready = false;
        while !*shutdown.borrow() {
            let step = async {
                if !group_ready {
                    self.queue.ensure_group().await?;
                    tracing::info!(consumer = self.queue.consumer(), "consumer group ready");
                }
                // Not raced against shutdown: a cancelled XREADGROUP could still deliver.
                self.queue.next().await
            };
            match step.await {
                Ok(next) => {
                    group_ready = true;
                    backoff = std::time::Duration::from_millis(100);
                    if let Some(d) = next {
                        let span = tracing::info_span!("job", entry = %d.id);
                        self.handle(d, shutdown.clone()).instrument(span).await;
                    }
                }
                Err(e) => {
                    group_ready = false;
                    let wait = backoff.mul_f64(rand::random_range(0.5..1.0));
                    tracing::warn!(error = %e, retry_in = ?wait, "queue unavailable");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(30));
                }
            }
        }
        tracing::info!("worker stopped taking jobs");
    }

    /// Handles one delivery to its end (acked) or leaves it pending on a transient error.
    async fn handle(&self, d: Delivery, shutdown: watch::Receiver<bool>) {
        if d.reclaimed {
            self.metrics.reclaimed.inc();
        }
        let job = match d.data.as_deref().map(serde_json::from_str::<Job>) {
            Some(Ok(job)) if is_valid_content_id(&job.content_id) && !job.source_key.is_empty() => {
                job
            }
            other => return self.malformed(&d, other.and_then(Result::err)).await,
        };
        let attempt = match self.queue.deliveries(&d.id).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read delivery count; job left pending");
                return;
            }
        };
        let span = tracing::info_span!("attempt", content_id = %job.content_id, attempt);
        self.attempt(&d, &job, attempt, shutdown)
            .instrument(span)
            .await;
    }

    async fn attempt(
        &self,
        d: &Delivery,
        job: &Job,
        attempt: u32,
        shutdown: watch::Receiver<bool>,
    ) {
        let max = self.cfg.worker.max_attempts;
        if attempt > max {
            let last = self.queue.last_error(&d.id).await.ok().flatten();
            let reason = format!(
                "gave up after {max} attempts: {}",
                last.as_deref().unwrap_or("worker lost (no error recorded)")
            );
            let event = failed(&job.content_id, &reason);
            match self.queue.dead_letter(d, &reason, Some(&event)).await {
                Ok(()) => tracing::warn!(%reason, "job dead-lettered"),
                Err(e) => tracing::warn!(error = %e, "cannot dead-letter job; left pending"),
            }
            self.metrics.failed("dead_letter");
            return;
        }
        self.metrics.jobs_started.inc();
        let started = Event::Started {
            content_id: job.content_id.clone(),
            worker: self.queue.consumer().to_owned(),
            attempt,
        };
        if let Err(e) = self.queue.emit(&started).await {
            tracing::warn!(error = %e, "cannot emit started event");
        }
        tracing::info!(reclaimed = d.reclaimed, "job started");
        let t0 = Instant::now();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let (progress_tx, progress_rx) = watch::channel(None::<f32>);
        let guard = tokio::spawn(self.clone().guard(d.id.clone(), shutdown, cancel_tx));
        let reporter = tokio::spawn(self.clone().report(job.content_id.clone(), progress_rx));
        let result = self.execute(job, &progress_tx, cancel_rx).await;
        guard.abort();
        reporter.abort();
        self.conclude(d, job, result).await;
        self.metrics.job_seconds.observe(t0.elapsed().as_secs_f64());
    }

    /// Download, transcode, publish. The scratch directory is removed on every path (drop).
    async fn execute(
        &self,
        job: &Job,
        progress: &watch::Sender<Option<f32>>,
        cancel: watch::Receiver<bool>,
    ) -> Result<(Package, u64), Error> {
        // The content id in the scratch dir's name lets operators tell jobs apart.
        let prefix = if streamgate_config::contract::is_valid_content_id(&job.content_id) {
            format!("sg-job-{}-", job.content_id)
        } else {
            "sg-job-".to_owned()
        };
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix);
        let work = if self.cfg.worker.work_dir.is_empty() {
            b.tempdir()
        } else {
            b.tempdir_in(&self.cfg.worker.work_dir)
        }
        .map_err(Error::io(
            "creating scratch dir in",
            &self.cfg.worker.work_dir,
        ))?;
        let source = work.path().join("source");
        let bucket = &self.cfg.s3.bucket;
        let mut stop = cancel.clone();
        let downloading = Instant::now();
        let bytes = tokio::select! {
            r = storage::download(&self.s3, bucket, &job.source_key, &source) => r?,
            true = async { stop.wait_for(|c| *c).await.is_ok() } => return Err(Error::Shutdown),
        };
        self.phase("download", downloading);
        tracing::info!(bytes, "source downloaded");
        let t0 = Instant::now();
        let report = |p: f32| {
            progress.send_replace(Some(p));
        };
        let key = match job.encryption {
            Some(e) if e.is_encrypted() => {
                let wrapper = self.wrapper.as_deref().ok_or_else(|| {
                    Error::Encryption(
                        "this content asks for encryption and the transcoder has no \
                         [encryption] keys"
                            .into(),
                    )
                })?;
                Some(storage::content_key(&self.s3, bucket, &job.content_id, wrapper).await?)
            }
            _ => None,
        };
        let pkg = package::transcode_with(
            &self.cfg.ffmpeg,
            &self.cfg.ladder,
            &source,
            work.path(),
            &report,
            cancel,
            key.as_ref().map(|key| package::Encrypt {
                content_id: &job.content_id,
                key,
            }),
        )
        .await;
        self.metrics
            .ffmpeg_seconds
            .observe(t0.elapsed().as_secs_f64());
        let pkg = pkg?;
        for (phase, seconds) in pkg.phases.named() {
            self.metrics
                .phase_seconds
                .with_label_values(&[phase])
                .observe(seconds);
        }
        let uploading = Instant::now();
        let uploaded = storage::publish(&self.s3, bucket, &job.content_id, &pkg.dir).await?;
        self.phase("upload", uploading);
        self.metrics.bytes_uploaded.inc_by(uploaded);
        Ok((pkg, uploaded))
    }

    async fn conclude(&self, d: &Delivery, job: &Job, result: Result<(Package, u64), Error>) {
        match result {
            Ok((pkg, uploaded)) => {
                let event = Event::Ready {
                    content_id: job.content_id.clone(),
                    renditions: pkg.renditions,
                    duration_s: pkg.duration_s,
                    has_audio: pkg.has_audio,
                    artwork: pkg.artwork,
                    audio: pkg.audio,
                };
                match self.queue.finish(&d.id, &event).await {
                    Ok(()) => {
                        self.metrics.jobs_succeeded.inc();
                        tracing::info!(uploaded, duration_s = pkg.duration_s, "job ready");
                    }
                    Err(e) => {
                        // The package is complete; a retry republishes it identically.
                        self.metrics.failed("transient");
                        tracing::warn!(error = %e, "cannot report ready; job left pending");
                    }
                }
            }
            Err(e) if e.is_permanent() => {
                self.metrics.failed("permanent");
                let reason = truncate(&e.to_string());
                tracing::info!(%reason, "job failed");
                if let Err(e) = self
                    .queue
                    .finish(&d.id, &failed(&job.content_id, &reason))
                    .await
                {
                    tracing::warn!(error = %e, "cannot report failure; job left pending");
                }
            }
            Err(e) => {
                self.metrics.failed("transient");
                tracing::warn!(error = %e, "attempt failed; job left pending for retry");
                if !matches!(e, Error::Shutdown) {
                    let _ = self
                        .queue
                        .record_error(&d.id, &truncate(&e.to_string()))
                        .await;
                }
            }
        }
    }

    /// Keeps the claim alive every `heartbeat`; cancels the job on shutdown or when another
    /// worker has taken the entry over (so that two workers never publish at once for long).
    async fn guard(
        self,
        id: String,
        mut shutdown: watch::Receiver<bool>,
        cancel: watch::Sender<bool>,
    ) {
        let mut tick = tokio::time::interval(self.cfg.worker.heartbeat);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => match self.queue.heartbeat(&id).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("job claimed by another worker; abandoning it");
                        let _ = cancel.send(true);
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                },
                stopping = async { shutdown.wait_for(|s| *s).await.is_ok() } => {
                    if stopping {
                        tracing::info!("shutting down; abandoning job unless it is uploading");
                        let _ = cancel.send(true);
                    }
                    return;
                }
            }
        }
    }

    /// Emits progress events at most every [`PROGRESS_EVERY`], when the value has changed.
    /// Records the wall time of a job step since `started`.
    fn phase(&self, phase: &str, started: Instant) {
        self.metrics
            .phase_seconds
            .with_label_values(&[phase])
            .observe(started.elapsed().as_secs_f64());
    }

    async fn report(self, content_id: String, mut rx: watch::Receiver<Option<f32>>) {
        let mut last = None;
        loop {
            tokio::time::sleep(PROGRESS_EVERY).await;
            let now = *rx.borrow_and_update();
            if let Some(percent) = now.filter(|_| now != last) {
                let percent = (percent * 10.0).round() / 10.0;
                let event = Event::Progress {
                    content_id: content_id.clone(),
                    percent: percent.min(99.0),
                };
                if let Err(e) = self.queue.emit(&event).await {
                    tracing::debug!(error = %e, "cannot emit progress");
                }
                last = now;
            }
        }
    }

    /// A delivery that is not a valid job: dead-lettered at once; reported as failed when its
    /// content id can still be read.
    async fn malformed(&self, d: &Delivery, err: Option<serde_json::Error>) {
        let reason = match err {
            Some(e) => format!("malformed job: {e}"),
            None => "malformed job: missing data field, bad content id or empty source key".into(),
        };
        let content_id = d
            .data
            .as_deref()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .and_then(|v| v.get("content_id")?.as_str().map(str::to_owned))
            .filter(|id| is_valid_content_id(id));
        let event = content_id.map(|id| failed(&id, &reason));
        tracing::warn!(%reason, "dead-lettering malformed job");
        if let Err(e) = self.queue.dead_letter(d, &reason, event.as_ref()).await {
            tracing::warn!(error = %e, "cannot dead-letter malformed job; left pending");
        }
        self.metrics.failed("dead_letter");
    }
}

fn failed(content_id: &str, reason: &str) -> Event {
    Event::Failed {
        content_id: content_id.to_owned(),
        error: reason.to_owned(),
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_REASON {
        return s.to_owned();
    }
    let mut end = MAX_REASON;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(MAX_REASON);
        let t = truncate(&long);
        assert!(t.len() <= MAX_REASON + "…".len());
        assert!(t.ends_with('…'));
    }
}
