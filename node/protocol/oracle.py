"""
Oracle prices and funding (docs/protocol.md, section 8).

The configured oracle key signs index prices with strictly increasing
timestamps per market, never ahead of the batch. Each new price first accrues
funding for the time since the previous one: the premium of the mark (the last
fill price) over the index, clamped to ``maxFundingPpm`` per ``FUNDING_PERIOD``,
is added to the market's cumulative funding index. Positions settle against
that index lazily, whenever they change or are valued.
"""

from typing import Final

from .margin import FUNDING_SCALE
from .records import Market, load_exchange, load_market, store_market
from .state import StateView
from .step import BatchContext, Outcome, Reason, Rejected
from .transactions import OraclePrice

FUNDING_PERIOD: Final = 8 * 3600
"""Seconds over which the clamped premium is paid once; also the most one update accrues."""


def accrue_funding(market: Market, now: int) -> None:
    """Add the funding since the market's last oracle time to its index (in memory)."""
    if market.oracle_time == 0:
        return
    elapsed = min(now - market.oracle_time, FUNDING_PERIOD)
    index = market.oracle_price
    mark = market.last_price if market.last_price != 0 else index
    # premium = clamp((mark - index) / index) in millionths, its magnitude rounded down
    magnitude = min(abs(mark - index) * FUNDING_SCALE // index, market.max_funding_ppm)
    # delta = premium * index * elapsed / FUNDING_PERIOD, its magnitude rounded down
    delta = magnitude * index * elapsed // FUNDING_PERIOD
    market.funding_index += delta if mark >= index else -delta


def apply_oracle_price(
    view: StateView, signer: bytes, message: OraclePrice, context: BatchContext
) -> Outcome:
    """Record an index price signed by the oracle, after accruing funding."""
    exchange = load_exchange(view)
    if signer != exchange.oracle:
        raise Rejected(Reason.WRONG_SIGNER, "prices are signed by the oracle key")
    market = load_market(view, message.market)
    if market is None:
        raise Rejected(Reason.UNKNOWN_MARKET, f"no market {message.market}")
    if message.price == 0:
        raise Rejected(Reason.INVALID_ORACLE_PRICE)
    if message.timestamp <= market.oracle_time:
        raise Rejected(Reason.STALE_TIMESTAMP, f"not after {market.oracle_time}")
    if message.timestamp > context.timestamp:
        raise Rejected(Reason.FUTURE_TIMESTAMP, f"after the batch time {context.timestamp}")
    accrue_funding(market, message.timestamp)
    market.oracle_price = message.price
    market.oracle_time = message.timestamp
    store_market(view, message.market, market)
    return Outcome(Reason.OK)
