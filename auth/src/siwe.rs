//! Sign-In with Ethereum (EIP-4361): strict parsing, field checks, EIP-191 signer recovery.
//!
//! # Format (EIP-4361 ABNF; `\n` line ends only, no trailing newline)
//! ```text
//! [scheme "://"] domain " wants you to sign in with your Ethereum account:"
//! address                      ; 0x + 40 hex, EIP-55 checksummed (the only casing accepted)
//!                              ; blank line
//! [statement]                  ; optional, one non-empty line of RFC 3986 reserved /
//!                              ; unreserved / space; present or not, a blank line follows
//!                              ; (so with no statement there are two blank lines)
//! URI: uri
//! Version: 1
//! Chain ID: chain-id           ; decimal, no leading zero
//! Nonce: nonce                 ; 8..=128 ASCII letters and digits
//! Issued At: date-time         ; RFC 3339
//! [Expiration Time: date-time]
//! [Not Before: date-time]
//! [Request ID: *pchar]
//! [Resources:
//! - uri …]
//! ```
//! Anything else (unknown or reordered lines, CR, trailing text) is [`MessageError`].
//!
//! # Contract wallets (EIP-1271 hook)
//! [`verify_siwe`] checks EOA signatures only. When it fails with an error for which
//! [`SignInError::may_be_contract_wallet`] is true, origin may call [`prepare_contract_check`],
//! ask the chain `isValidSignature(hash, signature)` on [`ContractCheck::address`] (with
//! alloy, on the RPC of [`ContractCheck::chain_id`]; EIP-6492-wrapped signatures are the
//! caller's to unwrap) and, only if it returns the magic value `0x1626ba7e`, call
//! [`ContractCheck::accept`]. [`eip191_hash`] is the `hash` that call needs.

use k256::ecdsa::Signature;
use secp256k1::{
    Message, Secp256k1, VerifyOnly,
    ecdsa::{RecoverableSignature, RecoveryId},
};
use sha3::{Digest, Keccak256};

use crate::sign_in::{
    Fields, MessageError, SignInError, SignInRules, Times, VerifiedSignIn, is_pchars, parse_fields,
    precheck, split_origin,
};

/// The parse error of SIWE messages (shared with SIWS).
pub type SiweError = MessageError;

const HEADER_TAIL: &str = " wants you to sign in with your Ethereum account:";
/// Longest signature accepted for a contract-wallet check (bytes, after hex decoding).
const MAX_CONTRACT_SIG: usize = 4096;

/// A parsed, well-formed SIWE message. Nothing in it is verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiweMessage {
    /// The scheme before the domain, if the message has one.
    pub scheme: Option<String>,
    /// RFC 3986 authority requesting the sign-in.
    pub domain: String,
    /// The account, EIP-55 checksummed as in the message.
    pub address: String,
    /// The account's 20 bytes.
    pub address_bytes: [u8; 20],
    /// The statement line, if any.
    pub statement: Option<String>,
    /// `URI`.
    pub uri: String,
    /// `Chain ID` (EIP-155).
    pub chain_id: u64,
    /// `Nonce`.
    pub nonce: String,
    /// `Issued At`, `Expiration Time` and `Not Before`, Unix seconds.
    pub times: Times,
    /// `Request ID`.
    pub request_id: Option<String>,
    /// `Resources`.
    pub resources: Vec<String>,
}

impl SiweMessage {
    /// Parses `text` strictly by the EIP-4361 grammar (see the module docs).
    ///
    /// # Errors
    /// The first deviation from the grammar, as a [`SiweError`].
    pub fn parse(text: &str) -> Result<Self, SiweError> {
        precheck(text)?;
        let lines: Vec<&str> = text.split('\n').collect();
        let origin = lines
            .first()
            .and_then(|l| l.strip_suffix(HEADER_TAIL))
            .ok_or(MessageError::BadHeader)?;
        let (scheme, domain) = split_origin(origin)?;
        let address = *lines.get(1).ok_or(MessageError::BadAddress)?;
        let address_bytes = parse_eip55(address)?;
        if lines.get(2) != Some(&"") {
            return Err(MessageError::BadLayout);
        }
        let (statement, start) = match lines.get(3) {
            None => return Err(MessageError::MissingField("URI")),
            Some(&"") => (None, 4),
            Some(s) => {
                if lines.get(4) != Some(&"") {
                    return Err(MessageError::BadLayout);
                }
                if !is_statement(s) {
                    return Err(MessageError::BadStatement);
                }
                (Some((*s).to_owned()), 5)
            }
        };
        let rest = lines.get(start..).unwrap_or_default();
        let f: Fields = parse_fields(rest, start, is_chain_id, is_pchars)?;
        let chain_id = f.chain_id.parse().map_err(|_| MessageError::BadChainId)?;
        Ok(Self {
            scheme: scheme.map(str::to_owned),
            domain: domain.to_owned(),
            address: address.to_owned(),
            address_bytes,
            statement,
            uri: f.uri,
            chain_id,
            nonce: f.nonce,
            times: f.times,
            request_id: f.request_id,
            resources: f.resources,
        })
    }

    /// Checks the message against `rules` at `now_unix`: domain (and scheme), URI origin,
    /// chain id, then issued-at, expiration-time and not-before.
    ///
    /// # Errors
    /// The first failing check, as a [`SignInError`].
    pub fn verify_fields(&self, rules: &SignInRules, now_unix: i64) -> Result<(), SignInError> {
        rules.check_domain(self.scheme.as_deref(), &self.domain)?;
        rules.check_uri(&self.uri)?;
        if !rules.chain_ids().contains(&self.chain_id) {
            return Err(SignInError::WrongChain);
        }
        rules.check_times(&self.times, now_unix)
    }

    /// CAIP-10 account id: `eip155:{chain id}:{EIP-55 address}`.
    pub fn subject(&self) -> String {
        format!("eip155:{}:{}", self.chain_id, self.address)
    }

    fn verified(&self) -> VerifiedSignIn {
        VerifiedSignIn {
            subject: self.subject(),
            address: self.address.clone(),
            chain: format!("eip155:{}", self.chain_id),
            nonce: self.nonce.clone(),
            issued_at: self.times.issued_at,
            expires_at: self.times.expiration_time,
            request_id: self.request_id.clone(),
            resources: self.resources.clone(),
        }
    }
}

fn is_statement(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b" -._~:/?#[]@!$&'()*+,;=".contains(&c))
}

fn is_chain_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && !s.starts_with('0') && s.bytes().all(|c| c.is_ascii_digit())
}

fn keccak(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Keccak256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The EIP-55 checksummed text (`0x…`) of a 20-byte address.
pub fn to_eip55(address: &[u8; 20]) -> String {
    let lower = hex::encode(address);
    let hash = keccak(&[lower.as_bytes()]);
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        out.push(if nibble >= 8 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    out
}

fn parse_eip55(s: &str) -> Result<[u8; 20], MessageError> {
    let digits = s.strip_prefix("0x").ok_or(MessageError::BadAddress)?;
    let mut out = [0u8; 20];
    if digits.len() != 40 || hex::decode_to_slice(digits, &mut out).is_err() {
        return Err(MessageError::BadAddress);
    }
    if to_eip55(&out) != s {
        return Err(MessageError::BadChecksum);
    }
    Ok(out)
}

/// EIP-191 `personal_sign` digest: keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ message),
/// with `len` the decimal byte length. This is also the `hash` argument of EIP-1271
/// `isValidSignature(bytes32,bytes)` for contract wallets.
pub fn eip191_hash(message: &str) -> [u8; 32] {
    let len = message.len().to_string();
    keccak(&[
        b"\x19Ethereum Signed Message:\n",
        len.as_bytes(),
        message.as_bytes(),
    ])
}

/// Recovers the address that signed `message_text` with `personal_sign`.
///
/// `signature` is 65 bytes `r ‖ s ‖ v`, `v` in {27, 28} or {0, 1}; a high `s` (EIP-2) is refused,
/// so each signature has exactly one accepted encoding.
///
/// # Errors
/// [`SignInError::BadSignature`] for a wrong length, `v`, `r`/`s` out of range, high `s`, or
/// a signature from which no key can be recovered.
pub fn verify_eip191(message_text: &str, signature: &[u8]) -> Result<[u8; 20], SignInError> {
    let bad = |_| SignInError::BadSignature;
    let (rs, v) = match signature {
        [rs @ .., v] if rs.len() == 64 => (rs, *v),
        _ => return Err(SignInError::BadSignature),
    };
    let recid = match v {
        0 | 27 => RecoveryId::Zero,
        1 | 28 => RecoveryId::One,
        _ => return Err(SignInError::BadSignature),
    };
    // Range and malleability checks (k256, no curve arithmetic): r and s in [1, n), s low.
    let sig = Signature::from_slice(rs).map_err(bad)?;
    if sig.normalize_s().is_some() {
        // normalize_s returns Some only when s was in the upper half: a malleated signature.
        return Err(SignInError::BadSignature);
    }
    // The recovery itself with libsecp256k1: 5× faster than k256's here
    // (`cargo bench -p streamgate-auth --bench sign_in -- ecrecover`).
    let hash = eip191_hash(message_text);
    let rsig =
        RecoverableSignature::from_compact(rs, recid).map_err(|_| SignInError::BadSignature)?;
    let key = secp()
        .recover_ecdsa(Message::from_digest(hash), &rsig)
        .map_err(|_| SignInError::BadSignature)?;
    // Uncompressed SEC1: 0x04 ‖ x ‖ y; the address hashes x ‖ y.
    let point = key.serialize_uncompressed();
    let digest = keccak(&[&point[1..]]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&digest[12..]);
    Ok(out)
}

/// The process's verification context (libsecp256k1 needs no tables built at run time; one
/// context serves every thread).
fn secp() -> &'static Secp256k1<VerifyOnly> {
    static CONTEXT: std::sync::OnceLock<Secp256k1<VerifyOnly>> = std::sync::OnceLock::new();
    CONTEXT.get_or_init(Secp256k1::verification_only)
}

fn decode_hex(signature_hex: &str, max: usize) -> Result<Vec<u8>, SignInError> {
    let digits = signature_hex.strip_prefix("0x").unwrap_or(signature_hex);
    if digits.len() > 2 * max {
        return Err(SignInError::BadSignature);
    }
    hex::decode(digits).map_err(|_| SignInError::BadSignature)
}

/// Verifies a SIWE sign-in by an externally owned account: parses `text`, checks its fields
/// against `rules` at `now_unix`, recovers the signer of `signature_hex` (`0x`-prefixed or
/// bare hex of 65 bytes) and compares it with the message's address.
///
/// # Errors
/// The first failure as a [`SignInError`]; a valid signature by another key is
/// [`SignInError::SignerMismatch`] (see the module docs for contract wallets).
pub fn verify_siwe(
    text: &str,
    signature_hex: &str,
    rules: &SignInRules,
    now_unix: i64,
) -> Result<VerifiedSignIn, SignInError> {
    let msg = SiweMessage::parse(text)?;
    msg.verify_fields(rules, now_unix)?;
    let sig = decode_hex(signature_hex, 65)?;
    let recovered = verify_eip191(text, &sig)?;
    if recovered != msg.address_bytes {
        return Err(SignInError::SignerMismatch { recovered });
    }
    Ok(msg.verified())
}

/// A SIWE message whose fields passed, waiting for an on-chain EIP-1271 answer.
#[derive(Debug, Clone)]
pub struct ContractCheck {
    message: SiweMessage,
    hash: [u8; 32],
    signature: Vec<u8>,
}

impl ContractCheck {
    /// The contract wallet to call.
    pub fn address(&self) -> [u8; 20] {
        self.message.address_bytes
    }
    /// The EIP-155 chain whose RPC to call.
    pub fn chain_id(&self) -> u64 {
        self.message.chain_id
    }
    /// The message's nonce: check it is live before spending RPC calls.
    pub fn nonce(&self) -> &str {
        &self.message.nonce
    }
    /// `isValidSignature`'s `hash` argument: [`eip191_hash`] of the message.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }
    /// `isValidSignature`'s `signature` argument, as sent by the wallet.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
    /// The sign-in, to be called only after `isValidSignature(hash(), signature())` on
    /// `address()` at `chain_id()` returned `0x1626ba7e`.
    pub fn accept(self) -> VerifiedSignIn {
        self.message.verified()
    }
}

/// Parses and checks the fields of `text` like [`verify_siwe`] and returns what an EIP-1271
/// check needs. Signatures of any length up to 4 KiB are taken (contract wallets choose).
///
/// # Errors
/// A parse or field failure, or a signature that is not hex or too long.
pub fn prepare_contract_check(
    text: &str,
    signature_hex: &str,
    rules: &SignInRules,
    now_unix: i64,
) -> Result<ContractCheck, SignInError> {
    let message = SiweMessage::parse(text)?;
    message.verify_fields(rules, now_unix)?;
    let signature = decode_hex(signature_hex, MAX_CONTRACT_SIG)?;
    Ok(ContractCheck {
        message,
        hash: eip191_hash(text),
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip55_reference_vectors() {
        // From the EIP-55 specification's test cases.
        for a in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            assert_eq!(parse_eip55(a).map(|b| to_eip55(&b)).as_deref(), Ok(a));
        }
        assert_eq!(
            parse_eip55("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
            Err(MessageError::BadChecksum)
        );
    }

    #[test]
    fn eip191_hash_of_hello_world() {
        // ethers.hashMessage("Hello World")
        assert_eq!(
            hex::encode(eip191_hash("Hello World")),
            "a1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2"
        );
    }

    #[test]
    fn garbage_never_panics() {
        let good = "a.example wants you to sign in with your Ethereum account:\n0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\n\n\nURI: https://a.example\nVersion: 1\nChain ID: 1\nNonce: abcdefgh1\nIssued At: 2026-01-01T00:00:00Z";
        assert!(SiweMessage::parse(good).is_ok());
        assert!(SiweMessage::parse(&format!("{good}\nResources:\n- https://a.example/x")).is_ok());
        for cut in 0..good.len() {
            if good.is_char_boundary(cut) {
                assert!(
                    SiweMessage::parse(&good[..cut]).is_err(),
                    "prefix {cut} parsed"
                );
            }
        }
        for sig in [&[][..], &[0u8; 64], &[0u8; 65], &[0xffu8; 65], &[1u8; 66]] {
            assert_eq!(verify_eip191(good, sig), Err(SignInError::BadSignature));
        }
    }
}
