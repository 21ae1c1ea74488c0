//! Graceful shutdown of a real edge process: on SIGTERM a response in flight (its origin
//! answers slowly) is still delivered whole, and the process then exits by itself (not killed
//! by a signal) once the grace period is over.

use std::time::{Duration, Instant};

use streamgate_testkit::{PrivateEdge, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An origin that tells the test when a request has arrived (`arrived`) and answers it with
/// `body` (not cacheable) only once the test says so (`release`).
async fn held_origin(
    body: &'static str,
) -> (
    u16,
    tokio::sync::mpsc::Receiver<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (arrived_tx, arrived) = tokio::sync::mpsc::channel(1);
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let mut buf = [0u8; 4096];
        let _ = sock.read(&mut buf).await;
        let _ = arrived_tx.send(()).await;
        let _ = released.await;
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = sock.write_all(resp.as_bytes()).await;
    });
    (port, arrived, release)
}

#[tokio::test]
async fn sigterm_drains_in_flight_responses() {
    let st = Stack::load().await;
    let body = "a slow segment body";
    let (port, mut arrived, release) = held_origin(body).await;
    let mut edge = PrivateEdge::start_with_origin(
        &st,
        &format!("127.0.0.1:{port}"),
        "[entitlements]\nstandalone = true\n",
    )
    .await;
    let token = edge.mint(&st, "drain1");
    let url = format!("{}/p/{token}/drain1/360p/seg-00001.m4s", edge.url);

    let http = st.http.clone();
    let in_flight = tokio::spawn(async move {
        let r = http.get(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    });
    // The request is at origin, so in flight at the edge: stop the edge, then let origin answer.
    tokio::time::timeout(Duration::from_secs(30), arrived.recv())
        .await
        .expect("the request reached origin")
        .expect("origin task alive");
    edge.proc.terminate();
    release.send(()).unwrap();

    let (status, text) = in_flight.await.unwrap();
    assert_eq!(
        (status, text.as_str()),
        (200, body),
        "the in-flight response is whole"
    );

    // The process exits after the grace period (1 s here) and its runtimes' shutdown.
    let start = Instant::now();
    loop {
        if let Some(code) = edge.proc.child.try_wait().unwrap() {
            assert!(
                code.code().is_some(),
                "exited by itself, not by a signal: {code:?}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "edge did not exit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        st.http
            .get(format!("{}/healthz", edge.url))
            .send()
            .await
            .is_err(),
        "nothing listens after shutdown"
    );
}
