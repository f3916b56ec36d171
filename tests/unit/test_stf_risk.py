"""
Per-rule tests of risk: oracle prices and funding (node/protocol/oracle.py,
margin.py), liquidation (liquidation.py) and forced transactions through the L1
inbox (inbox.py, stf.py).

BTC-PERP of the test genesis: price = dollars * 10, size = BTC * 1e8, divisor
1,000 (value = price * size / 1000 micro-dollars), margins 10% / 5%, fees 2 / 5
bps, funding clamp 5,000 ppm per 8 h. Liquidation penalties: 100 bps to the
liquidator, 100 bps to the insurance fund. FUNDING_SCALE is 1e6.
"""

import pytest

from node.protocol.records import Account, Market, Position
from node.protocol.step import OrderEnd, Outcome, Reason, Step, StepKind
from node.protocol.transactions import Liquidate, OraclePrice, TimeInForce, Withdraw
from tests.stf_env import ORACLE_KEY, USD, Exchange, Trader, btc, sats
from tests.unit.stf_helpers import (
    apply_with_witness,
    assert_conserved,
    assert_rejected,
    signed_step,
)

BTC_M, ETH_M = 0, 1
IOC = TimeInForce.IOC


def trade(
    ex: Exchange, seller: Trader, buyer: Trader, price: int, size: int, market: int = 0
) -> None:
    """``seller`` rests an ask, ``buyer`` takes it completely with an IOC buy."""
    ask = ex.order(seller, market, False, price, size)
    assert ask.order is not None and ask.order.end is OrderEnd.RESTING, ask
    bid = ex.order(buyer, market, True, price, size, tif=IOC)
    assert bid.order is not None and bid.order.filled == size, bid


def account(ex: Exchange, trader: Trader) -> Account:
    record = ex.account(trader.id)
    assert record is not None
    return record


def oracle(ex: Exchange, market: int, price: int, timestamp: int) -> Outcome:
    """An oracle price with an explicit timestamp, signed by the oracle key."""
    return ex.send(ex.fee_owner, OraclePrice(market, price, timestamp), ORACLE_KEY)


# Oracle prices ----------------------------------------------------------------------------


def test_first_oracle_price_sets_the_market_without_funding() -> None:
    """The first price of a market only records price and time (no funding accrues)."""
    ex = Exchange()
    t0 = ex.timestamp
    outcome = oracle(ex, BTC_M, 500_000, t0 - 5)
    assert outcome.reason is Reason.OK
    assert ex.market(BTC_M) == Market(10, 1_000, 1_000, 1_000, 500, 2, 5, 5_000,
                                      500_000, t0 - 5, 0, 0, 0)  # fmt: skip
    assert ex.market(ETH_M).oracle_price == 0


def test_oracle_timestamps_must_increase_per_market() -> None:
    """Each market's timestamps increase strictly, independently of the other market's;
    a price may be older than the batch time."""
    ex = Exchange()
    t0 = ex.timestamp
    assert oracle(ex, BTC_M, 500_000, t0 - 100).applied
    assert oracle(ex, ETH_M, 300_000, t0 - 200).applied  # earlier, but another market
    assert oracle(ex, BTC_M, 500_100, t0 - 99).applied
    assert (ex.market(BTC_M).oracle_price, ex.market(BTC_M).oracle_time) == (500_100, t0 - 99)


def test_no_funding_without_a_premium() -> None:
    """Without fills the mark is the index: a new price hours later moves no funding."""
    ex = Exchange()
    assert ex.set_price(BTC_M, btc(50_000)).applied
    ex.advance(5 * 3600)
    assert ex.set_price(BTC_M, btc(60_000)).applied
    assert ex.market(BTC_M).funding_index == 0


def test_funding_accrues_the_premium_of_the_mark_over_the_index() -> None:
    """Mark (last fill) $50,050 over index $50,000: premium 500 * 1e6 // 500,000 = 1,000 ppm
    (under the 5,000 clamp); one hour later the index rises by
    1,000 * 500,000 * 3,600 // 28,800 = 62,500,000 -- computed with the previous index,
    whatever the new price is."""
    ex = Exchange()
    a, b = ex.new_trader(), ex.new_trader()
    assert ex.set_price(BTC_M, btc(50_000)).applied
    t0 = ex.timestamp
    trade(ex, b, a, btc(50_050), sats(1))
    ex.advance(3_600)
    assert ex.set_price(BTC_M, btc(50_100)).applied
    assert ex.market(BTC_M) == Market(10, 1_000, 1_000, 1_000, 500, 2, 5, 5_000,
                                      501_000, t0 + 3_600, 500_500, 62_500_000, 0)  # fmt: skip


def test_funding_premium_is_clamped_and_negative_below_the_index() -> None:
    """Mark $45,000 under index $50,000: premium 100,000 ppm clamped to 5,000; 10 hours
    count as one 8-hour period; the index falls by 5,000 * 500,000 = 2,500,000,000."""
    ex = Exchange()
    a, b = ex.new_trader(), ex.new_trader()
    assert ex.set_price(BTC_M, btc(50_000)).applied
    trade(ex, b, a, btc(45_000), sats(1))
    ex.advance(10 * 3_600)
    assert ex.set_price(BTC_M, btc(50_000)).applied
    assert ex.market(BTC_M).funding_index == -2_500_000_000


def test_funding_magnitudes_round_down() -> None:
    """Index 300,007, mark 300,010: premium 3e6 // 300,007 = 9 ppm (9.99..); over 1,000 s
    the index moves 9 * 300,007 * 1,000 // 28,800 = 93,752 (93,752.19)."""
    ex = Exchange()
    a, b = ex.new_trader(), ex.new_trader()
    assert ex.set_price(BTC_M, 300_007).applied
    trade(ex, b, a, 300_010, 1_000)
    ex.advance(1_000)
    assert ex.set_price(BTC_M, 300_007).applied
    assert ex.market(BTC_M).funding_index == 93_752


def _funded_long_and_short() -> tuple[Exchange, Trader, Trader, Trader]:
    """A long 1 BTC and B short 1 BTC at $50,050; one hour later the index is +62,500,000."""
    ex = Exchange()
    a, b, c = ex.new_trader(), ex.new_trader(), ex.new_trader()
    assert ex.set_price(BTC_M, btc(50_000)).applied
    trade(ex, b, a, btc(50_050), sats(1))
    ex.advance(3_600)
    assert ex.set_price(BTC_M, btc(50_000)).applied
    assert ex.market(BTC_M).funding_index == 62_500_000
    # A paid 50,050 + 25.025 fee; B received 50,050 - 10.01 fee.
    assert account(ex, a).collateral == 49_924_975_000
    assert account(ex, b).collateral == 150_039_990_000
    return ex, a, b, c


def test_funding_settles_on_the_next_fill() -> None:
    """
    The 1 BTC long owes ceil(1e8 * 62,500,000 / (1,000 * 1e6)) = 6,250,000 ($6.25). When
    it next trades (selling 0.5 BTC at $50,000 to C), exactly that moves from its
    collateral into the market's funding balance, and its position index catches up.
    C's new position starts at the current index. When the short B next trades, it
    receives 6,250,000 from the balance, which returns to 0.
    """
    ex, a, b, c = _funded_long_and_short()
    assert ex.order(c, BTC_M, True, btc(50_000), sats(0.5)).applied  # rests
    assert ex.order(a, BTC_M, False, btc(50_000), sats(0.5), tif=IOC).applied
    # A: - funding 6,250,000 + value 25,000,000,000 - taker fee 12,500,000
    assert account(ex, a).collateral == 49_924_975_000 - 6_250_000 + 25_000_000_000 - 12_500_000
    assert account(ex, a).positions == [Position(0, sats(0.5), 62_500_000)]
    assert account(ex, c).collateral == 100_000 * USD - 25_000_000_000 - 5_000_000
    assert account(ex, c).positions == [Position(0, sats(0.5), 62_500_000)]
    assert account(ex, b).positions == [Position(0, -sats(1), 0)]  # not settled yet
    assert ex.market(BTC_M).funding_balance == 6_250_000
    assert_conserved(ex)

    # B buys 0.2 BTC from C at $50,000: B receives its funding, C owes none.
    assert ex.order(b, BTC_M, True, btc(50_000), sats(0.2)).applied  # rests
    c_before = account(ex, c).collateral
    assert ex.order(c, BTC_M, False, btc(50_000), sats(0.2), tif=IOC).applied
    assert account(ex, b).collateral == 150_039_990_000 + 6_250_000 - 10_000_000_000 - 2_000_000
    assert account(ex, b).positions == [Position(0, -sats(0.8), 62_500_000)]
    assert account(ex, c).collateral == c_before + 10_000_000_000 - 5_000_000
    assert ex.market(BTC_M).funding_balance == 0
    assert_conserved(ex)


def test_funding_settlement_rounds_against_both_sides() -> None:
    """One lot each way: the long owes ceil(1,000 * 62,500,000 / 1e9) = ceil(62.5) = 63,
    the short is owed only 62 (ceil(-62.5)); after both settle the balance keeps 1."""
    ex = Exchange()
    a, b = ex.new_trader(), ex.new_trader()
    assert ex.set_price(BTC_M, btc(50_000)).applied
    trade(ex, b, a, btc(50_050), 1_000)
    ex.advance(3_600)
    assert ex.set_price(BTC_M, btc(50_000)).applied
    a_before, b_before = account(ex, a).collateral, account(ex, b).collateral
    # They close against each other at $50,000: value 500,000, fees 100 (maker) / 250.
    assert ex.order(b, BTC_M, True, btc(50_000), 1_000).applied
    assert ex.order(a, BTC_M, False, btc(50_000), 1_000, tif=IOC).applied
    assert account(ex, a) == Account(a.address, a_before - 63 + 500_000 - 250, 0, 0b11, [], [])
    assert account(ex, b) == Account(b.address, b_before + 62 - 500_000 - 100, 0, 0b11, [], [])
    assert ex.market(BTC_M).funding_balance == 1
    assert_conserved(ex)


def test_unsettled_funding_counts_against_equity() -> None:
    """Before settling, the long's free collateral is collateral + value - funding owed -
    margin = 49,924,975,000 + 50,000,000,000 - 6,250,000 - 5,000,000,000."""
    ex, a, _, _ = _funded_long_and_short()
    free = 49_924_975_000 + 50_000_000_000 - 6_250_000 - 5_000_000_000
    assert_rejected(ex, Reason.INSUFFICIENT_COLLATERAL, lambda: ex.withdraw(a, free + 1))
    assert ex.withdraw(a, free).reason is Reason.OK


def test_invalid_wrong_signer_oracle_price() -> None:
    """A price signed by any key but the oracle's (here a registered trader's): WRONG_SIGNER."""
    ex = Exchange()
    trader = ex.new_trader()
    message = OraclePrice(BTC_M, 500_000, ex.timestamp)
    assert_rejected(ex, Reason.WRONG_SIGNER, lambda: ex.send(trader, message, key=trader.key))
    assert ex.market(BTC_M).oracle_price == 0


def test_invalid_unknown_market_oracle_price() -> None:
    """A price for a market genesis did not create: UNKNOWN_MARKET."""
    ex = Exchange()
    assert_rejected(ex, Reason.UNKNOWN_MARKET, lambda: oracle(ex, 2, 500_000, ex.timestamp))


def test_invalid_oracle_price() -> None:
    """A price of 0: INVALID_ORACLE_PRICE."""
    ex = Exchange()
    assert_rejected(ex, Reason.INVALID_ORACLE_PRICE, lambda: oracle(ex, BTC_M, 0, ex.timestamp))


@pytest.mark.parametrize("delta", [0, -1, -3_600])
def test_invalid_stale_timestamp(delta: int) -> None:
    """A timestamp not after the market's last one (equal or earlier): STALE_TIMESTAMP."""
    ex = Exchange()
    t0 = ex.timestamp
    assert oracle(ex, BTC_M, 500_000, t0 - 10).applied
    assert_rejected(ex, Reason.STALE_TIMESTAMP, lambda: oracle(ex, BTC_M, 500_100, t0 - 10 + delta))


def test_invalid_stale_timestamp_zero_for_a_new_market() -> None:
    """A market without a price has oracle time 0: timestamp 0 is already stale."""
    ex = Exchange()
    assert_rejected(ex, Reason.STALE_TIMESTAMP, lambda: oracle(ex, BTC_M, 500_000, 0))


def test_invalid_future_timestamp() -> None:
    """A timestamp after the batch time: FUTURE_TIMESTAMP (the batch time itself is fine)."""
    ex = Exchange()
    t0 = ex.timestamp
    assert_rejected(ex, Reason.FUTURE_TIMESTAMP, lambda: oracle(ex, BTC_M, 500_000, t0 + 1))
    assert oracle(ex, BTC_M, 500_000, t0).applied


# Liquidation ------------------------------------------------------------------------------


def _leveraged_long() -> tuple[Exchange, Trader, Trader, Trader]:
    """
    T deposits $6,000 and buys 1 BTC at $50,000 from M (taker fee $25): T's collateral
    is 6,000 - 50,000 - 25 = -$44,025, so its equity is P - 44,025 at oracle price P
    (in dollars) against a maintenance margin of 0.05 P. L is a $100k liquidator.
    """
    ex = Exchange()
    m = ex.new_trader()
    t = ex.new_trader(deposit=6_000 * USD)
    liq = ex.new_trader()
    assert ex.set_price(BTC_M, btc(50_000)).applied
    trade(ex, m, t, btc(50_000), sats(1))
    assert account(ex, t).collateral == -44_025 * USD
    return ex, m, t, liq


def test_invalid_target_healthy() -> None:
    """Equity not below maintenance margin: TARGET_HEALTHY. At $50,000 equity is $5,975 vs
    $2,500; at $46,400 it is $2,375 vs $2,320 -- still healthy."""
    ex, _, t, liq = _leveraged_long()
    assert_rejected(ex, Reason.TARGET_HEALTHY, lambda: ex.liquidate(liq, t.id, BTC_M))
    assert ex.set_price(BTC_M, btc(46_400)).applied
    assert_rejected(ex, Reason.TARGET_HEALTHY, lambda: ex.liquidate(liq, t.id, BTC_M))


def test_liquidation_transfers_the_position_at_the_oracle_price() -> None:
    """
    At $46,000 T's equity is $1,975 < $2,300 maintenance. Liquidation closes T's 1 BTC
    at the oracle: T's collateral becomes -44,025 + 46,000 = $1,975; the penalties are
    ceil(1e8 * 460,000 * 100 / (1,000 * 10,000)) = $460 each: T ends with $1,055, the
    insurance fund has $460, and L holds 1 BTC at a cost of 46,000 - 460 (its reward).
    The step also replays from its witness.
    """
    ex, m, t, liq = _leveraged_long()
    assert ex.set_price(BTC_M, btc(46_000)).applied
    m_before = account(ex, m)
    step = signed_step(ex, liq, Liquidate(liq.id, t.id, BTC_M, 0))
    outcome = apply_with_witness(ex, step)
    assert outcome.reason is Reason.OK
    assert outcome.account == liq.id
    assert account(ex, t) == Account(t.address, 1_055 * USD, 0, 1, [], [])
    assert account(ex, liq) == Account(
        liq.address, (100_000 - 46_000 + 460) * USD, 0, 1, [], [Position(0, sats(1), 0)]
    )
    assert ex.exchange().insurance_fund == 460 * USD
    assert account(ex, m) == m_before
    assert ex.market(BTC_M).funding_balance == 0
    assert_conserved(ex)


@pytest.mark.parametrize(
    ("dollars", "reward", "insurance"),
    [
        (44_500, 445, 30),  # $475 left: the $445 reward in full, $30 of the $445 insurance
        (44_200, 175, 0),  # $175 left: the $442 reward is cut to $175, no insurance
    ],
)
def test_liquidation_penalty_is_capped_by_remaining_equity(
    dollars: int, reward: int, insurance: int
) -> None:
    """After closing at P, T has P - 44,025 dollars left; the penalties (1% of P each,
    reward first) are paid out of that only: T ends at 0, the liquidator gets no more
    than what T had, and the insurance fund gets what remains after the reward."""
    ex, _, t, liq = _leveraged_long()
    assert ex.set_price(BTC_M, btc(dollars)).applied
    assert ex.liquidate(liq, t.id, BTC_M).reason is Reason.OK
    assert account(ex, t) == Account(t.address, 0, 0, 1, [], [])
    assert ex.exchange().insurance_fund == insurance * USD
    assert account(ex, liq).collateral == (100_000 - dollars + reward) * USD
    assert_conserved(ex)


def test_bad_debt_is_absorbed_by_the_insurance_fund() -> None:
    """At $43,000 closing leaves T at -$1,025: no penalty is paid (no equity left), T is
    reset to 0 and the insurance fund absorbs the debt (going negative)."""
    ex, _, t, liq = _leveraged_long()
    assert ex.set_price(BTC_M, btc(43_000)).applied
    assert ex.liquidate(liq, t.id, BTC_M).reason is Reason.OK
    assert account(ex, t) == Account(t.address, 0, 0, 1, [], [])
    assert ex.exchange().insurance_fund == -1_025 * USD
    assert account(ex, liq) == Account(
        liq.address, (100_000 - 43_000) * USD, 0, 1, [], [Position(0, sats(1), 0)]
    )
    assert_conserved(ex)


def test_bad_debt_waits_until_no_position_is_left() -> None:
    """
    T also holds 0.1 ETH ($300, fee $0.12): collateral -44,325.12. At BTC $43,000 the
    BTC liquidation leaves -1,325.12 with the ETH position still open, so nothing is
    absorbed yet; liquidating ETH at $3,000 then leaves -1,025.12 and no position: the
    insurance fund absorbs that.
    """
    ex, m, t, liq = _leveraged_long()
    assert ex.set_price(ETH_M, 300_000).applied
    trade(ex, m, t, 300_000, 100_000, market=ETH_M)
    assert account(ex, t).collateral == -44_325_120_000
    assert ex.set_price(BTC_M, btc(43_000)).applied
    assert ex.liquidate(liq, t.id, BTC_M).reason is Reason.OK
    assert account(ex, t).collateral == -1_325_120_000
    assert account(ex, t).positions == [Position(ETH_M, 100_000, 0)]
    assert ex.exchange().insurance_fund == 0
    assert ex.liquidate(liq, t.id, ETH_M).reason is Reason.OK
    assert account(ex, t) == Account(t.address, 0, 0, 0b11, [], [])
    assert ex.exchange().insurance_fund == -1_025_120_000
    assert account(ex, liq).positions == [Position(BTC_M, sats(1), 0), Position(ETH_M, 100_000, 0)]
    assert_conserved(ex)


def test_invalid_self_liquidation() -> None:
    """Naming oneself as the target: SELF_LIQUIDATION (even when under water)."""
    ex, _, t, _ = _leveraged_long()
    assert ex.set_price(BTC_M, btc(46_000)).applied
    assert_rejected(ex, Reason.SELF_LIQUIDATION, lambda: ex.liquidate(t, t.id, BTC_M))


def test_invalid_no_position() -> None:
    """A target without a position in the named market: NO_POSITION."""
    ex, _, t, liq = _leveraged_long()
    assert ex.set_price(ETH_M, 300_000).applied
    assert ex.set_price(BTC_M, btc(46_000)).applied
    assert_rejected(ex, Reason.NO_POSITION, lambda: ex.liquidate(liq, t.id, ETH_M))
    assert_rejected(ex, Reason.NO_POSITION, lambda: ex.liquidate(t, liq.id, BTC_M))


def test_liquidation_of_an_unknown_target_or_unpriced_market() -> None:
    """An unregistered target is UNKNOWN_ACCOUNT; a market without a price NO_ORACLE_PRICE."""
    ex, _, t, liq = _leveraged_long()
    assert_rejected(ex, Reason.UNKNOWN_ACCOUNT, lambda: ex.liquidate(liq, 99, BTC_M))
    assert_rejected(ex, Reason.NO_ORACLE_PRICE, lambda: ex.liquidate(liq, t.id, ETH_M))
    assert_rejected(ex, Reason.UNKNOWN_MARKET, lambda: ex.liquidate(liq, t.id, 7))


def test_invalid_liquidator_margin() -> None:
    """A $1,000 liquidator taking 1 BTC at $46,000 (+ $460 reward) would have equity
    $1,460 below the $4,600 initial margin: LIQUIDATOR_MARGIN, nothing moves."""
    ex, _, t, _ = _leveraged_long()
    small = ex.new_trader(deposit=1_000 * USD)
    assert ex.set_price(BTC_M, btc(46_000)).applied
    assert_rejected(ex, Reason.LIQUIDATOR_MARGIN, lambda: ex.liquidate(small, t.id, BTC_M))
    assert account(ex, t).positions == [Position(0, sats(1), 0)]


# Forced transactions ----------------------------------------------------------------------


def _script(forced: bool) -> list[tuple[Outcome, bytes]]:
    """
    A scenario of signed transactions, each either sequenced or forced through the
    L1 inbox; returns every outcome with the root after it.
    """
    ex = Exchange()
    m = ex.new_trader()
    t = ex.new_trader(deposit=6_000 * USD)
    liq = ex.new_trader()
    t0 = ex.timestamp

    def run(raw: bytes) -> tuple[Outcome, bytes]:
        outcome = ex.force(raw) if forced else ex.apply(Step(StepKind.TRANSACTION, raw))
        return outcome, ex.root()

    ask = ex.order_message(m, BTC_M, False, btc(50_000), sats(1.5), nonce=0)
    raws = [
        ex.sign(ORACLE_KEY, OraclePrice(BTC_M, btc(50_000), t0 - 10)),
        ex.sign(m.key, ask),
        ex.sign(t.key, ex.order_message(t, BTC_M, True, btc(50_000), sats(1), nonce=0)),
        ex.sign(t.key, ex.order_message(t, BTC_M, True, btc(50_000), sats(1), nonce=0)),  # replay
        ex.sign(ORACLE_KEY, OraclePrice(BTC_M, btc(46_000), t0)),
        ex.sign(liq.key, Liquidate(liq.id, t.id, BTC_M, 0)),
        ex.sign(liq.key, Liquidate(liq.id, t.id, BTC_M, 1)),  # no position left
        ex.sign(t.key, Withdraw(t.id, t.address, 1_055 * USD, 1)),
        ex.sign(t.key, Withdraw(m.id, m.address, 1, 5)),  # wrong signer
    ]
    return [run(raw) for raw in raws]


def test_forced_transactions_behave_exactly_like_sequenced_ones() -> None:
    """Every step of a scenario (oracle prices, orders with fills, a nonce replay, a
    liquidation, a rejected liquidation, a withdrawal, a wrong signer) has the same
    outcome and leaves the same root whether sequenced or forced through the inbox."""
    sequenced = _script(forced=False)
    forced = _script(forced=True)
    assert [o.reason for o, _ in sequenced] == [
        Reason.OK,
        Reason.OK,
        Reason.OK,
        Reason.NONCE_USED,
        Reason.OK,
        Reason.OK,
        Reason.NO_POSITION,
        Reason.OK,
        Reason.WRONG_SIGNER,
    ]
    assert forced == sequenced
