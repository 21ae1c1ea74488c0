//! The running local stack, as `scripts/stack.sh up` describes it in `$STACK_DIR/env`: its
//! URLs, binaries and configs, and the calls tests make on it (sign-in, contents, tus uploads,
//! grants, token minting, S3, metrics).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use reqwest::Url;
use serde_json::Value;
use streamgate_loadtest::tus::{TusClient, offset_of};

use crate::wallet::{Wallet, siwe_message};

/// The repository root (every crate's tests run one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("..")
}

/// The running stack, as `$STACK_DIR/env` describes it.
pub struct Stack {
    /// The stack edge's player URL (`EDGE_URL`).
    pub edge: String,
    /// Origin's public URL (`ORIGIN_URL`).
    pub origin: String,
    /// Origin's internal listener (`ORIGIN_INTERNAL_URL`): packaged media for edges.
    pub origin_internal: String,
    /// The edge key file (`EDGE_KEY_FILE`): what edges present to the internal listener.
    pub edge_key_file: PathBuf,
    /// The S3 endpoint (`S3_ENDPOINT`).
    pub s3_endpoint: String,
    /// The bucket (`S3_BUCKET`).
    pub bucket: String,
    /// The built binaries (`STREAMGATE_BIN_DIR`).
    pub bin_dir: PathBuf,
    /// The services' configs (`STREAMGATE_CONFIG_DIR`).
    pub config_dir: PathBuf,
    /// The stack's directory (`STACK_DIR`).
    pub stack_dir: PathBuf,
    /// JSON-RPC URL of the stack's local EVM chain (anvil, chain id 31337), when it has one.
    pub evm_rpc: Option<String>,
    /// `REDIS_URL` of the stack.
    pub redis_url: String,
    /// An HTTP client (60 s timeout).
    pub http: reqwest::Client,
    /// Session token of the default test creator ([`Wallet::new(1)`]).
    pub session: String,
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
            .unwrap_or_else(|| repo_root().join(".stack"));
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

    /// The text of `url` (a metrics page, say), which must answer.
    pub async fn page(&self, url: &str) -> String {
        self.http
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// The same creator talking to another origin (a private one at `origin_url`).
    pub fn at_origin(&self, origin_url: &str) -> Stack {
        let mut st = Stack::load_unsigned();
        st.origin = origin_url.to_owned();
        st.session = self.session.clone();
        st
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
        self.create_content_with(serde_json::json!({ "title": title, "policy": policy }))
            .await
    }

    /// `POST /v1/contents` with this body (title, policy, encryption, …); returns the id.
    pub async fn create_content_with(&self, body: Value) -> String {
        let r = self
            .http
            .post(format!("{}/v1/contents", self.origin))
            .header("authorization", self.bearer())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create content");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["upload_url"], format!("{}/v1/uploads", self.origin));
        v["id"].as_str().unwrap().to_owned()
    }

    /// This creator's tus client (the one `streamgate-loadtest` uploads with).
    pub fn tus(&self) -> TusClient {
        TusClient::new(
            self.http.clone(),
            Url::parse(&format!("{}/", self.origin)).expect("ORIGIN_URL is a URL"),
            self.session.clone(),
        )
    }

    /// tus creation; returns the upload URL.
    pub async fn tus_create(&self, content_id: &str, length: u64) -> String {
        let tus = self.tus();
        let r = tus.create(content_id, length, "clip.mp4").await.unwrap();
        let location = tus.location(&r);
        assert_eq!(r.status(), 201, "tus create: {:?}", r.text().await);
        location.expect("Location").to_string()
    }

    /// One tus PATCH.
    pub async fn tus_patch(&self, url: &str, offset: u64, body: Vec<u8>) -> reqwest::Response {
        let url = Url::parse(url).expect("upload URL");
        self.tus().patch(&url, offset, body.into()).await.unwrap()
    }

    /// tus HEAD; returns `Upload-Offset`.
    pub async fn tus_offset(&self, url: &str) -> u64 {
        let url = Url::parse(url).expect("upload URL");
        let r = self.tus().head(&url).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        offset_of(&r).expect("Upload-Offset")
    }

    /// Creates a content gated by `policy` and uploads `data` in one PATCH; returns the id.
    pub async fn upload_with_policy(&self, title: &str, data: &[u8], policy: Value) -> String {
        self.upload_with(
            serde_json::json!({ "title": title, "policy": policy }),
            data,
        )
        .await
    }

    /// Creates a content from this create request body and uploads `data` in one PATCH;
    /// returns the id.
    pub async fn upload_with(&self, body: Value, data: &[u8]) -> String {
        let id = self.create_content_with(body).await;
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
        streamgate_storage::client(&streamgate_config::S3Config {
            endpoint: self.s3_endpoint.clone(),
            region: "us-east-1".into(),
            bucket: self.bucket.clone(),
            force_path_style: true,
            access_key: streamgate_config::Secret::new(read("s3-access-key")),
            secret_key: streamgate_config::Secret::new(read("s3-secret-key")),
            create_bucket: false,
        })
    }
}

impl Stack {
    /// The uploaded source of `content_id` as stored in S3 (`uploads/{id}/source`), or `None`
    /// when there is none.
    pub async fn stored_source(&self, content_id: &str) -> Option<Vec<u8>> {
        let obj = self
            .s3()
            .get_object()
            .bucket(&self.bucket)
            .key(format!("uploads/{content_id}/source"))
            .send()
            .await
            .ok()?;
        Some(obj.body.collect().await.unwrap().into_bytes().to_vec())
    }

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

/// `GET /v1/playback/{id}` at the stack's edge, with an optional session.
pub async fn grant(st: &Stack, id: &str, session: Option<&str>) -> (u16, Value) {
    let mut req = st.http.get(format!("{}/v1/playback/{id}", st.edge));
    if let Some(s) = session {
        req = req.header("authorization", format!("Bearer {s}"));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}
