//! SIWS against vectors made by `@solana/wallet-standard-util` (`createSignInMessageText`, and
//! its `verifySignIn` as a cross-check) and tweetnacl signatures: accepted vectors verify to
//! their subject, rejected ones fail with their own error code.

mod utils;

use std::collections::BTreeSet;

use streamgate_auth::{SignInError, SiwsMessage, SolanaCluster, verify_siws};
use utils::{list, load, now, rules, s};

#[test]
fn accepted_vectors_verify_with_their_subject() {
    let file = load("siws.json");
    for v in list(&file, "accept") {
        let name = s(v, "name");
        let ok = verify_siws(
            s(v, "message"),
            s(v, "signature"),
            s(v, "public_key"),
            &rules(v),
            now(v),
        )
        .unwrap_or_else(|e| panic!("{name}: {e} ({})", e.code()));
        assert_eq!(ok.subject, s(v, "subject"), "{name}");
        assert_eq!(ok.nonce, s(v, "nonce"), "{name}");
        let msg = SiwsMessage::parse(s(v, "message")).expect("parses");
        assert_eq!(msg.domain, s(v, "domain"), "{name}");
        assert_eq!(msg.uri, s(v, "uri"), "{name}");
        assert_eq!(msg.chain_id, s(v, "chain_id"), "{name}");
        assert_eq!(msg.address, s(v, "address"), "{name}");
    }
}

#[test]
fn rejected_vectors_fail_with_their_code() {
    let file = load("siws.json");
    let mut seen = BTreeSet::new();
    for v in list(&file, "reject") {
        let name = s(v, "name");
        let err = verify_siws(
            s(v, "message"),
            s(v, "signature"),
            s(v, "public_key"),
            &rules(v),
            now(v),
        )
        .expect_err(name);
        assert_eq!(err.code(), s(v, "error"), "{name}: {err}");
        if let Some(detail) = v["detail"].as_str() {
            let SignInError::Malformed(cause) = &err else {
                panic!("{name}: {err:?}");
            };
            assert_eq!(cause.code(), detail, "{name}: {cause}");
        }
        seen.insert(err.code());
    }
    for code in [
        "wrong_domain",
        "wrong_uri",
        "wrong_chain",
        "expired_message",
        "not_yet_valid",
        "issued_in_future",
        "stale_message",
        "bad_signature",
        "public_key_mismatch",
        "bad_public_key",
        "malformed_message",
    ] {
        assert!(seen.contains(code), "no vector for {code}");
    }
}

#[test]
fn mainnet_subject_uses_the_genesis_hash_prefix() {
    let file = load("siws.json");
    let v = &list(&file, "accept")[0];
    assert_eq!(s(v, "chain_id"), "mainnet");
    let ok = verify_siws(
        s(v, "message"),
        s(v, "signature"),
        s(v, "public_key"),
        &rules(v),
        now(v),
    )
    .expect("verifies");
    assert_eq!(ok.chain, "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp");
    assert_eq!(
        ok.subject,
        format!(
            "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:{}",
            s(v, "address")
        )
    );
    // Domain binding is never skipped: the same message against another domain fails.
    let other = streamgate_auth::SignInRules::new(
        "other.example",
        vec!["https://streamgate.example".into()],
    )
    .expect("rules")
    .with_solana_clusters(vec![SolanaCluster::mainnet()]);
    let err = verify_siws(
        s(v, "message"),
        s(v, "signature"),
        s(v, "public_key"),
        &other,
        now(v),
    )
    .unwrap_err();
    assert_eq!(err.code(), "wrong_domain");
}

#[test]
fn mutated_messages_never_panic() {
    let file = load("siws.json");
    let v = &list(&file, "accept")[1];
    let (text, sig, key) = (s(v, "message"), s(v, "signature"), s(v, "public_key"));
    let r = rules(v);
    for cut in 0..text.len() {
        assert!(verify_siws(&text[..cut], sig, key, &r, now(v)).is_err());
        assert!(verify_siws(&text[cut + 1..], sig, key, &r, now(v)).is_err());
    }
    let bytes = text.as_bytes();
    for i in 0..bytes.len() {
        for b in [b'\n', b'X', 0xff] {
            let mut m = bytes.to_vec();
            m[i] = b;
            let m = String::from_utf8_lossy(&m);
            if m != text {
                assert!(
                    verify_siws(&m, sig, key, &r, now(v)).is_err(),
                    "byte {i} -> {b}"
                );
            }
        }
    }
    for junk in [
        "",
        "1",
        "0",
        &"z".repeat(200),
        "11111111111111111111111111111111",
    ] {
        assert!(verify_siws(text, junk, key, &r, now(v)).is_err());
        assert!(verify_siws(text, sig, junk, &r, now(v)).is_err());
    }
}
