//! Origin scaled out: two origin replicas share one Redis (catalog leases, tus upload state,
//! the job and event streams, sessions) and the bucket, behind a round-robin TCP balancer for
//! the edge. Uploads go through either (one upload even switches replicas halfway), every
//! transcoder event is applied exactly once by one of them, and API writes racing the event
//! consumer on the same record are never lost.

use std::time::Duration;

use serde_json::{Value, json};
use streamgate_testkit::{
    Balancer, PrivateEdge, PrivateOrigin, PrivateTranscoder, Stack, eventually, make_clip, metric,
};

/// Events applied by an origin (every kind), from its metrics page.
async fn applied(st: &Stack, origin: &PrivateOrigin) -> f64 {
    let page = st.page(&format!("{}/metrics", origin.url)).await;
    page.lines()
        .filter(|l| l.starts_with("streamgate_origin_events_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `PUT /v1/contents/{id}/policy` through `origin`: the status and the stored policy (as
/// origin normalises it: checksummed addresses).
async fn put_policy(st: &Stack, origin: &str, id: &str, policy: &Value) -> (u16, Value) {
    let r = st
        .http
        .put(format!("{origin}/v1/contents/{id}/policy"))
        .header("authorization", st.bearer())
        .json(&json!({ "policy": policy }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body["policy"].clone())
}

#[tokio::test]
async fn two_origins_share_uploads_apply_each_event_once_and_lose_no_update() {
    let st = Stack::load().await;
    let a = PrivateOrigin::start(&st, "", "").await;
    let b = PrivateOrigin::start_sharing(&st, &a).await;
    let _worker = PrivateTranscoder::start(&st, &a.redis_url, "scale-out").await;
    let (sa, sb) = (st.at_origin(&a.url), st.at_origin(&b.url));
    let clip = make_clip(320, 180, 4, true);

    // One upload through both replicas: created and half sent through A, resumed through B.
    let x = sa.create_content("scale-out-x").await;
    let url_a = sa.tus_create(&x, clip.len() as u64).await;
    let half = clip.len() / 2;
    let r = sa.tus_patch(&url_a, 0, clip[..half].to_vec()).await;
    assert_eq!(r.status(), 204);
    let url_b = url_a.replace(&a.url, &b.url);
    assert_ne!(url_a, url_b);
    assert_eq!(
        sb.tus_offset(&url_b).await,
        half as u64,
        "B knows A's offset"
    );
    let r = sb
        .tus_patch(&url_b, half as u64, clip[half..].to_vec())
        .await;
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    // Another entirely through B.
    let y = sb.upload("scale-out-y", &clip, 1 << 20).await;

    // While X is transcoding (its events arrive and are applied), its policy changes through
    // A and B in turn, until X is ready and twice more: every change must be visible through the
    // other replica at once and survive the events' writes to the same record.
    let mut last = json!({"public": true});
    let mut after_ready = 0;
    let mut writes = 0;
    while after_ready < 2 {
        assert!(writes < 2_000, "X never became ready");
        let policy = json!({"allow": [format!("eip155:1:0x{:040x}", 0xabc0 + writes)]});
        let (writer, reader) = if writes % 2 == 0 {
            (&a, &sb)
        } else {
            (&b, &sa)
        };
        let (status, stored) = put_policy(&st, &writer.url, &x, &policy).await;
        assert_eq!(status, 200, "{policy}");
        assert!(stored.is_object(), "{stored}");
        let seen = reader.content(&x).await;
        assert_eq!(seen["policy"], stored, "read through the other replica");
        last = stored;
        writes += 1;
        match seen["status"].as_str() {
            Some("ready") => after_ready += 1,
            Some("failed") => panic!("{seen}"),
            _ => {}
        }
    }
    for (s, id) in [(&sa, &x), (&sb, &y)] {
        assert_eq!(
            s.wait_done(id, Duration::from_secs(120)).await["status"],
            "ready"
        );
    }
    // The events did not undo the policy writes, and the policy writes did not undo the events.
    for s in [&sa, &sb] {
        let rec = s.content(&x).await;
        assert_eq!(rec["status"], "ready");
        assert_eq!(rec["policy"], last);
        assert_eq!(s.content(&y).await["status"], "ready");
    }

    // Exactly once: every event in the stream was applied by one replica, none twice, none
    // left pending.
    let mut con = redis::Client::open(a.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let stream = streamgate_config::contract::EVENTS_STREAM;
    let group = streamgate_config::contract::EVENTS_GROUP;
    eventually("every event acknowledged", Duration::from_secs(20), || {
        let mut con = con.clone();
        async move {
            let pending: redis::Value = redis::cmd("XPENDING")
                .arg(stream)
                .arg(group)
                .query_async(&mut con)
                .await
                .unwrap();
            matches!(&pending, redis::Value::Array(v) if matches!(v.first(), Some(redis::Value::Int(0))))
        }
    })
    .await;
    let total: u64 = redis::cmd("XLEN")
        .arg(stream)
        .query_async(&mut con)
        .await
        .unwrap();
    let (by_a, by_b) = (applied(&st, &a).await, applied(&st, &b).await);
    assert!(
        total >= 4,
        "started and ready for two contents at least: {total}"
    );
    assert_eq!(
        by_a + by_b,
        total as f64,
        "A {by_a} + B {by_b} vs {total} events"
    );

    // The edge behind both replicas (a round-robin balancer): X plays, and each replica serves
    // media to edges.
    let lb = Balancer::start(&[
        a.internal_url.trim_start_matches("http://").to_owned(),
        b.internal_url.trim_start_matches("http://").to_owned(),
    ])
    .await;
    let edge = PrivateEdge::start_with_origin(
        &st,
        &format!("127.0.0.1:{}", lb.port),
        "[entitlements]\nstandalone = true\n",
    )
    .await;
    let token = edge.mint(&st, &x);
    let master = edge
        .get(&st, &format!("/p/{token}/{x}/master.m3u8"), &[])
        .await;
    assert_eq!(master.status(), 200);
    let master = master.text().await.unwrap();
    for variant in master
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let r = edge
            .get(&st, &format!("/p/{token}/{x}/{variant}"), &[])
            .await;
        assert_eq!(r.status(), 200, "{variant}");
    }
    for o in [&a, &b] {
        let r = st
            .http
            .get(format!("{}/v/{x}/master.m3u8", o.internal_url))
            .header(streamgate_config::contract::EDGE_KEY_HEADER, st.edge_key())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", o.internal_url);
    }
    assert_eq!(
        metric(
            &edge.metrics_page(&st).await,
            "streamgate_edge_upstream_errors_total"
        ),
        0.0
    );
}
