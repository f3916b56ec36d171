// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LibAccounts} from "./LibAccounts.sol";
import {LibBook} from "./LibBook.sol";
import {LibMargin} from "./LibMargin.sol";
import {LibMath} from "./LibMath.sol";
import {LibReason} from "./LibReason.sol";
import {LibRecords} from "./LibRecords.sol";
import {LibStepState} from "./LibStepState.sol";
import {LibTransaction} from "./LibTransaction.sol";

/// @title LibOrders
/// @notice Orders: placement, matching, cancellation (docs/protocol.md, sections 9.4-9.6):
///         the Solidity twin of node/protocol/orders.py, function by function and access by
///         access.
/// @dev Matching is strict price-time priority: the taker meets the best opposite level,
///      oldest order first, at the maker's price. One order visits at most `MAX_MATCHES`
///      makers (fills, and makers removed for expiry, self-trade or margin). The outcome
///      details the Python side reports (fills, removals, notional) change no state and are
///      not computed here.
library LibOrders {
    /// @notice Resting orders one taker order may visit (fill or remove) before it stops.
    uint256 internal constant MAX_MATCHES = 8;
    /// @notice `CancelAll.market` value meaning every market.
    uint256 internal constant ALL_MARKETS = type(uint32).max;
    /// @notice Prices are below 2^TICK_BITS ticks.
    uint256 internal constant TICK_BITS = 24;

    // TimeInForce
    uint256 internal constant GTC = 0;
    uint256 internal constant IOC = 1;
    uint256 internal constant FOK = 2;
    uint256 internal constant POST_ONLY = 3;

    // OrderEnd (only the ends that decide something are distinguished)
    uint256 internal constant END_FILLED = 0;
    uint256 internal constant END_NO_LIQUIDITY = 2;
    uint256 internal constant END_MATCH_LIMIT = 3;
    uint256 internal constant END_TAKER_MARGIN = 4;
    uint256 internal constant END_REDUCED = 5;

    // FillStatus
    uint256 internal constant FILL_DONE = 0;
    uint256 internal constant FILL_MAKER_MARGIN = 1;
    uint256 internal constant FILL_TAKER_MARGIN = 2;

    /// @notice An `Order` message (its EIP-712 members, fields[0..8] of the transaction).
    struct Order {
        uint256 account;
        uint256 market;
        bool isBuy;
        uint256 price;
        uint256 size;
        uint256 timeInForce;
        bool reduceOnly;
        uint256 expiry;
        uint256 nonce;
    }

    /// @notice The Order message of a parsed transaction.
    function orderOf(LibTransaction.Transaction memory t) internal pure returns (Order memory o) {
        uint256[9] memory f = t.fields;
        o = Order(f[0], f[1], f[2] != 0, f[3], f[4], f[5], f[6] != 0, f[7], f[8]);
    }

    /// @notice A market that exists and has an oracle price; rejects the step otherwise.
    function requireMarket(LibStepState.StepState memory st, uint256 marketId)
        internal
        pure
        returns (LibRecords.Market memory market)
    {
        bool exists;
        (exists, market) = LibRecords.loadMarket(st, marketId);
        if (!exists) LibReason.reject(LibReason.UNKNOWN_MARKET);
        if (market.oraclePrice == 0) LibReason.reject(LibReason.NO_ORACLE_PRICE);
    }

    /// @notice The checks that need nothing but the order, its market and the batch time.
    function checkOrder(Order memory order, LibRecords.Market memory market, uint256 timestamp) internal pure {
        uint256 tif = order.timeInForce;
        if (tif > POST_ONLY) LibReason.reject(LibReason.INVALID_TIME_IN_FORCE);
        bool immediate = tif == IOC || tif == FOK;
        if (order.reduceOnly && !immediate) LibReason.reject(LibReason.INVALID_TIME_IN_FORCE);
        if (order.size == 0 || order.size % market.lotSize != 0) LibReason.reject(LibReason.INVALID_SIZE);
        if (order.price == 0) {
            if (!immediate) LibReason.reject(LibReason.INVALID_PRICE);
        } else if (order.price % market.tickSize != 0 || (order.price / market.tickSize) >> TICK_BITS != 0) {
            LibReason.reject(LibReason.INVALID_PRICE);
        }
        if (order.expiry != 0 && order.expiry <= timestamp) LibReason.reject(LibReason.EXPIRED);
    }

    /// @notice Whether a taker limited to `takerTick` (0: a market order) meets `makerTick`.
    function crosses(uint256 makerTick, uint256 takerTick, bool takerIsBuy) internal pure returns (bool) {
        if (takerTick == 0) return true;
        return takerIsBuy ? makerTick <= takerTick : makerTick >= takerTick;
    }

    /// @notice What one fill moves, seen from the maker (the taker gets the opposite deltas).
    struct FillTerms {
        /// @notice The maker's position change: +size for a bid, -size for an ask.
        int256 sizeDelta;
        /// @notice The maker's collateral change before its fee: -value for a bid, +value else.
        int256 valueDelta;
        /// @notice The maker's fee.
        int256 makerFee;
        /// @notice The taker's fee.
        int256 takerFee;
    }

    /// @notice Trade `size` at `price` between the maker order's account and the taker: settle
    ///         both sides' funding, move the value `price * size / divisor` (exact), charge
    ///         both fees (rounded up) to the fee account, and keep it only if both sides may
    ///         (maker checked first). Returns the FillStatus.
    /// @dev `makerAccount` and `takerAccount` are scratch structs the accounts are decoded
    ///      into (their old contents are dead: each fill stores or discards them).
    function executeFill(
        LibStepState.StepState memory st,
        uint256 takerId,
        LibRecords.RestingOrder memory maker,
        uint256 price,
        uint256 size,
        LibRecords.Account memory makerAccount,
        LibRecords.Account memory takerAccount
    ) internal pure returns (uint256 status) {
        uint256 marketId = maker.market;
        LibRecords.Market memory market = existingMarket(st, marketId);
        FillTerms memory f = fillTerms(market, maker.isBuy, price, size);

        LibAccounts.requireAccountInto(st, maker.account, makerAccount);
        if (!LibMargin.trade(st, makerAccount, marketId, market, f.sizeDelta, f.valueDelta - f.makerFee)) {
            return FILL_MAKER_MARGIN;
        }
        LibAccounts.requireAccountInto(st, takerId, takerAccount);
        if (!LibMargin.trade(st, takerAccount, marketId, market, -f.sizeDelta, -f.valueDelta - f.takerFee)) {
            return FILL_TAKER_MARGIN;
        }

        market.lastPrice = price;
        LibRecords.storeAccount(st, maker.account, makerAccount);
        LibRecords.storeAccount(st, takerId, takerAccount);
        LibRecords.storeMarket(st, marketId, market);
        if (f.makerFee + f.takerFee != 0) {
            // require_account, collateral += both fees, store: as a record edit
            bytes memory feeAccount = LibRecords.accountRecord(st, LibRecords.FEE_ACCOUNT);
            if (feeAccount.length == 0) LibReason.reject(LibReason.UNKNOWN_ACCOUNT);
            LibRecords.storeAccountRecord(
                st, LibRecords.FEE_ACCOUNT, LibRecords.withCollateralAdded(feeAccount, f.makerFee + f.takerFee)
            );
        }
        return FILL_DONE;
    }

    /// @notice A market that exists (a resting order's market always does).
    function existingMarket(LibStepState.StepState memory st, uint256 marketId)
        internal
        pure
        returns (LibRecords.Market memory market)
    {
        bool exists;
        (exists, market) = LibRecords.loadMarket(st, marketId);
        assert(exists);
    }

    /// @notice The value and fees of a fill of `size` at `price`, from the maker's side.
    function fillTerms(LibRecords.Market memory market, bool makerIsBuy, uint256 price, uint256 size)
        internal
        pure
        returns (FillTerms memory f)
    {
        // exact: tickSize * lotSize is a multiple of divisor
        uint256 value = price * size / market.divisor;
        // fees round up (against the trader)
        f.makerFee = int256(LibMath.ceilDivU(value * market.makerFeeBps, LibMargin.BPS));
        f.takerFee = int256(LibMath.ceilDivU(value * market.takerFeeBps, LibMargin.BPS));
        f.sizeDelta = makerIsBuy ? int256(size) : -int256(size);
        f.valueDelta = makerIsBuy ? -int256(value) : int256(value);
    }

    /// @notice Order (section 9.4): validate, match and possibly rest an order whose
    ///         signature and nonce were checked. `orderHash` is its EIP-712 digest.
    function placeOrder(
        LibStepState.StepState memory st,
        uint256 timestamp,
        uint256 accountId,
        Order memory order,
        bytes32 orderHash
    ) internal pure {
        LibRecords.Market memory market = requireMarket(st, order.market);
        checkOrder(order, market, timestamp);
        uint256 tif = order.timeInForce;
        bool mayRest = tif == GTC || tif == POST_ONLY;
        uint256 orderId = LibRecords.orderIdOf(orderHash);
        if (mayRest) {
            (bool taken,) = LibRecords.loadOrder(st, orderId);
            if (taken) LibReason.reject(LibReason.ORDER_ID_TAKEN);
            if (LibAccounts.requireAccount(st, accountId).orderCount >= LibRecords.MAX_OPEN_ORDERS) {
                LibReason.reject(LibReason.TOO_MANY_ORDERS);
            }
        }
        uint256 tick = order.price / market.tickSize;
        if (tif == POST_ONLY) {
            uint256 best = LibBook.bestTick(st, order.market, LibBook.sideOf(!order.isBuy));
            if (best != 0 && crosses(best, tick, order.isBuy)) LibReason.reject(LibReason.WOULD_CROSS);
        }
        if (order.reduceOnly) {
            int256 size = LibRecords.positionSize(LibAccounts.requireAccount(st, accountId), order.market);
            if (size == 0 || (size > 0) == order.isBuy) LibReason.reject(LibReason.NOTHING_TO_REDUCE);
        }

        (uint256 remaining, uint256 end) = matchOrder(st, timestamp, accountId, order, market.tickSize);
        if (tif == FOK && remaining > 0) LibReason.reject(LibReason.NOT_FILLED);
        if (remaining > 0 && mayRest && end == END_NO_LIQUIDITY) {
            restOrder(
                st,
                orderId,
                LibRecords.RestingOrder(
                    accountId,
                    order.market,
                    order.isBuy,
                    tick,
                    order.size,
                    remaining,
                    order.expiry,
                    LibRecords.NIL,
                    LibRecords.NIL,
                    orderHash
                )
            );
        }
    }

    /// @notice The running state of matching one taker order (Python's `Match` and the
    ///         locals of `match_order`).
    struct Match {
        /// @notice Size not yet filled.
        uint256 remaining;
        /// @notice Why matching ended (an OrderEnd).
        uint256 end;
        /// @notice Makers visited so far.
        uint256 visits;
        /// @notice The taker's account.
        uint256 accountId;
        /// @notice The batch timestamp.
        uint256 timestamp;
        /// @notice The market's tick size.
        uint256 tickSize;
        /// @notice The taker's limit in ticks (0: a market order).
        uint256 takerTick;
        /// @notice The side the makers rest on.
        uint256 makerSide;
        /// @notice Scratch struct each fill decodes the maker's account into.
        LibRecords.Account makerAccount;
        /// @notice Scratch struct each fill decodes the taker's account into.
        LibRecords.Account takerAccount;
    }

    /// @notice Match a taker order against the opposite side, best level first and FIFO
    ///         within it, until it is filled, no maker crosses its price, it has visited
    ///         `MAX_MATCHES` makers, its account cannot margin the next fill, or
    ///         (reduce-only) its position is closed. Returns the size left and the OrderEnd.
    function matchOrder(
        LibStepState.StepState memory st,
        uint256 timestamp,
        uint256 accountId,
        Order memory order,
        uint256 tickSize
    ) internal pure returns (uint256 remaining, uint256 end) {
        LibRecords.Account memory scratch;
        LibRecords.Account memory scratch2;
        Match memory m = Match({
            remaining: order.size,
            end: END_FILLED,
            visits: 0,
            accountId: accountId,
            timestamp: timestamp,
            tickSize: tickSize,
            takerTick: order.price / tickSize,
            makerSide: LibBook.sideOf(!order.isBuy),
            makerAccount: scratch,
            takerAccount: scratch2
        });
        while (m.remaining > 0) {
            if (!matchNext(st, m, order)) break;
        }
        return (m.remaining, m.end);
    }

    /// @notice One iteration of `match_order`'s loop: false if it ends matching (`m.end`).
    function matchNext(LibStepState.StepState memory st, Match memory m, Order memory order)
        internal
        pure
        returns (bool)
    {
        int256 position = 0;
        if (order.reduceOnly) {
            position = LibRecords.positionSize(LibAccounts.requireAccount(st, m.accountId), order.market);
            if (position == 0) {
                m.end = END_REDUCED;
                return false;
            }
        }
        uint256 best = LibBook.bestTick(st, order.market, m.makerSide);
        if (best == 0 || !crosses(best, m.takerTick, order.isBuy)) {
            m.end = END_NO_LIQUIDITY;
            return false;
        }
        if (m.visits == MAX_MATCHES) {
            m.end = END_MATCH_LIMIT;
            return false;
        }
        m.visits += 1;
        uint256 makerId = levelHead(st, order.market, m.makerSide, best);
        (bool found, LibRecords.RestingOrder memory maker) = LibRecords.loadOrder(st, makerId);
        assert(found); // a level's head order exists
        if (maker.expiry != 0 && maker.expiry <= m.timestamp) {
            LibBook.removeOrder(st, makerId, maker); // EXPIRED
            return true;
        }
        if (maker.account == m.accountId) {
            LibBook.removeOrder(st, makerId, maker); // SELF_TRADE
            return true;
        }
        uint256 size = LibMath.min(m.remaining, maker.remaining);
        if (order.reduceOnly) size = LibMath.min(size, LibMath.abs(position));
        return fillMaker(st, m, order.market, makerId, maker, best, size);
    }

    /// @notice The fill part of one iteration of `match_order`'s loop: trade `size` with
    ///         the maker at tick `best`; false if it ends matching (TAKER_MARGIN).
    function fillMaker(
        LibStepState.StepState memory st,
        Match memory m,
        uint256 market,
        uint256 makerId,
        LibRecords.RestingOrder memory maker,
        uint256 best,
        uint256 size
    ) internal pure returns (bool) {
        uint256 price = best * m.tickSize;
        uint256 status = executeFill(st, m.accountId, maker, price, size, m.makerAccount, m.takerAccount);
        if (status == FILL_MAKER_MARGIN) {
            LibBook.removeOrder(st, makerId, maker); // MAKER_MARGIN
            return true;
        }
        if (status == FILL_TAKER_MARGIN) {
            m.end = END_TAKER_MARGIN;
            return false;
        }
        m.remaining -= size;
        LibBook.reduceLevel(st, market, m.makerSide, best, size);
        maker.remaining -= size;
        if (maker.remaining == 0) {
            LibBook.removeOrder(st, makerId, maker);
        } else {
            LibRecords.storeOrder(st, makerId, maker);
        }
        return true;
    }

    /// @notice The oldest order id of an occupied level.
    function levelHead(LibStepState.StepState memory st, uint256 market, uint256 side, uint256 tick)
        internal
        pure
        returns (uint256)
    {
        (bool exists, LibRecords.Level memory level) = LibRecords.loadLevel(st, market, side, tick);
        assert(exists); // an occupied tick has a level
        return level.head;
    }

    /// @notice Put the remainder of a taker order on the book and in its account's open
    ///         orders.
    function restOrder(LibStepState.StepState memory st, uint256 orderId, LibRecords.RestingOrder memory order)
        internal
        pure
    {
        LibBook.appendOrder(st, orderId, order);
        LibRecords.Account memory account = LibAccounts.requireAccount(st, order.account);
        account.orders[account.orderCount] = orderId;
        account.orderCount += 1;
        LibRecords.storeAccount(st, order.account, account);
    }

    /// @notice Cancel (section 9.5): remove one of the account's resting orders, named by its
    ///         hash. fields: [0] account, [1] orderHash, [2] nonce.
    function applyCancel(LibStepState.StepState memory st, uint256 accountId, LibTransaction.Transaction memory t)
        internal
        pure
    {
        bytes32 orderHash = bytes32(t.fields[1]);
        uint256 orderId = LibRecords.orderIdOf(orderHash);
        (bool exists, LibRecords.RestingOrder memory order) = LibRecords.loadOrder(st, orderId);
        if (!exists || order.orderHash != orderHash || order.account != accountId) {
            LibReason.reject(LibReason.ORDER_NOT_FOUND);
        }
        LibBook.removeOrder(st, orderId, order);
    }

    /// @notice CancelAll (section 9.6): remove every resting order of the account in one
    ///         market (or in all: `ALL_MARKETS`). fields: [0] account, [1] market, [2] nonce.
    function applyCancelAll(LibStepState.StepState memory st, uint256 accountId, LibTransaction.Transaction memory t)
        internal
        pure
    {
        uint256 market = t.fields[1];
        // the ids as they are at the start: this decoded snapshot is never changed (each
        // removal loads and stores the owner's account itself)
        LibRecords.Account memory account = LibAccounts.requireAccount(st, accountId);
        uint256 count = account.orderCount;
        uint256[16] memory ids = account.orders;
        for (uint256 i = 0; i < count; ++i) {
            uint256 orderId = ids[i];
            (bool exists, LibRecords.RestingOrder memory order) = LibRecords.loadOrder(st, orderId);
            assert(exists); // an account's open order exists
            if (market == ALL_MARKETS || order.market == market) {
                LibBook.removeOrder(st, orderId, order);
            }
        }
    }
}
