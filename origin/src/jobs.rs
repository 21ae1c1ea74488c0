//! Hand-off to the transcoders and back: finalizing a stored upload (probe, then a job on
//! `sg:jobs`), and consuming `sg:events` to keep the catalog current. Origin is the single
//! writer of the catalog, so transcoders only ever report.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use redis::{
    AsyncCommands, RedisResult,
    aio::ConnectionManager,
    streams::{
        StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply,
    },
};
use streamgate_config::contract::{
    EVENTS_GROUP, EVENTS_STREAM, Event, JOBS_STREAM, Job, STREAM_FIELD, layout,
};
use tokio::sync::watch;

use serde_json::json;

use crate::{
    AppError, AppState,
    catalog::{ContentRecord, Status},
    error::AppResult,
    metrics::METRICS,
    now_ms,
    probe::{self, Probe},
    uploads::UploadState,
    webhooks,
};

/// Probes a stored upload and either queues a transcode job or fails the content.
///
/// Idempotent: a client that retries the last PATCH after a transient failure (ffprobe could
/// not reach S3, Redis down) runs it again.
pub(crate) async fn finalize(app: &AppState, up: &mut UploadState) -> AppResult<()> {
    // Every byte is stored (a retried finalize emits the same message: its cause is the upload).
    webhooks::emit(
        app,
        &up.owner,
        "upload.completed",
        &up.id,
        json!({ "content_id": up.content_id, "upload_id": up.id, "bytes": up.offset() }),
    )
    .await;
    let source_key = layout::source_key(&up.content_id);
    let presign = PresigningConfig::expires_in(probe::PRESIGN_TTL)
        .map_err(|e| AppError::Internal(format!("presign config: {e}")))?;
    let url = app
        .s3
        .get_object()
        .bucket(&app.cfg.s3.bucket)
        .key(&source_key)
        .presigned(presign)
        .await
        .map_err(AppError::storage)?;
    let outcome = probe::probe(&app.cfg.probe, url.uri())
        .await
        .map_err(AppError::Storage)?;
    match outcome {
        Probe::Rejected(reason) => {
            METRICS.probe_rejections.inc();
            tracing::info!(content_id = %up.content_id, %reason, "upload rejected by probe");
            app.catalog
                .update(&up.content_id, |r| {
                    r.status = Status::Failed;
                    r.error = Some(reason.clone());
                    Ok(true)
                })
                .await?;
            webhooks::emit(
                app,
                &up.owner,
                "content.failed",
                &up.id,
                json!({ "content_id": up.content_id, "status": "failed", "error": reason }),
            )
            .await;
        }
        Probe::Media {
            video,
            duration_s,
            has_audio,
        } => {
            tracing::info!(content_id = %up.content_id, ?video, ?duration_s, has_audio, "upload probed");
            // Catalog first, then the job: a fast transcoder's `ready` must land after this.
            let rec = app
                .catalog
                .update(&up.content_id, |r| {
                    r.status = Status::Processing;
                    r.progress = 0.0;
                    r.error = None;
                    Ok(true)
                })
                .await?;
            let job = Job {
                content_id: up.content_id.clone(),
                source_key,
                enqueued_at_ms: now_ms(),
                encryption: Some(rec.encryption),
            };
            enqueue(&app.redis, &job).await?;
        }
    }
    app.uploads.mark_finalized(up).await
}

async fn enqueue(redis: &ConnectionManager, job: &Job) -> AppResult<()> {
    let json = serde_json::to_string(job)
        .map_err(|e| AppError::Internal(format!("serialize job: {e}")))?;
    let mut con = redis.clone();
    let id: String = con.xadd(JOBS_STREAM, "*", &[(STREAM_FIELD, json)]).await?;
    METRICS.jobs_enqueued.inc();
    tracing::info!(content_id = %job.content_id, stream_id = %id, "job enqueued");
    Ok(())
}

/// Applies one event to its catalog record; returns whether anything changed.
fn apply(rec: &mut crate::catalog::ContentRecord, ev: &Event) -> bool {
    match ev {
        Event::Started { .. } => {
            if matches!(rec.status, Status::Processing | Status::Uploading) {
                rec.status = Status::Processing;
                rec.progress = 0.0;
                return true;
            }
            false
        }
        Event::Progress { percent, .. } => {
            if rec.status == Status::Processing {
                rec.progress = percent.clamp(0.0, 100.0);
                return true;
            }
            false
        }
        Event::Ready {
            renditions,
            duration_s,
            has_audio,
            artwork,
            audio,
            ..
        } => {
            rec.status = Status::Ready;
            rec.audio = audio.clone();
            rec.progress = 100.0;
            rec.renditions = renditions.clone();
            rec.duration_s = Some(*duration_s);
            rec.has_audio = Some(*has_audio);
            rec.artwork = artwork.clone();
            rec.poster = artwork.as_ref().and_then(|a| a.poster.clone());
            rec.storyboard = artwork.as_ref().map(|a| a.storyboard.clone());
            rec.error = None;
            true
        }
        Event::Failed { error, .. } => {
            if rec.status == Status::Ready {
                return false; // a stale attempt's failure must not hide a finished package
            }
            rec.status = Status::Failed;
            rec.error = Some(error.clone());
            true
        }
    }
}

/// Consumes `sg:events` in group `origin` until `shutdown` flips, updating the catalog.
/// Entries left pending by a dead origin are claimed after a minute.
pub(crate) async fn consume_events(
    app: AppState,
    redis: ConnectionManager,
    shutdown: watch::Receiver<bool>,
) {
    let consumer = format!("origin-{}", std::process::id());
    consume_until("events consumer", shutdown, || {
        let (app, mut con, consumer) = (app.clone(), redis.clone(), consumer.clone());
        async move { consume_once(&app, &mut con, &consumer).await }
    })
    .await;
}

/// Runs `step` (one read of a consumer group, handled) again and again until `shutdown` flips,
/// backing off from 200 ms to 5 s while it fails; `what` names the loop in logs. Shared by the
/// events consumer and webhook fan-out.
pub(crate) async fn consume_until<F, Fut, E>(
    what: &str,
    mut shutdown: watch::Receiver<bool>,
    mut step: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut backoff = Duration::from_millis(200);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let result = tokio::select! {
            r = step() => r,
            _ = shutdown.changed() => return,
        };
        match result {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(e) => {
                tracing::warn!(cause = %e, "{what}: retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The next entries of `stream` for `consumer` of `group` (created, from the start, if
/// missing): entries another consumer left pending for `claim_idle_ms` first, else new ones
/// (blocking up to 5 s). Shared by the events consumer and webhook fan-out.
pub(crate) async fn read_group(
    con: &mut ConnectionManager,
    stream: &str,
    group: &str,
    consumer: &str,
    claim_idle_ms: u64,
) -> RedisResult<Vec<StreamId>> {
    let created: RedisResult<()> = con.xgroup_create_mkstream(stream, group, "0").await;
    if let Err(e) = created
        && e.code() != Some("BUSYGROUP")
    {
        return Err(e);
    }
    let claimed: StreamAutoClaimReply = con
        .xautoclaim_options(
            stream,
            group,
            consumer,
            claim_idle_ms,
            "0-0",
            StreamAutoClaimOptions::default().count(16),
        )
        .await?;
    if !claimed.claimed.is_empty() {
        return Ok(claimed.claimed);
    }
    let opts = StreamReadOptions::default()
        .group(group, consumer)
        .count(32)
        .block(5_000);
    let reply: Option<StreamReadReply> = con.xread_options(&[stream], &[">"], &opts).await?;
    Ok(reply
        .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
        .unwrap_or_default())
}

async fn consume_once(
    app: &AppState,
    con: &mut ConnectionManager,
    consumer: &str,
) -> RedisResult<()> {
    let entries = read_group(con, EVENTS_STREAM, EVENTS_GROUP, consumer, 60_000).await?;
    for entry in entries {
        handle_entry(app, &entry).await;
        let _: i64 = con.xack(EVENTS_STREAM, EVENTS_GROUP, &[&entry.id]).await?;
    }
    Ok(())
}

async fn handle_entry(app: &AppState, entry: &StreamId) {
    let Some(raw) = entry.get::<String>(STREAM_FIELD) else {
        tracing::warn!(stream_id = %entry.id, "event without a data field; dropped");
        return;
    };
    let ev: Event = match serde_json::from_str(&raw) {
        Ok(ev) => ev,
        Err(e) => {
            tracing::warn!(stream_id = %entry.id, cause = %e, "malformed event; dropped");
            return;
        }
    };
    let kind = match &ev {
        Event::Started { .. } => "started",
        Event::Progress { .. } => "progress",
        Event::Ready { .. } => "ready",
        Event::Failed { .. } => "failed",
    };
    let id = ev.content_id().to_owned();
    // Retry storage errors a few times; an event is never dropped for a passing S3 fault.
    for attempt in 0..5u32 {
        let mut changed = false;
        // A package that became ready gets the caption tracks stored meanwhile.
        let ready = matches!(ev, Event::Ready { .. });
        let updated = app
            .catalog
            .update_and(
                &id,
                |rec| {
                    changed = apply(rec, &ev);
                    Ok(changed)
                },
                |rec| async move {
                    if ready && !rec.captions.is_empty() {
                        crate::captions::republish_if_ready(app, &rec).await?;
                    }
                    Ok(())
                },
            )
            .await;
        match updated {
            Ok(rec) => {
                if changed {
                    notify(app, &rec, &ev, &entry.id.to_string()).await;
                }
                METRICS.events.with_label_values(&[kind]).inc();
                if !matches!(ev, Event::Progress { .. }) {
                    tracing::info!(content_id = %id, kind, "catalog updated");
                }
                return;
            }
            Err(AppError::NotFound(_)) => {
                forget_deleted(app, &id, &ev).await;
                return;
            }
            Err(e) => {
                tracing::warn!(content_id = %id, attempt, cause = %e, "catalog update failed");
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
        }
    }
}

/// Tells the owner's webhooks that a transcode ended (`content.ready`, `content.failed`); the
/// stream entry id makes a re-read entry the same message.
async fn notify(app: &AppState, rec: &ContentRecord, ev: &Event, entry_id: &str) {
    let Some(owner) = rec.owner.as_deref() else {
        return;
    };
    let (kind, data) = match ev {
        Event::Ready { .. } => (
            "content.ready",
            json!({
                "content_id": rec.id,
                "status": "ready",
                "duration_s": rec.duration_s,
                "renditions": rec.renditions,
                "audio": rec.audio,
            }),
        ),
        Event::Failed { .. } => (
            "content.failed",
            json!({ "content_id": rec.id, "status": "failed", "error": rec.error }),
        ),
        Event::Started { .. } | Event::Progress { .. } => return,
    };
    webhooks::emit(app, owner, kind, entry_id, data).await;
}

/// An event for a content that is no longer there. A transcoder that was working when its
/// content was deleted uploads the package anyway and then reports: the package is removed
/// again here, so a deleted content leaves nothing behind.
async fn forget_deleted(app: &AppState, id: &str, ev: &Event) {
    let finished = matches!(ev, Event::Ready { .. } | Event::Failed { .. });
    match app.catalog.is_deleted(id).await {
        Ok(true) if finished => {
            tracing::info!(content_id = %id, "job of a deleted content finished; removing its package");
            for attempt in 0..5u32 {
                match crate::contents::remove_files(app, id).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(content_id = %id, attempt, cause = %e, "cleanup failed");
                        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    }
                }
            }
        }
        Ok(true) => tracing::debug!(content_id = %id, "event for a deleted content; dropped"),
        _ => tracing::warn!(content_id = %id, "event for unknown content; dropped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ContentRecord;

    fn rec(status: Status) -> ContentRecord {
        ContentRecord {
            description: None,
            tags: Vec::new(),
            id: "c".into(),
            title: "t".into(),
            owner: None,
            status,
            progress: 0.0,
            policy: serde_json::json!({"public": true}),
            renditions: vec![],
            duration_s: None,
            error: None,
            has_audio: None,
            artwork: None,
            poster: None,
            storyboard: None,
            captions: Vec::new(),
            audio: Vec::new(),
            encryption: Default::default(),
            upload_id: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn events_move_the_status_forward_only() {
        let mut r = rec(Status::Processing);
        assert!(apply(
            &mut r,
            &Event::Progress {
                content_id: "c".into(),
                percent: 40.0
            }
        ));
        assert_eq!(r.progress, 40.0);
        let ready = Event::Ready {
            content_id: "c".into(),
            renditions: vec![],
            duration_s: 6.0,
            has_audio: true,
            artwork: None,
            audio: vec![],
        };
        assert!(apply(&mut r, &ready));
        assert_eq!(
            (r.status, r.progress, r.duration_s),
            (Status::Ready, 100.0, Some(6.0))
        );
        let failed = Event::Failed {
            content_id: "c".into(),
            error: "x".into(),
        };
        assert!(
            !apply(&mut r, &failed),
            "late failure must not clobber ready"
        );
        assert!(!apply(
            &mut r,
            &Event::Progress {
                content_id: "c".into(),
                percent: 1.0
            }
        ));
        let mut r = rec(Status::Processing);
        assert!(apply(&mut r, &failed));
        assert_eq!((r.status, r.error.as_deref()), (Status::Failed, Some("x")));
    }
}
