"""
What went wrong on L1, in words: revert data decoded against the committed contract
artifacts, and the JSON-RPC failures that are worth retrying.

A revert of a Ratchet contract carries a custom error (``WrongParentRoot(expected,
parentRoot)``, docs/l1.md); web3 hands it over as raw data. :func:`decode_revert` names
it and its arguments from the ABIs in ``contracts/artifacts/`` (every error of every
contract and library, plus Solidity's ``Error(string)`` and ``Panic(uint256)``), so an
operator reads ``InsufficientStake(stake=0, required=1000000000000000000)`` instead of
a selector. :func:`is_transient` tells a node that is down, slow or overloaded (retry
later) from an answer that will not change (report it).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import abi_to_signature, function_signature_to_4byte_selector
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    TooManyRequests,
    Web3RPCError,
)

from .artifacts import ARTIFACTS_DIR, load_artifact

SOLIDITY_ERRORS: Final = (
    {"type": "error", "name": "Error", "inputs": [{"name": "message", "type": "string"}]},
    {"type": "error", "name": "Panic", "inputs": [{"name": "code", "type": "uint256"}]},
)
"""The errors Solidity itself raises: ``require(cond, "message")`` and checked arithmetic,
array bounds and the like."""

TRANSIENT_RPC_CODES: Final = frozenset({-32603, -32005, -32002, 429})
"""JSON-RPC error codes that mean "not now" rather than "no": internal error, limit
exceeded, resource unavailable, and HTTP 429 relayed as a code by some providers."""

TRANSIENT_RPC_MESSAGES: Final = (
    "header not found",
    "timeout",
    "timed out",
    "try again",
    "rate limit",
    "too many requests",
    "temporarily unavailable",
)
"""Fragments of JSON-RPC error messages that load-balanced providers return (with a generic
code) while a backend lags or sheds load."""

TRANSIENT_HTTP_STATUS: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses of an endpoint that is overloaded or restarting."""


@dataclass(frozen=True)
class RevertReason:
    """A decoded revert: the error's name and its arguments in ABI order."""

    name: str
    """The error's name (``Error`` and ``Panic`` for Solidity's own)."""

    args: tuple[tuple[str, object], ...]
    """``(parameter name, value)`` pairs."""

    def arg(self, name: str) -> object:
        """The value of argument ``name``."""
        return dict(self.args)[name]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={_show(v)}' for k, v in self.args)})"


def _show(value: object) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value) if isinstance(value, str) else str(value)


@cache
def _errors_by_selector() -> Mapping[bytes, dict[str, Any]]:
    """Every error ABI entry of every committed artifact, by its 4-byte selector."""
    entries: list[dict[str, Any]] = list(SOLIDITY_ERRORS)
    for path in sorted(ARTIFACTS_DIR.glob("*.json")):
        entries.extend(e for e in load_artifact(path.stem)["abi"] if e["type"] == "error")
    return {function_signature_to_4byte_selector(abi_to_signature(e)): e for e in entries}  # type: ignore[arg-type]


def decode_revert(data: bytes) -> RevertReason:
    """Name and arguments of the revert ``data``; ``Unknown(data=0x...)`` if no Ratchet
    contract (nor Solidity) defines its selector, ``EmptyRevert()`` for no data at all."""
    if not data:
        return RevertReason("EmptyRevert", ())
    entry = _errors_by_selector().get(data[:4])
    if entry is not None:
        types = [i["type"] for i in entry["inputs"]]
        try:
            values = abi_decode(types, data[4:])
        except DecodingError:
            pass
        else:
            names = [i["name"] or f"arg{n}" for n, i in enumerate(entry["inputs"])]
            return RevertReason(entry["name"], tuple(zip(names, values, strict=True)))
    return RevertReason("Unknown", (("data", data),))


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert data a web3 call or gas estimate raised with, or None if ``exc`` is
    not a revert."""
    if not isinstance(exc, ContractLogicError):
        return None
    data: object = exc.data
    if isinstance(data, Mapping):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    return b""


def rpc_error_message(exc: BaseException) -> str:
    """The node's own message of a JSON-RPC error (``nonce too low``, ...), lower case."""
    if isinstance(exc, Web3RPCError) and exc.rpc_response is not None:
        error = exc.rpc_response.get("error")
        if isinstance(error, Mapping):
            return str(error.get("message", "")).lower()
    return str(exc).lower()


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` from an L1 JSON-RPC call means the node could not answer now
    (connection refused or reset, timeout, 5xx, rate limit) rather than a definite answer:
    the call is worth repeating later."""
    if isinstance(exc, ValueError):  # requests' InvalidURL and the like: a configuration error
        return False
    if isinstance(exc, OSError):
        # requests' ConnectionError, Timeout and HTTPError are OSErrors, as are socket errors;
        # only an HTTP error carries a response, and only some statuses mean "later"
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return status is None or status in TRANSIENT_HTTP_STATUS
    if isinstance(exc, ProviderConnectionError | TooManyRequests | RequestTimedOut):
        return True
    if isinstance(exc, ContractLogicError):
        return False
    if isinstance(exc, Web3RPCError) and exc.rpc_response is not None:
        error = exc.rpc_response.get("error")
        if isinstance(error, Mapping):
            message = str(error.get("message", "")).lower()
            return error.get("code") in TRANSIENT_RPC_CODES or any(
                fragment in message for fragment in TRANSIENT_RPC_MESSAGES
            )
    return False
