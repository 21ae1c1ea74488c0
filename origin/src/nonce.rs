//! Sign-in nonces: random, short-lived, single use. Stored in Redis as `sg:nonce:{nonce}` with
//! a TTL and consumed with `GETDEL`, so a signed message signs in once, on any origin.

use std::time::Duration;

use redis::{AsyncCommands, aio::ConnectionManager};

use crate::{contents::new_id, error::AppResult};

/// Length of a nonce: 24 of `[a-z0-9]`, about 124 bits (EIP-4361 asks for at least 8).
const LEN: usize = 24;

fn key(nonce: &str) -> String {
    streamgate_config::contract::keys::nonce(nonce)
}

/// Issues a nonce valid for `ttl`.
pub(crate) async fn issue(redis: &ConnectionManager, ttl: Duration) -> AppResult<String> {
    let nonce = new_id(LEN);
    let mut con = redis.clone();
    let _: () = redis::cmd("SET")
        .arg(key(&nonce))
        .arg(1)
        .arg("EX")
        .arg(ttl.as_secs().max(1))
        .arg("NX")
        .query_async(&mut con)
        .await?;
    Ok(nonce)
}

/// Whether a nonce is live (issued, unexpired, unused), without consuming it: a cheap check
/// before work that costs more than a Redis read (contract-wallet RPC calls).
pub(crate) async fn is_live(redis: &ConnectionManager, nonce: &str) -> AppResult<bool> {
    if !well_formed(nonce) {
        return Ok(false);
    }
    let mut con = redis.clone();
    Ok(con.exists(key(nonce)).await?)
}

fn well_formed(nonce: &str) -> bool {
    nonce.len() == LEN && nonce.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Consumes a nonce: true the first time for a live nonce, false ever after (or if unknown).
pub(crate) async fn consume(redis: &ConnectionManager, nonce: &str) -> AppResult<bool> {
    if !well_formed(nonce) {
        return Ok(false);
    }
    let mut con = redis.clone();
    let v: Option<String> = con.get_del(key(nonce)).await?;
    Ok(v.is_some())
}
