//! Changing key material without a restart: `SIGHUP` re-reads the config file and swaps the
//! token keys and the TLS certificates in place; certificate files are also watched (their
//! modification times, every `server.tls.reload-interval`), so a renewal by certbot or a
//! Kubernetes Secret update is picked up without a signal.
//!
//! ```text
//!  SIGHUP ──► load the config file again ──► tokens.keys / signing-key ─► TokenPolicy::rotate
//!                                        └─► server.tls.certificates  ─► SniResolver::replace
//!  every reload-interval: a certificate or key file changed ─────────────► SniResolver::replace
//! ```
//!
//! Anything invalid (a config error, an unreadable certificate, a key that does not match)
//! keeps what is live, logs why and counts `streamgate_edge_reloads_total{result="error"}`.
//! Listeners, ports and the other settings need a restart (or a graceful upgrade).

use std::{path::PathBuf, sync::Arc, time::SystemTime};

use async_trait::async_trait;
use pingora::{server::ShutdownWatch, services::background::BackgroundService};
use streamgate_config::{ProcessEnv, TlsCertificate};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use crate::{
    metrics::EdgeMetrics,
    tls::{self, SniResolver},
    tokens::TokenPolicy,
};

/// The edge's reloader (a background service).
pub(crate) struct Reloader {
    /// The config file to read again on `SIGHUP` (`None`: certificates only).
    pub(crate) config_path: Option<PathBuf>,
    pub(crate) tokens: Arc<TokenPolicy>,
    /// The TLS listener's resolver and the certificate files it was loaded from.
    pub(crate) tls: Option<(Arc<SniResolver>, Vec<TlsCertificate>)>,
    pub(crate) poll: std::time::Duration,
    pub(crate) metrics: Arc<EdgeMetrics>,
}

impl Reloader {
    /// `SIGHUP`: the config file, then its token keys and certificates.
    fn reload_all(&self, certs: &mut Vec<TlsCertificate>) {
        if let Some(path) = &self.config_path {
            match streamgate_config::load_proxy(path, &ProcessEnv) {
                Ok(conf) => {
                    let r = self.tokens.rotate(&conf.tokens);
                    self.metrics.reload("tokens", r.is_ok());
                    match r {
                        Ok(()) => info!(
                            keys = conf.tokens.keys.len(),
                            signing_key = conf.tokens.signing_key,
                            "token keys reloaded"
                        ),
                        Err(e) => {
                            warn!(error = %e, "token keys not reloaded; keeping the live ones")
                        }
                    }
                    if let Some(t) = conf.server.tls {
                        certs.clone_from(&t.certificates);
                    }
                }
                Err(e) => {
                    warn!(config = %path.display(), error = %e, "config not reloaded; keeping the live keys and certificates");
                    self.metrics.reload("tokens", false);
                    return;
                }
            }
        }
        self.reload_tls(certs);
    }

    fn reload_tls(&self, certs: &[TlsCertificate]) {
        if let Some((resolver, _)) = &self.tls {
            let ok = tls::reload(resolver, certs).is_ok();
            self.metrics.reload("tls", ok);
        }
    }
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGHUP; reloads only by file changes");
                None
            }
        };
        let mut certs: Vec<TlsCertificate> = self
            .tls
            .as_ref()
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        let mut seen: Vec<Option<SystemTime>> = tls::stamps(&certs);
        let watch = self.tls.is_some() && !self.poll.is_zero();
        let mut tick = tokio::time::interval(if watch {
            self.poll
        } else {
            std::time::Duration::from_secs(3600)
        });
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    info!("SIGHUP: reloading token keys and certificates");
                    self.reload_all(&mut certs);
                    seen = tls::stamps(&certs);
                }
                _ = tick.tick(), if watch => {
                    let now = tls::stamps(&certs);
                    if now != seen {
                        info!("certificate files changed: reloading");
                        self.reload_tls(&certs);
                        seen = now;
                    }
                }
            }
        }
    }
}
