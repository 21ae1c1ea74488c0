//! Secrets are never written in a config file: the file names an environment variable or a
//! file that holds them, and the loader resolves the reference once at start-up.

use std::fmt;

use serde::Deserialize;

use crate::{ConfigError, Env};

/// Where a secret comes from: `{ env = "VAR" }` or `{ file = "/path" }`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecretRef {
    /// Environment variable holding the secret.
    #[serde(default)]
    pub env: Option<String>,
    /// File holding the secret (surrounding white space is trimmed).
    #[serde(default)]
    pub file: Option<String>,
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({})", self.describe())
    }
}

impl SecretRef {
    /// A reference to an environment variable.
    pub fn env(var: &str) -> Self {
        Self {
            env: Some(var.to_owned()),
            file: None,
        }
    }

    fn describe(&self) -> String {
        match (&self.env, &self.file) {
            (Some(v), _) => format!("env {v}"),
            (None, Some(p)) => format!("file {p}"),
            (None, None) => "(none)".into(),
        }
    }

    /// Reads the secret. `key` names the config key in errors; the value is never echoed.
    pub fn resolve(&self, key: &str, env: &dyn Env) -> Result<Secret, ConfigError> {
        let err = |message: &str| ConfigError::Secret {
            key: key.to_owned(),
            source_desc: self.describe(),
            message: message.to_owned(),
        };
        let value = match (&self.env, &self.file) {
            (Some(_), Some(_)) => return Err(err("names both `env` and `file`; pick one")),
            (None, None) => return Err(err("names neither `env` nor `file`")),
            (Some(var), None) => env.var(var).ok_or_else(|| err("is not set"))?,
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| err(&format!("cannot be read: {e}")))?
                .trim()
                .to_owned(),
        };
        if value.is_empty() {
            return Err(err("is empty"));
        }
        Ok(Secret(value))
    }
}

/// A resolved secret. Its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value (tests and generated keys).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn resolves_from_env_and_file() {
        let env: HashMap<String, String> = [("K".into(), "v1".into())].into();
        assert_eq!(
            SecretRef::env("K").resolve("a.b", &env).unwrap().expose(),
            "v1"
        );
        let dir = std::env::temp_dir().join(format!("sg-secret-{}", std::process::id()));
        std::fs::write(&dir, "  v2\n").unwrap();
        let r = SecretRef {
            env: None,
            file: Some(dir.display().to_string()),
        };
        assert_eq!(r.resolve("a.b", &env).unwrap().expose(), "v2");
        std::fs::remove_file(dir).unwrap();
    }

    #[test]
    fn missing_secret_names_key_and_var() {
        let env: HashMap<String, String> = HashMap::new();
        let e = SecretRef::env("NOPE")
            .resolve("s3.secret-key", &env)
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("s3.secret-key") && msg.contains("NOPE"),
            "{msg}"
        );
        assert!(!format!("{:?}", Secret::new("hunter2")).contains("hunter2"));
    }
}
