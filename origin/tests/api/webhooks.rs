//! Webhooks through the real stack: events about a creator's contents (a real clip transcoded
//! to `ready`, a policy change, a delete, a file that is not a video) reach the creator's
//! endpoints signed as Standard Webhooks, verified by the official `standardwebhooks` library
//! (npm, `scripts/clients/receiver.mjs`); a receiver killed mid-run gets every event once it is
//! back; a broken endpoint ends in the dead letter stream after its tries; targets inside the
//! network are refused; endpoints are their creator's alone.

use std::{path::PathBuf, process::Command, time::Duration};

use serde_json::{Value, json};
use streamgate_testkit::{
    PrivateOrigin, Proc, Stack, Wallet, eventually, make_clip, metric, noise, repo_root, reserve,
    wait_tcp,
};

/// A receiver process on a reserved port, restartable on the same port.
struct Receiver {
    port: u16,
    _ports: streamgate_testkit::Ports,
    proc: Option<Proc>,
    secret: String,
    mode: &'static str,
    out: PathBuf,
    dir: tempfile::TempDir,
}

impl Receiver {
    /// Reserves the port a receiver will listen on (the endpoint is registered before the
    /// receiver knows its secret).
    fn reserve(mode: &'static str) -> Receiver {
        let ports = reserve(1);
        let dir = tempfile::tempdir().unwrap();
        Receiver {
            port: ports.get(0),
            _ports: ports,
            proc: None,
            secret: String::new(),
            mode,
            out: dir.path().join("received.jsonl"),
            dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Starts (or restarts) the receiver with the endpoint's `secret`.
    fn start(&mut self, secret: &str) {
        self.secret = secret.to_owned();
        let proc = Proc::spawn_logged(
            Command::new("node")
                .arg(repo_root().join("scripts/clients/receiver.mjs"))
                .arg(self.port.to_string())
                .arg(&self.secret)
                .arg(&self.out)
                .arg(self.mode),
            &self.dir.path().join("receiver.log"),
        );
        self.proc = Some(proc);
        wait_tcp(self.port);
    }

    /// Kills it (SIGKILL): the endpoint refuses connections until [`Receiver::start`].
    fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill_group();
        }
    }

    /// Everything it recorded so far.
    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The verified deliveries about `content_id`, as `(type, webhook id)`.
    fn about(&self, content_id: &str) -> Vec<(String, String)> {
        self.received()
            .iter()
            .filter(|v| v["data"]["content_id"] == content_id)
            .map(|v| {
                (
                    v["type"].as_str().unwrap().to_owned(),
                    v["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn invalid(&self) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|v| v.get("invalid").is_some())
            .collect()
    }
}

/// `method` on `path` of the origin as `st`'s creator.
async fn call(st: &Stack, method: reqwest::Method, path: &str) -> reqwest::Response {
    st.http
        .request(method, format!("{}{path}", st.origin))
        .header("authorization", st.bearer())
        .send()
        .await
        .unwrap()
}

/// `POST /v1/webhooks`.
async fn register(st: &Stack, body: Value) -> reqwest::Response {
    st.http
        .post(format!("{}/v1/webhooks", st.origin))
        .header("authorization", st.bearer())
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Registers `url` for `events` (all when `None`); returns `(id, secret)`.
async fn endpoint(st: &Stack, url: &str, events: Option<&[&str]>) -> (String, String) {
    let mut body = json!({ "url": url, "description": "test receiver" });
    if let Some(e) = events {
        body["events"] = json!(e);
    }
    let r = register(st, body).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let v: Value = r.json().await.unwrap();
    let secret = v["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{v}");
    (v["id"].as_str().unwrap().to_owned(), secret)
}

async fn put_policy(st: &Stack, id: &str, policy: Value) {
    let r = st
        .http
        .put(format!("{}/v1/contents/{id}/policy", st.origin))
        .header("authorization", st.bearer())
        .json(&json!({ "policy": policy }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

async fn deliveries(st: &Stack, ep: &str) -> Vec<Value> {
    let r = call(
        st,
        reqwest::Method::GET,
        &format!("/v1/webhooks/{ep}/deliveries?limit=100"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["items"].as_array().unwrap().clone()
}

/// Waits (30 s at most) until endpoint `ep`'s delivery log satisfies `pred`.
async fn until_logged(st: &Stack, ep: &str, what: &str, pred: impl Fn(&[Value]) -> bool) {
    let pred = &pred;
    eventually(what, Duration::from_secs(30), || async move {
        pred(&deliveries(st, ep).await)
    })
    .await;
}

/// `GET /v1/webhooks` as `st`'s creator.
async fn list_endpoints(st: &Stack) -> Vec<Value> {
    let r = call(st, reqwest::Method::GET, "/v1/webhooks").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["items"].as_array().unwrap().clone()
}

/// A creator of its own (a fresh wallet): other tests' events are not theirs.
async fn fresh_creator(st: &Stack) -> Stack {
    st.as_creator(st.sign_in(&Wallet::fresh()).await)
}

#[tokio::test]
async fn every_event_type_arrives_signed_and_filtered() {
    let st = Stack::load().await;
    let me = fresh_creator(&st).await;
    let mut all = Receiver::reserve("ok");
    let mut deletes = Receiver::reserve("ok");
    let (ep_all, secret) = endpoint(&me, &all.url(), None).await;
    all.start(&secret);
    let (_, secret) = endpoint(&me, &deletes.url(), Some(&["content.deleted"])).await;
    deletes.start(&secret);

    // A real clip: upload.completed, then content.ready from the transcoder's events; then a
    // policy change and the delete.
    let clip = make_clip(320, 240, 2, true);
    let id = me
        .upload_with_policy("hooked", &clip, json!({"public": true}))
        .await;
    let done = me.wait_done(&id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "ready", "{done}");
    put_policy(
        &me,
        &id,
        json!({"allow": ["eip155:31337:0x0000000000000000000000000000000000000001"]}),
    )
    .await;
    let r = me
        .http
        .delete(format!("{}/v1/contents/{id}", me.origin))
        .header("authorization", me.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Noise: upload.completed, then content.failed from the probe.
    let bad = me
        .upload_with_policy("not a video", &noise(4096, 50), json!({"public": true}))
        .await;

    let want = [
        "upload.completed",
        "content.ready",
        "content.policy_changed",
        "content.deleted",
    ];
    eventually(
        "every event of the clip delivered",
        Duration::from_secs(60),
        || {
            let got = all.about(&id);
            async move { want.iter().all(|w| got.iter().any(|(t, _)| t == w)) }
        },
    )
    .await;
    eventually(
        "the failed upload's events delivered",
        Duration::from_secs(60),
        || {
            let got = all.about(&bad);
            async move {
                ["upload.completed", "content.failed"]
                    .iter()
                    .all(|w| got.iter().any(|(t, _)| t == w))
            }
        },
    )
    .await;
    assert!(
        all.invalid().is_empty(),
        "bad signatures: {:?}",
        all.invalid()
    );
    // Only this creator's contents, each event once.
    for v in all.received() {
        let c = v["data"]["content_id"].as_str().unwrap();
        assert!(c == id || c == bad, "someone else's event: {v}");
    }
    let ids: Vec<String> = all
        .received()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "an event was delivered twice: {ids:?}"
    );

    // The filtered endpoint got the delete and nothing else.
    eventually(
        "the delete reached the filtered endpoint",
        Duration::from_secs(30),
        || {
            let got = deletes.received();
            async move { !got.is_empty() }
        },
    )
    .await;
    let got = deletes.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["type"], "content.deleted");
    assert_eq!(got[0]["data"]["content_id"], id.as_str());

    // The delivery log says the same.
    let log = deliveries(&me, &ep_all).await;
    assert!(log.len() >= 6, "{log:?}");
    assert!(
        log.iter()
            .all(|t| t["outcome"] == "delivered" && t["status_code"] == 204),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_receiver_killed_mid_run_gets_every_event_once_it_is_back() {
    let st = Stack::load().await;
    let me = fresh_creator(&st).await;
    let mut rx = Receiver::reserve("ok");
    let (ep, secret) = endpoint(&me, &rx.url(), Some(&["content.policy_changed"])).await;
    rx.start(&secret);
    let id = me.create_content("flaky receiver").await;
    let wallet = |n: u8| format!("eip155:31337:0x{:040x}", n);
    put_policy(&me, &id, json!({"allow": [wallet(1)]})).await;
    eventually("the first event delivered", Duration::from_secs(30), || {
        let n = rx.about(&id).len();
        async move { n == 1 }
    })
    .await;

    // The receiver dies; three more changes happen meanwhile.
    rx.kill();
    for n in 2..=4 {
        put_policy(&me, &id, json!({"allow": [wallet(n)]})).await;
    }
    until_logged(&me, &ep, "tries fail while the receiver is down", |log| {
        log.iter()
            .any(|t| t["outcome"] == "failed" && t["status_code"].is_null())
    })
    .await;

    // Back on the same port: every event arrives. Count distinct events: a delivery cut by the
    // kill may arrive twice (at least once), and four deliveries are then only three events.
    rx.start(&secret);
    let distinct = |got: &[(String, String)]| {
        let mut ids: Vec<&str> = got.iter().map(|(_, i)| i.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    eventually(
        "every event delivered after the restart",
        Duration::from_secs(60),
        || {
            let n = distinct(&rx.about(&id));
            async move { n >= 4 }
        },
    )
    .await;
    let got = rx.about(&id);
    assert_eq!(distinct(&got), 4, "four distinct events: {got:?}");
    let ids: Vec<&str> = got.iter().map(|(_, i)| i.as_str()).collect();
    assert!(rx.invalid().is_empty());
    // A request cut by the kill may have reached the receiver before its answer was lost: the
    // receiver has it, origin retries it (at least once). Wait for origin's log to say so.
    until_logged(&me, &ep, "every event's delivery logged", |log| {
        log.iter().filter(|t| t["outcome"] == "delivered").count() >= 4
    })
    .await;
    let log = deliveries(&me, &ep).await;
    assert_eq!(
        log.iter().filter(|t| t["outcome"] == "delivered").count(),
        4,
        "{log:?}"
    );
    // A retried message keeps its id: the failed tries name ids that were later delivered.
    for t in log.iter().filter(|t| t["outcome"] == "failed") {
        assert!(ids.contains(&t["webhook_id"].as_str().unwrap()), "{t}");
        assert!(t["next_try_at"].as_u64().is_some(), "{t}");
    }
}

#[tokio::test]
async fn a_broken_endpoint_ends_in_the_dead_letter_stream() {
    let st = Stack::load().await;
    let origin = PrivateOrigin::start_env(
        &st,
        "",
        "",
        "",
        &[
            ("STREAMGATE__WEBHOOKS__MAX_ATTEMPTS", "3"),
            ("STREAMGATE__WEBHOOKS__BACKOFF", "50ms"),
            ("STREAMGATE__WEBHOOKS__MAX_BACKOFF", "200ms"),
        ],
    )
    .await;
    let me = st.at_origin(&origin.url);
    let mut rx = Receiver::reserve("fail");
    let (ep, secret) = endpoint(&me, &rx.url(), None).await;
    rx.start(&secret);
    let id = me.create_content("broken endpoint").await;
    put_policy(&me, &id, json!({"public": true})).await;
    until_logged(&me, &ep, "three tries, then the dead letter", |log| {
        log.first().is_some_and(|t| t["outcome"] == "dead")
    })
    .await;
    let log = deliveries(&me, &ep).await;
    let outcomes: Vec<&str> = log.iter().map(|t| t["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["dead", "failed", "failed"], "{log:?}");
    assert!(log.iter().all(|t| t["status_code"] == 500), "{log:?}");
    let attempts: Vec<u64> = log.iter().map(|t| t["attempt"].as_u64().unwrap()).collect();
    assert_eq!(attempts, [3, 2, 1]);
    // The dead letter stream names it.
    let mut con = redis::Client::open(origin.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let dead: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg("sg:wh:dead")
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(dead.ids.len(), 1);
    assert_eq!(
        dead.ids[0].get::<String>("endpoint").as_deref(),
        Some(ep.as_str())
    );
    assert_eq!(
        dead.ids[0].get::<String>("webhook_id"),
        log[0]["webhook_id"].as_str().map(str::to_owned)
    );
    let page = st.page(&format!("{}/metrics", origin.url)).await;
    assert_eq!(
        metric(
            &page,
            "streamgate_origin_webhook_deliveries_total{outcome=\"dead\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn targets_inside_the_network_are_refused() {
    let st = Stack::load().await;
    // The local stack allows private targets (its receivers are on loopback); production does
    // not: an origin with the default.
    let origin = PrivateOrigin::start_env(
        &st,
        "",
        "",
        "",
        &[("STREAMGATE__WEBHOOKS__ALLOW_PRIVATE_TARGETS", "false")],
    )
    .await;
    let me = st.at_origin(&origin.url);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/",
        "http://192.168.1.10/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fd00::1]/",
        "ftp://1.1.1.1/",
        "file:///etc/passwd",
        "http://user:pw@1.1.1.1/",
        "not a url",
    ] {
        let r = register(&me, json!({ "url": url })).await;
        assert_eq!(r.status(), 400, "{url}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["message"].as_str().unwrap().starts_with("url: "),
            "{url}: {v}"
        );
    }
    let page = st.page(&format!("{}/metrics", origin.url)).await;
    assert!(metric(&page, "streamgate_origin_webhook_refused_targets_total") >= 10.0);
    // Unknown event types and empty filters are refused too, naming the field.
    let r = register(
        &me,
        json!({ "url": "http://1.1.1.1/", "events": ["content.nope"] }),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().starts_with("events[0]"),
        "{v}"
    );
    let r = register(&me, json!({ "url": "http://1.1.1.1/", "events": [] })).await;
    assert_eq!(r.status(), 400);
    let r = register(&me, json!({ "url": "http://1.1.1.1/", "secret": "mine" })).await;
    assert_eq!(r.status(), 400, "unknown fields are refused");
    // A public address is accepted (nothing is sent at registration).
    let r = register(&me, json!({ "url": "https://1.1.1.1/hook" })).await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn endpoints_are_their_creators_alone() {
    let st = Stack::load().await;
    let me = fresh_creator(&st).await;
    let other = fresh_creator(&st).await;
    let rx = Receiver::reserve("ok");
    let (ep, _) = endpoint(&me, &rx.url(), None).await;

    let mine = list_endpoints(&me).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["id"], ep.as_str());
    assert!(
        mine[0].get("secret").is_none(),
        "the secret is shown once only"
    );
    assert!(list_endpoints(&other).await.is_empty());

    // Someone else cannot read the log of, or delete, my endpoint; nobody can without a session.
    let r = call(
        &other,
        reqwest::Method::GET,
        &format!("/v1/webhooks/{ep}/deliveries"),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = call(
        &other,
        reqwest::Method::DELETE,
        &format!("/v1/webhooks/{ep}"),
    )
    .await;
    assert_eq!(r.status(), 404);
    let r = st
        .http
        .get(format!("{}/v1/webhooks", st.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = call(
        &me,
        reqwest::Method::GET,
        "/v1/webhooks/ep_..%2F..%2Fx/deliveries",
    )
    .await;
    assert_eq!(r.status(), 404);
    // My content's events never reach another creator's endpoint (and vice versa): routing is
    // by owner. Their endpoint gets nothing when I change my content.
    let mut theirs = Receiver::reserve("ok");
    let (_, secret) = endpoint(&other, &theirs.url(), None).await;
    theirs.start(&secret);
    let mut mine_rx = Receiver::reserve("ok");
    let (_, secret) = endpoint(&me, &mine_rx.url(), None).await;
    mine_rx.start(&secret);
    let id = me.create_content("mine").await;
    put_policy(&me, &id, json!({"public": true})).await;
    eventually(
        "my change reached my endpoint",
        Duration::from_secs(30),
        || {
            let n = mine_rx.about(&id).len();
            async move { n == 1 }
        },
    )
    .await;
    assert!(theirs.received().is_empty(), "{:?}", theirs.received());

    // The owner deletes it: gone from the list.
    let r = call(&me, reqwest::Method::DELETE, &format!("/v1/webhooks/{ep}")).await;
    assert_eq!(r.status(), 204);
    assert!(
        !list_endpoints(&me)
            .await
            .iter()
            .any(|e| e["id"] == ep.as_str())
    );
}
