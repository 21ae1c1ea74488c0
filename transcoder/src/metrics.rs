//! Prometheus metrics and the `/metrics` + `/healthz` listener.

use std::sync::Arc;

use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec};
use streamgate_telemetry::{CONTENT_TYPE, Registry};
use tokio::{net::TcpListener, sync::watch};

use crate::Error;

/// The worker's metrics, registered in their own registry.
#[derive(Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Jobs taken (each delivery counts).
    pub(crate) jobs_started: IntCounter,
    /// Jobs published and acknowledged.
    pub(crate) jobs_succeeded: IntCounter,
    /// Jobs failed, by `reason`: `permanent`, `transient` (left pending), `dead_letter`.
    pub(crate) jobs_failed: IntCounterVec,
    /// Wall time of a job, download to ack.
    pub(crate) job_seconds: Histogram,
    /// Wall time of FFmpeg runs.
    pub(crate) ffmpeg_seconds: Histogram,
    /// Wall time of each step of a job, by `phase`: `download`, `probe`, `encode`, `package`,
    /// `artwork`, `upload`.
    pub(crate) phase_seconds: HistogramVec,
    /// Bytes uploaded to S3.
    pub(crate) bytes_uploaded: IntCounter,
    /// Jobs taken over from another consumer by `XAUTOCLAIM`.
    pub(crate) reclaimed: IntCounter,
}

impl Metrics {
    /// Creates and registers every metric.
    ///
    /// # Errors
    /// [`Error::Metrics`] when a metric is malformed (a programming error).
    pub(crate) fn new() -> Result<Self, Error> {
        let registry = Registry::new();
        let buckets = [
            1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
        ];
        Ok(Self {
            jobs_started: registry
                .counter("streamgate_transcoder_jobs_started_total", "jobs taken")?,
            jobs_succeeded: registry.counter(
                "streamgate_transcoder_jobs_succeeded_total",
                "jobs published",
            )?,
            jobs_failed: registry.counter_vec(
                "streamgate_transcoder_jobs_failed_total",
                "jobs failed, by reason",
                &["reason"],
                &[&["permanent"], &["transient"], &["dead_letter"]],
            )?,
            job_seconds: registry.histogram(
                "streamgate_transcoder_job_duration_seconds",
                "job wall time",
                &buckets,
            )?,
            ffmpeg_seconds: registry.histogram(
                "streamgate_transcoder_ffmpeg_seconds",
                "ffmpeg wall time",
                &buckets,
            )?,
            phase_seconds: registry.histogram_vec(
                "streamgate_transcoder_phase_seconds",
                "job step wall time, by phase",
                &["phase"],
                &[0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0],
            )?,
            bytes_uploaded: registry.counter(
                "streamgate_transcoder_uploaded_bytes_total",
                "bytes uploaded to s3",
            )?,
            reclaimed: registry.counter(
                "streamgate_transcoder_jobs_reclaimed_total",
                "jobs taken over from dead workers",
            )?,
            registry,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        String::from_utf8_lossy(&self.registry.render()).into_owned()
    }

    pub(crate) fn failed(&self, reason: &str) {
        self.jobs_failed.with_label_values(&[reason]).inc();
    }
}

/// The metrics router: `GET /metrics`, `GET /healthz`.
pub(crate) fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(metrics)
}

async fn render(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], m.render())
}

/// Serves the router on `listener` until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let stop = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, router(metrics))
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "metrics listener failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let m = Metrics::new().unwrap();
        m.jobs_started.inc();
        m.failed("permanent");
        let text = m.render();
        for name in [
            "streamgate_transcoder_jobs_started_total 1",
            "streamgate_transcoder_jobs_failed_total{reason=\"permanent\"} 1",
            "streamgate_transcoder_jobs_failed_total{reason=\"dead_letter\"} 0",
            "streamgate_transcoder_job_duration_seconds_bucket",
            "streamgate_transcoder_uploaded_bytes_total",
            "streamgate_transcoder_jobs_reclaimed_total",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
