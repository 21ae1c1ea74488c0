//! The edge's playback-grant settings: where session keys come from (`[session]`) and how
//! entitlements are checked and cached (`[entitlements]`). Both are optional: an edge without
//! them gates by playback token alone (tokens minted by operators with `token mint`).

use std::{collections::BTreeMap, time::Duration};

use serde::Deserialize;

use crate::{
    ConfigError, Env, Secret,
    auth::{RpcUrl, resolve_rpc, resolve_solana_rpc},
    common::{duration, positive},
};

/// `[session]`: verifying viewers' session tokens.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SessionSection {
    /// Origin's JWKS (`http(s)://…/.well-known/jwks.json`).
    pub jwks_url: String,
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// Least time between two JWKS refetches triggered by unknown `kid`s.
    #[serde(default = "default_jwks_refresh", with = "duration")]
    pub jwks_min_refresh: Duration,
    /// Session cookie read when there is no `Authorization` header.
    #[serde(default = "default_cookie")]
    pub cookie: String,
}

/// `[entitlements]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EntitlementsSection {
    /// Lifetime of a positive verdict (a viewer who sold the NFT keeps access this long).
    #[serde(default = "default_ttl_allow", with = "duration")]
    pub ttl_allow: Duration,
    /// Lifetime of a negative verdict.
    #[serde(default = "default_ttl_deny", with = "duration")]
    pub ttl_deny: Duration,
    /// How long past its lifetime a verdict may be served while every RPC endpoint fails.
    #[serde(default = "default_max_stale", with = "duration")]
    pub max_stale: Duration,
    /// L1 capacity, in verdicts.
    #[serde(default = "default_capacity")]
    pub capacity: u64,
    /// Shared L2 (`redis://…`); absent: L1 only.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// How long a content's policy fetched from origin is reused.
    #[serde(default = "default_policy_ttl", with = "duration")]
    pub policy_ttl: Duration,
    /// Time allowed for one RPC call to one endpoint.
    #[serde(default = "default_rpc_timeout", with = "duration")]
    pub rpc_timeout: Duration,
    /// Blocks behind the head to read at (0: latest).
    #[serde(default)]
    pub confirmations: u64,
    /// `[entitlements.evm-rpc]`: chain id → JSON-RPC endpoints, tried in order.
    #[serde(default)]
    pub evm_rpc: BTreeMap<String, Vec<RpcUrl>>,
    /// `[entitlements.solana-rpc]`: cluster → JSON-RPC endpoints, tried in order.
    #[serde(default)]
    pub solana_rpc: BTreeMap<String, Vec<RpcUrl>>,
    /// Run grants without any Redis. Logouts, policy changes and deletions reach an edge only
    /// through Redis (`sg:invalidate`); without it they take effect here only when cached
    /// policies expire (`policy-ttl`) and never for logouts, so the edge refuses to start
    /// unless this says the operator wants that (a single-node demo, say).
    #[serde(default)]
    pub standalone: bool,
}

/// `[entitlements]` validated, RPC URLs resolved.
#[derive(Debug, Clone)]
pub struct EntitlementsConfig {
    /// Positive TTL.
    pub ttl_allow: Duration,
    /// Negative TTL.
    pub ttl_deny: Duration,
    /// Staleness bound.
    pub max_stale: Duration,
    /// L1 capacity.
    pub capacity: u64,
    /// L2 Redis URL.
    pub redis_url: Option<String>,
    /// Policy reuse time.
    pub policy_ttl: Duration,
    /// Per-call RPC timeout.
    pub rpc_timeout: Duration,
    /// Confirmation depth.
    pub confirmations: u64,
    /// Chain id → endpoints.
    pub evm_rpc: BTreeMap<u64, Vec<Secret>>,
    /// Solana cluster (`mainnet`, `localnet`, a genesis reference…) → endpoints.
    pub solana_rpc: BTreeMap<String, Vec<Secret>>,
    /// Grants without invalidations were asked for.
    pub standalone: bool,
}

impl SessionSection {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(self.jwks_url.starts_with("http://") || self.jwks_url.starts_with("https://")) {
            return Err(ConfigError::invalid(
                "session.jwks-url",
                format!("{:?}", self.jwks_url),
                "must be an http(s) URL",
            ));
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            return Err(ConfigError::invalid(
                "session.issuer",
                format!("{:?}", self.issuer),
                "issuer and audience must not be empty",
            ));
        }
        let cookie_ok = !self.cookie.is_empty()
            && self
                .cookie
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !cookie_ok {
            return Err(ConfigError::invalid(
                "session.cookie",
                format!("{:?}", self.cookie),
                "must be a cookie name of A-Z a-z 0-9 _ -",
            ));
        }
        positive("session.jwks-min-refresh", self.jwks_min_refresh)
    }
}

impl EntitlementsSection {
    pub(crate) fn resolve(self, env: &dyn Env) -> Result<EntitlementsConfig, ConfigError> {
        positive("entitlements.ttl-allow", self.ttl_allow)?;
        positive("entitlements.ttl-deny", self.ttl_deny)?;
        positive("entitlements.policy-ttl", self.policy_ttl)?;
        positive("entitlements.rpc-timeout", self.rpc_timeout)?;
        if self.capacity == 0 {
            return Err(ConfigError::invalid(
                "entitlements.capacity",
                0,
                "must be positive",
            ));
        }
        if let Some(u) = &self.redis_url
            && !(u.starts_with("redis://") || u.starts_with("rediss://"))
        {
            return Err(ConfigError::invalid(
                "entitlements.redis-url",
                format!("{u:?}"),
                "must start with redis:// or rediss://",
            ));
        }
        let evm_rpc = resolve_rpc("entitlements.evm-rpc", self.evm_rpc, None, env)?;
        let solana_rpc = resolve_solana_rpc("entitlements.solana-rpc", self.solana_rpc, env)?;
        Ok(EntitlementsConfig {
            ttl_allow: self.ttl_allow,
            ttl_deny: self.ttl_deny,
            max_stale: self.max_stale,
            capacity: self.capacity,
            redis_url: self.redis_url,
            policy_ttl: self.policy_ttl,
            rpc_timeout: self.rpc_timeout,
            confirmations: self.confirmations,
            evm_rpc,
            solana_rpc,
            standalone: self.standalone,
        })
    }
}

fn default_audience() -> String {
    "streamgate".into()
}
fn default_jwks_refresh() -> Duration {
    Duration::from_secs(30)
}
fn default_cookie() -> String {
    "sg_session".into()
}
fn default_ttl_allow() -> Duration {
    Duration::from_secs(300)
}
fn default_ttl_deny() -> Duration {
    Duration::from_secs(30)
}
fn default_max_stale() -> Duration {
    Duration::from_secs(3600)
}
fn default_capacity() -> u64 {
    1_000_000
}
fn default_policy_ttl() -> Duration {
    Duration::from_secs(30)
}
fn default_rpc_timeout() -> Duration {
    Duration::from_secs(3)
}
