//! `transcoder.toml`: the FFmpeg worker.

use std::{net::SocketAddr, time::Duration};

use serde::Deserialize;

use crate::{
    ConfigError, EncryptionConfig, EncryptionSection, Env, LogConfig, RedisConfig, S3Config,
    S3Section,
    common::{duration, positive},
};

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TranscoderFile {
    /// `[worker]`.
    #[serde(default)]
    pub worker: WorkerConfig,
    /// `[metrics]`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// `[s3]`.
    pub s3: S3Section,
    /// `[redis]`.
    pub redis: RedisConfig,
    /// `[ffmpeg]`.
    #[serde(default)]
    pub ffmpeg: FfmpegConfig,
    /// `[[ladder]]`: the ABR rungs, before capping at the source's size.
    #[serde(default = "default_ladder")]
    pub ladder: Vec<Rung>,
    /// `[log]`.
    #[serde(default)]
    pub log: LogConfig,
    /// `[encryption]`: the key-encryption keys for encrypted contents (without it, jobs that
    /// ask for encryption fail with a reason).
    #[serde(default)]
    pub encryption: Option<EncryptionSection>,
}

/// `[worker]`: how jobs are taken from `sg:jobs`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WorkerConfig {
    /// Consumer name in the group; empty means `hostname-pid`.
    #[serde(default)]
    pub name: String,
    /// Deliveries of one job before it goes to the dead-letter stream and fails.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// A job pending this long without a heartbeat is taken over by another worker.
    #[serde(default = "default_reclaim_idle", with = "duration")]
    pub reclaim_idle: Duration,
    /// How often a busy worker refreshes its claim (must be well under `reclaim-idle`).
    #[serde(default = "default_heartbeat", with = "duration")]
    pub heartbeat: Duration,
    /// How long one `XREADGROUP` blocks.
    #[serde(default = "default_block", with = "duration")]
    pub block: Duration,
    /// Scratch directory for sources and outputs; empty means the system temp dir.
    #[serde(default)]
    pub work_dir: String,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsConfig {
    /// Prometheus listener (`/metrics`, `/healthz`).
    #[serde(default = "default_metrics_listen")]
    pub listen: SocketAddr,
}

/// `[ffmpeg]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FfmpegConfig {
    /// ffmpeg binary.
    #[serde(default = "default_ffmpeg")]
    pub ffmpeg: String,
    /// ffprobe binary.
    #[serde(default = "default_ffprobe")]
    pub ffprobe: String,
    /// x264 preset.
    #[serde(default = "default_preset")]
    pub preset: String,
    /// Segment duration in whole seconds; keyframes are forced on this grid.
    #[serde(default = "default_segment_seconds")]
    pub segment_seconds: u32,
    /// AAC bitrate.
    #[serde(default = "default_audio_kbps")]
    pub audio_bitrate_kbps: u32,
    /// Longest a single FFmpeg run may take.
    #[serde(default = "default_ffmpeg_timeout", with = "duration")]
    pub timeout: Duration,
}

/// One `[[ladder]]` rung.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rung {
    /// Name, also the folder of the rendition (`720p`).
    pub name: String,
    /// Size of the short side (height for landscape, width for portrait).
    pub height: u32,
    /// H.264 average bitrate.
    pub video_bitrate_kbps: u32,
}

/// The transcoder's validated configuration.
#[derive(Debug, Clone)]
pub struct TranscoderConfig {
    /// `[worker]`.
    pub worker: WorkerConfig,
    /// `[metrics]`.
    pub metrics: MetricsConfig,
    /// `[s3]`, secrets resolved.
    pub s3: S3Config,
    /// `[redis]`.
    pub redis: RedisConfig,
    /// `[ffmpeg]`.
    pub ffmpeg: FfmpegConfig,
    /// Ladder, sorted by size ascending.
    pub ladder: Vec<Rung>,
    /// `[log]`.
    pub log: LogConfig,
    /// `[encryption]`, keys resolved.
    pub encryption: Option<EncryptionConfig>,
}

impl TranscoderFile {
    pub(crate) fn resolve(mut self, env: &dyn Env) -> Result<TranscoderConfig, ConfigError> {
        self.log.validate()?;
        self.redis.validate()?;
        let w = &self.worker;
        if w.max_attempts == 0 || w.max_attempts > 100 {
            return Err(ConfigError::invalid(
                "worker.max-attempts",
                w.max_attempts,
                "must be between 1 and 100",
            ));
        }
        positive("worker.reclaim-idle", w.reclaim_idle)?;
        positive("worker.block", w.block)?;
        if w.heartbeat.is_zero() || w.heartbeat * 2 > w.reclaim_idle {
            return Err(ConfigError::invalid(
                "worker.heartbeat",
                humantime::format_duration(w.heartbeat),
                "must be positive and at most half of worker.reclaim-idle",
            ));
        }
        let f = &self.ffmpeg;
        if !(1..=30).contains(&f.segment_seconds) {
            return Err(ConfigError::invalid(
                "ffmpeg.segment-seconds",
                f.segment_seconds,
                "must be between 1 and 30",
            ));
        }
        const PRESETS: [&str; 9] = [
            "ultrafast",
            "superfast",
            "veryfast",
            "faster",
            "fast",
            "medium",
            "slow",
            "slower",
            "veryslow",
        ];
        if !PRESETS.contains(&f.preset.as_str()) {
            return Err(ConfigError::invalid(
                "ffmpeg.preset",
                format!("{:?}", f.preset),
                "must be an x264 preset (ultrafast … veryslow)",
            ));
        }
        positive("ffmpeg.timeout", f.timeout)?;
        if self.ladder.is_empty() {
            return Err(ConfigError::invalid(
                "ladder",
                "[]",
                "at least one rung is needed",
            ));
        }
        for (i, r) in self.ladder.iter().enumerate() {
            if r.name.is_empty()
                || !r
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(ConfigError::invalid(
                    &format!("ladder[{i}].name"),
                    format!("{:?}", r.name),
                    "must be non-empty A-Z a-z 0-9 _ -",
                ));
            }
            if !(64..=4320).contains(&r.height) {
                return Err(ConfigError::invalid(
                    &format!("ladder[{i}].height"),
                    r.height,
                    "must be between 64 and 4320",
                ));
            }
            if !(50..=100_000).contains(&r.video_bitrate_kbps) {
                return Err(ConfigError::invalid(
                    &format!("ladder[{i}].video-bitrate-kbps"),
                    r.video_bitrate_kbps,
                    "must be between 50 and 100000",
                ));
            }
            if self.ladder[..i]
                .iter()
                .any(|o| o.name == r.name || o.height == r.height)
            {
                return Err(ConfigError::invalid(
                    &format!("ladder[{i}]"),
                    format!("{:?}", r.name),
                    "duplicate rung name or height",
                ));
            }
        }
        self.ladder.sort_by_key(|r| r.height);
        Ok(TranscoderConfig {
            s3: self.s3.resolve(env)?,
            worker: self.worker,
            metrics: self.metrics,
            redis: self.redis,
            ffmpeg: self.ffmpeg,
            ladder: self.ladder,
            log: self.log,
            encryption: self.encryption.map(|e| e.resolve(env)).transpose()?,
        })
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            max_attempts: default_attempts(),
            reclaim_idle: default_reclaim_idle(),
            heartbeat: default_heartbeat(),
            block: default_block(),
            work_dir: String::new(),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: default_metrics_listen(),
        }
    }
}

impl Default for FfmpegConfig {
    fn default() -> Self {
        Self {
            ffmpeg: default_ffmpeg(),
            ffprobe: default_ffprobe(),
            preset: default_preset(),
            segment_seconds: default_segment_seconds(),
            audio_bitrate_kbps: default_audio_kbps(),
            timeout: default_ffmpeg_timeout(),
        }
    }
}

/// The default ladder: 360p, 540p, 720p.
pub fn default_ladder() -> Vec<Rung> {
    [("360p", 360, 800), ("540p", 540, 1800), ("720p", 720, 3000)]
        .into_iter()
        .map(|(n, h, b)| Rung {
            name: n.into(),
            height: h,
            video_bitrate_kbps: b,
        })
        .collect()
}

fn default_attempts() -> u32 {
    3
}
fn default_reclaim_idle() -> Duration {
    Duration::from_secs(60)
}
fn default_heartbeat() -> Duration {
    Duration::from_secs(15)
}
fn default_block() -> Duration {
    Duration::from_secs(5)
}
fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9181))
}
fn default_ffmpeg() -> String {
    "ffmpeg".into()
}
fn default_ffprobe() -> String {
    "ffprobe".into()
}
fn default_preset() -> String {
    "veryfast".into()
}
fn default_segment_seconds() -> u32 {
    4
}
fn default_audio_kbps() -> u32 {
    128
}
fn default_ffmpeg_timeout() -> Duration {
    Duration::from_secs(3600)
}
