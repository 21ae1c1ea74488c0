//! The edge's object cache: which requests use it, what is stored and for how long, and how
//! a response says where it came from. The tiers themselves are in [`storage`].
//!
//! ```text
//!  gated GET/HEAD ─► enable(storage, cache lock with lock-timeout) ─► key sg1:{id}/{path}
//!     hit (fresh) ─────────────────────────────────────────────► x-cache: HIT-L1 | HIT-L2
//!     hit (expired) ─ origin ok ─► refreshed                       MISS
//!                   ─ origin fails, within stale-if-error ───────► STALE
//!                   ─ manifest within stale-while-revalidate ────► STALE (refreshed behind)
//!     miss ─ cache lock: the first fetches, the rest wait (≤ lock-timeout) ─► MISS / HIT-L1
//!            (a miss that asks for the lock after the fetch finished is sent back to L1:
//!             `lock`, no second fetch)
//! ```
//!
//! Freshness is RFC 9111's, from origin's headers (`Cache-Control`, `Expires`); a response
//! without freshness, or `private`/`no-store`, is not stored. Stale windows come from origin's
//! `stale-if-error`/`stale-while-revalidate` or the edge's defaults, each capped by config;
//! segments never get stale-while-revalidate (they are immutable), manifests do.

mod lock;
pub(crate) mod storage;

use std::time::Duration;

use pingora::{
    cache::{
        CacheMeta, CacheOptionOverrides, CachePhase, NoCacheReason, RespCacheable,
        cache_control::CacheControl, filters::resp_cacheable, meta::CacheMetaDefaults,
    },
    http::ResponseHeader,
    proxy::Session,
};
use streamgate_config::CacheSection;

use crate::token_gate::ObjectKind;

use lock::CoalescingLock;
pub use storage::CacheError;
pub(crate) use storage::{Hit, StorageConfig, Tier, TieredStorage};

/// No freshness unless origin gives one: the edge never invents a TTL.
const NO_DEFAULT_TTL: CacheMetaDefaults = CacheMetaDefaults::new(|_| None, 0, 0);

/// The cache of one edge: the tiers, the lock that coalesces misses, and the bounds.
pub(crate) struct EdgeCache {
    storage: &'static TieredStorage,
    lock: &'static CoalescingLock,
    lock_timeout: Duration,
    stale_if_error: u32,
    stale_while_revalidate: u32,
}

impl EdgeCache {
    /// Builds the cache from `[cache]`. The storage and lock are leaked: pingora needs them
    /// `'static`, and an edge has exactly one for its lifetime.
    pub(crate) fn new(
        cfg: &CacheSection,
        metrics: std::sync::Arc<crate::metrics::EdgeMetrics>,
    ) -> Result<Self, CacheError> {
        let storage = TieredStorage::new(
            &StorageConfig {
                memory: cfg.memory,
                max_object: usize::try_from(cfg.max_object).unwrap_or(usize::MAX),
                redis_url: cfg.redis_url.clone(),
                redis_cluster: cfg.redis_cluster.clone(),
                l2_max_object: usize::try_from(cfg.l2_max_object).unwrap_or(usize::MAX),
                l2_timeout: cfg.l2_timeout,
            },
            metrics,
        )?;
        let storage: &'static TieredStorage = Box::leak(Box::new(storage));
        Ok(Self {
            storage,
            lock: Box::leak(Box::new(CoalescingLock::new(storage, cfg.lock_age))),
            lock_timeout: cfg.lock_timeout,
            stale_if_error: secs(cfg.stale_if_error),
            stale_while_revalidate: secs(cfg.stale_while_revalidate),
        })
    }

    /// The tiers (for purges and size metrics).
    pub(crate) fn storage(&self) -> &'static TieredStorage {
        self.storage
    }

    /// Turns the cache on for this request.
    pub(crate) fn enable(&self, session: &mut Session) {
        let mut overrides = CacheOptionOverrides::default();
        overrides.wait_timeout = Some(self.lock_timeout);
        session
            .cache
            .enable(self.storage, None, None, Some(self.lock), Some(overrides));
    }

    /// Whether and how long a response from upstream may be stored.
    pub(crate) fn cacheable(&self, resp: &ResponseHeader, kind: ObjectKind) -> RespCacheable {
        if resp.status.as_u16() != 200 {
            return RespCacheable::Uncacheable(NoCacheReason::OriginNotCache);
        }
        let cc = CacheControl::from_resp_headers(resp);
        let meta = match resp_cacheable(cc.as_ref(), resp.clone(), false, &NO_DEFAULT_TTL) {
            RespCacheable::Cacheable(m) => m,
            other => return other,
        };
        // Origin's window when it names one, else the edge's; never past the edge's bound.
        let bounded = |origin: u32, bound: u32| {
            if origin == 0 {
                bound
            } else {
                origin.min(bound)
            }
        };
        let sie = bounded(meta.stale_if_error_sec(), self.stale_if_error);
        let swr = if kind == ObjectKind::Manifest {
            bounded(
                meta.stale_while_revalidate_sec(),
                self.stale_while_revalidate,
            )
        } else {
            0
        };
        RespCacheable::Cacheable(CacheMeta::new(
            meta.fresh_until(),
            meta.created(),
            swr,
            sie,
            meta.response_header_copy(),
        ))
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// The `x-cache` value of an object response.
pub(crate) fn label(phase: CachePhase, tier: Option<Tier>) -> &'static str {
    match phase {
        CachePhase::Hit => match tier {
            Some(Tier::L2) => "HIT-L2",
            _ => "HIT-L1",
        },
        CachePhase::Stale | CachePhase::StaleUpdating => "STALE",
        CachePhase::Disabled(_) | CachePhase::Bypass | CachePhase::Uninit => "BYPASS",
        _ => "MISS",
    }
}
