"""Batch wire format, header hash and transaction root."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rlp.codec import length_prefix

from node.protocol.batch import (
    MAX_BATCH_TRANSACTIONS,
    TX_TREE_DEPTH,
    Batch,
    decode_batch,
    decode_transactions,
    encode_batch,
    encode_transactions,
    transaction_leaf,
    transaction_proof,
    transactions_root,
)
from node.protocol.crypto import keccak256
from node.protocol.encoding import encode_items, encode_uint
from node.protocol.errors import (
    MalformedEncodingError,
    NonCanonicalEncodingError,
    ValueOutOfRangeError,
    WireError,
)
from node.protocol.merkle import ZERO_HASHES, merkle_proof, merkle_root, root_from_path
from node.protocol.transactions import MAX_TRANSACTION_BYTES, encode_transaction
from tests.strategies import mutations, nested_lists, signed_transactions
from tests.unit import naive

u64 = st.integers(0, 2**64 - 1)
hashes = st.binary(min_size=32, max_size=32)
tx_bytes = st.one_of(
    signed_transactions().map(encode_transaction), st.binary(max_size=MAX_TRANSACTION_BYTES)
)


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    start = draw(u64)
    return Batch(
        index=draw(u64),
        parent_root=draw(hashes),
        timestamp=draw(u64),
        inbox_start=start,
        inbox_end=draw(st.integers(start, 2**64 - 1)),
        post_root=draw(hashes),
        transactions=tuple(draw(st.lists(tx_bytes, max_size=12))),
    )


@settings(max_examples=150, deadline=None)
@given(batches())
def test_batch_round_trip(batch: Batch) -> None:
    raw = encode_batch(batch)
    assert decode_batch(raw) == batch
    assert encode_batch(decode_batch(raw)) == raw


@settings(max_examples=100, deadline=None)
@given(batches())
def test_header_commits_to_every_transaction(batch: Batch) -> None:
    header = batch.header()
    assert header.tx_count == len(batch.transactions)
    leaves = {i: tx for i, tx in enumerate(batch.transactions)}
    # keccak of the raw bytes is the leaf; naive.sparse_root hashes records the same way,
    # except that it treats b"" as absent: a batch may carry an empty byte string.
    leaf_hashes = [keccak256(tx) for tx in batch.transactions]
    assert header.tx_root == merkle_root(TX_TREE_DEPTH, leaf_hashes)
    if all(leaves.values()):
        assert header.tx_root == naive.sparse_root(TX_TREE_DEPTH, leaves)
    for position, tx in enumerate(batch.transactions):
        proof = transaction_proof(batch.transactions, position)
        assert root_from_path(transaction_leaf(tx), position, proof) == header.tx_root


def test_empty_batch_has_the_empty_tx_root() -> None:
    assert transactions_root(()) == ZERO_HASHES[TX_TREE_DEPTH]


def test_merkle_root_and_proofs_match_the_dense_definition() -> None:
    for count in range(0, 17):
        leaves = [keccak256(bytes([i])) for i in range(count)]
        expected = naive.dense_root(4, {i: bytes([i]) for i in range(count)})
        assert merkle_root(4, leaves) == expected
        for i in range(16):
            leaf = leaves[i] if i < count else ZERO_HASHES[0]
            assert root_from_path(leaf, i, merkle_proof(4, leaves, i)) == expected


def test_header_hash_is_abi_encoding_of_eight_words() -> None:
    batch = Batch(1, b"\x11" * 32, 2, 3, 4, b"\x22" * 32, (b"\x01",))
    header = batch.header()
    words = b"".join(
        [
            (1).to_bytes(32, "big"),
            b"\x11" * 32,
            (2).to_bytes(32, "big"),
            (3).to_bytes(32, "big"),
            (4).to_bytes(32, "big"),
            (1).to_bytes(32, "big"),
            header.tx_root,
            b"\x22" * 32,
        ]
    )
    assert header.hash() == keccak256(words)


def _items(batch: Batch) -> list[object]:
    return [
        encode_uint(batch.index),
        batch.parent_root,
        encode_uint(batch.timestamp),
        encode_uint(batch.inbox_start),
        encode_uint(batch.inbox_end),
        batch.post_root,
        list(batch.transactions),
    ]


BASE = Batch(5, b"\x01" * 32, 1_790_000_000, 10, 12, b"\x02" * 32, (b"\x01\x02", b""))


@pytest.mark.parametrize(
    ("position", "value", "error"),
    [
        (0, b"\x00\x05", NonCanonicalEncodingError),
        (0, b"\x01" + 8 * b"\x00", ValueOutOfRangeError),
        (1, b"\x01" * 31, MalformedEncodingError),
        (5, b"\x02" * 33, MalformedEncodingError),
        (4, encode_uint(9), ValueOutOfRangeError),  # inbox range ends before it starts
        (6, b"\x01\x02", MalformedEncodingError),  # transactions must be a list
        (6, [[b"\x01"]], MalformedEncodingError),  # of byte strings
        (6, [b"\x01" * (MAX_TRANSACTION_BYTES + 1)], ValueOutOfRangeError),
        (2, [b"\x01"], MalformedEncodingError),
    ],
)
def test_invalid_batch_fields(position: int, value: object, error: type[Exception]) -> None:
    items = _items(BASE)
    items[position] = value
    with pytest.raises(error):
        decode_batch(encode_items(items))


def test_invalid_batch_shapes() -> None:
    with pytest.raises(MalformedEncodingError):
        decode_batch(encode_items(_items(BASE)[:6]))
    with pytest.raises(MalformedEncodingError):
        decode_batch(encode_items([*_items(BASE), b""]))
    with pytest.raises(MalformedEncodingError):
        decode_batch(encode_batch(BASE) + b"\x00")
    with pytest.raises(MalformedEncodingError):
        decode_batch(b"")


def test_invalid_batch_construction() -> None:
    with pytest.raises(ValueOutOfRangeError):
        Batch(0, b"\x00" * 32, 0, 0, 0, b"\x00" * 32, (b"",) * (MAX_BATCH_TRANSACTIONS + 1))
    with pytest.raises(ValueOutOfRangeError):
        Batch(-1, b"\x00" * 32, 0, 0, 0, b"\x00" * 32, ())
    with pytest.raises(ValueOutOfRangeError):
        Batch(0, b"\x00" * 32, 0, 0, 0, b"\x00" * 32, [b""])  # type: ignore[arg-type]


@settings(max_examples=500, deadline=None)
@given(mutations(encode_batch(BASE)))
def test_mutated_batch_is_rejected_or_canonical(raw: bytes) -> None:
    try:
        batch = decode_batch(raw)
    except WireError:
        return
    assert encode_batch(batch) == raw


@pytest.mark.parametrize("depth", [3, 500, 5000])
def test_invalid_deeply_nested_lists_are_malformed_not_a_crash(depth: int) -> None:
    with pytest.raises(MalformedEncodingError):
        decode_batch(nested_lists(depth))


def _as_batch_list(listing: bytes) -> tuple[bytes, ...] | None:
    """What decode_batch makes of ``listing`` as BASE's transaction list (None: rejected)."""
    header = b"".join(encode_items(item) for item in _items(BASE)[:6])  # type: ignore[arg-type]
    body = header + listing
    try:
        return decode_batch(length_prefix(len(body), 0xC0) + body).transactions
    except WireError:
        return None


@settings(max_examples=300, deadline=None)
@given(st.lists(tx_bytes, max_size=6).map(encode_transactions).flatmap(mutations))
def test_decode_transactions_accepts_what_decode_batch_accepts(listing: bytes) -> None:
    """decode_transactions (the reader of postBatch calldata) and decode_batch agree on every
    transaction list, valid or mutated."""
    try:
        decoded: tuple[bytes, ...] | None = decode_transactions(listing)
    except WireError:
        decoded = None
    assert decoded == _as_batch_list(listing)
    if decoded is not None:
        assert encode_transactions(decoded) == listing


@pytest.mark.parametrize(
    ("listing", "error"),
    [
        (b"\x83abc", MalformedEncodingError),
        (encode_items([[b"\x01"]]), MalformedEncodingError),
        (b"\xc2\x81\x01", NonCanonicalEncodingError),
        (encode_transactions([b"\x01" * (MAX_TRANSACTION_BYTES + 1)]), ValueOutOfRangeError),
    ],
)
def test_invalid_transaction_lists(listing: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_transactions(listing)
