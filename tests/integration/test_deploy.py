"""``ratchet deploy --config FILE`` on a real anvil: the contracts are deployed for the
config's genesis and parameters, and their addresses written into the config in place."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from web3 import Web3

from node.config import load_config, load_genesis
from node.devnet import anvil_key
from node.l1.anvil import Anvil
from node.l1.deploy import bind
from node.protocol.genesis import genesis_state
from node.protocol.tree import MemoryNodeStore
from tests.integration.sequencer_env import REPO

DEPLOYER, SEQUENCER = anvil_key(0), anvil_key(1)


def deploy(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", "deploy", "--config", str(config)],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    for name in ("devnet.toml", "markets.toml"):
        shutil.copy(REPO / "configs" / name, tmp_path / name)
    return tmp_path / "devnet.toml"


def test_deploy_writes_the_addresses_into_the_config(config: Path, tmp_path: Path) -> None:
    with Anvil(log_path=tmp_path / "anvil.log") as anvil:
        keys = {
            "RATCHET_L1_RPC": anvil.url,
            "RATCHET_DEPLOY_KEY": "0x" + DEPLOYER.hex(),
            "RATCHET_SEQUENCER_KEY": "0x" + SEQUENCER.hex(),
        }
        original = config.read_text()
        done = deploy(config, **keys)
        assert done.returncode == 0, done.stderr
        text = config.read_text()
        # in place: every comment kept, only the addresses and the start block added
        assert [line for line in original.splitlines() if line.startswith("#")] == [
            line for line in text.splitlines() if line.startswith("#")
        ]
        written = tomllib.loads(text)
        contracts = written["contracts"]
        assert set(contracts) == {"rollup", "bridge", "dispute", "collateral", "executor"}
        assert f"rollup     {contracts['rollup']}" in done.stdout

        w3 = Web3(Web3.HTTPProvider(anvil.url))
        rollup = bind(w3, "Rollup", contracts["rollup"])
        genesis = load_genesis(load_config(config, {}), config)
        assert (
            rollup.functions.genesisRoot().call() == genesis_state(genesis, MemoryNodeStore()).root
        )
        assert rollup.functions.sequencer().call() == w3.eth.account.from_key(SEQUENCER).address
        assert rollup.functions.challengeWindow().call() == written["deploy"]["challenge_window_s"]
        assert rollup.functions.sequencerBond().call() == written["deploy"]["sequencer_bond_wei"]
        assert rollup.functions.l2ChainId().call() == written["chain"]["chain_id"]
        bridge = bind(w3, "Bridge", contracts["bridge"])
        assert bridge.functions.collateral().call() == contracts["collateral"]
        assert written["l1"]["start_block"] > 0
        assert w3.eth.get_code(Web3.to_checksum_address(contracts["dispute"])) != b""

        # a second deployment would orphan the first rollup: refused, file untouched
        again = deploy(config, **keys)
        assert again.returncode == 2
        assert "contracts.rollup is already set" in again.stderr
        assert config.read_text() == text


def test_deploy_refuses_a_wrong_chain_or_a_missing_key(config: Path, tmp_path: Path) -> None:
    original = config.read_text()
    with Anvil(log_path=tmp_path / "anvil.log") as anvil:
        base = {"RATCHET_L1_RPC": anvil.url, "RATCHET_SEQUENCER_KEY": "0x" + SEQUENCER.hex()}
        no_key = deploy(config, **base)
        assert no_key.returncode == 2
        assert "no key: set RATCHET_DEPLOY_KEY or key_file" in no_key.stderr
        wrong_chain = deploy(
            config,
            **base,
            RATCHET_DEPLOY_KEY="0x" + DEPLOYER.hex(),
            RATCHET_CHAIN_L1_CHAIN_ID="1",
        )
        assert wrong_chain.returncode == 2
        assert "has chain id 31337, the config says chain.l1_chain_id = 1" in wrong_chain.stderr
        assert Web3(Web3.HTTPProvider(anvil.url)).eth.block_number == 0  # nothing sent
    assert config.read_text() == original
