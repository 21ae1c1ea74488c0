//! StreamGate transcoder: a worker that takes jobs from the Redis stream `sg:jobs`, runs FFmpeg
//! once per job (one decode, an ABR ladder, CMAF segments shared by HLS and DASH), publishes the
//! package to S3 under `media/{content_id}/` and reports on `sg:events`.
//!
//! # Layout
//! - [`run`] / [`run_until`]: the service (worker loop plus the metrics listener).
//! - `worker`: one job from claim to acknowledgement; `queue`: the Redis stream commands.
//! - [`transcode`]: the local pipeline, source file → verified package directory
//!   (`probe` → [`plan`] → `ffmpeg` → `package`, with `manifest` for the playlist text work,
//!   `artwork` for the poster, thumbnail sheets and storyboard made by the same FFmpeg run,
//!   and `iframes` for the HLS I-frame playlists read from the segments).
//! - `storage`: source download and ordered package upload; [`s3`]: the S3 client.
//! - `metrics`: Prometheus counters and `/metrics`, `/healthz`.
//!
//! The binary (`src/main.rs`) only parses flags, sets up logging and calls [`run`]. The
//! integration tests in `tests/` run [`transcode`] on generated clips.

mod artwork;
mod audio;
mod bmff;
mod cenc;
mod error;
mod ffmpeg;
mod iframes;
mod ladder;
mod manifest;
mod metrics;
mod package;
mod probe;
mod queue;
pub mod s3;
mod storage;
mod worker;

use std::sync::Arc;

use streamgate_config::TranscoderConfig;
use tokio::{net::TcpListener, sync::watch};

pub use error::Error;
pub use ladder::{Variant, plan};
pub use manifest::{MasterVariant, extinf_total, master_variants, playlist_uris};
pub use package::{Encrypt, Package, Phases, transcode, transcode_with};
pub use probe::{AudioStream, MAX_AUDIO_STREAMS, SourceInfo, probe};

/// Runs the transcoder until SIGTERM or ctrl-c.
///
/// # Errors
/// Only start-up errors: the metrics listener cannot bind, or Redis settings are unusable.
/// Outages of Redis and S3 at run time are retried, not returned.
pub async fn run(config: TranscoderConfig) -> Result<(), Error> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        let _ = tx.send(true);
    });
    run_until(config, rx).await
}

/// Runs the transcoder until `shutdown` turns true (tests drive it this way).
///
/// # Errors
/// As [`run`].
pub async fn run_until(
    config: TranscoderConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(), Error> {
    let metrics = Arc::new(metrics::Metrics::new()?);
    let addr = config.metrics.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %local, "metrics listening");
    let server = tokio::spawn(metrics::serve(listener, metrics.clone(), shutdown.clone()));

    let s3 = s3::client(&config.s3);
    if config.s3.create_bucket
        && let Err(e) = s3::ensure_bucket(&s3, &config.s3.bucket).await
    {
        tracing::warn!(error = %e, "cannot ensure bucket exists");
    }
    let consumer = queue::consumer_name(&config.worker.name);
    let queue = queue::Queue::new(&config.redis, &config.worker, consumer.clone())?;
    tracing::info!(
        consumer,
        bucket = config.s3.bucket,
        rungs = config.ladder.len(),
        "transcoder started"
    );
    // Validated at load (32-byte keys, wrapping key listed), so this cannot fail in practice;
    // if it did, encrypted jobs fail with the reason rather than the process.
    let wrapper = config.encryption.as_ref().and_then(|e| {
        streamgate_auth::KeyWrapper::new(&e.wrapping_key, &e.key_bytes())
            .inspect_err(|err| tracing::error!(error = %err, "[encryption] unusable"))
            .ok()
            .map(Arc::new)
    });
    let worker = worker::Worker {
        wrapper,
        cfg: Arc::new(config),
        queue,
        s3,
        metrics,
    };
    worker.run(shutdown).await;
    let _ = server.await;
    tracing::info!("transcoder stopped");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGTERM"),
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for ctrl-c; running until killed");
        std::future::pending::<()>().await;
    }
}
