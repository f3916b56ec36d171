"""
``ratchet watch`` against real daemons on a real anvil with the real contracts: it
verifies honest batches without ever challenging them, and when a (test-only) rogue
sequencer posts a wrong root it opens a game inside the window, plays it by its own
replay down to the one-step proof, wins, and claims the bond and its share of the stake;
the sequencer then reposts the batch honestly, which the watcher verifies.
"""

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.config import load_config
from node.l1.deploy import bind
from node.protocol.transactions import Cancel, Message, OraclePrice, Order, Transfer
from tests.integration.rollup_env import (
    SEQUENCER_KEY,
    TRADERS,
    WATCHER_KEYS,
    Rollup,
    Watchtower,
    deployed_rollup,
    deposit,
    signed,
    stake,
    wait_for,
    watcher_config,
)
from tests.integration.sequencer_env import Daemon, port
from tests.stf_env import ORACLE_KEY


@pytest.fixture
def rollup(tmp_path: Path) -> Iterator[Rollup]:
    with deployed_rollup(tmp_path) as deployed:
        yield deployed


def sequencer(rollup: Rollup, rogue: bool = False) -> Daemon:
    module = ("tests.integration.rogue_sequencer",) if rogue else ("node.cli", "sequencer")
    rpc_port = int(load_config(rollup.config, {})["rpc"]["port"])
    return Daemon(rollup.config, SEQUENCER_KEY, rpc_port, module=module)


def trade(rollup: Rollup, daemon: Daemon, transfers: int) -> list[dict[str, Any]]:
    """Both traders deposit; trader 1 sends ``transfers`` transfers to trader 2."""
    for key in TRADERS:
        deposit(rollup, key, 5_000_000)
    wait_for(lambda: daemon.call("ratchet_getStatus")["inboxConsumed"] == 2)
    return [
        daemon.call("ratchet_sendTransaction", signed(rollup, TRADERS[0], Transfer(1, 2, 1_000, n)))
        for n in range(1, transfers + 1)
    ]


def test_honest_batches_are_verified_and_never_challenged(rollup: Rollup, tmp_path: Path) -> None:
    stake(rollup)
    metrics_port = port()
    config = watcher_config(rollup, tmp_path / "watcher", metrics_port)
    with sequencer(rollup) as daemon, Watchtower(config, WATCHER_KEYS[0], metrics_port) as watch:
        sent = trade(rollup, daemon, 6)
        last = sent[-1]["txHash"]
        wait_for(lambda: daemon.call("ratchet_getReceipt", last)["finality"] == "posted")
        posted = daemon.call("ratchet_getStatus")["posted"]
        wait_for(lambda: watch.metric("ratchet_watch_batches_verified_total") >= posted)
        assert watch.metric("ratchet_watch_wrong_batches_total") == 0
        game = bind(rollup.w3, "DisputeGame", rollup.deployment.dispute_game)
        assert game.functions.gameCount().call() == 0
        assert watch.stop() == 0


def test_a_wrong_root_is_challenged_won_and_paid(rollup: Rollup, tmp_path: Path) -> None:
    stake(rollup)
    w3 = rollup.w3
    game = bind(w3, "DisputeGame", rollup.deployment.dispute_game)
    rollup_contract = bind(w3, "Rollup", rollup.deployment.rollup)
    metrics_port = port()
    config = watcher_config(rollup, tmp_path / "watcher", metrics_port)
    with (
        sequencer(rollup, rogue=True) as daemon,
        Watchtower(config, WATCHER_KEYS[0], metrics_port) as watch,
    ):
        before = w3.eth.get_balance(watch.address)
        sent = trade(rollup, daemon, 3)
        wrong_batch = sent[0]["batch"]
        wait_for(lambda: game.functions.gameCount().call() == 1, timeout=60)
        opened = game.functions.game(0).call()
        assert (opened[0], opened[1]) == (watch.address, wrong_batch)
        wait_for(lambda: game.functions.game(0).call()[2] != 1, timeout=90)
        assert game.functions.game(0).call()[2] == 3  # ChallengerWon
        # the watcher claims the bond back and half the stake
        wait_for(lambda: rollup_contract.functions.credit(watch.address).call() == 0)
        wait_for(lambda: game.functions.credit(watch.address).call() == 0)
        claims = rollup_contract.events.CreditClaimed().get_logs(from_block=0)
        stake_share = rollup_contract.functions.sequencerBond().call() // 2
        assert [(c["args"]["account"], c["args"]["amount"]) for c in claims] == [
            (watch.address, stake_share)
        ]
        assert w3.eth.get_balance(watch.address) > before  # its gas is far below its reward
        # the sequencer recovers and reposts honestly (once restaked); the watcher agrees
        stake(rollup)
        wait_for(lambda: rollup_contract.functions.nextIndex().call() > wrong_batch, timeout=60)
        wait_for(lambda: watch.metric("ratchet_watch_batches_verified_total") >= wrong_batch + 2)
        assert watch.metric("ratchet_watch_wrong_batches_total") == 1
        assert watch.metric("ratchet_watch_games_won_total") == 1
        assert game.functions.gameCount().call() == 1
        assert watch.stop() == 0


def test_two_watchers_on_one_bad_batch_both_end_correctly(rollup: Rollup, tmp_path: Path) -> None:
    """Each opens its own game; the first to prove rejects the batch; the other sees its
    game's batch gone, closes the game and gets its bond back. Both claim what they won."""
    stake(rollup)
    game = bind(rollup.w3, "DisputeGame", rollup.deployment.dispute_game)
    ports = [port(), port()]
    configs = [watcher_config(rollup, tmp_path / f"watcher{i}", ports[i]) for i in range(2)]
    with (
        sequencer(rollup, rogue=True) as daemon,
        Watchtower(configs[0], WATCHER_KEYS[0], ports[0]) as first,
        Watchtower(configs[1], WATCHER_KEYS[1], ports[1]) as second,
    ):
        trade(rollup, daemon, 3)
        wait_for(lambda: game.functions.gameCount().call() == 2, timeout=60)
        games = [game.functions.game(i).call() for i in range(2)]
        assert {g[0] for g in games} == {first.address, second.address}

        def ended() -> bool:
            return all(game.functions.game(i).call()[2] != 1 for i in range(2))

        wait_for(ended, timeout=90)
        outcomes = sorted(game.functions.game(i).call()[2] for i in range(2))
        assert outcomes == [3, 4]  # one ChallengerWon, one Abandoned (bond refunded)
        for address in (first.address, second.address):

            def claimed(address: str = address) -> bool:
                return bool(game.functions.credit(address).call() == 0)

            wait_for(claimed)
        moves = game.events.Responded().get_logs(from_block=0)
        assert len({m["transactionHash"] for m in moves}) == len(moves)
        assert first.stop() == 0 and second.stop() == 0


def test_a_watcher_killed_mid_game_resumes_and_wins(rollup: Rollup, tmp_path: Path) -> None:
    stake(rollup)
    game = bind(rollup.w3, "DisputeGame", rollup.deployment.dispute_game)
    metrics_port = port()
    config = watcher_config(rollup, tmp_path / "watcher", metrics_port)
    with sequencer(rollup, rogue=True) as daemon:
        watch = Watchtower(config, WATCHER_KEYS[0], metrics_port)
        with watch:
            trade(rollup, daemon, 3)
            wait_for(lambda: game.functions.gameCount().call() == 1, timeout=60)
            watch.kill()  # the game is open: the defender has the move
        assert game.functions.game(0).call()[2] == 1
        with Watchtower(config, WATCHER_KEYS[0], metrics_port) as restarted:
            wait_for(lambda: game.functions.game(0).call()[2] != 1, timeout=90)
            assert game.functions.game(0).call()[2] == 3  # ChallengerWon
            assert restarted.stop() == 0


def test_a_long_random_honest_run_is_never_challenged(rollup: Rollup, tmp_path: Path) -> None:
    """Four traders send a few hundred random orders (makers resting on both sides,
    takers crossing, some cancels) and transfers through an honest sequencer, over
    many batches: the watcher verifies every posted batch and never opens a game."""
    rng = random.Random()
    seed = rng.randrange(1 << 32)
    rng.seed(seed)
    stake(rollup)
    metrics_port = port()
    config = watcher_config(rollup, tmp_path / "watcher", metrics_port)
    keys = [*TRADERS, *WATCHER_KEYS[1:]]
    with sequencer(rollup) as daemon, Watchtower(config, WATCHER_KEYS[0], metrics_port) as watch:
        for key in keys:
            deposit(rollup, key, 50_000_000_000)
        wait_for(lambda: daemon.call("ratchet_getStatus")["inboxConsumed"] == len(keys))
        # an oracle price may not be ahead of the batch it lands in: use the sequencer's clock
        status = daemon.call("ratchet_getStatus")
        price = OraclePrice(0, 600_000, status["l1Time"] - 60)
        last = daemon.call("ratchet_sendTransaction", signed(rollup, ORACLE_KEY, price))
        nonces = dict.fromkeys(range(1, len(keys) + 1), 0)
        resting: dict[int, list[str]] = {account: [] for account in nonces}
        accepted = 0
        for _ in range(300):
            account = rng.randrange(1, len(keys) + 1)
            nonces[account] += 1
            message = random_message(rng, account, nonces[account], resting, list(nonces))
            try:
                receipt = daemon.call(
                    "ratchet_sendTransaction", signed(rollup, keys[account - 1], message)
                )
            except RuntimeError:
                continue  # e.g. a cancel of an order filled meanwhile: refused, fine
            accepted += 1
            last = receipt
            if receipt["outcome"].get("resting") not in (None, "0"):
                resting[account].append(receipt["outcome"]["orderHash"])
        assert accepted > 200, f"seed {seed}"
        wait_for(
            lambda: daemon.call("ratchet_getReceipt", last["txHash"])["finality"] == "posted",
            timeout=60,
        )
        posted = daemon.call("ratchet_getStatus")["posted"]
        assert posted >= 3
        wait_for(lambda: watch.metric("ratchet_watch_batches_verified_total") >= posted)
        assert watch.metric("ratchet_watch_wrong_batches_total") == 0, f"seed {seed}"
        game = bind(rollup.w3, "DisputeGame", rollup.deployment.dispute_game)
        assert game.functions.gameCount().call() == 0, f"seed {seed}"
        assert watch.stop() == 0


def random_message(
    rng: random.Random, account: int, nonce: int, resting: dict[int, list[str]], accounts: list[int]
) -> Message:
    """A maker quote near $60,000, a taker crossing, a cancel of a resting order of its
    own, or a transfer."""
    roll = rng.random()
    if roll < 0.45:
        is_buy = rng.random() < 0.5
        tick = 60_000 + (-1 if is_buy else 1) * rng.randrange(1, 20)
        size = 1_000 * rng.randrange(1, 5)
        return Order(account, 0, is_buy, tick * 10, size, 0, False, 0, nonce)
    if roll < 0.8:
        is_buy = rng.random() < 0.5
        tick = 60_000 + (20 if is_buy else -20)
        size = 1_000 * rng.randrange(1, 8)
        return Order(account, 0, is_buy, tick * 10, size, 1, False, 0, nonce)
    if roll < 0.9 and resting[account]:
        order_hash = resting[account].pop(rng.randrange(len(resting[account])))
        return Cancel(account, bytes.fromhex(order_hash[2:]), nonce)
    to = rng.choice([a for a in accounts if a != account])
    return Transfer(account, to, rng.randrange(1, 1_000_000), nonce)
