"""
Orders: placement, matching, cancellation (docs/protocol.md, section 7).

Matching is strict price-time priority: the taker meets the best opposite level,
oldest order first, at the maker's price. One order visits at most
``MAX_MATCHES`` makers (fills, and makers removed for expiry, self-trade or
margin), so a step stays bounded. Both sides' margin is checked on every fill.
"""

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from .accounts import require_account
from .book import append_order, best_tick, reduce_level, remove_order, side_of
from .margin import BPS, apply_trade, ceil_div, fill_allowed, settle_funding
from .records import (
    FEE_ACCOUNT,
    MAX_OPEN_ORDERS,
    NIL,
    TICK_BITS,
    Market,
    RestingOrder,
    load_level,
    load_market,
    load_order,
    order_id_of,
    position_size,
    store_account,
    store_market,
    store_order,
)
from .state import StateView
from .step import (
    BatchContext,
    Fill,
    OrderEnd,
    OrderResult,
    Outcome,
    Reason,
    Rejected,
    Removal,
    RemovalReason,
)
from .transactions import ALL_MARKETS, Cancel, CancelAll, Order, TimeInForce

MAX_MATCHES: Final = 8
"""Resting orders one taker order may visit (fill or remove) before it stops."""


def require_market(view: StateView, market_id: int) -> Market:
    """A market that exists and has an oracle price; rejects the step otherwise."""
    market = load_market(view, market_id)
    if market is None:
        raise Rejected(Reason.UNKNOWN_MARKET, f"no market {market_id}")
    if market.oracle_price == 0:
        raise Rejected(Reason.NO_ORACLE_PRICE, f"market {market_id} has no oracle price yet")
    return market


def check_order(order: Order, market: Market, context: BatchContext) -> None:
    """The checks that need nothing but the order, its market and the batch time."""
    tif = order.time_in_force
    if tif > TimeInForce.POST_ONLY:
        raise Rejected(Reason.INVALID_TIME_IN_FORCE, f"unknown time in force {tif}")
    if order.reduce_only and tif not in (TimeInForce.IOC, TimeInForce.FOK):
        raise Rejected(Reason.INVALID_TIME_IN_FORCE, "reduce-only orders are IOC or FOK")
    if order.size == 0 or order.size % market.lot_size != 0:
        raise Rejected(
            Reason.INVALID_SIZE, f"size must be a positive multiple of {market.lot_size}"
        )
    if order.price == 0:
        if tif not in (TimeInForce.IOC, TimeInForce.FOK):
            raise Rejected(Reason.INVALID_PRICE, "a market order (price 0) is IOC or FOK")
    elif order.price % market.tick_size != 0 or order.price // market.tick_size >> TICK_BITS:
        raise Rejected(
            Reason.INVALID_PRICE,
            f"price must be a multiple of {market.tick_size} below {market.tick_size << TICK_BITS}",
        )
    if order.expiry != 0 and order.expiry <= context.timestamp:
        raise Rejected(Reason.EXPIRED, f"expiry {order.expiry} <= batch time {context.timestamp}")


def crosses(maker_tick: int, taker_tick: int, taker_is_buy: bool) -> bool:
    """Whether a taker limited to ``taker_tick`` (0: a market order) meets ``maker_tick``."""
    if taker_tick == 0:
        return True
    return maker_tick <= taker_tick if taker_is_buy else maker_tick >= taker_tick


class FillStatus(IntEnum):
    """Result of trying one fill."""

    DONE = 0
    MAKER_MARGIN = 1
    TAKER_MARGIN = 2


def execute_fill(
    view: StateView, taker_id: int, maker: RestingOrder, price: int, size: int
) -> tuple[FillStatus, int, int]:
    """
    Trade ``size`` at ``price`` between the maker order's account and the taker:
    settle both sides' funding, move the value ``price * size / divisor`` (exact),
    charge both fees (rounded up) to the fee account, and keep it only if both
    sides may (maker checked first). Returns the status and the two fees.
    """
    market_id = maker.market
    market = load_market(view, market_id)
    assert market is not None
    value = price * size // market.divisor
    maker_fee = ceil_div(value * market.maker_fee_bps, BPS)
    taker_fee = ceil_div(value * market.taker_fee_bps, BPS)
    direction = 1 if maker.is_buy else -1

    maker_account = require_account(view, maker.account)
    before = position_size(maker_account, market_id)
    settle_funding(maker_account, market_id, market)
    if not apply_trade(
        maker_account, market_id, market, direction * size, -direction * value - maker_fee
    ) or not fill_allowed(view, maker_account, before, market_id, market):
        return FillStatus.MAKER_MARGIN, 0, 0

    taker_account = require_account(view, taker_id)
    before = position_size(taker_account, market_id)
    settle_funding(taker_account, market_id, market)
    if not apply_trade(
        taker_account, market_id, market, -direction * size, direction * value - taker_fee
    ) or not fill_allowed(view, taker_account, before, market_id, market):
        return FillStatus.TAKER_MARGIN, 0, 0

    market.last_price = price
    store_account(view, maker.account, maker_account)
    store_account(view, taker_id, taker_account)
    store_market(view, market_id, market)
    if maker_fee + taker_fee:
        fee_account = require_account(view, FEE_ACCOUNT)
        fee_account.collateral += maker_fee + taker_fee
        store_account(view, FEE_ACCOUNT, fee_account)
    return FillStatus.DONE, maker_fee, taker_fee


def place_order(
    view: StateView, context: BatchContext, account_id: int, order: Order, order_hash: bytes
) -> Outcome:
    """Validate, match and possibly rest an order whose signature and nonce were checked."""
    market = require_market(view, order.market)
    check_order(order, market, context)
    tif = order.time_in_force
    may_rest = tif in (TimeInForce.GTC, TimeInForce.POST_ONLY)
    order_id = order_id_of(order_hash)
    if may_rest:
        if load_order(view, order_id) is not None:
            raise Rejected(Reason.ORDER_ID_TAKEN, f"order id {order_id} is in use")
        if len(require_account(view, account_id).orders) >= MAX_OPEN_ORDERS:
            raise Rejected(Reason.TOO_MANY_ORDERS, f"{MAX_OPEN_ORDERS} orders are resting")
    tick = order.price // market.tick_size
    if tif == TimeInForce.POST_ONLY:
        best = best_tick(view, order.market, side_of(not order.is_buy))
        if best != 0 and crosses(best, tick, order.is_buy):
            raise Rejected(Reason.WOULD_CROSS, "a post-only order would match on arrival")
    if order.reduce_only:
        size = position_size(require_account(view, account_id), order.market)
        if size == 0 or (size > 0) == order.is_buy:
            raise Rejected(Reason.NOTHING_TO_REDUCE, "reduce-only needs an opposite position")

    match = match_order(view, context, account_id, order, market.tick_size)
    if tif == TimeInForce.FOK and match.remaining > 0:
        raise Rejected(Reason.NOT_FILLED, f"fill-or-kill filled {match.filled} of {order.size}")
    end, resting = match.end, 0
    if match.remaining > 0 and may_rest and end == OrderEnd.NO_LIQUIDITY:
        rest_order(view, order_id, RestingOrder(
            account_id, order.market, order.is_buy, tick, order.size, match.remaining,
            order.expiry, NIL, NIL, order_hash,
        ))  # fmt: skip
        end, resting = OrderEnd.RESTING, match.remaining
    result = OrderResult(order_hash, match.filled, match.notional, resting, end)
    return Outcome(
        Reason.OK,
        account=account_id,
        order=result,
        fills=tuple(match.fills),
        removals=tuple(match.removals),
    )


@dataclass(slots=True)
class Match:
    """The running result of matching one taker order."""

    remaining: int
    """Size not yet filled."""

    filled: int = 0
    """Size filled."""

    notional: int = 0
    """Sum of ``price * size`` over the fills."""

    end: OrderEnd = OrderEnd.FILLED
    """Why matching ended."""

    fills: list[Fill] = field(default_factory=list)
    """The fills, in order."""

    removals: list[Removal] = field(default_factory=list)
    """Makers removed on the way."""


def match_order(
    view: StateView, context: BatchContext, account_id: int, order: Order, tick_size: int
) -> Match:
    """
    Match a taker order against the opposite side, best level first and FIFO within
    it, until it is filled, no maker crosses its price, it has visited
    ``MAX_MATCHES`` makers, its account cannot margin the next fill, or (reduce-only)
    its position is closed.
    """
    match = Match(order.size)
    taker_tick = order.price // tick_size
    maker_side = side_of(not order.is_buy)
    visits = 0
    while match.remaining > 0:
        position = 0
        if order.reduce_only:
            position = position_size(require_account(view, account_id), order.market)
            if position == 0:
                match.end = OrderEnd.REDUCED
                break
        best = best_tick(view, order.market, maker_side)
        if best == 0 or not crosses(best, taker_tick, order.is_buy):
            match.end = OrderEnd.NO_LIQUIDITY
            break
        if visits == MAX_MATCHES:
            match.end = OrderEnd.MATCH_LIMIT
            break
        visits += 1
        maker_id = level_head(view, order.market, maker_side, best)
        maker = load_order(view, maker_id)
        assert maker is not None, "a level's head order exists"
        if maker.expiry != 0 and maker.expiry <= context.timestamp:
            _drop(view, match, maker_id, maker, RemovalReason.EXPIRED)
            continue
        if maker.account == account_id:
            _drop(view, match, maker_id, maker, RemovalReason.SELF_TRADE)
            continue
        size = min(match.remaining, maker.remaining)
        if order.reduce_only:
            size = min(size, abs(position))
        price = best * tick_size
        status, maker_fee, taker_fee = execute_fill(view, account_id, maker, price, size)
        if status == FillStatus.MAKER_MARGIN:
            _drop(view, match, maker_id, maker, RemovalReason.MAKER_MARGIN)
            continue
        if status == FillStatus.TAKER_MARGIN:
            match.end = OrderEnd.TAKER_MARGIN
            break
        match.fills.append(Fill(maker.account, maker.order_hash, price, size, maker_fee, taker_fee))
        match.remaining -= size
        match.filled += size
        match.notional += price * size
        reduce_level(view, order.market, maker_side, best, size)
        maker.remaining -= size
        if maker.remaining == 0:
            remove_order(view, maker_id, maker)
        else:
            store_order(view, maker_id, maker)
    return match


def _drop(
    view: StateView, match: Match, order_id: int, order: RestingOrder, reason: RemovalReason
) -> None:
    remove_order(view, order_id, order)
    match.removals.append(Removal(order.account, order.order_hash, reason))


def level_head(view: StateView, market_id: int, side: int, tick: int) -> int:
    """The oldest order id of an occupied level."""
    level = load_level(view, market_id, side, tick)
    assert level is not None, "an occupied tick has a level"
    return level.head


def rest_order(view: StateView, order_id: int, order: RestingOrder) -> None:
    """Put the remainder of a taker order on the book and in its account's open orders."""
    append_order(view, order_id, order)
    account = require_account(view, order.account)
    account.orders.append(order_id)
    store_account(view, order.account, account)


def apply_cancel(view: StateView, account_id: int, message: Cancel) -> Outcome:
    """Remove one of the account's resting orders, named by its hash."""
    order_id = order_id_of(message.order_hash)
    order = load_order(view, order_id)
    if order is None or order.order_hash != message.order_hash or order.account != account_id:
        raise Rejected(Reason.ORDER_NOT_FOUND, "no resting order of this account has this hash")
    remove_order(view, order_id, order)
    removal = Removal(account_id, order.order_hash, RemovalReason.CANCELLED)
    return Outcome(Reason.OK, account=account_id, removals=(removal,))


def apply_cancel_all(view: StateView, account_id: int, message: CancelAll) -> Outcome:
    """Remove every resting order of the account in one market (or in all: ``ALL_MARKETS``)."""
    removals = []
    for order_id in list(require_account(view, account_id).orders):
        order = load_order(view, order_id)
        assert order is not None, "an account's open order exists"
        if message.market in (ALL_MARKETS, order.market):
            remove_order(view, order_id, order)
            removals.append(Removal(account_id, order.order_hash, RemovalReason.CANCELLED))
    return Outcome(Reason.OK, account=account_id, removals=tuple(removals))
