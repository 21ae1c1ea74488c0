//! Sign-In With Solana messages, signatures and public keys (base58): parse, check, verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_auth::{SignInRules, SiwsMessage, SolanaCluster, verify_siws};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\u{0}');
    let message = parts.next().unwrap_or_default();
    let signature = parts.next().unwrap_or("1");
    let key = parts.next().unwrap_or("1");
    let parsed = SiwsMessage::parse(message);
    let rules = SignInRules::new("example.com", vec!["https://example.com".into()])
        .expect("rules")
        .with_solana_clusters(vec![SolanaCluster::mainnet()]);
    if let Ok(v) = verify_siws(message, signature, key, &rules, 1_800_000_000) {
        let m = parsed.expect("a verified message parses");
        assert_eq!(v.nonce, m.nonce);
    }
});
