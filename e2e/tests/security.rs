//! Attacks on the gate, driven through the real stack the way an attacker would (issue #10):
//! each test here failed on the code before its fix.
//!
//! - A creator who copies another creator's policy must not turn their own "owner" grant into
//!   a grant of the other content, and an owner refused under a policy elsewhere must still
//!   watch their own content (`owner_verdicts_never_cross_contents`).
//! - Packaged media only for edges: origin's public listener has no `/v/`, its internal one
//!   wants the edge key, a parent edge wants it from children, and a child never forwards the
//!   viewer's token (`media_is_served_to_edges_only`, `children_reach_parents_with_a_key_not_a_token`).
//! - CORS never hands a grant to a page the operator did not list (`grants_are_not_readable_cross_site`).
//! - Uploaded playlists and lists make origin fetch nothing (`uploaded_playlists_fetch_nothing`).
//! - Playlist re-checks fail closed (`playlist_rechecks_fail_closed`).
//! - A delete wins against racing transcoder events and a running transcode
//!   (`deleted_content_never_comes_back`, `a_delete_during_transcoding_leaves_nothing`).
//! - The public content view leaks no upload id, and nobody but the owner can hold the owner's
//!   upload at 423 (`others_see_a_public_view_and_cannot_lock_uploads`).
//! - Rate limits: spoofed X-Forwarded-For from an untrusted peer changes nothing, a trusted
//!   proxy's does, IPv6 counts per /64 (`rate_limits_key_the_real_client`); contract-wallet
//!   sign-in checks the nonce before any RPC call (`contract_wallet_sign_in_checks_the_nonce_first`).

use std::time::Duration;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use serde_json::{Value, json};
use streamgate_config::contract::{EVENTS_STREAM, STREAM_FIELD, keys};
use streamgate_testkit::{
    PrivateEdge, PrivateOrigin, PrivateRedis, Stack, Wallet, grant, make_clip, metric, noise,
};

const POLICY_CHANGES: &str = "streamgate_edge_invalidations_total{type=\"policy_changed\"}";

/// Polls the stack edge's metrics until `name` reaches `at_least`.
async fn edge_metric_reaches(st: &Stack, name: &str, at_least: f64) {
    let start = std::time::Instant::now();
    loop {
        let v = metric(&st.metrics_page("EDGE_METRICS_URL").await, name);
        if v >= at_least {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name} = {v}, want {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A random EVM address in lowercase hex: an allow-list nobody signs in with.
fn nobody() -> String {
    let bytes: [u8; 20] = std::array::from_fn(|_| rand_byte());
    format!(
        "0x{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn rand_byte() -> u8 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish() as u8
}

/// Uploads a short clip under `policy` as `creator` and waits until it is ready.
async fn ready_content(creator: &Stack, title: &str, policy: Value) -> String {
    let clip = make_clip(160, 90, 1, false);
    let id = creator.upload_with_policy(title, &clip, policy).await;
    let done = creator.wait_done(&id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "ready", "{done}");
    id
}

/// `DELETE /v1/contents/{id}` as `creator` (204).
async fn delete(creator: &Stack, id: &str) {
    let r = creator
        .http
        .delete(format!("{}/v1/contents/{id}", creator.origin))
        .header("authorization", creator.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
}

/// `PUT /v1/contents/{id}/policy` as `creator`.
async fn set_policy(creator: &Stack, id: &str, policy: &Value) {
    let r = creator
        .http
        .put(format!("{}/v1/contents/{id}/policy", creator.origin))
        .header("authorization", creator.bearer())
        .json(&json!({ "policy": policy }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

#[tokio::test]
async fn owner_verdicts_never_cross_contents() {
    let st = Stack::load_unsigned();
    let victim = st.as_creator(st.sign_in(&Wallet::new(101)).await);
    let attacker = st.as_creator(st.sign_in(&Wallet::new(102)).await);

    // The victim's content is gated by a policy nobody meets; the attacker copies it (it is
    // public in GET /v1/contents/{id}) onto their own content.
    let policy = json!({"allow": [format!("eip155:31337:{}", nobody())]});
    let theirs = ready_content(&victim, "victim", policy.clone()).await;
    let copied = st.content(&theirs).await["policy"].clone();
    let mine = ready_content(&attacker, "attacker", copied).await;

    // Order 1: the attacker's own grant first (owner: yes), then the victim's content.
    let (s, body) = grant(&st, &mine, Some(&attacker.session)).await;
    assert_eq!(s, 200, "the owner watches their own content: {body}");
    let (s, body) = grant(&st, &theirs, Some(&attacker.session)).await;
    assert_eq!(
        s, 403,
        "an owner's verdict opened another creator's content: {body}"
    );
    assert_eq!(body["error"], "not_entitled");
    // …and still not on a second try (a cached verdict would answer now).
    assert_eq!(grant(&st, &theirs, Some(&attacker.session)).await.0, 403);

    // Order 2: under a fresh copied policy, the attacker is refused on the victim's content
    // first (a "no" is cached for attacker × policy), then asks for their own.
    let policy = json!({"allow": [format!("eip155:31337:{}", nobody())]});
    let seen = metric(&st.metrics_page("EDGE_METRICS_URL").await, POLICY_CHANGES);
    set_policy(&victim, &theirs, &policy).await;
    set_policy(&attacker, &mine, &policy).await;
    // The edge has dropped both contents' cached policies.
    edge_metric_reaches(&st, POLICY_CHANGES, seen + 2.0).await;
    let (s, body) = grant(&st, &theirs, Some(&attacker.session)).await;
    assert_eq!(s, 403, "{body}");
    let (s, body) = grant(&st, &mine, Some(&attacker.session)).await;
    assert_eq!(
        s, 200,
        "a cached refusal locked the owner out of their content: {body}"
    );
    // The victim, too, watches their own content whatever was cached for the policy.
    let (s, body) = grant(&st, &theirs, Some(&victim.session)).await;
    assert_eq!(s, 200, "{body}");
}

/// A ready public content of the default creator.
async fn public_content(st: &Stack, title: &str) -> String {
    ready_content(st, title, json!({"public": true})).await
}

#[tokio::test]
async fn media_is_served_to_edges_only() {
    let st = Stack::load().await;
    let id = public_content(&st, "edges-only").await;
    let path = format!("/v/{id}/master.m3u8");

    // The public listener (the one creators and wallets reach) has no media route at all.
    let r = st
        .http
        .get(format!("{}{path}", st.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "anonymous media download from the public listener"
    );
    // The internal listener refuses callers without the edge key, or with a wrong one.
    for key in [None, Some("not-the-edge-key-at-all"), Some("")] {
        let mut req = st.http.get(format!("{}{path}", st.origin_internal));
        if let Some(k) = key {
            req = req.header("x-streamgate-edge-key", k);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "key {key:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "edge_key_required");
    }
    // The same for the content records edges read there.
    let r = st
        .http
        .get(format!("{}/v1/contents/{id}", st.origin_internal))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // With the key: served (what the stack's edge does on every miss).
    let r = st.internal_get(&path).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().starts_with("#EXTM3U"));

    // The stack's edge is nobody's parent: no `/v/` route, whatever headers say.
    let key = st.edge_key();
    let r = st
        .http
        .get(format!("{}{path}", st.edge))
        .header("x-streamgate-edge-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// A loopback HTTP server that records the head of every request and answers a small
/// uncacheable 200: stands in for a parent edge, to see exactly what a child sends it.
async fn recording_parent() -> (
    u16,
    Arc<std::sync::Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).into_owned());
                let body = "#EXTM3U\n";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
                     Content-Type: application/vnd.apple.mpegurl\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (port, seen, task)
}

#[tokio::test]
async fn children_reach_parents_with_a_key_not_a_token() {
    let st = Stack::load().await;
    let id = public_content(&st, "parents-security").await;

    // What a child sends its parent: /v/ with the edge key and the viewer's address; never the
    // viewer's token.
    let (port, seen, task) = recording_parent().await;
    let child = PrivateEdge::start_with_upstream(
        &st,
        &format!(
            "origin = \"{}\"\nparents = [\"127.0.0.1:{port}\"]",
            st.origin_internal_addr()
        ),
        "[entitlements]\nstandalone = true\n",
    )
    .await;
    let token = child.mint(&st, &id);
    let r = child
        .get(&st, &format!("/p/{token}/{id}/master.m3u8"), &[])
        .await;
    assert_eq!(r.status(), 200);
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let head = heads[0].to_ascii_lowercase();
    assert!(
        heads[0].starts_with(&format!("GET /v/{id}/master.m3u8 HTTP/1.1\r\n")),
        "{head}"
    );
    assert!(
        !heads[0].contains(&token),
        "the viewer's token went to the parent: {head}"
    );
    assert!(
        head.contains(&format!(
            "x-streamgate-edge-key: {}",
            st.edge_key().to_ascii_lowercase()
        )),
        "{head}"
    );
    assert!(head.contains("x-streamgate-client-ip: 127.0.0.1"), "{head}");
    task.abort();

    // A real parent: refuses /v/ without the key, with a wrong one, and with a spoofed client
    // address alone.
    let parent = PrivateEdge::start(&st, "[entitlements]\nstandalone = true\n").await;
    for headers in [
        vec![],
        vec![("x-streamgate-edge-key", "guessed-edge-key-123456")],
        vec![("x-streamgate-client-ip", "6.6.6.6")],
    ] {
        let r = parent
            .get(&st, &format!("/v/{id}/master.m3u8"), &headers)
            .await;
        assert_eq!(r.status(), 403, "{headers:?}");
    }

    // Token IP binding with a parent: the child checks the viewer's address (127.0.0.2 here,
    // bound /32), the parent serves the child. Before, the parent re-checked the token against
    // the child's address and every parent fetch failed `ip_mismatch`.
    let parent_addr = parent.url.trim_start_matches("http://").to_owned();
    let child = PrivateEdge::start_full(
        &st,
        &format!(
            "origin = \"{}\"\nparents = [\"{parent_addr}\"]",
            st.origin_internal_addr()
        ),
        "ipv4-prefix = 32",
        "[entitlements]\nstandalone = true\n",
    )
    .await;
    let bound = child.mint_with(&st, &id, &["--ip", "127.0.0.2"]);
    let viewer = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let r = viewer
        .get(format!("{}/p/{bound}/{id}/master.m3u8", child.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    // …and the parent now holds it (it was fetched through the parent).
    let r = parent
        .get(
            &st,
            &format!("/v/{id}/master.m3u8"),
            &[("x-streamgate-edge-key", &st.edge_key())],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-cache"], "HIT-L1");
    // The viewer's token is still bound: from another address it is refused at the child.
    let r = st
        .http
        .get(format!("{}/p/{bound}/{id}/master.m3u8", child.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn grants_are_not_readable_cross_site() {
    let st = Stack::load().await;
    let id = public_content(&st, "cors").await;
    let viewer = st.sign_in(&Wallet::new(103)).await;
    // A page on an origin the operator did not list asks for the viewer's grant with the
    // viewer's cookie: the browser must not hand it the answer (no ACAO, no credentials).
    let r = st
        .http
        .get(format!("{}/v1/playback/{id}", st.edge))
        .header("origin", "https://evil.example")
        .header("cookie", format!("sg_session={viewer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(
        r.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    // A listed page gets its own origin echoed, with credentials.
    let r = st
        .http
        .get(format!("{}/v1/playback/{id}", st.edge))
        .header("origin", "http://player.example")
        .header("cookie", format!("sg_session={viewer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://player.example"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    // The preflight a web app's Bearer request needs: granted to a listed page, not to another.
    let preflight = |origin: &'static str| {
        st.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/playback/{id}", st.edge),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let r = preflight("https://evil.example").await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(r.headers().get("access-control-allow-headers").is_none());
    let r = preflight("http://player.example").await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://player.example"
    );
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
}

/// A loopback listener counting connections (held by the test: no port race).
async fn tripwire() -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let task = tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (url, hits, task)
}

#[tokio::test]
async fn uploaded_playlists_fetch_nothing() {
    let st = Stack::load().await;
    let (url, hits, task) = tripwire().await;
    let uploads = [
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n{url}/internal/seg.ts\n#EXTINF:4,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
        ),
        format!("ffconcat version 1.0\nfile '{url}/latest/meta-data/'\nfile '/etc/passwd'\n"),
        format!(
            "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\" mediaPresentationDuration=\"PT4S\" minBufferTime=\"PT2S\" profiles=\"urn:mpeg:dash:profile:isoff-on-demand:2011\"><BaseURL>{url}/</BaseURL><Period><AdaptationSet mimeType=\"video/mp4\"><Representation id=\"1\" bandwidth=\"1000\"><BaseURL>v.mp4</BaseURL></Representation></AdaptationSet></Period></MPD>\n"
        ),
    ];
    let mut errors = Vec::new();
    for (i, body) in uploads.iter().enumerate() {
        let id = st
            .upload_with_policy(
                &format!("ssrf-{i}"),
                body.as_bytes(),
                json!({"public": true}),
            )
            .await;
        let done = st.wait_done(&id, Duration::from_secs(60)).await;
        assert_eq!(done["status"], "failed", "{done}");
        errors.push(done["error"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "origin fetched a URL named in an uploaded file"
    );
    for err in errors {
        assert!(
            err.starts_with("not a media file") && err.contains("is not accepted"),
            "{err}"
        );
    }
    task.abort();
}

#[tokio::test]
async fn playlist_rechecks_fail_closed() {
    let st = Stack::load().await;
    let id = public_content(&st, "recheck").await;
    let viewer = st.sign_in(&Wallet::new(104)).await;
    let mut redis = PrivateRedis::start();
    let redis_port = redis.port;
    let ent = format!("[entitlements]\nredis-url = \"redis://127.0.0.1:{redis_port}\"\n");
    // Edge A grants; edge B (same token keys, same Redis) serves the playlists.
    let a = PrivateEdge::start(&st, &ent).await;
    let b = PrivateEdge::start(&st, &ent).await;
    let (s, body) = a.grant(&st, &id, &viewer).await;
    assert_eq!(s, 200, "{body}");
    let master = body["hls"].as_str().unwrap().to_owned();
    assert_eq!(
        b.get(&st, &master, &[]).await.status(),
        200,
        "B finds the viewer in Redis"
    );

    // The viewer's record is gone (evicted, flushed): a grant token must not pass unchecked.
    let hash = hex(&streamgate_auth::playback::subject_hash(&format!(
        "eip155:31337:{}",
        Wallet::new(104).address
    )));
    let client = redis::Client::open(format!("redis://127.0.0.1:{redis_port}")).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let removed: i64 = redis::AsyncCommands::del(&mut con, keys::viewer(&hash))
        .await
        .unwrap();
    assert_eq!(removed, 1, "the grant recorded its viewer in Redis");
    let c = PrivateEdge::start(&st, &ent).await;
    let r = c.get(&st, &master, &[]).await;
    assert_eq!(
        r.status(),
        403,
        "a grant token whose viewer is unknown passed the re-check"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "not_entitled");
    // Segments still rely on the token alone (no re-check): the viewer keeps playing what
    // the last playlist listed.

    // Redis down: the re-check cannot be made: 503, not a pass.
    let d = PrivateEdge::start(&st, &ent).await;
    redis.proc.kill_group();
    let r = d.get(&st, &master, &[]).await;
    assert_eq!(
        r.status(),
        503,
        "a re-check that could not read Redis passed"
    );

    // Operator tokens (`token mint`) were never bound to an entitlement: they pass.
    let operator = d.mint(&st, &id);
    let r = d
        .get(&st, &format!("/p/{operator}/{id}/master.m3u8"), &[])
        .await;
    assert_eq!(r.status(), 200);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The stack's Redis.
async fn stack_redis(st: &Stack) -> redis::aio::MultiplexedConnection {
    redis::Client::open(st.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Waits until origin's event consumer has taken every entry of `sg:events` and acknowledged it.
async fn events_drained(st: &Stack) {
    let mut con = stack_redis(st).await;
    let start = std::time::Instant::now();
    loop {
        let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(EVENTS_STREAM)
            .query_async(&mut con)
            .await
            .unwrap();
        let origin = groups
            .iter()
            .find(|g| matches!(g.get("name"), Some(redis::Value::BulkString(n)) if n == b"origin"))
            .expect("origin's consumer group");
        let num = |k: &str| match origin.get(k) {
            Some(redis::Value::Int(n)) => *n,
            _ => -1,
        };
        // Drained: nothing pending and the group has delivered the stream's last entry. (Not
        // `lag`: Redis 7.0 miscounts `entries-read` and can report a lag for a group that
        // has read everything.)
        let delivered = match origin.get("last-delivered-id") {
            Some(redis::Value::BulkString(id)) => String::from_utf8_lossy(id).into_owned(),
            _ => String::new(),
        };
        let last: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(EVENTS_STREAM)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut con)
            .await
            .unwrap();
        let last = last.ids.first().map(|e| e.id.clone()).unwrap_or_default();
        if num("pending") == 0 && (last.is_empty() || delivered == last) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "events not drained"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn deleted_content_never_comes_back() {
    // A transcoder's events keep arriving while the owner deletes: every one of them is a
    // read-modify-write of the record. None may write the record back after the delete.
    let st = Stack::load().await;
    let mut con = stack_redis(&st).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = st.create_content(&format!("delete-race-{i}")).await;
        st.tus_create(&id, 1 << 20).await; // uploading: events apply to it
        ids.push(id);
    }
    let mut pipe = redis::pipe();
    for id in &ids {
        let started = json!({"type": "started", "content_id": id, "worker": "test", "attempt": 1});
        pipe.xadd(EVENTS_STREAM, "*", &[(STREAM_FIELD, started.to_string())])
            .ignore();
        for n in 0..150 {
            let p = json!({"type": "progress", "content_id": id, "percent": f64::from(n) / 2.0});
            pipe.xadd(EVENTS_STREAM, "*", &[(STREAM_FIELD, p.to_string())])
                .ignore();
        }
    }
    let () = pipe.query_async(&mut con).await.unwrap();
    // Delete each once origin is busy applying its events.
    for id in &ids {
        let start = std::time::Instant::now();
        while st.content(id).await["progress"].as_f64().unwrap_or(0.0) <= 0.0 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "events not applied"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        delete(&st, id).await;
    }
    events_drained(&st).await;
    for id in &ids {
        let r = st
            .http
            .get(format!("{}/v1/contents/{id}", st.origin))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{id} came back after its delete");
    }
}

/// Waits until a transcoder is in the middle of `id` (processing, 0 < progress < 90):
/// `false` when the job got past that between two looks.
async fn caught_mid_transcode(st: &Stack, id: &str) -> bool {
    let start = std::time::Instant::now();
    loop {
        let c = st.content(id).await;
        let progress = c["progress"].as_f64().unwrap_or(0.0);
        if c["status"] == "ready" || (c["status"] == "processing" && progress >= 90.0) {
            return false;
        }
        if c["status"] == "processing" && progress > 0.0 {
            return true;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{c}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_delete_during_transcoding_leaves_nothing() {
    let st = Stack::load().await;
    // Three rungs of 20 s: FFmpeg runs for seconds, and the package is uploaded after it. On a
    // busy machine the job can still finish between two looks (progress is reported every
    // 2 s): then the clip is deleted and a twice longer one tried, up to 80 s.
    let mut seconds = 20;
    let id = loop {
        let clip = make_clip(1280, 720, seconds, true);
        let id = st.upload("delete-mid-transcode", &clip, 4 << 20).await;
        if caught_mid_transcode(&st, &id).await {
            break id;
        }
        delete(&st, &id).await;
        assert!(
            seconds < 80,
            "a {seconds} s clip transcoded before the test could delete it"
        );
        seconds *= 2;
    };
    delete(&st, &id).await;
    // The transcoder finishes anyway and reports (ready, or failed for its vanished source).
    let mut con = stack_redis(&st).await;
    let start = std::time::Instant::now();
    loop {
        let entries: redis::streams::StreamRangeReply =
            redis::AsyncCommands::xrange_all(&mut con, EVENTS_STREAM)
                .await
                .unwrap();
        let finished = entries.ids.iter().any(|e| {
            e.get::<String>(STREAM_FIELD).is_some_and(|v| {
                v.contains(&format!("\"content_id\":\"{id}\""))
                    && (v.contains("\"type\":\"ready\"") || v.contains("\"type\":\"failed\""))
            })
        });
        if finished {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the job never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    events_drained(&st).await;
    // Never servable again, and nothing of it left in the bucket.
    let r = st
        .http
        .get(format!("{}/v1/contents/{id}", st.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = st
        .internal_get(&format!("/v/{id}/master.m3u8"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let left = st
        .s3()
        .list_objects_v2()
        .bucket(&st.bucket)
        .prefix(format!("media/{id}/"))
        .send()
        .await
        .unwrap()
        .key_count()
        .unwrap_or(0);
    assert_eq!(
        left, 0,
        "a deleted content's package is still in the bucket"
    );
}

#[tokio::test]
async fn others_see_a_public_view_and_cannot_lock_uploads() {
    let st = Stack::load_unsigned();
    let owner = st.as_creator(st.sign_in(&Wallet::new(105)).await);
    let other = st.as_creator(st.sign_in(&Wallet::new(106)).await);
    let id = owner.create_content("mine").await;
    let data = noise(4 << 20, 7);
    let upload = owner.tus_create(&id, data.len() as u64).await;
    let upload_id = upload.rsplit('/').next().unwrap().to_owned();

    // Anonymous and other creators: the contract's fields, no upload id nor bookkeeping.
    let get = |who: Option<&Stack>| {
        let mut req = st.http.get(format!("{}/v1/contents/{id}", st.origin));
        if let Some(w) = who {
            req = req.header("authorization", w.bearer());
        }
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    for view in [get(None).await, get(Some(&other)).await] {
        assert!(view.get("upload_id").is_none(), "{view}");
        assert!(!view.to_string().contains(&upload_id), "{view}");
        for k in [
            "id",
            "title",
            "owner",
            "status",
            "progress",
            "policy",
            "renditions",
            "duration_s",
            "error",
        ] {
            assert!(view.get(k).is_some(), "public view lacks {k}: {view}");
        }
    }
    // The owner sees their own fields.
    assert_eq!(get(Some(&owner)).await["upload_id"], upload_id.as_str());
    // A bad session is refused, not silently anonymous.
    let r = st
        .http
        .get(format!("{}/v1/contents/{id}", st.origin))
        .header("authorization", "Bearer not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Another creator hammering the owner's upload id never takes its writer lease: the
    // owner's PATCHes never see 423.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut attackers = Vec::new();
    for _ in 0..16 {
        let (http, url, bearer, stop) = (
            st.http.clone(),
            upload.clone(),
            other.bearer(),
            stop.clone(),
        );
        attackers.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for r in [
                    http.patch(&url)
                        .header("authorization", &bearer)
                        .header("tus-resumable", "1.0.0")
                        .header("upload-offset", "0")
                        .header("content-type", "application/offset+octet-stream")
                        .body(vec![0u8; 16])
                        .send()
                        .await,
                    http.delete(&url)
                        .header("authorization", &bearer)
                        .header("tus-resumable", "1.0.0")
                        .send()
                        .await,
                ] {
                    answers.push(r.map(|r| r.status().as_u16()).unwrap_or(0));
                }
            }
            answers
        }));
    }
    let mut locked = 0;
    let mut off = 0usize;
    for piece in data.chunks(256 << 10) {
        let r = owner.tus_patch(&upload, off as u64, piece.to_vec()).await;
        if r.status() == 423 {
            locked += 1;
            continue;
        }
        assert_eq!(r.status(), 204, "{:?}", r.text().await);
        off += piece.len();
    }
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        for status in a.await.unwrap() {
            assert_eq!(status, 404, "another creator reached the owner's upload");
        }
    }
    assert_eq!(locked, 0, "another creator held the owner's upload at 423");
    assert_eq!(off, data.len());
}

#[tokio::test]
async fn rate_limits_key_the_real_client() {
    let st = Stack::load_unsigned();
    // A private origin (own Redis: its counters touch nothing of the stack's) behind a
    // "load balancer" at 127.0.0.2.
    let origin = PrivateOrigin::start(
        &st,
        "trusted-proxies = [\"127.0.0.2/32\"]",
        "nonces-per-minute = 3\nsign-ins-per-minute = 3",
    )
    .await;
    // Limits count per wall-clock minute: start well inside one, so the whole test (a second
    // or two) sees a single window.
    let start = std::time::Instant::now();
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60
        > 45
    {
        assert!(start.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let nonce = |http: &reqwest::Client, xff: Option<&str>| {
        let mut req = http.post(format!("{}/v1/auth/nonce", origin.url));
        if let Some(x) = xff {
            req = req.header("x-forwarded-for", x);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    // From an untrusted peer, X-Forwarded-For is ignored: rotating it does not rotate the key.
    let direct = reqwest::Client::new();
    for i in 0..3 {
        assert_eq!(nonce(&direct, Some(&format!("198.51.100.{i}"))).await, 200);
    }
    assert_eq!(
        nonce(&direct, Some("198.51.100.99")).await,
        429,
        "spoofed XFF bypassed the limit"
    );
    assert_eq!(nonce(&direct, None).await, 429);

    // Through the trusted proxy, the client it names is the one limited…
    let lb = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(nonce(&lb, Some("203.0.113.7")).await, 200);
    }
    assert_eq!(nonce(&lb, Some("203.0.113.7")).await, 429);
    // …a client-written prefix left of it changes nothing…
    assert_eq!(nonce(&lb, Some("1.2.3.4, 203.0.113.7")).await, 429);
    // …and another client behind the same proxy has its own budget.
    assert_eq!(nonce(&lb, Some("203.0.113.8")).await, 200);

    // IPv6 clients count per /64: rotating inside the prefix does not help.
    for i in 1..=3 {
        assert_eq!(nonce(&lb, Some(&format!("2001:db8:1:2::{i}"))).await, 200);
    }
    assert_eq!(
        nonce(&lb, Some("2001:db8:1:2:ffff:ffff:ffff:ffff")).await,
        429
    );
    assert_eq!(nonce(&lb, Some("2001:db8:1:3::1")).await, 200);
}

#[tokio::test]
async fn contract_wallet_sign_in_checks_the_nonce_first() {
    let st = Stack::load_unsigned();
    // A message for another account (a contract wallet, as far as origin can tell) signed by
    // someone else, with a nonce origin never issued: refused for the nonce, before any RPC
    // call is spent on isValidSignature. Before, this cost a round of calls and answered
    // `signer_mismatch`.
    let (signer, claimed) = (Wallet::new(107), Wallet::new(108));
    let msg = streamgate_testkit::siwe_message(
        st.origin_domain(),
        &claimed.address,
        &st.origin,
        31337,
        "abcdefghijklmnopqrstuvwx",
    );
    let r = st.post_siwe(&msg, &signer.sign(&msg)).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "bad_nonce", "{body}");
    // With a live nonce the same message gets the signature refusal (the nonce is not spent).
    let live = st.nonce().await;
    let msg = streamgate_testkit::siwe_message(
        st.origin_domain(),
        &claimed.address,
        &st.origin,
        31337,
        &live,
    );
    let r = st.post_siwe(&msg, &signer.sign(&msg)).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "signer_mismatch", "{body}");
}
