//! Contract-wallet sign-in against the real origin and the stack's anvil chain: EIP-1271
//! wallets (final and legacy `isValidSignature`) deployed by `scripts/chain/deploy-wallet.mjs`,
//! EIP-6492 signatures of a wallet not deployed yet, and the EOA refusals that must not change.

use std::{path::Path, process::Command};

use alloy::{
    primitives::{Address, Bytes},
    sol_types::SolValue,
};
use serde_json::Value;
use streamgate_testkit::{Stack, Wallet, siwe_message};

const SUFFIX_6492: &str = "6492649264926492649264926492649264926492649264926492649264926492";

/// Runs `deploy-wallet.mjs RPC OWNER [mode]` and returns its stdout, trimmed.
fn deploy(rpc: &str, owner: &str, mode: Option<&str>) -> String {
    let script =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../scripts/chain/deploy-wallet.mjs");
    let mut cmd = Command::new("node");
    cmd.arg(script).arg(rpc).arg(owner);
    if let Some(m) = mode {
        cmd.arg(m);
    }
    let out = cmd.output().expect("node runs");
    assert!(
        out.status.success(),
        "deploy-wallet.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn stack_with_chain() -> (Stack, String) {
    let st = Stack::load_unsigned();
    let rpc = st
        .evm_rpc
        .clone()
        .expect("the stack's env names EVM_RPC_URL (scripts/stack.sh up starts anvil)");
    (st, rpc)
}

/// POSTs a SIWE message for `address` on `chain`, signed by `signature(message)`.
async fn attempt(
    st: &Stack,
    address: &str,
    chain: u64,
    signature: impl Fn(&str) -> String,
) -> (u16, Value) {
    let msg = siwe_message(
        st.origin_domain(),
        address,
        &st.origin,
        chain,
        &st.nonce().await,
    );
    let r = st.post_siwe(&msg, &signature(&msg)).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn erc1271_wallet_signs_in_with_its_owners_signature() {
    let (st, rpc) = stack_with_chain();
    let owner = Wallet::new(3);
    let wallet = deploy(&rpc, &owner.address, None);
    assert!(wallet.starts_with("0x") && wallet.len() == 42, "{wallet}");

    let (status, v) = attempt(&st, &wallet, 31337, |m| owner.sign(m)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["subject"], format!("eip155:31337:{wallet}"));
    assert!(v["token"].as_str().is_some_and(|t| !t.is_empty()));

    // The same wallet, signed by someone who does not own it.
    let (status, v) = attempt(&st, &wallet, 31337, |m| Wallet::new(4).sign(m)).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("bad_signature")));

    // Garbage of a plausible contract-signature size: refused, not a 500.
    let (status, v) = attempt(&st, &wallet, 31337, |_| format!("0x{}", "ab".repeat(100))).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("bad_signature")));
}

#[tokio::test]
async fn legacy_only_wallet_signs_in_through_the_bytes_variant() {
    let (st, rpc) = stack_with_chain();
    let owner = Wallet::new(3);
    // LegacyTestWallet reverts on isValidSignature(bytes32,bytes): origin falls back to
    // isValidSignature(bytes,bytes) with the message bytes.
    let wallet = deploy(&rpc, &owner.address, Some("--legacy"));
    let (status, v) = attempt(&st, &wallet, 31337, |m| owner.sign(m)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["subject"], format!("eip155:31337:{wallet}"));

    let (status, v) = attempt(&st, &wallet, 31337, |m| Wallet::new(4).sign(m)).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("bad_signature")));
}

#[tokio::test]
async fn eip6492_counterfactual_wallet_signs_in_before_deployment() {
    let (st, rpc) = stack_with_chain();
    let owner = Wallet::new(3);
    let cf: Value = serde_json::from_str(&deploy(&rpc, &owner.address, Some("--counterfactual")))
        .expect("counterfactual JSON");
    let wallet = cf["address"].as_str().unwrap().to_owned();
    let factory: Address = cf["factory"].as_str().unwrap().parse().unwrap();
    let calldata: Bytes = cf["factoryCalldata"].as_str().unwrap().parse().unwrap();
    // abi.encode(factory, factoryCalldata, innerSignature) ‖ 0x6492…6492
    let wrap = |inner: String| {
        let inner: Bytes = inner.parse().unwrap();
        let head = (factory, calldata.clone(), inner).abi_encode_params();
        format!("0x{}{SUFFIX_6492}", alloy::hex::encode(head))
    };

    let (status, v) = attempt(&st, &wallet, 31337, |m| wrap(owner.sign(m))).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["subject"], format!("eip155:31337:{wallet}"));

    let (status, v) = attempt(&st, &wallet, 31337, |m| wrap(Wallet::new(4).sign(m))).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("bad_signature")));

    // The validator ran in an eth_call: nothing was deployed, so a plain (unwrapped) signature
    // still finds no contract there and is refused like any other mismatch.
    let (status, v) = attempt(&st, &wallet, 31337, |m| owner.sign(m)).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("signer_mismatch"))
    );
}

#[tokio::test]
async fn eoa_refusals_are_unchanged() {
    let (st, _) = stack_with_chain();
    let eoa = Wallet::new(5);
    // An EOA (no code) signed for by another key: still signer_mismatch after the code check.
    let (status, v) = attempt(&st, &eoa.address, 31337, |m| Wallet::new(6).sign(m)).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("signer_mismatch"))
    );
    // Chain 1 is accepted but has no RPC in the stack: no contract check, a clear reason.
    let (status, v) = attempt(&st, &eoa.address, 1, |m| Wallet::new(6).sign(m)).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("signer_mismatch"))
    );
    assert!(
        v["message"].as_str().unwrap().contains("no RPC configured"),
        "{v}"
    );
    // And the owner's own EOA signature still signs in without any RPC.
    let (status, v) = attempt(&st, &eoa.address, 31337, |m| eoa.sign(m)).await;
    assert_eq!(status, 200, "{v}");
}
