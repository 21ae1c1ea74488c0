//! Wallet sign-in, sessions and ownership against the real origin and Redis: SIWE accepted and
//! refused for each reason, single-use nonces, the JWKS, logout revoking a session, and only
//! a content's owner writing to it.

use serde_json::Value;
use streamgate_testkit::{Stack, Wallet, siwe_message};

async fn code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (status, v["error"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn siwe_refusals_each_have_their_reason() {
    let st = Stack::load_unsigned();
    let w = Wallet::new(7);
    let domain = st.origin_domain().to_owned();
    let uri = st.origin.clone();

    // wrong domain, wrong URI, wrong chain: each refused before the nonce is spent
    let n = st.nonce().await;
    for (msg, want) in [
        (
            siwe_message("evil.example", &w.address, &uri, 31337, &n),
            "wrong_domain",
        ),
        (
            siwe_message(&domain, &w.address, "https://evil.example", 31337, &n),
            "wrong_uri",
        ),
        (
            siwe_message(&domain, &w.address, &uri, 5, &n),
            "wrong_chain",
        ),
    ] {
        let r = st.post_siwe(&msg, &w.sign(&msg)).await;
        assert_eq!(code(r).await, (401, want.to_owned()), "{msg}");
    }
    // signed by another key
    let msg = siwe_message(&domain, &w.address, &uri, 31337, &n);
    let r = st.post_siwe(&msg, &Wallet::new(8).sign(&msg)).await;
    let (status, why) = code(r).await;
    assert_eq!(status, 401);
    assert!(
        ["signer_mismatch", "bad_signature"].contains(&why.as_str()),
        "{why}"
    );
    // tampered statement after signing
    let sig = w.sign(&msg);
    let tampered = msg.replace("Sign in to StreamGate.", "Sign in to StreamGate!");
    let (status, _) = code(st.post_siwe(&tampered, &sig).await).await;
    assert_eq!(status, 401);
    // malformed
    let (status, why) = code(st.post_siwe("hello", &sig).await).await;
    assert_eq!(status, 401);
    assert!(!why.is_empty());
    // the nonce was never consumed by the refusals: the genuine message still signs in once…
    let r = st.post_siwe(&msg, &sig).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    // …and only once
    assert_eq!(
        code(st.post_siwe(&msg, &sig).await).await,
        (401, "bad_nonce".to_owned())
    );
    // an unknown nonce
    let msg = siwe_message(&domain, &w.address, &uri, 31337, "abcdefgh12345678abcdefgh");
    assert_eq!(
        code(st.post_siwe(&msg, &w.sign(&msg)).await).await,
        (401, "bad_nonce".to_owned())
    );
}

#[tokio::test]
async fn jwks_and_sessions() {
    let st = Stack::load().await;
    let r = st
        .http
        .get(format!("{}/.well-known/jwks.json", st.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let jwks: Value = r.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert!(key["kid"].is_string() && key["x"].is_string());
    assert!(key.get("d").is_none(), "no private part in the JWKS");

    // The token is a three-part JWT with alg EdDSA and the kid published above.
    let header = st.session.split('.').next().unwrap();
    use base64::Engine;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], key["kid"]);

    // No session, garbage session: 401 on creator routes.
    let r = st
        .http
        .post(format!("{}/v1/contents", st.origin))
        .json(&serde_json::json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (401, "no_session".to_owned()));
    let r = st
        .http
        .post(format!("{}/v1/contents", st.origin))
        .header("authorization", "Bearer not.a.jwt")
        .json(&serde_json::json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Logout revokes the session everywhere origin checks it.
    let token = st.sign_in(&Wallet::new(9)).await;
    let r = st
        .http
        .post(format!("{}/v1/auth/logout", st.origin))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = st
        .http
        .post(format!("{}/v1/contents", st.origin))
        .header("authorization", format!("Bearer {token}"))
        .json(&serde_json::json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (401, "revoked".to_owned()));
}

#[tokio::test]
async fn only_the_owner_writes_to_a_content() {
    let st = Stack::load().await;
    let other = st.sign_in(&Wallet::new(2)).await;
    let id = st.create_content("mine").await;
    let rec = st.content(&id).await;
    assert_eq!(
        rec["owner"],
        format!("eip155:31337:{}", Wallet::new(1).address)
    );

    // Another creator cannot start an upload on it…
    let meta = format!("content_id {}", {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&id)
    });
    let r = st
        .http
        .post(format!("{}/v1/uploads", st.origin))
        .header("authorization", format!("Bearer {other}"))
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .header("upload-metadata", &meta)
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, (403, "forbidden".to_owned()));
    // …nor write to the owner's upload, nor see it.
    let url = st.tus_create(&id, 10).await;
    let r = st
        .http
        .patch(&url)
        .header("authorization", format!("Bearer {other}"))
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(st.tus_offset(&url).await, 0);

    // Policy: the owner may change it, others may not.
    let put = |who: String, policy: Value| {
        st.http
            .put(format!("{}/v1/contents/{id}/policy", st.origin))
            .header("authorization", who)
            .json(&serde_json::json!({ "policy": policy }))
            .send()
    };
    let allow =
        serde_json::json!({"allow": ["eip155:1:0x0000000000000000000000000000000000000001"]});
    let r = put(format!("Bearer {other}"), allow.clone()).await.unwrap();
    assert_eq!(r.status(), 403);
    let r = put(st.bearer(), allow.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(st.content(&id).await["policy"], allow);
    let r = put(st.bearer(), serde_json::json!(["not", "an", "object"]))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Delete: not by others; by the owner, and then it is gone.
    let del = |who: String| {
        st.http
            .delete(format!("{}/v1/contents/{id}", st.origin))
            .header("authorization", who)
            .send()
    };
    assert_eq!(del(format!("Bearer {other}")).await.unwrap().status(), 403);
    assert_eq!(del(st.bearer()).await.unwrap().status(), 204);
    let r = st
        .http
        .get(format!("{}/v1/contents/{id}", st.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn an_expired_nonce_is_refused() {
    let st = Stack::load_unsigned();
    let w = Wallet::new(10);
    let nonce = st.nonce().await;
    // Age the nonce past its TTL in Redis itself, as time would.
    let client = redis::Client::open(st.redis_url.as_str()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let key = streamgate_config::contract::keys::nonce(&nonce);
    let ok: i64 = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(ok, 1, "the nonce was stored with a TTL");
    // Wait for Redis to have expired it (observable: the key is gone), not for a guessed time.
    streamgate_testkit::eventually("nonce expired", std::time::Duration::from_secs(5), || {
        let mut con = con.clone();
        let key = key.clone();
        async move {
            let n: i64 = redis::cmd("EXISTS")
                .arg(&key)
                .query_async(&mut con)
                .await
                .unwrap();
            n == 0
        }
    })
    .await;
    let msg = siwe_message(st.origin_domain(), &w.address, &st.origin, 31337, &nonce);
    assert_eq!(
        code(st.post_siwe(&msg, &w.sign(&msg)).await).await,
        (401, "bad_nonce".to_owned())
    );
}
