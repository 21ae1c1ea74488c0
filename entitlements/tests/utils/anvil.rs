//! A private anvil node per test and the `scripts/chain` fixture scripts that deploy, mint and
//! move test tokens on it. Included with `#[path]` by the tests that need a chain (not from
//! `utils/mod.rs`, so the vector tests do not build it).

use std::{path::PathBuf, process::Command};

use alloy::providers::{Provider, RootProvider};

/// anvil's chain id.
pub(crate) const CHAIN: u64 = 31337;

fn chain_dir() -> PathBuf {
    streamgate_testkit::repo_root().join("scripts/chain")
}

/// A real local EVM node (`streamgate_testkit::Anvil`: anvil from scripts/chain on a reserved
/// port), with the fixture scripts that deploy, mint and move test tokens on it.
pub(crate) struct Anvil {
    _node: streamgate_testkit::Anvil,
    /// Its JSON-RPC URL.
    pub(crate) url: String,
}

impl Anvil {
    /// Starts anvil and waits until it answers `eth_chainId`.
    pub(crate) async fn start() -> Self {
        let node = streamgate_testkit::Anvil::start().await;
        let url = node.url.clone();
        Anvil { _node: node, url }
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
