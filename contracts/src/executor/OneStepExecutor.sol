// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IOneStepExecutor} from "../interfaces/IOneStepExecutor.sol";
import {AccountStep} from "./AccountStep.sol";
import {IExchangeStep} from "./IExchangeStep.sol";
import {LibReason} from "./LibReason.sol";
import {LibTransaction} from "./LibTransaction.sol";

/// @title OneStepExecutor
/// @notice Executes one step of a batch's trace on L1 (docs/protocol.md, sections 5 and 9):
///         the Solidity twin of `node.protocol.stf.apply_step` over a `WitnessView`. It
///         decodes the step (section 9.1: inbox message or transaction), decodes and
///         authenticates a transaction (section 9.3 steps 1-2), and hands it to the step
///         contract of its kind, which applies the rest and returns the post-state root:
///         `OrderStep` (Order), `AccountStep` (deposits, Cancel, CancelAll, Transfer,
///         Withdraw), `RiskStep` (Liquidate, OraclePrice).
/// @dev A step contract rejects a step by reverting with exactly `LibReason.Rejected`: this
///      contract returns `(preRoot, reason)` for it. A rejection's witness holds the reads
///      made before the rejection; nothing checks that it is consumed, since the post-root
///      is the pre-root anyway. Any other revert (a witness that proves nothing, running out
///      of gas) propagates unchanged: it is never a result.
contract OneStepExecutor is IOneStepExecutor {
    /// @notice The step kind of an L1 inbox message (`StepKind.L1_MESSAGE`).
    uint8 public constant L1_MESSAGE = 0;
    /// @notice Kind byte of a deposit inbox message.
    uint8 internal constant DEPOSIT = 0x00;
    /// @notice Kind byte of a forced-transaction inbox message.
    uint8 internal constant FORCED_TRANSACTION = 0x01;
    /// @notice Length of a deposit message: kind, owner (20), account (8), amount (32).
    uint256 internal constant DEPOSIT_LENGTH = 61;

    /// @notice The step contract of Order transactions.
    IExchangeStep public immutable orderStep;
    /// @notice The step contract of deposits, Cancel, CancelAll, Transfer and Withdraw.
    IExchangeStep public immutable accountStep;
    /// @notice The step contract of Liquidate and OraclePrice.
    IExchangeStep public immutable riskStep;

    /// @param orderStep_ The deployed `OrderStep`.
    /// @param accountStep_ The deployed `AccountStep`.
    /// @param riskStep_ The deployed `RiskStep`.
    constructor(IExchangeStep orderStep_, IExchangeStep accountStep_, IExchangeStep riskStep_) {
        orderStep = orderStep_;
        accountStep = accountStep_;
        riskStep = riskStep_;
    }

    /// @inheritdoc IOneStepExecutor
    function execute(
        bytes32 preRoot,
        uint8 stepKind,
        bytes calldata data,
        uint64 timestamp,
        bytes32 domainSeparator,
        bytes calldata witness
    ) external view returns (bytes32 postRoot, uint8 reason) {
        bytes calldata raw = data;
        // 9.1: an inbox step is decoded first (section 3); any other kind is a transaction
        // (`execute_step`'s else branch)
        if (stepKind == L1_MESSAGE) {
            if (data.length == 0) return (preRoot, LibReason.MALFORMED);
            uint8 messageKind = uint8(data[0]);
            if (messageKind == DEPOSIT) return _deposit(preRoot, data, witness);
            if (messageKind != FORCED_TRANSACTION) return (preRoot, LibReason.MALFORMED);
            raw = data[1:];
        }
        // 9.3 steps 1-2: decode (MALFORMED) and recover the signer (BAD_SIGNATURE)
        (uint8 parsed, LibTransaction.Transaction memory t) = LibTransaction.parse(raw, domainSeparator);
        if (parsed != 0) return (preRoot, parsed);
        return _run(preRoot, t, timestamp, witness);
    }

    /// @dev 9.3 from step 3 on: the step contract of the transaction's kind applies it.
    function _run(bytes32 preRoot, LibTransaction.Transaction memory t, uint64 timestamp, bytes calldata witness)
        private
        view
        returns (bytes32 postRoot, uint8 reason)
    {
        IExchangeStep step;
        if (t.kind == LibTransaction.ORDER) {
            step = orderStep;
        } else if (t.kind >= LibTransaction.LIQUIDATE) {
            step = riskStep; // Liquidate, OraclePrice
        } else {
            step = accountStep; // Cancel, CancelAll, Transfer, Withdraw
        }
        return _call(address(step), preRoot, abi.encodeCall(IExchangeStep.run, (preRoot, t, timestamp, witness)));
    }

    /// @dev 9.2: a deposit message of exactly 61 bytes goes to `AccountStep.deposit`.
    function _deposit(bytes32 preRoot, bytes calldata data, bytes calldata witness)
        private
        view
        returns (bytes32 postRoot, uint8 reason)
    {
        if (data.length != DEPOSIT_LENGTH) return (preRoot, LibReason.MALFORMED);
        address owner = address(bytes20(data[1:21]));
        uint256 accountId = uint64(bytes8(data[21:29]));
        uint256 amount = uint256(bytes32(data[29:61]));
        return _call(
            address(accountStep), preRoot, abi.encodeCall(AccountStep.deposit, (preRoot, owner, accountId, amount, witness))
        );
    }

    /// @dev Call a step contract: its post-root, or `(preRoot, reason)` if it reverted with
    ///      exactly `Rejected(reason)`; any other revert is re-thrown as is.
    function _call(address step, bytes32 preRoot, bytes memory callData)
        private
        view
        returns (bytes32 postRoot, uint8 reason)
    {
        (bool ok, bytes memory result) = step.staticcall(callData);
        if (ok) return (abi.decode(result, (bytes32)), 0);
        if (result.length == 36 && bytes4(result) == LibReason.Rejected.selector) {
            uint256 word;
            assembly ("memory-safe") {
                word := mload(add(result, 36))
            }
            return (preRoot, uint8(word));
        }
        assembly ("memory-safe") {
            revert(add(result, 32), mload(result))
        }
    }
}
