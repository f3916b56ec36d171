"""
What the JSON-RPC API shows of the state: accounts, markets, the book, orders.

Integers that can exceed 2^53 travel as decimal strings, hashes and addresses as
0x-hex (INTERFACE.md). Everything here reads the sequencer's live state (soft
finality: every sequenced transaction included); nothing here writes.

Orders are also tracked by :class:`OrderIndex`, kept from the STF's outcomes (a
taker order's own result, the fills it made against resting orders, removals),
so an order that has left the book still has a status. The index is rebuilt by
the engine's replay at start, like the state.
"""

from dataclasses import dataclass
from typing import Any

from node.protocol.book import best_tick, occupied_ticks
from node.protocol.genesis import Genesis
from node.protocol.margin import account_health
from node.protocol.records import (
    ASKS,
    BIDS,
    load_account,
    load_level,
    load_market,
    load_order,
    order_id_of,
)
from node.protocol.state import StateView
from node.protocol.step import OrderEnd, Outcome, RemovalReason
from node.protocol.transactions import Order


def hex0x(data: bytes) -> str:
    """``data`` as 0x-hex."""
    return "0x" + data.hex()


def market_json(view: StateView, genesis: Genesis, market_id: int) -> dict[str, Any] | None:
    """A market's parameters and live figures, or None if there is no such market."""
    market = load_market(view, market_id)
    if market is None:
        return None
    spec = genesis.market(market_id)
    bid, ask = best_tick(view, market_id, BIDS), best_tick(view, market_id, ASKS)
    return {
        "id": market_id,
        "symbol": spec.symbol,
        "tickSize": str(market.tick_size),
        "lotSize": str(market.lot_size),
        "priceDecimals": spec.price_decimals,
        "sizeDecimals": spec.size_decimals,
        "priceUnit": f"1e-{spec.price_decimals} USD per unit",
        "sizeUnit": f"1e-{spec.size_decimals} units",
        "initialMarginBps": market.initial_margin_bps,
        "maintenanceMarginBps": market.maintenance_margin_bps,
        "makerFeeBps": market.maker_fee_bps,
        "takerFeeBps": market.taker_fee_bps,
        "maxFundingPpm": market.max_funding_ppm,
        "oraclePrice": str(market.oracle_price),
        "oracleTime": market.oracle_time,
        "lastPrice": str(market.last_price),
        "markPrice": str(market.oracle_price),
        "fundingIndex": str(market.funding_index),
        "fundingBalance": str(market.funding_balance),
        "bestBid": str(bid * market.tick_size) if bid else None,
        "bestAsk": str(ask * market.tick_size) if ask else None,
    }


def account_json(view: StateView, account_id: int) -> dict[str, Any] | None:
    """An account's balances, positions, open orders and health, or None if unknown."""
    account = load_account(view, account_id)
    if account is None:
        return None
    health = account_health(view, account)
    open_orders = []
    for order_id in account.orders:
        order = load_order(view, order_id)
        if order is not None:
            open_orders.append(hex0x(order.order_hash))
    return {
        "id": account_id,
        "address": hex0x(account.owner),
        "collateral": str(account.collateral),
        "nonce": {"base": str(account.nonce_base), "used": hex(account.nonce_bits)},
        "positions": [
            {"market": p.market, "size": str(p.size), "fundingIndex": str(p.funding_index)}
            for p in account.positions
        ],
        "openOrders": open_orders,
        "equity": str(health.equity),
        "initialMargin": str(health.initial),
        "maintenanceMargin": str(health.maintenance),
        "freeCollateral": str(health.equity - health.initial),
        "healthy": health.equity >= health.maintenance,
    }


def book_json(view: StateView, market_id: int, depth: int) -> dict[str, Any] | None:
    """The best ``depth`` price levels of each side, or None if there is no such market."""
    market = load_market(view, market_id)
    if market is None:
        return None

    def side(which: int) -> list[dict[str, str]]:
        levels = []
        for tick in occupied_ticks(view, market_id, which, depth):
            level = load_level(view, market_id, which, tick)
            assert level is not None, "an occupied tick has a level"
            levels.append({"price": str(tick * market.tick_size), "size": str(level.size)})
        return levels

    return {"market": market_id, "bids": side(BIDS), "asks": side(ASKS)}


@dataclass
class OrderInfo:
    """What is known of an order that was ever sequenced."""

    account: int
    market: int
    is_buy: bool
    price: int
    size: int
    filled: int = 0
    status: str = "open"
    """open | filled | cancelled | expired | selfTrade | makerMargin | notRested"""


_REMOVAL_STATUS = {
    RemovalReason.CANCELLED: "cancelled",
    RemovalReason.EXPIRED: "expired",
    RemovalReason.SELF_TRADE: "selfTrade",
    RemovalReason.MAKER_MARGIN: "makerMargin",
}


class OrderIndex:
    """Every order ever sequenced, by hash, kept from the outcomes (in memory)."""

    def __init__(self) -> None:
        self.orders: dict[bytes, OrderInfo] = {}

    def record(self, order: Order | None, outcome: Outcome) -> None:
        """Fold one applied step's outcome in (``order``: the step's order, if it is one)."""
        if order is not None and outcome.order is not None:
            result = outcome.order
            info = OrderInfo(
                order.account, order.market, order.is_buy, order.price, order.size, result.filled
            )
            if result.resting:
                info.status = "open"
            elif result.filled == order.size:
                info.status = "filled"
            else:
                info.status = "notRested" if result.end != OrderEnd.FILLED else "filled"
            self.orders[result.order_hash] = info
        for fill in outcome.fills:
            maker = self.orders.get(fill.maker_order)
            if maker is not None:
                maker.filled += fill.size
                if maker.filled >= maker.size:
                    maker.status = "filled"
        for removal in outcome.removals:
            removed = self.orders.get(removal.order_hash)
            if removed is not None:
                removed.status = _REMOVAL_STATUS[removal.reason]

    def json(self, view: StateView, order_hash: bytes) -> dict[str, Any] | None:
        """The order's state, or None if no such order was sequenced."""
        info = self.orders.get(order_hash)
        if info is None:
            return None
        resting = load_order(view, order_id_of(order_hash))
        remaining = resting.remaining if resting is not None else 0
        return {
            "orderHash": hex0x(order_hash),
            "account": info.account,
            "market": info.market,
            "isBuy": info.is_buy,
            "price": str(info.price),
            "size": str(info.size),
            "filled": str(info.filled),
            "remaining": str(remaining),
            "status": "open" if resting is not None else info.status,
        }
