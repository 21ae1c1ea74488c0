//! Building the pingora [`Server`] of an edge from its [`ProxyConfig`]: the proxy service on
//! `server.listen` and the metrics service on `server.metrics-listen`.
//!
//! Pingora never sees the command line or a YAML file: its [`ServerConf`] is derived from our
//! config here, so `--config FILE` is the only configuration an operator writes.

use std::{
    convert::Infallible,
    net::{SocketAddr, TcpListener},
    sync::Arc,
    time::Duration,
};

use pingora::{server::Server, server::configuration::ServerConf, services::listening::Service};
use streamgate_config::ProxyConfig;
use tracing::info;

use crate::{
    admin::Admin,
    cache::EdgeCache,
    cors::Cors,
    edge::Edge,
    grant::{Grants, JwksReady, JwksWarmUp},
    health::Readiness,
    invalidate::Invalidator,
    metrics::{EdgeMetrics, MetricsApp},
    tokens::{KeyError, TokenPolicy},
    upstream::{Origin, UpstreamError},
};

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
    /// The Redis carrying `sg:invalidate` is not a Redis URL.
    #[error("invalidation bus: {0}")]
    Bus(#[source] redis::RedisError),
}

/// Pingora's settings for our config: worker threads, drain time, no daemon.
fn server_conf(config: &ProxyConfig) -> ServerConf {
    ServerConf {
        threads: config.server.threads,
        daemon: false,
        // Pingora counts whole seconds; round a sub-second grace period up, not down to zero.
        grace_period_seconds: Some(ceil_secs(config.server.grace_period)),
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
pub fn build_server(config: &ProxyConfig) -> Result<Server, StartError> {
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

    let mut server = Server::new_with_opt_and_conf(None, server_conf(config));
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
        );
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
    ));
    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        edge,
        "streamgate edge",
    );
    proxy.add_tcp(&config.server.listen.to_string());
    server.add_service(proxy);

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
pub fn run(config: &ProxyConfig) -> Result<Infallible, StartError> {
    // Pingora retries a busy port for 30 s and then panics inside the service, leaving the
    // process half up; probe both listeners first so a taken port is a clear start-up error.
    check_bindable("server.listen", config.server.listen)?;
    check_bindable("server.metrics-listen", config.server.metrics_listen)?;
    let server = build_server(config)?;
    info!("edge starting");
    server.run_forever()
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
