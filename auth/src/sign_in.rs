//! What SIWE and SIWS share: the rules a sign-in message is checked against, the typed outcome,
//! the error enums, and the field grammar both formats use after the statement.
//!
//! # Time checks
//! With `skew` = [`SignInRules::max_skew`] and `age` = [`SignInRules::max_age`], a message is
//! accepted at `now` (Unix seconds, server clock) when
//! `issued_at <= now + skew`, `issued_at >= now - age - skew`, `not_before <= now + skew` and
//! `now < expiration_time`. Skew is forgiven only where the client's clock could be ahead of
//! ours; expiry is never extended. Fractional seconds are truncated.

use std::time::Duration;

use crate::siws::SolanaCluster;

mod grammar;

use grammar::uri_origin;
pub use grammar::{MAX_MESSAGE_LEN, MessageError};
pub(crate) use grammar::{is_pchars, parse_fields, precheck, split_origin};

/// Why a sign-in was refused. [`SignInError::code`] is the `error` of origin's JSON body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    /// The message text does not parse.
    #[error("malformed message: {0}")]
    Malformed(#[from] MessageError),
    /// The message is for another domain.
    #[error("message is for another domain")]
    WrongDomain,
    /// The message names a scheme other than https for a non-local domain.
    #[error("message scheme not allowed")]
    WrongScheme,
    /// The message's `URI` origin is not allowed.
    #[error("message uri not allowed")]
    WrongUri,
    /// The message's chain (EVM chain id or Solana cluster) is not allowed.
    #[error("chain not allowed")]
    WrongChain,
    /// `Issued At` is later than now (beyond the skew).
    #[error("message issued in the future")]
    IssuedInFuture,
    /// `Issued At` is older than the maximum age.
    #[error("message too old")]
    StaleMessage,
    /// `Expiration Time` has passed.
    #[error("message expired")]
    ExpiredMessage,
    /// `Not Before` is still in the future.
    #[error("message not yet valid")]
    NotYetValid,
    /// The signature does not decode, is malleable (high s), or does not verify.
    #[error("bad signature")]
    BadSignature,
    /// SIWE: a valid secp256k1 signature, but by another address than the message's. The
    /// account may still be a contract wallet: see [`crate::siwe::prepare_contract_check`].
    #[error("signer does not match the message address")]
    SignerMismatch {
        /// The address the signature recovers to.
        recovered: [u8; 20],
    },
    /// SIWS: the public key sent with the message is not the message's address.
    #[error("public key does not match the message address")]
    PublicKeyMismatch,
    /// SIWS: the public key is not a usable Ed25519 key (not a point, or of small order).
    #[error("bad public key")]
    BadPublicKey,
}

impl SignInError {
    /// Stable snake_case code for JSON bodies and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            SignInError::Malformed(_) => "malformed_message",
            SignInError::WrongDomain => "wrong_domain",
            SignInError::WrongScheme => "wrong_scheme",
            SignInError::WrongUri => "wrong_uri",
            SignInError::WrongChain => "wrong_chain",
            SignInError::IssuedInFuture => "issued_in_future",
            SignInError::StaleMessage => "stale_message",
            SignInError::ExpiredMessage => "expired_message",
            SignInError::NotYetValid => "not_yet_valid",
            SignInError::BadSignature => "bad_signature",
            SignInError::SignerMismatch { .. } => "signer_mismatch",
            SignInError::PublicKeyMismatch => "public_key_mismatch",
            SignInError::BadPublicKey => "bad_public_key",
        }
    }

    /// True when every field check passed and only the EOA signature check failed: a SIWE
    /// caller may then try EIP-1271 (see [`crate::siwe::prepare_contract_check`]).
    pub fn may_be_contract_wallet(&self) -> bool {
        matches!(
            self,
            SignInError::SignerMismatch { .. } | SignInError::BadSignature
        )
    }
}

/// Why [`SignInRules`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInRulesError {
    /// The domain is empty: domain binding is never skipped.
    #[error("sign-in domain is empty")]
    EmptyDomain,
    /// No allowed URI origin.
    #[error("no allowed uri origin")]
    NoUriOrigins,
    /// An allowed origin is not `scheme://host[:port]`.
    #[error("bad allowed uri origin {0:?}")]
    BadOrigin(String),
    /// A Solana cluster name or reference is not CAIP-2 syntax.
    #[error("bad solana cluster {0:?}")]
    BadCluster(String),
}

/// What a sign-in message must satisfy, besides its signature. Built once from configuration.
#[derive(Debug, Clone)]
pub struct SignInRules {
    domain: String,
    origins: Vec<String>,
    chain_ids: Vec<u64>,
    clusters: Vec<SolanaCluster>,
    max_skew: Duration,
    max_age: Duration,
}

impl SignInRules {
    /// Rules for `domain` (the site's RFC 3986 authority, e.g. `app.example.com` or
    /// `localhost:3000`) accepting `URI`s whose origin is one of `allowed_uri_origins`
    /// (`scheme://host[:port]`). No chain is allowed until [`Self::with_chain_ids`] or
    /// [`Self::with_solana_clusters`]; skew defaults to 30 s and maximum age to 10 min.
    ///
    /// # Errors
    /// An empty domain, no origins, or an origin that is not `scheme://host[:port]`.
    pub fn new(
        domain: impl Into<String>,
        allowed_uri_origins: Vec<String>,
    ) -> Result<Self, SignInRulesError> {
        let domain = domain.into();
        if domain.trim().is_empty() {
            return Err(SignInRulesError::EmptyDomain);
        }
        if allowed_uri_origins.is_empty() {
            return Err(SignInRulesError::NoUriOrigins);
        }
        let mut origins = Vec::with_capacity(allowed_uri_origins.len());
        for o in allowed_uri_origins {
            let trimmed = o.strip_suffix('/').unwrap_or(&o);
            let bare = trimmed
                .split_once("://")
                .is_some_and(|(_, a)| !a.contains(['/', '?', '#']));
            match uri_origin(trimmed) {
                Some(n) if bare => origins.push(n),
                _ => return Err(SignInRulesError::BadOrigin(o)),
            }
        }
        Ok(Self {
            domain,
            origins,
            chain_ids: Vec::new(),
            clusters: Vec::new(),
            max_skew: Duration::from_secs(30),
            max_age: Duration::from_secs(600),
        })
    }

    /// Allows these EIP-155 chain ids (SIWE).
    pub fn with_chain_ids(mut self, chain_ids: Vec<u64>) -> Self {
        self.chain_ids = chain_ids;
        self
    }

    /// Allows these Solana clusters (SIWS).
    pub fn with_solana_clusters(mut self, clusters: Vec<SolanaCluster>) -> Self {
        self.clusters = clusters;
        self
    }

    /// Sets the tolerated clock skew between wallet and server.
    pub fn with_max_skew(mut self, skew: Duration) -> Self {
        self.max_skew = skew;
        self
    }

    /// Sets the maximum age of `Issued At`.
    pub fn with_max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// The domain messages must name.
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// Allowed EIP-155 chain ids.
    pub fn chain_ids(&self) -> &[u64] {
        &self.chain_ids
    }
    /// Allowed Solana clusters.
    pub fn solana_clusters(&self) -> &[SolanaCluster] {
        &self.clusters
    }
    /// Tolerated clock skew.
    pub fn max_skew(&self) -> Duration {
        self.max_skew
    }
    /// Maximum age of `Issued At`.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    pub(crate) fn check_domain(
        &self,
        scheme: Option<&str>,
        domain: &str,
    ) -> Result<(), SignInError> {
        if !domain.eq_ignore_ascii_case(&self.domain) {
            return Err(SignInError::WrongDomain);
        }
        match scheme {
            None => Ok(()),
            Some(s) if s.eq_ignore_ascii_case("https") => Ok(()),
            Some(s) if s.eq_ignore_ascii_case("http") && is_local(domain) => Ok(()),
            Some(_) => Err(SignInError::WrongScheme),
        }
    }

    pub(crate) fn check_uri(&self, uri: &str) -> Result<(), SignInError> {
        match uri_origin(uri) {
            Some(o) if self.origins.contains(&o) => Ok(()),
            _ => Err(SignInError::WrongUri),
        }
    }

    pub(crate) fn check_times(&self, t: &Times, now: i64) -> Result<(), SignInError> {
        let skew = secs(self.max_skew);
        if t.issued_at > now.saturating_add(skew) {
            return Err(SignInError::IssuedInFuture);
        }
        if t.issued_at < now.saturating_sub(secs(self.max_age)).saturating_sub(skew) {
            return Err(SignInError::StaleMessage);
        }
        if matches!(t.expiration_time, Some(exp) if now >= exp) {
            return Err(SignInError::ExpiredMessage);
        }
        if matches!(t.not_before, Some(nbf) if nbf > now.saturating_add(skew)) {
            return Err(SignInError::NotYetValid);
        }
        Ok(())
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn is_local(domain: &str) -> bool {
    let host = match domain.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => domain,
    };
    host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "[::1]"
}

/// A successful sign-in: who, on which chain, and what the caller still has to check.
///
/// Nonce freshness is not checked here: origin consumes [`VerifiedSignIn::nonce`] atomically
/// (Redis `GETDEL`) and refuses the sign-in if it was not outstanding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignIn {
    /// CAIP-10 account id: `eip155:{chain id}:{EIP-55 address}` or
    /// `solana:{genesis-hash prefix}:{base58 public key}`. The session token's `sub`.
    pub subject: String,
    /// The account address as in the message (EIP-55 or base58).
    pub address: String,
    /// CAIP-2 chain id: `eip155:{chain id}` or `solana:{genesis-hash prefix}`.
    pub chain: String,
    /// The message's nonce, for origin's single-use check.
    pub nonce: String,
    /// `Issued At`, Unix seconds.
    pub issued_at: i64,
    /// `Expiration Time`, Unix seconds, if the message has one (cap the session at it).
    pub expires_at: Option<i64>,
    /// `Request ID`, if any.
    pub request_id: Option<String>,
    /// `Resources`, in message order.
    pub resources: Vec<String>,
}

/// The timestamps of a message, Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// `Issued At`.
    pub issued_at: i64,
    /// `Expiration Time`.
    pub expiration_time: Option<i64>,
    /// `Not Before`.
    pub not_before: Option<i64>,
}

/// The fields after the statement, common to SIWE and SIWS, in their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fields {
    pub(crate) uri: String,
    pub(crate) chain_id: String,
    pub(crate) nonce: String,
    pub(crate) times: Times,
    pub(crate) request_id: Option<String>,
    pub(crate) resources: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_need_a_domain_and_origins() {
        assert_eq!(
            SignInRules::new("", vec!["https://a".into()]).unwrap_err(),
            SignInRulesError::EmptyDomain
        );
        assert_eq!(
            SignInRules::new("a", vec![]).unwrap_err(),
            SignInRulesError::NoUriOrigins
        );
        assert!(matches!(
            SignInRules::new("a", vec!["https://a/x".into()]),
            Err(SignInRulesError::BadOrigin(_))
        ));
        assert!(SignInRules::new("a", vec!["https://a/".into()]).is_ok());
    }

    #[test]
    fn local_http_only() {
        let r = SignInRules::new("localhost:3000", vec!["http://localhost:3000".into()]).unwrap();
        assert!(r.check_domain(Some("http"), "localhost:3000").is_ok());
        let r = SignInRules::new("a.example", vec!["https://a.example".into()]).unwrap();
        assert_eq!(
            r.check_domain(Some("http"), "a.example"),
            Err(SignInError::WrongScheme)
        );
        assert_eq!(
            r.check_domain(None, "b.example"),
            Err(SignInError::WrongDomain)
        );
    }
}
