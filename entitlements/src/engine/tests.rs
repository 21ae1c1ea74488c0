//! The engine against table-driven readers that count their calls: batching (one call per
//! chain), concurrency across chains, short-circuit and fail-closed semantics.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::sync::Barrier;

use super::*;
use crate::{
    chain::{EvmAnswer, EvmQuery, ReadFuture},
    solana::{SolanaAnswer, SolanaQuery},
    values::{SolanaChain, Uint256},
};
use streamgate_auth::siwe::to_eip55;

const ME: [u8; 20] = [0x11; 20];
const OTHER: [u8; 20] = [0x22; 20];
const NFT: [u8; 20] = [0xaa; 20];
const SFT: [u8; 20] = [0xbb; 20];
const COIN: [u8; 20] = [0xcc; 20];
const SOL_ME: [u8; 32] = [5; 32];
const MINT: [u8; 32] = [6; 32];
const COLLECTION: [u8; 32] = [7; 32];

fn me(chain: u64) -> String {
    format!("eip155:{chain}:{}", to_eip55(&ME))
}
fn sol_me() -> String {
    format!(
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:{}",
        bs58::encode(SOL_ME).into_string()
    )
}
fn hex(a: &[u8; 20]) -> String {
    format!("0x{}", ::hex::encode(a))
}
fn b58(k: &[u8; 32]) -> String {
    bs58::encode(k).into_string()
}
fn u(v: u64) -> U256 {
    Uint256::from_u64(v).to_be_bytes()
}
type U256 = [u8; 32];

fn policy(v: Value) -> Policy {
    Policy::parse(&v).unwrap()
}
fn nft(chain: u64) -> Value {
    json!({"erc721": {"chain": format!("eip155:{chain}"), "contract": hex(&NFT)}})
}

/// Answers from a table (unlisted balances are 0, unlisted `ownerOf` reverts), fails the
/// chains in `down`, records every call; with a barrier, each call waits for the others.
#[derive(Default)]
struct TableEvm {
    table: HashMap<(u64, EvmQuery), EvmAnswer>,
    down: HashSet<u64>,
    calls: Mutex<Vec<(u64, Vec<EvmQuery>)>>,
    barrier: Option<Arc<Barrier>>,
    /// Answer this many fewer than asked (a broken reader).
    short: usize,
}

impl TableEvm {
    fn with(mut self, chain: u64, q: EvmQuery, a: EvmAnswer) -> Self {
        self.table.insert((chain, q), a);
        self
    }
    fn down(mut self, chain: u64) -> Self {
        self.down.insert(chain);
        self
    }
    fn calls(&self) -> Vec<(u64, Vec<EvmQuery>)> {
        self.calls.lock().unwrap().clone()
    }
}

impl EvmReader for TableEvm {
    fn read(&self, chain_id: u64, queries: Vec<EvmQuery>) -> ReadFuture<'_, EvmAnswer> {
        self.calls.lock().unwrap().push((chain_id, queries.clone()));
        Box::pin(async move {
            if let Some(b) = &self.barrier {
                b.wait().await;
            }
            if self.down.contains(&chain_id) {
                return Err(ReadError::Unavailable {
                    chain: format!("eip155:{chain_id}"),
                    last: "timeout".into(),
                });
            }
            let n = queries.len().saturating_sub(self.short);
            Ok((queries.into_iter().take(n))
                .map(|q| match self.table.get(&(chain_id, q.clone())) {
                    Some(a) => a.clone(),
                    None if matches!(q, EvmQuery::Erc721OwnerOf { .. }) => EvmAnswer::Reverted,
                    None => EvmAnswer::Uint([0; 32]),
                })
                .collect())
        })
    }
}

#[derive(Default)]
struct TableSolana {
    table: HashMap<SolanaQuery, SolanaAnswer>,
    calls: Mutex<Vec<(String, Vec<SolanaQuery>)>>,
}

impl SolanaReader for TableSolana {
    fn read(
        &self,
        cluster: &SolanaChain,
        queries: Vec<SolanaQuery>,
    ) -> ReadFuture<'_, SolanaAnswer> {
        self.calls
            .lock()
            .unwrap()
            .push((cluster.to_string(), queries.clone()));
        Box::pin(async move {
            Ok(queries
                .iter()
                .map(|q| match (self.table.get(q), q) {
                    (Some(a), _) => *a,
                    (None, SolanaQuery::TokenBalance { .. }) => SolanaAnswer::Amount(0),
                    (None, SolanaQuery::CollectionMember { .. }) => SolanaAnswer::Bool(false),
                })
                .collect())
        })
    }
}

async fn eval(p: &Policy, subject: &str, evm: &TableEvm) -> Result<Decision, EvalError> {
    evaluate(p, subject, evm, None).await
}

#[tokio::test]
async fn owner_and_public_need_no_reads() {
    let evm = TableEvm::default();
    let private = policy(json!({"all": [{"public": false}, nft(1)]}));
    let owner = format!("eip155:1:{}", hex(&ME)); // lowercase: still the owner
    assert!(is_owner(&me(1), Some(&owner)));
    // The owner on another chain is another account.
    assert!(!is_owner(&me(137), Some(&owner)));
    assert!(!is_owner(&me(1), None));
    assert!(!is_owner("not an account", Some(&owner)));
    assert!(!is_owner(&me(1), Some("garbage")));
    // The policy alone never knows the owner: the owner's account is refused like anyone's
    // (no reads needed), so an owner's "yes" can never be cached for the policy.
    let d = eval(&private, &me(1), &evm).await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.reason, "policy.all[0].public: private (owner only)");
    let d = eval(
        &policy(json!({"any": [nft(1), {"public": true}]})),
        &me(5),
        &evm,
    )
    .await
    .unwrap();
    assert!(d.allowed);
    assert_eq!(d.reason, "policy.any[1].public: public");
    assert!(evm.calls().is_empty());
}

#[tokio::test]
async fn allow_lists_compare_caip10_with_the_chain() {
    let evm = TableEvm::default();
    let p = policy(
        json!({"allow": [format!("eip155:1:{}", hex(&ME).to_uppercase().replace("0X", "0x")), sol_me()]}),
    );
    let d = eval(&p, &me(1), &evm).await.unwrap();
    assert!(d.allowed, "{d:?}");
    assert!(
        d.reason.starts_with("policy.allow: eip155:1:0x1111"),
        "{}",
        d.reason
    );
    let d = eval(&p, &me(137), &evm).await.unwrap();
    assert!(!d.allowed);
    assert!(d.reason.contains("is not listed"));
    // `solana:mainnet:…` in the list is the subject `solana:5eykt4Us…:…`.
    let by_name = policy(json!({"allow": [format!("solana:mainnet:{}", b58(&SOL_ME))]}));
    assert!(eval(&by_name, &sol_me(), &evm).await.unwrap().allowed);
    let devnet = format!("solana:devnet:{}", b58(&SOL_ME));
    assert!(!eval(&by_name, &devnet, &evm).await.unwrap().allowed);
    assert!(evm.calls().is_empty());
}

#[tokio::test]
async fn every_read_is_batched_into_one_call_per_chain() {
    let p = policy(json!({"any": [
        {"erc721": {"chain": "eip155:1", "contract": hex(&NFT), "token_ids": ["1", "42"]}},
        {"erc1155": {"chain": "eip155:1", "contract": hex(&SFT), "token_id": "7", "min_balance": 2}},
        {"all": [{"erc20": {"chain": "eip155:137", "contract": hex(&COIN), "min_balance": "1000000000000000000"}}, nft(137)]},
        nft(137),
        {"erc20": {"chain": "eip155:1", "contract": hex(&COIN), "min_balance": 5}},
    ]}));
    let evm = TableEvm::default()
        .with(
            1,
            EvmQuery::Erc721OwnerOf {
                contract: NFT,
                token_id: u(1),
            },
            EvmAnswer::Address(OTHER),
        )
        .with(
            1,
            EvmQuery::Erc1155Balance {
                contract: SFT,
                owner: ME,
                token_id: u(7),
            },
            EvmAnswer::Uint(u(1)),
        )
        .with(
            1,
            EvmQuery::Erc20Balance {
                contract: COIN,
                owner: ME,
            },
            EvmAnswer::Uint(u(4)),
        );
    let d = eval(&p, &me(10), &evm).await.unwrap();
    assert!(!d.allowed, "{d:?}");
    assert!(
        d.reason
            .starts_with("policy.any: no rule matched (policy.any[0].erc721: owns none"),
        "{}",
        d.reason
    );
    assert!(d.reason.contains(
        "policy.any[2].all[0].erc20: does not hold at least 1000000000000000000 of ERC-20"
    ));
    let calls = evm.calls();
    assert_eq!(calls.len(), 2, "one call per chain: {calls:?}");
    let by_chain: HashMap<u64, Vec<EvmQuery>> = calls.into_iter().collect();
    assert_eq!(
        by_chain[&1],
        vec![
            EvmQuery::Erc721OwnerOf {
                contract: NFT,
                token_id: u(1)
            },
            EvmQuery::Erc721OwnerOf {
                contract: NFT,
                token_id: u(42)
            },
            EvmQuery::Erc1155Balance {
                contract: SFT,
                owner: ME,
                token_id: u(7)
            },
            EvmQuery::Erc20Balance {
                contract: COIN,
                owner: ME
            },
        ]
    );
    // The same balanceOf, needed by two rules, is asked once.
    assert_eq!(
        by_chain[&137],
        vec![
            EvmQuery::Erc20Balance {
                contract: COIN,
                owner: ME
            },
            EvmQuery::Erc721Balance {
                contract: NFT,
                owner: ME
            },
        ]
    );

    // Thresholds are ≥, and ownerOf of any listed id grants.
    let evm = TableEvm::default().with(
        1,
        EvmQuery::Erc20Balance {
            contract: COIN,
            owner: ME,
        },
        EvmAnswer::Uint(u(5)),
    );
    let d = eval(&p, &me(1), &evm).await.unwrap();
    assert_eq!(
        d.reason,
        format!(
            "policy.any[4].erc20: holds at least 5 of ERC-20 {} on eip155:1",
            to_eip55(&COIN)
        )
    );
    let evm = TableEvm::default().with(
        1,
        EvmQuery::Erc721OwnerOf {
            contract: NFT,
            token_id: u(42),
        },
        EvmAnswer::Address(ME),
    );
    let d = eval(&p, &me(1), &evm).await.unwrap();
    assert_eq!(
        d.reason,
        format!(
            "policy.any[0].erc721: owns token 42 of ERC-721 {} on eip155:1",
            to_eip55(&NFT)
        )
    );
    assert_eq!(evm.calls().len(), 2);
}

#[tokio::test]
async fn chains_are_read_concurrently() {
    // Each call waits until both chains have been called: sequential reads would never finish.
    let evm = TableEvm {
        barrier: Some(Arc::new(Barrier::new(2))),
        ..TableEvm::default()
    }
    .with(
        137,
        EvmQuery::Erc721Balance {
            contract: NFT,
            owner: ME,
        },
        EvmAnswer::Uint(u(1)),
    );
    let p = policy(json!({"any": [nft(1), nft(137)]}));
    let d = tokio::time::timeout(Duration::from_secs(5), eval(&p, &me(1), &evm))
        .await
        .expect("chains read one after the other")
        .unwrap();
    assert!(d.allowed);
    assert_eq!(evm.calls().len(), 2);
}

#[tokio::test]
async fn a_failed_read_fails_closed_unless_the_answer_is_known_anyway() {
    let held137 = || {
        TableEvm::default().down(1).with(
            137,
            EvmQuery::Erc721Balance {
                contract: NFT,
                owner: ME,
            },
            EvmAnswer::Uint(u(1)),
        )
    };
    // any: another chain that answered grants.
    let evm = held137();
    let d = eval(&policy(json!({"any": [nft(1), nft(137)]})), &me(1), &evm)
        .await
        .unwrap();
    assert!(d.allowed);
    assert!(
        d.reason.starts_with("policy.any[1].erc721: holds a token"),
        "{}",
        d.reason
    );
    // any: an allow-list hit grants without reading at all.
    let evm = held137();
    let p = policy(json!({"any": [nft(1), {"allow": [me(1)]}]}));
    assert!(eval(&p, &me(1), &evm).await.unwrap().allowed);
    assert!(evm.calls().is_empty());
    // any: nothing else holds → undecidable, not denied.
    let evm = held137();
    let p = policy(json!({"any": [nft(1), {"allow": [me(5)]}]}));
    let e = eval(&p, &me(1), &evm).await.unwrap_err();
    assert!(
        matches!(&e, EvalError::Unavailable(ReadError::Unavailable { chain, .. }) if chain == "eip155:1"),
        "{e}"
    );
    assert_eq!(e.code(), "entitlement_unavailable");
    // all: a definite no elsewhere denies; a yes elsewhere leaves it undecidable.
    let evm = held137();
    let coin137 =
        json!({"erc20": {"chain": "eip155:137", "contract": hex(&COIN), "min_balance": 1}});
    let d = eval(&policy(json!({"all": [nft(1), coin137]})), &me(1), &evm)
        .await
        .unwrap();
    assert!(!d.allowed);
    assert!(
        d.reason
            .starts_with("policy.all[1].erc20: does not hold a token"),
        "{}",
        d.reason
    );
    let evm = held137();
    assert!(
        eval(&policy(json!({"all": [nft(1), nft(137)]})), &me(1), &evm)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn branches_decided_without_reads_are_not_read() {
    let evm = TableEvm::default();
    let p = policy(json!({"any": [nft(1), {"all": [{"public": false}, nft(137)]}]}));
    assert!(!eval(&p, &me(1), &evm).await.unwrap().allowed);
    assert_eq!(evm.calls().iter().map(|c| c.0).collect::<Vec<_>>(), vec![1]);
    let evm = TableEvm::default();
    assert!(
        !eval(
            &policy(json!({"all": [{"public": false}, nft(1)]})),
            &me(1),
            &evm
        )
        .await
        .unwrap()
        .allowed
    );
    assert!(evm.calls().is_empty());

    // A rule left unread never speaks for its branch, even when its chain is read for another.
    let evm = TableEvm::default();
    let ids = json!({"erc721": {"chain": "eip155:1", "contract": hex(&NFT), "token_ids": ["3"]}});
    let coin = json!({"erc20": {"chain": "eip155:1", "contract": hex(&COIN), "min_balance": 1}});
    let p = policy(json!({"any": [{"all": [ids, {"public": false}]}, coin]}));
    let d = eval(&p, &me(1), &evm).await.unwrap();
    assert!(
        d.reason
            .starts_with("policy.any: no rule matched (policy.any[0].all[1].public: private"),
        "{}",
        d.reason
    );
    assert_eq!(
        evm.calls(),
        vec![(
            1,
            vec![EvmQuery::Erc20Balance {
                contract: COIN,
                owner: ME
            }]
        )]
    );
}

#[tokio::test]
async fn subjects_meet_only_rules_of_their_kind() {
    let sol = json!({"any": [
        {"spl": {"cluster": "solana:devnet", "mint": b58(&MINT), "min_balance": 10}},
        {"metaplex_collection": {"cluster": "solana:mainnet", "collection": b58(&COLLECTION)}},
    ]});
    let p = policy(json!({"any": [nft(1), sol.clone()]}));
    // An EVM subject: Solana rules are no, with no Solana reader needed.
    let evm = TableEvm::default();
    let d = eval(&p, &me(1), &evm).await.unwrap();
    assert!(!d.allowed);
    assert!(
        d.reason
            .contains("a Solana rule; the subject is an EVM account"),
        "{}",
        d.reason
    );
    assert_eq!(evm.calls().len(), 1);

    // A Solana subject: EVM rules are no; one call per cluster.
    let evm = TableEvm::default();
    let mut solana = TableSolana::default();
    let member = SolanaQuery::CollectionMember {
        owner: SOL_ME,
        collection: COLLECTION,
    };
    solana
        .table
        .insert(member.clone(), SolanaAnswer::Bool(true));
    solana.table.insert(
        SolanaQuery::TokenBalance {
            owner: SOL_ME,
            mint: MINT,
        },
        SolanaAnswer::Amount(9),
    );
    let d = evaluate(&p, &sol_me(), &evm, Some(&solana)).await.unwrap();
    assert!(d.allowed);
    assert!(
        d.reason
            .starts_with("policy.any[1].any[1].metaplex_collection: holds an NFT of collection"),
        "{}",
        d.reason
    );
    assert!(evm.calls().is_empty());
    let calls = solana.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert!(calls.contains(&("solana:mainnet".to_owned(), vec![member])));

    // The SPL threshold is ≥ min_balance.
    let mut solana = TableSolana::default();
    solana.table.insert(
        SolanaQuery::TokenBalance {
            owner: SOL_ME,
            mint: MINT,
        },
        SolanaAnswer::Amount(10),
    );
    assert!(
        evaluate(&p, &sol_me(), &evm, Some(&solana))
            .await
            .unwrap()
            .allowed
    );

    // No Solana reader: fail closed.
    let e = evaluate(&policy(sol), &sol_me(), &evm, None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, EvalError::Unavailable(ReadError::UnknownChain(_))),
        "{e}"
    );
}

#[tokio::test]
async fn broken_readers_and_bad_subjects_are_errors() {
    let evm = TableEvm {
        short: 1,
        ..TableEvm::default()
    };
    let e = eval(&policy(nft(1)), &me(1), &evm).await.unwrap_err();
    assert!(
        e.to_string().contains("reader gave 0 answers to 1 queries"),
        "{e}"
    );
    let evm = TableEvm::default().with(
        1,
        EvmQuery::Erc721Balance {
            contract: NFT,
            owner: ME,
        },
        EvmAnswer::Address(ME),
    );
    assert!(matches!(
        eval(&policy(nft(1)), &me(1), &evm).await,
        Err(EvalError::Unavailable(_))
    ));
    let e = eval(&Policy::public(), "0x1234", &evm).await.unwrap_err();
    assert_eq!(e.code(), "bad_subject");
}

#[test]
fn the_evaluation_future_is_send() {
    fn send<T: Send>(_: T) {}
    let (p, evm) = (Policy::public(), TableEvm::default());
    send(evaluate(&p, "eip155:1:0x", &evm, None));
}
