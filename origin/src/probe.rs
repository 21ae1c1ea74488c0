//! ffprobe on a finished upload, read straight from S3 through a presigned URL (only the
//! container header is fetched, not the whole file).
//!
//! The upload is the attacker's input: ffprobe may only use the media demuxers of
//! [`FFMPEG_FORMATS`] and only the protocols the presigned read needs (`http,tcp` or
//! `https,tls,tcp`), so an uploaded playlist or list cannot make origin fetch other URLs or
//! read local files: it fails with a reason instead.

use std::{process::Stdio, time::Duration};

use serde::Deserialize;
use streamgate_config::{
    ProbeConfig,
    contract::{FFMPEG_FORMATS, refused_format, unaccepted_format},
};
use tokio::process::Command;

/// What the probe found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Probe {
    /// A file with a video stream, or an audio-only one (podcasts, music).
    Media {
        /// Width and height of the first video stream; `None` for audio only.
        video: Option<(u32, u32)>,
        /// Container duration, when known.
        duration_s: Option<f64>,
        /// Whether an audio stream is present.
        has_audio: bool,
    },
    /// Not something we can transcode; the reason is for the creator.
    Rejected(String),
}

#[derive(Deserialize)]
struct Output {
    #[serde(default)]
    streams: Vec<Stream>,
    #[serde(default)]
    format: Option<Format>,
}

#[derive(Deserialize)]
struct Stream {
    codec_type: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    #[serde(default)]
    disposition: Option<Disposition>,
}

#[derive(Deserialize)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Deserialize)]
struct Format {
    duration: Option<String>,
    format_name: Option<String>,
}

/// Runs ffprobe on `url`. `Err` means the probe itself could not run (a transient failure
/// worth retrying), not that the file is bad.
pub(crate) async fn probe(cfg: &ProbeConfig, url: &str) -> Result<Probe, String> {
    let protocols = if url.starts_with("https://") {
        "https,tls,tcp"
    } else {
        "http,tcp"
    };
    let child = Command::new(&cfg.ffprobe)
        .args([
            "-v",
            "error",
            "-protocol_whitelist",
            protocols,
            "-format_whitelist",
            FFMPEG_FORMATS,
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", cfg.ffprobe))?;
    let out = tokio::time::timeout(cfg.timeout, child.wait_with_output())
        .await
        .map_err(|_| format!("ffprobe timed out after {:?}", cfg.timeout))?
        .map_err(|e| format!("ffprobe failed: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return classify_failure(&stderr);
    }
    Ok(interpret(&out.stdout))
}

/// Tells "ffprobe could not fetch the file" (transient) from "the file is not media".
fn classify_failure(stderr: &str) -> Result<Probe, String> {
    const TRANSIENT: [&str; 6] = [
        "Connection refused",
        "Server returned 5",
        "Server returned 403",
        "Connection timed out",
        "I/O error",
        "Network is unreachable",
    ];
    let line = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if let Some(demuxer) = refused_format(stderr) {
        return Ok(Probe::Rejected(unaccepted_format(demuxer)));
    }
    if TRANSIENT.iter().any(|t| stderr.contains(t)) {
        return Err(format!("ffprobe could not read the upload: {line}"));
    }
    Ok(Probe::Rejected(format!(
        "not a media file: {}",
        line.rsplit(": ").next().unwrap_or("unrecognised format")
    )))
}

fn interpret(stdout: &[u8]) -> Probe {
    let Ok(out) = serde_json::from_slice::<Output>(stdout) else {
        return Probe::Rejected("not a media file: unreadable probe output".into());
    };
    let has_audio = out
        .streams
        .iter()
        .any(|s| s.codec_type.as_deref() == Some("audio"));
    // Cover art (an attached picture) is not video: an MP3 with a cover is audio only.
    let video = out.streams.iter().find(|s| {
        s.codec_type.as_deref() == Some("video")
            && s.disposition.as_ref().is_none_or(|d| d.attached_pic == 0)
    });
    let fmt = out.format.as_ref();
    let duration_s = fmt
        .and_then(|f| f.duration.as_deref())
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0);
    let Some(v) = video else {
        if has_audio {
            return Probe::Media {
                video: None,
                duration_s,
                has_audio,
            };
        }
        return Probe::Rejected("not a media file: no video or audio stream found".into());
    };
    let (Some(width), Some(height)) = (v.width, v.height) else {
        return Probe::Rejected("not a media file: video stream has no size".into());
    };
    if width == 0 || height == 0 {
        return Probe::Rejected("not a media file: video stream has no size".into());
    }
    // Single images parse as a one-frame "video" in image2 demuxers: not a video.
    if fmt
        .and_then(|f| f.format_name.as_deref())
        .is_some_and(|n| n.ends_with("_pipe") || n == "image2")
    {
        return Probe::Rejected("not a media file: a still image".into());
    }
    Probe::Media {
        video: Some((width, height)),
        duration_s,
        has_audio,
    }
}

/// How long presigned probe URLs live.
pub(crate) const PRESIGN_TTL: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_with_and_without_audio() {
        let j = br#"{"streams":[{"codec_type":"video","width":640,"height":360},{"codec_type":"audio"}],"format":{"duration":"6.0","format_name":"mov,mp4,m4a,3gp,3g2,mj2"}}"#;
        assert_eq!(
            interpret(j),
            Probe::Media {
                video: Some((640, 360)),
                duration_s: Some(6.0),
                has_audio: true
            }
        );
        let j = br#"{"streams":[{"codec_type":"video","width":360,"height":640}],"format":{}}"#;
        assert!(matches!(
            interpret(j),
            Probe::Media {
                has_audio: false,
                ..
            }
        ));
    }

    #[test]
    fn audio_only_is_media_and_images_are_rejected() {
        let j = br#"{"streams":[{"codec_type":"audio"},{"codec_type":"video","width":600,"height":600,"disposition":{"attached_pic":1}}],"format":{"format_name":"mp3","duration":"30.5"}}"#;
        assert_eq!(
            interpret(j),
            Probe::Media {
                video: None,
                duration_s: Some(30.5),
                has_audio: true
            }
        );
        let j = br#"{"streams":[{"codec_type":"video","width":10,"height":10}],"format":{"format_name":"png_pipe"}}"#;
        assert!(matches!(interpret(j), Probe::Rejected(r) if r.contains("still image")));
        let j = br#"{"streams":[{"codec_type":"video","width":10,"height":10,"disposition":{"attached_pic":1}}],"format":{}}"#;
        assert!(
            matches!(interpret(j), Probe::Rejected(r) if r.contains("no video or audio stream"))
        );
    }

    #[test]
    fn playlists_are_rejected_with_a_reason() {
        let r = classify_failure(
            "[hls @ 0x55] Format not on whitelist 'mov,matroska'\nhttp://s3/x: Invalid argument\n",
        )
        .unwrap();
        assert!(matches!(r, Probe::Rejected(m) if m.contains("hls input is not accepted")));
    }

    #[test]
    fn failures_are_classified() {
        assert!(classify_failure("http://x: Connection refused\n").is_err());
        let r = classify_failure("/tmp/x: Invalid data found when processing input\n").unwrap();
        assert_eq!(
            r,
            Probe::Rejected("not a media file: Invalid data found when processing input".into())
        );
    }
}
