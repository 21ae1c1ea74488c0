//! The ABIs the EVM reader speaks (ERC-721, ERC-1155, ERC-20 reads and Multicall3
//! `aggregate3`), how an [`EvmQuery`] becomes calldata, and the strict decoding of answers.
//!
//! Decoding never panics and never guesses: a `uint256` answer is exactly one 32-byte word, an
//! `address` answer is one word whose first 12 bytes are zero. Anything else (empty return data
//! from an address without code, a short or long return, dirty padding) is
//! [`EvmAnswer::Reverted`]: the contract did not answer the question.

use alloy::{
    primitives::{Address, Bytes, U256, address},
    sol,
    sol_types::SolCall,
};

use crate::chain::{EvmAnswer, EvmQuery};

sol! {
    /// ERC-721 reads.
    interface IErc721 {
        function balanceOf(address owner) external view returns (uint256);
        function ownerOf(uint256 tokenId) external view returns (address);
    }
    /// ERC-1155 reads.
    interface IErc1155 {
        function balanceOf(address account, uint256 id) external view returns (uint256);
    }
    /// ERC-20 reads.
    interface IErc20 {
        function balanceOf(address account) external view returns (uint256);
    }
    /// The public Multicall3 interface (only what the reader uses).
    interface IMulticall3 {
        struct Call3 {
            address target;
            bool allowFailure;
            bytes callData;
        }
        struct Result {
            bool success;
            bytes returnData;
        }
        function aggregate3(Call3[] calldata calls)
            external
            payable
            returns (Result[] memory returnData);
    }
}

/// Where Multicall3 lives on every chain that has it (deployed with a keyless transaction).
pub(crate) const MULTICALL3: Address = address!("0xcA11bde05977b3631167028862bE2a173976CA11");

/// The contract to call and the calldata for `query`.
pub(crate) fn encode(query: &EvmQuery) -> (Address, Bytes) {
    let (contract, data) = match query {
        EvmQuery::Erc721Balance { contract, owner } => (
            contract,
            IErc721::balanceOfCall {
                owner: Address::from(*owner),
            }
            .abi_encode(),
        ),
        EvmQuery::Erc721OwnerOf { contract, token_id } => (
            contract,
            IErc721::ownerOfCall {
                tokenId: U256::from_be_bytes(*token_id),
            }
            .abi_encode(),
        ),
        EvmQuery::Erc1155Balance {
            contract,
            owner,
            token_id,
        } => (
            contract,
            IErc1155::balanceOfCall {
                account: Address::from(*owner),
                id: U256::from_be_bytes(*token_id),
            }
            .abi_encode(),
        ),
        EvmQuery::Erc20Balance { contract, owner } => (
            contract,
            IErc20::balanceOfCall {
                account: Address::from(*owner),
            }
            .abi_encode(),
        ),
    };
    (Address::from(*contract), data.into())
}

/// `query`'s answer from the call's return data (see the module docs for the rules).
pub(crate) fn decode(query: &EvmQuery, ret: &[u8]) -> EvmAnswer {
    let Ok(word) = <[u8; 32]>::try_from(ret) else {
        return EvmAnswer::Reverted;
    };
    match query {
        EvmQuery::Erc721OwnerOf { .. } => match word.split_at(12) {
            (pad, addr) if pad.iter().all(|b| *b == 0) => {
                // `addr` is the 20 bytes after the 12 of padding.
                EvmAnswer::Address(addr.try_into().expect("32 - 12 = 20 bytes"))
            }
            _ => EvmAnswer::Reverted,
        },
        EvmQuery::Erc721Balance { .. }
        | EvmQuery::Erc1155Balance { .. }
        | EvmQuery::Erc20Balance { .. } => EvmAnswer::Uint(word),
    }
}

/// Calldata of one `aggregate3` call carrying `queries`, each with `allowFailure = true`.
pub(crate) fn aggregate3(queries: &[EvmQuery]) -> Bytes {
    let calls = queries
        .iter()
        .map(|q| {
            let (target, call_data) = encode(q);
            IMulticall3::Call3 {
                target,
                allowFailure: true,
                callData: call_data,
            }
        })
        .collect();
    IMulticall3::aggregate3Call { calls }.abi_encode().into()
}

/// The answers to `queries` from `aggregate3`'s return data: a failed sub-call is
/// [`EvmAnswer::Reverted`]. `None` when the return data is not a well-formed `Result[]` of
/// exactly one entry per query (not Multicall3 at that address or block, or a broken node).
pub(crate) fn decode_aggregate3(queries: &[EvmQuery], ret: &[u8]) -> Option<Vec<EvmAnswer>> {
    let results = IMulticall3::aggregate3Call::abi_decode_returns_validate(ret).ok()?;
    if results.len() != queries.len() {
        return None;
    }
    Some(
        queries
            .iter()
            .zip(results)
            .map(|(q, r)| {
                if r.success {
                    decode(q, &r.returnData)
                } else {
                    EvmAnswer::Reverted
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: [u8; 20] = [0xc0; 20];
    const OWNER: [u8; 20] = [0x0a; 20];

    fn owner_of(id: u8) -> EvmQuery {
        let mut token_id = [0; 32];
        token_id[31] = id;
        EvmQuery::Erc721OwnerOf {
            contract: C,
            token_id,
        }
    }

    #[test]
    fn encodes_standard_selectors_and_arguments() {
        let (to, data) = encode(&EvmQuery::Erc721Balance {
            contract: C,
            owner: OWNER,
        });
        assert_eq!(to, Address::from(C));
        assert_eq!(data[..4], [0x70, 0xa0, 0x82, 0x31], "balanceOf(address)");
        assert_eq!(data[4..16], [0; 12]);
        assert_eq!(data[16..36], OWNER);
        assert_eq!(data.len(), 36);

        let (_, data) = encode(&owner_of(7));
        assert_eq!(data[..4], [0x63, 0x52, 0x21, 0x1e], "ownerOf(uint256)");
        assert_eq!(data[35], 7);

        let (_, data) = encode(&EvmQuery::Erc1155Balance {
            contract: C,
            owner: OWNER,
            token_id: [0xff; 32],
        });
        assert_eq!(
            data[..4],
            [0x00, 0xfd, 0xd5, 0x8e],
            "balanceOf(address,uint256)"
        );
        assert_eq!(data[36..68], [0xff; 32]);

        let (_, data) = encode(&EvmQuery::Erc20Balance {
            contract: C,
            owner: OWNER,
        });
        assert_eq!(data[..4], [0x70, 0xa0, 0x82, 0x31]);
        assert_eq!(
            IMulticall3::aggregate3Call::SELECTOR,
            [0x82, 0xad, 0x56, 0xcb]
        );
    }

    #[test]
    fn decodes_strictly() {
        let balance = EvmQuery::Erc20Balance {
            contract: C,
            owner: OWNER,
        };
        let mut word = [0u8; 32];
        word[31] = 5;
        assert_eq!(decode(&balance, &word), EvmAnswer::Uint(word));
        assert_eq!(decode(&balance, &[]), EvmAnswer::Reverted, "no code");
        assert_eq!(decode(&balance, &word[..31]), EvmAnswer::Reverted);
        assert_eq!(decode(&balance, &[0; 64]), EvmAnswer::Reverted, "two words");

        let mut addr = [0u8; 32];
        addr[12..].copy_from_slice(&OWNER);
        assert_eq!(decode(&owner_of(1), &addr), EvmAnswer::Address(OWNER));
        addr[0] = 1;
        assert_eq!(decode(&owner_of(1), &addr), EvmAnswer::Reverted, "dirty");
        assert_eq!(decode(&owner_of(1), &[]), EvmAnswer::Reverted);
    }

    #[test]
    fn round_trips_aggregate3() {
        let queries = vec![
            owner_of(1),
            owner_of(2),
            EvmQuery::Erc721Balance {
                contract: C,
                owner: OWNER,
            },
        ];
        let data = aggregate3(&queries);
        let call = IMulticall3::aggregate3Call::abi_decode(&data).unwrap();
        assert_eq!(call.calls.len(), 3);
        assert!(call.calls.iter().all(|c| c.allowFailure));
        assert_eq!(call.calls[1].callData, encode(&queries[1]).1);

        let mut addr = [0u8; 32];
        addr[12..].copy_from_slice(&OWNER);
        let one = U256::from(1).to_be_bytes::<32>();
        let results = vec![
            IMulticall3::Result {
                success: true,
                returnData: addr.to_vec().into(),
            },
            IMulticall3::Result {
                success: false,
                returnData: vec![0x7e, 0x27, 0x32, 0x89].into(),
            },
            IMulticall3::Result {
                success: true,
                returnData: one.to_vec().into(),
            },
        ];
        let ret = IMulticall3::aggregate3Call::abi_encode_returns(&results);
        assert_eq!(
            decode_aggregate3(&queries, &ret).unwrap(),
            vec![
                EvmAnswer::Address(OWNER),
                EvmAnswer::Reverted,
                EvmAnswer::Uint(one)
            ]
        );
        assert_eq!(decode_aggregate3(&queries[..2], &ret), None, "count");
        assert_eq!(decode_aggregate3(&queries, &[]), None, "no code");
        assert_eq!(decode_aggregate3(&queries, &ret[..ret.len() - 1]), None);
    }
}
