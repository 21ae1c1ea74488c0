//! The edge as a CDN node, through real edges over the stack's origin, Redis and S3: tiers
//! (`x-cache`), L2 shared across edges and restarts, ranges against the source object, purge,
//! CORS, and the failure promises (origin cut off, Redis killed, both at once).

use std::time::{Duration, Instant};

use streamgate_testkit::{
    Forwarder, PersistentRedis, PrivateEdge, PrivateRedis, RedisCluster, Stack, metric,
};

use crate::packaged;

/// Waits until the L2 Redis at `url` indexes at least `n` objects of content `id` (L2 writes
/// happen behind the responses).
async fn in_l2(url: &str, id: &str, n: i64) {
    let index = streamgate_config::contract::keys::edge_objects(id);
    streamgate_testkit::eventually("the objects reached L2", Duration::from_secs(5), || {
        let index = index.clone();
        async move {
            let mut con = redis::Client::open(url)
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let have: i64 = redis::cmd("SCARD")
                .arg(&index)
                .query_async(&mut con)
                .await
                .unwrap();
            have >= n
        }
    })
    .await;
}

fn x_cache(r: &reqwest::Response) -> String {
    r.headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The source object in S3, by its storage key.
async fn source(st: &Stack, id: &str, path: &str) -> Vec<u8> {
    let o = st
        .s3()
        .get_object()
        .bucket(&st.bucket)
        .key(format!("media/{id}/{path}"))
        .send()
        .await
        .unwrap();
    o.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test]
async fn tiers_ranges_purge_and_cors_at_the_stack_edge() {
    let st = Stack::load().await;
    let (id, token, seg) = packaged(&st, "cache-tiers").await;
    let url = format!("{}/p/{token}/{id}/{seg}", st.edge);

    // First request fetches, second is served from memory; bytes equal the source.
    let r = st.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(x_cache(&r), "MISS");
    let first = r.bytes().await.unwrap();
    let r = st.http.get(&url).send().await.unwrap();
    assert_eq!(x_cache(&r), "HIT-L1");
    let src = source(&st, &id, &seg).await;
    assert_eq!(&r.bytes().await.unwrap()[..], &src[..]);
    assert_eq!(&first[..], &src[..]);

    // Another viewer's token shares the object.
    let other = st.mint(&id, "10m");
    let r = st
        .http
        .get(format!("{}/p/{other}/{id}/{seg}", st.edge))
        .send()
        .await
        .unwrap();
    assert_eq!(x_cache(&r), "HIT-L1");

    // Ranges on the cached object, byte-exact.
    let range = |spec: &'static str| {
        let url = url.clone();
        let http = st.http.clone();
        async move { http.get(url).header("range", spec).send().await.unwrap() }
    };
    let len = src.len();
    let r = range("bytes=0-99").await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes 0-99/{len}")
    );
    assert_eq!(&r.bytes().await.unwrap()[..], &src[..100]);
    let r = range("bytes=-50").await;
    assert_eq!(r.status(), 206);
    assert_eq!(&r.bytes().await.unwrap()[..], &src[len - 50..]);
    let r = range("bytes=0-").await;
    assert_eq!(r.status(), 206);
    assert_eq!(&r.bytes().await.unwrap()[..], &src[..]);
    let r = range("bytes=0-9,20-29").await;
    assert_eq!(r.status(), 206);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("multipart/byteranges"), "{ctype}");
    let body = r.bytes().await.unwrap();
    let find = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(find(&src[..10]) && find(&src[20..30]));
    assert!(find(format!("bytes 0-9/{len}").as_bytes()));
    let r = range("bytes=99999999-").await;
    assert_eq!(r.status(), 416);
    // A zero-length suffix is unsatisfiable, not a 206 of nothing (a fuzz finding).
    let r = range("bytes=-0").await;
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{len}").as_str()
    );

    // CORS for browser players: on objects and on refusals.
    let r = st
        .http
        .get(&url)
        .header("origin", "http://player.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://player.example"
    );
    assert!(
        r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("x-cache")
    );
    let r = st
        .http
        .get(format!("{}/p/bogus/{id}/{seg}", st.edge))
        .header("origin", "http://player.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().contains_key("access-control-allow-origin"));
    let r = st
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "http://player.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "range")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-headers"], "range");

    // Purge (admin API, authenticated): the next request is a MISS.
    let admin = std::fs::read_to_string(st.env_value("EDGE_ADMIN_TOKEN_FILE")).unwrap();
    let purge_url = format!("{}/admin/purge", st.env_value("EDGE_METRICS_URL"));
    let r = st
        .http
        .post(&purge_url)
        .json(&serde_json::json!({"content_id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = st
        .http
        .post(&purge_url)
        .header("authorization", format!("Bearer {}", admin.trim()))
        .json(&serde_json::json!({"content_id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = st.http.get(&url).send().await.unwrap();
    assert_eq!(x_cache(&r), "MISS");
    let r = st
        .http
        .post(&purge_url)
        .header("authorization", format!("Bearer {}", admin.trim()))
        .json(&serde_json::json!({"content_id": "../etc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn l2_survives_restarts_and_outages_degrade_to_the_next_tier() {
    let st = Stack::load().await;
    let (id, _, seg) = packaged(&st, "cache-l2").await;

    // A private Redis as this region's L2, and a forwarder standing in for the path to origin.
    let mut redis = PrivateRedis::start();
    let redis_port = redis.port;
    let mut fwd = Forwarder::start(&st.origin_internal_addr()).await;
    let conf = format!("[entitlements]\n[cache]\nredis-url = \"redis://127.0.0.1:{redis_port}\"\n");
    let origin = format!("127.0.0.1:{}", fwd.port);

    let a = PrivateEdge::start_with_origin(&st, &origin, &conf).await;
    let token = a.mint(&st, &id);
    let path = format!("/p/{token}/{id}/{seg}");
    let r = a.get(&st, &path, &[]).await;
    assert_eq!((r.status().as_u16(), x_cache(&r)), (200, "MISS".into()));
    let body = r.bytes().await.unwrap();
    let r = a.get(&st, &path, &[]).await;
    assert_eq!(x_cache(&r), "HIT-L1");
    // L2 writes happen behind the response: wait until Redis has the object before the
    // edge goes away.
    in_l2(&redis.url(), &id, 1).await;

    // The edge restarts with an empty L1: the region's L2 serves it.
    drop(a);
    let a = PrivateEdge::start_with_origin(&st, &origin, &conf).await;
    let token = a.mint(&st, &id);
    let path = format!("/p/{token}/{id}/{seg}");
    let r = a.get(&st, &path, &[]).await;
    assert_eq!(x_cache(&r), "HIT-L2");
    assert_eq!(r.bytes().await.unwrap(), body);
    let r = a.get(&st, &path, &[]).await;
    assert_eq!(x_cache(&r), "HIT-L1");

    // Origin cut off: cached objects are still served, misses fail fast with 502/504.
    fwd.stop();
    let r = a.get(&st, &path, &[]).await;
    assert_eq!((r.status().as_u16(), x_cache(&r)), (200, "HIT-L1".into()));
    let start = Instant::now();
    let r = a
        .get(&st, &format!("/p/{token}/{id}/no-such/seg-00001.m4s"), &[])
        .await;
    assert!(matches!(r.status().as_u16(), 502 | 504), "{}", r.status());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    // Redis dies: L1 still serves cached objects, and with origin back, misses go to origin.
    redis.proc.kill_group();
    let fwd2 = Forwarder::start(&st.origin_internal_addr()).await;
    let b = PrivateEdge::start_with_origin(&st, &format!("127.0.0.1:{}", fwd2.port), &conf).await;
    let token_b = b.mint(&st, &id);
    let r = a.get(&st, &path, &[]).await;
    assert_eq!((r.status().as_u16(), x_cache(&r)), (200, "HIT-L1".into()));
    let r = b.get(&st, &format!("/p/{token_b}/{id}/{seg}"), &[]).await;
    assert_eq!((r.status().as_u16(), x_cache(&r)), (200, "MISS".into()));
    assert_eq!(r.bytes().await.unwrap(), body);
    let r = b.get(&st, &format!("/p/{token_b}/{id}/{seg}"), &[]).await;
    assert_eq!(x_cache(&r), "HIT-L1");
    let log = std::fs::read_to_string(&b.log).unwrap();
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn l2_on_a_redis_cluster_is_shared_across_edges() {
    let st = Stack::load().await;
    let (id, _, seg) = packaged(&st, "cache-cluster").await;
    let cluster = RedisCluster::start();
    let seeds: Vec<String> = cluster
        .ports
        .iter()
        .map(|p| format!("\"redis://127.0.0.1:{p}\""))
        .collect();
    let conf = format!(
        "[entitlements]\n[cache]\nredis-cluster = [{}]\nl2-timeout = \"1s\"\n",
        seeds.join(", ")
    );
    let a = PrivateEdge::start(&st, &conf).await;
    let token = a.mint(&st, &id);
    let path = format!("/p/{token}/{id}/{seg}");
    let master = format!("/p/{token}/{id}/master.m3u8");
    for p in [&path, &master] {
        let r = a.get(&st, p, &[]).await;
        assert_eq!((r.status().as_u16(), x_cache(&r)), (200, "MISS".into()));
        assert!(!r.bytes().await.unwrap().is_empty());
    }
    let body = a.get(&st, &path, &[]).await.bytes().await.unwrap();

    // Writes to L2 happen behind the response: wait until both objects are in the cluster.
    let start = Instant::now();
    loop {
        let out = std::process::Command::new("redis-cli")
            .args([
                "-c",
                "-p",
                &cluster.ports[0].to_string(),
                "scard",
                &streamgate_config::contract::keys::edge_objects(&id),
            ])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim() == "2" {
            break;
        }
        if start.elapsed() > Duration::from_secs(5) {
            let page = a.metrics_page(&st).await;
            panic!(
                "objects never reached the cluster: scard {:?}, l2 errors {}, log: {}",
                String::from_utf8_lossy(&out.stdout),
                streamgate_testkit::metric(&page, "streamgate_edge_cache_l2_errors_total"),
                std::fs::read_to_string(&a.log).unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Another edge of the region (empty L1) is served from the cluster.
    let b = PrivateEdge::start(&st, &conf).await;
    for p in [&path, &master] {
        let r = b.get(&st, p, &[]).await;
        assert_eq!(
            (r.status().as_u16(), x_cache(&r)),
            (200, "HIT-L2".into()),
            "{p}"
        );
    }
    assert_eq!(b.get(&st, &path, &[]).await.bytes().await.unwrap(), body);

    // The objects and their index share one slot (hash tag), so a content purge works.
    let admin_free = streamgate_testkit::metric(
        &b.metrics_page(&st).await,
        "streamgate_edge_cache_l2_errors_total",
    );
    assert_eq!(admin_free, 0.0, "no L2 errors on the cluster");
}

/// The double fault of issue #12: the region's Redis is killed and restarted (with its data, as
/// the stack's append-only Redis comes back), then origin goes away. Before the invalidation
/// log the edge emptied L1 on resubscription, so warmed playlists answered 503 and the init
/// segment 502. Now the edge learns from the log that it missed nothing but the one purge
/// published meanwhile, replays that, and keeps everything else.
#[tokio::test]
async fn a_redis_blip_then_an_origin_outage_keeps_the_warmed_stream_playing() {
    let st = Stack::load().await;
    let (id, _, seg) = packaged(&st, "cache-double-fault").await;
    let mut redis = PersistentRedis::start();
    let mut fwd = Forwarder::start(&st.origin_internal_addr()).await;
    let conf = format!("[entitlements]\n[cache]\nredis-url = \"{}\"\n", redis.url());
    let edge = PrivateEdge::start_with_origin(&st, &format!("127.0.0.1:{}", fwd.port), &conf).await;
    let token = edge.mint(&st, &id);
    let at = |p: &str| format!("/p/{token}/{id}/{p}");

    // Warm the stream: master, media playlist, init segment, first segment.
    let master = edge
        .get(&st, &at("master.m3u8"), &[])
        .await
        .text()
        .await
        .unwrap();
    let variant = master
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap()
        .to_owned();
    let media = edge
        .get(&st, &at(&variant), &[])
        .await
        .text()
        .await
        .unwrap();
    let dir = variant.rsplit_once('/').map_or("", |(d, _)| d);
    let init = media
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|l| l.split('"').next())
        .map(|u| format!("{dir}/{u}"))
        .expect("an init segment");
    let paths = [
        "master.m3u8".to_owned(),
        variant.clone(),
        init.clone(),
        seg.clone(),
    ];
    for p in &paths[2..] {
        let r = edge.get(&st, &at(p), &[]).await;
        assert_eq!(r.status(), 200, "{p}");
        r.bytes().await.unwrap();
    }
    for p in &paths {
        let r = edge.get(&st, &at(p), &[]).await;
        assert_eq!(
            (r.status().as_u16(), x_cache(&r)),
            (200, "HIT-L1".into()),
            "{p}"
        );
    }
    let resyncs = |page: &str| metric(page, "streamgate_edge_invalidations_total{type=\"resync\"}");
    assert_eq!(resyncs(&edge.metrics_page(&st).await), 1.0);

    // L2 writes happen behind the responses: wait until Redis holds all four.
    in_l2(&redis.url(), &id, 4).await;

    // Redis blips. As it comes back, an operator purges one segment (published through the
    // log, as origin and the admin API do): whether the edge gets it live or replays it on
    // resubscription, it must apply it, and nothing else.
    redis.restart();
    let mut con = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let purge = streamgate_config::contract::Invalidation::Purged {
        content_id: id.clone(),
        path: Some(seg.clone()),
    };
    use streamgate_config::contract::{INVALIDATE_CHANNEL, invalidation_log as log};
    let _: i64 = redis::Script::new(log::PUBLISH_SCRIPT)
        .key(log::STATE_KEY)
        .key(log::LOG_KEY)
        .arg(serde_json::to_string(&purge).unwrap())
        .arg(log::LOG_LEN)
        .arg(INVALIDATE_CHANNEL)
        .invoke_async(&mut con)
        .await
        .unwrap();
    streamgate_testkit::eventually("the edge resubscribed", Duration::from_secs(15), || async {
        let page = edge.metrics_page(&st).await;
        resyncs(&page) >= 2.0
            && metric(
                &page,
                "streamgate_edge_invalidations_total{type=\"purged\"}",
            ) >= 1.0
    })
    .await;

    // Then origin goes away.
    fwd.stop();
    for p in &paths[..3] {
        let r = edge.get(&st, &at(p), &[]).await;
        assert_eq!(
            (r.status().as_u16(), x_cache(&r)),
            (200, "HIT-L1".into()),
            "{p} kept in L1"
        );
    }
    // The purged segment left L1 and L2 (a purge naming a path deletes its L2 key at every
    // edge): with origin gone it cannot be served.
    let r = edge.get(&st, &at(&seg), &[]).await;
    assert!(
        matches!(r.status().as_u16(), 502 | 504),
        "{} {:?}: {}",
        r.status(),
        r.headers().get("x-cache"),
        std::fs::read_to_string(&edge.log).unwrap()
    );
    let page = edge.metrics_page(&st).await;
    assert_eq!(
        metric(&page, "streamgate_edge_invalidations_total{type=\"gap\"}"),
        0.0,
        "nothing was lost, so nothing was forgotten"
    );
}

/// A plain GET or HEAD of an object L1 holds fresh is answered before Pingora's cache phases
/// (`Edge::serve_hot_hit`); anything with validators or a range takes the phases. Both must
/// answer alike: same status, same headers (`Age` aside, which both carry), same bytes.
#[tokio::test]
async fn hot_hits_answer_as_the_cache_phases_do() {
    let st = Stack::load().await;
    let (id, token, seg) = packaged(&st, "cache-hot").await;
    let src = source(&st, &id, &seg).await;
    for path in [seg.as_str(), "master.m3u8"] {
        let url = format!("{}/p/{token}/{id}/{path}", st.edge);
        // Cached by now (`packaged` read the master; this reads the segment).
        let r = st.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let whole = r.bytes().await.unwrap();
        // The hot path (a second plain GET: the manifest is now known to need no rewrite).
        let hot = st.http.get(&url).send().await.unwrap();
        // The cache phases: a validator that does not match still gets the whole object.
        let phased = st
            .http
            .get(&url)
            .header("if-none-match", "\"no-such-version\"")
            .send()
            .await
            .unwrap();
        let headers = |r: &reqwest::Response| {
            let mut h: Vec<(String, String)> = r
                .headers()
                .iter()
                .filter(|(k, _)| *k != "age" && *k != "date")
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            h.sort();
            h
        };
        assert_eq!(hot.status(), 200, "{path}");
        assert_eq!(phased.status(), 200, "{path}");
        assert_eq!(headers(&hot), headers(&phased), "{path}");
        assert_eq!(x_cache(&hot), "HIT-L1", "{path}");
        for r in [&hot, &phased] {
            let age: u64 = r.headers()["age"].to_str().unwrap().parse().unwrap();
            assert!(age < 600, "{path}: age {age}");
        }
        assert_eq!(hot.bytes().await.unwrap(), whole, "{path}");
        assert_eq!(phased.bytes().await.unwrap(), whole, "{path}");
        if path == seg {
            assert_eq!(&whole[..], &src[..]);
            let r = st.http.get(&url).send().await.unwrap();
            assert_eq!(r.headers()["accept-ranges"], "bytes");
        }

        // HEAD: the same header, no body.
        let head = st.http.head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200, "{path}");
        assert_eq!(x_cache(&head), "HIT-L1");
        assert_eq!(
            head.headers()["content-length"].to_str().unwrap(),
            whole.len().to_string(),
            "{path}"
        );
        assert!(head.bytes().await.unwrap().is_empty());

        // A matching validator: 304 from the cache phases.
        let etag = st.http.get(&url).send().await.unwrap().headers()["etag"].clone();
        let r = st
            .http
            .get(&url)
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "{path}");
    }
}
