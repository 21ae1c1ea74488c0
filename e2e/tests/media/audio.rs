//! Audio through the stack: an audio-only upload (a podcast's MP3, a WAV, a FLAC, a bilingual
//! M4A) packages as an AAC ladder instead of failing (other languages as an audio group), and a video with several audio streams keeps each as an
//! alternate rendition with its language; both served gated through the edge, segments
//! decoding as AAC. (hls.js and dash.js playing them in Chromium: `tests/players.rs`.)

use std::{process::Command, time::Duration};

use serde_json::Value;
use streamgate_testkit::{Stack, make_audio, make_multi_audio_clip};

async fn get(st: &Stack, url: &str) -> bytes::Bytes {
    let r = st.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {url}");
    r.bytes().await.unwrap()
}

/// ffprobe on the init segment and the first media segment of `folder`, joined: the codec of
/// each stream it decodes.
async fn decoded_codecs(st: &Stack, base: &str, folder: &str) -> Vec<String> {
    let playlist = String::from_utf8(
        get(st, &format!("{base}/{folder}/index.m3u8"))
            .await
            .to_vec(),
    )
    .unwrap();
    let first = playlist
        .lines()
        .find(|l| l.ends_with(".m4s"))
        .unwrap_or_else(|| panic!("no segment in {playlist}"));
    let mut bytes = get(st, &format!("{base}/{folder}/init.mp4")).await.to_vec();
    bytes.extend_from_slice(&get(st, &format!("{base}/{folder}/{first}")).await);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("joined.mp4");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-show_entries"])
        .args([
            "stream=codec_type,codec_name,nb_read_packets",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.lines().all(|l| !l.ends_with(",0")),
        "{folder}: nothing decoded: {text}"
    );
    text.lines().map(str::to_owned).collect()
}

fn names(v: &Value) -> Vec<(String, Option<String>)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["language"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test]
async fn audio_only_uploads_package_as_an_aac_ladder() {
    let st = Stack::load().await;
    let mp3 = make_audio(6, "mp3", &["ger"]);
    let id = st.upload("podcast", &mp3, 1 << 20).await;
    let rec = st.wait_done(&id, Duration::from_secs(240)).await;
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["renditions"].as_array().unwrap().len(), 0, "{rec}");
    assert_eq!(rec["has_audio"], true);
    assert!(rec["artwork"].is_null(), "{rec}");
    assert_eq!(
        names(&rec["audio"]),
        [
            ("aac-64k".to_owned(), Some("de".to_owned())),
            ("aac-128k".to_owned(), Some("de".to_owned()))
        ],
        "{rec}"
    );
    assert!(
        (rec["duration_s"].as_f64().unwrap() - 6.0).abs() < 0.5,
        "{rec}"
    );

    let token = st.mint(&id, "10m");
    let base = format!("{}/p/{token}/{id}", st.edge);
    let master =
        String::from_utf8(get(&st, &format!("{base}/master.m3u8")).await.to_vec()).unwrap();
    assert_eq!(master.matches("#EXT-X-STREAM-INF:").count(), 2, "{master}");
    assert_eq!(
        master.matches("CODECS=\"mp4a.40.2\"").count(),
        2,
        "{master}"
    );
    assert!(!master.contains("RESOLUTION"), "{master}");
    let mpd = String::from_utf8(get(&st, &format!("{base}/manifest.mpd")).await.to_vec()).unwrap();
    assert!(
        mpd.contains("contentType=\"audio\"") && mpd.contains("lang=\"de\""),
        "{mpd}"
    );
    assert!(!mpd.contains("contentType=\"video\""), "{mpd}");
    for folder in ["aac-64k", "aac-128k"] {
        let codecs = decoded_codecs(&st, &base, folder).await;
        assert_eq!(codecs.len(), 1, "{folder}: {codecs:?}");
        assert!(codecs[0].starts_with("aac,audio,"), "{folder}: {codecs:?}");
    }
    // Gated like any package.
    let r = st
        .http
        .get(format!("{}/p/nope/{id}/master.m3u8", st.edge))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Two languages in an M4A: the first is the ladder, the second an alternate rendition.
    let id = st
        .upload("bilingual", &make_audio(4, "m4a", &["eng", "fra"]), 1 << 20)
        .await;
    let rec = st.wait_done(&id, Duration::from_secs(240)).await;
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(
        names(&rec["audio"]),
        [
            ("aac-64k".to_owned(), Some("en".to_owned())),
            ("aac-128k".to_owned(), Some("en".to_owned())),
            ("audio-fr".to_owned(), Some("fr".to_owned()))
        ],
        "{rec}"
    );
    let base = format!("{}/p/{}/{id}", st.edge, st.mint(&id, "10m"));
    let master =
        String::from_utf8(get(&st, &format!("{base}/master.m3u8")).await.to_vec()).unwrap();
    assert_eq!(master.matches("#EXT-X-STREAM-INF:").count(), 2, "{master}");
    assert!(
        master.contains(
            "LANGUAGE=\"fr\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-fr/index.m3u8\""
        ),
        "{master}"
    );
    assert!(decoded_codecs(&st, &base, "audio-fr").await[0].starts_with("aac,audio,"));

    // WAV and FLAC (no language) are accepted too.
    for ext in ["wav", "flac"] {
        let id = st.upload(ext, &make_audio(3, ext, &[]), 1 << 20).await;
        let rec = st.wait_done(&id, Duration::from_secs(240)).await;
        assert_eq!(rec["status"], "ready", "{ext}: {rec}");
        assert_eq!(rec["audio"][0]["label"], "Audio 1", "{ext}: {rec}");
        assert!(rec["audio"][0]["language"].is_null(), "{ext}: {rec}");
    }
}

#[tokio::test]
async fn every_audio_language_of_a_video_is_kept() {
    let st = Stack::load().await;
    let clip = make_multi_audio_clip(320, 240, 4, &["eng", "fra"]);
    let id = st.upload("two languages", &clip, 1 << 20).await;
    let rec = st.wait_done(&id, Duration::from_secs(240)).await;
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(
        names(&rec["audio"]),
        [
            ("audio".to_owned(), Some("en".to_owned())),
            ("audio-fr".to_owned(), Some("fr".to_owned()))
        ],
        "{rec}"
    );
    assert_eq!(rec["audio"][1]["label"], "Français");

    let token = st.mint(&id, "10m");
    let base = format!("{}/p/{token}/{id}", st.edge);
    let master =
        String::from_utf8(get(&st, &format!("{base}/master.m3u8")).await.to_vec()).unwrap();
    assert!(
        master.contains("NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES"),
        "{master}"
    );
    assert!(
        master.contains("NAME=\"Français\",LANGUAGE=\"fr\",DEFAULT=NO"),
        "{master}"
    );
    let mpd = String::from_utf8(get(&st, &format!("{base}/manifest.mpd")).await.to_vec()).unwrap();
    assert!(
        mpd.contains("lang=\"en\"") && mpd.contains("lang=\"fr\""),
        "{mpd}"
    );
    for folder in ["audio", "audio-fr"] {
        let codecs = decoded_codecs(&st, &base, folder).await;
        assert!(codecs[0].starts_with("aac,audio,"), "{folder}: {codecs:?}");
    }
}
