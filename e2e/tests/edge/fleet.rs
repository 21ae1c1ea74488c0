//! Several edges behind one name: three edges on loopback (one the others' parent) sharing
//! one Redis L2, behind a round-robin TCP balancer the test runs. Real-time players (the
//! `loadtest` crate) watch through the balancer: every object is fetched from origin once for
//! the whole fleet, a purge on one edge reaches all three, and the players keep playing while
//! one edge is taken out of the balancer, drained and stopped.

use std::{collections::BTreeSet, time::Duration};

use reqwest::Url;
use streamgate_loadtest::{Config, Mode, Pace, player::Source};
use streamgate_testkit::{
    Balancer, PrivateEdge, PrivateOrigin, PrivateRedis, Stack, eventually, metric,
};

use crate::packaged;

const MEDIA_ROUTE: &str =
    "streamgate_origin_requests_total{route=\"/v/{id}/{*path}\",status=\"200\"}";

async fn origin_fetches(st: &Stack, origin: &PrivateOrigin) -> f64 {
    let page = st.page(&format!("{}/metrics", origin.url)).await;
    metric(&page, MEDIA_ROUTE)
}

fn port(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// Every object of the HLS package a player can ask for (master, playlists, init, segments),
/// each fetched once, on a new connection (so the balancer spreads them over the edges).
async fn hls_objects(base: &str) -> BTreeSet<String> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let get = |p: String| {
        let (url, http) = (format!("{base}/{p}"), http.clone());
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let mut all = BTreeSet::from(["master.m3u8".to_owned()]);
    let master = get("master.m3u8".into()).await;
    for variant in master
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        all.insert(variant.to_owned());
        let dir = variant.rsplit_once('/').map_or("", |(d, _)| d);
        let media = get(variant.to_owned()).await;
        for line in media.lines() {
            let uri = if let Some(rest) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
                rest.split('"').next().unwrap_or_default()
            } else if !line.starts_with('#') && !line.is_empty() {
                line
            } else {
                continue;
            };
            let path = format!("{dir}/{uri}");
            // Fetch it too: the set is what viewers will ask for.
            get(path.clone()).await;
            all.insert(path);
        }
    }
    all
}

#[tokio::test]
async fn three_edges_behind_one_balancer_fetch_once_purge_together_and_drain() {
    let st = Stack::load().await;
    let (id, _, seg) = packaged(&st, "fleet").await;
    let origin = PrivateOrigin::start(&st, "", "").await;
    let l2 = PrivateRedis::start();
    let admin_file = st.env_value("EDGE_ADMIN_TOKEN_FILE");
    let extra = format!(
        "[entitlements]\nstandalone = true\n[cache]\nredis-url = \"{}\"\n[admin]\ntoken = {{ file = \"{admin_file}\" }}\n",
        l2.url()
    );
    let internal = origin.internal_url.trim_start_matches("http://").to_owned();
    let parent = PrivateEdge::start_with_origin(&st, &internal, &extra).await;
    let upstream = format!(
        "origin = \"{internal}\"\nparents = [\"127.0.0.1:{}\"]",
        port(&parent.url)
    );
    let c1 = PrivateEdge::start_with_upstream(&st, &upstream, &extra).await;
    let mut c2 = PrivateEdge::start_with_upstream(&st, &upstream, &extra).await;
    let edges = [&parent, &c1, &c2];
    let targets: Vec<String> = edges
        .iter()
        .map(|e| format!("127.0.0.1:{}", port(&e.url)))
        .collect();
    let lb = Balancer::start(&targets).await;
    let token = parent.mint(&st, &id);
    let base = format!("{}/p/{token}/{id}", lb.url());

    // Every object once through the balancer (each request a new connection: round-robin).
    let objects = hls_objects(&base).await;
    assert!(objects.len() >= 4, "{objects:?}");
    for t in &targets {
        assert!(lb.connections_to(t) > 0, "the balancer used {t}");
    }

    // Real-time players through the balancer, for the rest of the test.
    let load = tokio::spawn(streamgate_loadtest::run(Config {
        mode: Mode::Players {
            sources: vec![Source::Url(
                Url::parse(&format!("{base}/master.m3u8")).unwrap(),
            )],
            pace: Pace::Realtime,
        },
        count: 18,
        duration: Duration::from_secs(16),
        ramp_up: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        progress: false,
    }));

    // One origin fetch per object for the whole fleet, whatever edge each viewer reached.
    eventually("players are watching", Duration::from_secs(20), || async {
        let mut all = 0.0;
        for e in edges {
            let page = e.metrics_page(&st).await;
            all += metric(
                &page,
                "streamgate_edge_cache_requests_total{tier=\"HIT-L1\"}",
            ) + metric(
                &page,
                "streamgate_edge_cache_requests_total{tier=\"HIT-L2\"}",
            );
        }
        all >= 60.0
    })
    .await;
    assert_eq!(
        origin_fetches(&st, &origin).await,
        objects.len() as f64,
        "origin fetches for {} objects",
        objects.len()
    );

    // A purge on one edge reaches all three (sg:invalidate) and L2.
    let admin = std::fs::read_to_string(&admin_file).unwrap();
    let metrics_base = c1.metrics.trim_end_matches("/metrics").to_owned();
    let r = st
        .http
        .post(format!("{metrics_base}/admin/purge"))
        .header("authorization", format!("Bearer {}", admin.trim()))
        .json(&serde_json::json!({"content_id": id, "path": seg}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    for e in edges {
        eventually(
            "the purge reached the edge",
            Duration::from_secs(10),
            || async {
                metric(
                    &e.metrics_page(&st).await,
                    "streamgate_edge_invalidations_total{type=\"purged\"}",
                ) >= 1.0
            },
        )
        .await;
    }

    // Drain: c2 leaves the balancer, then stops gracefully (SIGTERM) while players watch.
    let c2_target = format!("127.0.0.1:{}", port(&c2.url));
    lb.remove(&c2_target);
    c2.proc.terminate();
    assert!(
        c2.proc.wait_exit(Duration::from_secs(30)).await,
        "the drained edge exited"
    );

    let report = load.await.unwrap().unwrap();
    assert!(report.requests >= 100, "{}", report.table());
    assert_eq!(report.errors, 0, "{}", report.table());
    // After the purge the segment came from origin once more (for the whole fleet), nothing
    // else did.
    let after = origin_fetches(&st, &origin).await;
    assert!(
        after <= objects.len() as f64 + 1.0,
        "{after} origin fetches for {} objects and one purge",
        objects.len()
    );
}
