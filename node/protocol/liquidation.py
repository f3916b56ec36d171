"""
Liquidation (docs/protocol.md, section 8).

Anyone may liquidate an account whose equity is below its maintenance margin,
one market at a time: the liquidator takes over the whole position at the
oracle price. The liquidated account pays a penalty, out of what equity it has
left, to the liquidator and the insurance fund; if it ends with no position and
negative collateral, the insurance fund absorbs that bad debt.
"""

from .accounts import require_account
from .margin import (
    BPS,
    account_health,
    apply_trade,
    ceil_div,
    fill_allowed,
    floor_div,
    settle_funding,
)
from .orders import require_market
from .records import (
    find_position,
    load_exchange,
    position_size,
    store_account,
    store_exchange,
    store_market,
)
from .state import StateView
from .step import Outcome, Reason, Rejected
from .transactions import Liquidate


def apply_liquidate(view: StateView, account_id: int, message: Liquidate) -> Outcome:
    """Transfer the target's position in one market to the liquidator, with the penalty."""
    if message.target == account_id:
        raise Rejected(Reason.SELF_LIQUIDATION)
    target = require_account(view, message.target)
    market_id = message.market
    market = require_market(view, market_id)
    position = find_position(target, market_id)
    if position is None:
        raise Rejected(Reason.NO_POSITION, f"account {message.target} has no position there")
    health = account_health(view, target, market_id, market)
    if health.equity >= health.maintenance:
        raise Rejected(Reason.TARGET_HEALTHY, f"equity {health.equity} >= {health.maintenance}")

    # The target closes at the oracle price; the value rounds down (against the target).
    settle_funding(target, market_id, market)
    size = position.size
    value = floor_div(size * market.oracle_price, market.divisor)
    apply_trade(target, market_id, market, -size, value)

    # The penalty, capped by the equity the target has left.
    exchange = load_exchange(view)
    notional = abs(size) * market.oracle_price
    scale = market.divisor * BPS
    reward = ceil_div(notional * exchange.liquidation_reward_bps, scale)
    insurance = ceil_div(notional * exchange.liquidation_insurance_bps, scale)
    available = max(0, account_health(view, target, market_id, market).equity)
    reward = min(reward, available)
    insurance = min(insurance, available - reward)
    target.collateral -= reward + insurance
    exchange.insurance_fund += insurance
    if not target.positions and target.collateral < 0:
        exchange.insurance_fund += target.collateral
        target.collateral = 0

    # The liquidator takes the position over at the same value, plus the reward.
    liquidator = require_account(view, account_id)
    before = position_size(liquidator, market_id)
    settle_funding(liquidator, market_id, market)
    if not apply_trade(liquidator, market_id, market, size, reward - value) or not fill_allowed(
        view, liquidator, before, market_id, market
    ):
        raise Rejected(Reason.LIQUIDATOR_MARGIN, "the liquidator cannot carry the position")

    store_account(view, message.target, target)
    store_account(view, account_id, liquidator)
    store_market(view, market_id, market)
    store_exchange(view, exchange)
    return Outcome(Reason.OK, account=account_id)
