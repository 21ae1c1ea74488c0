//! Session JWTs: round trip, the attacks RFC 8725 lists (alg none, HMAC keyed with the public
//! key, tampering), kid handling and rotation, claim checks, revocation, and the cache.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use streamgate_auth::{SessionError, SessionKeyError, SessionKeys, SessionVerifier};

const ISS: &str = "https://origin.streamgate.example";
const AUD: &str = "streamgate-edge";
const SUB: &str = "eip155:1:0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const NOW: i64 = 1_767_225_600;
const HOUR: Duration = Duration::from_secs(3600);

fn seed(n: u8) -> [u8; 32] {
    [n; 32]
}

fn keys(list: &[(&str, u8)], signing: &str) -> SessionKeys {
    let list = list
        .iter()
        .map(|(k, n)| ((*k).to_owned(), seed(*n)))
        .collect();
    SessionKeys::new(list, signing, ISS, AUD).expect("keys")
}

fn verifier(k: &SessionKeys) -> SessionVerifier {
    SessionVerifier::from_jwks(&k.jwks(), ISS, AUD)
        .expect("jwks")
        .with_skew(Duration::ZERO)
}

/// Signs arbitrary header and claims with the Ed25519 key of `seed` (PKCS#8 v1, RFC 8410).
fn sign_raw(header: &Header, claims: &Value, n: u8) -> String {
    let mut der = hex::decode("302e020100300506032b657004220420").expect("hex");
    der.extend_from_slice(&seed(n));
    jsonwebtoken::encode(header, claims, &EncodingKey::from_ed_der(&der)).expect("encode")
}

fn ed_header(kid: &str) -> Header {
    let mut h = Header::new(Algorithm::EdDSA);
    h.kid = Some(kid.to_owned());
    h
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": SUB, "iat": NOW, "exp": NOW + 3600, "jti": "j1"})
}

#[test]
fn round_trip_and_jwks_shape() {
    let k = keys(&[("k1", 1), ("k2", 2)], "k2");
    let issued = k.issue(SUB, HOUR, NOW);
    let got = verifier(&k)
        .verify(&issued.token, NOW + 1)
        .expect("verifies");
    assert_eq!(got, issued.claims);
    assert_eq!((got.iat, got.exp), (NOW, NOW + 3600));
    assert_eq!(URL_SAFE_NO_PAD.decode(&got.jti).expect("b64").len(), 16);
    assert_ne!(k.issue(SUB, HOUR, NOW).claims.jti, got.jti);
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(issued.token.split('.').next().expect("header"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(header, json!({"alg": "EdDSA", "typ": "JWT", "kid": "k2"}));
    let jwks = k.jwks();
    let first = &jwks["keys"][0];
    assert_eq!(
        (&first["kty"], &first["crv"], &first["alg"], &first["use"]),
        (
            &json!("OKP"),
            &json!("Ed25519"),
            &json!("EdDSA"),
            &json!("sig")
        )
    );
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 2);
    assert!(!format!("{k:?}").contains(&hex::encode(seed(1))));
}

#[test]
fn alg_none_is_refused_before_any_key() {
    let k = keys(&[("k1", 1)], "k1");
    let v = verifier(&k);
    for alg in ["none", "None", "NONE", "ES256", "RS256", "HS256", "eddsa"] {
        let h = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT", "kid": "k1"}).to_string());
        let p = URL_SAFE_NO_PAD.encode(claims().to_string());
        for token in [format!("{h}.{p}."), format!("{h}.{p}.c2ln")] {
            assert_eq!(
                v.verify(&token, NOW),
                Err(SessionError::AlgNotAllowed),
                "{alg}"
            );
        }
    }
}

#[test]
fn hs256_keyed_with_the_public_key_is_refused() {
    let k = keys(&[("k1", 1)], "k1");
    let x = k.jwks()["keys"][0]["x"].as_str().expect("x").to_owned();
    let raw = URL_SAFE_NO_PAD.decode(&x).expect("b64");
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    for secret in [
        raw.as_slice(),
        x.as_bytes(),
        k.jwks().to_string().as_bytes(),
    ] {
        let token =
            jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(secret)).expect("encode");
        let err = verifier(&k).verify(&token, NOW).unwrap_err();
        assert_eq!(err.code(), "alg_not_allowed");
    }
}

#[test]
fn unknown_and_missing_kid() {
    let k = keys(&[("k1", 1)], "k1");
    let other = keys(&[("k9", 9)], "k9");
    let err = verifier(&k)
        .verify(&other.issue(SUB, HOUR, NOW).token, NOW)
        .unwrap_err();
    assert_eq!(err, SessionError::UnknownKid);
    assert!(err.is_unknown_kid());
    let token = sign_raw(&Header::new(Algorithm::EdDSA), &claims(), 1);
    assert_eq!(
        verifier(&k).verify(&token, NOW),
        Err(SessionError::MissingKid)
    );
    // A kid that exists but with another key's signature is a bad signature, not a new key.
    let token = sign_raw(&ed_header("k1"), &claims(), 9);
    assert_eq!(
        verifier(&k).verify(&token, NOW),
        Err(SessionError::BadSignature)
    );
}

#[test]
fn wrong_audience_and_issuer() {
    let k = keys(&[("k1", 1)], "k1");
    let token = k.issue(SUB, HOUR, NOW).token;
    let jwks = k.jwks();
    let v = SessionVerifier::from_jwks(&jwks, ISS, "other-edge").expect("jwks");
    assert_eq!(v.verify(&token, NOW), Err(SessionError::WrongAudience));
    let v = SessionVerifier::from_jwks(&jwks, "https://evil.example", AUD).expect("jwks");
    assert_eq!(v.verify(&token, NOW), Err(SessionError::WrongIssuer));
    // An audience array containing ours is accepted (RFC 7519 §4.1.3).
    let mut c = claims();
    c["aud"] = json!(["x", AUD]);
    assert!(
        verifier(&k)
            .verify(&sign_raw(&ed_header("k1"), &c, 1), NOW)
            .is_ok()
    );
}

#[test]
fn expiry_skew_and_future_iat() {
    let k = keys(&[("k1", 1)], "k1");
    let token = k.issue(SUB, HOUR, NOW).token;
    let strict = verifier(&k).with_cache_capacity(0);
    assert!(strict.verify(&token, NOW + 3599).is_ok());
    assert_eq!(
        strict.verify(&token, NOW + 3600),
        Err(SessionError::Expired)
    );
    let lenient = verifier(&k).with_skew(Duration::from_secs(5));
    assert!(lenient.verify(&token, NOW + 3604).is_ok());
    assert_eq!(
        lenient.verify(&token, NOW + 3605),
        Err(SessionError::Expired)
    );
    assert_eq!(
        strict.verify(&token, NOW - 1),
        Err(SessionError::IssuedInFuture)
    );
    let mut c = claims();
    c["nbf"] = json!(NOW + 60);
    let token = sign_raw(&ed_header("k1"), &c, 1);
    assert_eq!(strict.verify(&token, NOW), Err(SessionError::NotYetValid));
}

#[test]
fn missing_or_mistyped_claims() {
    let k = keys(&[("k1", 1)], "k1");
    let v = verifier(&k);
    for claim in ["iss", "aud", "sub", "iat", "exp", "jti"] {
        let mut c = claims();
        c.as_object_mut().expect("object").remove(claim);
        let err = v
            .verify(&sign_raw(&ed_header("k1"), &c, 1), NOW)
            .unwrap_err();
        assert_eq!(err, SessionError::MissingClaim(claim));
    }
    let mut c = claims();
    c["exp"] = json!("tomorrow");
    assert_eq!(
        v.verify(&sign_raw(&ed_header("k1"), &c, 1), NOW),
        Err(SessionError::Malformed)
    );
    let mut h = ed_header("k1");
    h.typ = Some("at+jwt".into());
    assert_eq!(
        v.verify(&sign_raw(&h, &claims(), 1), NOW),
        Err(SessionError::UnsupportedHeader)
    );
}

#[test]
fn tampered_payload_fails() {
    let k = keys(&[("k1", 1)], "k1");
    let token = k.issue(SUB, HOUR, NOW).token;
    let parts: Vec<&str> = token.split('.').collect();
    let mut c: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    c["sub"] = json!("eip155:1:0x0000000000000000000000000000000000000001");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(c.to_string()),
        parts[2]
    );
    assert_eq!(
        verifier(&k).verify(&forged, NOW),
        Err(SessionError::BadSignature)
    );
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
    sig[0] ^= 1;
    let forged = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(
        verifier(&k).verify(&forged, NOW),
        Err(SessionError::BadSignature)
    );
}

#[test]
fn revocation_applies_to_cached_tokens() {
    let k = keys(&[("k1", 1)], "k1");
    let revoked = Arc::new(Mutex::new(HashSet::<String>::new()));
    let r = revoked.clone();
    let v = verifier(&k).with_revocation(Arc::new(move |jti: &str| {
        r.lock().expect("lock").contains(jti)
    }));
    let issued = k.issue(SUB, HOUR, NOW);
    assert!(v.verify(&issued.token, NOW).is_ok());
    assert!(v.is_cached(&issued.token));
    revoked
        .lock()
        .expect("lock")
        .insert(issued.claims.jti.clone());
    assert_eq!(v.verify(&issued.token, NOW), Err(SessionError::Revoked));
    v.forget(&issued.claims.jti);
    assert!(!v.is_cached(&issued.token));
    assert_eq!(v.verify(&issued.token, NOW), Err(SessionError::Revoked));
}

#[test]
fn rotation_keeps_old_tokens_while_listed() {
    let old = keys(&[("k1", 1)], "k1");
    let token = old.issue(SUB, HOUR, NOW).token;
    let both = keys(&[("k1", 1), ("k2", 2)], "k2");
    let v = verifier(&both);
    assert!(v.verify(&token, NOW).is_ok());
    assert!(v.verify(&both.issue(SUB, HOUR, NOW).token, NOW).is_ok());
    assert!(v.is_cached(&token));
    let new = keys(&[("k2", 2)], "k2");
    v.update_jwks(&new.jwks()).expect("update");
    assert_eq!(v.kids(), vec!["k2".to_owned()]);
    assert_eq!(v.verify(&token, NOW), Err(SessionError::UnknownKid));
    assert!(v.update_jwks(&json!({"keys": []})).is_err());
    assert_eq!(v.kids(), vec!["k2".to_owned()]);
}

#[test]
fn cached_verification_stops_at_exp() {
    let k = keys(&[("k1", 1)], "k1");
    let issued = k.issue(SUB, Duration::from_secs(60), NOW);
    let v = verifier(&k);
    assert!(v.verify(&issued.token, NOW).is_ok());
    assert!(v.is_cached(&issued.token));
    assert!(v.verify(&issued.token, NOW + 59).is_ok());
    assert_eq!(
        v.verify(&issued.token, NOW + 60),
        Err(SessionError::Expired)
    );
    v.invalidate_all();
    assert!(!v.is_cached(&issued.token));
}

#[test]
fn key_and_jwks_errors() {
    let bad = |r: Result<SessionKeys, SessionKeyError>| r.unwrap_err();
    assert_eq!(
        bad(SessionKeys::new(vec![], "k", ISS, AUD)),
        SessionKeyError::Empty
    );
    assert!(matches!(
        bad(SessionKeys::new(
            vec![("k1".into(), seed(1))],
            "k2",
            ISS,
            AUD
        )),
        SessionKeyError::NoSigningKey(_)
    ));
    let e = bad(SessionKeys::from_hex(
        &[("k1".into(), "abcd".into())],
        "k1",
        ISS,
        AUD,
    ));
    assert_eq!(e, SessionKeyError::BadSeed("k1".into()));
    assert!(SessionKeys::from_hex(&[("k1".into(), hex::encode(seed(3)))], "k1", ISS, AUD).is_ok());
    for jwks in [
        json!({}),
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": "AAAA"}]}),
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([7u8; 32])}]}),
        json!({"keys": [{"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}]}),
        // The identity point: a small-order key.
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "w", "x": URL_SAFE_NO_PAD.encode({let mut b = [0u8; 32]; b[0] = 1; b})}]}),
    ] {
        assert!(
            SessionVerifier::from_jwks(&jwks, ISS, AUD).is_err(),
            "{jwks}"
        );
    }
}

#[test]
fn garbage_tokens_never_panic() {
    let k = keys(&[("k1", 1)], "k1");
    let v = verifier(&k);
    let token = k.issue(SUB, HOUR, NOW).token;
    for cut in 0..token.len() {
        assert!(v.verify(&token[..cut], NOW).is_err());
    }
    for junk in [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "e30.e30.",
        "e30.e30.e30",
        &"A".repeat(10_000),
    ] {
        assert!(v.verify(junk, NOW).is_err(), "{junk}");
    }
}

#[test]
fn an_empty_subject_never_verifies() {
    // Found by the `jwt` fuzz harness: `issue("")` signs a token with `"sub": ""`. Sessions
    // always name an account; such a token must be refused like one without `sub`.
    let k = keys(&[("k1", 1)], "k1");
    let issued = k.issue("", HOUR, NOW);
    assert_eq!(
        verifier(&k).verify(&issued.token, NOW + 1),
        Err(SessionError::MissingClaim("sub"))
    );
}

#[test]
fn an_oversized_session_is_refused_before_parsing() {
    // Found by the `jwt` fuzz harness: a subject of several KiB makes a token past the
    // verifier's screening limit; it is refused as malformed, like any oversized token.
    let k = keys(&[("k1", 1)], "k1");
    let issued = k.issue(&"\u{0}".repeat(9000), HOUR, NOW);
    assert!(issued.token.len() > streamgate_auth::session::MAX_TOKEN_LEN);
    assert_eq!(
        verifier(&k).verify(&issued.token, NOW + 1),
        Err(SessionError::Malformed)
    );
}
