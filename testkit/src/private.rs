//! Private processes a test owns (killed on drop, on ports reserved for them): edges and
//! origins built from the stack's binaries and configs, transcoders, Redis and Redis Cluster,
//! anvil, an S3 server, and a TCP forwarder that can cut a connection.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    ports::{Ports, reserve},
    proc::{Proc, wait_answers, wait_tcp},
    stack::{Stack, repo_root},
};

/// A private edge (the stack's binary) over the stack's origin, with an `[entitlements]`
/// body supplied by the test (TTLs, `redis-url`, RPC maps). Killed on drop.
pub struct PrivateEdge {
    /// Player-facing base URL.
    pub url: String,
    /// Its metrics page (`…/metrics`).
    pub metrics: String,
    /// The process (holding its ports).
    pub proc: Proc,
    /// Its log file.
    pub log: PathBuf,
    /// Its config file.
    pub conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateEdge {
    /// A private edge whose upstream is the stack's origin (its internal listener).
    pub async fn start(st: &Stack, entitlements: &str) -> PrivateEdge {
        Self::start_with_origin(st, &st.origin_internal_addr(), entitlements).await
    }

    /// A private edge fetching objects from `origin` (`host:port`); sessions and policies
    /// still come from the stack's origin. `extra` is appended TOML (`[entitlements]` is
    /// required, `[cache]` etc. optional).
    pub async fn start_with_origin(st: &Stack, origin: &str, extra: &str) -> PrivateEdge {
        Self::start_with_upstream(st, &format!("origin = \"{origin}\""), extra).await
    }

    /// A private edge with `upstream` as the body of its `[upstream]` section (the stack's edge
    /// key is added: every private edge presents it upstream and accepts it from children).
    pub async fn start_with_upstream(st: &Stack, upstream: &str, extra: &str) -> PrivateEdge {
        Self::start_full(st, upstream, "", extra).await
    }

    /// A private edge with extra `[tokens]` lines (`bind-ip = true`, …) too.
    pub async fn start_full(st: &Stack, upstream: &str, tokens: &str, extra: &str) -> PrivateEdge {
        Self::start_custom(st, "", upstream, tokens, extra).await
    }

    /// As [`PrivateEdge::start_full`], with more `[server]` keys (`server_extra`: TLS, PROXY
    /// protocol, trusted proxies).
    pub async fn start_custom(
        st: &Stack,
        server_extra: &str,
        upstream: &str,
        tokens: &str,
        extra: &str,
    ) -> PrivateEdge {
        let entitlements = extra;
        let dir = tempfile::tempdir().unwrap();
        let ports = reserve(2);
        let (edge_port, metrics_port) = (ports.get(0), ports.get(1));
        let key = dir.path().join("token-key");
        std::fs::write(&key, "ab".repeat(32)).unwrap();
        let conf = dir.path().join("proxy.toml");
        std::fs::write(
            &conf,
            format!(
                r#"[server]
listen = "127.0.0.1:{edge_port}"
metrics-listen = "127.0.0.1:{metrics_port}"
grace-period = "1s"
edge-keys = [{{ file = "{edge_key}" }}]
{server_extra}
[upstream]
{upstream}
edge-key = {{ file = "{edge_key}" }}
[tokens]
signing-key = "k1"
{tokens}
[[tokens.keys]]
id = "k1"
secret = {{ file = "{key}" }}
[session]
jwks-url = "{o}/.well-known/jwks.json"
issuer = "{o}"
{entitlements}
"#,
                key = key.display(),
                edge_key = st.edge_key_file.display(),
                o = st.origin,
            ),
        )
        .unwrap();
        let log = dir.path().join("edge.log");
        let proc = Proc::spawn_logged(
            Command::new(st.bin_dir.join("streamgate-proxy"))
                .arg("--config")
                .arg(&conf),
            &log,
        )
        .holding(ports);
        let url = format!("http://127.0.0.1:{edge_port}");
        // A plain listener expecting PROXY headers answers no bare request: wait for the
        // metrics page, then for the player port to accept.
        let plain_proxy = server_extra
            .split("[server.tls]")
            .next()
            .is_some_and(|s| s.contains("proxy-protocol = true"));
        if plain_proxy {
            wait_answers(
                &st.http,
                &format!("http://127.0.0.1:{metrics_port}/metrics"),
                &log,
            )
            .await;
            wait_tcp(edge_port);
        } else {
            wait_answers(&st.http, &url, &log).await;
        }
        PrivateEdge {
            url,
            metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
            proc,
            log,
            conf,
            _dir: dir,
        }
    }

    /// Upgrades this edge in place, as `scripts/stack.sh upgrade edge` does: a new process
    /// with `--upgrade` (same config, same log) waits on the upgrade socket, the running one
    /// gets SIGQUIT and hands over its listening sockets. Returns the old process, draining
    /// (wait for it with [`Proc::wait_exit`]); this edge is the new one.
    pub async fn upgrade(&mut self, st: &Stack) -> Proc {
        let port: u16 = self.url.rsplit(':').next().unwrap().parse().unwrap();
        let sock = std::env::temp_dir().join(format!("streamgate-edge-{port}.upgrade"));
        let _ = std::fs::remove_file(&sock);
        let new = Proc::spawn_logged(
            Command::new(st.bin_dir.join("streamgate-proxy"))
                .arg("--config")
                .arg(&self.conf)
                .arg("--upgrade"),
            &self.log,
        );
        crate::eventually(
            "the new edge waits for the sockets",
            Duration::from_secs(10),
            || {
                let ready = sock.exists();
                async move { ready }
            },
        )
        .await;
        self.proc.signal(crate::Signal::SIGQUIT);
        let mut old = std::mem::replace(&mut self.proc, new);
        if let Some(ports) = old.take_ports() {
            self.proc.hold(ports);
        }
        wait_answers(&st.http, &self.url, &self.log).await;
        old
    }

    /// A playback token for `content_id` signed with this edge's key.
    pub fn mint(&self, st: &Stack, content_id: &str) -> String {
        self.mint_with(st, content_id, &[])
    }

    /// A playback token for `content_id` with extra `token mint` arguments (`--ip ADDR`).
    pub fn mint_with(&self, st: &Stack, content_id: &str, args: &[&str]) -> String {
        let out = Command::new(st.bin_dir.join("streamgate-proxy"))
            .args(["token", "mint", "--config"])
            .arg(&self.conf)
            .args(["--content", content_id, "--ttl", "1h"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Its metrics page, as text.
    pub async fn metrics_page(&self, st: &Stack) -> String {
        st.http
            .get(&self.metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `GET {path}` at this edge with optional extra headers.
    pub async fn get(&self, st: &Stack, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = st.http.get(format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// `GET /v1/playback/{id}` at this edge.
    pub async fn grant(&self, st: &Stack, id: &str, session: &str) -> (u16, Value) {
        let r = st
            .http
            .get(format!("{}/v1/playback/{id}", self.url))
            .header("authorization", format!("Bearer {session}"))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// A private origin: the stack's `origin.toml` with its own listeners and Redis (so its rate
/// limits and event consumers touch nothing of the stack's), `[auth.rate-limit]` and
/// `[server]` lines replaced by the test's. Shares the stack's S3 bucket. Killed on drop.
pub struct PrivateOrigin {
    /// Public base URL.
    pub url: String,
    /// Internal (edges') base URL.
    pub internal_url: String,
    /// The process (holding its ports).
    pub proc: Proc,
    /// Its log file.
    pub log: PathBuf,
    /// The Redis it uses (its own, or the one it shares with [`PrivateOrigin::start_sharing`]).
    pub redis_url: String,
    _redis: Option<PrivateRedis>,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateOrigin {
    /// `server_extra`: lines added to `[server]` (`trusted-proxies = […]`); `rate_limit`: the
    /// body of `[auth.rate-limit]`.
    pub async fn start(st: &Stack, server_extra: &str, rate_limit: &str) -> PrivateOrigin {
        Self::start_with(st, server_extra, rate_limit, "").await
    }

    /// As [`PrivateOrigin::start`], with TOML appended to the config (`tail`: a `[log]`
    /// section, say).
    pub async fn start_with(
        st: &Stack,
        server_extra: &str,
        rate_limit: &str,
        tail: &str,
    ) -> PrivateOrigin {
        Self::start_env(st, server_extra, rate_limit, tail, &[]).await
    }

    /// As [`PrivateOrigin::start_with`], with environment variables (config overrides such
    /// as `STREAMGATE__UPLOADS__EXPIRY`).
    pub async fn start_env(
        st: &Stack,
        server_extra: &str,
        rate_limit: &str,
        tail: &str,
        env: &[(&str, &str)],
    ) -> PrivateOrigin {
        let redis = PrivateRedis::start();
        let url = redis.url();
        Self::launch(st, server_extra, rate_limit, tail, env, url, Some(redis)).await
    }

    /// A second replica beside `other`: its own listeners, the same Redis (leases, streams,
    /// sessions) and bucket, as two origins behind one balancer run.
    pub async fn start_sharing(st: &Stack, other: &PrivateOrigin) -> PrivateOrigin {
        Self::launch(st, "", "", "", &[], other.redis_url.clone(), None).await
    }

    async fn launch(
        st: &Stack,
        server_extra: &str,
        rate_limit: &str,
        tail: &str,
        env: &[(&str, &str)],
        redis_url: String,
        redis: Option<PrivateRedis>,
    ) -> PrivateOrigin {
        let dir = tempfile::tempdir().unwrap();
        let ports = reserve(2);
        let (port, internal) = (ports.get(0), ports.get(1));
        let stack_conf = std::fs::read_to_string(st.config_dir.join("origin.toml")).unwrap();
        let mut out = String::new();
        let mut section = String::new();
        for line in stack_conf.lines() {
            if line.starts_with('[') {
                section = line.to_owned();
                out.push_str(line);
                out.push('\n');
                match line {
                    "[server]" => {
                        out.push_str(&format!(
                            "listen = \"127.0.0.1:{port}\"\ninternal-listen = \"127.0.0.1:{internal}\"\n\
                             public-url = \"http://127.0.0.1:{port}\"\n{server_extra}\n"
                        ));
                    }
                    "[auth.rate-limit]" => {
                        out.push_str(rate_limit);
                        out.push('\n');
                    }
                    _ => {}
                }
                continue;
            }
            let key = line.split('=').next().unwrap_or("").trim();
            let replaced = match (section.as_str(), key) {
                ("[server]", "listen" | "internal-listen" | "public-url") => true,
                ("[auth.rate-limit]", _) => true,
                ("[redis]", "url") => {
                    out.push_str(&format!("url = \"{redis_url}\"\n"));
                    true
                }
                _ => false,
            };
            if !replaced {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str(tail);
        let conf = dir.path().join("origin.toml");
        std::fs::write(&conf, out).unwrap();
        let log = dir.path().join("origin.log");
        let proc = Proc::spawn_logged(
            Command::new(st.bin_dir.join("streamgate-origin"))
                .arg("--config")
                .arg(&conf)
                .envs(env.iter().copied()),
            &log,
        )
        .holding(ports);
        let url = format!("http://127.0.0.1:{port}");
        // The internal listener is always plain HTTP (the public one may serve TLS); both are
        // bound before either answers.
        wait_answers(&st.http, &format!("http://127.0.0.1:{internal}"), &log).await;
        wait_tcp(port);
        PrivateOrigin {
            url,
            internal_url: format!("http://127.0.0.1:{internal}"),
            proc,
            log,
            redis_url,
            _redis: redis,
            conf,
            _dir: dir,
        }
    }

    /// Restarts it as an operator would: SIGTERM (it drains in-flight requests and exits), then
    /// the current binary on the same config and ports.
    pub async fn restart(&mut self, st: &Stack) {
        let ports = self.proc.take_ports();
        self.proc.terminate();
        assert!(
            self.proc.wait_exit(Duration::from_secs(30)).await,
            "origin did not exit on SIGTERM"
        );
        self.proc = Proc::spawn_logged(
            Command::new(st.bin_dir.join("streamgate-origin"))
                .arg("--config")
                .arg(&self.conf),
            &self.log,
        );
        if let Some(p) = ports {
            self.proc.hold(p);
        }
        wait_answers(&st.http, &self.url, &self.log).await;
    }
}

/// A private transcoder: the stack's `transcoder.toml` with another Redis (`redis_url`) and
/// its own metrics port, in a process group of its own (killing it takes its FFmpeg too).
pub struct PrivateTranscoder {
    /// The process.
    pub proc: Proc,
    /// Its metrics base URL (`…/metrics`, `…/healthz`).
    pub metrics_url: String,
    /// Its log file.
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateTranscoder {
    /// Starts one consuming `redis_url`'s `sg:jobs`, named `name`.
    pub async fn start(st: &Stack, redis_url: &str, name: &str) -> PrivateTranscoder {
        let dir = tempfile::tempdir().unwrap();
        let ports = reserve(1);
        let metrics = ports.get(0);
        let stack_conf = std::fs::read_to_string(st.config_dir.join("transcoder.toml")).unwrap();
        let mut out = String::new();
        let mut section = String::new();
        for line in stack_conf.lines() {
            if line.starts_with('[') {
                section = line.to_owned();
            }
            let key = line.split('=').next().unwrap_or("").trim();
            match (section.as_str(), key) {
                ("[redis]", "url") => out.push_str(&format!("url = \"{redis_url}\"\n")),
                ("[metrics]", "listen") => {
                    out.push_str(&format!("listen = \"127.0.0.1:{metrics}\"\n"));
                }
                ("[worker]", "name") => {}
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            if line == "[worker]" {
                out.push_str(&format!("name = \"{name}\"\n"));
            }
        }
        let conf = dir.path().join("transcoder.toml");
        std::fs::write(&conf, out).unwrap();
        let log = dir.path().join("transcoder.log");
        let proc = Proc::spawn_logged(
            Command::new(st.bin_dir.join("streamgate-transcoder"))
                .arg("--config")
                .arg(&conf)
                .stdin(Stdio::null()),
            &log,
        )
        .holding(ports);
        let url = format!("http://127.0.0.1:{metrics}");
        let start = Instant::now();
        while st.http.get(format!("{url}/healthz")).send().await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "transcoder did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        PrivateTranscoder {
            proc,
            metrics_url: url,
            log,
            _dir: dir,
        }
    }
}

/// A TCP forwarder from a loopback port to `target`, stopped (listener and every connection)
/// on drop: lets a test cut an edge off from origin.
pub struct Forwarder {
    /// The loopback port it listens on (held since it was bound: no race).
    pub port: u16,
    tasks: tokio::task::JoinSet<()>,
}

impl Forwarder {
    /// Forwards a fresh loopback port to `target` (`host:port`).
    pub async fn start(target: &str) -> Forwarder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = target.to_owned();
        let mut tasks = tokio::task::JoinSet::new();
        let conns =
            std::sync::Arc::new(std::sync::Mutex::new(Vec::<tokio::task::AbortHandle>::new()));
        let conns2 = conns.clone();
        tasks.spawn(async move {
            let _guard = AbortAll(conns2.clone());
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                conns2.lock().unwrap().push(h.abort_handle());
            }
        });
        Forwarder { port, tasks }
    }

    /// Stops accepting and cuts every open connection.
    pub fn stop(&mut self) {
        self.tasks.abort_all();
    }
}

/// A TCP forwarder that cuts the first connection over which more than `after` bytes went
/// from client to server (both directions dropped mid-request, as a flaky network does);
/// every other connection is forwarded whole. Its target is set after it listens
/// ([`CuttingForwarder::forward_to`]), so a server can be told the forwarder's URL as its
/// public one. [`CuttingForwarder::has_cut`] tells whether it has cut yet. Stopped on drop.
pub struct CuttingForwarder {
    /// The loopback port it listens on.
    pub port: u16,
    target: std::sync::Arc<std::sync::OnceLock<String>>,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    _tasks: tokio::task::JoinSet<()>,
}

impl CuttingForwarder {
    /// Listens on a fresh loopback port, to cut once after `after` bytes upstream on one
    /// connection.
    pub async fn start(after: u64) -> CuttingForwarder {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (t, c) = (target.clone(), cut.clone());
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                let (target, cut) = (t.clone(), c.clone());
                conns.spawn(async move {
                    let Some(target) = target.get() else {
                        return; // no target yet: refuse by closing
                    };
                    let Ok(out) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut cr, mut cw) = inbound.into_split();
                    let (mut sr, mut sw) = out.into_split();
                    let down = tokio::io::copy(&mut sr, &mut cw);
                    let up = async {
                        let mut sent = 0u64;
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = cr.read(&mut buf).await?;
                            if n == 0 {
                                return sw.shutdown().await;
                            }
                            sent += n as u64;
                            if sent > after && !cut.swap(true, Ordering::SeqCst) {
                                // The cut: both halves of both sockets are dropped on return.
                                return Err(std::io::Error::other("cut"));
                            }
                            sw.write_all(&buf[..n]).await?;
                        }
                    };
                    // Either direction ending (or the cut) ends the connection.
                    tokio::select! {
                        _ = down => {}
                        _ = up => {}
                    }
                });
            }
        });
        CuttingForwarder {
            port,
            target,
            cut,
            _tasks: tasks,
        }
    }

    /// Where connections go (`host:port`); set once.
    pub fn forward_to(&self, target: &str) {
        self.target
            .set(target.to_owned())
            .expect("the target is set once");
    }

    /// Whether the one cut has happened.
    pub fn has_cut(&self) -> bool {
        self.cut.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A round-robin TCP balancer on a loopback port, as an L4 load balancer in front of several
/// edges or origins: each new connection goes to the next live target (a target that refuses
/// the connection is skipped, as a health-checking balancer would). Targets can be taken out
/// ([`Balancer::remove`]: new connections stop going there, open ones continue, as a drain).
/// Stopped on drop.
pub struct Balancer {
    /// The loopback port it listens on.
    pub port: u16,
    targets: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Connections handed to each target so far.
    counts: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
    tasks: tokio::task::JoinSet<()>,
}

impl Balancer {
    /// Balances a fresh loopback port over `targets` (`host:port`).
    pub async fn start(targets: &[String]) -> Balancer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let list = std::sync::Arc::new(std::sync::Mutex::new(targets.to_vec()));
        let counts = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
            String,
            u64,
        >::new()));
        let (l, c) = (list.clone(), counts.clone());
        let conns =
            std::sync::Arc::new(std::sync::Mutex::new(Vec::<tokio::task::AbortHandle>::new()));
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async move {
            let _guard = AbortAll(conns.clone());
            let mut next = 0usize;
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let order: Vec<String> = {
                    let t = l.lock().unwrap();
                    (0..t.len())
                        .map(|i| t[(next + i) % t.len()].clone())
                        .collect()
                };
                next = next.wrapping_add(1);
                let c = c.clone();
                let h = tokio::spawn(async move {
                    for target in order {
                        if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                            *c.lock().unwrap().entry(target).or_default() += 1;
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                            return;
                        }
                    }
                });
                conns.lock().unwrap().push(h.abort_handle());
            }
        });
        Balancer {
            port,
            targets: list,
            counts,
            tasks,
        }
    }

    /// `http://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Takes `target` out of the rotation: new connections go elsewhere.
    pub fn remove(&self, target: &str) {
        self.targets.lock().unwrap().retain(|t| t != target);
    }

    /// Connections handed to `target` so far.
    pub fn connections_to(&self, target: &str) -> u64 {
        self.counts
            .lock()
            .unwrap()
            .get(target)
            .copied()
            .unwrap_or(0)
    }

    /// Stops accepting and cuts every open connection.
    pub fn stop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Aborts the forwarder's connections when its accept loop ends.
struct AbortAll(std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>);

impl Drop for AbortAll {
    fn drop(&mut self) {
        for h in self.0.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}

/// A private `redis-server` (no persistence) on a reserved port; killed on drop.
pub struct PrivateRedis {
    /// The process (holding its port).
    pub proc: Proc,
    /// Its port.
    pub port: u16,
}

impl PrivateRedis {
    /// Starts one and waits until it accepts connections.
    ///
    /// "Accepts" means this child does: a port can be taken between its reservation and the
    /// child's bind by a process that ignores reservations (the child then exits with a bind
    /// error while the intruder answers); such a start is retried on another port.
    pub fn start() -> PrivateRedis {
        for _ in 0..5 {
            let ports = reserve(1);
            let port = ports.get(0);
            let mut proc = Proc::new(
                Command::new("redis-server")
                    .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                    .args(["--port", &port.to_string()])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("redis-server (run make setup)"),
            )
            .holding(ports);
            if wait_own_tcp(&mut proc, port) {
                return PrivateRedis { proc, port };
            }
        }
        panic!("redis-server did not start on five reserved ports");
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// Waits until `port` accepts connections while `proc` is alive and answers `PING` on it
/// (up to 30 s); false when the child exited first (it could not bind).
fn wait_own_tcp(proc: &mut Proc, port: u16) -> bool {
    use std::io::{Read, Write};
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if proc.child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let mut buf = [0u8; 7];
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            if s.write_all(b"PING\r\n").is_ok()
                && s.read_exact(&mut buf).is_ok()
                && &buf == b"+PONG\r\n"
                && proc.child.try_wait().ok().flatten().is_none()
            {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A private `redis-server` that keeps its data the way the stack's does (append-only file),
/// fsynced on every write, in a directory of its own, so [`PersistentRedis::restart`] brings it
/// back with everything it had, as a crashed and restarted Redis would. Killed on drop.
pub struct PersistentRedis {
    /// The process.
    pub proc: Proc,
    /// Its port (reserved for the life of this value, across restarts).
    pub port: u16,
    _ports: Ports,
    dir: tempfile::TempDir,
}

impl PersistentRedis {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> PersistentRedis {
        let ports = reserve(1);
        let port = ports.get(0);
        let dir = tempfile::tempdir().unwrap();
        let proc = Self::spawn(port, dir.path());
        PersistentRedis {
            proc,
            port,
            _ports: ports,
            dir,
        }
    }

    fn spawn(port: u16, dir: &Path) -> Proc {
        let proc = Proc::new(
            Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--save", ""])
                .args(["--appendonly", "yes", "--appendfsync", "always"])
                .args(["--port", &port.to_string()])
                .arg("--dir")
                .arg(dir)
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server (run make setup)"),
        );
        wait_tcp(port);
        proc
    }

    /// Kills it (SIGKILL: no shutdown save) and starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.proc.kill_group();
        self.proc = Self::spawn(self.port, self.dir.path());
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// A private three-node Redis Cluster (no replicas): node and cluster-bus ports reserved, slots
/// assigned by `redis-cli --cluster create`, up once every node says `cluster_state:ok`.
pub struct RedisCluster {
    /// The nodes.
    pub nodes: Vec<Proc>,
    /// Their client ports.
    pub ports: Vec<u16>,
    _reserved: Ports,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts the three nodes and forms the cluster.
    pub fn start() -> RedisCluster {
        let dir = tempfile::tempdir().unwrap();
        let reserved = reserve(6);
        let ports: Vec<u16> = reserved.all()[..3].to_vec();
        let bus: Vec<u16> = reserved.all()[3..].to_vec();
        let nodes: Vec<Proc> = ports
            .iter()
            .zip(&bus)
            .map(|(p, b)| {
                let proc = Proc::new(
                    Command::new("redis-server")
                        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                        .args(["--port", &p.to_string(), "--cluster-enabled", "yes"])
                        .args(["--cluster-port", &b.to_string()])
                        .args(["--cluster-config-file", &format!("nodes-{p}.conf")])
                        .arg("--dir")
                        .arg(dir.path())
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("redis-server"),
                );
                wait_tcp(*p);
                proc
            })
            .collect();
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let start = Instant::now();
        for p in &ports {
            loop {
                let info = Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "cluster", "info"])
                    .output()
                    .unwrap();
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "cluster never ok"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        RedisCluster {
            nodes,
            ports,
            _reserved: reserved,
            _dir: dir,
        }
    }
}

/// A private anvil (a real local EVM node, chain id 31337, from `scripts/chain`) on a
/// reserved port; killed on drop.
pub struct Anvil {
    /// The process (holding its port).
    pub proc: Proc,
    /// Its JSON-RPC URL.
    pub url: String,
}

impl Anvil {
    /// anvil's chain id.
    pub const CHAIN: u64 = 31337;

    /// Starts anvil and waits until it answers `eth_chainId`.
    pub async fn start() -> Anvil {
        let bin =
            repo_root().join("scripts/chain/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
        let ports = reserve(1);
        let port = ports.get(0);
        let proc = Proc::new(
            Command::new(&bin)
                .args([
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--silent",
                ])
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{}: {e}; run `make setup`", bin.display())),
        )
        .holding(ports);
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let start = Instant::now();
        loop {
            let r = http
                .post(&url)
                .json(
                    &serde_json::json!({"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}),
                )
                .send()
                .await;
            if let Ok(r) = r
                && let Ok(v) = r.json::<Value>().await
                && v["result"] == "0x7a69"
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "anvil did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Anvil { proc, url }
    }
}

/// A private S3 server (`s3s-fs`, installed by `make setup`) over a temporary directory, on a
/// reserved port; killed on drop.
pub struct PrivateS3 {
    /// The process (holding its port).
    pub proc: Proc,
    /// `http://127.0.0.1:{port}`.
    pub endpoint: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    _dir: tempfile::TempDir,
}

impl PrivateS3 {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> PrivateS3 {
        let dir = tempfile::tempdir().unwrap();
        let ports = reserve(1);
        let port = ports.get(0);
        let bin = std::env::var("HOME")
            .map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs"))
            .ok()
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("s3s-fs"));
        let (access_key, secret_key) = ("AKTEST".to_owned(), "SKTESTSKTEST".to_owned());
        let proc = Proc::new(
            Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", &access_key, "--secret-key", &secret_key])
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{}: {e}; run `make setup`", bin.display())),
        )
        .holding(ports);
        wait_tcp(port);
        PrivateS3 {
            proc,
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key,
            secret_key,
            _dir: dir,
        }
    }
}

/// A loopback port nothing listens on, reserved while the guard lives (a dead peer to point
/// something at).
pub fn dead_port() -> (Ports, u16) {
    let p = reserve(1);
    let port = p.get(0);
    (p, port)
}
