// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LibMerkle} from "./LibMerkle.sol";

/// @title LibBatch
/// @notice A batch's transaction list as posted in calldata: the canonical RLP list of byte
///         strings `[tx_1, ..., tx_n]` (the inner list of docs/protocol.md section 3), and its
///         transaction root. The Solidity twin of the transaction part of
///         node/protocol/batch.py: it accepts exactly the lists `decode_batch` accepts and
///         computes `transactions_root`.
/// @dev Accepted: one RLP list spanning all the bytes, whose items are byte strings of at most
///      MAX_TRANSACTION_BYTES, at most MAX_BATCH_TRANSACTIONS of them, every length prefix
///      minimal (canonical RLP: a single byte below 0x80 is its own encoding, the long forms
///      only from 56 bytes, no leading zero in a length). Everything else reverts.
library LibBatch {
    /// @notice Depth of a batch's transaction tree (batch.py TX_TREE_DEPTH).
    uint256 internal constant TX_TREE_DEPTH = 16;
    /// @notice Most transactions one batch may carry (batch.py MAX_BATCH_TRANSACTIONS).
    uint256 internal constant MAX_BATCH_TRANSACTIONS = 1 << 16;
    /// @notice Longest transaction (transactions.py MAX_TRANSACTION_BYTES).
    uint256 internal constant MAX_TRANSACTION_BYTES = 256;

    /// @notice Failure codes of the assembly walk (each reverts with its error below).
    uint256 private constant MALFORMED = 1;
    uint256 private constant TOO_LONG = 2;
    uint256 private constant TOO_MANY = 3;

    /// @notice The bytes at `offset` are not canonical RLP of a list of byte strings.
    error MalformedTransactionList(uint256 offset);
    /// @notice Transaction `index` is `length` bytes, over MAX_TRANSACTION_BYTES.
    error TransactionTooLong(uint256 index, uint256 length);
    /// @notice More than MAX_BATCH_TRANSACTIONS transactions.
    error TooManyTransactions();

    /// @notice The transaction root of the list and its number of transactions.
    function transactionsRoot(bytes calldata list)
        internal
        pure
        returns (bytes32 root, uint256 count)
    {
        bytes32[] memory leaves = transactionLeaves(list);
        count = leaves.length;
        root = merkleRootInPlace(leaves);
    }

    /// @notice keccak256 of every transaction of the list, in order (batch.py
    ///         transaction_leaf); reverts unless the list is canonical.
    /// @dev One pass in assembly (the walk is most of postBatch's execution cost). An item
    ///      is a byte below 0x80 (itself), or 0x80 + length (0..55 bytes; length 1 only for a
    ///      byte >= 0x80), or 0xb7 + n followed by an n-byte length >= 56 without a leading
    ///      zero; a prefix >= 0xc0 (a nested list), an item running past the payload, or one
    ///      over MAX_TRANSACTION_BYTES reverts. Memory: a
    ///      MAX_TRANSACTION_BYTES scratch buffer at the free pointer, then the array, written
    ///      past the free pointer while no Solidity code runs and allocated at the end with
    ///      one spare word (merkleRootInPlace pads an odd level there).
    function transactionLeaves(bytes calldata list)
        internal
        pure
        returns (bytes32[] memory leaves)
    {
        (uint256 offset, uint256 end) = listPayload(list);
        uint256 count = 0;
        uint256 length = 0;
        uint256 failure = 0; // 0: none; else the item at `offset` fails with error `failure`
        assembly ("memory-safe") {
            let base := list.offset
            let buffer := mload(0x40)
            leaves := add(buffer, MAX_TRANSACTION_BYTES)
            for {} lt(offset, end) {} {
                let prefix := byte(0, calldataload(add(base, offset)))
                let start := add(offset, 1)
                length := 1
                switch lt(prefix, 0x80)
                case 1 { start := offset } // a single byte below 0x80 is its own encoding
                default {
                    switch lt(prefix, 0xb8)
                    case 1 {
                        length := sub(prefix, 0x80)
                        // one byte below 0x80 must not be wrapped (read within bounds: a
                        // truncated item fails below, with the same error)
                        if and(eq(length, 1), lt(byte(0, calldataload(add(base, start))), 0x80)) {
                            failure := MALFORMED
                            break
                        }
                    }
                    default {
                        if gt(prefix, 0xbf) {
                            failure := MALFORMED // a nested list
                            break
                        }
                        let lengthBytes := sub(prefix, 0xb7)
                        // at most 4 length bytes, inside the payload, no leading zero, >= 56
                        if or(gt(lengthBytes, 4), gt(add(start, lengthBytes), end)) {
                            failure := MALFORMED
                            break
                        }
                        let word := calldataload(add(base, start))
                        length := shr(sub(256, shl(3, lengthBytes)), word)
                        if or(iszero(byte(0, word)), lt(length, 56)) {
                            failure := MALFORMED
                            break
                        }
                        start := add(start, lengthBytes)
                    }
                }
                if gt(add(start, length), end) {
                    failure := MALFORMED
                    break
                }
                if gt(length, MAX_TRANSACTION_BYTES) {
                    failure := TOO_LONG
                    break
                }
                if eq(count, MAX_BATCH_TRANSACTIONS) {
                    failure := TOO_MANY
                    break
                }
                calldatacopy(buffer, add(base, start), length)
                count := add(count, 1)
                mstore(add(leaves, shl(5, count)), keccak256(buffer, length))
                offset := add(start, length)
            }
            mstore(leaves, count)
            mstore(0x40, add(leaves, shl(5, add(count, 2))))
        }
        if (failure == MALFORMED) revert MalformedTransactionList(offset);
        if (failure == TOO_LONG) revert TransactionTooLong(count, length);
        if (failure == TOO_MANY) revert TooManyTransactions();
    }

    /// @notice The root of the depth-TX_TREE_DEPTH tree whose first leaves are `leaves`
    ///         (LibMerkle.merkleRoot's rule: absent leaves are zero, an inner node is
    ///         keccak256(left || right)), hashing in place; overwrites `leaves` and the word
    ///         after it (which transactionLeaves allocates).
    /// @dev Level by level: an odd level is padded with the empty-subtree hash of its height,
    ///      then pair i is hashed into slot i (slot i <= 2i, so no pair is overwritten before
    ///      it is read).
    function merkleRootInPlace(bytes32[] memory leaves) private pure returns (bytes32 root) {
        if (leaves.length == 0) return LibMerkle.zeroHash(TX_TREE_DEPTH);
        assembly ("memory-safe") {
            let data := add(leaves, 0x20)
            let count := mload(leaves)
            let zero := 0
            for { let height := 0 } lt(height, TX_TREE_DEPTH) { height := add(height, 1) } {
                if and(count, 1) {
                    mstore(add(data, shl(5, count)), zero)
                    count := add(count, 1)
                }
                count := shr(1, count)
                for { let i := 0 } lt(i, count) { i := add(i, 1) } {
                    mstore(add(data, shl(5, i)), keccak256(add(data, shl(6, i)), 0x40))
                }
                mstore(0x00, zero)
                mstore(0x20, zero)
                zero := keccak256(0x00, 0x40)
            }
            root := mload(data)
        }
    }

    /// @notice Where the payload of the list spanning all of `list` starts and ends.
    function listPayload(bytes calldata list) internal pure returns (uint256 start, uint256 end) {
        if (list.length == 0) revert MalformedTransactionList(0);
        uint256 prefix = uint8(list[0]);
        if (prefix < 0xc0) revert MalformedTransactionList(0); // a byte string, not a list
        uint256 length;
        if (prefix <= 0xf7) {
            start = 1;
            length = prefix - 0xc0;
        } else {
            uint256 lengthBytes = prefix - 0xf7;
            length = longLength(list, 1, lengthBytes, list.length);
            start = 1 + lengthBytes;
        }
        end = start + length;
        if (end != list.length) revert MalformedTransactionList(0); // truncated or trailing bytes
    }

    /// @notice A long-form length of `lengthBytes` big-endian bytes at `offset` (before
    ///         `end`): minimal (no leading zero, at least 56) and at most 4 bytes (no calldata
    ///         is 4 GiB long, so a longer length would point past the end anyway).
    function longLength(bytes calldata list, uint256 offset, uint256 lengthBytes, uint256 end)
        internal
        pure
        returns (uint256 length)
    {
        if (lengthBytes > 4 || offset + lengthBytes > end || uint8(list[offset]) == 0) {
            revert MalformedTransactionList(offset - 1);
        }
        for (uint256 i = 0; i < lengthBytes; ++i) {
            length = (length << 8) | uint8(list[offset + i]);
        }
        if (length < 56) revert MalformedTransactionList(offset - 1);
    }
}
