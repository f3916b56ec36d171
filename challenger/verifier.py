"""
The watchtower's own execution of every posted batch, on its own LevelDB state.

A batch's trace is the inbox messages it consumed (read from L1's Bridge, never from the
sequencer) and the transactions in its posting calldata. :class:`Verifier` replays it
with the Python STF from the post root *it* computed for the previous batch, and
records, per batch index, the serial it verified, the root L1 claims and the root it
got: where they differ, the batch is wrong. Nothing here trusts the sequencer.

State: tree nodes go to the watcher's LevelDB (content-addressed, unsynced: a crash
loses only what a replay recomputes); one synced record per verified batch under
``schema.watched_key(index)``. After a restart the watcher goes on from its last
record. A rejection on L1 (``BatchesRejected``) drops the records from the rejected
index on: the chain continues from the last batch that stands.

For a dispute, :meth:`Verifier.trace` replays a recorded batch again, keeping every
intermediate state in memory, so any step's root and witness can be produced.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import rlp
from rlp.sedes import Binary, big_endian_int

from node.protocol.batch import Batch
from node.protocol.eip712 import Domain
from node.protocol.genesis import Genesis, genesis_state
from node.protocol.state import State
from node.protocol.step import BatchContext, Step, StepKind
from node.protocol.stf import apply_step, prove_step
from node.protocol.tree import NodeStore, OverlayNodeStore
from node.storage import DBNodeStore, schema
from node.storage.db import KeyValueDB

_HASH = Binary.fixed_length(32)
_RECORD = rlp.sedes.List([big_endian_int, _HASH, _HASH, _HASH])


class VerifierError(Exception):
    """The batch cannot be verified as given (out of order, inbox messages missing)."""


@dataclass(frozen=True)
class Verified:
    """What the watcher found for one posted batch."""

    index: int
    serial: int
    parent_root: bytes
    """The watcher's own root before the batch."""
    posted_root: bytes
    """The post root L1 holds for it."""
    own_root: bytes
    """The post root the watcher's replay gives."""

    @property
    def wrong(self) -> bool:
        """Whether L1 holds a root the watcher does not reproduce."""
        return self.posted_root != self.own_root

    def encode(self) -> bytes:
        """``rlp([serial, parentRoot, postedRoot, ownRoot])``."""
        encoded: bytes = rlp.encode(
            [self.serial, self.parent_root, self.posted_root, self.own_root], _RECORD
        )
        return encoded

    @classmethod
    def decode(cls, index: int, raw: bytes) -> "Verified":
        """The record of batch ``index``."""
        serial, parent, posted, own = rlp.decode(raw, _RECORD)
        return cls(index, serial, parent, posted, own)


@dataclass
class Trace:
    """A batch's replay kept whole: the root at every position, and the nodes of every
    intermediate state."""

    batch: Batch
    steps: list[Step]
    roots: list[bytes]
    store: NodeStore


def batch_steps(batch: Batch, messages: Sequence[bytes]) -> list[Step]:
    """The trace of ``batch``: its inbox messages (``messages``, which must be exactly its
    inbox range), then its transactions."""
    if len(messages) != batch.inbox_end - batch.inbox_start:
        raise VerifierError(
            f"batch {batch.index} consumes {batch.inbox_end - batch.inbox_start} inbox"
            f" messages, {len(messages)} given"
        )
    return [Step(StepKind.L1_MESSAGE, m) for m in messages] + [
        Step(StepKind.TRANSACTION, tx) for tx in batch.transactions
    ]


class Verifier:
    """Replays posted batches in order on the watcher's own state."""

    def __init__(self, db: KeyValueDB, genesis: Genesis, domain: Domain) -> None:
        self.db = db
        self.domain = domain
        self.store = DBNodeStore(db)
        self.genesis_root = genesis_state(genesis, self.store).root
        self.records: dict[int, Verified] = {}
        for key, raw in db.iterate(schema.WATCHED_PREFIX):
            index = int.from_bytes(key[1:], "big")
            self.records[index] = Verified.decode(index, raw)
        self._traces: dict[int, Trace] = {}

    @property
    def next_index(self) -> int:
        """The next batch to verify."""
        return len(self.records)

    def root_before(self, index: int) -> bytes:
        """The watcher's own root before batch ``index`` (after ``index - 1``)."""
        return self.genesis_root if index == 0 else self.records[index - 1].own_root

    def verify(self, batch: Batch, serial: int, messages: Sequence[bytes]) -> Verified:
        """Replay ``batch`` (the next one, posted as ``serial``) with its inbox ``messages``
        from the watcher's own previous root; record and return the verdict."""
        if batch.index != self.next_index:
            raise VerifierError(f"batch {batch.index} is not next ({self.next_index} is)")
        parent = self.root_before(batch.index)
        state = State(self.store, parent)
        context = BatchContext(batch.timestamp, self.domain)
        for step in batch_steps(batch, messages):
            apply_step(state, step, context)
        verdict = Verified(batch.index, serial, parent, batch.post_root, state.commit())
        self.db.put(schema.watched_key(batch.index), verdict.encode(), sync=True)
        self.records[batch.index] = verdict
        return verdict

    def rejected(self, from_index: int) -> None:
        """L1 rejected batch ``from_index`` and every later one: forget them."""
        stale = [i for i in self.records if i >= from_index]
        self.db.apply({schema.watched_key(i): None for i in stale}, sync=True)
        for index in stale:
            del self.records[index]
            self._traces.pop(index, None)

    def trace(self, batch: Batch, messages: Sequence[bytes]) -> Trace:
        """``batch`` replayed from the watcher's root before it, every intermediate state
        kept (in memory, over the stored state): for a dispute. Cached by index."""
        cached = self._traces.get(batch.index)
        if cached is not None and cached.batch == batch:
            return cached
        steps = batch_steps(batch, messages)
        store = OverlayNodeStore(self.store)
        state = State(store, self.root_before(batch.index))
        context = BatchContext(batch.timestamp, self.domain)
        roots = [state.root]
        for step in steps:
            apply_step(state, step, context)
            roots.append(state.commit())
        trace = Trace(batch, steps, roots, store)
        self._traces[batch.index] = trace
        return trace

    def witness(self, trace: Trace, position: int) -> bytes:
        """The witness of step ``position`` of ``trace`` from its root there."""
        context = BatchContext(trace.batch.timestamp, self.domain)
        store = OverlayNodeStore(trace.store)
        _, witness, _ = prove_step(store, trace.roots[position], trace.steps[position], context)
        return witness
