// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IOneStepExecutor
/// @notice Executes one step of a batch's trace on L1: the Solidity twin of
///         `node.protocol.stf.apply_step` run on a `WitnessView` (docs/protocol.md, sections
///         5 and 9). It holds no state: from the agreed pre-state root, the step's input, the
///         batch context and the witness built by `node.protocol.stf.prove_step`, it computes
///         the true post-state root.
interface IOneStepExecutor {
    /// @notice Step kind of an L1 inbox message (`data` = the message bytes).
    /// @dev Mirrors `StepKind.L1_MESSAGE` in node/protocol/step.py.
    // uint8 constant L1_MESSAGE = 0; TRANSACTION = 1 (`data` = the encoded transaction).

    /// @notice The post-state root of one step, and the step's `Reason` (0 = applied).
    /// @param preRoot The state root before the step (agreed by both parties of a dispute).
    /// @param stepKind 0: `data` is an L1 inbox message; 1: `data` is a batch transaction.
    /// @param data The step's input bytes, any bytes at all (malformed input is a no-op step).
    /// @param timestamp The batch timestamp (the STF's only clock).
    /// @param domainSeparator The EIP-712 domain separator of the rollup (section 1).
    /// @param witness The RLP witness of section 5, consumed in order and exactly.
    /// @dev Reverts only when the witness does not prove the accesses the step makes (or
    ///      has entries left over); for every input with a correct witness it returns.
    function execute(
        bytes32 preRoot,
        uint8 stepKind,
        bytes calldata data,
        uint64 timestamp,
        bytes32 domainSeparator,
        bytes calldata witness
    ) external view returns (bytes32 postRoot, uint8 reason);
}
