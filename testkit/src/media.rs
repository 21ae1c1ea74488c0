//! Media for tests: clips generated with FFmpeg's test sources, and noise that is no video.

use std::{path::Path, process::Command};

/// Generates a clip with FFmpeg's test sources.
pub fn make_clip(width: u32, height: u32, seconds: u32, audio: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clip.mp4");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={width}x{height}:rate=25"));
    if audio {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    }
    cmd.args([
        "-t",
        &seconds.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
    ]);
    // odd sizes cannot be 4:2:0; keep them odd on purpose with 4:4:4
    if width % 2 == 1 || height % 2 == 1 {
        cmd.args(["-pix_fmt", "yuv444p"]);
    } else {
        cmd.args(["-pix_fmt", "yuv420p"]);
    }
    if audio {
        cmd.args(["-c:a", "aac", "-shortest"]);
    }
    let status = cmd.arg(&out).status().expect("run ffmpeg");
    assert!(status.success(), "ffmpeg clip generation");
    std::fs::read(out).unwrap()
}

/// Generates a video of `seconds` with one audio stream per entry of `languages` (ISO 639-2
/// tags such as `eng`, `fra`; each a tone of its own pitch), Matroska with H.264 and AAC.
pub fn make_multi_audio_clip(width: u32, height: u32, seconds: u32, languages: &[&str]) -> Vec<u8> {
    let mut args: Vec<String> = vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("testsrc2=size={width}x{height}:rate=25"),
    ];
    for i in 0..languages.len() {
        args.extend([
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("sine=frequency={}:sample_rate=48000", 440 + 110 * i),
        ]);
    }
    args.extend(["-t".into(), seconds.to_string()]);
    for i in 0..=languages.len() {
        args.extend(["-map".into(), i.to_string()]);
    }
    for (i, l) in languages.iter().enumerate() {
        args.extend([format!("-metadata:s:a:{i}"), format!("language={l}")]);
    }
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ]
        .map(String::from),
    );
    ffmpeg_output("clip.mkv", &args)
}

/// Generates an audio-only file of `seconds`: one stream per entry of `languages` (ISO 639-2;
/// each a tone of its own pitch), or one untagged stream when it is empty; `ext` picks the
/// format (`mp3`, `wav`, `flac`, `m4a`, `mka`). One language is also written as the file's
/// own tag (where MP3 keeps it).
pub fn make_audio(seconds: u32, ext: &str, languages: &[&str]) -> Vec<u8> {
    let streams = languages.len().max(1);
    let mut args: Vec<String> = Vec::new();
    for i in 0..streams {
        args.extend([
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("sine=frequency={}:sample_rate=44100", 440 + 110 * i),
        ]);
    }
    args.extend(["-t".into(), seconds.to_string()]);
    for i in 0..streams {
        args.extend(["-map".into(), i.to_string()]);
    }
    for (i, l) in languages.iter().enumerate() {
        args.extend([format!("-metadata:s:a:{i}"), format!("language={l}")]);
    }
    if let [only] = languages {
        args.extend(["-metadata".into(), format!("language={only}")]);
    }
    ffmpeg_output(&format!("audio.{ext}"), &args)
}

/// Runs `ffmpeg -v error -y {args} {dir}/{name}` and returns the file.
fn ffmpeg_output(name: &str, args: &[String]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg {args:?}");
    std::fs::read(out).unwrap()
}

/// Deterministic pseudo-random bytes (not a video).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes a clip to `path` (for tests that hand FFmpeg a file): `testsrc2` at 30 fps, plus a
/// 440 Hz tone when `audio`; odd sizes in 4:4:4.
pub fn make_clip_at(path: &Path, width: u32, height: u32, seconds: u32, audio: bool) {
    std::fs::write(path, make_clip(width, height, seconds, audio)).expect("write the clip");
}

/// Decodes the first video stream of `bytes` (written to a file named `name`, whose extension
/// tells ffprobe the format) with ffprobe: its `(width, height, decoded frame count)`. Panics
/// when ffprobe cannot read it.
pub fn probe_video(bytes: &[u8], name: &str) -> (u64, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join(name);
    std::fs::write(&f, bytes).unwrap();
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,nb_read_frames",
            "-of",
            "json",
        ])
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["streams"][0];
    let n = |k: &str| match &s[k] {
        serde_json::Value::String(x) => x.parse().unwrap(),
        x => x.as_u64().unwrap(),
    };
    (n("width"), n("height"), n("nb_read_frames"))
}

/// Decodes an init segment followed by one media segment with FFmpeg (`-decryption_key` when
/// `key_hex` is given): `(frame hashes, one per line, FFmpeg's errors)`. One segment at a time:
/// FFmpeg 5.1 mis-indexes the sample encryption of several concatenated `cenc` fragments.
pub fn decode_frames(init: &[u8], segment: &[u8], key_hex: Option<&str>) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("joined.mp4");
    std::fs::write(&file, [init, segment].concat()).unwrap();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error"]);
    if let Some(k) = key_hex {
        cmd.args(["-decryption_key", k]);
    }
    let out = cmd
        .arg("-i")
        .arg(&file)
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    (
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The mean PSNR (dB, luma and chroma together; `f64::INFINITY` when identical) of the video of
/// `a` (init segment + one media segment, decrypted with `key_hex` when given) against that of
/// `b`, frame by frame, by FFmpeg's `psnr` filter. Two encodes of one source at one bitrate
/// score well above 30 dB; undecryptable garbage scores far below.
pub fn video_psnr(a: (&[u8], &[u8]), key_hex: Option<&str>, b: (&[u8], &[u8])) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (fa, fb) = (dir.path().join("a.mp4"), dir.path().join("b.mp4"));
    std::fs::write(&fa, [a.0, a.1].concat()).unwrap();
    std::fs::write(&fb, [b.0, b.1].concat()).unwrap();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostats"]);
    if let Some(k) = key_hex {
        cmd.args(["-decryption_key", k]);
    }
    let out = cmd
        .arg("-i")
        .arg(&fa)
        .arg("-i")
        .arg(&fb)
        .args(["-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    let log = String::from_utf8_lossy(&out.stderr);
    let average = log
        .rsplit("average:")
        .next()
        .filter(|_| log.contains("average:"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no PSNR in FFmpeg's output: {log}"));
    if average == "inf" {
        f64::INFINITY
    } else {
        average.parse().expect("a PSNR figure")
    }
}
