// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LibMath} from "./LibMath.sol";
import {LibRecords} from "./LibRecords.sol";
import {LibStepState} from "./LibStepState.sol";

/// @title LibMargin
/// @notice Margin, funding and position arithmetic (docs/protocol.md, section 8): the
///         Solidity twin of node/protocol/margin.py, function by function.
/// @dev Collateral is a signed quote balance; equity is collateral plus the positions' value
///      at the oracle prices minus the funding they owe. Every division rounds against the
///      account: values down (`floorDiv`), margins and funding owed up (`ceilDiv`).
library LibMargin {
    /// @notice Basis points in one.
    uint256 internal constant BPS = 10_000;
    /// @notice Funding indices are in price units times this (premiums are in millionths).
    uint256 internal constant FUNDING_SCALE = 1_000_000;
    /// @notice `accountHealth`'s "no in-memory market" (Python's default `market_id=-1`).
    uint256 internal constant NO_MARKET = type(uint256).max;

    /// @notice An account's equity and margin requirements, in collateral units.
    struct Health {
        /// @notice Collateral + positions' value (rounded down) - funding owed (rounded up).
        int256 equity;
        /// @notice Sum of `ceil(|size| * oracle * initialMarginBps / (divisor * BPS))`.
        int256 initial;
        /// @notice The same with the maintenance margin fraction.
        int256 maintenance;
    }

    /// @notice Collateral `p` owes for funding since it was last settled (negative: is owed),
    ///         rounded up: `ceilDiv(size * (index - positionIndex), divisor * FUNDING_SCALE)`.
    function fundingOwed(LibRecords.Position memory p, LibRecords.Market memory m) internal pure returns (int256) {
        int256 accrued = p.size * (m.fundingIndex - p.fundingIndex);
        return LibMath.ceilDiv(accrued, int256(m.divisor * FUNDING_SCALE));
    }

    /// @notice Settle the funding of `a`'s position in `marketId` (if any): the owed amount
    ///         moves between its collateral and the market's funding balance, and the
    ///         position's index catches up. Changes both records in memory.
    function settleFunding(LibRecords.Account memory a, uint256 marketId, LibRecords.Market memory m)
        internal
        pure
        returns (int256 owed)
    {
        (bool found, uint256 i) = LibRecords.findPosition(a, marketId);
        if (!found) return 0;
        LibRecords.Position memory p = a.positions[i];
        owed = fundingOwed(p, m);
        a.collateral -= owed;
        m.fundingBalance += owed;
        p.fundingIndex = m.fundingIndex;
    }

    /// @notice The health of `a`, reading each position's market from the step state, except
    ///         `marketId`, for which the in-memory `m` is used (`NO_MARKET`: none is).
    /// @dev The hot loop of every fill (both sides, every position), so it reads only the
    ///      five market fields it needs (`LibRecords.marketRiskInto`) and does the per-position
    ///      arithmetic in `_positionTerms`, with the same checks and roundings as the plain
    ///      Solidity of `fundingOwed`/`LibMath`.
    function accountHealth(
        LibStepState.StepState memory st,
        LibRecords.Account memory a,
        uint256 marketId,
        LibRecords.Market memory m
    ) internal pure returns (Health memory h) {
        int256 equity = a.collateral;
        uint256 initial = 0;
        uint256 maintenance = 0;
        uint256 count = a.positionCount;
        LibRecords.Position[8] memory positions = a.positions;
        LibRecords.Risk memory risk; // overwritten for each position
        for (uint256 i = 0; i < count; ++i) {
            LibRecords.Position memory p = positions[i];
            if (p.market == marketId) {
                LibRecords.riskOf(m, risk);
            } else {
                LibRecords.marketRiskInto(st, p.market, risk);
            }
            (int256 net, uint256 initialRequired, uint256 maintenanceRequired) = _positionTerms(p, risk);
            // the funding it owes rounds up; it went into `net`
            equity += net;
            // unchecked: at most MAX_POSITIONS terms, each below 2^144
            unchecked {
                initial += initialRequired;
                maintenance += maintenanceRequired;
            }
        }
        h.equity = equity;
        h.initial = int256(initial);
        h.maintenance = int256(maintenance);
    }

    /// @dev One position's part of `accountHealth`: `net = floorDiv(size * price, divisor) -
    ///      fundingOwed(p)` and the initial and maintenance requirements
    ///      `ceil(|size| * price * bps / (divisor * BPS))`. Reverts as the checked Solidity
    ///      would: Panic(0x11) where `index - p.fundingIndex`, `size * that` or `value - owed`
    ///      overflows int256, Panic(0x12) for a zero divisor. The other products are of
    ///      record fields (size i64, price and divisor u64, bps u16: below 2^144).
    function _positionTerms(LibRecords.Position memory p, LibRecords.Risk memory risk)
        private
        pure
        returns (int256 net, uint256 initialRequired, uint256 maintenanceRequired)
    {
        assembly ("memory-safe") {
            function panic(code) {
                mstore(0x00, shl(224, 0x4e487b71))
                mstore(0x04, code)
                revert(0x00, 0x24)
            }
            let size := mload(add(p, 0x20))
            let price := mload(risk)
            let divisor := mload(add(risk, 0x20))
            if iszero(divisor) { panic(0x12) }
            // value = floorDiv(size * price, divisor)
            let num := mul(size, price)
            let value := sdiv(num, divisor)
            if and(slt(num, 0), iszero(eq(mul(value, divisor), num))) { value := sub(value, 1) }
            // requirements round up
            let notional := mul(price, xor(size, sar(255, size)))
            notional := add(notional, mul(price, shr(255, size))) // |size| * price
            let scale := mul(divisor, 10000)
            let n := mul(notional, mload(add(risk, 0x40)))
            initialRequired := div(n, scale)
            if iszero(eq(mul(initialRequired, scale), n)) { initialRequired := add(initialRequired, 1) }
            n := mul(notional, mload(add(risk, 0x60)))
            maintenanceRequired := div(n, scale)
            if iszero(eq(mul(maintenanceRequired, scale), n)) { maintenanceRequired := add(maintenanceRequired, 1) }
            // fundingOwed = ceilDiv(size * (index - p.fundingIndex), divisor * FUNDING_SCALE)
            let index := mload(add(risk, 0x80))
            let paid := mload(add(p, 0x40))
            let d := sub(index, paid)
            if iszero(eq(sgt(paid, 0), slt(d, index))) { panic(0x11) }
            let accrued := mul(size, d)
            if size {
                if or(iszero(eq(sdiv(accrued, size), d)), and(eq(size, not(0)), eq(d, shl(255, 1)))) {
                    panic(0x11)
                }
            }
            let den := mul(divisor, 1000000)
            let owed := sdiv(accrued, den)
            if and(sgt(accrued, 0), iszero(eq(mul(owed, den), accrued))) { owed := add(owed, 1) }
            net := sub(value, owed)
            if iszero(eq(sgt(owed, 0), slt(net, value))) { panic(0x11) }
        }
    }

    /// @notice What can leave the account: `equity - initial`.
    function freeCollateral(Health memory h) internal pure returns (int256) {
        return h.equity - h.initial;
    }

    /// @notice Add `sizeDelta` to `a`'s position in `marketId` and `collateralDelta` to its
    ///         collateral, in memory. Funding must be settled first. A new position starts at
    ///         the market's funding index; a position that reaches 0 is removed. False (and
    ///         the account must be discarded) if the account would exceed `MAX_POSITIONS`
    ///         positions or `MAX_POSITION_SIZE`.
    function applyTrade(
        LibRecords.Account memory a,
        uint256 marketId,
        LibRecords.Market memory m,
        int256 sizeDelta,
        int256 collateralDelta
    ) internal pure returns (bool) {
        (bool found, uint256 i) = LibRecords.findPosition(a, marketId);
        if (!found) {
            if (a.positionCount == LibRecords.MAX_POSITIONS) return false;
            i = a.positionCount;
            // a fresh struct: never write through a slot another slot may alias
            a.positions[i] = LibRecords.Position(marketId, 0, m.fundingIndex);
            a.positionCount = i + 1;
        }
        LibRecords.Position memory p = a.positions[i];
        int256 size = p.size + sizeDelta;
        if (LibMath.abs(size) > uint256(LibRecords.MAX_POSITION_SIZE)) return false;
        p.size = size;
        if (size == 0) {
            // remove it, the others keeping their order
            uint256 last = a.positionCount - 1;
            for (uint256 j = i; j < last; ++j) {
                a.positions[j] = a.positions[j + 1];
            }
            a.positionCount = last;
        }
        a.collateral += collateralDelta;
        return true;
    }

    /// @notice Whether `a` (after a trade in `marketId` that moved its position from
    ///         `sizeBefore`) may keep the trade: its equity covers its initial margin, or the
    ///         trade only reduced the position (without flipping it) and its equity is still
    ///         not negative.
    function fillAllowed(
        LibStepState.StepState memory st,
        LibRecords.Account memory a,
        int256 sizeBefore,
        uint256 marketId,
        LibRecords.Market memory m
    ) internal pure returns (bool) {
        Health memory h = accountHealth(st, a, marketId, m);
        if (h.equity >= h.initial) return true;
        int256 after_ = LibRecords.positionSize(a, marketId);
        bool reduced = LibMath.abs(after_) < LibMath.abs(sizeBefore)
            && (after_ == 0 || (after_ > 0) == (sizeBefore > 0));
        return reduced && h.equity >= 0;
    }

    /// @notice One side of a fill (`execute_fill`) or a liquidator's take-over, in memory:
    ///         `before` = its position size, `settle_funding`, `apply_trade`, then
    ///         `fill_allowed` (which may read the markets of its other positions). False if
    ///         the side may not keep the trade (and the account must be discarded).
    function trade(
        LibStepState.StepState memory st,
        LibRecords.Account memory account,
        uint256 marketId,
        LibRecords.Market memory market,
        int256 sizeDelta,
        int256 collateralDelta
    ) internal pure returns (bool) {
        int256 before = LibRecords.positionSize(account, marketId);
        settleFunding(account, marketId, market);
        return applyTrade(account, marketId, market, sizeDelta, collateralDelta)
            && fillAllowed(st, account, before, marketId, market);
    }
}
