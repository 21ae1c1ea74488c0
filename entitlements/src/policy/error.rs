//! Why a policy was refused: the JSON path of the offending field and the cause.

/// Why a policy was refused: the JSON path of the offending field and the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct PolicyError {
    /// JSON path from the policy root, written `policy.any[2].erc1155.token_id`.
    pub path: String,
    /// What is wrong there.
    pub kind: PolicyErrorKind,
}

/// The cause of a [`PolicyError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyErrorKind {
    /// Not an object with exactly one rule key.
    #[error(
        "expected an object with exactly one of: public, any, all, allow, erc721, erc1155, erc20, spl, metaplex_collection"
    )]
    NotARule,
    /// A rule key that does not exist.
    #[error(
        "unknown rule (expected public, any, all, allow, erc721, erc1155, erc20, spl or metaplex_collection)"
    )]
    UnknownRule,
    /// A field the rule does not have; the argument lists those it has.
    #[error("unknown field (expected {0})")]
    UnknownField(&'static str),
    /// A required field is absent.
    #[error("missing")]
    Missing,
    /// The JSON type is wrong; the argument names the right one.
    #[error("expected {0}")]
    WrongType(&'static str),
    /// An empty list.
    #[error("must not be empty")]
    Empty,
    /// A list longer than allowed.
    #[error("more than {0} entries")]
    TooLong(usize),
    /// Rules nested too deep.
    #[error("rules nested deeper than {0} levels")]
    TooDeep(usize),
    /// Too many rules.
    #[error("the policy has more than {0} rules")]
    TooManyRules(usize),
    /// Too many chain reads.
    #[error("the policy needs more than {0} chain reads")]
    TooManyReads(usize),
    /// Not a decimal uint256.
    #[error("not a uint256 (a decimal string, or a JSON integer up to 2^64 - 1)")]
    NotUint256,
    /// Not a decimal u64.
    #[error("not a u64 (a decimal string or a JSON integer)")]
    NotU64,
    /// A minimum of zero, which everyone meets.
    #[error("must be at least 1")]
    Zero,
    /// Not an EVM address.
    #[error("not an EVM address (0x followed by 40 hex digits)")]
    BadAddress,
    /// Not a base58 32-byte key.
    #[error("not a base58 32-byte Solana key")]
    BadBase58,
    /// Not a CAIP-2 chain id we know the syntax of.
    #[error("not a CAIP-2 chain id (eip155:<decimal id> or solana:<cluster>)")]
    BadChain,
    /// A Solana chain where an EVM one is needed.
    #[error("not an EVM chain (eip155:<decimal id>)")]
    NotEvmChain,
    /// An EVM chain where a Solana cluster is needed, or a malformed cluster.
    #[error(
        "not a Solana cluster (solana:mainnet|devnet|testnet|localnet or a genesis-hash reference)"
    )]
    NotSolanaCluster,
    /// Well-formed, but not among the chains the caller accepts.
    #[error("unknown chain {chain} (known: {known})")]
    UnknownChain {
        /// The chain, canonical.
        chain: String,
        /// The known chains, comma-separated.
        known: String,
    },
    /// Not a CAIP-10 account id.
    #[error("not a CAIP-10 account (eip155:<id>:0x<40 hex> or solana:<cluster>:<base58 key>)")]
    BadAccount,
}

impl PolicyErrorKind {
    /// Stable snake_case code for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotARule | Self::UnknownRule => "bad_rule",
            Self::UnknownField(_) => "unknown_field",
            Self::Missing => "missing_field",
            Self::WrongType(_) => "wrong_type",
            Self::Empty | Self::TooLong(_) => "bad_list",
            Self::TooDeep(_) | Self::TooManyRules(_) | Self::TooManyReads(_) => "too_complex",
            Self::NotUint256 | Self::NotU64 | Self::Zero => "bad_number",
            Self::BadAddress | Self::BadBase58 | Self::BadAccount => "bad_address",
            Self::BadChain | Self::NotEvmChain | Self::NotSolanaCluster => "bad_chain",
            Self::UnknownChain { .. } => "unknown_chain",
        }
    }
}
