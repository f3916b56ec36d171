"""
Steps, their context and outcomes, and the per-step view of the state.

A step is one element of a batch's execution trace: an L1 inbox message or a
user transaction, as bytes. Applying it is total: any bytes give exactly one
post-state. A step the rules refuse is *rejected*: it still counts as a step but
changes nothing, and its :class:`Outcome` says why.

Every step runs on a :class:`StepState`, which fixes the order of state accesses
that the Solidity one-step executor reproduces (docs/protocol.md, section 5):

1. the first access to each key, read or write, reads it from the pre-state;
   later accesses see the step's own writes;
2. nothing is written to the underlying state until the step ends; then every
   key whose final record differs from the one first read is written, in the
   order the keys were first touched. A rejected step writes nothing.
"""

from dataclasses import dataclass
from enum import IntEnum

from .eip712 import Domain
from .state import StateView


class StepKind(IntEnum):
    """Where a step comes from."""

    L1_MESSAGE = 0
    """A message from the L1 inbox (deposit or forced transaction)."""

    TRANSACTION = 1
    """A user transaction the sequencer put in the batch."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the trace: its source and its bytes, which may be anything."""

    kind: StepKind
    """Inbox message or sequenced transaction."""

    data: bytes
    """The message or the encoded transaction."""


@dataclass(frozen=True, slots=True)
class BatchContext:
    """What a step may know besides the state: fixed per batch (and per chain)."""

    timestamp: int
    """The batch timestamp (unix seconds), fixed by the sequencer when it opens the batch."""

    domain: Domain
    """The EIP-712 domain transactions are signed in (L2 chain id, L1 rollup address)."""


class Reason(IntEnum):
    """Why a step was rejected (``OK``: it was applied). Numbers are stable: vectors use them."""

    OK = 0
    MALFORMED = 1
    """The bytes are not a well-formed L1 message or transaction."""
    BAD_SIGNATURE = 2
    """The signature recovers no signer."""
    UNKNOWN_ACCOUNT = 3
    """The acting account is not registered."""
    WRONG_SIGNER = 4
    """The signer is not the account's owner (or, for a price, not the oracle)."""
    NONCE_TOO_OLD = 5
    """The nonce is below the account's nonce window."""
    NONCE_USED = 6
    """The nonce was used before."""
    UNKNOWN_MARKET = 7
    """No market has this id."""
    NO_ORACLE_PRICE = 8
    """The market has no oracle price yet."""
    INVALID_PRICE = 9
    """A price that is 0 for a resting order, off the tick grid, or beyond the highest tick."""
    INVALID_SIZE = 10
    """A size that is 0 or not a multiple of the lot size."""
    INVALID_TIME_IN_FORCE = 11
    """An unknown time in force, or one not allowed with a market or reduce-only order."""
    EXPIRED = 12
    """The order's expiry is not after the batch timestamp."""
    ORDER_ID_TAKEN = 13
    """Another resting order has this order's id (sign again with another nonce)."""
    TOO_MANY_ORDERS = 14
    """The account already has ``MAX_OPEN_ORDERS`` resting orders."""
    WOULD_CROSS = 15
    """A post-only order would match on arrival."""
    NOTHING_TO_REDUCE = 16
    """A reduce-only order on the same side as the position, or with none."""
    NOT_FILLED = 17
    """A fill-or-kill order that could not fill completely."""
    ORDER_NOT_FOUND = 18
    """No resting order of this account has this hash."""
    ZERO_AMOUNT = 19
    """A transfer or withdrawal of 0."""
    SELF_TRANSFER = 20
    """A transfer to the paying account itself."""
    UNKNOWN_RECIPIENT = 21
    """A transfer to an account that is not registered."""
    INSUFFICIENT_COLLATERAL = 22
    """The amount is more than the account's free collateral."""
    SELF_LIQUIDATION = 23
    """A liquidator naming itself as the target."""
    NO_POSITION = 24
    """The target has no position in the market."""
    TARGET_HEALTHY = 25
    """The target's equity is not below its maintenance margin."""
    LIQUIDATOR_MARGIN = 26
    """The liquidator could not carry the position."""
    INVALID_ORACLE_PRICE = 27
    """An oracle price of 0."""
    STALE_TIMESTAMP = 28
    """An oracle timestamp not after the market's last one."""
    FUTURE_TIMESTAMP = 29
    """An oracle timestamp after the batch timestamp."""
    INVALID_DEPOSIT = 30
    """A deposit to an account id or of an amount out of range (the bridge never sends one)."""


class Rejected(Exception):  # noqa: N818 - control flow, not an error
    """Raised inside the STF to reject the current step; :func:`apply_step` catches it."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.name}: {detail}" if detail else reason.name)
        self.reason = reason
        self.detail = detail


class OrderEnd(IntEnum):
    """How a taker order left the matching engine."""

    FILLED = 0
    """Filled completely."""
    RESTING = 1
    """Its remainder rests on the book."""
    NO_LIQUIDITY = 2
    """Immediate-or-cancel: no more liquidity within its price; the remainder is cancelled."""
    MATCH_LIMIT = 3
    """It reached ``MAX_MATCHES`` makers; the remainder is cancelled."""
    TAKER_MARGIN = 4
    """The next fill would have breached its account's margin; the remainder is cancelled."""
    REDUCED = 5
    """Reduce-only: the position is closed; the remainder is cancelled."""


class RemovalReason(IntEnum):
    """Why a resting order left the book other than by filling."""

    CANCELLED = 0
    """Its owner cancelled it (``Cancel`` or ``CancelAll``)."""
    EXPIRED = 1
    """Matching reached it after its expiry."""
    SELF_TRADE = 2
    """A taker order of the same account reached it."""
    MAKER_MARGIN = 3
    """Its fill would have breached its account's initial margin."""


@dataclass(frozen=True, slots=True)
class Fill:
    """One match between the taker order and a resting maker order."""

    maker_account: int
    """The maker's account."""

    maker_order: bytes
    """The maker order's hash."""

    price: int
    """The maker's price."""

    size: int
    """Size filled."""

    maker_fee: int
    """Fee the maker paid (collateral units)."""

    taker_fee: int
    """Fee the taker paid (collateral units)."""


@dataclass(frozen=True, slots=True)
class Removal:
    """A resting order removed from the book other than by filling."""

    account: int
    """Its owner."""

    order_hash: bytes
    """Its hash."""

    reason: RemovalReason
    """Why."""


@dataclass(frozen=True, slots=True)
class OrderResult:
    """What happened to a taker order."""

    order_hash: bytes
    """The order's hash (its transaction hash)."""

    filled: int
    """Size filled at once."""

    notional: int
    """Sum of ``price * size`` over its fills: ``notional / filled`` is the average price."""

    resting: int
    """Size left resting on the book (0 unless ``end`` is RESTING)."""

    end: OrderEnd
    """Why matching ended."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one step: applied (``reason`` OK) or rejected."""

    reason: Reason
    """``Reason.OK`` if the step was applied, else why it was rejected."""

    detail: str = ""
    """Human detail of a rejection."""

    account: int | None = None
    """The account that acted (or was credited by a deposit), when known."""

    order: OrderResult | None = None
    """For an order: what happened to it."""

    fills: tuple[Fill, ...] = ()
    """For an order: its fills, in matching order."""

    removals: tuple[Removal, ...] = ()
    """Resting orders removed by this step (cancelled, expired, self-trade, maker margin)."""

    withdrawal_id: int | None = None
    """For a withdrawal: the id of the withdrawal record created."""

    writes: int = 0
    """Records this step changed (its dirty leaves)."""

    @property
    def applied(self) -> bool:
        """Whether the step changed the state as its rules say (it was not rejected)."""
        return self.reason is Reason.OK


_Key = tuple[int, int]


class StepState:
    """
    The state as one step sees it: first-touch reads from ``base``, buffered writes.

    See the module docstring for the access order this fixes.
    """

    __slots__ = ("base", "first", "writes")

    def __init__(self, base: StateView) -> None:
        self.base = base
        self.first: dict[_Key, bytes] = {}
        self.writes: dict[_Key, bytes] = {}

    def get(self, table: int, index: int) -> bytes:
        key = (table, index)
        record = self.writes.get(key)
        if record is not None:
            return record
        record = self.first.get(key)
        if record is None:
            record = self.base.get(table, index)
            self.first[key] = record
        return record

    def set(self, table: int, index: int, record: bytes) -> None:
        key = (table, index)
        if key not in self.first:
            self.first[key] = self.base.get(table, index)
        self.writes[key] = record

    def flush(self) -> int:
        """Write every changed key to ``base`` in first-touch order; returns how many."""
        count = 0
        writes = self.writes
        for key, original in self.first.items():
            record = writes.get(key)
            if record is not None and record != original:
                self.base.set(key[0], key[1], record)
                count += 1
        return count
