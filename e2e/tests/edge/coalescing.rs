//! Coalescing at the edge: 200 concurrent requests for one uncached segment cause one fetch
//! from origin, and every viewer gets the same bytes. The edge and the origin are this test's
//! own (a private origin over the stack's bucket, its own counters): nothing else in the suite
//! can touch the counts.
//!
//! The race this once lost (2 fetches): a request that missed just before the first fetch was
//! stored, and asked for the cache lock just after it was released, became a second writer.
//! The edge's `CoalescingLock` sends such a request back to L1 (proxy/src/cache/lock.rs).

use std::time::Duration;

use streamgate_testkit::{PrivateEdge, PrivateOrigin, Stack, eventually, make_clip, metric};

const MEDIA_ROUTE: &str =
    "streamgate_origin_requests_total{route=\"/v/{id}/{*path}\",status=\"200\"}";

async fn page(st: &Stack, url: &str) -> String {
    st.http.get(url).send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn concurrent_misses_cause_one_origin_fetch() {
    let st = Stack::load().await;
    let clip = make_clip(640, 360, 4, false);
    let id = st.upload("coalescing", &clip, 1 << 20).await;
    assert_eq!(
        st.wait_done(&id, Duration::from_secs(120)).await["status"],
        "ready"
    );
    let origin = PrivateOrigin::start(&st, "", "nonces-per-minute = 60").await;
    let origin_metrics = format!("{}/metrics", origin.url);
    let edge = PrivateEdge::start_with_origin(
        &st,
        origin.internal_url.trim_start_matches("http://"),
        "[entitlements]\nstandalone = true\n",
    )
    .await;
    let token = edge.mint(&st, &id);
    // Nobody has asked this edge for anything: the segment is in no tier.
    let seg = "360p/seg-00001.m4s";
    let url = format!("{}/p/{token}/{id}/{seg}", edge.url);

    let before = metric(&page(&st, &origin_metrics).await, MEDIA_ROUTE);
    assert_eq!(before, 0.0, "a fresh origin");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (http, url) = (st.http.clone(), url.clone());
        tasks.spawn(async move {
            let r = http.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            let tier = r.headers()["x-cache"].to_str().unwrap().to_owned();
            (status, tier, r.bytes().await.unwrap())
        });
    }
    let mut bodies = Vec::new();
    let mut misses = 0;
    while let Some(r) = tasks.join_next().await {
        let (status, tier, body) = r.unwrap();
        assert_eq!(status, 200);
        misses += usize::from(tier == "MISS");
        bodies.push(body);
    }
    let after = metric(&page(&st, &origin_metrics).await, MEDIA_ROUTE);
    assert_eq!(after, 1.0, "origin fetches for 200 concurrent misses");
    assert_eq!(misses, 1, "one request fetched, the others waited for it");
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert!(!bodies[0].is_empty());

    // The edge counted the waiters (metrics are recorded after each response: poll). Requests
    // that arrived after the fetch finished were plain L1 hits, not waiters, so on a loaded
    // machine fewer than 199 wait; at least one did (the fetch could not finish before the
    // other 199 were sent), and no more than 199 can have.
    eventually("the waiters counted", Duration::from_secs(5), || async {
        let p = page(&st, &edge.metrics).await;
        let all: f64 = p
            .lines()
            .filter(|l| l.starts_with("streamgate_edge_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        all >= 200.0
    })
    .await;
    let coalesced = metric(
        &page(&st, &edge.metrics).await,
        "streamgate_edge_cache_coalesced_total",
    );
    assert!((1.0..=199.0).contains(&coalesced), "{coalesced}");
}
