//! Session-token verification: header screening, signature, claims, revocation, and a cache.
//!
//! # Order of checks
//! ```text
//! token ─ len ≤ 8 KiB ─ cache hit? ──yes── kid still live, iat/nbf/exp, revoked ─▶ claims
//!                              │no
//!                              ▼
//!        header decoded here: alg == EdDSA, typ JWT or absent, no crit, kid known
//!                              ▼
//!        jsonwebtoken: EdDSA signature under that kid's key
//!                              ▼
//!        claims: present, iss, aud, iat, nbf, exp (skew), revoked ─▶ cache ─▶ claims
//! ```
//! The `alg` is refused before any key is touched, so `none` and HMAC-with-the-public-key
//! tokens never reach a verifier (RFC 8725 §3.1).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use moka::{Expiry, sync::Cache};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{KeyMap, RevocationCheck, SessionClaims, SessionError, SessionKeyError, parse_jwks};

/// Longest session token accepted (screened before any parsing).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Longest any entry stays cached, whatever its `exp`.
const MAX_CACHE_TTL: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawClaims {
    iss: Option<String>,
    aud: Option<Audience>,
    sub: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
}

struct Cached {
    claims: SessionClaims,
    nbf: Option<i64>,
    kid: String,
    /// How long from insertion the token stays valid, by the caller's clock.
    ttl: Duration,
}

struct ByExp;

impl Expiry<[u8; 32], Arc<Cached>> for ByExp {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<Cached>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl.min(MAX_CACHE_TTL))
    }
}

/// Verifies session tokens against a set of public keys (from origin's JWKS). No I/O: on
/// [`SessionError::UnknownKid`] the caller refetches the JWKS (rate-limited) and calls
/// [`Self::update_jwks`].
pub struct SessionVerifier {
    /// Live keys by kid. Replaced whole by `update_jwks`; readers clone the `Arc` and release
    /// the lock at once, so a refresh never blocks verification for long.
    keys: RwLock<KeyMap>,
    issuer: String,
    audience: String,
    skew: i64,
    validation: Validation,
    /// Tokens already verified, by SHA-256 of the token text (the token itself is never
    /// stored as a key). Each entry lives at most until its `exp` (and one hour); hits still
    /// re-check the times with the caller's clock, the kid being live, and revocation.
    /// `None` when caching is disabled.
    cache: Option<Cache<[u8; 32], Arc<Cached>>>,
    revocation: Option<Arc<dyn RevocationCheck>>,
}

impl std::fmt::Debug for SessionVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionVerifier")
            .field("kids", &self.kids())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("skew", &self.skew)
            .finish_non_exhaustive()
    }
}

fn build_cache(capacity: u64) -> Option<Cache<[u8; 32], Arc<Cached>>> {
    (capacity > 0).then(|| {
        Cache::builder()
            .max_capacity(capacity)
            .expire_after(ByExp)
            .support_invalidation_closures()
            .build()
    })
}

impl SessionVerifier {
    /// A verifier of tokens for `aud` from `iss`, with the Ed25519 keys of a JWKS document.
    /// Defaults: 5 s skew, 100 000 cached tokens, no revocation hook.
    ///
    /// # Errors
    /// A malformed document or key, a duplicate kid, no usable key, or empty `iss`/`aud`.
    pub fn from_jwks(jwks: &Value, iss: &str, aud: &str) -> Result<Self, SessionKeyError> {
        if iss.is_empty() || aud.is_empty() {
            return Err(SessionKeyError::EmptyIssuerOrAudience);
        }
        let keys = parse_jwks(jwks)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        // jsonwebtoken checks the signature and alg only; the claims are checked below with
        // the caller's clock and precise errors.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        Ok(Self {
            keys: RwLock::new(keys),
            issuer: iss.to_owned(),
            audience: aud.to_owned(),
            skew: 5,
            validation,
            cache: build_cache(100_000),
            revocation: None,
        })
    }

    /// Sets the tolerated clock skew for `exp`, `iat` and `nbf`.
    pub fn with_skew(mut self, skew: Duration) -> Self {
        self.skew = i64::try_from(skew.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// Sets how many verified tokens are cached (0 disables the cache).
    pub fn with_cache_capacity(mut self, capacity: u64) -> Self {
        self.cache = build_cache(capacity);
        self
    }

    /// Installs the revocation hook.
    pub fn with_revocation(mut self, hook: Arc<dyn RevocationCheck>) -> Self {
        self.revocation = Some(hook);
        self
    }

    fn current_keys(&self) -> KeyMap {
        // A poisoned lock only means a writer panicked mid-swap of an `Arc`: the value is whole.
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Ids of the live keys, sorted.
    pub fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.current_keys().keys().cloned().collect();
        kids.sort();
        kids
    }

    /// Replaces the keys with those of a freshly fetched JWKS. Cached tokens signed by a key
    /// that is gone stop verifying at once.
    ///
    /// # Errors
    /// As [`Self::from_jwks`]; the old keys stay in place.
    pub fn update_jwks(&self, jwks: &Value) -> Result<(), SessionKeyError> {
        let new = parse_jwks(jwks)?;
        let mut guard = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let removed = guard.keys().any(|k| !new.contains_key(k));
        *guard = new;
        drop(guard);
        if removed {
            self.invalidate_all();
        }
        Ok(())
    }

    /// Drops cached verifications of the session `jti` (on an `sg:invalidate` message). Takes
    /// effect at once for lookups; moka removes the entries in its next maintenance pass.
    pub fn forget(&self, jti: &str) {
        let Some(cache) = &self.cache else { return };
        let jti = jti.to_owned();
        if cache
            .invalidate_entries_if(move |_, v| v.claims.jti == jti)
            .is_err()
        {
            // Only possible without `support_invalidation_closures`, which `build_cache` sets;
            // dropping everything is the safe fallback.
            cache.invalidate_all();
        }
    }

    /// Drops every cached verification.
    pub fn invalidate_all(&self) {
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
        }
    }

    /// Whether a verification of `token` is cached (tests and diagnostics).
    pub fn is_cached(&self, token: &str) -> bool {
        // `get`, not `contains_key`: only retrievals are guaranteed to apply pending
        // `invalidate_entries_if` predicates (moka docs).
        self.cache
            .as_ref()
            .is_some_and(|c| c.get(&token_hash(token)).is_some())
    }

    fn revoked(&self, jti: &str) -> bool {
        self.revocation.as_ref().is_some_and(|h| h.is_revoked(jti))
    }

    /// Verifies `token` at `now` (Unix seconds). No network I/O.
    ///
    /// # Errors
    /// The first failing check in the module's order, as a [`SessionError`].
    pub fn verify(&self, token: &str, now: i64) -> Result<SessionClaims, SessionError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(SessionError::Malformed);
        }
        let hash = token_hash(token);
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(&hash)) {
            if !self.current_keys().contains_key(&hit.kid) {
                return Err(SessionError::UnknownKid);
            }
            self.check_times(hit.claims.iat, hit.claims.exp, hit.nbf, now)?;
            if self.revoked(&hit.claims.jti) {
                return Err(SessionError::Revoked);
            }
            return Ok(hit.claims.clone());
        }
        let kid = screen_header(token)?;
        let keys = self.current_keys();
        let key = keys.get(&kid).ok_or(SessionError::UnknownKid)?;
        let data =
            jsonwebtoken::decode::<RawClaims>(token, key, &self.validation).map_err(|e| match e
                .kind()
            {
                ErrorKind::InvalidSignature => SessionError::BadSignature,
                ErrorKind::InvalidAlgorithm => SessionError::AlgNotAllowed,
                _ => SessionError::Malformed,
            })?;
        let nbf = data.claims.nbf;
        let claims = self.check_claims(data.claims, now)?;
        if self.revoked(&claims.jti) {
            return Err(SessionError::Revoked);
        }
        if let Some(cache) = &self.cache {
            let left = claims.exp.saturating_add(self.skew).saturating_sub(now);
            let ttl = Duration::from_secs(u64::try_from(left).unwrap_or(0));
            let entry = Cached {
                claims: claims.clone(),
                nbf,
                kid,
                ttl,
            };
            cache.insert(hash, Arc::new(entry));
        }
        Ok(claims)
    }

    fn check_times(
        &self,
        iat: i64,
        exp: i64,
        nbf: Option<i64>,
        now: i64,
    ) -> Result<(), SessionError> {
        if now >= exp.saturating_add(self.skew) {
            return Err(SessionError::Expired);
        }
        if iat > now.saturating_add(self.skew) {
            return Err(SessionError::IssuedInFuture);
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(self.skew)) {
            return Err(SessionError::NotYetValid);
        }
        Ok(())
    }

    fn check_claims(&self, c: RawClaims, now: i64) -> Result<SessionClaims, SessionError> {
        let nonempty = |v: Option<String>, name| {
            v.filter(|s| !s.is_empty())
                .ok_or(SessionError::MissingClaim(name))
        };
        let iss = nonempty(c.iss, "iss")?;
        let sub = nonempty(c.sub, "sub")?;
        let jti = nonempty(c.jti, "jti")?;
        let iat = c.iat.ok_or(SessionError::MissingClaim("iat"))?;
        let exp = c.exp.ok_or(SessionError::MissingClaim("exp"))?;
        let aud_ok = match c.aud.ok_or(SessionError::MissingClaim("aud"))? {
            Audience::One(a) => a == self.audience,
            Audience::Many(list) => list.contains(&self.audience),
        };
        if iss != self.issuer {
            return Err(SessionError::WrongIssuer);
        }
        if !aud_ok {
            return Err(SessionError::WrongAudience);
        }
        self.check_times(iat, exp, c.nbf, now)?;
        Ok(SessionClaims {
            iss,
            aud: self.audience.clone(),
            sub,
            iat,
            exp,
            jti,
        })
    }
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Decodes the protected header by hand and refuses anything but EdDSA before a key is chosen.
fn screen_header(token: &str) -> Result<String, SessionError> {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SessionError::Malformed);
    };
    let raw = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| SessionError::Malformed)?;
    let header: RawHeader = serde_json::from_slice(&raw).map_err(|_| SessionError::Malformed)?;
    if header.alg != "EdDSA" {
        return Err(SessionError::AlgNotAllowed);
    }
    if header.crit.is_some() || header.typ.is_some_and(|t| !t.eq_ignore_ascii_case("JWT")) {
        return Err(SessionError::UnsupportedHeader);
    }
    header.kid.ok_or(SessionError::MissingKid)
}
