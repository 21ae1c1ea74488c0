//! Building the pingora [`Server`] of an edge from its [`ProxyConfig`]: the proxy service on
//! `server.listen` (and `server.tls.listen`: TLS with HTTP/2 by ALPN), the metrics service on
//! `server.metrics-listen`, and the background services (invalidation subscriber, JWKS
//! warm-up, the reloader of keys and certificates).
//!
//! Graceful upgrade: a new process started with `--upgrade` takes the listening sockets from
//! the running one over `server.upgrade-socket` when that one gets `SIGQUIT`; the old process
//! stops accepting and drains for `server.grace-period`. No connection is refused meanwhile.
//!
//! Pingora never sees the command line or a YAML file: its [`ServerConf`] is derived from our
//! config here, so `--config FILE` is the only configuration an operator writes.

use std::{
    convert::Infallible,
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use pingora::{
    listeners::{L4BufferSettings, ListenerConfig, tls::TlsSettings},
    server::{
        Server,
        configuration::{Opt, ServerConf},
    },
    services::listening::Service,
};
use streamgate_config::ProxyConfig;
use tracing::info;

use crate::{
    admin::Admin,
    cache::EdgeCache,
    cors::Cors,
    edge::{AccessLog, Edge},
    grant::{Grants, JwksReady, JwksWarmUp},
    health::Readiness,
    invalidate::Invalidator,
    metrics::{EdgeMetrics, MetricsApp},
    proxy_protocol::{ProxyProtocolApp, ProxyProtocolTls},
    reload::Reloader,
    tls::{Certificates, SniResolver, TlsError},
    tokens::{KeyError, TokenPolicy},
    upstream::{Origin, UpstreamError},
};

/// Read buffer of each plain player connection (Pingora's default: 64 KiB). None: HTTP/1
/// reads the request head into its own buffer anyway, so an L4 buffer in front of it only
/// adds a copy and, per open connection, its size in memory (8 KiB measured with heaptrack at
/// 5,000 players).
const PLAYER_READ_BUFFER: usize = 0;

/// Why an edge could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The token keys are unusable.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The origin is unusable.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The metric families could not be registered.
    #[error("cannot register metrics")]
    Metrics(#[from] prometheus::Error),
    /// A listen address cannot be bound (in use, or not an address of this host).
    #[error("config key `{key}` = {addr}: cannot listen")]
    Bind {
        /// `server.listen` or `server.metrics-listen`.
        key: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// `[session]`/`[entitlements]` cannot make the grant service.
    #[error("playback grants: {0}")]
    Grants(#[from] crate::grant::GrantsError),
    /// `[cache]` cannot make the cache tiers.
    #[error("cache: {0}")]
    Cache(#[from] crate::cache::CacheError),
    /// `[encryption]` cannot make the license service.
    #[error("license endpoint: {0}")]
    License(String),
    /// The Redis carrying `sg:invalidate` is not a Redis URL.
    #[error("invalidation bus: {0}")]
    Bus(#[source] redis::RedisError),
    /// `[server.tls]` certificates cannot be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// How the process was started, beyond the config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The config file, read again on `SIGHUP` (token keys, certificates).
    pub config_path: Option<PathBuf>,
    /// Take the listening sockets from a running edge (graceful upgrade) instead of binding.
    pub upgrade: bool,
    /// Fork into the background once configured (`server.pid-file`, `server.error-log`), as
    /// systemd's `Type=forking` expects.
    pub daemon: bool,
}

/// Pingora's settings for our config: worker threads, drain time, the upgrade socket, and
/// daemon mode when asked for.
fn server_conf(config: &ProxyConfig, opts: &RunOptions) -> ServerConf {
    ServerConf {
        threads: config.server.threads,
        daemon: opts.daemon,
        pid_file: config.server.pid_file().to_string_lossy().into_owned(),
        error_log: config
            .server
            .error_log
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        // Pingora counts whole seconds; round a sub-second grace period up, not down to zero.
        grace_period_seconds: Some(ceil_secs(config.server.grace_period)),
        upgrade_sock: config
            .server
            .upgrade_socket()
            .to_string_lossy()
            .into_owned(),
        ..ServerConf::default()
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Builds the edge's server with its services, ready for [`Server::run_forever`].
///
/// Listeners are bound when the server runs, not here.
///
/// # Errors
/// Unusable token keys, an origin that does not resolve, or a metrics registration failure.
pub fn build_server(config: &ProxyConfig, opts: &RunOptions) -> Result<Server, StartError> {
    let tokens = Arc::new(TokenPolicy::from_conf(&config.tokens)?);
    info!(
        keys = config.tokens.keys.len(),
        signing_key = tokens.keys().signing_key_id(),
        "token keys loaded"
    );
    let origin = Origin::from_conf(&config.upstream, config.edge_key.as_ref())?;
    info!(
        origin = %config.upstream.origin,
        tls = config.upstream.tls,
        "origin resolved"
    );
    let metrics = Arc::new(EdgeMetrics::new()?);

    let tls = match &config.server.tls {
        Some(t) => Some((
            Arc::new(SniResolver::new(Certificates::load(&t.certificates)?)),
            t,
        )),
        None => None,
    };
    let opt = Opt {
        upgrade: opts.upgrade,
        daemon: opts.daemon,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, server_conf(config, opts));
    server.bootstrap();

    let grants = match (&config.session, &config.entitlements) {
        (Some(session), Some(ent)) => {
            let scheme = if config.upstream.tls { "https" } else { "http" };
            let base = format!("{scheme}://{}", config.upstream.origin);
            let g = Grants::from_conf(
                session,
                ent,
                base,
                config.edge_key.clone(),
                tokens.clone(),
                metrics.clone(),
            )?;
            info!(
                evm_chains = ent.evm_rpc.len(),
                solana_clusters = ent.solana_rpc.len(),
                l2 = ent.redis_url.is_some(),
                "playback grants enabled"
            );
            Some(Arc::new(g))
        }
        _ => None,
    };
    let cache = if config.cache.enabled {
        let c = EdgeCache::new(&config.cache, metrics.clone())?;
        info!(
            memory = config.cache.memory,
            l2 = config.cache.redis_url.is_some(),
            l2_cluster_seeds = config.cache.redis_cluster.len(),
            "object cache enabled"
        );
        Some(Arc::new(c))
    } else {
        None
    };
    let licenses = {
        let scheme = if config.upstream.tls { "https" } else { "http" };
        crate::license::Licenses::new(
            config.encryption.as_ref(),
            format!("{scheme}://{}", config.upstream.origin),
            config.edge_key.clone(),
            config.license.requests_per_minute,
            metrics.clone(),
        )
        .map_err(StartError::License)?
    };
    let licenses = Arc::new(licenses);
    info!(
        keys = config.encryption.as_ref().map_or(0, |e| e.keys.len()),
        "license endpoint ready"
    );
    // One Redis carries sg:invalidate for the region: the cache's L2, else the entitlements'.
    let bus = config
        .cache
        .redis_url
        .as_deref()
        .or(config.cache.redis_cluster.first().map(String::as_str))
        .filter(|_| cache.is_some())
        .or(config
            .entitlements
            .as_ref()
            .and_then(|e| e.redis_url.as_deref()))
        .map(redis::Client::open)
        .transpose()
        .map_err(StartError::Bus)?;
    if let Some(client) = &bus {
        let task = Invalidator::new(
            client.clone(),
            grants.clone(),
            cache.clone(),
            metrics.clone(),
        )
        .forgetting_keys(licenses.clone());
        server.add_service(pingora::services::background::background_service(
            streamgate_config::contract::INVALIDATE_CHANNEL,
            task,
        ));
    }
    let admin = config
        .admin_token
        .as_ref()
        .map(|t| Admin::new(t, cache.clone(), bus.clone(), metrics.clone()));
    let mut readiness = Readiness::default();
    if let Some(g) = &grants {
        readiness.add(Box::new(JwksReady(g.clone())));
        server.add_service(pingora::services::background::background_service(
            "jwks warm-up",
            JwksWarmUp(g.clone()),
        ));
    }
    let tokens_for_reload = tokens.clone();
    let edge = Edge::new(
        tokens,
        origin,
        metrics.clone(),
        readiness,
        grants,
        cache,
        Cors::from_conf(&config.cors),
    )
    .accepting_children(streamgate_auth::EdgeKeys::new(
        config.child_keys.iter().map(|k| k.expose()),
    ))
    .behind(config.trusted_proxies.clone())
    .exporting_spans(config.log.otlp_endpoint.is_some())
    .sending_at_least(config.server.min_send_rate)
    .licensing(licenses)
    .logging_access(
        config
            .access_log
            .enabled
            .then(|| AccessLog::new(config.access_log.sample, config.access_log.errors)),
    );
    let app = ProxyProtocolApp {
        inner: Arc::new(pingora::proxy::http_proxy(&server.configuration, edge)),
        plain: config.server.proxy_protocol,
        trusted: config.trusted_proxies.clone(),
        metrics: metrics.clone(),
        cap: crate::shed::ConnectionCap::new(config.server.max_connections, metrics.clone()),
    };
    let mut proxy = Service::new("streamgate edge".to_owned(), app);
    // A player's request is a few hundred bytes, read straight into the HTTP/1 session's own
    // buffer: no L4 read buffer (Pingora's default is 64 KiB per connection).
    proxy.add_listener(
        ListenerConfig::tcp(config.server.listen.to_string())
            .l4_buffer(L4BufferSettings::default().read(PLAYER_READ_BUFFER)),
    );
    if let Some((resolver, t)) = &tls {
        let mut settings = TlsSettings::intermediate("", "").expect("settings without files");
        settings.set_cert_resolver(resolver.clone());
        settings.enable_h2();
        proxy.add_tls_with_settings(&t.listen.to_string(), None, settings);
        if t.proxy_protocol {
            proxy
                .endpoints()
                .set_pre_tls_callback(Arc::new(ProxyProtocolTls {
                    trusted: config.trusted_proxies.clone(),
                    metrics: metrics.clone(),
                }));
        }
        info!(listen = %t.listen, names = ?resolver.names(), "TLS listener configured (h2, http/1.1)");
    }
    server.add_service(proxy);
    server.add_service(pingora::services::background::background_service(
        "reload",
        Reloader {
            config_path: opts.config_path.clone(),
            tokens: tokens_for_reload,
            tls: tls
                .as_ref()
                .map(|(r, t)| (r.clone(), t.certificates.clone())),
            poll: config
                .server
                .tls
                .as_ref()
                .map_or(Duration::ZERO, |t| t.reload_interval),
            metrics: metrics.clone(),
        },
    ));

    let mut metrics_service = Service::new("metrics".to_owned(), MetricsApp::new(metrics, admin));
    metrics_service.add_tcp(&config.server.metrics_listen.to_string());
    metrics_service.threads = Some(1);
    server.add_service(metrics_service);

    info!(
        listen = %config.server.listen,
        metrics = %config.server.metrics_listen,
        threads = config.server.threads,
        "edge configured"
    );
    Ok(server)
}

/// Builds the edge and runs it until a shutdown signal (`SIGTERM`: graceful, draining for
/// `server.grace-period`; `SIGINT`: fast). Exits the process when done.
///
/// # Errors
/// Only start-up errors (see [`build_server`]); once running it does not return.
pub fn run(config: &ProxyConfig, opts: &RunOptions) -> Result<Infallible, StartError> {
    // Pingora retries a busy port for 30 s and then panics inside the service, leaving the
    // process half up; probe the listeners first so a taken port is a clear start-up error.
    // An upgrading process receives the sockets instead: they are busy by design.
    if !opts.upgrade {
        check_bindable("server.listen", config.server.listen)?;
        check_bindable("server.metrics-listen", config.server.metrics_listen)?;
        if let Some(t) = &config.server.tls {
            check_bindable("server.tls.listen", t.listen)?;
        }
    }
    let server = build_server(config, opts)?;
    info!("edge starting");
    server.run_forever()
}

/// What `--check-config` verifies beyond loading the file: the token keys and the TLS
/// certificates (parsed, keys matching) — everything start-up builds without the network.
///
/// # Errors
/// Unusable token keys or certificates.
pub fn check(config: &ProxyConfig) -> Result<(), StartError> {
    TokenPolicy::from_conf(&config.tokens)?;
    if let Some(t) = &config.server.tls {
        Certificates::load(&t.certificates)?;
    }
    Ok(())
}

/// Binds and releases `addr` (std sets `SO_REUSEADDR`, as pingora does, so the release does
/// not block the real bind).
fn check_bindable(key: &'static str, addr: SocketAddr) -> Result<(), StartError> {
    TcpListener::bind(addr)
        .map(drop)
        .map_err(|source| StartError::Bind { key, addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_period_rounds_up() {
        assert_eq!(ceil_secs(Duration::from_millis(1500)), 2);
        assert_eq!(ceil_secs(Duration::from_secs(10)), 10);
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
    }

    #[test]
    fn busy_port_is_reported_with_its_key() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = check_bindable("server.listen", addr).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("config key `server.listen` = {addr}"))
        );
        drop(taken);
        assert!(check_bindable("server.listen", addr).is_ok());
    }
}
