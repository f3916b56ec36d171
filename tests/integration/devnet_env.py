"""
``ratchet devnet`` as a process for end-to-end tests: started on free loopback ports in a
temp dir, read through its ``devnet.json``, stopped with SIGINT (Ctrl-C) and, should
anything it started outlive it, killed by pid so no test leaks a process.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.l1.anvil import free_port
from tests.integration.sequencer_env import REPO


def _free(port: int) -> bool:
    import socket  # noqa: PLC0415

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def devnet_port() -> int:
    """A first port N with N, N+2 and N+3 free on loopback (what a devnet uses)."""
    for _ in range(100):
        first = free_port()
        if first <= 65530 and all(_free(first + offset) for offset in (1, 2, 3)):
            return first
    raise RuntimeError("no four free loopback ports in a row")


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@dataclass
class RunningDevnet:
    """A ``ratchet devnet`` process and what its ``devnet.json`` says."""

    process: subprocess.Popen[bytes]
    directory: Path
    output: Path
    info: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None

    @property
    def rpc(self) -> str:
        return str(self.info["rpc"])

    def call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call over plain HTTP; the result, or RuntimeError with the error."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        request = urllib.request.Request(
            self.rpc, body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            answer = json.load(reply)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]

    def stop(self) -> int:
        """Ctrl-C (SIGINT) and wait; the exit code. Idempotent."""
        if self.exit_code is None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                try:
                    self.process.wait(60)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(30)
            self.exit_code = self.process.returncode
        return self.exit_code

    def leftovers(self) -> list[str]:
        """What the devnet started that is still running."""
        pids = self.info.get("pids", {})
        return [name for name, pid in pids.items() if pid and name != "devnet" and alive(pid)]


@contextmanager
def running_devnet(directory: Path, challenge_window: int = 10) -> Iterator[RunningDevnet]:
    """Start ``ratchet devnet`` in ``directory`` and wait until it is up (devnet.json is
    written once everything answers); stop it on exit, and kill by pid whatever it left."""
    directory.mkdir(parents=True, exist_ok=True)
    output = directory.parent / f"{directory.name}.out"
    with open(output, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "node.cli",
                "devnet",
                "--data-dir",
                str(directory),
                "--port",
                str(devnet_port()),
                "--challenge-window",
                str(challenge_window),
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    devnet = RunningDevnet(process, directory, output)
    try:
        deadline = time.monotonic() + 180
        path = directory / "devnet.json"
        while not path.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the devnet did not come up:\n{output.read_text()[-3000:]}")
            time.sleep(0.2)
        devnet.info = json.loads(path.read_text())
        yield devnet
    finally:
        devnet.stop()
        for name in devnet.leftovers():
            os.kill(devnet.info["pids"][name], signal.SIGKILL)


def wait_until(condition: Any, timeout: float = 120.0, what: str = "a condition") -> Any:
    """Poll ``condition()`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (urllib.error.URLError, ConnectionError, RuntimeError):
            value = None
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")
