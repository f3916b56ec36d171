// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IOneStepExecutor} from "../src/interfaces/IOneStepExecutor.sol";

/// @title AlphabetExecutor
/// @notice A toy one-step executor for dispute-game tests (op-challenger's "alphabet" trace):
///         the post root of a step is a hash of everything the game passes in, so a test can
///         compute any trace in Python (tests/integration/l1_env.py `alphabet_step`) and the
///         game is tested without the exchange STF.
/// @dev Rules: the witness must be exactly the 32-byte pre root (anything else reverts, as a
///      bad witness does in the real executor); empty `data` is a rejected step (reason 1,
///      post = pre); otherwise post = keccak256(abi.encode(preRoot, stepKind,
///      keccak256(data), timestamp, domainSeparator)) with reason 0.
contract AlphabetExecutor is IOneStepExecutor {
    /// @notice The witness is not the pre root.
    error BadWitness();

    /// @inheritdoc IOneStepExecutor
    function execute(
        bytes32 preRoot,
        uint8 stepKind,
        bytes calldata data,
        uint64 timestamp,
        bytes32 domainSeparator,
        bytes calldata witness
    ) external pure returns (bytes32 postRoot, uint8 reason) {
        if (witness.length != 32 || bytes32(witness) != preRoot) revert BadWitness();
        if (data.length == 0) return (preRoot, 1);
        postRoot =
            keccak256(abi.encode(preRoot, stepKind, keccak256(data), timestamp, domainSeparator));
    }
}
