// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LibAccounts} from "./LibAccounts.sol";
import {LibMargin} from "./LibMargin.sol";
import {LibMath} from "./LibMath.sol";
import {LibOrders} from "./LibOrders.sol";
import {LibReason} from "./LibReason.sol";
import {LibRecords} from "./LibRecords.sol";
import {LibStepState} from "./LibStepState.sol";
import {LibTransaction} from "./LibTransaction.sol";

/// @title LibLiquidation
/// @notice Liquidation (docs/protocol.md, section 9.9): the Solidity twin of
///         node/protocol/liquidation.py, access by access.
/// @dev Anyone may liquidate an account whose equity is below its maintenance margin, one
///      market at a time: the liquidator takes over the whole position at the oracle price.
///      The target pays a penalty, out of the equity it has left, to the liquidator and the
///      insurance fund; with no position left and negative collateral, the insurance fund
///      absorbs that bad debt. (`apply_liquidate` is split in three functions only to keep
///      the EVM stack small; the order of operations is Python's.)
library LibLiquidation {
    /// @notice What closing the target's position gives the liquidator.
    struct Closing {
        /// @notice The target's position size before (the liquidator takes it over).
        int256 size;
        /// @notice Its value at the oracle price, rounded down.
        int256 value;
        /// @notice The liquidator's reward, capped by the target's equity.
        int256 reward;
        /// @notice The exchange record (insurance fund updated).
        LibRecords.Exchange exchange;
    }

    /// @notice Liquidate: fields [0] account (the liquidator), [1] target, [2] market,
    ///         [3] nonce.
    function applyLiquidate(LibStepState.StepState memory st, uint256 accountId, LibTransaction.Transaction memory t)
        internal
        pure
    {
        uint256 targetId = t.fields[1];
        uint256 marketId = t.fields[2];
        if (targetId == accountId) LibReason.reject(LibReason.SELF_LIQUIDATION);
        LibRecords.Account memory target = LibAccounts.requireAccount(st, targetId);
        LibRecords.Market memory market = LibOrders.requireMarket(st, marketId);
        Closing memory c = closeTarget(st, target, marketId, market);

        // The liquidator takes the position over at the same value, plus the reward.
        LibRecords.Account memory liquidator = LibAccounts.requireAccount(st, accountId);
        if (!LibMargin.trade(st, liquidator, marketId, market, c.size, c.reward - c.value)) {
            LibReason.reject(LibReason.LIQUIDATOR_MARGIN);
        }

        LibRecords.storeAccount(st, targetId, target);
        LibRecords.storeAccount(st, accountId, liquidator);
        LibRecords.storeMarket(st, marketId, market);
        LibRecords.storeExchange(st, c.exchange);
    }

    /// @notice Check the target may be liquidated, close its position at the oracle price
    ///         and take the penalty out of what equity it has left (in memory).
    function closeTarget(
        LibStepState.StepState memory st,
        LibRecords.Account memory target,
        uint256 marketId,
        LibRecords.Market memory market
    ) internal pure returns (Closing memory c) {
        (bool found, uint256 i) = LibRecords.findPosition(target, marketId);
        if (!found) LibReason.reject(LibReason.NO_POSITION);
        LibMargin.Health memory health = LibMargin.accountHealth(st, target, marketId, market);
        if (health.equity >= health.maintenance) LibReason.reject(LibReason.TARGET_HEALTHY);

        // The target closes at the oracle price; the value rounds down (against the target).
        LibMargin.settleFunding(target, marketId, market);
        c.size = target.positions[i].size;
        c.value = LibMath.floorDiv(c.size * int256(market.oraclePrice), int256(market.divisor));
        LibMargin.applyTrade(target, marketId, market, -c.size, c.value);

        // The penalty, capped by the equity the target has left.
        c.exchange = LibRecords.loadExchange(st);
        takePenalty(st, target, marketId, market, c);
    }

    /// @notice The penalty: reward and insurance of the closed notional (both rounded up,
    ///         against the target), capped by the target's remaining equity; then bad debt.
    function takePenalty(
        LibStepState.StepState memory st,
        LibRecords.Account memory target,
        uint256 marketId,
        LibRecords.Market memory market,
        Closing memory c
    ) internal pure {
        LibRecords.Exchange memory exchange = c.exchange;
        uint256 notional = LibMath.abs(c.size) * market.oraclePrice;
        uint256 scale = market.divisor * LibMargin.BPS;
        int256 reward = int256(LibMath.ceilDivU(notional * exchange.liquidationRewardBps, scale));
        int256 insurance = int256(LibMath.ceilDivU(notional * exchange.liquidationInsuranceBps, scale));
        int256 available = LibMargin.accountHealth(st, target, marketId, market).equity;
        if (available < 0) available = 0; // max(0, equity)
        if (reward > available) reward = available;
        if (insurance > available - reward) insurance = available - reward;
        target.collateral -= reward + insurance;
        exchange.insuranceFund += insurance;
        if (target.positionCount == 0 && target.collateral < 0) {
            exchange.insuranceFund += target.collateral;
            target.collateral = 0;
        }
        c.reward = reward;
    }
}
