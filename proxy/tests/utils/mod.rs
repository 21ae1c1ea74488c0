//! Test harness: a mock origin, edge configs written to temp files, and edges started once per
//! test binary (pingora's `run_forever` blocks, so each runs on its own thread).

#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    sync::{Arc, LazyLock, Mutex},
    time::{Duration, Instant},
};

use streamgate_config::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The hex key `k1` of every test edge.
pub const KEY_HEX: &str = "6b31";

fn key_hex() -> String {
    KEY_HEX.repeat(16)
}

/// One request as the mock origin received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A hand-written HTTP/1.1 origin on its own thread and runtime.
///
/// `GET /v/{id}/{path}` answers `origin:/v/{id}/{path}` with `Cache-Control` and `ETag` (and
/// honours `Range: bytes=0-3` with a 206); a path containing `slow` never answers; `abs.m3u8`
/// is a playlist with absolute URIs; a path containing `flaky` answers once with a 1 s
/// freshness and `stale-if-error=60`, then 500.
pub struct MockOrigin {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Recorded>>>,
}

impl MockOrigin {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock origin");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("origin runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(serve_one(sock, log.clone()));
                }
            });
        });
        Self { addr, seen }
    }

    /// Every request received whose target starts with `prefix`.
    pub fn requests(&self, prefix: &str) -> Vec<Recorded> {
        let seen = self.seen.lock().expect("lock");
        seen.iter()
            .filter(|r| r.target.starts_with(prefix))
            .cloned()
            .collect()
    }
}

async fn serve_one(mut sock: tokio::net::TcpStream, log: Arc<Mutex<Vec<Recorded>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let target = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_owned();
    let headers: Vec<(String, String)> = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rec = Recorded {
        target: target.clone(),
        headers,
    };
    let range = rec.header("range").map(str::to_owned);
    let seen_before = {
        let mut log = log.lock().expect("lock");
        let n = log.iter().filter(|r| r.target == target).count();
        log.push(rec);
        n
    };
    if target.contains("flaky") {
        let response = if seen_before == 0 {
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nCache-Control: max-age=1, stale-if-error=60\r\n\
             Connection: close\r\n\r\nfresh"
                .to_owned()
        } else {
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_owned()
        };
        let _ = sock.write_all(response.as_bytes()).await;
        let _ = sock.shutdown().await;
        return;
    }
    if target.ends_with("abs.m3u8") {
        let id = target.split('/').nth(2).unwrap_or("");
        let body = format!(
            "#EXTM3U\n#EXT-X-MAP:URI=\"https://cdn.example/v/{id}/720p/init.mp4\"\n#EXTINF:4,\n\
             /v/{id}/720p/seg-00001.m4s\n#EXTINF:4,\nseg-00002.m4s\n#EXTINF:4,\n\
             https://ads.example/ad.ts\n"
        );
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\
             Cache-Control: public, max-age=31536000, immutable\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = sock.write_all(response.as_bytes()).await;
        let _ = sock.shutdown().await;
        return;
    }
    if target.contains("slow") {
        tokio::time::sleep(Duration::from_secs(30)).await;
        return;
    }
    let body = format!("origin:{target}");
    let response = if range.as_deref() == Some("bytes=0-3") {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: 4\r\nContent-Range: bytes 0-3/{}\r\n\
             ETag: \"e1\"\r\nCache-Control: public, max-age=31536000, immutable\r\n\
             Connection: close\r\n\r\n{}",
            body.len(),
            &body[..4]
        )
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"e1\"\r\n\
             Cache-Control: public, max-age=31536000, immutable\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let _ = sock.write_all(response.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// A running edge.
pub struct TestEdge {
    pub base: String,
    pub addr: SocketAddr,
    pub metrics_url: String,
    pub config: ProxyConfig,
}

/// A port reserved for this test binary's whole life (the edges here run until it exits), so
/// no other test can take it between reservation and the edge's bind.
fn free_port() -> u16 {
    let ports = streamgate_testkit::reserve(1);
    let port = ports.get(0);
    std::mem::forget(ports);
    port
}

/// Writes a config for an edge in front of `origin` and loads it through the real loader.
pub fn test_config(origin: SocketAddr, read_timeout: &str) -> ProxyConfig {
    let (listen, metrics) = (free_port(), free_port());
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:{listen}"
metrics-listen = "127.0.0.1:{metrics}"
threads = 1
grace-period = "1s"

[upstream]
origin = "{origin}"
connect-timeout = "1s"
read-timeout = "{read_timeout}"

[tokens]
signing-key = "k1"
default-ttl = "1h"
max-ttl = "24h"

[[tokens.keys]]
id = "k1"
secret = {{ env = "SG_TEST_KEY_K1" }}
"#
    );
    let path: PathBuf =
        std::env::temp_dir().join(format!("sg-edge-test-{}-{listen}.toml", std::process::id()));
    std::fs::write(&path, toml).expect("write config");
    let env: HashMap<String, String> = [("SG_TEST_KEY_K1".to_owned(), key_hex())].into();
    let config = streamgate_config::load_proxy(&path, &env).expect("valid test config");
    let _ = std::fs::remove_file(&path);
    config
}

/// Starts an edge for `config` on a background thread and waits until it accepts connections.
pub fn start_edge(config: ProxyConfig) -> TestEdge {
    let addr = config.server.listen;
    let metrics = config.server.metrics_listen;
    let for_thread = config.clone();
    std::thread::spawn(move || {
        let server =
            streamgate_proxy::build_server(&for_thread, &Default::default()).expect("edge builds");
        server.run_forever();
    });
    wait_for_port(addr);
    wait_for_port(metrics);
    TestEdge {
        base: format!("http://{addr}"),
        addr,
        metrics_url: format!("http://{metrics}/metrics"),
        config,
    }
}

fn wait_for_port(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "edge did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The mock origin shared by the tests of one binary.
pub static ORIGIN: LazyLock<MockOrigin> = LazyLock::new(MockOrigin::start);

/// An edge in front of [`ORIGIN`].
pub static EDGE: LazyLock<TestEdge> = LazyLock::new(|| start_edge(test_config(ORIGIN.addr, "1s")));

/// An edge whose origin port is closed.
pub static EDGE_ORIGIN_DOWN: LazyLock<TestEdge> = LazyLock::new(|| {
    // A reserved port nothing listens on, for the binary's life.
    let closed: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    start_edge(test_config(closed, "1s"))
});

/// Sends `raw` (a whole HTTP/1.1 request) and returns the status and body of the answer.
///
/// Used for targets that HTTP client libraries would normalize (`..`, `%2e%2e`).
pub fn raw_request(addr: SocketAddr, raw: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect edge");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(raw.as_bytes()).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of one sample line of a metrics page (`name{labels}`), 0 if absent.
pub fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}
