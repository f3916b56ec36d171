"""
The records of the exchange state and their byte encodings.

Every record is a fixed sequence of big-endian fields (docs/protocol.md, section
6): unsigned ``uN`` and two's-complement signed ``iN`` integers of N bits, 20-byte
addresses, 32-byte hashes, and, in an account, two counted arrays. Fixed widths
make the Solidity port a matter of offsets. An absent record is the empty byte
string; the decoders here are only ever given records the STF itself wrote.

The records are plain mutable dataclasses: the STF loads one, changes it and
stores it back at once (never holding a decoded record across a call that may
store the same key), exactly as the Solidity executor does with memory structs.
"""

from dataclasses import dataclass, field
from typing import Final

from .state import (
    TABLE_ACCOUNTS,
    TABLE_BOOK,
    TABLE_LEVELS,
    TABLE_MARKETS,
    TABLE_META,
    TABLE_ORDERS,
    TABLE_WITHDRAWALS,
    StateView,
)

FEE_ACCOUNT: Final = 0
"""The account every trading fee goes to; created at genesis (the bridge assigns ids from 1)."""

EXCHANGE_SLOT: Final = 0
"""Slot of the :class:`Exchange` record in the meta table."""

MAX_OPEN_ORDERS: Final = 16
"""Resting orders one account may have at once, over all markets."""

MAX_POSITIONS: Final = 8
"""Markets one account may hold a position in at once."""

NONCE_WINDOW: Final = 256
"""Width of an account's window of usable nonces (see :func:`node.protocol.accounts.use_nonce`)."""

MARKET_LIMIT: Final = 1 << TABLE_MARKETS.depth
"""Market ids are below this (the markets table's capacity)."""

ACCOUNT_LIMIT: Final = 1 << TABLE_ACCOUNTS.depth
"""Account ids are below this (the accounts table's capacity)."""

ORDER_ID_MODULUS: Final = (1 << TABLE_ORDERS.depth) - 1
"""Order ids are ``orderHash mod ORDER_ID_MODULUS + 1``: never 0, which means "none"."""

MAX_POSITION_SIZE: Final = (1 << 63) - 1
"""Largest absolute position size (it is stored as an ``i64``)."""

NIL: Final = 0
"""The "no order" value of an order-id link."""


class _Reader:
    """Sequential reader of a record's big-endian fields."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint(self, size: int) -> int:
        start = self.pos
        self.pos = start + size
        return int.from_bytes(self.data[start : self.pos], "big")

    def sint(self, size: int) -> int:
        start = self.pos
        self.pos = start + size
        return int.from_bytes(self.data[start : self.pos], "big", signed=True)

    def raw(self, size: int) -> bytes:
        start = self.pos
        self.pos = start + size
        return self.data[start : self.pos]


def _u(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def _i(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big", signed=True)


# Exchange (meta slot 0) -------------------------------------------------------------------


@dataclass(slots=True)
class Exchange:
    """Global parameters and balances. Encoding: ``oracle address | insuranceFund i256 |
    withdrawalCount u64 | liquidationRewardBps u16 | liquidationInsuranceBps u16`` (64 bytes)."""

    oracle: bytes
    """The address whose signature makes an ``OraclePrice`` valid."""

    insurance_fund: int
    """Collateral that absorbs bad debt; funded by liquidation penalties. May go negative."""

    withdrawal_count: int
    """Withdrawal records created so far; the next withdrawal's id."""

    liquidation_reward_bps: int
    """Penalty paid by a liquidated account to its liquidator, in bps of the position's value."""

    liquidation_insurance_bps: int
    """Penalty paid by a liquidated account to the insurance fund, in bps of the value."""


def encode_exchange(value: Exchange) -> bytes:
    """The record bytes of the exchange record."""
    return b"".join(
        (
            value.oracle,
            _i(value.insurance_fund, 32),
            _u(value.withdrawal_count, 8),
            _u(value.liquidation_reward_bps, 2),
            _u(value.liquidation_insurance_bps, 2),
        )
    )


def decode_exchange(record: bytes) -> Exchange:
    """The exchange record from its bytes."""
    r = _Reader(record)
    return Exchange(r.raw(20), r.sint(32), r.uint(8), r.uint(2), r.uint(2))


def load_exchange(view: StateView) -> Exchange:
    """Read the exchange record (always present after genesis)."""
    return decode_exchange(view.get(TABLE_META.id, EXCHANGE_SLOT))


def store_exchange(view: StateView, value: Exchange) -> None:
    """Write the exchange record."""
    view.set(TABLE_META.id, EXCHANGE_SLOT, encode_exchange(value))


# Market -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Market:
    """A perpetual market: its parameters, then its running state.

    Encoding: ``tickSize u64 | lotSize u64 | divisor u64 | initialMarginBps u16 |
    maintenanceMarginBps u16 | makerFeeBps u16 | takerFeeBps u16 | maxFundingPpm u32 |
    oraclePrice u64 | oracleTime u64 | lastPrice u64 | fundingIndex i256 |
    fundingBalance i256`` (124 bytes)."""

    tick_size: int
    """Prices are multiples of this (in price units)."""

    lot_size: int
    """Sizes are multiples of this (in size units)."""

    divisor: int
    """``price * size / divisor`` is a value in collateral base units; divides ``tick * lot``."""

    initial_margin_bps: int
    """Initial margin fraction, in bps of a position's value at the oracle price."""

    maintenance_margin_bps: int
    """Maintenance margin fraction (below the initial one), in bps."""

    maker_fee_bps: int
    """Fee a maker pays on a fill, in bps of the fill's value."""

    taker_fee_bps: int
    """Fee a taker pays on a fill, in bps of the fill's value."""

    max_funding_ppm: int
    """Clamp of the premium that drives funding, in millionths per funding period."""

    oracle_price: int
    """Last index price from the oracle; 0 until the first one (the market does not trade)."""

    oracle_time: int
    """Timestamp of that price; each new one must be later."""

    last_price: int
    """Price of the last fill (0 before any): the mark that funding compares to the index."""

    funding_index: int
    """Cumulative funding per size unit, in price units times ``FUNDING_SCALE``; longs pay
    when it rises."""

    funding_balance: int
    """Funding paid by settled positions and not yet received by the others (zero-sum)."""


def encode_market(value: Market) -> bytes:
    """The record bytes of a market."""
    return b"".join(
        (
            _u(value.tick_size, 8),
            _u(value.lot_size, 8),
            _u(value.divisor, 8),
            _u(value.initial_margin_bps, 2),
            _u(value.maintenance_margin_bps, 2),
            _u(value.maker_fee_bps, 2),
            _u(value.taker_fee_bps, 2),
            _u(value.max_funding_ppm, 4),
            _u(value.oracle_price, 8),
            _u(value.oracle_time, 8),
            _u(value.last_price, 8),
            _i(value.funding_index, 32),
            _i(value.funding_balance, 32),
        )
    )


def decode_market(record: bytes) -> Market:
    """A market from its bytes."""
    r = _Reader(record)
    return Market(
        r.uint(8), r.uint(8), r.uint(8), r.uint(2), r.uint(2), r.uint(2), r.uint(2),
        r.uint(4), r.uint(8), r.uint(8), r.uint(8), r.sint(32), r.sint(32),
    )  # fmt: skip


def load_market(view: StateView, market_id: int) -> Market | None:
    """The market with ``market_id``, or None if there is none (or the id is out of range)."""
    if not 0 <= market_id < MARKET_LIMIT:
        return None
    record = view.get(TABLE_MARKETS.id, market_id)
    return decode_market(record) if record else None


def store_market(view: StateView, market_id: int, value: Market) -> None:
    """Write a market."""
    view.set(TABLE_MARKETS.id, market_id, encode_market(value))


# Account ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Position:
    """A position in one market: ``market u32 | size i64 | fundingIndex i256`` (44 bytes)."""

    market: int
    """Market id."""

    size: int
    """Signed size in size units: positive long, negative short, never 0 when stored."""

    funding_index: int
    """The market's funding index when funding was last settled for this position."""


@dataclass(slots=True)
class Account:
    """An account. Encoding: ``owner address | collateral i256 | nonceBase u64 |
    nonceBits u256 | orderCount u8 | positionCount u8 | orderCount x (orderId u64) |
    positionCount x Position`` (94 to 574 bytes)."""

    owner: bytes
    """The address whose signature authorises the account's transactions."""

    collateral: int
    """Signed collateral balance (a quote balance: buying spends it, selling adds to it)."""

    nonce_base: int
    """Lowest nonce still usable: the window is ``[nonceBase, nonceBase + NONCE_WINDOW)``."""

    nonce_bits: int
    """Bit ``i`` set: nonce ``nonceBase + i`` has been used."""

    orders: list[int] = field(default_factory=list)
    """Ids of the account's resting orders, oldest first."""

    positions: list[Position] = field(default_factory=list)
    """Open positions, in the order they were opened."""


def encode_account(value: Account) -> bytes:
    """The record bytes of an account."""
    parts = [
        value.owner,
        _i(value.collateral, 32),
        _u(value.nonce_base, 8),
        _u(value.nonce_bits, 32),
        _u(len(value.orders), 1),
        _u(len(value.positions), 1),
    ]
    parts.extend(_u(order_id, 8) for order_id in value.orders)
    for position in value.positions:
        parts.extend((_u(position.market, 4), _i(position.size, 8), _i(position.funding_index, 32)))
    return b"".join(parts)


def decode_account(record: bytes) -> Account:
    """An account from its bytes."""
    r = _Reader(record)
    owner, collateral, nonce_base, nonce_bits = r.raw(20), r.sint(32), r.uint(8), r.uint(32)
    order_count, position_count = r.uint(1), r.uint(1)
    orders = [r.uint(8) for _ in range(order_count)]
    positions = [Position(r.uint(4), r.sint(8), r.sint(32)) for _ in range(position_count)]
    return Account(owner, collateral, nonce_base, nonce_bits, orders, positions)


def load_account(view: StateView, account_id: int) -> Account | None:
    """The account with ``account_id``, or None if there is none (or the id is out of range)."""
    if not 0 <= account_id < ACCOUNT_LIMIT:
        return None
    record = view.get(TABLE_ACCOUNTS.id, account_id)
    return decode_account(record) if record else None


def store_account(view: StateView, account_id: int, value: Account) -> None:
    """Write an account."""
    view.set(TABLE_ACCOUNTS.id, account_id, encode_account(value))


def find_position(account: Account, market_id: int) -> Position | None:
    """The account's position in ``market_id``, if it has one."""
    for position in account.positions:
        if position.market == market_id:
            return position
    return None


def position_size(account: Account, market_id: int) -> int:
    """The account's signed position size in ``market_id`` (0 if none)."""
    position = find_position(account, market_id)
    return 0 if position is None else position.size


# Resting order ----------------------------------------------------------------------------


@dataclass(slots=True)
class RestingOrder:
    """An order on the book. Encoding: ``account u64 | market u32 | isBuy u8 | tick u64 |
    size u64 | remaining u64 | expiry u64 | prev u64 | next u64 | orderHash bytes32``
    (93 bytes)."""

    account: int
    """Owner account id."""

    market: int
    """Market id."""

    is_buy: bool
    """Bid (True) or ask."""

    tick: int
    """Limit price in ticks (``price / tickSize``, never 0): the level it rests in."""

    size: int
    """Original size."""

    remaining: int
    """Size still open (never 0 while stored)."""

    expiry: int
    """Unix seconds after which the order is dropped when matching reaches it; 0 = never."""

    prev: int
    """Order id ahead of this one in its level's queue, or :data:`NIL`."""

    next: int
    """Order id behind this one in its level's queue, or :data:`NIL`."""

    order_hash: bytes
    """The order's hash (its transaction hash)."""


def encode_order(value: RestingOrder) -> bytes:
    """The record bytes of a resting order."""
    return b"".join(
        (
            _u(value.account, 8),
            _u(value.market, 4),
            b"\x01" if value.is_buy else b"\x00",
            _u(value.tick, 8),
            _u(value.size, 8),
            _u(value.remaining, 8),
            _u(value.expiry, 8),
            _u(value.prev, 8),
            _u(value.next, 8),
            value.order_hash,
        )
    )


def decode_order(record: bytes) -> RestingOrder:
    """A resting order from its bytes."""
    r = _Reader(record)
    return RestingOrder(
        r.uint(8), r.uint(4), r.uint(1) == 1, r.uint(8), r.uint(8), r.uint(8), r.uint(8),
        r.uint(8), r.uint(8), r.raw(32),
    )  # fmt: skip


def load_order(view: StateView, order_id: int) -> RestingOrder | None:
    """The resting order with ``order_id``, or None."""
    record = view.get(TABLE_ORDERS.id, order_id)
    return decode_order(record) if record else None


def store_order(view: StateView, order_id: int, value: RestingOrder) -> None:
    """Write a resting order."""
    view.set(TABLE_ORDERS.id, order_id, encode_order(value))


def delete_order(view: StateView, order_id: int) -> None:
    """Remove a resting order's record."""
    view.set(TABLE_ORDERS.id, order_id, b"")


def order_id_of(order_hash: bytes) -> int:
    """The order id of an order hash: ``uint256(orderHash) % ORDER_ID_MODULUS + 1``."""
    return int.from_bytes(order_hash, "big") % ORDER_ID_MODULUS + 1


# Price level ------------------------------------------------------------------------------


@dataclass(slots=True)
class Level:
    """A price level's FIFO queue: ``head u64 | tail u64 | size u128`` (32 bytes)."""

    head: int
    """Oldest order id (matched first)."""

    tail: int
    """Newest order id."""

    size: int
    """Sum of the remaining sizes of the level's orders."""


def encode_level(value: Level) -> bytes:
    """The record bytes of a level."""
    return _u(value.head, 8) + _u(value.tail, 8) + _u(value.size, 16)


def decode_level(record: bytes) -> Level:
    """A level from its bytes."""
    r = _Reader(record)
    return Level(r.uint(8), r.uint(8), r.uint(16))


# Withdrawal -------------------------------------------------------------------------------


@dataclass(slots=True)
class WithdrawalRecord:
    """Collateral to pay on L1: ``account u64 | recipient address | amount u64`` (36 bytes)."""

    account: int
    """The account it was withdrawn from."""

    recipient: bytes
    """The L1 address the bridge pays."""

    amount: int
    """Collateral in token base units."""


def encode_withdrawal(value: WithdrawalRecord) -> bytes:
    """The record bytes of a withdrawal."""
    return _u(value.account, 8) + value.recipient + _u(value.amount, 8)


def decode_withdrawal(record: bytes) -> WithdrawalRecord:
    """A withdrawal record from its bytes."""
    r = _Reader(record)
    return WithdrawalRecord(r.uint(8), r.raw(20), r.uint(8))


def store_withdrawal(view: StateView, withdrawal_id: int, value: WithdrawalRecord) -> None:
    """Write a withdrawal record."""
    view.set(TABLE_WITHDRAWALS.id, withdrawal_id, encode_withdrawal(value))


# Keys of the book tables ------------------------------------------------------------------

BIDS: Final = 0
"""Side number of bids (buy orders)."""

ASKS: Final = 1
"""Side number of asks (sell orders)."""

TICK_BITS: Final = 24
"""Prices are below ``2**TICK_BITS`` ticks: three 256-bit words deep in the book index."""


def level_key(market_id: int, side: int, tick: int) -> int:
    """Index of a price level in the levels table: ``market << 25 | side << 24 | tick``."""
    return (market_id << 25) | (side << 24) | tick


def book_key(market_id: int, side: int, height: int, word: int) -> int:
    """Index of a book-index word: ``market << 19 | side << 18 | height << 16 | word``."""
    return (market_id << 19) | (side << 18) | (height << 16) | word


def load_level(view: StateView, market_id: int, side: int, tick: int) -> Level | None:
    """The level at ``(market, side, tick)``, or None."""
    record = view.get(TABLE_LEVELS.id, level_key(market_id, side, tick))
    return decode_level(record) if record else None


def store_level(view: StateView, market_id: int, side: int, tick: int, value: Level | None) -> None:
    """Write a level, or delete it (None)."""
    record = b"" if value is None else encode_level(value)
    view.set(TABLE_LEVELS.id, level_key(market_id, side, tick), record)


def load_word(view: StateView, market_id: int, side: int, height: int, word: int) -> int:
    """A book-index word as an integer (an absent word is 0)."""
    record = view.get(TABLE_BOOK.id, book_key(market_id, side, height, word))
    return int.from_bytes(record, "big")


def store_word(
    view: StateView, market_id: int, side: int, height: int, word: int, bits: int
) -> None:
    """Write a book-index word; a zero word is deleted."""
    record = bits.to_bytes(32, "big") if bits else b""
    view.set(TABLE_BOOK.id, book_key(market_id, side, height, word), record)
