"""
Witnesses: what the one-step executor on L1 needs to run one step from a state root.

The executor holds no state, only a root. A step reads each key it touches from
the pre-state the first time it touches it, and writes only when it ends (the
step state of :mod:`node.protocol.step`), so its witness is a *multiproof of the
pre-state*: the table roots (the global tree's 16 leaves), then, in first-touch
order, every touched key's pre-state record with its siblings inside its table.

The executor verifies the table roots against the pre-root, serves each first
touch from the next entry (checking it names that key and proves against its
table root), keeps the step's records in memory, and at the end recomputes
each changed table's root from the final records of the keys touched in it and
their pre-state siblings (:func:`~node.protocol.merkle.root_after_updates`),
then the state root. Writes cost no witness bytes at all: every written key was
touched first, so its siblings are already known.

Wire form (:func:`encode_witness`): ``rlp([roots, [entry_1, ..., entry_k]])``.
``roots`` is the 16 table roots, 32 bytes each; an entry is ``[table, index,
record, bitmap, siblings]`` where ``bitmap`` (an integer) has bit ``h`` set when
the table-level sibling at height ``h`` differs from ``ZERO_HASHES[h]`` and
``siblings`` concatenates, bottom-up, only those non-empty siblings, 32 bytes each.
"""

from dataclasses import dataclass

from .encoding import decode_rlp_list, decode_uint, encode_items, encode_uint
from .errors import (
    MalformedEncodingError,
    NonCanonicalEncodingError,
    StateError,
    ValueOutOfRangeError,
)
from .merkle import ZERO_HASHES, hash_leaf, root_after_updates, root_from_path
from .state import LAYOUT, State, StateLayout, global_tree
from .tree import NodeStore, OverlayNodeStore

MAX_WITNESS_BYTES = 1 << 20
"""Upper bound on an encoded witness; anything longer is rejected unread."""


@dataclass(frozen=True)
class LeafProof:
    """A record of the pre-state and its siblings inside its table."""

    table: int
    """Table id."""

    index: int
    """Record id within the table."""

    record: bytes
    """The record's bytes in the pre-state (empty if absent)."""

    siblings: tuple[bytes, ...]
    """Bottom-up, the ``depth(table)`` siblings of the record's leaf inside the table."""

    def table_root(self) -> bytes:
        """The table root this proof leads to."""
        return root_from_path(hash_leaf(self.record), self.index, self.siblings)


@dataclass(frozen=True)
class Witness:
    """One step's witness: the pre-state's table roots and its first-touch proofs."""

    table_roots: tuple[bytes, ...]
    """The global tree's leaves in the pre-state: each table's root, unused slots zero."""

    proofs: tuple[LeafProof, ...]
    """The proof of every key the step touches, in first-touch order."""


class WitnessRecorder:
    """
    A :class:`~node.protocol.state.StateView` that writes down a run's witness.

    It starts at a committed ``root`` of ``store`` and never writes to ``store``:
    the run's writes go to an in-memory overlay. The first access to each key,
    read or write, records the key's proof against ``root``.
    """

    def __init__(self, store: NodeStore, root: bytes, layout: StateLayout = LAYOUT) -> None:
        self.layout = layout
        self._pre = State(store, root, layout)
        self._post = State(OverlayNodeStore(store), root, layout)
        self._touched: set[tuple[int, int]] = set()
        self.proofs: list[LeafProof] = []

    @property
    def root(self) -> bytes:
        """The state root after every write so far."""
        return self._post.commit()

    def witness(self) -> bytes:
        """The encoded witness of the run so far."""
        return encode_witness(Witness(self._pre.table_roots(), tuple(self.proofs)), self.layout)

    def _touch(self, table: int, index: int) -> None:
        if (table, index) in self._touched:
            return
        self._touched.add((table, index))
        proof = self._pre.prove(table, index)
        depth = self.layout.table(table).depth
        self.proofs.append(LeafProof(table, index, proof.record, proof.siblings[:depth]))

    def get(self, table: int, index: int) -> bytes:
        self._touch(table, index)
        return self._post.get(table, index)

    def set(self, table: int, index: int, record: bytes) -> None:
        self._touch(table, index)
        self._post.set(table, index, record)


class WitnessError(StateError):
    """A witness that does not prove what the step accesses next."""


@dataclass
class _Touched:
    proof: LeafProof
    current: bytes


class WitnessView:
    """
    The one-step executor's view of the state, in Python: it holds only a root and
    a witness, serves the first access to each key from the witness in order
    (verifying it against the pre-state's table roots), keeps the step's records in
    memory and computes the post-state root in :meth:`finish`, exactly as the
    Solidity executor does. Running a step on it and reaching the recorded
    post-root shows the witness is complete and ordered right.
    """

    def __init__(self, root: bytes, witness: Witness, layout: StateLayout = LAYOUT) -> None:
        if len(witness.table_roots) != 1 << layout.global_depth:
            raise WitnessError("the witness does not hold every table root")
        if global_tree(list(witness.table_roots))[0] != root:
            raise WitnessError("the witness's table roots do not make the pre-state root")
        self.root = root
        self.layout = layout
        self._table_roots = list(witness.table_roots)
        self._proofs = iter(witness.proofs)
        self._touched: dict[tuple[int, int], _Touched] = {}

    def _touch(self, table: int, index: int) -> _Touched:
        touched = self._touched.get((table, index))
        if touched is not None:
            return touched
        proof = next(self._proofs, None)
        if proof is None:
            raise WitnessError(f"witness ends before the access to ({table}, {index})")
        if (proof.table, proof.index) != (table, index):
            proven = (proof.table, proof.index)
            raise WitnessError(f"witness proves {proven}, the step accesses {(table, index)}")
        if proof.table_root() != self._table_roots[table]:
            raise WitnessError(f"the proof of ({table}, {index}) does not match its table root")
        touched = self._touched[(table, index)] = _Touched(proof, proof.record)
        return touched

    def get(self, table: int, index: int) -> bytes:
        return self._touch(table, index).current

    def set(self, table: int, index: int, record: bytes) -> None:
        self._touch(table, index).current = record

    def finish(self) -> bytes:
        """The post-state root; :class:`WitnessError` if the witness has entries left."""
        if next(self._proofs, None) is not None:
            raise WitnessError("the witness has more entries than the step accessed")
        changed = sorted({t for (t, _), k in self._touched.items() if k.current != k.proof.record})
        if not changed:
            return self.root
        for table in changed:
            leaves = sorted(
                (index, hash_leaf(k.current), k.proof.siblings)
                for (t, index), k in self._touched.items()
                if t == table
            )
            depth = self.layout.table(table).depth
            self._table_roots[table] = root_after_updates(depth, leaves)
        self.root = global_tree(self._table_roots)[0]
        return self.root


def encode_witness(witness: Witness, layout: StateLayout = LAYOUT) -> bytes:
    """The compact wire form of a witness."""
    items = []
    for proof in witness.proofs:
        bitmap = 0
        kept = []
        for height, sibling in enumerate(proof.siblings):
            if sibling != ZERO_HASHES[height]:
                bitmap |= 1 << height
                kept.append(sibling)
        items.append(
            [
                encode_uint(proof.table),
                encode_uint(proof.index),
                proof.record,
                encode_uint(bitmap),
                b"".join(kept),
            ]
        )
    return encode_items([b"".join(witness.table_roots), items])


def _decode_entry(item: object, layout: StateLayout) -> LeafProof:
    if not isinstance(item, list) or len(item) != 5:
        raise MalformedEncodingError("a witness entry is a list of 5 items")
    if any(not isinstance(part, bytes) for part in item):
        raise MalformedEncodingError("witness entry items are byte strings")
    table_id = decode_uint(item[0], 8)
    index = decode_uint(item[1], 64)
    record = item[2]
    bitmap = decode_uint(item[3], 64)
    packed = item[4]
    table = layout.by_id.get(table_id)
    if table is None:
        raise ValueOutOfRangeError(f"witness names unknown table {table_id}")
    if index >= 1 << table.depth:
        raise ValueOutOfRangeError(f"witness index {index} outside table {table.name}")
    if bitmap >> table.depth:
        raise ValueOutOfRangeError("witness bitmap has bits above the table depth")
    if len(packed) != 32 * bitmap.bit_count():
        raise MalformedEncodingError(
            f"witness siblings are {len(packed)} bytes, expected {32 * bitmap.bit_count()}"
        )
    siblings: list[bytes] = []
    offset = 0
    for height in range(table.depth):
        if (bitmap >> height) & 1:
            sibling = packed[offset : offset + 32]
            offset += 32
            if sibling == ZERO_HASHES[height]:
                raise NonCanonicalEncodingError("an empty sibling is marked present in the bitmap")
            siblings.append(sibling)
        else:
            siblings.append(ZERO_HASHES[height])
    return LeafProof(table_id, index, record, tuple(siblings))


def decode_witness(data: bytes, layout: StateLayout = LAYOUT) -> Witness:
    """
    The witness encoded in ``data``. Rejects, with a :class:`WireError`, any
    encoding that :func:`encode_witness` would not produce.
    """
    if len(data) > MAX_WITNESS_BYTES:
        raise MalformedEncodingError(f"witness longer than {MAX_WITNESS_BYTES} bytes")
    outer = decode_rlp_list(data)
    if len(outer) != 2 or not isinstance(outer[0], bytes) or not isinstance(outer[1], list):
        raise MalformedEncodingError("a witness is a list of the table roots and the entries")
    roots = outer[0]
    slots = 1 << layout.global_depth
    if len(roots) != 32 * slots:
        raise MalformedEncodingError(f"the table roots are {len(roots)} bytes, not {32 * slots}")
    table_roots = tuple(roots[32 * k : 32 * (k + 1)] for k in range(slots))
    return Witness(table_roots, tuple(_decode_entry(item, layout) for item in outer[1]))
