"""
Accounts: registration by deposit, replay protection, transfers and withdrawals
(docs/protocol.md, section 8).
"""

from typing import Final

from .inbox import Deposit
from .margin import account_health
from .records import (
    ACCOUNT_LIMIT,
    NONCE_WINDOW,
    Account,
    WithdrawalRecord,
    load_account,
    load_exchange,
    store_account,
    store_exchange,
    store_withdrawal,
)
from .state import StateView
from .step import Outcome, Reason, Rejected
from .transactions import Transfer, Withdraw

MAX_DEPOSIT: Final = (1 << 64) - 1
"""Largest deposit (the bridge refuses larger ones: L2 amounts are ``uint64``)."""


def require_account(view: StateView, account_id: int) -> Account:
    """The registered account ``account_id``; rejects the step with UNKNOWN_ACCOUNT if none."""
    account = load_account(view, account_id)
    if account is None:
        raise Rejected(Reason.UNKNOWN_ACCOUNT, f"account {account_id} is not registered")
    return account


def use_nonce(account: Account, nonce: int) -> None:
    """
    Consume ``nonce`` from the account's window, in memory.

    The window is ``[nonceBase, nonceBase + NONCE_WINDOW)`` with one bit per nonce.
    A nonce below it is too old; one above it slides the window up so that the
    nonce is its last slot (forgetting the oldest bits); a nonce whose bit is set
    was used. So a trader may sign transactions with any distinct nonces and send
    them in any order, as long as none is ``NONCE_WINDOW`` or more below the
    highest used; a trader counting 0, 1, 2, ... is always valid.
    """
    if nonce < account.nonce_base:
        raise Rejected(Reason.NONCE_TOO_OLD, f"nonce {nonce} is below {account.nonce_base}")
    if nonce >= account.nonce_base + NONCE_WINDOW:
        shift = nonce - account.nonce_base - (NONCE_WINDOW - 1)
        account.nonce_bits = account.nonce_bits >> shift if shift < NONCE_WINDOW else 0
        account.nonce_base += shift
    bit = 1 << (nonce - account.nonce_base)
    if account.nonce_bits & bit:
        raise Rejected(Reason.NONCE_USED, f"nonce {nonce} was used")
    account.nonce_bits |= bit


def apply_deposit(view: StateView, deposit: Deposit) -> Outcome:
    """Credit a deposit, registering the account (owner from the message) at its first one."""
    if not 0 <= deposit.account < ACCOUNT_LIMIT or deposit.amount > MAX_DEPOSIT:
        raise Rejected(Reason.INVALID_DEPOSIT, "account id or amount out of range")
    account = load_account(view, deposit.account)
    if account is None:
        account = Account(deposit.owner, 0, 0, 0)
    account.collateral += deposit.amount
    store_account(view, deposit.account, account)
    return Outcome(Reason.OK, account=deposit.account)


def debit_free_collateral(view: StateView, account_id: int, amount: int) -> None:
    """Take ``amount`` out of the account's collateral; it must not exceed its free collateral."""
    account = require_account(view, account_id)
    free = account_health(view, account).free_collateral
    if amount > free:
        raise Rejected(Reason.INSUFFICIENT_COLLATERAL, f"free collateral is {free}")
    account.collateral -= amount
    store_account(view, account_id, account)


def apply_transfer(view: StateView, account_id: int, message: Transfer) -> Outcome:
    """Move collateral to another registered account, out of free collateral only."""
    if message.amount == 0:
        raise Rejected(Reason.ZERO_AMOUNT)
    if message.to == account_id:
        raise Rejected(Reason.SELF_TRANSFER)
    receiver = load_account(view, message.to)
    if receiver is None:
        raise Rejected(Reason.UNKNOWN_RECIPIENT, f"account {message.to} is not registered")
    debit_free_collateral(view, account_id, message.amount)
    receiver = require_account(view, message.to)
    receiver.collateral += message.amount
    store_account(view, message.to, receiver)
    return Outcome(Reason.OK, account=account_id)


def apply_withdraw(view: StateView, account_id: int, message: Withdraw) -> Outcome:
    """Move free collateral into a new withdrawal record, which L1 pays once final."""
    if message.amount == 0:
        raise Rejected(Reason.ZERO_AMOUNT)
    debit_free_collateral(view, account_id, message.amount)
    exchange = load_exchange(view)
    withdrawal_id = exchange.withdrawal_count
    exchange.withdrawal_count += 1
    store_exchange(view, exchange)
    record = WithdrawalRecord(account_id, message.recipient, message.amount)
    store_withdrawal(view, withdrawal_id, record)
    return Outcome(Reason.OK, account=account_id, withdrawal_id=withdrawal_id)
