"""
The differential fuzz run behind ``make fuzz``: freshly generated steps, executed by the
Python STF and by the Solidity ``OneStepExecutor`` (on an anvil of its own), must give
identical post-roots and reasons.

    python -m tests.differential.fuzz --steps 100000 [--seed N] [--episode 20000]

The steps come in episodes (programs from genesis) of ``--episode`` steps: episode ``e``
is the program of seed ``N + e`` (long programs grow the Python state in memory). Prints
progress to stderr and a JSON summary to stdout: steps, mismatches (each with what
reproduces it: ``tests.differential.fresh.replay_step(seed, step)``, or
``RATCHET_FUZZ_SEED=seed RATCHET_FUZZ_STEPS=step+1 pytest tests/differential/test_fresh.py``),
the reasons histogram, steps per second and the most gas one ``execute`` took among the
sampled heaviest steps. Exits 1 on any mismatch or if a required feature was never reached.
"""

import argparse
import json
import sys
import time

from web3 import Web3

from node.l1.anvil import Anvil
from node.l1.executor import deploy_executor
from tests.differential.fresh import ExecutorClient, RunReport, new_seed, run_differential


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000, help="steps in all")
    parser.add_argument("--seed", type=int, default=None, help="first program's seed")
    parser.add_argument("--episode", type=int, default=20_000, help="steps per program")
    parser.add_argument("--chunk", type=int, default=200, help="steps per JSON-RPC batch")
    parser.add_argument(
        "--gas-samples", type=int, default=2, help="steps per batch whose gas is measured"
    )
    args = parser.parse_args(argv)
    seed = new_seed() if args.seed is None else args.seed
    print(f"fuzz: seed {seed}, {args.steps} steps", file=sys.stderr, flush=True)
    report = RunReport(seed)
    start = time.monotonic()
    with Anvil() as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.url))
        client = ExecutorClient(anvil.url, deploy_executor(w3, w3.eth.accounts[0]))
        episode = 0
        while report.steps < args.steps and not report.mismatches:
            count = min(args.episode, args.steps - report.steps)
            run_differential(client, seed + episode, count, args.chunk, args.gas_samples, report)
            episode += 1
            elapsed = time.monotonic() - start
            print(
                f"fuzz: {report.steps} steps, {len(report.mismatches)} mismatches, "
                f"{report.steps / elapsed:.0f} steps/s",
                file=sys.stderr,
                flush=True,
            )
    summary = report.summary()
    summary["episodes"] = episode
    summary["seeds"] = [seed, seed + episode - 1]
    print(json.dumps(summary, indent=2))
    return 1 if report.mismatches or summary["missingFeatures"] else 0


if __name__ == "__main__":
    sys.exit(main())
