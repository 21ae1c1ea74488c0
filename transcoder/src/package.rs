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
//! audio-fr/…               another language of the source (one folder per audio stream)
//! aac-64k/, aac-128k/      an audio-only source's ladder (no video folders, no artwork)
//! audio-en/…               an audio-only source's other languages (an audio group)
//! poster.jpg               poster (the top rung's size)
//! thumbs/sprite-001.jpg …  thumbnail sheets, thumbs/storyboard.vtt their WebVTT storyboard
//! ```

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use streamgate_auth::{ContentKey, SampleCipher};
use streamgate_config::{
    FfmpegConfig, Rung,
    contract::{Artwork, AudioRendition, Rendition},
};
use tokio::sync::watch;

use crate::{
    Error, SourceInfo, Variant, artwork,
    audio::{self, AudioOut},
    cenc,
    ffmpeg::{self, EncodePlan, MASTER, MPD, Supervision},
    iframes::{self, IFRAME_PLAYLIST, IframeStream},
    ladder,
    manifest::{self, MEDIA_PLAYLIST},
    probe,
};

/// A finished, verified package on local disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    /// Root of the package (holds `master.m3u8` and `manifest.mpd`).
    pub dir: PathBuf,
    /// The video renditions, smallest first, with the bandwidth the HLS master announces
    /// (none for an audio-only source).
    pub renditions: Vec<Rendition>,
    /// The audio renditions: each language of a video, or an audio-only ladder.
    pub audio: Vec<AudioRendition>,
    /// Presentation duration (sum of the first rendition's segment durations), seconds.
    pub duration_s: f64,
    /// Whether an audio track was packaged.
    pub has_audio: bool,
    /// What ffprobe said about the source.
    pub source: SourceInfo,
    /// Poster, storyboard and I-frame playlists.
    pub artwork: Option<Artwork>,
    /// Where the packaging time went.
    pub phases: Phases,
}

/// Wall time of each step of [`transcode_with`], in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phases {
    /// ffprobe on the source.
    pub probe_s: f64,
    /// The FFmpeg run: every rung, the audio, the poster and thumbnail branches.
    pub encode_s: f64,
    /// Moving FFmpeg's output into the package layout, encryption, I-frame playlists, the
    /// manifest check and the description.
    pub package_s: f64,
    /// Tiling the thumbnails into sheets and writing the storyboard.
    pub artwork_s: f64,
}

impl Phases {
    /// Each phase with its name (the `phase` label of `streamgate_transcoder_phase_seconds`).
    pub fn named(&self) -> [(&'static str, f64); 4] {
        [
            ("probe", self.probe_s),
            ("encode", self.encode_s),
            ("package", self.package_s),
            ("artwork", self.artwork_s),
        ]
    }
}

/// Transcodes `source` into a package under `work_dir/package`.
///
/// `work_dir` must exist and be private to this job; `progress` receives FFmpeg's progress in
/// percent (only when the source has a known duration); setting `cancel` to `true` kills FFmpeg.
///
/// # Errors
/// Permanent ([`Error::is_permanent`]): the input is not usable media (`no video or audio
/// stream found`), FFmpeg rejects it, or its output is incomplete. Transient: I/O errors, a timeout,
/// FFmpeg killed, cancellation.
pub async fn transcode(
    cfg: &FfmpegConfig,
    ladder: &[Rung],
    source: &Path,
    work_dir: &Path,
    progress: &(dyn Fn(f32) + Send + Sync),
    cancel: watch::Receiver<bool>,
) -> Result<Package, Error> {
    transcode_with(cfg, ladder, source, work_dir, progress, cancel, None).await
}

/// What an encrypted package is encrypted for.
#[derive(Debug, Clone, Copy)]
pub struct Encrypt<'a> {
    /// The content (its license URL is written into the manifests).
    pub content_id: &'a str,
    /// The content key.
    pub key: &'a ContentKey,
}

/// [`transcode`], then, with `encrypt`, Common Encryption of every init and media segment
/// (`cenc`, see `cenc.rs`) and the key announced in every playlist and the MPD. Posters,
/// thumbnails and storyboards stay clear (they are stills for choosing, not the work).
///
/// # Errors
/// As [`transcode`]; [`Error::Encryption`] (permanent) when a segment cannot be encrypted.
pub async fn transcode_with(
    cfg: &FfmpegConfig,
    ladder: &[Rung],
    source: &Path,
    work_dir: &Path,
    progress: &(dyn Fn(f32) + Send + Sync),
    cancel: watch::Receiver<bool>,
    encrypt: Option<Encrypt<'_>>,
) -> Result<Package, Error> {
    let started = Instant::now();
    let info = probe::probe(&cfg.ffprobe, source).await?;
    let probe_s = started.elapsed().as_secs_f64();
    let variants = if info.has_video {
        ladder::plan(ladder, &info)?
    } else {
        Vec::new()
    };
    let audio_outs = audio::plan(&info, &variants, cfg.audio_bitrate_kbps);
    tracing::info!(
        width = info.width,
        height = info.height,
        rotation = info.rotation,
        duration_s = info.duration_s,
        audio_streams = info.audio.len(),
        rungs = ?variants.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        audio = ?audio_outs.iter().map(|a| a.folder.as_str()).collect::<Vec<_>>(),
        "source probed"
    );
    let plan = EncodePlan {
        variants: &variants,
        audio: &audio_outs,
        fps: info.fps,
        segment_seconds: cfg.segment_seconds,
        preset: &cfg.preset,
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
    let encoding = Instant::now();
    ffmpeg::run(sup, &plan.args(source, &raw)).await?;
    let encode_s = encoding.elapsed().as_secs_f64();

    let packaging = Instant::now();
    let dir = work_dir.join("package");
    let folders = folders(&variants, &audio_outs);
    restructure(&raw, &dir, &folders, &audio_outs).await?;
    let announced = match encrypt {
        Some(e) => Some(protect(&dir, &folders, e).await?),
        None => None,
    };
    let iframe_playlists = if variants.is_empty() {
        Vec::new()
    } else {
        add_iframe_playlists(&dir, &variants).await?
    };
    if let Some(key) = &announced {
        for uri in &iframe_playlists {
            let path = dir.join(uri);
            let text = manifest::key_media_playlist(&read(&path).await?, key)?;
            write(&path, text).await?;
        }
    }
    manifest::verify(&dir, MPD, MASTER).await?;
    let mut pkg = describe(dir, &variants, &audio_outs, info).await?;
    let package_s = packaging.elapsed().as_secs_f64();
    let tiling = Instant::now();
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
    pkg.phases = Phases {
        probe_s,
        encode_s,
        package_s,
        artwork_s: tiling.elapsed().as_secs_f64(),
    };
    tracing::info!(
        probe_s,
        encode_s,
        package_s,
        artwork_s = pkg.phases.artwork_s,
        "packaged"
    );
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

/// Encrypts every folder's init and media segments under `e.key` (one blocking task per
/// folder: AES-CTR over the whole package is CPU work) and announces the key in the media
/// playlists, the master and the MPD.
async fn protect(
    dir: &Path,
    folders: &[String],
    e: Encrypt<'_>,
) -> Result<manifest::KeyAnnouncement, Error> {
    let cipher = Arc::new(
        e.key
            .ctr()
            .map_err(|err| Error::Encryption(err.to_string()))?,
    );
    let kid = e.key.kid();
    for folder in folders {
        let d = dir.join(folder);
        let cipher = cipher.clone();
        tokio::task::spawn_blocking(move || protect_folder(&d, kid, &cipher))
            .await
            .map_err(|j| Error::Encryption(format!("encryption task failed: {j}")))??;
    }
    let key = manifest::KeyAnnouncement {
        kid,
        license: streamgate_config::contract::paths::origin_license(e.content_id),
    };
    for folder in folders {
        let path = dir.join(folder).join(MEDIA_PLAYLIST);
        let text = manifest::key_media_playlist(&read(&path).await?, &key)?;
        write(&path, text).await?;
    }
    let master = manifest::key_master(&read(&dir.join(MASTER)).await?, &key);
    write(&dir.join(MASTER), master).await?;
    let mpd = manifest::key_mpd(&read(&dir.join(MPD)).await?, &key)?;
    write(&dir.join(MPD), mpd).await?;
    Ok(key)
}

/// Encrypts one folder in place: `init.mp4`, then every `seg-*.m4s` with its own random IV
/// start. Runs on a blocking thread.
fn protect_folder(dir: &Path, kid: [u8; 16], cipher: &SampleCipher) -> Result<(), Error> {
    let init_path = dir.join("init.mp4");
    let init = std::fs::read(&init_path).map_err(Error::io("reading", &init_path))?;
    let (init, tracks) = cenc::protect_init(&init, kid)?;
    std::fs::write(&init_path, init).map_err(Error::io("writing", &init_path))?;
    let entries = std::fs::read_dir(dir).map_err(Error::io("listing", dir))?;
    for entry in entries {
        let path = entry.map_err(Error::io("listing", dir))?.path();
        if path.extension().and_then(|x| x.to_str()) != Some("m4s") {
            continue;
        }
        let seg = std::fs::read(&path).map_err(Error::io("reading", &path))?;
        let out = cenc::protect_segment(&seg, &tracks, cipher, rand::random())
            .map_err(|e| Error::Encryption(format!("{}: {e}", path.display())))?;
        std::fs::write(&path, out).map_err(Error::io("writing", &path))?;
    }
    Ok(())
}

/// Folder of each output stream, in stream order: the rung names, then the audio folders.
fn folders(variants: &[Variant], audio: &[AudioOut]) -> Vec<String> {
    variants
        .iter()
        .map(|v| v.name.clone())
        .chain(audio.iter().map(|a| a.folder.clone()))
        .collect()
}

/// Moves FFmpeg's `raw/{i}/` folders to `dir/{folder}/`, each media playlist into its folder,
/// and rewrites the master playlist (audio renditions named, with their languages) and the MPD
/// to match.
async fn restructure(
    raw: &Path,
    dir: &Path,
    folders: &[String],
    audio: &[AudioOut],
) -> Result<(), Error> {
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
    let master = if folders.len() == audio.len() {
        manifest::group_audio_only(&master, audio)
    } else {
        manifest::describe_audio(&master, audio)
    };
    write(&dir.join(MASTER), master).await?;
    let mpd = manifest::rewrite_mpd(&read(&raw.join(MPD)).await?, folders)?;
    write(&dir.join(MPD), mpd).await
}

/// Reads back what the package announces: bandwidth per rung and the duration.
async fn describe(
    dir: PathBuf,
    variants: &[Variant],
    audio: &[AudioOut],
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
    // A video's duration is its first rung's; an audio-only source's its first audio rung's.
    let first = variants
        .first()
        .map(|v| v.name.as_str())
        .or_else(|| audio.first().map(|a| a.folder.as_str()))
        .ok_or_else(|| Error::Package("no renditions".into()))?;
    let playlist = read(&dir.join(first).join(MEDIA_PLAYLIST)).await?;
    Ok(Package {
        duration_s: (manifest::extinf_total(&playlist) * 1000.0).round() / 1000.0,
        dir,
        renditions,
        audio: audio.iter().map(AudioOut::rendition).collect(),
        has_audio: !audio.is_empty(),
        source,
        artwork: None,
        phases: Phases::default(),
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
