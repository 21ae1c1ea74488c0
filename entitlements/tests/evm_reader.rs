//! `AlloyEvmReader` against a real anvil node per test: ERC-721/1155/20 answers before and
//! after mints and transfers, the same batch with and without Multicall3 (and how many RPC
//! requests each costs), block choice, endpoint failover and failing closed.
//!
//! Needs `make setup` (anvil and the fixture scripts' node modules under scripts/chain).

#[path = "utils/anvil.rs"]
mod anvil;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anvil::{Anvil, CHAIN, Tokens, hex_address};
use streamgate_entitlements::{
    AlloyEvmReader, BlockChoice, EvmAnswer, EvmChains, EvmQuery, EvmReader, ReadError,
};

const A: [u8; 20] = [0xa1; 20];
const B: [u8; 20] = [0xb2; 20];
const C: [u8; 20] = [0xc3; 20];

fn reader_with(urls: Vec<String>, timeout: Duration, block: BlockChoice) -> AlloyEvmReader {
    AlloyEvmReader::new(EvmChains {
        chains: HashMap::from([(CHAIN, urls)]),
        timeout,
        block,
    })
    .expect("valid reader config")
}

fn reader(url: &str) -> AlloyEvmReader {
    reader_with(
        vec![url.into()],
        Duration::from_secs(5),
        BlockChoice::Latest,
    )
}

/// A uint256 (big-endian) from a u128.
fn uint(n: u128) -> [u8; 32] {
    let mut w = [0; 32];
    w[16..].copy_from_slice(&n.to_be_bytes());
    w
}

fn hex(a: [u8; 20]) -> String {
    hex_address(a)
}

fn balance721(t: &Tokens, owner: [u8; 20]) -> EvmQuery {
    EvmQuery::Erc721Balance {
        contract: t.erc721,
        owner,
    }
}

fn owner_of(t: &Tokens, id: u128) -> EvmQuery {
    EvmQuery::Erc721OwnerOf {
        contract: t.erc721,
        token_id: uint(id),
    }
}

fn balance1155(t: &Tokens, owner: [u8; 20], id: u128) -> EvmQuery {
    EvmQuery::Erc1155Balance {
        contract: t.erc1155,
        owner,
        token_id: uint(id),
    }
}

fn balance20(t: &Tokens, owner: [u8; 20]) -> EvmQuery {
    EvmQuery::Erc20Balance {
        contract: t.erc20,
        owner,
    }
}

async fn read(r: &AlloyEvmReader, queries: Vec<EvmQuery>) -> Vec<EvmAnswer> {
    r.read(CHAIN, queries).await.expect("read answers")
}

/// A URL whose port is closed: connection refused at once.
/// A URL nothing listens at: a port reserved for the rest of this test process.
fn dead_url() -> String {
    let (reserved, port) = streamgate_testkit::dead_port();
    std::mem::forget(reserved);
    format!("http://127.0.0.1:{port}/v3/SECRET-KEY")
}

/// A URL that accepts connections and never answers (the listener lives as long as the guard).
async fn hanging_url() -> (tokio::net::TcpListener, String) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/SECRET-KEY", l.local_addr().unwrap());
    (l, url)
}

#[tokio::test]
async fn erc721_balance_owner_of_and_transfer() {
    let node = Anvil::start().await;
    let t = node.deploy_tokens();
    let r = reader(&node.url);
    let batch = |t: &Tokens| {
        vec![
            balance721(t, A),
            balance721(t, B),
            owner_of(t, 7),
            owner_of(t, 8),
        ]
    };

    assert_eq!(
        read(&r, batch(&t)).await,
        [
            EvmAnswer::Uint(uint(0)),
            EvmAnswer::Uint(uint(0)),
            EvmAnswer::Reverted,
            EvmAnswer::Reverted
        ]
    );

    node.tokens("mint", "erc721", t.erc721, &[&hex(A), "7"]);
    assert_eq!(
        read(&r, batch(&t)).await,
        [
            EvmAnswer::Uint(uint(1)),
            EvmAnswer::Uint(uint(0)),
            EvmAnswer::Address(A),
            EvmAnswer::Reverted
        ],
        "minted 7 to A; 8 does not exist"
    );

    node.tokens("transfer", "erc721", t.erc721, &[&hex(A), &hex(B), "7"]);
    assert_eq!(
        read(&r, batch(&t)).await,
        [
            EvmAnswer::Uint(uint(0)),
            EvmAnswer::Uint(uint(1)),
            EvmAnswer::Address(B),
            EvmAnswer::Reverted
        ],
        "A sold 7 to B"
    );
}

#[tokio::test]
async fn erc1155_and_erc20_balance_boundaries() {
    let node = Anvil::start().await;
    let t = node.deploy_tokens();
    let r = reader(&node.url);
    node.tokens("mint", "erc1155", t.erc1155, &[&hex(A), "5", "3"]);
    node.tokens("mint", "erc1155", t.erc1155, &[&hex(B), "5", "1"]);
    node.tokens(
        "mint",
        "erc1155",
        t.erc1155,
        &[&hex(C), "9", &u128::MAX.to_string()],
    );
    node.tokens("mint", "erc20", t.erc20, &[&hex(A), "1000000000000000000"]);
    node.tokens("mint", "erc20", t.erc20, &[&hex(B), "1"]);

    let queries = vec![
        balance1155(&t, C, 5),
        balance1155(&t, B, 5),
        balance1155(&t, A, 5),
        balance1155(&t, A, 6),
        balance1155(&t, C, 9),
        balance20(&t, C),
        balance20(&t, B),
        balance20(&t, A),
    ];
    assert_eq!(
        read(&r, queries.clone()).await,
        [
            EvmAnswer::Uint(uint(0)),
            EvmAnswer::Uint(uint(1)),
            EvmAnswer::Uint(uint(3)),
            EvmAnswer::Uint(uint(0)),
            EvmAnswer::Uint(uint(u128::MAX)),
            EvmAnswer::Uint(uint(0)),
            EvmAnswer::Uint(uint(1)),
            EvmAnswer::Uint(uint(1_000_000_000_000_000_000)),
        ]
    );

    node.tokens(
        "transfer",
        "erc1155",
        t.erc1155,
        &[&hex(A), &hex(C), "5", "1"],
    );
    node.tokens("transfer", "erc20", t.erc20, &[&hex(B), &hex(C), "1"]);
    assert_eq!(
        read(&r, queries).await,
        [
            EvmAnswer::Uint(uint(1)),
            EvmAnswer::Uint(uint(1)),
            EvmAnswer::Uint(uint(2)),
            EvmAnswer::Uint(uint(0)),
            EvmAnswer::Uint(uint(u128::MAX)),
            EvmAnswer::Uint(uint(1)),
            EvmAnswer::Uint(uint(0)),
            EvmAnswer::Uint(uint(1_000_000_000_000_000_000)),
        ],
        "after A→C one ERC-1155 #5 and B→C one ERC-20 unit"
    );
}

/// A mixed batch with every kind of answer, including calls that revert (no such token,
/// `balanceOf(0x0)`) and calls to an address without code.
fn mixed_batch(t: &Tokens) -> Vec<EvmQuery> {
    let no_code = [0x42; 20];
    vec![
        balance721(t, A),
        owner_of(t, 1),
        owner_of(t, 2),
        balance721(t, [0; 20]),
        balance1155(t, A, 1),
        balance1155(t, B, 1),
        balance20(t, A),
        balance20(t, B),
        EvmQuery::Erc20Balance {
            contract: no_code,
            owner: A,
        },
        EvmQuery::Erc721OwnerOf {
            contract: no_code,
            token_id: uint(1),
        },
        // An ERC-20 asked an ERC-721 question: `ownerOf` is not there, the call reverts.
        EvmQuery::Erc721OwnerOf {
            contract: t.erc20,
            token_id: uint(1),
        },
    ]
}

#[tokio::test]
async fn multicall_answers_the_same_batch_in_one_request() {
    let node = Anvil::start().await;
    let t = node.deploy_tokens();
    node.tokens("mint", "erc721", t.erc721, &[&hex(A), "1"]);
    node.tokens("mint", "erc1155", t.erc1155, &[&hex(B), "1", "4"]);
    node.tokens("mint", "erc20", t.erc20, &[&hex(A), "12"]);
    let batch = mixed_batch(&t);
    let n = batch.len() as u64;
    let expected = vec![
        EvmAnswer::Uint(uint(1)),
        EvmAnswer::Address(A),
        EvmAnswer::Reverted,
        EvmAnswer::Reverted,
        EvmAnswer::Uint(uint(0)),
        EvmAnswer::Uint(uint(4)),
        EvmAnswer::Uint(uint(12)),
        EvmAnswer::Uint(uint(0)),
        EvmAnswer::Reverted,
        EvmAnswer::Reverted,
        EvmAnswer::Reverted,
    ];

    // No Multicall3 on the chain: one eth_call per query (after one eth_getCode probe).
    let plain = reader(&node.url);
    let t0 = Instant::now();
    assert_eq!(read(&plain, batch.clone()).await, expected);
    let first = t0.elapsed();
    assert_eq!(plain.multicall(CHAIN), Some(false));
    assert_eq!(plain.rpc_calls(), 1 + n, "probe + one eth_call per query");
    let t0 = Instant::now();
    assert_eq!(read(&plain, batch.clone()).await, expected);
    let plain_time = t0.elapsed();
    assert_eq!(plain.rpc_calls(), 1 + 2 * n, "the probe is cached");

    // With Multicall3: one aggregate3 eth_call per batch.
    node.place_multicall();
    let batched = reader(&node.url);
    assert_eq!(read(&batched, batch.clone()).await, expected);
    assert_eq!(batched.multicall(CHAIN), Some(true));
    assert_eq!(batched.rpc_calls(), 2, "probe + one aggregate3");
    let t0 = Instant::now();
    assert_eq!(read(&batched, batch.clone()).await, expected);
    let multicall_time = t0.elapsed();
    assert_eq!(batched.rpc_calls(), 3);

    // The reader made before Multicall3 existed keeps its (cached) answer: still correct.
    assert_eq!(read(&plain, batch.clone()).await, expected);

    // Batches over 256 queries are split: 600 → 3 aggregate3 calls.
    let big: Vec<_> = batch.iter().cycle().take(600).cloned().collect();
    let answers = read(&batched, big).await;
    assert_eq!(batched.rpc_calls(), 6);
    let again: Vec<_> = expected.iter().cycle().take(600).cloned().collect();
    assert_eq!(answers, again);
    eprintln!(
        "evm_reader: {n}-query batch: first (with probe) {first:?}, eth_calls {plain_time:?}, \
         aggregate3 {multicall_time:?}"
    );
}

#[tokio::test]
async fn reads_at_the_configured_block() {
    let node = Anvil::start().await;
    node.place_multicall();
    let t = node.deploy_tokens();
    let latest = reader(&node.url);
    let behind = reader_with(
        vec![node.url.clone()],
        Duration::from_secs(5),
        BlockChoice::LatestMinus(1),
    );
    let far_behind = reader_with(
        vec![node.url.clone()],
        Duration::from_secs(5),
        BlockChoice::LatestMinus(1_000),
    );
    let finalized = reader_with(
        vec![node.url.clone()],
        Duration::from_secs(5),
        BlockChoice::Finalized,
    );
    node.tokens("mint", "erc721", t.erc721, &[&hex(A), "3"]);
    let q = || vec![balance721(&t, A), owner_of(&t, 3)];

    assert_eq!(
        read(&latest, q()).await,
        [EvmAnswer::Uint(uint(1)), EvmAnswer::Address(A)]
    );
    assert_eq!(
        read(&behind, q()).await,
        [EvmAnswer::Uint(uint(0)), EvmAnswer::Reverted],
        "one block back the mint has not happened"
    );
    // eth_blockNumber + probe + aggregate3.
    assert_eq!(behind.rpc_calls(), 3);
    node.mine().await;
    assert_eq!(
        read(&behind, q()).await,
        [EvmAnswer::Uint(uint(1)), EvmAnswer::Address(A)],
        "one confirmation later"
    );
    assert_eq!(behind.rpc_calls(), 5, "eth_blockNumber once per batch");

    // Block 0: neither the token nor Multicall3 existed. The aggregate3 answer is empty, so the
    // reader falls back to single calls, which find no code: every answer is Reverted.
    assert_eq!(
        read(&far_behind, q()).await,
        [EvmAnswer::Reverted, EvmAnswer::Reverted]
    );
    assert_eq!(far_behind.rpc_calls(), 1 + 1 + 1 + 2);
    // anvil's `finalized` trails `latest` by 64 blocks: block 0 on this young chain.
    assert_eq!(
        read(&finalized, q()).await,
        [EvmAnswer::Reverted, EvmAnswer::Reverted]
    );
}

#[tokio::test]
async fn fails_over_to_the_next_endpoint() {
    let node = Anvil::start().await;
    let t = node.deploy_tokens();
    node.tokens("mint", "erc721", t.erc721, &[&hex(A), "1"]);
    let q = vec![balance721(&t, A), owner_of(&t, 1), owner_of(&t, 2)];
    let want = [
        EvmAnswer::Uint(uint(1)),
        EvmAnswer::Address(A),
        EvmAnswer::Reverted,
    ];

    let r = reader_with(
        vec![dead_url(), node.url.clone()],
        Duration::from_secs(2),
        BlockChoice::Latest,
    );
    assert_eq!(read(&r, q.clone()).await, want);
    // Each request (probe + 3 eth_calls) tried the dead endpoint first. A revert is an answer
    // of the live endpoint, not a reason to move on.
    assert_eq!(r.rpc_calls(), 2 * 4);

    let (_hang, hanging) = hanging_url().await;
    let timeout = Duration::from_millis(300);
    let r = reader_with(
        vec![hanging, node.url.clone()],
        timeout,
        BlockChoice::Latest,
    );
    let t0 = Instant::now();
    assert_eq!(read(&r, q).await, want);
    let took = t0.elapsed();
    assert!(took >= timeout, "the hanging endpoint was waited for");
    // The probe waits once; the three concurrent eth_calls wait once together.
    assert!(took < timeout * 3, "{took:?}");
}

#[tokio::test]
async fn every_endpoint_down_is_unavailable_quickly() {
    let timeout = Duration::from_millis(400);
    let q = vec![EvmQuery::Erc20Balance {
        contract: [1; 20],
        owner: A,
    }];

    let r = reader_with(vec![dead_url(), dead_url()], timeout, BlockChoice::Latest);
    let t0 = Instant::now();
    let e = r.read(CHAIN, q.clone()).await.unwrap_err();
    let took = t0.elapsed();
    let ReadError::Unavailable { chain, last } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(chain, "eip155:31337");
    assert!(last.starts_with("endpoint 1: "), "{last}");
    assert!(!e.to_string().contains("SECRET-KEY"), "{e}");
    assert_eq!(r.rpc_calls(), 4, "two endpoints, two rounds");
    assert!(took < timeout, "{took:?}");
    assert_eq!(r.multicall(CHAIN), None, "a failed probe is not cached");

    // A hanging endpoint is not retried: its timeout is paid once.
    let (_hang, hanging) = hanging_url().await;
    let r = reader_with(vec![hanging, dead_url()], timeout, BlockChoice::Latest);
    let t0 = Instant::now();
    let e = r.read(CHAIN, q).await.unwrap_err();
    let took = t0.elapsed();
    assert!(matches!(e, ReadError::Unavailable { .. }), "{e:?}");
    assert!(!e.to_string().contains("SECRET-KEY"), "{e}");
    assert_eq!(r.rpc_calls(), 3, "hanging once, dead twice");
    assert!(took >= timeout && took < timeout * 2, "{took:?}");
}

#[tokio::test]
async fn unknown_chain_and_empty_batch() {
    let r = reader(&dead_url());
    assert_eq!(
        r.read(1, vec![]).await.unwrap_err(),
        ReadError::UnknownChain("eip155:1".into())
    );
    assert_eq!(r.read(CHAIN, vec![]).await.unwrap(), vec![]);
    assert_eq!(r.rpc_calls(), 0, "an empty batch sends nothing");
}
