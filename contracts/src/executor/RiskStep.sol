// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IExchangeStep} from "./IExchangeStep.sol";
import {LibAccounts} from "./LibAccounts.sol";
import {LibLiquidation} from "./LibLiquidation.sol";
import {LibOracle} from "./LibOracle.sol";
import {LibStepState} from "./LibStepState.sol";
import {LibTransaction} from "./LibTransaction.sol";

/// @title RiskStep
/// @notice The step contract of `Liquidate` and `OraclePrice` transactions
///         (docs/protocol.md, sections 9.9 and 9.10).
contract RiskStep is IExchangeStep {
    /// @notice The transaction is not of a kind this contract handles (a dispatcher bug).
    error WrongKind(uint8 kind);

    /// @inheritdoc IExchangeStep
    function run(bytes32 preRoot, LibTransaction.Transaction memory t, uint64 timestamp, bytes calldata witness)
        external
        pure
        returns (bytes32 postRoot)
    {
        LibStepState.StepState memory st = LibStepState.init(preRoot, witness);
        if (t.kind == LibTransaction.ORACLE_PRICE) {
            // prices carry no account and no nonce (section 9.3 step 3)
            LibOracle.applyOraclePrice(st, t, timestamp);
        } else if (t.kind == LibTransaction.LIQUIDATE) {
            uint256 accountId = LibAccounts.authorize(st, t, 3); // Liquidate.nonce is member 3
            LibLiquidation.applyLiquidate(st, accountId, t);
        } else {
            revert WrongKind(t.kind);
        }
        return LibStepState.flush(st);
    }
}
