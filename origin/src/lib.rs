//! StreamGate origin: the API creators and edges talk to.
//!
//! # Layout
//! - [`app`] builds the axum `Router`; [`run`] binds it and starts the background consumers.
//! - `contents`: content records (`POST /v1/contents`, `GET /v1/contents/{id}`), kept by
//!   `catalog` as JSON in S3 (`catalog/{id}.json`), origin being the single writer.
//! - `tus` + `uploads`: tus 1.0 resumable uploads streamed into S3 multipart uploads with
//!   memory bounded by the part size; `lock` serialises writers of one upload.
//! - `jobs`: probe a finished upload (`probe`, ffprobe), queue a job on `sg:jobs`, and apply
//!   the transcoders' `sg:events` to the catalog.
//! - `media`: `GET /v/{id}/{path}` serves packaged files to edges (Range, ETag, Cache-Control),
//!   on the internal listener only ([`internal_app`]), to callers presenting an edge key.
//! - `signin`: wallet sign-in (SIWE, SIWS) with single-use `nonce`s and `ratelimit`s, session
//!   JWTs and the JWKS, logout; its `Authed` extractor guards creator routes (owner checks).
//!   `contract_wallet` asks the chain (EIP-1271, EIP-6492, alloy over `[auth.evm-rpc]`) when a
//!   SIWE signature is not the address's own.
//! - `webhooks`: creators' endpoints (`/v1/webhooks`), the events origin emits about their
//!   contents, and their signed delivery (Standard Webhooks) with retries and a dead letter.
//! - `metrics`, `error`: Prometheus metrics and the JSON error type.
//! - `fuzz` (hidden): tus header and `Range` parsing with their invariants, for `fuzz/`.
//!
//! ```text
//!  creator ──POST /v1/contents──► catalog (S3)
//!          ──tus /v1/uploads────► uploads ──multipart──► S3 uploads/{id}/source
//!                                    └─► probe ─► XADD sg:jobs ─► transcoders
//!  transcoders ─► XADD sg:events ─► jobs::consume_events ─► catalog
//!  edge ──GET /v/{id}/{path}──► (internal listener, edge key) media ──► S3 media/{id}/…
//! ```
//!
//! Two listeners: `server.listen` (public: sign-in, contents, tus, metrics) never serves media;
//! `server.internal-listen` (edges only) serves `/v/…` and the content records edges read, to
//! requests carrying one of `server.edge-keys` in `x-streamgate-edge-key`.
//!
//! Run: `streamgate-origin --config config/assets/origin.toml`.

mod captions;
mod catalog;
mod contents;
mod contract_wallet;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod index;
mod jobs;
mod lock;
mod media;
mod metrics;
mod nonce;
mod probe;
mod ratelimit;
mod signin;
mod tls;
mod tus;
mod uploads;
mod web;
mod webhooks;

use std::{future::IntoFuture, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    middleware,
    response::IntoResponse,
    routing::{get, post},
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::json;
use streamgate_config::OriginConfig;
use tokio::sync::watch;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

pub use catalog::{ContentRecord, Status};
pub use error::AppError;
pub use tls::TlsError;

/// Why the origin could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Redis URL rejected.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Bucket missing and could not be created.
    #[error("s3: {0}")]
    S3(#[from] streamgate_storage::StorageError),
    /// The listener could not be bound or served.
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
    /// Sign-in rules or session keys are unusable.
    #[error("auth: {0}")]
    Auth(String),
    /// `server.tls` cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// `[web]`: the app cannot be loaded.
    #[error("web: {0}")]
    Web(String),
}

/// Shared state of every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    cfg: Arc<OriginConfig>,
    s3: aws_sdk_s3::Client,
    redis: ConnectionManager,
    catalog: catalog::Catalog,
    uploads: uploads::UploadStore,
    auth: Arc<signin::Auth>,
    edge_keys: streamgate_auth::EdgeKeys,
    /// The web app, when `[web]` is configured.
    web: Option<Arc<web::WebApp>>,
}

impl AppState {
    /// Connects the clients (Redis lazily: origin starts, and answers 503, while Redis is down).
    pub fn new(cfg: OriginConfig) -> Result<Self, StartError> {
        let s3 = streamgate_storage::client(&cfg.s3);
        let redis = redis_manager(&cfg, Some(cfg.redis.command_timeout))?;
        let catalog = catalog::Catalog::new(s3.clone(), cfg.s3.bucket.clone(), redis.clone());
        let uploads = uploads::UploadStore::new(
            s3.clone(),
            cfg.s3.bucket.clone(),
            redis.clone(),
            cfg.uploads.clone(),
        );
        let auth = Arc::new(signin::Auth::from_conf(&cfg.auth)?);
        let edge_keys = streamgate_auth::EdgeKeys::new(cfg.edge_keys.iter().map(|k| k.expose()));
        let web = cfg.web.as_ref().map(web::WebApp::load).transpose()?;
        Ok(Self {
            edge_keys,
            web,
            cfg: Arc::new(cfg),
            s3,
            redis,
            catalog,
            uploads,
            auth,
        })
    }
}

fn redis_manager(
    cfg: &OriginConfig,
    timeout: Option<Duration>,
) -> Result<ConnectionManager, StartError> {
    let client = redis::Client::open(cfg.redis.url.as_str())?;
    let mcfg = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(cfg.redis.command_timeout))
        .set_response_timeout(timeout)
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(2));
    Ok(ConnectionManager::new_lazy_with_config(client, mcfg)?)
}

/// The public HTTP API (`server.listen`): everything but packaged media.
pub fn app(state: AppState) -> Router {
    let json_limit = state.cfg.server.max_json_body as usize;
    let uploads = Router::new()
        .route("/v1/uploads", post(tus::create).options(tus::options))
        .route(
            "/v1/uploads/{id}",
            axum::routing::head(tus::head)
                .patch(tus::patch)
                .delete(tus::delete)
                .options(tus::options),
        )
        // tus bodies are streamed; their size is checked against Upload-Length instead.
        .layer(DefaultBodyLimit::disable());
    let captions = Router::new()
        .route(
            "/v1/contents/{id}/captions/{lang}",
            axum::routing::put(captions::put).delete(captions::delete),
        )
        .layer(DefaultBodyLimit::max(captions::MAX_BYTES));
    let routes = Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::handler))
        .route("/v1/auth/nonce", post(signin::issue_nonce))
        .route("/v1/auth/siwe", post(signin::siwe))
        .route("/v1/auth/siws", post(signin::siws))
        .route("/v1/auth/logout", post(signin::logout))
        .route("/.well-known/jwks.json", get(signin::jwks))
        .route("/v1/contents", post(contents::create).get(contents::list))
        .route(
            "/v1/contents/{id}",
            get(contents::get)
                .patch(contents::patch)
                .delete(contents::delete),
        )
        .route(
            "/v1/contents/{id}/policy",
            axum::routing::put(contents::put_policy),
        )
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route("/v1/webhooks/{id}", axum::routing::delete(webhooks::delete))
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .layer(DefaultBodyLimit::max(json_limit));
    let mut routes = routes.merge(uploads).merge(captions);
    if state.web.is_some() {
        routes = routes
            .route("/", get(web::page))
            .route("/watch/{id}", get(web::page))
            .route("/assets/{file}", get(web::asset));
    }
    served(routes, state)
}

/// What both listeners share: the JSON 404, metrics, request ids and tracing.
fn served(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(|| async { AppError::NotFound("no such route") })
        .layer(middleware::from_fn(metrics::track))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// The span of one request: method, path, and the trace of a W3C `traceparent` (edges send
/// theirs, so origin's spans and lines join the edge's trace). The query is left out: it is not
/// ours to log.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let parent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(streamgate_telemetry::parse_traceparent);
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        trace_id = parent.map(|p| tracing::field::display(format!("{:032x}", p.trace_id))),
    );
    if let Some(p) = parent {
        streamgate_telemetry::continue_trace(&span, p);
    }
    span
}

/// The edges' API (`server.internal-listen`): packaged files, the content records and the
/// wrapped content keys edges read, each request carrying one of `server.edge-keys`; `/healthz` and `/readyz` open.
pub fn internal_app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/v/{id}/{*path}", get(media::get))
        .route("/v1/contents/{id}", get(contents::get))
        .route("/v1/contents/{id}/key", get(contents::wrapped_key))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_edge_key,
        ))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz));
    served(routes, state)
}

/// Refuses internal requests without a valid edge key (when keys are configured; without keys
/// the listener is loopback-only, which the config loader enforces).
async fn require_edge_key(
    State(st): State<AppState>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    if !st.edge_keys.is_empty() {
        let presented = req
            .headers()
            .get(streamgate_config::contract::EDGE_KEY_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !st.edge_keys.accepts(presented) {
            return AppError::Unauthorized(
                "edge_key_required",
                "this listener serves edges only: present a valid x-streamgate-edge-key".into(),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// The client address of a request: the TCP peer, or the address a trusted proxy
/// (`server.trusted-proxies`) names in `X-Forwarded-For` / `Forwarded`.
pub(crate) fn client_ip(
    st: &AppState,
    peer: std::net::SocketAddr,
    headers: &axum::http::HeaderMap,
) -> std::net::IpAddr {
    let values = |name| {
        headers
            .get_all(name)
            .into_iter()
            .filter_map(|v| v.to_str().ok())
    };
    st.cfg
        .trusted_proxies
        .client_ip(peer.ip(), values("x-forwarded-for"), values("forwarded"))
}

/// `GET /readyz`: 200 when Redis and the bucket answer.
async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    let mut con = st.redis.clone();
    let redis_ok = redis::cmd("PING")
        .query_async::<String>(&mut con)
        .await
        .is_ok();
    let s3_ok = st
        .s3
        .head_bucket()
        .bucket(&st.cfg.s3.bucket)
        .send()
        .await
        .is_ok();
    let status = if redis_ok && s3_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({"redis": redis_ok, "s3": s3_ok})))
}

/// `streamgate-origin reindex`: rebuilds the content index from the catalog; returns how many
/// contents it holds.
///
/// # Errors
/// Unusable config, Redis or S3 failures.
pub async fn reindex(cfg: OriginConfig) -> Result<usize, StartError> {
    let state = AppState::new(cfg)?;
    state
        .catalog
        .reindex()
        .await
        .map_err(|e| StartError::Io(std::io::Error::other(e.to_string())))
}

/// Runs the origin until SIGINT/SIGTERM: binds the listener, starts the events consumer,
/// serves, then drains in-flight requests.
pub async fn run(cfg: OriginConfig) -> Result<(), StartError> {
    let state = AppState::new(cfg)?;
    if state.cfg.s3.create_bucket {
        streamgate_storage::ensure_bucket(&state.s3, &state.cfg.s3.bucket).await?;
        tracing::info!(bucket = %state.cfg.s3.bucket, "bucket ready");
    }
    let listener = tokio::net::TcpListener::bind(state.cfg.server.listen).await?;
    let internal = tokio::net::TcpListener::bind(state.cfg.server.internal_listen).await?;
    tracing::info!(
        addr = %state.cfg.server.listen,
        internal = %state.cfg.server.internal_listen,
        edge_keys = state.cfg.edge_keys.len(),
        "origin listening"
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    // The events reader blocks in XREADGROUP for up to 5 s: it gets its own connection with a
    // response timeout above that.
    let events_redis = redis_manager(&state.cfg, Some(Duration::from_secs(10)))?;
    let consumer = tokio::spawn(jobs::consume_events(
        state.clone(),
        events_redis,
        stop_rx.clone(),
    ));
    let sweeper = tokio::spawn(tus::sweep_expired(state.clone(), stop_rx.clone()));
    let hooks_redis = redis_manager(&state.cfg, Some(Duration::from_secs(10)))?;
    let hooks = tokio::spawn(webhooks::run(state.clone(), hooks_redis, stop_rx.clone()));
    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let public_app =
        app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let public: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match &state
        .cfg
        .server
        .tls
    {
        Some(t) => {
            let config = tls::server_config(&t.cert.to_string_lossy(), &t.key.to_string_lossy())?;
            tracing::info!(addr = %state.cfg.server.listen, "public listener serves TLS (h2, http/1.1)");
            // `tap_io` gives axum's `ConnectInfo<SocketAddr>` for any listener.
            let tls_listener =
                axum::serve::ListenerExt::tap_io(tls::TlsListener::new(listener, config)?, |_| {});
            Box::pin(
                axum::serve(tls_listener, public_app)
                    .with_graceful_shutdown(stopped(stop_rx.clone()))
                    .into_future(),
            )
        }
        None => Box::pin(
            axum::serve(listener, public_app)
                .with_graceful_shutdown(stopped(stop_rx.clone()))
                .into_future(),
        ),
    };
    let edges = axum::serve(
        internal,
        internal_app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(stopped(stop_rx));
    let served = tokio::try_join!(public, edges.into_future());
    signal.abort();
    let _ = consumer.await;
    let _ = sweeper.await;
    let _ = hooks.await;
    served?;
    tracing::info!("origin stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested; draining");
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
