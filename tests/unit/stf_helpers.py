"""
Helpers shared by the per-rule STF tests (tests/unit/test_stf_*.py, test_genesis.py).

They hold no rules of the exchange: they read records, compare roots, and replay
steps on the one-step executor's memory model. Expected numbers are computed in
the tests themselves, by hand.
"""

from collections.abc import Callable

from node.protocol.book import best_tick
from node.protocol.crypto import SECP256K1N
from node.protocol.inbox import Deposit, decode_l1_message
from node.protocol.records import ASKS, BIDS, RestingOrder
from node.protocol.step import OrderResult, Outcome, Reason, Step, StepKind
from node.protocol.stf import apply_step, prove_step
from node.protocol.transactions import Message, Order
from node.protocol.witness import WitnessView, decode_witness
from tests.stf_env import Exchange, Trader

SECP256K1_P = 2**256 - 2**32 - 977
"""The secp256k1 field prime."""


def assert_rejected(ex: Exchange, reason: Reason, action: Callable[[], Outcome]) -> Outcome:
    """
    Run ``action`` (one step on ``ex``) and check that it was rejected for exactly
    ``reason`` and that the committed state root did not move.
    """
    before = ex.root()
    outcome = action()
    assert outcome.reason is reason, outcome
    assert not outcome.applied
    assert outcome.writes == 0
    assert ex.root() == before, "a rejected step changed the state"
    return outcome


def signed_step(ex: Exchange, trader: Trader, message: Message, key: bytes | None = None) -> Step:
    """The sequenced step carrying ``message`` signed by ``key`` (default: the trader's)."""
    return Step(StepKind.TRANSACTION, ex.sign(key or trader.key, message))


def apply_with_witness(ex: Exchange, step: Step) -> Outcome:
    """
    Apply ``step`` to ``ex`` after checking the fraud-proof path on it: prove the
    step from the committed root, replay the decoded witness on a
    :class:`WitnessView` (which holds only a root, like the L1 executor) and check
    that the replay reaches the same post root and outcome as the direct apply.
    """
    pre = ex.root()
    proved, witness, post = prove_step(ex.state.store, pre, step, ex.context)
    view = WitnessView(pre, decode_witness(witness))
    replayed = apply_step(view, step, ex.context)
    assert view.finish() == post
    assert replayed == proved
    outcome = ex.apply(step)
    assert outcome == proved
    assert ex.root() == post
    return outcome


def result(outcome: Outcome) -> OrderResult:
    """The order result of an applied order step."""
    assert outcome.order is not None, outcome
    return outcome.order


def resting(ex: Exchange, order_hash: bytes) -> RestingOrder:
    """The resting order with this hash, which must be on the book."""
    order = ex.resting(order_hash)
    assert order is not None
    return order


def not_on_curve_r() -> int:
    """The smallest ``r >= 1`` that is no secp256k1 x-coordinate (``r^3 + 7`` is a non-residue)."""
    r = 1
    while pow(r**3 + 7, (SECP256K1_P - 1) // 2, SECP256K1_P) != SECP256K1_P - 1:
        r += 1
    assert r < SECP256K1N
    return r


def id_of(order_hash: bytes) -> int:
    """The order id of an order hash, by the documented formula ``hash % (2**40 - 1) + 1``."""
    return int.from_bytes(order_hash, "big") % (2**40 - 1) + 1


def order_id(ex: Exchange, message: Order) -> int:
    """The order id of an order message."""
    return id_of(ex.order_hash(message))


def best_ask(ex: Exchange, market: int) -> int:
    """The best (lowest) ask tick of a market, 0 if none."""
    return best_tick(ex.state, market, ASKS)


def best_bid(ex: Exchange, market: int) -> int:
    """The best (highest) bid tick of a market, 0 if none."""
    return best_tick(ex.state, market, BIDS)


def total_deposits(ex: Exchange) -> int:
    """Sum of the applied deposits among the steps ``ex`` ran."""
    total = 0
    for step, outcome in zip(ex.steps, ex.outcomes, strict=True):
        if step.kind == StepKind.L1_MESSAGE and outcome.applied:
            message = decode_l1_message(step.data)
            if isinstance(message, Deposit):
                total += message.amount
    return total


def assert_conserved(ex: Exchange, markets: tuple[int, ...] = (0, 1)) -> None:
    """
    The conservation laws of the brief: collateral + insurance fund + funding
    balances + withdrawals == deposits, and every market's sizes sum to 0.
    """
    ex.root()
    exchange = ex.exchange()
    accounts = [ex.account(i) for i in ex.accounts()]
    collateral = sum(a.collateral for a in accounts if a is not None)
    funding = sum(ex.market(m).funding_balance for m in markets)
    withdrawn = 0
    for wid in range(exchange.withdrawal_count):
        record = ex.withdrawal(wid)
        assert record is not None
        withdrawn += record.amount
    assert collateral + exchange.insurance_fund + funding + withdrawn == total_deposits(ex)
    for market in markets:
        sizes = [
            p.size for a in accounts if a is not None for p in a.positions if p.market == market
        ]
        assert sum(sizes) == 0, (market, sizes)
