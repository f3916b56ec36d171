"""
What can go wrong in the SDK, as exceptions a trader's program can catch by kind.

Every exception of the SDK derives from :class:`SdkError`. JSON-RPC errors keep the
sequencer's ``code``, ``message`` and ``data`` (:class:`RpcError`); the application
codes of docs/sequencer.md have their own subclasses, so ``except RejectedError``
catches exactly "the STF refused it, nothing was sequenced".
"""

from typing import Any, Final

REJECTED: Final = -32010
"""The STF refused the transaction; nothing was sequenced (data: reason, code, detail)."""

NOT_FOUND: Final = -32011
"""Nothing is known under that name (data: what)."""

NOT_AVAILABLE: Final = -32012
"""Known, but not available yet, e.g. a withdrawal proof before finality (data: detail)."""


class SdkError(Exception):
    """Base of every error the SDK raises on purpose."""


class TransportError(SdkError):
    """The sequencer could not be reached or did not answer with JSON-RPC (connection
    refused or reset, timeout, an HTTP error status, a body that is not JSON). Whether a
    transaction sent when this happened was sequenced is unknown: ask ``receipt``."""


class RpcError(SdkError):
    """A JSON-RPC error answer."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        detail = ""
        if isinstance(data, dict) and data.get("detail"):
            detail = f": {data['detail']}"
        super().__init__(f"{message} ({code}){detail}")
        self.code = code
        """The JSON-RPC error code."""
        self.message = message
        """The error message."""
        self.data = data
        """The error's ``data`` member (an object saying what was wrong), or None."""


class RejectedError(RpcError):
    """The STF refused the transaction (-32010): it was not sequenced and changed nothing."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)
        fields = data if isinstance(data, dict) else {}
        self.reason: str = str(fields.get("reason", "UNKNOWN"))
        """The rejection reason's name, e.g. ``INVALID_PRICE`` (docs/protocol.md)."""
        self.reason_code: int | None = fields.get("code")
        """Its number."""
        self.detail: str = str(fields.get("detail", ""))
        """What exactly was wrong, in words."""

    def __str__(self) -> str:
        return f"rejected: {self.reason}" + (f": {self.detail}" if self.detail else "")


class NotFoundError(RpcError):
    """Nothing is known under that name (-32011): receipt, account, order, market, batch."""


class NotAvailableError(RpcError):
    """Known but not available yet (-32012), e.g. a withdrawal not yet final."""


class ConfigError(SdkError):
    """The sequencer's ``ratchet_getConfig`` does not match what this SDK signs with
    (another EIP-712 domain or message types): signing would produce rejected
    transactions, so the client refuses to start."""


class ReceiptError(SdkError):
    """A receipt whose signature does not recover to the sequencer's address, or that is
    not for the transaction sent: the promise it makes cannot be trusted."""


class NoAccountError(SdkError):
    """The key has no account on the rollup yet (none until its first deposit is
    sequenced), or the client was made without a key."""


class InvalidArgumentError(SdkError, ValueError):
    """An argument the SDK cannot use: a side, time in force, address, hash, key,
    channel or URL that does not parse. (Prices, sizes and amounts: :class:`UnitError`.)"""


class UnknownMarketError(SdkError, KeyError):
    """No market has this id or symbol."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown market"


class DuplicateClientIdError(SdkError, ValueError):
    """This client order id is already taken by an earlier order."""


class UnknownClientIdError(SdkError, KeyError):
    """No order of this client has this client order id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown client order id"


class FinalityError(SdkError):
    """The transaction's batch was proven wrong on L1: its receipt reads ``rejected``."""


class L1Error(SdkError):
    """An L1 action (approve, deposit, claim) failed: not enough tokens or ETH, or the
    transaction reverted (the revert reason is decoded when a Ratchet contract gave it)."""


def error_from_json(error: Any) -> RpcError:
    """The exception for a JSON-RPC ``error`` member."""
    if not isinstance(error, dict):
        return RpcError(-32603, f"malformed error object {error!r}")
    code = error.get("code")
    code = code if isinstance(code, int) else -32603
    message = str(error.get("message", ""))
    data = error.get("data")
    kind = {REJECTED: RejectedError, NOT_FOUND: NotFoundError, NOT_AVAILABLE: NotAvailableError}
    return kind.get(code, RpcError)(code, message, data)
