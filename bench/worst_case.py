"""
The heaviest step of each kind, for the one-step gas figures of bench/gas_report.py.

A one-step proof costs what its witness holds: how many records the step touches,
how large they are and how deep they sit. Each builder here drives a test exchange
with eight markets into the state where its step kind touches the most: an order
that visits ``MAX_MATCHES`` makers, each emptying its own level of the book and
each maker holding ``MAX_OPEN_ORDERS`` orders and ``MAX_POSITIONS`` positions (the
largest account record, and health over eight markets); a liquidation between two
accounts of eight positions; a CancelAll of ``MAX_OPEN_ORDERS`` orders that each empty
a level; and so on. The step itself is returned unapplied, with the state it starts from.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

from node.protocol.crypto import address_of
from node.protocol.eip712 import Domain
from node.protocol.genesis import Genesis, MarketSpec
from node.protocol.inbox import Deposit, ForcedTransaction, encode_l1_message
from node.protocol.orders import MAX_MATCHES
from node.protocol.records import MAX_OPEN_ORDERS, MAX_POSITIONS
from node.protocol.step import Reason, Step, StepKind
from node.protocol.stf import prove_step
from node.protocol.transactions import (
    Cancel,
    CancelAll,
    Liquidate,
    OraclePrice,
    TimeInForce,
    Transfer,
    Withdraw,
)
from tests.stf_env import (
    BTC,
    DOMAIN,
    FEE_OWNER_KEY,
    ORACLE_KEY,
    USD,
    Exchange,
    Trader,
    test_key,
)

MARKETS = tuple(replace(BTC, id=i, symbol=f"M{i}-PERP") for i in range(MAX_POSITIONS))
"""Eight BTC-like markets: ticks of $1 (price = dollars * 10), sizes in satoshi."""

GENESIS = Genesis(
    oracle=address_of(ORACLE_KEY),
    fee_owner=address_of(FEE_OWNER_KEY),
    liquidation_reward_bps=100,
    liquidation_insurance_bps=100,
    markets=MARKETS,
)

PRICE_TICK = 60_000
"""Every market's oracle price, in ticks ($60,000)."""

LOT = BTC.lot_size


@dataclass(frozen=True)
class WorstCase:
    """One step, ready to prove: the exchange it starts from and what it is."""

    name: str
    exchange: Exchange
    step: Step

    def prove(self) -> tuple[Reason, bytes, bytes, bytes]:
        """``(reason, pre_root, witness, post_root)`` of the step on its state."""
        pre_root = self.exchange.root()
        outcome, witness, post_root = prove_step(
            self.exchange.state.store, pre_root, self.step, self.exchange.context
        )
        return outcome.reason, pre_root, witness, post_root


def price(tick: int, market: MarketSpec = BTC) -> int:
    """The price of ``tick``."""
    return tick * market.tick_size


def priced_exchange(domain: Domain = DOMAIN) -> Exchange:
    """The eight-market exchange with an oracle price in every market."""
    exchange = Exchange(GENESIS, domain=domain)
    for market in MARKETS:
        assert exchange.set_price(market.id, price(PRICE_TICK)).applied
    return exchange


def fill(exchange: Exchange, buyer: Trader, seller: Trader, market: int, lots: int = 1) -> None:
    """Give ``buyer`` a long and ``seller`` a short of ``lots`` lots in ``market``."""
    size = lots * LOT
    outcome = exchange.order(buyer, market, True, price(PRICE_TICK), size)
    assert outcome.applied and outcome.order is not None
    outcome = exchange.order(seller, market, False, price(PRICE_TICK), size, tif=TimeInForce.IOC)
    assert outcome.applied and outcome.order is not None and outcome.order.filled == size


def full_positions(exchange: Exchange, trader: Trader, counterparty: Trader) -> None:
    """Give ``trader`` a long position in every market."""
    for market in MARKETS:
        fill(exchange, trader, counterparty, market.id)


def rest_bids(exchange: Exchange, trader: Trader, count: int, first_tick: int) -> None:
    """Rest ``count`` one-lot bids far below the price, each on a level of its own."""
    for i in range(count):
        market = MARKETS[i % len(MARKETS)].id
        outcome = exchange.order(trader, market, True, price(first_tick - 256 * i), LOT)
        assert outcome.applied, outcome


def heaviest_order(domain: Domain = DOMAIN) -> WorstCase:
    """A taker sweeping ``MAX_MATCHES`` asks on as many levels (each in its own book word),
    against makers that each hold the largest account (16 orders, 8 positions), every
    transaction signed in ``domain``."""
    exchange = priced_exchange(domain)
    dealer = exchange.new_trader(deposit=10_000_000 * USD)
    taker = exchange.new_trader(deposit=1_000_000 * USD)
    full_positions(exchange, taker, dealer)
    ticks = [PRICE_TICK + 1 + 256 * i for i in range(MAX_MATCHES)]
    for i, tick in enumerate(ticks):
        maker = exchange.new_trader(deposit=1_000_000 * USD)
        full_positions(exchange, maker, dealer)
        rest_bids(exchange, maker, MAX_OPEN_ORDERS - 1, PRICE_TICK - 1_000 - 16 * i)
        outcome = exchange.order(maker, MARKETS[0].id, False, price(tick), LOT)
        assert outcome.applied, outcome
    message = exchange.order_message(
        taker, MARKETS[0].id, True, price(ticks[-1]), MAX_MATCHES * LOT, tif=TimeInForce.IOC
    )
    return WorstCase(
        "order", exchange, Step(StepKind.TRANSACTION, exchange.sign(taker.key, message))
    )


def heaviest_forced_order() -> WorstCase:
    """The heaviest order, forced through the L1 inbox."""
    case = heaviest_order()
    message = encode_l1_message(ForcedTransaction(case.step.data))
    return WorstCase("forced order", case.exchange, Step(StepKind.L1_MESSAGE, message))


def heaviest_cancel_all(domain: Domain = DOMAIN) -> WorstCase:
    """A CancelAll of 16 orders, each alone on its level, by an account with 8 positions,
    signed in ``domain``."""
    exchange = priced_exchange(domain)
    dealer = exchange.new_trader(deposit=10_000_000 * USD)
    trader = exchange.new_trader(deposit=1_000_000 * USD)
    full_positions(exchange, trader, dealer)
    rest_bids(exchange, trader, MAX_OPEN_ORDERS, PRICE_TICK - 1_000)
    message = CancelAll(trader.id, (1 << 32) - 1, exchange.nonce(trader, None))
    return WorstCase(
        "cancel all", exchange, Step(StepKind.TRANSACTION, exchange.sign(trader.key, message))
    )


def heaviest_cancel() -> WorstCase:
    """A Cancel that empties its level, by the largest account."""
    exchange = priced_exchange()
    dealer = exchange.new_trader(deposit=10_000_000 * USD)
    trader = exchange.new_trader(deposit=1_000_000 * USD)
    full_positions(exchange, trader, dealer)
    rest_bids(exchange, trader, MAX_OPEN_ORDERS - 1, PRICE_TICK - 1_000)
    message = exchange.order_message(trader, MARKETS[0].id, True, price(PRICE_TICK - 5_000), LOT)
    assert exchange.send(trader, message).applied
    cancel = Cancel(trader.id, exchange.order_hash(message), exchange.nonce(trader, None))
    return WorstCase(
        "cancel", exchange, Step(StepKind.TRANSACTION, exchange.sign(trader.key, cancel))
    )


def heaviest_liquidation() -> WorstCase:
    """A liquidation between two accounts of 8 positions each, the target underwater."""
    exchange = priced_exchange()
    dealer = exchange.new_trader(deposit=10_000_000 * USD)
    liquidator = exchange.new_trader(deposit=1_000_000 * USD)
    full_positions(exchange, liquidator, dealer)
    target = exchange.new_trader(deposit=1 * USD)
    for market in MARKETS:
        fill(exchange, target, dealer, market.id, lots=2)
    assert exchange.set_price(MARKETS[0].id, price(PRICE_TICK // 2)).applied
    message = Liquidate(liquidator.id, target.id, MARKETS[0].id, exchange.nonce(liquidator, None))
    return WorstCase(
        "liquidate", exchange, Step(StepKind.TRANSACTION, exchange.sign(liquidator.key, message))
    )


def _account_with_positions() -> tuple[Exchange, Trader, Trader]:
    exchange = priced_exchange()
    dealer = exchange.new_trader(deposit=10_000_000 * USD)
    trader = exchange.new_trader(deposit=1_000_000 * USD)
    full_positions(exchange, trader, dealer)
    rest_bids(exchange, trader, MAX_OPEN_ORDERS, PRICE_TICK - 1_000)
    return exchange, trader, dealer


def heaviest_transfer() -> WorstCase:
    """A transfer from the largest account (free collateral over 8 positions)."""
    exchange, trader, dealer = _account_with_positions()
    message = Transfer(trader.id, dealer.id, 1 * USD, exchange.nonce(trader, None))
    return WorstCase(
        "transfer", exchange, Step(StepKind.TRANSACTION, exchange.sign(trader.key, message))
    )


def heaviest_withdraw() -> WorstCase:
    """A withdrawal from the largest account."""
    exchange, trader, _ = _account_with_positions()
    message = Withdraw(trader.id, trader.address, 1 * USD, exchange.nonce(trader, None))
    return WorstCase(
        "withdraw", exchange, Step(StepKind.TRANSACTION, exchange.sign(trader.key, message))
    )


def heaviest_oracle_price() -> WorstCase:
    """An oracle price that accrues a full funding period."""
    exchange = priced_exchange()
    dealer = exchange.new_trader(deposit=10_000_000 * USD)
    trader = exchange.new_trader(deposit=1_000_000 * USD)
    fill(exchange, trader, dealer, MARKETS[0].id)
    exchange.advance(8 * 3600)
    message = OraclePrice(MARKETS[0].id, price(PRICE_TICK + 10), exchange.timestamp)
    raw = exchange.sign(ORACLE_KEY, message)
    return WorstCase("oracle price", exchange, Step(StepKind.TRANSACTION, raw))


def heaviest_deposit() -> WorstCase:
    """A deposit into the largest account."""
    exchange, trader, _ = _account_with_positions()
    message = encode_l1_message(Deposit(trader.address, trader.id, 1_000 * USD))
    return WorstCase("deposit", exchange, Step(StepKind.L1_MESSAGE, message))


def rejected_order() -> WorstCase:
    """The costliest rejection: an order refused after its account and market are read."""
    exchange, trader, _ = _account_with_positions()
    message = exchange.order_message(trader, MARKETS[0].id, True, price(PRICE_TICK), LOT)
    return WorstCase(
        "rejected order",
        exchange,
        Step(StepKind.TRANSACTION, exchange.sign(test_key(999_999), message)),
    )


BUILDERS: tuple[Callable[[], WorstCase], ...] = (
    heaviest_deposit,
    heaviest_order,
    heaviest_forced_order,
    heaviest_cancel,
    heaviest_cancel_all,
    heaviest_transfer,
    heaviest_withdraw,
    heaviest_liquidation,
    heaviest_oracle_price,
    rejected_order,
)
"""Every worst case, in the order the report lists them."""
