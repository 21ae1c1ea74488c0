//! Sign-In with Ethereum messages (EIP-4361) and signatures: parse, check the fields, recover.
//! Whatever signs in names the message's own address and nonce.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_auth::{SignInRules, SiweMessage, verify_siwe};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (message, signature) = text.rsplit_once('\u{0}').unwrap_or((text, "0x00"));
    let parsed = SiweMessage::parse(message);
    let rules = SignInRules::new("example.com", vec!["https://example.com".into()])
        .expect("rules")
        .with_chain_ids(vec![1]);
    if let Ok(v) = verify_siwe(message, signature, &rules, 1_800_000_000) {
        let m = parsed.expect("a verified message parses");
        assert_eq!(v.nonce, m.nonce);
        assert!(v.subject.ends_with(&m.address));
    }
});
