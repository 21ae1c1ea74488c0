//! `[auth]` of origin: wallet sign-in (SIWE, SIWS) and session tokens.
//!
//! The sign-in domain is never optional: a service that does not know which domain messages
//! must name would accept messages signed for any site, so origin refuses to start without it.
//!
//! `[auth.evm-rpc]` maps EVM chain ids to JSON-RPC endpoints for contract-wallet sign-in
//! (EIP-1271 `isValidSignature`, EIP-6492): a chain without endpoints accepts EOA signatures only.

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;

use crate::{
    ConfigError, Env, Secret, SecretRef,
    common::{duration, positive},
    keyring::{KeyLen, KeySection, resolve_keys},
};

/// `[auth]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuthSection {
    /// The domain (host[:port]) sign-in messages must name (EIP-4361 `domain`).
    pub domain: String,
    /// Origins (`scheme://host[:port]`) a message's `URI` may have.
    pub allowed_uris: Vec<String>,
    /// EVM chain ids accepted in SIWE messages.
    #[serde(default = "default_chains")]
    pub evm_chain_ids: Vec<u64>,
    /// Solana chains accepted in SIWS messages (`mainnet`, `devnet`, `testnet`, `localnet`).
    #[serde(default = "default_solana")]
    pub solana_chains: Vec<String>,
    /// `iss` of session tokens.
    pub issuer: String,
    /// `aud` of session tokens.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// Lifetime of a session token.
    #[serde(default = "default_session_ttl", with = "duration")]
    pub session_ttl: Duration,
    /// Lifetime of a sign-in nonce.
    #[serde(default = "default_nonce_ttl", with = "duration")]
    pub nonce_ttl: Duration,
    /// Clock skew tolerated on `Issued At` / `Not Before` / token times.
    #[serde(default = "default_skew", with = "duration")]
    pub max_clock_skew: Duration,
    /// Oldest `Issued At` accepted.
    #[serde(default = "default_message_age", with = "duration")]
    pub max_message_age: Duration,
    /// Id of the key that signs new session tokens.
    pub signing_key: String,
    /// Live Ed25519 session keys (hex 32-byte seeds); all are published in the JWKS.
    pub keys: Vec<KeySection>,
    /// `[auth.rate-limit]`.
    #[serde(default)]
    pub rate_limit: RateLimit,
    /// `[auth.evm-rpc]`: chain id (a quoted decimal key, one of `evm-chain-ids`) → JSON-RPC
    /// endpoints tried in order, each an `http(s)://` URL or a reference (`{ env = "VAR" }`,
    /// `{ file = "path" }`) for URLs that carry an API key. Contract wallets can sign in only on
    /// chains listed here.
    #[serde(default)]
    pub evm_rpc: BTreeMap<String, Vec<RpcUrl>>,
    /// Time allowed for one RPC call to one endpoint before the next is tried.
    #[serde(default = "default_rpc_timeout", with = "duration")]
    pub rpc_timeout: Duration,
}

/// One entry of `[auth.evm-rpc]`: a URL as written, or where to read it from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum RpcUrl {
    /// `"http://127.0.0.1:8545"`.
    Literal(String),
    /// `{ env = "VAR" }` or `{ file = "path" }`; the URL is treated as a secret (never echoed).
    Ref(SecretRef),
}

/// `[auth.rate-limit]`: per client IP, per minute.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RateLimit {
    /// `POST /v1/auth/nonce` calls.
    #[serde(default = "default_nonce_rate")]
    pub nonces_per_minute: u32,
    /// Sign-in attempts.
    #[serde(default = "default_signin_rate")]
    pub sign_ins_per_minute: u32,
}

/// `[auth]` validated, keys resolved.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Sign-in domain.
    pub domain: String,
    /// Allowed URI origins.
    pub allowed_uris: Vec<String>,
    /// Accepted EVM chain ids.
    pub evm_chain_ids: Vec<u64>,
    /// Accepted Solana chains.
    pub solana_chains: Vec<String>,
    /// Token issuer.
    pub issuer: String,
    /// Token audience.
    pub audience: String,
    /// Session lifetime.
    pub session_ttl: Duration,
    /// Nonce lifetime.
    pub nonce_ttl: Duration,
    /// Clock skew.
    pub max_clock_skew: Duration,
    /// Oldest message accepted.
    pub max_message_age: Duration,
    /// Signing key id.
    pub signing_key: String,
    /// `(kid, 32-byte seed as hex)`.
    pub keys: Vec<(String, Secret)>,
    /// Rate limits.
    pub rate_limit: RateLimit,
    /// Chain id → JSON-RPC endpoint URLs (at least one), in failover order. URLs may embed API
    /// keys: log [`Secret`]s never, an endpoint's index instead.
    pub evm_rpc: BTreeMap<u64, Vec<Secret>>,
    /// Per-call RPC timeout.
    pub rpc_timeout: Duration,
}

impl AuthSection {
    pub(crate) fn resolve(self, env: &dyn Env) -> Result<AuthConfig, ConfigError> {
        let domain = self.domain.trim();
        if domain.is_empty()
            || domain.contains('/')
            || domain.contains(char::is_whitespace)
            || domain.contains("://")
        {
            return Err(ConfigError::invalid(
                "auth.domain",
                format!("{:?}", self.domain),
                "must be the host[:port] sign-in messages name; origin does not start without it",
            ));
        }
        if self.allowed_uris.is_empty() {
            return Err(ConfigError::invalid(
                "auth.allowed-uris",
                "[]",
                "name at least one origin",
            ));
        }
        for (i, u) in self.allowed_uris.iter().enumerate() {
            let ok = (u.starts_with("https://") || u.starts_with("http://"))
                && !u.ends_with('/')
                && u.split("://")
                    .nth(1)
                    .is_some_and(|h| !h.is_empty() && !h.contains('/'));
            if !ok {
                return Err(ConfigError::invalid(
                    &format!("auth.allowed-uris[{i}]"),
                    format!("{u:?}"),
                    "must be an origin: scheme://host[:port], no path",
                ));
            }
        }
        if self.evm_chain_ids.is_empty() && self.solana_chains.is_empty() {
            return Err(ConfigError::invalid(
                "auth.evm-chain-ids",
                "[]",
                "accept at least one EVM chain or Solana chain",
            ));
        }
        for (i, c) in self.solana_chains.iter().enumerate() {
            if !["mainnet", "devnet", "testnet", "localnet"].contains(&c.as_str()) {
                return Err(ConfigError::invalid(
                    &format!("auth.solana-chains[{i}]"),
                    format!("{c:?}"),
                    "must be mainnet, devnet, testnet or localnet",
                ));
            }
        }
        if self.issuer.is_empty() {
            return Err(ConfigError::invalid(
                "auth.issuer",
                "\"\"",
                "must not be empty",
            ));
        }
        if self.audience.is_empty() {
            return Err(ConfigError::invalid(
                "auth.audience",
                "\"\"",
                "must not be empty",
            ));
        }
        positive("auth.session-ttl", self.session_ttl)?;
        positive("auth.nonce-ttl", self.nonce_ttl)?;
        positive("auth.max-message-age", self.max_message_age)?;
        if self.rate_limit.nonces_per_minute == 0 || self.rate_limit.sign_ins_per_minute == 0 {
            return Err(ConfigError::invalid(
                "auth.rate-limit",
                "0",
                "limits must be at least 1 per minute",
            ));
        }
        positive("auth.rpc-timeout", self.rpc_timeout)?;
        let evm_rpc = resolve_rpc("auth.evm-rpc", self.evm_rpc, Some(&self.evm_chain_ids), env)?;
        let keys = resolve_keys(
            "auth",
            self.keys,
            &self.signing_key,
            KeyLen::Exactly(32),
            env,
        )?;
        Ok(AuthConfig {
            domain: domain.to_owned(),
            allowed_uris: self.allowed_uris,
            evm_chain_ids: self.evm_chain_ids,
            solana_chains: self.solana_chains,
            issuer: self.issuer,
            audience: self.audience,
            session_ttl: self.session_ttl,
            nonce_ttl: self.nonce_ttl,
            max_clock_skew: self.max_clock_skew,
            max_message_age: self.max_message_age,
            signing_key: self.signing_key,
            keys,
            rate_limit: self.rate_limit,
            evm_rpc,
            rpc_timeout: self.rpc_timeout,
        })
    }
}

/// Validates `[auth.evm-rpc]`: decimal chain ids among `evm-chain-ids`, non-empty lists of
/// `http(s)://host…` URLs. Values read from a reference are never echoed in errors.
pub(crate) fn resolve_rpc(
    section: &str,
    map: BTreeMap<String, Vec<RpcUrl>>,
    chains: Option<&[u64]>,
    env: &dyn Env,
) -> Result<BTreeMap<u64, Vec<Secret>>, ConfigError> {
    let mut out = BTreeMap::new();
    for (chain, urls) in map {
        let key = format!("{section}.{chain}");
        let id: u64 = chain
            .parse()
            .ok()
            .filter(|id| chains.is_none_or(|c| c.contains(id)))
            .ok_or_else(|| {
                ConfigError::invalid(
                    section,
                    format!("{chain:?}"),
                    match chains {
                        Some(_) => "keys must be decimal chain ids listed in auth.evm-chain-ids",
                        None => "keys must be decimal EVM chain ids",
                    },
                )
            })?;
        let resolved = resolve_urls(&key, urls, env)?;
        out.insert(id, resolved);
    }
    Ok(out)
}

/// Validates `[entitlements.solana-rpc]`: keys are Solana clusters (`mainnet`, `devnet`,
/// `testnet`, `localnet`, or a base58 genesis-hash reference), values non-empty lists of
/// `http(s)://` URLs.
pub(crate) fn resolve_solana_rpc(
    section: &str,
    map: BTreeMap<String, Vec<RpcUrl>>,
    env: &dyn Env,
) -> Result<BTreeMap<String, Vec<Secret>>, ConfigError> {
    let mut out = BTreeMap::new();
    for (cluster, urls) in map {
        let bare = cluster.strip_prefix("solana:").unwrap_or(&cluster);
        let named = matches!(bare, "mainnet" | "devnet" | "testnet" | "localnet");
        let reference = (32..=44).contains(&bare.len())
            && bare
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() && !matches!(c, b'0' | b'O' | b'I' | b'l'));
        if !(named || reference) {
            return Err(ConfigError::invalid(
                section,
                format!("{cluster:?}"),
                "keys must be mainnet, devnet, testnet, localnet or a base58 genesis hash",
            ));
        }
        let key = format!("{section}.{cluster}");
        let resolved = resolve_urls(&key, urls, env)?;
        out.insert(bare.to_owned(), resolved);
    }
    Ok(out)
}

/// Resolves and checks one endpoint list (`key` names it in errors; referenced values are
/// never echoed).
fn resolve_urls(key: &str, urls: Vec<RpcUrl>, env: &dyn Env) -> Result<Vec<Secret>, ConfigError> {
    if urls.is_empty() {
        return Err(ConfigError::invalid(
            key,
            "[]",
            "name at least one RPC URL, or remove the chain",
        ));
    }
    let mut resolved = Vec::with_capacity(urls.len());
    for (i, u) in urls.into_iter().enumerate() {
        let key = format!("{key}[{i}]");
        let (url, shown) = match u {
            RpcUrl::Literal(s) => (Secret::new(s.clone()), format!("{s:?}")),
            RpcUrl::Ref(r) => (r.resolve(&key, env)?, "(secret)".to_owned()),
        };
        let rest = url
            .expose()
            .strip_prefix("https://")
            .or_else(|| url.expose().strip_prefix("http://"));
        if !rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')) {
            return Err(ConfigError::invalid(
                &key,
                shown,
                "must be an http:// or https:// URL",
            ));
        }
        resolved.push(url);
    }
    Ok(resolved)
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            nonces_per_minute: default_nonce_rate(),
            sign_ins_per_minute: default_signin_rate(),
        }
    }
}

fn default_chains() -> Vec<u64> {
    vec![1]
}
fn default_solana() -> Vec<String> {
    vec!["mainnet".into()]
}
fn default_audience() -> String {
    "streamgate".into()
}
fn default_session_ttl() -> Duration {
    Duration::from_secs(12 * 3600)
}
fn default_nonce_ttl() -> Duration {
    Duration::from_secs(300)
}
fn default_skew() -> Duration {
    Duration::from_secs(60)
}
fn default_message_age() -> Duration {
    Duration::from_secs(600)
}
fn default_nonce_rate() -> u32 {
    60
}
fn default_signin_rate() -> u32 {
    20
}
fn default_rpc_timeout() -> Duration {
    Duration::from_secs(3)
}
