"""
Margin, funding and position arithmetic (docs/protocol.md, section 8).

Collateral is a signed *quote balance*: a fill moves its value from the buyer's
collateral to the seller's, so profit and loss are never "realised" and PnL is
zero-sum by construction. An account's equity is its collateral plus the value
of its positions at the oracle prices, minus the funding they owe.

Every division here has a stated rounding direction, always against the
account: values round down (toward minus infinity), margins and funding owed
round up. ``floor_div``/``ceil_div`` take a positive divisor and any signed
dividend; Python's ``//`` floors, so the Solidity port must floor too (its ``/``
truncates toward zero).
"""

from dataclasses import dataclass
from typing import Final

from .records import (
    MAX_POSITION_SIZE,
    MAX_POSITIONS,
    Account,
    Market,
    Position,
    find_position,
    load_market,
    position_size,
)
from .state import StateView

BPS: Final = 10_000
"""Basis points in one."""

FUNDING_SCALE: Final = 1_000_000
"""Funding indices are in price units times this (premiums are in millionths)."""


def floor_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded toward minus infinity (``denominator > 0``)."""
    return numerator // denominator


def ceil_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded toward plus infinity (``denominator > 0``)."""
    return -((-numerator) // denominator)


def funding_owed(position: Position, market: Market) -> int:
    """
    Collateral ``position`` owes for funding since it was last settled (negative: is
    owed), rounded up: ``ceil(size * (index - positionIndex) / (divisor * FUNDING_SCALE))``.
    """
    accrued = position.size * (market.funding_index - position.funding_index)
    return ceil_div(accrued, market.divisor * FUNDING_SCALE)


def settle_funding(account: Account, market_id: int, market: Market) -> int:
    """
    Settle the funding of ``account``'s position in ``market_id`` (if any): the owed
    amount moves between its collateral and the market's funding balance, and the
    position's index catches up. Changes both records in memory; returns the amount.
    """
    position = find_position(account, market_id)
    if position is None:
        return 0
    owed = funding_owed(position, market)
    account.collateral -= owed
    market.funding_balance += owed
    position.funding_index = market.funding_index
    return owed


@dataclass(frozen=True, slots=True)
class Health:
    """An account's equity and margin requirements, in collateral units."""

    equity: int
    """Collateral + value of positions at the oracle (rounded down) - funding owed (rounded up)."""

    initial: int
    """Sum over positions of ``ceil(|size| * oracle * initialMarginBps / (divisor * BPS))``."""

    maintenance: int
    """The same with the maintenance margin fraction."""

    @property
    def free_collateral(self) -> int:
        """What can leave the account: ``equity - initial``."""
        return self.equity - self.initial


def account_health(
    view: StateView, account: Account, market_id: int = -1, market: Market | None = None
) -> Health:
    """
    The health of ``account``, reading each position's market from ``view``,
    except ``market_id``, for which the in-memory ``market`` is used.
    """
    equity = account.collateral
    initial = maintenance = 0
    for position in account.positions:
        current = market if position.market == market_id else load_market(view, position.market)
        assert current is not None, "a position's market always exists"
        price = current.oracle_price
        equity += floor_div(position.size * price, current.divisor)
        equity -= funding_owed(position, current)
        notional = abs(position.size) * price
        scale = current.divisor * BPS
        initial += ceil_div(notional * current.initial_margin_bps, scale)
        maintenance += ceil_div(notional * current.maintenance_margin_bps, scale)
    return Health(equity, initial, maintenance)


def apply_trade(
    account: Account, market_id: int, market: Market, size_delta: int, collateral_delta: int
) -> bool:
    """
    Add ``size_delta`` to ``account``'s position in ``market_id`` and
    ``collateral_delta`` to its collateral, in memory. Funding must be settled
    first. A new position starts at the market's funding index; a position that
    reaches 0 is removed. False (and the account must be discarded) if the account
    would exceed ``MAX_POSITIONS`` positions or ``MAX_POSITION_SIZE``.
    """
    position = find_position(account, market_id)
    if position is None:
        if len(account.positions) == MAX_POSITIONS:
            return False
        position = Position(market_id, 0, market.funding_index)
        account.positions.append(position)
    size = position.size + size_delta
    if abs(size) > MAX_POSITION_SIZE:
        return False
    position.size = size
    if size == 0:
        account.positions.remove(position)
    account.collateral += collateral_delta
    return True


def fill_allowed(
    view: StateView, account: Account, size_before: int, market_id: int, market: Market
) -> bool:
    """
    Whether ``account`` (after a trade in ``market_id`` that moved its position
    from ``size_before``) may keep the trade: its equity covers its initial margin,
    or the trade only reduced the position (without flipping it) and its equity
    is still not negative.
    """
    health = account_health(view, account, market_id, market)
    if health.equity >= health.initial:
        return True
    after = position_size(account, market_id)
    reduced = abs(after) < abs(size_before) and (after == 0 or (after > 0) == (size_before > 0))
    return reduced and health.equity >= 0
