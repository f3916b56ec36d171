"""
The Merkle state of Ratchet: one fixed-depth subtree per table under one global root.

Records are opaque byte strings keyed by ``(table, index)``, where ``index`` is a
dense integer id (account id, market id, order slot, ...). Each table is a
fixed-depth keccak-256 tree (see :mod:`node.protocol.merkle`); the roots of the
tables are the leaves of a small global tree of depth :data:`GLOBAL_DEPTH`, whose
root is the state root. Seen from the global root, record ``(t, i)`` is simply
leaf ``(t << depth(t)) | i`` of a tree of depth ``depth(t) + GLOBAL_DEPTH``, so
one proof and one verification rule cover every table.

Writes are buffered; :meth:`State.commit` computes every table root and the
global root once over all dirty leaves and stores the new nodes. Reads see
uncommitted writes.
"""

from dataclasses import dataclass, field
from typing import Final, Protocol

from .errors import InvalidKeyError, MissingNodeError, StateError
from .merkle import EMPTY_LEAF, MAX_DEPTH, ZERO_HASHES, hash_leaf, hash_pair, root_from_path
from .tree import NodeStore, prove_leaf, read_leaf, update_leaves

GLOBAL_DEPTH: Final = 4
"""Depth of the global tree whose leaves are table roots: room for 16 tables."""


@dataclass(frozen=True)
class Table:
    """One table of the state: a fixed-depth tree of records keyed by dense ids."""

    id: int
    """Slot of this table's root among the global tree's leaves."""

    name: str
    """Human name, used in errors, docs and metrics."""

    depth: int
    """Depth of the table's tree: it holds ids ``0 .. 2**depth - 1``."""


@dataclass(frozen=True)
class StateLayout:
    """The set of tables and the global tree above them."""

    tables: tuple[Table, ...]
    """Every table, each in its own global slot."""

    global_depth: int = GLOBAL_DEPTH
    """Depth of the global tree."""

    by_id: dict[int, Table] = field(init=False, repr=False, compare=False)
    """Tables by id (derived)."""

    empty_root: bytes = field(init=False, repr=False, compare=False)
    """The state root when every table is empty (derived)."""

    empty_global_nodes: dict[bytes, bytes] = field(init=False, repr=False, compare=False)
    """Inner global nodes of the empty state (derived), so a fresh store can read it."""

    def __post_init__(self) -> None:
        by_id: dict[int, Table] = {}
        for table in self.tables:
            if not 0 <= table.id < 1 << self.global_depth:
                raise ValueError(f"table {table.name} id {table.id} has no global slot")
            if table.id in by_id:
                raise ValueError(f"two tables share id {table.id}")
            if not 1 <= table.depth <= MAX_DEPTH - self.global_depth:
                raise ValueError(f"table {table.name} depth {table.depth} out of range")
            by_id[table.id] = table
        object.__setattr__(self, "by_id", by_id)
        slots = [self.empty_table_root(slot) for slot in range(1 << self.global_depth)]
        root, nodes = global_tree(slots)
        object.__setattr__(self, "empty_root", root)
        object.__setattr__(self, "empty_global_nodes", nodes)

    def table(self, table_id: int) -> Table:
        """The table with id ``table_id``; :class:`InvalidKeyError` if there is none."""
        try:
            return self.by_id[table_id]
        except KeyError:
            raise InvalidKeyError(f"no table with id {table_id}") from None

    def empty_table_root(self, slot: int) -> bytes:
        """Root of an empty table in ``slot``; an unused slot holds 32 zero bytes."""
        table = self.by_id.get(slot)
        return ZERO_HASHES[table.depth] if table is not None else EMPTY_LEAF

    def check_key(self, table_id: int, index: int) -> Table:
        """The table, after checking that ``index`` is one of its ids."""
        table = self.table(table_id)
        if not 0 <= index < 1 << table.depth:
            raise InvalidKeyError(f"index {index} outside table {table.name} (depth {table.depth})")
        return table


def global_tree(slots: list[bytes]) -> tuple[bytes, dict[bytes, bytes]]:
    """Root and inner nodes (hash -> ``left || right``) of the global tree over table roots."""
    nodes: dict[bytes, bytes] = {}
    level = slots
    while len(level) > 1:
        parents = []
        for i in range(0, len(level), 2):
            pair = level[i] + level[i + 1]
            parent = hash_pair(level[i], level[i + 1])
            nodes[parent] = pair
            parents.append(parent)
        level = parents
    return level[0], nodes


TABLE_META: Final = Table(0, "meta", 8)
"""Global scalars of the exchange: slot 0 holds the :class:`~node.protocol.records.Exchange`."""

TABLE_ACCOUNTS: Final = Table(1, "accounts", 32)
"""Accounts by the dense id the L1 bridge assigns at first deposit (id 0: the fee account)."""

TABLE_MARKETS: Final = Table(2, "markets", 16)
"""Markets by id: parameters, oracle price, funding index."""

TABLE_ORDERS: Final = Table(3, "orders", 40)
"""Resting orders by order id, an id derived from the order hash."""

TABLE_LEVELS: Final = Table(4, "levels", 41)
"""Order-book price levels by ``(market, side, tick)``: the FIFO queue's head, tail and size."""

TABLE_BOOK: Final = Table(5, "book", 35)
"""Per market and side, a three-high tree of 256-bit words marking the occupied ticks."""

TABLE_WITHDRAWALS: Final = Table(6, "withdrawals", 40)
"""Withdrawal records by withdrawal id, proven on L1 once their batch is final."""

LAYOUT: Final = StateLayout(
    (
        TABLE_META,
        TABLE_ACCOUNTS,
        TABLE_MARKETS,
        TABLE_ORDERS,
        TABLE_LEVELS,
        TABLE_BOOK,
        TABLE_WITHDRAWALS,
    )
)
"""
The layout of Ratchet's state. Table depths bound the ids each table can hold;
docs/protocol.md section 6 defines the records stored in each.
"""


@dataclass(frozen=True)
class Proof:
    """A record and the siblings that prove it against a state root."""

    table: int
    """Table id."""

    index: int
    """Record id within the table."""

    record: bytes
    """The record's bytes (empty if absent)."""

    siblings: tuple[bytes, ...]
    """Bottom-up: ``depth(table)`` siblings inside the table, then ``global_depth`` above it."""

    def path(self, layout: StateLayout = LAYOUT) -> int:
        """The record's leaf index in the combined tree of depth ``depth + global_depth``."""
        return (self.table << layout.table(self.table).depth) | self.index

    def root(self, layout: StateLayout = LAYOUT) -> bytes:
        """The state root this proof leads to."""
        return self.root_with(self.record, layout)

    def root_with(self, record: bytes, layout: StateLayout = LAYOUT) -> bytes:
        """The state root after replacing this proof's record with ``record``."""
        return root_from_path(hash_leaf(record), self.path(layout), self.siblings)


def verify_proof(root: bytes, proof: Proof, layout: StateLayout = LAYOUT) -> bool:
    """Whether ``proof`` shows ``proof.record`` at ``(proof.table, proof.index)`` under ``root``."""
    table = layout.by_id.get(proof.table)
    if table is None or not 0 <= proof.index < 1 << table.depth:
        return False
    if len(proof.siblings) != table.depth + layout.global_depth:
        return False
    if any(len(sibling) != 32 for sibling in proof.siblings):
        return False
    return proof.root(layout) == root


class StateView(Protocol):
    """What the state transition function reads and writes: records by key."""

    def get(self, table: int, index: int) -> bytes:
        """The record at ``(table, index)``, b"" if absent."""
        ...

    def set(self, table: int, index: int, record: bytes) -> None:
        """Replace the record at ``(table, index)``; b"" deletes it."""
        ...


class State:
    """
    The state at a committed root, plus buffered writes.

    ``store`` holds the tree nodes (and is written only by :meth:`commit`). Reads
    of committed records are cached in memory, so the sequencer's hot path costs
    a dict lookup; the tree is walked only on a cache miss. The cache keeps every
    record read or written: the live exchange state is meant to fit in memory
    (about 100 MB per million 96-byte records).
    """

    def __init__(
        self, store: NodeStore, root: bytes | None = None, layout: StateLayout = LAYOUT
    ) -> None:
        self.store = store
        self.layout = layout
        self._root = layout.empty_root if root is None else root
        self._table_roots = self._load_table_roots(self._root)
        self._dirty: dict[tuple[int, int], bytes] = {}
        self._cache: dict[tuple[int, int], bytes] = {}

    @property
    def root(self) -> bytes:
        """The root of the last committed state (uncommitted writes are not in it)."""
        return self._root

    @property
    def dirty_count(self) -> int:
        """How many records have uncommitted writes."""
        return len(self._dirty)

    def table_roots(self) -> tuple[bytes, ...]:
        """The committed global tree's leaves: every table root, unused slots zero."""
        return tuple(self._table_roots)

    def table_root(self, table_id: int) -> bytes:
        """The committed root of one table."""
        self.layout.table(table_id)
        return self._table_roots[table_id]

    def get(self, table: int, index: int) -> bytes:
        key = (table, index)
        record = self._dirty.get(key)
        if record is not None:
            return record
        record = self._cache.get(key)
        if record is not None:
            return record
        spec = self.layout.check_key(table, index)
        record = read_leaf(self.store, self._table_roots[table], spec.depth, index)
        self._cache[key] = record
        return record

    def set(self, table: int, index: int, record: bytes) -> None:
        if type(record) is not bytes:
            raise TypeError(f"a record is bytes, not {type(record).__name__}")
        self.layout.check_key(table, index)
        self._dirty[(table, index)] = record

    def commit(self) -> bytes:
        """Hash every dirty leaf into its table and the global tree, store the new nodes."""
        if not self._dirty:
            return self._root
        by_table: dict[int, dict[int, bytes]] = {}
        nodes: dict[bytes, bytes] = {}
        for (table, index), record in self._dirty.items():
            leaf = hash_leaf(record)
            by_table.setdefault(table, {})[index] = leaf
            if record:
                nodes[leaf] = record
        table_roots = list(self._table_roots)
        for table, leaves in by_table.items():
            depth = self.layout.by_id[table].depth
            table_roots[table], table_nodes = update_leaves(
                self.store, table_roots[table], depth, leaves
            )
            nodes.update(table_nodes)
        root, global_nodes = global_tree(table_roots)
        nodes.update(global_nodes)
        self.store.put_nodes(nodes.items())
        self._root = root
        self._table_roots = table_roots
        self._cache.update(self._dirty)
        self._dirty.clear()
        return root

    def discard(self) -> None:
        """Drop every uncommitted write."""
        self._dirty.clear()

    def prove(self, table: int, index: int) -> Proof:
        """The proof of a record against the committed root; refuses while writes are pending."""
        if self._dirty:
            raise StateError("commit before proving: the state has uncommitted writes")
        spec = self.layout.check_key(table, index)
        record, siblings = prove_leaf(self.store, self._table_roots[table], spec.depth, index)
        level = self._table_roots
        path = table
        for _ in range(self.layout.global_depth):
            siblings.append(level[path ^ 1])
            level = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            path >>= 1
        return Proof(table, index, record, tuple(siblings))

    def _load_table_roots(self, root: bytes) -> list[bytes]:
        level = [root]
        for _ in range(self.layout.global_depth):
            below: list[bytes] = []
            for node in level:
                preimage = self.store.get_node(node)
                if preimage is None:
                    preimage = self.layout.empty_global_nodes.get(node)
                if preimage is None:
                    raise MissingNodeError(f"global node {node.hex()} is not in the node store")
                below.extend((preimage[:32], preimage[32:]))
            level = below
        return level
