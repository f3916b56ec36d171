"""
Per-rule tests of the account steps: deposits, the nonce window, transfers,
withdrawals and the free-collateral limit (node/protocol/accounts.py).

Each test builds a pre-state with the :class:`~tests.stf_env.Exchange` harness,
applies one step and asserts the exact post-state records. Expected numbers are
worked out by hand in the tests.
"""

import random

import pytest

from node.protocol.inbox import Deposit, ForcedTransaction, encode_l1_message
from node.protocol.records import Account, Position, WithdrawalRecord
from node.protocol.step import Reason, Step, StepKind
from node.protocol.transactions import (
    CancelAll,
    SignedTransaction,
    TimeInForce,
    Transfer,
    Withdraw,
    encode_transaction,
)
from tests.stf_env import USD, Exchange, Trader, btc, sats
from tests.stf_env import test_key as make_key
from tests.unit.stf_helpers import assert_conserved, assert_rejected, not_on_curve_r, result

# Deposits ---------------------------------------------------------------------------------


def test_first_deposit_registers_the_account_with_its_owner() -> None:
    """A deposit to an unknown id creates the account: owner from the message, the amount
    as collateral, a fresh nonce window, no orders or positions."""
    ex = Exchange()
    trader = Trader(1, make_key(1))
    assert ex.account(1) is None
    outcome = ex.deposit(trader, 1_234 * USD + 5)
    assert outcome.reason is Reason.OK
    assert outcome.account == 1
    assert ex.account(1) == Account(trader.address, 1_234_000_005, 0, 0, [], [])
    assert ex.account(2) is None


def test_deposit_tops_up_an_existing_account_and_keeps_its_owner() -> None:
    """A second deposit adds to the collateral; the owner named in the message is ignored
    for an existing account, and the nonce window is untouched."""
    ex = Exchange()
    trader = ex.new_trader(deposit=500 * USD)
    assert ex.cancel_all(trader, 0, nonce=3).applied  # leaves a used nonce behind
    stranger = Trader(trader.id, make_key(77))  # same account id, another address
    outcome = ex.deposit(stranger, 250 * USD)
    assert outcome.reason is Reason.OK
    assert outcome.account == trader.id
    assert ex.account(trader.id) == Account(trader.address, 750 * USD, 0, 1 << 3, [], [])


def test_deposit_to_the_fee_account_through_the_l1_inbox() -> None:
    """The fee account (id 0, created at genesis) can receive a deposit like any account;
    its owner stays the genesis fee owner whatever the message says."""
    ex = Exchange()
    fee_owner = ex.fee_owner.address
    step = Step(StepKind.L1_MESSAGE, encode_l1_message(Deposit(b"\x11" * 20, 0, 42 * USD)))
    outcome = ex.apply(step)
    assert outcome.reason is Reason.OK
    assert outcome.account == 0
    assert ex.account(0) == Account(fee_owner, 42 * USD, 0, 0, [], [])
    assert_conserved(ex)


def test_deposit_of_the_largest_amount_and_highest_account_id() -> None:
    """The boundaries are accepted: amount 2**64 - 1 and account id 2**32 - 1."""
    ex = Exchange()
    trader = Trader(2**32 - 1, make_key(5))
    assert ex.deposit(trader, 2**64 - 1).reason is Reason.OK
    assert ex.account(2**32 - 1) == Account(trader.address, 2**64 - 1, 0, 0, [], [])


@pytest.mark.parametrize(
    ("account_id", "amount"),
    [(2**32, 1 * USD), (2**64 - 1, 1 * USD), (1, 2**64), (1, 2**256 - 1)],
)
def test_invalid_deposit(account_id: int, amount: int) -> None:
    """A deposit to an account id beyond the accounts table, or of more than a uint64,
    is rejected with INVALID_DEPOSIT and registers nothing."""
    ex = Exchange()
    trader = Trader(account_id, make_key(5))
    assert_rejected(ex, Reason.INVALID_DEPOSIT, lambda: ex.deposit(trader, amount))
    assert ex.account(1) is None


# Malformed input and authentication -------------------------------------------------------


def _random_transaction_bytes() -> list[bytes]:
    rng = random.Random(20240611)
    return [rng.randbytes(rng.randrange(1, 120)) for _ in range(20)]


@pytest.mark.parametrize(
    "step",
    [
        *(Step(StepKind.TRANSACTION, data) for data in _random_transaction_bytes()),
        Step(StepKind.TRANSACTION, b""),
        Step(StepKind.TRANSACTION, b"\x01" + b"\xc0"),  # an Order with no members
        Step(StepKind.L1_MESSAGE, b""),  # empty inbox message
        Step(StepKind.L1_MESSAGE, b"\x02" + bytes(60)),  # unknown message kind
        Step(StepKind.L1_MESSAGE, b"\x00" + bytes(59)),  # a deposit one byte short
        Step(StepKind.L1_MESSAGE, b"\x00" + bytes(61)),  # a deposit one byte long
        Step(StepKind.L1_MESSAGE, b"\x01"),  # a forced transaction with no transaction
        Step(StepKind.L1_MESSAGE, b"\x01\xff\xff"),  # a forced transaction of garbage
    ],
    ids=lambda step: f"{step.kind.name}-{step.data[:4].hex()}-{len(step.data)}",
)
def test_invalid_malformed(step: Step) -> None:
    """Bytes that are no transaction, or no L1 message, are rejected as MALFORMED."""
    ex = Exchange()
    ex.new_trader()
    assert_rejected(ex, Reason.MALFORMED, lambda: ex.apply(step))


def test_invalid_bad_signature() -> None:
    """A signature with canonical ranges (1 <= r < n, low s, v 27/28) whose r is no curve
    x-coordinate recovers no key: BAD_SIGNATURE, for a sequenced and a forced step."""
    ex = Exchange()
    trader = ex.new_trader()
    r = not_on_curve_r()
    signature = r.to_bytes(32, "big") + (1).to_bytes(32, "big") + bytes([27])
    raw = encode_transaction(SignedTransaction(CancelAll(trader.id, 0, 0), signature))
    assert_rejected(ex, Reason.BAD_SIGNATURE, lambda: ex.apply(Step(StepKind.TRANSACTION, raw)))
    assert_rejected(ex, Reason.BAD_SIGNATURE, lambda: ex.force(raw))
    assert ex.account(trader.id) == Account(trader.address, 100_000 * USD, 0, 0, [], [])


def test_invalid_unknown_account() -> None:
    """A transaction from an account id nobody registered: UNKNOWN_ACCOUNT."""
    ex = Exchange()
    ex.new_trader()
    ghost = Trader(9, make_key(9))
    assert_rejected(ex, Reason.UNKNOWN_ACCOUNT, lambda: ex.transfer(ghost, 1, 1 * USD))
    assert_rejected(ex, Reason.UNKNOWN_ACCOUNT, lambda: ex.cancel_all(ghost, 0))


def test_invalid_wrong_signer() -> None:
    """A valid signature by a key that does not own the account: WRONG_SIGNER, whoever
    the signer is (another registered trader, or the oracle key)."""
    ex = Exchange()
    victim = ex.new_trader()
    thief = ex.new_trader()
    message = Transfer(victim.id, thief.id, 10 * USD, 0)
    assert_rejected(ex, Reason.WRONG_SIGNER, lambda: ex.send(victim, message, key=thief.key))
    assert_rejected(ex, Reason.WRONG_SIGNER, lambda: ex.send(victim, message, key=make_key(1000)))
    assert ex.collateral(victim.id) == 100_000 * USD
    assert ex.collateral(thief.id) == 100_000 * USD


# Nonce window -----------------------------------------------------------------------------


def test_nonces_are_accepted_in_any_order_within_the_window() -> None:
    """Nonces 5, 2, 255, 0 (all inside [0, 256)) are each accepted once, in that order;
    the base stays 0 and exactly their bits are set."""
    ex = Exchange()
    trader = ex.new_trader()
    for nonce in (5, 2, 255, 0):
        assert ex.cancel_all(trader, 0, nonce=nonce).reason is Reason.OK
    account = ex.account(trader.id)
    assert account is not None
    assert account.nonce_base == 0
    assert account.nonce_bits == (1 << 5) | (1 << 2) | (1 << 255) | 1


def test_nonce_window_slides_up_and_forgets_old_nonces() -> None:
    """A nonce past the window slides it so that the nonce is the last slot: nonce 256
    makes the base 1 (bits shifted down by one), so nonce 0 is then too old, 255 stays
    used and the unused 3 is still accepted."""
    ex = Exchange()
    trader = ex.new_trader()
    for nonce in (5, 2, 255, 0):
        assert ex.cancel_all(trader, 0, nonce=nonce).applied
    assert ex.cancel_all(trader, 0, nonce=256).reason is Reason.OK
    account = ex.account(trader.id)
    assert account is not None
    assert account.nonce_base == 1
    assert account.nonce_bits == (1 << 4) | (1 << 1) | (1 << 254) | (1 << 255)
    assert_rejected(ex, Reason.NONCE_TOO_OLD, lambda: ex.cancel_all(trader, 0, nonce=0))
    assert_rejected(ex, Reason.NONCE_USED, lambda: ex.cancel_all(trader, 0, nonce=255))
    assert ex.cancel_all(trader, 0, nonce=3).reason is Reason.OK
    account = ex.account(trader.id)
    assert account is not None
    assert account.nonce_bits == (1 << 4) | (1 << 2) | (1 << 1) | (1 << 254) | (1 << 255)


def test_nonce_far_past_the_window_clears_it() -> None:
    """A jump of more than a whole window forgets every used nonce: after nonce 1000 the
    window is [745, 1001) with only 1000 used."""
    ex = Exchange()
    trader = ex.new_trader()
    assert ex.cancel_all(trader, 0, nonce=7).applied
    assert ex.cancel_all(trader, 0, nonce=1000).reason is Reason.OK
    account = ex.account(trader.id)
    assert account is not None
    assert (account.nonce_base, account.nonce_bits) == (745, 1 << 255)
    assert_rejected(ex, Reason.NONCE_TOO_OLD, lambda: ex.cancel_all(trader, 0, nonce=744))
    assert ex.cancel_all(trader, 0, nonce=745).reason is Reason.OK


def test_invalid_nonce_too_old() -> None:
    """After nonce 300 the window is [45, 301): nonce 44 is NONCE_TOO_OLD, 45 is fine."""
    ex = Exchange()
    trader = ex.new_trader()
    assert ex.cancel_all(trader, 0, nonce=300).applied
    assert_rejected(ex, Reason.NONCE_TOO_OLD, lambda: ex.transfer(trader, 0, 1 * USD, nonce=44))
    assert ex.transfer(trader, 0, 1 * USD, nonce=45).reason is Reason.OK


def test_invalid_nonce_used() -> None:
    """Replaying the very same signed transfer is rejected with NONCE_USED and moves
    nothing a second time; so is another transaction reusing the nonce."""
    ex = Exchange()
    a = ex.new_trader()
    b = ex.new_trader()
    raw = ex.sign(a.key, Transfer(a.id, b.id, 10 * USD, 0))
    assert ex.apply(Step(StepKind.TRANSACTION, raw)).reason is Reason.OK
    assert_rejected(ex, Reason.NONCE_USED, lambda: ex.apply(Step(StepKind.TRANSACTION, raw)))
    assert_rejected(ex, Reason.NONCE_USED, lambda: ex.cancel_all(a, 0, nonce=0))
    assert ex.collateral(a.id) == 99_990 * USD
    assert ex.collateral(b.id) == 100_010 * USD


def test_rejected_step_does_not_consume_its_nonce() -> None:
    """A transfer rejected after its nonce was checked (amount 0) leaves the nonce unused:
    a later transaction with the same nonce is applied."""
    ex = Exchange()
    a = ex.new_trader()
    b = ex.new_trader()
    assert_rejected(ex, Reason.ZERO_AMOUNT, lambda: ex.transfer(a, b.id, 0, nonce=7))
    assert ex.transfer(a, b.id, 3 * USD, nonce=7).reason is Reason.OK
    account = ex.account(a.id)
    assert account is not None
    assert account.nonce_bits == 1 << 7


# Transfers --------------------------------------------------------------------------------


def test_transfer_moves_collateral_between_accounts() -> None:
    """A transfer debits the sender, credits the receiver, and uses the sender's nonce only."""
    ex = Exchange()
    a = ex.new_trader(deposit=1_000 * USD)
    b = ex.new_trader(deposit=2_000 * USD)
    outcome = ex.transfer(a, b.id, 400 * USD + 1, nonce=0)
    assert outcome.reason is Reason.OK
    assert outcome.account == a.id
    assert ex.account(a.id) == Account(a.address, 600 * USD - 1, 0, 1, [], [])
    assert ex.account(b.id) == Account(b.address, 2_400 * USD + 1, 0, 0, [], [])
    assert_conserved(ex)


def test_transfer_of_all_free_collateral_then_nothing_more() -> None:
    """Without positions the free collateral is the collateral: all of it can move, then
    one unit more is INSUFFICIENT_COLLATERAL."""
    ex = Exchange()
    a = ex.new_trader(deposit=1_000 * USD)
    b = ex.new_trader()
    assert ex.transfer(a, b.id, 1_000 * USD).reason is Reason.OK
    assert ex.collateral(a.id) == 0
    assert_rejected(ex, Reason.INSUFFICIENT_COLLATERAL, lambda: ex.transfer(a, b.id, 1))


@pytest.mark.parametrize("kind", ["transfer", "withdraw"])
def test_invalid_zero_amount(kind: str) -> None:
    """A transfer or a withdrawal of 0 is rejected with ZERO_AMOUNT."""
    ex = Exchange()
    a = ex.new_trader()
    b = ex.new_trader()
    if kind == "transfer":
        assert_rejected(ex, Reason.ZERO_AMOUNT, lambda: ex.transfer(a, b.id, 0))
    else:
        assert_rejected(ex, Reason.ZERO_AMOUNT, lambda: ex.withdraw(a, 0))


def test_invalid_self_transfer() -> None:
    """A transfer to the paying account itself is rejected with SELF_TRANSFER."""
    ex = Exchange()
    a = ex.new_trader()
    assert_rejected(ex, Reason.SELF_TRANSFER, lambda: ex.transfer(a, a.id, 1 * USD))


def test_invalid_unknown_recipient() -> None:
    """A transfer to an unregistered id (or one beyond the table) is UNKNOWN_RECIPIENT."""
    ex = Exchange()
    a = ex.new_trader()
    assert_rejected(ex, Reason.UNKNOWN_RECIPIENT, lambda: ex.transfer(a, 5, 1 * USD))
    assert_rejected(ex, Reason.UNKNOWN_RECIPIENT, lambda: ex.transfer(a, 2**32, 1 * USD))


@pytest.mark.parametrize("kind", ["transfer", "withdraw"])
def test_invalid_insufficient_collateral(kind: str) -> None:
    """Moving more than the collateral of an account without positions is rejected with
    INSUFFICIENT_COLLATERAL."""
    ex = Exchange()
    a = ex.new_trader(deposit=100 * USD)
    b = ex.new_trader()
    if kind == "transfer":
        action = lambda: ex.transfer(a, b.id, 100 * USD + 1)  # noqa: E731
    else:
        action = lambda: ex.withdraw(a, 100 * USD + 1)  # noqa: E731
    assert_rejected(ex, Reason.INSUFFICIENT_COLLATERAL, action)


# Withdrawals ------------------------------------------------------------------------------


def test_withdrawals_create_records_with_dense_ids() -> None:
    """Three withdrawals (two accounts, one to another recipient) get ids 0, 1, 2 in the
    outcome and the records hold (account, recipient, amount); the exchange counts 3."""
    ex = Exchange()
    a = ex.new_trader(deposit=1_000 * USD)
    b = ex.new_trader(deposit=1_000 * USD)
    elsewhere = b"\xab" * 20
    assert ex.exchange().withdrawal_count == 0
    first = ex.withdraw(a, 100 * USD)
    second = ex.withdraw(b, 250 * USD, recipient=elsewhere)
    third = ex.withdraw(a, 1)
    assert [o.reason for o in (first, second, third)] == [Reason.OK] * 3
    assert [o.withdrawal_id for o in (first, second, third)] == [0, 1, 2]
    assert ex.withdrawal(0) == WithdrawalRecord(a.id, a.address, 100 * USD)
    assert ex.withdrawal(1) == WithdrawalRecord(b.id, elsewhere, 250 * USD)
    assert ex.withdrawal(2) == WithdrawalRecord(a.id, a.address, 1)
    assert ex.withdrawal(3) is None
    assert ex.exchange().withdrawal_count == 3
    assert ex.collateral(a.id) == 900 * USD - 1
    assert ex.collateral(b.id) == 750 * USD
    assert_conserved(ex)


def test_rejected_withdrawal_takes_no_id() -> None:
    """A rejected withdrawal does not advance the withdrawal counter."""
    ex = Exchange()
    a = ex.new_trader(deposit=10 * USD)
    assert ex.withdraw(a, 1 * USD).withdrawal_id == 0
    assert_rejected(ex, Reason.INSUFFICIENT_COLLATERAL, lambda: ex.withdraw(a, 10 * USD))
    assert ex.withdraw(a, 9 * USD).withdrawal_id == 1
    assert ex.exchange().withdrawal_count == 2


# Free collateral with an open position ----------------------------------------------------


def test_free_collateral_with_an_open_position() -> None:
    """
    Buying 1 BTC at $50,000 (oracle $50,000, taker fee 5 bps) leaves collateral
    100,000 - 50,000 - 25 = $49,975 and equity 49,975 + 50,000 = $99,975 against an
    initial margin of 10% of $50,000 = $5,000: the free collateral is $94,975. One unit
    more cannot be transferred or withdrawn; exactly that much can, and then nothing.
    """
    ex = Exchange()
    maker = ex.new_trader()
    a = ex.new_trader()
    b = ex.new_trader()
    assert ex.set_price(0, btc(50_000)).applied
    assert ex.order(maker, 0, False, btc(50_000), sats(1)).applied
    assert result(ex.order(a, 0, True, btc(50_000), sats(1), tif=TimeInForce.IOC)).filled == sats(1)
    assert ex.collateral(a.id) == 49_975 * USD
    free = 94_975 * USD
    assert_rejected(ex, Reason.INSUFFICIENT_COLLATERAL, lambda: ex.withdraw(a, free + 1))
    assert_rejected(ex, Reason.INSUFFICIENT_COLLATERAL, lambda: ex.transfer(a, b.id, free + 1))
    assert ex.transfer(a, b.id, 1).reason is Reason.OK
    outcome = ex.withdraw(a, free - 1)
    assert outcome.reason is Reason.OK
    account = ex.account(a.id)
    assert account is not None
    assert account.collateral == 49_975 * USD - free
    assert account.positions == [Position(0, sats(1), 0)]
    assert ex.withdrawal(0) == WithdrawalRecord(a.id, a.address, free - 1)
    assert_rejected(ex, Reason.INSUFFICIENT_COLLATERAL, lambda: ex.withdraw(a, 1))
    assert_conserved(ex)


def test_free_collateral_follows_the_oracle_price() -> None:
    """A long's free collateral moves with the oracle: at $55,000 the 1 BTC long has equity
    49,975 + 55,000 = $104,975 and margin $5,500, so $99,475 is free."""
    ex = Exchange()
    maker = ex.new_trader()
    a = ex.new_trader()
    assert ex.set_price(0, btc(50_000)).applied
    assert ex.order(maker, 0, False, btc(50_000), sats(1)).applied
    assert ex.order(a, 0, True, btc(50_000), sats(1), tif=TimeInForce.IOC).applied
    ex.advance(10)
    assert ex.set_price(0, btc(55_000)).applied
    assert_rejected(ex, Reason.INSUFFICIENT_COLLATERAL, lambda: ex.withdraw(a, 99_475 * USD + 1))
    assert ex.withdraw(a, 99_475 * USD).reason is Reason.OK


def test_forced_withdrawal_matches_a_sequenced_one() -> None:
    """A withdrawal forced through the L1 inbox creates the same record and the same root
    as the same signed transaction sequenced by the operator."""
    roots = []
    for forced in (False, True):
        ex = Exchange()
        a = ex.new_trader()
        raw = ex.sign(a.key, Withdraw(a.id, a.address, 5 * USD, 0))
        if forced:
            step = Step(StepKind.L1_MESSAGE, encode_l1_message(ForcedTransaction(raw)))
        else:
            step = Step(StepKind.TRANSACTION, raw)
        outcome = ex.apply(step)
        assert (outcome.reason, outcome.withdrawal_id) == (Reason.OK, 0)
        assert ex.withdrawal(0) == WithdrawalRecord(a.id, a.address, 5 * USD)
        roots.append(ex.root())
    assert roots[0] == roots[1]
