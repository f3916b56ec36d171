"""
``ratchet devnet [--data-dir DIR] [--port N]``: a whole Ratchet on one machine, for
newcomers and for end-to-end tests.

It starts anvil on ``127.0.0.1:N`` (a block every second beside automine, so L1 time
moves), deploys the contracts with ``ratchet deploy``'s code over ``configs/devnet.toml``,
mints collateral to five funded throwaway trader accounts, stakes the sequencer's bond,
starts one ``ratchet sequencer`` (JSON-RPC and WebSocket on ``N+2``) and one ``ratchet
watch`` (metrics on ``N+3``), writes ``DIR/devnet.json`` (INTERFACE.md), prints the
endpoints, and feeds signed oracle prices (a random walk) for every market with each new
batch (a price may not be newer than its batch: about every 2 s).
It runs until Ctrl-C or SIGTERM, then stops everything it started, by pid: the watcher,
the sequencer, anvil.

Every key is one of anvil's well-known throwaway keys (its public test mnemonic):
account 0 deploys, 1 sequences, 2 watches, 3-7 trade, 8 owns the fee account, 9 signs
oracle prices. Never send anything of value to them.

A second run starts clean: anvil keeps its chain in memory, so the L2 state of a previous
run (its LevelDB) would describe deposits and batches that no longer exist on L1. The
previous run's ``DIR`` is emptied first; ``DIR`` must be a devnet's (it holds the
``.ratchet-devnet`` marker) or empty, so a mistyped path never deletes anything else.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

import tomlkit
from eth_account import Account
from web3 import Web3

from node.config import ConfigError
from node.deploy_cli import execute, plan, write_addresses
from node.l1 import REPO_ROOT
from node.l1.anvil import DEFAULT_MNEMONIC, Anvil, stop_process
from node.l1.deploy import Deployment, bind
from node.protocol.crypto import sign_digest
from node.protocol.eip712 import Domain
from node.protocol.transactions import OraclePrice, SignedTransaction, encode_transaction

MARKER = ".ratchet-devnet"
"""The file that marks a directory as a devnet's (and so safe to empty at the next run)."""

ROLES = {"deployer": 0, "sequencer": 1, "watcher": 2, "fee_owner": 8, "oracle": 9}
"""Which of anvil's mnemonic accounts plays which part."""

TRADERS = range(3, 8)
"""The anvil accounts handed to traders in ``devnet.json``."""

TRADER_COLLATERAL = 1_000_000 * 10**6
"""Collateral tokens minted to each trader on L1: one million (6 decimals)."""

START_PRICES = {"BTC-PERP": "60000", "ETH-PERP": "3000", "SOL-PERP": "150"}
"""Where each market's oracle random walk starts (USD); other markets start at 100."""

FEED_INTERVAL_S = 1.0
"""Seconds between oracle price rounds."""

MAX_CHALLENGE_WINDOW_S = 60
"""INTERFACE.md: the devnet's challenge window is at most a minute."""


def anvil_key(index: int) -> bytes:
    """The private key of anvil's mnemonic account ``index``."""
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return bytes(account.key)


def address_of_key(key: bytes) -> str:
    """The checksummed address of a private key."""
    return str(Account.from_key(key).address)


@dataclass(frozen=True)
class Ports:
    """The loopback ports a devnet uses, from the first one."""

    anvil: int
    rpc: int
    metrics: int

    @classmethod
    def from_first(cls, first: int) -> "Ports":
        return cls(anvil=first, rpc=first + 2, metrics=first + 3)


def prepare(data_dir: Path) -> bool:
    """Make ``data_dir`` an empty devnet directory; True if a previous run was removed.
    Refuses (:class:`ConfigError`) a non-empty directory that is not a devnet's."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).exists():
            raise ConfigError(
                f"{data_dir} is not empty and holds no devnet ({MARKER} is missing): "
                "choose another --data-dir"
            )
        for entry in data_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        cleared = True
    else:
        cleared = False
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text("a Ratchet devnet: emptied by the next `ratchet devnet`\n")
    return cleared


def rpc_call(url: str, payload: Any, timeout: float = 10.0) -> Any:
    """POST one JSON-RPC request or batch; the decoded reply."""
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        return json.load(reply)


class OracleFeed:
    """Signed oracle prices for every market: a random walk, one round per call of
    :meth:`tick`, all markets in one JSON-RPC batch request."""

    def __init__(
        self, rpc: str, key: bytes, domain: Domain, markets: list[dict[str, Any]], seed: int
    ) -> None:
        self.rpc = rpc
        self.key = key
        self.domain = domain
        self.random = random.Random(seed)
        self.markets = markets
        self.prices: dict[int, int] = {}
        for market in markets:
            start = Decimal(START_PRICES.get(market["symbol"], "100"))
            tick = int(market["tickSize"])
            wire = int(start * 10 ** int(market["priceDecimals"]))
            self.prices[market["id"]] = max(tick, wire - wire % tick)
        self.last_timestamp = 0
        self.accepted = 0

    def _timestamp(self) -> int:
        """The newest timestamp a price may carry now: the open batch's (a price may not be
        ahead of its batch), or the L1 time the next batch will open at."""
        status = rpc_call(self.rpc, {"jsonrpc": "2.0", "id": 1, "method": "ratchet_getStatus"})
        result = status["result"]
        batch = rpc_call(
            self.rpc,
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "ratchet_getBatch",
                "params": [result["soft"]["batch"]],
            },
        )
        if "result" in batch and batch["result"]["status"] == "open":
            return int(batch["result"]["timestamp"])
        return int(result.get("l1Time", time.time()))

    def tick(self) -> int:
        """One round: a new price per market, signed and sent; how many were accepted."""
        timestamp = self._timestamp()
        if timestamp <= self.last_timestamp:
            return 0
        requests = []
        for market in self.markets:
            market_id, tick = market["id"], int(market["tickSize"])
            walked = int(self.prices[market_id] * (1 + self.random.gauss(0, 0.001)))
            self.prices[market_id] = max(tick, walked - walked % tick)
            message = OraclePrice(market_id, self.prices[market_id], timestamp)
            signature = sign_digest(self.key, message.signing_hash(self.domain))
            raw = encode_transaction(SignedTransaction(message, signature))
            requests.append(
                {
                    "jsonrpc": "2.0",
                    "id": market_id,
                    "method": "ratchet_sendTransaction",
                    "params": ["0x" + raw.hex()],
                }
            )
        replies = rpc_call(self.rpc, requests)
        accepted = sum(1 for reply in replies if "result" in reply)
        if accepted:
            self.last_timestamp = timestamp
        self.accepted += accepted
        return accepted


class Child:
    """One daemon the devnet started (``ratchet sequencer`` or ``ratchet watch``)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with open(log, "ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "node.cli", *args],
                cwd=REPO_ROOT,
                env=env,
                stdout=handle,
                stderr=handle,
                start_new_session=True,  # Ctrl-C reaches the devnet, which stops us in order
            )

    def exited(self) -> int | None:
        return self.process.poll()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a graceful stop), SIGKILL if it lingers."""
        stop_process(self.process, timeout)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_until(check: Any, what: str, child: Child | None = None, timeout: float = 60.0) -> None:
    """Poll ``check()`` until it is true; RuntimeError if ``child`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and child.exited() is not None:
            raise RuntimeError(f"{child.name} exited while starting:\n{child.tail()}")
        try:
            if check():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


class Devnet:
    """Everything ``ratchet devnet`` starts, as a context manager that stops it all."""

    def __init__(
        self, data_dir: Path, first_port: int, challenge_window: int, *, watcher: bool = True
    ) -> None:
        if not 1 <= challenge_window <= MAX_CHALLENGE_WINDOW_S:
            raise ConfigError(f"--challenge-window must be 1..{MAX_CHALLENGE_WINDOW_S} seconds")
        if not 1024 <= first_port <= 65532:
            raise ConfigError("--port must be 1024..65532 (the devnet uses it and the next 3)")
        self.data_dir = data_dir.resolve()
        self.ports = Ports.from_first(first_port)
        self.challenge_window = challenge_window
        self.keys = {role: anvil_key(index) for role, index in ROLES.items()}
        self.trader_keys = [anvil_key(index) for index in TRADERS]
        self.anvil: Anvil | None = None
        self.children: list[Child] = []
        self.deployment: Deployment | None = None
        self.cleared = False
        self.info: dict[str, Any] = {}
        self.with_watcher = watcher
        """Whether to run the watcher (the benchmarks run without one: in production it is
        on another machine, not on the sequencer's cores)."""

    @property
    def rpc(self) -> str:
        return f"http://127.0.0.1:{self.ports.rpc}"

    def start(self) -> Self:
        """Bring the whole devnet up; on any failure, stop what was started and raise."""
        self.cleared = prepare(self.data_dir)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        logs = self.data_dir / "logs"
        self.anvil = Anvil(
            port=self.ports.anvil,
            log_path=logs / "anvil.log",
            extra_args=("--block-time", "1", "--mixed-mining"),
        ).start()
        config = self._write_sequencer_config()
        env = {
            **os.environ,
            "RATCHET_DEPLOY_KEY": "0x" + self.keys["deployer"].hex(),
            "RATCHET_SEQUENCER_KEY": "0x" + self.keys["sequencer"].hex(),
        }
        self.deployment = execute(plan(config, env))
        write_addresses(config, self.deployment)
        watcher_config = self._write_watcher_config(config)
        w3 = Web3(Web3.HTTPProvider(self.anvil.url, request_kwargs={"timeout": 30}))
        self._fund_and_stake(w3, self.deployment)
        sequencer = Child(
            "the sequencer",
            ["sequencer", "--config", str(config)],
            {**os.environ, "RATCHET_SEQUENCER_KEY": "0x" + self.keys["sequencer"].hex()},
            logs / "sequencer.log",
        )
        self.children.append(sequencer)
        wait_until(self._healthy, "the sequencer's /health", sequencer)
        if self.with_watcher:
            self._start_watcher(watcher_config)
        self.info = self._describe(self.deployment)
        path = self.data_dir / "devnet.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.info, indent=2) + "\n")
        os.replace(temporary, path)

    def _start_watcher(self, watcher_config: Path) -> None:
        logs = self.data_dir / "logs"
        watcher = Child(
            "the watcher",
            ["watch", "--config", str(watcher_config)],
            {**os.environ, "RATCHET_WATCHER_KEY": "0x" + self.keys["watcher"].hex()},
            logs / "watcher.log",
        )
        self.children.append(watcher)
        metrics = f"http://127.0.0.1:{self.ports.metrics}/metrics"
        wait_until(
            lambda: urllib.request.urlopen(metrics, timeout=2).status == 200,
            "the watcher's metrics",
            watcher,
        )

    def _healthy(self) -> bool:
        with urllib.request.urlopen(self.rpc + "/health", timeout=2) as reply:
            return bool(json.load(reply).get("ok"))

    def _write_sequencer_config(self) -> Path:
        """``configs/devnet.toml`` (and its markets file) with this devnet's ports, data dir
        and window, in ``DIR``."""
        source = REPO_ROOT / "configs"
        document = tomlkit.parse((source / "devnet.toml").read_text())
        genesis = document["genesis"]
        for role in ("oracle", "fee_owner"):
            expected = address_of_key(self.keys[role])
            if str(genesis[role]).lower() != expected.lower():
                raise ConfigError(f"configs/devnet.toml: genesis.{role} must be {expected}")
        shutil.copy(source / str(genesis["markets"]), self.data_dir / str(genesis["markets"]))
        document["l1"]["rpc"] = self.anvil.url if self.anvil else ""
        document["rpc"]["port"] = self.ports.rpc
        document["storage"]["data_dir"] = "sequencer"
        document["deploy"]["challenge_window_s"] = self.challenge_window
        devnet = tomlkit.table()
        devnet.add(tomlkit.comment("devnet_postWrongRoot for examples/fraud.py (dev chains only)"))
        devnet["faults"] = True
        document["devnet"] = devnet
        path = self.data_dir / "sequencer.toml"
        path.write_text(tomlkit.dumps(document))
        return path

    def _write_watcher_config(self, sequencer_config: Path) -> Path:
        """The sequencer's config (with the deployed addresses) for the watcher: its own
        data dir, a metrics port, no fault injection."""
        document = tomlkit.parse(sequencer_config.read_text())
        document["storage"]["data_dir"] = "watcher"
        del document["devnet"]
        watcher = tomlkit.table()
        watcher["key_file"] = ""
        watcher["metrics_port"] = self.ports.metrics
        document["watcher"] = watcher
        path = self.data_dir / "watcher.toml"
        path.write_text(tomlkit.dumps(document))
        return path

    def _fund_and_stake(self, w3: Web3, deployment: Deployment) -> None:
        """Mint collateral to every trader (they hold anvil's 10,000 ETH already) and stake
        the sequencer's bond (anvil signs for its own accounts)."""
        token = bind(w3, "TestToken", deployment.collateral)
        deployer = address_of_key(self.keys["deployer"])
        hashes = [
            token.functions.mint(address_of_key(key), TRADER_COLLATERAL).transact(
                {"from": deployer}
            )
            for key in self.trader_keys
        ]
        hashes.append(self._stake_transaction(w3, deployment))
        for tx_hash in hashes:
            if w3.eth.wait_for_transaction_receipt(tx_hash)["status"] != 1:
                raise RuntimeError(f"funding the devnet failed in {tx_hash.hex()}")

    def _stake_transaction(self, w3: Web3, deployment: Deployment) -> Any:
        """Send the sequencer's ``stake`` of what it lacks of the bond; the tx hash."""
        rollup = bind(w3, "Rollup", deployment.rollup)
        missing = rollup.functions.sequencerBond().call() - rollup.functions.sequencerStake().call()
        sequencer = address_of_key(self.keys["sequencer"])
        return rollup.functions.stake().transact({"from": sequencer, "value": missing})

    def restake(self) -> bool:
        """Stake the sequencer's bond again if a lost dispute took it (the operator's step
        after a rejection, docs/sequencer.md); True if it did."""
        assert self.anvil is not None and self.deployment is not None
        w3 = Web3(Web3.HTTPProvider(self.anvil.url, request_kwargs={"timeout": 30}))
        rollup = bind(w3, "Rollup", self.deployment.rollup)
        if rollup.functions.sequencerStake().call() >= rollup.functions.sequencerBond().call():
            return False
        w3.eth.wait_for_transaction_receipt(self._stake_transaction(w3, self.deployment))
        return True

    def _describe(self, deployment: Deployment) -> dict[str, Any]:
        """The contents of ``devnet.json``."""
        assert self.anvil is not None
        return {
            "l1_rpc": self.anvil.url,
            "rpc": self.rpc,
            "ws": f"ws://127.0.0.1:{self.ports.rpc}/ws",
            "chain_id": deployment.l2_chain_id,
            "l1_chain_id": self.anvil.chain_id,
            "contracts": deployment.to_json(),
            "start_block": deployment.start_block,
            "sequencer": address_of_key(self.keys["sequencer"]),
            "watcher": {
                "address": address_of_key(self.keys["watcher"]),
                "metrics": f"http://127.0.0.1:{self.ports.metrics}/metrics",
            },
            "oracle": address_of_key(self.keys["oracle"]),
            "challenge_window": self.challenge_window,
            "accounts": [
                {"address": address_of_key(key), "private_key": "0x" + key.hex()}
                for key in self.trader_keys
            ],
            "data_dir": str(self.data_dir),
            "logs": str(self.data_dir / "logs"),
            "pids": {
                "devnet": os.getpid(),
                "anvil": self.anvil.process.pid if self.anvil.process else None,
                "sequencer": self.children[0].process.pid,
                "watcher": self.children[1].process.pid if self.with_watcher else None,
            },
        }

    def failed_child(self) -> str | None:
        """What died, if anything the devnet runs has exited."""
        anvil = self.anvil.process if self.anvil is not None else None
        if anvil is not None and anvil.poll() is not None:
            return f"anvil exited (log: {self.data_dir / 'logs' / 'anvil.log'})"
        for child in self.children:
            code = child.exited()
            if code is not None:
                return f"{child.name} exited with {code} (log: {child.log}):\n{child.tail()}"
        return None

    def stop(self) -> None:
        """Stop everything started, newest first: the watcher, the sequencer, anvil."""
        for child in reversed(self.children):
            child.stop()
        self.children = []
        if self.anvil is not None:
            self.anvil.stop()
            self.anvil = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def banner(devnet: Devnet) -> str:
    """What the devnet prints once it is up."""
    info = devnet.info
    contracts = info["contracts"]
    lines = [
        f"Ratchet devnet is up. Data in {info['data_dir']}, logs in {info['logs']}.",
        "",
        f"  L1 (anvil)         {info['l1_rpc']}   chain id {info['l1_chain_id']}",
        f"  L2 JSON-RPC        {info['rpc']}   chain id {info['chain_id']}",
        f"  L2 WebSocket       {info['ws']}",
        f"  sequencer metrics  {info['rpc']}/metrics",
        f"  watcher metrics    {info['watcher']['metrics']}",
        f"  rollup             {contracts['rollup']}",
        f"  bridge             {contracts['bridge']}",
        f"  dispute game       {contracts['dispute']}",
        f"  collateral         {contracts['collateral']}",
        f"  challenge window   {info['challenge_window']} s",
        "",
        f"  {len(info['accounts'])} funded trader accounts (throwaway keys, 10,000 ETH and "
        f"{TRADER_COLLATERAL // 10**6:,} collateral tokens each) are in",
        f"  {Path(info['data_dir']) / 'devnet.json'}",
        "",
        "Try:",
        f"  ratchet status --rpc {info['rpc']}",
        f"  python examples/market_maker.py --devnet {Path(info['data_dir']) / 'devnet.json'}",
        f"  python examples/fraud.py --devnet {Path(info['data_dir']) / 'devnet.json'}",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


class _StopError(Exception):
    """SIGINT or SIGTERM arrived."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _StopError


def main(data_dir: str, port: int, challenge_window: int = MAX_CHALLENGE_WINDOW_S) -> int:
    """Entry point of ``ratchet devnet``."""
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    devnet: Devnet | None = None
    try:
        devnet = Devnet(Path(data_dir), port, challenge_window)
        print(f"starting a Ratchet devnet in {devnet.data_dir} ...", flush=True)
        devnet.start()
        if devnet.cleared:
            print("(the previous devnet's data was removed: every run starts clean)")
        print(banner(devnet), flush=True)
        assert devnet.deployment is not None
        feed = OracleFeed(
            devnet.rpc,
            devnet.keys["oracle"],
            devnet.deployment.domain,
            rpc_call(devnet.rpc, {"jsonrpc": "2.0", "id": 1, "method": "ratchet_getMarkets"})[
                "result"
            ],
            seed=port,
        )
        while True:
            problem = devnet.failed_child()
            if problem is not None:
                print(f"ratchet devnet: {problem}\nstopping everything.", file=sys.stderr)
                return 1
            try:
                feed.tick()
                if devnet.restake():
                    print("the sequencer lost its stake in a dispute: the devnet staked it again")
            except (OSError, ValueError, KeyError) as exc:
                print(f"ratchet devnet: {exc}", file=sys.stderr)
            time.sleep(FEED_INTERVAL_S)
    except _StopError:
        print("\nstopping the devnet ...", flush=True)
        return 0
    except ConfigError as exc:
        print(f"ratchet devnet: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as exc:
        print(f"ratchet devnet: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if devnet is not None:
            devnet.stop()
            print("devnet stopped.", flush=True)
