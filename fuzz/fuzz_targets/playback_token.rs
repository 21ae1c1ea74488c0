//! Playback token decoding (`/p/{token}/…`, the `sgp_` cookie): any text, any content id, any
//! client address. A token is accepted only with the right content and key; a token minted from
//! the fuzzer's fields verifies back to exactly them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamgate_auth::{Grant, IpBinding, KeySet};

fuzz_target!(|data: &[u8]| {
    let keys = KeySet::new(
        vec![("k1".into(), vec![1u8; 32]), ("k2".into(), vec![2u8; 32])],
        "k2",
    )
    .expect("keys");
    let (head, rest) = data.split_at(data.len().min(24));
    let text = String::from_utf8_lossy(rest);
    let (content, token) = text.split_once('/').unwrap_or(("c1", &text));
    let ip =
        (head.len() >= 4).then(|| std::net::IpAddr::from([head[0], head[1], head[2], head[3]]));
    let now = 1_800_000_000;
    if let Ok(v) = keys.verify(token, content, ip, now) {
        // Only a real MAC passes, and the fuzzer cannot forge one: a pass means it found a
        // token minted below, i.e. never with random text.
        assert!(v.expires_at > now);
    }
    // Round trip with fuzzer-chosen fields.
    if head.len() >= 24 {
        let exp = u64::from_be_bytes(head[4..12].try_into().expect("8 bytes"));
        let prefix = head[12] % 33;
        let grant = Grant {
            content_id: content,
            subject: token,
            expires_at: exp,
            client_ip: ip.map(|a| IpBinding::new(a, prefix)),
            entitlement_bound: head[13] & 1 == 1,
        };
        let minted = keys.mint(&grant);
        match keys.verify(&minted, content, ip, now) {
            Ok(v) => {
                assert_eq!(v.expires_at, exp);
                assert_eq!(v.entitlement_bound, grant.entitlement_bound);
                assert_eq!(
                    v.subject_hash,
                    streamgate_auth::playback::subject_hash(token)
                );
            }
            Err(e) => assert!(
                exp <= now || minted.len() > streamgate_auth::playback::MAX_TOKEN_LEN,
                "{e:?}"
            ),
        }
    }
});
