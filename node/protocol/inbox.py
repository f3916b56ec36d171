"""
L1 inbox messages: what the bridge queues for the rollup (docs/protocol.md, section 3).

A message is one kind byte and a fixed payload:

- ``0x00 || owner (20 bytes) || account (uint64, 8 bytes) || amount (uint256, 32 bytes)``:
  a deposit of ``amount`` collateral into ``account``, registering it with ``owner``
  if it is new (61 bytes);
- ``0x01 || transaction``: a signed L2 transaction forced through L1, executed
  exactly like one the sequencer put in a batch.
"""

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from .crypto import keccak256
from .errors import MalformedEncodingError, UnknownTransactionKindError

DEPOSIT_LENGTH: Final = 61
"""Length of an encoded deposit message."""


class L1MessageKind(IntEnum):
    """The leading byte of an inbox message."""

    DEPOSIT = 0
    FORCED_TRANSACTION = 1


@dataclass(frozen=True, slots=True)
class Deposit:
    """Collateral locked in the L1 bridge for an account."""

    owner: bytes
    """The depositor's L1 address: the account's owner if the account is new."""

    account: int
    """The account id the bridge assigned to ``owner``."""

    amount: int
    """Collateral in token base units."""


@dataclass(frozen=True, slots=True)
class ForcedTransaction:
    """A signed L2 transaction a user pushed through the L1 inbox."""

    transaction: bytes
    """The encoded transaction (any bytes: it is validated when executed)."""


L1Message = Deposit | ForcedTransaction


def encode_l1_message(message: L1Message) -> bytes:
    """The bytes of an inbox message."""
    if isinstance(message, Deposit):
        return (
            bytes((L1MessageKind.DEPOSIT,))
            + message.owner
            + message.account.to_bytes(8, "big")
            + message.amount.to_bytes(32, "big")
        )
    return bytes((L1MessageKind.FORCED_TRANSACTION,)) + message.transaction


def decode_l1_message(data: bytes) -> L1Message:
    """Parse an inbox message; a typed ``WireError`` if it is not one."""
    if not data:
        raise MalformedEncodingError("empty L1 message")
    if data[0] == L1MessageKind.DEPOSIT:
        if len(data) != DEPOSIT_LENGTH:
            raise MalformedEncodingError(f"a deposit is {DEPOSIT_LENGTH} bytes, got {len(data)}")
        owner = data[1:21]
        account = int.from_bytes(data[21:29], "big")
        amount = int.from_bytes(data[29:61], "big")
        return Deposit(owner, account, amount)
    if data[0] == L1MessageKind.FORCED_TRANSACTION:
        return ForcedTransaction(data[1:])
    raise UnknownTransactionKindError(f"unknown L1 message kind {data[0]}")


def next_accumulator(previous: bytes, message: bytes, timestamp: int) -> bytes:
    """
    The inbox accumulator after appending ``message`` at L1 time ``timestamp``:
    ``keccak256(previous || keccak256(message) || uint64 timestamp)``, where ``previous``
    is the accumulator of the message before (32 zero bytes for the first). The Bridge
    stores it per message, so a follower can check the inbox it rebuilt from the logs.
    """
    return keccak256(previous + keccak256(message) + timestamp.to_bytes(8, "big"))
