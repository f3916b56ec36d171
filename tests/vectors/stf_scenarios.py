"""
STF scenario vectors: named runs of the exchange STF, step by step, with witnesses.

Each scenario below is a function that drives a :class:`RecordingExchange` (the
test exchange of tests/stf_env.py, recording every step it applies) and whose
docstring is the scenario's description. :func:`stf_vectors` turns every
scenario into one JSON document, written to ``tests/vectors/stf/<name>.json`` by
``python -m tests.vectors.generate`` and checked by tests/vectors/test_stf_vectors.py.
The Solidity one-step executor is tested against the same files.

Vector format (integers of a ``uint64`` or wider type as decimal strings, bytes
as 0x-hex, like the other vectors)::

    {
      "name", "description",
      "genesis": {oracle, feeOwner, liquidationRewardBps, liquidationInsuranceBps,
                  markets: [{id, symbol, tickSize, lotSize, priceDecimals, sizeDecimals,
                             divisor, initialMarginBps, maintenanceMarginBps,
                             makerFeeBps, takerFeeBps, maxFundingPpm}]},
      "domain": the EIP-712 domain (chainId, verifyingContract; name and version too),
      "preWrites": [{table, index, record}],  # applied to genesis before step 1 (unused:
                                              # every scenario's setup is made of steps)
      "preRoot": state root before step 1,
      "steps": [{kind: "l1Message" | "transaction", data, timestamp (the batch's),
                 reason (a node.protocol.step.Reason name), outcome (human summary),
                 postRoot, witness (node.protocol.stf.prove_step's encoding)}]
    }

A step's ``witness`` replayed from the previous step's ``postRoot`` (or
``preRoot``) by the executor's memory model, ``WitnessView``, gives its
``postRoot``; a rejected step's ``postRoot`` equals its pre-root.

Every scenario states what it expects of each step it means to test
(:meth:`RecordingExchange.expect`), so a change of the rules that would quietly
turn a vector into a different test fails generation instead.

Everything is deterministic: fixed keys, RFC 6979 signatures, seeded generators,
a fixed start time. The one search that is expensive, the order-id collision of
:func:`order_id_collision`, is done once by :func:`find_order_id_collision` and
its result is written below as constants, checked at every generation.
"""

import inspect
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from node.protocol.crypto import keccak256, recover_signer, sign_digest
from node.protocol.eip712 import Domain, domain_separator, encode_word, type_hash
from node.protocol.errors import InvalidSignatureError
from node.protocol.genesis import Genesis, MarketSpec
from node.protocol.inbox import Deposit, encode_l1_message
from node.protocol.orders import MAX_MATCHES
from node.protocol.records import (
    ACCOUNT_LIMIT,
    MAX_OPEN_ORDERS,
    MAX_POSITION_SIZE,
    MAX_POSITIONS,
    NONCE_WINDOW,
    ORDER_ID_MODULUS,
    TICK_BITS,
    order_id_of,
    position_size,
)
from node.protocol.step import OrderEnd, Outcome, Reason, RemovalReason, Step, StepKind
from node.protocol.stf import prove_step
from node.protocol.transactions import (
    ALL_MARKETS,
    MAX_TRANSACTION_BYTES,
    OraclePrice,
    Order,
    SignedTransaction,
    TimeInForce,
    Transfer,
    Withdraw,
    encode_transaction,
)
from tests.stf_env import (
    BTC,
    ETH,
    GENESIS,
    USD,
    Exchange,
    Trader,
    btc,
    sats,
    test_key,
)

GTC, IOC, FOK, POST_ONLY = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.POST_ONLY
CANCELLED = RemovalReason.CANCELLED


def hx(data: bytes) -> str:
    """0x-hex of bytes."""
    return "0x" + data.hex()


def eth(dollars: float) -> int:
    """An ETH-PERP price from dollars."""
    return round(dollars * 100)


def eth_size(amount: float) -> int:
    """An ETH-PERP size from ETH."""
    return round(amount * 1_000_000)


class ScenarioError(AssertionError):
    """A scenario step did not do what the scenario says it does."""


@dataclass(frozen=True)
class RecordedStep:
    """One applied step with everything its vector entry holds."""

    step: Step
    timestamp: int
    outcome: Outcome
    witness: bytes
    post_root: bytes


class RecordingExchange(Exchange):
    """
    The test exchange, recording each step's batch time, outcome, witness and
    post-root. Every step is applied twice: once recorded by
    :func:`~node.protocol.stf.prove_step` from the committed pre-root, once to
    the exchange's own state; both must agree.
    """

    def __init__(self, genesis: Genesis = GENESIS) -> None:
        super().__init__(genesis)
        self.pre_root = self.state.commit()
        self.recorded: list[RecordedStep] = []

    def apply(self, step: Step) -> Outcome:
        pre_root = self.state.commit()
        context = self.context
        proved, witness, post_root = prove_step(self.state.store, pre_root, step, context)
        outcome = super().apply(step)
        if self.state.commit() != post_root or outcome != proved:
            raise ScenarioError(f"prove_step and apply_step disagree on step {len(self.recorded)}")
        self.recorded.append(RecordedStep(step, context.timestamp, outcome, witness, post_root))
        return outcome

    # raw steps --------------------------------------------------------------------------

    def transaction(self, data: bytes) -> Outcome:
        """A sequenced transaction step of arbitrary bytes."""
        return self.apply(Step(StepKind.TRANSACTION, data))

    def l1_message(self, data: bytes) -> Outcome:
        """An L1 inbox step of arbitrary bytes."""
        return self.apply(Step(StepKind.L1_MESSAGE, data))

    def raw_deposit(self, owner: bytes, account: int, amount: int) -> Outcome:
        """A deposit message to any account id (the bridge's own ids are 1, 2, ...)."""
        return self.l1_message(encode_l1_message(Deposit(owner, account, amount)))

    # expectations -----------------------------------------------------------------------

    @staticmethod
    def expect(
        outcome: Outcome,
        reason: Reason = Reason.OK,
        *,
        end: OrderEnd | None = None,
        fills: int | None = None,
        removals: tuple[RemovalReason, ...] | None = None,
    ) -> Outcome:
        """Check a step's outcome against what the scenario means it to be."""
        if outcome.reason is not reason:
            raise ScenarioError(f"expected {reason.name}, got {outcome.reason.name}: {outcome}")
        if end is not None and (outcome.order is None or outcome.order.end is not end):
            raise ScenarioError(f"expected the order to end {end.name}: {outcome}")
        if fills is not None and len(outcome.fills) != fills:
            raise ScenarioError(f"expected {fills} fills, got {len(outcome.fills)}: {outcome}")
        if removals is not None and tuple(r.reason for r in outcome.removals) != removals:
            raise ScenarioError(f"expected removals {removals}: {outcome}")
        return outcome


# Scenario registry ----------------------------------------------------------------------

Scenario = Callable[[RecordingExchange], None]


@dataclass(frozen=True)
class ScenarioSpec:
    """A registered scenario: its function and the genesis it starts from."""

    name: str
    run: Scenario
    genesis: Genesis


SCENARIOS: dict[str, ScenarioSpec] = {}
"""Every scenario by name, in definition order."""


def scenario(name: str, genesis: Genesis = GENESIS) -> Callable[[Scenario], Scenario]:
    """Register a scenario function under ``name``."""

    def register(run: Scenario) -> Scenario:
        assert name not in SCENARIOS, name
        SCENARIOS[name] = ScenarioSpec(name, run, genesis)
        return run

    return register


def set_prices(
    x: RecordingExchange, btc_dollars: float = 60_000, eth_dollars: float = 3_000
) -> None:
    """Oracle prices for both default markets."""
    x.expect(x.set_price(BTC.id, btc(btc_dollars)))
    x.expect(x.set_price(ETH.id, eth(eth_dollars)))


# Scenarios ------------------------------------------------------------------------------


@scenario("deposits_and_inbox")
def deposits_and_inbox(x: RecordingExchange) -> None:
    """
    L1 inbox messages: deposits registering accounts and topping them up, a deposit
    to the fee account, deposits of 0 and of the largest amount, out-of-range
    deposits (INVALID_DEPOSIT), malformed messages (empty, unknown kind, wrong
    length) and forced transactions, valid and not.
    """
    alice = x.new_trader()
    bob = x.new_trader(deposit=5 * USD)
    x.expect(x.deposit(alice, 250 * USD))  # a second deposit tops up
    x.expect(x.raw_deposit(b"\x77" * 20, 0, 3 * USD))  # fee account: owner unchanged
    x.expect(x.raw_deposit(b"\x78" * 20, 3, 0))  # registers account 3 with nothing
    x.expect(x.raw_deposit(b"\x79" * 20, ACCOUNT_LIMIT - 1, (1 << 64) - 1))  # largest of both
    x.expect(x.raw_deposit(b"\x7a" * 20, ACCOUNT_LIMIT, 1), Reason.INVALID_DEPOSIT)
    x.expect(x.raw_deposit(b"\x7a" * 20, (1 << 64) - 1, 1), Reason.INVALID_DEPOSIT)
    x.expect(x.raw_deposit(b"\x7a" * 20, 4, 1 << 64), Reason.INVALID_DEPOSIT)
    x.expect(x.raw_deposit(b"\x7a" * 20, 4, (1 << 256) - 1), Reason.INVALID_DEPOSIT)
    deposit = encode_l1_message(Deposit(bob.address, bob.id, USD))
    x.expect(x.l1_message(b""), Reason.MALFORMED)
    x.expect(x.l1_message(b"\x02" + deposit[1:]), Reason.MALFORMED)
    x.expect(x.l1_message(b"\xff"), Reason.MALFORMED)
    x.expect(x.l1_message(deposit[:-1]), Reason.MALFORMED)
    x.expect(x.l1_message(deposit + b"\x00"), Reason.MALFORMED)
    x.expect(x.l1_message(deposit))
    # Forced transactions run exactly like sequenced ones.
    transfer = x.sign(alice.key, Transfer(alice.id, bob.id, 10 * USD, x.nonce(alice, None)))
    x.expect(x.force(transfer))
    x.expect(x.force(transfer), Reason.NONCE_USED)
    x.expect(x.force(b""), Reason.MALFORMED)
    x.expect(x.force(transfer[:-3]), Reason.MALFORMED)
    forged = x.sign(bob.key, Transfer(alice.id, bob.id, 10 * USD, 77))
    x.expect(x.force(forged), Reason.WRONG_SIGNER)
    x.expect(x.l1_message(b"\x01"), Reason.MALFORMED)


def unrecoverable_signature() -> bytes:
    """A canonical signature (v 27, low s, 1 <= r < n) from which no public key recovers:
    the smallest ``r`` that is not the x-coordinate of a curve point."""
    digest = b"\x11" * 32
    for r in range(1, 1000):
        signature = r.to_bytes(32, "big") + (1).to_bytes(32, "big") + b"\x1b"
        try:
            recover_signer(digest, signature)
        except InvalidSignatureError:
            return signature
    raise ScenarioError("no unrecoverable r below 1000")


@scenario("hostile_inputs")
def hostile_inputs(x: RecordingExchange) -> None:
    """
    Bytes a hostile sequencer or user might send, each a rejected step that changes
    nothing: seeded random bytes (with and without a valid kind byte), truncated
    and padded transactions, an oversized one, an unrecoverable signature
    (BAD_SIGNATURE), signatures by the wrong key or in another domain
    (WRONG_SIGNER), a price not signed by the oracle, and unknown accounts.
    """
    alice = x.new_trader()
    bob = x.new_trader()
    set_prices(x)
    rng = random.Random(0x5EED)
    for length in (1, 2, 7, 33, 64, 120, 255, 256):
        x.expect(x.transaction(rng.randbytes(length)), Reason.MALFORMED)
    for kind in range(1, 8):
        x.expect(
            x.transaction(bytes([kind]) + rng.randbytes(rng.randrange(1, 90))), Reason.MALFORMED
        )
    x.expect(x.transaction(b""), Reason.MALFORMED)
    x.expect(x.l1_message(b"\x01" + rng.randbytes(80)), Reason.MALFORMED)
    message = x.order_message(alice, BTC.id, True, btc(59_000), sats(0.1))
    good = x.sign(alice.key, message)
    x.expect(x.transaction(good[:-1]), Reason.MALFORMED)
    x.expect(x.transaction(good[: len(good) // 2]), Reason.MALFORMED)
    x.expect(x.transaction(good + b"\x00"), Reason.MALFORMED)
    x.expect(x.transaction(good[:-65] + bytes(65)), Reason.MALFORMED)
    x.expect(x.transaction(good + bytes(MAX_TRANSACTION_BYTES)), Reason.MALFORMED)
    bad = encode_transaction(SignedTransaction(message, unrecoverable_signature()))
    x.expect(x.transaction(bad), Reason.BAD_SIGNATURE)
    x.expect(x.force(bad), Reason.BAD_SIGNATURE)
    x.expect(x.transaction(x.sign(bob.key, message)), Reason.WRONG_SIGNER)
    elsewhere = Domain(x.domain.chain_id + 1, x.domain.verifying_contract)
    foreign = sign_digest(alice.key, message.signing_hash(elsewhere))
    x.expect(
        x.transaction(encode_transaction(SignedTransaction(message, foreign))), Reason.WRONG_SIGNER
    )
    price = OraclePrice(BTC.id, btc(1), x.timestamp)
    x.expect(x.transaction(x.sign(alice.key, price)), Reason.WRONG_SIGNER)
    stranger = Trader(999, test_key(999))
    x.expect(x.order(stranger, BTC.id, True, btc(59_000), sats(0.1)), Reason.UNKNOWN_ACCOUNT)
    huge = Trader(ACCOUNT_LIMIT + 1, test_key(998))
    x.expect(x.cancel_all(huge, ALL_MARKETS), Reason.UNKNOWN_ACCOUNT)
    # The genuine order still goes through afterwards: nothing above consumed its nonce.
    x.expect(x.transaction(good), end=OrderEnd.RESTING)


@scenario("nonce_window")
def nonce_window(x: RecordingExchange) -> None:
    """
    The 256-wide nonce window: replays (NONCE_USED), nonces out of order, a jump
    that slides the window and makes older nonces too old (NONCE_TOO_OLD), a jump
    past the whole window, the largest uint64 nonce, and rejected steps that do
    not consume their nonce.
    """
    alice = x.new_trader()
    bob = x.new_trader()
    x.expect(x.cancel_all(alice, ALL_MARKETS, nonce=0))
    replay = x.sign(alice.key, Transfer(alice.id, bob.id, USD, 1))
    x.expect(x.transaction(replay))
    x.expect(x.transaction(replay), Reason.NONCE_USED)
    x.expect(x.cancel_all(alice, ALL_MARKETS, nonce=0), Reason.NONCE_USED)
    x.expect(x.cancel_all(alice, BTC.id, nonce=5))
    x.expect(x.cancel_all(alice, BTC.id, nonce=3))
    x.expect(x.cancel_all(alice, BTC.id, nonce=NONCE_WINDOW - 1))
    x.expect(x.cancel_all(alice, BTC.id, nonce=NONCE_WINDOW))  # slides the base to 1
    x.expect(x.cancel_all(alice, BTC.id, nonce=0), Reason.NONCE_TOO_OLD)
    x.expect(x.cancel_all(alice, BTC.id, nonce=2))
    x.expect(x.cancel_all(alice, BTC.id, nonce=300))  # base 45
    x.expect(x.cancel_all(alice, BTC.id, nonce=44), Reason.NONCE_TOO_OLD)
    x.expect(x.cancel_all(alice, BTC.id, nonce=45))
    x.expect(x.cancel_all(alice, BTC.id, nonce=300), Reason.NONCE_USED)
    # A rejected step leaves its nonce unused.
    x.expect(x.transfer(alice, bob.id, 0, nonce=301), Reason.ZERO_AMOUNT)
    x.expect(x.transfer(alice, bob.id, USD, nonce=301))
    x.expect(x.cancel_all(alice, BTC.id, nonce=10_000))  # past the whole window: bits reset
    x.expect(x.cancel_all(alice, BTC.id, nonce=10_000 - NONCE_WINDOW), Reason.NONCE_TOO_OLD)
    x.expect(x.cancel_all(alice, BTC.id, nonce=10_000 - NONCE_WINDOW + 1))
    top = (1 << 64) - 1
    x.expect(x.cancel_all(alice, BTC.id, nonce=top))
    x.expect(x.cancel_all(alice, BTC.id, nonce=top), Reason.NONCE_USED)
    x.expect(x.cancel_all(alice, BTC.id, nonce=top - 1))
    x.expect(x.cancel_all(alice, BTC.id, nonce=top - NONCE_WINDOW + 1))
    x.expect(x.cancel_all(alice, BTC.id, nonce=top - NONCE_WINDOW), Reason.NONCE_TOO_OLD)
    x.expect(x.cancel_all(alice, BTC.id, nonce=10_001), Reason.NONCE_TOO_OLD)
    # Every account has its own window.
    x.expect(x.cancel_all(bob, BTC.id, nonce=1))


@scenario("order_validation")
def order_validation(x: RecordingExchange) -> None:
    """
    Every way an order (and a liquidation) is refused before matching: no oracle
    price yet, unknown markets, bad prices, sizes and times in force, expiry,
    TOO_MANY_ORDERS, WOULD_CROSS, NOTHING_TO_REDUCE, NOT_FILLED; and the edges
    that pass (an expiry one second ahead, an IOC when the book limit is full).
    """
    alice = x.new_trader()
    bob = x.new_trader()
    x.expect(x.order(alice, BTC.id, True, btc(60_000), sats(0.1)), Reason.NO_ORACLE_PRICE)
    x.expect(x.liquidate(alice, bob.id, BTC.id), Reason.NO_ORACLE_PRICE)
    set_prices(x)
    x.expect(x.order(alice, 2, True, btc(60_000), sats(0.1)), Reason.UNKNOWN_MARKET)
    x.expect(x.order(alice, (1 << 32) - 1, True, 1, 1), Reason.UNKNOWN_MARKET)
    x.expect(x.order(alice, BTC.id, True, btc(60_000) + 5, sats(0.1)), Reason.INVALID_PRICE)
    x.expect(x.order(alice, BTC.id, True, 0, sats(0.1)), Reason.INVALID_PRICE)
    x.expect(x.order(alice, BTC.id, True, 0, sats(0.1), tif=POST_ONLY), Reason.INVALID_PRICE)
    too_high = BTC.tick_size << TICK_BITS
    x.expect(x.order(alice, BTC.id, False, too_high, sats(0.1)), Reason.INVALID_PRICE)
    x.expect(x.order(alice, BTC.id, False, (1 << 64) - 1, sats(0.1)), Reason.INVALID_PRICE)
    x.expect(x.order(alice, BTC.id, True, btc(60_000), 0), Reason.INVALID_SIZE)
    x.expect(x.order(alice, BTC.id, True, btc(60_000), 1_500), Reason.INVALID_SIZE)
    x.expect(x.order(alice, ETH.id, True, eth(3_000), 150), Reason.INVALID_SIZE)
    for tif, reduce_only in ((4, False), (255, False), (GTC, True), (POST_ONLY, True)):
        x.expect(
            x.order(alice, BTC.id, False, btc(61_000), sats(0.1), tif=tif, reduce_only=reduce_only),
            Reason.INVALID_TIME_IN_FORCE,
        )
    now = x.timestamp
    x.expect(x.order(alice, BTC.id, True, btc(59_000), sats(0.1), expiry=now), Reason.EXPIRED)
    x.expect(x.order(alice, BTC.id, True, btc(59_000), sats(0.1), expiry=1), Reason.EXPIRED)
    x.expect(
        x.order(alice, BTC.id, True, btc(59_000), sats(0.1), expiry=now + 1), end=OrderEnd.RESTING
    )
    # Resting orders count over all markets; the 17th GTC is refused, an IOC is not.
    for n in range(MAX_OPEN_ORDERS - 2):
        x.expect(x.order(alice, ETH.id, True, eth(2_900 - n), eth_size(0.5)), end=OrderEnd.RESTING)
    x.expect(
        x.order(alice, BTC.id, False, btc(61_000), sats(0.1), tif=POST_ONLY), end=OrderEnd.RESTING
    )
    x.expect(x.order(alice, BTC.id, False, btc(61_001), sats(0.1)), Reason.TOO_MANY_ORDERS)
    x.expect(
        x.order(alice, BTC.id, False, btc(61_001), sats(0.1), tif=POST_ONLY), Reason.TOO_MANY_ORDERS
    )
    x.expect(
        x.order(alice, BTC.id, True, btc(59_500), sats(0.1), tif=IOC),
        end=OrderEnd.NO_LIQUIDITY,
        fills=0,
    )
    # Post-only that would cross, at and beyond the best opposite price.
    x.expect(x.order(bob, BTC.id, True, btc(61_000), sats(0.1), tif=POST_ONLY), Reason.WOULD_CROSS)
    x.expect(x.order(bob, BTC.id, True, btc(65_000), sats(0.1), tif=POST_ONLY), Reason.WOULD_CROSS)
    x.expect(x.order(bob, BTC.id, False, btc(59_000), sats(0.1), tif=POST_ONLY), Reason.WOULD_CROSS)
    x.expect(
        x.order(bob, BTC.id, True, btc(60_999), sats(0.1), tif=POST_ONLY), end=OrderEnd.RESTING
    )
    # Reduce-only needs an opposite position.
    x.expect(
        x.order(bob, BTC.id, True, 0, sats(0.1), tif=IOC, reduce_only=True),
        Reason.NOTHING_TO_REDUCE,
    )
    x.expect(x.order(bob, BTC.id, False, btc(59_000), sats(0.05), tif=IOC), fills=1)  # bob is short
    x.expect(
        x.order(bob, BTC.id, False, 0, sats(0.05), tif=FOK, reduce_only=True),
        Reason.NOTHING_TO_REDUCE,
    )
    # Fill-or-kill that cannot fill completely changes nothing.
    x.expect(x.order(bob, BTC.id, True, btc(61_000), sats(0.2), tif=FOK), Reason.NOT_FILLED)
    x.expect(x.order(bob, BTC.id, True, 0, sats(5), tif=FOK), Reason.NOT_FILLED)
    x.expect(
        x.order(bob, BTC.id, True, btc(61_000), sats(0.1), tif=FOK), end=OrderEnd.FILLED, fills=1
    )


@scenario("time_in_force")
def time_in_force(x: RecordingExchange) -> None:
    """
    Matching in every time in force: GTC partly filled then resting, IOC
    remainder cancelled, FOK, post-only resting, market orders (price 0) IOC and
    FOK, reduce-only IOC stopping when the position is closed (REDUCED) and
    reduce-only FOK, FIFO within a level, partial maker fills, a maker that
    expired by the time matching reaches it, and a self-trade removal.
    """
    maker = x.new_trader()
    other = x.new_trader()
    taker = x.new_trader()
    set_prices(x)
    ask1 = x.order_message(maker, BTC.id, False, btc(60_010), sats(0.2))
    x.expect(x.send(maker, ask1), end=OrderEnd.RESTING)
    x.expect(x.order(other, BTC.id, False, btc(60_010), sats(0.3)), end=OrderEnd.RESTING)
    x.expect(
        x.order(maker, BTC.id, False, btc(60_020), sats(0.5), tif=POST_ONLY), end=OrderEnd.RESTING
    )
    x.expect(x.order(other, BTC.id, False, btc(60_050), sats(1)), end=OrderEnd.RESTING)
    x.expect(x.order(maker, BTC.id, True, btc(59_990), sats(0.4)), end=OrderEnd.RESTING)
    x.expect(
        x.order(other, BTC.id, True, btc(59_980), sats(0.6), tif=POST_ONLY), end=OrderEnd.RESTING
    )
    # GTC through two makers of one level (FIFO) and all of the next; the rest rests.
    x.expect(x.order(taker, BTC.id, True, btc(60_020), sats(1.2)), end=OrderEnd.RESTING, fills=3)
    x.expect(x.cancel_all(taker, BTC.id), removals=(RemovalReason.CANCELLED,))
    # IOC: fills what it can within its price, the rest is cancelled.
    x.expect(
        x.order(taker, BTC.id, True, btc(60_020), sats(0.5), tif=IOC),
        end=OrderEnd.NO_LIQUIDITY,
        fills=0,
    )
    x.expect(
        x.order(taker, BTC.id, True, btc(60_050), sats(0.3), tif=IOC), end=OrderEnd.FILLED, fills=1
    )
    # FOK filling exactly, then a market FOK and a market IOC.
    x.expect(x.order(taker, BTC.id, True, btc(60_050), sats(0.2), tif=FOK), end=OrderEnd.FILLED)
    x.expect(x.order(taker, BTC.id, True, 0, sats(0.1), tif=FOK), end=OrderEnd.FILLED)
    x.expect(x.order(taker, BTC.id, False, 0, sats(0.5), tif=IOC), end=OrderEnd.FILLED, fills=2)
    # Reduce-only: the taker is long 1.6 - 0.5 = 1.1 BTC; selling 2 closes 1.1 and stops.
    x.expect(x.order(maker, BTC.id, True, btc(59_900), sats(3)), end=OrderEnd.RESTING)
    x.expect(
        x.order(taker, BTC.id, False, 0, sats(2), tif=FOK, reduce_only=True), Reason.NOT_FILLED
    )
    x.expect(
        x.order(taker, BTC.id, False, btc(59_000), sats(2), tif=IOC, reduce_only=True),
        end=OrderEnd.REDUCED,
    )
    x.expect(
        x.order(taker, BTC.id, False, 0, sats(0.1), tif=IOC, reduce_only=True),
        Reason.NOTHING_TO_REDUCE,
    )
    # Short now via a plain sell, then reduce-only FOK buys back exactly.
    x.expect(x.order(taker, BTC.id, False, 0, sats(0.3), tif=IOC), end=OrderEnd.FILLED)
    x.expect(
        x.order(taker, BTC.id, True, 0, sats(0.3), tif=FOK, reduce_only=True), end=OrderEnd.FILLED
    )
    # A maker whose order expired by the time a taker reaches it is dropped.
    expiring = x.order(other, ETH.id, False, eth(3_001), eth_size(2), expiry=x.timestamp + 60)
    x.expect(expiring, end=OrderEnd.RESTING)
    x.expect(x.order(maker, ETH.id, False, eth(3_002), eth_size(2)), end=OrderEnd.RESTING)
    x.expect(x.order(taker, ETH.id, True, eth(3_002), eth_size(1), tif=IOC), fills=1)
    x.advance(120)
    x.expect(
        x.order(taker, ETH.id, True, eth(3_002), eth_size(2), tif=IOC),
        end=OrderEnd.FILLED,
        fills=1,
        removals=(RemovalReason.EXPIRED,),
    )
    # Self-trade: the maker's own ask is removed, the order goes on to the next maker.
    x.expect(x.order(maker, ETH.id, False, eth(3_003), eth_size(1)), end=OrderEnd.RESTING)
    x.expect(x.order(other, ETH.id, False, eth(3_003), eth_size(1)), end=OrderEnd.RESTING)
    x.expect(
        x.order(maker, ETH.id, True, eth(3_003), eth_size(1), tif=GTC),
        end=OrderEnd.FILLED,
        fills=1,
        removals=(RemovalReason.SELF_TRADE,),
    )
    # The first ask's hash: its order is gone (filled), so cancelling it finds nothing.
    x.expect(x.cancel(maker, x.order_hash(ask1)), Reason.ORDER_NOT_FOUND)


@scenario("cancels")
def cancels(x: RecordingExchange) -> None:
    """
    Cancel of the middle, head and tail of a level's queue (the FIFO links), of
    a filled order, of another account's order and of an unknown hash
    (ORDER_NOT_FOUND); CancelAll in one market, in all markets, with nothing
    to cancel, and for a market that does not exist.
    """
    maker = x.new_trader()
    other = x.new_trader()
    set_prices(x)
    hashes = []
    for n in range(4):
        message = x.order_message(maker, BTC.id, True, btc(59_000), sats(0.1 + n / 100))
        x.expect(x.send(maker, message), end=OrderEnd.RESTING)
        hashes.append(x.order_hash(message))
    theirs = x.order_message(other, BTC.id, True, btc(59_000), sats(0.2))
    x.expect(x.send(other, theirs), end=OrderEnd.RESTING)
    x.expect(x.cancel(maker, hashes[1]), removals=(RemovalReason.CANCELLED,))  # middle
    x.expect(x.cancel(maker, hashes[0]), removals=(RemovalReason.CANCELLED,))  # head
    x.expect(x.cancel(maker, hashes[0]), Reason.ORDER_NOT_FOUND)
    x.expect(x.cancel(maker, x.order_hash(theirs)), Reason.ORDER_NOT_FOUND)
    x.expect(x.cancel(maker, b"\x00" * 32), Reason.ORDER_NOT_FOUND)
    x.expect(x.cancel(other, x.order_hash(theirs)), removals=(RemovalReason.CANCELLED,))  # tail
    x.expect(x.order(other, BTC.id, False, 0, sats(0.12), tif=IOC), fills=1)  # fills hashes[2]
    x.expect(x.cancel(maker, hashes[2]), Reason.ORDER_NOT_FOUND)
    for n in range(3):
        x.expect(x.order(maker, ETH.id, False, eth(3_100 + n), eth_size(1)), end=OrderEnd.RESTING)
        x.expect(x.order(maker, BTC.id, False, btc(61_000 + n), sats(0.1)), end=OrderEnd.RESTING)
    x.expect(x.cancel_all(maker, BTC.id), removals=(RemovalReason.CANCELLED,) * 4)
    x.expect(x.cancel_all(maker, BTC.id), removals=())
    x.expect(x.cancel_all(maker, 77), removals=())
    x.expect(x.order(maker, BTC.id, True, btc(58_000), sats(0.1)), end=OrderEnd.RESTING)
    x.expect(x.cancel_all(maker, ALL_MARKETS), removals=(RemovalReason.CANCELLED,) * 4)
    x.expect(x.cancel_all(maker, ALL_MARKETS), removals=())


@scenario("transfers_withdrawals")
def transfers_withdrawals(x: RecordingExchange) -> None:
    """
    Transfers and withdrawals: applied ones (to the fee account too, and a
    withdrawal to another L1 address), ZERO_AMOUNT, SELF_TRANSFER,
    UNKNOWN_RECIPIENT, INSUFFICIENT_COLLATERAL with and without an open position
    (free collateral is equity minus initial margin), a withdrawal of exactly the
    free collateral, and a withdrawal forced through L1.
    """
    alice = x.new_trader(deposit=1_000 * USD)
    bob = x.new_trader(deposit=50_000 * USD)
    set_prices(x)
    x.expect(x.transfer(alice, bob.id, 100 * USD))
    x.expect(x.transfer(alice, 0, USD))
    x.expect(x.transfer(alice, bob.id, 0), Reason.ZERO_AMOUNT)
    x.expect(x.transfer(alice, alice.id, USD), Reason.SELF_TRANSFER)
    x.expect(x.transfer(alice, 55, USD), Reason.UNKNOWN_RECIPIENT)
    x.expect(x.transfer(alice, ACCOUNT_LIMIT, USD), Reason.UNKNOWN_RECIPIENT)
    x.expect(x.transfer(alice, bob.id, 900 * USD), Reason.INSUFFICIENT_COLLATERAL)
    x.expect(x.transfer(alice, bob.id, (1 << 64) - 1), Reason.INSUFFICIENT_COLLATERAL)
    x.expect(x.withdraw(alice, 100 * USD))
    x.expect(x.withdraw(alice, 50 * USD, recipient=b"\x42" * 20))
    x.expect(x.withdraw(alice, 0), Reason.ZERO_AMOUNT)
    x.expect(x.withdraw(alice, 750 * USD), Reason.INSUFFICIENT_COLLATERAL)
    # With a position, only equity above the initial margin may leave.
    x.expect(x.order(bob, BTC.id, False, btc(60_000), sats(0.1)), end=OrderEnd.RESTING)
    x.expect(x.order(alice, BTC.id, True, 0, sats(0.1), tif=IOC), fills=1)
    account = x.account(alice.id)
    assert account is not None
    # equity = collateral + value at the oracle; initial margin 10% of $6,000.
    value = sats(0.1) * btc(60_000) // BTC.divisor
    free = account.collateral + value - value // 10
    x.expect(x.withdraw(alice, free + 1), Reason.INSUFFICIENT_COLLATERAL)
    x.expect(x.transfer(alice, bob.id, free + 1), Reason.INSUFFICIENT_COLLATERAL)
    x.expect(x.withdraw(alice, free - 1))
    x.expect(x.withdraw(alice, 1))
    x.expect(x.withdraw(alice, 1), Reason.INSUFFICIENT_COLLATERAL)
    forced = x.sign(bob.key, Withdraw(bob.id, bob.address, 10_000 * USD, x.nonce(bob, None)))
    x.expect(x.force(forced))
    assert x.exchange().withdrawal_count == 5


@scenario("margin_checks")
def margin_checks(x: RecordingExchange) -> None:
    """
    Margin at fill time: a resting order whose maker can no longer margin it is
    removed when reached (MAKER_MARGIN) and matching goes on; a taker that cannot
    margin the next fill stops (TAKER_MARGIN) and a GTC remainder then does not
    rest; a position may be reduced below the initial margin while equity stays
    non-negative.
    """
    rich = x.new_trader(deposit=1_000_000 * USD)
    poor = x.new_trader(deposit=1_000 * USD)
    small = x.new_trader(deposit=1_000 * USD)
    set_prices(x)
    x.expect(x.order(poor, BTC.id, False, btc(60_000), sats(1)), end=OrderEnd.RESTING)
    x.expect(x.order(rich, BTC.id, False, btc(60_010), sats(1)), end=OrderEnd.RESTING)
    x.expect(
        x.order(small, BTC.id, True, btc(60_010), sats(0.5), tif=IOC),
        end=OrderEnd.TAKER_MARGIN,
        fills=0,
        removals=(RemovalReason.MAKER_MARGIN,),
    )
    x.expect(x.order(small, BTC.id, True, btc(60_010), sats(0.1)), end=OrderEnd.FILLED, fills=1)
    x.expect(
        x.order(small, BTC.id, True, btc(60_010), sats(0.5)), end=OrderEnd.TAKER_MARGIN, fills=0
    )
    assert not x.account(small.id).orders  # type: ignore[union-attr]
    # The price falls: below initial margin, small may still sell part of its position.
    x.expect(x.set_price(BTC.id, btc(55_000)))
    x.expect(x.order(rich, BTC.id, True, btc(54_000), sats(1)), end=OrderEnd.RESTING)
    x.expect(
        x.order(small, BTC.id, True, btc(60_010), sats(0.01), tif=IOC), end=OrderEnd.TAKER_MARGIN
    )
    x.expect(
        x.order(small, BTC.id, False, 0, sats(0.01), tif=IOC, reduce_only=True), end=OrderEnd.FILLED
    )
    x.expect(x.order(small, BTC.id, False, 0, sats(1), tif=IOC), end=OrderEnd.TAKER_MARGIN, fills=0)
    x.expect(x.order(small, BTC.id, False, 0, sats(0.05), tif=IOC), end=OrderEnd.FILLED, fills=1)


@scenario("liquidations")
def liquidations(x: RecordingExchange) -> None:
    """
    Liquidation: refused while the target is healthy, for itself, without a
    position, in an unknown market, of an unknown account, and by a liquidator
    who cannot carry the position; then a liquidation paying both penalties, and
    two with bad debt absorbed by the insurance fund, the second driving it negative.
    """
    maker = x.new_trader(deposit=10_000_000 * USD)
    target = x.new_trader(deposit=10_000 * USD)
    liquidator = x.new_trader(deposit=100_000 * USD)
    poor = x.new_trader(deposit=1_000 * USD)
    set_prices(x)
    x.expect(x.order(maker, BTC.id, False, btc(60_000), sats(1.5)), end=OrderEnd.RESTING)
    x.expect(x.order(target, BTC.id, True, btc(60_000), sats(1.5), tif=IOC), end=OrderEnd.FILLED)
    x.expect(x.liquidate(liquidator, target.id, BTC.id), Reason.TARGET_HEALTHY)
    x.expect(x.set_price(BTC.id, btc(55_000)))
    # Below the initial margin the target may still reduce.
    x.expect(x.order(maker, BTC.id, True, btc(55_000), sats(0.1)), end=OrderEnd.RESTING)
    x.expect(x.order(target, BTC.id, False, 0, sats(0.1), tif=IOC, reduce_only=True), fills=1)
    x.expect(x.liquidate(target, target.id, BTC.id), Reason.SELF_LIQUIDATION)
    x.expect(x.liquidate(liquidator, target.id, ETH.id), Reason.NO_POSITION)
    x.expect(x.liquidate(liquidator, target.id, 7), Reason.UNKNOWN_MARKET)
    x.expect(x.liquidate(liquidator, 4_242, BTC.id), Reason.UNKNOWN_ACCOUNT)
    x.expect(x.liquidate(liquidator, maker.id, BTC.id), Reason.TARGET_HEALTHY)
    x.expect(x.liquidate(poor, target.id, BTC.id), Reason.LIQUIDATOR_MARGIN)
    x.expect(x.liquidate(liquidator, target.id, BTC.id))
    fund = x.exchange().insurance_fund
    assert fund > 0 and not x.account(target.id).positions  # type: ignore[union-attr]
    x.expect(x.liquidate(liquidator, target.id, BTC.id), Reason.NO_POSITION)
    # Bad debt: the price gaps through the position's equity.
    gapper = x.new_trader(deposit=10_000 * USD)
    x.expect(x.order(maker, BTC.id, False, btc(55_000), sats(1.5)), end=OrderEnd.RESTING)
    x.expect(x.order(gapper, BTC.id, True, 0, sats(1.5), tif=IOC), end=OrderEnd.FILLED)
    x.expect(x.set_price(BTC.id, btc(48_000)))
    x.expect(x.liquidate(liquidator, gapper.id, BTC.id))
    assert 0 < x.exchange().insurance_fund < fund
    assert x.collateral(gapper.id) == 0
    deeper = x.new_trader(deposit=10_000 * USD)
    x.expect(x.order(maker, BTC.id, False, btc(48_000), sats(2)), end=OrderEnd.RESTING)
    x.expect(x.order(deeper, BTC.id, True, 0, sats(2), tif=FOK), end=OrderEnd.FILLED)
    x.expect(x.set_price(BTC.id, btc(42_000)))
    x.expect(x.liquidate(liquidator, deeper.id, BTC.id))
    assert x.exchange().insurance_fund < 0
    # The liquidator now holds every position it took over, and may close it.
    x.expect(x.order(maker, BTC.id, True, btc(42_000), sats(10)), end=OrderEnd.RESTING)
    x.expect(
        x.order(liquidator, BTC.id, False, 0, sats(10), tif=IOC, reduce_only=True),
        end=OrderEnd.REDUCED,
    )


@scenario("oracle_funding")
def oracle_funding(x: RecordingExchange) -> None:
    """
    Oracle prices and funding: refused prices (not the oracle, unknown market, 0,
    stale, from the future); funding accruing from trades above the index
    (clamped premium), capped at one funding period per update, and below it;
    later settlement when positions trade again, a withdrawal that counts funding
    owed, and a position opened after accrual starting at the current index.
    """
    maker = x.new_trader()
    long = x.new_trader()
    short = x.new_trader()
    x.expect(x.set_price(BTC.id, btc(60_000)))
    t0 = x.timestamp
    x.expect(x.set_price(BTC.id, btc(60_000), timestamp=t0), Reason.STALE_TIMESTAMP)
    x.expect(x.set_price(BTC.id, btc(60_000), timestamp=t0 - 1), Reason.STALE_TIMESTAMP)
    x.expect(x.set_price(BTC.id, btc(60_000), timestamp=t0 + 1), Reason.FUTURE_TIMESTAMP)
    x.expect(x.set_price(BTC.id, 0, timestamp=t0), Reason.INVALID_ORACLE_PRICE)
    x.expect(x.set_price(9, btc(1), timestamp=t0), Reason.UNKNOWN_MARKET)
    x.expect(x.set_price(ETH.id, eth(3_000), timestamp=t0))
    wrong = x.sign(long.key, OraclePrice(ETH.id, eth(3_100), t0 + 1))
    x.advance(1)
    x.expect(x.transaction(wrong), Reason.WRONG_SIGNER)
    # Trades 1% above the index: the premium is clamped at 0.5% per period.
    x.expect(x.order(short, BTC.id, False, btc(60_600), sats(1)), end=OrderEnd.RESTING)
    x.expect(x.order(long, BTC.id, True, btc(60_600), sats(1), tif=IOC), fills=1)
    x.expect(x.order(short, ETH.id, False, eth(3_001), eth_size(10)), end=OrderEnd.RESTING)
    x.expect(x.order(long, ETH.id, True, eth(3_001), eth_size(10), tif=IOC), fills=1)
    before = x.market(BTC.id).funding_index
    x.advance(3_600)
    x.expect(x.set_price(BTC.id, btc(60_000)))
    x.expect(x.set_price(ETH.id, eth(3_000)))
    assert x.market(BTC.id).funding_index > before
    x.advance(10 * 3_600)  # more than a funding period: accrues one period's worth
    x.expect(x.set_price(BTC.id, btc(60_100)))
    x.expect(x.set_price(ETH.id, eth(2_990)))
    # The long settles its funding when its position changes.
    x.expect(x.order(maker, BTC.id, True, btc(59_000), sats(2)), end=OrderEnd.RESTING)
    x.expect(x.order(long, BTC.id, False, 0, sats(0.5), tif=IOC), fills=1)
    assert x.market(BTC.id).funding_balance != 0, "the long settled the funding it owed"
    # Below the index: the mark is now 59,000 < 60,100, so shorts pay.
    x.expect(x.order(maker, BTC.id, False, btc(60_200), sats(1)), end=OrderEnd.RESTING)
    x.advance(7_200)
    x.expect(x.set_price(BTC.id, btc(60_100)))
    x.expect(x.order(short, BTC.id, True, 0, sats(0.4), tif=IOC, reduce_only=True), fills=1)
    # Funding owed counts in free collateral without being settled.
    x.expect(x.withdraw(long, 50_000 * USD))
    x.expect(x.withdraw(short, 1_000 * USD))
    # A new position starts at the current index.
    late = x.new_trader()
    x.expect(x.order(late, BTC.id, False, 0, sats(0.3), tif=IOC), fills=1)
    x.advance(600)
    x.expect(x.set_price(BTC.id, btc(60_200)))
    x.expect(x.set_price(ETH.id, eth(3_010)))
    x.expect(x.order(late, BTC.id, True, 0, sats(0.3), tif=IOC, reduce_only=True), fills=1)
    x.expect(x.order(maker, ETH.id, True, eth(2_900), eth_size(10)), end=OrderEnd.RESTING)
    x.expect(x.order(long, ETH.id, False, 0, eth_size(10), tif=FOK, reduce_only=True), fills=1)


# The order-id collision -----------------------------------------------------------------

COLLISION_NONCES: Final = (611_966, 1_186_563)
"""Two nonces of :func:`collision_order` with the same order id, found by
:func:`find_order_id_collision` (about five seconds, so not run at every generation)."""


def collision_order(nonce: int) -> Order:
    """The order of account 1 whose nonces :data:`COLLISION_NONCES` collide."""
    return Order(1, BTC.id, True, btc(50_000), sats(0.01), int(GTC), False, 0, nonce)


def find_order_id_collision(domain: Domain, template: Order) -> tuple[int, int]:
    """
    The first pair of nonces ``i < j`` for which ``template`` with nonce ``i`` and
    with nonce ``j`` have the same order id (a birthday search over the 2**40 ids:
    about 2**20 hashes). Used once to find :data:`COLLISION_NONCES`.
    """
    fields = Order.FIELDS
    prefix = type_hash(Order.TYPE_NAME, fields) + b"".join(
        encode_word(spec.type, value)
        for spec, value in zip(fields[:-1], template.values()[:-1], strict=True)
    )
    head = b"\x19\x01" + domain_separator(domain)
    seen: dict[int, int] = {}
    nonce = 0
    while True:
        struct_hash = keccak256(prefix + nonce.to_bytes(32, "big"))
        order_id = int.from_bytes(keccak256(head + struct_hash), "big") % ORDER_ID_MODULUS
        first = seen.setdefault(order_id, nonce)
        if first != nonce:
            return first, nonce
        nonce += 1


@scenario("order_id_collision")
def order_id_collision(x: RecordingExchange) -> None:
    """
    Two orders of one account whose hashes differ but whose order ids (hash mod
    2**40 - 1, plus 1) are equal, found by a birthday search over the nonce: while
    the first rests, the second is refused (ORDER_ID_TAKEN); cancelling the
    second's hash finds the slot holding another hash (ORDER_NOT_FOUND); once
    the first is cancelled the second rests in the same slot, and then the
    first's hash is not found there.
    """
    first, second = (collision_order(nonce) for nonce in COLLISION_NONCES)
    first_hash, second_hash = x.order_hash(first), x.order_hash(second)
    if first_hash == second_hash or order_id_of(first_hash) != order_id_of(second_hash):
        raise ScenarioError("COLLISION_NONCES no longer collide: rerun find_order_id_collision")
    trader = x.new_trader()
    assert trader.id == first.account
    set_prices(x)
    x.expect(x.send(trader, first), end=OrderEnd.RESTING)
    x.expect(x.send(trader, second), Reason.ORDER_ID_TAKEN)
    x.expect(x.cancel(trader, second_hash, nonce=second.nonce + 1), Reason.ORDER_NOT_FOUND)
    x.expect(x.cancel(trader, first_hash, nonce=second.nonce + 2), removals=(CANCELLED,))
    x.expect(x.send(trader, second), end=OrderEnd.RESTING)
    assert x.resting(second_hash) is not None
    x.expect(x.send(trader, first), Reason.NONCE_TOO_OLD)
    x.expect(x.cancel(trader, first_hash, nonce=second.nonce + 3), Reason.ORDER_NOT_FOUND)
    x.expect(x.cancel(trader, second_hash, nonce=second.nonce + 4), removals=(CANCELLED,))


@scenario("match_limit")
def match_limit(x: RecordingExchange) -> None:
    """
    MAX_MATCHES (8) makers visited per taker order: a GTC sweep stopped by the
    limit (its remainder does not rest), a limit reached by removals (expired
    and self-trade makers count as visits), an IOC and a FOK (NOT_FILLED) at the
    limit, and a sweep of exactly MAX_MATCHES makers that fills.
    """
    makers = [x.new_trader() for _ in range(3)]
    taker = x.new_trader()
    set_prices(x)
    for n in range(MAX_MATCHES + 1):
        maker = makers[n % 2]
        x.expect(
            x.order(maker, BTC.id, False, btc(60_000 + n // 4), sats(0.01)), end=OrderEnd.RESTING
        )
    x.expect(x.order(taker, BTC.id, True, 0, sats(0.5), tif=FOK), Reason.NOT_FILLED)
    x.expect(
        x.order(taker, BTC.id, True, btc(60_100), sats(0.5)),
        end=OrderEnd.MATCH_LIMIT,
        fills=MAX_MATCHES,
    )
    assert not x.account(taker.id).orders  # type: ignore[union-attr]
    # Expiring and self-trade makers ahead of live ones: each counts as a visit.
    expiry = x.timestamp + 30
    expired = MAX_MATCHES // 2 + 1
    for _ in range(expired):
        x.expect(
            x.order(makers[2], BTC.id, False, btc(59_990), sats(0.01), expiry=expiry),
            end=OrderEnd.RESTING,
        )
    for _ in range(MAX_MATCHES - expired):
        x.expect(x.order(taker, BTC.id, False, btc(59_995), sats(0.01)), end=OrderEnd.RESTING)
    x.advance(60)
    x.expect(
        x.order(taker, BTC.id, True, 0, sats(1), tif=IOC),
        end=OrderEnd.MATCH_LIMIT,
        fills=0,
        removals=(RemovalReason.EXPIRED,) * expired
        + (RemovalReason.SELF_TRADE,) * (MAX_MATCHES - expired),
    )
    x.expect(x.order(taker, BTC.id, True, 0, sats(0.01), tif=IOC), end=OrderEnd.FILLED, fills=1)
    for n in range(MAX_MATCHES):
        x.expect(
            x.order(makers[n % 3], ETH.id, True, eth(2_999 - n), eth_size(0.1)),
            end=OrderEnd.RESTING,
        )
    x.expect(
        x.order(taker, ETH.id, False, 0, MAX_MATCHES * eth_size(0.1), tif=FOK),
        end=OrderEnd.FILLED,
        fills=MAX_MATCHES,
    )


@scenario("book_edges")
def book_edges(x: RecordingExchange) -> None:
    """
    The tick index at its edges: orders at tick 1, at the last tick of a
    256-tick word and the first of the next, across the 65536-tick boundary and
    at the highest tick (2**24 - 1), swept by market orders from both sides; the
    largest position size (2**63 - 1 rounded down to the lot) and one lot more,
    refused for the taker (TAKER_MARGIN) and for the maker (MAKER_MARGIN, after
    a self-trade removal); the largest deposit twice over and the largest
    withdrawal; an oracle price of 2**64 - 1.
    """
    whale = x.new_trader(deposit=(1 << 64) - 1)
    other = x.new_trader(deposit=(1 << 64) - 1)
    third = x.new_trader()
    x.expect(x.deposit(whale, (1 << 64) - 1))
    x.expect(x.deposit(other, (1 << 64) - 1))
    x.expect(x.set_price(BTC.id, BTC.tick_size))  # $1: huge sizes stay within margin
    x.expect(x.set_price(ETH.id, (1 << 64) - 1))
    x.expect(x.set_price(ETH.id, eth(3_000)))
    top = (1 << TICK_BITS) - 1
    for tick in (top, 1 << 16, (1 << 16) - 1, 256, 255, 1, top - 1):
        price = tick * BTC.tick_size
        x.expect(x.order(other, BTC.id, False, price, sats(0.01)), end=OrderEnd.RESTING)
    x.expect(x.order(whale, BTC.id, True, 0, sats(0.03), tif=IOC), end=OrderEnd.FILLED, fills=3)
    x.expect(
        x.order(whale, BTC.id, True, 256 * BTC.tick_size, sats(0.01), tif=FOK), Reason.NOT_FILLED
    )
    x.expect(x.order(whale, BTC.id, True, 0, sats(0.04), tif=IOC), end=OrderEnd.FILLED, fills=4)
    for tick in (1, 255, 256, 1 << 16, top):
        price = tick * BTC.tick_size
        x.expect(x.order(whale, BTC.id, True, price, sats(0.01)), end=OrderEnd.RESTING)
    x.expect(x.order(other, BTC.id, False, 0, sats(0.05), tif=IOC), end=OrderEnd.FILLED, fills=5)
    # The whale is long 0.12 BTC; it closes, then takes the largest position there is.
    x.expect(x.order(other, BTC.id, True, BTC.tick_size, sats(0.12)), end=OrderEnd.RESTING)
    x.expect(
        x.order(whale, BTC.id, False, 0, sats(1), tif=IOC, reduce_only=True), end=OrderEnd.REDUCED
    )
    largest = MAX_POSITION_SIZE - MAX_POSITION_SIZE % BTC.lot_size
    x.expect(x.order(other, BTC.id, False, BTC.tick_size, largest), end=OrderEnd.RESTING)
    x.expect(x.order(whale, BTC.id, True, BTC.tick_size, largest, tif=FOK), end=OrderEnd.FILLED)
    x.expect(x.order(third, BTC.id, False, BTC.tick_size, BTC.lot_size), end=OrderEnd.RESTING)
    x.expect(
        x.order(whale, BTC.id, True, 0, BTC.lot_size, tif=IOC), end=OrderEnd.TAKER_MARGIN, fills=0
    )
    # The short at the limit cannot sell one lot more as a maker either.
    x.expect(x.order(other, BTC.id, False, 2 * BTC.tick_size, BTC.lot_size), end=OrderEnd.RESTING)
    x.expect(
        x.order(third, BTC.id, True, 2 * BTC.tick_size, 2 * BTC.lot_size, tif=IOC),
        end=OrderEnd.NO_LIQUIDITY,
        fills=0,
        removals=(RemovalReason.SELF_TRADE, RemovalReason.MAKER_MARGIN),
    )
    x.expect(x.withdraw(whale, (1 << 64) - 1))


def many_markets_genesis() -> Genesis:
    """A genesis of MAX_POSITIONS + 1 markets with varied parameters (sparse ids)."""
    specs = []
    for n in range(MAX_POSITIONS + 1):
        specs.append(
            MarketSpec(
                id=n if n < MAX_POSITIONS else 1_000,
                symbol=f"M{n}-PERP",
                tick_size=(1, 5, 10, 25)[n % 4],
                lot_size=(1_000, 100, 100, 1)[n % 4],
                price_decimals=(2, 3, 1, 6)[n % 4],
                size_decimals=(4, 5, 8, 0)[n % 4],
                initial_margin_bps=500 + 100 * n,
                maintenance_margin_bps=250 + 50 * n,
                maker_fee_bps=n % 3,
                taker_fee_bps=3 + n % 4,
                max_funding_ppm=1_000 * (n + 1),
            )
        )
    return replace(
        GENESIS, markets=tuple(specs), liquidation_reward_bps=50, liquidation_insurance_bps=0
    )


@scenario("many_markets", many_markets_genesis())
def many_markets(x: RecordingExchange) -> None:
    """
    A genesis of nine markets with varied ticks, lots, decimals, margins and fees
    (divisors of 1, 100 and 1000; a sparse id, 1000): a trader holding positions in
    MAX_POSITIONS (8) markets cannot open a ninth, neither as a taker
    (TAKER_MARGIN) nor as a maker (MAKER_MARGIN), until one is closed.
    """
    specs = x.genesis.markets
    maker = x.new_trader(deposit=10_000_000 * USD)
    fresh = x.new_trader(deposit=10_000_000 * USD)
    trader = x.new_trader(deposit=1_000_000 * USD)
    buyer = x.new_trader(deposit=1_000_000 * USD)
    prices = {spec.id: spec.tick_size * 400 for spec in specs}
    for spec in specs:
        x.expect(x.set_price(spec.id, prices[spec.id]))
    first, ninth = specs[0], specs[MAX_POSITIONS]
    for spec in specs[:MAX_POSITIONS]:
        ask = x.order(maker, spec.id, False, prices[spec.id], 20 * spec.lot_size)
        x.expect(ask, end=OrderEnd.RESTING)
        x.expect(x.order(trader, spec.id, True, 0, 10 * spec.lot_size, tif=IOC), fills=1)
    x.expect(x.order(fresh, ninth.id, False, prices[ninth.id], 20 * ninth.lot_size))
    x.expect(
        x.order(trader, ninth.id, True, 0, 10 * ninth.lot_size, tif=IOC),
        end=OrderEnd.TAKER_MARGIN,
        fills=0,
    )
    # As a maker, the trader's ninth-market order is removed when reached.
    x.expect(x.order(trader, ninth.id, False, 2 * prices[ninth.id], ninth.lot_size))
    x.expect(
        x.order(buyer, ninth.id, True, 2 * prices[ninth.id], 30 * ninth.lot_size, tif=IOC),
        end=OrderEnd.NO_LIQUIDITY,
        fills=1,
        removals=(RemovalReason.MAKER_MARGIN,),
    )
    # Closing one position frees a slot.
    x.expect(x.order(maker, first.id, True, prices[first.id], 10 * first.lot_size))
    x.expect(
        x.order(trader, first.id, False, 0, 10 * first.lot_size, tif=FOK, reduce_only=True),
        end=OrderEnd.FILLED,
    )
    x.expect(x.order(fresh, ninth.id, False, prices[ninth.id], 20 * ninth.lot_size))
    x.expect(x.order(trader, ninth.id, True, 0, 10 * ninth.lot_size, tif=IOC), end=OrderEnd.FILLED)
    x.expect(x.cancel_all(maker, ALL_MARKETS))
    x.expect(x.cancel_all(fresh, ALL_MARKETS))


@scenario("realistic_session")
def realistic_session(x: RecordingExchange) -> None:
    """
    A seeded trading session over many batches: four market makers requoting
    both sides of both markets (some quotes with a short expiry), takers crossing
    with IOC, GTC, FOK and market orders, reduce-only exits, cancels, oracle
    updates that move the price and accrue funding, withdrawals and transfers.
    Whatever each step's outcome is, it is recorded; the checks are the roots.
    """
    rng = random.Random(8)
    makers = [x.new_trader() for _ in range(4)]
    takers = [x.new_trader(deposit=20_000 * USD) for _ in range(3)]
    mid = {BTC.id: btc(60_000), ETH.id: eth(3_000)}
    tick = {BTC.id: BTC.tick_size, ETH.id: ETH.tick_size}
    lot = {BTC.id: BTC.lot_size, ETH.id: ETH.lot_size}
    for market, price in mid.items():
        x.expect(x.set_price(market, price))
    quotes: dict[int, list[bytes]] = {m.id: [] for m in makers}
    for _batch in range(10):
        x.advance(rng.randrange(5, 40))
        for market, price in list(mid.items()):
            mid[market] = max(tick[market], price + tick[market] * rng.randrange(-30, 31))
            x.set_price(market, mid[market])
        for maker in rng.sample(makers, 2):
            if quotes[maker.id] and rng.random() < 0.4:
                x.cancel(maker, quotes[maker.id].pop(rng.randrange(len(quotes[maker.id]))))
            elif rng.random() < 0.3:
                x.cancel_all(maker, rng.choice((BTC.id, ETH.id, ALL_MARKETS)))
                quotes[maker.id].clear()
            market = rng.choice((BTC.id, ETH.id))
            for is_buy in (True, False):
                offset = tick[market] * rng.randrange(1, 25)
                price = mid[market] - offset if is_buy else mid[market] + offset
                expiry = x.timestamp + rng.randrange(10, 60) if rng.random() < 0.3 else 0
                tif = POST_ONLY if rng.random() < 0.3 else GTC
                message = x.order_message(
                    maker, market, is_buy, price, lot[market] * rng.randrange(5, 200),
                    tif=tif, expiry=expiry,
                )  # fmt: skip
                outcome = x.send(maker, message)
                if outcome.order is not None and outcome.order.resting:
                    quotes[maker.id].append(x.order_hash(message))
        for taker in rng.sample(takers, 2):
            market = rng.choice((BTC.id, ETH.id))
            is_buy = rng.random() < 0.5
            size = lot[market] * rng.randrange(1, 150)
            kind = rng.randrange(6)
            if kind < 2:
                x.order(taker, market, is_buy, 0, size, tif=IOC)
            elif kind == 2:
                x.order(taker, market, is_buy, 0, size, tif=FOK)
            elif kind == 3:
                slip = tick[market] * rng.randrange(5, 40)
                x.order(taker, market, is_buy, mid[market] + (slip if is_buy else -slip), size)
            elif kind == 4:  # an exit: reduce-only against the position, if any
                account = x.account(taker.id)
                assert account is not None
                held = position_size(account, market)
                x.order(taker, market, held < 0, 0, size, tif=IOC, reduce_only=True)
            else:
                x.cancel_all(taker, market)
        if rng.random() < 0.2:
            x.withdraw(rng.choice(takers), USD * rng.randrange(1, 500))
        if rng.random() < 0.2:
            a, b = rng.sample(makers, 2)
            x.transfer(a, b.id, USD * rng.randrange(1, 1_000))
    outcomes = [r.outcome for r in x.recorded]
    if sum(len(o.fills) for o in outcomes) < 20:
        raise ScenarioError("the session should trade")
    if not any(r.reason is RemovalReason.EXPIRED for o in outcomes for r in o.removals):
        raise ScenarioError("the session should see an expired quote")


# JSON -----------------------------------------------------------------------------------


def genesis_json(genesis: Genesis) -> dict[str, Any]:
    """The vector form of a genesis configuration."""
    return {
        "oracle": hx(genesis.oracle),
        "feeOwner": hx(genesis.fee_owner),
        "liquidationRewardBps": genesis.liquidation_reward_bps,
        "liquidationInsuranceBps": genesis.liquidation_insurance_bps,
        "markets": [
            {
                "id": spec.id,
                "symbol": spec.symbol,
                "tickSize": str(spec.tick_size),
                "lotSize": str(spec.lot_size),
                "priceDecimals": spec.price_decimals,
                "sizeDecimals": spec.size_decimals,
                "divisor": str(spec.divisor),
                "initialMarginBps": spec.initial_margin_bps,
                "maintenanceMarginBps": spec.maintenance_margin_bps,
                "makerFeeBps": spec.maker_fee_bps,
                "takerFeeBps": spec.taker_fee_bps,
                "maxFundingPpm": spec.max_funding_ppm,
            }
            for spec in genesis.markets
        ],
    }


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """A compact human summary of an outcome (the reason is stored beside it)."""
    out: dict[str, Any] = {}
    if outcome.account is not None:
        out["account"] = outcome.account
    if outcome.order is not None:
        order = outcome.order
        out["orderHash"] = hx(order.order_hash)
        out["filled"] = str(order.filled)
        out["notional"] = str(order.notional)
        out["resting"] = str(order.resting)
        out["end"] = order.end.name
    if outcome.order is not None or outcome.fills:
        out["fills"] = len(outcome.fills)
    if outcome.removals:
        out["removals"] = [removal.reason.name for removal in outcome.removals]
    if outcome.withdrawal_id is not None:
        out["withdrawalId"] = str(outcome.withdrawal_id)
    out["writes"] = outcome.writes
    return out


STEP_KINDS: Final = {StepKind.L1_MESSAGE: "l1Message", StepKind.TRANSACTION: "transaction"}
"""The vector name of each step kind."""


def run_scenario(spec: ScenarioSpec) -> RecordingExchange:
    """Run one scenario on a fresh exchange."""
    exchange = RecordingExchange(spec.genesis)
    spec.run(exchange)
    return exchange


def scenario_vector(spec: ScenarioSpec) -> dict[str, Any]:
    """The vector document of one scenario."""
    exchange = run_scenario(spec)
    description = inspect.cleandoc(spec.run.__doc__ or "")
    return {
        "name": spec.name,
        "description": " ".join(description.split()),
        "genesis": genesis_json(exchange.genesis),
        "domain": exchange.domain.to_json(),
        "preWrites": [],
        "preRoot": hx(exchange.pre_root),
        "steps": [
            {
                "kind": STEP_KINDS[r.step.kind],
                "data": hx(r.step.data),
                "timestamp": str(r.timestamp),
                "reason": r.outcome.reason.name,
                "outcome": outcome_json(r.outcome),
                "postRoot": hx(r.post_root),
                "witness": hx(r.witness),
            }
            for r in exchange.recorded
        ],
    }


def stf_vectors() -> dict[str, dict[str, Any]]:
    """Every scenario vector by file name (relative to tests/vectors/stf/)."""
    return {f"{name}.json": scenario_vector(spec) for name, spec in SCENARIOS.items()}
