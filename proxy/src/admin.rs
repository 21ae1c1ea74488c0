//! The edge's admin API, on the metrics listener (`server.metrics-listen`), enabled by
//! `[admin] token`. Every call needs `Authorization: Bearer <token>` (compared in constant
//! time); answers are JSON.
//!
//! - `POST /admin/purge` `{"content_id": "…", "path"?: "720p/seg-00001.m4s"}`: drops the
//!   content's objects (or one object) from this edge's L1 and from the region's L2, then
//!   publishes `purged` on `sg:invalidate` so every other edge drops them from its L1. The next
//!   request for a purged object is a `MISS`.
//!   → 200 `{"content_id","path","l2_keys","published"}`; 400 bad body; 401 bad token.

use std::sync::Arc;

use http::StatusCode;
use pingora::protocols::http::ServerSession;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use streamgate_config::{
    Secret,
    contract::{INVALIDATE_CHANNEL, Invalidation, invalidation_log, is_valid_content_id},
};
use tracing::{info, warn};

use crate::{cache::EdgeCache, metrics::EdgeMetrics, upstream::cache_key};

/// Largest admin request body.
const MAX_BODY: usize = 16 * 1024;

/// What the admin API acts on.
pub(crate) struct Admin {
    token_digest: [u8; 32],
    cache: Option<Arc<EdgeCache>>,
    publish: Option<redis::Client>,
    metrics: Arc<EdgeMetrics>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeRequest {
    content_id: String,
    #[serde(default)]
    path: Option<String>,
}

impl Admin {
    pub(crate) fn new(
        token: &Secret,
        cache: Option<Arc<EdgeCache>>,
        publish: Option<redis::Client>,
        metrics: Arc<EdgeMetrics>,
    ) -> Self {
        Self {
            token_digest: Sha256::digest(token.expose().as_bytes()).into(),
            cache,
            publish,
            metrics,
        }
    }

    /// Constant-time check of the presented bearer token (digests compared, so neither the
    /// length nor a prefix of the secret leaks through timing).
    fn authorized(&self, session: &ServerSession) -> bool {
        let presented = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        d.iter()
            .zip(self.token_digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// Routes one admin request.
    pub(crate) async fn handle(&self, session: &mut ServerSession) -> (StatusCode, Vec<u8>) {
        let err = |status: StatusCode, code: &str, message: &str| {
            (
                status,
                json!({"error": code, "message": message})
                    .to_string()
                    .into_bytes(),
            )
        };
        if !self.authorized(session) {
            return err(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "admin token required",
            );
        }
        let req = session.req_header();
        if req.uri.path() != "/admin/purge" {
            return err(StatusCode::NOT_FOUND, "not_found", "no such admin route");
        }
        if req.method != http::Method::POST {
            return err(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "use POST",
            );
        }
        let mut body = Vec::new();
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_BODY {
                        return err(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "body too large");
                    }
                }
                Ok(None) => break,
                Err(_) => return err(StatusCode::BAD_REQUEST, "bad_request", "unreadable body"),
            }
        }
        let p: PurgeRequest = match serde_json::from_slice(&body) {
            Ok(p) => p,
            Err(e) => return err(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()),
        };
        if !is_valid_content_id(&p.content_id) {
            return err(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "content_id: malformed",
            );
        }
        if let Some(path) = &p.path
            && (path.is_empty() || path.starts_with('/') || path.contains(".."))
        {
            return err(StatusCode::BAD_REQUEST, "bad_request", "path: malformed");
        }
        let mut l2_keys = 0;
        if let Some(cache) = &self.cache {
            let storage = cache.storage();
            l2_keys = match &p.path {
                Some(path) => usize::from(
                    storage
                        .purge_key(&cache_key(&p.content_id, path), true)
                        .await,
                ),
                None => storage.purge_content(&p.content_id, true).await,
            };
        }
        self.metrics.cache_purge("admin");
        let published = self.publish(&p).await;
        info!(content_id = %p.content_id, path = ?p.path, l2_keys, published, "admin purge");
        let body = json!({
            "content_id": p.content_id,
            "path": p.path,
            "l2_keys": l2_keys,
            "published": published,
        });
        (StatusCode::OK, body.to_string().into_bytes())
    }

    async fn publish(&self, p: &PurgeRequest) -> bool {
        let Some(client) = &self.publish else {
            return false;
        };
        let msg = Invalidation::Purged {
            content_id: p.content_id.clone(),
            path: p.path.clone(),
        };
        let Ok(json) = serde_json::to_string(&msg) else {
            return false;
        };
        let r = async {
            let mut con = client.get_multiplexed_async_connection().await?;
            let logged = redis::Script::new(invalidation_log::PUBLISH_SCRIPT)
                .key(invalidation_log::STATE_KEY)
                .key(invalidation_log::LOG_KEY)
                .arg(&json)
                .arg(invalidation_log::LOG_LEN)
                .arg(INVALIDATE_CHANNEL)
                .invoke_async::<i64>(&mut con)
                .await;
            match logged {
                Err(e) if !e.is_io_error() => {
                    // A bus node that cannot run the script on the log's slot (a Redis
                    // Cluster node owning another slot): publish bare. Edges that cannot read
                    // the log either treat every re-subscription as a gap, so nothing is lost.
                    warn!(cause = %e, "invalidation log unavailable; publishing unlogged");
                    redis::cmd("PUBLISH")
                        .arg(INVALIDATE_CHANNEL)
                        .arg(json)
                        .query_async::<i64>(&mut con)
                        .await
                }
                other => other,
            }
        };
        match tokio::time::timeout(std::time::Duration::from_secs(2), r).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                warn!(cause = %e, "purge not published");
                false
            }
            Err(_) => {
                warn!("purge not published: redis timed out");
                false
            }
        }
    }
}
