//! TLS at the edge through real clients: curl negotiating HTTP/2 and HTTP/1.1 by ALPN against a
//! test CA, certificates chosen by SNI (exact and wildcard names), certificate rotation by file
//! change and by `SIGHUP` while a connection stays open, a broken certificate refused without
//! losing the live one, and token-key rotation by `SIGHUP` (add a key, sign with it, retire the
//! old one) without a restart.

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::Path,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::Duration,
};

use streamgate_testkit::{Leaf, PrivateEdge, Signal, Stack, TestCa, eventually, metric, reserve};

use crate::packaged;

/// `[server.tls]` on `port` with `certs`.
fn tls_section(port: u16, certs: &[&Leaf]) -> String {
    let list = certs
        .iter()
        .map(|l| {
            format!(
                "{{ cert = \"{}\", key = \"{}\" }}",
                l.cert.display(),
                l.key.display()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "[server.tls]\nlisten = \"127.0.0.1:{port}\"\nreload-interval = \"100ms\"\ncertificates = [{list}]\n"
    )
}

/// curl over TLS to `name` (resolved to loopback) trusting only `ca`: (exit code, HTTP status,
/// HTTP version, body).
async fn curl(
    ca: &Path,
    name: &str,
    port: u16,
    path: &str,
    args: &[&str],
) -> (i32, String, String, Vec<u8>) {
    let body = tempfile::NamedTempFile::new().unwrap();
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
        .args(["-o"])
        .arg(body.path())
        .args(["-w", "%{http_code} %{http_version}"])
        .args(args)
        .arg(format!("https://{name}:{port}{path}"))
        .output()
        .await
        .unwrap();
    let w = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, version) = w.split_once(' ').unwrap_or(("", ""));
    (
        out.status.code().unwrap_or(-1),
        code.to_owned(),
        version.to_owned(),
        std::fs::read(body.path()).unwrap_or_default(),
    )
}

#[tokio::test]
async fn tls_serves_h2_and_http1_by_alpn_with_certificates_chosen_by_sni() {
    let st = Stack::load().await;
    let (id, _, seg) = packaged(&st, "tls-sni").await;
    let ca = TestCa::new();
    let a = ca.issue("a", &["a.streamgate.test"]);
    let b = ca.issue("b", &["*.b.streamgate.test"]);
    let ports = reserve(1);
    let port = ports.get(0);
    let edge = PrivateEdge::start_custom(
        &st,
        &tls_section(port, &[&a, &b]),
        &format!("origin = \"{}\"", st.origin_internal_addr()),
        "",
        "[entitlements]\nstandalone = true\n",
    )
    .await;
    let token = edge.mint(&st, &id);
    let path = format!("/p/{token}/{id}/{seg}");
    let plain = edge.get(&st, &path, &[]).await.bytes().await.unwrap();
    let caf = ca.ca_file();

    // HTTP/2 by ALPN, the same bytes as the plain listener.
    let (rc, code, version, body) =
        curl(&caf, "a.streamgate.test", port, &path, &["--http2"]).await;
    assert_eq!((rc, code.as_str(), version.as_str()), (0, "200", "2"));
    assert_eq!(body, plain);
    // HTTP/1.1 kept for clients that do not offer h2.
    let (rc, code, version, _) =
        curl(&caf, "a.streamgate.test", port, "/healthz", &["--http1.1"]).await;
    assert_eq!((rc, code.as_str(), version.as_str()), (0, "200", "1.1"));
    // SNI picks the wildcard certificate for a name under b (curl verifies the name).
    let (rc, code, version, _) =
        curl(&caf, "x.b.streamgate.test", port, "/healthz", &["--http2"]).await;
    assert_eq!((rc, code.as_str(), version.as_str()), (0, "200", "2"));
    // A name no certificate lists gets the default (a), which curl rejects for that name:
    // the edge never answers a name with a certificate that does not cover it.
    let (rc, _, _, _) = curl(&caf, "c.streamgate.test", port, "/healthz", &[]).await;
    assert_eq!(rc, 60, "certificate does not match the name");
    // A wildcard covers one label only.
    let (rc, _, _, _) = curl(&caf, "y.x.b.streamgate.test", port, "/healthz", &[]).await;
    assert_eq!(rc, 60);
    // The gate is the same over TLS: a tampered token is refused.
    let (rc, code, _, _) = curl(
        &caf,
        "a.streamgate.test",
        port,
        &format!("/p/{token}x/{id}/{seg}"),
        &["--http2"],
    )
    .await;
    assert_eq!((rc, code.as_str()), (0, "403"));
}

/// An `openssl s_client` connection kept open: HTTP/1.1 requests on one TLS connection.
struct Held {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Held {
    fn open(ca: &Path, port: u16, name: &str) -> Held {
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-verify_return_error", "-CAfile"])
            .arg(ca)
            .args([
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-servername",
                name,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Held {
            child,
            stdin,
            stdout,
        }
    }

    /// `GET /healthz` on the held connection: the status line.
    fn healthz(&mut self) -> String {
        self.stdin
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: a.streamgate.test\r\n\r\n")
            .unwrap();
        let mut status = String::new();
        self.stdout.read_line(&mut status).unwrap();
        let mut len = 0;
        loop {
            let mut line = String::new();
            self.stdout.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut body = vec![0; len];
        self.stdout.read_exact(&mut body).unwrap();
        status.trim().to_owned()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn reloads(page: &str, what: &str, result: &str) -> f64 {
    metric(
        page,
        &format!("streamgate_edge_reloads_total{{result=\"{result}\",what=\"{what}\"}}"),
    )
}

#[tokio::test]
async fn certificates_and_token_keys_rotate_without_a_restart_or_a_dropped_connection() {
    let st = Stack::load().await;
    let (id, _, seg) = packaged(&st, "tls-rotate").await;
    let ca = TestCa::new();
    let first = ca.issue("a", &["a.streamgate.test"]);
    // The files the edge is configured with; rotations overwrite them in place.
    let dir = tempfile::tempdir().unwrap();
    let live = Leaf {
        cert: dir.path().join("edge.pem"),
        key: dir.path().join("edge-key.pem"),
    };
    std::fs::copy(&first.cert, &live.cert).unwrap();
    std::fs::copy(&first.key, &live.key).unwrap();
    let ports = reserve(1);
    let port = ports.get(0);
    let edge = PrivateEdge::start_custom(
        &st,
        &tls_section(port, &[&live]),
        &format!("origin = \"{}\"", st.origin_internal_addr()),
        "",
        "[entitlements]\nstandalone = true\n",
    )
    .await;
    let caf = ca.ca_file();
    let mut held = Held::open(&caf, port, "a.streamgate.test");
    assert_eq!(held.healthz(), "HTTP/1.1 200 OK");
    let (rc, ..) = curl(&caf, "c.streamgate.test", port, "/healthz", &[]).await;
    assert_eq!(rc, 60, "c is not served yet");

    // Renewal by file change (as certbot or a Kubernetes Secret update does it): the key
    // first, then the certificate; the edge picks the pair up without a signal.
    let second = ca.issue("ac", &["a.streamgate.test", "c.streamgate.test"]);
    std::fs::copy(&second.key, &live.key).unwrap();
    std::fs::copy(&second.cert, &live.cert).unwrap();
    eventually(
        "the renewed certificate is served",
        Duration::from_secs(10),
        || async {
            curl(&caf, "c.streamgate.test", port, "/healthz", &[])
                .await
                .0
                == 0
        },
    )
    .await;
    // The connection opened before the renewal is still served.
    assert_eq!(held.healthz(), "HTTP/1.1 200 OK");

    // A broken certificate is refused: the live one stays, the failure is counted.
    std::fs::write(&live.cert, b"-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    edge.proc.signal(Signal::SIGHUP);
    eventually(
        "the broken reload is counted",
        Duration::from_secs(10),
        || async { reloads(&edge.metrics_page(&st).await, "tls", "error") >= 1.0 },
    )
    .await;
    let (rc, code, ..) = curl(&caf, "c.streamgate.test", port, "/healthz", &["--http2"]).await;
    assert_eq!(
        (rc, code.as_str()),
        (0, "200"),
        "the live certificate still serves"
    );
    std::fs::copy(&second.cert, &live.cert).unwrap();

    // Token keys by SIGHUP: add k2 and sign with it; k1 tokens keep working until k1 is
    // removed, then they are refused. No restart: the held connection lives throughout.
    let old_token = edge.mint(&st, &id);
    let path = |t: &str| format!("/p/{t}/{id}/{seg}");
    let conf = std::fs::read_to_string(&edge.conf).unwrap();
    let k2 = dir.path().join("token-k2");
    std::fs::write(&k2, "cd".repeat(32)).unwrap();
    let k2_section = format!(
        "\n[[tokens.keys]]\nid = \"k2\"\nsecret = {{ file = \"{}\" }}\n",
        k2.display()
    );
    std::fs::write(
        &edge.conf,
        conf.replace("signing-key = \"k1\"", "signing-key = \"k2\"") + &k2_section,
    )
    .unwrap();
    let new_token = edge.mint(&st, &id);
    assert_ne!(new_token, old_token);
    assert_eq!(
        edge.get(&st, &path(&new_token), &[]).await.status(),
        403,
        "k2 unknown before the reload"
    );
    let before = reloads(&edge.metrics_page(&st).await, "tokens", "ok");
    edge.proc.signal(Signal::SIGHUP);
    eventually(
        "the token keys reloaded",
        Duration::from_secs(10),
        || async { reloads(&edge.metrics_page(&st).await, "tokens", "ok") > before },
    )
    .await;
    assert_eq!(edge.get(&st, &path(&new_token), &[]).await.status(), 200);
    assert_eq!(
        edge.get(&st, &path(&old_token), &[]).await.status(),
        200,
        "k1 still listed"
    );

    // Retire k1: only the k2 key stays.
    let retired = std::fs::read_to_string(&edge.conf).unwrap().replacen(
        "[[tokens.keys]]\nid = \"k1\"",
        "[[tokens.keys-retired]]\nid = \"k1\"",
        1,
    );
    assert!(retired.contains("tokens.keys-retired"), "{retired}");
    let without_k1 = strip_table(&retired, "[[tokens.keys-retired]]");
    std::fs::write(&edge.conf, without_k1).unwrap();
    let before = reloads(&edge.metrics_page(&st).await, "tokens", "ok");
    edge.proc.signal(Signal::SIGHUP);
    eventually("k1 retired", Duration::from_secs(10), || async {
        reloads(&edge.metrics_page(&st).await, "tokens", "ok") > before
    })
    .await;
    assert_eq!(
        edge.get(&st, &path(&old_token), &[]).await.status(),
        403,
        "k1 retired"
    );
    assert_eq!(edge.get(&st, &path(&new_token), &[]).await.status(), 200);
    assert_eq!(
        held.healthz(),
        "HTTP/1.1 200 OK",
        "the held connection outlived every reload"
    );
}

/// Removes the TOML table starting at the line `header` (up to the next table header).
fn strip_table(toml: &str, header: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in toml.lines() {
        if line.trim() == header {
            skipping = true;
            continue;
        }
        if skipping && line.starts_with('[') {
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
