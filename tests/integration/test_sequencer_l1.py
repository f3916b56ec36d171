"""
``ratchet sequencer`` against a real anvil with the real contracts: deposits made on L1
are picked up from the inbox and credited, and a trader who deposited can trade.
"""

import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from node.config import load_config, load_genesis
from node.l1.anvil import Anvil
from node.l1.deploy import Deployment, bind, deploy_all, devnet_parameters
from node.protocol.crypto import address_of, sign_digest
from node.protocol.eip712 import Domain
from node.protocol.genesis import genesis_state
from node.protocol.transactions import (
    Message,
    SignedTransaction,
    Transfer,
    Withdraw,
    encode_transaction,
)
from node.protocol.tree import MemoryNodeStore
from tests.integration.sequencer_env import Daemon, port, write_config
from tests.stf_env import FEE_OWNER_KEY, ORACLE_KEY
from tests.stf_env import test_key as key_of

SEQUENCER_KEY = key_of(77)
TRADERS = [key_of(1), key_of(2)]


@dataclass
class Rollup:
    """A deployed rollup, its sequencer daemon's config, and the anvil under both."""

    anvil: Anvil
    w3: Web3
    deployment: Deployment
    config: Path


@pytest.fixture
def rollup(tmp_path: Path) -> Iterator[Rollup]:
    with Anvil(log_path=tmp_path / "anvil.log") as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.url))
        deployer = w3.eth.accounts[0]
        sequencer = Account.from_key(SEQUENCER_KEY).address
        for key in (SEQUENCER_KEY, *TRADERS):
            w3.eth.send_transaction(
                {
                    "from": deployer,
                    "to": Account.from_key(key).address,
                    "value": Web3.to_wei(10, "ether"),
                }
            )
        # the genesis root comes from the config the daemon will read: write it twice
        # (the domain needs the rollup address, known after deployment)
        oracle = "0x" + address_of(ORACLE_KEY).hex()
        fee_owner = "0x" + address_of(FEE_OWNER_KEY).hex()
        draft = write_config(
            tmp_path / "draft", _placeholder(), port=0, oracle=oracle, fee_owner=fee_owner
        )
        genesis = load_genesis(load_config(draft, {}), draft)
        root = genesis_state(genesis, MemoryNodeStore()).root
        deployment = deploy_all(w3, deployer, devnet_parameters(sequencer, root, 901_337))
        extra = f"""
[l1]
rpc = "{anvil.url}"
confirmations = 0
poll_s = 0.2
start_block = {deployment.start_block}
"""
        config = write_config(
            tmp_path / "sequencer",
            deployment.domain,
            port=port(),
            oracle=oracle,
            fee_owner=fee_owner,
            extra=extra,
        )
        text = config.read_text().replace(
            "[contracts]\n",
            f'[contracts]\nbridge = "{deployment.bridge}"\ndispute = "{deployment.dispute_game}"\n',
        )
        config.write_text(text)
        yield Rollup(anvil, w3, deployment, config)


def _placeholder() -> Domain:
    """A domain for the draft config (only its genesis is read)."""
    return Domain(901_337, b"\x00" * 20)


def deposit(rollup: Rollup, key: bytes, amount: int) -> None:
    """Mint collateral to the key's address, approve the bridge and deposit, on L1."""
    w3, deployment = rollup.w3, rollup.deployment
    owner = Account.from_key(key).address
    token = bind(w3, "TestToken", deployment.collateral)
    bridge = bind(w3, "Bridge", deployment.bridge)
    for call in (
        token.functions.mint(owner, amount),
        token.functions.approve(deployment.bridge, amount),
        bridge.functions.deposit(amount),
    ):
        tx = call.build_transaction({"from": owner, "nonce": w3.eth.get_transaction_count(owner)})
        signed = Account.from_key(key).sign_transaction(tx)
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(signed.raw_transaction)
        )
        assert receipt["status"] == 1


def stake(rollup: Rollup) -> None:
    """The sequencer stakes its bond (an operator's step before posting)."""
    w3 = rollup.w3
    contract = bind(w3, "Rollup", rollup.deployment.rollup)
    sequencer = Account.from_key(SEQUENCER_KEY)
    tx = contract.functions.stake().build_transaction(
        {
            "from": sequencer.address,
            "value": contract.functions.sequencerBond().call(),
            "nonce": w3.eth.get_transaction_count(sequencer.address),
        }
    )
    signed_tx = sequencer.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed_tx.raw_transaction)
    )
    assert receipt["status"] == 1


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def signed(rollup: Rollup, key: bytes, message: Message) -> str:
    signature = sign_digest(key, message.signing_hash(rollup.deployment.domain))
    return "0x" + encode_transaction(SignedTransaction(message, signature)).hex()


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
