"""
``make fuzz-rpc`` in small, in every ``make test``: a seeded ``ratchet sequencer`` (no
L1) gets the hand-picked hostile classics, a few hundred Hypothesis-drawn hostile cases
over HTTP, WebSocket and raw sockets, and small versions of the scenarios (a client that
never reads, thousands of subscriptions, a ping flood, many connections). It must never
crash, answer every JSON-RPC request with a JSON-RPC 2.0 response of a standard or
application code (never -32603, never a 5xx), refuse everything else cleanly, and keep
``ratchet_getStatus`` ``sequence`` and ``root`` unchanged throughout.

Every run draws a new seed (printed on failure; ``RATCHET_FUZZ_RPC_SEED=<seed>`` replays
it). What counts as a finding: tests/fuzz_rpc/run.py.
"""

import json
import os
import random
from pathlib import Path

from tests.fuzz_rpc.run import fuzz_rpc

CASES = 300
"""Generated cases per run (the classics and scenarios come on top)."""


def test_hostile_json_rpc_input_is_refused_cleanly_and_changes_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get("RATCHET_FUZZ_RPC_SEED", random.randrange(1 << 32)))
    summary = fuzz_rpc(tmp_path, CASES, seed, scale=0.05)
    summary.pop("_full_findings")
    shown = json.dumps(summary, indent=1)
    assert summary["findings"] == {}, f"seed {seed}: {shown}"
    assert summary["crashes"] == 0 and summary["state_changes"] == 0
    assert summary["generated"] == CASES, shown
    assert summary["daemon"]["exit_code"] == 0, shown
    # the run reached what it is for: every category, -32700 and -32010 answers, refusals
    # of non-JSON-RPC misuse (405, 413, a WebSocket protocol-error close)
    assert {"not_json", "params", "tx_signed", "ws_frames", "raw_http"} <= summary[
        "by_category"
    ].keys(), shown
    assert {"-32700", "-32600", "-32601", "-32602", "-32010"} <= summary["error_codes"].keys()
    assert {"405", "413"} <= summary["http_statuses"].keys(), shown
    assert "1002" in summary["ws_close_codes"], shown
    assert summary["scenarios"]["foreign_unsubscribe"]["ok"], shown
