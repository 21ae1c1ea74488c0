//! Session JWTs at the edge and origin: header screening (alg, kid, typ), claims, signature.
//! A forged or mangled token never verifies; a token the fuzzer's subject was issued always does.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use streamgate_auth::SessionKeys;

fuzz_target!(|data: &[u8]| {
    let keys = SessionKeys::new(
        vec![("s1".into(), [7u8; 32])],
        "s1",
        "https://origin.example",
        "streamgate",
    )
    .expect("keys");
    let verifier = keys.verifier();
    let now = 1_800_000_000;
    let text = String::from_utf8_lossy(data);
    if let Ok(c) = verifier.verify(&text, now) {
        // Random text cannot carry a valid EdDSA signature under our key.
        panic!("forged token verified: {c:?}");
    }
    // Sessions name a subject of reasonable size; a token without one, or too long to screen,
    // is never accepted (the harness's findings, now unit tests in auth/tests/session.rs).
    let issued = keys.issue(&text, Duration::from_secs(60), now);
    match verifier.verify(&issued.token, now) {
        Ok(c) => assert_eq!(c.sub, text),
        Err(e) => assert!(
            text.is_empty() || issued.token.len() > streamgate_auth::session::MAX_TOKEN_LEN,
            "{e:?} for a subject of {} bytes",
            text.len()
        ),
    }
});
