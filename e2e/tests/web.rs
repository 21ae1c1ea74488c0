//! The web app in a real browser: origin serves it (`/`, `/watch/{id}`, hashed `/assets/`)
//! under a strict Content-Security-Policy; Chromium (`web/tests/watch.mjs`, playwright-core)
//! opens the watch page of an ERC-721-gated video with an injected EIP-1193 wallet backed by a
//! viem account: the holder signs in (SIWE, by keyboard) and the video plays, with hls.js and
//! with dash.js; a Solana wallet (Wallet Standard, SIWS) signs in and plays a public video; a
//! non-holder is
//! told in words whom the video is for; a browser without a wallet and a wallet that refuses to
//! sign get a clear message. The dashboard (`web/tests/dashboard.mjs`): a creator signs in,
//! gets origin's policy error next to the field, uploads with tus-js-client over a throttled
//! link, pauses, reloads and resumes the same file, follows the video to ready in the list,
//! renames it, copies its share link and deletes it after the confirmation. Signing out stops
//! playback and revokes the session; a chain origin does not accept gets its sentence.
//! Phone-sized viewport throughout.

use std::{process::Command, time::Duration};

use serde_json::{Value, json};
use streamgate_testkit::{Stack, Wallet, deploy, make_clip, node};

/// Runs the browser check; its JSON report.
fn watch(url: &str, extra: &[&str]) -> Value {
    let script = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../web/tests/watch.mjs");
    let out = Command::new("node")
        .arg(script)
        .args(["--url", url])
        .args(extra)
        .output()
        .expect("node web/tests/watch.mjs (run make setup)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "watch.mjs printed no JSON ({e}): {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test]
async fn the_watch_page_signs_in_with_a_wallet_and_plays_for_holders_only() {
    let st = Stack::load().await;

    // What origin sends: the page under a CSP without inline script, the assets immutable.
    let r = st.http.get(format!("{}/", st.origin)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self';") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(
        csp.contains(&format!("connect-src 'self' {}", st.edge)),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("content=\"{}\"", st.edge)), "{html}");
    let js = html
        .split('"')
        .find(|s| s.starts_with("/assets/app-") && s.ends_with(".js"))
        .expect("the page names its bundle");
    let r = st
        .http
        .get(format!("{}{js}", st.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let plain = r.bytes().await.unwrap();
    // Browsers that take gzip get the build's compressed copy. (A client that decodes nothing:
    // another crate of the workspace may turn on reqwest's gzip, which would hide the encoding.)
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let r = raw
        .get(format!("{}{js}", st.origin))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["vary"], "accept-encoding");
    let gz = r.bytes().await.unwrap();
    assert!(
        gz.starts_with(&[0x1f, 0x8b]) && gz.len() * 2 < plain.len(),
        "{} vs {}",
        gz.len(),
        plain.len()
    );
    // Nothing but the built assets: no traversal, no dotfiles, no other types.
    for path in [
        "/assets/..%2Findex.html",
        "/assets/.hidden.js",
        "/assets/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/assets/index.html",
        "/assets/app-nosuch.js",
    ] {
        let r = st
            .http
            .get(format!("{}{path}", st.origin))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }

    // An ERC-721-gated video; one wallet holds the token, another does not.
    let chain = deploy(&st);
    let (holder, stranger) = (Wallet::fresh(), Wallet::fresh());
    node(
        "tokens.mjs",
        &[
            "mint",
            &chain.rpc,
            "erc721",
            &chain.erc721,
            &holder.address,
            "1",
        ],
    );
    let policy = json!({"erc721": {"chain": "eip155:31337", "contract": chain.erc721}});
    let id = st
        .upload_with_policy("web watch", &make_clip(640, 360, 8, true), policy)
        .await;
    let rec = st.wait_done(&id, Duration::from_secs(180)).await;
    assert_eq!(rec["status"], "ready", "{rec}");
    let url = format!("{}/watch/{id}", st.origin);

    // The holder signs in and the video plays; signing out stops it and revokes the session.
    let r = watch(&url, &["--key", &holder.private_key_hex(), "--sign-out"]);
    assert_eq!(r["signedIn"], true, "{r}");
    assert_eq!(r["played"], true, "{r}");
    assert!(r["currentTime"].as_f64().unwrap() > 1.0, "{r}");
    let out = &r["afterSignOut"];
    assert!(out["stored"].is_null() && out["playing"] == false, "{r}");
    assert_eq!(
        out["oldSession"], 401,
        "the session was revoked at origin: {r}"
    );
    assert_eq!(r["consoleErrors"].as_array().unwrap().len(), 0, "{r}");
    let weight = &r["weight"];
    assert!(
        weight["script"].as_u64().unwrap() > 0 && weight["document"].as_u64().unwrap() > 0,
        "{r}"
    );

    // A wallet without the token: signed in, refused, told why in words.
    let r = watch(&url, &["--key", &stranger.private_key_hex()]);
    assert_eq!(r["signedIn"], true, "{r}");
    assert_eq!(r["played"], false, "{r}");
    let status = r["status"].as_str().unwrap();
    let contract = chain.erc721.to_ascii_lowercase();
    assert!(
        status
            .starts_with("You cannot watch this video: it is for holders of an ERC-721 token of ")
            && status.to_ascii_lowercase().contains(&contract[..6])
            && status.contains("the local chain (31337)"),
        "{r}"
    );

    // dash.js where asked (?player=dash, loaded on demand): the holder plays the MPD.
    let r = watch(
        &format!("{url}?player=dash"),
        &["--key", &holder.private_key_hex()],
    );
    assert_eq!(r["played"], true, "{r}");
    assert!(r["currentTime"].as_f64().unwrap() > 1.0, "{r}");
    assert_eq!(r["consoleErrors"].as_array().unwrap().len(), 0, "{r}");

    // A Solana wallet (Wallet Standard, SIWS) signs in; a public video plays for it.
    let public = st
        .upload("web public", &make_clip(320, 180, 4, false), 1 << 20)
        .await;
    let rec = st.wait_done(&public, Duration::from_secs(180)).await;
    assert_eq!(rec["status"], "ready", "{rec}");
    let seed: [u8; 32] = rand::random();
    let seed: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let r = watch(
        &format!("{}/watch/{public}", st.origin),
        &["--solana-seed", &seed],
    );
    assert_eq!(r["signedIn"], true, "{r}");
    assert_eq!(r["played"], true, "{r}");
    assert_eq!(r["signRequests"], 1, "{r}");

    // No wallet in the browser; a wallet whose user declines: clear messages, no session.
    let r = watch(&url, &[]);
    assert_eq!(r["signedIn"], false, "{r}");
    assert!(
        r["signInError"]
            .as_str()
            .unwrap()
            .starts_with("No Ethereum wallet found"),
        "{r}"
    );
    let r = watch(
        &url,
        &["--key", &stranger.private_key_hex(), "--chain-id", "5"],
    );
    assert_eq!(r["signedIn"], false, "{r}");
    assert!(
        r["signInError"]
            .as_str()
            .unwrap()
            .starts_with("Chain 5 is not accepted for sign-in"),
        "{r}"
    );
    let r = watch(&url, &["--key", &stranger.private_key_hex(), "--refuse"]);
    assert_eq!(
        (r["signedIn"].as_bool(), r["signRequests"].as_u64()),
        (Some(false), Some(1)),
        "{r}"
    );
    assert!(
        r["signInError"].as_str().unwrap().contains("You declined"),
        "{r}"
    );
}

/// Runs the dashboard check; its JSON report.
fn dashboard(args: &[&str]) -> Value {
    let script = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../web/tests/dashboard.mjs");
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .output()
        .expect("node web/tests/dashboard.mjs (run make setup)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "dashboard.mjs printed no JSON ({e}): {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {report}"))
}

#[tokio::test]
async fn creators_upload_from_the_dashboard_resume_after_a_reload_and_manage_videos() {
    let st = Stack::load().await;
    let chain = deploy(&st);
    let creator = Wallet::fresh();
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    std::fs::write(&clip, make_clip(640, 360, 8, true)).unwrap();
    let r = dashboard(&[
        "--url",
        &format!("{}/", st.origin),
        "--key",
        &creator.private_key_hex(),
        "--file",
        clip.to_str().unwrap(),
        "--title",
        "From the dashboard",
        "--contract",
        &chain.erc721,
        "--delete",
        "yes",
    ]);
    assert!(r["error"].is_null(), "{r}");
    // Origin's validation error, next to the field it names.
    let e = step(&r, "field-error");
    assert_eq!(
        e["text"], "not an EVM address (0x followed by 40 hex digits)",
        "{r}"
    );
    assert_eq!(e["invalid"], "true", "{r}");
    // Paused mid-way: nothing moves; after a reload the same file resumes, not restarts.
    let paused = step(&r, "paused");
    let at = paused["at"].as_u64().unwrap();
    assert!((30..100).contains(&at), "{r}");
    assert_eq!(paused["after"].as_u64(), Some(at), "{r}");
    let resumed = step(&r, "uploaded")["resumedAt"].as_i64().unwrap();
    assert!(
        resumed >= at as i64,
        "resumed at {resumed}%, paused at {at}%: {r}"
    );
    // One content, followed live to ready, then renamed.
    let listed = step(&r, "listed");
    assert_eq!(listed["count"], 1, "{r}");
    assert_eq!(listed["badge"], "ready", "{r}");
    assert!(r["statuses"].as_array().unwrap().len() >= 2, "{r}");
    step(&r, "renamed");
    // The browser logs the deliberate 400 (the bad contract); nothing else went wrong.
    for e in r["consoleErrors"].as_array().unwrap() {
        assert!(e.as_str().unwrap().contains("status of 400"), "{r}");
    }

    // The share link, the record as the page read it, then the confirmed delete.
    let id = r["id"].as_str().unwrap();
    assert_eq!(
        step(&r, "shared")["link"],
        format!("{}/watch/{id}", st.origin),
        "{r}"
    );
    let rec = &r["record"];
    assert_eq!(rec["title"], "From the dashboard (renamed)", "{rec}");
    assert_eq!(
        rec["policy"]["erc721"]["contract"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase(),
        chain.erc721.to_ascii_lowercase(),
        "{rec}"
    );
    assert!(
        rec["owner"].as_str().unwrap().ends_with(&creator.address),
        "{rec}"
    );
    let asked = step(&r, "deleted")["asked"].as_str().unwrap().to_owned();
    assert!(
        asked.starts_with("Delete \"From the dashboard (renamed)\"?"),
        "{r}"
    );
    let gone = st
        .http
        .get(format!("{}/v1/contents/{id}", st.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}
