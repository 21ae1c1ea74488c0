//! Runs the real FFmpeg pipeline ([`streamgate_transcoder::transcode`]) on short generated clips
//! and checks the package: playlists, segments, MPD, decodability and duration.

mod utils;

use std::{
    path::Path,
    process::Command,
    sync::{Arc, Mutex},
};

use streamgate_config::{Rung, default_ladder};
use streamgate_testkit::make_clip_at as make_clip;
use streamgate_transcoder::{
    Error, Package, extinf_total, master_variants, playlist_uris, transcode,
};
use tokio::sync::watch;
use utils::{ffmpeg_config, read, small_ladder};

/// Transcodes `src` in `work`, collecting progress reports.
async fn run(src: &Path, work: &Path, ladder: &[Rung]) -> (Result<Package, Error>, Vec<f32>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let progress = move |p: f32| sink.lock().expect("not poisoned").push(p);
    let (_tx, cancel) = watch::channel(false);
    let r = transcode(&ffmpeg_config(), ladder, src, work, &progress, cancel).await;
    let seen = seen.lock().expect("not poisoned").clone();
    (r, seen)
}

/// Checks everything a player relies on; returns the media playlists' URIs.
fn check_package(pkg: &Package, expect: &[(&str, u32, u32)], seconds: f64) {
    let dir = &pkg.dir;
    let master = read(dir, "master.m3u8");
    let variants = master_variants(&master);
    assert_eq!(variants.len(), expect.len(), "{master}");
    for ((name, w, h), v) in expect.iter().zip(&variants) {
        assert_eq!(v.uri, format!("{name}/index.m3u8"));
        assert_eq!(v.resolution, Some((*w, *h)), "{master}");
        assert!(v.bandwidth > 0);
    }
    let got: Vec<_> = pkg
        .renditions
        .iter()
        .map(|r| (r.name.as_str(), r.width, r.height))
        .collect();
    assert_eq!(got, expect);
    assert_eq!(master.contains("TYPE=AUDIO"), pkg.has_audio, "{master}");

    let mpd = read(dir, "manifest.mpd");
    for (name, w, h) in expect {
        let rep = format!("<Representation id=\"{name}\"");
        let at = mpd
            .find(&rep)
            .unwrap_or_else(|| panic!("{rep} missing in\n{mpd}"));
        assert!(
            mpd[at..].contains(&format!("width=\"{w}\" height=\"{h}\"")),
            "{mpd}"
        );
    }
    assert_eq!(mpd.contains("<Representation id=\"audio\""), pkg.has_audio);

    for uri in playlist_uris(&master) {
        let playlist = read(dir, &uri);
        let folder = uri.rsplit_once('/').expect("in a folder").0;
        let uris = playlist_uris(&playlist);
        assert_eq!(uris[0], "init.mp4");
        for u in &uris {
            let len = std::fs::metadata(dir.join(folder).join(u))
                .expect("segment exists")
                .len();
            assert!(len > 0, "{folder}/{u} empty");
        }
        let total = extinf_total(&playlist);
        assert!(
            (total - seconds).abs() <= 0.5,
            "{uri}: EXTINF sum {total} vs {seconds}"
        );
        decodes(&dir.join(folder), &uris[1]);
    }
    assert!(
        (pkg.duration_s - seconds).abs() <= 0.5,
        "duration {}",
        pkg.duration_s
    );
}

/// ffprobe decodes init + first segment concatenated.
fn decodes(folder: &Path, first: &str) {
    let mut bytes = std::fs::read(folder.join("init.mp4")).expect("init");
    bytes.extend(std::fs::read(folder.join(first)).expect("segment"));
    let joined = folder.join("joined.mp4");
    std::fs::write(&joined, bytes).expect("write");
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames,codec_type",
            "-of",
            "csv=p=0",
        ])
        .arg(&joined)
        .output()
        .expect("ffprobe runs");
    std::fs::remove_file(&joined).expect("cleanup");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames: u64 = text
        .lines()
        .filter_map(|l| l.split(',').find_map(|f| f.trim().parse::<u64>().ok()))
        .sum();
    assert!(
        frames > 0,
        "no frames decoded in {}: {text}",
        folder.display()
    );
}

#[tokio::test]
async fn landscape_with_audio() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.mp4");
    make_clip(&src, 640, 360, 6, true);
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let (pkg, progress) = run(&src, &work, &small_ladder()).await;
    let pkg = pkg.expect("transcodes");
    assert!(pkg.has_audio);
    check_package(&pkg, &[("180p", 320, 180), ("360p", 640, 360)], 6.0);
    assert!(!progress.is_empty() && progress.iter().all(|p| (0.0..=100.0).contains(p)));
    assert!(*progress.last().unwrap() > 90.0, "{progress:?}");
    let audio = read(&pkg.dir, "audio/index.m3u8");
    assert!(playlist_uris(&audio).len() > 1);
    // Every step ran and was timed (the job's `streamgate_transcoder_phase_seconds`).
    for (phase, s) in pkg.phases.named() {
        assert!(s.is_finite() && s > 0.0, "{phase}: {s}");
    }
}

#[tokio::test]
async fn portrait_without_audio() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.mp4");
    make_clip(&src, 360, 640, 4, false);
    let (pkg, _) = run(&src, tmp.path(), &small_ladder()).await;
    let pkg = pkg.expect("transcodes");
    assert!(!pkg.has_audio);
    check_package(&pkg, &[("180p", 180, 320), ("360p", 360, 640)], 4.0);
    assert!(!pkg.dir.join("audio").exists());
}

#[tokio::test]
async fn odd_size_gets_one_even_rung() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.mp4");
    make_clip(&src, 321, 241, 3, true);
    // No default rung fits under the 241-pixel short side: one rung at the source's size.
    let (pkg, _) = run(&src, tmp.path(), &default_ladder()).await;
    let pkg = pkg.expect("transcodes");
    check_package(&pkg, &[("240p", 320, 240)], 3.0);
}

#[tokio::test]
async fn text_file_is_a_permanent_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("source");
    std::fs::write(&src, "hello, this is not a video\n".repeat(100)).unwrap();
    let (r, _) = run(&src, tmp.path(), &small_ladder()).await;
    let e = r.expect_err("a text file is not a video");
    assert!(e.is_permanent(), "{e:?}");
    assert!(
        e.to_string().contains("no video or audio stream found"),
        "{e}"
    );
}

/// A loopback listener counting the connections it gets (held by the test: no port race).
async fn tripwire() -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let task = tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (url, hits, task)
}

#[tokio::test]
async fn playlists_and_lists_open_nothing_and_fail_with_a_reason() {
    // An uploaded HLS playlist, DASH MPD or concat list naming a URL the uploader chose (an
    // internal service, cloud metadata) or a local file: FFmpeg must open none of them.
    let (url, hits, task) = tripwire().await;
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), b"local secret").unwrap();
    let secret = secret.path().display().to_string();
    let inputs = [
        (
            "hls",
            format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n{url}/seg.ts\n#EXTINF:4,\nfile://{secret}\n#EXT-X-ENDLIST\n"
            ),
        ),
        (
            "concat",
            format!("ffconcat version 1.0\nfile '{url}/a.mp4'\nfile '{secret}'\n"),
        ),
        (
            "dash",
            format!(
                "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\" mediaPresentationDuration=\"PT4S\" minBufferTime=\"PT2S\" profiles=\"urn:mpeg:dash:profile:isoff-on-demand:2011\"><BaseURL>{url}/</BaseURL><Period><AdaptationSet mimeType=\"video/mp4\"><Representation id=\"1\" bandwidth=\"1000\"><BaseURL>v.mp4</BaseURL></Representation></AdaptationSet></Period></MPD>\n"
            ),
        ),
    ];
    for (kind, body) in inputs {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("source");
        std::fs::write(&src, body).unwrap();
        let (r, _) = run(&src, tmp.path(), &small_ladder()).await;
        let e = r.expect_err("a playlist is not a video");
        assert!(e.is_permanent(), "{kind}: {e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("no video or audio stream found") && msg.contains("is not accepted"),
            "{kind}: {msg}"
        );
        // The probe alone refuses it too.
        assert!(streamgate_transcoder::probe("ffprobe", &src).await.is_err());
    }
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "FFmpeg connected to a URL named in an uploaded file"
    );
    task.abort();
}

/// Runs FFmpeg to make a test source; `args` go between the program and the output path.
fn ffmpeg_make(out: &Path, args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg {args:?}");
}

#[tokio::test]
async fn audio_only_sources_package_as_an_audio_ladder() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("episode.mp3");
    // A podcast episode: MP3 with a German language (ID3 TLAN) and cover art (not a video).
    let cover = tmp.path().join("cover.png");
    ffmpeg_make(
        &cover,
        &["-f", "lavfi", "-i", "color=c=red:s=64x64", "-frames:v", "1"],
    );
    ffmpeg_make(
        &src,
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-i",
            cover.to_str().unwrap(),
            "-t",
            "6",
            "-map",
            "0:a",
            "-map",
            "1:v",
            "-c:a",
            "libmp3lame",
            "-c:v",
            "png",
            "-disposition:v",
            "attached_pic",
            "-metadata",
            "language=ger",
            "-id3v2_version",
            "3",
        ],
    );
    let (pkg, _) = run(&src, tmp.path(), &small_ladder()).await;
    let pkg = pkg.expect("an audio-only source transcodes");
    assert!(
        pkg.renditions.is_empty() && pkg.artwork.is_none(),
        "{pkg:?}"
    );
    let got: Vec<_> = pkg
        .audio
        .iter()
        .map(|a| {
            (
                a.name.as_str(),
                a.bitrate,
                a.language.as_deref(),
                a.label.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("aac-64k", 64_000, Some("de"), "Deutsch"),
            ("aac-128k", 128_000, Some("de"), "Deutsch")
        ]
    );
    assert!((pkg.duration_s - 6.0).abs() <= 0.5, "{}", pkg.duration_s);
    let master = read(&pkg.dir, "master.m3u8");
    let variants = master_variants(&master);
    assert_eq!(
        variants.iter().map(|v| v.uri.as_str()).collect::<Vec<_>>(),
        ["aac-64k/index.m3u8", "aac-128k/index.m3u8"],
        "{master}"
    );
    assert!(
        variants
            .iter()
            .all(|v| v.resolution.is_none() && v.bandwidth > 0)
    );
    assert_eq!(
        master.matches("CODECS=\"mp4a.40.2\"").count(),
        2,
        "{master}"
    );
    assert!(
        !master.contains("TYPE=AUDIO") && !master.contains("I-FRAME"),
        "{master}"
    );
    let mpd = read(&pkg.dir, "manifest.mpd");
    assert!(!mpd.contains("contentType=\"video\""), "{mpd}");
    assert_eq!(mpd.matches("contentType=\"audio\"").count(), 1, "{mpd}");
    assert!(mpd.contains("lang=\"de\""), "{mpd}");
    for folder in ["aac-64k", "aac-128k"] {
        let playlist = read(&pkg.dir, &format!("{folder}/index.m3u8"));
        let uris = playlist_uris(&playlist);
        assert!((extinf_total(&playlist) - 6.0).abs() <= 0.5);
        decodes(&pkg.dir.join(folder), &uris[1]);
    }
}

#[tokio::test]
async fn an_audio_only_source_keeps_its_other_languages_as_a_group() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("two-languages.mka");
    std::fs::write(
        &src,
        streamgate_testkit::make_audio(4, "mka", &["eng", "fra"]),
    )
    .unwrap();
    let (pkg, _) = run(&src, tmp.path(), &small_ladder()).await;
    let pkg = pkg.expect("transcodes");
    let got: Vec<_> = pkg
        .audio
        .iter()
        .map(|a| (a.name.as_str(), a.language.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("aac-64k", Some("en")),
            ("aac-128k", Some("en")),
            ("audio-fr", Some("fr"))
        ]
    );
    let master = read(&pkg.dir, "master.m3u8");
    // Bit rates are variants; the other language is a rendition of their audio group.
    assert_eq!(
        master_variants(&master)
            .iter()
            .map(|v| v.uri.as_str())
            .collect::<Vec<_>>(),
        ["aac-64k/index.m3u8", "aac-128k/index.m3u8"],
        "{master}"
    );
    assert_eq!(master.matches(",AUDIO=\"sg-audio\"").count(), 2, "{master}");
    assert!(
        master.contains(
            "NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\"\n"
        ),
        "{master}"
    );
    assert!(master.contains("NAME=\"Français\",LANGUAGE=\"fr\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-fr/index.m3u8\""), "{master}");
    let mpd = read(&pkg.dir, "manifest.mpd");
    assert_eq!(mpd.matches("contentType=\"audio\"").count(), 2, "{mpd}");
    assert!(mpd.contains("lang=\"fr\""), "{mpd}");
    for folder in ["aac-64k", "aac-128k", "audio-fr"] {
        let playlist = read(&pkg.dir, &format!("{folder}/index.m3u8"));
        decodes(&pkg.dir.join(folder), &playlist_uris(&playlist)[1]);
    }
}

#[tokio::test]
async fn every_audio_stream_of_a_video_is_a_language() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("film.mkv");
    ffmpeg_make(
        &src,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=660",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=880",
            "-t",
            "4",
            "-map",
            "0",
            "-map",
            "1",
            "-map",
            "2",
            "-map",
            "3",
            "-metadata:s:a:0",
            "language=eng",
            "-metadata:s:a:1",
            "language=fra",
            "-metadata:s:a:2",
            "title=Commentary",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
        ],
    );
    let (pkg, _) = run(&src, tmp.path(), &small_ladder()).await;
    let pkg = pkg.expect("transcodes");
    check_package(&pkg, &[("180p", 240, 180)], 4.0);
    let got: Vec<_> = pkg
        .audio
        .iter()
        .map(|a| (a.name.as_str(), a.language.as_deref(), a.label.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("audio", Some("en"), "English"),
            ("audio-fr", Some("fr"), "Français"),
            ("audio-3", None, "Commentary"),
        ]
    );
    let master = read(&pkg.dir, "master.m3u8");
    assert!(master.contains("NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\""), "{master}");
    assert!(master.contains("NAME=\"Français\",LANGUAGE=\"fr\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-fr/index.m3u8\""), "{master}");
    assert!(master.contains("NAME=\"Commentary\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-3/index.m3u8\""), "{master}");
    let mpd = read(&pkg.dir, "manifest.mpd");
    for lang in ["en", "fr"] {
        assert!(mpd.contains(&format!("contentType=\"audio\" startWithSAP=\"1\" segmentAlignment=\"true\" bitstreamSwitching=\"true\" lang=\"{lang}\"")), "{mpd}");
    }
    assert_eq!(mpd.matches("contentType=\"audio\"").count(), 3, "{mpd}");
}

#[tokio::test]
async fn cancellation_kills_ffmpeg() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src.mp4");
    make_clip(&src, 640, 360, 6, false);
    let (tx, cancel) = watch::channel(false);
    tx.send(true).unwrap();
    let mut cfg = ffmpeg_config();
    cfg.preset = "veryslow".into();
    let r = transcode(&cfg, &small_ladder(), &src, tmp.path(), &|_| {}, cancel).await;
    let e = r.expect_err("cancelled");
    assert!(matches!(e, Error::Shutdown) && !e.is_permanent(), "{e:?}");
}
