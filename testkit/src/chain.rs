//! Chain fixtures: the `scripts/chain` (EVM, anvil) and `scripts/solana` (Surfnet) scripts that
//! deploy, mint and move test tokens with the real wallet libraries.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use ed25519_dalek::SigningKey;
use serde_json::Value;

use crate::{
    proc::Proc,
    stack::{Stack, repo_root},
    wallet::solana_address,
};

/// The fixture scripts send transactions from one dev account: one at a time.
static CHAIN_TX: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs a `scripts/chain` fixture script; its stdout, trimmed.
pub fn node(script: &str, args: &[&str]) -> String {
    // A test that panicked while holding the lock leaves it poisoned, not the chain.
    let _one_at_a_time = CHAIN_TX.lock().unwrap_or_else(|p| p.into_inner());
    let path = repo_root().join("scripts/chain").join(script);
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
    /// The chain's JSON-RPC URL.
    pub rpc: String,
    /// The ERC-721 test token.
    pub erc721: String,
    /// The ERC-1155 test token.
    pub erc1155: String,
    /// The ERC-20 test token.
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

/// An offline Surfnet (`scripts/solana/surfnet.mjs`, a local Solana cluster, `localnet`), its
/// RPC and websocket URLs reported by the child itself (no port is guessed). Killed on drop.
pub struct Surfnet {
    /// The node process.
    pub proc: Proc,
    /// JSON-RPC URL.
    pub rpc: String,
    /// Websocket URL.
    pub ws: String,
}

impl Surfnet {
    /// Starts one and reads its URLs.
    pub fn start() -> Surfnet {
        let mut child = Command::new("node")
            .arg(repo_root().join("scripts/solana/surfnet.mjs"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("node scripts/solana/surfnet.mjs (run make setup)");
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let rpc = lines.next().expect("rpc line").expect("utf-8");
        let ws = lines.next().expect("ws line").expect("utf-8");
        Surfnet {
            proc: Proc::new(child),
            rpc,
            ws,
        }
    }

    /// Mints one token of a fresh SPL mint to `owner`; the mint address.
    pub fn mint_spl_to(&self, owner: &SigningKey) -> String {
        let out = Command::new("node")
            .arg(repo_root().join("scripts/solana/mint.mjs"))
            .args([&self.rpc, &self.ws, &solana_address(owner)])
            .output()
            .expect("run node scripts/solana/mint.mjs");
        assert!(
            out.status.success(),
            "mint.mjs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}
