//! `proxy.toml`: the edge.

use std::{net::SocketAddr, time::Duration};

use serde::Deserialize;

use crate::{
    ConfigError, EntitlementsConfig, EntitlementsSection, Env, LogConfig, Secret, SessionSection,
    common::{duration, positive},
    keyring::{KeyLen, KeySection, resolve_keys},
};

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProxyFile {
    /// `[server]`.
    pub server: ProxyServer,
    /// `[upstream]`.
    pub upstream: Upstream,
    /// `[tokens]`.
    pub tokens: TokensSection,
    /// `[session]`: viewers' session tokens (needed for `GET /v1/playback/{id}`).
    #[serde(default)]
    pub session: Option<SessionSection>,
    /// `[entitlements]`: policy checks for playback grants.
    #[serde(default)]
    pub entitlements: Option<EntitlementsSection>,
    /// `[log]`.
    #[serde(default)]
    pub log: LogConfig,
}

/// `[server]` of the edge.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProxyServer {
    /// Player-facing listener.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Prometheus listener.
    #[serde(default = "default_metrics_listen")]
    pub metrics_listen: SocketAddr,
    /// Worker threads of the proxy service.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// How long in-flight responses may take to finish on shutdown.
    #[serde(default = "default_grace", with = "duration")]
    pub grace_period: Duration,
}

/// `[upstream]`: where the edge fetches objects from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Upstream {
    /// Origin as `host:port`.
    pub origin: String,
    /// Use TLS to origin.
    #[serde(default)]
    pub tls: bool,
    /// SNI / Host to send when `tls` is on (defaults to the host of `origin`).
    #[serde(default)]
    pub sni: String,
    /// TCP connect timeout.
    #[serde(default = "default_connect_timeout", with = "duration")]
    pub connect_timeout: Duration,
    /// Time to first byte / between reads.
    #[serde(default = "default_read_timeout", with = "duration")]
    pub read_timeout: Duration,
}

/// `[tokens]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TokensSection {
    /// Key id new playback tokens are signed with; must be one of `keys`.
    pub signing_key: String,
    /// Lifetime of a minted token when none is asked for.
    #[serde(default = "default_ttl", with = "duration")]
    pub default_ttl: Duration,
    /// Longest lifetime a token may be minted with.
    #[serde(default = "default_max_ttl", with = "duration")]
    pub max_ttl: Duration,
    /// Bind tokens to the client's IP prefix.
    #[serde(default)]
    pub bind_ip: bool,
    /// IPv4 prefix length bound when `bind-ip` is on.
    #[serde(default = "default_v4_prefix")]
    pub ipv4_prefix: u8,
    /// IPv6 prefix length bound when `bind-ip` is on.
    #[serde(default = "default_v6_prefix")]
    pub ipv6_prefix: u8,
    /// Live HMAC keys. Several may be live while keys rotate.
    pub keys: Vec<KeySection>,
}

/// The edge's validated configuration.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `[server]`.
    pub server: ProxyServer,
    /// `[upstream]`.
    pub upstream: Upstream,
    /// `[tokens]`, keys resolved.
    pub tokens: TokensConfig,
    /// `[session]`.
    pub session: Option<SessionSection>,
    /// `[entitlements]`, RPC URLs resolved.
    pub entitlements: Option<EntitlementsConfig>,
    /// `[log]`.
    pub log: LogConfig,
}

/// Playback-token settings with key material.
#[derive(Debug, Clone)]
pub struct TokensConfig {
    /// Signing key id.
    pub signing_key: String,
    /// Default lifetime.
    pub default_ttl: Duration,
    /// Longest lifetime.
    pub max_ttl: Duration,
    /// Bind to client IP prefix.
    pub bind_ip: bool,
    /// IPv4 prefix length.
    pub ipv4_prefix: u8,
    /// IPv6 prefix length.
    pub ipv6_prefix: u8,
    /// `(id, key bytes)` of every live key.
    pub keys: Vec<(String, Secret)>,
}

impl ProxyFile {
    pub(crate) fn resolve(self, env: &dyn Env) -> Result<ProxyConfig, ConfigError> {
        self.log.validate()?;
        let s = &self.server;
        if s.threads == 0 || s.threads > 1024 {
            return Err(ConfigError::invalid(
                "server.threads",
                s.threads,
                "must be between 1 and 1024",
            ));
        }
        if s.listen == s.metrics_listen {
            return Err(ConfigError::invalid(
                "server.metrics-listen",
                s.metrics_listen,
                "must differ from server.listen",
            ));
        }
        let u = &self.upstream;
        if u.origin
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            return Err(ConfigError::invalid(
                "upstream.origin",
                format!("{:?}", u.origin),
                "must be host:port",
            ));
        }
        positive("upstream.connect-timeout", u.connect_timeout)?;
        positive("upstream.read-timeout", u.read_timeout)?;
        let tokens = self.tokens.resolve(env)?;
        if let Some(s) = &self.session {
            s.validate()?;
        }
        if self.entitlements.is_some() != self.session.is_some() {
            return Err(ConfigError::invalid(
                "entitlements",
                if self.session.is_some() {
                    "(absent)"
                } else {
                    "(present)"
                },
                "[session] and [entitlements] go together: playback grants need both",
            ));
        }
        let entitlements = self.entitlements.map(|e| e.resolve(env)).transpose()?;
        Ok(ProxyConfig {
            server: self.server,
            upstream: self.upstream,
            tokens,
            session: self.session,
            entitlements,
            log: self.log,
        })
    }
}

impl TokensSection {
    fn resolve(self, env: &dyn Env) -> Result<TokensConfig, ConfigError> {
        positive("tokens.default-ttl", self.default_ttl)?;
        if self.max_ttl < self.default_ttl {
            return Err(ConfigError::invalid(
                "tokens.max-ttl",
                humantime::format_duration(self.max_ttl),
                "must be at least tokens.default-ttl",
            ));
        }
        if !(8..=32).contains(&self.ipv4_prefix) {
            return Err(ConfigError::invalid(
                "tokens.ipv4-prefix",
                self.ipv4_prefix,
                "must be between 8 and 32",
            ));
        }
        if !(16..=128).contains(&self.ipv6_prefix) {
            return Err(ConfigError::invalid(
                "tokens.ipv6-prefix",
                self.ipv6_prefix,
                "must be between 16 and 128",
            ));
        }
        let keys = resolve_keys(
            "tokens",
            self.keys,
            &self.signing_key,
            KeyLen::AtLeast(32),
            env,
        )?;
        Ok(TokensConfig {
            signing_key: self.signing_key,
            default_ttl: self.default_ttl,
            max_ttl: self.max_ttl,
            bind_ip: self.bind_ip,
            ipv4_prefix: self.ipv4_prefix,
            ipv6_prefix: self.ipv6_prefix,
            keys,
        })
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9180))
}
fn default_threads() -> usize {
    2
}
fn default_grace() -> Duration {
    Duration::from_secs(10)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_read_timeout() -> Duration {
    Duration::from_secs(15)
}
fn default_ttl() -> Duration {
    Duration::from_secs(3600)
}
fn default_max_ttl() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_v4_prefix() -> u8 {
    24
}
fn default_v6_prefix() -> u8 {
    56
}
