//! The entitlement cache's shared tier against a real Redis (a private `redis-server`): a new
//! edge finds verdicts another edge decided, serves them stale when the chain is down, and
//! keeps deciding (L1 + chain) when Redis dies.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use streamgate_entitlements::{CacheConfig, EntitlementCache, Tier};
use streamgate_testkit::PrivateRedis;

/// A private `redis-server` on a reserved port (the test kit's), killed on drop.
async fn redis() -> PrivateRedis {
    PrivateRedis::start()
}

async fn manager(port: u16) -> ConnectionManager {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let cfg = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(300)))
        .set_response_timeout(Some(Duration::from_millis(300)))
        .set_number_of_retries(1);
    ConnectionManager::new_with_config(client, cfg)
        .await
        .unwrap()
}

fn config() -> CacheConfig {
    CacheConfig {
        ttl_allow: Duration::from_secs(60),
        ttl_deny: Duration::from_secs(10),
        max_stale: Duration::from_secs(300),
        capacity: 1000,
    }
}

const P: [u8; 32] = [3; 32];

async fn holds() -> Result<(bool, String), String> {
    Ok((true, "erc721 0xabc".into()))
}
async fn rpc_down() -> Result<(bool, String), String> {
    Err("every rpc endpoint failed".into())
}

#[tokio::test]
async fn another_edge_finds_the_verdict_in_redis_and_serves_it_stale() {
    let r = redis().await;
    let edge_a = EntitlementCache::new(config(), Some(manager(r.port).await));
    assert_eq!(
        edge_a.decide("v", &P, 1000, holds()).await.unwrap().tier,
        Tier::Checked
    );

    // a second edge (or this one restarted): L2 hit, no chain check
    let edge_b = EntitlementCache::new(config(), Some(manager(r.port).await));
    let got = edge_b.decide("v", &P, 1010, rpc_down()).await.unwrap();
    assert_eq!((got.tier, got.verdict.allowed), (Tier::L2, true));
    assert_eq!(edge_b.stats().checks.load(Ordering::Relaxed), 0);

    // a third edge after the TTL, chain down: the shared verdict is served stale
    let edge_c = EntitlementCache::new(config(), Some(manager(r.port).await));
    let got = edge_c.decide("v", &P, 1100, rpc_down()).await.unwrap();
    assert_eq!((got.tier, got.verdict.allowed), (Tier::Stale, true));
    // …and refused once past the staleness bound
    let edge_d = EntitlementCache::new(config(), Some(manager(r.port).await));
    assert!(
        edge_d
            .decide("v", &P, 1000 + 60 + 301, rpc_down())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn redis_dying_degrades_to_l1_and_the_chain() {
    let r = redis().await;
    let edge = EntitlementCache::new(config(), Some(manager(r.port).await));
    edge.decide("v", &P, 0, holds()).await.unwrap();
    drop(r); // Redis killed
    // cached: still served from L1
    assert_eq!(
        edge.decide("v", &P, 10, rpc_down()).await.unwrap().tier,
        Tier::L1
    );
    // a new viewer: decided by the chain, quickly, no panic
    let start = Instant::now();
    let got = edge.decide("w", &P, 10, holds()).await.unwrap();
    assert_eq!(got.tier, Tier::Checked);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(edge.stats().l2_errors.load(Ordering::Relaxed) >= 1);
    // and a new viewer with the chain down too: undecidable (the edge answers 503)
    assert!(edge.decide("x", &P, 10, rpc_down()).await.is_err());
}
