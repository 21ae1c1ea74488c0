//! `streamgate-proxy`: the edge binary. Parses the command line, loads the config, sets up
//! tracing and hands over to [`streamgate_proxy::run`].
//!
//! ```text
//! streamgate-proxy --config FILE                  run the edge
//! streamgate-proxy --config FILE --check-config   validate the config and exit
//! streamgate-proxy token mint --config FILE --content ID [--ttl 1h] [--subject S] [--ip ADDR]
//! ```

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, error::ErrorKind};
use streamgate_config::{ProcessEnv, ProxyConfig};
use streamgate_proxy::TokenPolicy;

/// StreamGate edge: token-gated HLS/DASH delivery on Pingora.
#[derive(Debug, Parser)]
#[command(name = "streamgate-proxy", version)]
struct Cli {
    /// Path of proxy.toml (keys can be overridden by STREAMGATE__SECTION__KEY variables).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Load and validate the config, print "config ok" and exit (1 on error).
    #[arg(long)]
    check_config: bool,
    /// Graceful upgrade: take the listening sockets from the running edge (which gets SIGQUIT
    /// next) over `server.upgrade-socket` instead of binding them.
    #[arg(long)]
    upgrade: bool,
    /// Fork into the background once configured, writing `server.pid-file` (systemd
    /// `Type=forking`; the log goes to `server.error-log`).
    #[arg(long)]
    daemon: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Playback-token tools for operators.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Mint a playback token with the signing key and print it (only it) on stdout.
    Mint {
        /// Content id the token grants.
        #[arg(long, value_name = "ID")]
        content: String,
        /// Lifetime, e.g. 30m or 2h (default tokens.default-ttl, at most tokens.max-ttl).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
        /// Subject the token is issued to (only its hash is carried).
        #[arg(long, default_value = "operator")]
        subject: String,
        /// Bind the token to this client address's network (tokens.ipv4-prefix / ipv6-prefix).
        #[arg(long, value_name = "ADDR")]
        ip: Option<IpAddr>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(path) = cli.config.as_deref() else {
        Cli::command()
            .error(
                ErrorKind::MissingRequiredArgument,
                "--config FILE is required",
            )
            .exit()
    };
    let config = match streamgate_config::load_proxy(path, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match (&cli.command, cli.check_config) {
        (Some(_), true) => Err(anyhow::anyhow!(
            "--check-config cannot be combined with a subcommand"
        )),
        (None, true) => check(&config),
        (Some(Command::Token { command }), false) => token(&config, command),
        (None, false) => serve(
            path,
            &config,
            streamgate_proxy::RunOptions {
                config_path: Some(path.to_owned()),
                upgrade: cli.upgrade,
                daemon: cli.daemon,
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--check-config`: what loading validated, plus what start-up would build without touching
/// the network (token keys).
fn check(config: &ProxyConfig) -> anyhow::Result<()> {
    streamgate_proxy::check(config)?;
    println!("config ok");
    Ok(())
}

fn token(config: &ProxyConfig, command: &TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Mint {
        content,
        ttl,
        subject,
        ip,
    } = command;
    let policy = TokenPolicy::from_conf(&config.tokens)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock is before 1970")?
        .as_secs();
    let minted = policy.mint(content, subject, *ttl, *ip, now, false)?;
    let expires = UNIX_EPOCH + Duration::from_secs(minted.expires_at);
    eprintln!(
        "token for {content} expires at {}",
        humantime::format_rfc3339_seconds(expires)
    );
    println!("{}", minted.token);
    Ok(())
}

fn serve(
    path: &Path,
    config: &ProxyConfig,
    opts: streamgate_proxy::RunOptions,
) -> anyhow::Result<()> {
    // Held until the process exits (run_forever does not return).
    let _tracing = streamgate_telemetry::init_tracing(&config.log, &ProcessEnv, "streamgate-proxy")
        .map_err(anyhow::Error::msg)?;
    tracing::info!(
        config = %path.display(),
        upgrade = opts.upgrade,
        daemon = opts.daemon,
        "config loaded"
    );
    match streamgate_proxy::run(config, &opts)? {}
}
