"""
The newcomers' examples (examples/*.py) run as a user runs them, as processes against a
real ``ratchet devnet``: a market maker quotes, a taker trades with it, the maker stops
on Ctrl-C and cancels its quotes, and a withdrawal goes from L2 to L1 end to end.

What the examples print is not what is checked: the book, the open orders and the
positions are read from the sequencer with plain JSON-RPC, and the L1 balance from the
token contract with web3. One devnet (challenge window 10 s) serves the module.
"""

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from node.l1.deploy import bind
from tests.integration.devnet_env import RunningDevnet, running_devnet, wait_until
from tests.integration.sequencer_env import REPO

EXAMPLES = REPO / "examples"
ETH_PERP = 1
MAKER, TAKER, WITHDRAWER = 0, 1, 2
"""Indices into devnet.json's accounts."""


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDevnet]:
    directory = tmp_path_factory.mktemp("examples") / "devnet"
    with running_devnet(directory, challenge_window=10) as net:
        yield net


def command(devnet: RunningDevnet, name: str, *args: str) -> list[str]:
    devnet_json = str(devnet.directory / "devnet.json")
    return [sys.executable, str(EXAMPLES / name), "--devnet", devnet_json, *args]


def run(devnet: RunningDevnet, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(devnet, name, *args),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def address(devnet: RunningDevnet, index: int) -> str:
    return str(devnet.info["accounts"][index]["address"])


def position(devnet: RunningDevnet, owner: str, market: int) -> int:
    """The signed size (wire units) of ``owner``'s position in ``market``."""
    account = devnet.call("ratchet_getAccount", owner)
    sizes = [int(p["size"]) for p in account["positions"] if int(p["market"]) == market]
    return sizes[0] if sizes else 0


def two_sided(devnet: RunningDevnet, owner: str) -> Any:
    """The maker's open orders once it quotes both sides of ETH-PERP (and the book shows
    them), else None."""
    orders = devnet.call("ratchet_getOpenOrders", owner)
    sides = {o["isBuy"] for o in orders if o["market"] == ETH_PERP}
    book = devnet.call("ratchet_getOrderBook", ETH_PERP, 5)
    return orders if sides == {True, False} and book["bids"] and book["asks"] else None


def test_market_maker_and_taker(devnet: RunningDevnet, tmp_path: Path) -> None:
    maker, taker = address(devnet, MAKER), address(devnet, TAKER)
    log = tmp_path / "market_maker.out"
    with open(log, "w") as out:
        process = subprocess.Popen(
            command(devnet, "market_maker.py", "--account", str(MAKER)),
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: two_sided(devnet, maker), timeout=90, what="the maker's quotes")

        done = run(
            devnet,
            "taker.py",
            *("--account", str(TAKER), "--market", "ETH-PERP", "--size", "0.1"),
            *("--orders", "3", "--side", "buy"),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "signature checked by the SDK" in done.stdout

        bought = position(devnet, taker, ETH_PERP)
        assert 0 < bought <= 300_000  # at most 3 x 0.1 ETH (6 size decimals)
        assert position(devnet, maker, ETH_PERP) == -bought  # it traded only with the maker

        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    output = log.read_text()
    assert "FILL ETH-PERP: sold" in output  # the fills subscription saw the taker's orders
    assert devnet.call("ratchet_getOpenOrders", maker) == []
    for market in devnet.call("ratchet_getMarkets"):
        book = devnet.call("ratchet_getOrderBook", market["id"], 5)
        assert book["bids"] == [] and book["asks"] == [], (market["symbol"], book)


def test_taker_without_a_maker_fails_clearly(devnet: RunningDevnet) -> None:
    done = run(devnet, "taker.py", "--account", str(TAKER), "--market", "SOL-PERP", "--orders", "1")
    assert done.returncode == 1
    assert "no maker was quoting SOL-PERP" in done.stderr
    assert position(devnet, address(devnet, TAKER), 2) == 0


def test_withdraw_to_l1(devnet: RunningDevnet) -> None:
    w3 = Web3(Web3.HTTPProvider(devnet.info["l1_rpc"]))
    token = bind(w3, "TestToken", devnet.info["contracts"]["collateral"])
    assert token.functions.decimals().call() == 6
    recipient = Account.create().address  # a fresh address: only the claim pays it
    before = token.functions.balanceOf(recipient).call()

    done = run(
        devnet,
        "withdraw.py",
        *("--account", str(WITHDRAWER), "--amount", "123.456789", "--recipient", recipient),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert token.functions.balanceOf(recipient).call() - before == 123_456_789
