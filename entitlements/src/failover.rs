//! Endpoint failover shared by the chain readers (and origin's contract-wallet checks): one
//! request tried against a chain's
//! endpoints in order, each attempt within a timeout, then one more round over those that
//! failed without timing out (an endpoint that just timed out would most likely spend another
//! timeout). Errors are scrubbed of URLs (they may carry API keys) before they are logged or
//! returned.

use std::{
    fmt::Display,
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use super::{ReadError, evm::scrub_urls};

/// Rounds over a chain's endpoints before giving up.
const ROUNDS: usize = 2;
/// Pause before the second round.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// What a failover call needs to know about its chain.
pub struct Endpoints<'a, E> {
    /// CAIP-2 id, for logs and errors.
    pub chain: &'a str,
    /// The endpoints, in the order to try them.
    pub endpoints: &'a [E],
    /// Per-attempt limit.
    pub timeout: Duration,
    /// Counter of requests sent (every attempt counts).
    pub calls: &'a AtomicU64,
}

/// Runs `op` on the client `pick` takes from each endpoint until one answers.
///
/// # Errors
/// [`ReadError::Unavailable`] with the last failure.
pub async fn call<Ep, C, T, E, F, Fut>(
    eps: Endpoints<'_, Ep>,
    method: &'static str,
    pick: impl Fn(&Ep) -> C,
    op: F,
) -> Result<T, ReadError>
where
    E: Display,
    F: Fn(C) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut timed_out = vec![false; eps.endpoints.len()];
    let mut last = String::new();
    for round in 0..ROUNDS {
        if round > 0 {
            if timed_out.iter().all(|t| *t) {
                break;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        for (index, endpoint) in eps.endpoints.iter().enumerate() {
            if timed_out[index] {
                continue;
            }
            eps.calls.fetch_add(1, Ordering::Relaxed);
            last = match tokio::time::timeout(eps.timeout, op(pick(endpoint))).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => {
                    let cause = scrub_urls(&e.to_string());
                    tracing::warn!(chain = eps.chain, endpoint = index, method, round, cause = %cause, "rpc endpoint failed");
                    format!("endpoint {index}: {cause}")
                }
                Err(_) => {
                    timed_out[index] = true;
                    tracing::warn!(
                        chain = eps.chain,
                        endpoint = index,
                        method,
                        round,
                        "rpc endpoint timed out"
                    );
                    format!("endpoint {index}: timed out after {:?}", eps.timeout)
                }
            };
        }
    }
    tracing::warn!(chain = eps.chain, method, "every rpc endpoint failed");
    Err(ReadError::Unavailable {
        chain: eps.chain.to_owned(),
        last,
    })
}
