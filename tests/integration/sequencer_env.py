"""
Running ``ratchet sequencer`` as a real process for tests: a config in a temp dir, the
daemon started on a free loopback port and stopped by pid (SIGTERM, or SIGKILL for
crash tests), and a small JSON-RPC client over plain HTTP.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Self

from node.l1.anvil import free_port
from node.protocol.eip712 import Domain

REPO = Path(__file__).resolve().parents[2]


def write_config(
    directory: Path,
    domain: Domain,
    *,
    port: int,
    max_transactions: int = 50,
    interval_s: float = 0.5,
    oracle: str,
    fee_owner: str,
    extra: str = "",
) -> Path:
    """A sequencer config (and its markets file) in ``directory``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "configs" / "markets.toml", directory / "markets.toml")
    path = directory / "sequencer.toml"
    path.write_text(
        f"""
[chain]
chain_id = {domain.chain_id}
l1_chain_id = 31337

[contracts]
rollup = "0x{domain.verifying_contract.hex()}"

[rpc]
host = "127.0.0.1"
port = {port}

[batch]
max_transactions = {max_transactions}
max_interval_s = {interval_s}

[storage]
data_dir = "data"

[sequencer]
key_file = ""

[genesis]
oracle = "{oracle}"
fee_owner = "{fee_owner}"
liquidation_reward_bps = 100
liquidation_insurance_bps = 100
markets = "markets.toml"
{extra}
"""
    )
    return path


class Daemon:
    """One ``ratchet sequencer`` process."""

    def __init__(
        self,
        config: Path,
        key: bytes,
        port: int,
        module: tuple[str, ...] = ("node.cli", "sequencer"),
    ) -> None:
        self.module = module
        """The module to run and its leading arguments (a rogue one in some tests)."""
        self.config = config
        self.key = key
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = config.parent / "sequencer.log"

    def start(self, timeout: float = 30.0) -> Self:
        env = {**os.environ, "RATCHET_SEQUENCER_KEY": "0x" + self.key.hex()}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", *self.module, "--config", str(self.config)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the sequencer exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as reply:
                    if json.load(reply).get("ok"):
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        self.kill()
        raise RuntimeError("the sequencer did not come up")

    def kill(self) -> None:
        """SIGKILL (a crash) and wait."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM (a graceful shutdown); its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call over HTTP; the result, or RuntimeError with the error."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        request = urllib.request.Request(
            self.url + "/", body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            answer = json.load(reply)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]


def port() -> int:
    """A free loopback port."""
    return free_port()
