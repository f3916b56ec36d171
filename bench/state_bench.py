"""
Merkle state throughput: leaf updates, and the root over 10,000 dirty leaves in a
tree holding 1,000,000 accounts, with the node store in memory and in LevelDB.

Prints one JSON object. Pass --accounts N to change the tree size.
"""

import argparse
import random
import tempfile
import time
from pathlib import Path

from bench.common import emit
from node.protocol.crypto import keccak256
from node.protocol.state import TABLE_ACCOUNTS, State
from node.protocol.tree import MemoryNodeStore, NodeStore
from node.storage import DBNodeStore, LevelDB

ACCOUNT_RECORD_BYTES = 96
"""Size of a benchmark account record (collateral, nonce window, a few positions)."""


def build(store: NodeStore, accounts: int, rng: random.Random) -> tuple[State, float]:
    state = State(store)
    start = time.perf_counter()
    chunk = 100_000
    for base in range(0, accounts, chunk):
        for i in range(base, min(base + chunk, accounts)):
            state.set(TABLE_ACCOUNTS.id, i, rng.randbytes(ACCOUNT_RECORD_BYTES))
        state.commit()
    return state, time.perf_counter() - start


def dirty_commit(state: State, accounts: int, dirty: int, rng: random.Random) -> dict[str, float]:
    """Overwrite ``dirty`` random accounts, then commit; time both halves."""
    indices = rng.sample(range(accounts), dirty)
    records = [rng.randbytes(ACCOUNT_RECORD_BYTES) for _ in indices]
    start = time.perf_counter()
    for i, record in zip(indices, records, strict=True):
        state.set(TABLE_ACCOUNTS.id, i, record)
    set_s = time.perf_counter() - start
    store = state.store
    before = len(store) if isinstance(store, MemoryNodeStore) else 0
    start = time.perf_counter()
    state.commit()
    commit_s = time.perf_counter() - start
    out = {
        "set_s": round(set_s, 4),
        "commit_s": round(commit_s, 3),
        "leaf_sets_per_s": round(dirty / set_s),
        "leaf_updates_per_s_with_commit": round(dirty / (set_s + commit_s)),
    }
    if isinstance(store, MemoryNodeStore):
        # New inner nodes + leaf records: each inner node is one keccak of 64 bytes.
        out["nodes_written"] = len(store) - before
        out["commit_us_per_node"] = round(commit_s * 1e6 / (len(store) - before), 2)
    return out


def keccak_us() -> float:
    """Cost of one 64-byte keccak through the same call the tree uses."""
    pair = bytes(64)
    start = time.perf_counter()
    for _ in range(200_000):
        keccak256(pair)
    return (time.perf_counter() - start) / 200_000 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--dirty", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(7)
    results: dict[str, object] = {"accounts": args.accounts, "dirty_leaves": args.dirty}

    memory = MemoryNodeStore()
    state, built = build(memory, args.accounts, rng)
    results["memory_build_s"] = round(built, 2)
    results["memory_nodes"] = len(memory)
    results["keccak_64B_us"] = round(keccak_us(), 3)
    results["memory_commit_10k_dirty"] = dirty_commit(state, args.accounts, args.dirty, rng)
    cold = State(memory, state.root)  # no leaf cache: reads walk the tree
    start = time.perf_counter()
    for i in rng.sample(range(args.accounts), 10_000):
        cold.get(TABLE_ACCOUNTS.id, i)
    results["memory_uncached_reads_per_s"] = round(10_000 / (time.perf_counter() - start))
    small = [dirty_commit(state, args.accounts, 100, rng) for _ in range(5)]
    results["memory_commit_100_dirty_s"] = round(min(r["commit_s"] for r in small), 4)

    with tempfile.TemporaryDirectory() as tmp:
        db = LevelDB(Path(tmp) / "db")
        start = time.perf_counter()
        DBNodeStore(db).put_nodes(memory.nodes.items())
        results["leveldb_load_nodes_s"] = round(time.perf_counter() - start, 2)
        del memory
        on_disk = State(DBNodeStore(db), state.root)
        del state
        runs = [dirty_commit(on_disk, args.accounts, args.dirty, rng) for _ in range(5)]
        results["leveldb_commit_10k_dirty_runs_s"] = [r["commit_s"] for r in runs]
        results["leveldb_commit_10k_dirty_median_s"] = sorted(r["commit_s"] for r in runs)[2]
        db.close()
    emit("state", results)


if __name__ == "__main__":
    main()
