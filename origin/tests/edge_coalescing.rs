//! Coalescing at the real edge: 200 concurrent requests for one uncached segment cause one
//! fetch from origin (origin's own request counter), and every viewer gets the same bytes.
//! In its own test binary: it reads process-wide counters.

mod utils;

use std::time::Duration;

use utils::{Stack, make_clip, metric};

const MEDIA_ROUTE: &str =
    "streamgate_origin_requests_total{route=\"/v/{id}/{*path}\",status=\"200\"}";

#[tokio::test]
async fn concurrent_misses_cause_one_origin_fetch() {
    let st = Stack::load().await;
    let clip = make_clip(640, 360, 4, false);
    let id = st.upload("coalescing", &clip, 1 << 20).await;
    assert_eq!(
        st.wait_done(&id, Duration::from_secs(120)).await["status"],
        "ready"
    );
    let token = st.mint(&id, "1h");
    // Nobody has asked for this rendition's segment yet: it is in no tier.
    let seg = "360p/seg-00001.m4s";
    let url = format!("{}/p/{token}/{id}/{seg}", st.edge);

    let before = metric(&st.metrics_page("ORIGIN_URL").await, MEDIA_ROUTE);
    let edge_before = st.metrics_page("EDGE_METRICS_URL").await;
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
    let after = metric(&st.metrics_page("ORIGIN_URL").await, MEDIA_ROUTE);
    assert_eq!(
        after - before,
        1.0,
        "origin fetches for 200 concurrent misses"
    );
    assert_eq!(misses, 1, "one request fetched, the others waited for it");
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert!(!bodies[0].is_empty());

    // The edge counted the waiters (metrics are recorded after each response: poll).
    let name = "streamgate_edge_cache_coalesced_total";
    let was = utils::metric(&edge_before, name);
    let start = std::time::Instant::now();
    loop {
        let now = utils::metric(&st.metrics_page("EDGE_METRICS_URL").await, name);
        if now - was >= 199.0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "coalesced {now} - {was}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
