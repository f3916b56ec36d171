"""
Batches: what the sequencer posts to L1 and every watcher re-executes.

A batch names the L1 inbox messages it consumes (a half-open range of inbox
indices) and carries the user transactions, in order, as opaque byte strings:
a transaction that does not decode is still part of the trace (a no-op step),
so the format must carry it. Only over-long transactions make a whole batch
invalid, as the L1 contract refuses them at posting.

Wire form: ``rlp([index, parentRoot, timestamp, inboxStart, inboxEnd, postRoot,
[tx_1, ..., tx_n]])``. The header adds the derived ``txCount`` and ``txRoot``,
the root of a depth-:data:`TX_TREE_DEPTH` Merkle tree whose leaf ``i`` is
``keccak256(tx_i)``; the L1 contract computes it from the calldata itself.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .crypto import keccak256
from .encoding import decode_rlp_list, decode_uint, encode_items, encode_uint
from .errors import MalformedEncodingError, ValueOutOfRangeError
from .merkle import merkle_proof, merkle_root
from .transactions import MAX_TRANSACTION_BYTES

TX_TREE_DEPTH: Final = 16
"""Depth of a batch's transaction tree."""

MAX_BATCH_TRANSACTIONS: Final = 1 << TX_TREE_DEPTH
"""Most user transactions one batch may carry (65,536: far above what fits one L1 transaction)."""

MAX_BATCH_BYTES: Final = MAX_BATCH_TRANSACTIONS * (MAX_TRANSACTION_BYTES + 3) + 256
"""Upper bound on an encoded batch; anything longer is rejected unread."""


def transaction_leaf(raw: bytes) -> bytes:
    """Leaf of the transaction tree for one encoded transaction: ``keccak256(raw)``."""
    return keccak256(raw)


def encode_transactions(transactions: Sequence[bytes]) -> bytes:
    """The canonical RLP list of a batch's transactions: the ``transactions`` argument of
    ``Rollup.postBatch``, from which the contract computes the transaction root."""
    return encode_items(list(transactions))


def decode_transactions(data: bytes) -> tuple[bytes, ...]:
    """The transactions of a canonical RLP list as ``Rollup.postBatch`` takes it: the inverse
    of :func:`encode_transactions`, accepting exactly the lists :func:`decode_batch` accepts
    as a batch's last item (and so exactly what the contract accepts, docs/l1.md)."""
    if type(data) is bytes and len(data) > MAX_BATCH_BYTES:
        raise MalformedEncodingError(f"transaction list longer than {MAX_BATCH_BYTES} bytes")
    items = decode_rlp_list(data)
    if any(type(tx) is not bytes for tx in items):
        raise MalformedEncodingError("batch transactions must be a list of byte strings")
    if len(items) > MAX_BATCH_TRANSACTIONS:
        raise ValueOutOfRangeError(f"a batch carries at most {MAX_BATCH_TRANSACTIONS} transactions")
    if any(len(tx) > MAX_TRANSACTION_BYTES for tx in items):
        raise ValueOutOfRangeError(f"a batch transaction is at most {MAX_TRANSACTION_BYTES} bytes")
    return tuple(items)


def transactions_root(transactions: Sequence[bytes]) -> bytes:
    """The transaction root of a batch carrying ``transactions``."""
    return merkle_root(TX_TREE_DEPTH, [keccak256(raw) for raw in transactions])


def transaction_proof(transactions: Sequence[bytes], position: int) -> tuple[bytes, ...]:
    """Bottom-up siblings proving ``transactions[position]`` against :func:`transactions_root`."""
    return merkle_proof(TX_TREE_DEPTH, [keccak256(raw) for raw in transactions], position)


@dataclass(frozen=True)
class BatchHeader:
    """What L1 records of a batch; its hash is what the dispute game refers to."""

    index: int
    """Position of the batch in the rollup chain (0 = the first batch after genesis)."""

    parent_root: bytes
    """State root before the batch: the post-state root of the previous batch."""

    timestamp: int
    """Unix seconds fixed by the sequencer when it opened the batch; the STF's only clock."""

    inbox_start: int
    """Index of the first L1 inbox message the batch consumes."""

    inbox_end: int
    """One past the last consumed inbox message (``inbox_end == inbox_start``: none)."""

    tx_count: int
    """Number of user transactions."""

    tx_root: bytes
    """Root of the transaction tree."""

    post_root: bytes
    """State root the sequencer claims after executing the batch."""

    def hash(self) -> bytes:
        """``keccak256(abi.encode(index, parentRoot, timestamp, inboxStart, inboxEnd, txCount,
        txRoot, postRoot))``: eight 32-byte words, as Solidity computes it."""
        return keccak256(
            self.index.to_bytes(32, "big")
            + self.parent_root
            + self.timestamp.to_bytes(32, "big")
            + self.inbox_start.to_bytes(32, "big")
            + self.inbox_end.to_bytes(32, "big")
            + self.tx_count.to_bytes(32, "big")
            + self.tx_root
            + self.post_root
        )


@dataclass(frozen=True)
class Batch:
    """A batch as posted: header fields and the encoded user transactions."""

    index: int
    """See :attr:`BatchHeader.index`."""

    parent_root: bytes
    """See :attr:`BatchHeader.parent_root`."""

    timestamp: int
    """See :attr:`BatchHeader.timestamp`."""

    inbox_start: int
    """See :attr:`BatchHeader.inbox_start`."""

    inbox_end: int
    """See :attr:`BatchHeader.inbox_end`."""

    post_root: bytes
    """See :attr:`BatchHeader.post_root`."""

    transactions: tuple[bytes, ...]
    """The user transactions, encoded, in execution order (after the inbox messages)."""

    def __post_init__(self) -> None:
        for name in ("index", "timestamp", "inbox_start", "inbox_end"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value < 1 << 64:
                raise ValueOutOfRangeError(f"batch {name} must be a uint64, got {value!r}")
        for name in ("parent_root", "post_root"):
            value = getattr(self, name)
            if type(value) is not bytes or len(value) != 32:
                raise ValueOutOfRangeError(f"batch {name} must be 32 bytes")
        if self.inbox_end < self.inbox_start:
            raise ValueOutOfRangeError("batch inbox range ends before it starts")
        if type(self.transactions) is not tuple:
            raise ValueOutOfRangeError("batch transactions must be a tuple of bytes")
        if len(self.transactions) > MAX_BATCH_TRANSACTIONS:
            raise ValueOutOfRangeError(
                f"a batch carries at most {MAX_BATCH_TRANSACTIONS} transactions"
            )
        for raw in self.transactions:
            if type(raw) is not bytes or len(raw) > MAX_TRANSACTION_BYTES:
                raise ValueOutOfRangeError(
                    f"a batch transaction is at most {MAX_TRANSACTION_BYTES} bytes"
                )

    def header(self) -> BatchHeader:
        """The header, with the derived transaction count and root."""
        return BatchHeader(
            index=self.index,
            parent_root=self.parent_root,
            timestamp=self.timestamp,
            inbox_start=self.inbox_start,
            inbox_end=self.inbox_end,
            tx_count=len(self.transactions),
            tx_root=transactions_root(self.transactions),
            post_root=self.post_root,
        )


def encode_batch(batch: Batch) -> bytes:
    """The canonical wire encoding of a batch."""
    return encode_items(
        [
            encode_uint(batch.index),
            batch.parent_root,
            encode_uint(batch.timestamp),
            encode_uint(batch.inbox_start),
            encode_uint(batch.inbox_end),
            batch.post_root,
            list(batch.transactions),
        ]
    )


def decode_batch(data: bytes) -> Batch:
    """Decode a batch, rejecting anything :func:`encode_batch` would not produce."""
    if type(data) is bytes and len(data) > MAX_BATCH_BYTES:
        raise MalformedEncodingError(f"batch longer than {MAX_BATCH_BYTES} bytes")
    items = decode_rlp_list(data)
    if len(items) != 7:
        raise MalformedEncodingError(f"a batch is a list of 7 items, got {len(items)}")
    *header, transactions = items
    if any(type(item) is not bytes for item in header):
        raise MalformedEncodingError("batch header items must be byte strings")
    if type(transactions) is not list or any(type(tx) is not bytes for tx in transactions):
        raise MalformedEncodingError("batch transactions must be a list of byte strings")
    for name, item in (("parent root", header[1]), ("post root", header[5])):
        if len(item) != 32:
            raise MalformedEncodingError(f"batch {name} must be 32 bytes, got {len(item)}")
    return Batch(
        index=decode_uint(header[0], 64),
        parent_root=header[1],
        timestamp=decode_uint(header[2], 64),
        inbox_start=decode_uint(header[3], 64),
        inbox_end=decode_uint(header[4], 64),
        post_root=header[5],
        transactions=tuple(transactions),
    )
