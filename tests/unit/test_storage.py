"""One suite for every key-value backend, plus the Merkle state on LevelDB across reopen."""

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.protocol.state import LAYOUT, State
from node.protocol.tree import MemoryNodeStore
from node.storage import DBNodeStore, KeyValueDB, LevelDB, MemoryDB, schema


@pytest.fixture(params=["memory", "leveldb"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyValueDB]:
    backend: KeyValueDB = MemoryDB() if request.param == "memory" else LevelDB(tmp_path / "db")
    yield backend
    backend.close()


def test_get_put_delete(db: KeyValueDB) -> None:
    assert db.get(b"k") is None
    assert not db.exists(b"k")
    db.put(b"k", b"v")
    assert db.get(b"k") == b"v"
    assert db.exists(b"k")
    db.put(b"k", b"w", sync=True)
    assert db.get(b"k") == b"w"
    db.delete(b"k")
    assert db.get(b"k") is None
    db.delete(b"absent")  # deleting an absent key is fine


def test_empty_value_is_a_value(db: KeyValueDB) -> None:
    db.put(b"k", b"")
    assert db.get(b"k") == b""
    assert db.exists(b"k")


def test_write_batch_applies_atomically(db: KeyValueDB) -> None:
    db.put(b"gone", b"1")
    with db.write_batch(sync=True) as batch:
        batch.put(b"a", b"1")
        batch.put(b"b", b"2")
        batch.delete(b"gone")
        assert len(batch) == 3
        assert db.get(b"a") is None  # nothing visible before the batch commits
    assert (db.get(b"a"), db.get(b"b"), db.get(b"gone")) == (b"1", b"2", None)


def test_write_batch_writes_nothing_if_the_block_raises(db: KeyValueDB) -> None:
    with pytest.raises(RuntimeError), db.write_batch() as batch:
        batch.put(b"a", b"1")
        raise RuntimeError("abort")
    assert db.get(b"a") is None


def test_later_op_on_the_same_key_wins_within_a_batch(db: KeyValueDB) -> None:
    with db.write_batch() as batch:
        batch.put(b"a", b"1")
        batch.delete(b"a")
        batch.put(b"b", b"1")
        batch.put(b"b", b"2")
    assert (db.get(b"a"), db.get(b"b")) == (None, b"2")


def test_iterate_by_prefix_in_key_order(db: KeyValueDB) -> None:
    for key in (b"\x02b", b"\x01z", b"\x01a", b"\x00q", b"\x01m"):
        db.put(key, key[1:])
    assert list(db.iterate(b"\x01")) == [(b"\x01a", b"a"), (b"\x01m", b"m"), (b"\x01z", b"z")]
    assert [k for k, _ in db.iterate()] == [b"\x00q", b"\x01a", b"\x01m", b"\x01z", b"\x02b"]


def test_node_store_uses_the_schema_prefix(db: KeyValueDB) -> None:
    store = DBNodeStore(db)
    node = b"\x07" * 32
    store.put_nodes([(node, b"preimage")])
    assert store.get_node(node) == b"preimage"
    assert db.get(schema.node_key(node)) == b"preimage"
    assert store.get_node(b"\x08" * 32) is None


def test_invalid_node_key_length() -> None:
    with pytest.raises(ValueError):
        schema.node_key(b"\x00" * 31)


def _random_commits(seed: int, count: int) -> list[list[tuple[int, int, bytes]]]:
    rng = random.Random(seed)
    commits = []
    for _ in range(count):
        writes = []
        for _ in range(rng.randrange(1, 40)):
            table = rng.choice(LAYOUT.tables)
            index = rng.randrange(200) if rng.random() < 0.7 else rng.randrange(1 << table.depth)
            writes.append((table.id, index, rng.randbytes(rng.randrange(0, 80))))
        commits.append(writes)
    return commits


def test_state_on_leveldb_survives_close_and_reopen(tmp_path: Path) -> None:
    first, second = _random_commits(1, 12), _random_commits(2, 8)
    reference = State(MemoryNodeStore())
    db = LevelDB(tmp_path / "state")
    state = State(DBNodeStore(db))
    roots = []
    model: dict[tuple[int, int], bytes] = {}
    for writes in first:
        for table, index, record in writes:
            state.set(table, index, record)
            reference.set(table, index, record)
            model[(table, index)] = record
        roots.append(state.commit())
        assert roots[-1] == reference.commit()
    db.close()

    db = LevelDB(tmp_path / "state")
    reopened = State(DBNodeStore(db), roots[-1])
    for (table, index), record in model.items():
        assert reopened.get(table, index) == record
    for root in roots:  # every earlier root is still readable after the reopen
        State(DBNodeStore(db), root)
    for writes in second:
        for table, index, record in writes:
            reopened.set(table, index, record)
            reference.set(table, index, record)
        assert reopened.commit() == reference.commit()
    db.close()
