//! `streamgate-loadtest`: the command line over [`streamgate_loadtest::run`].
//!
//! ```text
//! streamgate-loadtest players --url URL [--url URL …|--urls-file F] [--players N]
//!     [--duration 60s] [--ramp-up 10s] [--pace realtime|max] [--report out.json]
//! streamgate-loadtest players --edge URL --content ID --sessions-file F …   (a grant each)
//! streamgate-loadtest creators --origin URL --session-file F --file clip.mp4 [--creators N]
//! ```

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};
use reqwest::Url;
use streamgate_loadtest::{Config, Mode, Pace, player::Source};

#[derive(Parser)]
#[command(name = "streamgate-loadtest", about = "Simulated players and creators")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Write the JSON report here.
    #[arg(long, global = true)]
    report: Option<PathBuf>,
    /// Per-request timeout.
    #[arg(long, global = true, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// No progress line.
    #[arg(long, global = true)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum PaceArg {
    Realtime,
    Max,
}

#[derive(Subcommand)]
enum Command {
    /// Simulated HLS players against an edge.
    Players {
        /// Tokenized master playlist URL (repeatable).
        #[arg(long = "url")]
        urls: Vec<Url>,
        /// File of tokenized master URLs, one a line.
        #[arg(long)]
        urls_file: Option<PathBuf>,
        /// Edge base URL, for grants.
        #[arg(long)]
        edge: Option<Url>,
        /// Content to ask a grant for.
        #[arg(long)]
        content: Option<String>,
        /// Session tokens, one a line (a player per session, round-robin).
        #[arg(long)]
        sessions_file: Option<PathBuf>,
        /// Players.
        #[arg(long, default_value_t = 100)]
        players: usize,
        /// Run time after the ramp-up.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Players start evenly over this time.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        ramp_up: Duration,
        /// Segment pace.
        #[arg(long, value_enum, default_value = "realtime")]
        pace: PaceArg,
    },
    /// Concurrent tus uploads to origin.
    Creators {
        /// Origin base URL.
        #[arg(long)]
        origin: Url,
        /// File holding the creator's session token.
        #[arg(long)]
        session_file: PathBuf,
        /// The file each creator uploads.
        #[arg(long)]
        file: PathBuf,
        /// Creators.
        #[arg(long, default_value_t = 4)]
        creators: usize,
        /// PATCH size in bytes.
        #[arg(long, default_value_t = 8 << 20)]
        chunk: usize,
        /// Creators start evenly over this time.
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        ramp_up: Duration,
    },
}

fn read(path: &PathBuf, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

fn config(cli: &Cli) -> Result<Config, String> {
    match &cli.command {
        Command::Players {
            urls,
            urls_file,
            edge,
            content,
            sessions_file,
            players,
            duration,
            ramp_up,
            pace,
        } => {
            let mut sources: Vec<Source> = urls.iter().cloned().map(Source::Url).collect();
            if let Some(f) = urls_file {
                for (i, line) in read(f, "--urls-file")?.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() {
                        continue;
                    }
                    let url =
                        Url::parse(line).map_err(|e| format!("--urls-file line {}: {e}", i + 1))?;
                    sources.push(Source::Url(url));
                }
            }
            match (edge, content, sessions_file) {
                (Some(edge), Some(content), Some(f)) => {
                    for s in read(f, "--sessions-file")?.lines().map(str::trim) {
                        if !s.is_empty() {
                            sources.push(Source::Grant {
                                edge: edge.clone(),
                                content: content.clone(),
                                session: s.to_owned(),
                            });
                        }
                    }
                }
                (None, None, None) => {}
                _ => return Err("--edge, --content and --sessions-file go together".into()),
            }
            if sources.is_empty() {
                return Err(
                    "no stream: give --url, --urls-file, or --edge/--content/--sessions-file"
                        .into(),
                );
            }
            Ok(Config {
                mode: Mode::Players {
                    sources,
                    pace: match pace {
                        PaceArg::Realtime => Pace::Realtime,
                        PaceArg::Max => Pace::Max,
                    },
                },
                count: *players,
                duration: *duration,
                ramp_up: *ramp_up,
                timeout: cli.timeout,
                progress: !cli.quiet,
            })
        }
        Command::Creators {
            origin,
            session_file,
            file,
            creators,
            chunk,
            ramp_up,
        } => {
            let data =
                std::fs::read(file).map_err(|e| format!("--file {}: {e}", file.display()))?;
            if data.is_empty() {
                return Err(format!("--file {}: empty", file.display()));
            }
            Ok(Config {
                mode: Mode::Creators {
                    origin: origin.clone(),
                    session: read(session_file, "--session-file")?.trim().to_owned(),
                    data: data.into(),
                    chunk: *chunk,
                },
                count: *creators,
                duration: Duration::ZERO,
                ramp_up: *ramp_up,
                timeout: cli.timeout,
                progress: !cli.quiet,
            })
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("streamgate-loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match streamgate_loadtest::run(config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("streamgate-loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.table());
    if let Some(path) = &cli.report {
        let json = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(e) = std::fs::write(path, json) {
            eprintln!("streamgate-loadtest: --report {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
