//! The one error type of the configuration boundary: every variant names the key it is about.

use std::path::PathBuf;

/// Why a configuration could not be loaded or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A key has a value of the wrong type, or is unknown.
    #[error("config key `{key}`: {message}")]
    Shape {
        /// Dotted path of the key (`s3.bucket`).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A `STREAMGATE__…` environment override could not be applied.
    #[error("environment override {var}: {message}")]
    Env {
        /// The variable's name.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A key has a well-typed but unacceptable value.
    #[error("config key `{key}` = {value}: {message}")]
    Invalid {
        /// Dotted path of the key.
        key: String,
        /// The bad value, as written (secrets are never echoed).
        value: String,
        /// What is wrong with it.
        message: String,
    },
    /// A secret reference could not be resolved.
    #[error("config key `{key}`: secret {source_desc} {message}")]
    Secret {
        /// Dotted path of the key.
        key: String,
        /// Where the secret was to come from (`env STREAMGATE_S3_SECRET`, `file /x`).
        source_desc: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// Shorthand for [`ConfigError::Invalid`].
    pub fn invalid(key: &str, value: impl std::fmt::Display, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            value: value.to_string(),
            message: message.into(),
        }
    }
}
