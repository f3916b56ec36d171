"""
Every LevelDB key Ratchet writes, built in one place.

A key is a one-byte prefix naming its kind followed by the kind's own fields;
prefixes are never reused, so kinds cannot collide and a prefix scan lists one
kind. New kinds get the next free prefix and a line in this table.

| prefix | key                       | value                                   |
|--------|---------------------------|-----------------------------------------|
| 0x01   | node hash (32)            | tree node preimage: ``left || right`` or a leaf record |
| 0x02   | sequence (8, big-endian)  | one sequenced step of the tx log (node.sequencer.ledger) |
| 0x03   | tx hash (32)              | its sequence (8, big-endian)            |
| 0x04   | name (ASCII)              | a ledger head or setting (``HEAD_KEY``) |
| 0x05   | batch index (8)           | a closed batch and its first sequence   |
| 0x06   | batch index (8)           | its L1 posting state (sequencer.poster) |
| 0x07   | sequence (8)              | revert marker: batch index (8) undone   |
| 0x08   | batch index (8)           | a watcher's verdict on a posted batch   |

Big-endian sequence numbers make LevelDB's key order the log's order.
"""

from typing import Final

NODE_PREFIX: Final = b"\x01"
"""Content-addressed Merkle nodes and leaf records (see node.protocol.tree)."""


def node_key(node_hash: bytes) -> bytes:
    """Key of a Merkle node or leaf record, by its hash."""
    if len(node_hash) != 32:
        raise ValueError("a node hash is 32 bytes")
    return NODE_PREFIX + node_hash


LOG_PREFIX: Final = b"\x02"
"""The sequencer's transaction log, one entry per sequenced step, by sequence number."""

TX_HASH_PREFIX: Final = b"\x03"
"""Index from a transaction hash to its sequence number."""

META_PREFIX: Final = b"\x04"
"""Named singletons of the ledger."""

HEAD_KEY: Final = META_PREFIX + b"head"
"""The next sequence number (8 bytes, big-endian): one past the last durable entry."""


def sequence_bytes(sequence: int) -> bytes:
    """A sequence number as its 8-byte big-endian key field."""
    if not 0 <= sequence < 1 << 64:
        raise ValueError(f"a sequence number is a uint64, got {sequence}")
    return sequence.to_bytes(8, "big")


def log_key(sequence: int) -> bytes:
    """Key of the log entry at ``sequence``."""
    return LOG_PREFIX + sequence_bytes(sequence)


def tx_hash_key(tx_hash: bytes) -> bytes:
    """Key of the sequence number of the transaction ``tx_hash``."""
    if len(tx_hash) != 32:
        raise ValueError("a transaction hash is 32 bytes")
    return TX_HASH_PREFIX + tx_hash


BATCH_PREFIX: Final = b"\x05"
"""Closed batches, by index."""

POST_PREFIX: Final = b"\x06"
"""The L1 posting state of each batch, by index."""


def batch_key(index: int) -> bytes:
    """Key of the closed batch ``index``."""
    return BATCH_PREFIX + sequence_bytes(index)


def post_key(index: int) -> bytes:
    """Key of the posting state of batch ``index``."""
    return POST_PREFIX + sequence_bytes(index)


REVERT_PREFIX: Final = b"\x07"
"""Revert markers of the sequencer's log (a batch proven wrong on L1), by sequence."""


def revert_key(sequence: int) -> bytes:
    """Key of the revert marker placed before log entry ``sequence``."""
    return REVERT_PREFIX + sequence_bytes(sequence)


WATCHED_PREFIX: Final = b"\x08"
"""A watchtower's verdicts on posted batches, by index (challenger.verifier)."""


def watched_key(index: int) -> bytes:
    """Key of the watcher's verdict on batch ``index``."""
    return WATCHED_PREFIX + sequence_bytes(index)
