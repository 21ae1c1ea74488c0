//! Sign-in and session verification costs: SIWE (parse + fields + secp256k1 recovery), SIWS
//! (parse + fields + Ed25519 verify_strict), and session JWT verification on a cache miss and
//! on a hit. Inputs are the first accepted vectors of `tests/vectors/`.
//!
//! Run: `cargo bench -p streamgate-auth --bench sign_in`

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use streamgate_auth::{
    SessionKeys, SessionVerifier, SignInRules, SolanaCluster, verify_siwe, verify_siws,
};

fn vector(file: &str) -> Value {
    let path = format!(
        "{}/tests/vectors/{file}",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")
    );
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all["accept"][0].clone()
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap()
}

fn bench(c: &mut Criterion) {
    let origins = vec!["https://streamgate.example".to_owned()];
    let siwe = vector("siwe.json");
    let rules = SignInRules::new("streamgate.example", origins.clone())
        .unwrap()
        .with_chain_ids(vec![1, 137]);
    let now = siwe["now"].as_i64().unwrap();
    c.bench_function("sign_in/siwe_verify", |b| {
        b.iter(|| {
            verify_siwe(
                black_box(text(&siwe, "message")),
                black_box(text(&siwe, "signature")),
                &rules,
                now,
            )
            .unwrap()
        })
    });

    let siws = vector("siws.json");
    let rules = SignInRules::new("streamgate.example", origins)
        .unwrap()
        .with_solana_clusters(vec![SolanaCluster::mainnet()]);
    c.bench_function("sign_in/siws_verify", |b| {
        b.iter(|| {
            verify_siws(
                black_box(text(&siws, "message")),
                black_box(text(&siws, "signature")),
                black_box(text(&siws, "public_key")),
                &rules,
                now,
            )
            .unwrap()
        })
    });

    let keys = SessionKeys::new(
        vec![("k1".into(), [1u8; 32]), ("k2".into(), [2u8; 32])],
        "k2",
        "https://origin.example",
        "edge",
    )
    .unwrap();
    let token = keys
        .issue(text(&siwe, "address"), Duration::from_secs(3600), now)
        .token;
    let cold = SessionVerifier::from_jwks(&keys.jwks(), "https://origin.example", "edge")
        .unwrap()
        .with_cache_capacity(0);
    c.bench_function("session/verify_cold", |b| {
        b.iter(|| cold.verify(black_box(&token), now).unwrap())
    });
    let cached = keys.verifier();
    cached.verify(&token, now).unwrap();
    c.bench_function("session/verify_cached", |b| {
        b.iter(|| cached.verify(black_box(&token), now).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
