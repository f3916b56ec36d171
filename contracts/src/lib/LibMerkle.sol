// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title LibMerkle
/// @notice The hashing rules of Ratchet's fixed-depth binary keccak-256 Merkle trees: the
///         Solidity twin of node/protocol/merkle.py (docs/protocol.md, "State commitment").
/// @dev Leaf `i` of a depth-`d` tree is reached from the root by the bits of `i`, most
///      significant first; a 0 bit goes left. An absent leaf hashes to 32 zero bytes and an
///      empty subtree of height `h` to `zeroHash(h)`.
library LibMerkle {
    /// @notice Thrown when more leaves are given than a tree of the given depth holds.
    error TooManyLeaves(uint256 count, uint256 depth);

    /// @notice Hash of an absent leaf (a leaf whose record is empty).
    bytes32 internal constant EMPTY_LEAF = bytes32(0);

    /// @notice The hash of a leaf holding `record`: keccak256(record), or zero when empty.
    function hashLeaf(bytes memory record) internal pure returns (bytes32) {
        return record.length == 0 ? EMPTY_LEAF : keccak256(record);
    }

    /// @notice The parent of two nodes: keccak256(left || right).
    function hashPair(bytes32 left, bytes32 right) internal pure returns (bytes32 parent) {
        assembly ("memory-safe") {
            mstore(0x00, left)
            mstore(0x20, right)
            parent := keccak256(0x00, 0x40)
        }
    }

    /// @notice The root of an empty subtree of height `height`.
    function zeroHash(uint256 height) internal pure returns (bytes32 node) {
        for (uint256 h = 0; h < height; ++h) {
            node = hashPair(node, node);
        }
    }

    /// @notice The root reached from `leaf` at `index` through bottom-up `siblings`; the
    ///         tree's depth is `siblings.length`.
    function rootFromPath(bytes32 leaf, uint256 index, bytes32[] memory siblings)
        internal
        pure
        returns (bytes32 node)
    {
        node = leaf;
        for (uint256 level = 0; level < siblings.length; ++level) {
            if ((index >> level) & 1 == 1) {
                node = hashPair(siblings[level], node);
            } else {
                node = hashPair(node, siblings[level]);
            }
        }
    }

    /// @notice The root of a depth-`depth` tree whose first leaves are `leaves` and whose
    ///         other leaves are absent. Overwrites `leaves`.
    function merkleRoot(uint256 depth, bytes32[] memory leaves) internal pure returns (bytes32) {
        uint256 count = leaves.length;
        if (depth < 256 && count > (uint256(1) << depth)) revert TooManyLeaves(count, depth);
        if (count == 0) return zeroHash(depth);
        bytes32 zero = EMPTY_LEAF;
        for (uint256 height = 0; height < depth; ++height) {
            uint256 parents = (count + 1) / 2;
            for (uint256 i = 0; i < parents; ++i) {
                bytes32 left = leaves[2 * i];
                bytes32 right = 2 * i + 1 < count ? leaves[2 * i + 1] : zero;
                leaves[i] = hashPair(left, right);
            }
            count = parents;
            zero = hashPair(zero, zero);
        }
        return leaves[0];
    }
}
