//! Playback-token mint and verify: the per-request cost of the token gate.
//!
//! Run: `cargo bench -p streamgate-auth --bench playback_token`
//!
//! `baseline/hmac_sha256_64B` is the floor any HMAC-based token check pays (one keyed
//! HMAC-SHA256 over the token's 64 bytes, nothing else): quote `verify` as a ratio to it.

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use streamgate_auth::playback::{Grant, KeySet};

fn bench(c: &mut Criterion) {
    let keys = KeySet::new(
        vec![("k0".into(), vec![1u8; 32]), ("k1".into(), vec![2u8; 32])],
        "k1",
    )
    .unwrap();
    let grant = Grant {
        content_id: "0123456789abcdefghij",
        subject: "eip155:1:0x52908400098527886E0F7030069857D2E4169EE7",
        expires_at: 4_000_000_000,
        client_ip: None,
        entitlement_bound: true,
    };
    let token = keys.mint(&grant);
    c.bench_function("playback_token/mint", |b| {
        b.iter(|| keys.mint(black_box(&grant)))
    });
    let keyed = Hmac::<Sha256>::new_from_slice(&[2u8; 32]).unwrap();
    let payload = [7u8; 64];
    c.bench_function("baseline/hmac_sha256_64B", |b| {
        b.iter(|| {
            let mut m = keyed.clone();
            m.update(black_box(&payload));
            m.finalize().into_bytes()
        })
    });
    c.bench_function("playback_token/verify", |b| {
        b.iter(|| {
            keys.verify(
                black_box(&token),
                black_box(grant.content_id),
                None,
                1_900_000_000,
            )
            .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
