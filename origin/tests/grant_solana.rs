//! A Solana viewer through a real edge: Sign-In With Solana on a local cluster
//! (`solana:localnet`), an SPL mint held on an offline Surfnet (`scripts/solana/surfnet.mjs`),
//! content gated by `spl`: the holder gets a grant and plays, a wallet without the token gets
//! 403.
//!
//! The Surfnet and the edge reading it are this test's own: a long-lived Surfnet in the shared
//! stack was seen to deadlock (no CPU, RPC unanswered) seconds after other Surfnet processes
//! on the machine exited, so the Solana fixture lives only as long as the test that uses it.

mod utils;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use utils::{PrivateEdge, Proc, Stack, make_clip};

/// Signs `key` in with SIWS on `localnet`; returns the session token.
async fn siws_localnet(st: &Stack, key: &SigningKey) -> String {
    let address = bs58::encode(key.verifying_key().as_bytes()).into_string();
    let nonce = st.nonce().await;
    let issued = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let msg = format!(
        "{} wants you to sign in with your Solana account:\n{address}\n\n\
         Sign in to StreamGate.\n\nURI: {}\nVersion: 1\nChain ID: localnet\nNonce: {nonce}\n\
         Issued At: {issued}",
        st.origin_domain(),
        st.origin
    );
    let sig = key.sign(msg.as_bytes()).to_bytes();
    let r = st
        .http
        .post(format!("{}/v1/auth/siws", st.origin))
        .json(&json!({
            "message": msg,
            "signature": bs58::encode(sig).into_string(),
            "public_key": address,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "siws: {:?}", r.text().await);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["subject"], format!("solana:localnet:{address}"));
    v["token"].as_str().unwrap().to_owned()
}

fn solana_script(name: &str) -> std::path::PathBuf {
    std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap())
        .join("../scripts/solana")
        .join(name)
}

/// Starts an offline Surfnet; the process and its RPC and websocket URLs.
fn surfnet() -> (Proc, String, String) {
    let mut child = Command::new("node")
        .arg(solana_script("surfnet.mjs"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("node scripts/solana/surfnet.mjs (run make setup)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let rpc = lines.next().unwrap().unwrap();
    let ws = lines.next().unwrap().unwrap();
    (Proc(child), rpc, ws)
}

/// Mints one token of a fresh SPL mint to `owner`; the mint address.
fn mint_spl_to(rpc: &str, ws: &str, owner: &SigningKey) -> String {
    let out = Command::new("node")
        .arg(solana_script("mint.mjs"))
        .args([
            rpc.to_owned(),
            ws.to_owned(),
            bs58::encode(owner.verifying_key().as_bytes()).into_string(),
        ])
        .output()
        .expect("run node scripts/solana/mint.mjs");
    assert!(
        out.status.success(),
        "mint.mjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn an_spl_holder_on_solana_gets_a_grant() {
    let st = Stack::load().await;
    let holder = SigningKey::from_bytes(&rand::random());
    let stranger = SigningKey::from_bytes(&rand::random());
    let (_surfnet, rpc, ws) = surfnet();
    let mint = mint_spl_to(&rpc, &ws, &holder);
    let edge = PrivateEdge::start(
        &st,
        &format!(
            "[entitlements]\nttl-allow = \"5s\"\nstandalone = true\n[entitlements.solana-rpc]\nlocalnet = [\"{rpc}\"]"
        ),
    )
    .await;

    let clip = make_clip(320, 180, 2, false);
    let policy = json!({"spl": {"cluster": "solana:localnet", "mint": mint}});
    let id = st.upload_with_policy("spl-gated", &clip, policy).await;
    assert_eq!(
        st.wait_done(&id, Duration::from_secs(120)).await["status"],
        "ready"
    );

    let h = siws_localnet(&st, &holder).await;
    let s = siws_localnet(&st, &stranger).await;
    let (status, body) = edge.grant(&st, &id, &h).await;
    assert_eq!(status, 200, "{body}");
    // the granted manifest plays through the edge
    let r = st
        .http
        .get(format!("{}{}", edge.url, body["hls"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().starts_with("#EXTM3U"));

    let (status, body) = edge.grant(&st, &id, &s).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "not_entitled");
}
