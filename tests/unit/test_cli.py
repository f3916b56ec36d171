"""The ``ratchet`` console script is installed and answers."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import node
from node.cli import COMMANDS, main


def ratchet_executable() -> str:
    found = Path(sys.executable).parent / "ratchet"
    return str(found) if found.exists() else (shutil.which("ratchet") or "ratchet")


def test_console_script_prints_its_version() -> None:
    out = subprocess.run(
        [ratchet_executable(), "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"ratchet {node.__version__}"


def test_every_interface_command_exists() -> None:
    assert set(COMMANDS) == {"devnet", "deploy", "sequencer", "watch", "status"}
    out = subprocess.run(
        [ratchet_executable(), "--help"], capture_output=True, text=True, check=True
    )
    for command in COMMANDS:
        assert command in out.stdout


def test_a_missing_config_or_command_fails_loudly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--config", "no-such.toml"]) == 2
    assert "cannot read config no-such.toml" in capsys.readouterr().err
    assert main([]) == 2
    assert "usage: ratchet" in capsys.readouterr().out
