//! The transcode pipeline for one source file, local only: probe → ladder → one FFmpeg run →
//! folders renamed after the rungs → verified package directory.
//!
//! # Package layout
//! ```text
//! master.m3u8              HLS master (written last when published)
//! manifest.mpd             DASH manifest, SegmentTemplate `$RepresentationID$/seg-$Number%05d$.m4s`
//! 360p/index.m3u8          HLS media playlist of one rung
//! 360p/iframes.m3u8        its I-frame playlist (byte ranges of the segments' key frames)
//! 360p/init.mp4            CMAF init segment
//! 360p/seg-00001.m4s …     CMAF media segments, shared by HLS and DASH
//! audio/…                  the same for the AAC track, when the source has audio
//! poster.jpg               poster (the top rung's size)
//! thumbs/sprite-001.jpg …  thumbnail sheets, thumbs/storyboard.vtt their WebVTT storyboard
//! ```

use std::path::{Path, PathBuf};

use streamgate_config::{
    FfmpegConfig, Rung,
    contract::{Artwork, Rendition},
};
use tokio::sync::watch;

use crate::{
    Error, SourceInfo, Variant, artwork,
    ffmpeg::{self, EncodePlan, MASTER, MPD, Supervision},
    iframes::{self, IFRAME_PLAYLIST, IframeStream},
    ladder,
    manifest::{self, MEDIA_PLAYLIST},
    probe,
};

/// Folder of the audio representation (unless a rung already has that name).
const AUDIO_FOLDER: &str = "audio";

/// A finished, verified package on local disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    /// Root of the package (holds `master.m3u8` and `manifest.mpd`).
    pub dir: PathBuf,
    /// The video renditions, smallest first, with the bandwidth the HLS master announces.
    pub renditions: Vec<Rendition>,
    /// Presentation duration (sum of the first rendition's segment durations), seconds.
    pub duration_s: f64,
    /// Whether an audio track was packaged.
    pub has_audio: bool,
    /// What ffprobe said about the source.
    pub source: SourceInfo,
    /// Poster, storyboard and I-frame playlists.
    pub artwork: Option<Artwork>,
}

/// Transcodes `source` into a package under `work_dir/package`.
///
/// `work_dir` must exist and be private to this job; `progress` receives FFmpeg's progress in
/// percent (only when the source has a known duration); setting `cancel` to `true` kills FFmpeg.
///
/// # Errors
/// Permanent ([`Error::is_permanent`]): the input is not a usable video (`no video stream
/// found`), FFmpeg rejects it, or its output is incomplete. Transient: I/O errors, a timeout,
/// FFmpeg killed, cancellation.
pub async fn transcode(
    cfg: &FfmpegConfig,
    ladder: &[Rung],
    source: &Path,
    work_dir: &Path,
    progress: &(dyn Fn(f32) + Send + Sync),
    cancel: watch::Receiver<bool>,
) -> Result<Package, Error> {
    let info = probe::probe(&cfg.ffprobe, source).await?;
    let variants = ladder::plan(ladder, &info)?;
    tracing::info!(
        width = info.width,
        height = info.height,
        rotation = info.rotation,
        duration_s = info.duration_s,
        has_audio = info.has_audio,
        rungs = ?variants.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        "source probed"
    );
    let plan = EncodePlan {
        variants: &variants,
        has_audio: info.has_audio,
        fps: info.fps,
        segment_seconds: cfg.segment_seconds,
        preset: &cfg.preset,
        audio_kbps: cfg.audio_bitrate_kbps,
        artwork: artwork::Plan::new(&variants, info.duration_s, info.fps),
    };
    let raw = work_dir.join("ffmpeg");
    let mut dirs: Vec<PathBuf> = (0..plan.stream_count())
        .map(|i| raw.join(i.to_string()))
        .collect();
    if plan.artwork.is_some() {
        dirs.push(raw.join(artwork::THUMBS));
    }
    for d in dirs {
        tokio::fs::create_dir_all(&d)
            .await
            .map_err(Error::io("creating", d))?;
    }
    let sup = Supervision {
        program: &cfg.ffmpeg,
        timeout: cfg.timeout,
        duration_s: info.duration_s,
        progress,
        cancel,
    };
    ffmpeg::run(sup, &plan.args(source, &raw)).await?;

    let dir = work_dir.join("package");
    let folders = folders(&variants, info.has_audio);
    restructure(&raw, &dir, &folders).await?;
    let iframe_playlists = add_iframe_playlists(&dir, &variants).await?;
    manifest::verify(&dir, MPD, MASTER).await?;
    let mut pkg = describe(dir, &variants, info).await?;
    if let Some(art) = &plan.artwork {
        pkg.artwork = Some(
            artwork::finish(
                &cfg.ffmpeg,
                art,
                &raw,
                &pkg.dir,
                pkg.duration_s,
                iframe_playlists,
            )
            .await?,
        );
    }
    Ok(pkg)
}

/// Writes each rung's I-frame playlist and announces them in the master; returns their paths.
async fn add_iframe_playlists(dir: &Path, variants: &[Variant]) -> Result<Vec<String>, Error> {
    let mut streams = Vec::with_capacity(variants.len());
    for v in variants {
        let bandwidth = iframes::write_for(&dir.join(&v.name), MEDIA_PLAYLIST).await?;
        streams.push(IframeStream {
            media_uri: format!("{}/{MEDIA_PLAYLIST}", v.name),
            uri: format!("{}/{IFRAME_PLAYLIST}", v.name),
            bandwidth,
            width: v.width,
            height: v.height,
        });
    }
    let master = iframes::master_with_iframes(&read(&dir.join(MASTER)).await?, &streams);
    write(&dir.join(MASTER), master).await?;
    Ok(streams.into_iter().map(|s| s.uri).collect())
}

/// Folder of each output stream, in stream order: the rung names, then the audio folder.
fn folders(variants: &[Variant], has_audio: bool) -> Vec<String> {
    let mut f: Vec<String> = variants.iter().map(|v| v.name.clone()).collect();
    if has_audio {
        let audio = if f.iter().any(|n| n == AUDIO_FOLDER) {
            "audio_track"
        } else {
            AUDIO_FOLDER
        };
        f.push(audio.to_owned());
    }
    f
}

/// Moves FFmpeg's `raw/{i}/` folders to `dir/{folder}/`, each media playlist into its folder,
/// and rewrites the master playlist and the MPD to match.
async fn restructure(raw: &Path, dir: &Path, folders: &[String]) -> Result<(), Error> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(Error::io("creating", dir))?;
    for (i, folder) in folders.iter().enumerate() {
        let to = dir.join(folder);
        tokio::fs::rename(raw.join(i.to_string()), &to)
            .await
            .map_err(Error::io("moving", &to))?;
        let text = read(&raw.join(format!("media_{i}.m3u8"))).await?;
        let rewritten = manifest::rewrite_media_playlist(&text, i)?;
        write(&to.join(MEDIA_PLAYLIST), rewritten).await?;
    }
    let master = manifest::rewrite_master(&read(&raw.join(MASTER)).await?, folders);
    write(&dir.join(MASTER), master).await?;
    let mpd = manifest::rewrite_mpd(&read(&raw.join(MPD)).await?, folders)?;
    write(&dir.join(MPD), mpd).await
}

/// Reads back what the package announces: bandwidth per rung and the duration.
async fn describe(
    dir: PathBuf,
    variants: &[Variant],
    source: SourceInfo,
) -> Result<Package, Error> {
    let master = read(&dir.join(MASTER)).await?;
    let announced = manifest::master_variants(&master);
    let mut renditions = Vec::with_capacity(variants.len());
    for v in variants {
        let uri = format!("{}/{MEDIA_PLAYLIST}", v.name);
        let bandwidth = announced
            .iter()
            .find(|m| m.uri == uri)
            .map(|m| m.bandwidth)
            .ok_or_else(|| Error::Package(format!("master.m3u8 does not list {uri}")))?;
        renditions.push(Rendition {
            name: v.name.clone(),
            width: v.width,
            height: v.height,
            bandwidth,
        });
    }
    let first = variants
        .first()
        .ok_or_else(|| Error::Package("no renditions".into()))?;
    let playlist = read(&dir.join(&first.name).join(MEDIA_PLAYLIST)).await?;
    Ok(Package {
        duration_s: (manifest::extinf_total(&playlist) * 1000.0).round() / 1000.0,
        dir,
        renditions,
        has_audio: source.has_audio,
        source,
        artwork: None,
    })
}

async fn read(path: &Path) -> Result<String, Error> {
    match tokio::fs::read_to_string(path).await {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Package(format!(
            "ffmpeg did not write {}",
            path.display()
        ))),
        Err(e) => Err(Error::io("reading", path)(e)),
    }
}

async fn write(path: &Path, text: String) -> Result<(), Error> {
    tokio::fs::write(path, text)
        .await
        .map_err(Error::io("writing", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_folder_avoids_rung_names() {
        let v = |n: &str| Variant {
            name: n.into(),
            width: 2,
            height: 2,
            video_kbps: 100,
        };
        assert_eq!(folders(&[v("360p")], true), ["360p", "audio"]);
        assert_eq!(folders(&[v("360p")], false), ["360p"]);
        assert_eq!(folders(&[v("audio")], true), ["audio", "audio_track"]);
    }
}
