//! Playback token round trips and every refusal reason.

use std::net::IpAddr;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::*;

const NOW: u64 = 1_800_000_000;

fn keys() -> KeySet {
    KeySet::new(
        vec![("old".into(), vec![1u8; 32]), ("new".into(), vec![2u8; 32])],
        "new",
    )
    .unwrap()
}

fn grant(exp: u64) -> Grant<'static> {
    Grant {
        content_id: "vid1",
        subject: "eip155:1:0x0000000000000000000000000000000000000001",
        expires_at: exp,
        client_ip: None,
        entitlement_bound: true,
    }
}

#[test]
fn round_trip() {
    let k = keys();
    let t = k.mint(&grant(NOW + 60));
    assert!(t.len() < 64, "token is compact: {}", t.len());
    let v = k.verify(&t, "vid1", None, NOW).unwrap();
    assert_eq!(v.expires_at, NOW + 60);
    assert_eq!(v.subject_hash, subject_hash(grant(0).subject));
    assert!(v.entitlement_bound);
    assert_eq!(k.signing_key_id(), "new");
    let operator = k.mint(&Grant {
        entitlement_bound: false,
        ..grant(NOW + 60)
    });
    assert!(
        !k.verify(&operator, "vid1", None, NOW)
            .unwrap()
            .entitlement_bound
    );
}

#[test]
fn the_grant_flag_is_authenticated() {
    // An operator token cannot be turned into a grant token nor back: the flag is under the MAC.
    let k = keys();
    let t = k.mint(&Grant {
        entitlement_bound: false,
        ..grant(NOW + 60)
    });
    let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
    let flags_at = 2 + 3 + 8 + 4 + 8; // version, kid len, "new", expiry, content tag, subject
    assert_eq!(raw[flags_at], 0);
    raw[flags_at] = 1;
    assert_eq!(
        k.verify(&URL_SAFE_NO_PAD.encode(&raw), "vid1", None, NOW),
        Err(TokenError::BadSignature)
    );
    // Unknown flag bits are malformed, whatever the MAC.
    raw[flags_at] = 2;
    assert_eq!(
        k.verify(&URL_SAFE_NO_PAD.encode(&raw), "vid1", None, NOW),
        Err(TokenError::Malformed)
    );
}

#[test]
fn version_1_tokens_still_verify_as_grant_bound() {
    // A v1 token is the v2 layout without the flags byte, MAC'd the same way.
    let key = vec![2u8; 32];
    let mut payload = vec![1u8, 3];
    payload.extend_from_slice(b"new");
    payload.extend_from_slice(&(NOW + 60).to_be_bytes());
    payload.extend_from_slice(&content_tag("vid1"));
    payload.extend_from_slice(&subject_hash("s"));
    payload.push(0); // no IP binding
    let mac = HmacSha256::new_from_slice(&key).unwrap();
    let tag = compute_tag(&mac, &payload, "vid1");
    payload.extend_from_slice(&tag[..TAG_LEN]);
    let v = keys()
        .verify(&URL_SAFE_NO_PAD.encode(&payload), "vid1", None, NOW)
        .unwrap();
    assert!(v.entitlement_bound);
    assert_eq!(v.subject_hash, subject_hash("s"));
}

#[test]
fn expired_at_and_after_expiry() {
    let k = keys();
    let t = k.mint(&grant(NOW));
    assert_eq!(k.verify(&t, "vid1", None, NOW), Err(TokenError::Expired));
    assert_eq!(
        k.verify(&t, "vid1", None, NOW + 1),
        Err(TokenError::Expired)
    );
    assert!(k.verify(&t, "vid1", None, NOW - 1).is_ok());
}

#[test]
fn other_content_is_refused() {
    let k = keys();
    let t = k.mint(&grant(NOW + 60));
    assert_eq!(
        k.verify(&t, "vid2", None, NOW),
        Err(TokenError::WrongContent)
    );
}

#[test]
fn every_flipped_bit_is_refused() {
    let k = keys();
    let t = k.mint(&grant(NOW + 60));
    let raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
    for i in 0..raw.len() {
        for bit in 0..8 {
            let mut r = raw.clone();
            r[i] ^= 1 << bit;
            let forged = URL_SAFE_NO_PAD.encode(&r);
            assert!(
                k.verify(&forged, "vid1", None, NOW).is_err(),
                "byte {i} bit {bit} accepted"
            );
        }
    }
}

#[test]
fn extended_expiry_is_a_bad_signature() {
    let k = keys();
    let t = k.mint(&grant(NOW - 10));
    let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
    // version, kid len, "new", then expiry at 5..13
    raw[5..13].copy_from_slice(&(NOW + 3600).to_be_bytes());
    let forged = URL_SAFE_NO_PAD.encode(&raw);
    assert_eq!(
        k.verify(&forged, "vid1", None, NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn rotation_keeps_old_tokens_until_the_key_is_removed() {
    let old_only = KeySet::new(vec![("old".into(), vec![1u8; 32])], "old").unwrap();
    let t = old_only.mint(&grant(NOW + 60));
    assert!(keys().verify(&t, "vid1", None, NOW).is_ok());
    let rotated = KeySet::new(vec![("new".into(), vec![2u8; 32])], "new").unwrap();
    assert_eq!(
        rotated.verify(&t, "vid1", None, NOW),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn same_kid_other_secret_is_a_bad_signature() {
    let a = KeySet::new(vec![("k".into(), vec![1u8; 32])], "k").unwrap();
    let b = KeySet::new(vec![("k".into(), vec![9u8; 32])], "k").unwrap();
    let t = a.mint(&grant(NOW + 60));
    assert_eq!(
        b.verify(&t, "vid1", None, NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn ip_binding() {
    let k = keys();
    let ip: IpAddr = "203.0.113.77".parse().unwrap();
    let mut g = grant(NOW + 60);
    g.client_ip = Some(IpBinding::new(ip, 24));
    let t = k.mint(&g);
    let same_net: IpAddr = "203.0.113.1".parse().unwrap();
    let other: IpAddr = "198.51.100.1".parse().unwrap();
    assert!(k.verify(&t, "vid1", Some(same_net), NOW).is_ok());
    assert_eq!(
        k.verify(&t, "vid1", Some(other), NOW),
        Err(TokenError::IpMismatch)
    );
    assert_eq!(k.verify(&t, "vid1", None, NOW), Err(TokenError::IpMismatch));

    let v6: IpAddr = "2001:db8:aa:bb::1".parse().unwrap();
    g.client_ip = Some(IpBinding::new(v6, 56));
    let t = k.mint(&g);
    assert!(
        k.verify(
            &t,
            "vid1",
            Some("2001:db8:aa:bb:ff::9".parse().unwrap()),
            NOW
        )
        .is_ok()
    );
    assert_eq!(
        k.verify(&t, "vid1", Some("2001:db8:ab:bb::1".parse().unwrap()), NOW),
        Err(TokenError::IpMismatch)
    );
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    let k = keys();
    for t in [
        "",
        "x",
        "!!!!",
        "AAAA",
        &"A".repeat(200),
        "AQNuZXc",
        &URL_SAFE_NO_PAD.encode([1u8, 0, 0, 0]),
        &URL_SAFE_NO_PAD.encode([1u8, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        &URL_SAFE_NO_PAD.encode([2u8; 40]),
    ] {
        assert_eq!(
            k.verify(t, "vid1", None, NOW),
            Err(TokenError::Malformed),
            "{t}"
        );
    }
}

#[test]
fn key_set_validation() {
    assert_eq!(KeySet::new(vec![], "a").unwrap_err(), KeySetError::Empty);
    assert!(matches!(
        KeySet::new(vec![("a".into(), vec![0; 31])], "a"),
        Err(KeySetError::ShortKey(_))
    ));
    assert!(matches!(
        KeySet::new(vec![("a b".into(), vec![0; 32])], "a b"),
        Err(KeySetError::BadKeyId(_))
    ));
    assert!(matches!(
        KeySet::new(vec![("a".into(), vec![0; 32])], "b"),
        Err(KeySetError::NoSigningKey(_))
    ));
    assert!(!format!("{:?}", keys()).contains("\\u{1}"));
}

#[test]
fn error_codes_are_distinct() {
    let mut codes: Vec<_> = TokenError::ALL.iter().map(|e| e.code()).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), TokenError::ALL.len());
}
