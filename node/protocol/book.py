"""
The order book in the state (docs/protocol.md, section 7).

Per market and side, each occupied price tick has a level record holding a
doubly linked FIFO queue of resting orders (head matched first). Which ticks are
occupied is kept in a three-high tree of 256-bit words: bit ``b`` of word ``w``
at height 0 marks tick ``w * 256 + b``; a height-1 bit marks a non-zero
height-0 word; the single height-2 word marks non-zero height-1 words. Finding
the best tick reads three words, and adding or removing a tick writes at most
three, so every book operation is bounded whatever the book holds.
"""

from .records import (
    ASKS,
    BIDS,
    NIL,
    Level,
    RestingOrder,
    delete_order,
    load_account,
    load_level,
    load_order,
    load_word,
    store_account,
    store_level,
    store_order,
    store_word,
)
from .state import StateView

HEIGHTS = 3
"""Heights of the tick index: ``256 ** 3 = 2 ** 24`` ticks."""


def side_of(is_buy: bool) -> int:
    """The book side an order rests on."""
    return BIDS if is_buy else ASKS


def _best_bit(bits: int, side: int) -> int:
    """The best set bit of a non-zero word: the highest for bids, the lowest for asks."""
    if side == BIDS:
        return bits.bit_length() - 1
    return (bits & -bits).bit_length() - 1


def best_tick(view: StateView, market_id: int, side: int) -> int:
    """The best occupied tick of one side (highest bid, lowest ask), or 0 if the side is empty."""
    top = load_word(view, market_id, side, 2, 0)
    if top == 0:
        return 0
    high = _best_bit(top, side)
    middle = _best_bit(load_word(view, market_id, side, 1, high), side)
    low = _best_bit(load_word(view, market_id, side, 0, (high << 8) | middle), side)
    return (high << 16) | (middle << 8) | low


def occupied_ticks(view: StateView, market_id: int, side: int, limit: int) -> list[int]:
    """
    The best ``limit`` occupied ticks of one side, best first (bids descending, asks
    ascending). A read for the API (order book depth), not part of the STF: it walks
    the tick index down from the height-2 word, reading one word per non-empty
    subtree it enters.
    """
    ticks: list[int] = []

    def bits_in_order(bits: int) -> list[int]:
        found = [b for b in range(256) if bits >> b & 1]
        return found[::-1] if side == BIDS else found

    def walk(height: int, word: int) -> None:
        bits = load_word(view, market_id, side, height, word)
        for bit in bits_in_order(bits):
            if len(ticks) >= limit:
                return
            if height == 0:
                ticks.append((word << 8) | bit)
            else:
                walk(height - 1, (word << 8) | bit)

    if limit > 0:
        walk(HEIGHTS - 1, 0)
    return ticks


def mark_tick(view: StateView, market_id: int, side: int, tick: int) -> None:
    """Mark ``tick`` occupied, going up while the word was empty before."""
    for height in range(HEIGHTS):
        word = tick >> (8 * (height + 1))
        bit = (tick >> (8 * height)) & 0xFF
        bits = load_word(view, market_id, side, height, word)
        store_word(view, market_id, side, height, word, bits | (1 << bit))
        if bits != 0:
            return


def clear_tick(view: StateView, market_id: int, side: int, tick: int) -> None:
    """Mark ``tick`` empty, going up while the word becomes empty."""
    for height in range(HEIGHTS):
        word = tick >> (8 * (height + 1))
        bit = (tick >> (8 * height)) & 0xFF
        bits = load_word(view, market_id, side, height, word) & ~(1 << bit)
        store_word(view, market_id, side, height, word, bits)
        if bits != 0:
            return


def append_order(view: StateView, order_id: int, order: RestingOrder) -> None:
    """Put a new order at the tail of its level (creating the level), and store it."""
    side = side_of(order.is_buy)
    level = load_level(view, order.market, side, order.tick)
    order.next = NIL
    if level is None:
        mark_tick(view, order.market, side, order.tick)
        order.prev = NIL
        level = Level(order_id, order_id, order.remaining)
    else:
        tail = load_order(view, level.tail)
        assert tail is not None, "a level's tail order exists"
        tail.next = order_id
        store_order(view, level.tail, tail)
        order.prev = level.tail
        level.tail = order_id
        level.size += order.remaining
    store_order(view, order_id, order)
    store_level(view, order.market, side, order.tick, level)


def reduce_level(view: StateView, market_id: int, side: int, tick: int, size: int) -> None:
    """Subtract a fill's ``size`` from the level's total."""
    level = load_level(view, market_id, side, tick)
    assert level is not None, "a filled order's level exists"
    level.size -= size
    store_level(view, market_id, side, tick, level)


def unlink_order(view: StateView, order_id: int, order: RestingOrder) -> None:
    """Take an order out of its level's queue (deleting an emptied level) and delete it."""
    side = side_of(order.is_buy)
    level = load_level(view, order.market, side, order.tick)
    assert level is not None, "a resting order's level exists"
    if order.prev != NIL:
        prev = load_order(view, order.prev)
        assert prev is not None
        prev.next = order.next
        store_order(view, order.prev, prev)
    else:
        level.head = order.next
    if order.next != NIL:
        following = load_order(view, order.next)
        assert following is not None
        following.prev = order.prev
        store_order(view, order.next, following)
    else:
        level.tail = order.prev
    level.size -= order.remaining
    if level.head == NIL:
        store_level(view, order.market, side, order.tick, None)
        clear_tick(view, order.market, side, order.tick)
    else:
        store_level(view, order.market, side, order.tick, level)
    delete_order(view, order_id)


def remove_order(view: StateView, order_id: int, order: RestingOrder) -> None:
    """Remove a resting order from the book and from its owner's list of open orders."""
    unlink_order(view, order_id, order)
    owner = load_account(view, order.account)
    assert owner is not None, "a resting order's owner exists"
    owner.orders.remove(order_id)
    store_account(view, order.account, owner)
