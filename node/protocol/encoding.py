"""
Canonical RLP helpers shared by every wire type.

RLP itself comes from the ``rlp`` library; this module adds what a consensus
format needs on top of it: integers with no leading zero bytes and a declared
width, and a guarantee that whatever decodes is the unique canonical encoding
of what it decodes to (a decoded value is re-encoded and compared), so that the
Python and Solidity decoders accept exactly the same byte strings.
"""

from typing import Any

import rlp
from rlp.codec import encode_raw

from .errors import MalformedEncodingError, NonCanonicalEncodingError, ValueOutOfRangeError

_NON_CANONICAL_MESSAGES = (
    "Encoded as short string although single byte was possible",
    "Length starts with zero bytes",
    "Long string prefix used for short string",
    "Long list prefix used for short list",
)

RLPItem = bytes | list[Any]
"""A decoded RLP item: a byte string or a list of items."""


def encode_uint(value: int) -> bytes:
    """The canonical RLP payload of an unsigned integer: big-endian, no leading zeros, 0 is b""."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def decode_uint(data: bytes, bits: int) -> int:
    """The unsigned integer of a canonical payload that must fit ``bits`` bits."""
    if data[:1] == b"\x00":
        raise NonCanonicalEncodingError("integer encoded with a leading zero byte")
    if len(data) * 8 > bits:
        raise ValueOutOfRangeError(f"integer of {len(data)} bytes does not fit uint{bits}")
    return int.from_bytes(data, "big")


def encode_items(items: list[Any]) -> bytes:
    """RLP of a (nested) list of byte strings."""
    return encode_raw(items)  # type: ignore[no-any-return]


def decode_rlp(data: bytes) -> RLPItem:
    """
    Decode one RLP item spanning all of ``data``.

    Raises :class:`NonCanonicalEncodingError` for a well-formed but non-minimal
    encoding and :class:`MalformedEncodingError` for anything else that is not RLP.
    """
    if type(data) is not bytes:
        raise MalformedEncodingError(f"expected bytes, got {type(data).__name__}")
    if not data:
        raise MalformedEncodingError("empty input is not RLP")
    try:
        item = rlp.decode(data, strict=True)
        canonical = encode_raw(item) == data
    except rlp.DecodingError as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        if any(message.startswith(m) for m in _NON_CANONICAL_MESSAGES):
            raise NonCanonicalEncodingError(message) from None
        raise MalformedEncodingError(message) from None
    except (IndexError, ValueError) as exc:  # truncated length prefixes
        raise MalformedEncodingError(f"truncated RLP: {exc}") from None
    except RecursionError:
        # The rlp library recurses once per nesting level; no Ratchet format nests
        # deeper than two, so hostile nesting is malformed, whatever the stack allows.
        raise MalformedEncodingError("RLP lists nested too deeply") from None
    if not canonical:
        raise NonCanonicalEncodingError("input is not the canonical RLP of what it decodes to")
    return item  # type: ignore[no-any-return]


def decode_rlp_list(data: bytes) -> list[Any]:
    """Decode ``data`` as one RLP list."""
    item = decode_rlp(data)
    if not isinstance(item, list):
        raise MalformedEncodingError("expected an RLP list, got a byte string")
    return item
