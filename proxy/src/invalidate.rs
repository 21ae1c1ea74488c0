//! The edge's consumer of `sg:invalidate` (Redis pub/sub, published by origin): what every edge
//! must forget when a content is deleted or re-packaged, its policy changes, or a viewer logs
//! out.
//!
//! ```text
//!  loop (pingora background service, until shutdown)
//!   ├─ connect, SUBSCRIBE sg:invalidate
//!   ├─ resync: pub/sub drops messages while nobody listens, so after every (re)subscription
//!   │    every cached policy is forgotten and sg:revoked:* is scanned into the revoked set;
//!   │    after a RE-subscription L1 is emptied too (a purge may have been missed)
//!   ├─ messages: policy_changed                    ─► forget the content's policy
//!   │            content_deleted / repackaged       ─► forget its policy, drop its objects
//!   │                                                 from L1 (origin deletes the L2 keys)
//!   │            purged {content_id, path?}         ─► drop the objects from L1
//!   │            session_revoked {jti, exp}         ─► refuse that session until exp
//!   ├─ a PING every 15 s: a silent dead connection is noticed
//!   └─ connection lost ─► back off 100 ms … 5 s, reconnect
//! ```

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use futures_util::StreamExt;
use pingora::{server::ShutdownWatch, services::background::BackgroundService};
use streamgate_config::contract::{INVALIDATE_CHANNEL, Invalidation, keys};
use tracing::{debug, info, warn};

use crate::{cache::EdgeCache, grant::Grants, metrics::EdgeMetrics, upstream::cache_key};

/// How often the subscription is probed.
const PING_EVERY: Duration = Duration::from_secs(15);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The `sg:invalidate` subscriber.
pub(crate) struct Invalidator {
    client: redis::Client,
    grants: Option<Arc<Grants>>,
    cache: Option<Arc<EdgeCache>>,
    metrics: Arc<EdgeMetrics>,
    /// Set after the first subscription: later ones follow a gap.
    subscribed_before: std::sync::atomic::AtomicBool,
    /// How often the subscription is probed ([`PING_EVERY`]).
    ping_every: Duration,
}

impl Invalidator {
    pub(crate) fn new(
        client: redis::Client,
        grants: Option<Arc<Grants>>,
        cache: Option<Arc<EdgeCache>>,
        metrics: Arc<EdgeMetrics>,
    ) -> Self {
        Self {
            client,
            grants,
            cache,
            metrics,
            subscribed_before: std::sync::atomic::AtomicBool::new(false),
            ping_every: PING_EVERY,
        }
    }

    async fn drop_objects(&self, content_id: &str, path: Option<&str>) {
        if let Some(cache) = &self.cache {
            let storage = cache.storage();
            match path {
                Some(p) => {
                    storage.purge_key(&cache_key(content_id, p), false).await;
                }
                None => {
                    storage.purge_content(content_id, false).await;
                }
            }
            self.metrics.cache_purge("invalidate");
        }
    }

    /// One subscription, until the connection fails.
    async fn subscribe_once(&self) -> redis::RedisResult<()> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(INVALIDATE_CHANNEL).await?;
        self.resync().await?;
        let (mut sink, mut stream) = pubsub.split();
        let mut ping = tokio::time::interval(self.ping_every);
        ping.tick().await;
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else {
                        return Err(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "subscription closed",
                        )));
                    };
                    match msg.get_payload::<String>() {
                        Ok(json) => self.apply(&json).await,
                        Err(e) => {
                            warn!(cause = %e, channel = INVALIDATE_CHANNEL, "non-text message");
                            self.metrics.invalidation("malformed");
                        }
                    }
                }
                _ = ping.tick() => {
                    // On a subscribed connection Redis answers PING with ["pong", ""], not a
                    // string: any reply proves the connection is alive.
                    tokio::time::timeout(Duration::from_secs(3), sink.ping::<redis::Value>())
                        .await
                        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "ping timed out")))??;
                }
            }
        }
    }

    /// Catches up after a gap: messages published while unsubscribed are lost.
    async fn resync(&self) -> redis::RedisResult<()> {
        let again = self
            .subscribed_before
            .swap(true, std::sync::atomic::Ordering::Relaxed);
        if again && let Some(cache) = &self.cache {
            cache.storage().purge_all_l1();
        }
        let Some(grants) = &self.grants else {
            self.metrics.invalidation("resync");
            return Ok(());
        };
        grants.forget_all_contents();
        let mut con = self.client.get_multiplexed_async_connection().await?;
        let mut iter: redis::AsyncIter<'_, String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(format!("{}*", keys::REVOKED_SESSION_PREFIX))
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter_async(&mut con)
            .await?;
        let mut keys = Vec::new();
        while let Some(k) = iter.next_item().await {
            keys.push(k?);
        }
        drop(iter);
        let now = crate::clock::unix_now();
        for key in &keys {
            let ttl: i64 = redis::cmd("TTL").arg(key).query_async(&mut con).await?;
            if let Some(jti) = keys::revoked_jti(key)
                && ttl > 0
            {
                grants.revoke_session(jti, now + ttl);
            }
        }
        self.metrics.invalidation("resync");
        info!(
            revoked = keys.len(),
            channel = INVALIDATE_CHANNEL,
            "subscribed, caches resynchronised"
        );
        Ok(())
    }

    async fn apply(&self, json: &str) {
        let msg: Invalidation = match serde_json::from_str(json) {
            Ok(m) => m,
            Err(e) => {
                warn!(cause = %e, channel = INVALIDATE_CHANNEL, "malformed message ignored");
                self.metrics.invalidation("malformed");
                return;
            }
        };
        let grants = self.grants.as_deref();
        let kind = match &msg {
            Invalidation::ContentDeleted { content_id } => {
                if let Some(g) = grants {
                    g.forget_content(content_id).await;
                }
                self.drop_objects(content_id, None).await;
                "content_deleted"
            }
            Invalidation::PolicyChanged { content_id } => {
                if let Some(g) = grants {
                    g.forget_content(content_id).await;
                }
                "policy_changed"
            }
            Invalidation::Repackaged { content_id } => {
                self.drop_objects(content_id, None).await;
                "repackaged"
            }
            Invalidation::Purged { content_id, path } => {
                self.drop_objects(content_id, path.as_deref()).await;
                "purged"
            }
            Invalidation::SessionRevoked { jti, exp } => {
                if let Some(g) = grants {
                    g.revoke_session(jti, *exp);
                }
                "session_revoked"
            }
        };
        debug!(kind, "invalidation applied");
        self.metrics.invalidation(kind);
    }
}

#[async_trait]
impl BackgroundService for Invalidator {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = tokio::time::Instant::now();
            tokio::select! {
                _ = shutdown.changed() => return,
                r = self.subscribe_once() => {
                    if let Err(e) = r {
                        warn!(cause = %e, channel = INVALIDATE_CHANNEL, "subscription lost; reconnecting");
                    }
                }
            }
            if started.elapsed() > Duration::from_secs(30) {
                backoff = Duration::from_millis(100);
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The regression: every probe of a live subscription failed to parse Redis' `["pong", ""]`,
    /// so the edge dropped its subscription every 15 s, lost the messages published meanwhile
    /// and emptied its caches on each resubscription. Probed every 50 ms against a real Redis,
    /// a subscription must stay up.
    #[tokio::test]
    async fn probes_keep_a_live_subscription() {
        let redis = streamgate_testkit::PrivateRedis::start();
        let metrics = Arc::new(EdgeMetrics::new().unwrap());
        let mut inv = Invalidator::new(
            redis::Client::open(redis.url()).unwrap(),
            None,
            None,
            metrics.clone(),
        );
        inv.ping_every = Duration::from_millis(50);
        let held = tokio::time::timeout(Duration::from_millis(1500), inv.subscribe_once()).await;
        assert!(held.is_err(), "the subscription ended: {held:?}");
        let page = String::from_utf8(metrics.render()).unwrap();
        assert!(
            page.contains("streamgate_edge_invalidations_total{type=\"resync\"} 1"),
            "subscribed once, never again: {page}"
        );
    }
}
