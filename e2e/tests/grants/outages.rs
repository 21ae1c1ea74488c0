//! Failure promises of playback grants, end to end: a private edge (the stack's binary) reads
//! its own anvil and shares verdicts through its own Redis, so this test can kill them without
//! disturbing other tests. Sessions and policies still come from the stack's origin.
//!
//! - Redis killed: the edge keeps deciding (L1 + chain): a holder who never asked before gets
//!   a grant, nothing panics, the edge stays healthy.
//! - Every RPC endpoint killed: a verdict younger than `max-stale` still grants (`granted_stale`);
//!   a viewer with nothing cached gets 503 `entitlement_unavailable`, never a grant.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use streamgate_testkit::{
    Anvil, PrivateEdge, PrivateRedis, Stack, Wallet, make_clip, metric, node,
};

#[tokio::test]
async fn grants_survive_redis_and_rpc_outages_within_bounds() {
    let st = Stack::load().await;

    // Private anvil and Redis.
    let mut anvil = Anvil::start().await;
    let mut redis = PrivateRedis::start();
    let redis_port = redis.port;
    let rpc = anvil.url.clone();
    let tokens: Value = serde_json::from_str(&node("deploy-tokens.mjs", &[&rpc])).unwrap();
    let erc721 = tokens["erc721"].as_str().unwrap().to_owned();
    let (alice, carol, dave) = (Wallet::new(41), Wallet::new(42), Wallet::new(43));
    for (w, n) in [(&alice, "1"), (&carol, "2"), (&dave, "3")] {
        node(
            "tokens.mjs",
            &["mint", &rpc, "erc721", &erc721, &w.address, n],
        );
    }

    // A private edge over them, with the stack's origin.
    let edge = PrivateEdge::start(
        &st,
        &format!(
            r#"[entitlements]
ttl-allow = "1s"
ttl-deny = "1s"
max-stale = "60s"
redis-url = "redis://127.0.0.1:{redis_port}"
rpc-timeout = "500ms"
[entitlements.evm-rpc]
"31337" = ["{rpc}"]"#
        ),
    )
    .await;

    let clip = make_clip(320, 180, 2, false);
    let policy = json!({"erc721": {"chain": "eip155:31337", "contract": erc721}});
    let id = st.upload_with_policy("outages", &clip, policy).await;
    assert_eq!(
        st.wait_done(&id, Duration::from_secs(120)).await["status"],
        "ready"
    );
    let (a, c, d) = (
        st.sign_in(&alice).await,
        st.sign_in(&carol).await,
        st.sign_in(&dave).await,
    );
    let stranger = st.sign_in(&Wallet::new(44)).await;
    assert_eq!(edge.grant(&st, &id, &a).await.0, 200);
    assert_eq!(edge.grant(&st, &id, &stranger).await.0, 403);

    // Redis dies: carol (nothing cached) is checked on chain, alice's verdict is still in L1.
    redis.proc.kill_group();
    let (s, body) = edge.grant(&st, &id, &c).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = edge.grant(&st, &id, &a).await;
    assert_eq!(s, 200, "{body}");
    let (s, _) = edge.grant(&st, &id, &stranger).await;
    assert_eq!(s, 403);
    let r = st
        .http
        .get(format!("{}/healthz", edge.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Every RPC endpoint dies. Once the 1 s TTL has passed, alice's and carol's verdicts are
    // stale but within max-stale: still granted (polled until the edge says `granted_stale`
    // for both). Dave, never checked, is refused with 503.
    anvil.proc.kill_group();
    let stale = "streamgate_edge_grants_total{outcome=\"granted_stale\"}";
    let start = Instant::now();
    loop {
        for session in [&a, &c] {
            let (s, body) = edge.grant(&st, &id, session).await;
            assert_eq!(s, 200, "a cached verdict within max-stale grants: {body}");
        }
        let page = edge.metrics_page(&st).await;
        if metric(&page, stale) >= 2.0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never served stale: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, body) = edge.grant(&st, &id, &d).await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(body["error"], "entitlement_unavailable", "{body}");
    assert!(body.get("token").is_none());

    let page = edge.metrics_page(&st).await;
    assert!(
        metric(
            &page,
            "streamgate_edge_grants_total{outcome=\"granted_stale\"}"
        ) >= 2.0,
        "{page}"
    );
    assert!(
        metric(
            &page,
            "streamgate_edge_grants_total{outcome=\"entitlement_unavailable\"}"
        ) >= 1.0
    );
    // The edge never crashed.
    let mut edge = edge;
    assert!(edge.proc.child.try_wait().unwrap().is_none(), "edge exited");
    let text = std::fs::read_to_string(&edge.log).unwrap();
    assert!(!text.contains("panicked"), "{text}");
}
