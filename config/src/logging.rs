//! Logging set-up shared by every binary: `tracing` with the `[log]` section's format and
//! filter (`RUST_LOG` wins when set and not blank), `log` records (Pingora's) bridged in.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::{Env, LogConfig, LogFormat};

/// Installs the global subscriber, writing to stderr. Call once, from `main`.
///
/// # Errors
/// The filter does not parse (the message names it), or a subscriber is already installed.
pub fn init_tracing(log: &LogConfig, env: &dyn Env) -> Result<(), String> {
    let directive = log.effective_filter(env);
    let filter = EnvFilter::try_new(&directive)
        .map_err(|e| format!("log filter (RUST_LOG or log.filter) = {directive:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let r = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    r.map_err(|e| format!("cannot install the tracing subscriber: {e}"))
}
