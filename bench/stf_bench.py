"""
Exchange STF throughput on one core, for a realistic flow of signed transactions.

The flow (deterministic for a seed): market makers quote several levels on both
sides of BTC-PERP and ETH-PERP around a random-walk oracle price and re-quote
(cancel + post-only orders, sometimes a CancelAll) as it moves; takers cross the
book with IOC limit, market, fill-or-kill and reduce-only orders and sometimes
rest a GTC order they cancel later; the oracle sends a price every few steps;
a few transfers, withdrawals and L1 deposits. Every transaction is signed and
the flow generated once, before anything is timed (signing is the client's
cost, not the STF's); generating it applies it, so it only ever cancels orders
that still rest.

The flow is then replayed from genesis with :func:`node.protocol.stf.apply_step`
on a Merkle :class:`~node.protocol.state.State`, committing every batch, both
recovering every signer and with the signers pre-recovered (passed as
``signers``, as the sequencer does after admission), ``--repeat`` times each,
alternating; the figures are the fastest replay of each (the machine may be
shared; the rates of every replay are printed too). Every replay must reach the
generation's state roots and outcomes, or the bench stops. A last replay, with
recovery, runs under cProfile for the breakdown of where the time goes; the
profiler inflates small Python calls, so read its shares next to the
unprofiled per-step-type times.

Prints JSON lines: ``stf`` (throughput, rejections, dirty leaves, commits),
``stf_step_types`` (per step type), ``stf_profile`` (where the time goes), and
with ``--leveldb`` ``stf_leveldb`` (the same replays over a LevelDB node store).
"""

import argparse
import cProfile
import gc
import math
import pstats
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import emit
from bench.stf_flow import Flow, FlowGenerator
from node.protocol.crypto import recover_signer
from node.protocol.genesis import genesis_state
from node.protocol.step import BatchContext, Outcome, StepKind
from node.protocol.stf import apply_step
from node.protocol.transactions import (
    decode_transaction,
)
from node.protocol.tree import MemoryNodeStore, NodeStore
from node.storage import DBNodeStore, LevelDB
from tests.stf_env import (
    DOMAIN,
    GENESIS,
)

# Replaying -------------------------------------------------------------------------------


class CountingStore:
    """A node store that passes everything to ``base`` and counts the nodes stored."""

    def __init__(self, base: NodeStore) -> None:
        self.base = base
        self.stored = 0

    def get_node(self, node_hash: bytes) -> bytes | None:
        return self.base.get_node(node_hash)

    def put_nodes(self, nodes: Iterable[tuple[bytes, bytes]]) -> None:
        pairs = list(nodes)
        self.stored += len(pairs)
        self.base.put_nodes(pairs)


@dataclass
class Run:
    """What one replay measured."""

    step_s: list[float] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    commit_s: list[float] = field(default_factory=list)
    dirty: list[int] = field(default_factory=list)
    """Distinct dirty leaves at each commit."""
    stored: list[int] = field(default_factory=list)
    """Nodes stored by each commit (leaf records + new inner nodes)."""

    @property
    def seconds(self) -> float:
        """Time in steps and commits."""
        return sum(self.step_s) + sum(self.commit_s)


def replay(
    flow: Flow, store: NodeStore, recover: bool, profiler: cProfile.Profile | None = None
) -> Run:
    """Apply the flow from genesis; time every step and every commit."""
    counting = CountingStore(store)
    state = genesis_state(GENESIS, counting)
    signers = None if recover else flow.signers
    context = BatchContext(flow.setup.timestamp, DOMAIN)
    for step in flow.setup.steps:
        apply_step(state, step, context, signers)
    if state.commit() != flow.roots[0]:
        raise SystemExit("the replayed setup reached another state root")
    run = Run()
    clock = time.perf_counter
    gc.collect()
    if profiler is not None:
        profiler.enable()
    for number, batch in enumerate(flow.batches, 1):
        context = BatchContext(batch.timestamp, DOMAIN)
        for step in batch.steps:
            start = clock()
            outcome = apply_step(state, step, context, signers)
            run.step_s.append(clock() - start)
            run.outcomes.append(outcome)
        run.dirty.append(state.dirty_count)
        before = counting.stored
        start = clock()
        root = state.commit()
        run.commit_s.append(clock() - start)
        run.stored.append(counting.stored - before)
        if root != flow.roots[number]:
            raise SystemExit(f"replay (recover={recover}) diverged from the flow at batch {number}")
    if profiler is not None:
        profiler.disable()
    if [o.reason for o in run.outcomes] != flow.reasons:
        raise SystemExit(f"replay (recover={recover}) has other outcomes than the flow")
    return run


# Figures ---------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0..100) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def spread(values: list[float], digits: int = 2) -> dict[str, float]:
    return {
        "mean": round(sum(values) / len(values), digits),
        "p50": round(pct(values, 50), digits),
        "p99": round(pct(values, 99), digits),
        "max": round(max(values), digits),
    }


def throughput(run: Run) -> dict[str, float]:
    steps = len(run.step_s)
    step_s, commit_s = sum(run.step_s), sum(run.commit_s)
    return {
        "steps_per_s": round(steps / step_s),
        "steps_per_s_incl_commit": round(steps / (step_s + commit_s)),
        "us_per_step": round(step_s / steps * 1e6, 1),
        "commit_share_of_time": round(commit_s / (step_s + commit_s), 3),
    }


def commit_figures(run: Run) -> dict[str, Any]:
    return {
        "commit_ms_per_batch": spread([s * 1e3 for s in run.commit_s]),
        "dirty_leaves_per_batch": spread([float(d) for d in run.dirty], 1),
        "nodes_stored_per_batch": spread([float(n) for n in run.stored], 1),
        "commit_us_per_node_stored": round(sum(run.commit_s) * 1e6 / max(1, sum(run.stored)), 2),
    }


@contextmanager
def memory_store() -> Iterator[NodeStore]:
    yield MemoryNodeStore()


@contextmanager
def leveldb_store() -> Iterator[NodeStore]:
    with tempfile.TemporaryDirectory() as tmp:
        db = LevelDB(Path(tmp) / "db")
        try:
            yield DBNodeStore(db)
        finally:
            db.close()


def best_runs(
    flow: Flow, stores: Callable[[], AbstractContextManager[NodeStore]], repeat: int
) -> tuple[Run, Run, dict[str, list[int]]]:
    """
    Replay the flow ``repeat`` times each way, alternating; the fastest replay of
    each way (the least disturbed on a shared machine), and every replay's steps/s.
    """
    best: dict[bool, Run] = {}
    rates: dict[str, list[int]] = {"with_recovery": [], "without_recovery": []}
    for _ in range(repeat):
        for recover in (True, False):
            with stores() as store:
                run = replay(flow, store, recover)
            rates["with_recovery" if recover else "without_recovery"].append(
                round(len(run.step_s) / run.seconds)
            )
            if recover not in best or run.seconds < best[recover].seconds:
                best[recover] = run
    return best[True], best[False], rates


def transaction_parts(flow: Flow, repeat: int) -> dict[str, float]:
    """
    Unprofiled cost of the per-transaction parts of a step, alone, over the flow's
    own transactions (best of ``repeat`` passes): decode, EIP-712 digest, recovery.
    """
    raws = [s.data for batch in flow.batches for s in batch.steps if s.kind == StepKind.TRANSACTION]
    txs = [decode_transaction(raw) for raw in raws]
    digests = [tx.hash(DOMAIN) for tx in txs]
    parts: dict[str, Callable[[], object]] = {
        "decode_transaction": lambda: [decode_transaction(raw) for raw in raws],
        "eip712_digest": lambda: [tx.hash(DOMAIN) for tx in txs],
        "recover_signer": lambda: [
            recover_signer(d, tx.signature) for d, tx in zip(digests, txs, strict=True)
        ],
    }
    out = {}
    for name, fn in parts.items():
        best = math.inf
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        out[name] = round(best / len(raws) * 1e6, 1)
    return out


def main_figures(
    args: argparse.Namespace,
    flow: Flow,
    recovering: Run,
    recovered: Run,
    rates: dict[str, list[int]],
) -> dict[str, Any]:
    outcomes = recovered.outcomes
    steps = len(outcomes)
    rejected = Counter(o.reason.name for o in outcomes if not o.applied)
    taker_orders = [o for o in outcomes if o.order is not None and o.fills]
    with_recovery = throughput(recovering)
    without = throughput(recovered)
    return {
        "store": "memory",
        "seed": args.seed,
        "steps": steps,
        "batch_size": args.batch,
        "batches": len(flow.batches),
        "accounts": args.makers + args.takers + 1,
        "generate_and_sign_s": round(flow.generate_s, 1),
        "with_recovery": with_recovery,
        "without_recovery": without,
        "recovery_us_per_step": round(with_recovery["us_per_step"] - without["us_per_step"], 1),
        "transaction_parts_us_alone": transaction_parts(flow, args.repeat),
        "replays": args.repeat,
        "steps_per_s_incl_commit_every_replay": rates,
        "rejected_share": round(sum(rejected.values()) / steps, 4),
        "rejected_by_reason": dict(rejected.most_common()),
        "dirty_leaves_per_step": spread([float(o.writes) for o in outcomes]),
        "fills_per_step": round(sum(len(o.fills) for o in outcomes) / steps, 3),
        "fills_per_order_that_filled": round(
            sum(len(o.fills) for o in taker_orders) / max(1, len(taker_orders)), 2
        ),
        "removals_per_step": round(sum(len(o.removals) for o in outcomes) / steps, 3),
        "removals_by_reason": dict(
            Counter(r.reason.name for o in outcomes for r in o.removals).most_common()
        ),
        "order_ends": dict(Counter(o.order.end.name for o in outcomes if o.order).most_common()),
        **commit_figures(recovered),
    }


def step_type_figures(flow: Flow, recovering: Run, recovered: Run) -> dict[str, Any]:
    labels = [label for batch in flow.batches for label in batch.labels]
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    out: dict[str, Any] = {}
    for label, indices in sorted(by_label.items(), key=lambda kv: -len(kv[1])):
        outcomes = [recovered.outcomes[i] for i in indices]
        out[label] = {
            "share": round(len(indices) / len(labels), 4),
            "rejected": sum(not o.applied for o in outcomes),
            "dirty_leaves": spread([float(o.writes) for o in outcomes]),
            "fills_mean": round(sum(len(o.fills) for o in outcomes) / len(outcomes), 2),
            "us_with_recovery": spread([recovering.step_s[i] * 1e6 for i in indices], 1),
            "us_without_recovery": spread([recovered.step_s[i] * 1e6 for i in indices], 1),
        }
    return out


# Where the time goes ---------------------------------------------------------------------

_Key = tuple[str, int, str]


def _owner(key: _Key) -> str | None:
    """The category a function's own time belongs to; None: to its callers."""
    path = key[0].replace("\\", "/")
    if "/node/protocol/" in path:
        module = Path(path).stem
        if module == "crypto" and key[2] == "keccak256":
            return "keccak256"
        return f"node.protocol.{module}"
    if "/eth_keys/" in path or "/coincurve/" in path:
        return "secp256k1 (eth_keys, coincurve)"
    if "/rlp/" in path:
        return "rlp (library)"
    if "/bench/" in path:
        return "bench loop"
    return None


def _name(key: _Key) -> str:
    path = key[0].replace("\\", "/")
    if "/node/protocol/" in path:
        return f"{Path(path).stem}.{key[2]}"
    if key[0] == "~":
        return key[2]
    return f"{Path(path).name}:{key[2]}"


def profile_figures(profiler: cProfile.Profile, steps: int, batches: int) -> dict[str, Any]:
    stats: dict[_Key, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values())

    def find(module: str, name: str) -> _Key | None:
        for key in stats:
            if key[2] == name and key[0].replace("\\", "/").endswith(module):
                return key
        return None

    def cum(module: str, name: str, caller: tuple[str, str] | None = None) -> float:
        key = find(module, name)
        if key is None:
            return 0.0
        if caller is None:
            return float(stats[key][3])
        parent = find(*caller)
        entry = stats[key][4].get(parent)
        return float(entry[3]) if entry else 0.0

    # Phases: disjoint slices of the profiled time.
    handlers = {
        "orders.place_order": cum("orders.py", "place_order"),
        "orders.apply_cancel": cum("orders.py", "apply_cancel"),
        "orders.apply_cancel_all": cum("orders.py", "apply_cancel_all"),
        "oracle.apply_oracle_price": cum("oracle.py", "apply_oracle_price"),
        "accounts.apply_transfer": cum("accounts.py", "apply_transfer"),
        "accounts.apply_withdraw": cum("accounts.py", "apply_withdraw"),
        "accounts.apply_deposit": cum("accounts.py", "apply_deposit"),
    }
    decode = cum("transactions.py", "decode_transaction")
    digest = cum("transactions.py", "hash")
    recovery = cum("crypto.py", "recover_signer")
    apply_tx = cum("stf.py", "apply_transaction")
    tx_handlers = sum(v for k, v in handlers.items() if k != "accounts.apply_deposit")
    flush = cum("step.py", "flush")
    replace = cum("dataclasses.py", "replace", ("stf.py", "apply_step"))
    commit = cum("state.py", "commit")
    stf_total = cum("stf.py", "apply_step") + commit
    phases = {
        "tx_decode": decode,
        "eip712_digest": digest,
        "signature_recovery": recovery,
        "auth_nonce_account_load_store": apply_tx - decode - digest - recovery - tx_handlers,
        **{f"handler:{k}": v for k, v in handlers.items()},
        "l1_message_decode": cum("inbox.py", "decode_l1_message"),
        "step_flush_to_state": flush,
        "outcome_replace": replace,
        "commit": commit,
    }
    phases["dispatch_stepstate_and_rest"] = stf_total - sum(phases.values())

    # Own time by module; C and library functions count for whoever called them.
    shares: dict[_Key, dict[str, float]] = {}

    def owners(key: _Key, seen: frozenset[_Key]) -> dict[str, float]:
        if key in shares:
            return shares[key]
        owner = _owner(key)
        if owner is not None:
            return {owner: 1.0}
        callers = stats[key][4]
        weight = sum(entry[2] for entry in callers.values())
        result: dict[str, float] = defaultdict(float)
        if not callers or weight == 0 or key in seen:
            result["other"] = 1.0
        else:
            for caller, entry in callers.items():
                for name, share in owners(caller, seen | {key}).items():
                    result[name] += share * entry[2] / weight
        shares[key] = result
        return result

    by_module: dict[str, float] = defaultdict(float)
    for key, entry in stats.items():
        for name, share in owners(key, frozenset()).items():
            by_module[name] += entry[2] * share

    keccak = find("crypto.py", "keccak256")
    keccak_calls: dict[str, float] = {}
    inner_nodes = 0
    if keccak is not None:
        for caller, entry in sorted(stats[keccak][4].items(), key=lambda kv: -kv[1][1]):
            keccak_calls[_name(caller)] = round(entry[1] / steps, 2)
            if _name(caller) == "tree.descend":
                inner_nodes += entry[1]

    def table(order: int) -> list[dict[str, Any]]:
        ranked = sorted(stats.items(), key=lambda kv: -kv[1][order])[:10]
        return [
            {
                "function": _name(key),
                "share": round(entry[order] / total, 3),
                "calls_per_step": round(entry[1] / steps, 2),
            }
            for key, entry in ranked
        ]

    codec = sum(
        entry[1]
        for key, entry in stats.items()
        if key[0].endswith("records.py") and key[2].startswith(("encode_", "decode_"))
    )
    return {
        "profiled_run": "with recovery, memory store, commits included",
        "profiled_us_per_step": round(total / steps * 1e6, 1),
        "phases_of_apply_step_plus_commit": {
            k: round(v / stf_total, 3) for k, v in sorted(phases.items(), key=lambda kv: -kv[1])
        },
        "own_time_by_module": {
            k: round(v / total, 3) for k, v in sorted(by_module.items(), key=lambda kv: -kv[1])
        },
        "keccak256_calls_per_step_by_caller": keccak_calls,
        "commit_inner_nodes_hashed_per_batch": round(inner_nodes / batches),
        "record_codec_calls_per_step": round(codec / steps, 1),
        "state_get_calls_per_step": round(
            sum(stats[k][1] for k in [find("step.py", "get"), find("state.py", "get")] if k)
            / steps,
            1,
        ),
        "top10_cumulative": table(3),
        "top10_own_time": table(2),
    }


# Main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10_000, help="timed steps")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1_000, help="steps per batch (commit)")
    parser.add_argument("--makers", type=int, default=8)
    parser.add_argument("--takers", type=int, default=48)
    parser.add_argument("--oracle-every", type=int, default=50, help="steps between prices")
    parser.add_argument("--leveldb", action="store_true", help="also replay over LevelDB")
    parser.add_argument("--repeat", type=int, default=3, help="replays each way (best counts)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    args = parser.parse_args()

    flow = FlowGenerator(
        args.seed, args.steps, args.batch, args.makers, args.takers, args.oracle_every
    ).generate()
    recovering, recovered, rates = best_runs(flow, memory_store, args.repeat)
    emit("stf", main_figures(args, flow, recovering, recovered, rates))
    emit("stf_step_types", step_type_figures(flow, recovering, recovered))
    del recovering, recovered
    if not args.no_profile:
        profiler = cProfile.Profile()
        replay(flow, MemoryNodeStore(), recover=True, profiler=profiler)
        emit("stf_profile", profile_figures(profiler, len(flow.reasons), len(flow.batches)))
    if args.leveldb:
        recovering, recovered, rates = best_runs(flow, leveldb_store, args.repeat)
        emit(
            "stf_leveldb",
            {
                "store": "leveldb",
                "steps": len(flow.reasons),
                "with_recovery": throughput(recovering),
                "without_recovery": throughput(recovered),
                "steps_per_s_incl_commit_every_replay": rates,
                **commit_figures(recovered),
            },
        )


if __name__ == "__main__":
    main()
