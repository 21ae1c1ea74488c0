//! Sign-In With Solana through the real origin (an Ed25519 key signing the wallet-standard
//! message), and the per-client rate limit on nonces.

use std::{net::IpAddr, time::Duration};

use ed25519_dalek::{Signer, SigningKey};
use serde_json::Value;
use streamgate_testkit::Stack;

fn siws_message(domain: &str, address: &str, uri: &str, chain: &str, nonce: &str) -> String {
    let issued = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    format!(
        "{domain} wants you to sign in with your Solana account:\n{address}\n\n\
         Sign in to StreamGate.\n\nURI: {uri}\nVersion: 1\nChain ID: {chain}\nNonce: {nonce}\n\
         Issued At: {issued}"
    )
}

async fn post_siws(
    st: &Stack,
    message: &str,
    signature: &[u8],
    public_key: &str,
) -> reqwest::Response {
    st.http
        .post(format!("{}/v1/auth/siws", st.origin))
        .json(&serde_json::json!({
            "message": message,
            "signature": bs58::encode(signature).into_string(),
            "public_key": public_key,
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_solana_wallet_signs_in_once_per_nonce() {
    let st = Stack::load_unsigned();
    let key = SigningKey::from_bytes(&[42u8; 32]);
    let address = bs58::encode(key.verifying_key().as_bytes()).into_string();
    let nonce = st.nonce().await;
    let msg = siws_message(st.origin_domain(), &address, &st.origin, "mainnet", &nonce);
    let sig = key.sign(msg.as_bytes()).to_bytes();

    // another key's signature, and a public key that is not the message's address
    let other = SigningKey::from_bytes(&[43u8; 32]);
    let r = post_siws(&st, &msg, &other.sign(msg.as_bytes()).to_bytes(), &address).await;
    assert_eq!(r.status(), 401);
    let other_pk = bs58::encode(other.verifying_key().as_bytes()).into_string();
    let r = post_siws(&st, &msg, &sig, &other_pk).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "public_key_mismatch", "{v}");
    // a chain origin does not accept
    let bad = siws_message(st.origin_domain(), &address, &st.origin, "testnet", &nonce);
    let r = post_siws(&st, &bad, &key.sign(bad.as_bytes()).to_bytes(), &address).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "wrong_chain", "{v}");

    // the genuine message signs in, once
    let r = post_siws(&st, &msg, &sig, &address).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["subject"],
        format!("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:{address}")
    );
    assert!(v["token"].as_str().unwrap().split('.').count() == 3);
    let r = post_siws(&st, &msg, &sig, &address).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "bad_nonce", "{v}");
}

#[tokio::test]
async fn nonce_requests_are_rate_limited_per_client_ip() {
    let st = Stack::load_unsigned();
    // A loopback address of its own, so the limit is this test's alone.
    let ip: IpAddr = "127.0.0.77".parse().unwrap();
    let client = reqwest::Client::builder()
        .local_address(ip)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let limit = 600; // the stack's auth.rate-limit.nonces-per-minute
    let mut limited = None;
    for i in 0..=2 * limit + 1 {
        let r = client
            .post(format!("{}/v1/auth/nonce", st.origin))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"], "rate_limited");
            limited = Some(i);
            break;
        }
        assert_eq!(r.status(), 200);
    }
    let i = limited.expect("the limit was enforced");
    // A minute window can roll over during the loop, so allow up to twice the limit.
    assert!(
        i >= limit && i <= 2 * limit + 1,
        "limited after {i} requests"
    );
    // Other clients are not affected.
    assert_eq!(st.nonce().await.len(), 24);
}
