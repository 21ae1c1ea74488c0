//! Lists of named keys (`[[tokens.keys]]`, `[[auth.keys]]`): several live at once so keys
//! rotate without logging anyone out, one of them signs.

use serde::Deserialize;

use crate::{ConfigError, Env, Secret, SecretRef};

/// One `[[….keys]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeySection {
    /// Key id carried in tokens (1-16 of `A-Z a-z 0-9 _ -`).
    pub id: String,
    /// Hex-encoded key material.
    pub secret: SecretRef,
}

/// How long the hex-decoded key must be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyLen {
    /// At least this many bytes (HMAC keys).
    AtLeast(usize),
    /// Exactly this many bytes (Ed25519 seeds).
    Exactly(usize),
}

/// Validates ids, decodes and length-checks every key, and checks that `signing` is one of
/// them. `section` is the dotted key of the list's parent (`tokens`, `auth`).
pub(crate) fn resolve_keys(
    section: &str,
    keys: Vec<KeySection>,
    signing: &str,
    len: KeyLen,
    env: &dyn Env,
) -> Result<Vec<(String, Secret)>, ConfigError> {
    if keys.is_empty() {
        return Err(ConfigError::invalid(
            &format!("{section}.keys"),
            "[]",
            "at least one key is needed",
        ));
    }
    let mut out: Vec<(String, Secret)> = Vec::with_capacity(keys.len());
    for (i, k) in keys.into_iter().enumerate() {
        let key = format!("{section}.keys[{i}]");
        let id_ok = !k.id.is_empty()
            && k.id.len() <= 16
            && k.id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(ConfigError::invalid(
                &format!("{key}.id"),
                format!("{:?}", k.id),
                "must be 1-16 of A-Z a-z 0-9 _ -",
            ));
        }
        if out.iter().any(|(id, _)| *id == k.id) {
            return Err(ConfigError::invalid(
                &format!("{key}.id"),
                format!("{:?}", k.id),
                "duplicate key id",
            ));
        }
        let secret = k.secret.resolve(&format!("{key}.secret"), env)?;
        let decoded = hex::decode(secret.expose()).ok();
        let (ok, want) = match (len, decoded.as_ref().map(Vec::len)) {
            (KeyLen::AtLeast(n), Some(l)) => (l >= n, format!("at least {n} bytes")),
            (KeyLen::Exactly(n), Some(l)) => (l == n, format!("exactly {n} bytes")),
            (KeyLen::AtLeast(n), None) => (false, format!("at least {n} bytes")),
            (KeyLen::Exactly(n), None) => (false, format!("exactly {n} bytes")),
        };
        if !ok {
            return Err(ConfigError::Secret {
                key: format!("{key}.secret"),
                source_desc: format!("{:?}", k.secret),
                message: format!("must be hex of {want}"),
            });
        }
        out.push((k.id, secret));
    }
    if !out.iter().any(|(id, _)| id == signing) {
        return Err(ConfigError::invalid(
            &format!("{section}.signing-key"),
            format!("{signing:?}"),
            format!("is not the id of any {section}.keys entry"),
        ));
    }
    Ok(out)
}
