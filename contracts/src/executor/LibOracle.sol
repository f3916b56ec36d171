// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LibMargin} from "./LibMargin.sol";
import {LibMath} from "./LibMath.sol";
import {LibReason} from "./LibReason.sol";
import {LibRecords} from "./LibRecords.sol";
import {LibStepState} from "./LibStepState.sol";
import {LibTransaction} from "./LibTransaction.sol";

/// @title LibOracle
/// @notice Oracle prices and funding (docs/protocol.md, sections 8 and 9.10): the Solidity
///         twin of node/protocol/oracle.py.
/// @dev Each new price first accrues funding for the time since the previous one: the
///      premium of the mark (the last fill price) over the index, clamped to `maxFundingPpm`
///      per `FUNDING_PERIOD`, is added to the market's cumulative funding index.
library LibOracle {
    /// @notice Seconds over which the clamped premium is paid once; also the most one update
    ///         accrues.
    uint256 internal constant FUNDING_PERIOD = 8 * 3600;

    /// @notice Add the funding since the market's last oracle time to its index (in memory).
    function accrueFunding(LibRecords.Market memory market, uint256 now_) internal pure {
        if (market.oracleTime == 0) return;
        uint256 elapsed = LibMath.min(now_ - market.oracleTime, FUNDING_PERIOD);
        uint256 index = market.oraclePrice;
        uint256 mark = market.lastPrice != 0 ? market.lastPrice : index;
        uint256 gap = mark >= index ? mark - index : index - mark;
        // premium = clamp((mark - index) / index) in millionths, its magnitude rounded down
        uint256 magnitude = LibMath.min(gap * LibMargin.FUNDING_SCALE / index, market.maxFundingPpm);
        // delta = premium * index * elapsed / FUNDING_PERIOD, its magnitude rounded down
        int256 delta = int256(magnitude * index * elapsed / FUNDING_PERIOD);
        market.fundingIndex += mark >= index ? delta : -delta;
    }

    /// @notice OraclePrice (section 9.10): record an index price signed by the oracle, after
    ///         accruing funding. fields: [0] market, [1] price, [2] timestamp.
    function applyOraclePrice(LibStepState.StepState memory st, LibTransaction.Transaction memory t, uint256 timestamp)
        internal
        pure
    {
        uint256 marketId = t.fields[0];
        uint256 price = t.fields[1];
        uint256 priceTime = t.fields[2];
        LibRecords.Exchange memory exchange = LibRecords.loadExchange(st);
        if (t.signer != exchange.oracle) LibReason.reject(LibReason.WRONG_SIGNER);
        (bool exists, LibRecords.Market memory market) = LibRecords.loadMarket(st, marketId);
        if (!exists) LibReason.reject(LibReason.UNKNOWN_MARKET);
        if (price == 0) LibReason.reject(LibReason.INVALID_ORACLE_PRICE);
        if (priceTime <= market.oracleTime) LibReason.reject(LibReason.STALE_TIMESTAMP);
        if (priceTime > timestamp) LibReason.reject(LibReason.FUTURE_TIMESTAMP);
        accrueFunding(market, priceTime);
        market.oraclePrice = price;
        market.oracleTime = priceTime;
        LibRecords.storeMarket(st, marketId, market);
    }
}
