//! `streamgate-transcoder`: parses flags, sets up logging, loads the config and runs the worker.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use streamgate_config::{ProcessEnv, load_transcoder};

/// StreamGate transcoder: FFmpeg ABR ladder to CMAF (HLS + DASH) in S3.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (`transcoder.toml`).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Load and validate the configuration, print "config ok" or the error, and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_transcoder(&cli.config, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", cli.config.display());
            return ExitCode::FAILURE;
        }
    };
    if cli.check_config {
        println!("config ok");
        return ExitCode::SUCCESS;
    }
    let _tracing =
        match streamgate_telemetry::init_tracing(&config.log, &ProcessEnv, "streamgate-transcoder")
        {
            Ok(t) => t,
            Err(e) => {
                eprintln!("streamgate-transcoder: {e}");
                return ExitCode::FAILURE;
            }
        };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the tokio runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(streamgate_transcoder::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "transcoder failed");
            ExitCode::FAILURE
        }
    }
}
