//! What entitlement evaluation asks of a chain, and how a chain reader answers: the seam
//! between the policy engine (pure) and the RPC clients (alloy for EVM chains, the Solana RPC
//! client for Solana), so policies are evaluated — and tested — without knowing how reads are
//! made, and every read a policy needs is handed to the reader at once for batching.

use std::{future::Future, pin::Pin};

/// A 20-byte EVM address.
pub type EvmAddress = [u8; 20];
/// A uint256, big-endian.
pub type U256Be = [u8; 32];

/// One on-chain read on an EVM chain (CAIP-2 `eip155:{chain_id}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EvmQuery {
    /// ERC-721 `balanceOf(owner) -> uint256`.
    Erc721Balance {
        /// Token contract.
        contract: EvmAddress,
        /// Account asked about.
        owner: EvmAddress,
    },
    /// ERC-721 `ownerOf(tokenId) -> address` (reverts for a token that does not exist).
    Erc721OwnerOf {
        /// Token contract.
        contract: EvmAddress,
        /// Token id.
        token_id: U256Be,
    },
    /// ERC-1155 `balanceOf(owner, id) -> uint256`.
    Erc1155Balance {
        /// Token contract.
        contract: EvmAddress,
        /// Account asked about.
        owner: EvmAddress,
        /// Token id.
        token_id: U256Be,
    },
    /// ERC-20 `balanceOf(owner) -> uint256`.
    Erc20Balance {
        /// Token contract.
        contract: EvmAddress,
        /// Account asked about.
        owner: EvmAddress,
    },
}

/// The answer to one [`EvmQuery`], in the same position as the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvmAnswer {
    /// A `uint256` result (balances).
    Uint(U256Be),
    /// An `address` result (`ownerOf`).
    Address(EvmAddress),
    /// The call reverted (no such token, not a contract of that kind): an answer, not an error.
    Reverted,
}

/// Why a batch of reads could not be answered. Callers fail closed on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// No endpoint is configured for the chain.
    #[error("no rpc endpoint for chain {0}")]
    UnknownChain(String),
    /// Every endpoint failed or timed out.
    #[error("every rpc endpoint of chain {chain} failed: {last}")]
    Unavailable {
        /// CAIP-2 chain id.
        chain: String,
        /// The last endpoint's error.
        last: String,
    },
}

/// A boxed future of a batch of answers.
pub type ReadFuture<'a, T> = Pin<Box<dyn Future<Output = Result<Vec<T>, ReadError>> + Send + 'a>>;

/// Reads EVM chains. Implementations batch the queries (Multicall3 where deployed, concurrent
/// calls otherwise), fail over across endpoints and answer in query order.
pub trait EvmReader: Send + Sync {
    /// Answers `queries` on chain `chain_id`, at the reader's configured block tag.
    fn read(&self, chain_id: u64, queries: Vec<EvmQuery>) -> ReadFuture<'_, EvmAnswer>;
}
