// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {LibMargin} from "./LibMargin.sol";
import {LibReason} from "./LibReason.sol";
import {LibRecords} from "./LibRecords.sol";
import {LibStepState} from "./LibStepState.sol";
import {LibTransaction} from "./LibTransaction.sol";

/// @title LibAccounts
/// @notice Accounts: registration by deposit, replay protection, transfers and withdrawals
///         (docs/protocol.md, sections 9.2, 9.3, 9.7, 9.8): the Solidity twin of
///         node/protocol/accounts.py, plus the account half of `apply_transaction` in
///         node/protocol/stf.py (`authorize`).
library LibAccounts {
    /// @notice Largest deposit (the bridge refuses larger ones: L2 amounts are uint64).
    uint256 internal constant MAX_DEPOSIT = type(uint64).max;

    /// @notice The registered account `accountId`; rejects the step with UNKNOWN_ACCOUNT if
    ///         none.
    function requireAccount(LibStepState.StepState memory st, uint256 accountId)
        internal
        pure
        returns (LibRecords.Account memory account)
    {
        requireAccountInto(st, accountId, account);
    }

    /// @notice `requireAccount` decoding into the caller's `account` (e.g. a scratch struct
    ///         reused across fills: every zeroed Account allocated costs ~1.8 KB of memory).
    function requireAccountInto(LibStepState.StepState memory st, uint256 accountId, LibRecords.Account memory account)
        internal
        pure
    {
        if (!LibRecords.loadAccountInto(st, accountId, account)) LibReason.reject(LibReason.UNKNOWN_ACCOUNT);
    }

    /// @notice Consume `nonce` from the account's window, in memory.
    /// @dev The window is `[nonceBase, nonceBase + NONCE_WINDOW)` with one bit per nonce. A
    ///      nonce below it is too old; one above it slides the window up so that the nonce is
    ///      its last slot (forgetting the oldest bits); a nonce whose bit is set was used.
    function useNonce(LibRecords.Account memory account, uint256 nonce) internal pure {
        if (nonce < account.nonceBase) LibReason.reject(LibReason.NONCE_TOO_OLD);
        if (nonce >= account.nonceBase + LibRecords.NONCE_WINDOW) {
            uint256 shift = nonce - account.nonceBase - (LibRecords.NONCE_WINDOW - 1);
            account.nonceBits = shift < LibRecords.NONCE_WINDOW ? account.nonceBits >> shift : 0;
            account.nonceBase += shift;
        }
        uint256 bit = 1 << (nonce - account.nonceBase);
        if (account.nonceBits & bit != 0) LibReason.reject(LibReason.NONCE_USED);
        account.nonceBits |= bit;
    }

    /// @notice The account half of `apply_transaction` (section 9.3 steps 4-5): read the
    ///         acting account `fields[0]`, check its owner signed, consume the nonce
    ///         `fields[nonceField]` and write the account. Returns the account id.
    function authorize(LibStepState.StepState memory st, LibTransaction.Transaction memory t, uint256 nonceField)
        internal
        pure
        returns (uint256 accountId)
    {
        accountId = t.fields[0];
        LibRecords.Account memory account = requireAccount(st, accountId);
        if (account.owner != t.signer) LibReason.reject(LibReason.WRONG_SIGNER);
        useNonce(account, t.fields[nonceField]);
        LibRecords.storeAccount(st, accountId, account);
    }

    /// @notice Credit a deposit, registering the account (owner from the message) at its
    ///         first one.
    function applyDeposit(LibStepState.StepState memory st, address owner, uint256 accountId, uint256 amount)
        internal
        pure
    {
        if (accountId >= LibRecords.ACCOUNT_LIMIT || amount > MAX_DEPOSIT) {
            LibReason.reject(LibReason.INVALID_DEPOSIT);
        }
        (bool exists, LibRecords.Account memory account) = LibRecords.loadAccount(st, accountId);
        if (!exists) account.owner = owner; // (owner, 0, 0, 0, [], [])
        account.collateral += int256(amount);
        LibRecords.storeAccount(st, accountId, account);
    }

    /// @notice Take `amount` out of the account's collateral; it must not exceed its free
    ///         collateral.
    function debitFreeCollateral(LibStepState.StepState memory st, uint256 accountId, uint256 amount) internal pure {
        LibRecords.Account memory account = requireAccount(st, accountId);
        LibRecords.Market memory none;
        int256 free = LibMargin.freeCollateral(LibMargin.accountHealth(st, account, LibMargin.NO_MARKET, none));
        if (int256(amount) > free) LibReason.reject(LibReason.INSUFFICIENT_COLLATERAL);
        account.collateral -= int256(amount);
        LibRecords.storeAccount(st, accountId, account);
    }

    /// @notice Transfer (section 9.7): move collateral to another registered account, out of
    ///         free collateral only. fields: [0] account, [1] to, [2] amount, [3] nonce.
    function applyTransfer(LibStepState.StepState memory st, uint256 accountId, LibTransaction.Transaction memory t)
        internal
        pure
    {
        uint256 to = t.fields[1];
        uint256 amount = t.fields[2];
        if (amount == 0) LibReason.reject(LibReason.ZERO_AMOUNT);
        if (to == accountId) LibReason.reject(LibReason.SELF_TRANSFER);
        (bool exists,) = LibRecords.loadAccount(st, to);
        if (!exists) LibReason.reject(LibReason.UNKNOWN_RECIPIENT);
        debitFreeCollateral(st, accountId, amount);
        LibRecords.Account memory receiver = requireAccount(st, to);
        receiver.collateral += int256(amount);
        LibRecords.storeAccount(st, to, receiver);
    }

    /// @notice Withdraw (section 9.8): move free collateral into a new withdrawal record,
    ///         which L1 pays once final. fields: [0] account, [1] recipient, [2] amount,
    ///         [3] nonce.
    function applyWithdraw(LibStepState.StepState memory st, uint256 accountId, LibTransaction.Transaction memory t)
        internal
        pure
    {
        uint256 amount = t.fields[2];
        if (amount == 0) LibReason.reject(LibReason.ZERO_AMOUNT);
        debitFreeCollateral(st, accountId, amount);
        LibRecords.Exchange memory exchange = LibRecords.loadExchange(st);
        uint256 withdrawalId = exchange.withdrawalCount;
        exchange.withdrawalCount += 1;
        LibRecords.storeExchange(st, exchange);
        LibRecords.storeWithdrawal(
            st, withdrawalId, LibRecords.Withdrawal(accountId, address(uint160(t.fields[1])), amount)
        );
    }
}
