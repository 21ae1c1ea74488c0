//! The Solana cluster reader: [`SolanaRpcReader`] answers batches of [`SolanaQuery`] over
//! JSON-RPC with the nonblocking Solana RPC client, at `confirmed` commitment, each RPC request
//! failing over across the cluster's endpoints.
//!
//! ```text
//!  read(cluster, queries)
//!   ├─ cluster not configured ───────────────► Err(UnknownChain)
//!   ├─ TokenBalance{owner, mint}: getTokenAccountsByOwner(owner, {mint}, jsonParsed),
//!   │    the accounts' tokenAmount.amount summed, saturating; none ─► Amount(0)
//!   │    (the answer is decoded strictly: an account that is not a parsed SPL Token /
//!   │    Token-2022 account of that owner and mint fails the attempt, next endpoint)
//!   ├─ CollectionMember{owner, collection}: the owner's token accounts with amount ≥ 1
//!   │    (getTokenAccountsByOwner by program, SPL Token and Token-2022, jsonParsed), their
//!   │    mints' Metaplex metadata PDAs (["metadata", program, mint]) read with
//!   │    getMultipleAccounts (≤ 100 a request), Borsh-decoded strictly up to `collection`:
//!   │    Bool(any metadata has collection = {key: collection, verified: true});
//!   │    a missing, foreign-owned or undecodable metadata account counts as "not a member".
//!   │    Not covered: compressed NFTs (Bubblegum), Metaplex Core assets, Token-2022
//!   │    metadata-extension collections.
//!   └─ at most 8 queries in flight, answers in query order
//!
//!  each RPC request: endpoints in order, each attempt within `timeout`; on a transport
//!  error, a JSON-RPC error, an undecodable answer or a timeout, the next endpoint; then one
//!  retry round over those that failed without timing out; all failed ─► Err(Unavailable)
//! ```
//!
//! Logs name endpoints by their index in the cluster's list, never by URL (RPC URLs often
//! carry an API key), and error text is scrubbed of URLs before it is logged or returned.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::transports::http::reqwest::Url;
use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::Value;
use solana_pubkey::Pubkey;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::{config::CommitmentConfig, request::TokenAccountsFilter};

use super::failover;
use super::{
    chain::{ReadError, ReadFuture},
    solana::{SolanaAnswer, SolanaPubkey, SolanaQuery, SolanaReader},
    values::{SolanaChain, parse_solana_key},
};

/// Most RPC requests of one batch in flight at once.
const MAX_CONCURRENT_CALLS: usize = 8;
/// The SPL Token and Token-2022 program names in `jsonParsed` answers.
const TOKEN_PROGRAMS: [&str; 2] = ["spl-token", "spl-token-2022"];
/// The SPL Token and Token-2022 program ids.
const TOKEN_PROGRAM_IDS: [Pubkey; 2] = [
    Pubkey::from_str_const("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"),
    Pubkey::from_str_const("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"),
];
/// The Metaplex Token Metadata program.
pub const METADATA_PROGRAM: Pubkey =
    Pubkey::from_str_const("metaqbxxUerdq28cj1RbAWkYQm3ybzjb6a8bt518x1s");
/// Most accounts in one `getMultipleAccounts` (the RPC's limit).
const MAX_MULTIPLE_ACCOUNTS: usize = 100;

/// What [`SolanaRpcReader`] is built from: the RPC endpoints of each cluster and the
/// per-attempt timeout. Plain types; the proxy's config section maps onto it.
#[derive(Clone, Default)]
pub struct SolanaClusters {
    /// Cluster → RPC URLs (`http(s)://`), tried in this order.
    pub clusters: HashMap<SolanaChain, Vec<String>>,
    /// Limit on each attempt (one RPC request to one endpoint).
    pub timeout: Duration,
}

impl fmt::Debug for SolanaClusters {
    /// Shows endpoint counts, not URLs: those may carry API keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut endpoints: Vec<_> = self
            .clusters
            .iter()
            .map(|(c, u)| (c.to_string(), u.len()))
            .collect();
        endpoints.sort_unstable();
        f.debug_struct("SolanaClusters")
            .field("endpoints", &endpoints)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a [`SolanaClusters`] cannot make a reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SolanaConfigError {
    /// A cluster is listed with no endpoint.
    #[error("cluster {cluster}: no rpc endpoint")]
    NoEndpoints {
        /// `solana:{name | reference}`.
        cluster: String,
    },
    /// An endpoint is not an `http(s)://` URL (the URL itself is not repeated: it may hold a key).
    #[error("cluster {cluster} endpoint {index}: bad rpc url: {reason}")]
    BadUrl {
        /// `solana:{name | reference}`.
        cluster: String,
        /// The endpoint's place in the cluster's list.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The timeout is zero.
    #[error("rpc timeout must be more than zero")]
    ZeroTimeout,
}

/// One configured endpoint (logs name it by its place in the cluster's list).
struct Endpoint {
    client: Arc<RpcClient>,
}

/// One cluster's endpoints.
struct Cluster {
    /// `solana:{name | reference}`, for errors and logs.
    caip2: String,
    endpoints: Vec<Endpoint>,
}

/// [`SolanaReader`] over the nonblocking Solana RPC client. See the module docs.
pub struct SolanaRpcReader {
    clusters: HashMap<SolanaChain, Cluster>,
    timeout: Duration,
    /// RPC requests sent (every attempt, failed ones too): for tests and metrics.
    rpc_calls: AtomicU64,
}

impl fmt::Debug for SolanaRpcReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut clusters: Vec<_> = self.clusters.values().map(|c| c.caip2.clone()).collect();
        clusters.sort_unstable();
        f.debug_struct("SolanaRpcReader")
            .field("clusters", &clusters)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SolanaRpcReader {
    /// Builds one RPC client per endpoint. No I/O: endpoints are first contacted by a read.
    ///
    /// # Errors
    /// A cluster without endpoints, a URL that does not parse or is not `http(s)`, a zero
    /// timeout.
    pub fn new(conf: SolanaClusters) -> Result<Self, SolanaConfigError> {
        if conf.timeout.is_zero() {
            return Err(SolanaConfigError::ZeroTimeout);
        }
        let mut clusters = HashMap::with_capacity(conf.clusters.len());
        for (chain, urls) in conf.clusters {
            let caip2 = chain.to_string();
            if urls.is_empty() {
                return Err(SolanaConfigError::NoEndpoints { cluster: caip2 });
            }
            let mut endpoints = Vec::with_capacity(urls.len());
            for (index, url) in urls.iter().enumerate() {
                let bad = |reason: String| SolanaConfigError::BadUrl {
                    cluster: caip2.clone(),
                    index,
                    reason,
                };
                // url's ParseError does not echo the input.
                let parsed: Url = url.trim().parse().map_err(|e| bad(format!("{e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(bad(format!(
                        "scheme {} (want http or https)",
                        parsed.scheme()
                    )));
                }
                // The client's own timeout is a backstop; each attempt is also bounded here.
                let client = RpcClient::new_with_timeout_and_commitment(
                    parsed.to_string(),
                    conf.timeout,
                    CommitmentConfig::confirmed(),
                );
                endpoints.push(Endpoint {
                    client: Arc::new(client),
                });
            }
            clusters.insert(chain, Cluster { caip2, endpoints });
        }
        Ok(Self {
            clusters,
            timeout: conf.timeout,
            rpc_calls: AtomicU64::new(0),
        })
    }

    /// RPC requests this reader has sent so far, counting every attempt (failed and timed-out
    /// ones too).
    pub fn rpc_calls(&self) -> u64 {
        self.rpc_calls.load(Ordering::Relaxed)
    }

    async fn read_batch(
        &self,
        cluster: &SolanaChain,
        queries: Vec<SolanaQuery>,
    ) -> Result<Vec<SolanaAnswer>, ReadError> {
        let c = self
            .clusters
            .get(cluster)
            .ok_or_else(|| ReadError::UnknownChain(cluster.to_string()))?;
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        // The futures are made before the stream (not in a `map` closure) so the whole future
        // stays `Send` (rust-lang/rust#89976).
        let reads: Vec<_> = queries.iter().map(|q| self.one(c, q)).collect();
        let answers: Vec<SolanaAnswer> = stream::iter(reads)
            .buffered(MAX_CONCURRENT_CALLS)
            .try_collect()
            .await?;
        tracing::debug!(
            cluster = %c.caip2,
            batch = queries.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "solana batch read"
        );
        Ok(answers)
    }

    async fn one(&self, c: &Cluster, query: &SolanaQuery) -> Result<SolanaAnswer, ReadError> {
        match query {
            SolanaQuery::TokenBalance { owner, mint } => self
                .token_balance(c, owner, mint)
                .await
                .map(SolanaAnswer::Amount),
            SolanaQuery::CollectionMember { owner, collection } => self
                .collection_member(c, owner, collection)
                .await
                .map(SolanaAnswer::Bool),
        }
    }

    /// Whether `owner` holds (amount ≥ 1) a mint whose Metaplex metadata names `collection`,
    /// verified.
    async fn collection_member(
        &self,
        c: &Cluster,
        owner: &SolanaPubkey,
        collection: &SolanaPubkey,
    ) -> Result<bool, ReadError> {
        let owner = Pubkey::new_from_array(*owner);
        let mut mints = Vec::new();
        for program in TOKEN_PROGRAM_IDS {
            let held = self
                .failover(c, "getTokenAccountsByOwner", |client| async move {
                    let accounts = client
                        .get_token_accounts_by_owner(
                            &owner,
                            TokenAccountsFilter::ProgramId(program),
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut held = Vec::new();
                    for keyed in &accounts {
                        let data =
                            serde_json::to_value(&keyed.account.data).map_err(|e| e.to_string())?;
                        let (mint, amount) = held_mint(&data, &owner)
                            .map_err(|why| format!("token account {}: {why}", keyed.pubkey))?;
                        if amount >= 1 {
                            held.push(mint);
                        }
                    }
                    Ok(held)
                })
                .await?;
            mints.extend(held);
        }
        mints.sort_unstable();
        mints.dedup();
        let pdas: Vec<(Pubkey, [u8; 32])> = mints
            .iter()
            .map(|m| (Pubkey::new_from_array(metadata_pda(m)), *m))
            .collect();
        for part in pdas.chunks(MAX_MULTIPLE_ACCOUNTS) {
            let keys: Vec<Pubkey> = part.iter().map(|(k, _)| *k).collect();
            let keys = &keys;
            let found = self
                .failover(c, "getMultipleAccounts", |client| async move {
                    let accounts = client
                        .get_multiple_accounts(keys)
                        .await
                        .map_err(|e| e.to_string())?;
                    if accounts.len() != keys.len() {
                        return Err(format!(
                            "{} accounts for {} keys",
                            accounts.len(),
                            keys.len()
                        ));
                    }
                    Ok(accounts)
                })
                .await?;
            for ((_, mint), account) in part.iter().zip(found) {
                let Some(account) = account else { continue };
                if account.owner != METADATA_PROGRAM {
                    continue;
                }
                if metadata_collection(&account.data, mint)
                    .is_some_and(|(key, verified)| verified && key == *collection)
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// `getTokenAccountsByOwner(owner, {mint})`, the amounts summed (saturating).
    async fn token_balance(
        &self,
        c: &Cluster,
        owner: &SolanaPubkey,
        mint: &SolanaPubkey,
    ) -> Result<u64, ReadError> {
        let (owner, mint) = (
            Pubkey::new_from_array(*owner),
            Pubkey::new_from_array(*mint),
        );
        self.failover(c, "getTokenAccountsByOwner", |client| async move {
            let accounts = client
                .get_token_accounts_by_owner(&owner, TokenAccountsFilter::Mint(mint))
                .await
                .map_err(|e| e.to_string())?;
            let mut total = 0u64;
            for keyed in &accounts {
                let data = serde_json::to_value(&keyed.account.data).map_err(|e| e.to_string())?;
                let amount = token_account_amount(&data, &owner, &mint)
                    .map_err(|why| format!("token account {}: {why}", keyed.pubkey))?;
                total = total.saturating_add(amount);
            }
            Ok(total)
        })
        .await
    }

    /// Runs one RPC request against the cluster's endpoints with failover (see
    /// `failover::call`).
    ///
    /// # Errors
    /// [`ReadError::Unavailable`] with the last failure, scrubbed of URLs.
    async fn failover<T, F, Fut>(
        &self,
        c: &Cluster,
        method: &'static str,
        op: F,
    ) -> Result<T, ReadError>
    where
        F: Fn(Arc<RpcClient>) -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let chain = c.caip2.clone();
        let eps = failover::Endpoints {
            chain: &chain,
            endpoints: &c.endpoints,
            timeout: self.timeout,
            calls: &self.rpc_calls,
        };
        failover::call(eps, method, |ep| ep.client.clone(), op).await
    }
}

/// The `amount` of one `jsonParsed` token account, checked strictly: an SPL Token or
/// Token-2022 account (`type: "account"`) of `owner` for `mint` with a decimal `u64` amount.
fn token_account_amount(data: &Value, owner: &Pubkey, mint: &Pubkey) -> Result<u64, String> {
    let program = data.get("program").and_then(Value::as_str);
    if !program.is_some_and(|p| TOKEN_PROGRAMS.contains(&p)) {
        return Err(format!("not a parsed token account (program {program:?})"));
    }
    let parsed = data.get("parsed").ok_or("no parsed data")?;
    if parsed.get("type").and_then(Value::as_str) != Some("account") {
        return Err("parsed data is not a token account".to_owned());
    }
    let info = parsed.get("info").ok_or("no account info")?;
    let field = |name: &str| info.get(name).and_then(Value::as_str);
    if field("mint") != Some(mint.to_string().as_str()) {
        return Err("mint differs from the one asked".to_owned());
    }
    if field("owner") != Some(owner.to_string().as_str()) {
        return Err("owner differs from the one asked".to_owned());
    }
    let amount = info
        .get("tokenAmount")
        .and_then(|t| t.get("amount"))
        .and_then(Value::as_str)
        .ok_or("no tokenAmount.amount")?;
    if amount.is_empty() || !amount.bytes().all(|b| b.is_ascii_digit()) {
        return Err("tokenAmount.amount is not a decimal integer".to_owned());
    }
    amount
        .parse::<u64>()
        .map_err(|_| "tokenAmount.amount does not fit in u64".to_owned())
}

/// The mint and `amount` of one `jsonParsed` token account of `owner` (any mint), strictly.
fn held_mint(data: &Value, owner: &Pubkey) -> Result<([u8; 32], u64), String> {
    let mint = data
        .pointer("/parsed/info/mint")
        .and_then(Value::as_str)
        .ok_or("no mint")?;
    let mint = parse_solana_key(mint)
        .map(Pubkey::new_from_array)
        .map_err(|_| "mint is not a base58 key".to_owned())?;
    let amount = token_account_amount(data, owner, &mint)?;
    Ok((mint.to_bytes(), amount))
}

/// The Metaplex metadata account of `mint`: the program address of
/// `["metadata", METADATA_PROGRAM, mint]` under `METADATA_PROGRAM` (the highest bump whose
/// address is off the ed25519 curve).
pub fn metadata_pda(mint: &[u8; 32]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let program = METADATA_PROGRAM.to_bytes();
    for bump in (0..=u8::MAX).rev() {
        let hash: [u8; 32] = Sha256::new()
            .chain_update(b"metadata")
            .chain_update(program)
            .chain_update(mint)
            .chain_update([bump])
            .chain_update(program)
            .chain_update(b"ProgramDerivedAddress")
            .finalize()
            .into();
        // On the curve (a point decompresses) means a possible wallet key: not a PDA.
        if ed25519_dalek::VerifyingKey::from_bytes(&hash).is_err() {
            return hash;
        }
    }
    // Unreachable in practice (each bump is off-curve with probability ½).
    [0; 32]
}

/// Borsh-decodes a Metaplex `Metadata` account up to its `collection`: `Some((key, verified))`
/// for a collection, `None` for none, for an account that is not `MetadataV1` of `mint`, or
/// for one that does not decode (a malformed account never grants access).
pub fn metadata_collection(data: &[u8], mint: &[u8; 32]) -> Option<([u8; 32], bool)> {
    struct Cursor<'a>(&'a [u8]);
    impl Cursor<'_> {
        fn take(&mut self, n: usize) -> Option<&[u8]> {
            if self.0.len() < n {
                return None;
            }
            let (head, tail) = self.0.split_at(n);
            self.0 = tail;
            Some(head)
        }
        fn u8(&mut self) -> Option<u8> {
            self.take(1).map(|b| b[0])
        }
        fn bool(&mut self) -> Option<bool> {
            match self.u8()? {
                0 => Some(false),
                1 => Some(true),
                _ => None,
            }
        }
        fn u32(&mut self) -> Option<usize> {
            let b: [u8; 4] = self.take(4)?.try_into().ok()?;
            usize::try_from(u32::from_le_bytes(b)).ok()
        }
        fn string(&mut self) -> Option<()> {
            let n = self.u32()?;
            self.take(n).map(|_| ())
        }
    }
    const KEY_METADATA_V1: u8 = 4;
    let mut c = Cursor(data);
    if c.u8()? != KEY_METADATA_V1 {
        return None;
    }
    c.take(32)?; // update authority
    if c.take(32)? != mint {
        return None;
    }
    c.string()?; // name
    c.string()?; // symbol
    c.string()?; // uri
    c.take(2)?; // seller fee basis points
    if c.bool()? {
        let creators = c.u32()?;
        c.take(creators.checked_mul(34)?)?; // address, verified, share
    }
    c.bool()?; // primary sale happened
    c.bool()?; // is mutable
    if c.bool()? {
        c.u8()?; // edition nonce
    }
    if c.bool()? {
        c.u8()?; // token standard
    }
    if !c.bool()? {
        return None;
    }
    let verified = c.bool()?;
    let key: [u8; 32] = c.take(32)?.try_into().ok()?;
    Some((key, verified))
}

impl SolanaReader for SolanaRpcReader {
    /// Answers `queries` in order (see the module docs). An empty batch sends nothing.
    fn read(
        &self,
        cluster: &SolanaChain,
        queries: Vec<SolanaQuery>,
    ) -> ReadFuture<'_, SolanaAnswer> {
        let cluster = cluster.clone();
        Box::pin(async move { self.read_batch(&cluster, queries).await })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn localnet() -> SolanaChain {
        SolanaChain::parse("solana:localnet").unwrap()
    }

    fn conf(urls: &[&str]) -> SolanaClusters {
        SolanaClusters {
            clusters: [(localnet(), urls.iter().map(|s| s.to_string()).collect())].into(),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn validates_the_config_without_echoing_urls() {
        assert!(SolanaRpcReader::new(conf(&["https://rpc.example/KEY"])).is_ok());
        assert!(matches!(
            SolanaRpcReader::new(conf(&[])).unwrap_err(),
            SolanaConfigError::NoEndpoints { .. }
        ));
        let e = SolanaRpcReader::new(conf(&["https://ok.example", "not a url KEY"])).unwrap_err();
        assert!(
            matches!(&e, SolanaConfigError::BadUrl { index: 1, .. }),
            "{e}"
        );
        assert!(!e.to_string().contains("KEY"));
        let e = SolanaRpcReader::new(conf(&["wss://rpc.example/KEY"])).unwrap_err();
        assert!(!e.to_string().contains("KEY") && e.to_string().contains("wss"));
        let mut zero = conf(&["http://127.0.0.1:1"]);
        zero.timeout = Duration::ZERO;
        assert_eq!(
            SolanaRpcReader::new(zero).unwrap_err(),
            SolanaConfigError::ZeroTimeout
        );
        let shown = format!("{:?}", conf(&["https://rpc.example/KEY"]));
        assert!(!shown.contains("KEY"), "{shown}");
    }

    #[test]
    fn decodes_token_accounts_strictly() {
        let owner = Pubkey::new_from_array([1; 32]);
        let mint = Pubkey::new_from_array([2; 32]);
        let account = |program: &str, ty: &str, m: &Pubkey, o: &Pubkey, amount: Value| {
            json!({"program": program, "space": 165, "parsed": {"type": ty, "info": {
                "mint": m.to_string(), "owner": o.to_string(), "state": "initialized",
                "tokenAmount": {"amount": amount, "decimals": 0}}}})
        };
        let ok = account(
            "spl-token",
            "account",
            &mint,
            &owner,
            json!("18446744073709551615"),
        );
        assert_eq!(token_account_amount(&ok, &owner, &mint), Ok(u64::MAX));
        let t22 = account("spl-token-2022", "account", &mint, &owner, json!("7"));
        assert_eq!(token_account_amount(&t22, &owner, &mint), Ok(7));
        for bad in [
            account(
                "spl-token",
                "account",
                &mint,
                &owner,
                json!("18446744073709551616"),
            ),
            account("spl-token", "account", &mint, &owner, json!("-1")),
            account("spl-token", "account", &mint, &owner, json!("+1")),
            account("spl-token", "account", &mint, &owner, json!(1)),
            account("spl-token", "mint", &mint, &owner, json!("1")),
            account("vote", "account", &mint, &owner, json!("1")),
            account("spl-token", "account", &owner, &owner, json!("1")),
            account("spl-token", "account", &mint, &mint, json!("1")),
            json!("AAAA"),
        ] {
            assert!(token_account_amount(&bad, &owner, &mint).is_err(), "{bad}");
        }
    }

    fn metadata(mint: &[u8; 32], creators: u8, collection: Option<(bool, [u8; 32])>) -> Vec<u8> {
        let mut d = vec![4];
        d.extend([9; 32]);
        d.extend(mint);
        for s in ["name", "SYM", "https://u"] {
            d.extend((s.len() as u32).to_le_bytes());
            d.extend(s.as_bytes());
        }
        d.extend([0, 0]);
        if creators == 0 {
            d.push(0);
        } else {
            d.push(1);
            d.extend(u32::from(creators).to_le_bytes());
            for _ in 0..creators {
                d.extend([5; 32]);
                d.extend([1, 100]);
            }
        }
        d.extend([0, 1, 1, 254, 0]);
        match collection {
            Some((verified, key)) => {
                d.extend([1, u8::from(verified)]);
                d.extend(key);
            }
            None => d.push(0),
        }
        d.extend([0; 200]);
        d
    }

    #[test]
    fn decodes_metaplex_metadata_strictly() {
        let (mint, col) = ([3; 32], [4; 32]);
        let ok = metadata(&mint, 2, Some((true, col)));
        assert_eq!(metadata_collection(&ok, &mint), Some((col, true)));
        let unverified = metadata(&mint, 0, Some((false, col)));
        assert_eq!(metadata_collection(&unverified, &mint), Some((col, false)));
        assert_eq!(metadata_collection(&metadata(&mint, 0, None), &mint), None);
        // Another mint's metadata, a truncated account, a bad bool, a wrong key byte.
        assert_eq!(metadata_collection(&ok, &[8; 32]), None);
        assert_eq!(metadata_collection(&ok[..ok.len() - 230], &mint), None);
        let mut bad_bool = ok.clone();
        let at = ok.len() - 200 - 33;
        assert_eq!(bad_bool[at], 1);
        bad_bool[at] = 2;
        assert_eq!(metadata_collection(&bad_bool, &mint), None);
        let mut wrong_key = ok;
        wrong_key[0] = 6;
        assert_eq!(metadata_collection(&wrong_key, &mint), None);
        assert_eq!(metadata_collection(&[], &mint), None);
    }

    #[test]
    fn derives_metadata_pdas_off_curve() {
        let pda = metadata_pda(&[3; 32]);
        assert!(ed25519_dalek::VerifyingKey::from_bytes(&pda).is_err());
        assert_ne!(pda, metadata_pda(&[4; 32]));
    }
}
