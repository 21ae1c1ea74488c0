//! Prometheus metrics of the origin, served at `GET /metrics`.

use std::sync::LazyLock;

use axum::{
    extract::{MatchedPath, Request},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus::{HistogramVec, IntCounter, IntCounterVec};
use streamgate_telemetry::{CONTENT_TYPE, Registry};

/// Every metric of the origin, registered once.
pub(crate) struct Metrics {
    registry: Registry,
    /// Requests by route template and status.
    pub(crate) requests: IntCounterVec,
    /// Request latency by route template.
    pub(crate) latency: HistogramVec,
    /// Error responses by code.
    pub(crate) errors: IntCounterVec,
    /// Bytes received in tus PATCH bodies.
    pub(crate) upload_bytes: IntCounter,
    /// S3 parts written.
    pub(crate) upload_parts: IntCounter,
    /// Uploads that reached their full length.
    pub(crate) uploads_completed: IntCounter,
    /// PATCH bodies refused because they did not match `Upload-Checksum`.
    pub(crate) upload_checksum_failures: IntCounter,
    /// Jobs put on `sg:jobs`.
    pub(crate) jobs_enqueued: IntCounter,
    /// Uploads rejected by the probe (not a video).
    pub(crate) probe_rejections: IntCounter,
    /// Events applied to the catalog, by type.
    pub(crate) events: IntCounterVec,
    /// Bytes of packaged media served to edges.
    pub(crate) media_bytes: IntCounter,
    /// Requests refused by a rate limit, by limit.
    pub(crate) rate_limited: IntCounterVec,
    /// Webhook events emitted, by type (`lost` when Redis refused one).
    pub(crate) webhook_events: IntCounterVec,
    /// Webhook delivery tries, by outcome (`delivered`, `failed`, `dead`).
    pub(crate) webhook_deliveries: IntCounterVec,
    /// Webhook targets refused (non-public address, at registration or delivery).
    pub(crate) webhook_refused_targets: IntCounter,
    /// Caption uploads and removals, by outcome (`stored`, `replaced`, `deleted`, `refused`).
    pub(crate) captions: IntCounterVec,
    /// Sign-in outcomes, by method (`siwe`, `siwe_1271` for contract wallets, `siws`) and result
    /// code (`ok` or the refusal reason).
    pub(crate) sign_ins: IntCounterVec,
}

/// The process-wide metrics.
pub(crate) static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        // The names and label sets below are constant and distinct: registration cannot fail.
        Self::build().expect("valid, distinct metric families")
    }

    fn build() -> prometheus::Result<Self> {
        let r = Registry::new();
        Ok(Self {
            requests: r.counter_vec(
                "streamgate_origin_requests_total",
                "HTTP requests by route and status",
                &["route", "status"],
                &[],
            )?,
            latency: r.histogram_vec(
                "streamgate_origin_request_duration_seconds",
                "HTTP request latency by route",
                &["route"],
                &[
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
                ],
            )?,
            errors: r.counter_vec(
                "streamgate_origin_errors_total",
                "Error responses by code",
                &["code"],
                &[],
            )?,
            upload_bytes: r.counter(
                "streamgate_origin_upload_bytes_total",
                "Bytes received by tus PATCH",
            )?,
            upload_parts: r.counter(
                "streamgate_origin_upload_parts_total",
                "S3 multipart parts written",
            )?,
            uploads_completed: r.counter(
                "streamgate_origin_uploads_completed_total",
                "Uploads completed",
            )?,
            upload_checksum_failures: r.counter(
                "streamgate_origin_upload_checksum_failures_total",
                "tus PATCH bodies refused (460) because they did not match Upload-Checksum",
            )?,
            webhook_events: r.counter_vec(
                "streamgate_origin_webhook_events_total",
                "Webhook events emitted, by type",
                &["type"],
                &[],
            )?,
            webhook_deliveries: r.counter_vec(
                "streamgate_origin_webhook_deliveries_total",
                "Webhook delivery tries, by outcome",
                &["outcome"],
                &[&["delivered"], &["failed"], &["dead"]],
            )?,
            webhook_refused_targets: r.counter(
                "streamgate_origin_webhook_refused_targets_total",
                "Webhook targets refused as not public",
            )?,
            captions: r.counter_vec(
                "streamgate_origin_captions_total",
                "Caption files stored, replaced, deleted or refused",
                &["outcome"],
                &[&["stored"], &["replaced"], &["deleted"], &["refused"]],
            )?,
            jobs_enqueued: r.counter(
                "streamgate_origin_jobs_enqueued_total",
                "Transcode jobs enqueued",
            )?,
            probe_rejections: r.counter(
                "streamgate_origin_probe_rejections_total",
                "Uploads rejected by ffprobe as not a video",
            )?,
            events: r.counter_vec(
                "streamgate_origin_events_total",
                "Transcoder events applied, by type",
                &["type"],
                &[],
            )?,
            media_bytes: r.counter(
                "streamgate_origin_media_bytes_total",
                "Packaged bytes served",
            )?,
            rate_limited: r.counter_vec(
                "streamgate_origin_rate_limited_total",
                "Requests refused by a rate limit",
                &["limit"],
                &[],
            )?,
            sign_ins: r.counter_vec(
                "streamgate_origin_sign_ins_total",
                "Sign-in attempts by method and outcome",
                &["method", "outcome"],
                &[],
            )?,
            registry: r,
        })
    }
}

/// `GET /metrics`.
pub(crate) async fn handler() -> Response {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        METRICS.registry.render(),
    )
        .into_response()
}

/// Middleware: counts and times every request by its route template.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    METRICS
        .latency
        .with_label_values(&[&route])
        .observe(start.elapsed().as_secs_f64());
    METRICS
        .requests
        .with_label_values(&[&route, resp.status().as_str()])
        .inc();
    resp
}
