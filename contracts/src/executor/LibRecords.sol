// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {LibStateLayout} from "../lib/LibStateLayout.sol";
import {LibStepState} from "./LibStepState.sol";

/// @title LibRecords
/// @notice The state records, their byte encodings and where they live: the Solidity twin of
///         node/protocol/records.py (docs/protocol.md, section 6). Every record is a fixed
///         sequence of big-endian fields without padding; an absent record is empty.
/// @dev In memory every field is a full-width integer so that arithmetic is checked once, at
///      256 bits; encoding narrows each field with SafeCast, which reverts exactly where the
///      Python encoder raises (a value out of its field: a bug, never a valid step).
library LibRecords {
    /// @notice A record field does not fit its width (the Python encoder raises too): a bug,
    ///         never a valid step. (Most fields use SafeCast's errors instead.)
    error FieldOutOfRange();

    using LibStepState for LibStepState.StepState;
    using SafeCast for uint256;
    using SafeCast for int256;

    /// @notice Account id of the fee account, created at genesis.
    uint256 internal constant FEE_ACCOUNT = 0;
    /// @notice Slot of the exchange record in the meta table.
    uint256 internal constant EXCHANGE_SLOT = 0;
    /// @notice Most resting orders one account may have.
    uint256 internal constant MAX_OPEN_ORDERS = 16;
    /// @notice Most positions one account may have.
    uint256 internal constant MAX_POSITIONS = 8;
    /// @notice Size of an account's nonce window.
    uint256 internal constant NONCE_WINDOW = 256;
    /// @notice Market ids are below this.
    uint256 internal constant MARKET_LIMIT = 1 << 16;
    /// @notice Account ids are below this.
    uint256 internal constant ACCOUNT_LIMIT = 1 << 32;
    /// @notice Order ids are `uint256(orderHash) % ORDER_ID_MODULUS + 1`.
    uint256 internal constant ORDER_ID_MODULUS = (1 << 40) - 1;
    /// @notice Largest absolute position size (stored as i64).
    int256 internal constant MAX_POSITION_SIZE = type(int64).max;
    /// @notice "No order" in a queue link.
    uint256 internal constant NIL = 0;
    /// @notice Side number of bids (buy orders).
    uint256 internal constant BIDS = 0;
    /// @notice Side number of asks (sell orders).
    uint256 internal constant ASKS = 1;

    /// @notice Global parameters and balances (64 bytes).
    struct Exchange {
        /// @notice The address whose signature makes an OraclePrice valid.
        address oracle;
        /// @notice Collateral that absorbs bad debt; may go negative (i256).
        int256 insuranceFund;
        /// @notice Withdrawal records created so far: the next withdrawal's id (u64).
        uint256 withdrawalCount;
        /// @notice Liquidator's reward in bps of the liquidated notional (u16).
        uint256 liquidationRewardBps;
        /// @notice Insurance fund's share in bps of the liquidated notional (u16).
        uint256 liquidationInsuranceBps;
    }

    /// @notice A perpetual market: its parameters, then its running state (124 bytes).
    struct Market {
        /// @notice Prices are multiples of this (u64).
        uint256 tickSize;
        /// @notice Sizes are multiples of this (u64).
        uint256 lotSize;
        /// @notice price * size / divisor is a collateral value (u64).
        uint256 divisor;
        /// @notice Initial margin fraction in bps (u16).
        uint256 initialMarginBps;
        /// @notice Maintenance margin fraction in bps (u16).
        uint256 maintenanceMarginBps;
        /// @notice Maker fee in bps (u16).
        uint256 makerFeeBps;
        /// @notice Taker fee in bps (u16).
        uint256 takerFeeBps;
        /// @notice Funding premium clamp in ppm (u32).
        uint256 maxFundingPpm;
        /// @notice Last oracle (index) price; 0 = none yet (u64).
        uint256 oraclePrice;
        /// @notice Timestamp of the last oracle price (u64).
        uint256 oracleTime;
        /// @notice Price of the last fill; 0 before any (u64).
        uint256 lastPrice;
        /// @notice Cumulative funding index, price units x 1e6 per size unit (i256).
        int256 fundingIndex;
        /// @notice Funding paid by settled positions and not yet received (i256).
        int256 fundingBalance;
    }

    /// @notice The fields of a market that an account's health needs (`accountHealth`).
    struct Risk {
        /// @notice Oracle price (u64).
        uint256 oraclePrice;
        /// @notice price * size / divisor is a collateral value (u64).
        uint256 divisor;
        /// @notice Initial margin fraction in bps (u16).
        uint256 initialMarginBps;
        /// @notice Maintenance margin fraction in bps (u16).
        uint256 maintenanceMarginBps;
        /// @notice Cumulative funding index (i256).
        int256 fundingIndex;
    }

    /// @notice A position in one market (44 bytes inside the account record).
    struct Position {
        /// @notice Market id (u32).
        uint256 market;
        /// @notice Signed size: positive long, negative short, never 0 when stored (i64).
        int256 size;
        /// @notice The market's funding index at the last settlement (i256).
        int256 fundingIndex;
    }

    /// @notice An account (94 + 8 orders + 44 positions bytes).
    struct Account {
        /// @notice The address whose signature authorises the account's transactions.
        address owner;
        /// @notice Signed collateral (quote) balance (i256).
        int256 collateral;
        /// @notice Lowest nonce still usable (u64).
        uint256 nonceBase;
        /// @notice Bit i set: nonce nonceBase + i was used (u256).
        uint256 nonceBits;
        /// @notice Resting order ids, oldest first; `orderCount` are used (u64 each).
        uint256[16] orders;
        /// @notice How many of `orders` are used (u8).
        uint256 orderCount;
        /// @notice Open positions in the order they were opened; `positionCount` are used.
        Position[8] positions;
        /// @notice How many of `positions` are used (u8).
        uint256 positionCount;
    }

    /// @notice A resting order (93 bytes).
    struct RestingOrder {
        uint256 account; // u64
        uint256 market; // u32
        bool isBuy; // u8 0/1
        uint256 tick; // u64: price / tickSize
        uint256 size; // u64: original size
        uint256 remaining; // u64: still open, > 0
        uint256 expiry; // u64: 0 = none
        uint256 prev; // u64: older order of the level's queue (0 = none)
        uint256 next; // u64: newer order of the level's queue (0 = none)
        bytes32 orderHash; // the order's EIP-712 digest
    }

    /// @notice A price level: its FIFO queue and total size (32 bytes).
    struct Level {
        uint256 head; // u64: oldest order id
        uint256 tail; // u64: newest order id
        uint256 size; // u128: sum of the queue's remaining sizes
    }

    /// @notice A withdrawal record, paid on L1 once its batch is final (36 bytes).
    struct Withdrawal {
        uint256 account; // u64
        address recipient;
        uint256 amount; // u64
    }

    // Field readers ---------------------------------------------------------------------

    /// @dev The `bits`-bit big-endian unsigned field of `record` at byte `offset`. Reads
    ///      past the end see zeros, never other memory's bytes that matter: callers only
    ///      read inside records they know the length of.
    function _u(bytes memory record, uint256 offset, uint256 bits) private pure returns (uint256 v) {
        assembly ("memory-safe") {
            v := shr(sub(256, bits), mload(add(add(record, 32), offset)))
        }
    }

    function _i256(bytes memory record, uint256 offset) private pure returns (int256) {
        return int256(_u(record, offset, 256));
    }

    function _address(bytes memory record, uint256 offset) private pure returns (address) {
        return address(uint160(_u(record, offset, 160)));
    }

    // Exchange --------------------------------------------------------------------------

    function encodeExchange(Exchange memory e) internal pure returns (bytes memory) {
        return abi.encodePacked(
            e.oracle,
            e.insuranceFund,
            e.withdrawalCount.toUint64(),
            e.liquidationRewardBps.toUint16(),
            e.liquidationInsuranceBps.toUint16()
        );
    }

    function decodeExchange(bytes memory r) internal pure returns (Exchange memory e) {
        e.oracle = _address(r, 0);
        e.insuranceFund = _i256(r, 20);
        e.withdrawalCount = _u(r, 52, 64);
        e.liquidationRewardBps = _u(r, 60, 16);
        e.liquidationInsuranceBps = _u(r, 62, 16);
    }

    /// @notice The exchange record (always present after genesis).
    function loadExchange(LibStepState.StepState memory st) internal pure returns (Exchange memory) {
        return decodeExchange(st.get(LibStateLayout.TABLE_META, EXCHANGE_SLOT));
    }

    function storeExchange(LibStepState.StepState memory st, Exchange memory e) internal pure {
        st.set(LibStateLayout.TABLE_META, EXCHANGE_SLOT, encodeExchange(e));
    }

    // Market ----------------------------------------------------------------------------

    function encodeMarket(Market memory m) internal pure returns (bytes memory) {
        return bytes.concat(
            abi.encodePacked(
                m.tickSize.toUint64(),
                m.lotSize.toUint64(),
                m.divisor.toUint64(),
                m.initialMarginBps.toUint16(),
                m.maintenanceMarginBps.toUint16(),
                m.makerFeeBps.toUint16(),
                m.takerFeeBps.toUint16(),
                m.maxFundingPpm.toUint32()
            ),
            abi.encodePacked(
                m.oraclePrice.toUint64(),
                m.oracleTime.toUint64(),
                m.lastPrice.toUint64(),
                m.fundingIndex,
                m.fundingBalance
            )
        );
    }

    function decodeMarket(bytes memory r) internal pure returns (Market memory m) {
        decodeMarketInto(r, m);
    }

    /// @notice Decode the market record `r` into `m` (all fields overwritten).
    /// @dev Straight into the struct's memory (one word per member, in order): health checks
    ///      decode a market per position.
    function decodeMarketInto(bytes memory r, Market memory m) internal pure {
        assembly ("memory-safe") {
            let p := add(r, 32)
            mstore(m, shr(192, mload(p))) // tickSize u64
            mstore(add(m, 0x20), shr(192, mload(add(p, 8)))) // lotSize u64
            mstore(add(m, 0x40), shr(192, mload(add(p, 16)))) // divisor u64
            mstore(add(m, 0x60), shr(240, mload(add(p, 24)))) // initialMarginBps u16
            mstore(add(m, 0x80), shr(240, mload(add(p, 26)))) // maintenanceMarginBps u16
            mstore(add(m, 0xa0), shr(240, mload(add(p, 28)))) // makerFeeBps u16
            mstore(add(m, 0xc0), shr(240, mload(add(p, 30)))) // takerFeeBps u16
            mstore(add(m, 0xe0), shr(224, mload(add(p, 32)))) // maxFundingPpm u32
            mstore(add(m, 0x100), shr(192, mload(add(p, 36)))) // oraclePrice u64
            mstore(add(m, 0x120), shr(192, mload(add(p, 44)))) // oracleTime u64
            mstore(add(m, 0x140), shr(192, mload(add(p, 52)))) // lastPrice u64
            mstore(add(m, 0x160), mload(add(p, 60))) // fundingIndex i256
            mstore(add(m, 0x180), mload(add(p, 92))) // fundingBalance i256
        }
    }

    /// @notice The market `id`; `exists` is false when absent (ids >= 2^16 are absent and
    ///         read nothing).
    function loadMarket(LibStepState.StepState memory st, uint256 id)
        internal
        pure
        returns (bool exists, Market memory m)
    {
        exists = loadMarketInto(st, id, m);
    }

    /// @notice `loadMarket` into the caller's `m` (overwritten when the market exists):
    ///         whether it exists.
    function loadMarketInto(LibStepState.StepState memory st, uint256 id, Market memory m)
        internal
        pure
        returns (bool exists)
    {
        if (id >= MARKET_LIMIT) return false;
        bytes memory r = st.get(LibStateLayout.TABLE_MARKETS, id);
        if (r.length == 0) return false;
        decodeMarketInto(r, m);
        return true;
    }

    /// @notice The health fields of the in-memory market `m`, into `risk`.
    function riskOf(Market memory m, Risk memory risk) internal pure {
        assembly ("memory-safe") {
            mstore(risk, mload(add(m, 0x100))) // oraclePrice
            mstore(add(risk, 0x20), mload(add(m, 0x40))) // divisor
            mstore(add(risk, 0x40), mload(add(m, 0x60))) // initialMarginBps
            mstore(add(risk, 0x60), mload(add(m, 0x80))) // maintenanceMarginBps
            mstore(add(risk, 0x80), mload(add(m, 0x160))) // fundingIndex
        }
    }

    /// @notice The health fields of market `id` into `risk`; the market must exist (a
    ///         position's market always does). Read from the record in place, without
    ///         decoding the rest; the read is the step state's, so a first touch consumes its
    ///         witness entry as `loadMarket` would.
    function marketRiskInto(LibStepState.StepState memory st, uint256 id, Risk memory risk) internal pure {
        assert(id < MARKET_LIMIT);
        bytes memory r = st.get(LibStateLayout.TABLE_MARKETS, id);
        assert(r.length != 0);
        assembly ("memory-safe") {
            let q := add(r, 32)
            mstore(risk, shr(192, mload(add(q, 36)))) // oraclePrice u64
            mstore(add(risk, 0x20), shr(192, mload(add(q, 16)))) // divisor u64
            mstore(add(risk, 0x40), shr(240, mload(add(q, 24)))) // initialMarginBps u16
            mstore(add(risk, 0x60), shr(240, mload(add(q, 26)))) // maintenanceMarginBps u16
            mstore(add(risk, 0x80), mload(add(q, 60))) // fundingIndex i256
        }
    }

    function storeMarket(LibStepState.StepState memory st, uint256 id, Market memory m) internal pure {
        st.set(LibStateLayout.TABLE_MARKETS, id, encodeMarket(m));
    }

    // Account ---------------------------------------------------------------------------

    /// @dev One allocation, fields written in ascending order (each 32-byte store may spill
    ///      zeros past its field; the next field overwrites them). SafeCast narrows every
    ///      field exactly where the Python encoder raises.
    function encodeAccount(Account memory a) internal pure returns (bytes memory out) {
        uint256 orderCount = a.orderCount.toUint8();
        uint256 positionCount = a.positionCount.toUint8();
        // the struct holds no more (the STF never has more: Solidity's bounds check)
        if (orderCount > MAX_OPEN_ORDERS || positionCount > MAX_POSITIONS) revert FieldOutOfRange();
        uint256 nonceBase = a.nonceBase.toUint64();
        address owner = a.owner;
        int256 collateral = a.collateral;
        uint256 nonceBits = a.nonceBits;
        out = new bytes(94 + 8 * orderCount + 44 * positionCount);
        uint256 p;
        assembly ("memory-safe") {
            p := add(out, 32)
            mstore(p, shl(96, owner))
            mstore(add(p, 20), collateral)
            mstore(add(p, 52), shl(192, nonceBase))
            mstore(add(p, 60), nonceBits)
            mstore8(add(p, 92), orderCount)
            mstore8(add(p, 93), positionCount)
            p := add(p, 94)
        }
        bool fits = true;
        uint256[16] memory orders = a.orders;
        Position[8] memory positions = a.positions;
        assembly ("memory-safe") {
            for { let i := 0 } lt(i, orderCount) { i := add(i, 1) } {
                let id := mload(add(orders, shl(5, i)))
                fits := and(fits, iszero(shr(64, id))) // u64
                mstore(p, shl(192, id))
                p := add(p, 8)
            }
            for { let i := 0 } lt(i, positionCount) { i := add(i, 1) } {
                let pos := mload(add(positions, shl(5, i)))
                let market := mload(pos)
                let size := mload(add(pos, 0x20))
                fits := and(fits, iszero(shr(32, market))) // u32
                fits := and(fits, eq(signextend(7, size), size)) // i64
                mstore(p, shl(224, market))
                mstore(add(p, 4), shl(192, size))
                mstore(add(p, 12), mload(add(pos, 0x40)))
                p := add(p, 44)
            }
        }
        // the range checks of the order ids and positions, as the Python encoder's
        if (!fits) revert FieldOutOfRange();
    }

    function decodeAccount(bytes memory r) internal pure returns (Account memory a) {
        decodeAccountInto(r, a);
    }

    /// @notice Decode the account record `r` into `a` (its fields are overwritten; slots
    ///         beyond the counts are left as they are). Saves the allocation of a second
    ///         zeroed Account (each costs ~1.8 KB of memory) where the caller has one.
    function decodeAccountInto(bytes memory r, Account memory a) internal pure {
        uint256 orderCount;
        uint256 positionCount;
        // the scalar fields and the order ids straight into the struct's memory (a memory
        // struct is one word per member in order; `orders` is a pointer to 16 words)
        assembly ("memory-safe") {
            let p := add(r, 32)
            mstore(a, shr(96, mload(p))) // owner
            mstore(add(a, 0x20), mload(add(p, 20))) // collateral
            mstore(add(a, 0x40), shr(192, mload(add(p, 52)))) // nonceBase
            mstore(add(a, 0x60), mload(add(p, 60))) // nonceBits
            orderCount := byte(0, mload(add(p, 92)))
            positionCount := byte(0, mload(add(p, 93)))
            mstore(add(a, 0xa0), orderCount)
            mstore(add(a, 0xe0), positionCount)
            // the STF never writes more than the arrays hold (Solidity's bounds check)
            if or(gt(orderCount, 16), gt(positionCount, 8)) { revert(0, 0) }
            let orders := mload(add(a, 0x80))
            let q := add(p, 94)
            for { let i := 0 } lt(i, orderCount) { i := add(i, 1) } {
                mstore(add(orders, shl(5, i)), shr(192, mload(q)))
                q := add(q, 8)
            }
        }
        // each position into a fresh struct (3 words): a decoded account never shares one
        assembly ("memory-safe") {
            let positions := mload(add(a, 0xc0))
            let q := add(add(r, 126), shl(3, orderCount)) // byte 94 + 8 * orderCount
            let free := mload(0x40)
            for { let i := 0 } lt(i, positionCount) { i := add(i, 1) } {
                mstore(free, shr(224, mload(q))) // market u32
                mstore(add(free, 0x20), signextend(7, shr(192, mload(add(q, 4))))) // size i64
                mstore(add(free, 0x40), mload(add(q, 12))) // fundingIndex i256
                mstore(add(positions, shl(5, i)), free)
                free := add(free, 0x60)
                q := add(q, 44)
            }
            mstore(0x40, free)
        }
    }

    /// @notice The account `id`; `exists` is false when absent (ids >= 2^32 are absent and
    ///         read nothing).
    function loadAccount(LibStepState.StepState memory st, uint256 id)
        internal
        pure
        returns (bool exists, Account memory a)
    {
        exists = loadAccountInto(st, id, a);
    }

    /// @notice `loadAccount` into the caller's `a` (overwritten when the account exists):
    ///         whether it exists.
    function loadAccountInto(LibStepState.StepState memory st, uint256 id, Account memory a)
        internal
        pure
        returns (bool exists)
    {
        if (id >= ACCOUNT_LIMIT) return false;
        bytes memory r = st.get(LibStateLayout.TABLE_ACCOUNTS, id);
        if (r.length == 0) return false;
        decodeAccountInto(r, a);
        return true;
    }

    function storeAccount(LibStepState.StepState memory st, uint256 id, Account memory a) internal pure {
        st.set(LibStateLayout.TABLE_ACCOUNTS, id, encodeAccount(a));
    }

    /// @notice The record of account `id` (empty when absent; ids >= 2^32 are absent and read
    ///         nothing), undecoded. It is the step state's memory: never modify it in place.
    function accountRecord(LibStepState.StepState memory st, uint256 id) internal pure returns (bytes memory) {
        if (id >= ACCOUNT_LIMIT) return "";
        return st.get(LibStateLayout.TABLE_ACCOUNTS, id);
    }

    /// @notice Write the record of account `id`.
    function storeAccountRecord(LibStepState.StepState memory st, uint256 id, bytes memory r) internal pure {
        st.set(LibStateLayout.TABLE_ACCOUNTS, id, r);
    }

    // Account records edited in place of a decode + encode (the same bytes, less gas) -----

    /// @notice The account record `r` with `delta` added to its collateral: the encoding of
    ///         `decodeAccount(r)` with `collateral += delta` (a new record; `r` is untouched).
    function withCollateralAdded(bytes memory r, int256 delta) internal pure returns (bytes memory out) {
        int256 collateral = _i256(r, 20) + delta;
        out = _copy(r, r.length);
        assembly ("memory-safe") {
            mstore(add(out, 52), collateral) // bytes 20..52 of the record
        }
    }

    /// @notice The account record `r` without resting order `orderId` in its `orders` (the
    ///         first occurrence; the others keep their order; it must be there): the encoding
    ///         of `decodeAccount(r)` after Python's `orders.remove(orderId)`.
    function withoutOrderId(bytes memory r, uint256 orderId) internal pure returns (bytes memory out) {
        uint256 count = _u(r, 92, 8);
        uint256 i;
        assembly ("memory-safe") {
            let q := add(r, 126) // the first id: byte 94 of the record
            for {} and(lt(i, count), iszero(eq(shr(192, mload(q)), orderId))) {} {
                i := add(i, 1)
                q := add(q, 8)
            }
        }
        assert(i < count); // a resting order is in its owner's list
        uint256 cut = 94 + 8 * i; // the 8 bytes of the id go
        out = _copy(r, cut);
        uint256 rest = r.length - cut - 8;
        assembly ("memory-safe") {
            let data := add(out, 32)
            mstore(out, add(cut, rest))
            mcopy(add(data, cut), add(add(r, 40), cut), rest)
            mstore8(add(data, 92), sub(count, 1))
        }
    }

    /// @dev A new bytes holding the first `length` bytes of `r`, with room for all of `r`.
    function _copy(bytes memory r, uint256 length) private pure returns (bytes memory out) {
        uint256 size = r.length;
        assembly ("memory-safe") {
            out := mload(0x40)
            mstore(out, length)
            mcopy(add(out, 32), add(r, 32), length)
            mstore(0x40, add(add(out, 32), and(add(size, 31), not(31))))
        }
    }

    /// @notice Index of the account's position in `market` and whether it has one.
    function findPosition(Account memory a, uint256 market) internal pure returns (bool found, uint256 i) {
        for (i = 0; i < a.positionCount; ++i) {
            if (a.positions[i].market == market) return (true, i);
        }
        return (false, 0);
    }

    /// @notice The account's signed position size in `market` (0 if none).
    function positionSize(Account memory a, uint256 market) internal pure returns (int256) {
        (bool found, uint256 i) = findPosition(a, market);
        return found ? a.positions[i].size : int256(0);
    }

    // Resting order ---------------------------------------------------------------------

    function encodeOrder(RestingOrder memory o) internal pure returns (bytes memory) {
        return abi.encodePacked(
            o.account.toUint64(),
            o.market.toUint32(),
            o.isBuy,
            o.tick.toUint64(),
            o.size.toUint64(),
            o.remaining.toUint64(),
            o.expiry.toUint64(),
            o.prev.toUint64(),
            o.next.toUint64(),
            o.orderHash
        );
    }

    function decodeOrder(bytes memory r) internal pure returns (RestingOrder memory o) {
        o.account = _u(r, 0, 64);
        o.market = _u(r, 8, 32);
        o.isBuy = _u(r, 12, 8) == 1; // as records.py: only 1 is a buy
        o.tick = _u(r, 13, 64);
        o.size = _u(r, 21, 64);
        o.remaining = _u(r, 29, 64);
        o.expiry = _u(r, 37, 64);
        o.prev = _u(r, 45, 64);
        o.next = _u(r, 53, 64);
        o.orderHash = bytes32(_u(r, 61, 256));
    }

    /// @notice The resting order `id`; `exists` is false when absent.
    function loadOrder(LibStepState.StepState memory st, uint256 id)
        internal
        pure
        returns (bool exists, RestingOrder memory o)
    {
        bytes memory r = st.get(LibStateLayout.TABLE_ORDERS, id);
        if (r.length == 0) return (false, o);
        return (true, decodeOrder(r));
    }

    function storeOrder(LibStepState.StepState memory st, uint256 id, RestingOrder memory o) internal pure {
        st.set(LibStateLayout.TABLE_ORDERS, id, encodeOrder(o));
    }

    function deleteOrder(LibStepState.StepState memory st, uint256 id) internal pure {
        st.set(LibStateLayout.TABLE_ORDERS, id, "");
    }

    /// @notice The order id of an order hash: `uint256(hash) % (2^40 - 1) + 1`, never 0.
    function orderIdOf(bytes32 orderHash) internal pure returns (uint256) {
        return uint256(orderHash) % ORDER_ID_MODULUS + 1;
    }

    // Level and book words --------------------------------------------------------------

    /// @notice Index of a price level: `market << 25 | side << 24 | tick`.
    function levelKey(uint256 market, uint256 side, uint256 tick) internal pure returns (uint256) {
        return (market << 25) | (side << 24) | tick;
    }

    /// @notice Index of a book-index word: `market << 19 | side << 18 | height << 16 | word`.
    function bookKey(uint256 market, uint256 side, uint256 height, uint256 word) internal pure returns (uint256) {
        return (market << 19) | (side << 18) | (height << 16) | word;
    }

    function encodeLevel(Level memory l) internal pure returns (bytes memory) {
        return abi.encodePacked(l.head.toUint64(), l.tail.toUint64(), l.size.toUint128());
    }

    function decodeLevel(bytes memory r) internal pure returns (Level memory l) {
        l.head = _u(r, 0, 64);
        l.tail = _u(r, 8, 64);
        l.size = _u(r, 16, 128);
    }

    /// @notice The level at (market, side, tick); `exists` is false when absent.
    function loadLevel(LibStepState.StepState memory st, uint256 market, uint256 side, uint256 tick)
        internal
        pure
        returns (bool exists, Level memory l)
    {
        bytes memory r = st.get(LibStateLayout.TABLE_LEVELS, levelKey(market, side, tick));
        if (r.length == 0) return (false, l);
        return (true, decodeLevel(r));
    }

    /// @notice Write a level.
    function storeLevel(LibStepState.StepState memory st, uint256 market, uint256 side, uint256 tick, Level memory l)
        internal
        pure
    {
        st.set(LibStateLayout.TABLE_LEVELS, levelKey(market, side, tick), encodeLevel(l));
    }

    /// @notice Delete a level.
    function deleteLevel(LibStepState.StepState memory st, uint256 market, uint256 side, uint256 tick) internal pure {
        st.set(LibStateLayout.TABLE_LEVELS, levelKey(market, side, tick), "");
    }

    /// @notice A book-index word (an absent word is 0).
    function loadWord(LibStepState.StepState memory st, uint256 market, uint256 side, uint256 height, uint256 word)
        internal
        pure
        returns (uint256)
    {
        bytes memory r = st.get(LibStateLayout.TABLE_BOOK, bookKey(market, side, height, word));
        return r.length == 0 ? 0 : _u(r, 0, 256);
    }

    /// @notice Write a book-index word; a zero word is deleted.
    function storeWord(
        LibStepState.StepState memory st,
        uint256 market,
        uint256 side,
        uint256 height,
        uint256 word,
        uint256 bits
    ) internal pure {
        st.set(LibStateLayout.TABLE_BOOK, bookKey(market, side, height, word), bits == 0 ? bytes("") : abi.encodePacked(bits));
    }

    // Withdrawal ------------------------------------------------------------------------

    function encodeWithdrawal(Withdrawal memory w) internal pure returns (bytes memory) {
        return abi.encodePacked(w.account.toUint64(), w.recipient, w.amount.toUint64());
    }

    function decodeWithdrawal(bytes memory r) internal pure returns (Withdrawal memory w) {
        w.account = _u(r, 0, 64);
        w.recipient = _address(r, 8);
        w.amount = _u(r, 28, 64);
    }

    function storeWithdrawal(LibStepState.StepState memory st, uint256 id, Withdrawal memory w) internal pure {
        st.set(LibStateLayout.TABLE_WITHDRAWALS, id, encodeWithdrawal(w));
    }
}
