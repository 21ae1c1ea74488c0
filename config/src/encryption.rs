//! `[encryption]` (transcoder and edge): the key-encryption keys (KEKs) that wrap content keys
//! at rest. The transcoder wraps new content keys under `wrapping-key`; the edge unwraps with
//! any listed key, so a KEK rotates by adding the new one everywhere, then switching
//! `wrapping-key` on the transcoders (keys wrapped under the old one stay readable while it is
//! listed). Origin holds no KEK: it only stores and serves the wrapped keys.
//!
//! ```toml
//! [encryption]
//! wrapping-key = "kek-2026"
//! [[encryption.keys]]
//! id = "kek-2026"
//! secret = { env = "STREAMGATE_KEK_2026" }   # 64 hex digits (AES-256)
//! ```

use serde::Deserialize;

use crate::{
    ConfigError, Env, Secret,
    keyring::{KeyLen, KeySection, resolve_keys},
};

/// `[encryption]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EncryptionSection {
    /// Id of the KEK that wraps new content keys; must be one of `keys`.
    pub wrapping_key: String,
    /// `[[encryption.keys]]`: every KEK that may have wrapped a stored key.
    pub keys: Vec<KeySection>,
}

/// `[encryption]` with its keys resolved (32 bytes each).
#[derive(Debug, Clone)]
pub struct EncryptionConfig {
    /// Id of the wrapping KEK.
    pub wrapping_key: String,
    /// `(id, hex key)` pairs.
    pub keys: Vec<(String, Secret)>,
}

impl EncryptionSection {
    pub(crate) fn resolve(self, env: &dyn Env) -> Result<EncryptionConfig, ConfigError> {
        if !self.keys.iter().any(|k| k.id == self.wrapping_key) {
            return Err(ConfigError::invalid(
                "encryption.wrapping-key",
                format!("{:?}", self.wrapping_key),
                "is not the id of any encryption.keys entry",
            ));
        }
        let keys = resolve_keys(
            "encryption",
            self.keys,
            &self.wrapping_key,
            KeyLen::Exactly(32),
            env,
        )?;
        Ok(EncryptionConfig {
            wrapping_key: self.wrapping_key,
            keys,
        })
    }
}

impl EncryptionConfig {
    /// The keys as `(id, bytes)` (already validated as 32 bytes of hex).
    pub fn key_bytes(&self) -> Vec<(String, Vec<u8>)> {
        self.keys
            .iter()
            .map(|(id, s)| (id.clone(), hex::decode(s.expose()).unwrap_or_default()))
            .collect()
    }
}
