//! Creators' webhooks: endpoints (`POST/GET/DELETE /v1/webhooks`), the events origin emits
//! about a creator's contents, and their delivery as the Standard Webhooks spec describes
//! (<https://www.standardwebhooks.com/>: `webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`).
//!
//! ```text
//!  catalog change ─► emit ─► XADD sg:wh:events ─► fan-out (group `webhooks`, any origin)
//!                                                   │ per matching endpoint of the owner:
//!                                                   ▼ ZADD NX sg:wh:due {endpoint}/{msg}
//!  delivery loop ─► claim due (Lua: due → due + lease) ─► POST (resolved address pinned)
//!        2xx: done · else: retry at base·2^n (jitter, capped) · after max-attempts: sg:wh:dead
//! ```
//!
//! Delivery is at least once: a message keeps its id (`msg_…`, derived from what caused it, so
//! an event emitted twice has one id) across retries and replicas, and receivers dedupe on
//! `webhook-id`. Every try is logged per endpoint (`GET /v1/webhooks/{id}/deliveries`).
//!
//! Targets: `http(s)` URLs only, no credentials in them. Unless `webhooks.allow-private-targets`
//! is on, a target whose address is loopback, private, link-local, shared (CGNAT),
//! unspecified, multicast or otherwise not public is refused at registration and again at each
//! delivery: the name is resolved once per delivery, the address checked, and the request sent
//! to that very address (no second lookup to rebind), without following redirects.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use rand::Rng;
use redis::{AsyncCommands, aio::ConnectionManager};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use streamgate_config::{WebhooksConfig, contract::keys};
use tokio::sync::watch;

use crate::{
    AppError, AppState, contents::new_id, error::AppResult, metrics::METRICS, now_ms,
    signin::Authed,
};

/// The event types, as `type` in payloads and in endpoint filters.
pub(crate) const EVENT_TYPES: [&str; 5] = [
    "upload.completed",
    "content.ready",
    "content.failed",
    "content.deleted",
    "content.policy_changed",
];
/// Consumer group of the fan-out.
const GROUP: &str = "webhooks";
/// Field of an event entry holding its JSON.
const FIELD: &str = "event";
/// Entries kept in the events stream (approximate trim).
const EVENTS_MAXLEN: usize = 100_000;
/// Tries remembered per endpoint.
const LOG_SIZE: isize = 100;
/// How long a message's payload is kept for its retries.
const MESSAGE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Deliveries tried at once by one origin.
const CONCURRENCY: usize = 16;
/// Signing secrets look like Standard Webhooks' own: `whsec_` + base64 of the key.
const SECRET_PREFIX: &str = "whsec_";

/// A registered endpoint, as stored (with its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Endpoint {
    id: String,
    owner: String,
    url: String,
    events: Vec<String>,
    #[serde(default)]
    description: String,
    secret: String,
    created_at: u64,
}

impl Endpoint {
    /// What the owner sees (never the secret again).
    fn view(&self) -> Value {
        json!({
            "id": self.id,
            "url": self.url,
            "events": self.events,
            "description": self.description,
            "created_at": self.created_at,
        })
    }
}

/// One event waiting in `sg:wh:events`.
#[derive(Debug, Serialize, Deserialize)]
struct Emitted {
    owner: String,
    msg_id: String,
    #[serde(rename = "type")]
    kind: String,
    /// The body POSTed, exactly (it is what is signed).
    body: String,
}

/// A delivery in `sg:wh:due`: `{endpoint}/{message}`.
fn member(endpoint: &str, msg_id: &str) -> String {
    format!("{endpoint}/{msg_id}")
}

/// One try, as the delivery log shows it.
#[derive(Debug, Serialize, Deserialize)]
struct Try {
    webhook_id: String,
    #[serde(rename = "type")]
    kind: String,
    attempt: u32,
    /// `delivered`, `failed` (will be retried), `dead` (given up), `refused` (target not
    /// allowed).
    outcome: &'static str,
    status_code: Option<u16>,
    error: Option<String>,
    at: u64,
    duration_ms: u64,
    next_try_at: Option<u64>,
}

fn redis_err(e: redis::RedisError) -> AppError {
    AppError::Redis(e)
}

fn internal(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("{what}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------------

/// Whether `ip` is a public unicast address (what a webhook may reach by default).
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0 // "this network"
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space (CGNAT)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
                || o[0] >= 240) // reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 (reaches IPv4 inside)
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0)) // IPv4-compatible
        }
    }
}

/// A checked target: the URL, its host name and the address to connect to.
struct Target {
    url: reqwest::Url,
    host: String,
    addr: SocketAddr,
}

/// Parses and resolves a webhook URL, once, and checks the address it resolves to.
async fn resolve_target(cfg: &WebhooksConfig, raw: &str) -> Result<Target, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme {:?} not allowed: use http or https",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not allowed".into());
    }
    let host = url
        .host_str()
        .ok_or("the URL has no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let addrs: Vec<SocketAddr> = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    .map_err(|_| format!("{host} did not resolve in time"))?
    .map_err(|e| format!("{host} does not resolve: {e}"))?
    .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| format!("{host} has no address"))?;
    if !cfg.allow_private_targets
        && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip()))
    {
        return Err(format!(
            "{host} resolves to {}, which is not a public address",
            bad.ip()
        ));
    }
    Ok(Target {
        url,
        host,
        addr: first,
    })
}

// ---------------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------------

/// Body of `POST /v1/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateEndpoint {
    url: String,
    /// Event types to receive; all when absent.
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    description: Option<String>,
}

/// `POST /v1/webhooks` → 201 with the endpoint and its signing secret (shown this once).
pub(crate) async fn create(
    State(app): State<AppState>,
    who: Authed,
    body: Result<Json<CreateEndpoint>, axum::extract::rejection::JsonRejection>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let Json(req) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let events = match req.events {
        None => EVENT_TYPES.iter().map(|s| (*s).to_owned()).collect(),
        Some(list) => {
            if list.is_empty() {
                return Err(AppError::BadRequest(
                    "events: list at least one type, or leave it out for all".into(),
                ));
            }
            let mut out: Vec<String> = Vec::new();
            for (i, e) in list.into_iter().enumerate() {
                if !EVENT_TYPES.contains(&e.as_str()) {
                    return Err(AppError::BadRequest(format!(
                        "events[{i}]: unknown type {e:?}; one of {}",
                        EVENT_TYPES.join(", ")
                    )));
                }
                if !out.contains(&e) {
                    out.push(e);
                }
            }
            out
        }
    };
    let description = req.description.unwrap_or_default();
    if description.chars().count() > 200 {
        return Err(AppError::BadRequest(
            "description: at most 200 characters".into(),
        ));
    }
    if req.url.len() > 2000 {
        return Err(AppError::BadRequest("url: at most 2000 characters".into()));
    }
    if let Err(why) = resolve_target(&app.cfg.webhooks, &req.url).await {
        METRICS.webhook_refused_targets.inc();
        return Err(AppError::BadRequest(format!("url: {why}")));
    }
    let owner_key = keys::webhook_owner(&who.0.sub);
    let mut con = app.redis.clone();
    let count: usize = con.scard(&owner_key).await?;
    if count >= app.cfg.webhooks.max_endpoints {
        return Err(AppError::Conflict(format!(
            "at most {} webhook endpoints per creator; delete one first",
            app.cfg.webhooks.max_endpoints
        )));
    }
    let mut raw = [0u8; 24];
    rand::rng().fill(&mut raw);
    let ep = Endpoint {
        id: format!("ep_{}", new_id(20)),
        owner: who.0.sub.clone(),
        url: req.url,
        events,
        description,
        secret: format!("{SECRET_PREFIX}{}", STANDARD.encode(raw)),
        created_at: now_ms(),
    };
    let stored = serde_json::to_string(&ep).map_err(|e| internal("serialize endpoint", e))?;
    let _: () = redis::pipe()
        .atomic()
        .set(keys::webhook_endpoint(&ep.id), stored)
        .sadd(&owner_key, &ep.id)
        .query_async(&mut con)
        .await?;
    tracing::info!(endpoint = %ep.id, owner = %ep.owner, "webhook endpoint registered");
    let mut view = ep.view();
    view["secret"] = ep.secret.clone().into();
    Ok((StatusCode::CREATED, Json(view)))
}

/// Reads endpoint `id` if `who` owns it (404 otherwise: ids are not leaked).
async fn owned(app: &AppState, id: &str, who: &Authed) -> AppResult<Endpoint> {
    let valid = id.len() <= 40
        && id.starts_with("ep_")
        && id[3..].bytes().all(|b| b.is_ascii_alphanumeric());
    if valid
        && let Some(ep) = load(&app.redis, id).await?
        && ep.owner == who.0.sub
    {
        return Ok(ep);
    }
    Err(AppError::NotFound("no such webhook endpoint"))
}

async fn load(redis: &ConnectionManager, id: &str) -> AppResult<Option<Endpoint>> {
    let mut con = redis.clone();
    let raw: Option<String> = con.get(keys::webhook_endpoint(id)).await?;
    raw.map(|s| serde_json::from_str(&s).map_err(|e| internal("endpoint record", e)))
        .transpose()
}

/// `GET /v1/webhooks` → `{"items": [endpoint…]}`, the caller's own, oldest first.
pub(crate) async fn list(State(app): State<AppState>, who: Authed) -> AppResult<Json<Value>> {
    let mut con = app.redis.clone();
    let ids: Vec<String> = con.smembers(keys::webhook_owner(&who.0.sub)).await?;
    let mut items = Vec::new();
    for id in ids {
        if let Some(ep) = load(&app.redis, &id).await?
            && ep.owner == who.0.sub
        {
            items.push(ep);
        }
    }
    items.sort_by_key(|e| e.created_at);
    Ok(Json(
        json!({ "items": items.iter().map(Endpoint::view).collect::<Vec<_>>() }),
    ))
}

/// `DELETE /v1/webhooks/{id}` (owner only) → 204; deliveries still pending are dropped.
pub(crate) async fn delete(
    State(app): State<AppState>,
    Path(id): Path<String>,
    who: Authed,
) -> AppResult<StatusCode> {
    let ep = owned(&app, &id, &who).await?;
    let mut con = app.redis.clone();
    let _: () = redis::pipe()
        .atomic()
        .del(keys::webhook_endpoint(&ep.id))
        .srem(keys::webhook_owner(&ep.owner), &ep.id)
        .del(keys::webhook_log(&ep.id))
        .query_async(&mut con)
        .await?;
    tracing::info!(endpoint = %ep.id, "webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /v1/webhooks/{id}/deliveries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveriesQuery {
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /v1/webhooks/{id}/deliveries?limit=…` → `{"items": [try…]}`, newest first.
pub(crate) async fn deliveries(
    State(app): State<AppState>,
    Path(id): Path<String>,
    who: Authed,
    query: Result<Query<DeliveriesQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Json<Value>> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=LOG_SIZE as usize).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit: between 1 and {LOG_SIZE}, got {limit}"
        )));
    }
    let ep = owned(&app, &id, &who).await?;
    let mut con = app.redis.clone();
    let raw: Vec<String> = con
        .lrange(keys::webhook_log(&ep.id), 0, limit as isize - 1)
        .await?;
    let items: Vec<Value> = raw
        .iter()
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect();
    Ok(Json(json!({ "items": items })))
}

// ---------------------------------------------------------------------------------------------
// Emission
// ---------------------------------------------------------------------------------------------

/// The message id of an event: derived from its type and what caused it (`cause`), so the same
/// event emitted twice (a retried request, a re-read stream entry) is one message.
fn message_id(kind: &str, cause: &str) -> String {
    let d = Sha256::digest(format!("{kind}\n{cause}").as_bytes());
    let hex: String = d[..13].iter().map(|b| format!("{b:02x}")).collect();
    format!("msg_{hex}")
}

/// Queues event `kind` about `data` for `owner`'s endpoints. `cause` identifies the occurrence
/// (an upload id, a stream entry id, a record version). A failure is logged and counted, not
/// returned: the change it reports has happened either way.
pub(crate) async fn emit(
    app: &AppState,
    owner: &str,
    kind: &'static str,
    cause: &str,
    data: Value,
) {
    debug_assert!(EVENT_TYPES.contains(&kind));
    let msg_id = message_id(kind, cause);
    let body = json!({
        "type": kind,
        "timestamp": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        "data": data,
    })
    .to_string();
    let ev = Emitted {
        owner: owner.to_owned(),
        msg_id: msg_id.clone(),
        kind: kind.to_owned(),
        body,
    };
    let Ok(json) = serde_json::to_string(&ev) else {
        return;
    };
    let mut con = app.redis.clone();
    let added: redis::RedisResult<String> = con
        .xadd_maxlen(
            keys::WEBHOOK_EVENTS,
            redis::streams::StreamMaxlen::Approx(EVENTS_MAXLEN),
            "*",
            &[(FIELD, json)],
        )
        .await;
    match added {
        Ok(_) => {
            METRICS.webhook_events.with_label_values(&[kind]).inc();
            tracing::debug!(%msg_id, kind, "webhook event emitted");
        }
        Err(e) => {
            METRICS.webhook_events.with_label_values(&["lost"]).inc();
            tracing::warn!(%msg_id, kind, cause = %e, "webhook event not emitted");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fan-out and delivery
// ---------------------------------------------------------------------------------------------

/// Runs fan-out and delivery until `shutdown` flips. `blocking` is a connection for the
/// blocking stream read.
pub(crate) async fn run(
    app: AppState,
    blocking: ConnectionManager,
    shutdown: watch::Receiver<bool>,
) {
    let fan = fan_out(app.clone(), blocking, shutdown.clone());
    let send = deliver_loop(app, shutdown);
    tokio::join!(fan, send);
}

async fn fan_out(app: AppState, con: ConnectionManager, shutdown: watch::Receiver<bool>) {
    let consumer = format!("origin-{}", std::process::id());
    crate::jobs::consume_until("webhook fan-out", shutdown, || {
        let (app, mut con, consumer) = (app.clone(), con.clone(), consumer.clone());
        async move { fan_out_once(&app, &mut con, &consumer).await }
    })
    .await;
}

async fn fan_out_once(
    app: &AppState,
    con: &mut ConnectionManager,
    consumer: &str,
) -> AppResult<()> {
    let entries =
        crate::jobs::read_group(con, keys::WEBHOOK_EVENTS, GROUP, consumer, 30_000).await?;
    for entry in entries {
        let ev: Option<Emitted> = entry
            .get::<String>(FIELD)
            .and_then(|s| serde_json::from_str(&s).ok());
        match ev {
            Some(ev) => route(app, &ev).await?,
            None => tracing::warn!(stream_id = %entry.id, "malformed webhook event; dropped"),
        }
        let _: i64 = con.xack(keys::WEBHOOK_EVENTS, GROUP, &[&entry.id]).await?;
    }
    Ok(())
}

/// Schedules `ev` for each of its owner's endpoints that wants its type. Idempotent: a
/// delivery already scheduled is left as it is.
async fn route(app: &AppState, ev: &Emitted) -> AppResult<()> {
    let mut con = app.redis.clone();
    let ids: Vec<String> = con.smembers(keys::webhook_owner(&ev.owner)).await?;
    let mut targets = Vec::new();
    for id in ids {
        if let Some(ep) = load(&app.redis, &id).await?
            && ep.events.contains(&ev.kind)
        {
            targets.push(ep.id);
        }
    }
    if targets.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut p = redis::pipe();
    p.set_ex(
        keys::webhook_message(&ev.msg_id),
        serde_json::to_string(ev).map_err(|e| internal("serialize event", e))?,
        MESSAGE_TTL.as_secs(),
    )
    .ignore();
    for ep in &targets {
        p.cmd("ZADD")
            .arg(keys::WEBHOOK_DUE)
            .arg("NX")
            .arg(now)
            .arg(member(ep, &ev.msg_id))
            .ignore();
    }
    let _: () = p.query_async(&mut con).await.map_err(redis_err)?;
    tracing::debug!(msg_id = %ev.msg_id, endpoints = targets.len(), "webhook event routed");
    Ok(())
}

/// Takes up to `max` due deliveries, pushing each one's due time `lease_ms` ahead so no other
/// origin takes it meanwhile (a delivery whose origin dies is tried again after the lease).
const CLAIM_SCRIPT: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], m) end
return due
";

async fn deliver_loop(app: AppState, mut shutdown: watch::Receiver<bool>) {
    let claim = redis::Script::new(CLAIM_SCRIPT);
    let lease = app.cfg.webhooks.timeout + Duration::from_secs(30);
    loop {
        let now = now_ms();
        let mut con = app.redis.clone();
        let due: Vec<String> = match claim
            .key(keys::WEBHOOK_DUE)
            .arg(now)
            .arg(now + lease.as_millis() as u64)
            .arg(CONCURRENCY)
            .invoke_async(&mut con)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(cause = %e, "webhook deliveries: cannot claim");
                Vec::new()
            }
        };
        let busy = !due.is_empty();
        let mut tries = tokio::task::JoinSet::new();
        for m in due {
            let app = app.clone();
            tries.spawn(async move { deliver(&app, &m).await });
        }
        while tries.join_next().await.is_some() {}
        if !busy {
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        } else if *shutdown.borrow() {
            return;
        }
    }
}

/// The delay before try `n + 1` after `n` failed tries: `backoff · 2^(n-1)`, capped, with
/// "equal jitter" (half fixed, half random) so retries from many deliveries spread out.
fn retry_delay(cfg: &WebhooksConfig, tries: u32) -> Duration {
    let exp = cfg
        .backoff
        .saturating_mul(1u32 << tries.saturating_sub(1).min(20))
        .min(cfg.max_backoff);
    let half = exp / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

/// The `webhook-signature` of `body` for message `msg_id` sent at `ts` (Unix seconds).
fn signature(secret: &str, msg_id: &str, ts: u64, body: &str) -> Option<String> {
    let key = STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{msg_id}.{ts}.{body}").as_bytes());
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Tries one delivery and records the outcome.
async fn deliver(app: &AppState, m: &str) {
    let Some((ep_id, msg_id)) = m.split_once('/') else {
        forget(app, m).await;
        return;
    };
    let (ep, ev) = match (
        load(&app.redis, ep_id).await,
        load_message(app, msg_id).await,
    ) {
        (Ok(Some(ep)), Ok(Some(ev))) => (ep, ev),
        (Ok(_), Ok(_)) => {
            // The endpoint was deleted, or the message is past its retention.
            forget(app, m).await;
            return;
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(delivery = m, cause = %e, "webhook delivery: state unreadable");
            return; // tried again once its lease runs out
        }
    };
    let mut con = app.redis.clone();
    let attempt: u32 = match con.hincr(keys::WEBHOOK_TRIES, m, 1).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(delivery = m, cause = %e, "webhook delivery: redis");
            return;
        }
    };
    let cfg = &app.cfg.webhooks;
    let started = std::time::Instant::now();
    let (outcome, status_code, error) = match send(cfg, &ep, &ev).await {
        Ok(code) if (200..300).contains(&code) => ("delivered", Some(code), None),
        Ok(code) => ("failed", Some(code), Some(format!("HTTP {code}"))),
        Err(SendError::Refused(why)) => ("refused", None, Some(why)),
        Err(SendError::Failed(why)) => ("failed", None, Some(why)),
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let give_up = outcome == "refused" || (outcome == "failed" && attempt >= cfg.max_attempts);
    let (outcome, next_try_at) = match outcome {
        "delivered" => ("delivered", None),
        _ if give_up => ("dead", None),
        _ => (
            "failed",
            Some(now_ms() + retry_delay(cfg, attempt).as_millis() as u64),
        ),
    };
    let entry = Try {
        webhook_id: ev.msg_id.clone(),
        kind: ev.kind.clone(),
        attempt,
        outcome,
        status_code,
        error: error.clone(),
        at: now_ms(),
        duration_ms,
        next_try_at,
    };
    METRICS
        .webhook_deliveries
        .with_label_values(&[outcome])
        .inc();
    let mut p = redis::pipe();
    if let Ok(line) = serde_json::to_string(&entry) {
        p.lpush(keys::webhook_log(&ep.id), line)
            .ignore()
            .ltrim(keys::webhook_log(&ep.id), 0, LOG_SIZE - 1)
            .ignore();
    }
    match next_try_at {
        Some(at) => {
            p.zadd(keys::WEBHOOK_DUE, m, at).ignore();
        }
        None => {
            p.zrem(keys::WEBHOOK_DUE, m)
                .ignore()
                .hdel(keys::WEBHOOK_TRIES, m)
                .ignore();
        }
    }
    if outcome == "dead" {
        p.cmd("XADD")
            .arg(keys::WEBHOOK_DEAD)
            .arg("MAXLEN")
            .arg("~")
            .arg(10_000)
            .arg("*")
            .arg("endpoint")
            .arg(&ep.id)
            .arg("webhook_id")
            .arg(&ev.msg_id)
            .arg("type")
            .arg(&ev.kind)
            .arg("attempts")
            .arg(attempt)
            .arg("error")
            .arg(error.as_deref().unwrap_or(""))
            .ignore();
    }
    if let Err(e) = p.query_async::<()>(&mut con).await {
        tracing::warn!(delivery = m, cause = %e, "webhook delivery: outcome not recorded");
    }
    match outcome {
        "delivered" => {
            tracing::info!(endpoint = %ep.id, msg_id = %ev.msg_id, kind = %ev.kind, attempt, "webhook delivered")
        }
        "dead" => {
            tracing::warn!(endpoint = %ep.id, msg_id = %ev.msg_id, kind = %ev.kind, attempt, error = ?error, "webhook given up (dead letter)")
        }
        _ => {
            tracing::info!(endpoint = %ep.id, msg_id = %ev.msg_id, attempt, error = ?error, "webhook delivery failed; will retry")
        }
    }
}

async fn forget(app: &AppState, m: &str) {
    let mut con = app.redis.clone();
    let _: redis::RedisResult<()> = redis::pipe()
        .zrem(keys::WEBHOOK_DUE, m)
        .ignore()
        .hdel(keys::WEBHOOK_TRIES, m)
        .ignore()
        .query_async(&mut con)
        .await;
}

async fn load_message(app: &AppState, msg_id: &str) -> AppResult<Option<Emitted>> {
    let mut con = app.redis.clone();
    let raw: Option<String> = con.get(keys::webhook_message(msg_id)).await?;
    raw.map(|s| serde_json::from_str(&s).map_err(|e| internal("webhook message", e)))
        .transpose()
}

enum SendError {
    /// The target is not allowed (now resolves to a private address, say): not retried.
    Refused(String),
    /// Network failure or timeout: retried.
    Failed(String),
}

/// POSTs one message to its endpoint at the address resolved now; the response status.
async fn send(cfg: &WebhooksConfig, ep: &Endpoint, ev: &Emitted) -> Result<u16, SendError> {
    let target = resolve_target(cfg, &ep.url).await.map_err(|why| {
        if why.contains("not a public address") {
            METRICS.webhook_refused_targets.inc();
            SendError::Refused(why)
        } else {
            SendError::Failed(why)
        }
    })?;
    let ts = now_ms() / 1000;
    let sig = signature(&ep.secret, &ev.msg_id, ts, &ev.body)
        .ok_or_else(|| SendError::Refused("the endpoint's secret is unusable".into()))?;
    let client = reqwest::Client::builder()
        .resolve(&target.host, target.addr)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.timeout)
        .user_agent(concat!("StreamGate-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SendError::Failed(format!("client: {e}")))?;
    let resp = client
        .post(target.url)
        .header("content-type", "application/json")
        .header("webhook-id", &ev.msg_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(ev.body.clone())
        .send()
        .await
        .map_err(|e| SendError::Failed(without_url(&e)))?;
    Ok(resp.status().as_u16())
}

/// A reqwest error without the URL (it may carry a token the creator put in it).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = src {
        detail = s.to_string();
        src = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification (spec/standard-webhooks.md).
        let sig = signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn message_ids_are_stable_per_cause() {
        assert_eq!(
            message_id("content.ready", "a"),
            message_id("content.ready", "a")
        );
        assert_ne!(
            message_id("content.ready", "a"),
            message_id("content.ready", "b")
        );
        assert_ne!(
            message_id("content.ready", "a"),
            message_id("content.failed", "a")
        );
        assert!(message_id("x", "y").starts_with("msg_"));
    }

    #[test]
    fn retries_back_off_with_jitter_up_to_the_cap() {
        let cfg = WebhooksConfig {
            backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            ..WebhooksConfig::default()
        };
        for (tries, full) in [(1, 2), (2, 4), (3, 8), (6, 60), (40, 60)] {
            let d = retry_delay(&cfg, tries);
            let full = Duration::from_secs(full);
            assert!(d >= full / 2 && d <= full, "{tries}: {d:?}");
        }
    }
}
