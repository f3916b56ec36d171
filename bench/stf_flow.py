"""
A realistic, deterministic trading flow for benchmarks and soaks.

Market makers quote several levels on both sides of BTC-PERP and ETH-PERP
around a random-walk oracle price and re-quote (cancel + post-only orders,
sometimes a CancelAll) as it moves; takers cross the book with IOC limit,
market, fill-or-kill and reduce-only orders and sometimes rest a GTC order they
cancel later; the oracle sends a price every few steps; a few transfers,
withdrawals and L1 deposits. Every transaction is signed while the flow is
generated, and generating it applies it, so it only ever cancels orders that
still rest.
"""

import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field

from node.protocol.book import best_tick
from node.protocol.crypto import address_of
from node.protocol.inbox import Deposit, encode_l1_message
from node.protocol.records import ASKS, BIDS, position_size
from node.protocol.step import Outcome, Reason, Step, StepKind
from node.protocol.transactions import (
    Cancel,
    CancelAll,
    Message,
    OraclePrice,
    TimeInForce,
    Transfer,
    Withdraw,
)
from tests.stf_env import (
    BTC,
    ETH,
    ORACLE_KEY,
    START_TIME,
    USD,
    Exchange,
    Trader,
    btc,
)

# The flow --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketFlow:
    """How one market trades in the flow."""

    id: int
    tick: int
    """Price units per tick."""
    lot: int
    """Size units per lot."""
    start_price: int
    """First oracle price, in price units."""
    unit: int
    """Size units per unit of the asset."""
    maker_size: tuple[float, float]
    """Range of a maker level's size, in the asset."""
    taker_size: float
    """Median taker order size, in the asset (log-normal)."""


MARKETS = (
    MarketFlow(BTC.id, BTC.tick_size, BTC.lot_size, btc(60_000), 10**8, (0.05, 0.4), 0.08),
    MarketFlow(ETH.id, ETH.tick_size, ETH.lot_size, 3_000 * 100, 10**6, (1.0, 8.0), 1.2),
)

ORACLE_SIGMA = 0.0003
"""Standard deviation of the oracle's log return per update."""

HALF_SPREAD = 0.0001
"""A maker's innermost half spread is ``HALF_SPREAD * (1 + maker % 4)`` of the price."""

LEVEL_GAP = 0.0002
"""Distance between a maker's levels, as a fraction of the price."""

CANCEL_ALL_SHARE = 0.15
"""Share of re-quotes that start with a CancelAll of the market."""

TAKER_GTC_LIMIT = 4
"""A taker cancels its oldest resting GTC order before resting a fifth."""

EVENTS = (
    ("requote", 0.22),
    ("taker_order", 0.50),
    ("taker_cancel", 0.08),
    ("transfer", 0.02),
    ("withdraw", 0.02),
    ("deposit", 0.02),
)
"""What happens next, with weights (oracle prices come every ``--oracle-every`` steps)."""


@dataclass
class Batch:
    """Steps applied at one batch timestamp, then committed."""

    timestamp: int
    steps: list[Step] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


@dataclass
class Flow:
    """A generated flow: an untimed setup batch, then the timed batches."""

    setup: Batch
    batches: list[Batch]
    signers: dict[bytes, bytes]
    """Encoded transaction -> its signer, for the replay that skips recovery."""
    roots: list[bytes]
    """State root after the setup batch and after each timed batch."""
    reasons: list[Reason]
    """The outcome of every timed step when generated."""
    generate_s: float
    """Time taken to sign and generate it (not part of any figure)."""


class FlowDone(Exception):  # noqa: N818 - control flow
    """The flow has all its steps."""


class FlowGenerator:
    """Builds a :class:`Flow` by signing transactions and applying them to a test exchange."""

    def __init__(
        self, seed: int, steps: int, batch_size: int, makers: int, takers: int, oracle_every: int
    ) -> None:
        self.rng = random.Random(seed)
        self.ex = Exchange()
        self.limit = steps
        self.batch_size = batch_size
        self.oracle_every = oracle_every
        self.batch_seconds = batch_size // oracle_every + 2
        self.levels = 3
        self.signers: dict[bytes, bytes] = {}
        self.addresses: dict[int, bytes] = {}
        self.oracle_address = address_of(ORACLE_KEY)
        self.oracle = [market.start_price for market in MARKETS]
        self.oracle_time = [0] * len(MARKETS)
        self.quotes: dict[tuple[int, int, int, int], bytes] = {}
        """(maker index, market, side, level) -> hash of the resting quote."""
        self.taker_orders: dict[int, list[bytes]] = defaultdict(list)
        """Taker account id -> hashes of its GTC orders that rested, oldest first."""
        self.batches: list[Batch] = []
        self.batch = Batch(START_TIME)
        self.roots: list[bytes] = []
        self.reasons: list[Reason] = []
        self.since_oracle = 0
        self.next_oracle_market = 0
        self.steady = False
        self.makers = [self.ex.new_trader(deposit=5_000_000 * USD) for _ in range(makers)]
        self.takers = [
            self.ex.new_trader(deposit=self.rng.randrange(50_000, 500_000) * USD)
            for _ in range(takers)
        ]
        self.batch.steps = list(self.ex.steps)  # the registering deposits open the setup batch
        self.batch.labels = ["l1_deposit"] * len(self.ex.steps)

    # applying ----------------------------------------------------------------------------

    def address(self, trader: Trader) -> bytes:
        if trader.id not in self.addresses:
            self.addresses[trader.id] = trader.address
        return self.addresses[trader.id]

    def push(self, label: str, step: Step) -> Outcome:
        """Apply one step, opening a new batch first if the current one is full."""
        if self.steady:
            if len(self.reasons) == self.limit:
                raise FlowDone
            if len(self.batch.steps) == self.batch_size:
                self.close_batch()
        outcome = self.ex.apply(step)
        self.batch.steps.append(step)
        self.batch.labels.append(label)
        if self.steady:
            self.reasons.append(outcome.reason)
            self.since_oracle += 1
        return outcome

    def close_batch(self) -> None:
        self.roots.append(self.ex.root())
        self.batches.append(self.batch)
        self.batch = Batch(self.batch.timestamp + self.batch_seconds)
        self.ex.timestamp = self.batch.timestamp

    def send(
        self, label: str, trader: Trader, message: Message, key: bytes | None = None
    ) -> Outcome:
        raw = self.ex.sign(key or trader.key, message)
        self.signers[raw] = self.oracle_address if key == ORACLE_KEY else self.address(trader)
        return self.push(label, Step(StepKind.TRANSACTION, raw))

    # generating --------------------------------------------------------------------------

    def generate(self) -> Flow:
        start = time.perf_counter()
        for market in MARKETS:
            self.oracle_price(market.id)
        for maker in range(len(self.makers)):
            for market in MARKETS:
                self.requote(maker, market.id)
        setup = self.batch
        self.roots.append(self.ex.root())
        self.steady = True
        self.batch = Batch(setup.timestamp + self.batch_seconds)
        self.ex.timestamp = self.batch.timestamp
        names = [name for name, _ in EVENTS]
        weights = [weight for _, weight in EVENTS]
        try:
            while True:
                if self.since_oracle >= self.oracle_every:
                    self.since_oracle = 0
                    self.oracle_price(self.next_oracle_market)
                    self.next_oracle_market = (self.next_oracle_market + 1) % len(MARKETS)
                    continue
                event = self.rng.choices(names, weights)[0]
                getattr(self, event)()
        except FlowDone:
            pass
        if self.batch.steps:
            self.close_batch()
        return Flow(
            setup, self.batches, self.signers, self.roots, self.reasons,
            time.perf_counter() - start,
        )  # fmt: skip

    def oracle_price(self, market_id: int) -> None:
        market = MARKETS[market_id]
        if self.oracle_time[market_id]:
            moved = self.oracle[market_id] * math.exp(self.rng.gauss(0, ORACLE_SIGMA))
            self.oracle[market_id] = max(1, round(moved / market.tick)) * market.tick
        timestamp = max(self.oracle_time[market_id] + 1, self.batch.timestamp - self.batch_seconds)
        if timestamp > self.ex.timestamp:
            return  # no second left in this batch for this market
        self.oracle_time[market_id] = timestamp
        message = OraclePrice(market_id, self.oracle[market_id], timestamp)
        self.send("oracle_price", self.ex.fee_owner, message, ORACLE_KEY)

    def size(self, market: MarketFlow, amount: float) -> int:
        return max(1, round(amount * market.unit / market.lot)) * market.lot

    def requote(self, maker: int | None = None, market_id: int | None = None) -> None:
        """A maker brings one market's quotes back to its targets around the oracle."""
        if maker is None:
            maker = self.rng.randrange(len(self.makers))
        if market_id is None:
            market_id = self.rng.randrange(len(MARKETS))
        market = MARKETS[market_id]
        trader = self.makers[maker]
        account = self.ex.account(trader.id)
        assert account is not None
        inventory = position_size(account, market_id) / (market.maker_size[1] * market.unit * 10)
        mid = self.oracle[market_id] * (1 - 0.001 * math.tanh(inventory))
        gap_ticks = max(1, round(self.oracle[market_id] * LEVEL_GAP / market.tick))
        keys = [(maker, market_id, side, n) for side in (BIDS, ASKS) for n in range(self.levels)]
        if self.steady and self.rng.random() < CANCEL_ALL_SHARE:
            if any(self.ex.resting(self.quotes[key]) for key in keys if key in self.quotes):
                cancel_all = CancelAll(trader.id, market_id, self.ex.nonce(trader, None))
                self.send("maker_cancel_all", trader, cancel_all)
            for key in keys:
                self.quotes.pop(key, None)
        for key in keys:
            _, _, side, n = key
            offset = HALF_SPREAD * (1 + maker % 4) + LEVEL_GAP * n
            if side == BIDS:
                target = math.floor(mid * (1 - offset) / market.tick)
            else:
                target = math.ceil(mid * (1 + offset) / market.tick)
            old = self.quotes.pop(key, None)
            resting = self.ex.resting(old) if old is not None else None
            if resting is not None:
                if abs(resting.tick - target) <= gap_ticks:
                    self.quotes[key] = resting.order_hash
                    continue
                message = Cancel(trader.id, resting.order_hash, self.ex.nonce(trader, None))
                self.send("maker_cancel", trader, message)
            # post-only: stay off the other side's best price
            if side == BIDS:
                best = best_tick(self.ex.state, market_id, ASKS)
                tick = min(target, best - 1) if best else target
            else:
                best = best_tick(self.ex.state, market_id, BIDS)
                tick = max(target, best + 1) if best else target
            size = self.size(market, self.rng.uniform(*market.maker_size))
            order = self.ex.order_message(
                trader, market_id, side == BIDS, max(1, tick) * market.tick, size,
                tif=TimeInForce.POST_ONLY,
            )  # fmt: skip
            if self.send("maker_order", trader, order).applied:
                self.quotes[key] = self.ex.order_hash(order)

    def taker_order(self) -> None:
        trader = self.rng.choice(self.takers)
        market_id = 0 if self.rng.random() < 0.6 else 1
        market = MARKETS[market_id]
        account = self.ex.account(trader.id)
        assert account is not None
        position = position_size(account, market_id)
        size = self.size(market, market.taker_size * math.exp(self.rng.gauss(0, 1)))
        if position and self.rng.random() < 0.1:
            size = min(size, abs(position))
            order = self.ex.order_message(
                trader, market_id, position < 0, 0, size, tif=TimeInForce.IOC, reduce_only=True
            )
            self.send("taker_reduce_only", trader, order)
            return
        typical = market.taker_size * market.unit
        is_buy = self.rng.random() < 0.5 - 0.35 * math.tanh(position / (10 * typical))
        sign = 1 if is_buy else -1
        best = best_tick(self.ex.state, market_id, ASKS if is_buy else BIDS)
        touch = best * market.tick if best else self.oracle[market_id]
        kind = self.rng.choices(("ioc", "market", "gtc", "fok"), (0.5, 0.15, 0.25, 0.1))[0]
        if kind == "market":
            order = self.ex.order_message(trader, market_id, is_buy, 0, size, tif=TimeInForce.IOC)
            self.send("taker_market", trader, order)
        elif kind in ("ioc", "fok"):
            if kind == "fok":
                size = self.size(market, market.taker_size * self.rng.uniform(0.05, 0.5))
            through = touch * (1 + sign * self.rng.uniform(0, 0.0008 if kind == "ioc" else 0.002))
            price = self.tick_price(market, through, up=is_buy)
            tif = TimeInForce.IOC if kind == "ioc" else TimeInForce.FOK
            order = self.ex.order_message(trader, market_id, is_buy, price, size, tif=tif)
            self.send(f"taker_{kind}", trader, order)
        else:
            resting = [h for h in self.taker_orders[trader.id] if self.ex.resting(h)]
            self.taker_orders[trader.id] = resting
            if len(resting) >= TAKER_GTC_LIMIT:
                self.cancel_taker_order(trader)
            # mostly passive, sometimes through the touch
            limit = self.oracle[market_id] * (1 - sign * self.rng.uniform(-0.0003, 0.0015))
            expiry = self.batch.timestamp + self.rng.randrange(30, 600)
            order = self.ex.order_message(
                trader, market_id, is_buy, self.tick_price(market, limit, up=not is_buy), size,
                expiry=expiry if self.rng.random() < 0.3 else 0,
            )  # fmt: skip
            outcome = self.send("taker_gtc", trader, order)
            if outcome.order is not None and outcome.order.resting:
                self.taker_orders[trader.id].append(outcome.order.order_hash)

    def tick_price(self, market: MarketFlow, price: float, up: bool) -> int:
        ticks = math.ceil(price / market.tick) if up else math.floor(price / market.tick)
        return max(1, ticks) * market.tick

    def cancel_taker_order(self, trader: Trader) -> bool:
        hashes = [h for h in self.taker_orders[trader.id] if self.ex.resting(h)]
        self.taker_orders[trader.id] = hashes
        if not hashes:
            return False
        message = Cancel(trader.id, hashes.pop(0), self.ex.nonce(trader, None))
        self.send("taker_cancel", trader, message)
        return True

    def taker_cancel(self) -> None:
        candidates = [t for t in self.takers if self.taker_orders[t.id]]
        self.rng.shuffle(candidates)
        for trader in candidates:
            if self.cancel_taker_order(trader):
                return

    def transfer(self) -> None:
        sender, receiver = self.rng.sample(self.takers, 2)
        amount = self.rng.randrange(10, 1_000) * USD
        message = Transfer(sender.id, receiver.id, amount, self.ex.nonce(sender, None))
        self.send("transfer", sender, message)

    def withdraw(self) -> None:
        trader = self.rng.choice(self.takers)
        amount = self.rng.randrange(10, 2_000) * USD
        message = Withdraw(trader.id, self.address(trader), amount, self.ex.nonce(trader, None))
        self.send("withdraw", trader, message)

    def deposit(self) -> None:
        trader = self.rng.choice(self.takers)
        amount = self.rng.randrange(1_000, 10_000) * USD
        data = encode_l1_message(Deposit(self.address(trader), trader.id, amount))
        self.push("l1_deposit", Step(StepKind.L1_MESSAGE, data))
