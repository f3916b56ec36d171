// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title LibReason
/// @notice Why a step was rejected: the stable numbers of `Reason` in node/protocol/step.py
///         (docs/protocol.md, section 9). A test checks both lists are the same.
/// @dev A rejected step writes nothing, so its post-state root is its pre-state root. The
///      executor's logic rejects by reverting with `Rejected(reason)`; the dispatcher
///      (`OneStepExecutor`) catches exactly that error and returns the pre-root. Any other
///      revert (a witness that proves nothing, a bug) propagates.
library LibReason {
    /// @notice Thrown by the STF logic to reject the current step.
    error Rejected(uint8 reason);

    /// @notice The step was applied.
    uint8 internal constant OK = 0;
    /// @notice The bytes are not a well-formed L1 message or transaction.
    uint8 internal constant MALFORMED = 1;
    /// @notice The signature recovers no signer.
    uint8 internal constant BAD_SIGNATURE = 2;
    /// @notice The acting account is not registered.
    uint8 internal constant UNKNOWN_ACCOUNT = 3;
    /// @notice The signer is not the account's owner (or, for a price, not the oracle).
    uint8 internal constant WRONG_SIGNER = 4;
    /// @notice The nonce is below the account's nonce window.
    uint8 internal constant NONCE_TOO_OLD = 5;
    /// @notice The nonce was used before.
    uint8 internal constant NONCE_USED = 6;
    /// @notice No market has this id.
    uint8 internal constant UNKNOWN_MARKET = 7;
    /// @notice The market has no oracle price yet.
    uint8 internal constant NO_ORACLE_PRICE = 8;
    /// @notice A price that is 0 for a resting order, off the tick grid, or beyond the highest tick.
    uint8 internal constant INVALID_PRICE = 9;
    /// @notice A size that is 0 or not a multiple of the lot size.
    uint8 internal constant INVALID_SIZE = 10;
    /// @notice An unknown time in force, or one not allowed with a market or reduce-only order.
    uint8 internal constant INVALID_TIME_IN_FORCE = 11;
    /// @notice The order's expiry is not after the batch timestamp.
    uint8 internal constant EXPIRED = 12;
    /// @notice Another resting order has this order's id (sign again with another nonce).
    uint8 internal constant ORDER_ID_TAKEN = 13;
    /// @notice The account already has ``MAX_OPEN_ORDERS`` resting orders.
    uint8 internal constant TOO_MANY_ORDERS = 14;
    /// @notice A post-only order would match on arrival.
    uint8 internal constant WOULD_CROSS = 15;
    /// @notice A reduce-only order on the same side as the position, or with none.
    uint8 internal constant NOTHING_TO_REDUCE = 16;
    /// @notice A fill-or-kill order that could not fill completely.
    uint8 internal constant NOT_FILLED = 17;
    /// @notice No resting order of this account has this hash.
    uint8 internal constant ORDER_NOT_FOUND = 18;
    /// @notice A transfer or withdrawal of 0.
    uint8 internal constant ZERO_AMOUNT = 19;
    /// @notice A transfer to the paying account itself.
    uint8 internal constant SELF_TRANSFER = 20;
    /// @notice A transfer to an account that is not registered.
    uint8 internal constant UNKNOWN_RECIPIENT = 21;
    /// @notice The amount is more than the account's free collateral.
    uint8 internal constant INSUFFICIENT_COLLATERAL = 22;
    /// @notice A liquidator naming itself as the target.
    uint8 internal constant SELF_LIQUIDATION = 23;
    /// @notice The target has no position in the market.
    uint8 internal constant NO_POSITION = 24;
    /// @notice The target's equity is not below its maintenance margin.
    uint8 internal constant TARGET_HEALTHY = 25;
    /// @notice The liquidator could not carry the position.
    uint8 internal constant LIQUIDATOR_MARGIN = 26;
    /// @notice An oracle price of 0.
    uint8 internal constant INVALID_ORACLE_PRICE = 27;
    /// @notice An oracle timestamp not after the market's last one.
    uint8 internal constant STALE_TIMESTAMP = 28;
    /// @notice An oracle timestamp after the batch timestamp.
    uint8 internal constant FUTURE_TIMESTAMP = 29;
    /// @notice A deposit to an account id or of an amount out of range (the bridge never sends one).
    uint8 internal constant INVALID_DEPOSIT = 30;

    /// @notice Reject the current step with `reason` (never returns).
    function reject(uint8 reason) internal pure {
        revert Rejected(reason);
    }
}
