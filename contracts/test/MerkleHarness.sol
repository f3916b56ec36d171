// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LibMerkle} from "../src/lib/LibMerkle.sol";
import {LibStateLayout} from "../src/lib/LibStateLayout.sol";

/// @notice Exposes the Merkle libraries for the differential tests against the Python core.
contract MerkleHarness {
    function hashLeaf(bytes calldata record) external pure returns (bytes32) {
        return LibMerkle.hashLeaf(record);
    }

    function zeroHash(uint256 height) external pure returns (bytes32) {
        return LibMerkle.zeroHash(height);
    }

    function rootFromPath(bytes32 leaf, uint256 index, bytes32[] calldata siblings)
        external
        pure
        returns (bytes32)
    {
        return LibMerkle.rootFromPath(leaf, index, siblings);
    }

    function merkleRoot(uint256 depth, bytes32[] calldata leaves) external pure returns (bytes32) {
        return LibMerkle.merkleRoot(depth, leaves);
    }

    function tableDepth(uint256 table) external pure returns (uint256) {
        return LibStateLayout.depth(table);
    }

    function verifyState(
        bytes32 root,
        uint256 table,
        uint256 index,
        bytes calldata record,
        bytes32[] calldata siblings
    ) external pure returns (bool) {
        return LibStateLayout.verify(root, table, index, record, siblings);
    }

    function stateRootWith(
        uint256 table,
        uint256 index,
        bytes calldata record,
        bytes32[] calldata siblings
    ) external pure returns (bytes32) {
        return LibStateLayout.rootWith(table, index, record, siblings);
    }
}
