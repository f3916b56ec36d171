"""The Merkle state: roots, proofs, history, batching, and its error paths."""

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.protocol.errors import InvalidKeyError, MissingNodeError, StateError
from node.protocol.merkle import ZERO_HASHES
from node.protocol.state import LAYOUT, Proof, State, StateLayout, Table, verify_proof
from node.protocol.tree import MemoryNodeStore
from tests.unit import naive

SMALL = StateLayout(
    (Table(0, "a", 1), Table(1, "b", 3), Table(2, "c", 4), Table(5, "d", 2)), global_depth=3
)
"""A layout small enough to hash every leaf of every table."""

Write = tuple[int, int, bytes]


def writes_for(layout: StateLayout, dense_ids: int = 64) -> st.SearchStrategy[Write]:
    tables = st.sampled_from(layout.tables)
    records = st.one_of(st.just(b""), st.binary(min_size=1, max_size=70))
    return tables.flatmap(
        lambda t: st.tuples(
            st.just(t.id),
            st.one_of(
                st.integers(0, min(dense_ids, (1 << t.depth) - 1)),
                st.integers(0, (1 << t.depth) - 1),
            ),
            records,
        )
    )


def apply(model: dict[tuple[int, int], bytes], writes: Iterable[Write]) -> None:
    for table, index, record in writes:
        model[(table, index)] = record


def test_empty_state_root_is_the_naive_one() -> None:
    assert State(MemoryNodeStore()).root == LAYOUT.empty_root == naive.state_root(LAYOUT, {})
    assert SMALL.empty_root == naive.state_root(SMALL, {}, dense=True)


def test_zero_hashes_are_empty_subtree_roots() -> None:
    for height in range(6):
        assert ZERO_HASHES[height] == naive.dense_root(height, {})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(writes_for(SMALL, 8), max_size=12), min_size=1, max_size=6))
def test_roots_equal_full_recomputation_small_layout(commits: list[list[Write]]) -> None:
    state = State(MemoryNodeStore(), layout=SMALL)
    model: dict[tuple[int, int], bytes] = {}
    for writes in commits:
        for table, index, record in writes:
            state.set(table, index, record)
        apply(model, writes)
        assert state.commit() == naive.state_root(SMALL, model, dense=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(writes_for(LAYOUT), max_size=25), min_size=1, max_size=6))
def test_roots_equal_naive_recomputation_real_layout(commits: list[list[Write]]) -> None:
    state = State(MemoryNodeStore())
    model: dict[tuple[int, int], bytes] = {}
    for writes in commits:
        for table, index, record in writes:
            state.set(table, index, record)
        apply(model, writes)
        assert state.commit() == naive.state_root(LAYOUT, model)
        for spec in LAYOUT.tables:
            rows = {i: r for (t, i), r in model.items() if t == spec.id}
            assert state.table_root(spec.id) == naive.sparse_root(spec.depth, rows)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(writes_for(LAYOUT), min_size=1, max_size=15), min_size=1, max_size=5),
    st.lists(st.tuples(st.sampled_from(LAYOUT.tables), st.integers(0, 2**32)), max_size=5),
)
def test_every_proof_verifies_and_old_roots_stay_readable(
    commits: list[list[Write]], extra_keys: list[tuple[Table, int]]
) -> None:
    store = MemoryNodeStore()
    state = State(store)
    model: dict[tuple[int, int], bytes] = {}
    history: list[tuple[bytes, dict[tuple[int, int], bytes]]] = [(state.root, {})]
    keys: set[tuple[int, int]] = {(t.id, i % (1 << t.depth)) for t, i in extra_keys}
    for writes in commits:
        for table, index, record in writes:
            state.set(table, index, record)
            keys.add((table, index))
        apply(model, writes)
        root = state.commit()
        history.append((root, dict(model)))
        for table, index in sorted(keys):
            proof = state.prove(table, index)
            assert proof.record == model.get((table, index), b"")
            assert verify_proof(root, proof)
    for root, snapshot in history:
        old = State(store, root)
        for table, index in sorted(keys):
            assert old.get(table, index) == snapshot.get((table, index), b"")
            proof = old.prove(table, index)
            assert verify_proof(root, proof)


def tampered(proof: Proof) -> list[Proof]:
    flipped = bytes([proof.siblings[0][0] ^ 1]) + proof.siblings[0][1:]
    top = proof.siblings[-1]
    return [
        Proof(proof.table, proof.index, proof.record + b"\x00", proof.siblings),
        Proof(proof.table, proof.index, b"" if proof.record else b"x", proof.siblings),
        Proof(proof.table, proof.index ^ 1, proof.record, proof.siblings),
        Proof(proof.table ^ 1, proof.index, proof.record, proof.siblings),
        Proof(proof.table, proof.index, proof.record, (flipped, *proof.siblings[1:])),
        Proof(
            proof.table,
            proof.index,
            proof.record,
            (*proof.siblings[:-1], bytes([top[0] ^ 0x80]) + top[1:]),
        ),
        Proof(proof.table, proof.index, proof.record, proof.siblings[:-1]),
        Proof(proof.table, proof.index, proof.record, (*proof.siblings, ZERO_HASHES[0])),
        Proof(proof.table, 1 << 62, proof.record, proof.siblings),
        Proof(9, proof.index, proof.record, proof.siblings),
    ]


@settings(max_examples=40, deadline=None)
@given(st.lists(writes_for(LAYOUT), min_size=1, max_size=20), st.data())
def test_tampered_proofs_fail(writes: list[Write], data: st.DataObject) -> None:
    state = State(MemoryNodeStore())
    for table, index, record in writes:
        state.set(table, index, record)
    root = state.commit()
    table, index, _ = data.draw(st.sampled_from(writes))
    proof = state.prove(table, index)
    assert verify_proof(root, proof)
    for bad in tampered(proof):
        # A tampered proof verifies only if it is, by chance, the true proof of its claim
        # (e.g. index ^ 1 where both leaves are absent and share their siblings).
        table_spec = LAYOUT.by_id.get(bad.table)
        in_layout = table_spec is not None and 0 <= bad.index < 1 << table_spec.depth
        truth = in_layout and bad == state.prove(bad.table, bad.index)
        assert verify_proof(root, bad) == truth, bad
        assert bad != proof


def test_reads_see_pending_writes_and_the_root_moves_only_on_commit() -> None:
    state = State(MemoryNodeStore())
    before = state.root
    state.set(1, 10, b"alice")
    assert state.get(1, 10) == b"alice"
    assert state.root == before
    assert state.dirty_count == 1
    after = state.commit()
    assert after != before
    assert state.dirty_count == 0
    assert state.commit() == after
    state.set(1, 10, b"bob")
    state.discard()
    assert state.get(1, 10) == b"alice"
    assert state.commit() == after


def test_deleting_every_record_returns_to_the_empty_root() -> None:
    state = State(MemoryNodeStore())
    for i in range(50):
        state.set(3, i * 7919, i.to_bytes(2, "big") + b"order")
    assert state.commit() != LAYOUT.empty_root
    for i in range(50):
        state.set(3, i * 7919, b"")
    assert state.commit() == LAYOUT.empty_root


class CountingStore(MemoryNodeStore):
    def __init__(self) -> None:
        super().__init__()
        self.puts = 0
        self.gets = 0

    def get_node(self, node_hash: bytes) -> bytes | None:
        self.gets += 1
        return super().get_node(node_hash)

    def put_nodes(self, nodes: Iterable[tuple[bytes, bytes]]) -> None:
        self.puts += 1
        super().put_nodes(nodes)


def test_commit_hashes_dirty_leaves_once_not_per_write() -> None:
    once, many = CountingStore(), CountingStore()
    a, b = State(once), State(many)
    for i in range(200):
        a.set(1, i, b"final")
        for round_ in range(5):
            b.set(1, i, b"draft %d" % round_)
        b.set(1, i, b"final")
    assert a.commit() == b.commit()
    assert once.puts == many.puts == 1  # one write of new nodes per commit
    assert len(once) == len(many)  # no node of an intermediate value was ever computed


def test_commit_reads_each_shared_node_once() -> None:
    store = CountingStore()
    state = State(store)
    for i in range(256):
        state.set(1, i, b"x%d" % i)
    state.commit()
    store.gets = 0
    for i in range(256):
        state.set(1, i, b"y%d" % i)
    state.commit()
    # 256 dense leaves under a depth-32 table: 255 inner nodes below the 8th level and
    # a spine of 24 above it, each read once (the global tree is kept in memory).
    assert store.gets == 255 + 24


def test_invalid_keys_are_refused() -> None:
    state = State(MemoryNodeStore())
    with pytest.raises(InvalidKeyError):
        state.set(7, 0, b"x")
    with pytest.raises(InvalidKeyError):
        state.set(1, 1 << 32, b"x")
    with pytest.raises(InvalidKeyError):
        state.set(1, -1, b"x")
    with pytest.raises(InvalidKeyError):
        state.get(15, 0)
    with pytest.raises(TypeError):
        state.set(1, 0, bytearray(b"x"))  # type: ignore[arg-type]
    assert state.dirty_count == 0


def test_invalid_prove_with_pending_writes() -> None:
    state = State(MemoryNodeStore())
    state.set(1, 1, b"x")
    with pytest.raises(StateError):
        state.prove(1, 1)


def test_invalid_unknown_root_is_missing() -> None:
    with pytest.raises(MissingNodeError):
        State(MemoryNodeStore(), b"\x42" * 32)


def test_invalid_pruned_node_is_missing() -> None:
    store = MemoryNodeStore()
    state = State(store)
    state.set(1, 5, b"x")
    root = state.commit()
    table_root = state.table_root(1)
    del store.nodes[table_root]
    with pytest.raises(MissingNodeError):
        State(store, root).get(1, 5)


@pytest.mark.parametrize(
    "tables",
    [
        (Table(0, "a", 1), Table(0, "b", 1)),
        (Table(16, "a", 1),),
        (Table(0, "a", 0),),
        (Table(0, "a", 61),),
    ],
)
def test_invalid_layouts_are_refused(tables: tuple[Table, ...]) -> None:
    with pytest.raises(ValueError):
        StateLayout(tables)
