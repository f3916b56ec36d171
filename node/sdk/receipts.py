"""
Receipts as the SDK returns them: checked against the sequencer's signature first.

A receipt is the sequencer's promise ``Receipt{txHash, batch, index}``, EIP-712
signed in the rollup's domain (INTERFACE.md). :func:`verify_receipt` recovers the
signer with the same code the node uses (``node.protocol``) and refuses a receipt
that is not signed by the sequencer ``ratchet_getConfig`` named, or that is not for
the transaction the caller expected: a trader's program never acts on a promise
nobody made.
"""

from dataclasses import dataclass
from typing import Any

from node.protocol.crypto import recover_signer
from node.protocol.eip712 import Domain
from node.protocol.errors import WireError
from node.protocol.transactions import Receipt

from .errors import ReceiptError

FINALITY_RANK = {"soft": 0, "posted": 1, "final": 2}
"""How far a receipt's transaction has come (``rejected`` is outside this order)."""


@dataclass(frozen=True)
class TxReceipt:
    """A verified receipt (the JSON object of ``ratchet_sendTransaction`` or
    ``ratchet_getReceipt``, docs/sequencer.md)."""

    tx_hash: str
    """The transaction hash, 0x-hex (for an order, also its order hash)."""

    type: str
    """The message type: ``Order``, ``Cancel``, ``Withdraw``, ... (``Deposit`` for L1)."""

    account: int | None
    """The acting account."""

    batch: int
    """The batch that carries it."""

    index: int
    """Its position in that batch."""

    sequence: int
    """Its position in the sequencer's log."""

    finality: str
    """``soft`` | ``posted`` | ``final`` | ``rejected`` (when it was read)."""

    outcome: dict[str, Any]
    """What it did: for an order ``orderHash``, ``filled``, ``averagePrice``,
    ``resting``, ``fills``...; for a withdrawal ``withdrawalId``; removed orders."""

    signature: str
    """The sequencer's signature of ``Receipt{txHash, batch, index}``."""

    json: dict[str, Any]
    """The whole receipt object as the sequencer sent it."""

    @property
    def order_hash(self) -> str | None:
        """An order's hash (None for other transactions)."""
        found = self.outcome.get("orderHash")
        return str(found) if found is not None else None

    @property
    def withdrawal_id(self) -> int | None:
        """A withdrawal's id, to claim it on L1 once final (None for others)."""
        found = self.outcome.get("withdrawalId")
        return int(found) if found is not None else None

    @property
    def filled(self) -> int:
        """An order's filled size in wire units (0 for others)."""
        return int(self.outcome.get("filled", 0))

    @property
    def resting(self) -> int:
        """An order's size left resting on the book, in wire units (0 for others)."""
        return int(self.outcome.get("resting", 0))


def verify_receipt(
    receipt: Any, domain: Domain, sequencer: bytes, tx_hash: bytes | None = None
) -> TxReceipt:
    """``receipt`` as a :class:`TxReceipt` if the sequencer signed it (and, with
    ``tx_hash``, if it is that transaction's); :class:`ReceiptError` otherwise."""
    if not isinstance(receipt, dict):
        raise ReceiptError(f"a receipt is a JSON object, got {receipt!r}")
    try:
        shown_hash = bytes.fromhex(str(receipt["txHash"]).removeprefix("0x"))
        batch, index = receipt["batch"], receipt["index"]
        signature = bytes.fromhex(str(receipt["signature"]).removeprefix("0x"))
        promise = Receipt(shown_hash, batch, index)
    except (KeyError, ValueError, TypeError, WireError) as exc:
        raise ReceiptError(f"malformed receipt {receipt!r}: {exc}") from None
    if tx_hash is not None and shown_hash != tx_hash:
        raise ReceiptError(
            f"the receipt is for 0x{shown_hash.hex()}, not for the transaction sent "
            f"(0x{tx_hash.hex()})"
        )
    try:
        signer = recover_signer(promise.signing_hash(domain), signature)
    except WireError as exc:
        raise ReceiptError(f"receipt 0x{shown_hash.hex()}: bad signature: {exc}") from None
    if signer != sequencer:
        raise ReceiptError(
            f"receipt 0x{shown_hash.hex()} is signed by 0x{signer.hex()}, not by the "
            f"sequencer 0x{sequencer.hex()}"
        )
    outcome = receipt.get("outcome")
    account = receipt.get("account")
    return TxReceipt(
        tx_hash="0x" + shown_hash.hex(),
        type=str(receipt.get("type", "")),
        account=account if isinstance(account, int) else None,
        batch=int(batch),
        index=int(index),
        sequence=int(receipt.get("sequence", 0)),
        finality=str(receipt.get("finality", "soft")),
        outcome=outcome if isinstance(outcome, dict) else {},
        signature=str(receipt["signature"]),
        json=receipt,
    )
