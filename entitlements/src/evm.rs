//! The EVM chain reader: [`AlloyEvmReader`] answers batches of [`EvmQuery`] over JSON-RPC with
//! alloy, one Multicall3 `aggregate3` per batch where the chain has Multicall3, concurrent
//! `eth_call`s where it does not, each RPC request failing over across the chain's endpoints.
//!
//! ```text
//!  read(chain, queries)
//!   ├─ chain not configured ──────────────────► Err(UnknownChain)
//!   ├─ block = LatestMinus(n): eth_blockNumber − n, once per batch
//!   ├─ Multicall3 code at 0xcA11…CA11? (eth_getCode once per chain, cached)
//!   │   ├─ yes: eth_call aggregate3([{target, allowFailure: true, callData}…]),
//!   │   │        one per ≤ 256 queries; a failed sub-call ─► Reverted;
//!   │   │        an unusable aggregate3 answer ─► the "no" path for those queries
//!   │   └─ no:  one eth_call per query, at most 8 in flight;
//!   │            JSON-RPC revert or EVM halt ─► Reverted (an answer, not a failure)
//!   └─ return data decoded strictly (abi.rs): anything but the expected word ─► Reverted
//!
//!  each RPC request: endpoints in order, each attempt within `timeout`; on a transport
//!  error, an HTTP error status, a JSON-RPC error or a timeout, the next endpoint; then one
//!  retry round over those that failed without timing out; all failed ─► Err(Unavailable)
//! ```
//!
//! Logs name endpoints by their index in the chain's list, never by URL (RPC URLs often carry
//! an API key), and error text is scrubbed of URLs before it is logged or returned.

mod abi;
mod rpc_error;

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use alloy::{
    eips::BlockId,
    primitives::{Address, Bytes},
    providers::{Provider, RootProvider},
    rpc::types::{TransactionInput, TransactionRequest},
    transports::{TransportError, http::reqwest::Url},
};
use futures_util::{StreamExt, TryStreamExt, stream};
use tokio::sync::OnceCell;

use super::chain::{EvmAnswer, EvmQuery, EvmReader, ReadError, ReadFuture};
use super::failover;
use rpc_error::is_contract_failure;
pub use rpc_error::scrub_urls;

/// Most `eth_call`s of one batch in flight at once on a chain without Multicall3.
const MAX_CONCURRENT_CALLS: usize = 8;
/// Most queries in one `aggregate3`: larger batches are split (and the parts sent
/// concurrently), keeping each call well inside providers' `eth_call` gas and size caps.
const MAX_MULTICALL_QUERIES: usize = 256;

/// Which block reads are made at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockChoice {
    /// The node's newest block: fastest to reflect a purchase, may be reorged away.
    #[default]
    Latest,
    /// The newest finalized block (proof-of-stake chains): minutes behind, never reorged.
    Finalized,
    /// The newest `safe` block: behind `latest`, unlikely to be reorged.
    Safe,
    /// `eth_blockNumber − n` (saturating at 0), resolved once per batch: for chains without
    /// `finalized`/`safe` tags, `n` confirmations.
    LatestMinus(u64),
}

/// What [`AlloyEvmReader`] is built from: the RPC endpoints of each chain, the per-attempt
/// timeout and the block to read at. Plain types; the proxy's config section maps onto it.
#[derive(Clone, Default)]
pub struct EvmChains {
    /// EVM chain id (`eip155:{id}`) → RPC URLs (`http(s)://`), tried in this order.
    pub chains: HashMap<u64, Vec<String>>,
    /// Limit on each attempt (one RPC request to one endpoint).
    pub timeout: Duration,
    /// Which block to read at.
    pub block: BlockChoice,
}

impl fmt::Debug for EvmChains {
    /// Shows endpoint counts, not URLs: those may carry API keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut endpoints: Vec<_> = self.chains.iter().map(|(c, u)| (*c, u.len())).collect();
        endpoints.sort_unstable();
        f.debug_struct("EvmChains")
            .field("endpoints", &endpoints)
            .field("timeout", &self.timeout)
            .field("block", &self.block)
            .finish()
    }
}

/// Why an [`EvmChains`] cannot make a reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvmConfigError {
    /// A chain is listed with no endpoint.
    #[error("chain {chain}: no rpc endpoint")]
    NoEndpoints {
        /// EVM chain id.
        chain: u64,
    },
    /// An endpoint is not an `http(s)://` URL (the URL itself is not repeated: it may hold a key).
    #[error("chain {chain} endpoint {index}: bad rpc url: {reason}")]
    BadUrl {
        /// EVM chain id.
        chain: u64,
        /// The endpoint's place in the chain's list.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The timeout is zero.
    #[error("rpc timeout must be more than zero")]
    ZeroTimeout,
}

/// One configured endpoint (logs name it by its place in the chain's list).
struct Endpoint {
    provider: RootProvider,
}

/// One chain's endpoints and what the reader learned about it.
struct Chain {
    id: u64,
    endpoints: Vec<Endpoint>,
    /// Whether Multicall3 is deployed, learned from the first batch's `eth_getCode` and kept
    /// for the reader's life (Multicall3 is never removed). Concurrent first batches share one
    /// lookup; a failed lookup is not cached, so the next batch asks again.
    multicall: OnceCell<bool>,
}

impl Chain {
    fn caip2(&self) -> String {
        format!("eip155:{}", self.id)
    }
}

/// [`EvmReader`] over alloy HTTP providers. See the module docs for how a batch is read.
pub struct AlloyEvmReader {
    chains: HashMap<u64, Chain>,
    timeout: Duration,
    block: BlockChoice,
    /// RPC requests sent (every attempt, failed ones too): for tests and metrics.
    rpc_calls: AtomicU64,
}

impl fmt::Debug for AlloyEvmReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chains: Vec<_> = self.chains.keys().copied().collect();
        chains.sort_unstable();
        f.debug_struct("AlloyEvmReader")
            .field("chains", &chains)
            .field("timeout", &self.timeout)
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

impl AlloyEvmReader {
    /// Builds one HTTP provider per endpoint. No I/O: endpoints are first contacted by a read.
    ///
    /// # Errors
    /// A chain without endpoints, a URL that does not parse or is not `http(s)`, a zero timeout.
    pub fn new(conf: EvmChains) -> Result<Self, EvmConfigError> {
        if conf.timeout.is_zero() {
            return Err(EvmConfigError::ZeroTimeout);
        }
        let mut chains = HashMap::with_capacity(conf.chains.len());
        for (id, urls) in conf.chains {
            if urls.is_empty() {
                return Err(EvmConfigError::NoEndpoints { chain: id });
            }
            let mut endpoints = Vec::with_capacity(urls.len());
            for (index, url) in urls.iter().enumerate() {
                let bad = |reason: String| EvmConfigError::BadUrl {
                    chain: id,
                    index,
                    reason,
                };
                // url's ParseError does not echo the input.
                let url: Url = url.trim().parse().map_err(|e| bad(format!("{e}")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(bad(format!("scheme {} (want http or https)", url.scheme())));
                }
                endpoints.push(Endpoint {
                    provider: RootProvider::new_http(url),
                });
            }
            let multicall = OnceCell::new();
            chains.insert(
                id,
                Chain {
                    id,
                    endpoints,
                    multicall,
                },
            );
        }
        Ok(Self {
            chains,
            timeout: conf.timeout,
            block: conf.block,
            rpc_calls: AtomicU64::new(0),
        })
    }

    /// RPC requests this reader has sent so far, counting every attempt (failed and timed-out
    /// ones too, and the one-off Multicall3 lookup per chain).
    pub fn rpc_calls(&self) -> u64 {
        self.rpc_calls.load(Ordering::Relaxed)
    }

    /// Whether `chain_id` has Multicall3, once a read on it has found out.
    pub fn multicall(&self, chain_id: u64) -> Option<bool> {
        self.chains.get(&chain_id)?.multicall.get().copied()
    }

    async fn read_batch(
        &self,
        chain_id: u64,
        queries: Vec<EvmQuery>,
    ) -> Result<Vec<EvmAnswer>, ReadError> {
        let chain = self
            .chains
            .get(&chain_id)
            .ok_or_else(|| ReadError::UnknownChain(format!("eip155:{chain_id}")))?;
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let block = self.block_id(chain).await?;
        let multicall = self.has_multicall(chain).await?;
        let answers = if multicall {
            // The futures are made before the stream (not in a `map` closure) so the whole
            // future stays `Send` (rust-lang/rust#89976); the same in `each`.
            let parts: Vec<_> = queries
                .chunks(MAX_MULTICALL_QUERIES)
                .map(|part| self.aggregate(chain, block, part))
                .collect();
            stream::iter(parts)
                .buffered(MAX_CONCURRENT_CALLS)
                .try_concat()
                .await?
        } else {
            self.each(chain, block, &queries).await?
        };
        tracing::debug!(
            chain = chain_id,
            batch = queries.len(),
            multicall,
            block = %block,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "evm batch read"
        );
        Ok(answers)
    }

    /// The block the batch reads at; for `LatestMinus`, one `eth_blockNumber`.
    async fn block_id(&self, chain: &Chain) -> Result<BlockId, ReadError> {
        Ok(match self.block {
            BlockChoice::Latest => BlockId::latest(),
            BlockChoice::Finalized => BlockId::finalized(),
            BlockChoice::Safe => BlockId::safe(),
            BlockChoice::LatestMinus(n) => {
                let head = self
                    .failover(chain, "eth_blockNumber", |p| async move {
                        p.get_block_number().await
                    })
                    .await?;
                BlockId::number(head.saturating_sub(n))
            }
        })
    }

    /// Whether the chain has Multicall3 (code at the canonical address), asked once per chain.
    async fn has_multicall(&self, chain: &Chain) -> Result<bool, ReadError> {
        chain
            .multicall
            .get_or_try_init(|| async {
                let code = self
                    .failover(chain, "eth_getCode", |p| async move {
                        p.get_code_at(abi::MULTICALL3).await
                    })
                    .await?;
                let present = !code.is_empty();
                tracing::info!(chain = chain.id, multicall = present, "evm chain probed");
                Ok(present)
            })
            .await
            .copied()
    }

    /// One `aggregate3` for `queries`; when its answer is unusable (it reverted as a whole, or
    /// Multicall3 is missing at the block read), the queries are asked one by one instead.
    async fn aggregate(
        &self,
        chain: &Chain,
        block: BlockId,
        queries: &[EvmQuery],
    ) -> Result<Vec<EvmAnswer>, ReadError> {
        let data = abi::aggregate3(queries);
        let ret = self.eth_call(chain, block, abi::MULTICALL3, data).await?;
        if let Some(answers) = ret.and_then(|r| abi::decode_aggregate3(queries, &r)) {
            return Ok(answers);
        }
        tracing::warn!(
            chain = chain.id,
            batch = queries.len(),
            block = %block,
            "multicall3 answer unusable, asking each query"
        );
        self.each(chain, block, queries).await
    }

    /// One `eth_call` per query, at most [`MAX_CONCURRENT_CALLS`] in flight, answers in order.
    async fn each(
        &self,
        chain: &Chain,
        block: BlockId,
        queries: &[EvmQuery],
    ) -> Result<Vec<EvmAnswer>, ReadError> {
        let calls: Vec<_> = queries.iter().map(|q| self.one(chain, block, q)).collect();
        stream::iter(calls)
            .buffered(MAX_CONCURRENT_CALLS)
            .try_collect()
            .await
    }

    /// One query, one `eth_call`.
    async fn one(
        &self,
        chain: &Chain,
        block: BlockId,
        query: &EvmQuery,
    ) -> Result<EvmAnswer, ReadError> {
        let (to, data) = abi::encode(query);
        let ret = self.eth_call(chain, block, to, data).await?;
        Ok(ret.map_or(EvmAnswer::Reverted, |r| abi::decode(query, &r)))
    }

    /// `eth_call` with failover; `None` when the contract reverted or the EVM halted.
    async fn eth_call(
        &self,
        chain: &Chain,
        block: BlockId,
        to: Address,
        data: Bytes,
    ) -> Result<Option<Bytes>, ReadError> {
        let tx = TransactionRequest::default()
            .to(to)
            .input(TransactionInput::new(data));
        self.failover(chain, "eth_call", |p| {
            let tx = tx.clone();
            async move {
                match p.call(tx).block(block).await {
                    Ok(ret) => Ok(Some(ret)),
                    Err(e) if is_contract_failure(&e) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        })
        .await
    }

    /// Runs one RPC request against the chain's endpoints with failover (see
    /// `failover::call`).
    ///
    /// # Errors
    /// [`ReadError::Unavailable`] with the last failure, scrubbed of URLs.
    async fn failover<T, F, Fut>(
        &self,
        c: &Chain,
        method: &'static str,
        op: F,
    ) -> Result<T, ReadError>
    where
        F: Fn(RootProvider) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let chain = c.caip2();
        let eps = failover::Endpoints {
            chain: &chain,
            endpoints: &c.endpoints,
            timeout: self.timeout,
            calls: &self.rpc_calls,
        };
        failover::call(eps, method, |ep| ep.provider.clone(), op).await
    }
}

impl EvmReader for AlloyEvmReader {
    /// Answers `queries` in order (see the module docs). An empty batch sends nothing.
    fn read(&self, chain_id: u64, queries: Vec<EvmQuery>) -> ReadFuture<'_, EvmAnswer> {
        Box::pin(self.read_batch(chain_id, queries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(chains: &[(u64, &[&str])]) -> EvmChains {
        EvmChains {
            chains: chains
                .iter()
                .map(|(c, u)| (*c, u.iter().map(|s| s.to_string()).collect()))
                .collect(),
            timeout: Duration::from_secs(1),
            block: BlockChoice::Latest,
        }
    }

    #[test]
    fn validates_the_config_without_echoing_urls() {
        assert!(AlloyEvmReader::new(conf(&[(1, &["https://rpc.example/KEY"])])).is_ok());
        assert_eq!(
            AlloyEvmReader::new(conf(&[(1, &[])])).unwrap_err(),
            EvmConfigError::NoEndpoints { chain: 1 }
        );
        let e = AlloyEvmReader::new(conf(&[(5, &["https://ok.example", "not a url KEY"])]))
            .unwrap_err();
        assert!(
            matches!(
                &e,
                EvmConfigError::BadUrl {
                    chain: 5,
                    index: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(!e.to_string().contains("KEY"));
        let e = AlloyEvmReader::new(conf(&[(1, &["wss://rpc.example/KEY"])])).unwrap_err();
        assert!(!e.to_string().contains("KEY") && e.to_string().contains("wss"));
        let mut zero = conf(&[(1, &["http://127.0.0.1:1"])]);
        zero.timeout = Duration::ZERO;
        assert_eq!(
            AlloyEvmReader::new(zero).unwrap_err(),
            EvmConfigError::ZeroTimeout
        );
        let shown = format!("{:?}", conf(&[(1, &["https://rpc.example/KEY"])]));
        assert!(!shown.contains("KEY"), "{shown}");
    }
}
