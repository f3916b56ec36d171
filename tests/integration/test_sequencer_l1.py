"""
``ratchet sequencer`` against a real anvil with the real contracts: deposits made on L1
are picked up from the inbox and credited, and a trader who deposited can trade.
"""

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from node.config import load_config
from node.l1.deploy import bind
from node.protocol.transactions import Transfer, Withdraw
from tests.integration.rollup_env import (
    SEQUENCER_KEY,
    TRADERS,
    Rollup,
    deployed_rollup,
    deposit,
    signed,
    stake,
    wait_for,
)
from tests.integration.sequencer_env import Daemon


@pytest.fixture
def rollup(tmp_path: Path) -> Iterator[Rollup]:
    with deployed_rollup(tmp_path) as deployed:
        yield deployed


def test_deposits_are_credited_and_batches_posted_and_finalized(rollup: Rollup) -> None:
    """Deposits made on L1 are credited and spendable; the batch holding a transfer is
    posted by the daemon (its post root on L1 is the local one) and, after the window,
    finalized: the receipt's finality goes soft -> posted -> final."""
    stake(rollup)
    with Daemon(
        rollup.config, SEQUENCER_KEY, int(load_config(rollup.config, {})["rpc"]["port"])
    ) as daemon:
        for key in TRADERS:
            deposit(rollup, key, 5_000_000)

        def credited() -> bool:
            status = daemon.call("ratchet_getStatus")
            return bool(status["inboxConsumed"] == 2)

        wait_for(credited)
        first = daemon.call("ratchet_getAccount", Account.from_key(TRADERS[0]).address.lower())
        assert (first["id"], first["collateral"]) == (1, "5000000")
        receipt = daemon.call(
            "ratchet_sendTransaction", signed(rollup, TRADERS[0], Transfer(1, 2, 1_000_000, 1))
        )
        assert (receipt["type"], receipt["finality"]) == ("Transfer", "soft")
        second = daemon.call("ratchet_getAccount", 2)
        assert second["collateral"] == "6000000"
        recipient = list(rollup.w3.eth.accounts)[5]
        withdraw = Withdraw(2, bytes.fromhex(recipient[2:]), 2_500_000, 1)
        withdrawal = daemon.call("ratchet_sendTransaction", signed(rollup, TRADERS[1], withdraw))
        withdrawal_id = withdrawal["outcome"]["withdrawalId"]
        with pytest.raises(RuntimeError, match="-32012"):
            daemon.call("ratchet_getWithdrawalProof", withdrawal_id)

        def finality() -> str:
            return str(daemon.call("ratchet_getReceipt", receipt["txHash"])["finality"])

        # the batch is sealed by the timer, posted, and final once its window has passed
        wait_for(lambda: finality() == "posted")
        rollup_contract = bind(rollup.w3, "Rollup", rollup.deployment.rollup)
        posted = rollup_contract.functions.batch(receipt["batch"]).call()
        local = daemon.call("ratchet_getBatch", receipt["batch"])
        assert "0x" + bytes(posted[0]).hex() == local["postRoot"]
        rollup.anvil.rpc("evm_increaseTime", 61)
        rollup.anvil.rpc("evm_mine")
        wait_for(lambda: finality() == "final")
        assert rollup_contract.functions.isFinal(receipt["batch"]).call()
        # the withdrawal's batch is final too: anyone sends the ready-made claim
        wait_for(
            lambda: daemon.call("ratchet_getReceipt", withdrawal["txHash"])["finality"] == "final"
        )
        claim = daemon.call("ratchet_getWithdrawalProof", withdrawal_id)
        assert claim["l1Call"]["to"] == rollup.deployment.bridge
        token = bind(rollup.w3, "TestToken", rollup.deployment.collateral)
        before = token.functions.balanceOf(recipient).call()
        call = claim["l1Call"]
        sent = rollup.w3.eth.send_transaction(
            {"from": list(rollup.w3.eth.accounts)[6], "to": call["to"], "data": call["data"]}
        )
        assert rollup.w3.eth.wait_for_transaction_receipt(sent)["status"] == 1
        assert token.functions.balanceOf(recipient).call() - before == 2_500_000
        status = daemon.call("ratchet_getStatus")
        assert status["final"] > withdrawal["batch"] and status["posted"] >= status["final"]
        assert status["openDisputes"] == []
        shown = subprocess.run(
            [sys.executable, "-m", "node.cli", "status", "--rpc", daemon.url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"final:   {status['final']} batches" in shown
        assert "open disputes: 0" in shown
        with pytest.raises(RuntimeError, match="NONCE_USED"):
            daemon.call("ratchet_sendTransaction", signed(rollup, TRADERS[0], Transfer(1, 2, 1, 1)))
        metrics = urllib.request.urlopen(daemon.url + "/metrics").read().decode()
        for line in (
            'ratchet_transactions_admitted_total{type="Transfer"} 1.0',
            'ratchet_transactions_admitted_total{type="Withdraw"} 1.0',
            'ratchet_transactions_rejected_total{reason="NONCE_USED"} 1.0',
            "ratchet_receipt_latency_seconds_count 2.0",
            "ratchet_batches_posted_total",
            'ratchet_l1_gas_spent_total{function="postBatch"}',
            'ratchet_l1_gas_spent_total{function="finalize"}',
            "ratchet_batch_transactions_count",
        ):
            assert line in metrics, line
        assert daemon.stop() == 0


def test_a_false_challenge_is_defeated_and_its_bond_collected(rollup: Rollup) -> None:
    """A challenger disputes an honest batch and disagrees with every root the sequencer
    bisects with; the daemon plays its trace down to one step, proves it on the one-step
    executor, wins, and claims the challenger's bond."""
    stake(rollup)
    w3 = rollup.w3
    game = bind(w3, "DisputeGame", rollup.deployment.dispute_game)
    challenger = list(w3.eth.accounts)[3]
    port_number = int(load_config(rollup.config, {})["rpc"]["port"])
    with Daemon(rollup.config, SEQUENCER_KEY, port_number) as daemon:
        for key in TRADERS:
            deposit(rollup, key, 5_000_000)
        wait_for(lambda: daemon.call("ratchet_getStatus")["inboxConsumed"] == 2)
        receipts = [
            daemon.call(
                "ratchet_sendTransaction", signed(rollup, TRADERS[0], Transfer(1, 2, 1_000, n))
            )
            for n in range(1, 5)
        ]
        disputed = receipts[-1]["batch"]
        wait_for(
            lambda: (
                daemon.call("ratchet_getReceipt", receipts[-1]["txHash"])["finality"] == "posted"
            )
        )
        bond = game.functions.challengerBond().call()
        tx = game.functions.challenge(disputed).transact({"from": challenger, "value": bond})
        assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
        game_id = game.functions.gameCount().call() - 1

        def resolved() -> bool:
            state = game.functions.game(game_id).call()
            if state[2] != 1:  # no longer open
                return True
            if state[3] == 1:  # the challenger's turn: disagree with the defender's root
                move = game.functions.respond(game_id, False).transact({"from": challenger})
                w3.eth.wait_for_transaction_receipt(move)
            return False

        wait_for(resolved, timeout=60)
        assert game.functions.game(game_id).call()[2] == 2  # DefenderWon
        sequencer = Account.from_key(SEQUENCER_KEY).address
        wait_for(lambda: game.functions.credit(sequencer).call() == 0)
        claims = game.events.CreditClaimed().get_logs(from_block=0)
        assert [(c["args"]["account"], c["args"]["amount"]) for c in claims] == [(sequencer, bond)]
        steps = game.events.GameOpened().get_logs(from_block=0)[0]["args"]["steps"]
        bisections = game.events.Bisected().get_logs(from_block=0)
        assert len(bisections) == steps.bit_length() - 1  # hi halves down to 1
        proven = game.events.StepProven().get_logs(from_block=0)
        assert [p["args"]["step"] for p in proven] == [0]
        metrics = urllib.request.urlopen(daemon.url + "/metrics").read().decode()
        assert 'ratchet_dispute_moves_total{kind="proveStep"} 1.0' in metrics
        assert daemon.stop() == 0


def test_a_wrong_root_is_rejected_and_the_batch_reposted_honestly(rollup: Rollup) -> None:
    """A (test-only) rogue daemon posts a wrong root for its first batch of transactions.
    A challenger agrees with every intermediate root (they are honest) down to the last
    step, whose proof shows the posted root wrong: L1 rejects the batch and pays the
    challenger. The daemon reverts to the last good root, and once the operator has
    staked again it reposts the same transactions honestly; the old receipts read
    rejected until the new ones replace them, and the new batch becomes final."""
    stake(rollup)
    w3 = rollup.w3
    game = bind(w3, "DisputeGame", rollup.deployment.dispute_game)
    rollup_contract = bind(w3, "Rollup", rollup.deployment.rollup)
    challenger = list(w3.eth.accounts)[3]
    port_number = int(load_config(rollup.config, {})["rpc"]["port"])
    rogue = ("tests.integration.rogue_sequencer",)
    with Daemon(rollup.config, SEQUENCER_KEY, port_number, module=rogue) as daemon:
        for key in TRADERS:
            deposit(rollup, key, 5_000_000)
        wait_for(lambda: daemon.call("ratchet_getStatus")["inboxConsumed"] == 2)
        sent = [
            daemon.call(
                "ratchet_sendTransaction", signed(rollup, TRADERS[0], Transfer(1, 2, 1_000, n))
            )
            for n in range(1, 4)
        ]
        tx_hash = sent[-1]["txHash"]
        rogue_batch = daemon.call("ratchet_getReceipt", sent[0]["txHash"])["batch"]
        wait_for(lambda: daemon.call("ratchet_getReceipt", tx_hash)["finality"] == "posted")
        serial = rollup_contract.functions.batch(rogue_batch).call()[6]
        bond = game.functions.challengerBond().call()
        tx = game.functions.challenge(rogue_batch).transact({"from": challenger, "value": bond})
        assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
        game_id = game.functions.gameCount().call() - 1

        def resolved() -> bool:
            state = game.functions.game(game_id).call()
            if state[2] != 1:
                return True
            if state[3] == 1:  # the challenger's turn: the defender's roots are honest
                move = game.functions.respond(game_id, True).transact({"from": challenger})
                w3.eth.wait_for_transaction_receipt(move)
            return False

        wait_for(resolved, timeout=60)
        assert game.functions.game(game_id).call()[2] == 3  # ChallengerWon
        assert rollup_contract.functions.nextIndex().call() == rogue_batch
        bond_stake = rollup_contract.functions.sequencerBond().call()
        assert rollup_contract.functions.credit(challenger).call() == bond_stake // 2
        # the daemon reverted: the receipts of the rejected batch read rejected
        wait_for(
            lambda: (
                daemon.call("ratchet_getReceipt", tx_hash)["finality"]
                in ("rejected", "soft", "posted")
            )
        )
        stake(rollup)  # the rejection took the stake: the operator stakes again
        wait_for(lambda: rollup_contract.functions.nextIndex().call() > rogue_batch)
        reposted = rollup_contract.functions.batch(rogue_batch).call()
        assert reposted[6] != serial
        local = daemon.call("ratchet_getBatch", rogue_batch)
        assert "0x" + bytes(reposted[0]).hex() == local["postRoot"]
        renewed = [daemon.call("ratchet_getReceipt", r["txHash"]) for r in sent]
        assert all(r["batch"] == rogue_batch for r in renewed)
        assert [r["sequence"] for r in renewed] != [r["sequence"] for r in sent]
        rollup.anvil.rpc("evm_increaseTime", 61)
        rollup.anvil.rpc("evm_mine")
        wait_for(lambda: daemon.call("ratchet_getReceipt", tx_hash)["finality"] == "final")
        assert daemon.call("ratchet_getAccount", 2)["collateral"] == str(5_000_000 + 3_000)
        assert daemon.stop() == 0
