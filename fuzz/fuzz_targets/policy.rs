//! Content policies (JSON from creators): a policy that parses has a canonical form that
//! parses again to the same policy (same hash: the cache key of every verdict).
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_entitlements::{KnownChains, Policy};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let known = KnownChains::parse(["eip155:1", "eip155:137", "solana:mainnet"]).expect("chains");
    if let Ok(p) = Policy::parse_with(&value, &known) {
        let canonical = p.to_value();
        let again = Policy::parse_with(&canonical, &known).expect("canonical form parses");
        assert_eq!(again.hash(), p.hash());
        assert_eq!(again.to_value(), canonical);
    }
});
