"""Witness recording, the executor's memory model, and the witness's wire form."""

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
from node.protocol.merkle import ZERO_HASHES, hash_leaf, hash_pair, root_after_updates
from node.protocol.state import LAYOUT, State
from node.protocol.tree import MemoryNodeStore
from node.protocol.witness import (
    MAX_WITNESS_BYTES,
    LeafProof,
    Witness,
    WitnessError,
    WitnessRecorder,
    WitnessView,
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


def run(view: WitnessRecorder | WitnessView | State, ops: list[Op]) -> list[bytes]:
    """Apply ``ops`` (reads and writes, in order) to ``view``; the records read."""
    reads = []
    for is_write, (table, index, record) in ops:
        if is_write:
            view.set(table, index, record)
        else:
            reads.append(view.get(table, index))
    return reads


@settings(max_examples=80, deadline=None)
@given(st.lists(writes_for(LAYOUT, 16), max_size=30), operations)
def test_recorded_witness_replays_to_the_same_root(pre: list[Write], ops: list[Op]) -> None:
    store, root = pre_state(pre)
    nodes_before = dict(store.nodes)
    recorder = WitnessRecorder(store, root)
    direct = State(store, root)
    assert run(recorder, ops) == run(direct, ops)
    witness = decode_witness(recorder.witness())
    first_touches = list(dict.fromkeys((t, i) for _, (t, i, _) in ops))
    assert [(p.table, p.index) for p in witness.proofs] == first_touches
    view = WitnessView(root, witness)
    assert run(view, ops) == run(State(store, root), ops)
    assert view.finish() == recorder.root
    assert dict(store.nodes) == nodes_before  # the recorder never wrote to the store
    assert recorder.root == direct.commit()


def tree_levels(depth: int, content: dict[int, bytes]) -> list[dict[int, bytes]]:
    """Every level of a depth-``depth`` tree holding ``content``, leaves first (non-empty
    nodes only): the plain definition, to check the clever computations against."""
    level = {i: hash_leaf(r) for i, r in content.items() if r}
    levels = [level]
    for height in range(depth):
        level = {
            i: hash_pair(
                level.get(2 * i, ZERO_HASHES[height]), level.get(2 * i + 1, ZERO_HASHES[height])
            )
            for i in {i >> 1 for i in level}
        }
        levels.append(level)
    return levels


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 12),
    st.lists(st.tuples(st.integers(0, (1 << 12) - 1), st.binary(max_size=4)), max_size=20),
    st.lists(st.tuples(st.integers(0, (1 << 12) - 1), st.binary(max_size=4)), min_size=1),
)
def test_root_after_updates_is_the_tree_root(
    depth: int, before: list[tuple[int, bytes]], updates: list[tuple[int, bytes]]
) -> None:
    """The multiproof update gives the root that recomputing the whole tree gives."""
    mask = (1 << depth) - 1
    old = {index & mask: record for index, record in before}
    new = old | {index & mask: record for index, record in updates}
    old_levels = tree_levels(depth, old)

    def siblings(index: int) -> tuple[bytes, ...]:
        return tuple(old_levels[h].get((index >> h) ^ 1, ZERO_HASHES[h]) for h in range(depth))

    touched = sorted({index & mask for index, _ in updates})
    items = [(i, hash_leaf(new.get(i, b"")), siblings(i)) for i in touched]
    assert root_after_updates(depth, items) == tree_levels(depth, new)[depth].get(
        0, ZERO_HASHES[depth]
    )


def test_view_refuses_a_witness_for_another_key() -> None:
    store, root = pre_state([(1, 3, b"alice"), (1, 4, b"bob")])
    recorder = WitnessRecorder(store, root)
    recorder.get(1, 3)
    view = WitnessView(root, decode_witness(recorder.witness()))
    with pytest.raises(WitnessError, match="accesses"):
        view.get(1, 4)


def test_view_refuses_a_tampered_record_or_sibling() -> None:
    store, root = pre_state([(1, 3, b"alice"), (1, 4, b"bob")])
    recorder = WitnessRecorder(store, root)
    recorder.get(1, 3)
    witness = decode_witness(recorder.witness())
    proof = witness.proofs[0]
    forged = LeafProof(proof.table, proof.index, b"mallory", proof.siblings)
    with pytest.raises(WitnessError, match="table root"):
        WitnessView(root, Witness(witness.table_roots, (forged,))).get(1, 3)
    bent = LeafProof(proof.table, proof.index, proof.record, (b"\x01" * 32, *proof.siblings[1:]))
    with pytest.raises(WitnessError, match="table root"):
        WitnessView(root, Witness(witness.table_roots, (bent,))).get(1, 3)


def test_view_refuses_wrong_table_roots_and_leftover_entries() -> None:
    store, root = pre_state([(1, 3, b"alice")])
    recorder = WitnessRecorder(store, root)
    recorder.get(1, 3)
    witness = decode_witness(recorder.witness())
    roots = list(witness.table_roots)
    roots[9] = b"\x01" * 32
    with pytest.raises(WitnessError, match="pre-state root"):
        WitnessView(root, Witness(tuple(roots), witness.proofs))
    with pytest.raises(WitnessError, match="more entries"):
        WitnessView(root, witness).finish()
    with pytest.raises(WitnessError, match="ends before"):
        WitnessView(root, Witness(witness.table_roots, ())).get(1, 3)


def test_writes_cost_no_witness_entries() -> None:
    store, root = pre_state([(1, 3, b"alice"), (3, 7, b"order")])
    recorder = WitnessRecorder(store, root)
    recorder.get(1, 3)
    recorder.set(1, 3, b"alice2")
    recorder.set(3, 7, b"")
    recorder.set(3, 7, b"order again")
    witness = decode_witness(recorder.witness())
    assert [(p.table, p.index) for p in witness.proofs] == [(1, 3), (3, 7)]


def _one_witness() -> Witness:
    store, root = pre_state([(1, 3, b"alice"), (1, 4, b"bob"), (3, 99, b"order")])
    recorder = WitnessRecorder(store, root)
    recorder.get(1, 3)
    return decode_witness(recorder.witness())


def _one_proof() -> LeafProof:
    return _one_witness().proofs[0]


def _roots() -> bytes:
    return b"".join(_one_witness().table_roots)


def _valid_entry() -> list[bytes]:
    witness = _one_witness()
    assert decode_witness(encode_witness(witness)) == witness
    outer = decode_rlp_list(encode_witness(witness))
    entry = outer[1][0]
    assert isinstance(entry, list)
    return entry


def _with_entries(entries: list[object]) -> bytes:
    return encode_items([_roots(), entries])


def test_compression_drops_only_empty_table_siblings() -> None:
    proof = _one_proof()
    entry = _valid_entry()
    bitmap = int.from_bytes(entry[3], "big")
    depth = LAYOUT.table(1).depth
    kept = [h for h in range(depth) if proof.siblings[h] != ZERO_HASHES[h]]
    assert bitmap == sum(1 << h for h in kept)
    assert len(entry[4]) == 32 * len(kept)


def test_empty_witness_round_trips() -> None:
    empty = Witness(_one_witness().table_roots, ())
    assert decode_witness(encode_witness(empty)) == empty


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
        (lambda e: [*e[:4], e[4] + b"\x01" * 32], MalformedEncodingError),
    ],
)
def test_invalid_witness_entries(
    mutate: Callable[[list[bytes]], list[bytes]], error: type[Exception]
) -> None:
    with pytest.raises(error):
        decode_witness(_with_entries([mutate(_valid_entry())]))


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
        decode_witness(_with_entries([bad]))


@pytest.mark.parametrize("depth", [3, 500, 5000])
def test_invalid_deeply_nested_witness_is_malformed_not_a_crash(depth: int) -> None:
    with pytest.raises(MalformedEncodingError):
        decode_witness(nested_lists(depth))


def test_invalid_witness_shapes() -> None:
    with pytest.raises(MalformedEncodingError):
        decode_witness(b"\x80")  # a string, not a list
    with pytest.raises(MalformedEncodingError):
        decode_witness(encode_items([]))  # no table roots
    with pytest.raises(MalformedEncodingError):
        decode_witness(encode_items([_roots()[:-1], []]))  # a table root short
    with pytest.raises(MalformedEncodingError):
        decode_witness(encode_items([[], _roots()]))  # the parts swapped
    with pytest.raises(MalformedEncodingError):
        decode_witness(_with_entries([b"abc"]))  # an entry that is not a list
    with pytest.raises(MalformedEncodingError):
        decode_witness(_with_entries([[b"", b"", b"", b"", [b""]]]))  # nested list in an entry
    with pytest.raises(MalformedEncodingError):
        decode_witness(b"\xc0" + b"\x00" * MAX_WITNESS_BYTES)


@settings(max_examples=500)
@given(st.data())
def test_mutated_witness_is_rejected_or_canonical(data: st.DataObject) -> None:
    witness = _one_witness()
    doubled = Witness(witness.table_roots, (witness.proofs[0], witness.proofs[0]))
    raw = data.draw(mutations(encode_witness(doubled)))
    try:
        decoded = decode_witness(raw)
    except WireError:
        return
    assert encode_witness(decoded) == raw
