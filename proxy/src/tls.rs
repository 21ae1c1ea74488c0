//! TLS at the edge: certificates from PEM files, chosen per connection by SNI, swapped in place
//! when the files change or on `SIGHUP`, without touching established connections.
//!
//! ```text
//!  [server.tls] certificates = [{cert, key}, …]      (the first is the default)
//!        │ load: chain + key, key must match the leaf, names = the leaf's DNS SANs
//!        ▼
//!  Certificates ──ArcSwap──► SniResolver (rustls ResolvesServerCert, every handshake)
//!        ▲                      exact name → wildcard (*.parent) → default
//!        │ reload: SIGHUP, or a file's mtime changed (polled every `reload-interval`)
//!  Reloader (background service): a bad file keeps the old set, logs and counts the error
//! ```
//!
//! A rotation affects new handshakes only: established connections (HTTP/1.1 keep-alive or a
//! long HTTP/2 connection) keep the certificate they negotiated, as with nginx's reload.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};

use arc_swap::ArcSwap;
use pingora::tls::{ClientHello, CryptoProvider, ResolvesServerCert, sign::CertifiedKey};
use streamgate_config::TlsCertificate;
use tracing::{info, warn};

/// Why a certificate set cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// No certificates configured.
    #[error("config key `server.tls.certificates`: at least one {{ cert, key }} is needed")]
    Empty,
    /// A file is unreadable or holds no certificate / no private key.
    #[error("config key `server.tls.certificates` cert = {cert:?}, key = {key:?}: {reason}")]
    Unreadable {
        /// The certificate chain file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One loaded certificate and the names it serves.
struct Entry {
    /// Lower-case DNS names from the leaf's subjectAltName (may start with `*.`).
    names: Vec<String>,
    key: Arc<CertifiedKey>,
}

/// A loaded certificate set: the first is the default (no SNI, or no name matches).
pub(crate) struct Certificates {
    entries: Vec<Entry>,
    /// Exact names to entry index; wildcard names are stored as `*.parent`.
    by_name: HashMap<String, usize>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.names))
            .finish()
    }
}

impl Certificates {
    /// Loads every configured chain and key.
    ///
    /// # Errors
    /// An empty list, an unreadable file, a file without a certificate or key, a key the
    /// crypto provider refuses or one that does not match its certificate.
    pub(crate) fn load(conf: &[TlsCertificate]) -> Result<Self, TlsError> {
        if conf.is_empty() {
            return Err(TlsError::Empty);
        }
        pingora::tls::install_default_crypto_provider();
        let provider = CryptoProvider::get_default().expect("a crypto provider is installed");
        let mut entries = Vec::with_capacity(conf.len());
        for c in conf {
            let bad = |reason: String| TlsError::Unreadable {
                cert: c.cert.clone(),
                key: c.key.clone(),
                reason,
            };
            let (chain, key) = pingora::tls::load_certs_and_key_files(
                &c.cert.to_string_lossy(),
                &c.key.to_string_lossy(),
            )
            .map_err(|e| bad(e.to_string()))?
            .ok_or_else(|| bad("no certificate in cert, or no private key in key".into()))?;
            let names = leaf_names(&chain[0]).map_err(bad)?;
            let key = CertifiedKey::from_der(chain, key, provider)
                .map_err(|e| bad(format!("key does not fit the certificate: {e}")))?;
            entries.push(Entry {
                names,
                key: Arc::new(key),
            });
        }
        let mut by_name = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            for n in &e.names {
                // The first certificate listing a name serves it.
                by_name.entry(n.clone()).or_insert(i);
            }
        }
        Ok(Self { entries, by_name })
    }

    /// The certificate for an SNI name: exact match, then a wildcard one label up, then the
    /// default.
    pub(crate) fn pick(&self, sni: Option<&str>) -> &Arc<CertifiedKey> {
        let found = sni.and_then(|name| {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            self.by_name.get(&name).copied().or_else(|| {
                let (_, parent) = name.split_once('.')?;
                self.by_name.get(&format!("*.{parent}")).copied()
            })
        });
        &self.entries[found.unwrap_or(0)].key
    }

    /// Every name served, for logs.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.entries
            .iter()
            .flat_map(|e| e.names.iter().map(String::as_str))
            .collect()
    }
}

/// The DNS names of a leaf certificate (subjectAltName dNSName entries), lower-cased.
fn leaf_names(der: &pingora::tls::CertificateDer<'_>) -> Result<Vec<String>, String> {
    let cert = webpki::EndEntityCert::try_from(der)
        .map_err(|e| format!("the first certificate does not parse: {e}"))?;
    Ok(cert
        .valid_dns_names()
        .map(str::to_ascii_lowercase)
        .collect())
}

/// rustls' certificate choice for the edge's TLS listener: reads the current set on every
/// handshake (one atomic load).
#[derive(Debug)]
pub(crate) struct SniResolver {
    current: ArcSwap<Certificates>,
}

impl SniResolver {
    pub(crate) fn new(certs: Certificates) -> Self {
        Self {
            current: ArcSwap::from_pointee(certs),
        }
    }

    /// Every name served now, for logs.
    pub(crate) fn names(&self) -> Vec<String> {
        self.current
            .load()
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Serves `certs` to handshakes from now on.
    pub(crate) fn replace(&self, certs: Certificates) {
        self.current.store(Arc::new(certs));
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().pick(hello.server_name()).clone())
    }
}

/// The modification times of every configured file (`None`: unreadable now).
pub(crate) fn stamps(conf: &[TlsCertificate]) -> Vec<Option<SystemTime>> {
    conf.iter()
        .flat_map(|c| [&c.cert, &c.key])
        .map(|p: &PathBuf| modified(p))
        .collect()
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Loads the configured set again and swaps it in; a failure keeps the current set.
pub(crate) fn reload(resolver: &SniResolver, conf: &[TlsCertificate]) -> Result<(), TlsError> {
    match Certificates::load(conf) {
        Ok(certs) => {
            info!(names = ?certs.names(), "TLS certificates reloaded");
            resolver.replace(certs);
            Ok(())
        }
        Err(e) => {
            warn!(error = %e, "TLS certificates not reloaded; keeping the current ones");
            Err(e)
        }
    }
}
