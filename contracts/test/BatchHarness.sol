// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LibBatch} from "../src/lib/LibBatch.sol";

/// @notice Exposes LibBatch for the differential tests against node/protocol/batch.py.
contract BatchHarness {
    function transactionsRoot(bytes calldata list)
        external
        pure
        returns (bytes32 root, uint256 count)
    {
        return LibBatch.transactionsRoot(list);
    }

    function transactionLeaves(bytes calldata list) external pure returns (bytes32[] memory) {
        return LibBatch.transactionLeaves(list);
    }
}
