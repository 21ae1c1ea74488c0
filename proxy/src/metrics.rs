//! Edge metrics: the Prometheus families the edge exports and the small pingora HTTP service
//! that serves them on `server.metrics-listen`.
//!
//! Built like every service's (`streamgate-telemetry`): each server owns its own [`Registry`]
//! (not the process-global one), so tests can run several edges in one process. Label sets that are known up front (token failure reasons, bad-request
//! reasons) are registered at zero, so dashboards and alerts see them before the first failure.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use http::{Response, StatusCode, header};
use pingora::{apps::http_app::ServeHttp, protocols::http::ServerSession};
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};
use streamgate_auth::TokenError;
use streamgate_telemetry::Registry;

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
    licenses: IntCounterVec,
    entitlement_checks: IntCounter,
    invalidations: IntCounterVec,
    proxy_headers: IntCounterVec,
    reloads: IntCounterVec,
    open_connections: IntGauge,
    shed: IntCounterVec,
    cache: CacheMetrics,
    /// `requests{status, kind}` for the statuses nearly every object request ends in, resolved
    /// on first use and then kept: a labelled lookup costs a hash and a lock per request.
    hot_requests: [[OnceLock<IntCounter>; HOT_STATUSES.len()]; 3],
}

/// Statuses with a kept `requests` counter per kind.
const HOT_STATUSES: [&str; 3] = ["200", "206", "304"];

fn kind_index(kind: ObjectKind) -> usize {
    match kind {
        ObjectKind::Manifest => 0,
        ObjectKind::Segment => 1,
        ObjectKind::Other => 2,
    }
}

/// The object cache's families.
#[derive(Debug, Clone)]
struct CacheMetrics {
    /// Object responses by `x-cache` value.
    outcomes: IntCounterVec,
    /// `outcomes` for each of [`TIERS`], resolved once.
    hot_outcomes: [IntCounter; TIERS.len()],
    origin_fetches: IntCounter,
    coalesced: IntCounter,
    evictions: IntCounter,
    l2_errors: IntCounter,
    too_big: IntCounter,
    l1_bytes: IntGauge,
    l1_objects: IntGauge,
    purges: IntCounterVec,
}

/// Every `x-cache` value.
const TIERS: [&str; 5] = ["HIT-L1", "HIT-L2", "MISS", "STALE", "BYPASS"];

impl CacheMetrics {
    fn new(r: &Registry) -> prometheus::Result<Self> {
        let outcomes = r.counter_vec(
            "streamgate_edge_cache_requests_total",
            "Object responses by the tier that served them (x-cache: HIT-L1, HIT-L2, MISS, STALE, BYPASS).",
            &["tier"],
            &[&["HIT-L1"], &["HIT-L2"], &["MISS"], &["STALE"], &["BYPASS"]],
        )?;
        Ok(Self {
            hot_outcomes: TIERS.map(|t| outcomes.with_label_values(&[t])),
            outcomes,
            origin_fetches: r.counter(
                "streamgate_edge_origin_fetches_total",
                "Requests sent upstream (origin or a parent edge).",
            )?,
            coalesced: r.counter(
                "streamgate_edge_cache_coalesced_total",
                "Requests that waited on another request's fetch of the same object (cache lock).",
            )?,
            evictions: r.counter(
                "streamgate_edge_cache_evictions_total",
                "Objects evicted from L1 for space.",
            )?,
            l2_errors: r.counter(
                "streamgate_edge_cache_l2_errors_total",
                "L2 (Redis) operations that failed or timed out (the tier was skipped).",
            )?,
            too_big: r.counter(
                "streamgate_edge_cache_too_big_total",
                "Fetches not cached because the object exceeds cache.max-object.",
            )?,
            l1_bytes: r.gauge(
                "streamgate_edge_cache_l1_bytes",
                "Bytes held by L1 (weighted size).",
            )?,
            l1_objects: r.gauge("streamgate_edge_cache_l1_objects", "Objects in L1.")?,
            purges: r.counter_vec(
                "streamgate_edge_cache_purges_total",
                "Purges applied, by source (admin, invalidate).",
                &["source"],
                &[&["admin"], &["invalidate"]],
            )?,
        })
    }
}

impl EdgeMetrics {
    /// Creates and registers every family in a fresh registry.
    ///
    /// # Errors
    /// A family fails to register (only possible with invalid names: a bug).
    pub(crate) fn new() -> prometheus::Result<Self> {
        let r = Registry::new();
        let token_reasons: Vec<[&str; 1]> = TokenError::ALL.iter().map(|e| [e.code()]).collect();
        let mut bad_reasons: Vec<[&str; 1]> = PathError::ALL.iter().map(|e| [e.code()]).collect();
        bad_reasons.extend([[REASON_NOT_FOUND], [REASON_METHOD]]);
        fn presets<'a>(v: &'a [[&'static str; 1]]) -> Vec<&'a [&'static str]> {
            v.iter().map(|x| x.as_slice()).collect()
        }
        Ok(Self {
            requests: r.counter_vec(
                "streamgate_edge_requests_total",
                "Requests answered, by status code and object kind.",
                &["status", "kind"],
                &[],
            )?,
            hot_requests: Default::default(),
            duration: r.histogram(
                "streamgate_edge_request_duration_seconds",
                "Time from request header to the end of the response.",
                &DURATION_BUCKETS,
            )?,
            token_failures: r.counter_vec(
                "streamgate_edge_token_failures_total",
                "Playback tokens refused, by reason.",
                &["reason"],
                &presets(&token_reasons),
            )?,
            bad_requests: r.counter_vec(
                "streamgate_edge_bad_requests_total",
                "Requests refused for their shape (path, route, method), by reason.",
                &["reason"],
                &presets(&bad_reasons),
            )?,
            upstream_errors: r.counter(
                "streamgate_edge_upstream_errors_total",
                "Requests that failed because of the upstream (connect, timeout, reset).",
            )?,
            response_bytes: r.counter(
                "streamgate_edge_response_bytes_total",
                "Response body bytes sent to clients.",
            )?,
            grants: r.counter_vec(
                "streamgate_edge_grants_total",
                "Playback grant requests, by outcome (the tier that decided, or the refusal code).",
                &["outcome"],
                &[],
            )?,
            licenses: r.counter_vec(
                "streamgate_edge_license_requests_total",
                "ClearKey license requests that passed the token gate, by outcome.",
                &["outcome"],
                &presets(
                    &crate::license::OUTCOMES
                        .iter()
                        .map(|o| [*o])
                        .collect::<Vec<_>>(),
                ),
            )?,
            entitlement_checks: r.counter(
                "streamgate_edge_entitlement_checks_total",
                "Entitlement evaluations run against the chains (cache misses after singleflight).",
            )?,
            invalidations: r.counter_vec(
                "streamgate_edge_invalidations_total",
                "Messages applied from sg:invalidate, by type; `resync` counts (re)subscriptions.",
                &["type"],
                &[
                    &["content_deleted"],
                    &["policy_changed"],
                    &["repackaged"],
                    &["session_revoked"],
                    &["purged"],
                    &["resync"],
                    &["malformed"],
                    &["replayed"],
                    &["gap"],
                ],
            )?,
            open_connections: r.gauge(
                "streamgate_edge_open_connections",
                "Client connections open on the player listeners.",
            )?,
            shed: r.counter_vec(
                "streamgate_edge_shed_total",
                "Work refused to stay within bounds, by reason (`connections`: 503 + \
                 Retry-After past server.max-connections; `slow_reader`: a response dropped \
                 because the client read slower than server.min-send-rate).",
                &["reason"],
                &[&["connections"], &["slow_reader"]],
            )?,
            proxy_headers: r.counter_vec(
                "streamgate_edge_proxy_headers_total",
                "Connections on PROXY-protocol listeners, by outcome (`accepted`, `refused`: \
                 untrusted peer, missing, malformed or late header).",
                &["outcome"],
                &[&["accepted"], &["refused"]],
            )?,
            reloads: r.counter_vec(
                "streamgate_edge_reloads_total",
                "Reloads without a restart (SIGHUP or changed certificate files), by what \
                 (`tls`, `tokens`) and result (`ok`, `error`: the old material stays).",
                &["what", "result"],
                &[
                    &["tls", "ok"],
                    &["tls", "error"],
                    &["tokens", "ok"],
                    &["tokens", "error"],
                ],
            )?,
            cache: CacheMetrics::new(&r)?,
            registry: r,
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
        match HOT_STATUSES.iter().position(|s| *s == status) {
            Some(i) => self.hot_requests[kind_index(kind)][i]
                .get_or_init(|| self.requests.with_label_values(&[status, kind.as_str()]))
                .inc(),
            None => self
                .requests
                .with_label_values(&[status, kind.as_str()])
                .inc(),
        }
        self.duration.observe(seconds);
        self.response_bytes
            .inc_by(u64::try_from(body_bytes).unwrap_or(u64::MAX));
    }

    /// The gauge of open client connections.
    pub(crate) fn open_connections(&self) -> &IntGauge {
        &self.open_connections
    }

    /// Counts work refused past a bound.
    pub(crate) fn shed(&self, reason: &str) {
        self.shed.with_label_values(&[reason]).inc();
    }

    /// Counts a connection on a PROXY-protocol listener.
    pub(crate) fn proxy_header(&self, accepted: bool) {
        let outcome = if accepted { "accepted" } else { "refused" };
        self.proxy_headers.with_label_values(&[outcome]).inc();
    }

    /// Counts a reload of `what` (`tls`, `tokens`).
    pub(crate) fn reload(&self, what: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reloads.with_label_values(&[what, result]).inc();
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

    /// Counts a license request by outcome.
    pub(crate) fn license(&self, outcome: &str) {
        self.licenses.with_label_values(&[outcome]).inc();
    }

    /// Counts one entitlement evaluation against the chains.
    pub(crate) fn entitlement_check(&self) {
        self.entitlement_checks.inc();
    }

    /// Counts an applied invalidation message.
    pub(crate) fn invalidation(&self, kind: &str) {
        self.invalidations.with_label_values(&[kind]).inc();
    }

    /// Counts an object response by its `x-cache` value.
    pub(crate) fn cache_outcome(&self, tier: &str) {
        match TIERS.iter().position(|t| *t == tier) {
            Some(i) => self.cache.hot_outcomes[i].inc(),
            None => self.cache.outcomes.with_label_values(&[tier]).inc(),
        }
    }

    /// Counts a request sent upstream.
    pub(crate) fn origin_fetch(&self) {
        self.cache.origin_fetches.inc();
    }

    /// Counts a request that waited on the cache lock.
    pub(crate) fn cache_coalesced(&self) {
        self.cache.coalesced.inc();
    }

    /// Counts an L1 eviction.
    pub(crate) fn cache_eviction(&self) {
        self.cache.evictions.inc();
    }

    /// Counts a failed L2 operation.
    pub(crate) fn cache_l2_error(&self) {
        self.cache.l2_errors.inc();
    }

    /// Counts an object too big to cache.
    pub(crate) fn cache_too_big(&self) {
        self.cache.too_big.inc();
    }

    /// Records L1's size.
    pub(crate) fn cache_size(&self, bytes: u64, objects: u64) {
        self.cache
            .l1_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.cache
            .l1_objects
            .set(i64::try_from(objects).unwrap_or(i64::MAX));
    }

    /// Counts a purge.
    pub(crate) fn cache_purge(&self, source: &str) {
        self.cache.purges.with_label_values(&[source]).inc();
    }

    /// Counts an upstream failure.
    pub(crate) fn upstream_error(&self) {
        self.upstream_errors.inc();
    }

    /// The text exposition of every family.
    pub(crate) fn render(&self) -> Vec<u8> {
        self.registry.render()
    }
}

/// The `/metrics` HTTP app (and the admin API, when configured), run as its own pingora
/// listening service.
pub(crate) struct MetricsApp {
    metrics: Arc<EdgeMetrics>,
    admin: Option<crate::admin::Admin>,
}

impl MetricsApp {
    pub(crate) fn new(metrics: Arc<EdgeMetrics>, admin: Option<crate::admin::Admin>) -> Self {
        Self { metrics, admin }
    }
}

#[async_trait]
impl ServeHttp for MetricsApp {
    /// Answers `GET /metrics` with the text exposition, `/admin/…` with the admin API, and
    /// anything else with 404.
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        if session.req_header().uri.path().starts_with("/admin/")
            && let Some(admin) = &self.admin
        {
            let (status, body) = admin.handle(session).await;
            return Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, body.len())
                .body(body)
                .unwrap_or_else(|_| Response::new(Vec::new()));
        }
        let (status, ctype, body) = if session.req_header().uri.path() == "/metrics" {
            (
                StatusCode::OK,
                streamgate_telemetry::CONTENT_TYPE.to_owned(),
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
        // Kept counters (200, 206, 304) and looked-up ones count in the same family.
        m.observe_request("200", ObjectKind::Manifest, 0.001, 0);
        m.observe_request("200", ObjectKind::Manifest, 0.001, 0);
        m.observe_request("502", ObjectKind::Manifest, 0.001, 0);
        m.cache_outcome("HIT-L1");
        m.cache_outcome("HIT-L1");
        m.token_failure(TokenError::Expired);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains("streamgate_edge_requests_total{kind=\"segment\",status=\"200\"} 1"));
        assert!(
            text.contains("streamgate_edge_requests_total{kind=\"manifest\",status=\"200\"} 2")
        );
        assert!(
            text.contains("streamgate_edge_requests_total{kind=\"manifest\",status=\"502\"} 1")
        );
        assert!(
            !text.contains("status=\"304\""),
            "no series before its first request"
        );
        assert!(text.contains("streamgate_edge_cache_requests_total{tier=\"HIT-L1\"} 2"));
        assert!(text.contains("streamgate_edge_token_failures_total{reason=\"expired\"} 1"));
        assert!(text.contains("streamgate_edge_response_bytes_total 1000"));
        assert!(text.contains("streamgate_edge_request_duration_seconds_count 4"));
    }
}
