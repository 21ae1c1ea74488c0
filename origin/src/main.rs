//! `streamgate-origin`: parses the command line, sets up logging, loads the config and runs.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use streamgate_config::ProcessEnv;

/// StreamGate origin API.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML); `STREAMGATE__SECTION__KEY` variables override it.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Load and validate the configuration, then exit.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Rebuild the creators' content index in Redis from the catalog in S3 (after Redis lost
    /// it), then exit. Safe while origins run; a content written during the rebuild is indexed
    /// by its own write.
    Reindex,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match streamgate_config::load_origin(&cli.config, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("streamgate-origin: {e}");
            return ExitCode::FAILURE;
        }
    };
    if cli.check_config {
        println!("config ok");
        return ExitCode::SUCCESS;
    }
    let _tracing =
        match streamgate_telemetry::init_tracing(&cfg.log, &ProcessEnv, "streamgate-origin") {
            Ok(t) => t,
            Err(e) => {
                eprintln!("streamgate-origin: {e}");
                return ExitCode::FAILURE;
            }
        };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("streamgate-origin: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Reindex) = cli.command {
        return match rt.block_on(streamgate_origin::reindex(cfg)) {
            Ok(n) => {
                println!("reindexed {n} contents");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("streamgate-origin: reindex: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match rt.block_on(streamgate_origin::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(cause = %e, "origin failed");
            ExitCode::FAILURE
        }
    }
}
