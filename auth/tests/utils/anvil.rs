//! A private anvil node per test and the `scripts/chain` fixture scripts that deploy, mint and
//! move test tokens on it. Included with `#[path]` by the tests that need a chain (not from
//! `utils/mod.rs`, so the vector tests do not build it).

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::providers::{Provider, RootProvider};

/// anvil's chain id.
pub(crate) const CHAIN: u64 = 31337;

/// A real local EVM node (anvil, installed by `make setup` under scripts/chain) on a free
/// loopback port, killed when dropped.
pub(crate) struct Anvil {
    child: Child,
    /// Its JSON-RPC URL.
    pub(crate) url: String,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chain_dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("../scripts/chain")
}

/// A port nothing listens on (bound, then released).
pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    l.local_addr().expect("bound socket has an address").port()
}

impl Anvil {
    /// Starts anvil and waits (up to 10 s) until it answers `eth_chainId`.
    pub(crate) async fn start() -> Self {
        let bin = chain_dir().join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
        let port = free_port();
        let child = Command::new(&bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--silent",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}; run `make setup`", bin.display()));
        let anvil = Anvil {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let provider = anvil.provider();
        let deadline = Instant::now() + Duration::from_secs(10);
        while provider.get_chain_id().await.ok() != Some(CHAIN) {
            assert!(Instant::now() < deadline, "anvil did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anvil
    }

    /// A plain provider for the test's own requests (mining, block numbers).
    pub(crate) fn provider(&self) -> RootProvider {
        RootProvider::new_http(self.url.parse().expect("anvil url"))
    }

    /// Mines one empty block.
    pub(crate) async fn mine(&self) {
        let _: String = self
            .provider()
            .raw_request("evm_mine".into(), ())
            .await
            .expect("evm_mine");
    }

    /// Runs `node scripts/chain/<script> <url> args…`, returns its stdout; panics with its
    /// stderr on failure.
    pub(crate) fn script(&self, script: &str, args: &[&str]) -> String {
        let out = Command::new("node")
            .arg(chain_dir().join(script))
            .args(args)
            .output()
            .expect("node on PATH");
        assert!(
            out.status.success(),
            "{script} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Deploys the test tokens (`deploy-tokens.mjs`).
    pub(crate) fn deploy_tokens(&self) -> Tokens {
        let out = self.script("deploy-tokens.mjs", &[&self.url]);
        let json: serde_json::Value = serde_json::from_str(&out).expect("deploy-tokens JSON");
        let get = |k: &str| parse_address(json[k].as_str().expect("address field"));
        Tokens {
            erc721: get("erc721"),
            erc1155: get("erc1155"),
            erc20: get("erc20"),
        }
    }

    /// Puts Multicall3 at its canonical address (`multicall.mjs`).
    pub(crate) fn place_multicall(&self) {
        self.script("multicall.mjs", &[&self.url]);
    }

    /// `tokens.mjs mint|transfer URL KIND CONTRACT args…`.
    pub(crate) fn tokens(&self, cmd: &str, kind: &str, contract: [u8; 20], args: &[&str]) {
        let contract = hex_address(contract);
        let mut all = vec![cmd, self.url.as_str(), kind, contract.as_str()];
        all.extend_from_slice(args);
        self.script("tokens.mjs", &all);
    }
}

/// The test tokens' addresses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tokens {
    pub(crate) erc721: [u8; 20],
    pub(crate) erc1155: [u8; 20],
    pub(crate) erc20: [u8; 20],
}

/// `0x…` (any case) → 20 bytes.
pub(crate) fn parse_address(s: &str) -> [u8; 20] {
    let bytes = alloy::hex::decode(s).expect("hex address");
    bytes.try_into().expect("20-byte address")
}

/// 20 bytes → `0x…` lowercase.
pub(crate) fn hex_address(a: [u8; 20]) -> String {
    format!("0x{}", alloy::hex::encode(a))
}
