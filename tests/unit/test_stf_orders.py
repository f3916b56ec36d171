"""
Per-rule tests of orders: resting, the book's levels and tick index, matching
(price-time priority, fees, time in force, reduce-only, expiry, self-trade,
margin, the match cap), cancellation (node/protocol/orders.py, book.py).

BTC-PERP (market 0) of the test genesis: tick 10 (prices in $0.1, so ``tick =
dollars``), lot 1,000 satoshi, divisor 1,000 (value = price * size / 1000 in
micro-dollars), initial margin 10%, maker fee 2 bps, taker fee 5 bps.
One BTC at $50,000 is worth 50,000 * 10 * 1e8 / 1000 = 5e10 = $50,000.
"""

import pytest

from node.protocol.book import append_order
from node.protocol.orders import MAX_MATCHES
from node.protocol.records import (
    ASKS,
    BIDS,
    NIL,
    Account,
    Level,
    Position,
    RestingOrder,
    decode_account,
    encode_account,
    encode_order,
    load_word,
)
from node.protocol.state import TABLE_ACCOUNTS, TABLE_ORDERS
from node.protocol.step import (
    Fill,
    OrderEnd,
    OrderResult,
    Reason,
    Removal,
    RemovalReason,
    Step,
    StepKind,
)
from node.protocol.transactions import ALL_MARKETS, Cancel, TimeInForce
from tests.stf_env import USD, Exchange, Trader, btc, sats
from tests.unit.stf_helpers import (
    apply_with_witness,
    assert_conserved,
    assert_rejected,
    best_ask,
    best_bid,
    id_of,
    order_id,
    resting,
    result,
    signed_step,
)

GTC, IOC, FOK, POST_ONLY = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.POST_ONLY
BTC_M, ETH_M = 0, 1


def priced(**prices: int) -> Exchange:
    """A fresh exchange with oracle prices: BTC $50,000 and ETH $3,000 unless given."""
    ex = Exchange()
    assert ex.set_price(BTC_M, prices.get("btc", btc(50_000))).applied
    assert ex.set_price(ETH_M, prices.get("eth", 300_000)).applied
    return ex


def rest(
    ex: Exchange, trader: Trader, is_buy: bool, dollars: int, size: int, **kw: object
) -> bytes:
    """Rest a BTC order that must not match; returns its hash."""
    outcome = ex.order(trader, BTC_M, is_buy, btc(dollars), size, **kw)
    assert outcome.order is not None and outcome.order.end is OrderEnd.RESTING, outcome
    return outcome.order.order_hash


def account(ex: Exchange, trader: Trader) -> Account:
    record = ex.account(trader.id)
    assert record is not None
    return record


# Resting orders, levels and the tick index ------------------------------------------------


def test_gtc_order_rests_at_its_level() -> None:
    """A GTC ask with nothing to match rests: its record, a one-order level, the three
    tick-index words (tick 50,000 = 0x00C350: bit 0x50 of word 0xC3, bit 0xC3 of
    height-1 word 0, bit 0 of the top word), the account's order list; no collateral
    is reserved."""
    ex = priced()
    a = ex.new_trader()
    message = ex.order_message(a, BTC_M, False, btc(50_000), sats(1))
    outcome = ex.send(a, message)
    order_hash = ex.order_hash(message)
    oid = order_id(ex, message)
    assert outcome.reason is Reason.OK
    assert outcome.order == OrderResult(order_hash, 0, 0, sats(1), OrderEnd.RESTING)
    assert outcome.fills == () and outcome.removals == ()
    assert ex.resting(order_hash) == RestingOrder(
        a.id, BTC_M, False, 50_000, sats(1), sats(1), 0, NIL, NIL, order_hash
    )
    assert ex.level(BTC_M, ASKS, 50_000) == Level(oid, oid, sats(1))
    assert ex.level(BTC_M, BIDS, 50_000) is None
    assert load_word(ex.state, BTC_M, ASKS, 0, 0xC3) == 1 << 0x50
    assert load_word(ex.state, BTC_M, ASKS, 1, 0) == 1 << 0xC3
    assert load_word(ex.state, BTC_M, ASKS, 2, 0) == 1
    assert load_word(ex.state, BTC_M, BIDS, 2, 0) == 0
    assert (best_ask(ex, BTC_M), best_bid(ex, BTC_M)) == (50_000, 0)
    assert account(ex, a) == Account(a.address, 100_000 * USD, 0, 1, [oid], [])


def test_orders_at_one_price_queue_at_the_level_tail() -> None:
    """A second and third order at the same price join the tail: head stays the first,
    the queue is doubly linked, the level size is the sum."""
    ex = priced()
    a, b = ex.new_trader(), ex.new_trader()
    h1 = rest(ex, a, True, 49_000, sats(0.1))
    h2 = rest(ex, b, True, 49_000, sats(0.2))
    h3 = rest(ex, a, True, 49_000, sats(0.3))
    i1, i2, i3 = id_of(h1), id_of(h2), id_of(h3)
    assert ex.level(BTC_M, BIDS, 49_000) == Level(i1, i3, sats(0.6))
    assert ex.resting(h1) == RestingOrder(
        a.id, 0, True, 49_000, sats(0.1), sats(0.1), 0, NIL, i2, h1
    )
    assert ex.resting(h2) == RestingOrder(
        b.id, 0, True, 49_000, sats(0.2), sats(0.2), 0, i1, i3, h2
    )
    assert ex.resting(h3) == RestingOrder(
        a.id, 0, True, 49_000, sats(0.3), sats(0.3), 0, i2, NIL, h3
    )
    assert account(ex, a).orders == [i1, i3]
    assert account(ex, b).orders == [i2]


def test_best_bid_and_ask_follow_the_book() -> None:
    """The tick index gives the lowest ask and the highest bid, across index words and
    height-1 words (tick 70,000 = 0x011170 lies under another height-1 word than 50,000)."""
    ex = priced()
    a = ex.new_trader()
    h_ask = rest(ex, a, False, 50_100, sats(0.1))
    rest(ex, a, False, 70_000, sats(0.1))
    h_ask_best = rest(ex, a, False, 50_000, sats(0.1))
    rest(ex, a, True, 49_000, sats(0.1))
    h_bid_best = rest(ex, a, True, 49_900, sats(0.1))
    assert (best_ask(ex, BTC_M), best_bid(ex, BTC_M)) == (50_000, 49_900)
    assert load_word(ex.state, BTC_M, ASKS, 2, 0) == 0b11
    assert ex.cancel(a, h_ask_best).applied
    assert best_ask(ex, BTC_M) == 50_100
    assert ex.cancel(a, h_ask).applied
    assert best_ask(ex, BTC_M) == 70_000
    assert ex.cancel(a, h_bid_best).applied
    assert best_bid(ex, BTC_M) == 49_000
    assert (best_ask(ex, ETH_M), best_bid(ex, ETH_M)) == (0, 0)


# Matching ---------------------------------------------------------------------------------


def test_fifo_within_a_level() -> None:
    """Three asks at one price fill oldest first: a 0.6 BTC buy takes 0.4 from the first
    (removed) and 0.2 from the second; the level keeps the second (now head) and third."""
    ex = priced()
    m1, m2, m3, t = ex.new_trader(), ex.new_trader(), ex.new_trader(), ex.new_trader()
    h1 = rest(ex, m1, False, 50_000, sats(0.4))
    h2 = rest(ex, m2, False, 50_000, sats(0.4))
    h3 = rest(ex, m3, False, 50_000, sats(0.4))
    outcome = ex.order(t, BTC_M, True, btc(50_000), sats(0.6))
    assert [(f.maker_account, f.maker_order, f.size) for f in outcome.fills] == [
        (m1.id, h1, sats(0.4)),
        (m2.id, h2, sats(0.2)),
    ]
    assert outcome.order == OrderResult(
        result(outcome).order_hash,
        sats(0.6),
        500_000 * sats(0.6),
        0,
        OrderEnd.FILLED,
    )
    assert ex.resting(h1) is None
    assert ex.resting(h2) == RestingOrder(
        m2.id, 0, False, 50_000, sats(0.4), sats(0.2), 0, NIL, id_of(h3), h2
    )
    assert ex.level(BTC_M, ASKS, 50_000) == Level(id_of(h2), id_of(h3), sats(0.6))
    assert account(ex, m1).orders == []
    assert account(ex, m1).positions == [Position(0, -sats(0.4), 0)]
    assert account(ex, t).positions == [Position(0, sats(0.6), 0)]
    assert_conserved(ex)


def test_price_priority_beats_time_priority_and_fills_at_the_maker_price() -> None:
    """An older ask at $50,100 and a newer one at $50,000: a buy limited at $50,200 fills
    the better price first, each fill at its maker's price, never at the taker's limit.
    Taker pays 0.3 BTC * 50,000 = $15,000 + $7.50 fee, then 0.2 * 50,100 = $10,020 + $5.01."""
    ex = priced()
    old, new, t = ex.new_trader(), ex.new_trader(), ex.new_trader()
    h_old = rest(ex, old, False, 50_100, sats(0.3))
    h_new = rest(ex, new, False, 50_000, sats(0.3))
    outcome = ex.order(t, BTC_M, True, btc(50_200), sats(0.5), tif=IOC)
    assert outcome.fills == (
        Fill(new.id, h_new, 500_000, sats(0.3), 3_000_000, 7_500_000),
        Fill(old.id, h_old, 501_000, sats(0.2), 2_004_000, 5_010_000),
    )
    assert ex.collateral(t.id) == (100_000 - 15_000 - 10_020) * USD - 7_500_000 - 5_010_000
    assert ex.collateral(new.id) == (100_000 + 15_000) * USD - 3_000_000
    assert ex.collateral(old.id) == (100_000 + 10_020) * USD - 2_004_000
    assert ex.collateral(0) == 3_000_000 + 7_500_000 + 2_004_000 + 5_010_000
    assert ex.market(BTC_M).last_price == 501_000
    assert best_ask(ex, BTC_M) == 50_100
    assert resting(ex, h_old).remaining == sats(0.1)
    assert_conserved(ex)


def test_partial_fill_rests_the_gtc_remainder() -> None:
    """A GTC buy of 1 BTC against a 0.4 BTC ask fills 0.4 and rests 0.6 as a bid at its
    own price; the ask side is empty."""
    ex = priced()
    m, t = ex.new_trader(), ex.new_trader()
    rest(ex, m, False, 50_000, sats(0.4))
    message = ex.order_message(t, BTC_M, True, btc(50_000), sats(1))
    outcome = ex.send(t, message)
    h = ex.order_hash(message)
    assert outcome.order == OrderResult(
        h, sats(0.4), 500_000 * sats(0.4), sats(0.6), OrderEnd.RESTING
    )
    assert ex.resting(h) == RestingOrder(t.id, 0, True, 50_000, sats(1), sats(0.6), 0, NIL, NIL, h)
    assert ex.level(BTC_M, BIDS, 50_000) == Level(id_of(h), id_of(h), sats(0.6))
    assert ex.level(BTC_M, ASKS, 50_000) is None
    assert (best_ask(ex, BTC_M), best_bid(ex, BTC_M)) == (0, 50_000)
    assert account(ex, t).orders == [id_of(h)]
    assert account(ex, t).positions == [Position(0, sats(0.4), 0)]


def test_fees_go_to_account_zero_rounded_up() -> None:
    """One lot (1,000 sat) at $50,001: value 500,010 * 1,000 / 1,000 = 500,010 micro-$;
    maker fee ceil(500,010 * 2 / 10,000) = ceil(100.002) = 101, taker fee
    ceil(500,010 * 5 / 10,000) = ceil(250.005) = 251; account 0 receives 352."""
    ex = priced()
    m, t = ex.new_trader(), ex.new_trader()
    h = rest(ex, m, False, 50_001, 1_000)
    outcome = ex.order(t, BTC_M, True, btc(50_001), 1_000)
    assert outcome.fills == (Fill(m.id, h, 500_010, 1_000, 101, 251),)
    assert ex.collateral(0) == 352
    assert account(ex, m) == Account(
        m.address, 100_000 * USD + 500_010 - 101, 0, 1, [], [Position(0, -1_000, 0)]
    )
    assert account(ex, t) == Account(
        t.address, 100_000 * USD - 500_010 - 251, 0, 1, [], [Position(0, 1_000, 0)]
    )
    assert ex.market(BTC_M).last_price == 500_010
    assert_conserved(ex)


def test_zero_maker_fee_market_pays_only_the_taker_fee() -> None:
    """ETH-PERP (divisor 100, maker 0 bps, taker 4 bps): 1 ETH (1e6) at $3,000.01
    (300,001) is worth 300,001 * 1e6 / 100 = 3,000,010,000; the taker pays
    ceil(3,000,010,000 * 4 / 10,000) = 1,200,004, the maker nothing."""
    ex = priced()
    m, t = ex.new_trader(), ex.new_trader()
    assert result(ex.order(m, ETH_M, True, 300_001, 1_000_000)).end is OrderEnd.RESTING
    outcome = ex.order(t, ETH_M, False, 300_001, 1_000_000, tif=IOC)
    assert [(f.maker_fee, f.taker_fee) for f in outcome.fills] == [(0, 1_200_004)]
    assert ex.collateral(0) == 1_200_004
    assert ex.collateral(m.id) == 100_000 * USD - 3_000_010_000
    assert ex.collateral(t.id) == 100_000 * USD + 3_000_010_000 - 1_200_004


def test_ioc_remainder_is_cancelled() -> None:
    """An IOC buy of 1 BTC against 0.4 BTC fills 0.4; the rest is dropped: no bid, no
    order in the account, end NO_LIQUIDITY."""
    ex = priced()
    m, t = ex.new_trader(), ex.new_trader()
    rest(ex, m, False, 50_000, sats(0.4))
    outcome = ex.order(t, BTC_M, True, btc(50_500), sats(1), tif=IOC)
    assert outcome.order is not None
    assert (outcome.order.filled, outcome.order.resting, outcome.order.end) == (
        sats(0.4),
        0,
        OrderEnd.NO_LIQUIDITY,
    )
    assert (best_ask(ex, BTC_M), best_bid(ex, BTC_M)) == (0, 0)
    assert account(ex, t).orders == []


def test_fok_fills_completely_across_levels() -> None:
    """A FOK buy of 1 BTC fills 0.5 at $50,000 and 0.5 at $50,010: FILLED, notional the
    sum of price * size."""
    ex = priced()
    m = ex.new_trader()
    t = ex.new_trader()
    rest(ex, m, False, 50_000, sats(0.5))
    rest(ex, m, False, 50_010, sats(0.5))
    outcome = ex.order(t, BTC_M, True, btc(50_010), sats(1), tif=FOK)
    assert outcome.order is not None
    assert outcome.order.end is OrderEnd.FILLED
    assert outcome.order.filled == sats(1)
    assert outcome.order.notional == 500_000 * sats(0.5) + 500_100 * sats(0.5)
    assert account(ex, t).positions == [Position(0, sats(1), 0)]
    assert best_ask(ex, BTC_M) == 0


def test_market_orders_sweep_levels_at_maker_prices() -> None:
    """Price 0 (IOC) is a market order: a buy sweeps every ask level, a sell every bid,
    each fill at the maker's price."""
    ex = priced()
    m, t = ex.new_trader(), ex.new_trader()
    rest(ex, m, False, 50_000, sats(0.3))
    rest(ex, m, False, 60_000, sats(0.3))
    buy = ex.order(t, BTC_M, True, 0, sats(0.5), tif=IOC)
    assert [(f.price, f.size) for f in buy.fills] == [(500_000, sats(0.3)), (600_000, sats(0.2))]
    assert result(buy).end is OrderEnd.FILLED
    rest(ex, m, True, 40_000, sats(0.1))
    rest(ex, m, True, 45_000, sats(0.1))
    sell = ex.order(t, BTC_M, False, 0, sats(0.3), tif=IOC)
    assert [(f.price, f.size) for f in sell.fills] == [(450_000, sats(0.1)), (400_000, sats(0.1))]
    assert result(sell).end is OrderEnd.NO_LIQUIDITY
    assert account(ex, t).positions == [Position(0, sats(0.3), 0)]


def test_post_only_rests_when_it_does_not_cross() -> None:
    """A post-only bid below the best ask rests like a GTC order."""
    ex = priced()
    m, t = ex.new_trader(), ex.new_trader()
    rest(ex, m, False, 50_000, sats(1))
    message = ex.order_message(t, BTC_M, True, btc(49_999), sats(1), tif=POST_ONLY)
    outcome = ex.send(t, message)
    h = ex.order_hash(message)
    assert outcome.order == OrderResult(h, 0, 0, sats(1), OrderEnd.RESTING)
    assert ex.level(BTC_M, BIDS, 49_999) == Level(id_of(h), id_of(h), sats(1))
    assert best_bid(ex, BTC_M) == 49_999


def test_reduce_only_clamps_to_the_position_and_ends_reduced() -> None:
    """A reduce-only IOC sell of 1 BTC by a 0.3 BTC long, against 1 BTC of bids, sells
    exactly 0.3, closes the position and ends REDUCED."""
    ex = priced()
    m, t = ex.new_trader(), ex.new_trader()
    rest(ex, m, False, 50_000, sats(0.3))
    assert ex.order(t, BTC_M, True, btc(50_000), sats(0.3), tif=IOC).applied
    h_bid = rest(ex, m, True, 49_000, sats(1))
    outcome = ex.order(t, BTC_M, False, btc(48_000), sats(1), tif=IOC, reduce_only=True)
    assert outcome.order is not None
    assert (outcome.order.filled, outcome.order.end) == (sats(0.3), OrderEnd.REDUCED)
    assert [(f.price, f.size) for f in outcome.fills] == [(490_000, sats(0.3))]
    assert account(ex, t).positions == []
    assert resting(ex, h_bid).remaining == sats(0.7)
    assert_conserved(ex)


def test_resting_maker_is_removed_once_its_expiry_is_reached() -> None:
    """An ask expiring at t+60 fills before then; at t+60 (expiry <= batch time) the next
    taker that reaches it removes it (EXPIRED) and moves on to the next level."""
    ex = priced()
    m, other, t = ex.new_trader(), ex.new_trader(), ex.new_trader()
    expiry = ex.timestamp + 60
    h_exp = rest(ex, m, False, 50_000, sats(0.2), expiry=expiry)
    assert resting(ex, h_exp).expiry == expiry
    ex.advance(59)
    first = ex.order(t, BTC_M, True, btc(50_000), sats(0.1), tif=IOC)
    assert [(f.maker_order, f.size) for f in first.fills] == [(h_exp, sats(0.1))]
    h_next = rest(ex, other, False, 50_100, sats(0.2))
    ex.advance(1)
    outcome = ex.order(t, BTC_M, True, btc(50_100), sats(0.1), tif=IOC)
    assert outcome.removals == (Removal(m.id, h_exp, RemovalReason.EXPIRED),)
    assert [(f.maker_order, f.price, f.size) for f in outcome.fills] == [
        (h_next, 501_000, sats(0.1))
    ]
    assert ex.resting(h_exp) is None
    assert ex.level(BTC_M, ASKS, 50_000) is None
    assert account(ex, m).orders == []
    assert account(ex, m).positions == [Position(0, -sats(0.1), 0)]
    assert best_ask(ex, BTC_M) == 50_100


def test_self_trade_removes_the_maker() -> None:
    """A taker reaching its own resting order removes it (SELF_TRADE, no fill) and goes
    on matching other accounts' orders."""
    ex = priced()
    a, b = ex.new_trader(), ex.new_trader()
    h_own = rest(ex, a, False, 50_000, sats(0.2))
    h_b = rest(ex, b, False, 50_100, sats(0.2))
    outcome = ex.order(a, BTC_M, True, btc(50_100), sats(0.2), tif=IOC)
    assert outcome.removals == (Removal(a.id, h_own, RemovalReason.SELF_TRADE),)
    assert [(f.maker_order, f.size) for f in outcome.fills] == [(h_b, sats(0.2))]
    assert ex.resting(h_own) is None
    assert account(ex, a).orders == []
    assert account(ex, a).positions == [Position(0, sats(0.2), 0)]


def test_maker_margin_failure_cancels_the_maker_and_matching_moves_on() -> None:
    """A $1,000 account resting a 1 BTC ask cannot carry it: filling it would leave equity
    1,000 - 10 (fee) = $990 below the $5,000 initial margin. The taker removes it
    (MAKER_MARGIN, the maker's account untouched) and fills the next ask instead."""
    ex = priced()
    poor = ex.new_trader(deposit=1_000 * USD)
    m, t = ex.new_trader(), ex.new_trader()
    h_poor = rest(ex, poor, False, 50_000, sats(1))
    h_m = rest(ex, m, False, 50_100, sats(1))
    outcome = ex.order(t, BTC_M, True, btc(50_100), sats(1))
    assert outcome.removals == (Removal(poor.id, h_poor, RemovalReason.MAKER_MARGIN),)
    assert outcome.fills == (Fill(m.id, h_m, 501_000, sats(1), 10_020_000, 25_050_000),)
    assert result(outcome).end is OrderEnd.FILLED
    assert account(ex, poor) == Account(poor.address, 1_000 * USD, 0, 1, [], [])
    assert ex.collateral(t.id) == 100_000 * USD - 50_100 * USD - 25_050_000
    assert_conserved(ex)


def test_taker_margin_stops_matching() -> None:
    """A $1,000 taker buying 1 BTC at $50,000 fills the first 0.1 BTC (equity 1,000 - 2.5 =
    $997.50 >= $500 margin) but not the next 0.9 (equity ~$975 < $5,000): matching stops
    with TAKER_MARGIN and the GTC remainder does not rest; the second maker keeps its order."""
    ex = priced()
    m1, m2 = ex.new_trader(), ex.new_trader()
    t = ex.new_trader(deposit=1_000 * USD)
    rest(ex, m1, False, 50_000, sats(0.1))
    h2 = rest(ex, m2, False, 50_000, sats(1))
    outcome = ex.order(t, BTC_M, True, btc(50_000), sats(1))
    assert outcome.reason is Reason.OK
    assert outcome.order is not None
    assert (outcome.order.filled, outcome.order.resting, outcome.order.end) == (
        sats(0.1),
        0,
        OrderEnd.TAKER_MARGIN,
    )
    assert outcome.removals == ()
    assert ex.collateral(t.id) == 1_000 * USD - 5_000 * USD - 2_500_000
    assert account(ex, t).orders == []
    assert best_bid(ex, BTC_M) == 0
    assert resting(ex, h2).remaining == sats(1)
    assert ex.level(BTC_M, ASKS, 50_000) == Level(id_of(h2), id_of(h2), sats(1))
    assert_conserved(ex)


def _one_lot_asks(ex: Exchange, count: int) -> list[bytes]:
    """``count`` one-lot asks at $50,000 (16 from one account, the rest from another)."""
    first, second = ex.new_trader(), ex.new_trader()
    return [rest(ex, first if i < 16 else second, False, 50_000, 1_000) for i in range(count)]


def test_match_limit_cancels_the_remainder_while_the_book_still_crosses() -> None:
    """With MAX_MATCHES + 1 one-lot asks, a GTC buy of MAX_MATCHES + 4 lots visits
    MAX_MATCHES makers, stops with MATCH_LIMIT and, as the book still crosses, its 4-lot
    remainder is cancelled, not rested."""
    ex = priced()
    hashes = _one_lot_asks(ex, MAX_MATCHES + 1)
    t = ex.new_trader()
    outcome = ex.order(t, BTC_M, True, btc(50_000), (MAX_MATCHES + 4) * 1_000)
    assert outcome.order is not None
    assert (outcome.order.filled, outcome.order.resting, outcome.order.end) == (
        MAX_MATCHES * 1_000,
        0,
        OrderEnd.MATCH_LIMIT,
    )
    assert [f.maker_order for f in outcome.fills] == hashes[:MAX_MATCHES]
    assert best_bid(ex, BTC_M) == 0
    assert account(ex, t).orders == []
    last = id_of(hashes[MAX_MATCHES])
    assert ex.level(BTC_M, ASKS, 50_000) == Level(last, last, 1_000)
    # fills of value 500,000 each: maker fee 100 and taker fee 250
    assert ex.collateral(0) == MAX_MATCHES * 350
    assert ex.collateral(t.id) == 100_000 * USD - MAX_MATCHES * 500_250


def test_match_limit_is_not_hit_when_the_book_runs_out_first() -> None:
    """With exactly MAX_MATCHES one-lot asks, the same buy fills them all and then finds no
    liquidity: its 4-lot remainder rests."""
    ex = priced()
    _one_lot_asks(ex, MAX_MATCHES)
    t = ex.new_trader()
    outcome = ex.order(t, BTC_M, True, btc(50_000), (MAX_MATCHES + 4) * 1_000)
    assert outcome.order is not None
    assert (outcome.order.filled, outcome.order.resting, outcome.order.end) == (
        MAX_MATCHES * 1_000,
        4_000,
        OrderEnd.RESTING,
    )
    assert best_bid(ex, BTC_M) == 50_000


def test_removed_makers_count_toward_the_match_limit() -> None:
    """MAX_MATCHES expired asks ahead of a live one use up the visits: the taker removes
    them all (EXPIRED), fills nothing and ends MATCH_LIMIT; the live ask is untouched."""
    ex = priced()
    stale, live, t = ex.new_trader(), ex.new_trader(), ex.new_trader()
    expiry = ex.timestamp + 10
    stale_hashes = [
        rest(ex, stale, False, 50_000, 1_000, expiry=expiry) for _ in range(MAX_MATCHES)
    ]
    h_live = rest(ex, live, False, 50_000, 1_000)
    ex.advance(10)
    outcome = ex.order(t, BTC_M, True, btc(50_000), 1_000, tif=IOC)
    assert outcome.removals == tuple(
        Removal(stale.id, h, RemovalReason.EXPIRED) for h in stale_hashes
    )
    assert outcome.fills == ()
    assert result(outcome).end is OrderEnd.MATCH_LIMIT
    assert account(ex, stale).orders == []
    assert ex.level(BTC_M, ASKS, 50_000) == Level(id_of(h_live), id_of(h_live), 1_000)


# Cancellation -----------------------------------------------------------------------------


def test_cancel_unlinks_an_order_from_the_middle_of_its_level() -> None:
    """Cancelling the middle of three orders relinks its neighbours and shrinks the level."""
    ex = priced()
    a = ex.new_trader()
    h1 = rest(ex, a, False, 50_000, sats(0.1))
    h2 = rest(ex, a, False, 50_000, sats(0.2))
    h3 = rest(ex, a, False, 50_000, sats(0.3))
    outcome = ex.cancel(a, h2)
    assert outcome.reason is Reason.OK
    assert outcome.removals == (Removal(a.id, h2, RemovalReason.CANCELLED),)
    assert ex.resting(h2) is None
    assert ex.state.get(TABLE_ORDERS.id, id_of(h2)) == b""
    assert resting(ex, h1).next == id_of(h3)
    assert resting(ex, h3).prev == id_of(h1)
    assert ex.level(BTC_M, ASKS, 50_000) == Level(id_of(h1), id_of(h3), sats(0.4))
    assert account(ex, a).orders == [id_of(h1), id_of(h3)]


def test_cancel_of_the_last_order_clears_level_and_tick() -> None:
    """Cancelling a level's only order deletes the level and clears its tick-index bits."""
    ex = priced()
    a = ex.new_trader()
    h = rest(ex, a, True, 49_000, sats(0.1))
    step = signed_step(ex, a, Cancel(a.id, h, a.next_nonce))
    outcome = apply_with_witness(ex, step)
    assert outcome.removals == (Removal(a.id, h, RemovalReason.CANCELLED),)
    assert ex.level(BTC_M, BIDS, 49_000) is None
    for height, word in ((0, 49_000 >> 8), (1, 0), (2, 0)):
        assert load_word(ex.state, BTC_M, BIDS, height, word) == 0
    assert best_bid(ex, BTC_M) == 0
    assert account(ex, a).orders == []


def test_cancel_all_in_one_market_and_in_all_markets() -> None:
    """CancelAll(BTC) removes only the account's BTC orders, oldest first; CancelAll with
    ALL_MARKETS (2**32 - 1) removes the rest; other accounts' orders stay."""
    assert ALL_MARKETS == 2**32 - 1
    ex = priced()
    a, b = ex.new_trader(), ex.new_trader()
    h1 = rest(ex, a, False, 50_000, sats(0.1))
    eth = ex.order(a, ETH_M, True, 290_000, 1_000_000).order
    assert eth is not None and eth.end is OrderEnd.RESTING
    h2 = rest(ex, a, True, 49_000, sats(0.1))
    hb = rest(ex, b, False, 50_000, sats(0.1))
    outcome = ex.cancel_all(a, BTC_M)
    assert outcome.reason is Reason.OK
    assert outcome.removals == (
        Removal(a.id, h1, RemovalReason.CANCELLED),
        Removal(a.id, h2, RemovalReason.CANCELLED),
    )
    assert account(ex, a).orders == [id_of(eth.order_hash)]
    assert ex.level(BTC_M, ASKS, 50_000) == Level(id_of(hb), id_of(hb), sats(0.1))
    assert best_bid(ex, BTC_M) == 0
    outcome = ex.cancel_all(a, ALL_MARKETS)
    assert outcome.removals == (Removal(a.id, eth.order_hash, RemovalReason.CANCELLED),)
    assert account(ex, a).orders == []
    assert best_bid(ex, ETH_M) == 0
    assert ex.resting(hb) is not None
    assert ex.cancel_all(a, ALL_MARKETS).removals == ()


def _occupy(ex: Exchange, oid: int, owner: Trader, tick: int) -> bytes:
    """
    Put a resting ask of ``owner`` at order id ``oid`` by writing the state directly,
    as the STF would have if one of ``owner``'s orders had hashed to that id (a
    collision that takes ~2**20 signatures to find by brute force). Returns its hash.
    """
    fake_hash = b"\x5a" * 32
    append_order(
        ex.state,
        oid,
        RestingOrder(owner.id, BTC_M, False, tick, 1_000, 1_000, 0, NIL, NIL, fake_hash),
    )
    record = decode_account(ex.state.get(TABLE_ACCOUNTS.id, owner.id))
    record.orders.append(oid)
    ex.state.set(TABLE_ACCOUNTS.id, owner.id, encode_account(record))
    ex.root()
    return fake_hash


def test_order_id_is_reusable_after_its_occupant_is_cancelled() -> None:
    """An order whose id is held by another resting order is refused (ORDER_ID_TAKEN,
    nonce not consumed); once the occupant is cancelled, the very same signed
    transaction is accepted and rests at that id."""
    ex = priced()
    a, b = ex.new_trader(), ex.new_trader()
    message = ex.order_message(a, BTC_M, False, btc(50_000), sats(0.1))
    oid = order_id(ex, message)
    step = signed_step(ex, a, message)
    fake_hash = _occupy(ex, oid, b, 60_000)
    assert_rejected(ex, Reason.ORDER_ID_TAKEN, lambda: ex.apply(step))
    assert ex.cancel_all(b, BTC_M).removals == (Removal(b.id, fake_hash, RemovalReason.CANCELLED),)
    assert ex.state.get(TABLE_ORDERS.id, oid) == b""
    outcome = ex.apply(step)
    assert outcome.order is not None and outcome.order.end is OrderEnd.RESTING
    assert resting(ex, ex.order_hash(message)).account == a.id
    assert ex.level(BTC_M, ASKS, 50_000) == Level(oid, oid, sats(0.1))


# Witness replay ---------------------------------------------------------------------------


def test_order_with_fills_replays_from_its_witness() -> None:
    """An order that fills two makers (one removed, one reduced) and rests its remainder
    replays on the one-step executor's view to the same post root and outcome."""
    ex = priced()
    m1, m2, t = ex.new_trader(), ex.new_trader(), ex.new_trader()
    rest(ex, m1, False, 50_000, sats(0.1))
    rest(ex, m2, False, 50_010, sats(0.5))
    step = signed_step(ex, t, ex.order_message(t, BTC_M, True, btc(50_010), sats(0.3)))
    outcome = apply_with_witness(ex, step)
    assert [(f.maker_account, f.size) for f in outcome.fills] == [
        (m1.id, sats(0.1)),
        (m2.id, sats(0.2)),
    ]
    assert result(outcome).end is OrderEnd.FILLED


def test_rejected_order_replays_from_its_witness() -> None:
    """A rejected step (post-only that would cross) also replays: its post root is its
    pre root."""
    ex = priced()
    m, t = ex.new_trader(), ex.new_trader()
    rest(ex, m, False, 50_000, sats(0.1))
    before = ex.root()
    step = signed_step(ex, t, ex.order_message(t, BTC_M, True, btc(50_000), 1_000, tif=POST_ONLY))
    assert apply_with_witness(ex, step).reason is Reason.WOULD_CROSS
    assert ex.root() == before


# Rejections -------------------------------------------------------------------------------


def test_invalid_unknown_market() -> None:
    """An order in a market id that genesis did not create: UNKNOWN_MARKET."""
    ex = priced()
    a = ex.new_trader()
    assert_rejected(ex, Reason.UNKNOWN_MARKET, lambda: ex.order(a, 2, True, 10, 100))
    assert_rejected(ex, Reason.UNKNOWN_MARKET, lambda: ex.order(a, 2**32 - 1, True, 10, 100))


def test_invalid_no_oracle_price() -> None:
    """A market without an oracle price does not trade yet: NO_ORACLE_PRICE."""
    ex = Exchange()
    a = ex.new_trader()
    assert ex.set_price(BTC_M, btc(50_000)).applied
    assert_rejected(ex, Reason.NO_ORACLE_PRICE, lambda: ex.order(a, ETH_M, True, 300_000, 100))


@pytest.mark.parametrize(
    ("price", "tif"),
    [
        (0, GTC),  # a market order that would rest
        (0, POST_ONLY),
        (500_005, GTC),  # off the $1 tick grid
        (500_005, IOC),
        (10 << 24, GTC),  # tick 2**24: beyond the highest tick
        (2**64 - 1, IOC),
    ],
)
def test_invalid_price(price: int, tif: TimeInForce) -> None:
    """Price 0 for a resting order, off the tick grid, or at tick >= 2**24: INVALID_PRICE."""
    ex = priced()
    a = ex.new_trader()
    assert_rejected(
        ex, Reason.INVALID_PRICE, lambda: ex.order(a, BTC_M, True, price, 1_000, tif=tif)
    )


def test_highest_tick_is_a_valid_price() -> None:
    """Tick 2**24 - 1 is still on the grid: an ask there rests."""
    ex = priced()
    a = ex.new_trader()
    rest(ex, a, False, 2**24 - 1, 1_000)
    assert best_ask(ex, BTC_M) == 2**24 - 1


@pytest.mark.parametrize("size", [0, 1, 999, 1_500])
def test_invalid_size(size: int) -> None:
    """A size of 0 or not a multiple of the 1,000-sat lot: INVALID_SIZE."""
    ex = priced()
    a = ex.new_trader()
    assert_rejected(ex, Reason.INVALID_SIZE, lambda: ex.order(a, BTC_M, True, btc(49_000), size))


@pytest.mark.parametrize(
    ("tif", "reduce_only"), [(4, False), (255, False), (GTC, True), (POST_ONLY, True)]
)
def test_invalid_time_in_force(tif: int, reduce_only: bool) -> None:
    """An unknown time in force, or reduce-only with GTC / post-only: INVALID_TIME_IN_FORCE."""
    ex = priced()
    m, a = ex.new_trader(), ex.new_trader()
    rest(ex, m, False, 50_000, sats(0.1))
    assert ex.order(a, BTC_M, True, btc(50_000), sats(0.1), tif=IOC).applied  # a long to reduce
    assert_rejected(
        ex,
        Reason.INVALID_TIME_IN_FORCE,
        lambda: ex.order(a, BTC_M, False, btc(40_000), 1_000, tif=tif, reduce_only=reduce_only),
    )


@pytest.mark.parametrize("offset", [0, -1, -1_000_000])
def test_invalid_expired(offset: int) -> None:
    """An expiry not after the batch time: EXPIRED (expiry == batch time included)."""
    ex = priced()
    a = ex.new_trader()
    expiry = ex.timestamp + offset
    assert_rejected(
        ex, Reason.EXPIRED, lambda: ex.order(a, BTC_M, True, btc(49_000), 1_000, expiry=expiry)
    )
    assert ex.order(a, BTC_M, True, btc(49_000), 1_000, expiry=ex.timestamp + 1).applied


def test_invalid_order_id_taken() -> None:
    """
    ORDER_ID_TAKEN: order ids are ``hash % (2**40 - 1) + 1``, so two real orders collide
    only by brute force. The pre-state is built instead: a resting-order record of
    another account is written at the new order's id directly into the state and
    committed; the order (GTC, or post-only) is then refused.
    """
    ex = priced()
    a, b = ex.new_trader(), ex.new_trader()
    message = ex.order_message(a, BTC_M, False, btc(50_000), sats(0.1))
    oid = order_id(ex, message)
    occupant = RestingOrder(b.id, BTC_M, True, 1, 1_000, 1_000, 0, NIL, NIL, b"\x77" * 32)
    ex.state.set(TABLE_ORDERS.id, oid, encode_order(occupant))
    ex.root()
    assert_rejected(ex, Reason.ORDER_ID_TAKEN, lambda: ex.send(a, message))
    post_only = ex.order_message(a, BTC_M, False, btc(50_000), sats(0.1), tif=POST_ONLY)
    ex.state.set(TABLE_ORDERS.id, order_id(ex, post_only), encode_order(occupant))
    ex.root()
    assert_rejected(ex, Reason.ORDER_ID_TAKEN, lambda: ex.send(a, post_only))
    # An IOC order never rests, so its id is not checked.
    ioc = ex.order_message(a, BTC_M, False, btc(50_000), sats(0.1), tif=IOC)
    ex.state.set(TABLE_ORDERS.id, order_id(ex, ioc), encode_order(occupant))
    ex.root()
    assert ex.send(a, ioc).reason is Reason.OK


def test_invalid_too_many_orders() -> None:
    """With 16 resting orders a 17th GTC or post-only order is TOO_MANY_ORDERS; an IOC
    order, which never rests, is still accepted."""
    ex = priced()
    a, m = ex.new_trader(), ex.new_trader()
    for i in range(16):
        rest(ex, a, True, 40_000 + i, 1_000)
    assert len(account(ex, a).orders) == 16
    assert_rejected(
        ex, Reason.TOO_MANY_ORDERS, lambda: ex.order(a, BTC_M, True, btc(39_000), 1_000)
    )
    assert_rejected(
        ex,
        Reason.TOO_MANY_ORDERS,
        lambda: ex.order(a, ETH_M, True, 200_000, 100, tif=POST_ONLY),
    )
    rest(ex, m, False, 50_000, 1_000)
    assert result(ex.order(a, BTC_M, True, btc(50_000), 1_000, tif=IOC)).filled == 1_000


def test_invalid_would_cross() -> None:
    """A post-only bid at or above the best ask would match: WOULD_CROSS."""
    ex = priced()
    m, a = ex.new_trader(), ex.new_trader()
    rest(ex, m, False, 50_000, sats(0.1))
    assert_rejected(
        ex, Reason.WOULD_CROSS, lambda: ex.order(a, BTC_M, True, btc(50_000), 1_000, tif=POST_ONLY)
    )
    assert_rejected(
        ex, Reason.WOULD_CROSS, lambda: ex.order(a, BTC_M, True, btc(60_000), 1_000, tif=POST_ONLY)
    )


def test_invalid_nothing_to_reduce() -> None:
    """Reduce-only without a position, or on the side that would grow it: NOTHING_TO_REDUCE."""
    ex = priced()
    m, a = ex.new_trader(), ex.new_trader()
    rest(ex, m, False, 50_000, sats(1))
    assert_rejected(
        ex,
        Reason.NOTHING_TO_REDUCE,
        lambda: ex.order(a, BTC_M, False, 0, 1_000, tif=IOC, reduce_only=True),
    )
    assert ex.order(a, BTC_M, True, btc(50_000), sats(0.1), tif=IOC).applied  # now long
    assert_rejected(
        ex,
        Reason.NOTHING_TO_REDUCE,
        lambda: ex.order(a, BTC_M, True, 0, 1_000, tif=IOC, reduce_only=True),
    )


def test_invalid_not_filled() -> None:
    """A FOK buy of 1 BTC against 0.5 BTC of asks within its price is NOT_FILLED: no
    fill happens at all (the half it could have had stays on the book)."""
    ex = priced()
    m, t = ex.new_trader(), ex.new_trader()
    h = rest(ex, m, False, 50_000, sats(0.5))
    rest(ex, m, False, 51_000, sats(1))
    assert_rejected(
        ex, Reason.NOT_FILLED, lambda: ex.order(t, BTC_M, True, btc(50_500), sats(1), tif=FOK)
    )
    assert resting(ex, h).remaining == sats(0.5)


def test_invalid_order_not_found() -> None:
    """Cancelling a hash that is not resting, or another account's order: ORDER_NOT_FOUND."""
    ex = priced()
    a, b = ex.new_trader(), ex.new_trader()
    h = rest(ex, a, False, 50_000, sats(0.1))
    assert_rejected(ex, Reason.ORDER_NOT_FOUND, lambda: ex.cancel(a, b"\x01" * 32))
    assert_rejected(ex, Reason.ORDER_NOT_FOUND, lambda: ex.cancel(b, h))
    assert ex.cancel(a, h).applied
    assert_rejected(ex, Reason.ORDER_NOT_FOUND, lambda: ex.cancel(a, h))


def test_filled_order_cannot_be_cancelled() -> None:
    """An order that filled completely left the book: cancelling it is ORDER_NOT_FOUND."""
    ex = priced()
    a, t = ex.new_trader(), ex.new_trader()
    h = rest(ex, a, False, 50_000, sats(0.1))
    assert ex.order(t, BTC_M, True, btc(50_000), sats(0.1), tif=IOC).applied
    assert_rejected(ex, Reason.ORDER_NOT_FOUND, lambda: ex.cancel(a, h))


def test_forced_order_matches_like_a_sequenced_one() -> None:
    """The same signed order through the L1 inbox gives the same outcome and root."""
    results = []
    for forced in (False, True):
        ex = priced()
        m, t = ex.new_trader(), ex.new_trader()
        rest(ex, m, False, 50_000, sats(0.1))
        raw = ex.sign(t.key, ex.order_message(t, BTC_M, True, btc(50_000), sats(0.3)))
        outcome = ex.force(raw) if forced else ex.apply(Step(StepKind.TRANSACTION, raw))
        assert outcome.order is not None and outcome.order.end is OrderEnd.RESTING
        results.append((outcome, ex.root()))
    assert results[0] == results[1]
