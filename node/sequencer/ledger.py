"""
The sequencer's durable transaction log, and the group commit in front of it.

Every step the sequencer sequences becomes one :class:`LogEntry` at the next
sequence number. The log is the sequencer's source of truth: the state (whose
tree nodes are written without fsync) is what replaying it from genesis gives,
and the receipt a client got is stored in the entry exactly as it was sent. A
receipt is handed out only after its entry is durable: :meth:`Ledger.append`
writes a group of entries, their hash index and the new head in one atomic
LevelDB write with ``sync=True``, so after a crash at any moment either the
whole group is there or none of it is, and nothing acknowledged is lost.

:class:`GroupCommitter` makes that fast: concurrent requests wait on one
``fsync`` together (the entries that arrive while one group is being written
form the next), the way databases group commits.
"""

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import rlp
from rlp.sedes import Binary, List, big_endian_int, binary

from node.protocol.step import StepKind
from node.storage import schema
from node.storage.db import KeyValueDB

_HASH = Binary.fixed_length(32)


class LedgerError(Exception):
    """The log refused a write (out of order, duplicate hash) or holds a corrupt entry."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One sequenced step."""

    sequence: int
    """Global position, from 0, with no gaps."""

    batch: int
    """Index of the batch that carries it."""

    index: int
    """Position within that batch's trace."""

    timestamp: int
    """The batch's timestamp (its STF clock), which replaying the entry needs."""

    kind: StepKind
    """An L1 message or a batch transaction."""

    data: bytes
    """The step's bytes, exactly as the STF and the batch calldata see them."""

    tx_hash: bytes
    """The transaction hash (EIP-712 digest) or, for an L1 message, its keccak."""

    receipt: bytes = b""
    """The receipt as given to the client (canonical JSON), empty if none was."""

    def encode(self) -> bytes:
        """``rlp([sequence, batch, index, timestamp, kind, data, txHash, receipt])``."""
        encoded: bytes = rlp.encode(
            [
                self.sequence,
                self.batch,
                self.index,
                self.timestamp,
                int(self.kind),
                self.data,
                self.tx_hash,
                self.receipt,
            ]
        )
        return encoded

    @classmethod
    def decode(cls, raw: bytes) -> "LogEntry":
        """The entry encoded in ``raw``; :class:`LedgerError` if it is not one."""
        try:
            fields = rlp.decode(raw, _ENTRY)
            sequence, batch, index, timestamp, kind, data, tx_hash, receipt = fields
            return cls(sequence, batch, index, timestamp, StepKind(kind), data, tx_hash, receipt)
        except (rlp.DecodingError, rlp.DeserializationError, ValueError) as exc:
            raise LedgerError(f"corrupt log entry: {exc}") from None


_ENTRY = List([big_endian_int] * 5 + [binary, _HASH, binary])
"""The sedes of an encoded :class:`LogEntry`."""


class Ledger:
    """The transaction log in a :class:`KeyValueDB` (keys from ``node.storage.schema``)."""

    def __init__(self, db: KeyValueDB) -> None:
        self.db = db
        raw = db.get(schema.HEAD_KEY)
        self._head = 0 if raw is None else int.from_bytes(raw, "big")
        self.reverts: dict[int, int] = {
            int.from_bytes(key[1:], "big"): int.from_bytes(value, "big")
            for key, value in db.iterate(schema.REVERT_PREFIX)
        }
        """Revert markers: at sequence ``s``, the log reverts to batch ``reverts[s]``."""

    def doomed(self, entry: LogEntry) -> bool:
        """Whether a later revert marker undid ``entry``: it was in a batch at or after the
        batch a revert placed after it goes back to (its receipt is ``rejected``)."""
        return any(at > entry.sequence and entry.batch >= to for at, to in self.reverts.items())

    def revert(self, to_batch: int, deleted: Sequence[bytes] = (), *, sync: bool = True) -> None:
        """Place a revert marker at the head: every entry below it in batch ``to_batch`` or
        later is undone (replays skip it, its transaction may be sequenced again). The
        keys ``deleted`` (the undone batches' records) go in the same atomic write."""
        ops: dict[bytes, bytes | None] = {key: None for key in deleted}
        ops[schema.revert_key(self._head)] = schema.sequence_bytes(to_batch)
        self.db.apply(ops, sync=sync)
        self.reverts[self._head] = to_batch

    @property
    def head(self) -> int:
        """The next sequence number: every entry below it is durable."""
        return self._head

    def append(self, entries: Sequence[LogEntry], *, sync: bool = True) -> None:
        """
        Write ``entries`` (which must continue the log without a gap, with hashes not
        yet in it, or only in undone entries) and the new head atomically; durable when
        this returns if ``sync``. Refused with :class:`LedgerError`, writing nothing,
        otherwise.
        """
        if not entries:
            return
        ops: dict[bytes, bytes | None] = {}
        expected = self._head
        for entry in entries:
            if entry.sequence != expected:
                raise LedgerError(f"entry {entry.sequence} does not follow {expected - 1}")
            key = schema.tx_hash_key(entry.tx_hash)
            if key in ops or self.contains(entry.tx_hash):
                raise LedgerError(f"transaction 0x{entry.tx_hash.hex()} is already in the log")
            ops[schema.log_key(entry.sequence)] = entry.encode()
            ops[key] = schema.sequence_bytes(entry.sequence)
            expected += 1
        ops[schema.HEAD_KEY] = schema.sequence_bytes(expected)
        self.db.apply(ops, sync=sync)
        self._head = expected

    def contains(self, tx_hash: bytes) -> bool:
        """Whether ``tx_hash`` is in the log and not undone by a revert."""
        found = self.by_hash(tx_hash)
        return found is not None and not self.doomed(found)

    def entry(self, sequence: int) -> LogEntry | None:
        """The entry at ``sequence``, or None past the head."""
        if not 0 <= sequence < self._head:
            return None
        raw = self.db.get(schema.log_key(sequence))
        if raw is None:
            raise LedgerError(f"log entry {sequence} is missing below the head {self._head}")
        return LogEntry.decode(raw)

    def sequence_of(self, tx_hash: bytes) -> int | None:
        """The sequence number of the transaction ``tx_hash``, or None if not in the log."""
        raw = self.db.get(schema.tx_hash_key(tx_hash))
        return None if raw is None else int.from_bytes(raw, "big")

    def by_hash(self, tx_hash: bytes) -> LogEntry | None:
        """The entry of the transaction ``tx_hash``, or None."""
        sequence = self.sequence_of(tx_hash)
        return None if sequence is None else self.entry(sequence)

    def entries(self, start: int = 0) -> Iterator[LogEntry]:
        """Every entry from ``start`` up to the head, in order (a replay)."""
        head = self._head
        expected = start
        for key, raw in self.db.iterate(schema.LOG_PREFIX):
            sequence = int.from_bytes(key[1:], "big")
            if sequence < start:
                continue
            if sequence >= head:
                break
            if sequence != expected:
                raise LedgerError(f"log entry {expected} is missing below the head {head}")
            yield LogEntry.decode(raw)
            expected += 1
        if expected < head:
            raise LedgerError(f"log entry {expected} is missing below the head {head}")


class GroupCommitter:
    """
    Makes entries durable in groups: :meth:`commit` returns once its entry is
    synced, and every entry handed in while a group is being written goes into
    the next group, written with one ``fsync``. Entries are written in the order
    they were handed in (the sequencer hands them in sequence order). If a write
    fails, every waiting commit and every later one raises: the sequencer must
    stop (fail-stop) rather than answer from a state its log does not hold.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._pending: list[tuple[LogEntry, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self.groups = 0
        """How many synced writes it has made."""
        self.failed = asyncio.Event()
        """Set when a write fails: the owner must stop (nothing more is acknowledged)."""

    async def commit(self, entry: LogEntry) -> None:
        """Return when ``entry`` is durable; raises the write's error if it failed."""
        if self._failure is not None:
            raise LedgerError("the log failed earlier: the sequencer must stop") from self._failure
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        await done

    async def _write(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    await asyncio.to_thread(self.ledger.append, [e for e, _ in group])
                except asyncio.CancelledError:
                    # shutting down mid-write: nobody is told the group is durable
                    self._failure = LedgerError("the log writer was cancelled")
                    self.failed.set()
                    for _, done in [*group, *self._pending]:
                        done.cancel()
                    self._pending = []
                    raise
                except Exception as exc:
                    self._failure = exc
                    self.failed.set()
                    for _, done in [*group, *self._pending]:
                        if not done.done():
                            done.set_exception(exc)
                    self._pending = []
                    return
                self.groups += 1
                for _, done in group:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._writer = None

    async def drain(self) -> None:
        """Wait until every entry handed in so far is written (or the log failed)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)
