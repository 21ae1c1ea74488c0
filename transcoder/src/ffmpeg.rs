//! One FFmpeg run per job: a single decode split into every rung, CMAF out of the `dash` muxer
//! with HLS playlists alongside.
//!
//! ```text
//! source ─ decode ─ split ─┬─ scale 360p ─ x264 ─┐
//!                          ├─ scale 540p ─ x264 ─┼─ dash muxer ─ manifest.mpd, master.m3u8,
//!                          ├─ scale 720p ─ x264 ─┤               media_N.m3u8, N/init.mp4,
//!   each audio stream ─ aac stereo 48 kHz ───────┘               N/seg-00001.m4s …
//!     (with its language; an audio-only source: its first stream at every rate of its ladder)
//!                          ├─ thumbnails ─ mjpeg ─ thumbs/t-NNNNN.jpg (tiled into sheets after)
//!                          └─ poster frame ──── mjpeg ─ poster.jpg      (see `artwork`)
//! ```
//!
//! FFmpeg 5.1 names representation folders only by `$RepresentationID$` (the output stream
//! index, `0`, `1`, …) and does not create them, so they are made beforehand; `package.rs` then
//! renames them after the rungs.

use std::{collections::VecDeque, path::Path, process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
    sync::watch,
};

use crate::{Error, Variant, artwork, audio::AudioOut};

/// File name of the DASH manifest FFmpeg writes.
pub(crate) const MPD: &str = "manifest.mpd";
/// File name of the HLS master playlist FFmpeg writes.
pub(crate) const MASTER: &str = "master.m3u8";
/// Lines of stderr kept for error messages.
const STDERR_LINES: usize = 20;

/// Everything that decides the FFmpeg command line.
#[derive(Debug, Clone)]
pub(crate) struct EncodePlan<'a> {
    /// Video rungs (none for an audio-only source).
    pub(crate) variants: &'a [Variant],
    /// Audio outputs, after the rungs in stream order.
    pub(crate) audio: &'a [AudioOut],
    pub(crate) fps: f64,
    pub(crate) segment_seconds: u32,
    pub(crate) preset: &'a str,
    /// Poster and thumbnail sheets from the same decode.
    pub(crate) artwork: Option<artwork::Plan>,
}

impl EncodePlan<'_> {
    /// Number of output streams (representations): every rung, then every audio output.
    pub(crate) fn stream_count(&self) -> usize {
        self.variants.len() + self.audio.len()
    }

    /// The FFmpeg arguments (without the program name), writing into `out_dir`.
    pub(crate) fn args(&self, input: &Path, out_dir: &Path) -> Vec<String> {
        let n = self.variants.len();
        let seg = self.segment_seconds;
        let gop = ((self.fps * f64::from(seg)).round() as u32).max(1);
        let mut a: Vec<String> = [
            "-hide_banner",
            "-nostdin",
            "-y",
            "-loglevel",
            "warning",
            "-nostats",
            "-progress",
            "pipe:1",
        ]
        .map(String::from)
        .to_vec();
        // The input is an uploader's file: local reads and video demuxers only (no playlist,
        // list or protocol that would open something the uploader names).
        a.extend([
            "-protocol_whitelist".into(),
            "file".into(),
            "-format_whitelist".into(),
            streamgate_config::contract::FFMPEG_FORMATS.into(),
        ]);
        a.push("-i".into());
        a.push(input.to_string_lossy().into_owned());
        if n > 0 {
            self.video_args(&mut a);
        }
        for out in self.audio {
            a.extend(["-map".into(), format!("0:a:{}", out.source)]);
        }
        a.extend(["-map_metadata".into(), "-1".into()]);
        if n > 0 {
            self.video_codec_args(&mut a, gop);
        }
        if !self.audio.is_empty() {
            a.extend(["-c:a", "aac", "-ac", "2", "-ar", "48000"].map(String::from));
            for (j, out) in self.audio.iter().enumerate() {
                a.extend([format!("-b:a:{j}"), format!("{}k", out.kbps)]);
                if let Some(lang) = &out.language {
                    a.extend([format!("-metadata:s:a:{j}"), format!("language={lang}")]);
                }
            }
        }
        // Video: one set. Audio of a video: one set per output (each its own language).
        // Audio only: one set, the ladder.
        let mut sets = Vec::new();
        if n > 0 {
            sets.push("id=0,streams=v".to_owned());
            for j in 0..self.audio.len() {
                sets.push(format!("id={},streams={}", j + 1, n + j));
            }
        } else if !self.audio.is_empty() {
            // Audio only: the first stream's ladder, then each other language on its own.
            let ladder: Vec<String> = (0..self.audio.len())
                .filter(|&j| self.audio[j].source == 0)
                .map(|j| j.to_string())
                .collect();
            sets.push(format!("id=0,streams={}", ladder.join(",")));
            for (j, out) in self.audio.iter().enumerate() {
                if out.source != 0 {
                    sets.push(format!("id={},streams={j}", sets.len()));
                }
            }
        }
        let sets = sets.join(" ");
        a.extend([
            "-f".into(),
            "dash".into(),
            "-seg_duration".into(),
            seg.to_string(),
        ]);
        a.extend(
            [
                "-use_template",
                "1",
                "-use_timeline",
                "0",
                "-hls_playlist",
                "1",
            ]
            .map(String::from),
        );
        a.extend([
            "-hls_master_name".into(),
            MASTER.into(),
            "-adaptation_sets".into(),
            sets,
        ]);
        a.extend([
            "-init_seg_name".into(),
            "$RepresentationID$/init.mp4".into(),
        ]);
        a.extend([
            "-media_seg_name".into(),
            "$RepresentationID$/seg-$Number%05d$.m4s".into(),
        ]);
        a.push(out_dir.join(MPD).to_string_lossy().into_owned());
        if let Some(art) = &self.artwork {
            a.extend(art.outputs(out_dir));
        }
        a
    }

    /// The filter graph splitting one decode into the rungs (and the artwork branches), and
    /// the maps of the scaled outputs.
    fn video_args(&self, a: &mut Vec<String>) {
        let n = self.variants.len();
        let branches = n + if self.artwork.is_some() { 2 } else { 0 };
        let mut graph = format!("[0:v:0]split={branches}");
        for i in 0..branches {
            graph.push_str(&format!("[s{i}]"));
        }
        for (i, v) in self.variants.iter().enumerate() {
            graph.push_str(&format!(
                ";[s{i}]scale=w={}:h={},setsar=1[v{i}]",
                v.width, v.height
            ));
        }
        if let Some(art) = &self.artwork {
            graph.push_str(&art.filters(&format!("s{n}"), &format!("s{}", n + 1)));
        }
        a.extend(["-filter_complex".into(), graph]);
        for i in 0..n {
            a.extend(["-map".into(), format!("[v{i}]")]);
        }
    }

    /// x264 for every rung: key frames on the segment grid, per-rung rate control.
    fn video_codec_args(&self, a: &mut Vec<String>, gop: u32) {
        let seg = self.segment_seconds;
        a.extend(["-c:v", "libx264", "-pix_fmt", "yuv420p"].map(String::from));
        a.extend(["-preset".into(), self.preset.into()]);
        a.extend([
            "-sc_threshold".into(),
            "0".into(),
            "-g".into(),
            gop.to_string(),
        ]);
        a.extend(["-keyint_min".into(), gop.to_string()]);
        a.extend([
            "-force_key_frames".into(),
            format!("expr:gte(t,n_forced*{seg})"),
        ]);
        for (i, v) in self.variants.iter().enumerate() {
            let k = v.video_kbps;
            let profile = if v.width.min(v.height) <= 360 {
                "main"
            } else {
                "high"
            };
            a.extend([format!("-profile:v:{i}"), profile.into()]);
            a.extend([format!("-b:v:{i}"), format!("{k}k")]);
            a.extend([format!("-maxrate:v:{i}"), format!("{}k", k * 11 / 10)]);
            a.extend([format!("-bufsize:v:{i}"), format!("{}k", k * 2)]);
        }
    }
}

/// How one FFmpeg run is supervised.
pub(crate) struct Supervision<'a> {
    pub(crate) program: &'a str,
    pub(crate) timeout: Duration,
    /// Probed duration, for percentages; no progress is reported without it.
    pub(crate) duration_s: Option<f64>,
    pub(crate) progress: &'a (dyn Fn(f32) + Send + Sync),
    pub(crate) cancel: watch::Receiver<bool>,
}

/// Runs FFmpeg with `args`, reporting progress, killing it on timeout or cancellation.
///
/// # Errors
/// [`Error::FfmpegFailed`] on an error exit (permanent unless the disk is full),
/// [`Error::FfmpegInterrupted`] when killed by a signal, [`Error::Timeout`], [`Error::Shutdown`].
pub(crate) async fn run(sup: Supervision<'_>, args: &[String]) -> Result<(), Error> {
    let mut child = Command::new(sup.program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Spawn {
            program: sup.program.to_owned(),
            source,
        })?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Error::FfmpegInterrupted {
            status: "no pipes".into(),
            stderr: String::new(),
        });
    };
    let tail = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut tail = VecDeque::with_capacity(STDERR_LINES);
        while let Ok(Some(line)) = lines.next_line().await {
            if tail.len() == STDERR_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        Vec::from(tail).join("\n")
    });
    let mut out = BufReader::new(stdout).lines();
    let mut cancel = sup.cancel;
    let deadline = tokio::time::sleep(sup.timeout);
    tokio::pin!(deadline);
    let mut stdout_open = true;
    let status = loop {
        tokio::select! {
            line = out.next_line(), if stdout_open => match line {
                Ok(Some(line)) => {
                    if let (Some(t), Some(total)) = (parse_progress(&line), sup.duration_s) {
                        (sup.progress)(percent(t, total));
                    }
                }
                _ => stdout_open = false,
            },
            status = child.wait() => break status.map_err(Error::io("waiting for", sup.program))?,
            () = &mut deadline => {
                let _ = child.kill().await;
                return Err(Error::Timeout(sup.timeout));
            }
            true = async { cancel.wait_for(|stop| *stop).await.is_ok() } => {
                let _ = child.kill().await;
                return Err(Error::Shutdown);
            }
        }
    };
    let stderr = tail.await.unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let status_text = status.to_string();
    if status.code().is_none() || stderr.contains("No space left on device") {
        Err(Error::FfmpegInterrupted {
            status: status_text,
            stderr,
        })
    } else {
        Err(Error::FfmpegFailed {
            status: status_text,
            stderr,
        })
    }
}

/// Output time from one `-progress` line, in seconds.
///
/// FFmpeg (up to 6.x) writes microseconds under both `out_time_us` and `out_time_ms`.
pub(crate) fn parse_progress(line: &str) -> Option<f64> {
    let (key, value) = line.trim().split_once('=')?;
    if key != "out_time_us" && key != "out_time_ms" {
        return None;
    }
    let us: i64 = value.trim().parse().ok()?;
    (us >= 0).then(|| us as f64 / 1e6)
}

/// `t` of `total` seconds as a percentage in 0..=100.
pub(crate) fn percent(t: f64, total: f64) -> f32 {
    if total <= 0.0 {
        return 0.0;
    }
    ((t / total) * 100.0).clamp(0.0, 100.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(name: &str, width: u32, height: u32, video_kbps: u32) -> Variant {
        Variant {
            name: name.into(),
            width,
            height,
            video_kbps,
        }
    }

    fn joined(plan: &EncodePlan<'_>) -> String {
        plan.args(Path::new("/w/source"), Path::new("/w/out"))
            .join(" ")
    }

    #[test]
    fn args_for_two_rungs_with_audio() {
        let v = [
            variant("360p", 640, 360, 800),
            variant("720p", 1280, 720, 3000),
        ];
        let audio = [
            audio_out(0, 128, "audio", Some("en")),
            audio_out(1, 128, "audio-fr", Some("fr")),
        ];
        let plan = EncodePlan {
            variants: &v,
            audio: &audio,
            fps: 29.97,
            segment_seconds: 4,
            preset: "veryfast",
            artwork: artwork::Plan::new(&v, Some(20.0), 29.97),
        };
        let a = joined(&plan);
        assert_eq!(plan.stream_count(), 4);
        assert!(a.contains("-i /w/source"), "{a}");
        // The uploader's file is opened as a local video container, nothing else.
        assert!(
            a.contains(&format!(
                "-protocol_whitelist file -format_whitelist {} -i /w/source",
                streamgate_config::contract::FFMPEG_FORMATS
            )),
            "{a}"
        );
        assert!(a.contains(
            "[0:v:0]split=4[s0][s1][s2][s3];[s0]scale=w=640:h=360,setsar=1[v0];[s1]scale=w=1280:h=720,setsar=1[v1];[s2]fps=1/1,"
        ), "{a}");
        assert!(a.contains("-map [v0] -map [v1] -map 0:a:0 -map 0:a:1 -map_metadata -1"));
        assert!(a.contains("-b:v:1 3000k -maxrate:v:1 3300k -bufsize:v:1 6000k"));
        assert!(a.contains("-profile:v:0 main") && a.contains("-profile:v:1 high"));
        assert!(a.contains("-g 120 -keyint_min 120"));
        assert!(a.contains("-force_key_frames expr:gte(t,n_forced*4)"));
        assert!(a.contains(
            "-c:a aac -ac 2 -ar 48000 -b:a:0 128k -metadata:s:a:0 language=en -b:a:1 128k -metadata:s:a:1 language=fr"
        ), "{a}");
        assert!(a.contains("-adaptation_sets id=0,streams=v id=1,streams=2 id=2,streams=3"));
        assert!(a.contains("-seg_duration 4"));
        assert!(a.contains("-preset veryfast") && a.contains("-pix_fmt yuv420p"));
        // The DASH output, then the sheets and the poster from the same decode.
        assert!(a.contains("$RepresentationID$/seg-$Number%05d$.m4s /w/out/manifest.mpd -map [thumbs] -c:v mjpeg"), "{a}");
        assert!(a.ends_with("-f image2 /w/out/poster.jpg"), "{a}");
    }

    #[test]
    fn args_without_audio() {
        let v = [variant("360p", 360, 640, 800)];
        let plan = EncodePlan {
            variants: &v,
            audio: &[],
            fps: 25.0,
            segment_seconds: 2,
            preset: "ultrafast",
            artwork: None,
        };
        let a = joined(&plan);
        assert_eq!(plan.stream_count(), 1);
        assert!(
            a.contains("[0:v:0]split=1[s0];") && !a.contains("mjpeg"),
            "{a}"
        );
        assert!(!a.contains("0:a:0") && !a.contains("-c:a"));
        assert!(a.contains("-adaptation_sets id=0,streams=v -"));
        assert!(a.contains("-g 50 "));
    }

    #[test]
    fn args_for_audio_only() {
        let audio = [
            audio_out(0, 64, "aac-64k", None),
            audio_out(0, 128, "aac-128k", None),
        ];
        let plan = EncodePlan {
            variants: &[],
            audio: &audio,
            fps: 30.0,
            segment_seconds: 4,
            preset: "veryfast",
            artwork: None,
        };
        let a = joined(&plan);
        assert_eq!(plan.stream_count(), 2);
        assert!(
            !a.contains("filter_complex") && !a.contains("libx264"),
            "{a}"
        );
        assert!(a.contains("-i /w/source -map 0:a:0 -map 0:a:0 -map_metadata -1 -c:a aac -ac 2 -ar 48000 -b:a:0 64k -b:a:1 128k"), "{a}");
        assert!(a.contains("-adaptation_sets id=0,streams=0,1 -"), "{a}");
        let with_english = [
            audio_out(0, 64, "aac-64k", Some("de")),
            audio_out(0, 128, "aac-128k", Some("de")),
            audio_out(1, 128, "audio-en", Some("en")),
        ];
        let plan = EncodePlan {
            audio: &with_english,
            ..plan
        };
        let a = joined(&plan);
        assert!(
            a.contains("-map 0:a:0 -map 0:a:0 -map 0:a:1 -map_metadata"),
            "{a}"
        );
        assert!(
            a.contains("-adaptation_sets id=0,streams=0,1 id=1,streams=2 -"),
            "{a}"
        );
    }

    fn audio_out(source: usize, kbps: u32, folder: &str, language: Option<&str>) -> AudioOut {
        AudioOut {
            source,
            kbps,
            folder: folder.into(),
            language: language.map(str::to_owned),
            label: "x".into(),
        }
    }

    #[test]
    fn progress_lines() {
        assert_eq!(parse_progress("out_time_us=6016000"), Some(6.016));
        assert_eq!(parse_progress("out_time_ms=2500000"), Some(2.5));
        assert_eq!(parse_progress("out_time_us=N/A"), None);
        assert_eq!(parse_progress("out_time_us=-9223372036854775807"), None);
        assert_eq!(parse_progress("frame=10"), None);
        assert_eq!(parse_progress("garbage"), None);
        assert_eq!(percent(3.0, 6.0), 50.0);
        assert_eq!(percent(7.0, 6.0), 100.0);
        assert_eq!(percent(1.0, 0.0), 0.0);
    }
}
