// SPDX-License-Identifier: Apache-2.0
// Test tokens for NFT/token entitlement checks on the local anvil chain: the smallest
// OpenZeppelin 5 ERC-721, ERC-1155 and ERC-20 that the deployer (anvil's dev account 0) can
// mint. Transfers are OpenZeppelin's standard ones. Never deploy these anywhere that holds value.
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// ERC-721 whose owner mints any id to anyone.
contract TestErc721 is ERC721, Ownable {
    constructor() ERC721("StreamGate Test 721", "SG721") Ownable(msg.sender) {}

    /// Mints token `id` to `to` (reverts if it exists).
    function mint(address to, uint256 id) external onlyOwner {
        _mint(to, id);
    }
}

/// ERC-1155 whose owner mints any amount of any id to anyone.
contract TestErc1155 is ERC1155, Ownable {
    constructor() ERC1155("") Ownable(msg.sender) {}

    /// Mints `amount` of token `id` to `to`.
    function mint(address to, uint256 id, uint256 amount) external onlyOwner {
        _mint(to, id, amount, "");
    }
}

/// ERC-20 whose owner mints any amount to anyone.
contract TestErc20 is ERC20, Ownable {
    constructor() ERC20("StreamGate Test 20", "SG20") Ownable(msg.sender) {}

    /// Mints `amount` base units to `to`.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
