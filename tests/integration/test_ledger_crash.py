"""
SIGKILL a process that is sequencing into the ledger, at a random moment, and check
that every entry it acknowledged is still there, byte for byte, and that the log
replays cleanly to its head. Three kills per run on one data directory (the writer
resumes from the head each time).
"""

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from node.sequencer.ledger import Ledger, LogEntry
from node.storage import LevelDB

REPO = Path(__file__).resolve().parents[2]


def kill_after_acks(directory: Path, acks: int) -> dict[int, bytes]:
    """Start the writer, SIGKILL it once it has acknowledged ``acks`` entries; every
    entry it acknowledged before dying, by sequence."""
    acked: dict[int, bytes] = {}
    with subprocess.Popen(
        [sys.executable, "-m", "tests.integration.ledger_writer", str(directory)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            for line in process.stdout:
                _, sequence, encoded = line.split()
                acked[int(sequence)] = bytes.fromhex(encoded)
                if len(acked) >= acks:
                    os.kill(process.pid, signal.SIGKILL)
                    break
            # whatever it printed before dying was acknowledged too
            for line in process.stdout:
                _, sequence, encoded = line.split()
                acked[int(sequence)] = bytes.fromhex(encoded)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return acked


def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random()
    seed = rng.randrange(1 << 32)
    rng.seed(seed)
    directory = tmp_path / "ledger"
    every: dict[int, bytes] = {}
    for _ in range(3):
        acked = kill_after_acks(directory, rng.randrange(50, 2_000))
        assert acked, f"seed {seed}: the writer acknowledged nothing"
        every.update(acked)
        with LevelDB(directory) as db:
            ledger = Ledger(db)
            assert ledger.head > max(every), f"seed {seed}"
            replay = {entry.sequence: entry for entry in ledger.entries()}
            assert sorted(replay) == list(range(ledger.head))
            for sequence, encoded in every.items():
                assert replay[sequence] == LogEntry.decode(encoded), f"seed {seed}: {sequence}"
