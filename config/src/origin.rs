//! `origin.toml`: the origin API.

use std::{net::SocketAddr, time::Duration};

use serde::Deserialize;

use crate::{
    AuthConfig, AuthSection, ConfigError, Env, LogConfig, RedisConfig, S3Config, S3Section, Secret,
    SecretRef,
    common::{bytesize, duration, positive},
    net::{IpNet, TrustedProxies},
};

/// Shortest edge key accepted (an edge key is a shared secret, not a password).
pub const MIN_EDGE_KEY_LEN: usize = 16;

/// S3's smallest part size for every part but the last.
pub const S3_MIN_PART: u64 = 5 << 20;
/// S3's largest part size.
pub const S3_MAX_PART: u64 = 5 << 30;
/// S3's largest number of parts in one multipart upload.
pub const S3_MAX_PARTS: u64 = 10_000;

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OriginFile {
    /// `[server]`.
    pub server: OriginServer,
    /// `[s3]`.
    pub s3: S3Section,
    /// `[redis]`.
    pub redis: RedisConfig,
    /// `[uploads]`.
    #[serde(default)]
    pub uploads: UploadsConfig,
    /// `[probe]`.
    #[serde(default)]
    pub probe: ProbeConfig,
    /// `[webhooks]`.
    #[serde(default)]
    pub webhooks: WebhooksConfig,
    /// `[web]`: the web app (absent: origin serves no pages).
    #[serde(default)]
    pub web: Option<WebConfig>,
    /// `[auth]`: wallet sign-in and sessions (required: see its `domain`).
    pub auth: AuthSection,
    /// `[log]`.
    #[serde(default)]
    pub log: LogConfig,
}

/// `[server]` of origin.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OriginServer {
    /// Public listener: the API creators and wallets reach (sign-in, contents, tus, `/metrics`).
    /// It never serves packaged media.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Internal listener, for edges only: packaged files (`/v/{id}/{path}`) and the content
    /// records edges read. Keep it off the public network (a private address, a firewall, a
    /// Kubernetes ClusterIP): it is not for viewers.
    #[serde(default = "default_internal_listen")]
    pub internal_listen: SocketAddr,
    /// Shared secrets edges present on the internal listener (`x-streamgate-edge-key`), compared
    /// in constant time. Several may be live while they rotate. Required when
    /// `internal-listen` is not a loopback address.
    #[serde(default)]
    pub edge_keys: Vec<SecretRef>,
    /// Load balancers whose `X-Forwarded-For` / `Forwarded` headers name the client (CIDR
    /// blocks). Empty: the TCP peer is the client, whatever the headers say.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// TLS on the public listener (HTTP/2 and HTTP/1.1 by ALPN): `{ cert, key }` PEM files.
    /// Absent: plain HTTP (behind a TLS-terminating ingress).
    #[serde(default)]
    pub tls: Option<OriginTls>,
    /// Base URL clients reach this origin at; upload URLs are built on it.
    #[serde(default = "default_public_url")]
    pub public_url: String,
    /// Largest accepted JSON body.
    #[serde(default = "default_json_limit", with = "bytesize")]
    pub max_json_body: u64,
}

/// `server.tls` of origin.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OriginTls {
    /// PEM file: the certificate chain, leaf first.
    pub cert: std::path::PathBuf,
    /// PEM file: the leaf's private key.
    pub key: std::path::PathBuf,
}

/// `[uploads]`: tus uploads streamed into S3 multipart uploads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UploadsConfig {
    /// Largest accepted upload (`Tus-Max-Size`).
    #[serde(default = "default_max_size", with = "bytesize")]
    pub max_size: u64,
    /// S3 part size; each upload in progress buffers at most this much memory.
    #[serde(default = "default_part_size", with = "bytesize")]
    pub part_size: u64,
    /// How long an unfinished upload may sit idle before it expires.
    #[serde(default = "default_expiry", with = "duration")]
    pub expiry: Duration,
}

/// `[probe]`: ffprobe on finished uploads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProbeConfig {
    /// ffprobe binary.
    #[serde(default = "default_ffprobe")]
    pub ffprobe: String,
    /// Time allowed for one probe.
    #[serde(default = "default_probe_timeout", with = "duration")]
    pub timeout: Duration,
}

/// `[web]`: the web app origin serves at `/` and `/watch/{id}` (built by `make setup` into
/// `web/dist`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WebConfig {
    /// The built app: `index.html` and `assets/` (content-hashed files).
    pub dir: std::path::PathBuf,
    /// The edge players and the app fetch grants and media from (`http(s)://host[:port]`):
    /// written into the page and its Content-Security-Policy.
    pub edge_url: String,
}

/// `[webhooks]`: creators' webhook endpoints and their delivery (Standard Webhooks).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WebhooksConfig {
    /// Deliver to (and accept) targets on loopback, private, link-local and other non-public
    /// addresses. Off in production: a webhook URL must not reach into the operator's network.
    #[serde(default)]
    pub allow_private_targets: bool,
    /// Tries per event and endpoint before it goes to the dead letter stream.
    #[serde(default = "default_webhook_attempts")]
    pub max_attempts: u32,
    /// Delay before the first retry; it doubles on each retry (with jitter) up to
    /// `max-backoff`.
    #[serde(default = "default_webhook_backoff", with = "duration")]
    pub backoff: Duration,
    /// Longest delay between two tries.
    #[serde(default = "default_webhook_max_backoff", with = "duration")]
    pub max_backoff: Duration,
    /// Time allowed for one delivery (connect, send, status line).
    #[serde(default = "default_webhook_timeout", with = "duration")]
    pub timeout: Duration,
    /// Endpoints one creator may register.
    #[serde(default = "default_webhook_endpoints")]
    pub max_endpoints: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            max_attempts: default_webhook_attempts(),
            backoff: default_webhook_backoff(),
            max_backoff: default_webhook_max_backoff(),
            timeout: default_webhook_timeout(),
            max_endpoints: default_webhook_endpoints(),
        }
    }
}

fn default_webhook_attempts() -> u32 {
    8
}
fn default_webhook_backoff() -> Duration {
    Duration::from_secs(5)
}
fn default_webhook_max_backoff() -> Duration {
    Duration::from_secs(3600)
}
fn default_webhook_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_webhook_endpoints() -> usize {
    10
}

/// Origin's validated configuration.
#[derive(Debug, Clone)]
pub struct OriginConfig {
    /// `[server]`.
    pub server: OriginServer,
    /// `[s3]`, secrets resolved.
    pub s3: S3Config,
    /// `[redis]`.
    pub redis: RedisConfig,
    /// `[uploads]`.
    pub uploads: UploadsConfig,
    /// `[probe]`.
    pub probe: ProbeConfig,
    /// `[webhooks]`.
    pub webhooks: WebhooksConfig,
    /// `[web]`, checked (the directory holds `index.html`).
    pub web: Option<WebConfig>,
    /// `[auth]`, keys resolved.
    pub auth: AuthConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// `server.edge-keys`, resolved.
    pub edge_keys: Vec<Secret>,
    /// `server.trusted-proxies`.
    pub trusted_proxies: TrustedProxies,
}

/// Resolves a list of edge keys named `key` (`server.edge-keys`): each at least
/// [`MIN_EDGE_KEY_LEN`] characters.
pub(crate) fn resolve_edge_keys(
    key: &str,
    refs: &[SecretRef],
    env: &dyn Env,
) -> Result<Vec<Secret>, ConfigError> {
    refs.iter()
        .enumerate()
        .map(|(i, r)| resolve_edge_key(&format!("{key}[{i}]"), r, env))
        .collect()
}

/// Resolves one edge key named `key`: at least [`MIN_EDGE_KEY_LEN`] characters.
pub(crate) fn resolve_edge_key(
    key: &str,
    r: &SecretRef,
    env: &dyn Env,
) -> Result<Secret, ConfigError> {
    let s = r.resolve(key, env)?;
    if s.expose().len() < MIN_EDGE_KEY_LEN {
        return Err(ConfigError::invalid(
            key,
            "(secret)",
            format!("must be at least {MIN_EDGE_KEY_LEN} characters"),
        ));
    }
    Ok(s)
}

impl OriginFile {
    pub(crate) fn resolve(self, env: &dyn Env) -> Result<OriginConfig, ConfigError> {
        self.log.validate()?;
        let url = &self.server.public_url;
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.ends_with('/') {
            return Err(ConfigError::invalid(
                "server.public-url",
                format!("{url:?}"),
                "must be an http(s) URL without a trailing slash",
            ));
        }
        let srv = &self.server;
        if srv.internal_listen == srv.listen {
            return Err(ConfigError::invalid(
                "server.internal-listen",
                srv.internal_listen,
                "must differ from server.listen (the public listener never serves media)",
            ));
        }
        let edge_keys = resolve_edge_keys("server.edge-keys", &srv.edge_keys, env)?;
        if edge_keys.is_empty() && !srv.internal_listen.ip().is_loopback() {
            return Err(ConfigError::invalid(
                "server.edge-keys",
                "[]",
                format!(
                    "required when server.internal-listen ({}) is not a loopback address",
                    srv.internal_listen
                ),
            ));
        }
        if let Some(t) = &srv.tls {
            for (what, path) in [("cert", &t.cert), ("key", &t.key)] {
                if let Err(e) = std::fs::metadata(path) {
                    return Err(ConfigError::invalid(
                        &format!("server.tls.{what}"),
                        format!("{:?}", path.display().to_string()),
                        format!("cannot be read: {e}"),
                    ));
                }
            }
        }
        let trusted_proxies = TrustedProxies::new(srv.trusted_proxies.clone());
        self.redis.validate()?;
        let u = &self.uploads;
        if !(S3_MIN_PART..=S3_MAX_PART).contains(&u.part_size) {
            return Err(ConfigError::invalid(
                "uploads.part-size",
                u.part_size,
                "must be between 5 MiB and 5 GiB (S3 multipart limits)",
            ));
        }
        if u.max_size == 0 || u.max_size > u.part_size.saturating_mul(S3_MAX_PARTS) {
            return Err(ConfigError::invalid(
                "uploads.max-size",
                u.max_size,
                "must be positive and at most part-size x 10000 (S3's part count limit)",
            ));
        }
        positive("uploads.expiry", u.expiry)?;
        positive("probe.timeout", self.probe.timeout)?;
        let w = &self.webhooks;
        if !(1..=50).contains(&w.max_attempts) {
            return Err(ConfigError::invalid(
                "webhooks.max-attempts",
                w.max_attempts,
                "must be between 1 and 50",
            ));
        }
        positive("webhooks.backoff", w.backoff)?;
        positive("webhooks.timeout", w.timeout)?;
        if w.max_backoff < w.backoff {
            return Err(ConfigError::invalid(
                "webhooks.max-backoff",
                humantime::format_duration(w.max_backoff),
                "must be at least webhooks.backoff",
            ));
        }
        if w.max_endpoints == 0 {
            return Err(ConfigError::invalid(
                "webhooks.max-endpoints",
                0,
                "must be positive",
            ));
        }
        if let Some(web) = &self.web {
            if !web.dir.join("index.html").is_file() {
                return Err(ConfigError::invalid(
                    "web.dir",
                    web.dir.display(),
                    "must be a built web app holding index.html (make setup builds web/dist)",
                ));
            }
            let url = &web.edge_url;
            let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
            let host = url.split_once("://").map_or("", |(_, h)| h);
            if !scheme_ok || host.is_empty() || host.contains(['/', '?', '#', '"', '\'', ' ', ';'])
            {
                return Err(ConfigError::invalid(
                    "web.edge-url",
                    url,
                    "must be http(s)://host[:port], without a path",
                ));
            }
        }
        Ok(OriginConfig {
            s3: self.s3.resolve(env)?,
            auth: self.auth.resolve(env)?,
            server: self.server,
            redis: self.redis,
            uploads: self.uploads,
            probe: self.probe,
            webhooks: self.webhooks,
            web: self.web,
            log: self.log,
            edge_keys,
            trusted_proxies,
        })
    }
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            max_size: default_max_size(),
            part_size: default_part_size(),
            expiry: default_expiry(),
        }
    }
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            ffprobe: default_ffprobe(),
            timeout: default_probe_timeout(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8081))
}
fn default_internal_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8082))
}
fn default_public_url() -> String {
    "http://127.0.0.1:8081".into()
}
fn default_json_limit() -> u64 {
    64 << 10
}
fn default_max_size() -> u64 {
    20 << 30
}
fn default_part_size() -> u64 {
    8 << 20
}
fn default_expiry() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_ffprobe() -> String {
    "ffprobe".into()
}
fn default_probe_timeout() -> Duration {
    Duration::from_secs(60)
}
