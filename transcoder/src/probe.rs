//! ffprobe: what the source is (display size, rotation, duration, frame rate, its audio
//! streams and their languages). A source with audio and no video is an audio-only source.
//!
//! The source is an uploader's file: only local-file reads (`-protocol_whitelist file`) and
//! the video demuxers of [`FFMPEG_FORMATS`] are allowed, so a playlist or list that names
//! other files or URLs fails here with a reason (as it does at origin's probe).

use std::{path::Path, process::Stdio};

use serde::Deserialize;
use streamgate_config::{
    contract::{FFMPEG_FORMATS, refused_format, unaccepted_format},
    lang,
};
use tokio::process::Command;

use crate::Error;

/// What the transcoder needs to know about a source file.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    /// Displayed width (after rotation), pixels.
    pub width: u32,
    /// Displayed height (after rotation), pixels.
    pub height: u32,
    /// Rotation in degrees clockwise, one of 0, 90, 180, 270.
    pub rotation: u32,
    /// Duration in seconds, when the container or stream says.
    pub duration_s: Option<f64>,
    /// Average frame rate, frames per second (30 when unknown).
    pub fps: f64,
    /// Whether there is at least one audio stream.
    pub has_audio: bool,
    /// Whether there is a video stream (cover art does not count). Without one, the source is
    /// audio only and `width`, `height` are 0.
    pub has_video: bool,
    /// The audio streams, in the source's order (at most [`MAX_AUDIO_STREAMS`]).
    pub audio: Vec<AudioStream>,
}

/// Most audio streams of a source that are packaged (more are dropped).
pub const MAX_AUDIO_STREAMS: usize = 8;

/// One audio stream of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioStream {
    /// Its `language` tag as BCP 47 (`fra` → `fr`); `None` when absent or `und`.
    pub language: Option<String>,
    /// Its `title` tag.
    pub title: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ProbeOutput {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    #[serde(default)]
    format: Option<ProbeFormat>,
}

#[derive(Debug, Deserialize)]
struct ProbeFormat {
    duration: Option<String>,
    #[serde(default)]
    tags: Tags,
}

#[derive(Debug, Deserialize)]
struct ProbeStream {
    codec_type: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    disposition: Disposition,
    #[serde(default)]
    tags: Tags,
    #[serde(default)]
    side_data_list: Vec<SideData>,
}

#[derive(Debug, Default, Deserialize)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Debug, Default, Deserialize)]
struct Tags {
    rotate: Option<String>,
    language: Option<String>,
    title: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SideData {
    side_data_type: Option<String>,
    rotation: Option<f64>,
}

/// The message every input without video or audio fails with.
pub(crate) const NO_VIDEO: &str = "no video or audio stream found";

/// Runs `ffprobe` on `path`.
///
/// # Errors
/// [`Error::InvalidInput`] when ffprobe cannot read the file or it has neither a video stream
/// (cover art does not count) nor an audio stream; [`Error::Spawn`] when ffprobe cannot be run.
pub async fn probe(ffprobe: &str, path: &Path) -> Result<SourceInfo, Error> {
    let out = Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-protocol_whitelist",
            "file",
            "-format_whitelist",
            FFMPEG_FORMATS,
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| Error::Spawn {
            program: ffprobe.to_owned(),
            source,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if let Some(demuxer) = refused_format(&stderr) {
            return Err(Error::InvalidInput(format!(
                "{NO_VIDEO} ({})",
                unaccepted_format(demuxer)
            )));
        }
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("unreadable");
        // ffprobe prefixes the message with the file name; keep only the reason.
        let reason = last.rsplit(": ").next().unwrap_or(last).trim();
        return Err(Error::InvalidInput(format!(
            "{NO_VIDEO} (not a media file: {reason})"
        )));
    }
    parse(&out.stdout)
}

/// Interprets ffprobe's JSON.
pub(crate) fn parse(json: &[u8]) -> Result<SourceInfo, Error> {
    let p: ProbeOutput = serde_json::from_slice(json)
        .map_err(|e| Error::InvalidInput(format!("{NO_VIDEO} (unreadable probe output: {e})")))?;
    let audio_streams: Vec<&ProbeStream> = p
        .streams
        .iter()
        .filter(|s| s.codec_type.as_deref() == Some("audio"))
        .take(MAX_AUDIO_STREAMS)
        .collect();
    // MP3 keeps its language in the file's ID3 tags (TLAN), not on the stream: a file with
    // one audio stream lends it its own.
    let file_language = p
        .format
        .as_ref()
        .and_then(|f| f.tags.language.as_deref())
        .filter(|_| audio_streams.len() == 1);
    let audio: Vec<AudioStream> = audio_streams
        .iter()
        .map(|s| AudioStream {
            language: s
                .tags
                .language
                .as_deref()
                .or(file_language)
                .and_then(lang::canonical),
            title: s.tags.title.clone(),
        })
        .collect();
    let has_audio = !audio.is_empty();
    let container_duration = p
        .format
        .as_ref()
        .and_then(|f| parse_f64(f.duration.as_deref()))
        .filter(|d| *d > 0.0);
    let video = p.streams.iter().find(|s| {
        s.codec_type.as_deref() == Some("video")
            && s.disposition.attached_pic == 0
            && s.width.unwrap_or(0) > 0
            && s.height.unwrap_or(0) > 0
    });
    let Some(video) = video else {
        if !has_audio {
            return Err(Error::InvalidInput(NO_VIDEO.to_owned()));
        }
        let first_audio = p
            .streams
            .iter()
            .find(|s| s.codec_type.as_deref() == Some("audio"));
        return Ok(SourceInfo {
            width: 0,
            height: 0,
            rotation: 0,
            duration_s: container_duration.or_else(|| {
                parse_f64(first_audio.and_then(|s| s.duration.as_deref())).filter(|d| *d > 0.0)
            }),
            fps: 30.0,
            has_audio,
            has_video: false,
            audio,
        });
    };
    // Filtered above: both are Some and positive.
    let (w, h) = (video.width.unwrap_or(0), video.height.unwrap_or(0));
    if w < 2 || h < 2 {
        return Err(Error::InvalidInput(format!("video is too small ({w}x{h})")));
    }
    let rotation = rotation(video);
    let (width, height) = if rotation % 180 == 90 { (h, w) } else { (w, h) };
    let duration_s =
        container_duration.or_else(|| parse_f64(video.duration.as_deref()).filter(|d| *d > 0.0));
    let fps = [&video.avg_frame_rate, &video.r_frame_rate]
        .into_iter()
        .filter_map(|r| parse_rate(r.as_deref()?))
        .find(|f| (1.0..=240.0).contains(f))
        .unwrap_or(30.0);
    Ok(SourceInfo {
        width,
        height,
        rotation,
        duration_s,
        fps,
        has_audio,
        has_video: true,
        audio,
    })
}

/// Rotation from the display matrix side data, else the legacy `rotate` tag, as 0/90/180/270.
fn rotation(s: &ProbeStream) -> u32 {
    let from_matrix = s
        .side_data_list
        .iter()
        .find(|d| d.side_data_type.as_deref() == Some("Display Matrix"))
        .and_then(|d| d.rotation);
    let from_tag = || {
        s.tags
            .rotate
            .as_deref()
            .and_then(|r| r.trim().parse::<f64>().ok())
    };
    let deg = from_matrix.or_else(from_tag).unwrap_or(0.0);
    let quarter = (deg / 90.0).round() as i64;
    (quarter.rem_euclid(4) * 90) as u32
}

fn parse_f64(s: Option<&str>) -> Option<f64> {
    s?.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses `30000/1001` or `25`.
fn parse_rate(r: &str) -> Option<f64> {
    match r.split_once('/') {
        Some((n, d)) => {
            let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
            (d != 0.0).then(|| n / d)
        }
        None => r.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(extra: &str) -> String {
        format!(
            r#"{{"streams":[{{"codec_type":"video","width":1920,"height":1080,
            "avg_frame_rate":"30000/1001","r_frame_rate":"30/1"{extra}}},
            {{"codec_type":"audio"}}],"format":{{"duration":"12.5"}}}}"#
        )
    }

    #[test]
    fn landscape() {
        let i = parse(video("").as_bytes()).unwrap();
        assert_eq!((i.width, i.height, i.rotation), (1920, 1080, 0));
        assert!((i.fps - 29.97).abs() < 0.01);
        assert_eq!(i.duration_s, Some(12.5));
        assert!(i.has_audio);
    }

    #[test]
    fn display_matrix_rotation_swaps() {
        let j = video(r#","side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]"#);
        let i = parse(j.as_bytes()).unwrap();
        assert_eq!((i.width, i.height, i.rotation), (1080, 1920, 270));
    }

    #[test]
    fn rotate_tag_swaps() {
        let i = parse(video(r#","tags":{"rotate":"90"}"#).as_bytes()).unwrap();
        assert_eq!((i.width, i.height, i.rotation), (1080, 1920, 90));
        let i = parse(video(r#","tags":{"rotate":"180"}"#).as_bytes()).unwrap();
        assert_eq!((i.width, i.height, i.rotation), (1920, 1080, 180));
    }

    #[test]
    fn audio_only_and_languages() {
        let j = r#"{"streams":[{"codec_type":"audio","tags":{"language":"fre","title":"VF"}},
            {"codec_type":"video","width":600,"height":600,"disposition":{"attached_pic":1}},
            {"codec_type":"audio","tags":{"language":"und"}}],
            "format":{"duration":"3"}}"#;
        let i = parse(j.as_bytes()).unwrap();
        assert!(!i.has_video && i.has_audio);
        assert_eq!((i.width, i.height, i.duration_s), (0, 0, Some(3.0)));
        assert_eq!(
            i.audio,
            [
                AudioStream {
                    language: Some("fr".into()),
                    title: Some("VF".into())
                },
                AudioStream {
                    language: None,
                    title: None
                }
            ]
        );
        let i = parse(video("").as_bytes()).unwrap();
        assert!(i.has_video);
        assert_eq!(i.audio.len(), 1);
    }

    #[test]
    fn no_video() {
        let j = r#"{"streams":[{"codec_type":"data"},
            {"codec_type":"video","width":600,"height":600,"disposition":{"attached_pic":1}}],
            "format":{"duration":"3"}}"#;
        let e = parse(j.as_bytes()).unwrap_err();
        assert!(e.is_permanent());
        assert_eq!(e.to_string(), NO_VIDEO);
        assert!(parse(b"{}").is_err());
        assert!(parse(b"not json").unwrap_err().is_permanent());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("25/1"), Some(25.0));
        assert_eq!(parse_rate("0/0"), None);
        assert_eq!(parse_rate("24"), Some(24.0));
    }
}
