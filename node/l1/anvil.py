"""
Start and stop an anvil development node (from the npm package ``@foundry-rs/anvil``).

Used by the test fixtures and by ``ratchet devnet``. anvil always listens
on loopback; whoever starts it stops it, by pid.
"""

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from . import REPO_ROOT

DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
"""anvil's well-known throwaway mnemonic: its accounts are funded, and public."""


def _platform_package() -> str:
    system = {"linux": "linux", "darwin": "darwin", "win32": "win32"}.get(
        sys.platform, sys.platform
    )
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return f"anvil-{system}-{arch}"


def find_anvil() -> str:
    """
    The anvil executable: ``$RATCHET_ANVIL`` if set, else the binary the npm package
    installed for this platform under ``node_modules`` (not its Node.js wrapper, so
    that a signal to the pid reaches anvil itself), else ``anvil`` on the PATH.
    """
    override = os.environ.get("RATCHET_ANVIL")
    if override:
        return override
    for base in (Path.cwd(), REPO_ROOT):
        candidate = base / "node_modules" / "@foundry-rs" / _platform_package() / "bin" / "anvil"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("anvil")
    if found:
        return found
    raise FileNotFoundError("anvil not found: run `make install` first")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process(process: "subprocess.Popen[bytes]", timeout: float) -> None:
    """Stop a child by pid: SIGTERM (a graceful stop), SIGKILL if it lingers past
    ``timeout`` seconds; reaped either way."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


class Anvil:
    """
    One anvil process on 127.0.0.1. Use as a context manager, or call
    :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        chain_id: int = 31337,
        log_path: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self.chain_id = chain_id
        self.log_path = log_path
        self.extra_args = tuple(extra_args)
        """More anvil options (the devnet's: a block every second beside automine)."""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The HTTP JSON-RPC endpoint."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Self:
        """Start anvil and wait until it answers JSON-RPC."""
        args = [
            find_anvil(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--mnemonic",
            DEFAULT_MNEMONIC,
            *self.extra_args,
        ]
        if self.log_path is None:
            self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
        else:
            with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
                self.process = subprocess.Popen(
                    args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"anvil exited with {self.process.returncode} at start")
            try:
                if self.rpc("eth_chainId") == hex(self.chain_id):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"anvil did not answer on {self.url} within {timeout}s")

    def rpc(self, method: str, *params: object) -> object:
        """One JSON-RPC call (for readiness checks and test helpers)."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        request = urllib.request.Request(
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            reply = json.loads(response.read())
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process by pid: SIGTERM, then SIGKILL if it lingers."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
