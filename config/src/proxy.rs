//! `proxy.toml`: the edge.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

use crate::{
    ConfigError, EncryptionConfig, EncryptionSection, EntitlementsConfig, EntitlementsSection, Env,
    LogConfig, Secret, SessionSection,
    common::{bytesize, duration, positive},
    keyring::{KeyLen, KeySection, resolve_keys},
    net::{IpNet, TrustedProxies},
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
    /// `[cache]`: the object cache tiers.
    #[serde(default)]
    pub cache: CacheSection,
    /// `[cors]`: browser players on other origins.
    #[serde(default)]
    pub cors: CorsSection,
    /// `[admin]`: the authenticated admin API on `server.metrics-listen`.
    #[serde(default)]
    pub admin: Option<AdminSection>,
    /// `[access-log]`: one line per request, sampled.
    #[serde(default)]
    pub access_log: AccessLogSection,
    /// `[log]`.
    #[serde(default)]
    pub log: LogConfig,
    /// `[encryption]`: the key-encryption keys that unwrap encrypted contents' keys for the
    /// ClearKey license endpoint (without it, license requests get 503).
    #[serde(default)]
    pub encryption: Option<EncryptionSection>,
    /// `[license]`: the ClearKey license endpoint's limits.
    #[serde(default)]
    pub license: LicenseSection,
}

/// `[license]`: `POST /p/{token}/{id}/license` (and `/c/{id}/license`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LicenseSection {
    /// License requests one viewer (token subject) may make per minute on this edge; past it,
    /// 429 with `Retry-After`. A player asks once per playback session and key.
    #[serde(default = "default_license_rate")]
    pub requests_per_minute: u32,
}

impl Default for LicenseSection {
    fn default() -> Self {
        Self {
            requests_per_minute: default_license_rate(),
        }
    }
}

fn default_license_rate() -> u32 {
    60
}

/// `[access-log]`: a line per request (JSON with `log.format = "json"`) on the `tracing`
/// target `streamgate::access`: request id, method, route, status, bytes, cache tier,
/// duration, client address, content id and object path (never the URL: it holds tokens),
/// trace id.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AccessLogSection {
    /// Write access-log lines.
    #[serde(default)]
    pub enabled: bool,
    /// Share of successful requests logged (0 < sample ≤ 1; 0.01 = one in a hundred).
    #[serde(default = "one")]
    pub sample: f64,
    /// Failed requests (4xx, 5xx) are logged whatever `sample` says.
    #[serde(default = "crate::common::yes")]
    pub errors: bool,
}

impl Default for AccessLogSection {
    fn default() -> Self {
        Self {
            enabled: false,
            sample: 1.0,
            errors: true,
        }
    }
}

fn one() -> f64 {
    1.0
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
    /// Keys child edges present (`x-streamgate-edge-key`) to fetch `/v/{id}/{path}` from this
    /// edge as their parent. Empty: this edge is nobody's parent and has no `/v/` route.
    #[serde(default)]
    pub edge_keys: Vec<crate::SecretRef>,
    /// `listen` expects a PROXY protocol header (v1 or v2) before each connection's first
    /// byte, from peers in `trusted-proxies` only (others are disconnected).
    #[serde(default)]
    pub proxy_protocol: bool,
    /// Load balancers (CIDR blocks) whose PROXY headers, `X-Forwarded-For` and `Forwarded`
    /// name the viewer. Empty: the TCP peer is the viewer, whatever the headers say.
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
    /// Unix socket a new edge process (`--upgrade`) receives the listening sockets on during a
    /// graceful upgrade. Default: `$TMPDIR/streamgate-edge-{listen port}.upgrade`.
    #[serde(default)]
    pub upgrade_socket: Option<PathBuf>,
    /// With `--daemon`: where the daemon writes its pid (systemd's `PIDFile=`). Default:
    /// `$TMPDIR/streamgate-edge-{listen port}.pid`.
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
    /// With `--daemon`: the file the daemon's log (stderr) goes to. Default: none (discarded).
    #[serde(default)]
    pub error_log: Option<PathBuf>,
    /// `[server.tls]`: a second, TLS listener (HTTP/2 and HTTP/1.1 by ALPN).
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// Most client connections open at once on the player listeners (plain and TLS together);
    /// one more is answered `503` with `Retry-After` and closed, and counted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Slowest a client may read a response body, in bytes per second (`0`: no limit). Each
    /// body write must finish within its size at this rate (at least 1 s), else the edge drops
    /// the connection and counts it (`shed_total{reason="slow_reader"}`): a viewer that stops
    /// reading cannot pin a connection and its buffers forever. HTTP/1 (HTTP/2 flow control
    /// bounds its streams).
    #[serde(default = "default_min_send_rate", with = "bytesize")]
    pub min_send_rate: u64,
}

impl ProxyServer {
    /// `pid-file`, or its default.
    pub fn pid_file(&self) -> PathBuf {
        self.pid_file.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("streamgate-edge-{}.pid", self.listen.port()))
        })
    }

    /// `upgrade-socket`, or its default.
    pub fn upgrade_socket(&self) -> PathBuf {
        self.upgrade_socket.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("streamgate-edge-{}.upgrade", self.listen.port()))
        })
    }
}

/// `[server.tls]`: the edge's TLS listener.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsSection {
    /// TLS listener (a different address from `server.listen`).
    pub listen: SocketAddr,
    /// Certificates, chosen by SNI among their DNS names; the first is the default (clients
    /// without SNI, or names no certificate lists).
    pub certificates: Vec<TlsCertificate>,
    /// How often the files are checked for changes (a change reloads them without a
    /// restart; `SIGHUP` always does). `0s`: only on `SIGHUP`.
    #[serde(default = "default_tls_reload", with = "duration")]
    pub reload_interval: Duration,
    /// This listener expects a PROXY protocol header before the TLS handshake (see
    /// `server.proxy-protocol`).
    #[serde(default)]
    pub proxy_protocol: bool,
}

/// One certificate of `server.tls.certificates`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsCertificate {
    /// PEM file: the leaf certificate first, then its intermediates.
    pub cert: PathBuf,
    /// PEM file: the leaf's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
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
    /// Parent edges (`host:port`, plain HTTP) asked before origin, one per object chosen by
    /// consistent hashing (Ketama) on the cache key, so a region fetches each object from
    /// origin once. A parent that cannot be reached falls back to origin.
    #[serde(default)]
    pub parents: Vec<String>,
    /// The key this edge presents to origin's internal listener and to parent edges
    /// (`x-streamgate-edge-key`); one of their `server.edge-keys`. Required with `parents`.
    #[serde(default)]
    pub edge_key: Option<crate::SecretRef>,
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

/// `[cache]`: moka (L1, in process) over Redis (L2, shared by a region's edges) over origin.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheSection {
    /// Cache objects at all (off: every request goes to origin).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// L1 capacity in bytes (bodies and headers).
    #[serde(default = "default_memory", with = "bytesize")]
    pub memory: u64,
    /// Largest object cached (larger ones stream through uncached).
    #[serde(default = "default_max_object", with = "bytesize")]
    pub max_object: u64,
    /// L2 Redis (`redis://…`); absent: no L2.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// L2 on a Redis Cluster instead: seed nodes (`redis://host:port`, one or more).
    #[serde(default)]
    pub redis_cluster: Vec<String>,
    /// Largest object written to L2.
    #[serde(default = "default_l2_max_object", with = "bytesize")]
    pub l2_max_object: u64,
    /// Limit on one L2 read or write; past it the tier is skipped.
    #[serde(default = "default_l2_timeout", with = "duration")]
    pub l2_timeout: Duration,
    /// How long concurrent requests for an object being fetched wait for it before going to
    /// origin themselves (uncached).
    #[serde(default = "default_lock_timeout", with = "duration")]
    pub lock_timeout: Duration,
    /// A fetch holding the lock longer than this is presumed stuck; waiters compete again.
    #[serde(default = "default_lock_age", with = "duration")]
    pub lock_age: Duration,
    /// Upper bound on serving an expired object while origin fails (`stale-if-error`).
    #[serde(default = "default_stale_if_error", with = "duration")]
    pub stale_if_error: Duration,
    /// Upper bound on serving an expired manifest while it is refreshed in the background
    /// (`stale-while-revalidate`).
    #[serde(default = "default_swr", with = "duration")]
    pub stale_while_revalidate: Duration,
}

impl Default for CacheSection {
    fn default() -> Self {
        Self {
            enabled: true,
            memory: default_memory(),
            max_object: default_max_object(),
            redis_url: None,
            redis_cluster: Vec::new(),
            l2_max_object: default_l2_max_object(),
            l2_timeout: default_l2_timeout(),
            lock_timeout: default_lock_timeout(),
            lock_age: default_lock_age(),
            stale_if_error: default_stale_if_error(),
            stale_while_revalidate: default_swr(),
        }
    }
}

/// `[cors]`: which web origins may read responses (players in a page on another origin).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CorsSection {
    /// Allowed `Origin`s (`https://app.example`), or `["*"]` for any. Empty: no CORS headers.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Send `Access-Control-Allow-Credentials: true` (cookie mode); the origin is then echoed,
    /// never `*`.
    #[serde(default)]
    pub allow_credentials: bool,
    /// Preflight cache lifetime.
    #[serde(default = "default_cors_max_age", with = "duration")]
    pub max_age: Duration,
    /// Cookie-mode playback cookies work cross-site (`SameSite=None; Secure`, HTTPS only);
    /// off: `SameSite=Lax` (player page and edge on the same site).
    #[serde(default)]
    pub cross_site_cookie: bool,
}

impl Default for CorsSection {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            allow_credentials: false,
            max_age: default_cors_max_age(),
            cross_site_cookie: false,
        }
    }
}

/// `[admin]`: purge and other operator calls on the metrics listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AdminSection {
    /// Bearer token admin calls must present.
    pub token: crate::SecretRef,
}

/// The edge's validated configuration.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `[server]`.
    pub server: ProxyServer,
    /// `server.trusted-proxies`.
    pub trusted_proxies: TrustedProxies,
    /// `[upstream]`.
    pub upstream: Upstream,
    /// `[tokens]`, keys resolved.
    pub tokens: TokensConfig,
    /// `[session]`.
    pub session: Option<SessionSection>,
    /// `[entitlements]`, RPC URLs resolved.
    pub entitlements: Option<EntitlementsConfig>,
    /// `[cache]`.
    pub cache: CacheSection,
    /// `[cors]`.
    pub cors: CorsSection,
    /// `[admin]` token, resolved.
    pub admin_token: Option<Secret>,
    /// `upstream.edge-key`, resolved.
    pub edge_key: Option<Secret>,
    /// `server.edge-keys`, resolved: keys accepted from child edges.
    pub child_keys: Vec<Secret>,
    /// `[access-log]`.
    pub access_log: AccessLogSection,
    /// `[log]`.
    pub log: LogConfig,
    /// `[encryption]`, keys resolved.
    pub encryption: Option<EncryptionConfig>,
    /// `[license]`.
    pub license: LicenseSection,
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
        if !(1..=1_000_000).contains(&s.max_connections) {
            return Err(ConfigError::invalid(
                "server.max-connections",
                s.max_connections,
                "must be between 1 and 1000000",
            ));
        }
        if s.min_send_rate != 0 && !(1 << 10..=1 << 30).contains(&s.min_send_rate) {
            return Err(ConfigError::invalid(
                "server.min-send-rate",
                s.min_send_rate,
                "must be 0 (no limit) or between 1KiB and 1GiB (bytes per second)",
            ));
        }
        if s.listen == s.metrics_listen {
            return Err(ConfigError::invalid(
                "server.metrics-listen",
                s.metrics_listen,
                "must differ from server.listen",
            ));
        }
        if (s.proxy_protocol || s.tls.as_ref().is_some_and(|t| t.proxy_protocol))
            && s.trusted_proxies.is_empty()
        {
            let key = if s.proxy_protocol {
                "server.proxy-protocol"
            } else {
                "server.tls.proxy-protocol"
            };
            return Err(ConfigError::invalid(
                key,
                true,
                "needs server.trusted-proxies: a PROXY header is believed only from the load \
                 balancers listed there",
            ));
        }
        if let Some(t) = &s.tls {
            if t.listen == s.listen || t.listen == s.metrics_listen {
                return Err(ConfigError::invalid(
                    "server.tls.listen",
                    t.listen,
                    "must differ from server.listen and server.metrics-listen",
                ));
            }
            if t.certificates.is_empty() {
                return Err(ConfigError::invalid(
                    "server.tls.certificates",
                    "[]",
                    "list at least one { cert = \"…\", key = \"…\" }",
                ));
            }
            for (i, c) in t.certificates.iter().enumerate() {
                for (what, path) in [("cert", &c.cert), ("key", &c.key)] {
                    if let Err(e) = std::fs::metadata(path) {
                        return Err(ConfigError::invalid(
                            &format!("server.tls.certificates[{i}].{what}"),
                            format!("{:?}", path.display().to_string()),
                            format!("cannot be read: {e}"),
                        ));
                    }
                }
            }
        }
        let trusted_proxies = TrustedProxies::new(s.trusted_proxies.clone());
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
        for (i, p) in u.parents.iter().enumerate() {
            if p.parse::<SocketAddr>().is_err() {
                return Err(ConfigError::invalid(
                    &format!("upstream.parents[{i}]"),
                    format!("{p:?}"),
                    "must be an ip:port address",
                ));
            }
        }
        positive("upstream.connect-timeout", u.connect_timeout)?;
        positive("upstream.read-timeout", u.read_timeout)?;
        let edge_key = match &u.edge_key {
            Some(r) => {
                crate::origin::resolve_edge_keys("upstream.edge-key", std::slice::from_ref(r), env)?
                    .pop()
            }
            None => None,
        };
        if edge_key.is_none() && !u.parents.is_empty() {
            return Err(ConfigError::invalid(
                "upstream.edge-key",
                "(absent)",
                "required with upstream.parents: parents serve children only when they present it",
            ));
        }
        let child_keys =
            crate::origin::resolve_edge_keys("server.edge-keys", &self.server.edge_keys, env)?;
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
        if !(1..=100_000_000).contains(&self.license.requests_per_minute) {
            return Err(ConfigError::invalid(
                "license.requests-per-minute",
                self.license.requests_per_minute,
                "must be between 1 and 100000000",
            ));
        }
        self.cache.validate()?;
        if let Some(e) = &entitlements {
            let bus = e.redis_url.is_some()
                || (self.cache.enabled
                    && (self.cache.redis_url.is_some() || !self.cache.redis_cluster.is_empty()));
            if !bus && !e.standalone {
                return Err(ConfigError::invalid(
                    "entitlements.redis-url",
                    "(absent)",
                    "required with [session]: logouts, policy changes and deletions reach edges \
                     through Redis (sg:invalidate); set entitlements.standalone = true to run \
                     grants without them",
                ));
            }
        }
        self.cors.validate()?;
        let a = &self.access_log;
        if !(a.sample > 0.0 && a.sample <= 1.0) {
            return Err(ConfigError::invalid(
                "access-log.sample",
                a.sample,
                "must be above 0 and at most 1 (0.01: one request in a hundred)",
            ));
        }
        let admin_token = match &self.admin {
            Some(a) => {
                let t = a.token.resolve("admin.token", env)?;
                if t.expose().len() < 16 {
                    return Err(ConfigError::invalid(
                        "admin.token",
                        "(secret)",
                        "must be at least 16 characters",
                    ));
                }
                Some(t)
            }
            None => None,
        };
        Ok(ProxyConfig {
            server: self.server,
            trusted_proxies,
            upstream: self.upstream,
            tokens,
            session: self.session,
            entitlements,
            cache: self.cache,
            cors: self.cors,
            admin_token,
            edge_key,
            child_keys,
            access_log: self.access_log,
            log: self.log,
            encryption: self.encryption.map(|e| e.resolve(env)).transpose()?,
            license: self.license,
        })
    }
}

impl CacheSection {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.memory < 1 << 20 {
            return Err(ConfigError::invalid(
                "cache.memory",
                self.memory,
                "must be at least 1MiB",
            ));
        }
        if self.max_object == 0 || self.max_object > self.memory {
            return Err(ConfigError::invalid(
                "cache.max-object",
                self.max_object,
                "must be positive and at most cache.memory",
            ));
        }
        if let Some(u) = &self.redis_url
            && !(u.starts_with("redis://") || u.starts_with("rediss://"))
        {
            return Err(ConfigError::invalid(
                "cache.redis-url",
                format!("{u:?}"),
                "must start with redis:// or rediss://",
            ));
        }
        for (i, u) in self.redis_cluster.iter().enumerate() {
            if !(u.starts_with("redis://") || u.starts_with("rediss://")) {
                return Err(ConfigError::invalid(
                    &format!("cache.redis-cluster[{i}]"),
                    format!("{u:?}"),
                    "must start with redis:// or rediss://",
                ));
            }
        }
        if !self.redis_cluster.is_empty() && self.redis_url.is_some() {
            return Err(ConfigError::invalid(
                "cache.redis-cluster",
                format!("{:?}", self.redis_cluster),
                "set cache.redis-url or cache.redis-cluster, not both",
            ));
        }
        if self.l2_max_object > 512 << 20 {
            return Err(ConfigError::invalid(
                "cache.l2-max-object",
                self.l2_max_object,
                "must be at most 512MiB (Redis' value limit)",
            ));
        }
        positive("cache.l2-timeout", self.l2_timeout)?;
        positive("cache.lock-timeout", self.lock_timeout)?;
        positive("cache.lock-age", self.lock_age)
    }
}

impl CorsSection {
    fn validate(&self) -> Result<(), ConfigError> {
        // `*` with credentials would let any web page read a viewer's grant (and the playback
        // token in it) with the viewer's cookies: browsers forbid the literal combination, and
        // echoing every origin instead is the same hole. Name the origins instead.
        if self.allow_credentials && self.allowed_origins.iter().any(|o| o == "*") {
            return Err(ConfigError::invalid(
                "cors.allowed-origins",
                format!("{:?}", self.allowed_origins),
                "\"*\" cannot be combined with cors.allow-credentials = true: any site could \
                 read viewers' grants with their cookies; list the player origins instead",
            ));
        }
        for (i, o) in self.allowed_origins.iter().enumerate() {
            let ok = o == "*"
                || ((o.starts_with("http://") || o.starts_with("https://"))
                    && !o.ends_with('/')
                    && o.split("://")
                        .nth(1)
                        .is_some_and(|h| !h.is_empty() && !h.contains('/')));
            if !ok {
                return Err(ConfigError::invalid(
                    &format!("cors.allowed-origins[{i}]"),
                    format!("{o:?}"),
                    "must be \"*\" or scheme://host[:port] with no path",
                ));
            }
        }
        Ok(())
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

fn default_true() -> bool {
    true
}
fn default_memory() -> u64 {
    256 << 20
}
fn default_max_object() -> u64 {
    64 << 20
}
fn default_l2_max_object() -> u64 {
    8 << 20
}
fn default_l2_timeout() -> Duration {
    Duration::from_millis(150)
}
fn default_lock_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_lock_age() -> Duration {
    Duration::from_secs(30)
}
fn default_stale_if_error() -> Duration {
    Duration::from_secs(3600)
}
fn default_swr() -> Duration {
    Duration::from_secs(30)
}
fn default_cors_max_age() -> Duration {
    Duration::from_secs(600)
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9180))
}
/// Enough for 10,000 real-time players (one keep-alive connection each) with room to spare;
/// each idle connection costs a few KiB.
fn default_max_connections() -> usize {
    16_384
}
/// 64 KiB/s: a 1 MiB segment may take 16 s, far slower than any viewer who can play it.
fn default_min_send_rate() -> u64 {
    64 << 10
}

fn default_threads() -> usize {
    2
}
fn default_tls_reload() -> Duration {
    Duration::from_secs(10)
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
