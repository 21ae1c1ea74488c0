//! Captions added to a packaged video without re-encoding it: WebVTT and SRT (converted)
//! through `PUT /v1/contents/{id}/captions/{lang}`, the HLS `SUBTITLES` group and the DASH text
//! adaptation sets appearing at an edge that had cached the manifests before (origin told it),
//! replaced and removed the same way; what another creator, a viewer without a token and a
//! crafted file get; captions given before the video is ready published when it is.
//! (hls.js and dash.js showing the tracks in Chromium: `tests/players.rs`.)

use std::time::Duration;

use serde_json::Value;
use streamgate_testkit::{Stack, Wallet, eventually, make_clip};

const VTT_EN: &str = "WEBVTT\n\nNOTE a comment the package drops\n\n\
    00:00:01.000 --> 00:00:02.500\nHello <b>there</b>\n\n\
    greeting-2\n00:00:03.000 --> 00:00:04.000 align:start\nSecond line\n";

const SRT_FR: &str = "1\r\n00:00:01,000 --> 00:00:02,000\r\n<i>Bonjour</i> & <font color=\"red\">salut</font>\r\n\r\n\
    2\r\n00:00:02,500 --> 00:00:03,750\r\n<script>alert(1)</script>Au revoir\r\n";

async fn put_captions(
    st: &Stack,
    id: &str,
    lang_and_query: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let r = st
        .http
        .put(format!(
            "{}/v1/contents/{id}/captions/{lang_and_query}",
            st.origin
        ))
        .header("authorization", st.bearer())
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get_text(st: &Stack, url: &str) -> (u16, String) {
    let r = st.http.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn stored_keys(st: &Stack, id: &str) -> Vec<String> {
    let out = st
        .s3()
        .list_objects_v2()
        .bucket(&st.bucket)
        .prefix(format!("media/{id}/captions/"))
        .send()
        .await
        .unwrap();
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn captions_join_a_ready_package_and_edges_see_them() {
    let st = Stack::load().await;
    let clip = make_clip(640, 360, 6, true);
    let id = st.upload("captions", &clip, 1 << 20).await;
    let rec = st.wait_done(&id, Duration::from_secs(240)).await;
    assert_eq!(rec["status"], "ready", "{rec}");

    // The edge caches both manifests before any caption exists.
    let token = st.mint(&id, "10m");
    let base = format!("{}/p/{token}/{id}", st.edge);
    for m in ["master.m3u8", "manifest.mpd"] {
        let (s, body) = get_text(&st, &format!("{base}/{m}")).await;
        assert_eq!(s, 200);
        assert!(!body.contains("SUBTITLES") && !body.contains("text/vtt"));
        let r = st.http.get(format!("{base}/{m}")).send().await.unwrap();
        assert_eq!(r.headers()["x-cache"], "HIT-L1", "{m}");
    }

    // English as WebVTT, French as SRT.
    let (s, en) = put_captions(&st, &id, "en?kind=captions", "text/vtt", VTT_EN).await;
    assert_eq!(s, 201, "{en}");
    assert_eq!(en["lang"], "en");
    assert_eq!(en["label"], "English");
    assert_eq!(en["kind"], "captions");
    assert_eq!(en["cues"], 2);
    assert_eq!(en["playlist"], "captions/en.m3u8");
    let en_uri = en["uri"].as_str().unwrap().to_owned();
    assert!(
        en_uri.starts_with("captions/en-") && en_uri.ends_with(".vtt"),
        "{en}"
    );
    let (s, fr) = put_captions(&st, &id, "FR", "application/x-subrip", SRT_FR).await;
    assert_eq!(s, 201, "{fr}");
    assert_eq!(
        (fr["lang"].as_str(), fr["label"].as_str()),
        (Some("fr"), Some("Français"))
    );

    // The edge had both manifests cached; origin told it, so the next read has the tracks.
    eventually(
        "the edge serves the new master",
        Duration::from_secs(10),
        || async {
            get_text(&st, &format!("{base}/master.m3u8"))
                .await
                .1
                .contains("LANGUAGE=\"fr\"")
        },
    )
    .await;
    let (_, master) = get_text(&st, &format!("{base}/master.m3u8")).await;
    assert!(
        master.contains(
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"sg-subs\",NAME=\"English\",LANGUAGE=\"en\""
        ),
        "{master}"
    );
    let variants = master.matches("#EXT-X-STREAM-INF:").count();
    assert!(variants > 0);
    assert_eq!(
        master.matches(",SUBTITLES=\"sg-subs\"").count(),
        variants,
        "{master}"
    );
    eventually(
        "the edge serves the new MPD",
        Duration::from_secs(10),
        || async {
            get_text(&st, &format!("{base}/manifest.mpd"))
                .await
                .1
                .contains("lang=\"fr\"")
        },
    )
    .await;
    let (_, mpd) = get_text(&st, &format!("{base}/manifest.mpd")).await;
    assert!(
        mpd.contains("contentType=\"text\" mimeType=\"text/vtt\" lang=\"en\""),
        "{mpd}"
    );
    assert!(
        mpd.contains(&format!("<BaseURL>{en_uri}</BaseURL>")),
        "{mpd}"
    );

    // The playlists and files, gated through the edge like segments.
    let (s, pl) = get_text(&st, &format!("{base}/captions/en.m3u8")).await;
    assert_eq!(s, 200);
    let file = en_uri.strip_prefix("captions/").unwrap();
    assert!(pl.contains(&format!("\n{file}\n#EXT-X-ENDLIST")), "{pl}");
    let (s, vtt) = get_text(&st, &format!("{base}/{en_uri}")).await;
    assert_eq!(s, 200);
    assert_eq!(
        vtt,
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHello <b>there</b>\n\n\
         greeting-2\n00:00:03.000 --> 00:00:04.000 align:start\nSecond line\n"
    );
    let (s, fr_vtt) = get_text(&st, &format!("{base}/{}", fr["uri"].as_str().unwrap())).await;
    assert_eq!(s, 200);
    assert!(
        fr_vtt.starts_with(
            "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\n<i>Bonjour</i> &amp; salut\n"
        ),
        "{fr_vtt}"
    );
    assert!(
        !fr_vtt.contains("<script>") && fr_vtt.contains("alert(1)Au revoir"),
        "{fr_vtt}"
    );

    // Gated: no token, another content's token.
    let other = st.create_content("another").await;
    for url in [
        format!("{}/p/nope/{id}/{en_uri}", st.edge),
        format!(
            "{}/p/{}/{id}/captions/en.m3u8",
            st.edge,
            st.mint(&other, "10m")
        ),
    ] {
        assert_eq!(
            st.http.get(&url).send().await.unwrap().status(),
            403,
            "{url}"
        );
    }

    // Another creator cannot add, replace or remove tracks, and stores nothing trying.
    let before = stored_keys(&st, &id).await;
    let mallory = st.as_creator(st.sign_in(&Wallet::fresh()).await);
    let (s, body) = put_captions(&mallory, &id, "de", "text/vtt", VTT_EN).await;
    assert_eq!(s, 403, "{body}");
    let (s, _) = put_captions(&mallory, &id, "en", "text/vtt", VTT_EN).await;
    assert_eq!(s, 403);
    let r = mallory
        .http
        .delete(format!("{}/v1/contents/{id}/captions/en", st.origin))
        .header("authorization", mallory.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = st
        .http
        .put(format!("{}/v1/contents/{id}/captions/de", st.origin))
        .body(VTT_EN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(stored_keys(&st, &id).await, before);

    // Crafted input: a clear 4xx naming the problem, nothing stored.
    // Just over the 2 MiB limit (the server reads that far before it refuses).
    let huge = format!("WEBVTT\n\n{}", "a".repeat((2 << 20) + 100));
    for (lang, ct, body, want_status, want) in [
        (
            "en_US",
            "text/vtt",
            VTT_EN.to_owned(),
            400,
            "not a language tag",
        ),
        (
            "en%2F..%2F..%2Fx",
            "text/vtt",
            VTT_EN.to_owned(),
            400,
            "not a language tag",
        ),
        (
            "de",
            "text/vtt",
            "hello".to_owned(),
            400,
            "starts with the line WEBVTT",
        ),
        (
            "de",
            "text/vtt",
            "WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nx\n".into(),
            400,
            "line 3",
        ),
        (
            "de",
            "text/vtt",
            "WEBVTT\n\n00:01.000 --> 00:02.000 onclick:x\nx\n".into(),
            400,
            "cue setting",
        ),
        (
            "de",
            "application/x-subrip",
            "no cues here".to_owned(),
            400,
            "line 1",
        ),
        ("de", "text/vtt", huge, 413, "larger than"),
        (
            "de?label=%22q%22",
            "text/vtt",
            VTT_EN.to_owned(),
            400,
            "label",
        ),
        (
            "de?colour=red",
            "text/vtt",
            VTT_EN.to_owned(),
            400,
            "unknown field",
        ),
    ] {
        let (s, body) = put_captions(&st, &id, lang, ct, &body).await;
        assert_eq!(s, want_status, "{lang}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(want),
            "{lang}: {body}"
        );
    }
    assert_eq!(stored_keys(&st, &id).await, before);
    let page = st.metrics_page("ORIGIN_URL").await;
    assert!(
        streamgate_testkit::metric(
            &page,
            "streamgate_origin_captions_total{outcome=\"refused\"}"
        ) >= 4.0
    );

    // Replacing English: a new file name; the old file is gone from S3 and from the package.
    let (s, en2) = put_captions(
        &st,
        &id,
        "en?label=English%20SDH&kind=captions",
        "text/vtt",
        "WEBVTT\n\n00:00:00.500 --> 00:00:05.000\nReplaced\n",
    )
    .await;
    assert_eq!(s, 200, "{en2}");
    let en2_uri = en2["uri"].as_str().unwrap().to_owned();
    assert_ne!(en2_uri, en_uri);
    let keys = stored_keys(&st, &id).await;
    assert!(!keys.iter().any(|k| k.ends_with(&en_uri)), "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with(&en2_uri)), "{keys:?}");
    eventually(
        "the edge serves the replaced track",
        Duration::from_secs(10),
        || async {
            get_text(&st, &format!("{base}/manifest.mpd"))
                .await
                .1
                .contains(&en2_uri)
        },
    )
    .await;
    let (_, master) = get_text(&st, &format!("{base}/master.m3u8")).await;
    assert!(master.contains("NAME=\"English SDH\""), "{master}");
    assert_eq!(master.matches("TYPE=SUBTITLES").count(), 2, "{master}");

    // Removing French: gone from both manifests at the edge, its files deleted; twice is 404.
    let del = |lang: &'static str| {
        let (st, id) = (&st, &id);
        async move {
            st.http
                .delete(format!("{}/v1/contents/{id}/captions/{lang}", st.origin))
                .header("authorization", st.bearer())
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(del("fr").await, 204);
    assert_eq!(del("fr").await, 404);
    eventually("the edge drops French", Duration::from_secs(10), || async {
        let m = get_text(&st, &format!("{base}/master.m3u8")).await.1;
        let d = get_text(&st, &format!("{base}/manifest.mpd")).await.1;
        !m.contains("LANGUAGE=\"fr\"")
            && !d.contains("lang=\"fr\"")
            && m.contains("LANGUAGE=\"en\"")
    })
    .await;
    assert!(
        !stored_keys(&st, &id)
            .await
            .iter()
            .any(|k| k.contains("/captions/fr"))
    );
    let (s, _) = get_text(&st, &format!("{base}/captions/fr.m3u8")).await;
    assert_eq!(s, 404);

    // The record lists the tracks, for its owner and for anyone.
    let public = st.content(&id).await; // no session: the public view
    let langs: Vec<&str> = public["captions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["lang"].as_str().unwrap())
        .collect();
    assert_eq!(langs, ["en"], "{public}");
}

#[tokio::test]
async fn captions_given_before_the_video_is_ready_are_published_with_it() {
    let st = Stack::load().await;
    let id = st.create_content("captions first").await;
    let (s, body) = put_captions(&st, &id, "es", "application/x-subrip", SRT_FR).await;
    assert_eq!(s, 201, "{body}");
    // Not ready: nothing is served, the file waits in the bucket.
    assert_eq!(stored_keys(&st, &id).await.len(), 1);

    let clip = make_clip(320, 240, 4, false);
    let url = st.tus_create(&id, clip.len() as u64).await;
    assert_eq!(st.tus_patch(&url, 0, clip).await.status(), 204);
    let rec = st.wait_done(&id, Duration::from_secs(240)).await;
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["captions"][0]["label"], "Español", "{rec}");

    let token = st.mint(&id, "10m");
    let base = format!("{}/p/{token}/{id}", st.edge);
    let (s, master) = get_text(&st, &format!("{base}/master.m3u8")).await;
    assert_eq!(s, 200);
    assert!(master.contains("LANGUAGE=\"es\",DEFAULT=NO"), "{master}");
    let (_, mpd) = get_text(&st, &format!("{base}/manifest.mpd")).await;
    assert!(mpd.contains("lang=\"es\""), "{mpd}");
    let (s, pl) = get_text(&st, &format!("{base}/captions/es.m3u8")).await;
    assert_eq!(s, 200, "{pl}");
    let duration = rec["duration_s"].as_f64().unwrap();
    assert!(pl.contains(&format!("#EXTINF:{duration:.3},")), "{pl}");
}
