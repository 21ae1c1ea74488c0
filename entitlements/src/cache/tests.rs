//! L1 behaviour without Redis: TTLs, singleflight, stale serving, fail closed. (L2 is tested
//! against a real Redis in `auth/tests/entitlement_cache.rs`.)

use std::sync::atomic::Ordering;

use super::*;

fn cache() -> EntitlementCache {
    EntitlementCache::new(
        CacheConfig {
            ttl_allow: Duration::from_secs(60),
            ttl_deny: Duration::from_secs(10),
            max_stale: Duration::from_secs(300),
            capacity: 10_000,
        },
        None,
    )
}

const P: [u8; 32] = [7; 32];

async fn ok(allowed: bool) -> Result<(bool, String), String> {
    Ok((allowed, "rule".into()))
}

async fn down() -> Result<(bool, String), String> {
    Err("every rpc endpoint failed".into())
}

#[tokio::test]
async fn fresh_answers_come_from_l1_until_their_ttl() {
    let c = cache();
    let a = c.decide("s", &P, 1000, ok(true)).await.unwrap();
    assert_eq!((a.tier, a.verdict.allowed), (Tier::Checked, true));
    let b = c.decide("s", &P, 1059, ok(false)).await.unwrap();
    assert_eq!((b.tier, b.verdict.allowed), (Tier::L1, true));
    // past the positive TTL the chain is asked again: the NFT was sold
    let d = c.decide("s", &P, 1060, ok(false)).await.unwrap();
    assert_eq!((d.tier, d.verdict.allowed), (Tier::Checked, false));
    // negative answers have their own, shorter TTL
    assert_eq!(
        c.decide("s", &P, 1069, ok(true)).await.unwrap().tier,
        Tier::L1
    );
    let e = c.decide("s", &P, 1070, ok(true)).await.unwrap();
    assert_eq!((e.tier, e.verdict.allowed), (Tier::Checked, true));
    assert_eq!(c.stats().checks.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn keys_separate_subjects_and_policies() {
    let c = cache();
    c.decide("a", &P, 0, ok(true)).await.unwrap();
    let b = c.decide("b", &P, 0, ok(false)).await.unwrap();
    assert!(!b.verdict.allowed, "another subject is decided on its own");
    let other = c.decide("a", &[8; 32], 0, ok(false)).await.unwrap();
    assert!(
        !other.verdict.allowed,
        "another policy is decided on its own"
    );
    assert_ne!(cache_key("a", &P), cache_key("b", &P));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_cost_one_check() {
    let c = Arc::new(cache());
    let gate = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let (c, gate) = (c.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let check = async move {
                gate.notified().await;
                Ok::<_, String>((true, "held".to_owned()))
            };
            c.decide("viewer", &P, 5, check).await
        }));
    }
    // let every task reach the flight before the one check completes
    tokio::time::sleep(Duration::from_millis(100)).await;
    gate.notify_waiters();
    gate.notify_one();
    for t in tasks {
        assert!(t.await.unwrap().unwrap().verdict.allowed);
    }
    assert_eq!(c.stats().checks.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn rpc_down_serves_stale_within_the_bound_then_fails_closed() {
    let c = cache();
    c.decide("s", &P, 0, ok(true)).await.unwrap();
    // expired (60 s) but within 60 + 300 s: served stale
    let s = c.decide("s", &P, 200, down()).await.unwrap();
    assert_eq!((s.tier, s.verdict.allowed), (Tier::Stale, true));
    // beyond the bound: undecidable, never a grant
    assert!(c.decide("s", &P, 361, down()).await.is_err());
    // a viewer never seen before: undecidable
    assert!(c.decide("new", &P, 0, down()).await.is_err());
    assert_eq!(c.stats().stale.load(Ordering::Relaxed), 1);
}
