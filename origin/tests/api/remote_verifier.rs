//! The verifier edges use, fed from the real origin's `/.well-known/jwks.json` over HTTP:
//! sessions issued by origin verify offline, and tampered ones do not.

use std::time::Duration;

use streamgate_auth::{JwksFuture, JwksSource, RemoteVerifier};
use streamgate_testkit::Stack;

struct OriginJwks {
    http: reqwest::Client,
    url: String,
}

impl JwksSource for OriginJwks {
    fn fetch(&self) -> JwksFuture<'_> {
        Box::pin(async move {
            let r = self
                .http
                .get(&self.url)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !r.status().is_success() {
                return Err(format!("status {}", r.status()));
            }
            r.json().await.map_err(|e| e.to_string())
        })
    }
}

#[tokio::test]
async fn sessions_verify_offline_against_the_published_jwks() {
    let st = Stack::load().await;
    let source = OriginJwks {
        http: st.http.clone(),
        url: format!("{}/.well-known/jwks.json", st.origin),
    };
    // The stack's origin.toml: issuer = origin URL, audience = the default "streamgate".
    let remote = RemoteVerifier::connect(source, &st.origin, "streamgate", Duration::from_secs(30))
        .await
        .unwrap();
    let now = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()) as i64;
    let claims = remote.verify(&st.session, now).await.unwrap();
    assert!(claims.sub.starts_with("eip155:31337:0x"), "{}", claims.sub);
    assert_eq!(claims.iss, st.origin);
    assert!(claims.exp > now && claims.iat <= now);
    // cached the second time
    assert!(remote.verifier().is_cached(&st.session));
    assert!(remote.verify(&st.session, now).await.is_ok());
    // a flipped signature byte fails
    let mut t = st.session.clone().into_bytes();
    let last = t.len() - 2;
    t[last] = if t[last] == b'A' { b'B' } else { b'A' };
    let t = String::from_utf8(t).unwrap();
    assert!(remote.verify(&t, now).await.is_err());
    // and past its expiry the session is refused
    assert_eq!(
        remote
            .verify(&st.session, claims.exp + 10)
            .await
            .unwrap_err()
            .code(),
        "expired"
    );
}
