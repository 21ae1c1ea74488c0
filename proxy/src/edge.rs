//! The edge's pingora [`ProxyHttp`] implementation: routing, the token gate, the upstream
//! rewrite, and per-request accounting, with the per-request state in [`EdgeCtx`].
//!
//! ```text
//! player ──▶ request_filter ─┬─ /healthz, /readyz, 404, 405 ─────────────▶ JSON answer
//!                            ├─ bad path (400) / bad token (403) ────────▶ JSON answer
//!                            └─ /p/{token}/{id}/{path}, token ok
//!                                  │   (cache lookup: a later issue)
//!                                  ▼
//!                            upstream_peer ─▶ upstream_request_filter ─▶ origin /v/{id}/{path}
//!                                                                            │
//! player ◀── response_filter (x-cache) ◀─────────────────────────────────────┘
//!            logging: metrics + one access line, for every request
//! ```

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use async_trait::async_trait;
use http::{Method, StatusCode, header};
use pingora::{
    Error, ErrorSource, ErrorType, Result,
    http::{RequestHeader, ResponseHeader},
    proxy::{FailToProxy, ProxyHttp, Session},
    upstreams::peer::HttpPeer,
};
use streamgate_auth::TokenError;
use streamgate_config::contract::is_valid_content_id;
use tracing::{Instrument, Span, debug, error, info_span, warn};

use crate::{
    grant::{self, Grants},
    health::{HEALTHY, Readiness},
    metrics::{EdgeMetrics, REASON_METHOD, REASON_NOT_FOUND},
    reply::{self, ErrorBody},
    token_gate::{self, GatedPath, ObjectKind, PathError},
    tokens::TokenPolicy,
    upstream::{ObjectRef, Origin},
};

/// Path prefix of the playback-grant endpoint.
const GRANT_PREFIX: &str = "/v1/playback/";

/// Methods the gated route answers.
const GATED_ALLOW: &str = "GET, HEAD, OPTIONS";
/// Methods the health routes answer.
const HEALTH_ALLOW: &str = "GET, HEAD";

/// Which tier served a response, sent as `x-cache` (DESIGN.md, Interfaces). Only `MISS`
/// exists until the cache tiers land.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CacheStatus {
    /// Fetched from upstream.
    Miss,
}

impl CacheStatus {
    fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Miss => "MISS",
        }
    }
}

/// What `request_filter` decided, computed from a shared borrow of the request.
enum Decision {
    Healthz,
    Readyz,
    Preflight,
    NotFound,
    MethodNotAllowed(&'static str),
    BadPath(PathError),
    Forbidden(TokenError),
    /// Token accepted: the object, its kind and the token's subject hash.
    Proxy(ObjectRef, ObjectKind, [u8; 8]),
    Grant(String, Option<&'static str>),
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
    /// Which tier served the object.
    cache: CacheStatus,
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
    /// Source of request ids (unique within the process; enough to tie log lines together).
    next_request_id: AtomicU64,
}

impl Edge {
    pub(crate) fn new(
        tokens: Arc<TokenPolicy>,
        origin: Origin,
        metrics: Arc<EdgeMetrics>,
        readiness: Readiness,
        grants: Option<Arc<Grants>>,
    ) -> Self {
        Self {
            tokens,
            origin,
            metrics,
            readiness,
            grants,
            next_request_id: AtomicU64::new(1),
        }
    }

    fn decide(&self, session: &Session) -> Decision {
        let req = session.req_header();
        let path = req.uri.path();
        let read_only = req.method == Method::GET || req.method == Method::HEAD;
        match path {
            "/healthz" | "/readyz" if !read_only => Decision::MethodNotAllowed(HEALTH_ALLOW),
            "/healthz" => Decision::Healthz,
            "/readyz" => Decision::Readyz,
            p if p.starts_with(GRANT_PREFIX) && self.grants.is_some() => {
                let id = &p[GRANT_PREFIX.len()..];
                if req.method != Method::GET {
                    return Decision::MethodNotAllowed(HEALTH_ALLOW);
                }
                if !is_valid_content_id(id) {
                    return Decision::BadPath(PathError::BadContentId);
                }
                let redirect = match req
                    .uri
                    .query()
                    .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("redirect=")))
                {
                    Some("hls") => Some("hls"),
                    Some("dash") => Some("dash"),
                    _ => None,
                };
                Decision::Grant(id.to_owned(), redirect)
            }
            _ => match GatedPath::parse(path) {
                None => Decision::NotFound,
                Some(_) if req.method == Method::OPTIONS => Decision::Preflight,
                Some(_) if !read_only => Decision::MethodNotAllowed(GATED_ALLOW),
                Some(Err(e)) => Decision::BadPath(e),
                Some(Ok(g)) => self.gate(session, &g),
            },
        }
    }

    fn gate(&self, session: &Session, g: &GatedPath<'_>) -> Decision {
        let client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        match token_gate::check_token(self.tokens.keys(), g.token, g.content_id, client_ip) {
            Ok(v) => {
                debug!(
                    content_id = g.content_id,
                    subject = %hex::encode(v.subject_hash),
                    "token accepted"
                );
                Decision::Proxy(ObjectRef::from_gated(g), g.kind(), v.subject_hash)
            }
            Err(e) => {
                debug!(
                    content_id = g.content_id,
                    token = %token_gate::token_fingerprint(g.token),
                    reason = e.code(),
                    "token refused"
                );
                Decision::Forbidden(e)
            }
        }
    }
}

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Edge {
    /// Answers `GET /v1/playback/{id}`: the grant JSON, a 302 to a tokenized manifest with
    /// `?redirect=hls|dash`, or the refusal as JSON.
    async fn grant(
        &self,
        session: &mut Session,
        content_id: &str,
        redirect: Option<&'static str>,
    ) -> Result<()> {
        let Some(grants) = self.grants.clone() else {
            return Ok(());
        };
        let req = session.req_header();
        let token = grant::session_token(req, grants.cookie_name()).map(str::to_owned);
        let client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        match grants
            .grant(content_id, token.as_deref(), client_ip, now)
            .await
        {
            Ok(g) => {
                self.metrics.grant(grant::tier_label(g.tier));
                let body = grant::GrantBody::new(content_id, &g.minted);
                match redirect {
                    Some(kind) => {
                        let location = if kind == "hls" {
                            body.hls.clone()
                        } else {
                            body.dash.clone()
                        };
                        let mut resp = reply::empty_header(StatusCode::FOUND, &[])?;
                        resp.insert_header(header::LOCATION, location)?;
                        resp.insert_header(header::CONTENT_LENGTH, "0")?;
                        session.write_response_header(Box::new(resp), true).await
                    }
                    None => reply::send_json(session, StatusCode::OK, &body, &[]).await,
                }
            }
            Err(e) => {
                let (status, code) = e.status_code();
                self.metrics.grant(code);
                debug!(content_id, code, "grant refused");
                let message = e.to_string();
                let body = ErrorBody::new(code, &message);
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                reply::send_json(session, status, &body, &[]).await
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
            cache: CacheStatus::Miss,
        }
    }

    /// Runs first for every request. Answers health checks, refuses bad routes, paths and
    /// tokens itself (`Ok(true)`: response sent), and lets a gated request with a valid token
    /// continue to the upstream phases (`Ok(false)`) with its object recorded in `ctx`.
    async fn request_filter(&self, session: &mut Session, ctx: &mut EdgeCtx) -> Result<bool> {
        let req = session.req_header();
        let route = match req.uri.path() {
            "/healthz" => "healthz",
            "/readyz" => "readyz",
            p if p.starts_with(token_gate::GATED_PREFIX) => "object",
            p if p.starts_with(GRANT_PREFIX) => "grant",
            _ => "other",
        };
        ctx.span = info_span!(
            "request",
            id = self.next_request_id.fetch_add(1, Ordering::Relaxed),
            method = %req.method,
            route,
        );
        let decision = ctx.span.in_scope(|| self.decide(session));
        match decision {
            Decision::Healthz => reply::send_json(session, StatusCode::OK, &HEALTHY, &[]).await?,
            Decision::Readyz => {
                let (status, body) = match self.readiness.check(session.is_process_shutting_down())
                {
                    Ok(body) => (StatusCode::OK, body),
                    Err(body) => (StatusCode::SERVICE_UNAVAILABLE, body),
                };
                reply::send_json(session, status, &body, &[]).await?;
            }
            Decision::Preflight => {
                // CORS preflight handling arrives with the CORS issue; until then say what
                // the route allows.
                let resp =
                    reply::empty_header(StatusCode::NO_CONTENT, &[(header::ALLOW, GATED_ALLOW)])?;
                session.write_response_header(Box::new(resp), true).await?;
            }
            Decision::NotFound => {
                self.metrics.bad_request(REASON_NOT_FOUND);
                let body = ErrorBody::new("not_found", "no such route");
                reply::send_json(session, StatusCode::NOT_FOUND, &body, &[]).await?;
            }
            Decision::MethodNotAllowed(allow) => {
                self.metrics.bad_request(REASON_METHOD);
                let body = ErrorBody::new("method_not_allowed", "method not allowed on this route");
                let extra = [(header::ALLOW, allow)];
                reply::send_json(session, StatusCode::METHOD_NOT_ALLOWED, &body, &extra).await?;
            }
            Decision::BadPath(e) => {
                self.metrics.bad_request(e.code());
                let body = ErrorBody::new("bad_request", e.message()).with_reason(e.code());
                reply::send_json(session, StatusCode::BAD_REQUEST, &body, &[]).await?;
            }
            Decision::Forbidden(e) => {
                self.metrics.token_failure(e);
                let message = e.to_string();
                let body = ErrorBody::new("forbidden", &message).with_reason(e.code());
                reply::send_json(session, StatusCode::FORBIDDEN, &body, &[]).await?;
            }
            Decision::Proxy(object, kind, subject_hash) => {
                // Playlists re-check the viewer's entitlement (cached): a viewer who sold the
                // NFT loses the stream within the cache TTL even with a live token. Segments
                // rely on the token alone.
                if kind == ObjectKind::Manifest
                    && let Some(grants) = self.grants.clone()
                {
                    let now = unix_now();
                    let recheck = grants
                        .recheck(object.content_id(), &subject_hash, now)
                        .instrument(ctx.span.clone())
                        .await;
                    if let Err(e) = recheck {
                        let (status, code) = e.status_code();
                        self.metrics.grant(&format!("recheck_{code}"));
                        let message = e.to_string();
                        let body = ErrorBody::new(code, &message);
                        let status = StatusCode::from_u16(status)
                            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                        reply::send_json(session, status, &body, &[]).await?;
                        return Ok(true);
                    }
                }
                ctx.kind = kind;
                ctx.object = Some(object);
                return Ok(false);
            }
            Decision::Grant(id, redirect) => {
                let span = ctx.span.clone();
                self.grant(session, &id, redirect).instrument(span).await?;
            }
        }
        Ok(true)
    }

    /// Picks the upstream of a gated request: the configured origin (parent edges chosen by
    /// consistent hashing on the cache key come later).
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut EdgeCtx,
    ) -> Result<Box<HttpPeer>> {
        if ctx.object.is_none() {
            // request_filter answers every request that is not a gated object.
            return Error::e_explain(ErrorType::InternalError, "no object for upstream");
        }
        Ok(self.origin.peer())
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
            Some(object) => self.origin.rewrite(upstream_request, object),
            None => Error::e_explain(ErrorType::InternalError, "no object for upstream request"),
        }
    }

    /// Marks object responses with the tier that served them. Origin's `Cache-Control`,
    /// `ETag` and `Content-Range` are passed through as they are.
    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut EdgeCtx,
    ) -> Result<()> {
        if ctx.object.is_some() {
            resp.insert_header("x-cache", ctx.cache.as_str())?;
        }
        Ok(())
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
            let written = match reply::json_header(status, body.len(), &[]) {
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
        let status = status.map_or(0, |s| s.as_u16());
        let ms = elapsed.as_secs_f64() * 1000.0;
        let content_id = ctx.object.as_ref().map(ObjectRef::content_id);
        let path = ctx.object.as_ref().map(ObjectRef::path);
        match e {
            Some(e) if *e.esource() == ErrorSource::Upstream => {
                self.metrics.upstream_error();
                warn!(parent: &ctx.span, status, ms, content_id, path, error = %e, "upstream failed");
            }
            Some(e) if *e.esource() == ErrorSource::Downstream => {
                debug!(parent: &ctx.span, status, ms, content_id, path, error = %e, "client error");
            }
            Some(e) => {
                error!(parent: &ctx.span, status, ms, content_id, path, error = %e, "request failed");
            }
            None => debug!(parent: &ctx.span, status, ms, content_id, path, "request done"),
        }
    }
}
