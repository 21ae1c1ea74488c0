//! Session tokens: EdDSA (Ed25519) JWTs per RFC 7519 and the RFC 8725 best practices, signed by
//! origin with [`SessionKeys`] and verified anywhere, without I/O, by [`SessionVerifier`].
//!
//! # Format
//! Header `{"alg":"EdDSA","typ":"JWT","kid":…}`; claims `iss`, `aud`, `sub` (CAIP-10),
//! `iat`, `exp` (Unix seconds) and `jti` (128 random bits, base64url). Keys are published as a
//! JWKS of `OKP`/`Ed25519` keys (RFC 8037) at origin's `/.well-known/jwks.json`. Several keys
//! may be live: one signs, all verify, so keys rotate without logging anyone out
//! (docs/architecture.md, "Token model").

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

mod jwks;
mod verifier;

pub use jwks::{JwksError, JwksFuture, JwksSource, RemoteVerifier};
pub use verifier::{MAX_TOKEN_LEN, SessionVerifier};

/// Longest key id accepted.
const MAX_KID: usize = 64;

/// The claims of a session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// Issuer: origin's public URL.
    pub iss: String,
    /// Audience: the edge deployment the token is for.
    pub aud: String,
    /// Subject: the viewer's CAIP-10 account id.
    pub sub: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Token id (for revocation).
    pub jti: String,
}

/// Why a session token was refused. [`SessionError::code`] is the `error` of a 401 body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Not three base64url parts of JSON, too long, or claims of the wrong type.
    #[error("malformed token")]
    Malformed,
    /// `alg` is anything but `EdDSA` (`none` and HMAC included).
    #[error("token algorithm not allowed")]
    AlgNotAllowed,
    /// `typ` is present and not `JWT`, or the header carries `crit`.
    #[error("unsupported token header")]
    UnsupportedHeader,
    /// The header has no `kid`.
    #[error("token has no key id")]
    MissingKid,
    /// The `kid` is not among the known keys: refetch the JWKS (rate-limited) and retry once.
    #[error("unknown token key id")]
    UnknownKid,
    /// The signature does not verify.
    #[error("bad token signature")]
    BadSignature,
    /// A required claim is missing or empty (named).
    #[error("token lacks claim {0}")]
    MissingClaim(&'static str),
    /// `iss` is not the expected issuer.
    #[error("token from another issuer")]
    WrongIssuer,
    /// `aud` does not include the expected audience.
    #[error("token for another audience")]
    WrongAudience,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `iat` is in the future (beyond the skew).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `nbf` is present and in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// The revocation hook says the `jti` is revoked.
    #[error("token revoked")]
    Revoked,
}

impl SessionError {
    /// Stable snake_case code for JSON bodies and metric labels.
    pub fn code(self) -> &'static str {
        match self {
            SessionError::Malformed => "malformed_token",
            SessionError::AlgNotAllowed => "alg_not_allowed",
            SessionError::UnsupportedHeader => "unsupported_header",
            SessionError::MissingKid => "missing_kid",
            SessionError::UnknownKid => "unknown_kid",
            SessionError::BadSignature => "bad_signature",
            SessionError::MissingClaim(_) => "missing_claim",
            SessionError::WrongIssuer => "wrong_issuer",
            SessionError::WrongAudience => "wrong_audience",
            SessionError::Expired => "expired",
            SessionError::IssuedInFuture => "issued_in_future",
            SessionError::NotYetValid => "not_yet_valid",
            SessionError::Revoked => "revoked",
        }
    }

    /// True for [`SessionError::UnknownKid`]: the caller should refresh the JWKS (rate-limited)
    /// and verify once more.
    pub fn is_unknown_kid(self) -> bool {
        self == SessionError::UnknownKid
    }
}

/// Why session keys or a JWKS could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionKeyError {
    /// No keys at all.
    #[error("no session keys")]
    Empty,
    /// A key id is empty, longer than 64 or not `A-Z a-z 0-9 . _ -`.
    #[error("bad key id {0:?}")]
    BadKeyId(String),
    /// Two keys share an id.
    #[error("duplicate key id {0:?}")]
    DuplicateKeyId(String),
    /// A seed is not 32 bytes of hex (the key id is named, never the seed).
    #[error("seed of key {0:?} is not 32 bytes of hex")]
    BadSeed(String),
    /// The signing key id is not among the keys.
    #[error("signing key {0:?} is not in the key set")]
    NoSigningKey(String),
    /// The crypto backend refused a key (named by id).
    #[error("key {0:?} rejected by the jwt backend")]
    Backend(String),
    /// The JWKS document is not `{"keys":[…]}` or a key in it is malformed (reason given).
    #[error("bad jwks: {0}")]
    BadJwks(String),
    /// The issuer or audience is empty.
    #[error("issuer and audience must not be empty")]
    EmptyIssuerOrAudience,
}

/// A freshly signed session.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    /// The compact JWT (a bearer secret: never log it).
    pub token: String,
    /// What it says.
    pub claims: SessionClaims,
}

struct SigningEntry {
    kid: String,
    encoding: EncodingKey,
    public: [u8; 32],
}

/// Origin's session keys: several live Ed25519 keys, one of which signs.
pub struct SessionKeys {
    keys: Vec<SigningEntry>,
    signing: usize,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("SessionKeys")
            .field("kids", &ids)
            .field("signing", &self.keys[self.signing].kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// PKCS#8 v1 DER of an Ed25519 private key (RFC 8410): a fixed prefix then the 32-byte seed.
fn pkcs8_der(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = Vec::with_capacity(48);
    der.extend_from_slice(&PREFIX);
    der.extend_from_slice(seed);
    der
}

impl SessionKeys {
    /// Builds the key set from `(kid, 32-byte Ed25519 seed)` pairs; `signing_kid` signs.
    /// Tokens carry `iss = issuer` and `aud = audience`.
    ///
    /// # Errors
    /// No keys, a bad or duplicate key id, a missing signing key, an empty issuer or audience,
    /// or a key the JWT backend refuses.
    pub fn new(
        keys: Vec<(String, [u8; 32])>,
        signing_kid: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, SessionKeyError> {
        if keys.is_empty() {
            return Err(SessionKeyError::Empty);
        }
        if issuer.is_empty() || audience.is_empty() {
            return Err(SessionKeyError::EmptyIssuerOrAudience);
        }
        let mut out: Vec<SigningEntry> = Vec::with_capacity(keys.len());
        for (kid, seed) in keys {
            if !valid_kid(&kid) {
                return Err(SessionKeyError::BadKeyId(kid));
            }
            if out.iter().any(|k| k.kid == kid) {
                return Err(SessionKeyError::DuplicateKeyId(kid));
            }
            let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
            let encoding = EncodingKey::from_ed_der(&pkcs8_der(&seed));
            // Sign once now, so that `issue` cannot meet a key the backend refuses.
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &json!({}), &encoding)
                .map_err(|_| SessionKeyError::Backend(kid.clone()))?;
            out.push(SigningEntry {
                kid,
                encoding,
                public,
            });
        }
        let signing = out
            .iter()
            .position(|k| k.kid == signing_kid)
            .ok_or_else(|| SessionKeyError::NoSigningKey(signing_kid.to_owned()))?;
        Ok(Self {
            keys: out,
            signing,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// Like [`Self::new`], with each seed as 64 hex digits (the configuration form).
    ///
    /// # Errors
    /// As [`Self::new`], plus [`SessionKeyError::BadSeed`].
    pub fn from_hex(
        keys: &[(String, String)],
        signing_kid: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, SessionKeyError> {
        let mut seeds = Vec::with_capacity(keys.len());
        for (kid, hex_seed) in keys {
            let mut seed = [0u8; 32];
            hex::decode_to_slice(hex_seed.trim(), &mut seed)
                .map_err(|_| SessionKeyError::BadSeed(kid.clone()))?;
            seeds.push((kid.clone(), seed));
        }
        Self::new(seeds, signing_kid, issuer, audience)
    }

    /// Id of the signing key.
    pub fn signing_kid(&self) -> &str {
        &self.keys[self.signing].kid
    }

    /// Signs a session for `sub`, valid from `now` (Unix seconds) for `ttl`. `sub` is an
    /// account id from a verified sign-in: verifiers refuse a token with an empty `sub`, and
    /// one longer than [`MAX_TOKEN_LEN`] (a subject of several KiB), as they refuse forgeries.
    pub fn issue(&self, sub: &str, ttl: Duration, now: i64) -> IssuedSession {
        let key = &self.keys[self.signing];
        let jti: [u8; 16] = rand::random();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = SessionClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: sub.to_owned(),
            iat: now,
            exp: now.saturating_add(ttl),
            jti: URL_SAFE_NO_PAD.encode(jti),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(key.kid.clone());
        // The key signed a test token in `new`, and the claims are strings and integers, whose
        // JSON serialization cannot fail: encode has no failure left to report.
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .expect("validated key and plain claims always encode");
        IssuedSession { token, claims }
    }

    /// The public keys as a JWKS document (RFC 7517, OKP keys per RFC 8037).
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|k| {
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(k.public),
                    "kid": k.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        json!({ "keys": keys })
    }

    /// A verifier of this key set's tokens (origin verifying its own sessions).
    pub fn verifier(&self) -> SessionVerifier {
        // `jwks()` produces exactly the document `from_jwks` accepts, from keys `new` validated.
        SessionVerifier::from_jwks(&self.jwks(), &self.issuer, &self.audience)
            .expect("own jwks is valid")
    }
}

/// Asks whether a session was revoked. Runs on every [`SessionVerifier::verify`], cached or not,
/// after the signature and claims passed; `true` refuses the token with
/// [`SessionError::Revoked`]. It must not block (the edge backs it with an in-memory set fed by
/// `sg:invalidate`). Without a hook nothing is revoked.
pub trait RevocationCheck: Send + Sync {
    /// Whether the session with this `jti` is revoked.
    fn is_revoked(&self, jti: &str) -> bool;
}

impl<F: Fn(&str) -> bool + Send + Sync> RevocationCheck for F {
    fn is_revoked(&self, jti: &str) -> bool {
        self(jti)
    }
}

/// Live verification keys by kid.
type KeyMap = Arc<HashMap<String, DecodingKey>>;

/// The usable Ed25519 keys of a JWKS document: keys of other types or uses are skipped, a
/// malformed, weak or duplicate Ed25519 key fails the whole document.
pub(crate) fn parse_jwks(jwks: &Value) -> Result<KeyMap, SessionKeyError> {
    let bad = |why: &str| SessionKeyError::BadJwks(why.to_owned());
    let list = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no keys array"))?;
    let mut out = HashMap::new();
    for k in list {
        let field = |name: &str| k.get(name).and_then(Value::as_str);
        // Keys of other types or uses may share the document; they are not ours to use.
        if field("kty") != Some("OKP")
            || field("crv") != Some("Ed25519")
            || field("alg").is_some_and(|a| a != "EdDSA")
            || field("use").is_some_and(|u| u != "sig")
        {
            continue;
        }
        let kid = field("kid")
            .filter(|k| valid_kid(k))
            .ok_or_else(|| bad("bad kid"))?;
        let x = field("x").ok_or_else(|| bad("key without x"))?;
        let bytes: [u8; 32] = URL_SAFE_NO_PAD
            .decode(x)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("x is not 32 bytes of base64url"))?;
        match VerifyingKey::from_bytes(&bytes) {
            Ok(vk) if !vk.is_weak() => {}
            _ => return Err(bad("x is not a usable ed25519 key")),
        }
        if out
            .insert(kid.to_owned(), DecodingKey::from_ed_der(&bytes))
            .is_some()
        {
            return Err(SessionKeyError::DuplicateKeyId(kid.to_owned()));
        }
    }
    if out.is_empty() {
        return Err(SessionKeyError::Empty);
    }
    Ok(Arc::new(out))
}
