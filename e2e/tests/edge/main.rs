//! The edge as a CDN, against the running stack: the cache tiers (`cache`), coalescing of
//! concurrent misses (`coalescing`), parent edges (`parents`), graceful drain (`drain`), TLS
//! with HTTP/2 and reloads (`tls`), and the viewer's address behind load balancers
//! (`viewer_ip`: PROXY protocol, forwarding headers), and real-time players through an edge
//! upgrade and an origin restart (`upgrade`); three edges behind one balancer (`fleet`);
//! the access log and the trace context sent upstream (`observability`); the connection cap
//! (`overload`).

mod cache;
mod coalescing;
mod drain;
mod fleet;
mod observability;
mod overload;
mod parents;
mod tls;
mod upgrade;
mod viewer_ip;

use std::time::Duration;

use streamgate_testkit::{Stack, make_clip};

/// A ready content (2 s, audio) and its first variant's first segment path.
pub(crate) async fn packaged(st: &Stack, title: &str) -> (String, String, String) {
    let clip = make_clip(320, 180, 4, true);
    let id = st.upload(title, &clip, 1 << 20).await;
    assert_eq!(
        st.wait_done(&id, Duration::from_secs(120)).await["status"],
        "ready"
    );
    let token = st.mint(&id, "1h");
    let get = |path: String| {
        let url = format!("{}/p/{token}/{id}/{path}", st.edge);
        async move { st.http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let first_uri = |text: &str| {
        text.lines()
            .find(|l| !l.starts_with('#') && !l.is_empty())
            .unwrap()
            .to_owned()
    };
    let variant = first_uri(&get("master.m3u8".into()).await);
    let dir = variant.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
    let seg = first_uri(&get(variant.clone()).await);
    (id, token, format!("{dir}/{seg}"))
}
