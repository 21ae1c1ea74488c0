//! Entitlement cache L1 hit: the cost a playlist request pays to re-check a viewer's
//! entitlement when the verdict is cached, against the cost of building the cache key alone.
//!
//! Run: `cargo bench -p streamgate-auth --bench entitlement`

#![allow(missing_docs)]

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use streamgate_entitlements::{CacheConfig, EntitlementCache, cache_key};

fn bench(c: &mut Criterion) {
    let cache = EntitlementCache::new(
        CacheConfig {
            ttl_allow: Duration::from_secs(3600),
            ttl_deny: Duration::from_secs(60),
            max_stale: Duration::from_secs(600),
            capacity: 100_000,
        },
        None,
    );
    let subject = "eip155:1:0x52908400098527886E0F7030069857D2E4169EE7";
    let policy = [9u8; 32];
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(cache.decide(subject, &policy, 100, async {
        Ok::<_, String>((true, "held".to_owned()))
    }))
    .unwrap();
    c.bench_function("entitlement/l1_hit", |b| {
        b.iter(|| {
            cache
                .peek(black_box(subject), black_box(&policy), 200)
                .unwrap()
        })
    });
    c.bench_function("baseline/cache_key", |b| {
        b.iter(|| cache_key(black_box(subject), black_box(&policy)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
