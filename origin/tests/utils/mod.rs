//! Helpers for tests that run against the local stack started by `scripts/stack.sh up`
//! (`make test` starts it): its `env` file, a tus client, clip generation and token minting.
#![allow(dead_code, unreachable_pub)]

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::Value;

/// A test wallet: a secp256k1 key that signs SIWE messages as `personal_sign` does.
pub struct Wallet {
    key: k256::ecdsa::SigningKey,
    /// EIP-55 address.
    pub address: String,
}

impl Wallet {
    /// A deterministic wallet per `n` (1..=255).
    pub fn new(n: u8) -> Wallet {
        use sha3::Digest;
        let seed = sha3::Keccak256::digest([b"streamgate-test-wallet".as_slice(), &[n]].concat());
        let key = k256::ecdsa::SigningKey::from_slice(&seed).expect("a hash is a valid scalar");
        let point = key.verifying_key().to_encoded_point(false);
        let hash = sha3::Keccak256::digest(&point.as_bytes()[1..]);
        let mut addr = [0u8; 20];
        addr.copy_from_slice(&hash[12..]);
        Wallet {
            key,
            address: streamgate_auth::siwe::to_eip55(&addr),
        }
    }

    /// `personal_sign`: 65-byte r‖s‖v (v = 27/28), hex with 0x.
    pub fn sign(&self, message: &str) -> String {
        let digest = streamgate_auth::siwe::eip191_hash(message);
        let (sig, recid) = self
            .key
            .sign_prehash_recoverable(&digest)
            .expect("signing a 32-byte digest");
        let mut out = sig.to_bytes().to_vec();
        out.push(27 + recid.to_byte());
        format!("0x{}", hex_lower(&out))
    }
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An EIP-4361 message as wallets print it.
pub fn siwe_message(domain: &str, address: &str, uri: &str, chain: u64, nonce: &str) -> String {
    let issued = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    format!(
        "{domain} wants you to sign in with your Ethereum account:\n{address}\n\n\
         Sign in to StreamGate.\n\nURI: {uri}\nVersion: 1\nChain ID: {chain}\nNonce: {nonce}\n\
         Issued At: {issued}"
    )
}

/// The running stack, as `$STACK_DIR/env` describes it.
pub struct Stack {
    pub edge: String,
    pub origin: String,
    /// Origin's internal listener (`ORIGIN_INTERNAL_URL`): packaged media for edges.
    pub origin_internal: String,
    /// The edge key file (`EDGE_KEY_FILE`): what edges present to the internal listener.
    pub edge_key_file: PathBuf,
    pub s3_endpoint: String,
    pub bucket: String,
    pub bin_dir: PathBuf,
    pub config_dir: PathBuf,
    pub stack_dir: PathBuf,
    /// JSON-RPC URL of the stack's local EVM chain (anvil, chain id 31337), when it has one.
    pub evm_rpc: Option<String>,
    /// `REDIS_URL` of the stack.
    pub redis_url: String,
    pub http: reqwest::Client,
    /// Session token of the default test creator ([`Wallet::new(1)`]).
    pub session: String,
}

fn root() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("..")
}

impl Stack {
    /// Reads the stack's env file and signs in the default creator; fails the test with a
    /// clear message when no stack is up.
    pub async fn load() -> Stack {
        let mut st = Stack::load_unsigned();
        st.session = st.sign_in(&Wallet::new(1)).await;
        st
    }

    /// Reads the stack's env file, without signing in.
    pub fn load_unsigned() -> Stack {
        let dir = std::env::var_os("STACK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join(".stack"));
        let file = dir.join("env");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!(
                "no local stack ({}: {e}); run `make test`, or `make up` before `cargo test`",
                file.display()
            )
        });
        let env: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let get = |k: &str| {
            env.get(k)
                .unwrap_or_else(|| panic!("{} lacks {k}", file.display()))
                .to_string()
        };
        Stack {
            edge: get("EDGE_URL"),
            origin: get("ORIGIN_URL"),
            origin_internal: get("ORIGIN_INTERNAL_URL"),
            edge_key_file: get("EDGE_KEY_FILE").into(),
            s3_endpoint: get("S3_ENDPOINT"),
            bucket: get("S3_BUCKET"),
            bin_dir: get("STREAMGATE_BIN_DIR").into(),
            config_dir: get("STREAMGATE_CONFIG_DIR").into(),
            stack_dir: get("STACK_DIR").into(),
            evm_rpc: env.get("EVM_RPC_URL").map(|s| s.to_string()),
            redis_url: get("REDIS_URL"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            session: String::new(),
        }
    }

    /// The edge key, as edges present it (`x-streamgate-edge-key`).
    pub fn edge_key(&self) -> String {
        std::fs::read_to_string(&self.edge_key_file)
            .unwrap()
            .trim()
            .to_owned()
    }

    /// `GET {origin internal}{path}` as an edge asks for it (with the edge key).
    pub fn internal_get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.origin_internal))
            .header("x-streamgate-edge-key", self.edge_key())
    }

    /// `host:port` of origin's internal listener (what edges fetch from).
    pub fn origin_internal_addr(&self) -> String {
        self.origin_internal
            .trim_start_matches("http://")
            .to_owned()
    }

    /// `host:port` of origin: the domain sign-in messages name.
    pub fn origin_domain(&self) -> &str {
        self.origin.trim_start_matches("http://")
    }

    /// A fresh nonce.
    pub async fn nonce(&self) -> String {
        let r = self
            .http
            .post(format!("{}/v1/auth/nonce", self.origin))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "nonce");
        let v: Value = r.json().await.unwrap();
        v["nonce"].as_str().unwrap().to_owned()
    }

    /// `POST /v1/auth/siwe` with `message` signed by `wallet`.
    pub async fn post_siwe(&self, message: &str, signature: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/auth/siwe", self.origin))
            .json(&serde_json::json!({ "message": message, "signature": signature }))
            .send()
            .await
            .unwrap()
    }

    /// Signs in with SIWE on the local chain id; returns the session token.
    pub async fn sign_in(&self, wallet: &Wallet) -> String {
        let nonce = self.nonce().await;
        let msg = siwe_message(
            self.origin_domain(),
            &wallet.address,
            &self.origin,
            31337,
            &nonce,
        );
        let r = self.post_siwe(&msg, &wallet.sign(&msg)).await;
        assert_eq!(r.status(), 200, "sign in: {:?}", r.text().await);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["subject"], format!("eip155:31337:{}", wallet.address));
        v["token"].as_str().unwrap().to_owned()
    }

    /// The same stack acting as another signed-in creator (`session`).
    pub fn as_creator(&self, session: String) -> Stack {
        let mut st = Stack::load_unsigned();
        st.session = session;
        st
    }

    /// `Authorization` value of the default session.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.session)
    }

    /// `POST /v1/contents`; returns the id.
    pub async fn create_content(&self, title: &str) -> String {
        self.create_content_with_policy(title, serde_json::json!({"public": true}))
            .await
    }

    /// `POST /v1/contents` with a policy; returns the id.
    pub async fn create_content_with_policy(&self, title: &str, policy: Value) -> String {
        let r = self
            .http
            .post(format!("{}/v1/contents", self.origin))
            .header("authorization", self.bearer())
            .json(&serde_json::json!({ "title": title, "policy": policy }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create content");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["upload_url"], format!("{}/v1/uploads", self.origin));
        v["id"].as_str().unwrap().to_owned()
    }

    /// tus creation; returns the upload URL.
    pub async fn tus_create(&self, content_id: &str, length: u64) -> String {
        let meta = format!(
            "content_id {},filename {}",
            STANDARD.encode(content_id),
            STANDARD.encode("clip.mp4")
        );
        let r = self
            .http
            .post(format!("{}/v1/uploads", self.origin))
            .header("authorization", self.bearer())
            .header("tus-resumable", "1.0.0")
            .header("upload-length", length.to_string())
            .header("upload-metadata", meta)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "tus create: {:?}", r.text().await);
        r.headers()["location"].to_str().unwrap().to_owned()
    }

    /// One tus PATCH.
    pub async fn tus_patch(&self, url: &str, offset: u64, body: Vec<u8>) -> reqwest::Response {
        self.http
            .patch(url)
            .header("authorization", self.bearer())
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// tus HEAD; returns `Upload-Offset`.
    pub async fn tus_offset(&self, url: &str) -> u64 {
        let r = self
            .http
            .head(url)
            .header("authorization", self.bearer())
            .header("tus-resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        r.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Creates a content gated by `policy` and uploads `data` in one PATCH; returns the id.
    pub async fn upload_with_policy(&self, title: &str, data: &[u8], policy: Value) -> String {
        let id = self.create_content_with_policy(title, policy).await;
        let url = self.tus_create(&id, data.len() as u64).await;
        let r = self.tus_patch(&url, 0, data.to_vec()).await;
        assert_eq!(r.status(), 204, "patch: {:?}", r.text().await);
        id
    }

    /// Creates a content and uploads `data` in `chunk`-sized PATCHes; returns the id.
    pub async fn upload(&self, title: &str, data: &[u8], chunk: usize) -> String {
        let id = self.create_content(title).await;
        let url = self.tus_create(&id, data.len() as u64).await;
        let mut off = 0;
        for piece in data.chunks(chunk.max(1)) {
            let r = self.tus_patch(&url, off as u64, piece.to_vec()).await;
            assert_eq!(r.status(), 204, "patch at {off}: {:?}", r.text().await);
            off += piece.len();
            assert_eq!(
                r.headers()["upload-offset"].to_str().unwrap(),
                off.to_string()
            );
        }
        id
    }

    /// `GET /v1/contents/{id}`.
    pub async fn content(&self, id: &str) -> Value {
        let r = self
            .http
            .get(format!("{}/v1/contents/{id}", self.origin))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Polls the content until its status is `ready` or `failed`.
    pub async fn wait_done(&self, id: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let v = self.content(id).await;
            let s = v["status"].as_str().unwrap_or_default().to_owned();
            if s == "ready" || s == "failed" {
                return v;
            }
            assert!(
                start.elapsed() < timeout,
                "content {id} still {s} after {timeout:?}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Mints a playback token with the edge's CLI.
    pub fn mint(&self, content_id: &str, ttl: &str) -> String {
        let out = Command::new(self.bin_dir.join("streamgate-proxy"))
            .args(["token", "mint", "--config"])
            .arg(self.config_dir.join("proxy.toml"))
            .args(["--content", content_id, "--ttl", ttl])
            .output()
            .expect("run streamgate-proxy token mint");
        assert!(
            out.status.success(),
            "mint: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let t = String::from_utf8(out.stdout).unwrap();
        let t = t.trim();
        assert!(
            !t.is_empty() && !t.contains(char::is_whitespace),
            "token alone on stdout"
        );
        t.to_owned()
    }

    /// An S3 client with the stack's credentials.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let read = |f: &str| {
            std::fs::read_to_string(self.stack_dir.join("secrets").join(f))
                .unwrap()
                .trim()
                .to_owned()
        };
        let creds = aws_sdk_s3::config::Credentials::new(
            read("s3-access-key"),
            read("s3-secret-key"),
            None,
            None,
            "test",
        );
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&self.s3_endpoint)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}

/// Generates a clip with FFmpeg's test sources.
pub fn make_clip(width: u32, height: u32, seconds: u32, audio: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clip.mp4");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={width}x{height}:rate=25"));
    if audio {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    }
    cmd.args([
        "-t",
        &seconds.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
    ]);
    // odd sizes cannot be 4:2:0; keep them odd on purpose with 4:4:4
    if width % 2 == 1 || height % 2 == 1 {
        cmd.args(["-pix_fmt", "yuv444p"]);
    } else {
        cmd.args(["-pix_fmt", "yuv420p"]);
    }
    if audio {
        cmd.args(["-c:a", "aac", "-shortest"]);
    }
    let status = cmd.arg(&out).status().expect("run ffmpeg");
    assert!(status.success(), "ffmpeg clip generation");
    std::fs::read(out).unwrap()
}

/// Deterministic pseudo-random bytes (not a video).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One sample of a Prometheus text page (0 when absent).
pub fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

impl Stack {
    /// A key of the stack's env file.
    pub fn env_value(&self, key: &str) -> String {
        let env = std::fs::read_to_string(self.stack_dir.join("env")).unwrap();
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
            .unwrap_or_else(|| panic!("{key} missing from the stack env"))
    }

    /// The metrics page at `{url of env key}/metrics`.
    pub async fn metrics_page(&self, env_key: &str) -> String {
        let url = self.env_value(env_key);
        self.http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

// ---- chain fixtures (scripts/chain) and grants ----

/// The fixture scripts send transactions from one dev account: one at a time.
static CHAIN_TX: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs a `scripts/chain` fixture script; its stdout, trimmed.
pub fn node(script: &str, args: &[&str]) -> String {
    // A test that panicked while holding the lock leaves it poisoned, not the chain.
    let _one_at_a_time = CHAIN_TX.lock().unwrap_or_else(|p| p.into_inner());
    let path = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../scripts/chain")
    .join(script);
    let out = Command::new("node")
        .arg(path)
        .args(args)
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "{script} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Test tokens deployed on the stack's anvil.
pub struct Chain {
    pub rpc: String,
    pub erc721: String,
    pub erc1155: String,
    pub erc20: String,
}

/// Deploys fresh ERC-721/1155/20 test tokens.
pub fn deploy(st: &Stack) -> Chain {
    let rpc = st
        .evm_rpc
        .clone()
        .expect("the stack runs anvil (EVM_RPC_URL)");
    let v: Value = serde_json::from_str(&node("deploy-tokens.mjs", &[&rpc])).unwrap();
    let get = |k: &str| v[k].as_str().unwrap().to_owned();
    Chain {
        erc721: get("erc721"),
        erc1155: get("erc1155"),
        erc20: get("erc20"),
        rpc,
    }
}

/// `GET /v1/playback/{id}` at the edge, with an optional session.
pub async fn grant(st: &Stack, id: &str, session: Option<&str>) -> (u16, Value) {
    let mut req = st.http.get(format!("{}/v1/playback/{id}", st.edge));
    if let Some(s) = session {
        req = req.header("authorization", format!("Bearer {s}"));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

// ---- private processes (for tests that kill what they depend on) ----

/// A child process killed (SIGKILL) on drop.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct free loopback ports (all bound at once, then released).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<_> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// Waits until something listens on the loopback `port`.
pub fn wait_tcp(port: u16) {
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private edge (the stack's binary) over the stack's origin, with an `[entitlements]`
/// body supplied by the test (TTLs, `redis-url`, RPC maps). Killed on drop.
pub struct PrivateEdge {
    pub url: String,
    pub metrics: String,
    pub proc: Proc,
    pub log: PathBuf,
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
        let entitlements = extra;
        let dir = tempfile::tempdir().unwrap();
        let [edge_port, metrics_port] = free_ports::<2>();
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
        let out = std::fs::File::create(&log).unwrap();
        let proc = Proc(
            Command::new(st.bin_dir.join("streamgate-proxy"))
                .arg("--config")
                .arg(&conf)
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap(),
        );
        let url = format!("http://127.0.0.1:{edge_port}");
        answers(st, &url, &log).await;
        PrivateEdge {
            url,
            metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
            proc,
            log,
            conf,
            _dir: dir,
        }
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

/// Waits until a private process answers `{url}/readyz` (any status); fails the test with its
/// log when it does not within 30 s.
async fn answers(st: &Stack, url: &str, log: &Path) {
    let start = std::time::Instant::now();
    while st.http.get(format!("{url}/readyz")).send().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{url} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A private origin: the stack's `origin.toml` with its own listeners and Redis (so its rate
/// limits and event consumers touch nothing of the stack's), `[auth.rate-limit]` and
/// `[server]` lines replaced by the test's. Shares the stack's S3 bucket. Killed on drop.
pub struct PrivateOrigin {
    pub url: String,
    pub internal_url: String,
    pub proc: Proc,
    pub log: PathBuf,
    _redis: Proc,
    _dir: tempfile::TempDir,
}

impl PrivateOrigin {
    /// `server_extra`: lines added to `[server]` (`trusted-proxies = […]`); `rate_limit`: the
    /// body of `[auth.rate-limit]`.
    pub async fn start(st: &Stack, server_extra: &str, rate_limit: &str) -> PrivateOrigin {
        let (redis, redis_port) = private_redis();
        let dir = tempfile::tempdir().unwrap();
        let [port, internal] = free_ports::<2>();
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
                            "listen = \"127.0.0.1:{port}\"\ninternal-listen = \"127.0.0.1:{internal}\"\n{server_extra}\n"
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
                ("[server]", "listen" | "internal-listen") => true,
                ("[auth.rate-limit]", _) => true,
                ("[redis]", "url") => {
                    out.push_str(&format!("url = \"redis://127.0.0.1:{redis_port}\"\n"));
                    true
                }
                _ => false,
            };
            if !replaced {
                out.push_str(line);
                out.push('\n');
            }
        }
        let conf = dir.path().join("origin.toml");
        std::fs::write(&conf, out).unwrap();
        let log = dir.path().join("origin.log");
        let file = std::fs::File::create(&log).unwrap();
        let proc = Proc(
            Command::new(st.bin_dir.join("streamgate-origin"))
                .arg("--config")
                .arg(&conf)
                .stdout(file.try_clone().unwrap())
                .stderr(file)
                .spawn()
                .unwrap(),
        );
        let url = format!("http://127.0.0.1:{port}");
        answers(st, &url, &log).await;
        PrivateOrigin {
            url,
            internal_url: format!("http://127.0.0.1:{internal}"),
            proc,
            log,
            _redis: redis,
            _dir: dir,
        }
    }
}

/// A TCP forwarder from a loopback port to `target`, stopped (listener and every connection)
/// on drop: lets a test cut an edge off from origin.
pub struct Forwarder {
    pub port: u16,
    tasks: tokio::task::JoinSet<()>,
}

impl Forwarder {
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

/// Aborts the forwarder's connections when its accept loop ends.
struct AbortAll(std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>);

impl Drop for AbortAll {
    fn drop(&mut self) {
        for h in self.0.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}

/// A private `redis-server` on a free loopback port (no persistence); (process, port).
pub fn private_redis() -> (Proc, u16) {
    let port = free_port();
    let proc = Proc(
        Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--port", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server"),
    );
    wait_tcp(port);
    (proc, port)
}

/// A private three-node Redis Cluster (no replicas) on free loopback ports, slots assigned by
/// `redis-cli --cluster create`; (the nodes, their ports, the data directory).
pub fn private_redis_cluster() -> (Vec<Proc>, Vec<u16>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports::<3>().to_vec();
    let nodes = ports
        .iter()
        .map(|p| {
            let proc = Proc(
                Command::new("redis-server")
                    .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                    .args(["--port", &p.to_string(), "--cluster-enabled", "yes"])
                    .args(["--cluster-config-file", &format!("nodes-{p}.conf")])
                    .arg("--dir")
                    .arg(dir.path())
                    .stdout(std::process::Stdio::null())
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
    // Wait until every node agrees the cluster is up.
    let start = std::time::Instant::now();
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
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    (nodes, ports, dir)
}
