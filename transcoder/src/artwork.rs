//! Poster and hover-preview thumbnails from the ladder's own decode: two more branches of the
//! FFmpeg filter graph (the source is decoded once), then the thumbnails tiled into sheets and
//! the WebVTT storyboard players read.
//!
//! ```text
//! decode ─ split ─┬─ rungs …
//!                 ├─ fps=1/I ─ scale 160xH ─ mjpeg ─ thumbs/t-00001.jpg …
//!                 └─ select frame N ─ scale (top rung) ─ mjpeg ─ poster.jpg
//! after the run:  t-*.jpg ─ tile 5x5 (FFmpeg on the 160 px JPEGs) ─ thumbs/sprite-001.jpg …
//! thumbs/storyboard.vtt:  00:00:00.000 --> 00:00:02.000
//!                         sprite-001.jpg#xywh=0,0,160,90
//! ```
//!
//! The sheets are tiled after the run, not in it: a `tile` branch yields a frame only every 25
//! thumbnails, and FFmpeg 5.1 then feeds that output alone, reading the whole input before it
//! prints any progress (the job's percentage would jump from 0 to 100).

use std::path::Path;

use streamgate_config::contract::Artwork;

use crate::{Error, Variant};

/// Folder of the thumbnail sheets and the storyboard.
pub(crate) const THUMBS: &str = "thumbs";
/// The poster file.
pub(crate) const POSTER: &str = "poster.jpg";
/// The storyboard file, under [`THUMBS`].
pub(crate) const STORYBOARD: &str = "storyboard.vtt";
/// The thumbnails the run writes, tiled into sheets afterwards.
const THUMB_PATTERN: &str = "t-%05d.jpg";
/// The sheets.
const SHEET_PATTERN: &str = "sprite-%03d.jpg";
/// Thumbnail width in pixels (height follows the picture).
const THUMB_WIDTH: u32 = 160;
/// Thumbnails per sheet: columns × rows.
const COLS: u32 = 5;
const ROWS: u32 = 5;
/// Most thumbnails per video (the interval grows for long videos).
const MAX_THUMBS: f64 = 100.0;

/// What the extra filter branches make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Plan {
    pub(crate) thumb_w: u32,
    pub(crate) thumb_h: u32,
    pub(crate) poster_w: u32,
    pub(crate) poster_h: u32,
    /// One thumbnail every this many seconds.
    pub(crate) interval_s: u32,
    /// Index of the decoded frame that becomes the poster.
    pub(crate) poster_frame: u64,
}

impl Plan {
    /// For a source of `duration_s` (when known) at `fps`, packaged as `variants` (smallest
    /// first): thumbnails at most every second, at most [`MAX_THUMBS`]; the poster a tenth
    /// into the video (at most 5 s), at the top rung's size.
    pub(crate) fn new(variants: &[Variant], duration_s: Option<f64>, fps: f64) -> Option<Plan> {
        let top = variants.last()?;
        let thumb_h =
            ((f64::from(THUMB_WIDTH) * f64::from(top.height) / f64::from(top.width) / 2.0).round()
                as u32
                * 2)
            .max(2);
        let interval_s = duration_s.map_or(2, |d| (d / MAX_THUMBS).ceil().clamp(1.0, 10.0) as u32);
        let poster_at = duration_s.map_or(0.0, |d| (d * 0.1).min(5.0));
        Some(Plan {
            thumb_w: THUMB_WIDTH,
            thumb_h,
            poster_w: top.width,
            poster_h: top.height,
            interval_s,
            poster_frame: (poster_at * fps).floor() as u64,
        })
    }

    /// The filter graph branches fed by split outputs `[{sheet_in}]` and `[{poster_in}]`,
    /// producing `[thumbs]` and `[poster]`.
    pub(crate) fn filters(&self, sheet_in: &str, poster_in: &str) -> String {
        format!(
            ";[{sheet_in}]fps=1/{i},scale=w={tw}:h={th},setsar=1,format=yuvj420p[thumbs]\
             ;[{poster_in}]select=eq(n\\,{n}),scale=w={pw}:h={ph},setsar=1,format=yuvj420p[poster]",
            i = self.interval_s,
            tw = self.thumb_w,
            th = self.thumb_h,
            n = self.poster_frame,
            pw = self.poster_w,
            ph = self.poster_h,
        )
    }

    /// The two extra outputs (after the DASH output), into `out_dir`.
    pub(crate) fn outputs(&self, out_dir: &Path) -> Vec<String> {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        vec![
            "-map".into(),
            "[thumbs]".into(),
            "-c:v".into(),
            "mjpeg".into(),
            "-q:v".into(),
            "5".into(),
            "-f".into(),
            "image2".into(),
            path(&out_dir.join(THUMBS).join(THUMB_PATTERN)),
            "-map".into(),
            "[poster]".into(),
            "-c:v".into(),
            "mjpeg".into(),
            "-q:v".into(),
            "3".into(),
            "-frames:v".into(),
            "1".into(),
            "-update".into(),
            "1".into(),
            "-f".into(),
            "image2".into(),
            path(&out_dir.join(POSTER)),
        ]
    }

    /// The storyboard: one cue per thumbnail (`count`, as the run wrote them), back to back
    /// from 0 to `duration_s` (the last one runs to the end), each naming its tile
    /// (`sprite-NNN.jpg#xywh=x,y,w,h`).
    pub(crate) fn storyboard(&self, duration_s: f64, count: u32) -> String {
        let per_sheet = COLS * ROWS;
        let count = count.max(1);
        let mut out = String::from("WEBVTT\n\n");
        for k in 0..count {
            let start = f64::from(k * self.interval_s);
            let end = if k + 1 == count {
                duration_s
            } else {
                f64::from((k + 1) * self.interval_s).min(duration_s)
            };
            let (sheet, idx) = (k / per_sheet + 1, k % per_sheet);
            let (x, y) = ((idx % COLS) * self.thumb_w, (idx / COLS) * self.thumb_h);
            out.push_str(&format!(
                "{} --> {}\nsprite-{sheet:03}.jpg#xywh={x},{y},{},{}\n\n",
                vtt_time(start),
                vtt_time(end),
                self.thumb_w,
                self.thumb_h
            ));
        }
        out
    }
}

/// `HH:MM:SS.mmm`.
fn vtt_time(s: f64) -> String {
    let ms = (s * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Tiles the thumbnails the run wrote in `raw` into sheets, moves them and the poster into the
/// package `dir`, writes the storyboard for `duration_s`, and describes them (with the rungs'
/// I-frame playlists). `ffmpeg` is the program that tiles.
pub(crate) async fn finish(
    ffmpeg: &str,
    plan: &Plan,
    raw: &Path,
    dir: &Path,
    duration_s: f64,
    iframe_playlists: Vec<String>,
) -> Result<Artwork, Error> {
    let from = raw.join(THUMBS);
    let mut count = 0u32;
    while tokio::fs::try_exists(from.join(format!("t-{:05}.jpg", count + 1)))
        .await
        .unwrap_or(false)
    {
        count += 1;
    }
    if count == 0 {
        return Err(Error::Package("FFmpeg wrote no thumbnail".into()));
    }
    let to = dir.join(THUMBS);
    tokio::fs::create_dir_all(&to)
        .await
        .map_err(Error::io("creating", &to))?;
    let out = tokio::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-y", "-loglevel", "error"])
        .args(["-f", "image2", "-framerate", "1", "-i"])
        .arg(from.join(THUMB_PATTERN))
        .args([
            "-vf",
            &format!("tile={COLS}x{ROWS}"),
            "-c:v",
            "mjpeg",
            "-q:v",
            "5",
        ])
        .args(["-f", "image2"])
        .arg(to.join(SHEET_PATTERN))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| Error::Spawn {
            program: ffmpeg.to_owned(),
            source,
        })?;
    let sheets = count.div_ceil(COLS * ROWS);
    let last = to.join(format!("sprite-{sheets:03}.jpg"));
    if !out.status.success() || !tokio::fs::try_exists(&last).await.unwrap_or(false) {
        return Err(Error::Package(format!(
            "tiling {count} thumbnails into {sheets} sheets failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let vtt = to.join(STORYBOARD);
    tokio::fs::write(&vtt, plan.storyboard(duration_s, count))
        .await
        .map_err(Error::io("writing", &vtt))?;
    // A poster frame past the last one decoded leaves no poster: the record says so.
    let poster = raw.join(POSTER);
    let has_poster = tokio::fs::metadata(&poster)
        .await
        .is_ok_and(|m| m.len() > 0);
    if has_poster {
        let dest = dir.join(POSTER);
        tokio::fs::rename(&poster, &dest)
            .await
            .map_err(Error::io("moving", &dest))?;
    }
    Ok(Artwork {
        poster: has_poster.then(|| POSTER.to_owned()),
        storyboard: format!("{THUMBS}/{STORYBOARD}"),
        thumbnail_width: plan.thumb_w,
        thumbnail_height: plan.thumb_h,
        interval_s: plan.interval_s,
        iframe_playlists,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variants() -> Vec<Variant> {
        [(640, 360), (1280, 720)]
            .into_iter()
            .map(|(width, height)| Variant {
                name: format!("{height}p"),
                width,
                height,
                video_kbps: 1000,
            })
            .collect()
    }

    #[test]
    fn the_plan_follows_the_top_rung_and_the_duration() {
        let p = Plan::new(&variants(), Some(20.0), 30.0).unwrap();
        assert_eq!((p.thumb_w, p.thumb_h), (160, 90));
        assert_eq!((p.poster_w, p.poster_h), (1280, 720));
        assert_eq!(p.interval_s, 1);
        assert_eq!(p.poster_frame, 60); // 2 s in, at 30 fps
        let long = Plan::new(&variants(), Some(3600.0), 25.0).unwrap();
        assert_eq!(long.interval_s, 10, "at most every 10 s");
        assert_eq!(long.poster_frame, 125, "at most 5 s in");
        assert_eq!(Plan::new(&variants(), None, 25.0).unwrap().interval_s, 2);
        assert_eq!(Plan::new(&[], Some(1.0), 25.0), None);
    }

    #[test]
    fn storyboard_cues_cover_the_duration_across_sheets() {
        let p = Plan::new(&variants(), Some(61.5), 30.0).unwrap();
        let vtt = p.storyboard(61.5, 62);
        assert!(vtt.starts_with("WEBVTT\n\n"));
        let cues: Vec<&str> = vtt.lines().filter(|l| l.contains(" --> ")).collect();
        assert_eq!(cues.len(), 62);
        assert_eq!(cues[0], "00:00:00.000 --> 00:00:01.000");
        assert_eq!(*cues.last().unwrap(), "00:01:01.000 --> 00:01:01.500");
        assert!(vtt.contains("sprite-001.jpg#xywh=0,0,160,90\n"));
        assert!(vtt.contains("sprite-001.jpg#xywh=160,0,160,90\n"));
        assert!(
            vtt.contains("sprite-001.jpg#xywh=640,360,160,90\n"),
            "the 25th tile"
        );
        assert!(
            vtt.contains("sprite-002.jpg#xywh=0,0,160,90\n"),
            "the 26th starts sheet 2"
        );
        assert!(
            vtt.contains("sprite-003.jpg#xywh=160,180,160,90\n"),
            "the 62nd"
        );
        // Fewer thumbnails than the duration asks for: the last cue runs to the end.
        let short = p.storyboard(61.5, 25);
        let cues: Vec<&str> = short.lines().filter(|l| l.contains(" --> ")).collect();
        assert_eq!(cues.len(), 25);
        assert_eq!(*cues.last().unwrap(), "00:00:24.000 --> 00:01:01.500");
    }

    #[test]
    fn filters_name_their_inputs_and_outputs() {
        let p = Plan::new(&variants(), Some(10.0), 25.0).unwrap();
        let f = p.filters("s2", "s3");
        assert!(f.starts_with(";[s2]fps=1/1,scale=w=160:h=90"), "{f}");
        assert!(f.contains("format=yuvj420p[thumbs]"), "{f}");
        assert!(!f.contains("tile="), "tiled after the run: {f}");
        assert!(
            f.contains(";[s3]select=eq(n\\,25),scale=w=1280:h=720"),
            "{f}"
        );
        assert!(f.ends_with("[poster]"), "{f}");
    }
}
