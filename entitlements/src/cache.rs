//! The entitlement cache: per-edge moka (L1) over shared Redis (L2), keyed by (subject,
//! policy hash), in front of the chain checks.
//!
//! - Positive and negative answers live `ttl_allow` / `ttl_deny`: a viewer who sold the NFT
//!   loses access within `ttl_allow`.
//! - Concurrent decisions for one key share one computation (singleflight): a thousand players
//!   of one viewer starting at once cost one chain check.
//! - When the check fails (every RPC endpoint down), an answer younger than its TTL plus
//!   `max_stale` is served, marked stale; with none the caller gets an error and fails closed.
//! - Redis is optional at every step: an L2 error counts as a miss and the edge carries on
//!   with L1 and the chain.
//!
//! Freshness is judged against the caller's `now` (Unix seconds), so tests control time.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::{FutureExt, future::Shared};
use redis::{AsyncCommands, aio::ConnectionManager};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What the cache stores about one (subject, policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// May watch.
    pub allowed: bool,
    /// Which rule matched, or why not (for logs and the 403 body).
    pub reason: String,
    /// When it was decided, Unix seconds.
    pub decided_at: i64,
}

/// Which tier answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// This edge's memory.
    L1,
    /// The shared Redis.
    L2,
    /// A fresh chain check.
    Checked,
    /// A stale answer, served because the check failed.
    Stale,
}

/// A verdict and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    /// The verdict.
    pub verdict: Verdict,
    /// Its tier.
    pub tier: Tier,
}

/// The check failed and no answer within the staleness bound exists: fail closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entitlement undecidable: {0}")]
pub struct Undecidable(pub String);

/// Cache settings.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// Lifetime of an `allowed` verdict.
    pub ttl_allow: Duration,
    /// Lifetime of a `denied` verdict.
    pub ttl_deny: Duration,
    /// How long past its lifetime a verdict may be served when checks fail.
    pub max_stale: Duration,
    /// L1 capacity, in entries.
    pub capacity: u64,
}

/// Counters, for metrics and tests.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// L1 hits.
    pub l1_hits: AtomicU64,
    /// L2 hits.
    pub l2_hits: AtomicU64,
    /// Chain checks run.
    pub checks: AtomicU64,
    /// Stale verdicts served.
    pub stale: AtomicU64,
    /// Redis errors (treated as misses).
    pub l2_errors: AtomicU64,
}

type Flight = Shared<futures_util::future::BoxFuture<'static, Result<Cached, Undecidable>>>;

/// The two-tier entitlement cache. Cheap to share behind an `Arc`.
pub struct EntitlementCache {
    cfg: CacheConfig,
    l1: moka::sync::Cache<String, Verdict>,
    l2: Option<ConnectionManager>,
    /// Decisions being computed, by key: later callers await the leader's future.
    flights: Mutex<HashMap<String, Flight>>,
    stats: Arc<CacheStats>,
}

/// The cache key of a (subject, policy hash): `sg:ent:{hex(sha256(subject) ‖ policy hash)[..48]}`.
pub fn cache_key(subject: &str, policy_hash: &[u8; 32]) -> String {
    let d = Sha256::new()
        .chain_update(subject.as_bytes())
        .chain_update([0u8])
        .chain_update(policy_hash)
        .finalize();
    streamgate_config::contract::keys::verdict(&hex::encode(&d[..24]))
}

impl EntitlementCache {
    /// A cache over `l2` (None: L1 only).
    pub fn new(cfg: CacheConfig, l2: Option<ConnectionManager>) -> Self {
        // Entries stay in L1 as long as they may be served stale; freshness is judged on read.
        let keep = cfg.ttl_allow.max(cfg.ttl_deny) + cfg.max_stale;
        Self {
            cfg,
            l1: moka::sync::Cache::builder()
                .max_capacity(cfg.capacity)
                .time_to_live(keep.max(Duration::from_secs(1)))
                .build(),
            l2,
            flights: Mutex::new(HashMap::new()),
            stats: Arc::new(CacheStats::default()),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// Drops every L1 entry (all edges do this on a broad invalidation).
    pub fn invalidate_all(&self) {
        self.l1.invalidate_all();
    }

    /// A fresh L1 verdict, if any: the synchronous fast path (no I/O, no await).
    pub fn peek(&self, subject: &str, policy_hash: &[u8; 32], now: i64) -> Option<Verdict> {
        self.l1
            .get(&cache_key(subject, policy_hash))
            .filter(|v| (Fresh { cfg: self.cfg }).fresh(v, now))
    }

    /// The verdict for `subject` under the policy hashed `policy_hash`, running `check` (once,
    /// however many callers ask at the same time) when no fresh verdict is cached.
    ///
    /// # Errors
    /// [`Undecidable`] when the check fails and nothing servable is cached.
    pub async fn decide<F, E>(
        &self,
        subject: &str,
        policy_hash: &[u8; 32],
        now: i64,
        check: F,
    ) -> Result<Cached, Undecidable>
    where
        F: Future<Output = Result<(bool, String), E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let key = cache_key(subject, policy_hash);
        let stale = match self.l1.get(&key) {
            Some(v) if (Fresh { cfg: self.cfg }).fresh(&v, now) => {
                self.stats.l1_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Cached {
                    verdict: v,
                    tier: Tier::L1,
                });
            }
            other => other,
        };
        let flight = {
            // A poisoned map only means a panicking caller; the map itself is intact.
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(f) = flights.get(&key) {
                f.clone()
            } else {
                let f = self
                    .compute(key.clone(), stale, now, check)
                    .boxed()
                    .shared();
                flights.insert(key.clone(), f.clone());
                f
            }
        };
        let out = flight.await;
        self.flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        out
    }

    fn compute<F, E>(
        &self,
        key: String,
        stale_l1: Option<Verdict>,
        now: i64,
        check: F,
    ) -> impl Future<Output = Result<Cached, Undecidable>> + Send + 'static
    where
        F: Future<Output = Result<(bool, String), E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let l1 = self.l1.clone();
        let l2 = self.l2.clone();
        let stats = self.stats.clone();
        let cfg = self.cfg;
        async move {
            let this = Fresh { cfg };
            // L2: a fresh shared verdict fills L1.
            let mut stale = stale_l1;
            if let Some(mut con) = l2.clone() {
                match con.get::<_, Option<String>>(&key).await {
                    Ok(Some(raw)) => match serde_json::from_str::<Verdict>(&raw) {
                        Ok(v) if this.fresh(&v, now) => {
                            stats.l2_hits.fetch_add(1, Ordering::Relaxed);
                            l1.insert(key, v.clone());
                            return Ok(Cached {
                                verdict: v,
                                tier: Tier::L2,
                            });
                        }
                        Ok(v) => {
                            if stale.as_ref().is_none_or(|s| s.decided_at < v.decided_at) {
                                stale = Some(v);
                            }
                        }
                        Err(e) => tracing::debug!(cause = %e, "unreadable l2 entitlement"),
                    },
                    Ok(None) => {}
                    Err(e) => {
                        stats.l2_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(cause = %e, "l2 unavailable; checking the chain");
                    }
                }
            }
            stats.checks.fetch_add(1, Ordering::Relaxed);
            match check.await {
                Ok((allowed, reason)) => {
                    let v = Verdict {
                        allowed,
                        reason,
                        decided_at: now,
                    };
                    l1.insert(key.clone(), v.clone());
                    if let Some(mut con) = l2 {
                        let keep = this.ttl(&v) as u64 + cfg.max_stale.as_secs();
                        if let Ok(json) = serde_json::to_string(&v) {
                            let r: redis::RedisResult<()> =
                                con.set_ex(&key, json, keep.max(1)).await;
                            if r.is_err() {
                                stats.l2_errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Ok(Cached {
                        verdict: v,
                        tier: Tier::Checked,
                    })
                }
                Err(e) => match stale.filter(|v| this.servable_stale(v, now)) {
                    Some(v) => {
                        stats.stale.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(cause = %e, age_s = now - v.decided_at, "entitlement check failed; serving a stale verdict");
                        Ok(Cached {
                            verdict: v,
                            tier: Tier::Stale,
                        })
                    }
                    None => Err(Undecidable(e.to_string())),
                },
            }
        }
    }
}

/// Freshness rules, copyable into the computation.
#[derive(Clone, Copy)]
struct Fresh {
    cfg: CacheConfig,
}

impl Fresh {
    fn ttl(&self, v: &Verdict) -> i64 {
        let t = if v.allowed {
            self.cfg.ttl_allow
        } else {
            self.cfg.ttl_deny
        };
        t.as_secs() as i64
    }
    fn fresh(&self, v: &Verdict, now: i64) -> bool {
        now - v.decided_at < self.ttl(v)
    }
    fn servable_stale(&self, v: &Verdict, now: i64) -> bool {
        now - v.decided_at < self.ttl(v) + self.cfg.max_stale.as_secs() as i64
    }
}

#[cfg(test)]
mod tests;
