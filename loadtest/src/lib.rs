//! `streamgate-loadtest`: measures a StreamGate stack the way operators judge it.
//!
//! - **players** mode: N simulated HLS players against an edge (tokenized master URLs, or a
//!   grant per player from sessions), ramped up over `ramp-up`, each fetching the master
//!   playlist, one rendition (players spread over the renditions), its init segment and its
//!   segments at real-time pace or as fast as possible, for `duration`.
//! - **creators** mode: N concurrent tus uploads of a file to origin, through [`tus::TusClient`]
//!   (shared with the test kit).
//!
//! Both print a progress line every two seconds (stderr) and end with a table (stdout) and a
//! JSON [`Report`] (`--report FILE`): requests/s, Gbit/s, latency p50/p90/p99/p99.9/max per
//! request kind (HDR histograms), time to first segment, errors by status, the `x-cache` mix.
//!
//! ```text
//!  run(config) ─► spawn players (i × ramp-up / N apart) ─► each: play() until the deadline
//!             └─► progress ticker (Live counters)      ─► merge Stats ─► Report
//! ```

pub mod creator;
pub mod player;
pub mod stats;
pub mod tus;

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use bytes::Bytes;
use reqwest::Url;
use stats::Live;
pub use stats::{Kind, Report, Stats};

/// How fast players ask for segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// One segment per segment duration (a watching viewer).
    Realtime,
    /// Back to back (a stress test).
    Max,
}

/// What to run.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Simulated players.
    Players {
        /// Each player's stream source, used round-robin.
        sources: Vec<player::Source>,
        /// Segment pace.
        pace: Pace,
    },
    /// Concurrent tus uploads.
    Creators {
        /// Origin base URL.
        origin: Url,
        /// Session token of the creator.
        session: String,
        /// The file uploaded by each creator.
        data: Bytes,
        /// PATCH size.
        chunk: usize,
    },
}

/// A validated run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Players or creators.
    pub mode: Mode,
    /// How many.
    pub count: usize,
    /// How long the run lasts (players) — creators stop when their upload ends.
    pub duration: Duration,
    /// Players start evenly over this time.
    pub ramp_up: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Progress line on stderr.
    pub progress: bool,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Bad arguments.
    #[error("{0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Runs the load and returns its report.
///
/// # Errors
/// A configuration that cannot run (no sources, zero players).
pub async fn run(config: Config) -> Result<Report, LoadError> {
    if config.count == 0 {
        return Err(LoadError::Config(
            "--players/--creators must be at least 1".into(),
        ));
    }
    let http = reqwest::Client::builder()
        .timeout(config.timeout)
        .pool_max_idle_per_host(config.count.min(20_000))
        .build()?;
    let live = Arc::new(Live::default());
    let started = Instant::now();
    let ticker = config.progress.then(|| {
        let live = live.clone();
        tokio::spawn(async move {
            let mut last = (0u64, 0u64, Instant::now());
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            tick.tick().await;
            loop {
                tick.tick().await;
                let req = live.requests.load(Ordering::Relaxed);
                let bytes = live.bytes.load(Ordering::Relaxed);
                let dt = last.2.elapsed().as_secs_f64();
                eprintln!(
                    "[{:>5.0} s] active {:>6}  {:>8.0} req/s  {:>7.3} Gbit/s  errors {}",
                    started.elapsed().as_secs_f64(),
                    live.active.load(Ordering::Relaxed),
                    (req - last.0) as f64 / dt,
                    (bytes - last.1) as f64 * 8.0 / dt / 1e9,
                    live.errors.load(Ordering::Relaxed),
                );
                last = (req, bytes, Instant::now());
            }
        })
    });
    let mut tasks = tokio::task::JoinSet::new();
    let (mode_name, deadline) = match &config.mode {
        Mode::Players { .. } => ("players", started + config.ramp_up + config.duration),
        Mode::Creators { .. } => ("creators", started + Duration::from_secs(86_400)),
    };
    for i in 0..config.count {
        let at = started + config.ramp_up.mul_f64(i as f64 / config.count as f64);
        let (http, live) = (http.clone(), live.clone());
        match &config.mode {
            Mode::Players { sources, pace } => {
                if sources.is_empty() {
                    return Err(LoadError::Config("no stream source".into()));
                }
                let source = sources[i % sources.len()].clone();
                let pace = *pace;
                tasks.spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    live.active.fetch_add(1, Ordering::Relaxed);
                    let s = player::play(http, source, i, pace, deadline, &live).await;
                    live.active.fetch_sub(1, Ordering::Relaxed);
                    s
                });
            }
            Mode::Creators {
                origin,
                session,
                data,
                chunk,
            } => {
                let (origin, session, data, chunk) =
                    (origin.clone(), session.clone(), data.clone(), *chunk);
                tasks.spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    live.active.fetch_add(1, Ordering::Relaxed);
                    let title = format!("loadtest upload {i}");
                    let (mut s, id) =
                        creator::upload(http, origin, session, data, chunk, title, &live).await;
                    if id.is_none() {
                        s.error("upload_incomplete");
                    }
                    live.active.fetch_sub(1, Ordering::Relaxed);
                    s
                });
            }
        }
    }
    let mut total = Stats::default();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(s) => total.merge(&s),
            Err(e) => {
                tracing::error!(cause = %e, "a simulated client panicked");
                total.error("panic");
            }
        }
    }
    if let Some(t) = ticker {
        t.abort();
    }
    Ok(total.report(mode_name, config.count as u64, started.elapsed()))
}
