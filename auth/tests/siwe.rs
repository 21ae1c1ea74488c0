//! SIWE (EIP-4361) against vectors made by viem (`createSiweMessage`, `signMessage`): every
//! accepted vector verifies to its subject; every rejected one fails with its own error code.

mod utils;

use std::collections::BTreeSet;

use streamgate_auth::{
    SignInError, SiweMessage, eip191_hash, prepare_contract_check, verify_eip191, verify_siwe,
};
use utils::{list, load, now, rules, s};

#[test]
fn accepted_vectors_verify_with_their_subject() {
    let file = load("siwe.json");
    for v in list(&file, "accept") {
        let name = s(v, "name");
        let ok = verify_siwe(s(v, "message"), s(v, "signature"), &rules(v), now(v))
            .unwrap_or_else(|e| panic!("{name}: {e} ({})", e.code()));
        assert_eq!(ok.subject, s(v, "subject"), "{name}");
        assert_eq!(ok.address, s(v, "address"), "{name}");
        assert_eq!(ok.nonce, s(v, "nonce"), "{name}");
        let msg = SiweMessage::parse(s(v, "message")).expect("parses");
        assert_eq!(msg.domain, s(v, "domain"), "{name}");
        assert_eq!(msg.uri, s(v, "uri"), "{name}");
        assert_eq!(
            msg.chain_id,
            v["chain_id"].as_u64().expect("chain id"),
            "{name}"
        );
        let issued = time::OffsetDateTime::parse(
            s(v, "issued_at"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("issued_at");
        assert_eq!(ok.issued_at, issued.unix_timestamp(), "{name}");
    }
}

#[test]
fn rejected_vectors_fail_with_their_code() {
    let file = load("siwe.json");
    let mut seen = BTreeSet::new();
    for v in list(&file, "reject") {
        let name = s(v, "name");
        let err =
            verify_siwe(s(v, "message"), s(v, "signature"), &rules(v), now(v)).expect_err(name);
        assert_eq!(err.code(), s(v, "error"), "{name}: {err}");
        if let Some(detail) = v["detail"].as_str() {
            let SignInError::Malformed(cause) = &err else {
                panic!("{name}: {err:?}");
            };
            assert_eq!(cause.code(), detail, "{name}: {cause}");
        }
        seen.insert(err.code());
    }
    for code in [
        "wrong_domain",
        "wrong_scheme",
        "wrong_uri",
        "wrong_chain",
        "expired_message",
        "not_yet_valid",
        "issued_in_future",
        "stale_message",
        "signer_mismatch",
        "bad_signature",
        "malformed_message",
    ] {
        assert!(seen.contains(code), "no vector for {code}");
    }
}

#[test]
fn signer_mismatch_reports_the_recovered_address_and_allows_a_contract_check() {
    let file = load("siwe.json");
    let v = list(&file, "reject")
        .iter()
        .find(|v| v["name"] == "signed_by_other_key")
        .expect("vector");
    let err = verify_siwe(s(v, "message"), s(v, "signature"), &rules(v), now(v)).unwrap_err();
    let SignInError::SignerMismatch { recovered } = err else {
        panic!("{err:?}");
    };
    // The vector is signed by Anvil's second key.
    assert_eq!(
        hex::encode(recovered),
        "70997970c51812dc3a010c7d01b50e0d17dc79c8"
    );
    assert!(err.may_be_contract_wallet());
    let check = prepare_contract_check(s(v, "message"), s(v, "signature"), &rules(v), now(v))
        .expect("fields are fine");
    assert_eq!(check.hash(), eip191_hash(s(v, "message")));
    assert_eq!(check.chain_id(), 1);
    assert_eq!(check.signature().len(), 65);
    // After a (here pretended) positive isValidSignature the sign-in goes through.
    let ok = check.accept();
    assert_eq!(ok.subject, format!("eip155:1:{}", s(v, "address")));
}

#[test]
fn field_errors_come_before_signature_checks() {
    let file = load("siwe.json");
    let v = list(&file, "reject")
        .iter()
        .find(|v| v["name"] == "wrong_domain")
        .expect("vector");
    // A garbage signature does not hide the field error, and no contract check is offered.
    let err = verify_siwe(s(v, "message"), "0x00", &rules(v), now(v)).unwrap_err();
    assert_eq!(err.code(), "wrong_domain");
    assert!(!err.may_be_contract_wallet());
    assert!(prepare_contract_check(s(v, "message"), "0x00", &rules(v), now(v)).is_err());
}

#[test]
fn recovery_matches_viem_for_every_accepted_vector() {
    let file = load("siwe.json");
    for v in list(&file, "accept") {
        let sig = hex::decode(s(v, "signature").trim_start_matches("0x")).expect("hex");
        let addr = verify_eip191(s(v, "message"), &sig).expect("recovers");
        assert_eq!(
            format!("0x{}", hex::encode(addr)),
            s(v, "address").to_lowercase()
        );
    }
}

#[test]
fn mutated_messages_never_panic() {
    let file = load("siwe.json");
    let v = &list(&file, "accept")[1];
    let text = s(v, "message");
    let sig = s(v, "signature");
    let r = rules(v);
    for cut in 0..text.len() {
        let _ = verify_siwe(&text[..cut], sig, &r, now(v));
        let _ = verify_siwe(&text[cut..], sig, &r, now(v));
    }
    let bytes = text.as_bytes();
    for i in 0..bytes.len() {
        for b in [b'\n', b'X', 0xff] {
            let mut m = bytes.to_vec();
            m[i] = b;
            let m = String::from_utf8_lossy(&m);
            if m != text {
                assert!(verify_siwe(&m, sig, &r, now(v)).is_err(), "byte {i} -> {b}");
            }
        }
    }
    assert!(verify_siwe(&"a".repeat(1 << 20), sig, &r, now(v)).is_err());
}
