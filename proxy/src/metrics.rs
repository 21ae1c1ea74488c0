//! Edge metrics: the Prometheus families the edge exports and the small pingora HTTP service
//! that serves them on `server.metrics-listen`.
//!
//! Each server owns its own [`Registry`] (not the process-global one), so tests can run several
//! edges in one process. Label sets that are known up front (token failure reasons, bad-request
//! reasons) are registered at zero, so dashboards and alerts see them before the first failure.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Response, StatusCode, header};
use pingora::{apps::http_app::ServeHttp, protocols::http::ServerSession};
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};
use streamgate_auth::TokenError;

use crate::token_gate::{ObjectKind, PathError};

/// Reason label for requests to no known route.
pub(crate) const REASON_NOT_FOUND: &str = "not_found";
/// Reason label for a known route asked with an unsupported method.
pub(crate) const REASON_METHOD: &str = "method_not_allowed";

/// Latency buckets (seconds): a cache hit is well under a millisecond, an origin miss for a
/// large segment can take seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The edge's metric families.
#[derive(Debug, Clone)]
pub(crate) struct EdgeMetrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: Histogram,
    token_failures: IntCounterVec,
    bad_requests: IntCounterVec,
    upstream_errors: IntCounter,
    response_bytes: IntCounter,
    grants: IntCounterVec,
    entitlement_checks: IntCounter,
    invalidations: IntCounterVec,
}

impl EdgeMetrics {
    /// Creates and registers every family in a fresh registry.
    ///
    /// # Errors
    /// A family fails to register (only possible with invalid names: a bug).
    pub(crate) fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "streamgate_edge_requests_total",
                "Requests answered, by status code and object kind.",
            ),
            &["status", "kind"],
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "streamgate_edge_request_duration_seconds",
                "Time from request header to the end of the response.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
        )?;
        let token_failures = IntCounterVec::new(
            Opts::new(
                "streamgate_edge_token_failures_total",
                "Playback tokens refused, by reason.",
            ),
            &["reason"],
        )?;
        let bad_requests = IntCounterVec::new(
            Opts::new(
                "streamgate_edge_bad_requests_total",
                "Requests refused for their shape (path, route, method), by reason.",
            ),
            &["reason"],
        )?;
        let upstream_errors = IntCounter::new(
            "streamgate_edge_upstream_errors_total",
            "Requests that failed because of the upstream (connect, timeout, reset).",
        )?;
        let response_bytes = IntCounter::new(
            "streamgate_edge_response_bytes_total",
            "Response body bytes sent to clients.",
        )?;
        let grants = IntCounterVec::new(
            Opts::new(
                "streamgate_edge_grants_total",
                "Playback grant requests, by outcome (the tier that decided, or the refusal code).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(grants.clone()))?;
        let entitlement_checks = IntCounter::new(
            "streamgate_edge_entitlement_checks_total",
            "Entitlement evaluations run against the chains (cache misses after singleflight).",
        )?;
        registry.register(Box::new(entitlement_checks.clone()))?;
        let invalidations = IntCounterVec::new(
            Opts::new(
                "streamgate_edge_invalidations_total",
                "Messages applied from sg:invalidate, by type; `resync` counts (re)subscriptions.",
            ),
            &["type"],
        )?;
        registry.register(Box::new(invalidations.clone()))?;
        for t in [
            "content_deleted",
            "policy_changed",
            "repackaged",
            "session_revoked",
            "resync",
            "malformed",
        ] {
            invalidations.with_label_values(&[t]);
        }
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(token_failures.clone()))?;
        registry.register(Box::new(bad_requests.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(response_bytes.clone()))?;
        for e in TokenError::ALL {
            token_failures.with_label_values(&[e.code()]);
        }
        for e in PathError::ALL {
            bad_requests.with_label_values(&[e.code()]);
        }
        bad_requests.with_label_values(&[REASON_NOT_FOUND]);
        bad_requests.with_label_values(&[REASON_METHOD]);
        Ok(Self {
            registry,
            requests,
            duration,
            token_failures,
            bad_requests,
            upstream_errors,
            response_bytes,
            grants,
            entitlement_checks,
            invalidations,
        })
    }

    /// Records one finished request (`status` is `000` when no response was sent).
    pub(crate) fn observe_request(
        &self,
        status: &str,
        kind: ObjectKind,
        seconds: f64,
        body_bytes: usize,
    ) {
        self.requests
            .with_label_values(&[status, kind.as_str()])
            .inc();
        self.duration.observe(seconds);
        self.response_bytes
            .inc_by(u64::try_from(body_bytes).unwrap_or(u64::MAX));
    }

    /// Counts a refused token.
    pub(crate) fn token_failure(&self, e: TokenError) {
        self.token_failures.with_label_values(&[e.code()]).inc();
    }

    /// Counts a request refused for its shape.
    pub(crate) fn bad_request(&self, reason: &str) {
        self.bad_requests.with_label_values(&[reason]).inc();
    }

    /// Counts a grant request by outcome.
    pub(crate) fn grant(&self, outcome: &str) {
        self.grants.with_label_values(&[outcome]).inc();
    }

    /// Counts one entitlement evaluation against the chains.
    pub(crate) fn entitlement_check(&self) {
        self.entitlement_checks.inc();
    }

    /// Counts an applied invalidation message.
    pub(crate) fn invalidation(&self, kind: &str) {
        self.invalidations.with_label_values(&[kind]).inc();
    }

    /// Counts an upstream failure.
    pub(crate) fn upstream_error(&self) {
        self.upstream_errors.inc();
    }

    /// The text exposition of every family.
    pub(crate) fn render(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(8 * 1024);
        // Encoding into a Vec only fails on a malformed family, which registration rules out;
        // an empty page is the safe answer if it ever happens.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "metrics encoding failed");
            buf.clear();
        }
        buf
    }
}

/// The `/metrics` HTTP app, run as its own pingora listening service.
pub(crate) struct MetricsApp {
    metrics: Arc<EdgeMetrics>,
}

impl MetricsApp {
    pub(crate) fn new(metrics: Arc<EdgeMetrics>) -> Self {
        Self { metrics }
    }
}

#[async_trait]
impl ServeHttp for MetricsApp {
    /// Answers `GET /metrics` with the text exposition and anything else with 404.
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let (status, ctype, body) = if session.req_header().uri.path() == "/metrics" {
            (
                StatusCode::OK,
                TextEncoder::new().format_type().to_owned(),
                self.metrics.render(),
            )
        } else {
            (
                StatusCode::NOT_FOUND,
                "text/plain".to_owned(),
                b"not found\n".to_vec(),
            )
        };
        let len = body.len();
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, ctype)
            .header(header::CONTENT_LENGTH, len)
            .body(body)
            .unwrap_or_else(|_| {
                // Every part above is a valid constant or number; keep a fallback anyway.
                let mut r = Response::new(Vec::new());
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                r
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_pre_registered() {
        let m = EdgeMetrics::new().unwrap();
        let text = String::from_utf8(m.render()).unwrap();
        for e in TokenError::ALL {
            let line = format!(
                "streamgate_edge_token_failures_total{{reason=\"{}\"}} 0",
                e.code()
            );
            assert!(text.contains(&line), "{line}");
        }
        assert!(text.contains("streamgate_edge_bad_requests_total{reason=\"dot_segment\"} 0"));
        assert!(text.contains("streamgate_edge_upstream_errors_total 0"));
        assert!(text.contains("streamgate_edge_response_bytes_total 0"));
    }

    #[test]
    fn observations_show_up() {
        let m = EdgeMetrics::new().unwrap();
        m.observe_request("200", ObjectKind::Segment, 0.002, 1000);
        m.token_failure(TokenError::Expired);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains("streamgate_edge_requests_total{kind=\"segment\",status=\"200\"} 1"));
        assert!(text.contains("streamgate_edge_token_failures_total{reason=\"expired\"} 1"));
        assert!(text.contains("streamgate_edge_response_bytes_total 1000"));
        assert!(text.contains("streamgate_edge_request_duration_seconds_count 1"));
    }
}
