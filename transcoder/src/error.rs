//! The library's error type and how each error is treated by the worker.

use std::{path::PathBuf, time::Duration};

/// Everything that can go wrong while taking, transcoding or publishing a job.
///
/// [`Error::is_permanent`] splits them in two: permanent errors come from the input (it is not
/// a usable video) and end the job with a `failed` event; the others are transient (storage,
/// Redis, local I/O, an interrupted FFmpeg) and leave the job pending so that it is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The source is not a usable video; the message is meant for the creator.
    #[error("{0}")]
    InvalidInput(String),
    /// The uploaded source object does not exist.
    #[error("source object {0} not found")]
    SourceMissing(String),
    /// FFmpeg exited with an error status (it rejected the input or the options).
    #[error("ffmpeg failed ({status}): {stderr}")]
    FfmpegFailed {
        /// Exit status as text.
        status: String,
        /// Last lines of its stderr.
        stderr: String,
    },
    /// FFmpeg was killed by a signal or failed for a reason that may not repeat.
    #[error("ffmpeg interrupted ({status}): {stderr}")]
    FfmpegInterrupted {
        /// Exit status as text.
        status: String,
        /// Last lines of its stderr.
        stderr: String,
    },
    /// FFmpeg ran longer than `ffmpeg.timeout` and was killed.
    #[error("ffmpeg timed out after {0:?}")]
    Timeout(Duration),
    /// FFmpeg's output is not a complete package.
    #[error("bad package: {0}")]
    Package(String),
    /// The package cannot be encrypted as asked (no `[encryption]` keys here, a sample entry
    /// Common Encryption does not cover, an unreadable stored key).
    #[error("encryption: {0}")]
    Encryption(String),
    /// The job was interrupted because the worker is shutting down.
    #[error("interrupted by shutdown")]
    Shutdown,
    /// A local file operation failed.
    #[error("{context} {path}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A child process could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An S3 request failed.
    #[error("s3: {0}")]
    S3(String),
    /// A Redis command failed or timed out.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A Redis command took longer than `redis.command-timeout`.
    #[error("redis command {0} timed out")]
    RedisTimeout(&'static str),
    /// The metrics listener could not be started.
    #[error("metrics listener on {addr}: {source}")]
    Listen {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Prometheus registration failed (a programming error, reported rather than panicking).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl Error {
    /// Whether retrying cannot help: the job should fail now instead of being retried.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Error::InvalidInput(_)
                | Error::SourceMissing(_)
                | Error::FfmpegFailed { .. }
                | Error::Package(_)
                | Error::Encryption(_)
        )
    }

    /// Wraps an I/O error with what was being done and where.
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            context,
            path,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(Error::InvalidInput("no video stream found".into()).is_permanent());
        assert!(Error::SourceMissing("uploads/x/source".into()).is_permanent());
        assert!(!Error::Timeout(Duration::from_secs(1)).is_permanent());
        assert!(!Error::S3("503".into()).is_permanent());
        assert!(!Error::Shutdown.is_permanent());
        assert!(!Error::RedisTimeout("XADD").is_permanent());
    }
}
