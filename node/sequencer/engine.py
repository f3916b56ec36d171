"""
The sequencing engine: admission, execution, durable receipts and batches.

A transaction arrives, is decoded and run through the STF against the current
state at once. If the STF rejects it, the trader gets the precise reason and
nothing is sequenced (the state is untouched). If it applies, it takes the next
sequence number and the next position in the open batch, the sequencer signs
``Receipt{txHash, batch, index}`` in the rollup's EIP-712 domain, and the entry
(with that receipt) goes to the durable log; :meth:`Sequencer.submit` returns
the receipt only once the entry is synced (group commit). L1 inbox messages
(deposits, forced transactions) are sequenced the same way, ahead of the batch's
transactions, as the trace order requires (docs/protocol.md section 3).

Admission and execution happen synchronously, in arrival order, before the first
``await``: concurrent requests (and the entries of one JSON-RPC batch request)
are sequenced in the order the event loop hands them in, and never interleave.

A batch is sealed when the next transaction would exceed ``max_batch_transactions``,
when an inbox message arrives after its transactions, or when
:meth:`Sequencer.close_batch` is called (the daemon's timer). Sealing is synchronous
(the post root is the state at that moment); its record
(``node.protocol.batch.Batch``: parent root, timestamp, inbox range, post root,
transactions) is written durably under ``schema.batch_key``; the L1 poster takes
it from there.

Recovery: the log is the truth. On start the engine rebuilds the state by
replaying every entry from genesis with its batch's timestamp, and checks that
every closed batch's post root is what the replay gives; the open batch (entries
after the last closed one) is reopened as it was.
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from node.protocol.batch import MAX_BATCH_TRANSACTIONS, Batch, decode_batch, encode_batch
from node.protocol.crypto import keccak256, sign_digest
from node.protocol.eip712 import Domain
from node.protocol.errors import WireError
from node.protocol.genesis import Genesis, genesis_state
from node.protocol.inbox import Deposit, decode_l1_message
from node.protocol.state import Proof, State
from node.protocol.step import BatchContext, Outcome, Reason, Step, StepKind
from node.protocol.stf import apply_step
from node.protocol.transactions import Order, Receipt, decode_transaction
from node.protocol.tree import NodeStore, OverlayNodeStore
from node.storage import DBNodeStore, schema
from node.storage.db import KeyValueDB

from .ledger import GroupCommitter, Ledger, LogEntry
from .views import OrderIndex

log = logging.getLogger(__name__)


class AdmissionError(Exception):
    """The STF refused the transaction: it was not sequenced."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.name}: {detail}" if detail else reason.name)
        self.reason = reason
        self.detail = detail


class InboxMovedError(Exception):
    """An inbox message was handed in for a position that is no longer next."""


class RecordWriteError(Exception):
    """A sealed batch's record could not be written: the sequencer must stop."""


class RecoveryError(Exception):
    """The log does not replay to what the closed batches recorded."""


@dataclass
class OpenBatch:
    """The batch being filled."""

    index: int
    parent_root: bytes
    timestamp: int
    inbox_start: int
    inbox_end: int
    first_sequence: int
    transactions: list[bytes] = field(default_factory=list)

    @property
    def steps(self) -> int:
        """Steps sequenced into it so far (inbox messages, then transactions)."""
        return self.inbox_end - self.inbox_start + len(self.transactions)

    def record(self, post_root: bytes) -> Batch:
        """The batch as it is sealed, with the state root after its last step."""
        return Batch(
            self.index,
            self.parent_root,
            self.timestamp,
            self.inbox_start,
            self.inbox_end,
            post_root,
            tuple(self.transactions),
        )


def receipt_json(
    promise: Receipt, sequence: int, outcome: Outcome, kind_name: str, signature: bytes
) -> dict[str, Any]:
    """The receipt of an applied step as the API shows it (finality is added on read):
    ``promise`` is what the sequencer signed (``signature``), at log position
    ``sequence``."""
    result: dict[str, Any] = {}
    if outcome.order is not None:
        order = outcome.order
        result = {
            "orderHash": "0x" + order.order_hash.hex(),
            "filled": str(order.filled),
            "notional": str(order.notional),
            "averagePrice": str(order.notional // order.filled) if order.filled else None,
            "resting": str(order.resting),
            "end": order.end.name,
            "fills": [
                {
                    "makerAccount": f.maker_account,
                    "makerOrder": "0x" + f.maker_order.hex(),
                    "price": str(f.price),
                    "size": str(f.size),
                    "makerFee": str(f.maker_fee),
                    "takerFee": str(f.taker_fee),
                }
                for f in outcome.fills
            ],
        }
    if outcome.removals:
        result["removals"] = [
            {"account": r.account, "orderHash": "0x" + r.order_hash.hex(), "reason": r.reason.name}
            for r in outcome.removals
        ]
    if outcome.withdrawal_id is not None:
        result["withdrawalId"] = str(outcome.withdrawal_id)
    return {
        "txHash": "0x" + promise.tx_hash.hex(),
        "account": outcome.account,
        "type": kind_name,
        "outcome": result,
        "batch": promise.batch,
        "index": promise.index,
        "sequence": sequence,
        "signature": "0x" + signature.hex(),
    }


def _encode_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class Sequencer:
    """The engine: one instance per data directory, driven from one event loop."""

    def __init__(
        self,
        db: KeyValueDB,
        genesis: Genesis,
        domain: Domain,
        key: bytes,
        *,
        max_batch_transactions: int = 1_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.domain = domain
        self.key = key
        self.max_batch_transactions = max_batch_transactions
        self.clock = clock
        self.genesis = genesis
        self.ledger = Ledger(db)
        self.committer = GroupCommitter(self.ledger)
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        """Called with (channel, payload) for every receipt and closed batch."""
        self.timings: Callable[[str, float], None] | None = None
        """Told how long each phase took, in seconds: ``sequence`` (a submitted transaction's
        decoding, STF and signed receipt), ``durable`` (its wait for the log's synced
        write) and ``seal`` (closing a batch, its root included). The API makes metrics of
        them."""
        self.record_hook: Callable[[Batch], Batch] | None = None
        """Sees every sealed batch's record before it is stored (and so posted). Only the
        devnet's fault injection (:mod:`.faults`) sets one."""
        self._pending_hashes: set[bytes] = set()
        """Hashes of entries handed to the committer and not durable yet (a resend is
        refused, as when durable)."""
        self._records: list[asyncio.Task[None]] = []
        """Writes of sealed batches' records, in order, each after its entries."""
        self._open_gate = asyncio.Event()
        """Set while steps may be sequenced; cleared while a revert rebuilds the state."""
        self._open_gate.set()
        self.inbox_lock = asyncio.Lock()
        """Held by whoever feeds inbox messages (the follower, a re-execution): one at a
        time, in inbox order."""
        self._reset()
        if not 0 < max_batch_transactions <= MAX_BATCH_TRANSACTIONS:
            raise ValueError(f"max_batch_transactions must be in 1..{MAX_BATCH_TRANSACTIONS}")
        self._recover()

    def _reset(self) -> None:
        """The in-memory state of a fresh start at genesis (the log is then replayed)."""
        self.state: State = genesis_state(self.genesis, DBNodeStore(self.db))
        self.genesis_root = self.state.root
        self.open: OpenBatch | None = None
        self.closed = 0
        """How many batches are closed (the next one to open has this index)."""
        self.inbox_next = 0
        """The next L1 inbox message to consume."""
        self.sequenced = 0
        """The next sequence number to hand out (the log's head once all are durable).
        Kept here, not derived from the head, which a group write moves in its thread."""
        self.batch_starts: dict[int, int] = {}
        """The sequence number of each batch's first step."""
        self._roots: dict[int, tuple[list[bytes], NodeStore]] = {}
        """trace_roots (and the nodes of their states) by batch index."""
        self.orders = OrderIndex()
        """Every order ever sequenced (rebuilt by the replay)."""
        self.withdrawals: dict[int, int] = {}
        """The batch that created each withdrawal record."""
        self.owners: dict[bytes, int] = {}
        """Account id of each owner address, from the deposits that registered them."""
        self.last_timestamp = 0
        """The timestamp of the last closed batch: a new one never goes below it (L1 rule)."""

    # recovery -------------------------------------------------------------------------

    def _recover(self) -> None:
        records: dict[int, Batch] = {}
        for key, raw in self.db.iterate(schema.BATCH_PREFIX):
            batch = decode_batch(raw)
            if key != schema.batch_key(batch.index):
                raise RecoveryError(f"batch record under the wrong key: 0x{key.hex()}")
            records[batch.index] = batch
        for entry in self.ledger.entries():
            if self.ledger.doomed(entry):
                continue  # a revert undid it (its batch was proven wrong on L1)
            if self.open is None or entry.batch != self.open.index:
                if self.open is not None:
                    self._finish_replayed(records)
                if entry.batch != self.closed:
                    raise RecoveryError(f"log entry {entry.sequence} skips to batch {entry.batch}")
                self.open = OpenBatch(
                    entry.batch,
                    self.state.root,
                    entry.timestamp,
                    self.inbox_next,
                    self.inbox_next,
                    entry.sequence,
                )
                self.batch_starts[entry.batch] = entry.sequence
            if entry.index != self.open.steps or entry.timestamp != self.open.timestamp:
                raise RecoveryError(f"log entry {entry.sequence} is out of place")
            outcome = apply_step(
                self.state, Step(entry.kind, entry.data), self._context(entry.timestamp)
            )
            self._track(entry.kind, entry.data, outcome, entry.batch)
            if entry.kind == StepKind.L1_MESSAGE:
                self.open.inbox_end += 1
                self.inbox_next += 1
            elif outcome.applied:
                self.open.transactions.append(entry.data)
            else:
                raise RecoveryError(f"log entry {entry.sequence} no longer applies: {outcome}")
        if self.open is not None and self.open.index in records:
            self._finish_replayed(records)
        if set(records) - set(range(self.closed)):
            raise RecoveryError(f"batch records beyond the log: {sorted(records)}")
        self.state.commit()
        self.sequenced = self.ledger.head
        log.info(
            "recovered %d log entries, %d closed batches, root 0x%s",
            self.ledger.head,
            self.closed,
            self.state.root.hex(),
        )

    def _track(self, kind: StepKind, data: bytes, outcome: Outcome, batch: int) -> None:
        """Fold an applied step into the order, owner and withdrawal indexes."""
        if not outcome.applied:
            return
        if outcome.withdrawal_id is not None:
            self.withdrawals[outcome.withdrawal_id] = batch
        raw = data
        if kind == StepKind.L1_MESSAGE:
            message = decode_l1_message(data)
            if isinstance(message, Deposit):
                self.owners.setdefault(message.owner, message.account)
                return
            raw = message.transaction
        if outcome.order is not None or outcome.fills or outcome.removals:
            order = decode_transaction(raw).message
            self.orders.record(order if isinstance(order, Order) else None, outcome)

    def _finish_replayed(self, records: dict[int, Batch]) -> None:
        """The replay reached the end of batch ``open``: check it against its record, or
        write the record if the crash came between its last entry and its record."""
        batch = self.open
        assert batch is not None
        replayed = batch.record(self.state.commit())
        record = records.get(batch.index)
        self.last_timestamp = batch.timestamp
        if record is None:
            self.db.put(schema.batch_key(batch.index), encode_batch(replayed), sync=True)
        elif record != replayed:
            raise RecoveryError(f"the log does not replay to closed batch {batch.index}")
        self.closed += 1
        self.open = None

    # sequencing -----------------------------------------------------------------------

    def _context(self, timestamp: int) -> BatchContext:
        return BatchContext(timestamp, self.domain)

    def _batch_for_next_step(self, kind: StepKind) -> OpenBatch:
        """The batch the next step goes into: the open one unless it is full (or, for an
        inbox message, already has transactions), in which case it is sealed first."""
        batch = self.open
        if batch is not None and (
            len(batch.transactions) >= self.max_batch_transactions
            or (kind == StepKind.L1_MESSAGE and batch.transactions)
        ):
            self._seal()
            batch = None
        if batch is None:
            batch = self.open = OpenBatch(
                self.closed,
                self.state.commit(),
                max(int(self.clock()), self.last_timestamp),
                self.inbox_next,
                self.inbox_next,
                self._next_sequence(),
            )
            self.batch_starts[batch.index] = batch.first_sequence
        return batch

    def _seal(self) -> Batch:
        """Close the open batch now (synchronously: its post root is the state now) and
        queue its record to be written once its entries are durable."""
        batch = self.open
        assert batch is not None and batch.steps > 0
        started = time.perf_counter()
        record = batch.record(self.state.commit())
        if self.timings is not None:
            self.timings("seal", time.perf_counter() - started)
        if self.record_hook is not None:
            record = self.record_hook(record)
        self.open = None
        self.closed += 1
        self.last_timestamp = batch.timestamp
        written = asyncio.get_running_loop().create_task(self._write_record(record))
        self._records = [*self._prune_records(), written]
        return record

    async def _write_record(self, record: Batch) -> None:
        await self.committer.drain()
        await asyncio.to_thread(
            lambda: self.db.put(schema.batch_key(record.index), encode_batch(record), sync=True)
        )
        self._publish(
            "batches",
            {
                "index": record.index,
                "postRoot": "0x" + record.post_root.hex(),
                "inboxMessages": record.inbox_end - record.inbox_start,
                "transactions": len(record.transactions),
            },
        )

    def _next_sequence(self) -> int:
        return self.sequenced

    async def submit(self, raw: bytes) -> dict[str, Any]:
        """
        Sequence the encoded transaction ``raw``; the signed receipt once it is durable.
        :class:`AdmissionError` (nothing sequenced) if the STF refuses it.
        """
        await self._open_gate.wait()
        started = time.perf_counter()
        entry, receipt = self._sequence(StepKind.TRANSACTION, raw)
        sequenced = time.perf_counter()
        await self._commit(entry)
        if self.timings is not None:
            self.timings("sequence", sequenced - started)
            self.timings("durable", time.perf_counter() - sequenced)
        self._publish("receipts", receipt)
        return receipt

    async def submit_l1_message(self, message: bytes, index: int | None = None) -> dict[str, Any]:
        """
        Sequence the next L1 inbox message: a step whatever the STF says of it (a rejected
        forced transaction still counts). A batch's inbox messages precede its
        transactions, so an open batch that already has transactions is sealed first.
        With ``index`` (the message's inbox position), :class:`InboxMovedError` if that is no
        longer the next position (the engine was reverted meanwhile).
        """
        await self._open_gate.wait()
        if index is not None and index != self.inbox_next:
            # the inbox position moved while this waited (a revert): the caller reads again
            raise InboxMovedError(f"inbox message {index} is not next ({self.inbox_next} is)")
        entry, receipt = self._sequence(StepKind.L1_MESSAGE, message)
        await self._commit(entry)
        return receipt

    def _sequence(self, kind: StepKind, data: bytes) -> tuple[LogEntry, dict[str, Any]]:
        """Admit and apply one step synchronously; the entry to commit and its receipt."""
        if kind == StepKind.TRANSACTION:
            try:
                tx = decode_transaction(data)
            except WireError as exc:
                raise AdmissionError(Reason.MALFORMED, str(exc)) from None
            tx_hash = tx.hash(self.domain)
            message: object = tx.message
            kind_name = type(message).__name__
            if tx_hash in self._pending_hashes:
                raise AdmissionError(Reason.NONCE_USED, "this transaction is already sequenced")
        else:
            # two deposits can be byte-identical: the inbox position makes the hash unique
            tx_hash = keccak256(b"inbox" + self.inbox_next.to_bytes(8, "big") + data)
            try:
                message = decode_l1_message(data)
                kind_name = type(message).__name__
            except WireError:
                message, kind_name = None, "L1Message"
        batch = self._batch_for_next_step(kind)
        outcome = apply_step(self.state, Step(kind, data), self._context(batch.timestamp))
        if kind == StepKind.TRANSACTION and not outcome.applied:
            # a live logged transaction's nonce (or oracle timestamp) is spent in the state,
            # so the STF refuses a resend: the log is read only then, to say so clearly
            if self.ledger.contains(tx_hash):
                raise AdmissionError(Reason.NONCE_USED, "this transaction is already sequenced")
            raise AdmissionError(outcome.reason, outcome.detail)
        self._track(kind, data, outcome, batch.index)
        index = batch.steps
        sequence = self._next_sequence()
        promise = Receipt(tx_hash, batch.index, index)
        signature = sign_digest(self.key, promise.signing_hash(self.domain))
        receipt = receipt_json(promise, sequence, outcome, kind_name, signature)
        market = getattr(message, "market", None)
        if isinstance(market, int):
            receipt["market"] = market
        entry = LogEntry(
            sequence,
            batch.index,
            index,
            batch.timestamp,
            kind,
            data,
            tx_hash,
            _encode_json(receipt),
        )
        if kind == StepKind.L1_MESSAGE:
            batch.inbox_end += 1
            self.inbox_next += 1
        else:
            batch.transactions.append(data)
        self.sequenced += 1
        self._pending_hashes.add(tx_hash)
        return entry, receipt

    async def _commit(self, entry: LogEntry) -> None:
        try:
            await self.committer.commit(entry)
        finally:
            self._pending_hashes.discard(entry.tx_hash)

    async def close_batch(self) -> Batch | None:
        """
        Close the open batch (if it has a step; the daemon's timer calls this) and wait
        until its record is durable. Returns it.
        """
        if self.open is None or self.open.steps == 0:
            return None
        record = self._seal()
        await self.flush()
        return record

    async def flush(self) -> None:
        """Wait until every entry and every sealed batch's record so far is durable."""
        await self.committer.drain()
        while records := self._prune_records():
            await asyncio.wait(records)

    def _prune_records(self) -> list[asyncio.Task[None]]:
        """The record writes still running; a finished one that failed raises here (a
        batch record that could not be written must not go unnoticed)."""
        running = []
        for task in self._records:
            if not task.done():
                running.append(task)
            elif task.exception() is not None:
                raise RecordWriteError("a batch record could not be written") from task.exception()
        self._records = running
        return running

    async def revert(self, to_batch: int) -> list[LogEntry]:
        """
        Undo batch ``to_batch`` and every later one (L1 proved ``to_batch`` wrong): stop
        sequencing, wait until everything in flight is durable, place a revert marker
        in the log (deleting the undone batches' records in the same write), and
        rebuild the state by replaying the log, which now skips the undone entries. The
        state is back at the last good root. Returns the undone entries, in order, for
        :meth:`reexecute`. Their receipts read ``rejected`` from now on.
        """
        if not 0 <= to_batch < self.closed:
            raise ValueError(f"batch {to_batch} is not a closed batch")
        self._open_gate.clear()
        try:
            if self.open is not None and self.open.steps:
                self._seal()
            await self.flush()
            first = self.batch_starts[to_batch]
            undone = [e for e in self.ledger.entries(first) if not self.ledger.doomed(e)]
            deleted = [schema.batch_key(i) for i in range(to_batch, self.closed)]
            await asyncio.to_thread(self.ledger.revert, to_batch, deleted)
            self._reset()
            self._recover()
        finally:
            self._open_gate.set()
        log.warning(
            "reverted to batch %d: %d steps undone, root 0x%s",
            to_batch,
            len(undone),
            self.state.root.hex(),
            extra={"batch": to_batch, "undone": len(undone)},
        )
        return undone

    async def reexecute(self, undone: list[LogEntry]) -> tuple[int, int]:
        """Sequence the undone steps again, in their order: inbox messages (always) and
        the transactions that still apply (the others stay ``rejected``). Returns how many
        transactions were sequenced again and how many were dropped."""
        again = dropped = 0
        async with self.inbox_lock:
            for entry in undone:
                if entry.kind == StepKind.L1_MESSAGE:
                    await self.submit_l1_message(entry.data)
                    continue
                try:
                    await self.submit(entry.data)
                    again += 1
                except AdmissionError as exc:
                    dropped += 1
                    log.warning("0x%s no longer applies: %s", entry.tx_hash.hex(), exc)
        return again, dropped

    def trace(self, index: int) -> tuple[Batch, list[Step]]:
        """The closed batch ``index`` and its trace: its steps in order (inbox messages,
        then transactions), from the log. KeyError if it is not closed."""
        batch = self.batch(index)
        if batch is None:
            raise KeyError(f"batch {index} is not closed")
        first = self.batch_starts[index]
        steps = []
        for sequence in range(
            first, first + batch.inbox_end - batch.inbox_start + len(batch.transactions)
        ):
            entry = self.ledger.entry(sequence)
            if entry is None or entry.batch != index:
                raise KeyError(f"batch {index}'s step {sequence - first} is not durable yet")
            steps.append(Step(entry.kind, entry.data))
        return batch, steps

    def trace_roots(self, index: int) -> list[bytes]:
        """The state roots at every position of batch ``index``'s trace: ``roots[k]`` after
        ``k`` steps (``roots[0]`` its parent root, the last its post root), by replaying it
        over the stored state without writing to it. Cached."""
        return self._replayed(index)[0]

    def trace_store(self, index: int) -> NodeStore:
        """A node store holding every intermediate state of batch ``index``'s trace (the
        stored state plus the replay's nodes, kept in memory): a witness can be built from
        any of :meth:`trace_roots`."""
        return self._replayed(index)[1]

    def _replayed(self, index: int) -> tuple[list[bytes], NodeStore]:
        cached = self._roots.get(index)
        if cached is not None:
            return cached
        batch, steps = self.trace(index)
        store = OverlayNodeStore(self.state.store)
        state = State(store, batch.parent_root)
        context = self._context(batch.timestamp)
        roots = [batch.parent_root]
        for step in steps:
            apply_step(state, step, context)
            roots.append(state.commit())
        self._roots[index] = (roots, store)
        return roots, store

    def prove_at(self, index: int, table: int, key: int) -> Proof:
        """The proof of record ``key`` of ``table`` against closed batch ``index``'s post
        root (tree nodes are content-addressed and kept, so any closed batch's state is
        there). KeyError if the batch is not closed."""
        batch = self.batch(index)
        if batch is None:
            raise KeyError(f"batch {index} is not closed")
        return State(self.state.store, batch.post_root).prove(table, key)

    def batch(self, index: int) -> Batch | None:
        """The closed batch ``index``, or None."""
        raw = self.db.get(schema.batch_key(index))
        return None if raw is None else decode_batch(raw)

    def receipt(self, tx_hash: bytes) -> dict[str, Any] | None:
        """The stored receipt of ``tx_hash`` (as it was given), or None."""
        entry = self.ledger.by_hash(tx_hash)
        if entry is None or not entry.receipt:
            return None
        value: dict[str, Any] = json.loads(entry.receipt)
        if self.ledger.doomed(entry):
            value["finality"] = "rejected"
        return value

    def _publish(self, channel: str, payload: dict[str, Any]) -> None:
        """Tell the listeners; one that fails is logged, never the caller's problem (the
        step is already durable and its receipt owed)."""
        for listener in self.listeners:
            try:
                listener(channel, payload)
            except Exception:
                log.exception("a %s listener failed", channel)
