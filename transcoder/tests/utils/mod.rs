//! Helpers for the transcoder's integration tests: generated clips and package inspection.

#![allow(dead_code, unreachable_pub)]

use std::{path::Path, process::Command};

use streamgate_config::{FfmpegConfig, Rung, default_ladder};

/// Generates a test clip with `ffmpeg` (lavfi `testsrc2`, plus a 440 Hz tone when `audio`).
pub fn make_clip(path: &Path, width: u32, height: u32, seconds: u32, audio: bool) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
    ])
    .arg(format!("testsrc2=size={width}x{height}:rate=30"));
    if audio {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]);
    }
    cmd.args([
        "-t",
        &seconds.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
    ]);
    // libx264 needs even sizes in 4:2:0; odd test sources are written in 4:4:4 instead.
    let pix = if width % 2 == 1 || height % 2 == 1 {
        "yuv444p"
    } else {
        "yuv420p"
    };
    cmd.args(["-pix_fmt", pix]);
    if audio {
        cmd.args(["-c:a", "aac", "-b:a", "64k"]);
    }
    let status = cmd.arg(path).status().expect("ffmpeg runs");
    assert!(status.success(), "generating {}", path.display());
}

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
