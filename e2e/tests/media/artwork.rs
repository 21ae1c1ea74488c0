//! Poster, thumbnail sheets with a WebVTT storyboard, and HLS I-frame playlists, from the same
//! FFmpeg run as the ladder, served gated through the edge: the images decode, the storyboard's
//! cues cover the whole duration and point inside real sheets, and each I-frame byte range
//! (fetched with `Range` through the edge: whole on the miss, a 206 from the cache after)
//! decodes as a key frame with its init segment.

use std::time::Duration;

use streamgate_testkit::{Stack, make_clip, probe_video};

/// `HH:MM:SS.mmm` → seconds.
fn vtt_time(t: &str) -> f64 {
    let parts: Vec<f64> = t.split(':').map(|p| p.parse().unwrap()).collect();
    parts.iter().fold(0.0, |acc, p| acc * 60.0 + p)
}

async fn get(st: &Stack, url: &str) -> bytes::Bytes {
    let r = st.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {url}");
    r.bytes().await.unwrap()
}

#[tokio::test]
async fn poster_storyboard_and_iframe_playlists_come_from_the_same_run() {
    let st = Stack::load().await;
    let seconds = 9;
    let clip = make_clip(640, 360, seconds, true);
    let id = st.upload("artwork", &clip, 1 << 20).await;
    let rec = st.wait_done(&id, Duration::from_secs(240)).await;
    assert_eq!(rec["status"], "ready", "{rec}");
    let duration = rec["duration_s"].as_f64().unwrap();

    // The record lists them (paths under the content, served like segments).
    let art = &rec["artwork"];
    assert_eq!(art["poster"], "poster.jpg", "{rec}");
    // Named at the top of the record too, as the v1 contract lists them.
    assert_eq!(rec["poster"], "poster.jpg", "{rec}");
    assert_eq!(rec["storyboard"], "thumbs/storyboard.vtt", "{rec}");
    assert_eq!(art["storyboard"], "thumbs/storyboard.vtt", "{rec}");
    let (tw, th) = (
        art["thumbnail_width"].as_u64().unwrap(),
        art["thumbnail_height"].as_u64().unwrap(),
    );
    assert_eq!(
        art["iframe_playlists"].as_array().unwrap().len(),
        rec["renditions"].as_array().unwrap().len()
    );

    let token = st.mint(&id, "10m");
    let base = format!("{}/p/{token}/{id}", st.edge);

    // Gated: no token, a token for another content, a tampered one.
    let other = st.create_content("another").await;
    for url in [
        format!("{}/p/nope/{id}/poster.jpg", st.edge),
        format!("{}/p/{}/{id}/poster.jpg", st.edge, st.mint(&other, "10m")),
        format!("{}/p/{}x/{id}/thumbs/storyboard.vtt", st.edge, token),
    ] {
        let r = st.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 403, "{url}");
    }

    // The poster decodes, at the largest rendition's size.
    let r = st
        .http
        .get(format!("{base}/poster.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let (w, h, _) = probe_video(&r.bytes().await.unwrap(), "poster.jpg");
    let top = rec["renditions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (w, h),
        (
            top["width"].as_u64().unwrap(),
            top["height"].as_u64().unwrap()
        )
    );

    // The storyboard: cues back to back from 0 to the duration, each pointing inside a sheet
    // that decodes.
    let vtt = String::from_utf8(
        get(&st, &format!("{base}/thumbs/storyboard.vtt"))
            .await
            .to_vec(),
    )
    .unwrap();
    assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    let mut end = 0.0;
    let mut cues = 0;
    let mut sheets = std::collections::HashMap::new();
    let mut lines = vtt.lines();
    while let Some(line) = lines.next() {
        let Some((a, b)) = line.split_once(" --> ") else {
            continue;
        };
        let (a, b) = (vtt_time(a.trim()), vtt_time(b.trim()));
        assert!(
            (a - end).abs() < 0.002,
            "cues are contiguous: {a} after {end}"
        );
        assert!(b > a);
        end = b;
        cues += 1;
        let target = lines.next().unwrap();
        let (file, frag) = target.split_once("#xywh=").expect("a #xywh= fragment");
        let xywh: Vec<u64> = frag.split(',').map(|n| n.parse().unwrap()).collect();
        assert_eq!((xywh[2], xywh[3]), (tw, th), "{target}");
        if !sheets.contains_key(file) {
            let bytes = get(&st, &format!("{base}/thumbs/{file}")).await;
            sheets.insert(file.to_owned(), probe_video(&bytes, "sheet.jpg"));
        }
        let (sw, sh, _) = sheets[file];
        assert!(
            xywh[0] + xywh[2] <= sw && xywh[1] + xywh[3] <= sh,
            "{target} inside {sw}x{sh}"
        );
    }
    assert!(cues >= 3, "{vtt}");
    assert!(
        (end - duration).abs() < 0.01,
        "the cues cover the duration: {end} vs {duration}"
    );

    // I-frame playlists in the master, one per rendition; each byte range through the edge
    // (Range) is a key frame that decodes with the init segment.
    let master =
        String::from_utf8(get(&st, &format!("{base}/master.m3u8")).await.to_vec()).unwrap();
    let iframe_lines: Vec<&str> = master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-I-FRAME-STREAM-INF:"))
        .collect();
    assert_eq!(
        iframe_lines.len(),
        rec["renditions"].as_array().unwrap().len(),
        "{master}"
    );
    for l in iframe_lines {
        assert!(
            l.contains("BANDWIDTH=") && l.contains("CODECS=\"avc1."),
            "{l}"
        );
        let uri = l.split("URI=\"").nth(1).unwrap().split('"').next().unwrap();
        let folder = uri.rsplit_once('/').unwrap().0;
        let pl = String::from_utf8(get(&st, &format!("{base}/{uri}")).await.to_vec()).unwrap();
        assert!(
            pl.contains("#EXT-X-I-FRAMES-ONLY") && pl.contains("#EXT-X-ENDLIST"),
            "{pl}"
        );
        let init = get(&st, &format!("{base}/{folder}/init.mp4")).await;
        let mut total = 0.0;
        let mut ranges = 0;
        let mut lines = pl.lines();
        while let Some(line) = lines.next() {
            if let Some(d) = line.strip_prefix("#EXTINF:") {
                total += d.trim_end_matches(',').parse::<f64>().unwrap();
            }
            let Some(br) = line.strip_prefix("#EXT-X-BYTERANGE:") else {
                continue;
            };
            let (len, off) = br.split_once('@').unwrap();
            let (len, off): (u64, u64) = (len.parse().unwrap(), off.parse().unwrap());
            let seg = lines.next().unwrap();
            let url = format!("{base}/{folder}/{seg}");
            let range = format!("bytes={off}-{}", off + len - 1);
            // The first request of an object is a miss, answered whole (the edge does not
            // serve ranges while it fills its cache); the same range again is a 206 from it.
            let ranged = || st.http.get(&url).header("range", &range).send();
            let first = ranged().await.unwrap();
            assert_eq!(first.status(), 200, "{seg} {br}");
            assert_eq!(first.headers()["x-cache"], "MISS");
            let whole = first.bytes().await.unwrap();
            let r = ranged().await.unwrap();
            assert_eq!(r.status(), 206, "{seg} {br}");
            assert!(r.headers()["x-cache"].to_str().unwrap().starts_with("HIT"));
            let frame = r.bytes().await.unwrap();
            assert_eq!(frame.len() as u64, len);
            assert!(
                frame[..] == whole[off as usize..(off + len) as usize],
                "{seg} {br}"
            );
            let (_, _, frames) = probe_video(&[&init[..], &frame[..]].concat(), "iframe.mp4");
            assert_eq!(
                frames, 1,
                "{folder}/{seg} {br}: exactly the key frame decodes"
            );
            ranges += 1;
        }
        assert!(ranges >= 2, "{pl}");
        assert!((total - duration).abs() < 0.6, "{total} vs {duration}");
    }
}
