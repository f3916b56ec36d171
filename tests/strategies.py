"""Hypothesis strategies for Ratchet's wire types, shared by the tests."""

from typing import Any

from hypothesis import strategies as st

from node.protocol.crypto import SECP256K1N, sign_digest
from node.protocol.eip712 import UINT_BITS, Domain, FieldSpec
from node.protocol.transactions import TRANSACTION_TYPES, Message, SignedTransaction

private_keys = st.integers(1, SECP256K1N - 1).map(lambda k: k.to_bytes(32, "big"))

domains = st.builds(
    Domain,
    chain_id=st.one_of(st.just(1), st.integers(0, 2**64), st.integers(0, 2**256 - 1)),
    verifying_contract=st.binary(min_size=20, max_size=20),
)


def member(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """Values of one member, with the edges (0, max) drawn often."""
    if spec.type in UINT_BITS:
        top = (1 << UINT_BITS[spec.type]) - 1
        return st.one_of(
            st.just(0), st.just(top), st.integers(0, min(top, 1 << 16)), st.integers(0, top)
        )
    if spec.type == "bool":
        return st.booleans()
    return st.binary(
        min_size=20 if spec.type == "address" else 32, max_size=20 if spec.type == "address" else 32
    )


def messages(cls: type[Message]) -> st.SearchStrategy[Message]:
    """Messages of one type."""
    return st.tuples(*(member(spec) for spec in cls.FIELDS)).map(lambda values: cls(*values))


any_transaction_message = st.one_of(*(messages(cls) for cls in TRANSACTION_TYPES.values()))


@st.composite
def signed_transactions(draw: st.DrawFn, domain: Domain | None = None) -> SignedTransaction:
    """A transaction signed by a drawn key in a drawn (or the given) domain."""
    message = draw(any_transaction_message)
    key = draw(private_keys)
    dom = domain if domain is not None else draw(domains)
    return SignedTransaction(message, sign_digest(key, message.signing_hash(dom)))


@st.composite
def mutations(draw: st.DrawFn, raw: bytes) -> bytes:
    """``raw`` after one to three random byte edits: flip, set, insert, delete, cut, append."""
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "append"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[position] = draw(st.integers(0, 255))
        elif op == "insert":
            data.insert(position, draw(st.integers(0, 255)))
        elif op == "delete" and data:
            del data[position]
        elif op == "truncate":
            del data[position:]
        elif op == "append":
            data.extend(draw(st.binary(min_size=1, max_size=4)))
    return bytes(data)


def nested_lists(depth: int) -> bytes:
    """``depth`` RLP lists each holding the next, built by hand (encoders recurse too)."""
    data = b"\xc0"
    for _ in range(depth):
        n = len(data)
        if n < 56:
            data = bytes([0xC0 + n]) + data
        else:
            size = n.to_bytes((n.bit_length() + 7) // 8, "big")
            data = bytes([0xF7 + len(size)]) + size + data
    return data
