//! StreamGate's entitlements: who may watch what. Policies (JSON rules over NFT holdings,
//! allow-lists and `public`), their evaluation against a viewer's account through chain
//! readers (alloy for EVM chains, the Solana RPC client behind the `solana` feature, one
//! endpoint failover for both and for origin's contract-wallet calls), and the two-tier cache
//! of the verdicts. The edge uses all of it; origin validates policies and reuses the failover.
//!
//! - `policy`: the policy JSON model ([`Policy::parse_with`] with errors naming the field by
//!   JSON path, [`KnownChains`]), its canonical form and [`Policy::hash`] (the policy part of
//!   cache keys); `values`: uint256, CAIP-2 chains, CAIP-10 [`Account`]s.
//! - `engine`: [`evaluate`] a policy for a subject (`public`, allow-lists, then every
//!   holding rule's reads batched into one call per chain, chains concurrently, three-valued
//!   short-circuit evaluation that fails closed ([`EvalError::Unavailable`])); [`is_owner`],
//!   decided before and apart from any cache.
//! - `chain`: the seam to the chains ([`EvmQuery`], [`EvmReader`], …); `solana`: its Solana
//!   half ([`SolanaQuery`], [`SolanaReader`]).
//! - `cache`: [`EntitlementCache`], moka over Redis, singleflight, bounded staleness.

pub mod cache;
pub mod chain;
pub mod engine;
pub mod evm;
pub mod failover;
pub mod policy;
pub mod solana;
#[cfg(feature = "solana")]
pub mod solana_rpc;
pub mod values;

pub use cache::{
    CacheConfig, CacheStats, Cached, EntitlementCache, Tier, Undecidable, Verdict, cache_key,
};
pub use chain::{EvmAddress, EvmAnswer, EvmQuery, EvmReader, ReadError, ReadFuture, U256Be};
pub use engine::{Decision, EvalError, evaluate, is_owner};
pub use evm::{AlloyEvmReader, BlockChoice, EvmChains, EvmConfigError};
pub use policy::{
    CollectionRule, Erc20Rule, Erc721Rule, Erc1155Rule, KnownChains, Policy, PolicyError,
    PolicyErrorKind, Rule, SplRule,
};
pub use solana::{SolanaAnswer, SolanaPubkey, SolanaQuery, SolanaReader};
#[cfg(feature = "solana")]
pub use solana_rpc::{SolanaClusters, SolanaConfigError, SolanaRpcReader};
pub use values::{Account, Chain, SolanaChain, Uint256};
