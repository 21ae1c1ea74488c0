//! What entitlement evaluation asks of a Solana cluster, and how a Solana reader answers: the
//! Solana half of the seam in [`super::chain`]. The engine hands every read a policy needs on
//! one cluster to [`SolanaReader::read`] at once; the implementation (Solana RPC client:
//! `getTokenAccountsByOwner`, Metaplex metadata accounts) batches and fails over as it likes.

use super::{chain::ReadFuture, values::SolanaChain};

/// A 32-byte Solana public key (account, mint, collection).
pub type SolanaPubkey = [u8; 32];

/// One read on a Solana cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SolanaQuery {
    /// The sum of the `amount`s of every token account `owner` holds for `mint` (SPL Token and
    /// Token-2022), saturating at `u64::MAX`. No account: 0. Answered with
    /// [`SolanaAnswer::Amount`].
    TokenBalance {
        /// Wallet asked about.
        owner: SolanaPubkey,
        /// Token mint.
        mint: SolanaPubkey,
    },
    /// Whether `owner` holds at least one NFT (a token account with amount ≥ 1 whose mint's
    /// Metaplex metadata has `collection = Some({ key: collection, verified: true })`).
    /// Answered with [`SolanaAnswer::Bool`].
    CollectionMember {
        /// Wallet asked about.
        owner: SolanaPubkey,
        /// Collection mint.
        collection: SolanaPubkey,
    },
}

/// The answer to one [`SolanaQuery`], in the same position as the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolanaAnswer {
    /// For [`SolanaQuery::TokenBalance`].
    Amount(u64),
    /// For [`SolanaQuery::CollectionMember`].
    Bool(bool),
}

/// Reads Solana clusters. Implementations answer in query order, at a commitment level of
/// their choosing (`confirmed` is the sensible one), failing over across endpoints; when none
/// answers they return [`super::chain::ReadError`] and the engine fails closed.
pub trait SolanaReader: Send + Sync {
    /// Answers `queries` on `cluster` (its [`SolanaChain::reference`] is the CAIP-2 reference;
    /// [`SolanaChain::name`] the well-known name, if any).
    fn read(
        &self,
        cluster: &SolanaChain,
        queries: Vec<SolanaQuery>,
    ) -> ReadFuture<'_, SolanaAnswer>;
}
