//! The entitlement policy model: a tree of rules parsed from a content's JSON policy, its
//! canonical form and the hash that keys cached decisions.
//!
//! # Format
//! A policy is one rule; a rule is a JSON object with exactly one key:
//! ```text
//! {"public": true | false}                 ; anyone / nobody (the owner is always allowed)
//! {"any": [rule, …]}                       ; 1..=64 rules, at least one holds
//! {"all": [rule, …]}                       ; 1..=64 rules, every one holds
//! {"allow": [caip10, …]}                   ; 1..=1024 accounts: eip155:{id}:0x… | solana:{cluster}:{base58}
//! {"erc721": {"chain", "contract", ["token_ids": [uint, …]]}}   ; ownerOf(any id) = subject, else balanceOf ≥ 1
//! {"erc1155": {"chain", "contract", "token_id", ["min_balance"]}} ; balanceOf(subject, id) ≥ min (default 1)
//! {"erc20": {"chain", "contract", "min_balance"}}               ; balanceOf(subject) ≥ min
//! {"spl": {"cluster", "mint", ["min_balance"]}}                 ; Σ token accounts of mint ≥ min (default 1)
//! {"metaplex_collection": {"cluster", "collection"}}            ; holds an NFT of the verified collection
//! ```
//! `chain` is CAIP-2 `eip155:{decimal}`; `cluster` is `solana:{mainnet|devnet|testnet|localnet}`
//! or `solana:{genesis-hash reference}`; `contract` is `0x` + 40 hex digits in any case; uints
//! are decimal strings up to 2^256 − 1 (JSON numbers are accepted when they fit a u64); `spl`
//! amounts are u64; minimums are at least 1. Nesting is limited to 8 levels and 64 rules, and
//! a policy needs at most 256 chain reads (each `token_ids` entry is one). Unknown keys are
//! errors, and every error names the field by its JSON path: `policy.any[2].erc1155.token_id:
//! not a uint256`.
//!
//! # Canonical form
//! [`Policy::canonical_json`]: keys sorted, no whitespace, addresses EIP-55, Solana clusters by
//! name when well known, uints as decimal strings without leading zeros, default minimums
//! written out, `token_ids` and `allow` sorted and deduplicated (they are sets; `any`/`all`
//! keep their order). [`Policy::hash`] is its SHA-256: two policies that mean the same hash
//! the same, whatever the key order or address case they were written with.

use std::{collections::BTreeSet, fmt};

use serde::{Deserialize, Deserializer, Serialize, Serializer, ser::SerializeMap};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    chain::EvmAddress,
    values::{Account, Chain, SolanaChain, Uint256},
};

mod error;
mod parse;
#[cfg(test)]
mod tests;

pub use error::{PolicyError, PolicyErrorKind};

/// Deepest nesting of rules (the root is level 1).
pub const MAX_DEPTH: usize = 8;
/// Most rules in a policy, counting every node.
pub const MAX_RULES: usize = 64;
/// Most entries in one `allow` list.
pub const MAX_ALLOW: usize = 1024;
/// Most chain reads one evaluation may need (an `erc721` with `token_ids` needs one per id).
pub const MAX_READS: usize = 256;

/// A validated policy. Build it with [`Policy::parse`] / [`Policy::parse_with`]; serialize it
/// (serde) to get the canonical JSON back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    root: Rule,
}

/// One rule of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `{"public": b}`: everyone (`true`) or no one but the owner (`false`).
    Public(bool),
    /// At least one of the rules holds.
    Any(Vec<Rule>),
    /// Every rule holds.
    All(Vec<Rule>),
    /// The subject is one of these accounts (sorted, deduplicated).
    Allow(Vec<Account>),
    /// Holds an ERC-721 token.
    Erc721(Erc721Rule),
    /// Holds enough of one ERC-1155 token id.
    Erc1155(Erc1155Rule),
    /// Holds enough of an ERC-20 token.
    Erc20(Erc20Rule),
    /// Holds enough of an SPL token.
    Spl(SplRule),
    /// Holds an NFT of a verified Metaplex collection.
    MetaplexCollection(CollectionRule),
}

/// `{"erc721": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erc721Rule {
    /// EVM chain id the contract lives on.
    #[serde(serialize_with = "ser_evm_chain")]
    pub chain: u64,
    /// Token contract.
    #[serde(serialize_with = "ser_address")]
    pub contract: EvmAddress,
    /// When present (sorted, deduplicated, non-empty): the subject must own one of these ids
    /// (`ownerOf`). When absent: any token of the contract (`balanceOf ≥ 1`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_uints"
    )]
    pub token_ids: Option<Vec<Uint256>>,
}

/// `{"erc1155": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erc1155Rule {
    /// EVM chain id.
    #[serde(serialize_with = "ser_evm_chain")]
    pub chain: u64,
    /// Token contract.
    #[serde(serialize_with = "ser_address")]
    pub contract: EvmAddress,
    /// Least balance (default 1).
    #[serde(serialize_with = "ser_display")]
    pub min_balance: Uint256,
    /// Token id.
    #[serde(serialize_with = "ser_display")]
    pub token_id: Uint256,
}

/// `{"erc20": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erc20Rule {
    /// EVM chain id.
    #[serde(serialize_with = "ser_evm_chain")]
    pub chain: u64,
    /// Token contract.
    #[serde(serialize_with = "ser_address")]
    pub contract: EvmAddress,
    /// Least balance, in the token's smallest unit (required: no default for fungibles).
    #[serde(serialize_with = "ser_display")]
    pub min_balance: Uint256,
}

/// `{"spl": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplRule {
    /// Cluster.
    #[serde(serialize_with = "ser_display")]
    pub cluster: SolanaChain,
    /// Least amount summed over the subject's token accounts of the mint (default 1).
    #[serde(serialize_with = "ser_display")]
    pub min_balance: u64,
    /// Token mint.
    #[serde(serialize_with = "ser_b58")]
    pub mint: [u8; 32],
}

/// `{"metaplex_collection": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionRule {
    /// Cluster.
    #[serde(serialize_with = "ser_display")]
    pub cluster: SolanaChain,
    /// Collection mint; the NFT's metadata must name it with `verified = true`.
    #[serde(serialize_with = "ser_b58")]
    pub collection: [u8; 32],
}

/// The chains a policy may name. [`KnownChains::any`] takes every well-formed chain; a service
/// passes the chains it can read (origin: the chains it accepts for sign-in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownChains {
    /// `None`: any chain.
    set: Option<BTreeSet<Chain>>,
}

impl KnownChains {
    /// Every well-formed chain.
    pub fn any() -> Self {
        Self { set: None }
    }

    /// Exactly these CAIP-2 chains (`eip155:1`, `solana:mainnet`, `solana:{reference}`).
    ///
    /// # Errors
    /// A malformed chain, with its index as path (`known_chains[1]`).
    pub fn parse<I, S>(chains: I) -> Result<Self, PolicyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for (i, c) in chains.into_iter().enumerate() {
            let chain = Chain::parse(c.as_ref()).map_err(|kind| PolicyError {
                path: format!("known_chains[{i}]"),
                kind,
            })?;
            set.insert(chain);
        }
        Ok(Self { set: Some(set) })
    }

    /// Whether `chain` may be named.
    pub fn contains(&self, chain: &Chain) -> bool {
        self.set.as_ref().is_none_or(|s| s.contains(chain))
    }

    pub(crate) fn check(&self, chain: Chain) -> Result<Chain, PolicyErrorKind> {
        match &self.set {
            Some(set) if !set.contains(&chain) => Err(PolicyErrorKind::UnknownChain {
                chain: chain.to_string(),
                known: if set.is_empty() {
                    "none".to_owned()
                } else {
                    set.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            }),
            _ => Ok(chain),
        }
    }
}

impl Policy {
    /// Parses and validates `value`, accepting any well-formed chain.
    ///
    /// # Errors
    /// The first problem found, naming its field.
    pub fn parse(value: &Value) -> Result<Self, PolicyError> {
        Self::parse_with(value, &KnownChains::any())
    }

    /// Parses and validates `value`; chains outside `known` are refused.
    ///
    /// # Errors
    /// The first problem found, naming its field.
    pub fn parse_with(value: &Value, known: &KnownChains) -> Result<Self, PolicyError> {
        parse::Parser::new(known)
            .policy(value)
            .map(|root| Self { root })
    }

    /// `{"public": true}`.
    pub fn public() -> Self {
        Self {
            root: Rule::Public(true),
        }
    }

    /// The root rule.
    pub fn root(&self) -> &Rule {
        &self.root
    }

    /// The canonical JSON text (see the module docs).
    pub fn canonical_json(&self) -> String {
        // Serializing plain data to a String cannot fail.
        serde_json::to_string(&self.root).unwrap_or_default()
    }

    /// The canonical JSON as a value (what origin stores).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(&self.root).unwrap_or(Value::Null)
    }

    /// SHA-256 of [`Self::canonical_json`]: the policy component of entitlement cache keys.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.canonical_json().as_bytes()).into()
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical_json())
    }
}

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.root.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Policy {
    /// Parses with [`Policy::parse`] (any well-formed chain).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Policy::parse(&v).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        match self {
            Rule::Public(b) => m.serialize_entry("public", b)?,
            Rule::Any(rules) => m.serialize_entry("any", rules)?,
            Rule::All(rules) => m.serialize_entry("all", rules)?,
            Rule::Allow(accounts) => {
                let shown: Vec<String> = accounts.iter().map(ToString::to_string).collect();
                m.serialize_entry("allow", &shown)?;
            }
            Rule::Erc721(r) => m.serialize_entry("erc721", r)?,
            Rule::Erc1155(r) => m.serialize_entry("erc1155", r)?,
            Rule::Erc20(r) => m.serialize_entry("erc20", r)?,
            Rule::Spl(r) => m.serialize_entry("spl", r)?,
            Rule::MetaplexCollection(r) => m.serialize_entry("metaplex_collection", r)?,
        }
        m.end()
    }
}

fn ser_evm_chain<S: Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("eip155:{id}"))
}

fn ser_address<S: Serializer>(a: &EvmAddress, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&streamgate_auth::siwe::to_eip55(a))
}

fn ser_display<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn ser_b58<S: Serializer>(k: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&bs58::encode(k).into_string())
}

fn ser_opt_uints<S: Serializer>(ids: &Option<Vec<Uint256>>, s: S) -> Result<S::Ok, S::Error> {
    let shown: Vec<String> = ids.iter().flatten().map(ToString::to_string).collect();
    shown.serialize(s)
}
