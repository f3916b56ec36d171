"""
examples/fraud.py on a running devnet: the sequencer posts a wrong root on request, the
devnet's watcher challenges, bisects, proves the step on L1 and wins; the batch is rejected,
the watcher is paid, and the sequencer reposts honestly. The script's story is checked
against L1 itself, not only against what it prints.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from web3 import Web3

from node.l1.deploy import bind
from tests.integration.devnet_env import running_devnet
from tests.integration.sequencer_env import REPO


def test_the_fraud_demonstration_ends_in_a_rejected_batch_and_a_paid_watcher(
    tmp_path: Path,
) -> None:
    with running_devnet(tmp_path / "devnet") as devnet:
        info = devnet.info
        w3 = Web3(Web3.HTTPProvider(info["l1_rpc"]))
        start = w3.eth.block_number
        shown = subprocess.run(
            [
                sys.executable,
                "examples/fraud.py",
                "--devnet",
                str(tmp_path / "devnet" / "devnet.json"),
                "--timeout",
                "240",
            ],
            cwd=REPO,
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert shown.returncode == 0, shown.stdout + shown.stderr
        story = shown.stdout
        for line in (
            "with the WRONG root",
            "challenged batch",
            "one-step executor ran step",
            "challenger won",
            "REJECTED",
            "the watcher withdrew",
            "reposted batch",
        ):
            assert line in story, story

        rollup = bind(w3, "Rollup", info["contracts"]["rollup"])
        game = bind(w3, "DisputeGame", info["contracts"]["dispute"])
        watcher = Web3.to_checksum_address(info["watcher"]["address"])
        (rejected,) = rollup.events.BatchesRejected().get_logs(from_block=start)
        assert rejected["args"]["winner"] == watcher
        bond = game.functions.challengerBond().call()
        assert rejected["args"]["reward"] == rollup.functions.sequencerBond().call() // 2
        paid = {
            (contract.address, log["args"]["amount"])
            for contract in (rollup, game)
            for log in contract.events.CreditClaimed().get_logs(from_block=start)
            if log["args"]["account"] == watcher
        }
        assert paid == {(rollup.address, rejected["args"]["reward"]), (game.address, bond)}
        # the devnet staked the sequencer again and it keeps posting honest batches
        assert rollup.functions.sequencerStake().call() >= rollup.functions.sequencerBond().call()
        posted = rollup.functions.nextIndex().call()
        assert posted > rejected["args"]["fromIndex"]
        assert devnet.call("ratchet_getStatus")["openDisputes"] == []


@pytest.mark.parametrize("l1_chain_id", [1, 11155111])
def test_fault_injection_is_refused_off_development_chains(
    tmp_path: Path, l1_chain_id: int
) -> None:
    from node.config import ConfigError  # noqa: PLC0415
    from node.sequencer.daemon import settings  # noqa: PLC0415

    text = (REPO / "configs" / "devnet.toml").read_text()
    text = text.replace("l1_chain_id = 31337", f"l1_chain_id = {l1_chain_id}")
    text = text.replace(
        "[contracts]\n",
        "[contracts]\n"
        + "\n".join(f'{name} = "0x{"11" * 20}"' for name in ("rollup", "bridge", "dispute"))
        + "\n",
    )
    text += "\n[devnet]\nfaults = true\n"
    path = tmp_path / "sequencer.toml"
    path.write_text(text)
    (tmp_path / "markets.toml").write_text((REPO / "configs" / "markets.toml").read_text())
    env = {"RATCHET_SEQUENCER_KEY": "0x" + "22" * 32}
    with pytest.raises(ConfigError, match=r"devnet\.faults needs an L1 development chain"):
        settings(path, env)
    path.write_text(text.replace("faults = true", "faults = false"))
    assert settings(path, env).devnet_faults is False


def test_a_sequencer_refuses_an_l1_on_another_chain(tmp_path: Path) -> None:
    """A config pointed at the wrong L1 node must not start (it would post there)."""
    from node.l1.anvil import Anvil  # noqa: PLC0415

    text = (REPO / "configs" / "devnet.toml").read_text()
    text = text.replace("l1_chain_id = 31337", "l1_chain_id = 5")
    addresses = "\n".join(f'{name} = "0x{"11" * 20}"' for name in ("rollup", "bridge", "dispute"))
    text = text.replace("[contracts]\n", f"[contracts]\n{addresses}\n")
    path = tmp_path / "sequencer.toml"
    path.write_text(text)
    (tmp_path / "markets.toml").write_text((REPO / "configs" / "markets.toml").read_text())
    with Anvil(log_path=tmp_path / "anvil.log") as anvil:
        started = subprocess.run(
            [sys.executable, "-m", "node.cli", "sequencer", "--config", str(path)],
            cwd=REPO,
            env={
                "PATH": "/usr/bin:/bin",
                "RATCHET_SEQUENCER_KEY": "0x" + "22" * 32,
                "RATCHET_L1_RPC": anvil.url,
            },
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert started.returncode == 2, started.stderr
    assert "has chain id 31337, the config says chain.l1_chain_id = 5" in started.stderr
