"""
The Rollup's chain of batches, read from L1 alone: every ``BatchPosted``,
``BatchesRejected`` and ``BatchFinalized`` event in L1 order, and each posted batch in full,
decoded from the calldata of the transaction that posted it (docs/l1.md, "Posting a batch";
docs/watchtower.md, "Reading posted batches"). Nothing comes from the sequencer's RPC.

A watcher re-executes exactly these batches; the sequencer may read them too. Both call
from worker threads: :class:`BatchReader` is synchronous and serialises its own calls.

Guarantees of :meth:`BatchReader.poll` and :meth:`BatchReader.read`:

- **Confirmed only.** They read blocks up to :meth:`BatchReader.confirmed_head` (``latest -
  confirmations``) and nothing newer, so a reorg no deeper than ``confirmations`` blocks
  never changes what they returned.
- **In L1 order, each event once.** Events come ordered by ``(block, log index)``, strictly
  after the reader's :class:`Cursor`, which moves past what was returned; a reader built
  with a saved cursor resumes exactly there.
- **Nothing left out.** Each event moves the Rollup's counters (:class:`ChainCounts`):
  a post must be at ``nextIndex`` with serial ``serialCount + 1``, a rejection must end at
  ``nextIndex``, a finalization must be at ``finalizedCount``. A log dropped, repeated or
  reordered by the node breaks the sequence and raises :class:`BatchMismatchError`; when a
  poll reaches the confirmed head, the counters must equal the Rollup's own views in that
  block, so a log missing at the end is caught too. (Counters start from
  :data:`GENESIS_COUNTS` when scanning from the deployment; otherwise from a saved
  :attr:`BatchReader.counts`, or, unknown, they are learned from the first events.)
- **The posted bytes.** :meth:`BatchReader.decode` rebuilds the :class:`Batch` from the
  posting transaction's calldata (``Rollup.postBatch`` arguments decoded with the
  committed ABI, the transaction list with ``node.protocol.batch.decode_transactions``)
  and checks that its header, with the transaction root recomputed from the transactions,
  hashes to the event's ``headerHash``, which the Rollup computed from the same calldata;
  while the batch stands, also to the Rollup's ``headerHash(index)``. The header hash
  commits to every transaction through the root, so calldata altered by the node cannot
  pass. The checks trust the node's logs and ``eth_call`` of the Rollup's storage; run your
  own node if you do not trust it that far.

Only direct calls of ``Rollup.postBatch`` are supported: the posting transaction must be
sent to the Rollup (from an EOA, as the sequencer does). A batch posted through another
contract (a multisig, a proxy, a batcher) has calldata that is not ``postBatch``'s; it
raises :class:`UnsupportedPostingError` rather than being traced.

Logs are fetched with one ``eth_getLogs`` (the three event topics, the Rollup's address)
per window of at most ``max_block_range`` blocks; the reader remembers the first block it
has not scanned, so a poll continues where the last one stopped.
"""

import logging
import threading
from dataclasses import dataclass, replace
from typing import Any, Final

from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import Web3Exception
from web3.types import FilterParams, LogReceipt

from node.protocol.batch import Batch, BatchHeader, decode_transactions
from node.protocol.errors import WireError

from .deploy import bind

log = logging.getLogger(__name__)

DEFAULT_MAX_BLOCK_RANGE: Final = 2_000
"""Blocks per ``eth_getLogs`` call: within what public providers accept."""

EVENTS: Final = ("BatchPosted", "BatchesRejected", "BatchFinalized")
"""The Rollup events a follower reads, fetched together."""


class BatchReaderError(Exception):
    """What the L1 node returned is not the Rollup's chain of batches, or cannot be read."""


class BatchMismatchError(BatchReaderError):
    """The logs, the calldata and the Rollup's storage do not agree: an event is missing,
    repeated or out of order, or a batch's data does not hash to its posted header."""


class UnsupportedPostingError(BatchReaderError):
    """A batch was posted by a transaction that is not a direct call of
    ``Rollup.postBatch`` (e.g. through a multisig or proxy): its calldata cannot be decoded
    as the batch."""


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """A point in L1's event order: everything at or before ``(block, log_index)`` is read.
    ``log_index = -1`` means before the first log of ``block``."""

    block: int
    """An L1 block number."""

    log_index: int = -1
    """A log index within ``block`` (-1: none of the block read yet)."""


@dataclass(frozen=True, slots=True)
class ChainCounts:
    """The Rollup's counters as of a cursor: its views ``nextIndex()``, ``serialCount()`` and
    ``finalizedCount()``."""

    next_index: int
    """Index the next batch must be posted at (the number of standing batches)."""

    serial_count: int
    """Batches ever posted: the last serial given."""

    finalized_count: int
    """Final batches."""


GENESIS_COUNTS: Final = ChainCounts(0, 0, 0)
"""The counters of a Rollup nothing was posted to: the start of a scan from the deployment."""


@dataclass(frozen=True, slots=True)
class Posted:
    """A ``BatchPosted`` event: the header of a batch (its transactions are in the calldata of
    ``l1_tx_hash``; :meth:`BatchReader.decode` reads them)."""

    header: BatchHeader
    """The header fields the event carries (txCount and txRoot as the Rollup computed them)."""

    serial: int
    """The post's serial (from 1, never reused): tells a repost at the same index apart."""

    header_hash: bytes
    """The event's ``headerHash``: the Rollup's hash of :attr:`header`."""

    l1_block: int
    """The L1 block of the post."""

    l1_tx_hash: bytes
    """The posting transaction."""

    log_index: int
    """The event's position in its block."""

    @property
    def index(self) -> int:
        """The batch index."""
        return self.header.index

    @property
    def cursor(self) -> Cursor:
        """This event's place in L1 order."""
        return Cursor(self.l1_block, self.log_index)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A ``BatchesRejected`` event: batches ``from_index .. to_index - 1`` are gone; the next
    post at ``from_index`` replaces them with a new serial."""

    from_index: int
    """The batch a dispute proved wrong."""

    to_index: int
    """One past the last batch removed (the Rollup's ``nextIndex`` before)."""

    winner: ChecksumAddress
    """Who won the game."""

    reward: int
    """Wei of the sequencer's stake credited to the winner."""

    l1_block: int
    """The L1 block of the rejection."""

    l1_tx_hash: bytes
    """The transaction that rejected them."""

    log_index: int
    """The event's position in its block."""

    @property
    def cursor(self) -> Cursor:
        """This event's place in L1 order."""
        return Cursor(self.l1_block, self.log_index)


@dataclass(frozen=True, slots=True)
class Finalized:
    """A ``BatchFinalized`` event: batch ``index``, posted as ``serial``, is final."""

    index: int
    """The batch index."""

    serial: int
    """The serial of the post that became final."""

    post_root: bytes
    """Its post-state root, now final (withdrawals are proven against it)."""

    l1_block: int
    """The L1 block of the finalization."""

    l1_tx_hash: bytes
    """The transaction that finalized it."""

    log_index: int
    """The event's position in its block."""

    @property
    def cursor(self) -> Cursor:
        """This event's place in L1 order."""
        return Cursor(self.l1_block, self.log_index)


RollupEvent = Posted | Rejected | Finalized
"""One event of the Rollup's chain, as :meth:`BatchReader.events` returns it."""


@dataclass(frozen=True, slots=True)
class PostedBatch:
    """A posted batch in full, decoded from its posting transaction and verified."""

    batch: Batch
    """The batch: header fields and transactions exactly as posted."""

    serial: int
    """The post's serial."""

    header_hash: bytes
    """The header hash the Rollup recorded (``BatchHeader.hash`` of :attr:`batch`)."""

    l1_block: int
    """The L1 block of the post."""

    l1_tx_hash: bytes
    """The posting transaction."""

    log_index: int
    """The ``BatchPosted`` event's position in its block."""

    posted_at: int
    """The L1 time of the post (the Rollup's ``postedAt``): the challenge window starts here."""

    @property
    def index(self) -> int:
        """The batch index."""
        return self.batch.index

    @property
    def cursor(self) -> Cursor:
        """The post's place in L1 order."""
        return Cursor(self.l1_block, self.log_index)


ReadItem = PostedBatch | Rejected | Finalized
"""One item of :meth:`BatchReader.read`: a post decoded in full, or a rejection or
finalization."""


def verify_batch(batch: Batch, posted: Posted) -> None:
    """
    Check that ``batch`` (rebuilt from calldata) is the batch ``posted`` announces: its header,
    with the count and transaction root recomputed from its transactions, equals the event's
    fields and hashes to the event's ``headerHash``. :class:`BatchMismatchError` otherwise.
    """
    header = batch.header()
    where = f"batch {posted.index} (serial {posted.serial}, tx 0x{posted.l1_tx_hash.hex()})"
    if header != posted.header:
        fields = [
            name
            for name in BatchHeader.__dataclass_fields__
            if getattr(header, name) != getattr(posted.header, name)
        ]
        raise BatchMismatchError(
            f"{where}: the calldata differs from the BatchPosted event in {', '.join(fields)}"
        )
    if header.hash() != posted.header_hash:
        raise BatchMismatchError(
            f"{where}: the calldata hashes to 0x{header.hash().hex()}, the Rollup posted"
            f" 0x{posted.header_hash.hex()}"
        )


def advance_counts(counts: ChainCounts, event: RollupEvent) -> ChainCounts:
    """
    The Rollup's counters after ``event``, checking that ``event`` can follow ``counts``:
    :class:`BatchMismatchError` if an event is missing, repeated or out of order.
    """
    if isinstance(event, Posted):
        if (event.index, event.serial) != (counts.next_index, counts.serial_count + 1):
            raise BatchMismatchError(
                f"batch {counts.next_index} with serial {counts.serial_count + 1} expected"
                f" next, the node returned batch {event.index} with serial {event.serial}"
                f" (L1 block {event.l1_block}): an event is missing or out of order"
            )
        return replace(counts, next_index=event.index + 1, serial_count=event.serial)
    if isinstance(event, Rejected):
        if not counts.finalized_count <= event.from_index < event.to_index == counts.next_index:
            raise BatchMismatchError(
                f"a rejection of batches {event.from_index}..{event.to_index - 1} (L1 block"
                f" {event.l1_block}), but batches {counts.finalized_count}.."
                f"{counts.next_index - 1} were pending: an event is missing or out of order"
            )
        return replace(counts, next_index=event.from_index)
    if not event.index == counts.finalized_count < counts.next_index:
        raise BatchMismatchError(
            f"batch {event.index} finalized (L1 block {event.l1_block}), but"
            f" {counts.finalized_count} of {counts.next_index} batches were final: an event"
            " is missing or out of order"
        )
    return replace(counts, finalized_count=event.index + 1)


class BatchReader:
    """
    Reads the chain of batches of the Rollup at ``rollup_address`` through ``w3``, from
    blocks at least ``confirmations`` deep. ``start_block`` is where scanning starts (the
    deployment's ``start_block``: nothing before it is scanned); ``cursor`` resumes after a
    saved :attr:`cursor` instead, with the :attr:`counts` saved with it. Without ``counts``
    they are the Rollup's views at the block before the cursor (zero before the Rollup
    existed), which needs the node to serve that block's state. Thread-safe (one call at a
    time).
    """

    def __init__(
        self,
        w3: Web3,
        rollup_address: str,
        confirmations: int,
        *,
        start_block: int = 0,
        max_block_range: int = DEFAULT_MAX_BLOCK_RANGE,
        cursor: Cursor | None = None,
        counts: ChainCounts | None = None,
    ) -> None:
        if confirmations < 0:
            raise ValueError(f"confirmations must be >= 0, got {confirmations}")
        if start_block < 0:
            raise ValueError(f"start_block must be >= 0, got {start_block}")
        if max_block_range < 1:
            raise ValueError(f"max_block_range must be >= 1, got {max_block_range}")
        if cursor is not None and cursor.log_index >= 0 and counts is None:
            raise ValueError("a cursor inside a block needs the counts saved with it")
        self.w3 = w3
        self.rollup = bind(w3, "Rollup", rollup_address)
        self.confirmations = confirmations
        self.start_block = start_block
        self.max_block_range = max_block_range
        self._events = {name: self.rollup.events[name]() for name in EVENTS}
        self._topics = {
            Web3.to_bytes(hexstr=event.topic): name for name, event in self._events.items()
        }
        self._cursor = Cursor(start_block) if cursor is None else cursor
        """Everything up to here was returned."""
        self._counts = counts
        """The Rollup's counters at the cursor (None until first needed, if not given)."""
        self._scanned = self._cursor.block - 1
        """The last block whose logs were fetched (the cursor's own block is fetched again:
        its events after the cursor are still to come)."""
        self._pending: list[RollupEvent] = []
        """Events of scanned blocks after the cursor, not returned yet (over a limit)."""
        self._lock = threading.Lock()

    @property
    def cursor(self) -> Cursor:
        """Where the reader is: every event at or before it was returned. Save it with
        :attr:`counts` to resume after a restart."""
        return self._cursor

    @property
    def counts(self) -> ChainCounts | None:
        """The Rollup's counters at :attr:`cursor` (None before the first poll if not given)."""
        return self._counts

    def confirmed_head(self) -> int:
        """The newest L1 block considered confirmed: ``latest - confirmations``."""
        return int(self.w3.eth.block_number) - self.confirmations

    # the cursor --------------------------------------------------------------------------

    def poll(self, limit: int) -> list[RollupEvent]:
        """
        Up to ``limit`` events after :attr:`cursor`, in L1 order, from confirmed blocks only
        (fewer, or none, when no more are confirmed yet), checked in sequence (see the
        module's guarantees); the cursor moves past them. :class:`BatchMismatchError` if the
        node's logs are not the Rollup's chain (the cursor then stays where it was).
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        with self._lock:
            return self._poll(limit)

    def read(self, limit: int) -> list[ReadItem]:
        """
        Like :meth:`poll`, with every post decoded and verified in full (:meth:`decode`):
        what a follower re-executes. The cursor moves only if every post decodes.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        with self._lock:
            saved = (self._cursor, self._counts, self._scanned, list(self._pending))
            try:
                events = self._poll(limit)
                return [self._decode(e) if isinstance(e, Posted) else e for e in events]
            except BaseException:
                self._cursor, self._counts, self._scanned, self._pending = saved
                raise

    def _poll(self, limit: int) -> list[RollupEvent]:
        counts = self._counts if self._counts is not None else self._initial_counts()
        head = self.confirmed_head()
        pending = list(self._pending)
        scanned, fetched = self._scanned, False
        while len(pending) < limit and scanned < head:
            end = min(scanned + self.max_block_range, head)
            pending.extend(e for e in self.fetch(scanned + 1, end) if e.cursor > self._cursor)
            scanned, fetched = end, True
        events, rest = pending[:limit], pending[limit:]
        for event in events:
            counts = advance_counts(counts, event)
        if fetched and scanned == head and not rest:
            self._check_counts(counts, head)
        self._counts, self._scanned, self._pending = counts, scanned, rest
        if rest:
            self._cursor = events[-1].cursor
        else:
            self._cursor = max(self._cursor, Cursor(scanned + 1))
        if events:
            log.info(
                "%d rollup events read, to L1 block %d (confirmed head %d)",
                len(events),
                events[-1].l1_block,
                head,
            )
        return events

    def _initial_counts(self) -> ChainCounts:
        """The Rollup's counters at the end of the block before the cursor (zero while the
        Rollup did not exist yet)."""
        block = self._cursor.block - 1
        if block < 0 or not self.w3.eth.get_code(self.rollup.address, block_identifier=block):
            return GENESIS_COUNTS
        return self._counts_at(block)

    def _counts_at(self, block: int) -> ChainCounts:
        """The Rollup's views ``nextIndex``, ``serialCount`` and ``finalizedCount`` after L1
        block ``block``."""
        views = self.rollup.functions
        return ChainCounts(
            next_index=int(views.nextIndex().call(block_identifier=block)),
            serial_count=int(views.serialCount().call(block_identifier=block)),
            finalized_count=int(views.finalizedCount().call(block_identifier=block)),
        )

    def _check_counts(self, counts: ChainCounts, head: int) -> None:
        """The events read up to ``head`` must leave the Rollup's counters as its storage
        holds them in that block: else logs were left out (or made up)."""
        if not self.w3.eth.get_code(self.rollup.address, block_identifier=head):
            if counts != GENESIS_COUNTS:
                raise BatchMismatchError(f"events of a Rollup that has no code at block {head}")
            return
        stored = self._counts_at(head)
        if stored != counts:
            raise BatchMismatchError(
                f"the events read up to L1 block {head} add up to {counts}, the Rollup holds"
                f" {stored} there: the node left events out"
            )

    # events ------------------------------------------------------------------------------

    def events(self, from_block: int, to_block: int) -> list[RollupEvent]:
        """
        The Rollup's events in blocks ``from_block .. to_block`` (past the confirmed head is
        left out), in L1 order, one ``eth_getLogs`` per window of ``max_block_range``
        blocks; parsed and each post's own fields checked against its ``headerHash``, but not
        checked in sequence (:meth:`poll` does that).
        """
        to_block = min(to_block, self.confirmed_head())
        found: list[RollupEvent] = []
        block = max(from_block, 0)
        while block <= to_block:
            end = min(block + self.max_block_range - 1, to_block)
            found.extend(self.fetch(block, end))
            block = end + 1
        return found

    def fetch(self, from_block: int, to_block: int) -> list[RollupEvent]:
        """The Rollup's events of blocks ``from_block..to_block`` (one ``eth_getLogs``), in
        L1 order."""
        log.debug("eth_getLogs rollup events, blocks %d..%d", from_block, to_block)
        params: FilterParams = {
            "address": self.rollup.address,
            "fromBlock": from_block,
            "toBlock": to_block,
            "topics": [[HexBytes(topic) for topic in self._topics]],
        }
        logs = self.w3.eth.get_logs(params)
        ordered = sorted(logs, key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))
        events = [self._parse(entry) for entry in ordered]
        for event in events:
            if not from_block <= event.l1_block <= to_block:
                raise BatchMismatchError(
                    f"the node returned an event of L1 block {event.l1_block} for blocks"
                    f" {from_block}..{to_block}"
                )
        return events

    def _parse(self, entry: LogReceipt) -> RollupEvent:
        """One log of the Rollup as its event."""
        if Web3.to_checksum_address(entry["address"]) != self.rollup.address or entry.get(
            "removed"
        ):
            raise BatchMismatchError(f"the node returned a foreign or removed log: {entry}")
        name = self._topics.get(bytes(entry["topics"][0])) if entry["topics"] else None
        if name is None:
            raise BatchMismatchError(f"the node returned a log of another event: {entry}")
        data = self._events[name].process_log(entry)
        args: Any = data["args"]
        l1_block, log_index = int(data["blockNumber"]), int(data["logIndex"])
        l1_tx_hash = bytes(data["transactionHash"])
        if name == "BatchesRejected":
            return Rejected(
                from_index=int(args["fromIndex"]),
                to_index=int(args["toIndex"]),
                winner=Web3.to_checksum_address(args["winner"]),
                reward=int(args["reward"]),
                l1_block=l1_block,
                l1_tx_hash=l1_tx_hash,
                log_index=log_index,
            )
        if name == "BatchFinalized":
            return Finalized(
                index=int(args["index"]),
                serial=int(args["serial"]),
                post_root=bytes(args["postRoot"]),
                l1_block=l1_block,
                l1_tx_hash=l1_tx_hash,
                log_index=log_index,
            )
        posted = Posted(
            header=BatchHeader(
                index=int(args["index"]),
                parent_root=bytes(args["parentRoot"]),
                timestamp=int(args["timestamp"]),
                inbox_start=int(args["inboxStart"]),
                inbox_end=int(args["inboxEnd"]),
                tx_count=int(args["txCount"]),
                tx_root=bytes(args["txRoot"]),
                post_root=bytes(args["postRoot"]),
            ),
            serial=int(args["serial"]),
            header_hash=bytes(args["headerHash"]),
            l1_block=l1_block,
            l1_tx_hash=l1_tx_hash,
            log_index=log_index,
        )
        if posted.header.hash() != posted.header_hash:
            raise BatchMismatchError(
                f"the BatchPosted event of batch {posted.index} (L1 block {posted.l1_block})"
                f" carries a header that does not hash to its headerHash"
            )
        return posted

    # posts in full -----------------------------------------------------------------------

    def decode(self, posted: Posted) -> PostedBatch:
        """
        The batch ``posted`` announces, in full: ``postBatch``'s arguments decoded from the
        posting transaction's calldata with the Rollup's ABI, the inbox start from the event,
        verified (:func:`verify_batch`; while the batch stands at its serial, also against the
        Rollup's ``headerHash``). :class:`UnsupportedPostingError` if the transaction does not
        call ``Rollup.postBatch`` directly, :class:`BatchMismatchError` if the data is not
        the posted batch.
        """
        with self._lock:
            return self._decode(posted)

    def _decode(self, posted: Posted) -> PostedBatch:
        where = f"batch {posted.index} (serial {posted.serial}, tx 0x{posted.l1_tx_hash.hex()})"
        tx = self.w3.eth.get_transaction(HexBytes(posted.l1_tx_hash))
        if bytes(tx["hash"]) != posted.l1_tx_hash or tx["blockNumber"] != posted.l1_block:
            raise BatchMismatchError(
                f"{where}: the node returned transaction 0x{bytes(tx['hash']).hex()} of block"
                f" {tx['blockNumber']} for the post in block {posted.l1_block}"
            )
        to = tx.get("to")
        if to is None or Web3.to_checksum_address(to) != self.rollup.address:
            raise UnsupportedPostingError(
                f"{where} was posted by a transaction to {to}, not to the Rollup"
                f" {self.rollup.address}: only direct calls of Rollup.postBatch (from an EOA)"
                " can be read"
            )
        try:
            function, args = self.rollup.decode_function_input(tx["input"])
        except (ValueError, Web3Exception) as exc:
            raise BatchMismatchError(f"{where}: its calldata is no Rollup call: {exc}") from exc
        if function.fn_name != "postBatch":
            raise BatchMismatchError(f"{where}: the posting transaction calls {function.fn_name}")
        try:
            batch = Batch(
                index=int(args["index"]),
                parent_root=bytes(args["parentRoot"]),
                timestamp=int(args["timestamp"]),
                inbox_start=posted.header.inbox_start,
                inbox_end=int(args["inboxEnd"]),
                post_root=bytes(args["postRoot"]),
                transactions=decode_transactions(bytes(args["transactions"])),
            )
        except WireError as exc:
            raise BatchMismatchError(f"{where}: its calldata is not a valid batch: {exc}") from exc
        verify_batch(batch, posted)
        self._check_stored(posted)
        block = self.w3.eth.get_block(posted.l1_block)
        return PostedBatch(
            batch=batch,
            serial=posted.serial,
            header_hash=posted.header_hash,
            l1_block=posted.l1_block,
            l1_tx_hash=posted.l1_tx_hash,
            log_index=posted.log_index,
            posted_at=int(block["timestamp"]),
        )

    def _check_stored(self, posted: Posted) -> None:
        """While the post still stands at its index, the Rollup's ``headerHash(index)`` must
        be the event's (both views read in one block, so a rejection between them cannot
        confuse them). A post since rejected has no record left to compare with."""
        views = self.rollup.functions
        block = int(self.w3.eth.block_number)
        if not views.isAlive(posted.index, posted.serial).call(block_identifier=block):
            log.debug("batch %d serial %d no longer stands", posted.index, posted.serial)
            return
        stored = bytes(views.headerHash(posted.index).call(block_identifier=block))
        if stored != posted.header_hash:
            raise BatchMismatchError(
                f"batch {posted.index} (serial {posted.serial}): the event's header hash is"
                f" 0x{posted.header_hash.hex()}, the Rollup holds 0x{stored.hex()}"
            )
