// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LibReason} from "./LibReason.sol";
import {LibRLP} from "./LibRLP.sol";

/// @title LibTransaction
/// @notice Decoding, EIP-712 digest and signer of an encoded transaction: the Solidity twin
///         of node/protocol/transactions.py and eip712.py (docs/protocol.md sections 1-2).
///         Decoding accepts exactly the canonical encodings the Python decoder accepts.
library LibTransaction {
    /// @notice Transaction kinds (the first byte of an encoded transaction).
    uint8 internal constant ORDER = 1;
    uint8 internal constant CANCEL = 2;
    uint8 internal constant CANCEL_ALL = 3;
    uint8 internal constant TRANSFER = 4;
    uint8 internal constant WITHDRAW = 5;
    uint8 internal constant LIQUIDATE = 6;
    uint8 internal constant ORACLE_PRICE = 7;

    /// @notice Longest encoded transaction accepted (`MAX_TRANSACTION_BYTES`).
    uint256 internal constant MAX_TRANSACTION_BYTES = 256;

    /// @notice Length of a signature `r || s || v` (`SIGNATURE_LENGTH`).
    uint256 internal constant SIGNATURE_LENGTH = 65;

    /// @notice Order of the secp256k1 group (`SECP256K1N`).
    uint256 internal constant SECP256K1N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    /// @notice Largest `s` of a canonical (EIP-2 "low s") signature (`SECP256K1N_HALF`).
    uint256 internal constant SECP256K1N_HALF = SECP256K1N / 2;

    /// @notice EIP-712 type hashes: keccak256 of each type's `encodeType` (eip712.py
    ///         `type_hash`; tests/vectors/transactions.json lists the same strings).
    bytes32 internal constant ORDER_TYPEHASH = keccak256(
        "Order(uint64 account,uint32 market,bool isBuy,uint64 price,uint64 size,uint8 timeInForce,bool reduceOnly,uint64 expiry,uint64 nonce)"
    );
    bytes32 internal constant CANCEL_TYPEHASH = keccak256("Cancel(uint64 account,bytes32 orderHash,uint64 nonce)");
    bytes32 internal constant CANCEL_ALL_TYPEHASH = keccak256("CancelAll(uint64 account,uint32 market,uint64 nonce)");
    bytes32 internal constant TRANSFER_TYPEHASH =
        keccak256("Transfer(uint64 account,uint64 to,uint64 amount,uint64 nonce)");
    bytes32 internal constant WITHDRAW_TYPEHASH =
        keccak256("Withdraw(uint64 account,address recipient,uint64 amount,uint64 nonce)");
    bytes32 internal constant LIQUIDATE_TYPEHASH =
        keccak256("Liquidate(uint64 account,uint64 target,uint32 market,uint64 nonce)");
    bytes32 internal constant ORACLE_PRICE_TYPEHASH =
        keccak256("OraclePrice(uint32 market,uint64 price,uint64 timestamp)");

    // Member types of the layouts below, one byte each (`_decodeMember`): 0x01, 0x04, 0x08 a
    // uint8/uint32/uint64 (at most that many bytes); BOOL; ADDRESS (exactly 20 bytes) and
    // BYTES32 (exactly 32 bytes) carry their fixed length in the low bits.
    uint256 private constant U8 = 0x01;
    uint256 private constant U32 = 0x04;
    uint256 private constant U64 = 0x08;
    uint256 private constant BOOL = 0x40;
    uint256 private constant FIXED = 0x80;
    uint256 private constant ADDRESS = 0x94; // FIXED | 20
    uint256 private constant BYTES32 = 0xa0; // FIXED | 32

    /// @notice A decoded, signature-checked transaction.
    /// @dev `fields[i]` is member `i` of the message as its EIP-712 word (section 1): an
    ///      integer as itself, a bool 0/1, an address as uint160, a bytes32 as uint256. E.g.
    ///      for an Order: fields[0] account, [1] market, [2] isBuy, [3] price, [4] size,
    ///      [5] timeInForce, [6] reduceOnly, [7] expiry, [8] nonce.
    struct Transaction {
        /// @notice Kind byte, 1..7.
        uint8 kind;
        /// @notice The message members as EIP-712 words, in declaration order.
        uint256[9] fields;
        /// @notice The EIP-712 digest in the given domain: the transaction hash.
        bytes32 digest;
        /// @notice The recovered signer.
        address signer;
    }

    /// @notice Decode `raw` and recover its signer. `reason` is 0 (ok), `LibReason.MALFORMED`
    ///         (any decoding error of section 2) or `LibReason.BAD_SIGNATURE` (no signer
    ///         recovers); never reverts.
    /// @dev As `stf.apply_transaction`: every `WireError` of `decode_transaction` (including a
    ///      non-canonical signature, checked by `SignedTransaction`) is MALFORMED; only a
    ///      canonical signature from which `ecrecover` recovers nobody is BAD_SIGNATURE. On
    ///      MALFORMED `t` is all zeros; on BAD_SIGNATURE it holds the decoded message and
    ///      digest, with `signer` zero.
    function parse(bytes calldata raw, bytes32 domainSeparator)
        internal
        pure
        returns (uint8 reason, Transaction memory t)
    {
        (bool ok, uint256 signature) = decodeTransaction(raw, t);
        if (!ok) return (LibReason.MALFORMED, _empty());
        t.digest = typedDataDigest(domainSeparator, structHash(t));
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := calldataload(signature)
            s := calldataload(add(signature, 32))
            v := byte(0, calldataload(add(signature, 64)))
        }
        t.signer = ecrecover(t.digest, v, r, s);
        if (t.signer == address(0)) return (LibReason.BAD_SIGNATURE, t);
        return (0, t);
    }

    /// @notice Decode `raw` into `t` (kind and fields); `ok` false for anything
    ///         `decode_transaction` rejects (a `WireError`). `signature` is the calldata
    ///         offset of the (canonical) 65-byte signature `r || s || v`.
    /// @dev The Python decoder, step by step: empty or longer than MAX_TRANSACTION_BYTES;
    ///      kind byte not 1..7; the rest not one canonical RLP list spanning it; the list not
    ///      `members + 1` byte strings; a member not canonical for its type; a signature not
    ///      canonical (`check_signature`). All are one error class here (MALFORMED).
    function decodeTransaction(bytes calldata raw, Transaction memory t)
        internal
        pure
        returns (bool ok, uint256 signature)
    {
        uint256 n = raw.length;
        if (n == 0 || n > MAX_TRANSACTION_BYTES) return (false, 0);
        uint256 kind = uint8(raw[0]);
        (bool known, uint256 count, uint256 types) = _layout(kind);
        if (!known) return (false, 0);
        t.kind = uint8(kind);
        uint256 start = _offset(raw);
        (ok, signature) = _decodeList(start + 1, start + n, count, types, t.fields);
        if (!ok) return (false, 0);
        uint256 r;
        uint256 s;
        uint256 v;
        assembly ("memory-safe") {
            r := calldataload(signature)
            s := calldataload(add(signature, 32))
            v := byte(0, calldataload(add(signature, 64)))
        }
        ok = checkSignature(r, s, v);
    }

    /// @dev The canonical RLP list spanning [p, end): `count` members of `types` decoded
    ///      into `fields`, then the signature, exactly SIGNATURE_LENGTH bytes. Returns the
    ///      calldata offset of the signature.
    function _decodeList(uint256 p, uint256 end, uint256 count, uint256 types, uint256[9] memory fields)
        private
        pure
        returns (bool ok, uint256 signature)
    {
        (bool isList, uint256 payload, uint256 length) = (false, 0, 0);
        (ok, isList, payload, length) = LibRLP.readItem(p, end);
        if (!ok || !isList || payload + length != end) return (false, 0);
        p = payload;
        for (uint256 i = 0; i < count; ++i) {
            (ok, isList, payload, length) = LibRLP.readItem(p, end);
            if (!ok || isList) return (false, 0);
            uint256 word;
            (ok, word) = _decodeMember(uint8(bytes1(bytes32(types << (8 * i)))), payload, length);
            if (!ok) return (false, 0);
            fields[i] = word;
            p = payload + length;
        }
        (ok, isList, payload, length) = LibRLP.readItem(p, end);
        if (!ok || isList || length != SIGNATURE_LENGTH || payload + length != end) return (false, 0);
        return (true, payload);
    }

    /// @notice Whether `r || s || v` is canonical (crypto.py `check_signature`): v is 27 or
    ///         28, 1 <= r < n, 1 <= s <= n/2 (EIP-2 low s).
    function checkSignature(uint256 r, uint256 s, uint256 v) internal pure returns (bool) {
        return (v == 27 || v == 28) && r >= 1 && r < SECP256K1N && s >= 1 && s <= SECP256K1N_HALF;
    }

    /// @notice EIP-712 `hashStruct` of the decoded message (eip712.py `hash_struct`): keccak256
    ///         of its type hash and one word per member.
    function structHash(Transaction memory t) internal pure returns (bytes32 h) {
        (, uint256 count,) = _layout(t.kind);
        bytes32 typeHash = typeHashOf(t.kind);
        uint256[9] memory fields = t.fields;
        assembly ("memory-safe") {
            // hash in free memory without allocating it
            let m := mload(0x40)
            mstore(m, typeHash)
            for { let i := 0 } lt(i, count) { i := add(i, 1) } {
                mstore(add(m, shl(5, add(i, 1))), mload(add(fields, shl(5, i))))
            }
            h := keccak256(m, shl(5, add(count, 1)))
        }
    }

    /// @notice The digest a wallet signs (eip712.py `typed_data_digest`):
    ///         keccak256(0x1901 || domainSeparator || structHash).
    function typedDataDigest(bytes32 domainSeparator, bytes32 structHash_) internal pure returns (bytes32 d) {
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 0x1901000000000000000000000000000000000000000000000000000000000000)
            mstore(add(m, 2), domainSeparator)
            mstore(add(m, 34), structHash_)
            d := keccak256(m, 66)
        }
    }

    /// @notice The EIP-712 type hash of transaction kind `kind` (zero for an unknown kind).
    function typeHashOf(uint256 kind) internal pure returns (bytes32) {
        if (kind == ORDER) return ORDER_TYPEHASH;
        if (kind == CANCEL) return CANCEL_TYPEHASH;
        if (kind == CANCEL_ALL) return CANCEL_ALL_TYPEHASH;
        if (kind == TRANSFER) return TRANSFER_TYPEHASH;
        if (kind == WITHDRAW) return WITHDRAW_TYPEHASH;
        if (kind == LIQUIDATE) return LIQUIDATE_TYPEHASH;
        if (kind == ORACLE_PRICE) return ORACLE_PRICE_TYPEHASH;
        return bytes32(0);
    }

    /// @dev Member count and member types (one byte each, first member in the top byte) of
    ///      each kind, in the order of the Python dataclasses (transactions.py).
    function _layout(uint256 kind) private pure returns (bool known, uint256 count, uint256 types) {
        if (kind == ORDER) {
            // account, market, isBuy, price, size, timeInForce, reduceOnly, expiry, nonce
            return (true, 9, uint256(bytes32(bytes9(0x080440080801400808))));
        }
        if (kind == CANCEL) return (true, 3, uint256(bytes32(bytes3(0x08a008)))); // account, orderHash, nonce
        if (kind == CANCEL_ALL) return (true, 3, uint256(bytes32(bytes3(0x080408)))); // account, market, nonce
        if (kind == TRANSFER) return (true, 4, uint256(bytes32(bytes4(0x08080808)))); // account, to, amount, nonce
        if (kind == WITHDRAW) return (true, 4, uint256(bytes32(bytes4(0x08940808)))); // account, recipient, amount, nonce
        if (kind == LIQUIDATE) return (true, 4, uint256(bytes32(bytes4(0x08080408)))); // account, target, market, nonce
        if (kind == ORACLE_PRICE) return (true, 3, uint256(bytes32(bytes3(0x040808)))); // market, price, timestamp
        return (false, 0, 0);
    }

    /// @dev transactions.py `_decode_member`: the EIP-712 word of one member's payload.
    function _decodeMember(uint256 memberType, uint256 payload, uint256 length)
        private
        pure
        returns (bool ok, uint256 word)
    {
        if (memberType & FIXED != 0) {
            // address / bytes32: exactly that many bytes, as a right-aligned word
            uint256 size = memberType & ~FIXED;
            if (length != size) return (false, 0);
            assembly ("memory-safe") {
                word := shr(sub(256, shl(3, size)), calldataload(payload))
            }
            return (true, word);
        }
        if (memberType == BOOL) {
            // false = empty, true = 0x01; anything else (0x00, 0x02.., longer) is rejected
            if (length == 0) return (true, 0);
            if (length != 1) return (false, 0);
            assembly ("memory-safe") {
                word := byte(0, calldataload(payload))
            }
            return (word == 1, word == 1 ? 1 : 0);
        }
        // uintN: big-endian, no leading zero byte, 0 is empty, at most N/8 bytes
        return LibRLP.readUint(payload, length, memberType);
    }

    function _empty() private pure returns (Transaction memory t) {}

    function _offset(bytes calldata raw) private pure returns (uint256 o) {
        assembly ("memory-safe") {
            o := raw.offset
        }
    }
}
