//! The viewer's real address behind load balancers, as an attacker would try to fake it:
//! PROXY protocol v1 and v2 headers on plain and TLS listeners (accepted from trusted peers
//! only, required when configured), and `X-Forwarded-For` / `Forwarded` honoured only from
//! `server.trusted-proxies`. What the edge believes is observed through token IP binding: a
//! token bound to 203.0.113.0/24 plays only when the edge takes the viewer to be there.

use std::{net::Ipv4Addr, time::Duration};

use streamgate_testkit::{PrivateEdge, Stack, TestCa, metric, reserve};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::packaged;

const VIEWER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
const OTHER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 9);

/// A private edge with `server` keys, binding tokens to /24 prefixes.
async fn edge(st: &Stack, server: &str) -> PrivateEdge {
    PrivateEdge::start_custom(
        st,
        server,
        &format!("origin = \"{}\"", st.origin_internal_addr()),
        "bind-ip = true\nipv4-prefix = 24",
        "[entitlements]\nstandalone = true\n",
    )
    .await
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// A PROXY v1 line naming `src` as the client.
fn v1(src: Ipv4Addr, port: u16) -> Vec<u8> {
    format!("PROXY TCP4 {src} 127.0.0.1 40000 {port}\r\n").into_bytes()
}

/// A PROXY v2 header (PROXY command, TCP over IPv4) naming `src`, with a TLV after the
/// addresses (as AWS NLB and HAProxy send).
fn v2(src: Ipv4Addr, port: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend([0x21, 0x11]);
    let tlv = [0x04u8, 0x00, 0x02, 0xab, 0xcd]; // PP2_TYPE_NOOP
    h.extend(u16::try_from(12 + tlv.len()).unwrap().to_be_bytes());
    h.extend(src.octets());
    h.extend(Ipv4Addr::LOCALHOST.octets());
    h.extend(40000u16.to_be_bytes());
    h.extend(port.to_be_bytes());
    h.extend(tlv);
    h
}

/// Sends `prefix` then `requests` GETs of `path` one after another on one raw TCP connection
/// (keep-alive, the last one closing); returns every status code read, in order (none: the
/// edge closed the connection without answering).
async fn raw(port: u16, prefix: &[u8], path: &str, requests: usize, headers: &str) -> Vec<u16> {
    let s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (r, mut w) = s.into_split();
    let mut r = tokio::io::BufReader::new(r);
    let mut codes = Vec::new();
    let mut first = prefix.to_vec();
    for i in 0..requests {
        let close = if i + 1 == requests {
            "Connection: close\r\n"
        } else {
            ""
        };
        first.extend(format!("GET {path} HTTP/1.1\r\nHost: edge\r\n{headers}{close}\r\n").bytes());
        // The edge may close before reading everything (a refused header): ignore errors.
        if w.write_all(&std::mem::take(&mut first)).await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(10), response(&mut r)).await {
            Ok(Some(code)) => codes.push(code),
            _ => break,
        }
    }
    codes
}

/// Reads one HTTP/1.1 response (status line, headers, `Content-Length` body): its status.
async fn response(r: &mut (impl tokio::io::AsyncBufRead + Unpin)) -> Option<u16> {
    let mut status = String::new();
    r.read_line(&mut status).await.ok()?;
    let code = status.get(9..12)?.parse().ok()?;
    let (mut len, mut chunked) = (0usize, false);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
        if line == "\r\n" {
            break;
        }
    }
    if !chunked {
        let mut body = vec![0; len];
        r.read_exact(&mut body).await.ok()?;
        return Some(code);
    }
    loop {
        let mut size = String::new();
        r.read_line(&mut size).await.ok()?;
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        let mut chunk = vec![0; n + 2];
        r.read_exact(&mut chunk).await.ok()?;
        if n == 0 {
            return Some(code);
        }
    }
}

#[tokio::test]
async fn proxy_protocol_names_the_viewer_only_from_trusted_balancers() {
    let st = Stack::load().await;
    let (id, _, _) = packaged(&st, "proxy-protocol").await;
    let trusted = edge(
        &st,
        "proxy-protocol = true\ntrusted-proxies = [\"127.0.0.0/8\"]",
    )
    .await;
    let port = port_of(&trusted.url);
    let token = trusted.mint_with(&st, &id, &["--ip", &VIEWER.to_string()]);
    let path = format!("/p/{token}/{id}/master.m3u8");

    // v1 and v2 headers naming the viewer: the bound token plays, and a second request on the
    // same connection (one header per connection) too.
    assert_eq!(raw(port, &v1(VIEWER, port), &path, 2, "").await, [200, 200]);
    assert_eq!(raw(port, &v2(VIEWER, port), &path, 1, "").await, [200]);
    // A header naming another network: the binding refuses it.
    assert_eq!(raw(port, &v1(OTHER, port), &path, 1, "").await, [403]);
    // No header, a garbage header, a header split oddly with junk: closed unanswered.
    assert_eq!(raw(port, b"", &path, 1, "").await, Vec::<u16>::new());
    assert_eq!(
        raw(port, b"PROXY TCP4 nonsense\r\n", &path, 1, "").await,
        Vec::<u16>::new()
    );
    let mut long = b"PROXY TCP4 ".to_vec();
    long.extend([b'1'; 200]);
    assert_eq!(raw(port, &long, &path, 1, "").await, Vec::<u16>::new());
    // PROXY UNKNOWN (a balancer's own health check): the TCP peer stays the client.
    let local = trusted.mint_with(&st, &id, &["--ip", "127.0.0.1"]);
    assert_eq!(
        raw(
            port,
            b"PROXY UNKNOWN\r\n",
            &format!("/p/{local}/{id}/master.m3u8"),
            1,
            ""
        )
        .await,
        [200]
    );
    let page = trusted.metrics_page(&st).await;
    assert!(
        metric(
            &page,
            "streamgate_edge_proxy_headers_total{outcome=\"accepted\"}"
        ) >= 4.0
    );
    assert!(
        metric(
            &page,
            "streamgate_edge_proxy_headers_total{outcome=\"refused\"}"
        ) >= 3.0
    );

    // The same header from a peer that is not a trusted balancer: refused, whatever it says.
    let untrusted = edge(
        &st,
        "proxy-protocol = true\ntrusted-proxies = [\"10.0.0.0/8\"]",
    )
    .await;
    let uport = port_of(&untrusted.url);
    let token = untrusted.mint_with(&st, &id, &["--ip", &VIEWER.to_string()]);
    let upath = format!("/p/{token}/{id}/master.m3u8");
    assert_eq!(
        raw(uport, &v1(VIEWER, uport), &upath, 1, "").await,
        Vec::<u16>::new()
    );
    assert_eq!(
        raw(uport, &v2(VIEWER, uport), &upath, 1, "").await,
        Vec::<u16>::new()
    );
    assert!(
        metric(
            &untrusted.metrics_page(&st).await,
            "streamgate_edge_proxy_headers_total{outcome=\"refused\"}"
        ) >= 2.0
    );
}

#[tokio::test]
async fn proxy_protocol_before_tls() {
    let st = Stack::load().await;
    let ca = TestCa::new();
    let leaf = ca.issue("edge", &["edge.streamgate.test"]);
    let ports = reserve(1);
    let tls_port = ports.get(0);
    let e = edge(
        &st,
        &format!(
            "trusted-proxies = [\"127.0.0.0/8\"]\n[server.tls]\nlisten = \"127.0.0.1:{tls_port}\"\nproxy-protocol = true\ncertificates = [{{ cert = \"{}\", key = \"{}\" }}]\n",
            leaf.cert.display(),
            leaf.key.display()
        ),
    )
    .await;
    let curl = |proxy: bool| {
        let mut c = std::process::Command::new("curl");
        c.args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
        ])
        .arg(ca.ca_file())
        .args([
            "--resolve",
            &format!("edge.streamgate.test:{tls_port}:127.0.0.1"),
        ]);
        if proxy {
            c.arg("--haproxy-protocol");
        }
        c.arg(format!("https://edge.streamgate.test:{tls_port}/healthz"));
        c.output().unwrap()
    };
    // curl writes a v1 header before its ClientHello: the handshake and the request go through.
    let out = curl(true);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    // Without it, the listener drops the connection before any TLS.
    let out = curl(false);
    assert!(!out.status.success(), "a TLS hello is not a PROXY header");
    // The plain listener of the same edge does not expect one.
    assert_eq!(e.get(&st, "/healthz", &[]).await.status(), 200);
}

#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let st = Stack::load().await;
    let (id, _, _) = packaged(&st, "forwarded-for").await;
    let behind = edge(&st, "trusted-proxies = [\"127.0.0.0/8\"]").await;
    let token = behind.mint_with(&st, &id, &["--ip", &VIEWER.to_string()]);
    let path = format!("/p/{token}/{id}/master.m3u8");
    let get = |e: &PrivateEdge, path: &str, name: &'static str, value: String| {
        let (url, http) = (format!("{}{path}", e.url), st.http.clone());
        async move {
            http.get(url)
                .header(name, value)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // The balancer (loopback, trusted) appends the viewer: the right-most untrusted hop counts.
    assert_eq!(
        get(&behind, &path, "x-forwarded-for", VIEWER.to_string()).await,
        200
    );
    assert_eq!(
        get(
            &behind,
            &path,
            "x-forwarded-for",
            format!("{OTHER}, {VIEWER}")
        )
        .await,
        200,
        "what the client wrote on the left is ignored"
    );
    assert_eq!(
        get(
            &behind,
            &path,
            "x-forwarded-for",
            format!("{VIEWER}, {OTHER}")
        )
        .await,
        403,
        "a spoofed left-most hop does not win"
    );
    assert_eq!(
        get(
            &behind,
            &path,
            "forwarded",
            format!("for={VIEWER};proto=https")
        )
        .await,
        200
    );
    assert_eq!(
        get(&behind, &path, "x-forwarded-for", "not-an-ip".into()).await,
        403,
        "a malformed hop falls back to the peer"
    );

    // An edge that trusts nobody ignores the headers entirely.
    let direct = edge(&st, "").await;
    let bound = direct.mint_with(&st, &id, &["--ip", &VIEWER.to_string()]);
    let mine = direct.mint_with(&st, &id, &["--ip", "127.0.0.1"]);
    let at = |t: &str| format!("/p/{t}/{id}/master.m3u8");
    assert_eq!(
        get(&direct, &at(&bound), "x-forwarded-for", VIEWER.to_string()).await,
        403
    );
    assert_eq!(
        get(&direct, &at(&bound), "forwarded", format!("for={VIEWER}")).await,
        403
    );
    assert_eq!(
        get(&direct, &at(&mine), "x-forwarded-for", VIEWER.to_string()).await,
        200
    );
}
