//! A real edge at its connection cap (`server.max-connections`): connections past it get 503
//! with `Retry-After` and a JSON reason and are closed, counted in
//! `streamgate_edge_shed_total{reason="connections"}`, while the admitted ones keep being
//! served; a place that comes free is given to the next connection. A client that stops reading
//! is dropped at `server.min-send-rate`.

use std::time::{Duration, Instant};

use streamgate_testkit::{PrivateEdge, Stack, metric};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// One HTTP/1.1 exchange on `sock` (kept alive): the status line and the whole response.
async fn exchange(sock: &mut TcpStream, path: &str) -> String {
    sock.write_all(format!("GET {path} HTTP/1.1\r\nHost: edge\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut chunk))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length || n == 0 {
                return text;
            }
        } else if n == 0 {
            return text;
        }
    }
}

async fn gauge(edge: &PrivateEdge, st: &Stack, name: &str) -> f64 {
    metric(&edge.metrics_page(st).await, name)
}

#[tokio::test]
async fn connections_past_the_cap_get_503_and_retry_after() {
    let st = Stack::load().await;
    let cap = 4;
    let edge = PrivateEdge::start_custom(
        &st,
        &format!("max-connections = {cap}\n"),
        &format!("origin = \"{}\"", st.origin_internal_addr()),
        "",
        "[entitlements]\nstandalone = true\n",
    )
    .await;
    let addr = edge.url.trim_start_matches("http://").to_owned();
    // The start-up probe may still hold a pooled connection: fill what is left.
    let open = gauge(&edge, &st, "streamgate_edge_open_connections").await as usize;
    assert!(open < cap, "{open} connections open before the test");
    let mut held = Vec::new();
    for _ in open..cap {
        let mut sock = TcpStream::connect(&addr).await.unwrap();
        let answer = exchange(&mut sock, "/healthz").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(sock);
    }
    assert_eq!(
        gauge(&edge, &st, "streamgate_edge_open_connections").await,
        cap as f64
    );

    // One more: refused, with a reason and a time to come back, and closed.
    let shed = "streamgate_edge_shed_total{reason=\"connections\"}";
    let before = gauge(&edge, &st, shed).await;
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    let answer = exchange(&mut extra, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    let body = answer.split_once("\r\n\r\n").unwrap().1;
    let reason: serde_json::Value = serde_json::from_str(body).expect("a JSON reason");
    assert_eq!(reason["error"], "over_capacity", "{answer}");
    let mut rest = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut rest))
        .await
        .expect("closed within 5 s");
    assert!(matches!(closed, Ok(0) | Err(_)), "still open: {closed:?}");
    assert_eq!(gauge(&edge, &st, shed).await, before + 1.0);

    // The admitted connections are still served.
    for sock in &mut held {
        let answer = exchange(sock, "/healthz").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    // A place comes free: the next connection is served.
    drop(held.pop());
    let start = Instant::now();
    loop {
        let mut sock = TcpStream::connect(&addr).await.unwrap();
        let answer = exchange(&mut sock, "/healthz").await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no place came free: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An origin answering every request with the same `len`-byte cacheable object.
async fn big_origin(len: usize) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = std::sync::Arc::new(vec![0x5a_u8; len]);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: video/iso.segment\r\n\
                     Cache-Control: public, max-age=600\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    port
}

/// A viewer that asks for a segment and stops reading cannot hold its connection (and the
/// response in flight) forever: with `server.min-send-rate` the edge's write of the cached
/// body times out at its size over that rate, the edge drops the connection and counts it in
/// `streamgate_edge_shed_total{reason="slow_reader"}`. A reader at full speed is untouched.
#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_at_the_minimum_send_rate() {
    let st = Stack::load().await;
    let len = 48 << 20;
    let port = big_origin(len).await;
    // 48 MiB at 16 MiB/s: the body write must finish within 3 s.
    let edge = PrivateEdge::start_custom(
        &st,
        "min-send-rate = \"16MiB\"\n",
        &format!("origin = \"127.0.0.1:{port}\""),
        "",
        "[entitlements]\nstandalone = true\n",
    )
    .await;
    let token = edge.mint(&st, "slow1");
    let path = format!("/p/{token}/slow1/360p/seg-00001.m4s");
    let fetch = || st.http.get(format!("{}{path}", edge.url)).send();

    // A reader at loopback speed gets the whole object (and fills the cache).
    let r = fetch().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), len);
    let shed = "streamgate_edge_shed_total{reason=\"slow_reader\"}";
    assert_eq!(
        gauge(&edge, &st, shed).await,
        0.0,
        "a full-speed reader was dropped"
    );

    // One that asks for it again (a cache hit) and reads nothing: its receive window and the
    // edge's send buffer fill, the write of the rest cannot finish, and the edge gives up.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(16 << 10).unwrap();
    let addr = edge.url.trim_start_matches("http://").parse().unwrap();
    let mut stalled = sock.connect(addr).await.unwrap();
    stalled
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: edge\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let (e, s) = (&edge, &st);
    streamgate_testkit::eventually(
        "the edge drops the reader that stopped",
        Duration::from_secs(30),
        move || async move { gauge(e, s, shed).await >= 1.0 },
    )
    .await;
    // What reached the client is what the two kernels held, then the connection ends.
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut buf))
            .await
            .expect("the dropped connection ends within 10 s");
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(got < len, "{got} of {len} bytes: the edge did not give up");

    // Everyone else is still served, from the cache.
    let r = fetch().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-cache"], "HIT-L1");
    assert_eq!(r.bytes().await.unwrap().len(), len);
}
