// SPDX-License-Identifier: Apache-2.0
// A Multicall3-compatible batcher for the local anvil chain: the public Multicall3 interface's
// `aggregate3` (same selector, same ABI), written for StreamGate's tests. scripts/chain/multicall.mjs
// places its runtime code at the canonical address 0xcA11bde05977b3631167028862bE2a173976CA11
// with `anvil_setCode`, so the EVM reader's batched path runs against a real node.
pragma solidity ^0.8.24;

contract Multicall3 {
    /// One call: where, whether its failure is tolerated, and the calldata.
    struct Call3 {
        address target;
        bool allowFailure;
        bytes callData;
    }

    /// One call's outcome: whether it succeeded and what it returned (or its revert data).
    struct Result {
        bool success;
        bytes returnData;
    }

    /// Makes each call in order with all remaining gas (less the 1/64 the EVM keeps back) and
    /// returns the outcomes in the same order. Reverts with "Multicall3: call failed" when a call
    /// with `allowFailure = false` fails.
    function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory results) {
        uint256 n = calls.length;
        results = new Result[](n);
        for (uint256 i = 0; i < n; ++i) {
            Call3 calldata c = calls[i];
            (bool success, bytes memory returnData) = c.target.call(c.callData);
            require(success || c.allowFailure, "Multicall3: call failed");
            results[i] = Result(success, returnData);
        }
    }

    /// The current block number (a Multicall3 helper, handy for checking a deployment).
    function getBlockNumber() external view returns (uint256) {
        return block.number;
    }
}
