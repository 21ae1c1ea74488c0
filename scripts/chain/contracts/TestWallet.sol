// SPDX-License-Identifier: Apache-2.0
// Test fixtures for contract-wallet sign-in (EIP-1271, EIP-6492) on the local anvil chain.
// Never deploy these anywhere that holds value: they exist so StreamGate's tests can sign in
// as a smart-contract account whose owner key the tests hold.
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

/// Magic values and the owner check shared by both test wallets.
abstract contract OwnedSigner {
    /// EIP-1271 `isValidSignature(bytes32,bytes)` success value.
    bytes4 internal constant MAGIC_1271 = 0x1626ba7e;
    /// Legacy (pre-final EIP-1271, Safe) `isValidSignature(bytes,bytes)` success value.
    bytes4 internal constant MAGIC_LEGACY = 0x20c13b0b;
    /// Returned for any signature that is not the owner's.
    bytes4 internal constant INVALID = 0xffffffff;

    /// The EOA whose ECDSA signatures this wallet accepts.
    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    /// True iff `signature` (65 bytes r‖s‖v, or 64-byte EIP-2098) over `digest` recovers to
    /// `owner`. Malformed or malleable (high-s) signatures are false, never a revert.
    function signedByOwner(bytes32 digest, bytes memory signature) internal view returns (bool) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        return err == ECDSA.RecoverError.NoError && signer == owner;
    }
}

/// A minimal ERC-1271 smart-contract wallet owned by one EOA.
///
/// - `isValidSignature(bytes32 hash, bytes signature)` (final EIP-1271): `0x1626ba7e` iff the
///   owner signed `hash` itself (no further hashing; for SIWE, `hash` is the EIP-191
///   `personal_sign` digest of the message).
/// - `isValidSignature(bytes data, bytes signature)` (legacy, Safe-style): `0x20c13b0b` iff the
///   owner signed the EIP-191 `personal_sign` digest of `data`, i.e.
///   keccak256("\x19Ethereum Signed Message:\n" ‖ len(data) ‖ data). So one `personal_sign`
///   signature of a SIWE message is valid through both entry points: the modern one with the
///   message's EIP-191 hash, the legacy one with the message bytes.
contract TestWallet is OwnedSigner, IERC1271 {
    constructor(address owner_) OwnedSigner(owner_) {}

    function isValidSignature(bytes32 hash, bytes memory signature) external view returns (bytes4) {
        return signedByOwner(hash, signature) ? MAGIC_1271 : INVALID;
    }

    function isValidSignature(bytes memory data, bytes memory signature) external view returns (bytes4) {
        return signedByOwner(MessageHashUtils.toEthSignedMessageHash(data), signature) ? MAGIC_LEGACY : INVALID;
    }
}

/// A wallet that only speaks the legacy `isValidSignature(bytes,bytes)` (same hashing as
/// TestWallet's legacy entry point). Calling the bytes32 variant reverts: there is no fallback.
contract LegacyTestWallet is OwnedSigner {
    constructor(address owner_) OwnedSigner(owner_) {}

    function isValidSignature(bytes memory data, bytes memory signature) external view returns (bytes4) {
        return signedByOwner(MessageHashUtils.toEthSignedMessageHash(data), signature) ? MAGIC_LEGACY : INVALID;
    }
}

/// CREATE2 factory of TestWallets, for counterfactual (EIP-6492) sign-in: a wallet's address is
/// known before it exists, and `deploy(owner, salt)` is the "factory calldata" that creates it.
contract TestWalletFactory {
    /// Deploys the TestWallet of (`owner`, `salt`), or returns it when it already exists.
    function deploy(address owner, bytes32 salt) external returns (address wallet) {
        wallet = addressOf(owner, salt);
        if (wallet.code.length == 0) {
            wallet = address(new TestWallet{salt: salt}(owner));
        }
    }

    /// The address `deploy(owner, salt)` creates.
    function addressOf(address owner, bytes32 salt) public view returns (address) {
        bytes32 initHash = keccak256(abi.encodePacked(type(TestWallet).creationCode, abi.encode(owner)));
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, initHash)))));
    }
}
