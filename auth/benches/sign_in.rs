//! Sign-in and session verification costs: SIWE (parse + fields + secp256k1 recovery), SIWS
//! (parse + fields + Ed25519 verify_strict), and session JWT verification on a cache miss and
//! on a hit. Inputs are the first accepted vectors of `tests/vectors/`.
//!
//! `ecrecover/*` compares signer recovery with k256 (pure Rust) and with libsecp256k1 (the C
//! library Bitcoin Core uses, through the `secp256k1` crate; what `verify_eip191` runs) on the
//! same signature and hash, in the same run: the public key and the address derived from it.
//!
//! Run: `cargo bench -p streamgate-auth --bench sign_in`

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use sha3::Digest;
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

    // Signer recovery alone, the same signature and hash: k256 (pure Rust, the baseline) vs
    // libsecp256k1 (what verify_eip191 uses), each to the address.
    let message = text(&siwe, "message");
    let sig = hex::decode(text(&siwe, "signature").trim_start_matches("0x")).unwrap();
    let expected = streamgate_auth::verify_eip191(message, &sig).unwrap();
    let address = |key: &[u8]| {
        let digest: [u8; 32] = sha3::Keccak256::digest(&key[1..]).into();
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest[12..]);
        out
    };
    let k256_recover = |hash: [u8; 32]| {
        let rs = k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
        let recid = k256::ecdsa::RecoveryId::from_byte(sig[64] % 27).unwrap();
        let key = k256::ecdsa::VerifyingKey::recover_from_prehash(&hash, &rs, recid).unwrap();
        address(key.to_encoded_point(false).as_bytes())
    };
    let secp = secp256k1::Secp256k1::verification_only();
    let recid = secp256k1::ecdsa::RecoveryId::try_from(i32::from(sig[64] % 27)).unwrap();
    let libsecp_recover = |hash: [u8; 32]| {
        let rs = secp256k1::ecdsa::RecoverableSignature::from_compact(&sig[..64], recid).unwrap();
        let key = secp
            .recover_ecdsa(secp256k1::Message::from_digest(hash), &rs)
            .unwrap();
        address(&key.serialize_uncompressed())
    };
    let hash = streamgate_auth::eip191_hash(message);
    assert_eq!(k256_recover(hash), expected, "k256 recovers the signer");
    assert_eq!(
        libsecp_recover(hash),
        expected,
        "libsecp256k1 recovers the signer"
    );
    c.bench_function("ecrecover/k256", |b| {
        b.iter(|| k256_recover(black_box(streamgate_auth::eip191_hash(black_box(message)))))
    });
    c.bench_function("ecrecover/libsecp256k1", |b| {
        b.iter(|| libsecp_recover(black_box(streamgate_auth::eip191_hash(black_box(message)))))
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
