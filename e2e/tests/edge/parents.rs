//! Parent tiers: two child edges send their misses to a parent edge (Ketama on the cache
//! key), so the region asks origin once; a dead parent is skipped and origin serves. Every
//! process is this test's own (a private origin over the stack's bucket counts the fetches).

use std::time::Duration;

use streamgate_testkit::{PrivateEdge, PrivateOrigin, Stack, dead_port, make_clip, metric};

const MEDIA_ROUTE: &str =
    "streamgate_origin_requests_total{route=\"/v/{id}/{*path}\",status=\"200\"}";

fn x_cache(r: &reqwest::Response) -> String {
    r.headers()["x-cache"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn children_share_a_parent_and_fall_back_to_origin() {
    let st = Stack::load().await;
    let clip = make_clip(320, 180, 2, false);
    let id = st.upload("parents", &clip, 1 << 20).await;
    assert_eq!(
        st.wait_done(&id, Duration::from_secs(120)).await["status"],
        "ready"
    );
    let private_origin = PrivateOrigin::start(&st, "", "nonces-per-minute = 60").await;
    let origin_metrics = format!("{}/metrics", private_origin.url);
    let origin = private_origin
        .internal_url
        .trim_start_matches("http://")
        .to_owned();
    let parent =
        PrivateEdge::start_with_origin(&st, &origin, "[entitlements]\nstandalone = true\n").await;
    let parent_addr = parent.url.trim_start_matches("http://").to_owned();
    let child_conf = "[entitlements]\nstandalone = true\n";
    let with_parents = |parents: &str| format!("origin = \"{origin}\"\nparents = [{parents}]");
    let a = PrivateEdge::start_with_upstream(
        &st,
        &with_parents(&format!("\"{parent_addr}\"")),
        child_conf,
    )
    .await;
    let b = PrivateEdge::start_with_upstream(
        &st,
        &with_parents(&format!("\"{parent_addr}\"")),
        child_conf,
    )
    .await;
    let token = a.mint(&st, &id); // every private edge signs with the same test key
    let path = format!("/p/{token}/{id}/master.m3u8");

    let fetches = || async {
        let page = st
            .http
            .get(&origin_metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metric(&page, MEDIA_ROUTE)
    };
    let before = fetches().await;
    let r = a.get(&st, &path, &[]).await;
    assert_eq!((r.status().as_u16(), x_cache(&r)), (200, "MISS".into()));
    let body = r.text().await.unwrap();
    let r = b.get(&st, &path, &[]).await;
    assert_eq!((r.status().as_u16(), x_cache(&r)), (200, "MISS".into()));
    assert_eq!(r.text().await.unwrap(), body);
    let after = fetches().await;
    assert_eq!(
        after - before,
        1.0,
        "two children, one origin fetch (through the parent)"
    );
    let r = parent.get(&st, &path, &[]).await;
    assert_eq!(x_cache(&r), "HIT-L1", "the parent holds the object");

    // A child whose only parent is down goes to origin.
    let (_reserved, port) = dead_port();
    let dead = format!("\"127.0.0.1:{port}\"");
    let c = PrivateEdge::start_with_upstream(&st, &with_parents(&dead), child_conf).await;
    let r = c.get(&st, &path, &[]).await;
    assert_eq!((r.status().as_u16(), x_cache(&r)), (200, "MISS".into()));
    assert_eq!(r.text().await.unwrap(), body);
}
