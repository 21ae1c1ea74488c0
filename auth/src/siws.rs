//! Sign-In With Solana: the message wallets build for the wallet-standard `solana:signIn`
//! feature (`createSignInMessageText` in `@solana/wallet-standard-util` 1.1.4), checked like
//! SIWE and verified with Ed25519 (`verify_strict`, weak keys refused).
//!
//! # Format (`\n` line ends only, no trailing newline)
//! ```text
//! domain " wants you to sign in with your Solana account:"   ; no scheme in this format
//! address                        ; base58 of the 32-byte Ed25519 public key, canonical
//!                                ; blank line
//! [statement                     ; optional, one non-empty line without control characters
//!  blank line]                   ; (unlike SIWE, no extra blank line when it is absent)
//! URI: uri
//! Version: 1
//! Chain ID: chain                ; a configured cluster: `mainnet`, `solana:devnet`, or its
//!                                ; genesis-hash reference
//! Nonce: nonce                   ; 8..=128 ASCII letters and digits
//! Issued At: date-time           ; RFC 3339
//! [Expiration Time: date-time]
//! [Not Before: date-time]
//! [Request ID: text]
//! [Resources:
//! - uri …]
//! ```
//! The wallet standard makes every field after the address optional; StreamGate requires
//! `URI` through `Issued At`, as for SIWE, so that domain, chain and time binding always apply.

use ed25519_dalek::{Signature, VerifyingKey};

use crate::sign_in::{
    Fields, MessageError, SignInError, SignInRules, SignInRulesError, Times, VerifiedSignIn,
    parse_fields, precheck, split_origin,
};

/// The parse error of SIWS messages (shared with SIWE).
pub type SiwsError = MessageError;

const HEADER_TAIL: &str = " wants you to sign in with your Solana account:";
const MAX_B58_KEY: usize = 44;
const MAX_B58_SIG: usize = 88;

/// A Solana cluster a sign-in may name, with its CAIP-2 reference (the first 32 characters of
/// its genesis hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolanaCluster {
    name: String,
    reference: String,
}

impl SolanaCluster {
    /// Mainnet-beta.
    pub fn mainnet() -> Self {
        Self::known("mainnet", "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp")
    }
    /// Devnet.
    pub fn devnet() -> Self {
        Self::known("devnet", "EtWTRABZaYq6iMfeYKouRu166VU2xqa1")
    }
    /// Testnet.
    pub fn testnet() -> Self {
        Self::known("testnet", "4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z")
    }

    fn known(name: &str, reference: &str) -> Self {
        Self {
            name: name.to_owned(),
            reference: reference.to_owned(),
        }
    }

    /// A cluster called `name` in messages (e.g. `localnet`) whose genesis hash starts with
    /// `reference` (CAIP-2: 1–32 of `A-Z a-z 0-9 - _`; longer genesis hashes are cut to 32).
    ///
    /// # Errors
    /// A name or reference outside that syntax.
    pub fn new(name: &str, reference: &str) -> Result<Self, SignInRulesError> {
        let reference = reference.get(..32).unwrap_or(reference);
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 32
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        };
        if !ok(name) || !ok(reference) {
            return Err(SignInRulesError::BadCluster(format!("{name}:{reference}")));
        }
        Ok(Self::known(name, reference))
    }

    /// The name messages use (`mainnet`, `devnet`, …).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The CAIP-2 reference.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// Whether a message's `Chain ID` names this cluster: the name or the reference, bare or
    /// with the `solana:` namespace.
    pub fn matches(&self, chain_id: &str) -> bool {
        let bare = chain_id.strip_prefix("solana:").unwrap_or(chain_id);
        bare == self.name || bare == self.reference
    }
}

/// A parsed, well-formed SIWS message. Nothing in it is verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiwsMessage {
    /// RFC 3986 authority requesting the sign-in.
    pub domain: String,
    /// The account, base58 as in the message.
    pub address: String,
    /// The account's Ed25519 public key.
    pub public_key: [u8; 32],
    /// The statement line, if any.
    pub statement: Option<String>,
    /// `URI`.
    pub uri: String,
    /// `Chain ID`, as written.
    pub chain_id: String,
    /// `Nonce`.
    pub nonce: String,
    /// `Issued At`, `Expiration Time` and `Not Before`, Unix seconds.
    pub times: Times,
    /// `Request ID`.
    pub request_id: Option<String>,
    /// `Resources`.
    pub resources: Vec<String>,
}

impl SiwsMessage {
    /// Parses `text` strictly by the format in the module docs.
    ///
    /// # Errors
    /// The first deviation, as a [`SiwsError`].
    pub fn parse(text: &str) -> Result<Self, SiwsError> {
        precheck(text)?;
        let lines: Vec<&str> = text.split('\n').collect();
        let origin = lines
            .first()
            .and_then(|l| l.strip_suffix(HEADER_TAIL))
            .ok_or(MessageError::BadHeader)?;
        let domain = match split_origin(origin)? {
            (None, d) => d,
            (Some(_), _) => return Err(MessageError::BadDomain),
        };
        let address = *lines.get(1).ok_or(MessageError::BadAddress)?;
        let public_key = decode_b58::<32>(address, MAX_B58_KEY).ok_or(MessageError::BadAddress)?;
        match lines.get(2) {
            Some(&"") => {}
            None => return Err(MessageError::MissingField("URI")),
            Some(_) => return Err(MessageError::BadLayout),
        }
        let (statement, start) = match (lines.get(3), lines.get(4)) {
            (Some(&""), Some(&"")) => return Err(MessageError::BadStatement),
            (Some(s), Some(&"")) => (Some((*s).to_owned()), 5),
            _ => (None, 3),
        };
        let rest = lines.get(start..).unwrap_or_default();
        let f: Fields = parse_fields(rest, start, is_chain_id, |r| !r.is_empty())?;
        Ok(Self {
            domain: domain.to_owned(),
            address: address.to_owned(),
            public_key,
            statement,
            uri: f.uri,
            chain_id: f.chain_id,
            nonce: f.nonce,
            times: f.times,
            request_id: f.request_id,
            resources: f.resources,
        })
    }

    /// Checks the message against `rules` at `now_unix`: domain, URI origin, cluster, then
    /// issued-at, expiration-time and not-before.
    ///
    /// # Errors
    /// The first failing check, as a [`SignInError`].
    pub fn verify_fields(&self, rules: &SignInRules, now_unix: i64) -> Result<(), SignInError> {
        self.check(rules, now_unix).map(|_| ())
    }

    fn check<'r>(
        &self,
        rules: &'r SignInRules,
        now_unix: i64,
    ) -> Result<&'r SolanaCluster, SignInError> {
        rules.check_domain(None, &self.domain)?;
        rules.check_uri(&self.uri)?;
        let cluster = rules
            .solana_clusters()
            .iter()
            .find(|c| c.matches(&self.chain_id))
            .ok_or(SignInError::WrongChain)?;
        rules.check_times(&self.times, now_unix)?;
        Ok(cluster)
    }
}

fn is_chain_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b':' | b'-' | b'_'))
}

/// Decodes canonical base58 of exactly `N` bytes (re-encoding gives back `s`).
fn decode_b58<const N: usize>(s: &str, max_len: usize) -> Option<[u8; N]> {
    if s.is_empty() || s.len() > max_len {
        return None;
    }
    let bytes: [u8; N] = bs58::decode(s).into_vec().ok()?.try_into().ok()?;
    (bs58::encode(bytes).into_string() == s).then_some(bytes)
}

/// Verifies an Ed25519 signature of `message` by `public_key` the strict way: the key must be
/// a valid point not of small order, and the signature must pass `verify_strict` (canonical
/// `s`, no small-order `R`).
///
/// # Errors
/// [`SignInError::BadPublicKey`] or [`SignInError::BadSignature`].
pub fn verify_ed25519(
    message: &[u8],
    signature: &[u8; 64],
    public_key: &[u8; 32],
) -> Result<(), SignInError> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| SignInError::BadPublicKey)?;
    if key.is_weak() {
        return Err(SignInError::BadPublicKey);
    }
    let sig = Signature::from_bytes(signature);
    key.verify_strict(message, &sig)
        .map_err(|_| SignInError::BadSignature)
}

/// Verifies a SIWS sign-in: parses `text`, checks that `public_key_b58` is the message's
/// address, checks the fields against `rules` at `now_unix`, and verifies `signature_b58`
/// (base58 of 64 bytes) over the exact UTF-8 bytes of `text`.
///
/// # Errors
/// The first failure, as a [`SignInError`].
pub fn verify_siws(
    text: &str,
    signature_b58: &str,
    public_key_b58: &str,
    rules: &SignInRules,
    now_unix: i64,
) -> Result<VerifiedSignIn, SignInError> {
    let msg = SiwsMessage::parse(text)?;
    if public_key_b58 != msg.address {
        return Err(SignInError::PublicKeyMismatch);
    }
    let cluster = msg.check(rules, now_unix)?;
    let sig = decode_b58::<64>(signature_b58, MAX_B58_SIG).ok_or(SignInError::BadSignature)?;
    verify_ed25519(text.as_bytes(), &sig, &msg.public_key)?;
    let chain = format!("solana:{}", cluster.reference());
    Ok(VerifiedSignIn {
        subject: format!("{chain}:{}", msg.address),
        address: msg.address,
        chain,
        nonce: msg.nonce,
        issued_at: msg.times.issued_at,
        expires_at: msg.times.expiration_time,
        request_id: msg.request_id,
        resources: msg.resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "a.example wants you to sign in with your Solana account:\n4kj3eymviXrfu7JRSpDLkDktiqBntkJcvktvXHJVzTUP\n\nHi there\n\nURI: https://a.example\nVersion: 1\nChain ID: mainnet\nNonce: abcdefgh1\nIssued At: 2026-01-01T00:00:00Z";

    #[test]
    fn parses_and_every_prefix_fails() {
        let m = SiwsMessage::parse(GOOD).unwrap();
        assert_eq!(m.statement.as_deref(), Some("Hi there"));
        for cut in 0..GOOD.len() {
            assert!(
                SiwsMessage::parse(&GOOD[..cut]).is_err(),
                "prefix {cut} parsed"
            );
        }
    }

    #[test]
    fn base58_must_be_canonical_and_sized() {
        assert!(decode_b58::<32>("4kj3eymviXrfu7JRSpDLkDktiqBntkJcvktvXHJVzTUP", 44).is_some());
        assert!(decode_b58::<32>("1114kj3eymviXrfu7JRSpDLkDktiqBntkJcvktvXHJVzTUP", 64).is_none());
        assert!(decode_b58::<32>("0OIl", 44).is_none());
        assert!(decode_b58::<32>("", 44).is_none());
    }

    #[test]
    fn clusters_match_names_and_references() {
        let m = SolanaCluster::mainnet();
        assert!(m.matches("mainnet") && m.matches("solana:mainnet"));
        assert!(m.matches("5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"));
        assert!(!m.matches("devnet"));
        assert!(SolanaCluster::new("localnet", "").is_err());
        assert!(SolanaCluster::new("local net", "abc").is_err());
    }
}
