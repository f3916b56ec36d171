// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IExchangeStep} from "./IExchangeStep.sol";
import {LibAccounts} from "./LibAccounts.sol";
import {LibOrders} from "./LibOrders.sol";
import {LibStepState} from "./LibStepState.sol";
import {LibTransaction} from "./LibTransaction.sol";

/// @title OrderStep
/// @notice The step contract of `Order` transactions (docs/protocol.md, section 9.4):
///         placement, matching against the book and resting.
contract OrderStep is IExchangeStep {
    /// @notice The transaction is not of a kind this contract handles (a dispatcher bug).
    error WrongKind(uint8 kind);

    /// @inheritdoc IExchangeStep
    function run(bytes32 preRoot, LibTransaction.Transaction memory t, uint64 timestamp, bytes calldata witness)
        external
        pure
        returns (bytes32 postRoot)
    {
        if (t.kind != LibTransaction.ORDER) revert WrongKind(t.kind);
        LibStepState.StepState memory st = LibStepState.init(preRoot, witness);
        uint256 accountId = LibAccounts.authorize(st, t, 8); // Order.nonce is member 8
        LibOrders.placeOrder(st, timestamp, accountId, LibOrders.orderOf(t), t.digest);
        return LibStepState.flush(st);
    }
}
