"""
Invariants of the exchange state, checked by walking the state itself.

Nothing here models the exchange: the checks read records (through the same
record codecs the STF uses) and enumerate whole tables by walking the Merkle
trees of a committed :class:`~node.protocol.state.State`, so an orphaned record
(an order no level links to, a level no bitmap marks, a stale bitmap word)
cannot hide. Used by tests/unit/test_stf_properties.py.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from node.protocol.book import best_tick
from node.protocol.merkle import ZERO_HASHES
from node.protocol.records import (
    ASKS,
    BIDS,
    MAX_OPEN_ORDERS,
    MAX_POSITION_SIZE,
    MAX_POSITIONS,
    NIL,
    Account,
    Level,
    Market,
    RestingOrder,
    book_key,
    decode_account,
    decode_exchange,
    decode_market,
    decode_withdrawal,
    level_key,
    load_level,
    load_order,
    load_word,
    order_id_of,
)
from node.protocol.state import (
    LAYOUT,
    TABLE_ACCOUNTS,
    TABLE_BOOK,
    TABLE_LEVELS,
    TABLE_MARKETS,
    TABLE_META,
    TABLE_ORDERS,
    TABLE_WITHDRAWALS,
    State,
    Table,
)
from node.protocol.tree import NodeStore

Key = tuple[int, int]


# Walking the Merkle trees ---------------------------------------------------------------


def table_records(state: State, table: Table) -> dict[int, bytes]:
    """Every non-empty record of ``table`` in the committed ``state``, by index."""
    assert state.dirty_count == 0, "commit before enumerating a table"
    store = state.store
    records: dict[int, bytes] = {}

    def walk(node: bytes, height: int, prefix: int) -> None:
        if node == ZERO_HASHES[height]:
            return
        preimage = store.get_node(node)
        assert preimage is not None, f"node {node.hex()} missing from the store"
        if height == 0:
            records[prefix] = preimage
            return
        walk(preimage[:32], height - 1, prefix << 1)
        walk(preimage[32:], height - 1, (prefix << 1) | 1)

    walk(state.table_root(table.id), table.depth, 0)
    return records


def table_roots(state: State) -> tuple[bytes, ...]:
    """The committed root of every table of the layout, in layout order."""
    assert state.dirty_count == 0, "commit before reading table roots"
    return tuple(state.table_root(table.id) for table in LAYOUT.tables)


def changed_keys(store: NodeStore, before: Sequence[bytes], after: Sequence[bytes]) -> set[Key]:
    """
    The ``(table, index)`` keys whose record differs between two committed states
    given by their table roots (:func:`table_roots`): a diff of the two trees that
    descends only into subtrees whose hashes differ.
    """
    changed: set[Key] = set()

    def children(node: bytes, height: int) -> tuple[bytes, bytes]:
        if node == ZERO_HASHES[height]:
            return ZERO_HASHES[height - 1], ZERO_HASHES[height - 1]
        preimage = store.get_node(node)
        assert preimage is not None, f"node {node.hex()} missing from the store"
        return preimage[:32], preimage[32:]

    def diff(table: int, a: bytes, b: bytes, height: int, prefix: int) -> None:
        if a == b:
            return
        if height == 0:
            changed.add((table, prefix))
            return
        a_left, a_right = children(a, height)
        b_left, b_right = children(b, height)
        diff(table, a_left, b_left, height - 1, prefix << 1)
        diff(table, a_right, b_right, height - 1, (prefix << 1) | 1)

    for table, a, b in zip(LAYOUT.tables, before, after, strict=True):
        diff(table.id, a, b, table.depth, 0)
    return changed


# Conservation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """The collateral in every place it can be, and the open interest per market."""

    collateral: int
    insurance_fund: int
    funding_balances: int
    withdrawals: int
    net_size: dict[int, int]

    @property
    def total(self) -> int:
        return self.collateral + self.insurance_fund + self.funding_balances + self.withdrawals


def totals(state: State) -> Totals:
    """
    Sum collateral over every account record in the state, the insurance fund,
    every market's funding balance and every withdrawal record; also check that
    the withdrawal records are exactly ids ``0 .. withdrawalCount - 1``.
    """
    exchange = decode_exchange(state.get(TABLE_META.id, 0))
    markets = {i: decode_market(r) for i, r in table_records(state, TABLE_MARKETS).items()}
    withdrawals = table_records(state, TABLE_WITHDRAWALS)
    assert sorted(withdrawals) == list(range(exchange.withdrawal_count)), (
        f"withdrawal ids {sorted(withdrawals)} but withdrawalCount {exchange.withdrawal_count}"
    )
    collateral = 0
    net_size = dict.fromkeys(markets, 0)
    for record in table_records(state, TABLE_ACCOUNTS).values():
        account = decode_account(record)
        collateral += account.collateral
        for position in account.positions:
            assert position.market in markets, f"position in unknown market {position.market}"
            net_size[position.market] += position.size
    return Totals(
        collateral=collateral,
        insurance_fund=exchange.insurance_fund,
        funding_balances=sum(m.funding_balance for m in markets.values()),
        withdrawals=sum(decode_withdrawal(r).amount for r in withdrawals.values()),
        net_size=net_size,
    )


def check_conservation(state: State, deposited: int) -> Totals:
    """Collateral is conserved (it sums to what was deposited) and PnL is zero-sum."""
    found = totals(state)
    assert found.total == deposited, (
        f"collateral {found.collateral} + insurance {found.insurance_fund} + funding "
        f"{found.funding_balances} + withdrawals {found.withdrawals} = {found.total} "
        f"!= deposited {deposited} (off by {found.total - deposited})"
    )
    for market_id, net in found.net_size.items():
        assert net == 0, f"market {market_id}: position sizes sum to {net}, not 0"
    return found


# The order book ---------------------------------------------------------------------------


def set_bits(word: int) -> list[int]:
    """Positions of the set bits of ``word``, ascending."""
    bits = []
    while word:
        low = word & -word
        bits.append(low.bit_length() - 1)
        word ^= low
    return bits


@dataclass
class LevelWalk:
    """One level as reached from the bitmaps: its tick, record and queue (head first)."""

    tick: int
    level: Level
    queue: list[tuple[int, RestingOrder]]


@dataclass
class SideWalk:
    """One side of one market's book as reached from its bitmaps."""

    market: int
    side: int
    levels: list[LevelWalk] = field(default_factory=list)
    words: set[int] = field(default_factory=set)
    """Book-table keys of the non-zero bitmap words reached."""


def walk_side(state: State, market_id: int, side: int) -> SideWalk:
    """
    Walk one side of a book from its three-high tick bitmap, checking the words,
    each marked level and each level's doubly linked queue on the way.
    """
    walk = SideWalk(market_id, side)
    where = f"market {market_id} {'bids' if side == BIDS else 'asks'}"
    top = load_word(state, market_id, side, 2, 0)
    ticks: list[int] = []
    if top:
        walk.words.add(book_key(market_id, side, 2, 0))
    for high in set_bits(top):
        middle_word = load_word(state, market_id, side, 1, high)
        assert middle_word, f"{where}: height-2 bit {high} marks an empty height-1 word"
        walk.words.add(book_key(market_id, side, 1, high))
        for middle in set_bits(middle_word):
            index = (high << 8) | middle
            low_word = load_word(state, market_id, side, 0, index)
            assert low_word, f"{where}: height-1 bit {index} marks an empty height-0 word"
            walk.words.add(book_key(market_id, side, 0, index))
            ticks.extend((index << 8) | low for low in set_bits(low_word))
    ticks.sort(reverse=side == BIDS)
    assert best_tick(state, market_id, side) == (ticks[0] if ticks else 0), (
        f"{where}: best_tick disagrees with the bitmap walk"
    )
    is_buy = side == BIDS
    for tick in ticks:
        assert tick != 0, f"{where}: tick 0 is marked"
        level = load_level(state, market_id, side, tick)
        assert level is not None, f"{where}: tick {tick} is marked but has no level"
        assert NIL not in (level.head, level.tail), f"{where}: empty level at tick {tick}"
        queue: list[tuple[int, RestingOrder]] = []
        seen: set[int] = set()
        previous, current = NIL, level.head
        while current != NIL:
            assert current not in seen, f"{where} tick {tick}: the queue has a cycle"
            seen.add(current)
            order = load_order(state, current)
            assert order is not None, f"{where} tick {tick}: queue links to missing order {current}"
            assert order.prev == previous, (
                f"{where} tick {tick}: order {current}.prev={order.prev}, expected {previous}"
            )
            assert (order.market, order.is_buy, order.tick) == (market_id, is_buy, tick), (
                f"{where} tick {tick}: order {current} is {order}"
            )
            assert 0 < order.remaining <= order.size, f"order {current}: {order}"
            assert order_id_of(order.order_hash) == current, f"order {current}: id != hash id"
            queue.append((current, order))
            previous, current = current, order.next
        assert level.tail == previous, f"{where} tick {tick}: tail {level.tail} != {previous}"
        total = sum(order.remaining for _, order in queue)
        assert level.size == total, f"{where} tick {tick}: level size {level.size} != {total}"
        walk.levels.append(LevelWalk(tick, level, queue))
    return walk


@dataclass
class BookSummary:
    """What :func:`check_books` found: every side walked and every resting order by id."""

    sides: list[SideWalk]
    orders: dict[int, RestingOrder]
    accounts: dict[int, Account]


def check_books(state: State, rest_order: Mapping[bytes, int] | None = None) -> BookSummary:
    """
    Check every book of the committed ``state`` against its bitmaps, its levels,
    the orders table and the accounts' open-order lists; with ``rest_order`` (order
    hash -> sequence number of the step that rested it), also check that each
    level's queue is in resting order (FIFO).
    """
    markets: dict[int, Market] = {
        i: decode_market(r) for i, r in table_records(state, TABLE_MARKETS).items()
    }
    accounts = {i: decode_account(r) for i, r in table_records(state, TABLE_ACCOUNTS).items()}
    sides = [walk_side(state, m, side) for m in sorted(markets) for side in (BIDS, ASKS)]

    orders: dict[int, RestingOrder] = {}
    level_keys: set[int] = set()
    words: set[int] = set()
    for walk in sides:
        words |= walk.words
        for level in walk.levels:
            level_keys.add(level_key(walk.market, walk.side, level.tick))
            for order_id, order in level.queue:
                assert order_id not in orders, f"order {order_id} is in two queues"
                orders[order_id] = order
            if rest_order is not None:
                hashes = [order.order_hash for _, order in level.queue]
                missing = [h.hex() for h in hashes if h not in rest_order]
                assert not missing, f"orders on the book that no outcome rested: {missing}"
                sequence = [rest_order[h] for h in hashes]
                assert sequence == sorted(sequence), (
                    f"market {walk.market} side {walk.side} tick {level.tick}: queue is not "
                    f"in resting order (rest sequence numbers {sequence})"
                )

    # Best bid < best ask: the book is never crossed.
    for bids, asks in zip(sides[0::2], sides[1::2], strict=True):
        if bids.levels and asks.levels:
            assert bids.levels[0].tick < asks.levels[0].tick, (
                f"market {bids.market} is crossed: bid {bids.levels[0].tick} >= "
                f"ask {asks.levels[0].tick}"
            )

    # No orphans: every record of the book tables is reached from the bitmaps.
    assert set(table_records(state, TABLE_ORDERS)) == set(orders), "orphan or missing order record"
    assert set(table_records(state, TABLE_LEVELS)) == level_keys, "orphan or missing level record"
    book_words = table_records(state, TABLE_BOOK)
    assert set(book_words) == words, "orphan bitmap word"
    assert all(len(w) == 32 and any(w) for w in book_words.values()), "malformed bitmap word"

    # Accounts' open orders are exactly the book's orders, by owner.
    listed: dict[int, int] = {}
    for account_id, account in accounts.items():
        assert len(account.orders) <= MAX_OPEN_ORDERS, f"account {account_id}: too many orders"
        assert len(set(account.orders)) == len(account.orders), f"account {account_id}: dupes"
        for order_id in account.orders:
            assert order_id in orders, f"account {account_id} lists order {order_id}, not on book"
            assert orders[order_id].account == account_id, f"order {order_id}: wrong owner"
            listed[order_id] = account_id
        if rest_order is not None:
            sequence = [rest_order[orders[order_id].order_hash] for order_id in account.orders]
            assert sequence == sorted(sequence), f"account {account_id}: orders not oldest first"
        assert len(account.positions) <= MAX_POSITIONS, f"account {account_id}: positions"
        position_markets = [p.market for p in account.positions]
        assert len(set(position_markets)) == len(position_markets), f"account {account_id}"
        for position in account.positions:
            assert position.size != 0 and abs(position.size) <= MAX_POSITION_SIZE
    unlisted = set(orders) - set(listed)
    assert not unlisted, f"orders on the book missing from their owner's list: {unlisted}"
    for order_id, order in orders.items():
        assert order.account in accounts, f"order {order_id} of unregistered {order.account}"
    return BookSummary(sides, orders, accounts)
