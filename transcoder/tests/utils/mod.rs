//! Helpers for the transcoder's integration tests: FFmpeg settings, a small ladder and package
//! inspection (clips come from `streamgate-testkit`).

#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use streamgate_config::{FfmpegConfig, Rung, default_ladder};

/// FFmpeg settings for tests: fast preset, 2-second segments.
pub fn ffmpeg_config() -> FfmpegConfig {
    FfmpegConfig {
        preset: "ultrafast".into(),
        segment_seconds: 2,
        ..FfmpegConfig::default()
    }
}

/// A small ladder so tests stay quick: 180p and 360p below the default rungs.
pub fn small_ladder() -> Vec<Rung> {
    let mut l = vec![Rung {
        name: "180p".into(),
        height: 180,
        video_bitrate_kbps: 300,
    }];
    l.extend(default_ladder());
    l
}

/// Reads a text file of the package.
pub fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}
