// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title LibRLP
/// @notice A reader of canonical RLP in calldata: the Solidity twin of the checks of
///         node/protocol/encoding.py `decode_rlp` (docs/protocol.md, section 2). It accepts an
///         item exactly when the item is the unique canonical RLP encoding of what it decodes
///         to, and never reverts: every function reports failure with an `ok` flag.
/// @dev Offsets are absolute calldata offsets (e.g. `data.offset + i`), so one reader serves
///      any `bytes calldata` argument without copying it. An item's header is canonical when
///      - a single byte below 0x80 stands for itself (never wrapped as `0x81 b`);
///      - a string or list payload under 56 bytes uses the short form (`0x80 + len`,
///        `0xc0 + len`), and one of 56 bytes or more the long form, whose length has no
///        leading zero byte.
///      A list is canonical when its items are and they fill its payload exactly; this
///      library checks items one at a time (`readItem` inside the list's payload), so a
///      caller that walks every item of a list checks the whole list.
library LibRLP {
    /// @notice The header of the canonical RLP item starting at calldata offset `offset`, which
    ///         must end at or before offset `end`.
    /// @return ok Whether the header is canonical and the item lies within [offset, end).
    /// @return isList Whether the item is a list (else a byte string).
    /// @return payload Calldata offset of the item's payload.
    /// @return length Length of the payload in bytes; the item ends at `payload + length`.
    function readItem(uint256 offset, uint256 end)
        internal
        pure
        returns (bool ok, bool isList, uint256 payload, uint256 length)
    {
        assembly ("memory-safe") {
            // `offset < end` and every sum below stays far from overflow: `end` is a calldata
            // offset (below 2^32 in practice) and `length` is checked below 2^64 first.
            if lt(offset, end) {
                let b := byte(0, calldataload(offset))
                switch lt(b, 0xc0)
                case 1 {
                    // a byte string
                    switch lt(b, 0x80)
                    case 1 {
                        // a single byte below 0x80: itself
                        ok := 1
                        payload := offset
                        length := 1
                    }
                    default {
                        switch lt(b, 0xb8)
                        case 1 {
                            // short string: 0..55 bytes; a single byte must be >= 0x80
                            payload := add(offset, 1)
                            length := sub(b, 0x80)
                            ok := 1
                            if eq(length, 1) {
                                if lt(payload, end) { ok := iszero(lt(byte(0, calldataload(payload)), 0x80)) }
                            }
                        }
                        default {
                            // long string: 1..8 length bytes, no leading zero, length >= 56
                            let n := sub(b, 0xb7)
                            if iszero(gt(add(offset, add(1, n)), end)) {
                                let word := calldataload(add(offset, 1))
                                length := shr(sub(256, shl(3, n)), word)
                                payload := add(offset, add(1, n))
                                ok := and(iszero(iszero(byte(0, word))), iszero(lt(length, 56)))
                            }
                        }
                    }
                }
                default {
                    isList := 1
                    switch lt(b, 0xf8)
                    case 1 {
                        payload := add(offset, 1)
                        length := sub(b, 0xc0)
                        ok := 1
                    }
                    default {
                        let n := sub(b, 0xf7)
                        if iszero(gt(add(offset, add(1, n)), end)) {
                            let word := calldataload(add(offset, 1))
                            length := shr(sub(256, shl(3, n)), word)
                            payload := add(offset, add(1, n))
                            ok := and(iszero(iszero(byte(0, word))), iszero(lt(length, 56)))
                        }
                    }
                }
                // the payload must end within the bound (`length` < 2^64: no overflow)
                if gt(add(payload, length), end) { ok := 0 }
            }
            if iszero(ok) {
                isList := 0
                payload := 0
                length := 0
            }
        }
    }

    /// @notice The header of `data` read as one canonical RLP item spanning all of it.
    /// @return ok Whether `data` is one canonical item header whose item ends exactly at
    ///         the end of `data` (an empty `data` is not).
    /// @return isList Whether the item is a list.
    /// @return payload Calldata offset of the item's payload.
    /// @return length Length of the payload.
    function readWhole(bytes calldata data)
        internal
        pure
        returns (bool ok, bool isList, uint256 payload, uint256 length)
    {
        uint256 end = _end(data);
        (ok, isList, payload, length) = readItem(_start(data), end);
        if (ok && payload + length != end) return (false, false, 0, 0);
    }

    /// @notice The byte string at (payload, length) as a big-endian unsigned integer of at
    ///         most `maxBytes` bytes (<= 32), canonical: no leading zero byte, 0 is empty.
    /// @return ok Whether the payload is such an integer.
    /// @return value The integer.
    function readUint(uint256 payload, uint256 length, uint256 maxBytes)
        internal
        pure
        returns (bool ok, uint256 value)
    {
        if (length > maxBytes || maxBytes > 32) return (false, 0);
        if (length == 0) return (true, 0);
        assembly ("memory-safe") {
            let word := calldataload(payload)
            ok := iszero(iszero(byte(0, word)))
            value := mul(ok, shr(sub(256, shl(3, length)), word))
        }
    }

    function _start(bytes calldata data) private pure returns (uint256 offset) {
        assembly ("memory-safe") {
            offset := data.offset
        }
    }

    function _end(bytes calldata data) private pure returns (uint256 offset) {
        assembly ("memory-safe") {
            offset := add(data.offset, data.length)
        }
    }
}
