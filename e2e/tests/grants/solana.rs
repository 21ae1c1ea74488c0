//! A Solana viewer through a real edge: Sign-In With Solana on a local cluster
//! (`solana:localnet`), an SPL mint held on an offline Surfnet (`scripts/solana/surfnet.mjs`),
//! content gated by `spl`: the holder gets a grant and plays, a wallet without the token gets
//! 403.
//!
//! The Surfnet and the edge reading it are this test's own: a long-lived Surfnet in the shared
//! stack was seen to deadlock (no CPU, RPC unanswered) seconds after other Surfnet processes
//! on the machine exited, so the Solana fixture lives only as long as the test that uses it.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde_json::json;
use streamgate_testkit::{PrivateEdge, Stack, Surfnet, make_clip, siws_sign_in};

#[tokio::test]
async fn an_spl_holder_on_solana_gets_a_grant() {
    let st = Stack::load().await;
    let holder = SigningKey::from_bytes(&rand::random());
    let stranger = SigningKey::from_bytes(&rand::random());
    let net = Surfnet::start();
    let rpc = net.rpc.clone();
    let mint = net.mint_spl_to(&holder);
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

    let h = siws_sign_in(&st, &holder, "localnet").await;
    let s = siws_sign_in(&st, &stranger, "localnet").await;
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
