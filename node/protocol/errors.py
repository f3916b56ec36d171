"""
Typed errors of the pure core.

Every way a byte string can fail to be a valid encoding has its own class, so
callers (the RPC layer, the STF, the differential tests) can say precisely what
was wrong. All of them derive from :class:`WireError`, itself a ``ValueError``.
"""


class WireError(ValueError):
    """An input is not a valid encoding of the expected wire type."""


class MalformedEncodingError(WireError):
    """The bytes are not well-formed RLP, or not the shape the wire type expects."""


class NonCanonicalEncodingError(WireError):
    """Well-formed, but not the unique canonical encoding (leading zeros, long forms)."""


class UnknownTransactionKindError(WireError):
    """The leading kind byte names no transaction kind."""


class ValueOutOfRangeError(WireError):
    """A field value does not fit its declared type (e.g. a uint64 above 2**64-1)."""


class InvalidSignatureError(WireError):
    """The signature is not canonical (v, r, s ranges; low s) or recovers no key."""


class StateError(Exception):
    """Base class of Merkle-state errors, which are never the fault of a transaction."""


class MissingNodeError(StateError):
    """A tree node needed to read a root is absent from the node store (pruned or corrupt)."""


class InvalidKeyError(StateError, ValueError):
    """A (table, index) pair outside the state layout."""
