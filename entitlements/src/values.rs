//! The values policies are made of: uint256 amounts and token ids, EVM addresses, CAIP-2
//! chains (`eip155:{id}`, `solana:{cluster}`) and CAIP-10 accounts.

use std::{fmt, str::FromStr};

use streamgate_auth::SolanaCluster;
use streamgate_auth::siwe::to_eip55;

use super::{chain::EvmAddress, policy::PolicyErrorKind};

/// A uint256 (token id, balance), kept big-endian so that `Ord` is numeric order. Written as a
/// decimal string in policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Uint256(pub [u8; 32]);

impl Uint256 {
    /// Zero.
    pub const ZERO: Uint256 = Uint256([0; 32]);
    /// One.
    pub const ONE: Uint256 = Uint256::from_u64(1);

    /// The value `v`.
    pub const fn from_u64(v: u64) -> Self {
        let b = v.to_be_bytes();
        let mut out = [0u8; 32];
        let mut i = 0;
        while i < 8 {
            out[24 + i] = b[i];
            i += 1;
        }
        Uint256(out)
    }

    /// Big-endian bytes, as [`super::chain::EvmQuery`] wants them.
    pub fn to_be_bytes(self) -> [u8; 32] {
        self.0
    }
}

impl FromStr for Uint256 {
    type Err = PolicyErrorKind;

    /// Decimal digits only (leading zeros allowed), at most 2^256 − 1.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 100 || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(PolicyErrorKind::NotUint256);
        }
        let mut out = [0u8; 32];
        for d in s.bytes() {
            let mut carry = u16::from(d - b'0');
            for b in out.iter_mut().rev() {
                let v = u16::from(*b) * 10 + carry;
                *b = (v & 0xff) as u8;
                carry = v >> 8;
            }
            if carry != 0 {
                return Err(PolicyErrorKind::NotUint256);
            }
        }
        Ok(Uint256(out))
    }
}

impl fmt::Display for Uint256 {
    /// Decimal, no leading zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut n = self.0;
        let mut digits = Vec::with_capacity(78);
        loop {
            let mut rem = 0u16;
            for b in n.iter_mut() {
                let cur = (rem << 8) | u16::from(*b);
                *b = (cur / 10) as u8;
                rem = cur % 10;
            }
            digits.push(b'0' + rem as u8);
            if n == [0; 32] {
                break;
            }
        }
        digits.reverse();
        // Only ASCII digits were pushed.
        f.write_str(std::str::from_utf8(&digits).unwrap_or("0"))
    }
}

/// Parses `0x` + 40 hex digits, any case (policies are typed by people; the checksum of
/// mixed-case input is not enforced). Shown EIP-55 checksummed.
pub fn parse_evm_address(s: &str) -> Result<EvmAddress, PolicyErrorKind> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or(PolicyErrorKind::BadAddress)?;
    let mut out = [0u8; 20];
    if digits.len() != 40 || hex::decode_to_slice(digits, &mut out).is_err() {
        return Err(PolicyErrorKind::BadAddress);
    }
    Ok(out)
}

/// Parses canonical base58 of a 32-byte key (Solana account, mint, collection).
pub fn parse_solana_key(s: &str) -> Result<[u8; 32], PolicyErrorKind> {
    if s.is_empty() || s.len() > 44 {
        return Err(PolicyErrorKind::BadBase58);
    }
    let bytes: [u8; 32] = bs58::decode(s)
        .into_vec()
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(PolicyErrorKind::BadBase58)?;
    if bs58::encode(bytes).into_string() != s {
        return Err(PolicyErrorKind::BadBase58);
    }
    Ok(bytes)
}

/// A Solana cluster, identified by its CAIP-2 reference (the first 32 characters of its genesis
/// hash, as in session subjects). The well-known clusters are written by name: `mainnet`,
/// `devnet`, `testnet`, and `localnet`, whose reference is the word itself (a local validator's
/// genesis hash changes on every reset; origin signs localnet in as `solana:localnet:…`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SolanaChain {
    reference: String,
}

const LOCALNET: &str = "localnet";

impl SolanaChain {
    /// Parses `solana:{name | reference}` (or the bare name or reference). A full genesis hash
    /// is cut to its CAIP-2 reference (32 characters).
    ///
    /// # Errors
    /// [`PolicyErrorKind::NotSolanaCluster`] for anything else.
    pub fn parse(s: &str) -> Result<Self, PolicyErrorKind> {
        let bare = s.strip_prefix("solana:").unwrap_or(s);
        if bare == LOCALNET {
            return Ok(Self::from_reference(LOCALNET));
        }
        for c in well_known() {
            if c.matches(bare) {
                return Ok(Self::from_reference(c.reference()));
            }
        }
        let is_b58 = |s: &str| {
            s.bytes()
                .all(|c| c.is_ascii_alphanumeric() && !matches!(c, b'0' | b'O' | b'I' | b'l'))
        };
        if bare.len() < 32 || bare.len() > 44 || !is_b58(bare) {
            return Err(PolicyErrorKind::NotSolanaCluster);
        }
        Ok(Self::from_reference(&bare[..32]))
    }

    fn from_reference(reference: &str) -> Self {
        Self {
            reference: reference.to_owned(),
        }
    }

    /// The CAIP-2 reference (`5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp` for mainnet, `localnet`).
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// The cluster's name when it is a well-known one.
    pub fn name(&self) -> Option<&'static str> {
        if self.reference == LOCALNET {
            return Some(LOCALNET);
        }
        well_known()
            .into_iter()
            .zip(["mainnet", "devnet", "testnet"])
            .find(|(c, _)| c.reference() == self.reference)
            .map(|(_, n)| n)
    }
}

impl fmt::Display for SolanaChain {
    /// `solana:{name}` for the well-known clusters, `solana:{reference}` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "solana:{}", self.name().unwrap_or(&self.reference))
    }
}

fn well_known() -> [SolanaCluster; 3] {
    [
        SolanaCluster::mainnet(),
        SolanaCluster::devnet(),
        SolanaCluster::testnet(),
    ]
}

/// A CAIP-2 chain a policy names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Chain {
    /// `eip155:{chain id}`.
    Evm(u64),
    /// `solana:{cluster}`.
    Solana(SolanaChain),
}

impl Chain {
    /// Parses a CAIP-2 id: `eip155:{decimal, no leading zero}` or a Solana cluster.
    ///
    /// # Errors
    /// [`PolicyErrorKind::BadChain`].
    pub fn parse(s: &str) -> Result<Self, PolicyErrorKind> {
        if let Some(id) = s.strip_prefix("eip155:") {
            return parse_evm_chain_id(id).map(Chain::Evm);
        }
        if s.starts_with("solana:") {
            return SolanaChain::parse(s)
                .map(Chain::Solana)
                .map_err(|_| PolicyErrorKind::BadChain);
        }
        Err(PolicyErrorKind::BadChain)
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Chain::Evm(id) => write!(f, "eip155:{id}"),
            Chain::Solana(c) => c.fmt(f),
        }
    }
}

fn parse_evm_chain_id(s: &str) -> Result<u64, PolicyErrorKind> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(PolicyErrorKind::BadChain);
    }
    s.parse().map_err(|_| PolicyErrorKind::BadChain)
}

/// A CAIP-10 account: what session subjects and allow-list entries are.
///
/// Two accounts are equal when their chains are and their addresses are (EVM addresses compare
/// as bytes, so case does not matter). An EVM account on chain 1 is *not* the same account as
/// the same address on chain 137: CAIP-10 says so, and an allow-list entry means what it names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Account {
    /// `eip155:{chain id}:0x…`.
    Evm {
        /// Chain id.
        chain_id: u64,
        /// Address.
        address: EvmAddress,
    },
    /// `solana:{cluster}:{base58}`.
    Solana {
        /// Cluster.
        cluster: SolanaChain,
        /// Ed25519 public key.
        pubkey: [u8; 32],
    },
}

impl Account {
    /// Parses `eip155:{chain}:0x{40 hex, any case}` or `solana:{cluster}:{base58 key}`.
    ///
    /// # Errors
    /// [`PolicyErrorKind::BadAccount`], or the chain's or address's own error.
    pub fn parse(s: &str) -> Result<Self, PolicyErrorKind> {
        let (chain, address) = s.rsplit_once(':').ok_or(PolicyErrorKind::BadAccount)?;
        match Chain::parse(chain).map_err(|_| PolicyErrorKind::BadAccount)? {
            Chain::Evm(chain_id) => Ok(Account::Evm {
                chain_id,
                address: parse_evm_address(address)?,
            }),
            Chain::Solana(cluster) => Ok(Account::Solana {
                cluster,
                pubkey: parse_solana_key(address)?,
            }),
        }
    }

    /// The account's chain.
    pub fn chain(&self) -> Chain {
        match self {
            Account::Evm { chain_id, .. } => Chain::Evm(*chain_id),
            Account::Solana { cluster, .. } => Chain::Solana(cluster.clone()),
        }
    }
}

impl fmt::Display for Account {
    /// Canonical CAIP-10: EIP-55 addresses, well-known Solana clusters by name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::Evm { chain_id, address } => {
                write!(f, "eip155:{chain_id}:{}", to_eip55(address))
            }
            Account::Solana { cluster, pubkey } => {
                write!(f, "{cluster}:{}", bs58::encode(pubkey).into_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint256_round_trips_and_bounds() {
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(max.parse::<Uint256>().unwrap().0, [0xff; 32]);
        assert_eq!(max.parse::<Uint256>().unwrap().to_string(), max);
        let over = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert!(over.parse::<Uint256>().is_err());
        assert_eq!("0007".parse::<Uint256>().unwrap(), Uint256::from_u64(7));
        assert_eq!(Uint256::ZERO.to_string(), "0");
        assert_eq!(
            Uint256::from_u64(u64::MAX).to_string(),
            u64::MAX.to_string()
        );
        for bad in ["", "-1", "+1", "1.0", "0x10", " 1", "1e3"] {
            assert!(bad.parse::<Uint256>().is_err(), "{bad}");
        }
        assert!(Uint256::from_u64(10) > Uint256::from_u64(9));
        assert!(
            "1000000000000000000".parse::<Uint256>().unwrap() > Uint256::from_u64(u32::MAX as u64)
        );
    }

    #[test]
    fn chains_and_accounts() {
        assert_eq!(Chain::parse("eip155:137"), Ok(Chain::Evm(137)));
        for bad in [
            "eip155:",
            "eip155:01",
            "eip155:0",
            "eip155:x",
            "cosmos:hub",
            "eip155:1:0",
        ] {
            assert!(Chain::parse(bad).is_err(), "{bad}");
        }
        let main = Chain::parse("solana:mainnet").unwrap();
        assert_eq!(
            Chain::parse("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp").unwrap(),
            main
        );
        assert_eq!(
            Chain::parse("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d").unwrap(),
            main
        );
        assert_eq!(main.to_string(), "solana:mainnet");
        assert_eq!(
            Chain::parse("solana:localnet").unwrap().to_string(),
            "solana:localnet"
        );
        assert!(Chain::parse("solana:mainnet-beta").is_err());

        let a = Account::parse("eip155:1:0xab5801a7d398351b8be11c439e05c5b3259aec9b").unwrap();
        let b = Account::parse("eip155:1:0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.to_string(),
            "eip155:1:0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B"
        );
        let c = Account::parse("eip155:137:0xab5801a7d398351b8be11c439e05c5b3259aec9b").unwrap();
        assert_ne!(a, c);
        let key = bs58::encode([7u8; 32]).into_string();
        let s1 = Account::parse(&format!("solana:mainnet:{key}")).unwrap();
        let s2 = Account::parse(&format!("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:{key}")).unwrap();
        assert_eq!(s1, s2);
        for bad in [
            "eip155:1",
            "eip155:1:0x12",
            "solana:mainnet:0OIl",
            "x:y:z",
            "",
        ] {
            assert!(Account::parse(bad).is_err(), "{bad}");
        }
    }
}
