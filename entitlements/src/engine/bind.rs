//! A policy bound to one subject: the node tree the engine evaluates, three-valued, and the
//! plan of reads (per chain, deduplicated) that the undecided part of it needs.

use std::collections::BTreeMap;

use crate::{
    chain::{EvmAddress, EvmAnswer, EvmQuery, ReadError},
    policy::Rule,
    solana::{SolanaAnswer, SolanaQuery},
    values::{Account, SolanaChain, Uint256},
};

/// What a node (or the whole policy) comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Holds; the reason names the rule.
    Yes(String),
    /// Does not hold; the reason says why.
    No(String),
    /// Not known: reads not made yet (`None`) or a read that failed.
    Undecided(Option<ReadError>),
}

impl Outcome {
    fn is_decided(&self) -> bool {
        !matches!(self, Outcome::Undecided(_))
    }
}

/// The reads to make: per chain, the queries in the order the reader gets them.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(super) evm: BTreeMap<u64, Vec<EvmQuery>>,
    pub(super) solana: BTreeMap<SolanaChain, Vec<SolanaQuery>>,
}

impl Plan {
    fn evm_slot(&mut self, chain: u64, q: &EvmQuery) -> usize {
        slot(self.evm.entry(chain).or_default(), q)
    }

    fn solana_slot(&mut self, cluster: &SolanaChain, q: &SolanaQuery) -> usize {
        slot(self.solana.entry(cluster.clone()).or_default(), q)
    }
}

/// The position of `q` in `queries`, appending it if new (so equal reads are made once).
fn slot<Q: PartialEq + Clone>(queries: &mut Vec<Q>, q: &Q) -> usize {
    queries.iter().position(|x| x == q).unwrap_or_else(|| {
        queries.push(q.clone());
        queries.len() - 1
    })
}

/// The readers' answers, per chain.
#[derive(Debug, Default)]
pub(super) struct Answers {
    pub(super) evm: BTreeMap<u64, Result<Vec<EvmAnswer>, ReadError>>,
    pub(super) solana: BTreeMap<SolanaChain, Result<Vec<SolanaAnswer>, ReadError>>,
}

/// A rule bound to the subject.
#[derive(Debug)]
pub(super) enum Node {
    /// Decided without reads.
    Fixed(bool, String),
    /// `any`, with its path.
    Any(String, Vec<Node>),
    /// `all`, with its path.
    All(String, Vec<Node>),
    /// An EVM holding rule the subject may meet.
    Evm(EvmNode),
    /// A Solana holding rule the subject may meet.
    Solana(SolanaNode),
}

#[derive(Debug)]
pub(super) struct EvmNode {
    pub(super) chain: u64,
    pub(super) queries: Vec<EvmQuery>,
    /// Positions of `queries` in the chain's batch, once scheduled.
    pub(super) slots: Vec<usize>,
    pub(super) test: EvmTest,
    pub(super) what: String,
    pub(super) path: String,
}

#[derive(Debug)]
pub(super) enum EvmTest {
    /// Some `ownerOf` answer is this address.
    OwnerIs(EvmAddress),
    /// The (one) balance is at least this.
    AtLeast(Uint256),
}

#[derive(Debug)]
pub(super) struct SolanaNode {
    pub(super) cluster: SolanaChain,
    pub(super) query: SolanaQuery,
    pub(super) slot: Option<usize>,
    pub(super) min: u64,
    pub(super) what: String,
    pub(super) path: String,
}

impl Plan {
    /// Binds `rule` (at JSON path `path`) to `who`, then schedules the reads of its undecided
    /// part.
    pub(super) fn bind(&mut self, rule: &Rule, who: &Account, path: String) -> Node {
        let mut node = bind(rule, who, path);
        node.schedule(self);
        node
    }
}

fn bind(rule: &Rule, who: &Account, path: String) -> Node {
    let evm_owner = match who {
        Account::Evm { address, .. } => Some(*address),
        Account::Solana { .. } => None,
    };
    let solana_owner = match who {
        Account::Solana { pubkey, .. } => Some(*pubkey),
        Account::Evm { .. } => None,
    };
    let kids = |rules: &[Rule], key: &str| -> Vec<Node> {
        let p = format!("{path}.{key}");
        (rules.iter().enumerate())
            .map(|(i, r)| bind(r, who, format!("{p}[{i}]")))
            .collect()
    };
    let evm = |key: &str, chain: u64, queries: Vec<EvmQuery>, test, what: String| {
        let path = format!("{path}.{key}");
        match evm_owner {
            Some(_) => Node::Evm(EvmNode {
                chain,
                slots: Vec::new(),
                queries,
                test,
                what: format!("{what} on eip155:{chain}"),
                path,
            }),
            None => Node::Fixed(
                false,
                format!("{path}: an EVM rule; the subject is a Solana account"),
            ),
        }
    };
    let owner = evm_owner.unwrap_or_default();
    match rule {
        Rule::Public(true) => Node::Fixed(true, format!("{path}.public: public")),
        Rule::Public(false) => Node::Fixed(false, format!("{path}.public: private (owner only)")),
        Rule::Any(rules) => Node::Any(format!("{path}.any"), kids(rules, "any")),
        Rule::All(rules) => Node::All(format!("{path}.all"), kids(rules, "all")),
        Rule::Allow(list) => match list.binary_search(who) {
            Ok(_) => Node::Fixed(true, format!("{path}.allow: {who} is listed")),
            Err(_) => Node::Fixed(false, format!("{path}.allow: {who} is not listed")),
        },
        Rule::Erc721(r) => {
            let contract = streamgate_auth::siwe::to_eip55(&r.contract);
            match &r.token_ids {
                Some(ids) => {
                    let queries = (ids.iter())
                        .map(|id| EvmQuery::Erc721OwnerOf {
                            contract: r.contract,
                            token_id: id.to_be_bytes(),
                        })
                        .collect();
                    evm(
                        "erc721",
                        r.chain,
                        queries,
                        EvmTest::OwnerIs(owner),
                        format!("ERC-721 {contract}"),
                    )
                }
                None => {
                    let q = EvmQuery::Erc721Balance {
                        contract: r.contract,
                        owner,
                    };
                    evm(
                        "erc721",
                        r.chain,
                        vec![q],
                        EvmTest::AtLeast(Uint256::ONE),
                        format!("ERC-721 {contract}"),
                    )
                }
            }
        }
        Rule::Erc1155(r) => {
            let q = EvmQuery::Erc1155Balance {
                contract: r.contract,
                owner,
                token_id: r.token_id.to_be_bytes(),
            };
            let what = format!(
                "ERC-1155 {} id {}",
                streamgate_auth::siwe::to_eip55(&r.contract),
                r.token_id
            );
            evm(
                "erc1155",
                r.chain,
                vec![q],
                EvmTest::AtLeast(r.min_balance),
                what,
            )
        }
        Rule::Erc20(r) => {
            let q = EvmQuery::Erc20Balance {
                contract: r.contract,
                owner,
            };
            let what = format!("ERC-20 {}", streamgate_auth::siwe::to_eip55(&r.contract));
            evm(
                "erc20",
                r.chain,
                vec![q],
                EvmTest::AtLeast(r.min_balance),
                what,
            )
        }
        Rule::Spl(r) => {
            let q = solana_owner.map(|owner| SolanaQuery::TokenBalance {
                owner,
                mint: r.mint,
            });
            let what = format!("SPL mint {} on {}", b58(&r.mint), r.cluster);
            solana(format!("{path}.spl"), &r.cluster, q, r.min_balance, what)
        }
        Rule::MetaplexCollection(r) => {
            let q = solana_owner.map(|owner| SolanaQuery::CollectionMember {
                owner,
                collection: r.collection,
            });
            let what = format!("collection {} on {}", b58(&r.collection), r.cluster);
            solana(
                format!("{path}.metaplex_collection"),
                &r.cluster,
                q,
                1,
                what,
            )
        }
    }
}

fn solana(
    path: String,
    cluster: &SolanaChain,
    q: Option<SolanaQuery>,
    min: u64,
    what: String,
) -> Node {
    match q {
        Some(query) => Node::Solana(SolanaNode {
            cluster: cluster.clone(),
            query,
            slot: None,
            min,
            what,
            path,
        }),
        None => Node::Fixed(
            false,
            format!("{path}: a Solana rule; the subject is an EVM account"),
        ),
    }
}

fn b58(k: &[u8; 32]) -> String {
    bs58::encode(k).into_string()
}

pub(super) fn amount(min: impl std::fmt::Display, one: bool) -> String {
    if one {
        "a token".to_owned()
    } else {
        format!("at least {min}")
    }
}

impl Node {
    /// Assigns batch slots to the reads of every node whose value is not decided without reads.
    fn schedule(&mut self, plan: &mut Plan) {
        if self.eval(None).is_decided() {
            return;
        }
        match self {
            Node::Fixed(..) => {}
            Node::Any(_, kids) | Node::All(_, kids) => {
                kids.iter_mut().for_each(|k| k.schedule(plan))
            }
            Node::Evm(n) => {
                n.slots = n
                    .queries
                    .iter()
                    .map(|q| plan.evm_slot(n.chain, q))
                    .collect()
            }
            Node::Solana(n) => n.slot = Some(plan.solana_slot(&n.cluster, &n.query)),
        }
    }

    /// Three-valued evaluation with short-circuit: `any` stops at the first yes, `all` at the
    /// first no; a failed read only decides when nothing else does.
    pub(super) fn eval(&self, answers: Option<&Answers>) -> Outcome {
        match self {
            Node::Fixed(true, r) => Outcome::Yes(r.clone()),
            Node::Fixed(false, r) => Outcome::No(r.clone()),
            Node::Any(path, kids) => {
                let (mut noes, mut open) = (Vec::new(), None);
                for k in kids {
                    match k.eval(answers) {
                        yes @ Outcome::Yes(_) => return yes,
                        Outcome::No(r) => noes.push(r),
                        Outcome::Undecided(e) => keep_first(&mut open, e),
                    }
                }
                match open {
                    Some(e) => Outcome::Undecided(e),
                    None => Outcome::No(format!("{path}: no rule matched ({})", noes.join("; "))),
                }
            }
            Node::All(path, kids) => {
                let (mut yeses, mut open) = (Vec::new(), None);
                for k in kids {
                    match k.eval(answers) {
                        no @ Outcome::No(_) => return no,
                        Outcome::Yes(r) => yeses.push(r),
                        Outcome::Undecided(e) => keep_first(&mut open, e),
                    }
                }
                match open {
                    Some(e) => Outcome::Undecided(e),
                    None => {
                        Outcome::Yes(format!("{path}: every rule matched ({})", yeses.join("; ")))
                    }
                }
            }
            // Not scheduled: its subtree was decided without it (its value cannot matter).
            Node::Evm(n) if n.slots.is_empty() => Outcome::Undecided(None),
            Node::Evm(n) => match answers.and_then(|a| a.evm.get(&n.chain)) {
                None => Outcome::Undecided(None),
                Some(Err(e)) => Outcome::Undecided(Some(e.clone())),
                Some(Ok(got)) => n.judge(got),
            },
            Node::Solana(n) => match answers.and_then(|a| a.solana.get(&n.cluster)) {
                None => Outcome::Undecided(None),
                Some(Err(e)) => Outcome::Undecided(Some(e.clone())),
                Some(Ok(got)) => n.judge(got),
            },
        }
    }
}

/// Keeps the first undecided cause, preferring a real read error over "not read".
fn keep_first(open: &mut Option<Option<ReadError>>, e: Option<ReadError>) {
    match open {
        None => *open = Some(e),
        Some(None) if e.is_some() => *open = Some(e),
        Some(_) => {}
    }
}
