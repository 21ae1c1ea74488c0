//! Sections shared by several services: S3, Redis, logging, metrics; and serde helpers for
//! durations and byte sizes.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::{ConfigError, Env, Secret, SecretRef};

/// `[s3]`: the bucket that holds uploads, packages and the catalog.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct S3Section {
    /// Endpoint URL (`http://127.0.0.1:19000`); empty for AWS itself.
    #[serde(default)]
    pub endpoint: String,
    /// Region name.
    #[serde(default = "default_region")]
    pub region: String,
    /// Bucket name.
    pub bucket: String,
    /// Path-style addressing (needed by most S3-compatible servers).
    #[serde(default = "yes")]
    pub force_path_style: bool,
    /// Access key id.
    pub access_key: SecretRef,
    /// Secret access key.
    pub secret_key: SecretRef,
    /// Create the bucket at start-up when it is missing (local stacks).
    #[serde(default)]
    pub create_bucket: bool,
}

/// `[s3]` with its secrets resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Config {
    /// Endpoint URL; empty for AWS.
    pub endpoint: String,
    /// Region.
    pub region: String,
    /// Bucket.
    pub bucket: String,
    /// Path-style addressing.
    pub force_path_style: bool,
    /// Access key id.
    pub access_key: Secret,
    /// Secret access key.
    pub secret_key: Secret,
    /// Create the bucket when missing.
    pub create_bucket: bool,
}

impl S3Section {
    pub(crate) fn resolve(self, env: &dyn Env) -> Result<S3Config, ConfigError> {
        if self.bucket.is_empty()
            || self.bucket.len() > 63
            || !self
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(ConfigError::invalid(
                "s3.bucket",
                format!("{:?}", self.bucket),
                "must be 1-63 characters of a-z, 0-9, '-' and '.'",
            ));
        }
        let scheme_ok =
            self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://");
        if !self.endpoint.is_empty() && !scheme_ok {
            return Err(ConfigError::invalid(
                "s3.endpoint",
                format!("{:?}", self.endpoint),
                "must be an http:// or https:// URL",
            ));
        }
        Ok(S3Config {
            access_key: self.access_key.resolve("s3.access-key", env)?,
            secret_key: self.secret_key.resolve("s3.secret-key", env)?,
            endpoint: self.endpoint,
            region: self.region,
            bucket: self.bucket,
            force_path_style: self.force_path_style,
            create_bucket: self.create_bucket,
        })
    }
}

/// `[redis]`: the shared Redis (streams, nonces, upload state, L2).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RedisConfig {
    /// `redis://host:port[/db]` (or `rediss://`).
    pub url: String,
    /// Time allowed for one command before it counts as an outage.
    #[serde(default = "default_redis_timeout", with = "duration")]
    pub command_timeout: Duration,
}

impl RedisConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(self.url.starts_with("redis://") || self.url.starts_with("rediss://")) {
            return Err(ConfigError::invalid(
                "redis.url",
                format!("{:?}", self.url),
                "must start with redis:// or rediss://",
            ));
        }
        positive("redis.command-timeout", self.command_timeout)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogConfig {
    /// `text` or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// Default filter when `RUST_LOG` is not set (`info`, `streamgate_proxy=debug`, …).
    #[serde(default = "default_log_filter")]
    pub filter: String,
    /// OpenTelemetry collector to export traces to over OTLP/HTTP (protobuf), e.g.
    /// `http://otel-collector:4318` (`/v1/traces` is added). Absent: no export.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// Share of new traces exported (0 < ratio ≤ 1); a trace started upstream follows its
    /// parent's sampled flag.
    #[serde(default = "default_otlp_sample")]
    pub otlp_sample: f64,
}

fn default_otlp_sample() -> f64 {
    1.0
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            filter: default_log_filter(),
            otlp_endpoint: None,
            otlp_sample: default_otlp_sample(),
        }
    }
}

impl LogConfig {
    /// Checks that `filter` is a valid tracing filter.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        tracing_subscriber::EnvFilter::try_new(&self.filter).map_err(|e| {
            ConfigError::invalid("log.filter", format!("{:?}", self.filter), e.to_string())
        })?;
        if let Some(e) = &self.otlp_endpoint {
            let authority = e
                .strip_prefix("http://")
                .or_else(|| e.strip_prefix("https://"))
                .and_then(|rest| rest.split(['/', '?', '#']).next());
            let ok = authority.is_some_and(|a| {
                !a.is_empty() && !a.starts_with(':') && !a.contains(char::is_whitespace)
            });
            if !ok {
                return Err(ConfigError::invalid(
                    "log.otlp-endpoint",
                    format!("{e:?}"),
                    "must be an http:// or https:// URL of an OTLP/HTTP collector",
                ));
            }
        }
        if !(self.otlp_sample > 0.0 && self.otlp_sample <= 1.0) {
            return Err(ConfigError::invalid(
                "log.otlp-sample",
                self.otlp_sample,
                "must be above 0 and at most 1",
            ));
        }
        Ok(())
    }

    /// The tracing filter to use: `RUST_LOG` when it is set and not blank, else `filter`.
    /// (An empty `RUST_LOG` would otherwise silence everything below `error`.)
    pub fn effective_filter(&self, env: &dyn Env) -> String {
        env.var("RUST_LOG")
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| self.filter.clone())
    }
}

pub(crate) fn positive(key: &str, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::invalid(key, "0s", "must be greater than zero"));
    }
    Ok(())
}

fn default_region() -> String {
    "us-east-1".into()
}
pub(crate) fn yes() -> bool {
    true
}
fn default_redis_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_log_filter() -> String {
    "info".into()
}

/// Serde helper: durations written as `"250ms"`, `"4s"`, `"1h 30m"`.
pub mod duration {
    use super::*;

    /// Deserializes a humantime duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("bad duration {s:?}: {e}")))
    }
}

/// Serde helper: byte sizes written as an integer or `"8MiB"`, `"20GiB"`, `"512KiB"`, `"1GB"`.
pub mod bytesize {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Str(String),
    }

    /// Deserializes a byte size.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(n),
            Raw::Str(s) => parse(&s).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "bad byte size {s:?}: use a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)"
                ))
            }),
        }
    }

    /// Parses `"8MiB"` and friends.
    pub fn parse(s: &str) -> Option<u64> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().ok()?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            _ => return None,
        };
        n.checked_mul(mult)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn parses_units() {
            assert_eq!(super::parse("8MiB"), Some(8 << 20));
            assert_eq!(super::parse("1 GB"), Some(1_000_000_000));
            assert_eq!(super::parse("12"), Some(12));
            assert_eq!(super::parse("12 parsecs"), None);
            assert_eq!(super::parse("99999999999TiB"), None);
        }
    }
}
