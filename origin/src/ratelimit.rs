//! Per-client fixed-window rate limits in Redis (`INCR` + `EXPIRE` on
//! `sg:rl:{name}:{client}:{minute}`), shared by every origin instance. Used on sign-in, where
//! guessing and nonce flooding happen.
//!
//! The client is the TCP peer unless a trusted proxy names it (`server.trusted-proxies`, see
//! [`crate::client_ip`]), and an IPv6 client counts as its whole /64: a subscriber rotating
//! addresses inside their prefix stays one client (and cannot fill Redis with keys).

use std::net::IpAddr;

use redis::aio::ConnectionManager;

use crate::{AppError, error::AppResult, metrics::METRICS};

/// Counts one request of `name` from `ip` in the current minute; refuses past `per_minute`.
pub(crate) async fn check(
    redis: &ConnectionManager,
    name: &'static str,
    ip: IpAddr,
    per_minute: u32,
) -> AppResult<()> {
    let minute = crate::now_ms() / 60_000;
    let client = streamgate_config::net::rate_limit_key(ip);
    let key = streamgate_config::contract::keys::rate_limit(name, &client, minute);
    let mut con = redis.clone();
    let (count,): (u64,) = redis::pipe()
        .atomic()
        .incr(&key, 1u64)
        .expire(&key, 120)
        .ignore()
        .query_async(&mut con)
        .await?;
    if count > u64::from(per_minute) {
        METRICS.rate_limited.with_label_values(&[name]).inc();
        return Err(AppError::RateLimited(name));
    }
    Ok(())
}
