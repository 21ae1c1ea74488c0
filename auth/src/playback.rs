//! Playback tokens: compact, URL-safe, HMAC-SHA256-authenticated grants to one content.
//!
//! # Format (version 2)
//! `base64url_nopad(payload || tag)` where `payload` is
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version = 2 |
//! | 1 | key id length `n` (1–16) |
//! | n | key id (ASCII) |
//! | 8 | expiry, Unix seconds, big-endian |
//! | 4 | content tag: first 4 bytes of SHA-256(content id), for a precise error |
//! | 8 | subject hash: first 8 bytes of SHA-256("sg-sub\0" ‖ subject) |
//! | 1 | flags: bit 0 = minted by a playback grant (bound to an entitlement); others must be 0 |
//! | 1 | IP binding: 0 none, 4 IPv4, 6 IPv6 |
//! | 0 or 1+4 or 1+16 | prefix length and masked address |
//!
//! Version 1 is the same without the flags byte; it is still accepted, and read as
//! grant-bound (the strict reading: a re-check that cannot find the viewer refuses).
//!
//! and `tag` is the first 16 bytes of HMAC-SHA256(key, "sg-pt\0" ‖ payload ‖ content id). The
//! content id is authenticated but not carried: it is in the URL next to the token.
//!
//! Verification checks, in order: shape, key id, content tag, MAC (constant time), expiry, IP.
//! Every field it reports is authenticated before it is trusted.

use std::net::IpAddr;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 2;
/// The version without the flags byte, still verified (read as grant-bound).
const VERSION_1: u8 = 1;
/// Flags bit: minted by a playback grant, so the edge keeps its viewer's record and playlist
/// re-checks must find it (a missing record refuses instead of passing).
const FLAG_GRANT: u8 = 1;
const TAG_LEN: usize = 16;
const MAX_KID: usize = 16;
/// Longest token text accepted before decoding (bounds the work an attacker can cause).
pub const MAX_TOKEN_LEN: usize = 128;
const DOMAIN: &[u8] = b"sg-pt\0";

/// Why a token was refused. Small and `Copy`: it is on the per-request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of this format.
    #[error("malformed token")]
    Malformed,
    /// Signed with a key this edge does not hold (rotated out, or forged).
    #[error("unknown token key")]
    UnknownKey,
    /// Minted for another content.
    #[error("token is for another content")]
    WrongContent,
    /// The MAC does not match.
    #[error("bad token signature")]
    BadSignature,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Bound to another client network.
    #[error("token bound to another client address")]
    IpMismatch,
}

impl TokenError {
    /// Stable snake_case code for JSON bodies and metric labels.
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::UnknownKey => "unknown_key",
            TokenError::WrongContent => "wrong_content",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::IpMismatch => "ip_mismatch",
        }
    }

    /// Every variant, for pre-registering metric labels.
    pub const ALL: [TokenError; 6] = [
        TokenError::Malformed,
        TokenError::UnknownKey,
        TokenError::WrongContent,
        TokenError::BadSignature,
        TokenError::Expired,
        TokenError::IpMismatch,
    ];
}

/// Why a key set could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    /// No keys at all.
    #[error("no keys")]
    Empty,
    /// A key id is empty, too long or not `A-Z a-z 0-9 _ -`.
    #[error("bad key id {0:?}")]
    BadKeyId(String),
    /// A key is shorter than 32 bytes.
    #[error("key {0:?} is shorter than 32 bytes")]
    ShortKey(String),
    /// The signing key id is not among the keys.
    #[error("signing key {0:?} is not in the key set")]
    NoSigningKey(String),
}

/// Binding of a token to the client's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBinding {
    /// The client address (masked when minted).
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
}

impl IpBinding {
    /// The binding of `addr` to its `/prefix` network.
    pub fn new(addr: IpAddr, prefix: u8) -> Self {
        Self {
            addr: mask(addr, prefix),
            prefix,
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        mask(ip, self.prefix) == self.addr
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let p = u32::from(prefix.min(32));
            let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let p = u32::from(prefix.min(128));
            let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// What a token grants, as asked for when minting.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    /// The content.
    pub content_id: &'a str,
    /// The viewer (a CAIP-10 account id, or an operator label); only its hash is carried.
    pub subject: &'a str,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
    /// Optional binding to the client's network.
    pub client_ip: Option<IpBinding>,
    /// Minted by a playback grant after an entitlement check (not by an operator's
    /// `token mint`): the edge re-checks the viewer on playlists and refuses when it cannot.
    pub entitlement_bound: bool,
}

/// What a verified token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Key id it was signed with.
    pub key_index: usize,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
    /// Hash of the subject (see [`subject_hash`]), for logs and per-viewer accounting.
    pub subject_hash: [u8; 8],
    /// Minted by a grant (see [`Grant::entitlement_bound`]).
    pub entitlement_bound: bool,
}

/// The first 8 bytes of SHA-256("sg-sub\0" ‖ subject): identifies a viewer without naming them.
pub fn subject_hash(subject: &str) -> [u8; 8] {
    let d = Sha256::new()
        .chain_update(b"sg-sub\0")
        .chain_update(subject.as_bytes())
        .finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

fn content_tag(content_id: &str) -> [u8; 4] {
    let d = Sha256::digest(content_id.as_bytes());
    [d[0], d[1], d[2], d[3]]
}

struct Key {
    id: String,
    /// HMAC state already keyed: cloning it skips the key schedule on every request.
    mac: HmacSha256,
}

/// The live playback-token keys of an edge: one signs, all verify (rotation without logouts).
pub struct KeySet {
    keys: Vec<Key>,
    signing: usize,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("KeySet")
            .field("keys", &ids)
            .field("signing", &self.keys[self.signing].id)
            .finish()
    }
}

impl KeySet {
    /// Builds a key set from `(id, key bytes)` pairs; `signing` names the key that mints.
    pub fn new(keys: Vec<(String, Vec<u8>)>, signing: &str) -> Result<Self, KeySetError> {
        if keys.is_empty() {
            return Err(KeySetError::Empty);
        }
        let mut out = Vec::with_capacity(keys.len());
        for (id, bytes) in keys {
            if id.is_empty()
                || id.len() > MAX_KID
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(KeySetError::BadKeyId(id));
            }
            if bytes.len() < 32 {
                return Err(KeySetError::ShortKey(id));
            }
            // new_from_slice accepts keys of any length; it cannot fail for HMAC.
            let mac = HmacSha256::new_from_slice(&bytes).expect("hmac takes any key length");
            out.push(Key { id, mac });
        }
        let signing = out
            .iter()
            .position(|k| k.id == signing)
            .ok_or_else(|| KeySetError::NoSigningKey(signing.to_owned()))?;
        Ok(Self { keys: out, signing })
    }

    /// Id of the signing key.
    pub fn signing_key_id(&self) -> &str {
        &self.keys[self.signing].id
    }

    /// Mints a token for `grant` under the signing key.
    pub fn mint(&self, grant: &Grant<'_>) -> String {
        let key = &self.keys[self.signing];
        let mut buf = Vec::with_capacity(64);
        buf.push(VERSION);
        buf.push(key.id.len() as u8);
        buf.extend_from_slice(key.id.as_bytes());
        buf.extend_from_slice(&grant.expires_at.to_be_bytes());
        buf.extend_from_slice(&content_tag(grant.content_id));
        buf.extend_from_slice(&subject_hash(grant.subject));
        buf.push(if grant.entitlement_bound {
            FLAG_GRANT
        } else {
            0
        });
        match grant.client_ip {
            None => buf.push(0),
            Some(b) => {
                let b = IpBinding::new(b.addr, b.prefix);
                match b.addr {
                    IpAddr::V4(a) => {
                        buf.extend_from_slice(&[4, b.prefix.min(32)]);
                        buf.extend_from_slice(&a.octets());
                    }
                    IpAddr::V6(a) => {
                        buf.extend_from_slice(&[6, b.prefix.min(128)]);
                        buf.extend_from_slice(&a.octets());
                    }
                }
            }
        }
        let tag = compute_tag(&key.mac, &buf, grant.content_id);
        buf.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(&buf)
    }

    /// Verifies `token` for a request of `content_id` from `client_ip` at Unix time `now`.
    ///
    /// # Errors
    /// The first check that fails, as a [`TokenError`].
    pub fn verify(
        &self,
        token: &str,
        content_id: &str,
        client_ip: Option<IpAddr>,
        now: u64,
    ) -> Result<Verified, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut raw = [0u8; 96];
        let n = URL_SAFE_NO_PAD
            .decode_slice(token.as_bytes(), &mut raw)
            .map_err(|_| TokenError::Malformed)?;
        let raw = &raw[..n];
        let parsed = Parsed::from_bytes(raw)?;
        let key_index = self
            .keys
            .iter()
            .position(|k| k.id.as_bytes() == parsed.kid)
            .ok_or(TokenError::UnknownKey)?;
        if parsed.content_tag != content_tag(content_id) {
            return Err(TokenError::WrongContent);
        }
        let mut mac = self.keys[key_index].mac.clone();
        mac.update(DOMAIN);
        mac.update(parsed.payload);
        mac.update(content_id.as_bytes());
        // Constant-time comparison of the truncated tag (subtle, inside the hmac crate).
        mac.verify_truncated_left(parsed.tag)
            .map_err(|_| TokenError::BadSignature)?;
        if now >= parsed.expires_at {
            return Err(TokenError::Expired);
        }
        if let Some(binding) = parsed.ip {
            match client_ip {
                Some(ip) if binding.contains(ip) => {}
                _ => return Err(TokenError::IpMismatch),
            }
        }
        Ok(Verified {
            key_index,
            expires_at: parsed.expires_at,
            subject_hash: parsed.subject_hash,
            entitlement_bound: parsed.flags & FLAG_GRANT != 0,
        })
    }
}

fn compute_tag(mac: &HmacSha256, payload: &[u8], content_id: &str) -> [u8; 32] {
    let mut mac = mac.clone();
    mac.update(DOMAIN);
    mac.update(payload);
    mac.update(content_id.as_bytes());
    mac.finalize().into_bytes().into()
}

struct Parsed<'a> {
    payload: &'a [u8],
    tag: &'a [u8],
    kid: &'a [u8],
    expires_at: u64,
    content_tag: [u8; 4],
    subject_hash: [u8; 8],
    flags: u8,
    ip: Option<IpBinding>,
}

impl<'a> Parsed<'a> {
    fn from_bytes(raw: &'a [u8]) -> Result<Self, TokenError> {
        use TokenError::Malformed;
        if raw.len() < 2 + TAG_LEN || !(raw[0] == VERSION || raw[0] == VERSION_1) {
            return Err(Malformed);
        }
        let (payload, tag) = raw.split_at(raw.len() - TAG_LEN);
        let kid_len = usize::from(payload[1]);
        if kid_len == 0 || kid_len > MAX_KID {
            return Err(Malformed);
        }
        let mut r = Reader(&payload[2..]);
        let kid = r.take(kid_len)?;
        let expires_at = u64::from_be_bytes(r.array()?);
        let content_tag = r.array()?;
        let subject_hash = r.array()?;
        let flags = if raw[0] == VERSION_1 {
            FLAG_GRANT
        } else {
            r.take(1)?[0]
        };
        if flags & !FLAG_GRANT != 0 {
            return Err(Malformed);
        }
        let ip = match r.take(1)?[0] {
            0 => None,
            4 => {
                let prefix = r.take(1)?[0];
                let a: [u8; 4] = r.array()?;
                (prefix <= 32).then_some(()).ok_or(Malformed)?;
                Some(IpBinding {
                    addr: IpAddr::from(a),
                    prefix,
                })
            }
            6 => {
                let prefix = r.take(1)?[0];
                let a: [u8; 16] = r.array()?;
                (prefix <= 128).then_some(()).ok_or(Malformed)?;
                Some(IpBinding {
                    addr: IpAddr::from(a),
                    prefix,
                })
            }
            _ => return Err(Malformed),
        };
        if !r.0.is_empty() {
            return Err(Malformed);
        }
        Ok(Self {
            payload,
            tag,
            kid,
            expires_at,
            content_tag,
            subject_hash,
            flags,
            ip,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], TokenError> {
        if self.0.len() < n {
            return Err(TokenError::Malformed);
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Ok(h)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], TokenError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
}

#[cfg(test)]
mod tests;
