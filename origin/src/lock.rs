//! A Redis lease that serialises writers of one resource (an upload, a catalog record) across
//! origin instances.
//!
//! `SET key token NX PX ttl` takes it; a background task extends it while the holder works;
//! dropping the guard releases it (only if it still holds our token, checked in a Lua script
//! so a lease that expired and was taken by someone else is never deleted).

use std::time::Duration;

use redis::{Script, aio::ConnectionManager};
use tokio::task::JoinHandle;

const TTL: Duration = Duration::from_secs(30);

const RELEASE: &str = r#"if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end"#;
const EXTEND: &str = r#"if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end"#;

/// A held lease; released on drop.
pub(crate) struct Lease {
    key: String,
    token: String,
    redis: ConnectionManager,
    keeper: JoinHandle<()>,
}

impl Lease {
    /// Tries to take the lease on `key`; `Ok(None)` when someone else holds it.
    pub(crate) async fn try_acquire(
        redis: &ConnectionManager,
        key: String,
    ) -> redis::RedisResult<Option<Lease>> {
        let token = crate::contents::new_id(24);
        let mut con = redis.clone();
        let ok: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(TTL.as_millis() as u64)
            .query_async(&mut con)
            .await?;
        if ok.is_none() {
            return Ok(None);
        }
        let keeper = {
            let (key, token, mut con) = (key.clone(), token.clone(), redis.clone());
            tokio::spawn(async move {
                let script = Script::new(EXTEND);
                loop {
                    tokio::time::sleep(TTL / 3).await;
                    let r: redis::RedisResult<i64> = script
                        .key(&key)
                        .arg(&token)
                        .arg(TTL.as_millis() as u64)
                        .invoke_async(&mut con)
                        .await;
                    if !matches!(r, Ok(1)) {
                        tracing::warn!(key, "upload lease lost");
                        return;
                    }
                }
            })
        };
        Ok(Some(Lease {
            key,
            token,
            redis: redis.clone(),
            keeper,
        }))
    }
}

impl Lease {
    /// Takes the lease on `key`, waiting (polling every 10–50 ms) up to `max_wait` while someone
    /// else holds it; `Ok(None)` if it is still held then.
    pub(crate) async fn acquire(
        redis: &ConnectionManager,
        key: String,
        max_wait: Duration,
    ) -> redis::RedisResult<Option<Lease>> {
        let deadline = tokio::time::Instant::now() + max_wait;
        let mut pause = Duration::from_millis(10);
        loop {
            if let Some(lease) = Self::try_acquire(redis, key.clone()).await? {
                return Ok(Some(lease));
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Releases the lease now, so the next request of the same client finds it free.
    pub(crate) async fn release(mut self) {
        self.keeper.abort();
        let (key, token) = (
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.token),
        );
        release(self.redis.clone(), key, token).await;
    }
}

/// Deletes `key` if it still holds `token`.
async fn release(mut con: ConnectionManager, key: String, token: String) {
    let r: redis::RedisResult<i64> = Script::new(RELEASE)
        .key(&key)
        .arg(&token)
        .invoke_async(&mut con)
        .await;
    if let Err(e) = r {
        tracing::debug!(key, cause = %e, "lease release failed; it will expire");
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.keeper.abort();
        if self.key.is_empty() {
            return; // released explicitly
        }
        let (key, token) = (
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.token),
        );
        // Release in the background: Drop cannot await. If the runtime is shutting down the
        // lease simply expires after its TTL.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(release(self.redis.clone(), key, token));
        }
    }
}
