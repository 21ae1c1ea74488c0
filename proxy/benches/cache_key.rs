//! Cache-key computation on the request path: building `sg1:{id}/{path}` and its Blake2b-128
//! hash (what L1 and L2 are keyed by), against a baseline that only formats the string.
//!
//! Run: `cargo bench -p streamgate-proxy --bench cache_key`

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

const CID: &str = "m6ukxuyvgsblantjakzh";
const PATH: &str = "720p/seg-00042.m4s";

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache_key");
    g.bench_function("key_and_hash", |b| {
        b.iter(|| streamgate_proxy::object_cache_hash(black_box(CID), black_box(PATH)))
    });
    g.bench_function("baseline_format_only", |b| {
        b.iter(|| streamgate_config::contract::edge_cache_key(black_box(CID), black_box(PATH)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
