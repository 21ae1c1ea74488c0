//! Content keys for Common Encryption (`cenc`, AES-128-CTR) and their envelope at rest.
//!
//! Each encrypted content has one random 128-bit key and a random 128-bit key id (KID). The
//! transcoder encrypts the package with it and stores it only wrapped: AES-256-GCM under a
//! key-encryption key (KEK) from config, named by id so KEKs rotate (`[encryption] wrapping-key`
//! wraps new keys; every listed KEK still unwraps). The associated data binds the wrapped key
//! to its content id, key id and scheme, so a wrapped key copied to another content's record
//! does not unwrap. The edge unwraps it for each license request; nothing else ever holds the
//! clear key, and neither `Debug` nor any error prints it.
//!
//! ```text
//! transcoder: ContentKey::generate ─► KeyWrapper::wrap(content id) ─► keys/{id}.json (S3)
//! edge:       origin GET /v1/contents/{id}/key ─► KeyWrapper::unwrap(content id) ─► ClearKey JSON
//! ```

use aws_lc_rs::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey},
    iv::FixedLength,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

/// The only scheme packaged today: ISO/IEC 23001-7 `cenc` (AES-CTR, full-sample audio,
/// subsample video).
pub const SCHEME_CENC: &str = "cenc";

/// Why a wrapped key could not be used. Never carries key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContentKeyError {
    /// The record names a KEK this process does not have.
    #[error("wrapped under key-encryption key {0:?}, which is not configured here")]
    UnknownKek(String),
    /// The record is not a wrapped key of this content (tampered, copied, or corrupt).
    #[error("wrapped key does not open: {0}")]
    Corrupt(&'static str),
    /// The wrapping key set is unusable.
    #[error("key-encryption keys: {0}")]
    BadKek(&'static str),
    /// The system random generator failed.
    #[error("random generator failed")]
    Random,
}

/// A content key and its key id. The key bytes are zeroed on drop and never printed.
pub struct ContentKey {
    kid: [u8; 16],
    key: [u8; 16],
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentKey")
            .field("kid", &hex::encode(self.kid))
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Drop for ContentKey {
    fn drop(&mut self) {
        // `black_box` keeps the store from being optimised away (the crate forbids `unsafe`,
        // so no volatile write).
        self.key = [0; 16];
        std::hint::black_box(&self.key);
    }
}

impl ContentKey {
    /// A fresh random key and key id.
    ///
    /// # Errors
    /// [`ContentKeyError::Random`] if the system generator fails.
    pub fn generate() -> Result<Self, ContentKeyError> {
        let mut kid = [0u8; 16];
        let mut key = [0u8; 16];
        aws_lc_rs::rand::fill(&mut kid).map_err(|_| ContentKeyError::Random)?;
        aws_lc_rs::rand::fill(&mut key).map_err(|_| ContentKeyError::Random)?;
        Ok(Self { kid, key })
    }

    /// A key from known bytes (tests, test vectors).
    pub fn from_parts(kid: [u8; 16], key: [u8; 16]) -> Self {
        Self { kid, key }
    }

    /// The key id.
    pub fn kid(&self) -> [u8; 16] {
        self.kid
    }

    /// The key id as 32 lowercase hex digits (`cenc:default_KID` without dashes).
    pub fn kid_hex(&self) -> String {
        hex::encode(self.kid)
    }

    /// The key id as the W3C ClearKey JSON writes it (base64url, no padding).
    pub fn kid_b64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.kid)
    }

    /// The key as the W3C ClearKey JSON writes it. Sensitive: only for a license response.
    pub fn key_b64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key)
    }

    /// The key as hex. Sensitive: only for tests and tools that decrypt (`ffmpeg
    /// -decryption_key`).
    pub fn key_hex(&self) -> String {
        hex::encode(self.key)
    }

    /// An AES-128-CTR cipher under this key, for encrypting samples.
    ///
    /// # Errors
    /// Never in practice (a 16-byte AES key is always accepted).
    pub fn ctr(&self) -> Result<SampleCipher, ContentKeyError> {
        let key = UnboundCipherKey::new(&AES_128, &self.key)
            .map_err(|_| ContentKeyError::BadKek("aes-128 key"))?;
        Ok(SampleCipher(
            EncryptingKey::ctr(key).map_err(|_| ContentKeyError::BadKek("aes-128-ctr"))?,
        ))
    }
}

/// AES-128-CTR as Common Encryption uses it: the 16-byte counter block is the sample's IV
/// (8 bytes, then a 64-bit block counter from 0). Encrypting and decrypting are the same.
pub struct SampleCipher(EncryptingKey);

impl std::fmt::Debug for SampleCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SampleCipher(<redacted>)")
    }
}

impl SampleCipher {
    /// XORs `data` with the key stream starting at counter block `iv`.
    ///
    /// # Errors
    /// Only if the library refuses the call (it does not for CTR).
    pub fn apply(&self, iv: [u8; 16], data: &mut [u8]) -> Result<(), ContentKeyError> {
        if data.is_empty() {
            return Ok(());
        }
        self.0
            .less_safe_encrypt(data, EncryptionContext::Iv128(FixedLength::from(iv)))
            .map(drop)
            .map_err(|_| ContentKeyError::BadKek("aes-128-ctr"))
    }
}

/// A content key as stored (`keys/{id}.json`): wrapped, with what is needed to unwrap it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedKey {
    /// Format version (1).
    pub v: u8,
    /// Encryption scheme the key is for ([`SCHEME_CENC`]).
    pub scheme: String,
    /// Key id, 32 hex digits (public: it is in the manifests and init segments).
    pub kid: String,
    /// Id of the key-encryption key that wrapped it.
    pub kek: String,
    /// AES-256-GCM nonce, base64url.
    pub nonce: String,
    /// The wrapped key and its tag, base64url.
    pub key: String,
}

/// The key-encryption keys: one wraps, all unwrap (rotation).
pub struct KeyWrapper {
    wrapping: String,
    keys: Vec<(String, LessSafeKey)>,
}

impl std::fmt::Debug for KeyWrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("KeyWrapper")
            .field("wrapping", &self.wrapping)
            .field("keys", &ids)
            .finish()
    }
}

impl KeyWrapper {
    /// Builds the set from `(id, 32-byte key)` pairs; `wrapping` must be one of the ids.
    ///
    /// # Errors
    /// [`ContentKeyError::BadKek`] when a key is not 32 bytes or `wrapping` is not listed.
    pub fn new(wrapping: &str, keys: &[(String, Vec<u8>)]) -> Result<Self, ContentKeyError> {
        let mut out = Vec::with_capacity(keys.len());
        for (id, bytes) in keys {
            let k = UnboundKey::new(&AES_256_GCM, bytes)
                .map_err(|_| ContentKeyError::BadKek("each key must be 32 bytes"))?;
            out.push((id.clone(), LessSafeKey::new(k)));
        }
        if !out.iter().any(|(id, _)| id == wrapping) {
            return Err(ContentKeyError::BadKek("the wrapping key is not listed"));
        }
        Ok(Self {
            wrapping: wrapping.to_owned(),
            keys: out,
        })
    }

    fn aad(content_id: &str, kid_hex: &str, scheme: &str) -> Vec<u8> {
        format!("streamgate-content-key/v1|{content_id}|{kid_hex}|{scheme}").into_bytes()
    }

    /// Wraps `key` for `content_id` under the wrapping KEK.
    ///
    /// # Errors
    /// [`ContentKeyError::Random`] if no nonce can be drawn.
    pub fn wrap(&self, content_id: &str, key: &ContentKey) -> Result<WrappedKey, ContentKeyError> {
        let (id, kek) = self
            .keys
            .iter()
            .find(|(id, _)| *id == self.wrapping)
            .ok_or(ContentKeyError::BadKek("the wrapping key is not listed"))?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| ContentKeyError::Random)?;
        let kid = key.kid_hex();
        let mut sealed = key.key.to_vec();
        kek.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(Self::aad(content_id, &kid, SCHEME_CENC)),
            &mut sealed,
        )
        .map_err(|_| ContentKeyError::BadKek("seal"))?;
        Ok(WrappedKey {
            v: 1,
            scheme: SCHEME_CENC.to_owned(),
            kid,
            kek: id.clone(),
            nonce: URL_SAFE_NO_PAD.encode(nonce),
            key: URL_SAFE_NO_PAD.encode(sealed),
        })
    }

    /// Unwraps the key stored for `content_id`.
    ///
    /// # Errors
    /// [`ContentKeyError::UnknownKek`] for a KEK not configured here,
    /// [`ContentKeyError::Corrupt`] for anything that does not authenticate (another content's
    /// record, a changed key id, a flipped bit).
    pub fn unwrap(&self, content_id: &str, w: &WrappedKey) -> Result<ContentKey, ContentKeyError> {
        if w.v != 1 || w.scheme != SCHEME_CENC {
            return Err(ContentKeyError::Corrupt("unknown version or scheme"));
        }
        let (_, kek) = self
            .keys
            .iter()
            .find(|(id, _)| *id == w.kek)
            .ok_or_else(|| ContentKeyError::UnknownKek(w.kek.clone()))?;
        let kid: [u8; 16] = hex::decode(&w.kid)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(ContentKeyError::Corrupt("key id"))?;
        let nonce: [u8; NONCE_LEN] = URL_SAFE_NO_PAD
            .decode(&w.nonce)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(ContentKeyError::Corrupt("nonce"))?;
        let mut sealed = URL_SAFE_NO_PAD
            .decode(&w.key)
            .map_err(|_| ContentKeyError::Corrupt("key encoding"))?;
        let plain = kek
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(content_id, &w.kid, &w.scheme)),
                &mut sealed,
            )
            .map_err(|_| ContentKeyError::Corrupt("authentication failed"))?;
        let key: [u8; 16] = plain
            .try_into()
            .map_err(|_| ContentKeyError::Corrupt("key length"))?;
        sealed.fill(0);
        Ok(ContentKey { kid, key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapper(wrapping: &str) -> KeyWrapper {
        KeyWrapper::new(
            wrapping,
            &[("k1".into(), vec![1u8; 32]), ("k2".into(), vec![2u8; 32])],
        )
        .unwrap()
    }

    #[test]
    fn wraps_and_unwraps_for_the_same_content_only() {
        let w = wrapper("k1");
        let key = ContentKey::generate().unwrap();
        let stored = w.wrap("content-a", &key).unwrap();
        assert_eq!(stored.kek, "k1");
        assert_eq!(stored.kid, key.kid_hex());
        let back = w.unwrap("content-a", &stored).unwrap();
        assert_eq!(back.key_hex(), key.key_hex());
        // Copied to another content: refused.
        assert_eq!(
            w.unwrap("content-b", &stored).unwrap_err(),
            ContentKeyError::Corrupt("authentication failed")
        );
        // Another key id claimed: refused.
        let mut forged = stored.clone();
        forged.kid = hex::encode([9u8; 16]);
        assert!(w.unwrap("content-a", &forged).is_err());
        // A flipped bit: refused.
        let mut flipped = stored.clone();
        let mut raw = URL_SAFE_NO_PAD.decode(&flipped.key).unwrap();
        raw[0] ^= 1;
        flipped.key = URL_SAFE_NO_PAD.encode(raw);
        assert!(w.unwrap("content-a", &flipped).is_err());
    }

    #[test]
    fn rotation_keeps_old_keys_readable_and_unknown_keks_are_named() {
        let old = wrapper("k1")
            .wrap("c", &ContentKey::generate().unwrap())
            .unwrap();
        let rotated = wrapper("k2");
        assert!(rotated.unwrap("c", &old).is_ok());
        assert_eq!(
            rotated
                .wrap("c", &ContentKey::generate().unwrap())
                .unwrap()
                .kek,
            "k2"
        );
        let only_k2 = KeyWrapper::new("k2", &[("k2".into(), vec![2u8; 32])]).unwrap();
        assert_eq!(
            only_k2.unwrap("c", &old).unwrap_err(),
            ContentKeyError::UnknownKek("k1".into())
        );
        assert!(KeyWrapper::new("k3", &[("k1".into(), vec![1u8; 32])]).is_err());
        assert!(KeyWrapper::new("k1", &[("k1".into(), vec![1u8; 31])]).is_err());
    }

    #[test]
    fn debug_and_errors_never_show_the_key() {
        let key = ContentKey::from_parts([0xab; 16], [0xcd; 16]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("cdcd") && shown.contains("abab"), "{shown}");
        let stored = wrapper("k1").wrap("c", &key).unwrap();
        let err = wrapper("k1").unwrap("d", &stored).unwrap_err().to_string();
        assert!(!err.contains(&key.key_hex()) && !err.contains(&key.key_b64url()));
    }

    #[test]
    fn ctr_matches_the_aes_ctr_test_vector() {
        // NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt), first block.
        let key: [u8; 16] = hex::decode("2b7e151628aed2a6abf7158809cf4f3c")
            .unwrap()
            .try_into()
            .unwrap();
        let iv: [u8; 16] = hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
            .unwrap()
            .try_into()
            .unwrap();
        let mut block = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        let c = ContentKey::from_parts([0; 16], key).ctr().unwrap();
        c.apply(iv, &mut block).unwrap();
        assert_eq!(hex::encode(&block), "874d6191b620e3261bef6864990db6ce");
        c.apply(iv, &mut block).unwrap();
        assert_eq!(hex::encode(&block), "6bc1bee22e409f96e93d7e117393172a");
    }
}
