//! The whole media path on real components: upload through origin (tus → S3), transcode
//! (FFmpeg worker on `sg:jobs`), serve through the edge with a playback token. Checks that the
//! package is valid HLS and DASH (playlists parse, every referenced file exists, a segment
//! decodes with its init segment, durations add up) for a landscape clip with audio, a
//! portrait clip without audio and an odd-sized clip; and that the edge refuses bad tokens.

use std::time::Duration;

use serde_json::Value;
use streamgate_testkit::{Stack, make_clip, probe_video};

const READY_TIMEOUT: Duration = Duration::from_secs(240);

/// Resolves `uri` relative to the URL of the playlist that names it.
fn resolve(base: &str, uri: &str) -> String {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return uri.to_owned();
    }
    let dir = &base[..=base.rfind('/').unwrap()];
    format!("{dir}{uri}")
}

fn attr(line: &str, name: &str) -> Option<String> {
    let key = format!("{name}=");
    let i = line.find(&key)? + key.len();
    let rest = &line[i..];
    Some(if let Some(q) = rest.strip_prefix('"') {
        q[..q.find('"')?].to_owned()
    } else {
        rest.split(',').next()?.to_owned()
    })
}

async fn get_ok(st: &Stack, url: &str) -> bytes::Bytes {
    let r = st.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {url}");
    assert!(
        r.headers().contains_key("x-cache"),
        "edge marks the cache tier: {url}"
    );
    r.bytes().await.unwrap()
}

struct MediaPlaylist {
    init: String,
    segments: Vec<String>,
    duration: f64,
}

async fn media_playlist(st: &Stack, url: &str) -> MediaPlaylist {
    let text = String::from_utf8(get_ok(st, url).await.to_vec()).unwrap();
    assert!(text.starts_with("#EXTM3U"), "{url}: {text}");
    assert!(
        text.contains("#EXT-X-ENDLIST"),
        "VOD playlist is complete: {url}"
    );
    let mut init = None;
    let mut segments = Vec::new();
    let mut duration = 0.0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            duration += rest.split(',').next().unwrap().parse::<f64>().unwrap();
        } else if line.starts_with("#EXT-X-MAP") {
            init = Some(resolve(url, &attr(line, "URI").unwrap()));
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            segments.push(resolve(url, line.trim()));
        }
    }
    MediaPlaylist {
        init: init.expect("CMAF playlists have EXT-X-MAP"),
        segments,
        duration,
    }
}

/// Decodes init + first segment with ffprobe; returns (frames, width, height) of the video.
fn decode(init: &[u8], seg: &[u8]) -> (u64, u64, u64) {
    let (w, h, frames) = probe_video(&[init, seg].concat(), "joined.mp4");
    (frames, w, h)
}

/// Checks a ready package through the edge; returns the rendition sizes seen.
async fn check_package(
    st: &Stack,
    id: &str,
    rec: &Value,
    seconds: f64,
    audio: bool,
) -> Vec<(u64, u64)> {
    let token = st.mint(id, "10m");
    let master_url = format!("{}/p/{token}/{id}/master.m3u8", st.edge);
    let master = String::from_utf8(get_ok(st, &master_url).await.to_vec()).unwrap();
    assert!(master.starts_with("#EXTM3U"), "{master}");
    let renditions = rec["renditions"].as_array().unwrap();
    let variants: Vec<(String, String)> = master
        .lines()
        .zip(master.lines().skip(1))
        .filter(|(a, _)| a.starts_with("#EXT-X-STREAM-INF"))
        .map(|(a, b)| (a.to_owned(), b.trim().to_owned()))
        .collect();
    assert_eq!(
        variants.len(),
        renditions.len(),
        "one variant per rendition: {master}"
    );
    assert_eq!(
        master.contains("TYPE=AUDIO"),
        audio,
        "audio group iff audio: {master}"
    );

    let mut sizes = Vec::new();
    for (inf, uri) in &variants {
        assert!(
            attr(inf, "BANDWIDTH").unwrap().parse::<u64>().unwrap() > 0,
            "{inf}"
        );
        let res = attr(inf, "RESOLUTION").expect("RESOLUTION");
        let (w, h) = res.split_once('x').unwrap();
        let (w, h): (u64, u64) = (w.parse().unwrap(), h.parse().unwrap());
        assert!(w % 2 == 0 && h % 2 == 0, "even dimensions: {res}");
        sizes.push((w, h));
        let pl = media_playlist(st, &resolve(&master_url, uri)).await;
        assert!(
            (pl.duration - seconds).abs() < 0.6,
            "durations add up: {} vs {seconds}",
            pl.duration
        );
        let init = get_ok(st, &pl.init).await;
        let mut first = None;
        for seg in &pl.segments {
            let b = get_ok(st, seg).await;
            assert!(!b.is_empty(), "{seg}");
            first.get_or_insert(b);
        }
        let first = first.expect("at least one segment");
        let (frames, dw, dh) = decode(&init, &first);
        assert!(frames > 0, "segment decodes");
        assert_eq!((dw, dh), (w, h), "decoded size matches RESOLUTION");
    }
    if audio {
        let media_line = master.lines().find(|l| l.contains("TYPE=AUDIO")).unwrap();
        let pl = media_playlist(st, &resolve(&master_url, &attr(media_line, "URI").unwrap())).await;
        assert!((pl.duration - seconds).abs() < 0.6);
        for seg in &pl.segments {
            get_ok(st, seg).await;
        }
    }

    // DASH over the same segments.
    let mpd_url = format!("{}/p/{token}/{id}/manifest.mpd", st.edge);
    let mpd = String::from_utf8(get_ok(st, &mpd_url).await.to_vec()).unwrap();
    assert!(mpd.contains("<MPD") && mpd.contains("</MPD>"), "{mpd}");
    let reps = mpd.matches("<Representation ").count();
    assert_eq!(reps, renditions.len() + usize::from(audio), "{mpd}");
    assert!(mpd.contains("SegmentTemplate"), "{mpd}");

    // Edge bytes are origin's bytes; ranges at origin are exact.
    let first_variant = resolve(&master_url, &variants[0].1);
    let pl = media_playlist(st, &first_variant).await;
    let seg_url = &pl.segments[0];
    let rel = seg_url.split(&format!("/{id}/")).nth(1).unwrap();
    let via_edge = get_ok(st, seg_url).await;
    let r = st
        .internal_get(&format!("/v/{id}/{rel}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let via_origin = r.bytes().await.unwrap();
    assert_eq!(via_edge, via_origin);
    let r = st
        .internal_get(&format!("/v/{id}/{rel}"))
        .header("range", "bytes=10-109")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 10-109/{}", via_origin.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap(), via_origin.slice(10..110));
    let r = st
        .internal_get(&format!("/v/{id}/{rel}"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    sizes
}

async fn upload_clip(
    st: &Stack,
    title: &str,
    w: u32,
    h: u32,
    secs: u32,
    audio: bool,
) -> (String, Value) {
    let clip = make_clip(w, h, secs, audio);
    let id = st.upload(title, &clip, 256 * 1024).await;
    let rec = st.wait_done(&id, READY_TIMEOUT).await;
    (id, rec)
}

#[tokio::test]
async fn landscape_portrait_and_odd_sizes_package_and_play_through_the_edge() {
    let st = Stack::load().await;
    let (land, portrait, odd) = tokio::join!(
        upload_clip(&st, "landscape", 1280, 720, 6, true),
        upload_clip(&st, "portrait", 360, 640, 5, false),
        upload_clip(&st, "odd", 321, 241, 4, true),
    );

    let (id, rec) = land;
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["progress"], 100.0);
    assert!(
        (rec["duration_s"].as_f64().unwrap() - 6.0).abs() < 0.5,
        "{rec}"
    );
    let sizes = check_package(&st, &id, &rec, 6.0, true).await;
    let mut heights: Vec<u64> = sizes.iter().map(|s| s.1).collect();
    heights.sort();
    assert_eq!(
        heights,
        vec![360, 540, 720],
        "default ladder capped at 720p"
    );
    for (w, h) in &sizes {
        assert!(
            (*w as f64 / *h as f64 - 16.0 / 9.0).abs() < 0.02,
            "aspect kept: {w}x{h}"
        );
    }

    let (id, rec) = portrait;
    assert_eq!(rec["status"], "ready", "{rec}");
    let sizes = check_package(&st, &id, &rec, 5.0, false).await;
    assert_eq!(
        sizes.len(),
        1,
        "a 360-wide portrait source only fits the 360p rung: {sizes:?}"
    );
    for (w, h) in &sizes {
        assert!(w < h, "portrait stays portrait: {w}x{h}");
    }

    let (id, rec) = odd;
    assert_eq!(rec["status"], "ready", "{rec}");
    let sizes = check_package(&st, &id, &rec, 4.0, true).await;
    assert_eq!(sizes.len(), 1, "{sizes:?}");
    let (w, h) = sizes[0];
    assert!(
        w.abs_diff(321) <= 1 && h.abs_diff(241) <= 1,
        "source size kept, made even: {w}x{h}"
    );
}

#[tokio::test]
async fn a_text_file_ends_failed_with_a_reason() {
    let st = Stack::load().await;
    let id = st
        .upload(
            "notes",
            b"this is a text file, not a video\n".repeat(100).as_slice(),
            1000,
        )
        .await;
    let rec = st.wait_done(&id, Duration::from_secs(60)).await;
    assert_eq!(rec["status"], "failed", "{rec}");
    assert!(
        rec["error"].as_str().unwrap().contains("not a media file"),
        "{rec}"
    );
}

#[tokio::test]
async fn the_edge_refuses_missing_tampered_expired_and_foreign_tokens() {
    let st = Stack::load().await;
    let clip = make_clip(320, 180, 2, false);
    let (a, b) = tokio::join!(
        st.upload("gate-a", &clip, 1 << 20),
        st.upload("gate-b", &clip, 1 << 20)
    );
    assert_eq!(st.wait_done(&a, READY_TIMEOUT).await["status"], "ready");

    let good = st.mint(&a, "10m");
    let url = |t: &str| format!("{}/p/{t}/{a}/master.m3u8", st.edge);
    let r = st.http.get(url(&good)).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let reason = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 403);
        let v: Value = r.json().await.unwrap();
        v["reason"].as_str().unwrap_or_default().to_owned()
    };
    // no token at all
    let r = st
        .http
        .get(format!("{}/p//{a}/master.m3u8", st.edge))
        .send()
        .await
        .unwrap();
    assert!(matches!(r.status().as_u16(), 400 | 403), "{}", r.status());
    let r = st
        .http
        .get(format!("{}/p/{a}/master.m3u8", st.edge))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(r.status().as_u16(), 400 | 403 | 404),
        "{}",
        r.status()
    );
    // tampered: flip one character in the middle
    let mut t: Vec<char> = good.chars().collect();
    let i = t.len() / 2;
    t[i] = if t[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = t.into_iter().collect();
    let why = reason(st.http.get(url(&tampered)).send().await.unwrap()).await;
    assert!(
        ["bad_signature", "malformed", "wrong_content", "unknown_key"].contains(&why.as_str()),
        "{why}"
    );
    // expired
    let short = st.mint(&a, "1s");
    let start = std::time::Instant::now();
    loop {
        let r = st.http.get(url(&short)).send().await.unwrap();
        if r.status() == 403 {
            assert_eq!(reason(r).await, "expired");
            break;
        }
        assert_eq!(r.status(), 200, "a live token plays");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the token never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // a token for another content
    let other = st.mint(&b, "10m");
    assert_eq!(
        reason(st.http.get(url(&other)).send().await.unwrap()).await,
        "wrong_content"
    );
    // garbage
    assert_eq!(
        reason(st.http.get(url("not-a-token")).send().await.unwrap()).await,
        "malformed"
    );
}
