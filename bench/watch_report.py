"""
Watchtower figures (JSON on stdout): how fast a watcher re-executes compared with the
sequencer sequencing the same flow, and the L1 gas of a whole dispute game by batch size.

- **Re-execution rate**: the realistic flow of bench/stf_flow.py (makers, takers, cancels,
  oracle prices, transfers, withdrawals) sequenced by the sequencer's engine on a real
  LevelDB (admission, receipts, synced log), then the resulting batches re-executed by
  the watcher's :class:`~challenger.verifier.Verifier` on its own LevelDB: steps/s of
  each, on this machine.
- **A whole game by batch size**: a batch of ``n`` steps with a wrong root at its last
  step, played on anvil with the real one-step executor from the challenge to the
  one-step proof (bench/gas_report.py ``play``): moves and total gas.

    python -m bench.watch_report [--flow-steps N] [--game-sizes 1000,4000,8000]
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from web3 import Web3

from bench.common import emit
from bench.gas_report import play
from bench.stf_flow import FlowGenerator
from bench.worst_case import heaviest_order
from challenger.verifier import Verifier
from node.l1.anvil import Anvil
from node.l1.executor import deploy_executor
from node.protocol.batch import Batch
from node.protocol.step import Step, StepKind
from node.sequencer.engine import AdmissionError, Sequencer
from node.storage import LevelDB
from tests.stf_env import DOMAIN, GENESIS

SEQUENCER_KEY = bytes.fromhex("77" * 32)


def rates(steps: int) -> dict[str, Any]:
    """Sequence the flow with the engine, then re-execute its batches with the verifier."""
    flow = FlowGenerator(
        seed=11, steps=steps, batch_size=500, makers=8, takers=48, oracle_every=50
    ).generate()
    batches = [flow.setup, *flow.batches]
    with tempfile.TemporaryDirectory() as tmp:
        clock = [batches[0].timestamp]

        async def sequence() -> tuple[int, float, list[tuple[Batch, list[Step]]]]:
            count = 0
            with LevelDB(Path(tmp) / "sequencer") as db:
                engine = Sequencer(
                    db, GENESIS, DOMAIN, SEQUENCER_KEY, max_batch_transactions=1 << 16,
                    clock=lambda: clock[0],
                )  # fmt: skip
                started = time.perf_counter()
                for batch in batches:
                    clock[0] = batch.timestamp
                    for step in batch.steps:
                        try:
                            if step.kind == StepKind.L1_MESSAGE:
                                await engine.submit_l1_message(step.data)
                            else:
                                await engine.submit(step.data)
                            count += 1
                        except AdmissionError:
                            pass  # refused at admission, as the sequencer would
                    await engine.close_batch()
                elapsed = time.perf_counter() - started
                closed = [engine.trace(i) for i in range(engine.closed)]
            return count, elapsed, closed

        count, sequence_s, closed = asyncio.run(sequence())
        with LevelDB(Path(tmp) / "watcher") as db:
            verifier = Verifier(db, GENESIS, DOMAIN)
            started = time.perf_counter()
            wrong = 0
            for serial, (batch, steps_of) in enumerate(closed, start=1):
                messages = [s.data for s in steps_of if s.kind == StepKind.L1_MESSAGE]
                wrong += verifier.verify(batch, serial, messages).wrong
            verify_s = time.perf_counter() - started
    return {
        "steps": count,
        "batches": len(closed),
        "sequencer_steps_per_s": round(count / sequence_s),
        "watcher_steps_per_s": round(count / verify_s),
        "watcher_vs_sequencer": round(sequence_s / verify_s, 2),
        "wrong_batches": wrong,
    }


def games(sizes: list[int]) -> dict[str, Any]:
    """A whole game on a batch of each size, the wrong root at its last step."""
    out: dict[str, Any] = {}
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        executor = deploy_executor(w3, w3.eth.accounts[0])
        for size in sizes:
            moves: dict[str, list[int]] = {}
            play(w3, executor, heaviest_order, f"{size} steps", moves, fillers=size - 1)
            out[str(size)] = {
                "bisections": len(moves.get("bisect", [])),
                "moves": sum(len(v) for k, v in moves.items() if not k.startswith("postBatch")),
                "game_gas": sum(sum(v) for k, v in moves.items() if not k.startswith("postBatch")),
                "post_gas": sum(sum(v) for k, v in moves.items() if k.startswith("postBatch")),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flow-steps", type=int, default=5_000)
    parser.add_argument("--game-sizes", default="1000,4000,8000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.game_sizes.split(",") if s]
    emit("watch_report", {"re_execution": rates(args.flow_steps), "games": games(sizes)})


if __name__ == "__main__":
    main()
