//! A real edge at its connection cap (`server.max-connections`): connections past it get 503
//! with `Retry-After` and a JSON reason and are closed, counted in
//! `streamgate_edge_shed_total{reason="connections"}`, while the admitted ones keep being
//! served; a place that comes free is given to the next connection.

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
