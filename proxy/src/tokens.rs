//! The edge's playback-token settings: the live key set plus the minting policy (lifetimes,
//! IP binding) from `[tokens]`, shared by the gate, the operator CLI and the grant endpoint.

use std::{net::IpAddr, sync::Arc, time::Duration};

use arc_swap::{ArcSwap, Guard};

use streamgate_auth::{Grant, IpBinding, KeySet};
use streamgate_config::{TokensConfig, contract::is_valid_content_id};

/// Why the key material in `[tokens]` could not be turned into a [`KeySet`].
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key is not hex (the config loader checks this too; kept for direct callers).
    #[error("tokens.keys[{index}].secret is not valid hex")]
    NotHex {
        /// Position in `tokens.keys`.
        index: usize,
    },
    /// The auth library refused the set.
    #[error("invalid token keys")]
    KeySet(#[from] streamgate_auth::KeySetError),
}

/// Why a token could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// The content id is not well-formed.
    #[error("content id {0:?} must be 1-64 of A-Z a-z 0-9 _ -")]
    BadContentId(String),
    /// The lifetime is zero.
    #[error("token lifetime must be greater than zero")]
    ZeroTtl,
    /// The lifetime exceeds `tokens.max-ttl`.
    #[error("token lifetime {asked} exceeds tokens.max-ttl ({max})")]
    TtlTooLong {
        /// What was asked for (humantime).
        asked: String,
        /// The configured maximum (humantime).
        max: String,
    },
}

/// Decodes the hex keys of `[tokens]` into a key set.
fn key_set(conf: &TokensConfig) -> Result<KeySet, KeyError> {
    let mut keys = Vec::with_capacity(conf.keys.len());
    for (index, (id, secret)) in conf.keys.iter().enumerate() {
        let bytes = hex::decode(secret.expose()).map_err(|_| KeyError::NotHex { index })?;
        keys.push((id.clone(), bytes));
    }
    Ok(KeySet::new(keys, &conf.signing_key)?)
}

/// A freshly minted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    /// The token text, for `/p/{token}/…`.
    pub token: String,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
}

/// The key set and the minting policy of `[tokens]`. The key set can be swapped while the
/// edge runs ([`TokenPolicy::rotate`], on `SIGHUP`); lifetimes and binding stay as started.
#[derive(Debug)]
pub struct TokenPolicy {
    keys: ArcSwap<KeySet>,
    default_ttl: Duration,
    max_ttl: Duration,
    bind_ip: bool,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
}

impl TokenPolicy {
    /// Decodes the hex keys of `[tokens]` and builds the key set.
    ///
    /// # Errors
    /// A key that is not hex, or a set the auth library refuses.
    pub fn from_conf(conf: &TokensConfig) -> Result<Self, KeyError> {
        Ok(Self {
            keys: ArcSwap::from_pointee(key_set(conf)?),
            default_ttl: conf.default_ttl,
            max_ttl: conf.max_ttl,
            bind_ip: conf.bind_ip,
            ipv4_prefix: conf.ipv4_prefix,
            ipv6_prefix: conf.ipv6_prefix,
        })
    }

    /// The live keys, for verification (one atomic load; hold the guard briefly).
    pub fn keys(&self) -> Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// Replaces the key set with `conf`'s (key rotation without a restart). Tokens signed with
    /// a key still listed keep verifying; new tokens are signed with `conf.signing_key`.
    ///
    /// # Errors
    /// As [`TokenPolicy::from_conf`]; the current keys stay.
    pub fn rotate(&self, conf: &TokensConfig) -> Result<(), KeyError> {
        self.keys.store(Arc::new(key_set(conf)?));
        Ok(())
    }

    /// The longest lifetime a token may be minted with (`tokens.max-ttl`).
    pub fn max_ttl(&self) -> Duration {
        self.max_ttl
    }

    /// Whether grants to viewers should be bound to their IP prefix (`tokens.bind-ip`).
    pub fn bind_ip(&self) -> bool {
        self.bind_ip
    }

    /// The binding of `ip` to the configured prefix of its family.
    pub fn ip_binding(&self, ip: IpAddr) -> IpBinding {
        let ip = ip.to_canonical();
        let prefix = if ip.is_ipv4() {
            self.ipv4_prefix
        } else {
            self.ipv6_prefix
        };
        IpBinding::new(ip, prefix)
    }

    /// Mints a token for `content_id` and `subject` valid from `now` (Unix seconds) for `ttl`
    /// (default `tokens.default-ttl`), bound to `bind_to`'s network when given. `grant`: minted
    /// by a playback grant (the viewer is re-checked on playlists), not by an operator.
    ///
    /// # Errors
    /// A malformed content id, or a lifetime of zero or above `tokens.max-ttl`.
    pub fn mint(
        &self,
        content_id: &str,
        subject: &str,
        ttl: Option<Duration>,
        bind_to: Option<IpAddr>,
        now: u64,
        grant: bool,
    ) -> Result<Minted, MintError> {
        if !is_valid_content_id(content_id) {
            return Err(MintError::BadContentId(content_id.to_owned()));
        }
        let ttl = ttl.unwrap_or(self.default_ttl);
        if ttl.is_zero() {
            return Err(MintError::ZeroTtl);
        }
        if ttl > self.max_ttl {
            return Err(MintError::TtlTooLong {
                asked: humantime::format_duration(ttl).to_string(),
                max: humantime::format_duration(self.max_ttl).to_string(),
            });
        }
        // Round a sub-second remainder up so that a 1500ms token does not expire after 1s.
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let expires_at = now.saturating_add(secs);
        let token = self.keys.load().mint(&Grant {
            content_id,
            subject,
            expires_at,
            client_ip: bind_to.map(|ip| self.ip_binding(ip)),
            entitlement_bound: grant,
        });
        Ok(Minted { token, expires_at })
    }
}

#[cfg(test)]
mod tests {
    use streamgate_auth::TokenError;
    use streamgate_config::Secret;

    use super::*;

    fn conf() -> TokensConfig {
        TokensConfig {
            signing_key: "k2".into(),
            default_ttl: Duration::from_secs(3600),
            max_ttl: Duration::from_secs(7200),
            bind_ip: false,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            keys: vec![
                ("k1".into(), Secret::new("11".repeat(32))),
                ("k2".into(), Secret::new("22".repeat(32))),
            ],
        }
    }

    #[test]
    fn mints_with_default_ttl_and_verifies() {
        let p = TokenPolicy::from_conf(&conf()).unwrap();
        let m = p.mint("c1", "operator", None, None, 1000, false).unwrap();
        assert_eq!(m.expires_at, 4600);
        assert_eq!(p.keys().signing_key_id(), "k2");
        assert!(p.keys().verify(&m.token, "c1", None, 4599).is_ok());
        assert_eq!(
            p.keys().verify(&m.token, "c1", None, 4600),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn refuses_long_and_zero_ttls() {
        let p = TokenPolicy::from_conf(&conf()).unwrap();
        let err = p
            .mint("c1", "s", Some(Duration::from_secs(7201)), None, 0, false)
            .unwrap_err();
        assert!(
            err.to_string().contains("exceeds tokens.max-ttl (2h)"),
            "{err}"
        );
        assert_eq!(
            p.mint("c1", "s", Some(Duration::ZERO), None, 0, false),
            Err(MintError::ZeroTtl)
        );
        assert!(matches!(
            p.mint("../x", "s", None, None, 0, false),
            Err(MintError::BadContentId(_))
        ));
    }

    #[test]
    fn binds_to_configured_prefix() {
        let p = TokenPolicy::from_conf(&conf()).unwrap();
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        let m = p.mint("c1", "s", None, Some(ip), 0, false).unwrap();
        let same_net: IpAddr = "192.0.2.200".parse().unwrap();
        let other: IpAddr = "192.0.3.1".parse().unwrap();
        assert!(p.keys().verify(&m.token, "c1", Some(same_net), 1).is_ok());
        assert_eq!(
            p.keys().verify(&m.token, "c1", Some(other), 1),
            Err(TokenError::IpMismatch)
        );
    }

    #[test]
    fn rejects_non_hex_keys() {
        let mut c = conf();
        c.keys[1].1 = Secret::new("zz".repeat(32));
        assert!(matches!(
            TokenPolicy::from_conf(&c),
            Err(KeyError::NotHex { index: 1 })
        ));
    }
}
