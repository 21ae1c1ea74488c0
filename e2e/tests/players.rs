//! Real players in a real browser: hls.js and dash.js in headless Chromium
//! (`scripts/players/play.mjs`, page served from another origin so CORS is exercised) play a
//! gated video through the stack's edge; the same with a tampered token fails; cookie mode
//! (grant with `?mode=cookie&redirect=hls`, token in an HttpOnly cookie) plays too; both players
//! play over HTTPS/HTTP2 from the edge's TLS listener with the stack's CA trusted; both offer
//! the caption tracks added after packaging (WebVTT and SRT) and the source's two audio
//! languages, with their languages, and show the chosen caption track's cues at the times the
//! file gives, and switch to the second audio language and play on; both play an audio-only
//! upload and switch its language too; both play an encrypted (`cenc`) video with its key from
//! the edge's ClearKey license (EME) and cannot without it.

use std::{process::Command, time::Duration};

use serde_json::Value;
use streamgate_testkit::{Stack, Wallet, grant, make_audio, make_multi_audio_clip};

/// Runs the player check, its page served from the stack's `PLAYER_PAGE_PORT` (the one page
/// origin the stack edge's CORS list names, besides `http://player.example`); (exit success,
/// its JSON report). The one test of this binary runs the players one after another.
fn play(st: &Stack, args: &[&str]) -> (bool, Value) {
    let script = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../scripts/players/play.mjs");
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .args(["--page-port", &st.env_value("PLAYER_PAGE_PORT")])
        .output()
        .expect("node scripts/players/play.mjs (run make setup)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "play.mjs printed no JSON ({e}): {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

#[tokio::test]
async fn hls_js_and_dash_js_play_through_the_edge_in_chromium() {
    let st = Stack::load().await;
    let clip = make_multi_audio_clip(640, 360, 8, &["eng", "fra"]);
    let id = st.upload("players", &clip, 1 << 20).await;
    assert_eq!(
        st.wait_done(&id, Duration::from_secs(120)).await["status"],
        "ready"
    );
    // Two caption tracks, added to the ready package (English as WebVTT, French as SRT).
    for (lang, content_type, text) in [
        (
            "en",
            "text/vtt",
            "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHello\n\n00:00:04.000 --> 00:00:06.000\nWorld\n",
        ),
        (
            "fr",
            "application/x-subrip",
            "1\n00:00:01,000 --> 00:00:03,000\nBonjour\n",
        ),
    ] {
        let r = st
            .http
            .put(format!("{}/v1/contents/{id}/captions/{lang}", st.origin))
            .header("authorization", st.bearer())
            .header("content-type", content_type)
            .body(text)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{lang}: {:?}", r.text().await);
    }
    let viewer = st.sign_in(&Wallet::new(51)).await;
    let (status, body) = grant(&st, &id, Some(&viewer)).await;
    assert_eq!(status, 200, "{body}");

    for (kind, url) in [("hls", &body["hls"]), ("dash", &body["dash"])] {
        let url = format!("{}{}", st.edge, url.as_str().unwrap());
        let (ok, report) = play(
            &st,
            &[
                "--kind",
                kind,
                "--url",
                &url,
                "--seconds",
                "4",
                "--text-lang",
                "en",
                "--audio-lang",
                "fr",
            ],
        );
        assert!(ok, "{kind}: {report}");
        assert_eq!(report["played"], true, "{report}");
        assert!(report["currentTime"].as_f64().unwrap() > 1.0, "{report}");
        assert_eq!(report["bad"].as_array().unwrap().len(), 0, "{report}");
        // The player offers both languages; the English track shows the file's cues.
        let mut langs: Vec<&str> = report["tracks"]["text"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["lang"].as_str().unwrap_or_default())
            .collect();
        langs.sort_unstable();
        assert_eq!(langs, ["en", "fr"], "{kind}: {report}");
        // Both audio languages, as the player lists them.
        let mut audio: Vec<&str> = report["tracks"]["audio"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["lang"].as_str().unwrap_or_default())
            .collect();
        audio.sort_unstable();
        assert_eq!(audio, ["en", "fr"], "{kind}: {report}");
        // Switched to French, playback went on in it.
        assert_eq!(report["audioSwitch"]["from"], "en", "{kind}: {report}");
        assert_eq!(report["audioSwitch"]["to"], "fr", "{kind}: {report}");
        let text = &report["text"];
        assert_eq!(text["language"], "en", "{kind}: {report}");
        assert_eq!(text["count"], 2, "{kind}: {report}");
        let first = &text["first"][0];
        assert_eq!(first["text"], "Hello", "{kind}: {report}");
        let start = first["start"].as_f64().unwrap();
        assert!(
            (start - 1.0).abs() < 0.1,
            "{kind}: cue at {start}: {report}"
        );
        let text = report.to_string();
        assert!(
            !text.contains(body["token"].as_str().unwrap()),
            "token leaked"
        );
    }

    // An audio-only upload plays in both (the video element plays the AAC ladder), and its
    // second language is one switch away.
    let podcast = st
        .upload("podcast", &make_audio(6, "m4a", &["eng", "fra"]), 1 << 20)
        .await;
    assert_eq!(
        st.wait_done(&podcast, Duration::from_secs(120)).await["status"],
        "ready"
    );
    let (status, pod) = grant(&st, &podcast, Some(&viewer)).await;
    assert_eq!(status, 200, "{pod}");
    for (kind, url) in [("hls", &pod["hls"]), ("dash", &pod["dash"])] {
        let url = format!("{}{}", st.edge, url.as_str().unwrap());
        let (ok, report) = play(
            &st,
            &[
                "--kind",
                kind,
                "--url",
                &url,
                "--seconds",
                "3",
                "--audio-lang",
                "fr",
            ],
        );
        assert!(ok, "audio only, {kind}: {report}");
        assert_eq!(report["audioSwitch"]["to"], "fr", "{kind}: {report}");
        assert!(report["currentTime"].as_f64().unwrap() > 1.0, "{report}");
    }

    // An encrypted (cenc) video gated by an allowlist: both players get the key through EME
    // ClearKey from the license URL of the grant, under the viewer's token, and play; without
    // the license they cannot.
    let viewer_wallet = Wallet::new(51);
    let allow = serde_json::json!({"allow": [format!("eip155:31337:{}", viewer_wallet.address)]});
    let secret = st
        .upload_with(
            serde_json::json!({"title": "encrypted", "policy": allow, "encryption": "cenc"}),
            &make_multi_audio_clip(640, 360, 6, &["eng"]),
        )
        .await;
    assert_eq!(
        st.wait_done(&secret, Duration::from_secs(120)).await["status"],
        "ready"
    );
    let (status, enc) = grant(&st, &secret, Some(&viewer)).await;
    assert_eq!(status, 200, "{enc}");
    let license = enc["license"]
        .as_str()
        .expect("the grant names the license");
    for (kind, url) in [("hls", &enc["hls"]), ("dash", &enc["dash"])] {
        let url = format!("{}{}", st.edge, url.as_str().unwrap());
        let (ok, report) = play(
            &st,
            &[
                "--kind",
                kind,
                "--url",
                &url,
                "--seconds",
                "3",
                "--license",
                license,
            ],
        );
        assert!(ok, "encrypted, {kind}: {report}");
        assert!(report["currentTime"].as_f64().unwrap() > 1.0, "{report}");
        assert!(
            report["license"]["statuses"]["200"].as_u64().unwrap_or(0) >= 1,
            "{kind}: {report}"
        );
        assert!(!report.to_string().contains(enc["token"].as_str().unwrap()));
        // Without a license URL the player has no key: no playback.
        let (ok, report) = play(
            &st,
            &[
                "--kind",
                kind,
                "--url",
                &url,
                "--seconds",
                "2",
                "--timeout",
                "10",
            ],
        );
        assert!(!ok, "encrypted {kind} played without a key: {report}");
        assert_eq!(report["played"], false, "{kind}: {report}");
    }

    // The same players over HTTPS (HTTP/2) from the stack's TLS listener, the browser trusting
    // the stack's local CA as an installed CA (its NSS database), no certificate check off.
    let tls = st.env_value("EDGE_TLS_URL");
    let ca = st.env_value("STACK_CA_FILE");
    for (kind, url) in [("hls", &body["hls"]), ("dash", &body["dash"])] {
        let url = format!("{tls}{}", url.as_str().unwrap());
        let (ok, report) = play(
            &st,
            &[
                "--kind",
                kind,
                "--url",
                &url,
                "--seconds",
                "4",
                "--ca-file",
                &ca,
            ],
        );
        assert!(ok, "{kind} over https: {report}");
        assert!(report["currentTime"].as_f64().unwrap() > 1.0, "{report}");
        assert_eq!(report["bad"].as_array().unwrap().len(), 0, "{report}");
    }
    // Without the CA the browser refuses the edge's certificate: the trust above is real.
    let url = format!("{tls}{}", body["hls"].as_str().unwrap());
    let (ok, report) = play(
        &st,
        &[
            "--kind",
            "hls",
            "--url",
            &url,
            "--seconds",
            "2",
            "--timeout",
            "8",
        ],
    );
    assert!(!ok, "{report}");
    assert!(
        report.to_string().contains("ERR_CERT_AUTHORITY_INVALID"),
        "{report}"
    );

    // The same stream with a tampered token: the player fails on 403s.
    let token = body["token"].as_str().unwrap();
    let mut bad = token.to_owned();
    let flip = if bad.ends_with('A') { "B" } else { "A" };
    bad.replace_range(bad.len() - 1.., flip);
    let url = format!("{}/p/{bad}/{id}/master.m3u8", st.edge);
    let (ok, report) = play(&st, &["--kind", "hls", "--url", &url, "--seconds", "2"]);
    assert!(!ok, "{report}");
    assert_eq!(report["played"], false, "{report}");
    assert!(
        report["bad"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["status"] == 403),
        "{report}"
    );

    // Cookie mode: the browser presents the session cookie to the grant endpoint, which sets
    // the playback cookie and redirects to token-free /c/ URLs.
    let url = format!("{}/v1/playback/{id}?mode=cookie&redirect=hls", st.edge);
    let cookie = format!("sg_session={viewer}");
    let (ok, report) = play(
        &st,
        &[
            "--kind",
            "hls",
            "--url",
            &url,
            "--seconds",
            "4",
            "--cookie",
            &cookie,
        ],
    );
    assert!(ok, "cookie mode: {report}");
    assert!(!report.to_string().contains(&viewer), "session leaked");
}
