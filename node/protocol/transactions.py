"""
Transactions: the signed messages traders (and the oracle) send to Ratchet.

Every transaction is an EIP-712 message of one of the types below plus a
65-byte signature over its typed-data digest. A trader signs with any wallet's
``eth_signTypedData_v4``; the sequencer, the watchers and the L1 one-step
executor recover the signer from the digest.

Wire form (EIP-2718 style): ``kind || rlp([member_1, ..., member_n, signature])``
with every member canonical: unsigned integers big-endian without leading zeros
(0 is the empty string) and no wider than their type, ``bool`` as 0 or 1 encoded
the same way, ``address`` exactly 20 bytes, ``bytes32`` exactly 32 bytes, and the
signature ``r || s || v`` with ``v`` in {27, 28} and low ``s``.
:func:`decode_transaction` accepts exactly the byte strings
:func:`encode_transaction` produces and raises a typed
:class:`~node.protocol.errors.WireError` for anything else.

The transaction hash is the EIP-712 digest of the message: a trader knows it
before sending, it does not depend on the signature, and for an ``Order`` it is
also the order hash that ``Cancel`` refers to.
"""

import functools
import re
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, ClassVar, Final

from .crypto import check_signature, recover_signer
from .eip712 import (
    EIP712_DOMAIN_TYPE,
    UINT_BITS,
    Domain,
    FieldSpec,
    hash_struct,
    typed_data_digest,
    types_json,
)
from .encoding import decode_rlp_list, decode_uint, encode_items, encode_uint
from .errors import (
    MalformedEncodingError,
    NonCanonicalEncodingError,
    UnknownTransactionKindError,
    ValueOutOfRangeError,
)

MAX_TRANSACTION_BYTES: Final = 256
"""Longest valid encoded transaction; longer input is rejected before decoding (a
Withdraw, the longest kind, is at most 118 bytes)."""

ALL_MARKETS: Final = (1 << 32) - 1
"""``CancelAll.market`` value meaning every market."""


class TxKind(IntEnum):
    """The leading byte of an encoded transaction."""

    ORDER = 1
    CANCEL = 2
    CANCEL_ALL = 3
    TRANSFER = 4
    WITHDRAW = 5
    LIQUIDATE = 6
    ORACLE_PRICE = 7


class TimeInForce(IntEnum):
    """``Order.timeInForce``: what happens to the part of an order that does not fill at once."""

    GTC = 0
    """Good till cancelled (or expiry): the remainder rests on the book."""

    IOC = 1
    """Immediate or cancel: the remainder is cancelled."""

    FOK = 2
    """Fill or kill: the order fills completely at once or not at all."""

    POST_ONLY = 3
    """Rests on the book only if it would not match on arrival; otherwise it is rejected."""


def member(name: str, abi_type: str) -> Any:
    """A dataclass field that is an EIP-712 struct member called ``name`` of type ``abi_type``."""
    return field(metadata={"eip712": (name, abi_type)})


def _check_members(message: Any) -> None:
    for spec in message.FIELDS:
        value = getattr(message, spec.attr)
        kind = spec.type
        if kind in UINT_BITS:
            if type(value) is not int or not 0 <= value < 1 << UINT_BITS[kind]:
                raise ValueOutOfRangeError(f"{spec.name} must be a {kind}, got {value!r}")
        elif kind == "bool":
            if type(value) is not bool:
                raise ValueOutOfRangeError(f"{spec.name} must be a bool, got {value!r}")
        else:
            size = 20 if kind == "address" else 32
            if type(value) is not bytes or len(value) != size:
                raise ValueOutOfRangeError(
                    f"{spec.name} must be a {kind} ({size} bytes), got {value!r}"
                )


class Message:
    """Base of every EIP-712 message type: the members are checked at construction."""

    __slots__ = ()

    TYPE_NAME: ClassVar[str]
    """The EIP-712 primary type name."""

    FIELDS: ClassVar[tuple[FieldSpec, ...]]
    """The members, in EIP-712 (and wire) order."""

    def __post_init__(self) -> None:
        _check_members(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.TYPE_NAME = cls.__name__

    def values(self) -> tuple[Any, ...]:
        """Member values in order."""
        return tuple(getattr(self, spec.attr) for spec in self.FIELDS)

    def struct_hash(self) -> bytes:
        """EIP-712 ``hashStruct`` of this message."""
        return hash_struct(self.TYPE_NAME, self.FIELDS, self.values())

    def signing_hash(self, domain: Domain) -> bytes:
        """The digest signed with ``eth_signTypedData_v4`` in ``domain``."""
        return _signing_hash(self, domain)


@functools.lru_cache(maxsize=8192)
def _signing_hash(message: Message, domain: Domain) -> bytes:
    """:meth:`Message.signing_hash`, remembered: a sequenced transaction's digest is needed
    at admission, by the STF and for its receipt (messages and domains are immutable)."""
    return typed_data_digest(domain, message.struct_hash())


def _finish(cls: type[Message]) -> None:
    cls.FIELDS = tuple(
        FieldSpec(f.metadata["eip712"][0], f.name, f.metadata["eip712"][1])
        for f in fields(cls)  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class Order(Message):
    """Buy or sell ``size`` lots of a perpetual at ``price`` or better."""

    account: int = member("account", "uint64")
    """The account placing the order."""

    market: int = member("market", "uint32")
    """The market id."""

    is_buy: bool = member("isBuy", "bool")
    """True for a bid, False for an ask."""

    price: int = member("price", "uint64")
    """Limit price in the market's price units (a multiple of its tick size)."""

    size: int = member("size", "uint64")
    """Size in the market's size units (a multiple of its lot size)."""

    time_in_force: int = member("timeInForce", "uint8")
    """A :class:`TimeInForce` value."""

    reduce_only: bool = member("reduceOnly", "bool")
    """If set, the order may only shrink the account's position."""

    expiry: int = member("expiry", "uint64")
    """Unix seconds after which the order no longer fills; 0 = never expires."""

    nonce: int = member("nonce", "uint64")
    """Replay protection, see docs/protocol.md; orders need not be sequential."""


@dataclass(frozen=True, slots=True)
class Cancel(Message):
    """Cancel one resting order of the account."""

    account: int = member("account", "uint64")
    """The account that owns the order."""

    order_hash: bytes = member("orderHash", "bytes32")
    """The hash of the order to cancel (its transaction hash)."""

    nonce: int = member("nonce", "uint64")
    """Replay protection."""


@dataclass(frozen=True, slots=True)
class CancelAll(Message):
    """Cancel every resting order of the account in one market, or in all markets."""

    account: int = member("account", "uint64")
    """The account whose orders are cancelled."""

    market: int = member("market", "uint32")
    """The market id, or :data:`ALL_MARKETS`."""

    nonce: int = member("nonce", "uint64")
    """Replay protection."""


@dataclass(frozen=True, slots=True)
class Transfer(Message):
    """Move collateral from one account to another."""

    account: int = member("account", "uint64")
    """The paying account."""

    to: int = member("to", "uint64")
    """The receiving account id."""

    amount: int = member("amount", "uint64")
    """Collateral in token base units."""

    nonce: int = member("nonce", "uint64")
    """Replay protection."""


@dataclass(frozen=True, slots=True)
class Withdraw(Message):
    """Move collateral out of the account into a withdrawal record, paid on L1 once final."""

    account: int = member("account", "uint64")
    """The withdrawing account."""

    recipient: bytes = member("recipient", "address")
    """The L1 address the bridge pays."""

    amount: int = member("amount", "uint64")
    """Collateral in token base units."""

    nonce: int = member("nonce", "uint64")
    """Replay protection."""


@dataclass(frozen=True, slots=True)
class Liquidate(Message):
    """Take over (or close) an under-margined account's position in one market."""

    account: int = member("account", "uint64")
    """The liquidator."""

    target: int = member("target", "uint64")
    """The account being liquidated."""

    market: int = member("market", "uint32")
    """The market of the position."""

    nonce: int = member("nonce", "uint64")
    """Replay protection."""


@dataclass(frozen=True, slots=True)
class OraclePrice(Message):
    """An index price, signed by the configured oracle key."""

    market: int = member("market", "uint32")
    """The market id."""

    price: int = member("price", "uint64")
    """Index price in the market's price units."""

    timestamp: int = member("timestamp", "uint64")
    """Unix seconds of the observation; must increase per market."""


@dataclass(frozen=True, slots=True)
class Receipt(Message):
    """What the sequencer signs to promise a transaction's position (not a transaction)."""

    tx_hash: bytes = member("txHash", "bytes32")
    """The transaction hash."""

    batch: int = member("batch", "uint64")
    """Index of the batch that will carry it."""

    index: int = member("index", "uint32")
    """Its position within that batch."""


TRANSACTION_TYPES: Final[dict[TxKind, type[Message]]] = {
    TxKind.ORDER: Order,
    TxKind.CANCEL: Cancel,
    TxKind.CANCEL_ALL: CancelAll,
    TxKind.TRANSFER: Transfer,
    TxKind.WITHDRAW: Withdraw,
    TxKind.LIQUIDATE: Liquidate,
    TxKind.ORACLE_PRICE: OraclePrice,
}
"""Every transaction type by its wire kind."""

_SIGNED_TYPES: Final[tuple[type[Message], ...]] = (*TRANSACTION_TYPES.values(), Receipt)

MESSAGE_TYPES: Final[dict[str, type[Message]]] = {cls.TYPE_NAME: cls for cls in _SIGNED_TYPES}
"""Every signed message type by its EIP-712 name."""

KIND_OF: Final[dict[type[Message], TxKind]] = {cls: k for k, cls in TRANSACTION_TYPES.items()}
"""The wire kind of each transaction type."""

for _cls in MESSAGE_TYPES.values():
    _finish(_cls)


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """A transaction message and the signature over its digest."""

    message: Message
    """The EIP-712 message."""

    signature: bytes
    """``r || s || v``, 65 bytes, v in {27, 28}, low s."""

    def __post_init__(self) -> None:
        if type(self.message) not in KIND_OF:
            raise ValueOutOfRangeError(f"{type(self.message).__name__} is not a transaction type")
        check_signature(self.signature)

    @property
    def kind(self) -> TxKind:
        """The wire kind."""
        return KIND_OF[type(self.message)]

    def hash(self, domain: Domain) -> bytes:
        """The transaction hash: the EIP-712 digest of the message."""
        return self.message.signing_hash(domain)

    def recover_signer(self, domain: Domain) -> bytes:
        """The 20-byte address that signed it; :class:`InvalidSignatureError` if none."""
        return recover_signer(self.message.signing_hash(domain), self.signature)


def _encode_member(abi_type: str, value: Any) -> bytes:
    if abi_type in UINT_BITS:
        return encode_uint(value)
    if abi_type == "bool":
        return b"\x01" if value else b""
    return value  # type: ignore[no-any-return]  # address / bytes32: the bytes themselves


def _decode_member(spec: FieldSpec, data: bytes) -> Any:
    kind = spec.type
    if kind in UINT_BITS:
        return decode_uint(data, UINT_BITS[kind])
    if kind == "bool":
        if data == b"":
            return False
        if data == b"\x01":
            return True
        if data[:1] == b"\x00":
            raise NonCanonicalEncodingError(f"{spec.name}: bool encoded with a leading zero byte")
        raise ValueOutOfRangeError(f"{spec.name}: a bool is 0 or 1")
    size = 20 if kind == "address" else 32
    if len(data) != size:
        raise MalformedEncodingError(f"{spec.name}: {kind} must be {size} bytes, got {len(data)}")
    return data


def encode_transaction(tx: SignedTransaction) -> bytes:
    """The canonical wire encoding of a signed transaction."""
    message = tx.message
    items = [_encode_member(spec.type, getattr(message, spec.attr)) for spec in message.FIELDS]
    items.append(tx.signature)
    return bytes((KIND_OF[type(message)],)) + encode_items(items)


def decode_transaction(raw: bytes) -> SignedTransaction:
    """Decode a wire transaction, rejecting anything non-canonical with a typed ``WireError``."""
    if type(raw) is not bytes:
        raise MalformedEncodingError(f"expected bytes, got {type(raw).__name__}")
    return _decode_transaction(raw)


@functools.lru_cache(maxsize=8192)
def _decode_transaction(raw: bytes) -> SignedTransaction:
    """:func:`decode_transaction`, remembered (the result is immutable; a refusal is not
    remembered and raises again): the sequencer, the STF and the indexes all decode the
    same bytes of a transaction."""
    if not raw:
        raise MalformedEncodingError("empty transaction")
    if len(raw) > MAX_TRANSACTION_BYTES:
        raise MalformedEncodingError(f"transaction longer than {MAX_TRANSACTION_BYTES} bytes")
    try:
        cls = TRANSACTION_TYPES[TxKind(raw[0])]
    except ValueError:
        raise UnknownTransactionKindError(f"unknown transaction kind {raw[0]}") from None
    items = decode_rlp_list(raw[1:])
    specs = cls.FIELDS
    if len(items) != len(specs) + 1:
        raise MalformedEncodingError(
            f"{cls.TYPE_NAME} has {len(specs)} members and a signature, got {len(items)} items"
        )
    if any(type(item) is not bytes for item in items):
        raise MalformedEncodingError("transaction items must be byte strings, not lists")
    values = [_decode_member(spec, item) for spec, item in zip(specs, items, strict=False)]
    return SignedTransaction(cls(*values), items[-1])


# JSON forms ------------------------------------------------------------------------------

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX = re.compile(r"0x[0-9a-fA-F]*")


def message_to_json(message: Message) -> dict[str, Any]:
    """
    The JSON form of a message: camelCase members; integers wider than 32 bits as
    decimal strings (they may exceed 2**53), narrower ones as numbers; bools as
    JSON booleans; addresses and bytes32 as 0x-hex.
    """
    out: dict[str, Any] = {}
    for spec in message.FIELDS:
        value = getattr(message, spec.attr)
        if spec.type in UINT_BITS:
            out[spec.name] = str(value) if UINT_BITS[spec.type] > 32 else value
        elif spec.type == "bool":
            out[spec.name] = value
        else:
            out[spec.name] = "0x" + value.hex()
    return out


def _member_from_json(spec: FieldSpec, value: Any) -> Any:
    kind = spec.type
    if kind in UINT_BITS:
        if type(value) is int:
            return value
        if isinstance(value, str) and len(value) > 80:  # no uint256 needs more; int() would
            raise ValueOutOfRangeError(f"{spec.name}: {len(value)}-character integer")
        if isinstance(value, str) and _DECIMAL.fullmatch(value):
            return int(value)
        if isinstance(value, str) and _HEX.fullmatch(value) and len(value) > 2:
            return int(value, 16)
        raise ValueOutOfRangeError(f"{spec.name} must be a {kind} as a number or decimal string")
    if kind == "bool":
        if type(value) is bool:
            return value
        raise ValueOutOfRangeError(f"{spec.name} must be true or false")
    size = 20 if kind == "address" else 32
    if isinstance(value, str) and _HEX.fullmatch(value) and len(value) == 2 + 2 * size:
        return bytes.fromhex(value[2:])
    raise ValueOutOfRangeError(f"{spec.name} must be a 0x-hex {kind} of {size} bytes")


def message_from_json(type_name: str, obj: Any) -> Message:
    """
    Parse the JSON form of a message of type ``type_name`` (as produced by
    :func:`message_to_json`; integers may also be JSON numbers or 0x-hex).
    Every member must be present and no other key may be.
    """
    cls = MESSAGE_TYPES.get(type_name)
    if cls is None:
        raise UnknownTransactionKindError(f"unknown message type {type_name!r}")
    if not isinstance(obj, dict):
        raise MalformedEncodingError(f"a {type_name} message is a JSON object")
    names = {spec.name for spec in cls.FIELDS}
    missing = sorted(names - obj.keys())
    extra = sorted(obj.keys() - names)
    if missing or extra:
        raise MalformedEncodingError(
            f"{type_name}: missing members {missing}, unknown members {extra}"
        )
    return cls(*(_member_from_json(spec, obj[spec.name]) for spec in cls.FIELDS))


def eip712_types() -> dict[str, list[dict[str, str]]]:
    """``types`` for ``ratchet_getConfig``: EIP712Domain and every message type."""
    out = {"EIP712Domain": EIP712_DOMAIN_TYPE}
    for name, cls in MESSAGE_TYPES.items():
        out[name] = types_json(name, cls.FIELDS)
    return out


def typed_data(domain: Domain, message: Message) -> dict[str, Any]:
    """The full ``eth_signTypedData_v4`` request for ``message`` in ``domain``."""
    return {
        "types": {
            "EIP712Domain": EIP712_DOMAIN_TYPE,
            message.TYPE_NAME: types_json(message.TYPE_NAME, message.FIELDS),
        },
        "primaryType": message.TYPE_NAME,
        "domain": domain.to_json(),
        "message": message_to_json(message),
    }
