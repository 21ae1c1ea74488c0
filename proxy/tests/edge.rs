//! End-to-end tests of the edge: a real pingora server in front of a mock origin, driven over
//! HTTP. The edges start once per test binary (see `utils`).

mod utils;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use streamgate_proxy::TokenPolicy;
use utils::{EDGE, EDGE_ORIGIN_DOWN, ORIGIN, TestEdge, raw_request, sample};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn mint(edge: &TestEdge, content: &str, valid_from: u64, ttl_secs: u64) -> String {
    let policy = TokenPolicy::from_conf(&edge.config.tokens).expect("keys");
    policy
        .mint(
            content,
            "test",
            Some(Duration::from_secs(ttl_secs)),
            None,
            valid_from,
            false,
        )
        .expect("mint")
        .token
}

async fn json(resp: reqwest::Response) -> Value {
    resp.json().await.expect("json body")
}

async fn metrics_page(edge: &TestEdge) -> String {
    client()
        .get(&edge.metrics_url)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

#[tokio::test]
async fn health_and_readiness() {
    let c = client();
    let r = c
        .get(format!("{}/healthz", EDGE.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await, serde_json::json!({"status": "ok"}));
    let r = c.get(format!("{}/readyz", EDGE.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["status"], "ready");
}

#[tokio::test]
async fn valid_token_serves_origin_bytes_without_the_token() {
    let token = mint(&EDGE, "c-valid", now(), 600);
    let r = client()
        .get(format!(
            "{}/p/{token}/c-valid/720p/seg-1.m4s?cb={token}",
            EDGE.base
        ))
        .header("cookie", format!("sg_token={token}"))
        .header("authorization", format!("Bearer {token}"))
        .header("if-none-match", "\"zzz\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-cache"], "MISS");
    assert_eq!(r.headers()["etag"], "\"e1\"");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.text().await.unwrap(), "origin:/v/c-valid/720p/seg-1.m4s");

    let seen = ORIGIN.requests("/v/c-valid/");
    assert_eq!(seen.len(), 1, "{seen:?}");
    let req = &seen[0];
    assert_eq!(req.target, "/v/c-valid/720p/seg-1.m4s");
    assert_eq!(req.header("host"), Some(ORIGIN.addr.to_string().as_str()));
    assert_eq!(req.header("cookie"), None);
    assert_eq!(req.header("authorization"), None);
    // The edge fetches whole objects for its cache and answers conditionals itself.
    assert_eq!(req.header("if-none-match"), None);
    for (name, value) in &req.headers {
        assert!(!value.contains(&token), "token leaked to origin in {name}");
    }
}

#[tokio::test]
async fn ranges_are_cut_by_the_edge_from_the_whole_object() {
    let token = mint(&EDGE, "c-range", now(), 600);
    // One client: the second request rides the first one's connection.
    let http = client();
    let url = format!("{}/p/{token}/c-range/init.mp4", EDGE.base);
    // A range on a miss is answered whole while the cache fills (Pingora 0.9 leaves the
    // connection stuck after a 206 streamed from origin).
    let r = http
        .get(&url)
        .header("range", "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-cache"], "MISS");
    assert!(r.headers().get("content-range").is_none());
    let whole = r.text().await.unwrap();
    assert!(whole.starts_with("orig"), "{whole}");
    // Origin was asked for the whole object (cached for every later range).
    assert_eq!(ORIGIN.requests("/v/c-range/")[0].header("range"), None);
    // The same connection answers the next request, a 206 cut from the cache.
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        http.get(&url).header("range", "bytes=1-2").send(),
    )
    .await
    .expect("the connection is not stuck after a ranged miss")
    .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["x-cache"], "HIT-L1");
    assert!(
        r.headers()["content-range"]
            .to_str()
            .unwrap()
            .starts_with("bytes 1-2/")
    );
    assert_eq!(r.text().await.unwrap(), "ri");
    assert_eq!(ORIGIN.requests("/v/c-range/").len(), 1);
}

async fn expect_forbidden(path: &str, reason: &str) {
    let r = client()
        .get(format!("{}{path}", EDGE.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "{path}");
    let body = json(r).await;
    assert_eq!(body["error"], "forbidden", "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn refused_tokens_answer_403_with_a_reason_and_count() {
    let series = |r: &str| format!("streamgate_edge_token_failures_total{{reason=\"{r}\"}}");
    let before = metrics_page(&EDGE).await;

    expect_forbidden("/p//c-deny/master.m3u8", "malformed").await;

    let good = mint(&EDGE, "c-deny", now(), 600);
    // Change one character inside the MAC (the last 16 bytes of the token).
    let mut tampered: Vec<char> = good.chars().collect();
    let i = tampered.len() - 8;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    expect_forbidden(
        &format!("/p/{tampered}/c-deny/master.m3u8"),
        "bad_signature",
    )
    .await;

    let expired = mint(&EDGE, "c-deny", now() - 7200, 60);
    expect_forbidden(&format!("/p/{expired}/c-deny/master.m3u8"), "expired").await;

    let other = mint(&EDGE, "c-other", now(), 600);
    expect_forbidden(&format!("/p/{other}/c-deny/master.m3u8"), "wrong_content").await;

    let after = metrics_page(&EDGE).await;
    for reason in ["malformed", "bad_signature", "expired", "wrong_content"] {
        let (b, a) = (
            sample(&before, &series(reason)),
            sample(&after, &series(reason)),
        );
        assert!(a >= b + 1.0, "{reason}: {b} -> {a}");
    }
    assert!(
        ORIGIN.requests("/v/c-deny/").is_empty(),
        "refused requests reached origin"
    );
}

#[test]
fn bad_paths_answer_400() {
    let token = mint(&EDGE, "c-bad", now(), 600);
    for (target, reason) in [
        (format!("/p/{token}/c-bad/../secret"), "dot_segment"),
        (format!("/p/{token}/c-bad/%2e%2e/secret"), "encoded_path"),
        (format!("/p/{token}/c-bad/a//b.ts"), "empty_segment"),
        (format!("/p/{token}/bad.id/x.ts"), "bad_content_id"),
    ] {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n");
        let (status, body) = raw_request(EDGE.addr, &raw);
        assert_eq!(status, 400, "{target}: {body}");
        let body: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(body["error"], "bad_request");
        assert_eq!(body["reason"], reason, "{target}");
    }
    assert!(ORIGIN.requests("/v/c-bad").is_empty());
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let c = client();
    let r = c.get(format!("{}/nope", EDGE.base)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body = json(r).await;
    assert_eq!(body["error"], "not_found");
    assert!(body["message"].is_string());

    let r = c
        .post(format!("{}/p/t/c1/x.ts", EDGE.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD, OPTIONS");
    assert_eq!(json(r).await["error"], "method_not_allowed");

    let page = metrics_page(&EDGE).await;
    assert!(
        sample(
            &page,
            "streamgate_edge_bad_requests_total{reason=\"not_found\"}"
        ) >= 1.0
    );
    assert!(page.contains("streamgate_edge_request_duration_seconds_bucket"));
    assert!(page.contains("streamgate_edge_requests_total{kind=\"other\",status=\"404\"}"));
}

#[tokio::test]
async fn origin_down_is_a_quick_502() {
    let token = mint(&EDGE_ORIGIN_DOWN, "c-down", now(), 600);
    let started = Instant::now();
    let r = client()
        .get(format!(
            "{}/p/{token}/c-down/master.m3u8",
            EDGE_ORIGIN_DOWN.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(json(r).await["error"], "bad_gateway");
    // Counted by the logging hook, after the response: poll briefly.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while sample(
        &metrics_page(&EDGE_ORIGIN_DOWN).await,
        "streamgate_edge_upstream_errors_total",
    ) < 1.0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "upstream error not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn slow_origin_is_a_504() {
    let token = mint(&EDGE, "c-slow", now(), 600);
    let started = Instant::now();
    let r = client()
        .get(format!("{}/p/{token}/c-slow/slow.ts", EDGE.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    // read-timeout is 1s in the test config
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(json(r).await["error"], "gateway_timeout");
}

#[tokio::test]
async fn head_is_proxied_and_metrics_count_kinds() {
    let token = mint(&EDGE, "c-head", now(), 600);
    let r = client()
        .head(format!("{}/p/{token}/c-head/master.m3u8", EDGE.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-cache"], "MISS");
    // The logging hook counts the request after the response is written: poll briefly.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let page = metrics_page(&EDGE).await;
        let n = sample(
            &page,
            "streamgate_edge_requests_total{kind=\"manifest\",status=\"200\"}",
        );
        if n >= 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "manifest request not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn options_on_objects_says_what_is_allowed() {
    let r = client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/p/t/c1/master.m3u8", EDGE.base),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["allow"], "GET, HEAD, OPTIONS");
}

#[tokio::test]
async fn manifests_carry_the_token_in_absolute_uris_and_stay_token_free_in_cache() {
    let token = mint(&EDGE, "c-abs", now(), 600);
    let get = |token: String| async move {
        client()
            .get(format!("{}/p/{token}/c-abs/720p/abs.m3u8", EDGE.base))
            .send()
            .await
            .unwrap()
    };
    let r = get(token.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-cache"], "MISS");
    // Rewritten bodies change length: chunked, so the connection stays reusable.
    assert_eq!(r.headers()["transfer-encoding"], "chunked");
    assert!(r.headers().get("content-length").is_none());
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&format!(
            "#EXT-X-MAP:URI=\"/p/{token}/c-abs/720p/init.mp4\""
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!("\n/p/{token}/c-abs/720p/seg-00001.m4s\n")),
        "{body}"
    );
    assert!(
        body.contains("\nseg-00002.m4s\n"),
        "relative URIs untouched: {body}"
    );
    assert!(
        body.contains("\nhttps://ads.example/ad.ts\n"),
        "foreign URIs untouched: {body}"
    );

    // A second viewer gets the cached copy rewritten with their own token.
    let other = mint(&EDGE, "c-abs", now(), 300);
    let r = get(other.clone()).await;
    assert_eq!(r.headers()["x-cache"], "HIT-L1");
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&format!("/p/{other}/c-abs/720p/init.mp4")),
        "{body}"
    );
    assert!(
        !body.contains(&token),
        "first viewer's token leaked into the cache: {body}"
    );
    assert_eq!(ORIGIN.requests("/v/c-abs/").len(), 1);
}

#[tokio::test]
async fn expired_objects_are_served_stale_when_origin_fails() {
    let token = mint(&EDGE, "c-flaky", now(), 600);
    let url = format!("{}/p/{token}/c-flaky/720p/flaky.m4s", EDGE.base);
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.headers()["x-cache"], "MISS");
    assert_eq!(r.text().await.unwrap(), "fresh");
    // Fresh for 1 s (served from the cache); past that, origin answers 500 and
    // stale-if-error serves the copy. Polled, not slept through.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = client().get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let tier = r.headers()["x-cache"].to_str().unwrap().to_owned();
        assert_eq!(r.text().await.unwrap(), "fresh");
        if tier == "STALE" {
            break;
        }
        assert_eq!(tier, "HIT-L1", "fresh copy from the cache until it expires");
        assert!(Instant::now() < deadline, "never served stale");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ORIGIN.requests("/v/c-flaky/").len() >= 2,
        "origin was asked again"
    );
}

#[tokio::test]
async fn manifests_with_nothing_to_rewrite_are_sent_as_they_are_once_known() {
    let token = mint(&EDGE, "c-plain", now(), 600);
    let url = format!("{}/p/{token}/c-plain/720p/plain.m3u8", EDGE.base);
    // First answer: rewritten on the fly (chunked) while the edge learns it changes nothing.
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.headers()["transfer-encoding"], "chunked");
    let first = r.text().await.unwrap();
    assert_eq!(first, "origin:/v/c-plain/720p/plain.m3u8");
    // This version (same ETag) is known clean: served with its length, same bytes.
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.headers()["x-cache"], "HIT-L1");
    assert_eq!(
        r.headers()["content-length"].to_str().unwrap(),
        first.len().to_string()
    );
    assert_eq!(r.text().await.unwrap(), first);
}
