// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LibTransaction} from "./LibTransaction.sol";

/// @title IExchangeStep
/// @notice A step contract: one slice of the exchange STF, deployed on its own so that every
///         contract stays under the 24 KiB code limit. `OneStepExecutor` decodes and
///         authenticates the step, then calls the contract that handles its kind.
/// @dev A step contract is stateless. It rejects a step by reverting with
///      `LibReason.Rejected(reason)` (the dispatcher turns that into `(preRoot, reason)`);
///      any other revert means the witness does not prove the step's accesses.
interface IExchangeStep {
    /// @notice Apply a decoded, signature-checked transaction (section 9.3 from step 3 on)
    ///         to the state at `preRoot`, reading and writing through `witness`.
    /// @param preRoot The state root before the step.
    /// @param t The transaction as `LibTransaction.parse` returned it (reason 0).
    /// @param timestamp The batch timestamp.
    /// @param witness The step's witness (docs/protocol.md, section 5).
    /// @return postRoot The state root after the step.
    function run(bytes32 preRoot, LibTransaction.Transaction calldata t, uint64 timestamp, bytes calldata witness)
        external
        view
        returns (bytes32 postRoot);
}
