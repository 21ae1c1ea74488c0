//! The job queue: the consumer group on `sg:jobs`, claims and heartbeats, events on
//! `sg:events`, acknowledgements and the dead-letter stream.
//!
//! Every command runs on one multiplexed [`ConnectionManager`], which reconnects with
//! exponential backoff after an outage; each call is bounded by `redis.command-timeout` (plus
//! the block time for `XREADGROUP`), so an outage surfaces as an error, never as a hang.

use std::time::Duration;

use redis::{
    FromRedisValue, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
    streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply},
};
use streamgate_config::{
    RedisConfig, WorkerConfig,
    contract::{EVENTS_STREAM, Event, JOBS_DEAD_LETTER, JOBS_GROUP, JOBS_STREAM, STREAM_FIELD},
};

use crate::Error;

/// Approximate cap of `sg:events` (`MAXLEN ~`).
const EVENTS_MAXLEN: usize = 100_000;
/// How long the last transient error of an entry is remembered, for the dead-letter reason.
const LAST_ERROR_TTL_S: u64 = 7 * 24 * 3600;

/// Refreshes our claim on an entry only if we still own it: checks the owner in `XPENDING`,
/// then `XCLAIM … 0 id JUSTID` resets its idle time without counting a delivery.
const HEARTBEAT: &str = r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
";

/// One delivered stream entry.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// Stream entry id.
    pub(crate) id: String,
    /// The `data` field (JSON job), if present and a string.
    pub(crate) data: Option<String>,
    /// Taken over from another consumer (`XAUTOCLAIM`) rather than newly read.
    pub(crate) reclaimed: bool,
}

/// This worker's handle on the queue.
#[derive(Clone)]
pub(crate) struct Queue {
    conn: ConnectionManager,
    consumer: String,
    timeout: Duration,
    block: Duration,
    reclaim_idle: Duration,
    heartbeat: Script,
}

impl Queue {
    /// Prepares a lazily connecting queue handle (start-up does not wait for Redis).
    pub(crate) fn new(
        redis: &RedisConfig,
        worker: &WorkerConfig,
        consumer: String,
    ) -> Result<Self, Error> {
        let client = redis::Client::open(redis.url.as_str())?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(redis.command_timeout))
            .set_response_timeout(Some(redis.command_timeout + worker.block))
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(10));
        Ok(Self {
            conn: ConnectionManager::new_lazy_with_config(client, cfg)?,
            consumer,
            timeout: redis.command_timeout,
            block: worker.block,
            reclaim_idle: worker.reclaim_idle,
            heartbeat: Script::new(HEARTBEAT),
        })
    }

    /// This worker's consumer name.
    pub(crate) fn consumer(&self) -> &str {
        &self.consumer
    }

    async fn query<T: FromRedisValue>(
        &self,
        name: &'static str,
        cmd: &redis::Cmd,
        extra: Duration,
    ) -> Result<T, Error> {
        let mut conn = self.conn.clone();
        tokio::time::timeout(self.timeout + extra, cmd.query_async(&mut conn))
            .await
            .map_err(|_| Error::RedisTimeout(name))?
            .map_err(Error::from)
    }

    async fn atomic(&self, name: &'static str, pipe: &redis::Pipeline) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        tokio::time::timeout(self.timeout, pipe.query_async::<()>(&mut conn))
            .await
            .map_err(|_| Error::RedisTimeout(name))?
            .map_err(Error::from)
    }

    /// Creates the consumer group from the start of the stream (jobs enqueued before any worker
    /// existed are not lost); an existing group is fine.
    pub(crate) async fn ensure_group(&self) -> Result<(), Error> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(JOBS_STREAM)
            .arg(JOBS_GROUP)
            .arg("0")
            .arg("MKSTREAM");
        match self
            .query::<()>("XGROUP CREATE", &cmd, Duration::ZERO)
            .await
        {
            Err(Error::Redis(e)) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// The next job for this worker: first one abandoned by a dead worker (idle longer than
    /// `reclaim-idle`), else a new one, waiting up to `block`. `None` when nothing came.
    pub(crate) async fn next(&self) -> Result<Option<Delivery>, Error> {
        let mut cmd = redis::cmd("XAUTOCLAIM");
        cmd.arg(JOBS_STREAM)
            .arg(JOBS_GROUP)
            .arg(&self.consumer)
            .arg(self.reclaim_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(1);
        let claimed: StreamAutoClaimReply = self.query("XAUTOCLAIM", &cmd, Duration::ZERO).await?;
        if let Some(entry) = claimed.claimed.into_iter().next() {
            return Ok(Some(delivery(entry, true)));
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(JOBS_GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(self.block.as_millis() as u64)
            .arg("STREAMS")
            .arg(JOBS_STREAM)
            .arg(">");
        let read: Option<StreamReadReply> = self.query("XREADGROUP", &cmd, self.block).await?;
        Ok(read
            .and_then(|r| r.keys.into_iter().next())
            .and_then(|k| k.ids.into_iter().next())
            .map(|e| delivery(e, false)))
    }

    /// How many times the entry has been delivered (this delivery included).
    pub(crate) async fn deliveries(&self, id: &str) -> Result<u32, Error> {
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(JOBS_STREAM).arg(JOBS_GROUP).arg(id).arg(id).arg(1);
        let reply: StreamPendingCountReply = self.query("XPENDING", &cmd, Duration::ZERO).await?;
        Ok(reply
            .ids
            .first()
            .map_or(1, |p| u32::try_from(p.times_delivered).unwrap_or(u32::MAX)))
    }

    /// Refreshes our claim on `id`. `false` means another worker owns it now (or it was acked).
    pub(crate) async fn heartbeat(&self, id: &str) -> Result<bool, Error> {
        let mut conn = self.conn.clone();
        let mut inv = self.heartbeat.key(JOBS_STREAM);
        inv.arg(JOBS_GROUP).arg(&self.consumer).arg(id);
        let owned: i64 = tokio::time::timeout(self.timeout, inv.invoke_async(&mut conn))
            .await
            .map_err(|_| Error::RedisTimeout("heartbeat"))??;
        Ok(owned == 1)
    }

    /// Writes an event on `sg:events`.
    pub(crate) async fn emit(&self, event: &Event) -> Result<(), Error> {
        let cmd = xadd_event(event);
        self.query::<String>("XADD", &cmd, Duration::ZERO)
            .await
            .map(drop)
    }

    /// Writes the final event of a job and acknowledges it, atomically (`MULTI`).
    pub(crate) async fn finish(&self, id: &str, event: &Event) -> Result<(), Error> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .add_command(xadd_event(event))
            .ignore()
            .xack(JOBS_STREAM, JOBS_GROUP, &[id])
            .ignore()
            .del(error_key(id))
            .ignore();
        self.atomic("finish", &pipe).await
    }

    /// Moves an entry to `sg:jobs:dead` (with the reason), writes `event` if any, and
    /// acknowledges it, atomically.
    pub(crate) async fn dead_letter(
        &self,
        d: &Delivery,
        reason: &str,
        event: Option<&Event>,
    ) -> Result<(), Error> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("XADD")
            .arg(JOBS_DEAD_LETTER)
            .arg("*")
            .arg(STREAM_FIELD)
            .arg(d.data.as_deref().unwrap_or(""))
            .arg("reason")
            .arg(reason)
            .arg("entry_id")
            .arg(&d.id)
            .arg("consumer")
            .arg(&self.consumer)
            .ignore();
        if let Some(event) = event {
            pipe.add_command(xadd_event(event)).ignore();
        }
        pipe.xack(JOBS_STREAM, JOBS_GROUP, &[&d.id])
            .ignore()
            .del(error_key(&d.id))
            .ignore();
        self.atomic("dead letter", &pipe).await
    }

    /// Remembers why an attempt failed, for the dead-letter reason of a later attempt.
    pub(crate) async fn record_error(&self, id: &str, reason: &str) -> Result<(), Error> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(error_key(id))
            .arg(reason)
            .arg("EX")
            .arg(LAST_ERROR_TTL_S);
        self.query::<()>("SET", &cmd, Duration::ZERO).await
    }

    /// The last recorded failure of an entry, if any.
    pub(crate) async fn last_error(&self, id: &str) -> Result<Option<String>, Error> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(error_key(id));
        self.query("GET", &cmd, Duration::ZERO).await
    }
}

fn delivery(entry: StreamId, reclaimed: bool) -> Delivery {
    Delivery {
        data: entry.get::<String>(STREAM_FIELD),
        id: entry.id,
        reclaimed,
    }
}

fn error_key(id: &str) -> String {
    streamgate_config::contract::keys::job_error(id)
}

fn xadd_event(event: &Event) -> redis::Cmd {
    // Event is plain data (strings, numbers, vectors): serializing it cannot fail.
    let json = serde_json::to_string(event).unwrap_or_default();
    let mut cmd = redis::cmd("XADD");
    cmd.arg(EVENTS_STREAM)
        .arg("MAXLEN")
        .arg("~")
        .arg(EVENTS_MAXLEN)
        .arg("*")
        .arg(STREAM_FIELD)
        .arg(json);
    cmd
}

/// This worker's consumer name: `worker.name`, else `hostname-pid`.
pub(crate) fn consumer_name(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_owned();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "transcoder".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names() {
        assert_eq!(consumer_name("w1"), "w1");
        let n = consumer_name("");
        assert!(n.ends_with(&format!("-{}", std::process::id())), "{n}");
    }

    #[test]
    fn event_command_shape() {
        let e = Event::Progress {
            content_id: "c".into(),
            percent: 50.0,
        };
        let packed = String::from_utf8_lossy(&xadd_event(&e).get_packed_command()).into_owned();
        for part in [
            "XADD",
            EVENTS_STREAM,
            "MAXLEN",
            "~",
            "100000",
            "data",
            "\"type\":\"progress\"",
        ] {
            assert!(packed.contains(part), "{part} in {packed}");
        }
    }
}
