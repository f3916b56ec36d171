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
    indices = rng.sample(range(accounts), dirty)
    start = time.perf_counter()
    for i in indices:
        state.set(TABLE_ACCOUNTS.id, i, rng.randbytes(ACCOUNT_RECORD_BYTES))
    set_s = time.perf_counter() - start
    start = time.perf_counter()
    state.commit()
    commit_s = time.perf_counter() - start
    return {
        "set_s": round(set_s, 4),
        "commit_s": round(commit_s, 3),
        "leaves_per_s": round(dirty / (set_s + commit_s)),
    }


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
