//! The edge's consumer of `sg:invalidate` (Redis pub/sub, published by origin): what every edge
//! must forget when a content is deleted or re-packaged, its policy changes, or a viewer logs
//! out.
//!
//! ```text
//!  loop (pingora background service, until shutdown)
//!   ├─ connect, SUBSCRIBE sg:invalidate
//!   ├─ catch up: pub/sub drops messages while nobody listens, but every message is also kept,
//!   │    numbered, in the invalidation log (contract::invalidation_log). After a
//!   │    re-subscription the edge reads what followed its last message:
//!   │      same epoch, nothing missing ─► replay the missed messages; L1 and policies stay
//!   │      new epoch / seq went back / log trimmed / log unreadable
//!   │                                  ─► forget every policy and empty L1 (fail closed)
//!   │    then sg:revoked:* is scanned into the revoked set
//!   ├─ messages: policy_changed                    ─► forget the content's policy
//!   │            content_deleted / repackaged       ─► forget its policy and wrapped key, drop
//!   │                                                 its objects from L1 (origin deletes the
//!   │                                                 L2 keys)
//!   │            purged {content_id}                ─► drop its objects from L1
//!   │            purged {content_id, path}          ─► drop that object from L1 and L2
//!   │            session_revoked {jti, exp}         ─► refuse that session until exp
//!   │    a message already replayed is skipped; one that skips a number triggers a catch-up
//!   ├─ a PING every 15 s: a silent dead connection is noticed
//!   └─ connection lost ─► back off 100 ms … 5 s, reconnect
//! ```
//!
//! A Redis blip therefore costs the edge nothing: objects stay in L1, so with origin down too
//! the warmed playlists and init segments still play (the double fault of issue #12).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use futures_util::StreamExt;
use pingora::{server::ShutdownWatch, services::background::BackgroundService};
use redis::streams::StreamRangeReply;
use streamgate_config::contract::{
    INVALIDATE_CHANNEL, Invalidation, STREAM_FIELD,
    invalidation_log::{self, Envelope},
    keys,
};
use tracing::{debug, info, warn};

use crate::{
    cache::EdgeCache, grant::Grants, license::Licenses, metrics::EdgeMetrics, upstream::cache_key,
};

/// How often the subscription is probed.
const PING_EVERY: Duration = Duration::from_secs(15);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Most log entries replayed in one catch-up; an edge further behind resyncs fully.
const MAX_REPLAY: usize = invalidation_log::LOG_LEN as usize;

/// Where this edge is in the invalidation log: the last message it applied.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Position {
    epoch: String,
    seq: u64,
    /// Stream id of that message (`0-0` before the first).
    id: String,
}

/// How far this edge has followed the log.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cursor {
    /// Never subscribed: nothing cached can predate a missed message.
    Fresh,
    /// Up to date as of this message.
    At(Position),
    /// Subscribed before, but the log could not be read: every re-subscription is a gap.
    Unknown,
}

/// What a live message with a log position means for this edge.
enum Live {
    /// The next message: apply it.
    Next,
    /// Already applied (replayed during a catch-up).
    Seen,
    /// Messages before it are missing: catch up from the log.
    Behind,
}

/// The log as read by [`invalidation_log::RESYNC_SCRIPT`].
#[derive(Debug, Default)]
struct LogView {
    epoch: String,
    seq: u64,
    last_id: String,
    /// `(id, seq, message JSON)` after the edge's last id, in order.
    entries: Vec<(String, Option<u64>, Option<String>)>,
}

/// What a catch-up does.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// First subscription of this process: nothing to compare with.
    Start(Position),
    /// Nothing was lost: apply these messages (maybe none) and move to the position.
    Replay(Position, Vec<String>),
    /// Something may have been lost: forget everything and start over at the position.
    Gap(Position, &'static str),
}

impl LogView {
    fn position(&self) -> Position {
        Position {
            epoch: self.epoch.clone(),
            seq: self.seq,
            id: if self.last_id.is_empty() {
                "0-0".to_owned()
            } else {
                self.last_id.clone()
            },
        }
    }

    /// Decides from the edge's cursor whether the entries cover everything it missed.
    fn plan(&self, cursor: &Cursor) -> Plan {
        let last = match cursor {
            Cursor::Fresh => return Plan::Start(self.position()),
            Cursor::Unknown => return Plan::Gap(self.position(), "position unknown"),
            Cursor::At(p) => p,
        };
        if self.epoch != last.epoch {
            return Plan::Gap(self.position(), "new epoch (redis lost its data)");
        }
        if self.seq < last.seq {
            return Plan::Gap(self.position(), "sequence went back (redis lost writes)");
        }
        let mut want = last.seq + 1;
        let mut messages = Vec::new();
        let mut id = last.id.clone();
        for (entry_id, seq, data) in &self.entries {
            let (Some(seq), Some(data)) = (seq, data) else {
                return Plan::Gap(self.position(), "malformed log entry");
            };
            if *seq < want {
                continue;
            }
            if *seq != want {
                return Plan::Gap(self.position(), "log trimmed past the last message");
            }
            messages.push(data.clone());
            id.clone_from(entry_id);
            want += 1;
        }
        if want != self.seq + 1 {
            return Plan::Gap(self.position(), "log does not reach the last message");
        }
        Plan::Replay(
            Position {
                epoch: self.epoch.clone(),
                seq: self.seq,
                id,
            },
            messages,
        )
    }
}

/// The `sg:invalidate` subscriber.
pub(crate) struct Invalidator {
    client: redis::Client,
    grants: Option<Arc<Grants>>,
    cache: Option<Arc<EdgeCache>>,
    /// Wrapped content keys this edge holds (forgotten with their content).
    licenses: Option<Arc<Licenses>>,
    metrics: Arc<EdgeMetrics>,
    /// The last log message applied.
    cursor: Mutex<Cursor>,
    /// [`invalidation_log::RESYNC_SCRIPT`], hashed once.
    resync_script: redis::Script,
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
            licenses: None,
            metrics,
            cursor: Mutex::new(Cursor::Fresh),
            resync_script: redis::Script::new(invalidation_log::RESYNC_SCRIPT),
            ping_every: PING_EVERY,
        }
    }

    /// Also forgets a deleted or re-packaged content's wrapped key.
    pub(crate) fn forgetting_keys(mut self, licenses: Arc<Licenses>) -> Self {
        self.licenses = Some(licenses);
        self
    }

    async fn drop_objects(&self, content_id: &str, path: Option<&str>) {
        if let Some(cache) = &self.cache {
            let storage = cache.storage();
            match path {
                // One object: every edge deletes its L2 key too (origin, which republishes
                // manifests when captions change, cannot name pingora's key hashes).
                Some(p) => {
                    storage.purge_key(&cache_key(content_id, p), true).await;
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
        let mut con = self.client.get_multiplexed_async_connection().await?;
        self.resync(&mut con).await?;
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
                        Ok(json) => self.on_message(&json, &mut con).await,
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

    /// Catches up after a (re)subscription: replays missed messages from the log (or forgets
    /// everything when it cannot), then reloads the revoked sessions.
    async fn resync(&self, con: &mut redis::aio::MultiplexedConnection) -> redis::RedisResult<()> {
        let outcome = self.catch_up(con).await;
        let mut revoked = 0;
        if let Some(grants) = &self.grants {
            let mut iter: redis::AsyncIter<'_, String> = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(format!("{}*", keys::REVOKED_SESSION_PREFIX))
                .arg("COUNT")
                .arg(1000)
                .clone()
                .iter_async(con)
                .await?;
            let mut keys = Vec::new();
            while let Some(k) = iter.next_item().await {
                keys.push(k?);
            }
            drop(iter);
            let now = crate::clock::unix_now();
            for key in &keys {
                let ttl: i64 = redis::cmd("TTL").arg(key).query_async(con).await?;
                if let Some(jti) = keys::revoked_jti(key)
                    && ttl > 0
                {
                    grants.revoke_session(jti, now + ttl);
                }
            }
            revoked = keys.len();
        }
        self.metrics.invalidation("resync");
        info!(
            outcome,
            revoked,
            channel = INVALIDATE_CHANNEL,
            "subscribed, caches resynchronised"
        );
        Ok(())
    }

    /// Reads the log after `after` (a stream id; `""`: no entries wanted).
    async fn read_log(
        &self,
        con: &mut redis::aio::MultiplexedConnection,
        after: &str,
    ) -> redis::RedisResult<LogView> {
        let (epoch, seq, last_id, range): (String, u64, String, StreamRangeReply) = self
            .resync_script
            .key(invalidation_log::STATE_KEY)
            .key(invalidation_log::LOG_KEY)
            .arg(after)
            .arg(MAX_REPLAY)
            .invoke_async(con)
            .await?;
        let entries = range
            .ids
            .into_iter()
            .map(|e| {
                let seq = e.get::<u64>(invalidation_log::SEQ_FIELD);
                let data = e.get::<String>(STREAM_FIELD);
                (e.id, seq, data)
            })
            .collect();
        Ok(LogView {
            epoch,
            seq,
            last_id,
            entries,
        })
    }

    /// Brings this edge up to date with the log; returns what it did (for logs).
    async fn catch_up(&self, con: &mut redis::aio::MultiplexedConnection) -> &'static str {
        let cursor = self.cursor.lock().expect("cursor lock").clone();
        let after = match &cursor {
            Cursor::At(p) => p.id.clone(),
            Cursor::Fresh | Cursor::Unknown => String::new(),
        };
        let plan = match self.read_log(con, &after).await {
            Ok(view) => view.plan(&cursor),
            Err(e) => {
                warn!(cause = %e, "invalidation log unreadable");
                let first = cursor == Cursor::Fresh;
                *self.cursor.lock().expect("cursor lock") = Cursor::Unknown;
                if first {
                    self.forget_policies();
                    return "started without the log";
                }
                self.forget_everything("log unreadable");
                return "gap";
            }
        };
        let (position, outcome) = match plan {
            Plan::Start(p) => {
                self.forget_policies();
                (p, "started")
            }
            Plan::Replay(p, messages) => {
                for json in &messages {
                    self.apply_json(json).await;
                    self.metrics.invalidation("replayed");
                }
                debug!(
                    replayed = messages.len(),
                    seq = p.seq,
                    "caught up from the log"
                );
                (p, "caught up")
            }
            Plan::Gap(p, why) => {
                self.forget_everything(why);
                (p, "gap")
            }
        };
        *self.cursor.lock().expect("cursor lock") = Cursor::At(position);
        outcome
    }

    /// Forgets every cached policy (they are fetched again from origin).
    fn forget_policies(&self) {
        if let Some(g) = &self.grants {
            g.forget_all_contents();
        }
    }

    /// A message may have been missed: forget every policy and object this edge holds.
    fn forget_everything(&self, why: &'static str) {
        warn!(
            why,
            "invalidations may have been missed: emptying L1 and policies"
        );
        self.forget_policies();
        if let Some(cache) = &self.cache {
            cache.storage().purge_all_l1();
        }
        self.metrics.invalidation("gap");
    }

    /// A message from the subscription: applied unless already replayed; one that skips a
    /// number sends the edge back to the log first.
    async fn on_message(&self, json: &str, con: &mut redis::aio::MultiplexedConnection) {
        let env: Envelope = match serde_json::from_str(json) {
            Ok(m) => m,
            Err(e) => {
                warn!(cause = %e, channel = INVALIDATE_CHANNEL, "malformed message ignored");
                self.metrics.invalidation("malformed");
                return;
            }
        };
        if let (Some(epoch), Some(seq)) = (&env.epoch, env.seq) {
            let live = {
                let mut cursor = self.cursor.lock().expect("cursor lock");
                match &mut *cursor {
                    Cursor::At(p) if p.epoch == *epoch => {
                        if seq <= p.seq {
                            Live::Seen
                        } else if seq == p.seq + 1 {
                            p.seq = seq;
                            if let Some(id) = &env.id {
                                p.id.clone_from(id);
                            }
                            Live::Next
                        } else {
                            Live::Behind
                        }
                    }
                    Cursor::At(_) => Live::Behind,
                    Cursor::Fresh | Cursor::Unknown => Live::Next,
                }
            };
            match live {
                Live::Next => {}
                Live::Seen => {
                    debug!(seq, "invalidation already applied");
                    return;
                }
                Live::Behind => {
                    let outcome = self.catch_up(con).await;
                    info!(seq, outcome, "invalidation out of sequence: caught up");
                    return;
                }
            }
        }
        self.apply(&env.message).await;
    }

    /// Applies a message from the log.
    async fn apply_json(&self, json: &str) {
        match serde_json::from_str::<Envelope>(json) {
            Ok(env) => self.apply(&env.message).await,
            Err(e) => {
                warn!(cause = %e, "malformed log entry ignored");
                self.metrics.invalidation("malformed");
            }
        }
    }

    async fn forget_key(&self, content_id: &str) {
        if let Some(l) = &self.licenses {
            l.forget(content_id).await;
        }
    }

    async fn apply(&self, msg: &Invalidation) {
        let grants = self.grants.as_deref();
        let kind = match msg {
            Invalidation::ContentDeleted { content_id } => {
                if let Some(g) = grants {
                    g.forget_content(content_id).await;
                }
                self.forget_key(content_id).await;
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
                self.forget_key(content_id).await;
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

    fn view(epoch: &str, seq: u64, entries: &[(u64, &str)]) -> LogView {
        LogView {
            epoch: epoch.into(),
            seq,
            last_id: entries
                .last()
                .map(|e| format!("{}-0", e.0))
                .unwrap_or_default(),
            entries: entries
                .iter()
                .map(|(n, m)| (format!("{n}-0"), Some(*n), Some((*m).to_owned())))
                .collect(),
        }
    }

    fn at(epoch: &str, seq: u64) -> Cursor {
        Cursor::At(Position {
            epoch: epoch.into(),
            seq,
            id: format!("{seq}-0"),
        })
    }

    #[test]
    fn plan_replays_only_a_complete_run() {
        // Nothing published while away.
        assert!(matches!(view("e", 4, &[]).plan(&at("e", 4)), Plan::Replay(_, m) if m.is_empty()));
        // Two missed, both in the log (an older entry before them is skipped).
        match view("e", 6, &[(4, "a"), (5, "b"), (6, "c")]).plan(&at("e", 4)) {
            Plan::Replay(p, m) => {
                assert_eq!(m, ["b", "c"]);
                assert_eq!((p.seq, p.id.as_str()), (6, "6-0"));
            }
            other => panic!("{other:?}"),
        }
        // Trimmed: 5 is gone.
        assert!(matches!(
            view("e", 6, &[(6, "c")]).plan(&at("e", 4)),
            Plan::Gap(_, _)
        ));
        // The log stops short of the state's seq (entries deleted, or capped).
        assert!(matches!(
            view("e", 7, &[(5, "b"), (6, "c")]).plan(&at("e", 4)),
            Plan::Gap(_, _)
        ));
        // Redis lost its data: a new epoch, or the same epoch with lost writes.
        assert!(matches!(
            view("f", 9, &[]).plan(&at("e", 4)),
            Plan::Gap(_, _)
        ));
        assert!(matches!(
            view("e", 3, &[]).plan(&at("e", 4)),
            Plan::Gap(_, _)
        ));
        // A log entry without its fields.
        let mut v = view("e", 5, &[(5, "b")]);
        v.entries[0].2 = None;
        assert!(matches!(v.plan(&at("e", 4)), Plan::Gap(_, _)));
        // First subscription starts at the end; a lost position is always a gap.
        assert!(
            matches!(view("e", 6, &[]).plan(&Cursor::Fresh), Plan::Start(p) if p.seq == 6 && p.id == "0-0")
        );
        assert!(matches!(
            view("e", 6, &[]).plan(&Cursor::Unknown),
            Plan::Gap(_, _)
        ));
    }

    async fn publish(con: &mut redis::aio::MultiplexedConnection, msg: &Invalidation) -> i64 {
        redis::Script::new(invalidation_log::PUBLISH_SCRIPT)
            .key(invalidation_log::STATE_KEY)
            .key(invalidation_log::LOG_KEY)
            .arg(serde_json::to_string(msg).unwrap())
            .arg(invalidation_log::LOG_LEN)
            .arg(INVALIDATE_CHANNEL)
            .invoke_async(con)
            .await
            .unwrap()
    }

    fn purged(id: &str) -> Invalidation {
        Invalidation::Purged {
            content_id: id.into(),
            path: None,
        }
    }

    fn count(metrics: &EdgeMetrics, kind: &str) -> u64 {
        let page = String::from_utf8(metrics.render()).unwrap();
        let prefix = format!("streamgate_edge_invalidations_total{{type=\"{kind}\"}} ");
        page.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |n| n.parse().unwrap())
    }

    /// Through a real Redis and the real scripts: messages published while the edge was away
    /// are replayed from the log (no gap, so L1 would be kept); a Redis that lost its data, or
    /// a log trimmed past the edge's position, is a gap (L1 emptied).
    #[tokio::test]
    async fn missed_messages_are_replayed_and_losses_are_gaps() {
        let redis = streamgate_testkit::PrivateRedis::start();
        let client = redis::Client::open(redis.url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let metrics = Arc::new(EdgeMetrics::new().unwrap());
        let inv = Invalidator::new(client.clone(), None, None, metrics.clone());

        publish(&mut con, &purged("before")).await;
        assert_eq!(inv.catch_up(&mut con).await, "started");
        assert_eq!(
            count(&metrics, "purged"),
            0,
            "history before the edge is not replayed"
        );

        publish(&mut con, &purged("a")).await;
        publish(&mut con, &purged("b")).await;
        assert_eq!(inv.catch_up(&mut con).await, "caught up");
        assert_eq!(count(&metrics, "replayed"), 2);
        assert_eq!(count(&metrics, "purged"), 2);
        assert_eq!(count(&metrics, "gap"), 0);

        // Nothing new: nothing replayed, still no gap.
        assert_eq!(inv.catch_up(&mut con).await, "caught up");
        assert_eq!(count(&metrics, "replayed"), 2);

        // Live: the next number applies, a replayed one is skipped, a skipped number catches up.
        let live = |seq: u64, id: &str| {
            format!(
                r#"{{"epoch":"{}","seq":{seq},"id":"{id}","type":"purged","content_id":"x"}}"#,
                match &*inv.cursor.lock().unwrap() {
                    Cursor::At(p) => p.epoch.clone(),
                    c => panic!("{c:?}"),
                }
            )
        };
        let seq_now = match &*inv.cursor.lock().unwrap() {
            Cursor::At(p) => p.seq,
            c => panic!("{c:?}"),
        };
        let msg = live(seq_now, "0-1");
        inv.on_message(&msg, &mut con).await;
        assert_eq!(
            count(&metrics, "purged"),
            2,
            "an applied number is not applied again"
        );
        publish(&mut con, &purged("c")).await;
        publish(&mut con, &purged("d")).await;
        let msg = live(seq_now + 2, "9999999999999-0");
        inv.on_message(&msg, &mut con).await;
        assert_eq!(count(&metrics, "replayed"), 4, "c and d came from the log");
        assert_eq!(count(&metrics, "gap"), 0);

        // Trimmed past the edge's position.
        publish(&mut con, &purged("e")).await;
        publish(&mut con, &purged("f")).await;
        let _: i64 = redis::cmd("XTRIM")
            .arg(invalidation_log::LOG_KEY)
            .arg("MAXLEN")
            .arg(1)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(inv.catch_up(&mut con).await, "gap");
        assert_eq!(count(&metrics, "gap"), 1);

        // Redis lost everything: a new epoch.
        let _: () = redis::cmd("FLUSHALL").query_async(&mut con).await.unwrap();
        publish(&mut con, &purged("g")).await;
        assert_eq!(inv.catch_up(&mut con).await, "gap");
        assert_eq!(count(&metrics, "gap"), 2);
        assert_eq!(inv.catch_up(&mut con).await, "caught up");
        assert_eq!(count(&metrics, "gap"), 2);
    }

    /// A message published through the script reaches a subscriber as an envelope that parses
    /// back to the message, carrying its log position.
    #[tokio::test]
    async fn published_envelope_parses() {
        let redis = streamgate_testkit::PrivateRedis::start();
        let client = redis::Client::open(redis.url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let mut sub = client.get_async_pubsub().await.unwrap();
        sub.subscribe(INVALIDATE_CHANNEL).await.unwrap();
        let msg = Invalidation::SessionRevoked {
            jti: "j\"1".into(),
            exp: 1_900_000_000,
        };
        assert_eq!(publish(&mut con, &msg).await, 1);
        let got: String = sub
            .on_message()
            .next()
            .await
            .unwrap()
            .get_payload()
            .unwrap();
        let env: Envelope = serde_json::from_str(&got).unwrap();
        assert_eq!(env.message, msg);
        assert_eq!(env.seq, Some(1));
        assert!(env.epoch.is_some_and(|e| !e.is_empty()));
        assert!(env.id.is_some_and(|i| i.contains('-')));
    }

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
