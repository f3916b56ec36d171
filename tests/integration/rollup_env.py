"""
A rollup on a real anvil with the real contracts, for tests that run the daemons as
processes (tests/integration/test_sequencer_l1.py, test_watchtower.py): deployment,
configs, funded keys, and the L1 actions of users and operators.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from web3 import Web3

from node.config import load_config, load_genesis
from node.l1.anvil import Anvil
from node.l1.deploy import Deployment, bind, deploy_all, devnet_parameters
from node.protocol.crypto import address_of, sign_digest
from node.protocol.eip712 import Domain
from node.protocol.genesis import genesis_state
from node.protocol.transactions import Message, SignedTransaction, encode_transaction
from node.protocol.tree import MemoryNodeStore
from tests.integration.sequencer_env import REPO, port, write_config
from tests.stf_env import FEE_OWNER_KEY, ORACLE_KEY
from tests.stf_env import test_key as key_of

SEQUENCER_KEY = key_of(77)
TRADERS = [key_of(1), key_of(2)]
WATCHER_KEYS = [key_of(88), key_of(89)]


@dataclass
class Rollup:
    """A deployed rollup, its sequencer daemon's config, and the anvil under both."""

    anvil: Anvil
    w3: Web3
    deployment: Deployment
    config: Path


@contextmanager
def deployed_rollup(tmp_path: Path) -> Iterator[Rollup]:
    """Anvil, the contracts (genesis = the sequencer config's), funded sequencer, trader
    and watcher keys, and the sequencer's config."""
    with Anvil(log_path=tmp_path / "anvil.log") as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.url))
        deployer = w3.eth.accounts[0]
        sequencer = Account.from_key(SEQUENCER_KEY).address
        for key in (SEQUENCER_KEY, *TRADERS, *WATCHER_KEYS):
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


def watcher_config(rollup: Rollup, directory: Path, metrics_port: int) -> Path:
    """A watchtower config beside the sequencer's: the same chain, contracts, L1 and
    genesis, its own data dir, and a metrics port."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(rollup.config.parent / "markets.toml", directory / "markets.toml")
    text = rollup.config.read_text()
    text = text.replace('data_dir = "data"', 'data_dir = "watch-data"')
    text += f'\n[watcher]\nkey_file = ""\nmetrics_port = {metrics_port}\n'
    path = directory / "watcher.toml"
    path.write_text(text)
    return path


class Watchtower:
    """One ``ratchet watch`` process, stopped by pid."""

    def __init__(self, config: Path, key: bytes, metrics_port: int) -> None:
        self.config = config
        self.key = key
        self.address = Account.from_key(key).address
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.log = config.parent / "watcher.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> "Watchtower":
        env = {**os.environ, "RATCHET_WATCHER_KEY": "0x" + self.key.hex()}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "node.cli", "watch", "--config", str(self.config)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=log,
            )
        wait_for(lambda: self.metrics() is not None, timeout)
        return self

    def metrics(self) -> str | None:
        """The /metrics text, or None if it does not answer (yet)."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"the watcher exited: {self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=2) as reply:
                return str(reply.read().decode())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def metric(self, name: str) -> float:
        """One sample's value (0 if absent)."""
        for line in (self.metrics() or "").splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def kill(self) -> None:
        """SIGKILL and wait."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        return self.process.returncode

    def __enter__(self) -> "Watchtower":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
