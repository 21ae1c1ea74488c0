//! Typed configuration for every StreamGate service, and the wire contract they share.
//!
//! Each service reads one TOML file (`proxy.toml`, `origin.toml`, `transcoder.toml`), overridden
//! by `STREAMGATE__SECTION__KEY` environment variables, with secrets named by reference
//! (`{ env = "VAR" }` or `{ file = "path" }`). Loading is one chain: read → override → parse
//! (unknown keys are errors) → validate → resolve secrets. Every error names the key and, where
//! it is not a secret, the bad value.
//!
//! # Layout
//! - [`load_proxy`], [`load_origin`], [`load_transcoder`]: the entry points.
//! - `proxy`, `origin`, `transcoder`: the file shapes (serde) and the validated configs.
//! - `common`: sections several services share (`[s3]`, `[redis]`, `[log]`).
//! - [`contract`]: storage layout, Redis stream names, job and event messages.
//! - [`net`]: CIDR blocks, the client address behind trusted proxies, rate-limit keys.
//!
//! Sample files live in `config/assets/`; the tests load each of them.

mod auth;
mod common;
pub mod contract;
mod encryption;
mod env;
mod error;
mod grants;
mod keyring;
pub mod lang;
pub mod net;
mod origin;
mod proxy;
mod secret;
mod transcoder;

use std::path::Path;

use serde::de::DeserializeOwned;

pub use auth::{AuthConfig, AuthSection, RateLimit, RpcUrl};
pub use common::{LogConfig, LogFormat, RedisConfig, S3Config, S3Section, bytesize, duration};
pub use encryption::{EncryptionConfig, EncryptionSection};
pub use env::{ENV_PREFIX, Env, ProcessEnv};
pub use error::ConfigError;
pub use grants::{EntitlementsConfig, EntitlementsSection, SessionSection};
pub use keyring::KeySection;
pub use net::{IpNet, TrustedProxies};
pub use origin::{
    MIN_EDGE_KEY_LEN, OriginConfig, OriginFile, OriginServer, OriginTls, ProbeConfig, S3_MAX_PART,
    S3_MAX_PARTS, S3_MIN_PART, UploadsConfig, WebConfig, WebhooksConfig,
};
pub use proxy::{
    AccessLogSection, AdminSection, CacheSection, CorsSection, ProxyConfig, ProxyFile, ProxyServer,
    TlsCertificate, TlsSection, TokensConfig, TokensSection, Upstream,
};
pub use secret::{Secret, SecretRef};
pub use transcoder::{
    FfmpegConfig, MetricsConfig, Rung, TranscoderConfig, TranscoderFile, WorkerConfig,
    default_ladder,
};

/// Parses and validates the text of a `proxy.toml` (`source` names it in errors).
pub fn parse_proxy(text: &str, source: &Path, env: &dyn Env) -> Result<ProxyConfig, ConfigError> {
    parse_str::<ProxyFile>(text, source, env)?.resolve(env)
}

/// Parses and validates the text of an `origin.toml`.
pub fn parse_origin(text: &str, source: &Path, env: &dyn Env) -> Result<OriginConfig, ConfigError> {
    parse_str::<OriginFile>(text, source, env)?.resolve(env)
}

/// Parses and validates the text of a `transcoder.toml`.
pub fn parse_transcoder(
    text: &str,
    source: &Path,
    env: &dyn Env,
) -> Result<TranscoderConfig, ConfigError> {
    parse_str::<TranscoderFile>(text, source, env)?.resolve(env)
}

/// Loads and validates `proxy.toml`.
pub fn load_proxy(path: &Path, env: &dyn Env) -> Result<ProxyConfig, ConfigError> {
    parse_file::<ProxyFile>(path, env)?.resolve(env)
}

/// Loads and validates `origin.toml`.
pub fn load_origin(path: &Path, env: &dyn Env) -> Result<OriginConfig, ConfigError> {
    parse_file::<OriginFile>(path, env)?.resolve(env)
}

/// Loads and validates `transcoder.toml`.
pub fn load_transcoder(path: &Path, env: &dyn Env) -> Result<TranscoderConfig, ConfigError> {
    parse_file::<TranscoderFile>(path, env)?.resolve(env)
}

/// Reads `path`, applies environment overrides and deserializes it, reporting the key path of
/// any type error or unknown key.
fn parse_file<T: DeserializeOwned>(path: &Path, env: &dyn Env) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_str(&text, path, env)
}

fn parse_str<T: DeserializeOwned>(
    text: &str,
    path: &Path,
    env: &dyn Env,
) -> Result<T, ConfigError> {
    let mut table: toml::Table =
        text.parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                path: path.to_owned(),
                message: e.to_string().trim().to_owned(),
            })?;
    env::apply_overrides(&mut table, env)?;
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::Shape {
            key: if key == "." {
                "(top level)".into()
            } else {
                key
            },
            message: e.into_inner().to_string(),
        }
    })
}

#[cfg(test)]
mod tests;
