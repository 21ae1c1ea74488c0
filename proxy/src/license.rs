//! `POST /p/{token}/{id}/license` (and `/c/{id}/license`): the W3C ClearKey license of an
//! encrypted content, handed only to a viewer the gate lets watch it, per request, never
//! cached by anyone.
//!
//! ```text
//! token gate (as for objects) ─► 403
//!   ─► body ≤ 4 KiB, ClearKey JSON {"kids":[b64url…],"type":"temporary"} ─► 400 / 413
//!   ─► per-viewer limit (token subject, fixed minute window) ─► 429 + Retry-After
//!   ─► entitlement re-check, as for playlists (sold the NFT ⇒ no new keys) ─► 403 / 503
//!   ─► wrapped key: origin GET /v1/contents/{id}/key (edge key; kept wrapped, 60 s) ─► 404
//!   ─► unwrap with [encryption] KEKs ─► 503
//!   ─► only this content's key id ─► 403 unknown_key_id
//!   ─► 200 {"keys":[{"kty":"oct","kid","k"}],"type":"temporary"}, Cache-Control: no-store
//! ```
//!
//! The response never enters a cache tier: this route answers in `request_filter`, before the
//! cache phases, and says `no-store`. Keys are never logged: lines name the key id only.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use base64::{
    Engine,
    engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD},
};
use http::{HeaderName, StatusCode, header};
use moka::future::Cache;
use pingora::{Result, proxy::Session};
use serde::{Deserialize, Serialize};
use streamgate_auth::{KeyWrapper, Verified, WrappedKey};
use streamgate_config::{EncryptionConfig, Secret, contract::paths};
use tracing::{debug, info, warn};

use crate::{
    clock,
    grant::Grants,
    metrics::EdgeMetrics,
    reply::{self, ErrorBody},
};

/// Largest license request body read (a ClearKey request with a few key ids is ~100 bytes).
pub(crate) const MAX_BODY: usize = 4096;
/// Most key ids one request may ask for.
const MAX_KIDS: usize = 16;
/// How long a wrapped key is kept (wrapped) before origin is asked again.
const WRAPPED_TTL: Duration = Duration::from_secs(60);

/// Outcomes counted in `streamgate_edge_license_requests_total`.
pub(crate) const OUTCOMES: [&str; 10] = [
    "granted",
    "forbidden",
    "not_entitled",
    "unknown_key_id",
    "bad_request",
    "too_large",
    "rate_limited",
    "not_encrypted",
    "unavailable",
    "undecidable",
];

/// The W3C ClearKey license request (EME §9.1.3).
#[derive(Debug, Deserialize)]
struct Request {
    kids: Vec<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Serialize)]
struct Jwk {
    kty: &'static str,
    kid: String,
    k: String,
}

#[derive(Debug, Serialize)]
struct Response {
    keys: Vec<Jwk>,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// Why a license request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    BadRequest(String),
    TooLarge,
    RateLimited(u64),
    NotEntitled(u16, &'static str, String),
    NotEncrypted,
    UnknownKeyId,
    Unavailable(String),
}

impl Refusal {
    fn outcome(&self) -> &'static str {
        match self {
            Refusal::BadRequest(_) => "bad_request",
            Refusal::TooLarge => "too_large",
            Refusal::RateLimited(_) => "rate_limited",
            Refusal::NotEntitled(503, ..) => "undecidable",
            Refusal::NotEntitled(..) => "not_entitled",
            Refusal::NotEncrypted => "not_encrypted",
            Refusal::UnknownKeyId => "unknown_key_id",
            Refusal::Unavailable(_) => "unavailable",
        }
    }
}

/// The license service of one edge.
pub(crate) struct Licenses {
    wrapper: Option<KeyWrapper>,
    http: reqwest::Client,
    origin_base: String,
    edge_key: Option<Secret>,
    wrapped: Cache<String, Arc<WrappedKey>>,
    /// Requests per (subject hash, minute).
    windows: moka::sync::Cache<([u8; 8], u64), Arc<AtomicU32>>,
    per_minute: u32,
    metrics: Arc<EdgeMetrics>,
}

impl std::fmt::Debug for Licenses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Licenses")
            .field("wrapper", &self.wrapper)
            .field("origin_base", &self.origin_base)
            .field("per_minute", &self.per_minute)
            .finish_non_exhaustive()
    }
}

impl Licenses {
    /// The service; without `[encryption]` every request is refused with 503 (the edge cannot
    /// unwrap keys), after the gate.
    ///
    /// # Errors
    /// The HTTP client cannot be built, or the KEKs are unusable (both caught at start-up).
    pub(crate) fn new(
        encryption: Option<&EncryptionConfig>,
        origin_base: String,
        edge_key: Option<Secret>,
        per_minute: u32,
        metrics: Arc<EdgeMetrics>,
    ) -> std::result::Result<Self, String> {
        let wrapper = encryption
            .map(|e| KeyWrapper::new(&e.wrapping_key, &e.key_bytes()))
            .transpose()
            .map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            wrapper,
            http,
            origin_base,
            edge_key,
            wrapped: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(WRAPPED_TTL)
                .build(),
            windows: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(Duration::from_secs(120))
                .build(),
            per_minute,
            metrics,
        })
    }

    /// Forgets a content's wrapped key (deleted or repackaged).
    pub(crate) async fn forget(&self, content_id: &str) {
        self.wrapped.invalidate(content_id).await;
    }

    /// Answers one license request whose token the gate accepted for `content_id`.
    pub(crate) async fn answer(
        &self,
        session: &mut Session,
        content_id: &str,
        token: &Verified,
        grants: Option<&Grants>,
        cors: &[(HeaderName, &str)],
    ) -> Result<()> {
        let outcome = self.decide(session, content_id, token, grants).await;
        let mut extra: Vec<(HeaderName, &str)> = cors.to_vec();
        extra.push((header::CACHE_CONTROL, "no-store"));
        extra.push((header::PRAGMA, "no-cache"));
        match outcome {
            Ok(body) => {
                self.metrics.license("granted");
                reply::send_json(session, StatusCode::OK, &body, &extra).await
            }
            Err(refusal) => {
                self.metrics.license(refusal.outcome());
                let (status, code, message) = match &refusal {
                    Refusal::BadRequest(m) => (400, "bad_license_request", m.clone()),
                    Refusal::TooLarge => (
                        413,
                        "body_too_large",
                        format!("a license request is at most {MAX_BODY} bytes"),
                    ),
                    Refusal::RateLimited(_) => (
                        429,
                        "rate_limited",
                        "too many license requests for this viewer; retry later".into(),
                    ),
                    Refusal::NotEntitled(s, code, m) => (*s, *code, m.clone()),
                    Refusal::NotEncrypted => (
                        404,
                        "not_encrypted",
                        "this content has no key: it is not encrypted".into(),
                    ),
                    Refusal::UnknownKeyId => (
                        403,
                        "unknown_key_id",
                        "none of the requested key ids belongs to this content".into(),
                    ),
                    Refusal::Unavailable(m) => (503, "license_unavailable", m.clone()),
                };
                let retry;
                if let Refusal::RateLimited(secs) = refusal {
                    retry = secs.to_string();
                    extra.push((header::RETRY_AFTER, retry.as_str()));
                }
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
                debug!(content_id, code, "license refused");
                reply::send_json(session, status, &ErrorBody::new(code, &message), &extra).await
            }
        }
    }

    async fn decide(
        &self,
        session: &mut Session,
        content_id: &str,
        token: &Verified,
        grants: Option<&Grants>,
    ) -> std::result::Result<Response, Refusal> {
        let body = read_body(session).await?;
        self.limit(token.subject_hash)?;
        let kids = parse_request(&body)?;
        if let Some(g) = grants {
            g.recheck(content_id, token, clock::unix_now())
                .await
                .map_err(|e| {
                    let (status, code) = e.status_code();
                    Refusal::NotEntitled(status, code, e.to_string())
                })?;
        }
        let wrapper = self.wrapper.as_ref().ok_or_else(|| {
            Refusal::Unavailable("this edge has no [encryption] keys to open content keys".into())
        })?;
        let wrapped = self.wrapped_key(content_id).await?;
        let key = wrapper.unwrap(content_id, &wrapped).map_err(|e| {
            warn!(content_id, error = %e, "stored content key does not open");
            Refusal::Unavailable("the content key cannot be opened here".into())
        })?;
        if !kids.contains(&key.kid()) {
            return Err(Refusal::UnknownKeyId);
        }
        info!(content_id, kid = %key.kid_hex(), subject = %hex::encode(token.subject_hash), "license granted");
        Ok(Response {
            keys: vec![Jwk {
                kty: "oct",
                kid: key.kid_b64url(),
                k: key.key_b64url(),
            }],
            kind: "temporary",
        })
    }

    /// Counts the request in its viewer's minute; refuses past the limit with the seconds to
    /// the next minute.
    fn limit(&self, subject: [u8; 8]) -> std::result::Result<(), Refusal> {
        let now = clock::unix_now().max(0) as u64;
        let minute = now / 60;
        let n = self
            .windows
            .get_with((subject, minute), || Arc::new(AtomicU32::new(0)))
            .fetch_add(1, Ordering::Relaxed);
        if n >= self.per_minute {
            return Err(Refusal::RateLimited(60 - now % 60));
        }
        Ok(())
    }

    /// The content's wrapped key, from the 60 s cache; concurrent misses share one fetch.
    async fn wrapped_key(&self, content_id: &str) -> std::result::Result<Arc<WrappedKey>, Refusal> {
        self.wrapped
            .try_get_with(content_id.to_owned(), self.fetch_wrapped(content_id))
            .await
            .map_err(|e| (*e).clone())
    }

    /// Origin's `GET /v1/contents/{id}/key` (internal listener, edge key).
    async fn fetch_wrapped(
        &self,
        content_id: &str,
    ) -> std::result::Result<Arc<WrappedKey>, Refusal> {
        let url = format!("{}{}", self.origin_base, paths::content_key(content_id));
        let mut req = self.http.get(&url);
        if let Some(key) = &self.edge_key {
            req = req.header(streamgate_config::contract::EDGE_KEY_HEADER, key.expose());
        }
        let r = req
            .send()
            .await
            .map_err(|e| Refusal::Unavailable(format!("origin unreachable: {e}")))?;
        match r.status().as_u16() {
            200 => {}
            404 => return Err(Refusal::NotEncrypted),
            s => {
                return Err(Refusal::Unavailable(format!(
                    "origin answered {s} for the key"
                )));
            }
        }
        let w: WrappedKey = r
            .json()
            .await
            .map_err(|e| Refusal::Unavailable(format!("origin sent no wrapped key: {e}")))?;
        Ok(Arc::new(w))
    }
}

/// Reads the request body, refusing more than [`MAX_BODY`] bytes without reading further.
async fn read_body(session: &mut Session) -> std::result::Result<Vec<u8>, Refusal> {
    let declared = session
        .req_header()
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Refusal::TooLarge);
    }
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(Refusal::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(Refusal::BadRequest(format!("unreadable body: {e}"))),
        }
    }
}

/// Parses a ClearKey license request into its key ids (16 bytes each; base64url, padded or
/// not, as players send them).
fn parse_request(body: &[u8]) -> std::result::Result<Vec<[u8; 16]>, Refusal> {
    let req: Request = serde_json::from_slice(body).map_err(|e| {
        Refusal::BadRequest(format!(
            "not a ClearKey license request ({{\"kids\":[…]}}): {e}"
        ))
    })?;
    if let Some(kind) = &req.kind
        && kind != "temporary"
    {
        return Err(Refusal::BadRequest(format!(
            "session type {kind:?} is not offered: only \"temporary\""
        )));
    }
    if req.kids.is_empty() || req.kids.len() > MAX_KIDS {
        return Err(Refusal::BadRequest(format!(
            "kids: 1 to {MAX_KIDS} key ids expected, got {}",
            req.kids.len()
        )));
    }
    req.kids
        .iter()
        .map(|k| {
            let raw = URL_SAFE_NO_PAD
                .decode(k.trim_end_matches('='))
                .or_else(|_| URL_SAFE.decode(k))
                .map_err(|_| Refusal::BadRequest(format!("kids: {k:?} is not base64url")))?;
            <[u8; 16]>::try_from(raw.as_slice())
                .map_err(|_| Refusal::BadRequest(format!("kids: {k:?} is not 16 bytes")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clearkey_requests_are_parsed_strictly() {
        let kid = [0xab; 16];
        let b64 = URL_SAFE_NO_PAD.encode(kid);
        let ok = format!(r#"{{"kids":["{b64}"],"type":"temporary"}}"#);
        assert_eq!(parse_request(ok.as_bytes()), Ok(vec![kid]));
        let padded = format!(r#"{{"kids":["{b64}=="]}}"#);
        assert_eq!(parse_request(padded.as_bytes()), Ok(vec![kid]));
        for bad in [
            "",
            "{",
            "[]",
            r#"{"kids":[]}"#,
            r#"{"kids":"abc"}"#,
            r#"{"kids":["not base64!"]}"#,
            r#"{"kids":["AAAA"]}"#,
            r#"{"kids":["q6urq6urq6urq6urq6urqw"],"type":"persistent-license"}"#,
        ] {
            assert!(
                matches!(parse_request(bad.as_bytes()), Err(Refusal::BadRequest(_))),
                "{bad}"
            );
        }
        let many = format!(
            r#"{{"kids":[{}]}}"#,
            vec![format!("\"{b64}\""); 17].join(",")
        );
        assert!(parse_request(many.as_bytes()).is_err());
    }

    #[test]
    fn responses_are_the_clearkey_json_web_key_set() {
        let body = Response {
            keys: vec![Jwk {
                kty: "oct",
                kid: "q6urq6urq6urq6urq6urqw".into(),
                k: "AAECAwQFBgcICQoLDA0ODw".into(),
            }],
            kind: "temporary",
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"keys":[{"kty":"oct","kid":"q6urq6urq6urq6urq6urqw","k":"AAECAwQFBgcICQoLDA0ODw"}],"type":"temporary"}"#
        );
    }
}
