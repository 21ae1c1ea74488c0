// SPDX-License-Identifier: Apache-2.0
// Deployless EIP-6492 signature validator, written for StreamGate after the EIP's reference
// `ValidateSigOffchain` / `UniversalSigValidator` (https://eips.ethereum.org/EIPS/eip-6492).
pragma solidity ^0.8.24;

interface IERC1271Wallet {
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4);
}

/// Never deployed: origin sends its creation code plus `abi.encode(signer, hash, signature)` as an
/// `eth_call` with no `to`. The constructor runs the check and returns ONE byte as the call's
/// result: 0x01 valid, 0x00 not valid. Deployment side effects (the factory call) happen inside
/// the simulated call only and are never committed.
///
/// Order (EIP-6492 "Verifier side"):
/// 1. `signature` ends with the 32-byte suffix 0x6492…6492: it is
///    `abi.encode(address factory, bytes factoryCalldata, bytes innerSignature) ‖ suffix`.
///    If `signer` has no code, call `factory` with `factoryCalldata` (deploying the wallet), then
///    ask ERC-1271 with `innerSignature`. If the wallet already had code and says no, the
///    calldata may be a "prepare" call (e.g. a key rotation): make it and ask once more.
/// 2. Otherwise, if `signer` has code: ERC-1271 with `signature` as is.
/// 3. Otherwise: `ecrecover` of a 65-byte r‖s‖v signature.
/// A wallet that reverts or returns anything but 0x1626ba7e is "not valid", never an error.
contract Erc6492Validator {
    bytes32 private constant SUFFIX = 0x6492649264926492649264926492649264926492649264926492649264926492;
    bytes4 private constant MAGIC_1271 = 0x1626ba7e;

    constructor(address signer, bytes32 hash, bytes memory signature) {
        bool valid = check(signer, hash, signature);
        assembly {
            mstore(0, valid)
            return(31, 1)
        }
    }

    function check(address signer, bytes32 hash, bytes memory signature) private returns (bool) {
        uint256 len = signature.length;
        bytes32 tail;
        if (len >= 32) {
            assembly {
                tail := mload(add(signature, len))
            }
        }
        if (tail == SUFFIX) {
            // Drop the suffix in place, then decode the wrapper.
            assembly {
                mstore(signature, sub(len, 32))
            }
            (address factory, bytes memory factoryCalldata, bytes memory inner) =
                abi.decode(signature, (address, bytes, bytes));
            bool hadCode = signer.code.length > 0;
            if (!hadCode) {
                (bool ok,) = factory.call(factoryCalldata);
                if (!ok || signer.code.length == 0) return false;
            }
            if (ask1271(signer, hash, inner)) return true;
            if (!hadCode) return false;
            (bool prepared,) = factory.call(factoryCalldata);
            return prepared && ask1271(signer, hash, inner);
        }
        if (signer.code.length > 0) return ask1271(signer, hash, signature);
        return recovers(signer, hash, signature);
    }

    function ask1271(address signer, bytes32 hash, bytes memory signature) private view returns (bool) {
        try IERC1271Wallet(signer).isValidSignature(hash, signature) returns (bytes4 magic) {
            return magic == MAGIC_1271;
        } catch {
            return false;
        }
    }

    function recovers(address signer, bytes32 hash, bytes memory signature) private pure returns (bool) {
        if (signature.length != 65) return false;
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(signature, 32))
            s := mload(add(signature, 64))
            v := byte(0, mload(add(signature, 96)))
        }
        if (v < 27) v += 27;
        // EIP-2: refuse high-s (malleable) signatures, as origin's own EOA check does.
        if (uint256(s) > 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0) return false;
        address recovered = ecrecover(hash, v, r, s);
        return recovered != address(0) && recovered == signer;
    }
}
