"""
The L1 inbox, read from L1 alone: every deposit and forced transaction the Bridge queued,
in inbox order, with the exact bytes, L1 time and accumulator the Bridge recorded
(docs/l1.md, "The inbox and its accumulator"; docs/sequencer.md, "Reading the L1 inbox").

The sequencer must consume inbox messages in order and before their forced-inclusion
deadline, or L1 refuses its batches; a watcher must re-execute a batch with exactly the
messages it consumed. Both read them here, from worker threads: :class:`InboxReader` is
synchronous and serialises its own calls.

Guarantees of :meth:`InboxReader.read`:

- **Confirmed only.** It reads blocks up to :meth:`InboxReader.confirmed_head` (``latest -
  confirmations``) and nothing newer, so a reorg no deeper than ``confirmations`` blocks
  never changes what it returned.
- **Contiguous.** The messages are ``start_index, start_index + 1, ...`` with no gap and no
  repeat.
- **The Bridge's inbox.** Each message's accumulator is recomputed from its bytes and time
  (``next_accumulator``), chained from the Bridge's own ``accumulator(start_index - 1)``
  (zero before message 0), and the last one must equal the Bridge's ``accumulator(last)``.
  The accumulator commits to every byte, time and position, so logs that were dropped,
  altered, reordered or made up (a buggy or lying RPC node, a load balancer mixing nodes
  at different heads) raise :class:`InboxMismatchError` instead of reaching the STF. The
  check trusts the node's ``eth_call`` of the Bridge's storage; run your own node if you do
  not trust it that far.
- **Reorgs deeper than ``confirmations`` are outside the guarantee** — and detected: the
  reader remembers the accumulators it returned, and a later read that finds a different
  message at such an index (in the logs or in the Bridge's storage) raises
  :class:`InboxReorgError`. Messages already consumed cannot be taken back; an operator must
  look.

Logs are fetched with ``eth_getLogs`` over windows of at most ``max_block_range`` blocks.
The reader remembers where messages and scanned windows lie (``index -> block``), so a
follow-up read continues where the last one stopped instead of rescanning from the Bridge's
deployment; an index it knows nothing about is found by a binary search of
``messageCount()`` over block numbers (which needs the node to serve historical state, as
an archive node or anvil does) when that takes fewer calls than scanning, and by scanning
when the node refuses; :meth:`InboxReader.hint` (the block of a message read before, kept
across a restart) spares both.
"""

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from web3 import Web3
from web3.exceptions import ContractLogicError, Web3Exception
from web3.types import EventData

from node.protocol.inbox import L1Message, decode_l1_message, next_accumulator

from .deploy import bind

log = logging.getLogger(__name__)

DEFAULT_MAX_BLOCK_RANGE: Final = 2_000
"""Blocks per ``eth_getLogs`` call: within what public providers accept."""

DEFAULT_MEMORY: Final = 4_096
"""How many message positions and accumulators a reader remembers (the oldest go first)."""

ZERO_ACCUMULATOR: Final = b"\x00" * 32
"""The accumulator before message 0."""


class InboxError(Exception):
    """What the L1 node returned is not the Bridge's inbox."""


class InboxMismatchError(InboxError):
    """The logs do not add up to the Bridge's inbox: a message is missing, repeated, out of
    order or altered, or the recomputed accumulator differs from the Bridge's."""


class InboxReorgError(InboxError):
    """A message this reader returned earlier is no longer the Bridge's message at its index:
    L1 reorganised deeper than the confirmation depth."""


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """One inbox message, as the Bridge queued it."""

    index: int
    """Position in the inbox, from 0."""

    data: bytes
    """The message bytes exactly as queued (``decode_l1_message`` reads them)."""

    timestamp: int
    """The L1 block time it was queued at, as the Bridge recorded it."""

    accumulator: bytes
    """The Bridge's accumulator after this message."""

    l1_block: int
    """The L1 block that queued it."""

    l1_tx_hash: bytes
    """The L1 transaction that queued it."""

    def decode(self) -> L1Message:
        """The deposit or forced transaction it carries."""
        return decode_l1_message(self.data)


def verify_messages(messages: Sequence[InboxMessage], start_index: int, previous: bytes) -> None:
    """
    Check that ``messages`` are inbox messages ``start_index, start_index + 1, ...`` with no
    gap, each carrying the accumulator ``next_accumulator`` computes from the one before,
    starting from ``previous`` (the accumulator of message ``start_index - 1``, zero for
    message 0). :class:`InboxMismatchError` at the first message that is not.
    """
    expected_index = start_index
    for message in messages:
        if message.index != expected_index:
            raise InboxMismatchError(
                f"inbox message {expected_index} expected, got message {message.index}"
                f" (L1 block {message.l1_block})"
            )
        accumulator = next_accumulator(previous, message.data, message.timestamp)
        if accumulator != message.accumulator:
            raise InboxMismatchError(
                f"inbox message {message.index} (L1 block {message.l1_block}, tx"
                f" 0x{message.l1_tx_hash.hex()}) does not match its accumulator: recomputed"
                f" 0x{accumulator.hex()}, the log says 0x{message.accumulator.hex()}"
            )
        previous = accumulator
        expected_index += 1


def deadline(message: InboxMessage, forced_inclusion_delay: int) -> int:
    """
    The last L1 block time at which a batch may land while leaving ``message`` unconsumed:
    ``timestamp + forcedInclusionDelay - 1``. The Rollup refuses a ``postBatch`` whose first
    unconsumed message has ``messageTimestamp + forcedInclusionDelay <= block.timestamp``
    (``ForcedInclusionOverdue``). The time that counts is the block the posting transaction
    lands in, not the batch header's timestamp.
    """
    return message.timestamp + forced_inclusion_delay - 1


def must_consume(
    messages: Sequence[InboxMessage], land_by: int, forced_inclusion_delay: int
) -> int:
    """
    How many of ``messages`` a batch must consume to be accepted in an L1 block with time up
    to ``land_by``: one past the last message whose :func:`deadline` is before ``land_by``
    (0 if none is). ``messages`` must start at the batch's first unconsumed message and run
    in inbox order; since the Bridge queues in time order, the result is the prefix of
    messages due by then. ``land_by`` is L1 time (the latest block's time plus the longest
    the sequencer expects its transaction to take to land), not the local clock.
    """
    count = 0
    for position, message in enumerate(messages):
        if deadline(message, forced_inclusion_delay) < land_by:
            count = position + 1
    return count


@dataclass(frozen=True, slots=True)
class _Position:
    """Where to start scanning for message ``count``: every message from ``count`` on was
    queued in block ``block`` or later (earlier messages may share ``block``)."""

    count: int
    block: int


class InboxReader:
    """
    Reads the inbox of the Bridge at ``bridge_address`` through ``w3``, from blocks at least
    ``confirmations`` deep. ``start_block`` is the Bridge's deployment block
    (``Deployment.start_block``): nothing before it is scanned. Thread-safe (one call at a
    time).
    """

    def __init__(
        self,
        w3: Web3,
        bridge_address: str,
        confirmations: int,
        *,
        start_block: int = 0,
        max_block_range: int = DEFAULT_MAX_BLOCK_RANGE,
        memory: int = DEFAULT_MEMORY,
    ) -> None:
        if confirmations < 0:
            raise ValueError(f"confirmations must be >= 0, got {confirmations}")
        if start_block < 0:
            raise ValueError(f"start_block must be >= 0, got {start_block}")
        if max_block_range < 1:
            raise ValueError(f"max_block_range must be >= 1, got {max_block_range}")
        if memory < 1:
            raise ValueError(f"memory must be >= 1, got {memory}")
        self.w3 = w3
        self.bridge = bind(w3, "Bridge", bridge_address)
        self.confirmations = confirmations
        self.start_block = start_block
        self.max_block_range = max_block_range
        self.memory = memory
        self._positions: dict[int, int] = {0: start_block}
        """Known positions, message index -> first block to scan for it (see _Position)."""
        self._accumulators: dict[int, bytes] = {}
        """Accumulators of messages this reader returned or checked, by index."""
        self._lock = threading.Lock()

    def confirmed_head(self) -> int:
        """The newest L1 block considered confirmed: ``latest - confirmations`` (below the
        Bridge's ``start_block`` while nothing is confirmed yet)."""
        return int(self.w3.eth.block_number) - self.confirmations

    def hint(self, index: int, l1_block: int, accumulator: bytes | None = None) -> None:
        """
        Tell the reader that message ``index`` was queued in L1 block ``l1_block`` (the
        ``l1_block`` of an :class:`InboxMessage` read earlier, e.g. kept across a restart),
        so that reading from there needs neither a scan from the Bridge's deployment nor a
        binary search. A wrong block costs no safety: a message missing after it shows up as
        a gap, which raises and makes the reader forget the hint. With ``accumulator`` (the
        message's, as consumed before the restart) the reader also raises
        :class:`InboxReorgError` if L1 no longer holds that message.
        """
        if index < 0 or l1_block < self.start_block:
            raise ValueError(f"no message {index} at L1 block {l1_block}")
        with self._lock:
            self._remember({index: l1_block}, [])
            if accumulator is not None:
                self._accumulators[index] = accumulator

    def read(self, start_index: int, limit: int) -> list[InboxMessage]:
        """
        Up to ``limit`` inbox messages from ``start_index`` on, in order, from confirmed
        blocks only (fewer, or none, if no more are confirmed yet), verified against the
        Bridge (see the module's guarantees). :class:`InboxMismatchError` or
        :class:`InboxReorgError` if the node's answers are not the Bridge's inbox.
        """
        if start_index < 0:
            raise ValueError(f"start_index must be >= 0, got {start_index}")
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        with self._lock:
            head = self.confirmed_head()
            if head < self.start_block:
                return []
            position = self._position(start_index, head)
            try:
                messages, learned = self._scan(position, start_index, limit, head)
                self._verify(messages, start_index)
            except InboxError:
                log.error(
                    "inbox read from message %d failed; forgetting positions from %d",
                    start_index,
                    position.count,
                )
                self._forget_from(position.count)
                raise
            self._remember(learned, messages)
        if messages:
            log.info(
                "inbox messages %d..%d read (confirmed head %d)",
                messages[0].index,
                messages[-1].index,
                head,
            )
        return messages

    # finding where to scan ------------------------------------------------------------

    def _position(self, start_index: int, head: int) -> _Position:
        """The best place to start scanning for message ``start_index``: the nearest known
        position at or below it, or a binary search when that would take fewer calls than
        scanning from there."""
        count = max(c for c in self._positions if c <= start_index)
        known = _Position(count, self._positions[count])
        if count == start_index or known.block > head:
            return known
        blocks = head - known.block + 1
        windows = -(-blocks // self.max_block_range)
        if windows <= blocks.bit_length():
            return known
        located = self._locate(start_index, known.block, head)
        return known if located is None else located

    def _locate(self, start_index: int, low: int, head: int) -> _Position | None:
        """The block that queued message ``start_index``, by binary search of the Bridge's
        ``messageCount()`` over blocks ``low..head`` (the position past the confirmed inbox
        if it is not there yet); None if the node cannot serve that state."""
        try:
            confirmed = self._count_at(head)
            if confirmed <= start_index:
                return _Position(confirmed, head + 1)
            high = head
            while low < high:
                middle = (low + high) // 2
                if self._count_at(middle) > start_index:
                    high = middle
                else:
                    low = middle + 1
        except Web3Exception as exc:
            log.warning(
                "cannot binary-search the block of inbox message %d (%s); scanning instead",
                start_index,
                exc,
            )
            return None
        log.debug("inbox message %d located in L1 block %d", start_index, low)
        return _Position(start_index, low)

    def _count_at(self, block: int) -> int:
        """The Bridge's ``messageCount()`` after L1 block ``block``."""
        return int(self.bridge.functions.messageCount().call(block_identifier=block))

    # scanning -------------------------------------------------------------------------

    def _scan(
        self, position: _Position, start_index: int, limit: int, head: int
    ) -> tuple[list[InboxMessage], dict[int, int]]:
        """Scan windows from ``position`` up to ``head`` until ``limit`` messages from
        ``start_index`` are found; them, and the positions learned on the way."""
        learned = {position.count: position.block}
        messages: list[InboxMessage] = []
        expected = position.count
        block = position.block
        while block <= head and len(messages) < limit:
            end = min(block + self.max_block_range - 1, head)
            for message in self.fetch(block, end):
                if message.index < position.count and message.l1_block == position.block:
                    continue  # an earlier message in the block the position starts at
                if message.index != expected:
                    raise InboxMismatchError(
                        f"inbox message {expected} expected in L1 blocks {block}..{end},"
                        f" the node returned message {message.index} (block"
                        f" {message.l1_block}) instead"
                    )
                learned[message.index] = message.l1_block
                expected += 1
                if message.index >= start_index and len(messages) < limit:
                    messages.append(message)
            learned[expected] = end + 1
            block = end + 1
        return messages, learned

    def fetch(self, from_block: int, to_block: int) -> list[InboxMessage]:
        """The ``MessageQueued`` logs of blocks ``from_block..to_block`` (one ``eth_getLogs``),
        in chain order, unverified."""
        log.debug("eth_getLogs MessageQueued blocks %d..%d", from_block, to_block)
        logs = self.bridge.events.MessageQueued().get_logs(from_block=from_block, to_block=to_block)
        ordered = sorted(logs, key=lambda e: (int(e["blockNumber"]), int(e["logIndex"])))
        messages = [_message(event) for event in ordered]
        for message in messages:
            if not from_block <= message.l1_block <= to_block:
                raise InboxMismatchError(
                    f"the node returned inbox message {message.index} from L1 block"
                    f" {message.l1_block} for blocks {from_block}..{to_block}"
                )
        return messages

    # checking -------------------------------------------------------------------------

    def _verify(self, messages: list[InboxMessage], start_index: int) -> None:
        """Chain ``messages`` from the Bridge's accumulator before ``start_index``, end on
        the Bridge's accumulator of the last one, and compare with what was read before."""
        if not messages:
            return
        previous = (
            ZERO_ACCUMULATOR if start_index == 0 else self._bridge_accumulator(start_index - 1)
        )
        verify_messages(messages, start_index, previous)
        last = messages[-1]
        anchor = self._bridge_accumulator(last.index)
        if anchor != last.accumulator:
            raise InboxMismatchError(
                f"inbox message {last.index}: the logs chain to 0x{last.accumulator.hex()},"
                f" the Bridge holds 0x{anchor.hex()}"
            )
        for message in messages:
            self._check_known(message.index, message.accumulator)

    def _bridge_accumulator(self, index: int) -> bytes:
        """The Bridge's ``accumulator(index)`` in the latest block (an entry never changes,
        so the newest state is the most likely to reveal a deep reorg)."""
        try:
            accumulator = bytes(self.bridge.functions.accumulator(index).call())
        except ContractLogicError as exc:
            raise InboxReorgError(
                f"the Bridge has no inbox message {index} in the latest block, though it was"
                f" in a confirmed one: L1 reorganised deeper than {self.confirmations} blocks"
            ) from exc
        self._check_known(index, accumulator)
        return accumulator

    def _check_known(self, index: int, accumulator: bytes) -> None:
        """:class:`InboxReorgError` if message ``index`` was seen with another accumulator."""
        known = self._accumulators.get(index)
        if known is not None and known != accumulator:
            raise InboxReorgError(
                f"inbox message {index} changed: its accumulator was 0x{known.hex()}, now"
                f" 0x{accumulator.hex()}: L1 reorganised deeper than {self.confirmations}"
                " blocks"
            )

    # memory ---------------------------------------------------------------------------

    def _remember(self, learned: dict[int, int], messages: list[InboxMessage]) -> None:
        """Keep the positions and accumulators of a verified read (the newest ``memory``)."""
        for count, block in learned.items():
            self._positions[count] = max(block, self._positions.get(count, block))
        for message in messages:
            self._accumulators[message.index] = message.accumulator
        _trim(self._positions, self.memory, keep=0)
        _trim(self._accumulators, self.memory)

    def _forget_from(self, count: int) -> None:
        """Drop every position from message ``count`` on (but the Bridge's first): after a
        failed read they may rest on logs the node left out."""
        for known in [c for c in self._positions if c >= count and c != 0]:
            del self._positions[known]


def _message(event: EventData) -> InboxMessage:
    """An inbox message from its decoded ``MessageQueued`` log."""
    args = event["args"]
    return InboxMessage(
        index=int(args["messageIndex"]),
        data=bytes(args["message"]),
        timestamp=int(args["timestamp"]),
        accumulator=bytes(args["accumulator"]),
        l1_block=int(event["blockNumber"]),
        l1_tx_hash=bytes(event["transactionHash"]),
    )


_V = TypeVar("_V")


def _trim(entries: dict[int, _V], size: int, keep: int | None = None) -> None:
    """Drop the lowest keys of ``entries`` (but ``keep``) until at most ``size`` are left."""
    excess = len(entries) - size
    if excess <= 0:
        return
    for key in sorted(k for k in entries if k != keep)[:excess]:
        del entries[key]
