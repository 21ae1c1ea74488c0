//! Origin's `sg:invalidate` messages reach the real edge at once: a policy change is enforced
//! on the next grant (the stack's edge keeps policies for 10 minutes, so only the message can
//! explain it), a logout refuses the session at the edge, and a deleted content is no longer
//! granted.

use std::time::{Duration, Instant};

use serde_json::json;
use streamgate_testkit::{Stack, Wallet, grant, make_clip, metric};

/// Polls the grant until it answers `want`; fails after `within`.
async fn within(st: &Stack, id: &str, session: &str, want: u16, within: Duration) {
    let start = Instant::now();
    loop {
        let (s, body) = grant(st, id, Some(session)).await;
        if s == want {
            return;
        }
        assert!(start.elapsed() < within, "still {s} {body}, want {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn invalidations(st: &Stack, kind: &str) -> f64 {
    let page = st.metrics_page("EDGE_METRICS_URL").await;
    metric(
        &page,
        &format!("streamgate_edge_invalidations_total{{type=\"{kind}\"}}"),
    )
}

/// Polls until the edge has counted more than `seen` messages of `kind` (the count follows the
/// effect, so a test that saw the effect may read the counter a moment early).
async fn counted_beyond(st: &Stack, kind: &str, seen: f64) {
    let start = Instant::now();
    while invalidations(st, kind).await <= seen {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{kind} never counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn policy_changes_logouts_and_deletions_reach_the_edge_at_once() {
    let st = Stack::load().await;
    let (alice, bob) = (Wallet::new(31), Wallet::new(32));
    let allow = |w: &Wallet| json!({"allow": [format!("eip155:31337:{}", w.address)]});
    let clip = make_clip(320, 180, 2, false);
    let id = st
        .upload_with_policy("invalidation", &clip, allow(&alice))
        .await;
    assert_eq!(
        st.wait_done(&id, Duration::from_secs(120)).await["status"],
        "ready"
    );
    let a = st.sign_in(&alice).await;
    let b = st.sign_in(&bob).await;
    assert_eq!(grant(&st, &id, Some(&a)).await.0, 200);
    assert_eq!(grant(&st, &id, Some(&b)).await.0, 403);

    // The owner moves the allow-list to bob.
    let policy_msgs = invalidations(&st, "policy_changed").await;
    let r = st
        .http
        .put(format!("{}/v1/contents/{id}/policy", st.origin))
        .header("authorization", st.bearer())
        .json(&json!({"policy": allow(&bob)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    within(&st, &id, &b, 200, Duration::from_secs(2)).await;
    assert_eq!(grant(&st, &id, Some(&a)).await.0, 403);
    counted_beyond(&st, "policy_changed", policy_msgs).await;

    // Bob logs out: his (cached, still unexpired) session is refused at the edge.
    let revoked_msgs = invalidations(&st, "session_revoked").await;
    let r = st
        .http
        .post(format!("{}/v1/auth/logout", st.origin))
        .header("authorization", format!("Bearer {b}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    within(&st, &id, &b, 401, Duration::from_secs(2)).await;
    let (_, body) = grant(&st, &id, Some(&b)).await;
    assert_eq!(body["error"], "revoked", "{body}");
    counted_beyond(&st, "session_revoked", revoked_msgs).await;

    // A fresh session of bob's still works; after the owner deletes the content, it is gone.
    let b2 = st.sign_in(&bob).await;
    assert_eq!(grant(&st, &id, Some(&b2)).await.0, 200);
    let r = st
        .http
        .delete(format!("{}/v1/contents/{id}", st.origin))
        .header("authorization", st.bearer())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    within(&st, &id, &b2, 404, Duration::from_secs(2)).await;
}
