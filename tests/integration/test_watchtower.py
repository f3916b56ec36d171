"""
``ratchet watch`` against real daemons on a real anvil with the real contracts: it
verifies honest batches without ever challenging them, and when a (test-only) rogue
sequencer posts a wrong root it opens a game inside the window, plays it by its own
replay down to the one-step proof, wins, and claims the bond and its share of the stake;
the sequencer then reposts the batch honestly, which the watcher verifies.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.config import load_config
from node.l1.deploy import bind
from node.protocol.transactions import Transfer
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
