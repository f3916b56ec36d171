"""
The L1 posting state of a batch, as the poster (``node.sequencer.poster``) persists it:
one record per batch under ``schema.post_key(index)``, written with ``sync=True`` before
any transaction is sent, so that a restart knows every transaction that may be in flight.

Kept apart from the poster so that readers of the database (the JSON-RPC views, status
tools) see a batch's finality without importing web3.

Encoding::

    rlp([index, status, headerHash, nonce, maxFeePerGas, maxPriorityFeePerGas, gas,
         [txHash, ...], l1TxHash, l1Block, serial, postedAt])

``status`` is the ASCII name (``posting``, ``posted``, ``final``, ``rejected``);
``txHash, ...`` are the versions sent with ``nonce``, oldest first (the fees are the
last one's); ``l1TxHash`` is the transaction that landed the batch and ``l1Block`` its
block (empty and 0 if L1 holds the batch but its log was not found); ``serial`` and
``postedAt`` are the Rollup's record of it. Integers are RLP big-endian.
"""

from dataclasses import dataclass
from enum import StrEnum

import rlp
from rlp.sedes import Binary, CountableList, List, big_endian_int, binary

from node.storage import schema
from node.storage.db import KeyValueDB


class PostStateError(ValueError):
    """A stored posting state that does not decode: the database is corrupt."""


_HASH = Binary.fixed_length(32)
_OPTIONAL_HASH = Binary(min_length=0, max_length=32)


class PostStatus(StrEnum):
    """Where a batch stands on L1."""

    POSTING = "posting"
    """Being sent: a transaction may be in flight (or none yet, after a reorg)."""
    POSTED = "posted"
    """In an L1 block; its challenge window runs."""
    FINAL = "final"
    """Below ``finalizedCount()``: it can no longer be challenged or rejected."""
    REJECTED = "rejected"
    """Proven wrong by a dispute (or built on a batch that was): gone from L1."""


@dataclass(frozen=True, slots=True)
class PostState:
    """The posting state of one batch, as persisted (see the module docstring)."""

    index: int
    """The batch index."""

    status: PostStatus
    """Where it stands."""

    header_hash: bytes
    """The hash of the batch header being posted (``BatchHeader.hash()``)."""

    nonce: int = 0
    """The L1 nonce of the transactions in ``attempts``."""

    max_fee: int = 0
    """``maxFeePerGas`` of the last attempt (wei)."""

    priority_fee: int = 0
    """``maxPriorityFeePerGas`` of the last attempt (wei)."""

    gas: int = 0
    """The gas limit of every attempt."""

    attempts: tuple[bytes, ...] = ()
    """Hashes of the transactions sent with ``nonce``, oldest first (replacements later)."""

    l1_tx_hash: bytes = b""
    """The transaction that landed the batch, once posted."""

    l1_block: int = 0
    """Its L1 block number."""

    serial: int = 0
    """The Rollup's serial of the post (never reused; ``isAlive(index, serial)``)."""

    posted_at: int = 0
    """L1 timestamp of the post: the challenge window ends at ``posted_at + window``."""

    @property
    def tx_hash(self) -> bytes | None:
        """The L1 transaction of this batch: the one that landed it, else the latest sent."""
        if self.l1_tx_hash:
            return self.l1_tx_hash
        return self.attempts[-1] if self.attempts else None

    def encode(self) -> bytes:
        """The persisted form (module docstring)."""
        encoded: bytes = rlp.encode(
            [
                self.index,
                self.status.value.encode(),
                self.header_hash,
                self.nonce,
                self.max_fee,
                self.priority_fee,
                self.gas,
                list(self.attempts),
                self.l1_tx_hash,
                self.l1_block,
                self.serial,
                self.posted_at,
            ]
        )
        return encoded

    @classmethod
    def decode(cls, raw: bytes) -> "PostState":
        """The state encoded in ``raw``; :class:`PostStateError` if it is not one."""
        try:
            fields = rlp.decode(raw, _POST_STATE)
            index, status, header_hash, nonce, max_fee, priority_fee, gas = fields[:7]
            attempts, l1_tx_hash, l1_block, serial, posted_at = fields[7:]
            if len(l1_tx_hash) not in (0, 32):
                raise ValueError("the L1 transaction hash is 32 bytes or empty")
            return cls(
                index,
                PostStatus(status.decode()),
                header_hash,
                nonce,
                max_fee,
                priority_fee,
                gas,
                tuple(attempts),
                l1_tx_hash,
                l1_block,
                serial,
                posted_at,
            )
        except (rlp.DecodingError, rlp.DeserializationError, ValueError) as exc:
            raise PostStateError(f"corrupt posting state: {exc}") from None


_POST_STATE = List(
    [
        big_endian_int,
        binary,
        _HASH,
        big_endian_int,
        big_endian_int,
        big_endian_int,
        big_endian_int,
        CountableList(_HASH),
        _OPTIONAL_HASH,
        big_endian_int,
        big_endian_int,
        big_endian_int,
    ]
)
"""The sedes of an encoded :class:`PostState`."""


def read_post_state(db: KeyValueDB, index: int) -> PostState | None:
    """The posting state of batch ``index`` in ``db``, or None if the poster has not
    reached it."""
    raw = db.get(schema.post_key(index))
    return None if raw is None else PostState.decode(raw)
