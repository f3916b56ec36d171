"""
Property tests of the exchange STF over long random sequences of steps.

A Hypothesis strategy draws a *program*: the deposits of 5 to 8 traders, then
50 to 300 actions. A :class:`Driver` turns each action, deterministically given
the draw and the state reached so far, into one step (or a few) on a test
:class:`~tests.stf_env.Exchange`: valid trading in both markets around the
oracle price (GTC, IOC, FOK, post-only, reduce-only and market orders, with and
without expiry), oracle moves large enough to make accounts liquidatable,
deposits, cancels of real and made-up hashes, cancel-all, transfers,
withdrawals, liquidations, time passing, transactions forced through the L1
inbox, and hostile steps: random bytes of both step kinds, byte-mutated earlier
steps, transactions signed by the wrong key, replays, zero and huge amounts and
prices, unknown markets and accounts, stale and reused nonces.

Each property is checked after every step, against the state itself (see
tests/unit/book_invariants.py), never against a model of the exchange.

Runtime is kept to well under a minute by ``max_examples``. For a deeper soak,
multiply every example budget with an environment variable, e.g.:

    RATCHET_STF_SOAK=50 .venv/bin/pytest -q tests/unit/test_stf_properties.py
"""

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from node.protocol.accounts import MAX_DEPOSIT
from node.protocol.crypto import address_of, keccak256, recover_signer
from node.protocol.errors import InvalidSignatureError, WireError
from node.protocol.inbox import Deposit, ForcedTransaction, encode_l1_message
from node.protocol.margin import account_health
from node.protocol.records import (
    ACCOUNT_LIMIT,
    NONCE_WINDOW,
    TICK_BITS,
    decode_level,
    encode_account,
    encode_level,
    encode_order,
    level_key,
    load_order,
)
from node.protocol.state import (
    TABLE_ACCOUNTS,
    TABLE_BOOK,
    TABLE_LEVELS,
    TABLE_ORDERS,
    State,
)
from node.protocol.step import OrderEnd, Outcome, Reason, RemovalReason, Step, StepKind
from node.protocol.stf import apply_step, prove_step
from node.protocol.transactions import (
    ALL_MARKETS,
    TRANSACTION_TYPES,
    Cancel,
    CancelAll,
    Liquidate,
    Message,
    OraclePrice,
    Order,
    TimeInForce,
    Transfer,
    Withdraw,
    decode_transaction,
)
from node.protocol.tree import MemoryNodeStore, OverlayNodeStore
from node.protocol.witness import WitnessView, decode_witness
from tests.stf_env import FEE_OWNER_KEY, ORACLE_KEY, USD, Exchange, Trader
from tests.stf_env import test_key as private_key  # not a test: renamed so pytest skips it
from tests.strategies import messages, mutations
from tests.unit.book_invariants import (
    changed_keys,
    check_books,
    check_conservation,
    table_records,
    table_roots,
)

SOAK = max(1, int(os.environ.get("RATCHET_STF_SOAK", "1")))
"""Multiplier of every example budget in this file (1 by default: the quick run)."""


def examples(n: int) -> int:
    """``n`` examples, times the soak multiplier."""
    return n * SOAK


SEQUENCE_SETTINGS: dict[str, Any] = {
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
}

INITIAL_PRICE = {0: 600_000, 1: 300_000}
"""BTC at $60,000 (price unit $0.1), ETH at $3,000 (price unit $0.01)."""

MAX_U64 = (1 << 64) - 1
STRANGER_KEY = private_key(5000)
"""A key that owns no account."""
UNREGISTERED = 7_777_777
"""An account id nobody registers."""


# The driver -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One step: the batch time it ran at, its bytes and its outcome."""

    timestamp: int
    step: Step
    outcome: Outcome


Hook = Callable[["Driver", Step], None]
AfterHook = Callable[["Driver", Record], None]


def deposit_amount(step: Step) -> int | None:
    """The amount of a deposit-shaped L1 message (None for anything else)."""
    if step.kind == StepKind.L1_MESSAGE and len(step.data) == 61 and step.data[0] == 0:
        return int.from_bytes(step.data[29:61], "big")
    return None


def inner_transaction(step: Step) -> bytes:
    """The transaction bytes a step carries: itself, or a forced transaction's (else b"")."""
    if step.kind == StepKind.TRANSACTION:
        return step.data
    return step.data[1:] if step.data[:1] == b"\x01" else b""


def order_of(step: Step) -> Order:
    """The order a step that placed an order carries."""
    message = decode_transaction(inner_transaction(step)).message
    assert isinstance(message, Order)
    return message


def mutate(data: bytes, ops: Sequence[tuple[str, int, int]]) -> bytes:
    """``data`` after drawn byte edits, applied deterministically."""
    out = bytearray(data)
    for op, pos, value in ops:
        position = pos % max(len(out), 1)
        if op == "flip" and out:
            out[position] ^= 1 << (value % 8)
        elif op == "set" and out:
            out[position] = value % 256
        elif op == "insert":
            out.insert(position, value % 256)
        elif op == "delete" and out:
            del out[position]
        elif op == "truncate":
            del out[position:]
        elif op == "append":
            out.append(value % 256)
    return bytes(out)


class Driver:
    """
    Turns drawn actions into signed steps on an :class:`Exchange`. Every step goes
    through :meth:`submit`, which calls the ``before``/``after`` hooks (the checks)
    and keeps what the checks need: the deposits applied and the order in which
    orders came to rest (from the outcomes).
    """

    def __init__(
        self,
        deposits: Sequence[int],
        before: Hook | None = None,
        after: AfterHook | None = None,
    ) -> None:
        self.ex = Exchange()
        self.before = before
        self.after = after
        self.log: list[Record] = []
        self.deposited = 0
        self.rest_order: dict[bytes, int] = {}
        """Order hash -> index of the step that rested it (from the outcomes)."""
        self.rest_price: dict[bytes, int] = {}
        """Order hash -> the limit price it rested at (from its transaction)."""
        self.traders: list[Trader] = []
        self.fee = Trader(0, FEE_OWNER_KEY)
        for amount in deposits:
            self.register(amount)
        for market, price in INITIAL_PRICE.items():
            self.act_price(market, 0, "ok", price)

    # plumbing ---------------------------------------------------------------------------

    def submit(self, step: Step) -> Outcome:
        """Apply one step, with the hooks and the bookkeeping."""
        if self.before is not None:
            self.before(self, step)
        outcome = self.ex.apply(step)
        if outcome.applied:
            amount = deposit_amount(step)
            if amount is not None:
                self.deposited += amount
            if outcome.order is not None and outcome.order.end == OrderEnd.RESTING:
                self.rest_order[outcome.order.order_hash] = len(self.log)
                self.rest_price[outcome.order.order_hash] = order_of(step).price
        record = Record(self.ex.timestamp, step, outcome)
        self.log.append(record)
        if self.after is not None:
            self.after(self, record)
        return outcome

    def run(self, actions: Sequence[tuple[Any, ...]]) -> None:
        for action in actions:
            getattr(self, "act_" + action[0])(*action[1:])

    def send(self, message: Message, key: bytes, forced: bool) -> Outcome:
        """Sign ``message`` with ``key`` and submit it, sequenced or forced through L1."""
        raw = self.ex.sign(key, message)
        if forced:
            return self.submit(Step(StepKind.L1_MESSAGE, encode_l1_message(ForcedTransaction(raw))))
        return self.submit(Step(StepKind.TRANSACTION, raw))

    def trader(self, index: int) -> Trader:
        return self.traders[index % len(self.traders)]

    def other(self, trader: Trader, index: int) -> Trader:
        """A trader other than ``trader``."""
        others = [t for t in self.traders if t.id != trader.id]
        return others[index % len(others)]

    def nonce(self, trader: Trader, mode: str = "next") -> int:
        """A nonce: the next one, a reused or too old one, or a jump that slides the window."""
        if mode == "reuse":
            return max(trader.next_nonce - 1, 0)
        if mode == "old":
            return max(trader.next_nonce - NONCE_WINDOW - 3, 0)
        if mode == "jump":
            trader.next_nonce += 200
        elif mode == "far":
            trader.next_nonce += 5_000
        trader.next_nonce += 1
        return trader.next_nonce - 1

    def register(self, amount: int) -> Outcome:
        """Register a new trader by an L1 deposit."""
        account_id = self.ex.next_account
        self.ex.next_account += 1
        trader = Trader(account_id, private_key(account_id))
        self.ex.traders[account_id] = trader
        self.traders.append(trader)
        return self.deposit(trader.address, account_id, amount)

    def deposit(self, owner: bytes, account_id: int, amount: int) -> Outcome:
        message = Deposit(owner, account_id, amount)
        return self.submit(Step(StepKind.L1_MESSAGE, encode_l1_message(message)))

    def free_collateral(self, account_id: int) -> int:
        account = self.ex.account(account_id)
        return 0 if account is None else account_health(self.ex.state, account).free_collateral

    def position(self, trader: Trader, market: int) -> int:
        account = self.ex.account(trader.id)
        assert account is not None
        return next((p.size for p in account.positions if p.market == market), 0)

    def order_size(self, market: int, dollars: int) -> int:
        """A size worth about ``dollars`` at the oracle price (at least one lot)."""
        return self.size_of_value(market, dollars * USD)

    def leveraged_size(self, trader: Trader, market: int, tenths: int) -> int:
        """A size worth ``tenths / 10`` times the trader's equity (at least $100's worth)."""
        account = self.ex.account(trader.id)
        assert account is not None
        equity = account_health(self.ex.state, account).equity
        return self.size_of_value(market, max(equity, 100 * USD) * tenths // 10)

    def size_of_value(self, market: int, value: int) -> int:
        """A size worth about ``value`` collateral units at the oracle price (at least a lot)."""
        m = self.ex.market(market)
        size = value * m.divisor // max(m.oracle_price, 1)
        size = size // m.lot_size * m.lot_size
        return min(max(size, m.lot_size), MAX_U64 // m.lot_size * m.lot_size)

    def near_tick(self, market: int, offset: int) -> int:
        """The tick ``offset`` x 5 bps away from the oracle price, on the book's range."""
        m = self.ex.market(market)
        tick = m.oracle_price // m.tick_size * (10_000 + 5 * offset) // 10_000
        return min(max(tick, 1), (1 << TICK_BITS) - 1)

    # valid trading ----------------------------------------------------------------------

    def act_order(
        self,
        t: int,
        market: int,
        is_buy: bool,
        offset: int,
        leverage: int,
        tif: int,
        reduce_only: bool,
        expires_in: int,
        market_order: bool,
        forced: bool,
        nonce_mode: str,
    ) -> None:
        trader = self.trader(t)
        m = self.ex.market(market)
        price = 0 if market_order else self.near_tick(market, offset) * m.tick_size
        if market_order and tif not in (TimeInForce.IOC, TimeInForce.FOK):
            tif = TimeInForce.IOC if tif == TimeInForce.GTC else TimeInForce.FOK
        if reduce_only:
            position = self.position(trader, market)
            if position:
                is_buy = position < 0
            if tif not in (TimeInForce.IOC, TimeInForce.FOK):
                tif = TimeInForce.IOC
        expiry = self.ex.timestamp + expires_in if expires_in else 0
        size = self.leveraged_size(trader, market, leverage)
        message = Order(
            trader.id, market, is_buy, price, size, int(tif), reduce_only, expiry,
            self.nonce(trader, nonce_mode),
        )  # fmt: skip
        self.send(message, trader.key, forced)

    def act_bad_order(self, t: int, market: int, is_buy: bool, variant: str, forced: bool) -> None:
        """An order with an edge or invalid field (some of the edges are valid orders)."""
        trader = self.trader(t)
        m = self.ex.market(market)
        fields: dict[str, Any] = {
            "account": trader.id,
            "market": market,
            "is_buy": is_buy,
            "price": self.near_tick(market, 0) * m.tick_size,
            "size": m.lot_size,
            "time_in_force": int(TimeInForce.GTC),
            "reduce_only": False,
            "expiry": 0,
        }
        top = (1 << TICK_BITS) - 1
        match variant:
            case "size_zero":
                fields["size"] = 0
            case "size_off_lot":
                fields["size"] = m.lot_size + 1
            case "size_huge":
                fields["size"] = MAX_U64
            case "size_huge_lots":
                fields.update(size=MAX_U64 // m.lot_size * m.lot_size, time_in_force=1)
            case "price_huge":
                fields["price"] = MAX_U64
            case "price_off_tick":
                fields["price"] = fields["price"] + 1  # on the grid only if the tick is 1
            case "price_top_tick":  # an ask resting at the highest tick
                fields.update(price=top * m.tick_size, is_buy=False)
            case "price_bottom_tick":  # a bid resting at the lowest tick
                fields.update(price=m.tick_size, is_buy=True)
            case "price_beyond_ticks":
                fields["price"] = (top + 1) * m.tick_size
            case "sweep":  # a large IOC through many levels (hits MAX_MATCHES)
                fields.update(
                    price=(top if is_buy else 1) * m.tick_size,
                    size=self.order_size(market, 300_000),
                    time_in_force=1,
                )
            case "unknown_market":
                fields["market"] = 2
            case "max_market":
                fields["market"] = ALL_MARKETS
            case "bad_tif":
                fields["time_in_force"] = 4
            case "tif_255":
                fields["time_in_force"] = 255
            case "expired":
                fields["expiry"] = self.ex.timestamp
            case "market_gtc":
                fields["price"] = 0
            case "reduce_gtc":
                fields["reduce_only"] = True
            case "reduce_wrong_side":
                position = self.position(trader, market)
                fields.update(reduce_only=True, time_in_force=1, is_buy=position >= 0)
            case "post_only_cross":
                fields.update(
                    price=self.near_tick(market, 20 if is_buy else -20) * m.tick_size,
                    time_in_force=int(TimeInForce.POST_ONLY),
                )
            case "unknown_account":
                fields["account"] = UNREGISTERED
            case "max_account":
                fields["account"] = MAX_U64
        message = Order(**fields, nonce=self.nonce(trader))
        self.send(message, trader.key, forced)

    def act_quote(
        self, t: int, market: int, is_buy: bool, distance: int, tenths: int, expires_in: int
    ) -> None:
        """A passive GTC order ``distance`` x 5 bps behind the oracle price: it builds depth."""
        trader = self.trader(t)
        m = self.ex.market(market)
        tick = self.near_tick(market, -distance if is_buy else distance)
        expiry = self.ex.timestamp + expires_in if expires_in else 0
        size = self.leveraged_size(trader, market, tenths)
        message = Order(trader.id, market, is_buy, tick * m.tick_size, size, 0, False, expiry,
                        self.nonce(trader))  # fmt: skip
        self.send(message, trader.key, False)

    def act_ladder(
        self, t: int, market: int, is_buy: bool, distance: int, count: int, same_level: bool
    ) -> None:
        """``count`` small passive quotes from successive traders, all at one level (a FIFO
        queue) or one tick apart (many levels): depth for sweeps to hit ``MAX_MATCHES``."""
        m = self.ex.market(market)
        for j in range(count):
            trader = self.trader(t + j)
            step = 0 if same_level else j
            tick = self.near_tick(market, -distance if is_buy else distance)
            tick = min(max(tick + (-step if is_buy else step), 1), (1 << TICK_BITS) - 1)
            size = self.leveraged_size(trader, market, 1)
            message = Order(trader.id, market, is_buy, tick * m.tick_size, size, 0, False, 0,
                            self.nonce(trader))  # fmt: skip
            self.send(message, trader.key, False)

    def act_sweep(self, t: int, market: int, is_buy: bool, tenths: int, forced: bool) -> None:
        """A large IOC at the far end of the tick range from the richest (or a given) trader:
        it walks the whole opposite side, up to ``MAX_MATCHES`` makers."""
        trader = self.trader(t)
        if t % 2:
            trader = max(self.traders, key=lambda tr: self.free_collateral(tr.id))
        m = self.ex.market(market)
        tick = (1 << TICK_BITS) - 1 if is_buy else 1
        size = self.leveraged_size(trader, market, tenths)
        message = Order(trader.id, market, is_buy, tick * m.tick_size, size, 1, False, 0,
                        self.nonce(trader))  # fmt: skip
        self.send(message, trader.key, forced)

    def act_cancel(self, t: int, k: int, mode: str, forced: bool, nonce_mode: str) -> None:
        trader = self.trader(t)
        owner = trader if mode != "other" else self.other(trader, k)
        order_hash = keccak256(b"no such order" + bytes([k % 256]))
        if mode in ("own", "other"):
            account = self.ex.account(owner.id)
            assert account is not None
            if account.orders:
                order = load_order(self.ex.state, account.orders[k % len(account.orders)])
                assert order is not None
                order_hash = order.order_hash
        elif mode == "gone" and self.rest_order:
            order_hash = list(self.rest_order)[k % len(self.rest_order)]
        message = Cancel(trader.id, order_hash, self.nonce(trader, nonce_mode))
        self.send(message, trader.key, forced)

    def act_cancel_all(self, t: int, market: int, forced: bool) -> None:
        trader = self.trader(t)
        self.send(CancelAll(trader.id, market, self.nonce(trader)), trader.key, forced)

    def _amount(self, account_id: int, mode: str) -> int:
        free = self.free_collateral(account_id)
        amounts = {
            "small": 10 * USD,
            "free": free,
            "over": free + 1,
            "huge": MAX_U64,
            "zero": 0,
            "half": free // 2,
        }
        return min(max(amounts.get(mode, 10 * USD), 1 if mode != "zero" else 0), MAX_U64)

    def act_transfer(self, t: int, to: int, mode: str, forced: bool) -> None:
        trader = self.fee if mode == "fee_account" else self.trader(t)
        receiver = self.other(trader, to).id
        if mode == "self":
            receiver = trader.id
        elif mode == "unknown":
            receiver = UNREGISTERED
        elif mode == "max_id":
            receiver = MAX_U64
        elif mode == "to_fee":
            receiver = 0
        amount = self._amount(trader.id, "free" if mode == "fee_account" else mode)
        message = Transfer(trader.id, receiver, amount, self.nonce(trader))
        self.send(message, trader.key, forced)

    def act_withdraw(self, t: int, mode: str, forced: bool) -> None:
        trader = self.fee if mode == "fee_account" else self.trader(t)
        recipient = address_of(STRANGER_KEY) if mode == "elsewhere" else trader.address
        amount = self._amount(trader.id, "free" if mode == "fee_account" else mode)
        message = Withdraw(trader.id, recipient, amount, self.nonce(trader))
        self.send(message, trader.key, forced)

    def act_liquidate(self, t: int, target: int, market: int, mode: str, forced: bool) -> None:
        """Liquidate: the first under-margined account found (``scan``), or a hostile pick."""
        liquidator = self.trader(t)
        victim = self.other(liquidator, target).id
        if mode == "scan":
            for candidate in [0, *(trader.id for trader in self.traders)]:
                account = self.ex.account(candidate)
                assert account is not None
                health = account_health(self.ex.state, account)
                if account.positions and health.equity < health.maintenance:
                    victim = candidate
                    market = account.positions[market % len(account.positions)].market
                    richest = max(
                        (tr for tr in self.traders if tr.id != candidate),
                        key=lambda tr: self.free_collateral(tr.id),
                    )
                    if liquidator.id == candidate or target % 3:
                        liquidator = richest
                    break
        elif mode == "self":
            victim = liquidator.id
        elif mode == "unknown":
            victim = UNREGISTERED
        elif mode == "unknown_market":
            market = 3
        message = Liquidate(liquidator.id, victim, market, self.nonce(liquidator))
        self.send(message, liquidator.key, forced)

    def act_price(self, market: int, move_bps: int, mode: str, price: int | None = None) -> None:
        """An oracle price ``move_bps`` away from the current one, or a hostile one."""
        m = self.ex.market(market)
        if price is None:
            price = m.oracle_price * (10_000 + move_bps) // 10_000
        price = min(max(price, 1), MAX_U64)
        self.ex.timestamp = max(self.ex.timestamp, m.oracle_time + 1)
        timestamp, key = self.ex.timestamp, ORACLE_KEY
        match mode:
            case "zero":
                price = 0
            case "huge":
                price = MAX_U64
            case "stale":
                timestamp = m.oracle_time
            case "future":
                timestamp = self.ex.timestamp + 100
            case "wrong_key":
                key = self.traders[0].key
            case "unknown_market":
                market = 2
        self.send(OraclePrice(market, price, timestamp), key, False)

    def act_squeeze(self, market: int, move_bps: int) -> None:
        """An oracle move of ``move_bps`` against the most leveraged position in ``market``."""
        m = self.ex.market(market)
        worst, direction = -1, 1
        for trader in self.traders:
            account = self.ex.account(trader.id)
            assert account is not None
            size = next((p.size for p in account.positions if p.market == market), 0)
            equity = max(account_health(self.ex.state, account).equity, 1)
            leverage = abs(size) * m.oracle_price // m.divisor * 1_000 // equity
            if size and leverage > worst:
                worst, direction = leverage, (-1 if size > 0 else 1)
        self.act_price(market, direction * move_bps, "ok")

    def act_advance(self, seconds: int) -> None:
        self.ex.advance(seconds)

    def act_deposit(self, t: int, amount: int, mode: str) -> None:
        trader = self.trader(t)
        if mode == "new" and len(self.traders) < 10:
            self.register(amount)
        elif mode == "out_of_range":
            self.deposit(trader.address, ACCOUNT_LIMIT, amount)
        elif mode == "too_much":
            self.deposit(trader.address, trader.id, MAX_DEPOSIT + 1)
        elif mode == "fee":
            self.deposit(trader.address, 0, amount)
        else:
            self.deposit(trader.address, trader.id, amount)

    # hostile steps ----------------------------------------------------------------------

    def act_junk(self, as_l1: bool, prefix: bytes, blob: bytes) -> None:
        kind = StepKind.L1_MESSAGE if as_l1 else StepKind.TRANSACTION
        self.submit(Step(kind, prefix + blob))

    def act_mutate(self, index: int, as_l1: bool, ops: Sequence[tuple[str, int, int]]) -> None:
        """An earlier transaction or L1 message with a few bytes edited."""
        source = self.log[index % len(self.log)].step
        data = mutate(source.data, ops)
        if source.kind == StepKind.TRANSACTION and as_l1:
            self.submit(Step(StepKind.L1_MESSAGE, encode_l1_message(ForcedTransaction(data))))
        else:
            self.submit(Step(source.kind, data))

    def act_replay(self, index: int) -> None:
        self.submit(self.log[index % len(self.log)].step)

    def act_wrong_key(self, t: int, other: int, mode: str, kind: str, forced: bool) -> None:
        """A transaction of a trader's account signed by someone else."""
        trader = self.trader(t)
        account = trader.id
        key = {
            "trader": self.other(trader, other).key,
            "stranger": STRANGER_KEY,
            "oracle": ORACLE_KEY,
            "fee_owner": FEE_OWNER_KEY,
        }.get(mode, STRANGER_KEY)
        if mode == "unregistered":
            account = UNREGISTERED
        nonce = self.nonce(trader)
        peer = self.other(trader, other).id
        message: Message
        if kind == "order":
            price = self.near_tick(0, 0) * self.ex.market(0).tick_size
            message = Order(account, 0, True, price, 1_000, 1, False, 0, nonce)
        elif kind == "withdraw":
            message = Withdraw(account, address_of(key), USD, nonce)
        elif kind == "transfer":
            message = Transfer(account, peer, USD, nonce)
        elif kind == "liquidate":
            message = Liquidate(account, peer, 0, nonce)
        else:
            message = CancelAll(account, ALL_MARKETS, nonce)
        self.send(message, key, forced)


# The strategy -----------------------------------------------------------------------------

BAD_ORDER_VARIANTS = (
    "size_zero", "size_off_lot", "size_huge", "size_huge_lots", "price_huge", "price_off_tick",
    "price_top_tick", "price_bottom_tick", "price_beyond_ticks", "sweep", "sweep",
    "unknown_market", "max_market", "bad_tif", "tif_255", "expired", "market_gtc", "reduce_gtc",
    "reduce_wrong_side", "post_only_cross", "unknown_account", "max_account",
)  # fmt: skip
TRANSFER_MODES = (
    "small", "small", "free", "half", "over", "huge", "zero", "self", "unknown", "max_id",
    "to_fee", "fee_account",
)  # fmt: skip
PRICE_MOVES_BPS = (
    -6_000, -2_500, -1_200, -600, -300, -300, -100, -100, -30, -30, -5, 0, 5, 30, 30, 100, 100,
    300, 300, 600, 1_200, 2_500, 6_000,
)  # fmt: skip

_traders = st.integers(0, 9)
_markets = st.sampled_from((0, 1))
_forced = st.sampled_from((False, False, False, True))
_nonce_modes = st.sampled_from(("next",) * 8 + ("reuse", "old", "jump", "far"))
_tifs = st.sampled_from(
    (TimeInForce.GTC,) * 3 + (TimeInForce.IOC, TimeInForce.FOK, TimeInForce.POST_ONLY)
)

order_actions = st.tuples(
    st.just("order"),
    _traders,
    _markets,
    st.booleans(),
    st.integers(-12, 12),  # price offset from the oracle, in 5 bps steps
    st.sampled_from((1, 5, 20, 50, 90, 95, 99, 150)),  # leverage, in tenths of the equity
    _tifs,
    st.sampled_from((False,) * 5 + (True,)),  # reduce-only
    st.sampled_from((0, 0, 0, 0, 5, 60, 600, 3_600)),  # expires in (seconds)
    st.sampled_from((False,) * 6 + (True,)),  # market order
    _forced,
    _nonce_modes,
)
bad_order_actions = st.tuples(
    st.just("bad_order"),
    _traders,
    _markets,
    st.booleans(),
    st.sampled_from(BAD_ORDER_VARIANTS),
    _forced,
)
quote_actions = st.tuples(
    st.just("quote"),
    _traders,
    _markets,
    st.booleans(),
    st.one_of(st.integers(0, 12), st.integers(13, 1_999)),  # far ones spread the bitmaps
    st.sampled_from((1, 3, 10, 20)),
    st.sampled_from((0, 0, 0, 30, 600)),
)
ladder_actions = st.tuples(
    st.just("ladder"),
    _traders,
    _markets,
    st.booleans(),
    st.integers(0, 6),
    st.integers(2, 9),
    st.booleans(),
)
sweep_actions = st.tuples(
    st.just("sweep"), _traders, _markets, st.booleans(), st.sampled_from((20, 50, 90)), _forced
)
cancel_actions = st.tuples(
    st.just("cancel"),
    _traders,
    st.integers(0, 31),
    st.sampled_from(("own", "own", "own", "other", "random", "gone")),
    _forced,
    _nonce_modes,
)
cancel_all_actions = st.tuples(
    st.just("cancel_all"), _traders, st.sampled_from((0, 1, ALL_MARKETS, 2, 123_456)), _forced
)
transfer_actions = st.tuples(
    st.just("transfer"),
    _traders,
    st.integers(0, 9),
    st.sampled_from(TRANSFER_MODES),
    _forced,
)
withdraw_actions = st.tuples(
    st.just("withdraw"),
    _traders,
    st.sampled_from(
        ("small", "small", "free", "half", "over", "huge", "zero", "elsewhere", "fee_account")
    ),
    _forced,
)
liquidate_actions = st.tuples(
    st.just("liquidate"),
    _traders,
    st.integers(0, 9),
    _markets,
    st.sampled_from(("scan",) * 6 + ("random", "self", "unknown", "unknown_market")),
    _forced,
)
price_actions = st.tuples(
    st.just("price"),
    _markets,
    st.sampled_from(PRICE_MOVES_BPS),
    st.sampled_from(("ok",) * 10 + ("zero", "stale", "future", "wrong_key", "unknown_market")),
)
squeeze_actions = st.tuples(
    st.just("squeeze"), _markets, st.sampled_from((300, 600, 1_000, 1_500, 3_000, 6_000))
)
advance_actions = st.tuples(
    st.just("advance"), st.sampled_from((1, 5, 30, 120, 600, 3_600, 9 * 3_600))
)
deposit_actions = st.tuples(
    st.just("deposit"),
    _traders,
    st.sampled_from((0, 1, 500 * USD, 20_000 * USD, 250_000 * USD, MAX_DEPOSIT)),
    st.sampled_from(("trader", "trader", "trader", "new", "out_of_range", "too_much", "fee")),
)
junk_actions = st.tuples(
    st.just("junk"),
    st.booleans(),
    st.sampled_from((b"", b"\x00", b"\x01", *(bytes([k]) for k in range(1, 8)))),
    st.binary(max_size=80),
)
_mutation_ops = st.lists(
    st.tuples(
        st.sampled_from(("flip", "set", "insert", "delete", "truncate", "append")),
        st.integers(0, 255),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=3,
)
mutate_actions = st.tuples(st.just("mutate"), st.integers(0, 1 << 16), st.booleans(), _mutation_ops)
replay_actions = st.tuples(st.just("replay"), st.integers(0, 1 << 16))
wrong_key_actions = st.tuples(
    st.just("wrong_key"),
    _traders,
    st.integers(0, 9),
    st.sampled_from(("trader", "stranger", "oracle", "fee_owner", "unregistered")),
    st.sampled_from(("order", "withdraw", "transfer", "liquidate", "cancel_all")),
    _forced,
)
huge_price_actions = st.tuples(st.just("price"), _markets, st.just(0), st.just("huge"))

ACTION_WEIGHTS: dict[str, tuple[int, st.SearchStrategy[tuple[Any, ...]]]] = {
    "order": (200, order_actions),
    "quote": (100, quote_actions),
    "ladder": (30, ladder_actions),
    "price": (100, price_actions),
    "liquidate": (100, liquidate_actions),
    "squeeze": (50, squeeze_actions),
    "sweep": (15, sweep_actions),
    "cancel": (50, cancel_actions),
    "advance": (40, advance_actions),
    "bad_order": (40, bad_order_actions),
    "junk": (40, junk_actions),
    "mutate": (40, mutate_actions),
    "wrong_key": (40, wrong_key_actions),
    "transfer": (30, transfer_actions),
    "withdraw": (30, withdraw_actions),
    "deposit": (30, deposit_actions),
    "replay": (30, replay_actions),
    "cancel_all": (20, cancel_all_actions),
    "huge_price": (1, huge_price_actions),
}
"""How often each kind of action is drawn, in thousandths (about)."""

actions = st.sampled_from(
    [name for name, (weight, _) in ACTION_WEIGHTS.items() for _ in range(weight)]
).flatmap(lambda name: ACTION_WEIGHTS[name][1])
"""One action: valid trading is most of them, hostile steps about a fifth."""

initial_deposits = st.lists(
    st.sampled_from((2_000 * USD, 20_000 * USD, 100_000 * USD, 1_000_000 * USD)),
    min_size=5,
    max_size=8,
)

Program = tuple[list[int], list[tuple[Any, ...]]]


def programs(min_size: int = 60, max_size: int = 300) -> st.SearchStrategy[Program]:
    """Deposits of 5 to 8 traders, then ``min_size`` to ``max_size`` actions (a ladder action
    is up to 9 steps, so a sequence is longer than its action list)."""
    return st.tuples(initial_deposits, st.lists(actions, min_size=min_size, max_size=max_size))


_GTC, _IOC = int(TimeInForce.GTC), int(TimeInForce.IOC)

SCRIPTED: Program = (
    [100_000 * USD, 100_000 * USD, 2_000 * USD, 1_000_000 * USD, 20_000 * USD],
    [
        ("ladder", 0, 0, False, 2, 9, True),  # nine asks in one level's queue
        ("ladder", 0, 0, False, 3, 9, False),  # nine asks a tick apart
        ("quote", 1, 0, False, 1, 3, 30),  # an ask that expires in 30 s
        ("advance", 60),
        ("sweep", 3, 0, True, 90, False),  # expired + self-trade removals, then MAX_MATCHES
        ("ladder", 0, 1, False, 0, 5, True),
        ("order", 2, 1, True, 4, 90, _IOC, False, 0, False, False, "next"),  # 9x long ETH
        ("squeeze", 1, 1_500),  # ETH -15%: the long is under maintenance margin
        ("liquidate", 0, 1, 1, "scan", False),
        ("order", 4, 0, False, -4, 20, _GTC, False, 0, False, True, "next"),  # forced, rests
        ("cancel", 4, 0, "own", False, "next"),
        ("cancel_all", 1, ALL_MARKETS, True),
        ("transfer", 0, 1, "small", False),
        ("withdraw", 1, "small", True),
        ("deposit", 0, 500 * USD, "new"),
        ("price", 0, -300, "stale"),
        ("bad_order", 0, 0, True, "price_beyond_ticks", False),
        ("replay", 3),
        ("junk", True, b"\x01", b"\x01\x02"),
        ("mutate", 20, False, [("flip", 5, 1)]),
        ("wrong_key", 0, 1, "trader", "order", False),
    ],
)
"""A fixed program every sequence property also runs (as an explicit example): it
reaches the rare paths for sure (see :func:`test_the_scripted_program_reaches_the_rare_paths`)."""


def note_coverage(driver: Driver) -> None:
    """Report what a run reached (``pytest --hypothesis-show-statistics`` shows it)."""
    reasons = {record.outcome.reason for record in driver.log}
    for reason in reasons:
        event(f"reason {reason.name}")
    ends = {r.outcome.order.end for r in driver.log if r.outcome.order is not None}
    for end in ends:
        event(f"order end {end.name}")
    removed = {rm.reason for r in driver.log for rm in r.outcome.removals}
    for removal in removed:
        event(f"removal {removal.name}")
    liquidations = sum(
        1
        for r in driver.log
        if r.outcome.applied and r.outcome.account is not None and _is_liquidation(r.step)
    )
    event(f"liquidations applied: {min(liquidations, 3)}{'+' if liquidations > 3 else ''}")


def _is_liquidation(step: Step) -> bool:
    raw = inner_transaction(step)
    return bool(raw) and raw[0] == 6


# 1. Conservation --------------------------------------------------------------------------


@settings(max_examples=examples(12), **SEQUENCE_SETTINGS)
@given(programs())
@example(SCRIPTED)
def test_collateral_is_conserved_and_pnl_is_zero_sum_after_every_step(program: Program) -> None:
    """
    After every step of a long random sequence, the collateral of every account in
    the state (the fee account included) plus the insurance fund, the markets'
    funding balances and the withdrawal records sums exactly to the deposits
    applied so far; and the position sizes of every market sum to zero.
    """

    def check(driver: Driver, record: Record) -> None:
        driver.ex.root()
        check_conservation(driver.ex.state, driver.deposited)

    deposits, steps = program
    driver = Driver(deposits, after=check)
    driver.run(steps)
    note_coverage(driver)


# 2. Book invariants -----------------------------------------------------------------------


@settings(max_examples=examples(12), **SEQUENCE_SETTINGS)
@given(programs())
@example(SCRIPTED)
def test_order_books_stay_well_formed_after_every_step(program: Program) -> None:
    """
    After every step, each market's book, walked from its tick bitmaps in the
    state, is well formed: marked ticks have levels and every level, order and
    bitmap word in the state is reached; levels come in price order and the book
    is never crossed; each queue is a consistent doubly linked list whose size is
    its orders' remaining sum; orders match their level and appear in exactly their
    owner's open-order list (at most 16, no duplicates); and each queue is FIFO,
    in the order the outcomes reported the orders coming to rest. Also, an order
    reported resting rests with the reported size, a reported removal is gone, and
    fills respect price-time priority (:func:`check_price_time_priority`).
    """

    def check(driver: Driver, record: Record) -> None:
        driver.ex.root()
        outcome = record.outcome
        if outcome.applied and outcome.order is not None:
            check_price_time_priority(driver, order_of(record.step), outcome)
            resting = driver.ex.resting(outcome.order.order_hash)
            if outcome.order.end == OrderEnd.RESTING:
                assert resting is not None and resting.remaining == outcome.order.resting
                assert outcome.order.resting + outcome.order.filled == resting.size
            else:
                assert resting is None and outcome.order.resting == 0
        for removal in outcome.removals:
            assert driver.ex.resting(removal.order_hash) is None, removal
        check_books(driver.ex.state, driver.rest_order)

    deposits, steps = program
    driver = Driver(deposits, after=check)
    driver.run(steps)
    note_coverage(driver)


def check_price_time_priority(driver: Driver, order: Order, outcome: Outcome) -> None:
    """
    An order's fills are at its makers' resting prices, never through its limit,
    best price first and, at one price, oldest maker first; and they add up to the
    outcome's filled size and notional.
    """
    assert outcome.order is not None
    fills = outcome.fills
    assert sum(fill.size for fill in fills) == outcome.order.filled
    assert sum(fill.price * fill.size for fill in fills) == outcome.order.notional
    prices = [fill.price for fill in fills]
    assert prices == sorted(prices, reverse=not order.is_buy), f"fills out of price order {fills}"
    if order.price:
        assert all(p <= order.price if order.is_buy else p >= order.price for p in prices)
    for fill in fills:
        assert fill.size > 0
        assert fill.maker_account != order.account, "a self-trade was filled"
        assert fill.price == driver.rest_price[fill.maker_order], "fill not at the maker's price"
    for first, second in pairwise(fills):
        if first.price == second.price:
            older, newer = (driver.rest_order[f.maker_order] for f in (first, second))
            assert older < newer, f"makers at one price filled out of time order: {fills}"


# 3. Rejected steps change nothing; applied steps write what changed -----------------------


@settings(max_examples=examples(12), **SEQUENCE_SETTINGS)
@given(programs())
@example(SCRIPTED)
def test_rejections_keep_the_root_and_writes_count_the_changed_records(program: Program) -> None:
    """
    For every step: if it is rejected, the committed state root is the one before
    it and it reports no writes; if it is applied, ``outcome.writes`` is exactly
    the number of records whose bytes differ between the committed states before
    and after (found by diffing the two Merkle trees), and it is 0 only for a
    deposit of 0 into an existing account (every transaction consumes a nonce,
    every oracle price moves the oracle time).
    """
    before: list[tuple[bytes, tuple[bytes, ...]]] = []

    def snapshot(driver: Driver, step: Step) -> None:
        before.append((driver.ex.root(), table_roots(driver.ex.state)))

    def check(driver: Driver, record: Record) -> None:
        root_before, tables_before = before.pop()
        root_after = driver.ex.root()
        outcome = record.outcome
        if not outcome.applied:
            assert root_after == root_before, f"rejected step changed the state: {outcome}"
            assert outcome.writes == 0, outcome
            return
        changed = changed_keys(driver.ex.state.store, tables_before, table_roots(driver.ex.state))
        assert outcome.writes == len(changed), (outcome, sorted(changed))
        assert (root_after != root_before) == (outcome.writes > 0)
        if outcome.writes == 0:
            assert deposit_amount(record.step) == 0, f"applied step wrote nothing: {outcome}"

    deposits, steps = program
    driver = Driver(deposits, before=snapshot, after=check)
    driver.run(steps)
    note_coverage(driver)


# 4. Determinism ---------------------------------------------------------------------------


def recovered_signers(log: Sequence[Record], ex: Exchange) -> dict[bytes, bytes]:
    """What a sequencer would pass as ``signers``: each decodable transaction's signer."""
    signers = {}
    for record in log:
        raw = record.step.data
        if record.step.kind == StepKind.L1_MESSAGE:
            raw = raw[1:] if raw[:1] == b"\x01" else b""
        try:
            tx = decode_transaction(raw)
            signers[raw] = recover_signer(tx.hash(ex.domain), tx.signature)
        except (WireError, InvalidSignatureError):
            continue
    return signers


@settings(max_examples=examples(8), **SEQUENCE_SETTINGS)
@given(programs())
@example(SCRIPTED)
def test_replaying_a_sequence_reproduces_every_root_and_outcome(program: Program) -> None:
    """
    Replaying the same steps, at the same batch times, on a fresh exchange from
    the same genesis gives the same outcome and the same state root after every
    step; so does a replay that passes the signers recovered in advance (the
    sequencer's fast path).
    """
    roots: list[bytes] = []

    def keep_root(driver: Driver, record: Record) -> None:
        roots.append(driver.ex.root())

    deposits, steps = program
    driver = Driver(deposits, after=keep_root)
    driver.run(steps)
    signers = recovered_signers(driver.log, driver.ex)
    for given_signers in (None, signers):
        fresh = Exchange()
        for index, record in enumerate(driver.log):
            fresh.timestamp = record.timestamp
            outcome = apply_step(fresh.state, record.step, fresh.context, given_signers)
            assert outcome == record.outcome, (index, record.step, outcome, record.outcome)
            assert fresh.root() == roots[index], f"step {index}: roots differ"
    note_coverage(driver)


# 5. Totality ------------------------------------------------------------------------------


@cache
def busy_exchange() -> Driver:
    """An exchange with traders, positions and a populated book in both markets."""
    driver = Driver([100_000 * USD, 100_000 * USD, 20_000 * USD, 1_000_000 * USD, 2_000 * USD])
    for i in range(60):
        market, is_buy = (i // 3) % 2, i % 2 == 0
        offset = (i % 5) - 2 + (-4 if is_buy else 4)
        tif = TimeInForce.IOC if i % 7 == 6 else TimeInForce.GTC
        driver.act_order(i, market, is_buy, offset, 1 + i % 4, tif, False,
                         600 if i % 3 == 0 else 0, False, i % 9 == 0, "next")  # fmt: skip
        if i % 10 == 9:
            driver.act_order(i + 2, (i // 10) % 2, (i // 20) % 2 == 0, 0, 3,
                             TimeInForce.IOC, False, 0, True, False, "next")  # fmt: skip
    driver.act_withdraw(0, "small", False)
    driver.ex.root()
    return driver


def fork(driver: Driver) -> Exchange:
    """A throwaway exchange at ``driver``'s committed state (its store stays untouched)."""
    ex = Exchange()
    ex.state = State(OverlayNodeStore(driver.ex.state.store), driver.ex.root())
    ex.timestamp = driver.ex.timestamp
    return ex


def apply_total(ex: Exchange, step: Step) -> Outcome:
    """Apply ``step``; it must not raise, and a rejection must leave the root alone."""
    root = ex.root()
    outcome = apply_step(ex.state, step, ex.context)
    assert isinstance(outcome, Outcome) and isinstance(outcome.reason, Reason)
    if not outcome.applied:
        assert outcome.writes == 0
        assert ex.root() == root, f"rejected step changed the state: {outcome}"
    return outcome


step_kinds = st.sampled_from(StepKind)
raw_bytes = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: b"\x01" + b),
    st.binary(min_size=60, max_size=60).map(lambda b: b"\x00" + b),
    st.tuples(st.integers(1, 7), st.binary(max_size=200)).map(lambda t: bytes([t[0]]) + t[1]),
)


@settings(max_examples=examples(300))
@given(step_kinds, raw_bytes)
def test_apply_step_is_total_on_arbitrary_bytes(kind: StepKind, data: bytes) -> None:
    """
    Any bytes, as a sequenced transaction or as an L1 message, give an outcome
    (never an exception) on a busy exchange; a rejection leaves the root as it was;
    and the only random bytes that can be applied are a well-formed deposit.
    """
    ex = fork(busy_exchange())
    outcome = apply_total(ex, Step(kind, data))
    if outcome.applied:
        assert deposit_amount(Step(kind, data)) is not None, outcome


@cache
def valid_steps() -> list[Step]:
    """Valid transactions of every kind (signed now, for the busy exchange) and deposits."""
    driver = busy_exchange()
    ex = fork(driver)
    trader = next(t for t in driver.traders if ex.account(t.id).orders)  # type: ignore[union-attr]
    peer = driver.other(trader, 0)
    account = ex.account(trader.id)
    assert account is not None
    resting = load_order(ex.state, account.orders[0])
    assert resting is not None
    nonce = 10_000
    market = ex.market(0)
    price = market.oracle_price // market.tick_size * market.tick_size
    txs: list[Message] = [
        Order(trader.id, 0, True, price, 100_000, 0, False, 0, nonce),
        Order(trader.id, 1, False, 0, 10_000, 1, False, 0, nonce + 1),
        Cancel(trader.id, resting.order_hash, nonce + 2),
        CancelAll(trader.id, ALL_MARKETS, nonce + 3),
        Transfer(trader.id, peer.id, USD, nonce + 4),
        Withdraw(trader.id, trader.address, USD, nonce + 5),
        Liquidate(trader.id, peer.id, 0, nonce + 6),
    ]
    steps = [Step(StepKind.TRANSACTION, ex.sign(trader.key, message)) for message in txs]
    steps.append(
        Step(StepKind.TRANSACTION, ex.sign(ORACLE_KEY, OraclePrice(0, price, ex.timestamp)))
    )
    steps += [
        Step(StepKind.L1_MESSAGE, encode_l1_message(ForcedTransaction(s.data))) for s in steps
    ]
    steps.append(
        Step(StepKind.L1_MESSAGE, encode_l1_message(Deposit(trader.address, trader.id, USD)))
    )
    return steps


@settings(max_examples=examples(300))
@given(st.data())
def test_apply_step_is_total_on_mutated_valid_steps(data: st.DataObject) -> None:
    """
    Valid steps of every kind with one to three bytes flipped, set, inserted,
    deleted, cut off or appended give an outcome (never an exception); a
    rejection leaves the root alone; and a mutant is applied only if it equals the
    original or is a well-formed deposit (a signature covers every other byte).
    """
    steps = valid_steps()
    original = steps[data.draw(st.integers(0, len(steps) - 1), label="step")]
    mutated = data.draw(mutations(original.data), label="mutated")
    kind = data.draw(st.sampled_from((original.kind, StepKind(1 - original.kind))), label="kind")
    step = Step(kind, mutated)
    outcome = apply_total(fork(busy_exchange()), step)
    if outcome.applied:
        same = inner_transaction(step) == inner_transaction(original) != b""
        assert same or deposit_amount(step) is not None, outcome


@st.composite
def arbitrary_steps(draw: st.DrawFn) -> Step:
    """
    A step of either kind holding random bytes, a deposit with any fields, or a
    transaction of any type with arbitrary members signed by a registered owner
    for its own account (or by the oracle for a price), so deep paths see hostile
    values: any prices, sizes, flags, expiries, nonces, markets, targets.
    """
    driver = busy_exchange()
    kind = draw(step_kinds)
    shape = draw(st.sampled_from(("bytes", "deposit", "owned", "owned", "owned")))
    if shape == "bytes":
        return Step(kind, draw(raw_bytes))
    if shape == "deposit":
        owner = draw(st.binary(min_size=20, max_size=20))
        account = draw(st.one_of(st.integers(0, 12), st.integers(0, MAX_U64)))
        amount = draw(st.one_of(st.integers(0, MAX_DEPOSIT), st.integers(0, (1 << 256) - 1)))
        return Step(StepKind.L1_MESSAGE, encode_l1_message(Deposit(owner, account, amount)))
    cls = draw(st.sampled_from(list(TRANSACTION_TYPES.values())))
    message = draw(messages(cls))
    if isinstance(message, OraclePrice):
        key = ORACLE_KEY
    else:
        trader = driver.traders[draw(st.integers(0, len(driver.traders) - 1))]
        key = trader.key
        if draw(st.integers(0, 9)):
            message = replace(message, account=trader.id)  # type: ignore[type-var]
        if isinstance(message, Order) and draw(st.booleans()):
            market = driver.ex.market(message.market % 2)
            tick = draw(st.integers(1, (1 << TICK_BITS) - 1))
            lots = draw(st.integers(1, 10**6))
            message = replace(
                message, market=message.market % 2, price=tick * market.tick_size,
                size=lots * market.lot_size, time_in_force=message.time_in_force % 4,
            )  # fmt: skip
    raw = driver.ex.sign(key, message)
    if kind == StepKind.L1_MESSAGE:
        return Step(kind, encode_l1_message(ForcedTransaction(raw)))
    return Step(kind, raw)


@settings(max_examples=examples(200))
@given(arbitrary_steps())
def test_apply_step_is_total_on_arbitrary_steps(step: Step) -> None:
    """
    An arbitrary ``Step(kind, data)``, including transactions with arbitrary
    members correctly signed by an account's owner, gives an outcome (never an
    exception); a rejection leaves the root alone; and whatever is applied keeps
    the books well formed and collateral conserved.
    """
    ex = fork(busy_exchange())
    outcome = apply_total(ex, step)
    event(f"reason {outcome.reason.name}")
    deposited = busy_exchange().deposited
    if outcome.applied:
        deposited += deposit_amount(step) or 0
    ex.root()
    check_conservation(ex.state, deposited)
    check_books(ex.state)


# 6. Witness completeness ------------------------------------------------------------------

WITNESS_EVERY = 7
"""Prove one step in this many (and every liquidation attempt), to keep the runtime low."""


@settings(max_examples=examples(8), **SEQUENCE_SETTINGS)
@given(programs(max_size=150))
@example(SCRIPTED)
def test_sampled_steps_replay_on_their_witness_alone(program: Program) -> None:
    """
    For a sample of the steps of a long sequence, ``prove_step`` from the committed
    root, then a replay on a ``WitnessView`` (the L1 executor's memory model: a root
    and the decoded witness, nothing else) consumes the whole witness and reaches
    the proved post root with the same outcome; proving writes nothing to the
    node store; and applying the step to the real state gives that outcome and
    that root too.
    """
    proved: list[tuple[Outcome, bytes] | None] = []

    def prove(driver: Driver, step: Step) -> None:
        if len(driver.log) % WITNESS_EVERY and not _is_liquidation(step):
            proved.append(None)
            return
        ex = driver.ex
        root = ex.root()
        store = ex.state.store
        assert isinstance(store, MemoryNodeStore)
        nodes = len(store)
        outcome, witness, post_root = prove_step(store, root, step, ex.context)
        view = WitnessView(root, decode_witness(witness))
        replayed = apply_step(view, step, ex.context)
        assert view.finish() == post_root
        assert replayed == outcome
        assert ex.root() == root and len(store) == nodes, "proving wrote to the state"
        proved.append((outcome, post_root))

    def check(driver: Driver, record: Record) -> None:
        expected = proved.pop()
        if expected is not None:
            assert record.outcome == expected[0]
            assert driver.ex.root() == expected[1]

    deposits, steps = program
    driver = Driver(deposits, before=prove, after=check)
    driver.run(steps)
    note_coverage(driver)


# The checks themselves --------------------------------------------------------------------


def test_the_scripted_program_reaches_the_rare_paths() -> None:
    """
    The fixed program every sequence property runs reaches what random programs
    reach only sometimes: an applied liquidation, an order stopped by
    ``MAX_MATCHES``, expired, self-trade and cancelled removals, a forced order
    that rests, a fill, and a queue of several orders at one level.
    """
    queues: list[int] = []

    def deepest_queue(driver: Driver, record: Record) -> None:
        driver.ex.root()
        summary = check_books(driver.ex.state, driver.rest_order)
        queues.append(max((len(lv.queue) for sd in summary.sides for lv in sd.levels), default=0))

    driver = Driver(SCRIPTED[0], after=deepest_queue)
    driver.run(SCRIPTED[1])
    outcomes = [record.outcome for record in driver.log]
    ends = {o.order.end for o in outcomes if o.order is not None}
    assert {OrderEnd.MATCH_LIMIT, OrderEnd.RESTING, OrderEnd.FILLED} <= ends
    removals = {removal.reason for o in outcomes for removal in o.removals}
    assert {RemovalReason.EXPIRED, RemovalReason.SELF_TRADE, RemovalReason.CANCELLED} <= removals
    assert any(
        o.applied and _is_liquidation(r.step) for r, o in zip(driver.log, outcomes, strict=True)
    )
    assert any(
        r.step.kind == StepKind.L1_MESSAGE and o.order is not None and o.order.resting > 0
        for r, o in zip(driver.log, outcomes, strict=True)
    )
    assert max(queues) >= 9
    assert {Reason.STALE_TIMESTAMP, Reason.INVALID_PRICE, Reason.MALFORMED} <= {
        o.reason for o in outcomes
    }


def test_the_invariant_checks_catch_a_corrupted_state() -> None:
    """
    The state walkers are not vacuous: a busy exchange passes them, and each of a
    few hand-made corruptions of its records (a level's size, a bitmap bit, an
    order's back link, an account's collateral, a position) makes them fail.
    """
    driver = busy_exchange()
    clean = fork(driver)
    check_books(clean.state, driver.rest_order)
    check_conservation(clean.state, driver.deposited)

    account = clean.account(driver.traders[0].id)
    assert account is not None and account.orders
    order = load_order(clean.state, account.orders[0])
    assert order is not None
    side = 0 if order.is_buy else 1
    key = level_key(order.market, side, order.tick)
    level = decode_level(clean.state.get(TABLE_LEVELS.id, key))

    def corrupted(table: int, index: int, record: bytes) -> State:
        ex = fork(driver)
        ex.state.set(table, index, record)
        ex.root()
        return ex.state

    bad_level = replace(level, size=level.size + 1)
    bad_order = replace(order, prev=order.prev + 1)
    richer = replace(account, collateral=account.collateral + 1)
    flipped = replace(account, positions=[replace(p, size=p.size + 1) for p in account.positions])
    word_key = next(iter(sorted(_book_words(clean.state))))
    broken = [
        (TABLE_LEVELS.id, key, encode_level(bad_level), "books"),
        (TABLE_ORDERS.id, account.orders[0], encode_order(bad_order), "books"),
        (TABLE_BOOK.id, word_key, b"", "books"),
        (TABLE_ACCOUNTS.id, driver.traders[0].id, encode_account(richer), "conservation"),
        (TABLE_ACCOUNTS.id, driver.traders[0].id, encode_account(flipped), "conservation"),
    ]
    for table, index, record, check in broken:
        state = corrupted(table, index, record)
        try:
            if check == "books":
                check_books(state, driver.rest_order)
            else:
                check_conservation(state, driver.deposited)
        except AssertionError:
            continue
        raise AssertionError(f"corrupting ({table}, {index}) went unnoticed by the {check} check")


def _book_words(state: State) -> list[int]:
    return list(table_records(state, TABLE_BOOK))
