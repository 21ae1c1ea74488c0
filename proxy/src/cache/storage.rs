//! [`TieredStorage`]: the pingora-cache [`Storage`] of the edge. moka in process (L1) over a
//! Redis shared by a region's edges (L2); origin is behind both (pingora fetches it on a miss).
//!
//! ```text
//!  lookup(key) ──► L1 moka (weighted by bytes, TinyLFU admission) ── hit ──► Hit{L1}
//!                   │ miss
//!                   ▼
//!                  L2 Redis GET sg:obj:{hash} (within l2-timeout; an error or a timeout is a
//!                   │ miss and a metric, never a failure) ── hit ──► fill L1 ──► Hit{L2}
//!                   ▼ miss
//!                  None: pingora takes the cache lock and fetches origin once
//!
//!  miss handler: buffers the body (≤ max-object, else caching is abandoned for this fetch and
//!  the response streams through) ─ finish ─► L1 insert, then L2 SET (≤ l2-max-object) with an
//!  expiry of freshness + the longest stale window, indexed in sg:objs:{content id}
//! ```
//!
//! Objects are stored whole (no partial-write streaming): a coalesced waiter gets the object
//! once it is complete. Bodies are `Bytes`, so a hit is a reference-count bump and a range is a
//! slice. Only complete objects are ever visible.
//!
//! L2 values: `SG1` ‖ u32 BE internal-meta length ‖ internal meta ‖ u32 BE header length ‖
//! header ‖ body (pingora's own `CacheMeta` serialisation). Keys: `sg:obj:{{id}}:{32 hex}` from
//! the content id (a Redis Cluster hash tag) and the cache key's combined hash, never the token;
//! `sg:objs:{{id}}` lists a content's keys. L2 is one Redis (`cache.redis-url`) or a Redis
//! Cluster (`cache.redis-cluster` seed nodes).

use std::{
    any::Any,
    sync::Arc,
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use moka::notification::RemovalCause;
use pingora::http::ResponseHeader;
use pingora::{
    Error, ErrorType, Result,
    cache::{
        CacheKey, CacheMeta, HitHandler, MissHandler, PurgeOutcome, PurgeTarget, PurgeType,
        Storage,
        key::{CacheHashKey, HashBinary},
        storage::{HandleHit, HandleMiss, MissFinishType},
        trace::SpanHandle,
    },
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;
use tracing::{debug, warn};

use crate::metrics::EdgeMetrics;

/// Which tier served a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    /// In-process memory.
    L1,
    /// The region's Redis.
    L2,
}

/// A complete cached object.
struct Object {
    internal: Bytes,
    header: Bytes,
    body: Bytes,
    /// The content it belongs to (the cache key's user tag), for per-content purges.
    content_id: Box<str>,
    /// The metadata decoded once, when the object entered this process: a hit then builds its
    /// `CacheMeta` from it instead of decompressing and parsing the stored header every time.
    decoded: Option<DecodedMeta>,
}

/// What a `CacheMeta` holds, for the metas `CacheMeta::new` rebuilds exactly: never
/// revalidated (`updated == created`), no epoch override, no variance, provenance at creation.
/// Others (a 304-refreshed manifest) are deserialized on every hit as before.
struct DecodedMeta {
    fresh_until: SystemTime,
    created: SystemTime,
    stale_while_revalidate_sec: u32,
    stale_if_error_sec: u32,
    header: ResponseHeader,
    /// Roughly what `header` holds in memory, for the L1 weigher.
    bytes: usize,
}

impl DecodedMeta {
    fn of(meta: &CacheMeta) -> Option<Self> {
        let exact = meta.updated() == meta.created()
            && meta.epoch_override().is_none()
            && meta.variance().is_none()
            && meta.provenance() == meta.created();
        let bytes = meta
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 48)
            .sum::<usize>()
            + 128;
        exact.then(|| Self {
            bytes,
            fresh_until: meta.fresh_until(),
            created: meta.created(),
            stale_while_revalidate_sec: meta.stale_while_revalidate_sec(),
            stale_if_error_sec: meta.stale_if_error_sec(),
            header: meta.response_header_copy(),
        })
    }

    fn meta(&self) -> CacheMeta {
        CacheMeta::new(
            self.fresh_until,
            self.created,
            self.stale_while_revalidate_sec,
            self.stale_if_error_sec,
            self.header.clone(),
        )
    }
}

impl Object {
    /// An object from pingora's serialised meta; `decoded` is filled when the meta rebuilds
    /// exactly (see [`DecodedMeta`]).
    fn new(internal: Bytes, header: Bytes, body: Bytes, content_id: Box<str>) -> Self {
        let decoded = CacheMeta::deserialize(&internal, &header)
            .ok()
            .as_ref()
            .and_then(DecodedMeta::of);
        Self {
            internal,
            header,
            body,
            content_id,
            decoded,
        }
    }

    fn weight(&self) -> u32 {
        let decoded = self.decoded.as_ref().map_or(0, |d| d.bytes);
        let n = self.internal.len() + self.header.len() + decoded + self.body.len() + 64;
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn meta(&self) -> Result<CacheMeta> {
        match &self.decoded {
            Some(d) => Ok(d.meta()),
            None => CacheMeta::deserialize(&self.internal, &self.header),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut v =
            Vec::with_capacity(11 + self.internal.len() + self.header.len() + self.body.len());
        v.extend_from_slice(b"SG1");
        v.put_u32(self.internal.len() as u32);
        v.extend_from_slice(&self.internal);
        v.put_u32(self.header.len() as u32);
        v.extend_from_slice(&self.header);
        v.extend_from_slice(&self.body);
        v
    }

    fn decode(raw: Bytes, content_id: &str) -> Option<Self> {
        let take_len = |b: &Bytes, at: usize| -> Option<usize> {
            let s = b.get(at..at + 4)?;
            Some(u32::from_be_bytes(s.try_into().ok()?) as usize)
        };
        if raw.get(..3)? != b"SG1" {
            return None;
        }
        let il = take_len(&raw, 3)?;
        let istart: usize = 7;
        let iend = istart.checked_add(il)?;
        let hl = take_len(&raw, iend)?;
        let hstart = iend + 4;
        let hend = hstart.checked_add(hl)?;
        if hend > raw.len() {
            return None;
        }
        Some(Self::new(
            raw.slice(istart..iend),
            raw.slice(hstart..hend),
            raw.slice(hend..),
            content_id.into(),
        ))
    }
}

/// What [`TieredStorage`] is built from.
#[derive(Debug, Clone)]
pub(crate) struct StorageConfig {
    /// L1 capacity in bytes.
    pub(crate) memory: u64,
    /// Largest object cached.
    pub(crate) max_object: usize,
    /// L2 Redis URL.
    pub(crate) redis_url: Option<String>,
    /// L2 Redis Cluster seed nodes (instead of `redis_url`).
    pub(crate) redis_cluster: Vec<String>,
    /// Largest object written to L2.
    pub(crate) l2_max_object: usize,
    /// Limit on one L2 operation.
    pub(crate) l2_timeout: Duration,
}

/// Where the shared tier lives: one Redis, or a Redis Cluster.
enum L2Client {
    Single(redis::Client),
    Cluster(Box<redis::cluster::ClusterClient>),
}

/// A live L2 connection (both kinds multiplex and reconnect by themselves).
#[derive(Clone)]
enum L2Con {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

/// The shared tier. Every key of one content shares a hash tag (`{content id}`), so a content's
/// objects and its index live in one cluster slot and its multi-key pipelines stay legal.
struct L2 {
    client: L2Client,
    /// Made on first use inside the worker runtime; a failed cluster connect is retried by the
    /// next operation (a single Redis connects lazily and never fails here).
    con: OnceCell<L2Con>,
    max_object: usize,
    timeout: Duration,
}

impl L2 {
    async fn con(&self) -> redis::RedisResult<L2Con> {
        self.con
            .get_or_try_init(|| async {
                match &self.client {
                    L2Client::Single(client) => {
                        let cfg = ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(self.timeout))
                            .set_response_timeout(Some(self.timeout))
                            .set_number_of_retries(1);
                        ConnectionManager::new_lazy_with_config(client.clone(), cfg)
                            .map(L2Con::Single)
                    }
                    L2Client::Cluster(client) => {
                        tokio::time::timeout(self.timeout * 4, client.get_async_connection())
                            .await
                            .map_err(|_| {
                                redis::RedisError::from((
                                    redis::ErrorKind::Io,
                                    "cluster connect timed out",
                                ))
                            })?
                            .map(L2Con::Cluster)
                    }
                }
            })
            .await
            .cloned()
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        self.bounded(|con| async move {
            match con {
                L2Con::Single(mut c) => cmd.query_async(&mut c).await,
                L2Con::Cluster(mut c) => cmd.query_async(&mut c).await,
            }
        })
        .await
    }

    async fn pipe(&self, p: &redis::Pipeline) -> redis::RedisResult<()> {
        self.bounded(|con| async move {
            match con {
                L2Con::Single(mut c) => p.query_async::<()>(&mut c).await,
                L2Con::Cluster(mut c) => p.query_async::<()>(&mut c).await,
            }
        })
        .await
    }

    /// Runs `op` within the tier's timeout, once more if the connection turns out to have
    /// dropped (a Redis that restarted: the manager reconnects for the second try), so the
    /// first request after a Redis blip is not sent on to origin. Every L2 operation is
    /// idempotent (GET, SET, SADD, EXPIRE, DEL).
    async fn bounded<T, F, Fut>(&self, op: F) -> redis::RedisResult<T>
    where
        F: Fn(L2Con) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            match op(self.con().await?).await {
                Err(e) if e.is_connection_dropped() || e.is_connection_refusal() => {
                    debug!(cause = %e, "cache l2 connection dropped: one retry");
                    op(self.con().await?).await
                }
                r => r,
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err((redis::ErrorKind::Io, "l2 timed out").into()),
        }
    }
}

/// L2 key of an object of `content_id` (hash-tagged by the content).
fn l2_key(content_id: &str, hash: &HashBinary) -> String {
    streamgate_config::contract::keys::edge_object(content_id, &hex::encode(hash))
}

/// L2 set of a content's object keys (same hash tag as its objects).
fn l2_index(content_id: &str) -> String {
    streamgate_config::contract::keys::edge_objects(content_id)
}

/// Why the cache tiers could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// `cache.redis-url` is not a Redis URL.
    #[error("cache.redis-url: {0}")]
    RedisUrl(#[source] redis::RedisError),
    /// `cache.redis-cluster` cannot make a cluster client.
    #[error("cache.redis-cluster: {0}")]
    RedisCluster(#[source] redis::RedisError),
}

/// The edge's cache storage. Built once and leaked (`&'static`, as pingora requires).
pub(crate) struct TieredStorage {
    l1: moka::sync::Cache<HashBinary, Arc<Object>>,
    l2: Option<L2>,
    max_object: usize,
    metrics: Arc<EdgeMetrics>,
}

impl TieredStorage {
    /// Builds the tiers (no I/O: L2 connects on first use).
    pub(crate) fn new(cfg: &StorageConfig, metrics: Arc<EdgeMetrics>) -> Result<Self, CacheError> {
        let evictions = metrics.clone();
        let l1 = moka::sync::Cache::builder()
            .max_capacity(cfg.memory)
            .weigher(|_k: &HashBinary, v: &Arc<Object>| v.weight())
            .support_invalidation_closures()
            .eviction_listener(move |_k, _v, cause| {
                if cause == RemovalCause::Size {
                    evictions.cache_eviction();
                }
            })
            .build();
        let client = if !cfg.redis_cluster.is_empty() {
            let c = redis::cluster::ClusterClient::builder(
                cfg.redis_cluster.iter().map(String::as_str),
            )
            .connection_timeout(cfg.l2_timeout)
            .response_timeout(cfg.l2_timeout)
            .retries(1)
            .build()
            .map_err(CacheError::RedisCluster)?;
            Some(L2Client::Cluster(Box::new(c)))
        } else {
            cfg.redis_url
                .as_deref()
                .map(|u| redis::Client::open(u).map(L2Client::Single))
                .transpose()
                .map_err(CacheError::RedisUrl)?
        };
        let l2 = client.map(|client| L2 {
            client,
            con: OnceCell::new(),
            max_object: cfg.l2_max_object,
            timeout: cfg.l2_timeout,
        });
        Ok(Self {
            l1,
            l2,
            max_object: cfg.max_object,
            metrics,
        })
    }

    /// Whether L1 holds an object under `key` (a fetch of it has finished here).
    pub(crate) fn in_l1(&self, key: &CacheKey) -> bool {
        self.l1.contains_key(&key.combined_bin())
    }

    /// L1 size: (bytes, objects).
    pub(crate) fn l1_size(&self) -> (u64, u64) {
        (self.l1.weighted_size(), self.l1.entry_count())
    }

    /// A hot hit without Pingora's cache phases: the object under `key` when L1 holds it
    /// whole, fresh at `now`, a `200` with a `Content-Length` and a decoded meta. The header is
    /// what Pingora's hit path would start from (the stored header, `Age`, HTTP/1.1); anything
    /// else (`None`) goes through the cache phases: L2, stale serving, revalidation.
    pub(crate) fn fresh_l1(
        &self,
        key: &CacheKey,
        now: SystemTime,
    ) -> Option<(ResponseHeader, Bytes)> {
        let obj = self.l1.get(&key.combined_bin())?;
        let d = obj.decoded.as_ref()?;
        let servable = d.fresh_until >= now
            && d.header.status == http::StatusCode::OK
            && d.header.headers.contains_key(http::header::CONTENT_LENGTH);
        if !servable {
            return None;
        }
        let mut header = d.header.clone();
        // A decoded meta was never revalidated: its age counts from its creation (RFC 9111 §4
        // wants `Age` on every answer from a cache).
        let age = now.duration_since(d.created).unwrap_or_default().as_secs();
        header.insert_header(http::header::AGE, age).ok()?;
        header.set_version(http::Version::HTTP_11);
        Some((header, obj.body.clone()))
    }

    /// Drops every object of `content_id` from L1 (and from L2 when `l2` is set); returns how
    /// many L2 keys were deleted.
    pub(crate) async fn purge_content(&self, content_id: &str, l2: bool) -> usize {
        let id: Box<str> = content_id.into();
        if self
            .l1
            .invalidate_entries_if(move |_, v| v.content_id == id)
            .is_err()
        {
            self.l1.invalidate_all();
        }
        let Some(tier) = self.l2.as_ref().filter(|_| l2) else {
            return 0;
        };
        let index = l2_index(content_id);
        let keys: Vec<String> = match tier.run(redis::cmd("SMEMBERS").arg(&index)).await {
            Ok(k) => k,
            Err(e) => {
                warn!(cause = %e, content_id, "cache l2 purge: index unreadable");
                self.metrics.cache_l2_error();
                return 0;
            }
        };
        let mut p = redis::pipe();
        for k in &keys {
            p.del(k).ignore();
        }
        p.del(&index).ignore();
        if let Err(e) = tier.pipe(&p).await {
            warn!(cause = %e, content_id, "cache l2 purge failed");
            self.metrics.cache_l2_error();
        }
        keys.len()
    }

    /// Empties L1 (after a gap in the invalidation feed).
    pub(crate) fn purge_all_l1(&self) {
        self.l1.invalidate_all();
    }

    /// Drops one object (by its cache key) from L1, and from L2 when `l2` is set.
    pub(crate) async fn purge_key(&self, key: &CacheKey, l2: bool) -> bool {
        let hash = key.combined_bin();
        let in_l1 = self.l1.remove(&hash).is_some();
        let mut in_l2 = false;
        if l2 && let Some(tier) = &self.l2 {
            match tier
                .run::<i64>(redis::cmd("DEL").arg(l2_key(&key.user_tag, &hash)))
                .await
            {
                Ok(n) => in_l2 = n > 0,
                Err(e) => {
                    warn!(cause = %e, "cache l2 purge failed");
                    self.metrics.cache_l2_error();
                }
            }
        }
        in_l1 || in_l2
    }

    async fn l2_get(&self, hash: &HashBinary, content_id: &str) -> Option<Arc<Object>> {
        let tier = self.l2.as_ref()?;
        let key = l2_key(content_id, hash);
        let raw: Option<Vec<u8>> = match tier.run(redis::cmd("GET").arg(&key)).await {
            Ok(v) => v,
            Err(e) => {
                debug!(cause = %e, "cache l2 read failed: treated as a miss");
                self.metrics.cache_l2_error();
                return None;
            }
        };
        let obj = Object::decode(Bytes::from(raw?), content_id);
        if obj.is_none() {
            warn!(key = %key, "cache l2 value undecodable: ignored");
        }
        obj.map(Arc::new)
    }

    fn l2_put(&'static self, hash: HashBinary, obj: Arc<Object>, meta_ttl: Duration) {
        let Some(tier) = &self.l2 else { return };
        if obj.body.len() > tier.max_object {
            return;
        }
        debug!(content_id = %obj.content_id, bytes = obj.body.len(), "cache l2 write queued");
        let secs = meta_ttl.as_secs().clamp(1, 30 * 24 * 3600);
        tokio::spawn(async move {
            let key = l2_key(&obj.content_id, &hash);
            let index = l2_index(&obj.content_id);
            let mut p = redis::pipe();
            p.cmd("SET")
                .arg(&key)
                .arg(obj.encode())
                .arg("EX")
                .arg(secs)
                .ignore();
            p.sadd(&index, &key).ignore();
            p.cmd("EXPIRE").arg(&index).arg(secs).arg("GT").ignore();
            p.cmd("EXPIRE").arg(&index).arg(secs).arg("NX").ignore();
            match tier.pipe(&p).await {
                Ok(()) => debug!(%key, "cache l2 written"),
                Err(e) => {
                    debug!(cause = %e, "cache l2 write failed");
                    self.metrics.cache_l2_error();
                }
            }
        });
    }
}

/// How long an object is worth keeping in L2: until the end of its longest stale window.
fn keep_for(meta: &CacheMeta) -> Duration {
    let fresh = meta
        .fresh_until()
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let stale = meta
        .stale_if_error_sec()
        .max(meta.stale_while_revalidate_sec());
    fresh + Duration::from_secs(u64::from(stale))
}

fn storage_error(what: &'static str) -> Box<Error> {
    Error::explain(ErrorType::InternalError, what)
}

#[async_trait]
impl Storage for TieredStorage {
    async fn lookup(
        &'static self,
        key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<Option<(CacheMeta, HitHandler)>> {
        let hash = key.combined_bin();
        let (obj, tier) = match self.l1.get(&hash) {
            Some(o) => (o, Tier::L1),
            None => match self.l2_get(&hash, &key.user_tag).await {
                Some(o) => {
                    self.l1.insert(hash, o.clone());
                    (o, Tier::L2)
                }
                // The L2 read took a round trip: a fetch of this key may have finished into
                // L1 meanwhile (and released its cache lock); look again before calling it a
                // miss, or this request would fetch the object a second time.
                None => match self.l1.get(&hash) {
                    Some(o) => (o, Tier::L1),
                    None => return Ok(None),
                },
            },
        };
        let meta = obj.meta()?;
        let hit = Hit {
            body: obj.body.clone(),
            start: 0,
            end: obj.body.len(),
            done: false,
            tier,
        };
        Ok(Some((meta, Box::new(hit))))
    }

    async fn get_miss_handler(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<MissHandler> {
        let (internal, header) = meta.serialize()?;
        Ok(Box::new(Miss {
            storage: self,
            hash: key.combined_bin(),
            content_id: key.user_tag.as_str().into(),
            internal: internal.into(),
            header: header.into(),
            keep_for: keep_for(meta),
            body: BytesMut::new(),
        }))
    }

    async fn purge(
        &'static self,
        target: PurgeTarget<'_>,
        _purge_type: PurgeType,
        _trace: &SpanHandle,
    ) -> Result<PurgeOutcome> {
        let compact = target.key();
        let hash = compact.combined_bin();
        let in_l1 = self.l1.remove(&hash).is_some();
        let mut in_l2 = false;
        if let Some(tier) = &self.l2 {
            let key = l2_key(&compact.user_tag, &hash);
            match tier.run::<i64>(redis::cmd("DEL").arg(key)).await {
                Ok(n) => in_l2 = n > 0,
                Err(_) => self.metrics.cache_l2_error(),
            }
        }
        Ok(if in_l1 || in_l2 {
            PurgeOutcome::Purged(None)
        } else {
            PurgeOutcome::NotFound
        })
    }

    async fn update_meta(
        &'static self,
        key: &CacheKey,
        meta: &CacheMeta,
        _trace: &SpanHandle,
    ) -> Result<bool> {
        let hash = key.combined_bin();
        let Some(old) = self.l1.get(&hash) else {
            return Ok(false);
        };
        let (internal, header) = meta.serialize()?;
        let obj = Arc::new(Object::new(
            internal.into(),
            header.into(),
            old.body.clone(),
            old.content_id.clone(),
        ));
        self.l1.insert(hash, obj.clone());
        self.l2_put(hash, obj, keep_for(meta));
        Ok(true)
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync + 'static) {
        self
    }
}

/// A hit: the whole body, or the window a range asked for.
pub(crate) struct Hit {
    body: Bytes,
    start: usize,
    end: usize,
    done: bool,
    tier: Tier,
}

impl Hit {
    /// The tier that served it.
    pub(crate) fn tier(&self) -> Tier {
        self.tier
    }
}

#[async_trait]
impl HandleHit for Hit {
    async fn read_body(&mut self) -> Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        Ok(Some(self.body.slice(self.start..self.end)))
    }

    async fn finish(
        self: Box<Self>,
        _storage: &'static (dyn Storage + Sync),
        _key: &CacheKey,
        _trace: &SpanHandle,
    ) -> Result<()> {
        Ok(())
    }

    fn can_seek(&self) -> bool {
        true
    }

    fn seek(&mut self, start: usize, end: Option<usize>) -> Result<()> {
        let end = end.unwrap_or(self.body.len());
        if start > end || end > self.body.len() {
            return Err(storage_error("seek out of range"));
        }
        self.start = start;
        self.end = end;
        self.done = false;
        Ok(())
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }

    fn as_any_mut(&mut self) -> &mut (dyn Any + Send + Sync) {
        self
    }
}

/// A fetch being written: buffered whole, published on `finish`.
struct Miss {
    storage: &'static TieredStorage,
    hash: HashBinary,
    content_id: Box<str>,
    internal: Bytes,
    header: Bytes,
    keep_for: Duration,
    body: BytesMut,
}

#[async_trait]
impl HandleMiss for Miss {
    async fn write_body(&mut self, data: Bytes, _eof: bool) -> Result<()> {
        if self.body.len() + data.len() > self.storage.max_object {
            // Too big to cache: pingora stops caching this fetch; the client still gets it.
            self.storage.metrics.cache_too_big();
            return Err(storage_error("object larger than cache.max-object"));
        }
        self.body.extend_from_slice(&data);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<MissFinishType> {
        let Miss {
            storage,
            hash,
            content_id,
            internal,
            header,
            keep_for,
            body,
        } = *self;
        let obj = Arc::new(Object::new(internal, header, body.freeze(), content_id));
        let size = obj.weight() as usize;
        storage.l1.insert(hash, obj.clone());
        storage.l2_put(hash, obj, keep_for);
        Ok(MissFinishType::Created(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l2_values_round_trip_and_reject_garbage() {
        let o = Object::new(
            Bytes::from_static(b"meta"),
            Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n"),
            Bytes::from_static(b"body bytes"),
            "c1".into(),
        );
        assert!(o.decoded.is_none(), "garbage meta is not decoded");
        let back = Object::decode(Bytes::from(o.encode()), "c1").unwrap();
        assert_eq!(back.internal, o.internal);
        assert_eq!(back.header, o.header);
        assert_eq!(back.body, o.body);
        assert!(Object::decode(Bytes::from_static(b"SG1\0\0\0\x09ab"), "c").is_none());
        assert!(Object::decode(Bytes::from_static(b"XX"), "c").is_none());
        assert!(Object::decode(Bytes::new(), "c").is_none());
    }

    fn fresh_meta() -> CacheMeta {
        meta_created_at(SystemTime::now())
    }

    fn meta_created_at(created: SystemTime) -> CacheMeta {
        let mut header = ResponseHeader::build(200, None).unwrap();
        header
            .insert_header("content-type", "video/iso.segment")
            .unwrap();
        header.insert_header("etag", "\"abc\"").unwrap();
        header.insert_header("cache-control", "max-age=60").unwrap();
        CacheMeta::new(created + Duration::from_secs(60), created, 5, 30, header)
    }

    fn same(a: &CacheMeta, b: &CacheMeta) {
        assert_eq!(a.fresh_until(), b.fresh_until());
        assert_eq!(a.created(), b.created());
        assert_eq!(a.updated(), b.updated());
        assert_eq!(a.provenance(), b.provenance());
        assert_eq!(a.epoch(), b.epoch());
        assert_eq!(a.epoch_override(), b.epoch_override());
        assert_eq!(a.variance(), b.variance());
        assert_eq!(
            a.stale_while_revalidate_sec(),
            b.stale_while_revalidate_sec()
        );
        assert_eq!(a.stale_if_error_sec(), b.stale_if_error_sec());
        assert_eq!(a.response_header().status, b.response_header().status);
        let headers = |m: &CacheMeta| {
            let mut h: Vec<(String, Vec<u8>)> = m
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect();
            h.sort();
            h
        };
        assert_eq!(headers(a), headers(b));
    }

    #[test]
    fn hits_rebuild_the_stored_meta_exactly() {
        let meta = fresh_meta();
        let (internal, header) = meta.serialize().unwrap();
        let o = Object::new(internal.into(), header.into(), Bytes::new(), "c1".into());
        assert!(o.decoded.is_some(), "a fresh meta is decoded once");
        let stored = CacheMeta::deserialize(&o.internal, &o.header).unwrap();
        same(&o.meta().unwrap(), &stored);
        same(&o.meta().unwrap(), &meta);
        // The L2 round trip decodes it as well.
        let back = Object::decode(Bytes::from(o.encode()), "c1").unwrap();
        assert!(back.decoded.is_some());
        same(&back.meta().unwrap(), &meta);
    }

    #[test]
    fn metas_it_cannot_rebuild_are_deserialized_on_every_hit() {
        // A revalidated meta (`updated` after `created`) and one with an epoch override.
        let mut revalidated = meta_created_at(SystemTime::now() - Duration::from_secs(600));
        revalidated.update_freshness(SystemTime::now() + Duration::from_secs(60), 5, 30);
        let mut overridden = fresh_meta();
        overridden.set_epoch_override(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000));
        for meta in [revalidated, overridden] {
            let (internal, header) = meta.serialize().unwrap();
            let o = Object::new(internal.into(), header.into(), Bytes::new(), "c1".into());
            assert!(o.decoded.is_none());
            same(&o.meta().unwrap(), &meta);
        }
    }

    #[test]
    fn hits_seek_within_the_body() {
        let mut h = Hit {
            body: Bytes::from_static(b"0123456789"),
            start: 0,
            end: 10,
            done: false,
            tier: Tier::L1,
        };
        h.seek(2, Some(5)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert_eq!(h.read_body().await.unwrap().unwrap(), "234");
            assert!(h.read_body().await.unwrap().is_none());
        });
        assert!(h.seek(8, Some(11)).is_err());
        assert!(h.seek(6, Some(5)).is_err());
    }
}
