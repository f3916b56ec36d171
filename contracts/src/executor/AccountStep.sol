// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IExchangeStep} from "./IExchangeStep.sol";
import {LibAccounts} from "./LibAccounts.sol";
import {LibOrders} from "./LibOrders.sol";
import {LibStepState} from "./LibStepState.sol";
import {LibTransaction} from "./LibTransaction.sol";

/// @title AccountStep
/// @notice The step contract of deposits and of the `Cancel`, `CancelAll`, `Transfer` and
///         `Withdraw` transactions (docs/protocol.md, sections 9.2, 9.5-9.8).
contract AccountStep is IExchangeStep {
    /// @notice The transaction is not of a kind this contract handles (a dispatcher bug).
    error WrongKind(uint8 kind);

    /// @notice Apply a decoded deposit message (section 9.2) to the state at `preRoot`.
    /// @param preRoot The state root before the step.
    /// @param owner The depositor (the account's owner if the account is new).
    /// @param accountId The account id the bridge assigned (any uint64; >= 2^32 rejects).
    /// @param amount The amount (any uint256; >= 2^64 rejects).
    /// @param witness The step's witness.
    /// @return postRoot The state root after the step.
    function deposit(bytes32 preRoot, address owner, uint256 accountId, uint256 amount, bytes calldata witness)
        external
        pure
        returns (bytes32 postRoot)
    {
        LibStepState.StepState memory st = LibStepState.init(preRoot, witness);
        LibAccounts.applyDeposit(st, owner, accountId, amount);
        return LibStepState.flush(st);
    }

    /// @inheritdoc IExchangeStep
    function run(bytes32 preRoot, LibTransaction.Transaction memory t, uint64, bytes calldata witness)
        external
        pure
        returns (bytes32 postRoot)
    {
        uint8 kind = t.kind;
        if (kind < LibTransaction.CANCEL || kind > LibTransaction.WITHDRAW) revert WrongKind(kind);
        LibStepState.StepState memory st = LibStepState.init(preRoot, witness);
        // the nonce is member 2 of Cancel and CancelAll, member 3 of Transfer and Withdraw
        uint256 accountId = LibAccounts.authorize(st, t, kind <= LibTransaction.CANCEL_ALL ? 2 : 3);
        if (kind == LibTransaction.CANCEL) {
            LibOrders.applyCancel(st, accountId, t);
        } else if (kind == LibTransaction.CANCEL_ALL) {
            LibOrders.applyCancelAll(st, accountId, t);
        } else if (kind == LibTransaction.TRANSFER) {
            LibAccounts.applyTransfer(st, accountId, t);
        } else {
            LibAccounts.applyWithdraw(st, accountId, t);
        }
        return LibStepState.flush(st);
    }
}
