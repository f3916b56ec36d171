"""Witness recording and its wire form: what the one-step executor will consume."""

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.protocol.encoding import decode_rlp_list, encode_items, encode_uint
from node.protocol.errors import (
    MalformedEncodingError,
    NonCanonicalEncodingError,
    ValueOutOfRangeError,
    WireError,
)
from node.protocol.merkle import ZERO_HASHES
from node.protocol.state import LAYOUT, Proof, State, verify_proof
from node.protocol.tree import MemoryNodeStore
from node.protocol.witness import (
    MAX_WITNESS_BYTES,
    AccessKind,
    WitnessRecorder,
    decode_witness,
    encode_witness,
)
from tests.strategies import mutations, nested_lists
from tests.unit.test_state import Write, writes_for

Op = tuple[bool, Write]
operations = st.lists(st.tuples(st.booleans(), writes_for(LAYOUT, 16)), min_size=1, max_size=12)


def pre_state(writes: list[Write]) -> tuple[MemoryNodeStore, bytes]:
    store = MemoryNodeStore()
    state = State(store)
    for table, index, record in writes:
        state.set(table, index, record)
    return store, state.commit()


def replay_like_the_executor(root: bytes, ops: list[Op], proofs: list[Proof]) -> bytes:
    """Consume the witness in order, holding only a root, as the L1 executor will."""
    assert len(proofs) == len(ops)
    for (is_write, (table, index, record)), proof in zip(ops, proofs, strict=True):
        assert (proof.table, proof.index) == (table, index)
        assert verify_proof(root, proof)
        if is_write:
            root = proof.root_with(record)
    return root


@settings(max_examples=60, deadline=None)
@given(st.lists(writes_for(LAYOUT, 16), max_size=30), operations)
def test_recorded_witness_replays_to_the_same_root(pre: list[Write], ops: list[Op]) -> None:
    store, root = pre_state(pre)
    nodes_before = dict(store.nodes)
    recorder = WitnessRecorder(store, root)
    direct = State(store, root)
    for is_write, (table, index, record) in ops:
        if is_write:
            recorder.set(table, index, record)
            direct.set(table, index, record)
        else:
            assert recorder.get(table, index) == direct.get(table, index)
    assert [a.kind for a in recorder.accesses] == [
        AccessKind.WRITE if w else AccessKind.READ for w, _ in ops
    ]
    for before, after in zip(recorder.accesses, recorder.accesses[1:], strict=False):
        assert before.root_after() == after.root
    proofs = decode_witness(recorder.witness())
    assert proofs == [a.proof for a in recorder.accesses]
    assert replay_like_the_executor(root, ops, proofs) == recorder.root
    nodes_before_direct = dict(store.nodes)
    assert nodes_before_direct == nodes_before  # the recorder never wrote to the store
    assert recorder.root == direct.commit()


def _one_proof() -> Proof:
    store, root = pre_state([(1, 3, b"alice"), (1, 4, b"bob"), (3, 99, b"order")])
    recorder = WitnessRecorder(store, root)
    recorder.get(1, 3)
    return recorder.accesses[0].proof


def _valid_entry() -> list[bytes]:
    proof = _one_proof()
    decoded = decode_witness(encode_witness([proof]))
    assert decoded == [proof]
    entry = decode_rlp_list(encode_witness([proof]))[0]
    assert isinstance(entry, list)
    return entry


def test_compression_drops_only_empty_table_siblings() -> None:
    proof = _one_proof()
    entry = _valid_entry()
    bitmap = int.from_bytes(entry[3], "big")
    depth = LAYOUT.table(1).depth
    kept = [h for h in range(depth) if proof.siblings[h] != ZERO_HASHES[h]]
    assert bitmap == sum(1 << h for h in kept)
    assert len(entry[4]) == 32 * (len(kept) + LAYOUT.global_depth)


def test_empty_witness_round_trips() -> None:
    assert decode_witness(encode_witness([])) == []


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda e: [e[0], e[1], e[2], e[3]], MalformedEncodingError),
        (lambda e: [*e, b""], MalformedEncodingError),
        (lambda e: [b"\x09", *e[1:]], ValueOutOfRangeError),
        (
            lambda e: [b"\x00" + e[0], *e[1:]] if e[0] else [b"\x00", *e[1:]],
            NonCanonicalEncodingError,
        ),
        (lambda e: [e[0], encode_uint(1 << 32), *e[2:]], ValueOutOfRangeError),
        (
            lambda e: [*e[:3], encode_uint(int.from_bytes(e[3], "big") | 1 << 40), e[4]],
            ValueOutOfRangeError,
        ),
        (lambda e: [*e[:4], e[4][:-1]], MalformedEncodingError),
        (lambda e: [*e[:4], e[4] + b"\x00" * 32], MalformedEncodingError),
        (
            lambda e: [*e[:3], encode_uint(int.from_bytes(e[3], "big") | 1 << 31), e[4]],
            MalformedEncodingError,
        ),
    ],
)
def test_invalid_witness_entries(
    mutate: Callable[[list[bytes]], list[bytes]], error: type[Exception]
) -> None:
    with pytest.raises(error):
        decode_witness(encode_items([mutate(_valid_entry())]))


def test_invalid_witness_marks_an_empty_sibling_present() -> None:
    entry = _valid_entry()
    bitmap = int.from_bytes(entry[3], "big")
    top = max(h for h in range(32) if not bitmap >> h & 1)  # an empty table sibling
    assert top > bitmap.bit_length() - 1
    # insert ZERO_HASHES[top] at its place: after every kept sibling below it
    kept = bitmap.bit_count()
    packed = entry[4][: 32 * kept] + ZERO_HASHES[top] + entry[4][32 * kept :]
    bad = [*entry[:3], encode_uint(bitmap | 1 << top), packed]
    with pytest.raises(NonCanonicalEncodingError):
        decode_witness(encode_items([bad]))


@pytest.mark.parametrize("depth", [3, 500, 5000])
def test_invalid_deeply_nested_witness_is_malformed_not_a_crash(depth: int) -> None:
    with pytest.raises(MalformedEncodingError):
        decode_witness(nested_lists(depth))


def test_invalid_witness_shapes() -> None:
    with pytest.raises(MalformedEncodingError):
        decode_witness(b"\x80")  # a string, not a list
    with pytest.raises(MalformedEncodingError):
        decode_witness(encode_items([b"abc"]))  # an entry that is not a list
    with pytest.raises(MalformedEncodingError):
        decode_witness(encode_items([[b"", b"", b"", b"", [b""]]]))  # nested list in an entry
    with pytest.raises(MalformedEncodingError):
        decode_witness(b"\xc0" + b"\x00" * MAX_WITNESS_BYTES)


@settings(max_examples=500)
@given(st.data())
def test_mutated_witness_is_rejected_or_canonical(data: st.DataObject) -> None:
    raw = data.draw(mutations(encode_witness([_one_proof(), _one_proof()])))
    try:
        proofs = decode_witness(raw)
    except WireError:
        return
    assert encode_witness(proofs) == raw
