"""
The traders' ``ratchet`` commands as a user runs them: separate processes against a
real anvil, the real contracts and a ``ratchet sequencer`` process. deposit, order,
positions, cancel (also by a client order id given in an earlier process), withdraw
and claim; human and ``--json`` output; exit codes 0 (done), 1 (refused, failed) and
2 (usage), and that a refused command sequenced nothing.

One rollup serves the module; the tests run in file order and build on one another.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from node.l1.deploy import bind
from tests.integration.rollup_env import TRADERS, Rollup, wait_for
from tests.integration.sequencer_env import REPO, Daemon
from tests.integration.test_sdk import mint, running_rollup

MAKER, TAKER = TRADERS


@dataclass
class Env:
    rollup: Rollup
    daemon: Daemon
    home: Path
    """RATCHET_HOME of the commands (where client order ids are kept)."""

    def ratchet(self, key: bytes | None, *args: str) -> subprocess.CompletedProcess[str]:
        """``ratchet ARGS --rpc ... --l1-rpc ...`` as a process, with ``key`` in the
        environment."""
        env = {k: v for k, v in os.environ.items() if k != "RATCHET_TRADER_KEY"}
        env["RATCHET_HOME"] = str(self.home)
        if key is not None:
            env["RATCHET_TRADER_KEY"] = "0x" + key.hex()
        urls = ["--rpc", self.daemon.url, "--l1-rpc", self.rollup.anvil.url]
        return subprocess.run(
            [sys.executable, "-m", "node.cli", *args, *urls],
            cwd=REPO,
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=180,
        )

    def ok(self, key: bytes | None, *args: str) -> str:
        done = self.ratchet(key, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def ok_json(self, key: bytes | None, *args: str) -> Any:
        return json.loads(self.ok(key, *args, "--json"))

    def sequence(self) -> int:
        return int(self.daemon.call("ratchet_getStatus")["sequence"])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    directory = tmp_path_factory.mktemp("cli")
    with running_rollup(directory) as (rollup, daemon):
        for key in TRADERS:
            mint(rollup, key, 5_000_000_000)
        yield Env(rollup, daemon, directory / "home")


def test_deposit_registers_and_credits(env: Env) -> None:
    first = env.ok_json(MAKER, "deposit", "5000")
    assert (first["account"], first["amount"], first["credited"]) == (1, "5000", True)
    assert first["owner"] == Account.from_key(MAKER).address
    shown = env.ok(TAKER, "deposit", "2500.5")
    assert "deposited 2500.5 to account 2" in shown and "credited on L2" in shown
    assert env.daemon.call("ratchet_getAccount", 2)["collateral"] == "2500500000"


def test_deposit_refusals(env: Env) -> None:
    too_precise = env.ratchet(MAKER, "deposit", "1.0000001")
    assert too_precise.returncode == 2
    assert "more than the 6 decimal places allowed" in too_precise.stderr
    broke = env.ratchet(MAKER, "deposit", "1000000")
    assert broke.returncode == 1
    assert "holds 0 collateral tokens, not the 1000000 to deposit" in broke.stderr


def test_orders_trade_and_show_in_positions(env: Env) -> None:
    ask = env.ok(MAKER, "order", "BTC-PERP", "sell", "0.01", "60000", "--client-id", "a1")
    assert ask.startswith("order 0x") and "(a1)" in ask
    assert "sell 0.01 BTC-PERP @ 60000 GTC: filled 0, resting 0.01" in ask
    bid = env.ok_json(TAKER, "order", "btc-perp", "buy", "0.01", "60001", "--tif", "ioc")
    assert (bid["filled"], bid["averagePrice"], bid["resting"], bid["end"]) == (
        "0.01",
        "60000",
        "0",
        "FILLED",
    )
    assert bid["fills"][0]["price"] == "60000" and bid["finality"] == "soft"
    shown = env.ok(MAKER, "positions")
    assert "account 1 (0x" in shown
    assert "BTC-PERP   short 0.01 (mark 60000, notional 600)" in shown
    assert "0 open order(s)" in shown
    taker = env.ok_json(None, "positions", "--account", "2")
    assert taker["positions"] == [
        {"market": "BTC-PERP", "size": "0.01", "markPrice": "60000", "notional": "600"}
    ]


def test_refused_orders_exit_non_zero_and_sequence_nothing(env: Env) -> None:
    sequence = env.sequence()
    off_tick = env.ratchet(MAKER, "order", "BTC-PERP", "buy", "0.01", "60000.5")
    assert off_tick.returncode == 2
    assert (
        "BTC-PERP: price 60000.5 is not a multiple of the tick 1; nearest valid: 60000 or 60001"
        in off_tick.stderr
    )
    off_lot = env.ratchet(MAKER, "order", "BTC-PERP", "buy", "0.000015", "60000", "--json")
    assert off_lot.returncode == 2
    assert json.loads(off_lot.stdout)["error"]["kind"] == "usage"
    unknown = env.ratchet(MAKER, "order", "DOGE-PERP", "buy", "1", "1")
    assert unknown.returncode == 2 and "no market 'DOGE-PERP'" in unknown.stderr
    rejected = env.ratchet(
        MAKER, "order", "BTC-PERP", "sell", "0.01", "60000", "--reduce-only", "--json"
    )
    assert rejected.returncode == 1
    error = json.loads(rejected.stdout)["error"]
    assert (error["kind"], error["reason"]) == ("rejected", "INVALID_TIME_IN_FORCE")
    assert "rejected: INVALID_TIME_IN_FORCE" in rejected.stderr
    no_key = env.ratchet(None, "order", "BTC-PERP", "buy", "0.01", "60000")
    assert no_key.returncode == 2 and "no key: set RATCHET_TRADER_KEY" in no_key.stderr
    assert env.sequence() == sequence


def test_cancel_by_client_id_hash_and_all(env: Env) -> None:
    """A client order id given when placing works in a later process; a cancel of an
    order that is not resting is refused; --all empties the book of the account."""
    placed = env.ok_json(MAKER, "order", "BTC-PERP", "sell", "0.001", "61000", "--client-id", "r1")
    taken = env.ratchet(MAKER, "order", "BTC-PERP", "sell", "0.001", "61001", "--client-id", "r1")
    assert taken.returncode == 2 and "client order id 'r1' is taken" in taken.stderr
    cancelled = env.ok_json(MAKER, "cancel", "--client-id", "r1")
    assert cancelled["cancelled"] == [placed["orderHash"]]
    again = env.ratchet(MAKER, "cancel", placed["orderHash"])
    assert again.returncode == 1 and "rejected: ORDER_NOT_FOUND" in again.stderr
    for price in ("62000", "63000"):
        env.ok(MAKER, "order", "BTC-PERP", "sell", "0.001", price)
    everything = env.ok(MAKER, "cancel", "--all", "--market", "BTC-PERP")
    assert "2 order(s) cancelled" in everything
    assert env.daemon.call("ratchet_getAccount", 1)["openOrders"] == []
    assert env.ratchet(MAKER, "cancel").returncode == 2


def test_withdraw_then_claim_once_final(env: Env) -> None:
    recipient = Account.create().address
    withdrawal = env.ok_json(TAKER, "withdraw", "12.5", "--recipient", recipient)
    withdrawal_id = str(withdrawal["withdrawalId"])
    assert (withdrawal["amount"], withdrawal["recipient"]) == ("12.5", recipient)
    early = env.ratchet(TAKER, "claim", withdrawal_id)
    assert early.returncode == 1 and "not claimable yet" in early.stderr

    def finality() -> str:
        return str(env.daemon.call("ratchet_getReceipt", withdrawal["txHash"])["finality"])

    wait_for(lambda: finality() == "posted", timeout=60)
    env.rollup.anvil.rpc("evm_increaseTime", 61)
    env.rollup.anvil.rpc("evm_mine")
    claimed = env.ok(MAKER, "claim", withdrawal_id, "--wait", "--timeout", "60")
    assert f"claimed withdrawal {withdrawal_id}: 12.5 to {recipient}" in claimed
    token = bind(env.rollup.w3, "TestToken", env.rollup.deployment.collateral)
    assert token.functions.balanceOf(recipient).call() == 12_500_000
    twice = env.ratchet(MAKER, "claim", withdrawal_id)
    assert twice.returncode == 1 and f"AlreadyClaimed(withdrawalId={withdrawal_id})" in twice.stderr
