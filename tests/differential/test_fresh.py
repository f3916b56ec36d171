"""
The Solidity one-step executor agrees with the Python STF on freshly generated steps.

Every run draws a new seed (printed; ``RATCHET_FUZZ_SEED=<seed>`` replays it) and
generates a program of ``RATCHET_FUZZ_STEPS`` steps (2,000 by default) with
tests/differential/fresh.py: accounts depositing, oracle prices moving, makers resting
orders at many ticks, takers sweeping up to MAX_MATCHES makers, cancels, transfers, withdrawals,
liquidations of accounts pushed underwater, funding over hours, forced transactions, and
hostile steps of every kind (random and mutated bytes, bad signatures, wrong signers,
replayed and stale nonces, unknown accounts and markets, bad prices and sizes, overfills,
post-only orders that would cross, expired orders and makers, malformed L1 messages).
Each step is proved by ``prove_step`` from the exact current root and run by
``OneStepExecutor.execute`` with that witness: the post-root and reason must be the
Python STF's, every time. A mismatch is reported with the seed, step number, kind,
reasons on both sides and the step's bytes.

The same programs are first checked on the Python side alone: each step replays on
``WitnessView`` (the executor's memory model) to the same post-root.

``make fuzz`` runs the same for 100,000 steps (tests/differential/fuzz.py).
"""

import os
from dataclasses import replace

import pytest
from web3 import Web3

from node.l1.anvil import Anvil
from node.l1.executor import deploy_executor
from node.protocol.step import Reason
from tests.differential.fresh import (
    REQUIRED_FEATURES,
    Coverage,
    ExecutorClient,
    compare,
    fresh_steps,
    new_seed,
    run_differential,
)

SEED = int(os.environ.get("RATCHET_FUZZ_SEED") or new_seed())
"""This run's seed: a new one per run unless ``RATCHET_FUZZ_SEED`` is set."""

STEPS = int(os.environ.get("RATCHET_FUZZ_STEPS") or 2_000)
"""Steps per run (``RATCHET_FUZZ_STEPS`` scales it)."""

COVERAGE_STEPS = 2_000
"""A run at least this long must reach every required feature: the generator's tour
targets each once every 500 to 700 steps, whatever the seed, so it gets three chances."""

REPLAY = f"RATCHET_FUZZ_SEED={SEED} RATCHET_FUZZ_STEPS={STEPS}"


@pytest.fixture(scope="module")
def client(anvil: Anvil, w3: Web3) -> ExecutorClient:
    """A ``OneStepExecutor`` (with its step contracts) on the session anvil."""
    return ExecutorClient(anvil.url, deploy_executor(w3, w3.eth.accounts[0]))


def check_coverage(coverage: Coverage) -> None:
    """The run reached every required feature, and most of its steps changed the state."""
    print(f"seed {SEED}: {coverage.steps} steps, {coverage.changed} changed the state")
    print(coverage.histogram())
    if coverage.steps >= COVERAGE_STEPS:
        missing = coverage.missing(REQUIRED_FEATURES)
        assert not missing, f"seed {SEED}: the run never reached {sorted(missing)} ({REPLAY})"
    assert coverage.changed * 2 > coverage.steps, f"seed {SEED}: most steps changed nothing"


def test_fresh_steps_replay_on_their_witness_alone() -> None:
    """
    Python side, no executor needed: every generated step, proved from the current
    root, replays on a ``WitnessView`` (a root and the decoded witness, nothing else)
    with the same outcome to the same post-root, consuming the whole witness (the
    generator asserts it); consecutive steps chain their roots; and the run covers
    every required valid and hostile feature.
    """
    print(f"seed {SEED} ({REPLAY})")
    coverage = Coverage()
    root = None
    for step in fresh_steps(SEED, STEPS, check_witness=True):
        assert root is None or step.pre_root == root, f"seed {SEED} step {step.index}: a gap"
        assert (step.post_root == step.pre_root) == (step.outcome.writes == 0), step.index
        root = step.post_root
        coverage.add(step)
    assert coverage.steps == STEPS
    check_coverage(coverage)


def test_executor_agrees_on_fresh_steps(client: ExecutorClient) -> None:
    """
    Each of ``STEPS`` fresh steps, run by ``OneStepExecutor.execute`` on anvil with the
    Python-built witness, returns exactly the Python STF's post-root and reason.
    """
    print(f"seed {SEED} ({REPLAY})")
    report = run_differential(client, SEED, STEPS)
    print(report.summary())
    assert report.steps == STEPS
    assert not report.mismatches, (
        f"seed {SEED}: {len(report.mismatches)} step(s) disagree (replay: {REPLAY}):\n"
        + "\n".join(report.mismatches[:10])
    )
    check_coverage(report.coverage)


def test_a_disagreement_is_reported_with_what_reproduces_it(client: ExecutorClient) -> None:
    """
    The comparison is not vacuous: applied steps whose bytes are cut short (a malformed
    step to the executor) but whose expected outcome is kept are reported, with the
    seed, step number, kind, both reasons and the data's hex.
    """
    applied = [s for s in fresh_steps(SEED, 200) if s.reason is Reason.OK][-5:]
    broken = [replace(step, data=step.data[:-1]) for step in applied]
    results = client.execute(broken)
    for step, result in zip(broken, results, strict=True):
        assert result.reason == Reason.MALFORMED and result.post_root == step.pre_root
        message = compare(SEED, step, result)
        assert message is not None
        for part in (f"seed {SEED}", f"step {step.index}", step.kind.name, "reason OK",
                     "(MALFORMED)", step.data.hex()):  # fmt: skip
            assert part in message, (part, message)
    results = client.execute(applied)
    assert all(compare(SEED, s, r) is None for s, r in zip(applied, results, strict=True))
