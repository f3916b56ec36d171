"""
Witness recording: the ordered state accesses of a run of operations, each with
its proof against the state root current at that moment.

The one-step executor on L1 holds no state, only a root. It replays one step by
consuming this witness in order: for every read it verifies the given record
against its current root; for every write it verifies the old record the same
way, then computes its new current root from the new record and the same
siblings. The Python STF and the Solidity executor therefore make the very same
sequence of ``get``/``set`` calls, and this recorder is how the Python side
writes that sequence down.

Wire form (:func:`encode_witness`): an RLP list with one item per access,
``[table, index, record, bitmap, siblings]``. ``bitmap`` (an integer) has bit
``k`` set when the table-level sibling at height ``k`` differs from
``ZERO_HASHES[k]``; ``siblings`` concatenates, bottom-up, only those non-empty
table siblings, then all ``global_depth`` global siblings, 32 bytes each. Empty
subtrees are the rule above the occupied ids of a table: the committed vectors'
witnesses shrink to a quarter, and a table holding a million dense ids still
loses 12 of its 32 siblings per proof.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from .encoding import decode_rlp_list, decode_uint, encode_items, encode_uint
from .errors import (
    MalformedEncodingError,
    NonCanonicalEncodingError,
    StateError,
    ValueOutOfRangeError,
)
from .merkle import ZERO_HASHES
from .state import LAYOUT, Proof, State, StateLayout, verify_proof
from .tree import NodeStore, OverlayNodeStore

MAX_WITNESS_BYTES = 1 << 20
"""Upper bound on an encoded witness; anything longer is rejected unread."""


class AccessKind(IntEnum):
    """Whether the STF read or wrote the record (writes carry the old record)."""

    READ = 0
    WRITE = 1


@dataclass(frozen=True)
class Access:
    """One state access of a recorded run."""

    kind: AccessKind
    """Read or write."""

    proof: Proof
    """The record before the access and its siblings against :attr:`root`."""

    root: bytes
    """The state root current when the access happened."""

    new_record: bytes | None
    """For a write, the record written; None for a read."""

    def root_after(self, layout: StateLayout = LAYOUT) -> bytes:
        """The state root right after this access."""
        if self.new_record is None:
            return self.root
        return self.proof.root_with(self.new_record, layout)


class WitnessRecorder:
    """
    A :class:`~node.protocol.state.StateView` that records every access.

    It starts at a committed ``root`` of ``store`` and never writes to ``store``:
    intermediate roots are committed into an in-memory overlay. Every ``set``
    recomputes the root, so use it to replay one step, not a whole batch.
    """

    def __init__(self, store: NodeStore, root: bytes, layout: StateLayout = LAYOUT) -> None:
        self.layout = layout
        self._state = State(OverlayNodeStore(store), root, layout)
        self.accesses: list[Access] = []

    @property
    def root(self) -> bytes:
        """The current state root (after every write so far)."""
        return self._state.root

    def witness(self) -> bytes:
        """The encoded witness of every access so far."""
        return encode_witness((access.proof for access in self.accesses), self.layout)

    def get(self, table: int, index: int) -> bytes:
        proof = self._state.prove(table, index)
        self.accesses.append(Access(AccessKind.READ, proof, self._state.root, None))
        return proof.record

    def set(self, table: int, index: int, record: bytes) -> None:
        proof = self._state.prove(table, index)
        self._state.set(table, index, record)
        self.accesses.append(Access(AccessKind.WRITE, proof, self._state.root, record))
        self._state.commit()


class WitnessError(StateError):
    """A witness that does not prove what the step accesses next."""


class WitnessView:
    """
    The one-step executor's view of the state, in Python: it holds only a root and
    a witness, and serves the STF's accesses from the witness in order, verifying
    each proof against its current root, exactly as the Solidity executor does.
    Running a step on it and reaching the recorded post-root shows the witness is
    complete and ordered right.
    """

    def __init__(self, root: bytes, proofs: Iterable[Proof], layout: StateLayout = LAYOUT) -> None:
        self.root = root
        self.layout = layout
        self._proofs = iter(proofs)

    def _next(self, table: int, index: int) -> Proof:
        proof = next(self._proofs, None)
        if proof is None:
            raise WitnessError(f"witness ends before the access to ({table}, {index})")
        if (proof.table, proof.index) != (table, index):
            proven = (proof.table, proof.index)
            raise WitnessError(f"witness proves {proven}, the step accesses {(table, index)}")
        if not verify_proof(self.root, proof, self.layout):
            raise WitnessError(f"the proof of ({table}, {index}) does not match the root")
        return proof

    def get(self, table: int, index: int) -> bytes:
        return self._next(table, index).record

    def set(self, table: int, index: int, record: bytes) -> None:
        self.root = self._next(table, index).root_with(record, self.layout)

    def finish(self) -> bytes:
        """The post-state root; :class:`WitnessError` if the witness has entries left."""
        if next(self._proofs, None) is not None:
            raise WitnessError("the witness has more entries than the step accessed")
        return self.root


def encode_witness(proofs: Iterable[Proof], layout: StateLayout = LAYOUT) -> bytes:
    """The compact wire form of a witness: the proofs of a run's accesses, in order."""
    items = []
    for proof in proofs:
        depth = layout.table(proof.table).depth
        bitmap = 0
        kept = []
        for height, sibling in enumerate(proof.siblings[:depth]):
            if sibling != ZERO_HASHES[height]:
                bitmap |= 1 << height
                kept.append(sibling)
        kept.extend(proof.siblings[depth:])
        items.append(
            [
                encode_uint(proof.table),
                encode_uint(proof.index),
                proof.record,
                encode_uint(bitmap),
                b"".join(kept),
            ]
        )
    return encode_items(items)


def decode_witness(data: bytes, layout: StateLayout = LAYOUT) -> list[Proof]:
    """
    The proofs of a witness, in order. Rejects, with a :class:`WireError`, any
    encoding that :func:`encode_witness` would not produce.
    """
    if len(data) > MAX_WITNESS_BYTES:
        raise MalformedEncodingError(f"witness longer than {MAX_WITNESS_BYTES} bytes")
    proofs = []
    for item in decode_rlp_list(data):
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
        expected = 32 * (bitmap.bit_count() + layout.global_depth)
        if len(packed) != expected:
            raise MalformedEncodingError(
                f"witness siblings are {len(packed)} bytes, expected {expected}"
            )
        siblings = []
        offset = 0
        for height in range(table.depth):
            if (bitmap >> height) & 1:
                sibling = packed[offset : offset + 32]
                offset += 32
                if sibling == ZERO_HASHES[height]:
                    raise NonCanonicalEncodingError(
                        "an empty sibling is marked present in the bitmap"
                    )
                siblings.append(sibling)
            else:
                siblings.append(ZERO_HASHES[height])
        siblings.extend(
            packed[offset + 32 * k : offset + 32 * (k + 1)] for k in range(layout.global_depth)
        )
        proofs.append(Proof(table_id, index, record, tuple(siblings)))
    return proofs
