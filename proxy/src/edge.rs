//! The edge's pingora [`ProxyHttp`] implementation: the gate (tokens, edge keys), the cache
//! phases, the upstream rewrite and per-request accounting, with the per-request state in
//! [`EdgeCtx`]. The hooks below are in the order Pingora calls them.
//!
//! ```text
//! player ──▶ request_filter: route (route.rs) ─┬─ /healthz, /readyz, 404, 405 ───▶ JSON
//!                                              ├─ grant (grant.rs answers) ──────▶ JSON / 302
//!                                              ├─ bad path 400, bad token 403 ───▶ JSON
//!                                              └─ object, token ok (playlists re-check the viewer)
//!            request_cache_filter ─ cache_key_callback (sg1:{id}/{path}, never the token)
//!            cache_hit_filter ──────────────── hit: L1 / L2 ─────────────────────────┐
//!            miss (CoalescingLock: one fetch, the rest wait) ▼                        │
//!            upstream_peer (parent by Ketama, else origin) ─ upstream_request_filter  │
//!              (/v/{id}/{path}, edge key, no token, no credentials)                   │
//!            response_cache_filter (RFC 9111, stale bounds) ─ response_filter ◀──────┘
//!              (x-cache, CORS, manifest rewrite) ─ range_header_filter ─ body filter
//! player ◀── logging: metrics + one access line, for every request
//! ```

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Instant, SystemTime},
};

use async_trait::async_trait;
use http::{Method, StatusCode, header};
use pingora::{
    Error, ErrorSource, ErrorType, Result,
    cache::{CacheKey, CacheMeta, ForcedFreshness, HitHandler, RespCacheable},
    http::{RequestHeader, ResponseHeader},
    proxy::{FailToProxy, ProxyHttp, Session},
    upstreams::peer::HttpPeer,
};
use streamgate_auth::TokenError;
use streamgate_config::{
    TrustedProxies,
    contract::{CLIENT_IP_HEADER, EDGE_KEY_HEADER, paths},
};
use tracing::{Instrument, Span, debug, debug_span, error, info, info_span, warn};

use crate::{
    cache::{self as edge_cache, EdgeCache, Hit, Tier},
    clock,
    cors::{self, Cors, CorsHeaders},
    grant::{self, GrantRequest, Grants},
    health::{HEALTHY, Readiness},
    license::Licenses,
    manifest::{ManifestKind, ManifestRewriter},
    metrics::{EdgeMetrics, REASON_METHOD, REASON_NOT_FOUND},
    reply::{self, ErrorBody},
    route::{self, PlayerPath, Route},
    token_gate::{self, GatedPath, ObjectKind, PathError},
    tokens::TokenPolicy,
    trace::{TRACEPARENT, TraceContext},
    upstream::{self as upstream_mod, ObjectRef, Origin},
};

/// What `request_filter` decided, computed from a shared borrow of the request.
enum Decision {
    Healthz,
    Readyz,
    Preflight,
    NotFound,
    MethodNotAllowed {
        allow: &'static str,
    },
    BadPath(PathError),
    Forbidden(TokenError),
    /// Token accepted: the object, its kind, and the token (its subject hash and whether a
    /// grant minted it, for playlist re-checks); `prefix` is how absolute manifest URIs are
    /// rewritten (manifests only).
    Proxy {
        object: ObjectRef,
        kind: ObjectKind,
        token: streamgate_auth::Verified,
        prefix: Option<PrefixMode>,
    },
    /// A child edge's `/v/{id}/{path}` with a valid edge key: served from this edge's cache
    /// tiers as stored (no token, no re-check, no manifest rewrite: the child does those).
    Child {
        object: ObjectRef,
        kind: ObjectKind,
    },
    /// `/v/…` without a valid edge key.
    NoEdgeKey,
    /// The grant endpoint.
    Grant(GrantRequest),
    /// A ClearKey license request whose token the gate accepted.
    License {
        content_id: String,
        token: streamgate_auth::Verified,
    },
}

/// What absolute URIs of a manifest are rewritten under: the viewer's own path prefix,
/// `/p/{token}/{id}/` or `/c/{id}/`. The string is built only when a manifest needs rewriting
/// (most have relative URIs only, and are sent as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrefixMode {
    /// `/p/{token}/{id}/`: the token from the request path.
    Token,
    /// `/c/{id}/`: the token rides in the cookie.
    Cookie,
}

impl PrefixMode {
    /// The prefix for `content_id`, from the request it answers.
    fn prefix(self, req: &RequestHeader, content_id: &str) -> Option<String> {
        match self {
            PrefixMode::Token => {
                let g = token_gate::GatedPath::parse(req.uri.path())?.ok()?;
                Some(paths::gated(g.token, content_id, ""))
            }
            PrefixMode::Cookie => Some(paths::cookie_mode(content_id, "")),
        }
    }
}

/// Per-request state, shared by every hook of one request.
#[derive(Debug)]
pub(crate) struct EdgeCtx {
    /// When the request header was read, for the duration histogram.
    started: Instant,
    /// The request's span (method, route, request id); hooks log under it.
    span: Span,
    /// Object kind, the `kind` label of the request metrics.
    kind: ObjectKind,
    /// The object of a gated request that passed the gate; `None` for every other request.
    object: Option<ObjectRef>,
    /// The cache tier of a hit (from the hit handler).
    tier: Option<Tier>,
    /// The `x-cache` value sent.
    x_cache: Option<&'static str>,
    /// Answered from L1 by [`Edge::serve_hot_hit`], without Pingora's cache phases.
    hot_hit: bool,
    /// CORS headers for this request's answers (empty when CORS does not apply).
    cors: CorsHeaders,
    /// How absolute manifest URIs are rewritten (gated manifests only).
    prefix: Option<PrefixMode>,
    /// The rewriter of a manifest response being sent.
    rewriter: Option<ManifestRewriter>,
    /// The viewer's address, sent to a parent edge with the request (`x-streamgate-client-ip`).
    client_ip: Option<IpAddr>,
    /// First rewrite of a manifest version: (key, input, output), compared at the end to learn
    /// whether the manifest has anything to rewrite.
    clean_probe: Option<(ManifestVersion, Vec<u8>, Vec<u8>)>,
    /// The request is going to a parent edge.
    via_parent: bool,
    /// A parent could not be reached: the retry goes to origin.
    parent_failed: bool,
    /// This request's id (unique within the process), for the span and the access log.
    request_id: u64,
    /// The route's label.
    route: &'static str,
    /// Its W3C trace position; `traceparent` upstream names this span.
    trace: Option<TraceContext>,
}

/// The `tracing` target of access-log lines (filter on it, or route it elsewhere).
pub(crate) const ACCESS_TARGET: &str = "streamgate::access";

/// Which requests get an access-log line (`[access-log]`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccessLog {
    /// One request in `every` (by request id: exact and cheap, no randomness per request).
    every: u64,
    /// Failed requests (4xx, 5xx, none sent) always.
    errors: bool,
}

impl AccessLog {
    /// From `sample` (0 < sample ≤ 1) and whether failures are always logged.
    pub(crate) fn new(sample: f64, errors: bool) -> Self {
        let every = (1.0 / sample).round().max(1.0) as u64;
        Self { every, errors }
    }

    fn wants(&self, request_id: u64, status: u16) -> bool {
        (self.errors && (status == 0 || status >= 400)) || request_id.is_multiple_of(self.every)
    }
}

/// The viewer's address: the connection's peer (the viewer's own address after a PROXY
/// header), or, when that peer is a trusted proxy, the right-most untrusted hop of
/// `Forwarded` / `X-Forwarded-For` (see [`TrustedProxies::client_ip`]). Feeds token IP binding,
/// grants, the parent hop header and logs.
pub(crate) fn viewer_ip(session: &Session, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = session.client_addr()?.as_inet()?.ip();
    if trusted.is_empty() {
        return Some(peer.to_canonical());
    }
    let headers = &session.req_header().headers;
    let values = |name| {
        headers
            .get_all(name)
            .into_iter()
            .filter_map(|v| v.to_str().ok())
    };
    Some(trusted.client_ip(
        peer,
        values(http::header::HeaderName::from_static("x-forwarded-for")),
        values(http::header::FORWARDED),
    ))
}

/// The edge proxy logic.
pub(crate) struct Edge {
    tokens: Arc<TokenPolicy>,
    origin: Origin,
    metrics: Arc<EdgeMetrics>,
    readiness: Readiness,
    /// The playback-grant service (`[session]` + `[entitlements]`); `None`: tokens are minted
    /// by operators only and `/v1/playback/…` answers 404.
    grants: Option<Arc<Grants>>,
    /// The object cache; `None` with `cache.enabled = false`.
    cache: Option<Arc<EdgeCache>>,
    /// The ClearKey license service (always set by `server`; `None` answers 503).
    licenses: Option<Arc<Licenses>>,
    /// CORS policy.
    cors: Cors,
    /// Keys child edges present on `/v/…` (`server.edge-keys`); empty: no `/v/` route.
    child_keys: streamgate_auth::EdgeKeys,
    /// Load balancers whose forwarding headers name the viewer (`server.trusted-proxies`).
    trusted_proxies: TrustedProxies,
    /// `[access-log]`, when enabled.
    access_log: Option<AccessLog>,
    /// Manifest versions (`{id}/{path}` + ETag, see [`ManifestVersions`]) known to hold no
    /// absolute URI of their content: served as they are, with their `Content-Length`, no
    /// rewriter.
    clean_manifests: moka::sync::Cache<ManifestVersion, bool>,
    /// How a manifest version becomes its key in `clean_manifests`.
    manifest_versions: ManifestVersions,
    /// Source of request ids (unique within the process; enough to tie log lines together).
    next_request_id: AtomicU64,
    /// Whether spans are exported (`log.otlp-endpoint`): then every request gets an INFO span;
    /// otherwise its span is DEBUG and costs nothing unless the log filter asks for it.
    export_spans: bool,
    /// `server.min-send-rate` in bytes per second (`None`: no limit).
    min_send_rate: Option<usize>,
}

impl Edge {
    pub(crate) fn new(
        tokens: Arc<TokenPolicy>,
        origin: Origin,
        metrics: Arc<EdgeMetrics>,
        readiness: Readiness,
        grants: Option<Arc<Grants>>,
        cache: Option<Arc<EdgeCache>>,
        cors: Cors,
    ) -> Self {
        Self {
            cors,
            licenses: None,
            child_keys: streamgate_auth::EdgeKeys::default(),
            trusted_proxies: TrustedProxies::default(),
            access_log: None,
            clean_manifests: moka::sync::Cache::new(100_000),
            manifest_versions: ManifestVersions::default(),
            tokens,
            origin,
            metrics,
            readiness,
            grants,
            cache,
            next_request_id: AtomicU64::new(1),
            export_spans: false,
            min_send_rate: None,
        }
    }

    /// Drops clients that read a response body slower than `rate` bytes per second (`0`: no
    /// limit; `server.min-send-rate`).
    pub(crate) fn sending_at_least(mut self, rate: u64) -> Self {
        self.min_send_rate = usize::try_from(rate).ok().filter(|r| *r > 0);
        self
    }

    /// Opens an INFO span per request, for span export (`log.otlp-endpoint`).
    pub(crate) fn exporting_spans(mut self, export: bool) -> Self {
        self.export_spans = export;
        self
    }

    /// Serves child edges presenting one of `keys` at `/v/{id}/{path}` (`server.edge-keys`).
    pub(crate) fn accepting_children(mut self, keys: streamgate_auth::EdgeKeys) -> Self {
        self.child_keys = keys;
        self
    }

    /// Answers ClearKey license requests with `licenses`.
    pub(crate) fn licensing(mut self, licenses: Arc<Licenses>) -> Self {
        self.licenses = Some(licenses);
        self
    }

    /// Writes an access-log line for the requests `log` selects.
    pub(crate) fn logging_access(mut self, log: Option<AccessLog>) -> Self {
        self.access_log = log;
        self
    }

    /// Believes `X-Forwarded-For` / `Forwarded` from these peers (`server.trusted-proxies`).
    pub(crate) fn behind(mut self, trusted: TrustedProxies) -> Self {
        self.trusted_proxies = trusted;
        self
    }

    /// Decides what to do with a routed request: the gate (token, edge key) runs here.
    fn decide(&self, session: &Session, route: Route<'_>) -> Decision {
        let req = session.req_header();
        match route {
            Route::Health => Decision::Healthz,
            Route::Ready => Decision::Readyz,
            Route::Preflight => Decision::Preflight,
            Route::NotFound => Decision::NotFound,
            Route::MethodNotAllowed { allow } => Decision::MethodNotAllowed { allow },
            Route::BadPath(e) => Decision::BadPath(e),
            Route::Grant {
                content_id,
                redirect,
                cookie_mode,
            } => Decision::Grant(GrantRequest {
                content_id: content_id.to_owned(),
                redirect,
                cookie_mode,
            }),
            Route::Object(player) => {
                let g = player.object();
                let token = player_token(req, &player);
                match self.gate(session, token, g) {
                    Ok(verified) => Decision::Proxy {
                        object: ObjectRef::from_gated(g),
                        kind: g.kind(),
                        token: verified,
                        // Only manifests are rewritten: no allocation for segments.
                        prefix: (g.kind() == ObjectKind::Manifest).then_some(match player {
                            PlayerPath::Token(_) => PrefixMode::Token,
                            PlayerPath::Cookie(_) => PrefixMode::Cookie,
                        }),
                    },
                    Err(e) => Decision::Forbidden(e),
                }
            }
            Route::License(player) => {
                let g = player.object();
                let token = player_token(req, &player);
                match self.gate(session, token, g) {
                    Ok(verified) => Decision::License {
                        content_id: g.content_id.to_owned(),
                        token: verified,
                    },
                    Err(e) => Decision::Forbidden(e),
                }
            }
            Route::Child(g) => {
                let key = req
                    .headers
                    .get(EDGE_KEY_HEADER)
                    .map(|v| v.as_bytes())
                    .unwrap_or_default();
                if self.child_keys.accepts(key) {
                    Decision::Child {
                        object: ObjectRef::from_gated(&g),
                        kind: g.kind(),
                    }
                } else {
                    Decision::NoEdgeKey
                }
            }
        }
    }

    /// Answers a plain GET or HEAD of an object L1 holds fresh without Pingora's cache phases
    /// (no cache state machine, storage lookup or hit handler): the header Pingora's hit path
    /// would send (stored header, `Age`, `Accept-Ranges` for non-manifests, then
    /// [`ProxyHttp::response_filter`]: `x-cache`, CORS) and the body. Manifests only when their
    /// version is known to need no rewrite. Returns whether it answered; everything else
    /// (conditional and range requests, L2, stale objects, revalidation) takes the cache phases.
    async fn serve_hot_hit(&self, session: &mut Session, ctx: &mut EdgeCtx) -> Result<bool> {
        let (Some(cache), Some(object)) = (&self.cache, &ctx.object) else {
            return Ok(false);
        };
        if !plain_get(session.req_header()) {
            return Ok(false);
        }
        let key = upstream_mod::cache_key(object.content_id(), object.path());
        let Some((mut resp, body)) = cache.storage().fresh_l1(&key, SystemTime::now()) else {
            return Ok(false);
        };
        if ctx.prefix.is_some() {
            let clean = resp
                .headers
                .get(header::ETAG)
                .and_then(|e| e.to_str().ok())
                .is_some_and(|etag| {
                    self.clean_manifests
                        .get(&self.manifest_versions.of(object, etag))
                        == Some(true)
                });
            if !clean {
                return Ok(false);
            }
        } else {
            // What Pingora's range filter adds to a whole answer a range could be asked of.
            resp.insert_header(header::ACCEPT_RANGES, "bytes")?;
        }
        ctx.tier = Some(Tier::L1);
        ctx.hot_hit = true;
        self.response_filter(session, &mut resp, ctx).await?;
        let head = session.req_header().method == Method::HEAD;
        session.write_response_header(Box::new(resp), head).await?;
        if !head {
            session.write_response_body(Some(body), true).await?;
        }
        Ok(true)
    }

    /// The token gate: `token` for the object `g`, from this client.
    fn gate(
        &self,
        session: &Session,
        token: &str,
        g: &GatedPath<'_>,
    ) -> std::result::Result<streamgate_auth::Verified, TokenError> {
        let client_ip = viewer_ip(session, &self.trusted_proxies);
        match token_gate::check_token(&self.tokens.keys(), token, g.content_id, client_ip) {
            Ok(v) => {
                debug!(
                    content_id = g.content_id,
                    subject = %hex::encode(v.subject_hash),
                    "token accepted"
                );
                Ok(v)
            }
            Err(e) => {
                debug!(
                    content_id = g.content_id,
                    token = %token_gate::token_fingerprint(token),
                    reason = e.code(),
                    "token refused"
                );
                Err(e)
            }
        }
    }
}

#[async_trait]
impl ProxyHttp for Edge {
    type CTX = EdgeCtx;

    fn new_ctx(&self) -> EdgeCtx {
        EdgeCtx {
            started: Instant::now(),
            span: Span::none(),
            kind: ObjectKind::Other,
            object: None,
            tier: None,
            x_cache: None,
            hot_hit: false,
            cors: Vec::new(),
            prefix: None,
            rewriter: None,
            client_ip: None,
            clean_probe: None,
            via_parent: false,
            parent_failed: false,
            request_id: 0,
            route: "",
            trace: None,
        }
    }

    /// Runs first for every request. Answers health checks, refuses bad routes, paths and
    /// tokens itself (`Ok(true)`: response sent), and lets a gated request with a valid token
    /// continue to the upstream phases (`Ok(false)`) with its object recorded in `ctx`.
    async fn request_filter(&self, session: &mut Session, ctx: &mut EdgeCtx) -> Result<bool> {
        if self.min_send_rate.is_some() {
            // Each body write then times out at its size over this rate (HTTP/1; at least 1 s).
            session
                .as_downstream_mut()
                .set_min_send_rate(self.min_send_rate);
        }
        let req = session.req_header();
        let route = route::route(
            &req.method,
            req.uri.path(),
            req.uri.query(),
            self.grants.is_some(),
            !self.child_keys.is_empty(),
        );
        ctx.request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        ctx.route = route.label();
        // A trace started upstream of us counts only when a trusted proxy relays it.
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let incoming = peer
            .filter(|p| self.trusted_proxies.trusts(p.to_canonical()))
            .and_then(|_| req.headers.get(TRACEPARENT))
            .and_then(|v| v.to_str().ok());
        // The request span: exported spans need it on every request; without export it is DEBUG,
        // so that at the usual `info` filter it costs nothing (no span slot, no formatted
        // fields) and the warn/error lines below carry the request id, route and trace id
        // themselves.
        macro_rules! request_span {
            ($span:ident) => {
                $span!(
                    "request",
                    id = ctx.request_id,
                    method = %req.method,
                    route = route.label(),
                    trace_id = tracing::field::Empty,
                )
            };
        }
        ctx.span = if self.export_spans {
            request_span!(info_span)
        } else {
            request_span!(debug_span)
        };
        let trace = TraceContext::continue_or_start(incoming, &ctx.span);
        // A no-op on a disabled span.
        ctx.span
            .record("trace_id", tracing::field::display(trace.trace_id_hex()));
        ctx.trace = Some(trace);
        ctx.cors = self.cors.headers(session.req_header());
        let cors_owned = ctx.cors.clone();
        let cors = cors::as_pairs(&cors_owned);
        let decision = ctx.span.in_scope(|| self.decide(session, route));
        match decision {
            Decision::Healthz => reply::send_json(session, StatusCode::OK, &HEALTHY, &cors).await?,
            Decision::Readyz => {
                let (status, body) = match self.readiness.check(session.is_process_shutting_down())
                {
                    Ok(body) => (StatusCode::OK, body),
                    Err(body) => (StatusCode::SERVICE_UNAVAILABLE, body),
                };
                reply::send_json(session, status, &body, &cors).await?;
            }
            Decision::Preflight => {
                let pre = self.cors.preflight(session.req_header());
                let mut extra = cors::as_pairs(&pre);
                extra.push((header::ALLOW, route::OBJECT_ALLOW));
                let resp = reply::empty_header(StatusCode::NO_CONTENT, &extra)?;
                session.write_response_header(Box::new(resp), true).await?;
            }
            Decision::NotFound => {
                self.metrics.bad_request(REASON_NOT_FOUND);
                let body = ErrorBody::new("not_found", "no such route");
                reply::send_json(session, StatusCode::NOT_FOUND, &body, &cors).await?;
            }
            Decision::MethodNotAllowed { allow } => {
                self.metrics.bad_request(REASON_METHOD);
                let body = ErrorBody::new("method_not_allowed", "method not allowed on this route");
                let mut extra = cors.clone();
                extra.push((header::ALLOW, allow));
                reply::send_json(session, StatusCode::METHOD_NOT_ALLOWED, &body, &extra).await?;
            }
            Decision::BadPath(e) => {
                self.metrics.bad_request(e.code());
                let body = ErrorBody::new("bad_request", e.message()).with_reason(e.code());
                reply::send_json(session, StatusCode::BAD_REQUEST, &body, &cors).await?;
            }
            Decision::Forbidden(e) => {
                self.metrics.token_failure(e);
                let message = e.to_string();
                let body = ErrorBody::new("forbidden", &message).with_reason(e.code());
                reply::send_json(session, StatusCode::FORBIDDEN, &body, &cors).await?;
            }
            Decision::Child { object, kind } => {
                ctx.client_ip = session
                    .req_header()
                    .headers
                    .get(CLIENT_IP_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                ctx.kind = kind;
                ctx.object = Some(object);
                return Ok(false);
            }
            Decision::NoEdgeKey => {
                self.metrics.bad_request("edge_key");
                let body = ErrorBody::new(
                    "forbidden",
                    "this route serves child edges only: present a valid x-streamgate-edge-key",
                );
                reply::send_json(session, StatusCode::FORBIDDEN, &body, &cors).await?;
            }
            Decision::Proxy {
                object,
                kind,
                token,
                prefix,
            } => {
                ctx.client_ip = viewer_ip(session, &self.trusted_proxies);
                // Playlists re-check the viewer's entitlement (cached): a viewer who sold the
                // NFT loses the stream within the cache TTL even with a live token. Segments
                // rely on the token alone.
                if kind == ObjectKind::Manifest
                    && let Some(grants) = self.grants.clone()
                {
                    let now = clock::unix_now();
                    let recheck = grants
                        .recheck(object.content_id(), &token, now)
                        .instrument(ctx.span.clone())
                        .await;
                    if let Err(e) = recheck {
                        let (status, code) = e.status_code();
                        self.metrics.grant(&format!("recheck_{code}"));
                        let message = e.to_string();
                        let body = ErrorBody::new(code, &message);
                        let status = StatusCode::from_u16(status)
                            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                        reply::send_json(session, status, &body, &cors).await?;
                        return Ok(true);
                    }
                }
                ctx.prefix = prefix;
                ctx.kind = kind;
                ctx.object = Some(object);
                return self.serve_hot_hit(session, ctx).await;
            }
            Decision::License { content_id, token } => {
                ctx.client_ip = viewer_ip(session, &self.trusted_proxies);
                let span = ctx.span.clone();
                match &self.licenses {
                    Some(l) => {
                        l.answer(session, &content_id, &token, self.grants.as_deref(), &cors)
                            .instrument(span)
                            .await?;
                    }
                    None => {
                        let body = ErrorBody::new("license_unavailable", "no license service");
                        let status = StatusCode::SERVICE_UNAVAILABLE;
                        reply::send_json(session, status, &body, &cors).await?;
                    }
                }
            }
            Decision::Grant(request) => {
                if let Some(grants) = &self.grants {
                    let span = ctx.span.clone();
                    grants
                        .answer(
                            session,
                            &request,
                            viewer_ip(session, &self.trusted_proxies),
                            &cors,
                            self.cors.cross_site_cookie(),
                        )
                        .instrument(span)
                        .await?;
                }
            }
        }
        Ok(true)
    }

    /// Gated objects go through the cache (GET and HEAD; HEAD is fetched upstream as GET).
    fn request_cache_filter(&self, session: &mut Session, ctx: &mut EdgeCtx) -> Result<()> {
        if ctx.object.is_some()
            && let Some(cache) = &self.cache
        {
            cache.enable(session);
        }
        Ok(())
    }

    /// Content id + path: never the token, so every viewer shares one copy.
    fn cache_key_callback(&self, _session: &Session, ctx: &mut EdgeCtx) -> Result<CacheKey> {
        match &ctx.object {
            Some(o) => Ok(upstream_mod::cache_key(o.content_id(), o.path())),
            None => Error::e_explain(ErrorType::InternalError, "no object for cache key"),
        }
    }

    /// Notes which tier a hit came from, for `x-cache`.
    async fn cache_hit_filter(
        &self,
        _session: &mut Session,
        _meta: &CacheMeta,
        hit_handler: &mut HitHandler,
        _is_fresh: bool,
        ctx: &mut EdgeCtx,
    ) -> Result<Option<ForcedFreshness>> {
        ctx.tier = hit_handler.as_any().downcast_ref::<Hit>().map(Hit::tier);
        Ok(None)
    }

    /// Picks the upstream of a gated request: a parent edge chosen by consistent hashing on
    /// the cache key when parents are configured (and reachable), else origin.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut EdgeCtx,
    ) -> Result<Box<HttpPeer>> {
        let Some(object) = &ctx.object else {
            // request_filter answers every request that is not a gated object.
            return Error::e_explain(ErrorType::InternalError, "no object for upstream");
        };
        if let Some(parents) = self.origin.parents()
            && !ctx.parent_failed
        {
            let key = upstream_mod::cache_key(object.content_id(), object.path());
            if let Some(peer) = parents.pick(key.primary_key()) {
                ctx.via_parent = true;
                return Ok(peer);
            }
        }
        ctx.via_parent = false;
        Ok(self.origin.peer())
    }

    /// A parent edge that cannot be reached is skipped: the request is retried at origin.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut EdgeCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if ctx.via_parent && !ctx.parent_failed {
            warn!(
                parent: &ctx.span,
                request_id = ctx.request_id,
                trace_id = ctx.trace.as_ref().map(|t| tracing::field::display(t.trace_id_hex())),
                error = %e,
                "parent edge unreachable: going to origin"
            );
            ctx.parent_failed = true;
            e.set_retry(true);
        }
        e
    }

    /// Rewrites the request for origin: `/v/{id}/{path}`, origin's `Host`, no token, no
    /// credentials, no query.
    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut EdgeCtx,
    ) -> Result<()> {
        match &ctx.object {
            Some(object) if ctx.via_parent => {
                self.metrics.origin_fetch();
                self.origin
                    .rewrite_for_parent(upstream_request, object, ctx.client_ip)?;
            }
            Some(object) => {
                self.metrics.origin_fetch();
                self.origin.rewrite(upstream_request, object)?;
            }
            None => {
                return Error::e_explain(
                    ErrorType::InternalError,
                    "no object for upstream request",
                );
            }
        }
        if let Some(trace) = &ctx.trace {
            upstream_request.insert_header(TRACEPARENT, trace.header())?;
        }
        Ok(())
    }

    /// RFC 9111 freshness from origin's headers, stale windows bounded by `[cache]`.
    fn response_cache_filter(
        &self,
        _session: &Session,
        resp: &ResponseHeader,
        ctx: &mut EdgeCtx,
    ) -> Result<RespCacheable> {
        match &self.cache {
            Some(cache) => Ok(cache.cacheable(resp, ctx.kind)),
            None => Ok(RespCacheable::Uncacheable(
                pingora::cache::NoCacheReason::Custom("cache disabled"),
            )),
        }
    }

    /// Stale-if-error for any object when upstream fails; stale-while-revalidate only for
    /// manifests (segments are immutable).
    fn should_serve_stale(
        &self,
        _session: &mut Session,
        ctx: &mut EdgeCtx,
        error: Option<&Error>,
    ) -> bool {
        match error {
            None => ctx.kind == ObjectKind::Manifest,
            Some(e) => *e.esource() == ErrorSource::Upstream,
        }
    }

    /// Marks object responses with the tier that served them (`x-cache`). Origin's
    /// `Cache-Control`, `ETag` and `Content-Range` are passed through as they are.
    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut EdgeCtx,
    ) -> Result<()> {
        if ctx.object.is_some() {
            let label = if ctx.hot_hit {
                "HIT-L1"
            } else {
                edge_cache::label(session.cache.phase(), ctx.tier)
            };
            ctx.x_cache = Some(label);
            resp.insert_header("x-cache", label)?;
            for (name, value) in &ctx.cors {
                resp.insert_header(name.clone(), value.as_str())?;
            }
            // Manifests: absolute URIs are rewritten per response to carry this viewer's
            // token (the cached copy stays token-free); the length changes, so it is dropped.
            // A manifest version already seen to hold none is sent as it is.
            // (A hot hit checked its version just before: known clean.)
            if resp.status == StatusCode::OK
                && !ctx.hot_hit
                && let (Some(mode), Some(object)) = (ctx.prefix, &ctx.object)
                && let Some(kind) = ManifestKind::from_path(object.path())
            {
                let version = resp
                    .headers
                    .get(header::ETAG)
                    .and_then(|e| e.to_str().ok())
                    .map(|etag| self.manifest_versions.of(object, etag));
                match version {
                    Some(v) if self.clean_manifests.get(&v) == Some(true) => {}
                    version => {
                        let Some(prefix) = mode.prefix(session.req_header(), object.content_id())
                        else {
                            // The request path was parsed at the gate; it cannot fail now.
                            return Error::e_explain(
                                ErrorType::InternalError,
                                "manifest prefix: the gated path no longer parses",
                            );
                        };
                        // Chunked, not close-delimited: the connection stays reusable.
                        resp.remove_header(&header::CONTENT_LENGTH);
                        resp.remove_header(&header::ACCEPT_RANGES);
                        resp.insert_header(header::TRANSFER_ENCODING, "chunked")?;
                        ctx.rewriter =
                            Some(ManifestRewriter::new(kind, object.content_id(), &prefix));
                        ctx.clean_probe = version.map(|v| (v, Vec::new(), Vec::new()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Manifests are rewritten, so byte ranges of them cannot be honoured: they are answered
    /// whole. Other objects get single and multi-range answers.
    fn range_header_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut EdgeCtx,
    ) -> pingora::proxy::RangeType {
        if ctx.prefix.is_some() {
            return pingora::proxy::RangeType::None;
        }
        // A range answered on a miss (the response streams from origin while the cache fills)
        // leaves Pingora 0.9 stuck: the next request of that HTTP/1.1 connection is never read
        // and the object's cache lock dangles (and a connection closed instead makes the
        // object uncacheable). A miss is therefore answered whole, 200 — RFC 9110 §14.2 lets a
        // server ignore Range — and ranges are served from the cache once it holds the object.
        let from_origin = matches!(
            session.cache.phase(),
            pingora::cache::CachePhase::Miss | pingora::cache::CachePhase::Expired
        );
        if from_origin {
            return pingora::proxy::RangeType::None;
        }
        crate::ranges::serve(session.req_header(), resp)
    }

    /// Streams a manifest through its rewriter (a no-op copy when it has no absolute URIs).
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut EdgeCtx,
    ) -> Result<Option<std::time::Duration>> {
        let Some(rw) = ctx.rewriter.as_mut() else {
            return Ok(None);
        };
        let mut out = bytes::BytesMut::new();
        if let Some(chunk) = body.as_ref() {
            rw.push(chunk, &mut out);
        }
        if end_of_stream {
            rw.finish(&mut out);
            ctx.rewriter = None;
        }
        if let Some((_, input, output)) = ctx.clean_probe.as_mut() {
            input.extend_from_slice(body.as_deref().unwrap_or_default());
            output.extend_from_slice(&out);
            if end_of_stream && let Some((version, input, output)) = ctx.clean_probe.take() {
                self.clean_manifests.insert(version, input == output);
            }
        }
        *body = if out.is_empty() && !end_of_stream {
            None
        } else {
            Some(out.freeze())
        };
        Ok(None)
    }

    /// Answers a request that failed after the gate. Pingora's mapping is kept (upstream 502,
    /// downstream 400, internal 500) except that upstream timeouts answer 504, and the body is
    /// our JSON error.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut EdgeCtx,
    ) -> FailToProxy {
        let code = match (e.etype(), e.esource()) {
            (ErrorType::HTTPStatus(code), _) => *code,
            (
                ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout,
                ErrorSource::Upstream,
            ) => 504,
            (_, ErrorSource::Upstream) => 502,
            (
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed,
                ErrorSource::Downstream,
            ) => 0, // the client is gone
            (_, ErrorSource::Downstream) => 400,
            (_, ErrorSource::Internal | ErrorSource::Unset) => 500,
        };
        if code > 0 {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
            let (error, message) = match code {
                502 => ("bad_gateway", "origin is unreachable"),
                504 => ("gateway_timeout", "origin did not answer in time"),
                400..=499 => ("bad_request", "malformed request"),
                _ => ("internal", "internal error"),
            };
            let body = reply::to_json(&ErrorBody::new(error, message));
            let head = session.req_header().method == Method::HEAD;
            let written = match reply::json_header(status, body.len(), &cors::as_pairs(&ctx.cors)) {
                Ok(resp) => {
                    let body = if head { bytes::Bytes::new() } else { body };
                    session
                        .as_downstream_mut()
                        .write_error_response(resp, body)
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(err) = written {
                debug!(parent: &ctx.span, error = %err, "cannot send error response");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// Pingora's own error line is replaced by the one in [`Self::logging`], which picks a level
    /// by whose fault it was.
    fn suppress_error_log(&self, _session: &Session, _ctx: &EdgeCtx, _error: &Error) -> bool {
        true
    }

    /// Runs once per request, after the response or on a fatal error: metrics and the log line.
    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut EdgeCtx) {
        let status = session.response_written().map(|r| r.status);
        let elapsed = ctx.started.elapsed();
        self.metrics.observe_request(
            status.as_ref().map_or("000", StatusCode::as_str),
            ctx.kind,
            elapsed.as_secs_f64(),
            session.body_bytes_sent(),
        );
        if let Some(label) = ctx.x_cache {
            self.metrics.cache_outcome(label);
            if session.cache.lock_duration().is_some() {
                self.metrics.cache_coalesced();
            }
        }
        if let Some(cache) = &self.cache {
            let (bytes, objects) = cache.storage().l1_size();
            self.metrics.cache_size(bytes, objects);
        }
        let status = status.map_or(0, |s| s.as_u16());
        let ms = elapsed.as_secs_f64() * 1000.0;
        let content_id = ctx.object.as_ref().map(ObjectRef::content_id);
        let path = ctx.object.as_ref().map(ObjectRef::path);
        let x_cache = ctx.x_cache;
        if let Some(access) = &self.access_log
            && access.wants(ctx.request_id, status)
        {
            let client = ctx
                .client_ip
                .or_else(|| viewer_ip(session, &self.trusted_proxies))
                .map(|ip| ip.to_string());
            // The path is the object's (content id + path): never the URL, which holds tokens.
            info!(
                target: ACCESS_TARGET,
                request_id = ctx.request_id,
                method = %session.req_header().method,
                route = ctx.route,
                status,
                bytes = session.body_bytes_sent(),
                x_cache,
                ms,
                client,
                content_id,
                path,
                trace_id = ctx.trace.as_ref().map(|t| tracing::field::display(t.trace_id_hex())),
                "access"
            );
        }
        let trace_id = ctx
            .trace
            .as_ref()
            .map(|t| tracing::field::display(t.trace_id_hex()));
        let (request_id, route) = (ctx.request_id, ctx.route);
        match e {
            Some(e) if *e.esource() == ErrorSource::Upstream => {
                self.metrics.upstream_error();
                warn!(parent: &ctx.span, request_id, route, trace_id, status, ms, content_id, path,
                    error = %e, "upstream failed");
            }
            Some(e)
                if *e.etype() == ErrorType::WriteTimedout
                    && *e.esource() != ErrorSource::Upstream =>
            {
                // A client reading slower than `server.min-send-rate`: dropped.
                self.metrics.shed("slow_reader");
                debug!(parent: &ctx.span, request_id, route, trace_id, status, ms, content_id, path,
                    error = %e, "client too slow: dropped");
            }
            Some(e) if *e.esource() == ErrorSource::Downstream => {
                debug!(parent: &ctx.span, request_id, route, trace_id, status, ms, content_id, path,
                    error = %e, "client error");
            }
            Some(e) => {
                error!(parent: &ctx.span, request_id, route, trace_id, status, ms, content_id, path,
                    error = %e, "request failed");
            }
            None => {
                debug!(parent: &ctx.span, request_id, route, trace_id, status, ms, content_id, path,
                    x_cache, "request done")
            }
        }
    }
}

/// A GET or HEAD the cache answers whole and unconditionally: no `Range`, no validators.
fn plain_get(req: &RequestHeader) -> bool {
    (req.method == Method::GET || req.method == Method::HEAD)
        && ![
            header::RANGE,
            header::IF_RANGE,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_MATCH,
            header::IF_UNMODIFIED_SINCE,
        ]
        .iter()
        .any(|h| req.headers.contains_key(h))
}

/// A manifest version (`{id}/{path}` + ETag) as 128 bits: two SipHash-1-3 digests under keys
/// drawn at start-up, so no allocation per hot manifest hit and no collision a client can aim
/// at (a chance collision, about 2^-128 per pair, could only skip a token rewrite).
type ManifestVersion = u128;

/// The two keyed hashers behind [`ManifestVersion`].
#[derive(Debug, Default)]
struct ManifestVersions(std::hash::RandomState, std::hash::RandomState);

impl ManifestVersions {
    fn of(&self, object: &ObjectRef, etag: &str) -> ManifestVersion {
        use std::hash::BuildHasher;
        let parts = (object.content_id(), object.path(), etag);
        (u128::from(self.0.hash_one(parts)) << 64) | u128::from(self.1.hash_one(parts))
    }
}

/// The playback token a player path carries: in the path, or the content's cookie (`""` when
/// there is none, which the gate refuses).
fn player_token<'a>(req: &'a pingora::http::RequestHeader, player: &PlayerPath<'a>) -> &'a str {
    match player {
        PlayerPath::Token(g) => g.token,
        PlayerPath::Cookie(g) => grant::play_cookie_value(req, g.content_id).unwrap_or(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(path: &str) -> ObjectRef {
        ObjectRef::from_gated(&token_gate::GatedPath::parse(path).unwrap().unwrap())
    }

    #[test]
    fn a_manifest_version_is_its_object_and_etag_and_nothing_else() {
        let versions = ManifestVersions::default();
        let master = object("/p/TOKEN/c1/master.m3u8");
        let v = versions.of(&master, "\"e1\"");
        // The token is not part of it; the same object and ETag give the same key.
        assert_eq!(versions.of(&object("/p/OTHER/c1/master.m3u8"), "\"e1\""), v);
        // Another ETag, path or content is another version.
        assert_ne!(versions.of(&master, "\"e2\""), v);
        assert_ne!(
            versions.of(&object("/p/TOKEN/c1/720p/index.m3u8"), "\"e1\""),
            v
        );
        assert_ne!(versions.of(&object("/p/TOKEN/c2/master.m3u8"), "\"e1\""), v);
        // Field boundaries count: ("c1", "ab.m3u8") is not ("c1a", "b.m3u8").
        assert_ne!(
            versions.of(&object("/p/TOKEN/c1/ab.m3u8"), "x"),
            versions.of(&object("/p/TOKEN/c1a/b.m3u8"), "x")
        );
        // Keys are drawn per process: another edge's keys give other values.
        assert_ne!(ManifestVersions::default().of(&master, "\"e1\""), v);
    }
}
