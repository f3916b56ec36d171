"""Transaction wire format: round trips, canonical decoding, typed errors, JSON forms."""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from node.protocol.encoding import decode_rlp, encode_items, encode_uint
from node.protocol.errors import (
    InvalidSignatureError,
    MalformedEncodingError,
    NonCanonicalEncodingError,
    UnknownTransactionKindError,
    ValueOutOfRangeError,
    WireError,
)
from node.protocol.transactions import (
    MAX_TRANSACTION_BYTES,
    TRANSACTION_TYPES,
    Cancel,
    CancelAll,
    Order,
    Receipt,
    SignedTransaction,
    TxKind,
    Withdraw,
    decode_transaction,
    encode_transaction,
    message_from_json,
    message_to_json,
)
from tests.strategies import any_transaction_message, mutations, signed_transactions

SIGNATURE = bytes.fromhex(
    "e6a8640e16fd9a627953cb35c065983f23e85023e27ccb79a098d2a24cc4c33d"
    "2c56f4c72d1ea11488a546ff045d9b396d4adf1d531b337f07731e230cf51b5b1b"
)


@settings(max_examples=300)
@given(signed_transactions())
def test_encode_decode_round_trip(tx: SignedTransaction) -> None:
    raw = encode_transaction(tx)
    assert len(raw) <= MAX_TRANSACTION_BYTES
    assert raw[0] == tx.kind
    decoded = decode_transaction(raw)
    assert decoded == tx
    assert encode_transaction(decoded) == raw


@settings(max_examples=1000)
@given(signed_transactions().map(encode_transaction).flatmap(mutations))
def test_mutated_encoding_is_rejected_or_canonical(raw: bytes) -> None:
    """Whatever decodes is the unique canonical encoding of what it decodes to."""
    try:
        tx = decode_transaction(raw)
    except WireError:
        return
    assert encode_transaction(tx) == raw


@settings(max_examples=1000)
@given(st.binary(max_size=300))
@example(b"\x01\xf8")
@example(b"\x01\xb9\x01")
@example(b"\x01\xc0")
@example(b"\x07\xf8\x00")
def test_random_bytes_never_raise_anything_but_a_wire_error(raw: bytes) -> None:
    try:
        tx = decode_transaction(raw)
    except WireError:
        return
    assert encode_transaction(tx) == raw


@st.composite
def rlp_items(draw: st.DrawFn) -> list[bytes]:
    """Payloads of a plausible shape: random short byte strings, some with leading zeros."""
    count = draw(st.integers(2, 11))
    items = []
    for _ in range(count):
        items.append(
            draw(
                st.one_of(
                    st.binary(max_size=9),
                    st.binary(min_size=1, max_size=8).map(lambda b: b"\x00" + b),
                    st.binary(min_size=20, max_size=20),
                    st.binary(min_size=32, max_size=32),
                    st.binary(min_size=65, max_size=65),
                )
            )
        )
    return items


@settings(max_examples=1000)
@given(st.sampled_from(list(TxKind)), rlp_items())
def test_well_formed_rlp_of_any_shape_is_rejected_or_canonical(
    kind: TxKind, items: list[bytes]
) -> None:
    raw = bytes([kind]) + encode_items(items)
    try:
        tx = decode_transaction(raw)
    except WireError:
        return
    assert encode_transaction(tx) == raw


def _order_items() -> list[bytes]:
    order = Order(5, 1, True, 1000, 10, 0, False, 0, 3)
    items = decode_rlp(encode_transaction(SignedTransaction(order, SIGNATURE))[1:])
    assert isinstance(items, list)
    return items


@pytest.mark.parametrize("position", range(9))
def test_invalid_leading_zero_in_any_member_is_non_canonical(position: int) -> None:
    items = _order_items()
    items[position] = b"\x00" + items[position]
    with pytest.raises(NonCanonicalEncodingError):
        decode_transaction(b"\x01" + encode_items(items))


@pytest.mark.parametrize(
    ("position", "width"), [(0, 8), (1, 4), (3, 8), (4, 8), (5, 1), (7, 8), (8, 8)]
)
def test_invalid_integer_wider_than_its_type(position: int, width: int) -> None:
    items = _order_items()
    items[position] = b"\x01" + width * b"\x00"
    with pytest.raises(ValueOutOfRangeError):
        decode_transaction(b"\x01" + encode_items(items))


@pytest.mark.parametrize(("position", "width"), [(0, 8), (1, 4), (5, 1)])
def test_integer_of_exactly_its_width_is_accepted(position: int, width: int) -> None:
    items = _order_items()
    items[position] = width * b"\xff"
    tx = decode_transaction(b"\x01" + encode_items(items))
    assert tx.message.values()[position] == (1 << (8 * width)) - 1


def test_invalid_unknown_kind() -> None:
    raw = encode_transaction(
        SignedTransaction(Order(5, 1, True, 1000, 10, 0, False, 0, 3), SIGNATURE)
    )
    for kind in (0, 8, 0x80, 0xC0, 0xFF):
        with pytest.raises(UnknownTransactionKindError):
            decode_transaction(bytes([kind]) + raw[1:])


def test_invalid_kind_with_another_kinds_body() -> None:
    raw = encode_transaction(
        SignedTransaction(Order(5, 1, True, 1000, 10, 0, False, 0, 3), SIGNATURE)
    )
    with pytest.raises(MalformedEncodingError, match="members"):
        decode_transaction(bytes([TxKind.CANCEL]) + raw[1:])


def test_invalid_oversized_input_is_rejected_before_decoding() -> None:
    with pytest.raises(MalformedEncodingError, match="longer than"):
        decode_transaction(b"\x01" + b"\xff" * MAX_TRANSACTION_BYTES)


def test_invalid_non_bytes_input() -> None:
    with pytest.raises(MalformedEncodingError):
        decode_transaction(bytearray(b"\x01\xc0"))  # type: ignore[arg-type]


def test_invalid_high_s_signature_cannot_even_be_constructed() -> None:
    high_s = SIGNATURE[:32] + (2**256 - 1).to_bytes(32, "big") + b"\x1b"
    with pytest.raises(InvalidSignatureError):
        SignedTransaction(Order(5, 1, True, 1000, 10, 0, False, 0, 3), high_s)


def test_invalid_receipt_is_not_a_transaction() -> None:
    with pytest.raises(ValueOutOfRangeError):
        SignedTransaction(Receipt(b"\x00" * 32, 1, 2), SIGNATURE)


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (Order, (2**64, 0, True, 1, 1, 0, False, 0, 0)),
        (Order, (1, 2**32, True, 1, 1, 0, False, 0, 0)),
        (Order, (1, 0, 1, 1, 1, 0, False, 0, 0)),
        (Order, (1, 0, True, 1, 1, 256, False, 0, 0)),
        (Order, (1, 0, True, -1, 1, 0, False, 0, 0)),
        (Cancel, (1, b"\x00" * 31, 0)),
        (Withdraw, (1, "0x" + "00" * 20, 1, 0)),
        (CancelAll, (True, 0, 0)),
    ],
)
def test_invalid_member_values_are_refused_at_construction(
    cls: type, values: tuple[object, ...]
) -> None:
    with pytest.raises(ValueOutOfRangeError):
        cls(*values)


@settings(max_examples=200)
@given(any_transaction_message)
def test_json_round_trip(message: Order) -> None:
    as_json = message_to_json(message)
    assert message_from_json(message.TYPE_NAME, as_json) == message
    for spec in message.FIELDS:
        value = as_json[spec.name]
        if spec.type == "uint64":
            assert isinstance(value, str)  # may exceed 2**53
        elif spec.type in ("uint8", "uint32"):
            assert isinstance(value, int)


def test_json_accepts_numbers_and_hex_for_integers() -> None:
    base = message_to_json(Order(5, 1, True, 1000, 10, 0, False, 0, 3))
    assert message_from_json("Order", {**base, "price": 1000}).price == 1000  # type: ignore[attr-defined]
    assert message_from_json("Order", {**base, "price": "0x3e8"}).price == 1000  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"price": "01"}, ValueOutOfRangeError),
        ({"price": "-1"}, ValueOutOfRangeError),
        ({"price": 1.5}, ValueOutOfRangeError),
        ({"price": str(2**64)}, ValueOutOfRangeError),
        ({"price": "9" * 5000}, ValueOutOfRangeError),
        ({"price": "0x" + "f" * 5000}, ValueOutOfRangeError),
        ({"price": 10**500}, ValueOutOfRangeError),
        ({"isBuy": 1}, ValueOutOfRangeError),
        ({"isBuy": "true"}, ValueOutOfRangeError),
        ({"market": True}, ValueOutOfRangeError),
        ({"extra": 1}, MalformedEncodingError),
    ],
)
def test_invalid_json_members(change: dict[str, object], error: type[Exception]) -> None:
    base = message_to_json(Order(5, 1, True, 1000, 10, 0, False, 0, 3))
    with pytest.raises(error):
        message_from_json("Order", {**base, **change})


def test_invalid_json_missing_member_and_unknown_type() -> None:
    base = message_to_json(Order(5, 1, True, 1000, 10, 0, False, 0, 3))
    del base["nonce"]
    with pytest.raises(MalformedEncodingError, match="nonce"):
        message_from_json("Order", base)
    with pytest.raises(UnknownTransactionKindError):
        message_from_json("Deposit", base)
    with pytest.raises(MalformedEncodingError):
        message_from_json("Order", [])


@pytest.mark.parametrize(
    ("field", "value"),
    [("recipient", "0x" + "11" * 19), ("recipient", "11" * 20), ("recipient", 5)],
)
def test_invalid_json_address(field: str, value: object) -> None:
    base = message_to_json(Withdraw(1, b"\x11" * 20, 5, 0))
    with pytest.raises(ValueOutOfRangeError):
        message_from_json("Withdraw", {**base, field: value})


def test_every_kind_has_a_type_and_round_trips_its_zero_message() -> None:
    for kind, cls in TRANSACTION_TYPES.items():
        zero = cls(
            *(
                False
                if s.type == "bool"
                else b"\x00" * (20 if s.type == "address" else 32)
                if s.type in ("address", "bytes32")
                else 0
                for s in cls.FIELDS
            )
        )
        raw = encode_transaction(SignedTransaction(zero, SIGNATURE))
        assert raw[0] == kind
        assert decode_transaction(raw).message == zero


def test_encode_uint_is_minimal() -> None:
    assert encode_uint(0) == b""
    assert encode_uint(1) == b"\x01"
    assert encode_uint(256) == b"\x01\x00"
