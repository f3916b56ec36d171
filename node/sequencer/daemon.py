"""
``ratchet sequencer --config FILE``: the daemon that runs the engine, its JSON-RPC
server and its timers, until SIGTERM or SIGINT.

Configuration (TOML, every option overridable as ``RATCHET_<SECTION>_<KEY>``; see
configs/devnet.toml and docs/sequencer.md):

- ``[chain] chain_id``: the L2 chain id of the EIP-712 domain;
- ``[contracts] rollup``: the L1 rollup address, the domain's ``verifyingContract``
  (and the other addresses ``ratchet deploy`` wrote, served by ``ratchet_getConfig``);
- ``[rpc] host, port``; ``[batch] max_transactions, max_interval_s``;
- ``[l1] rpc, confirmations, poll_s, start_block`` and ``[contracts] bridge``: where the
  inbox is followed from (without ``rpc`` the daemon runs without L1);
- ``[storage] data_dir``; ``[genesis]``;
- the sequencer's key: the environment variable ``RATCHET_SEQUENCER_KEY`` (0x-hex) or
  the file named by ``[sequencer] key_file``, never the config itself.

Shutdown is graceful: the server stops taking requests, every acknowledged entry and
sealed batch is already durable (nothing is acknowledged before), the open batch stays
open in the log and is reopened at the next start.
"""

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import web
from web3 import Web3

from node.config import ConfigError, load_config, load_genesis
from node.l1.inbox_reader import InboxReader
from node.protocol.eip712 import Domain
from node.protocol.genesis import Genesis
from node.storage import LevelDB

from .engine import Sequencer
from .follower import InboxFollower
from .rpc import Api, application

log = logging.getLogger(__name__)

KEY_ENV = "RATCHET_SEQUENCER_KEY"
"""The environment variable holding the sequencer's private key (0x-hex)."""


@dataclass(frozen=True)
class Settings:
    """A sequencer's configuration, checked."""

    domain: Domain
    genesis: Genesis
    key: bytes
    data_dir: Path
    host: str
    port: int
    max_transactions: int
    max_interval_s: float
    contracts: dict[str, str]
    l1_chain_id: int | None
    l1_rpc: str | None
    """The L1 JSON-RPC URL; None runs without L1 (no inbox, no posting)."""
    confirmations: int
    l1_poll_s: float
    l1_start_block: int


def _section(config: Mapping[str, Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    section = config.get(name)
    if section is None:
        raise ConfigError(f"no [{name}] section")
    return section


def _address(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 42:
        raise ConfigError(f"{name} must be a 0x-hex address")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise ConfigError(f"{name} must be a 0x-hex address") from None


def _key(section: Mapping[str, Any], environ: Mapping[str, str], base: Path) -> bytes:
    text = environ.get(KEY_ENV)
    if text is None:
        key_file = section.get("key_file")
        if not key_file:
            raise ConfigError(f"no sequencer key: set {KEY_ENV} or [sequencer] key_file")
        try:
            text = (base / str(key_file)).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the key file {key_file}: {exc.strerror}") from None
    try:
        key = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise ConfigError("the sequencer key must be 32 bytes of hex") from None
    if len(key) != 32:
        raise ConfigError("the sequencer key must be 32 bytes of hex")
    return key


def settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check the config at ``path``; :class:`ConfigError` says what is wrong."""
    env = os.environ if environ is None else environ
    config = load_config(path, env)
    base = Path(path).parent
    chain = _section(config, "chain")
    contracts = {k: str(v) for k, v in _section(config, "contracts").items()}
    rollup = _address(contracts.get("rollup"), "contracts.rollup")
    chain_id = chain.get("chain_id")
    if not isinstance(chain_id, int) or chain_id < 0:
        raise ConfigError("chain.chain_id must be a non-negative integer")
    rpc = config.get("rpc", {})
    batch = config.get("batch", {})
    storage = _section(config, "storage")
    data_dir = Path(str(storage.get("data_dir", "")))
    if not str(data_dir):
        raise ConfigError("storage.data_dir is required")
    max_transactions = batch.get("max_transactions", 4096)
    max_interval = batch.get("max_interval_s", 2.0)
    if not isinstance(max_transactions, int) or not 0 < max_transactions <= 1 << 16:
        raise ConfigError("batch.max_transactions must be 1..65536")
    if not isinstance(max_interval, (int, float)) or max_interval <= 0:
        raise ConfigError("batch.max_interval_s must be positive")
    port = rpc.get("port", 8547)
    if not isinstance(port, int) or not 0 <= port < 65536:
        raise ConfigError("rpc.port must be a TCP port")
    l1_chain_id = chain.get("l1_chain_id")
    l1 = config.get("l1", {})
    l1_rpc = l1.get("rpc") or None
    confirmations = l1.get("confirmations", 0)
    if not isinstance(confirmations, int) or confirmations < 0:
        raise ConfigError("l1.confirmations must be a non-negative integer")
    l1_poll = l1.get("poll_s", 1.0)
    if not isinstance(l1_poll, (int, float)) or l1_poll <= 0:
        raise ConfigError("l1.poll_s must be positive")
    start_block = l1.get("start_block", 0)
    if not isinstance(start_block, int) or start_block < 0:
        raise ConfigError("l1.start_block must be a non-negative integer")
    if l1_rpc is not None:
        _address(contracts.get("bridge"), "contracts.bridge")
    return Settings(
        domain=Domain(chain_id, rollup),
        genesis=load_genesis(config, path),
        key=_key(config.get("sequencer", {}), env, base),
        data_dir=data_dir if data_dir.is_absolute() else base / data_dir,
        host=str(rpc.get("host", "127.0.0.1")),
        port=port,
        max_transactions=max_transactions,
        max_interval_s=float(max_interval),
        contracts=contracts,
        l1_chain_id=l1_chain_id if isinstance(l1_chain_id, int) else None,
        l1_rpc=str(l1_rpc) if l1_rpc else None,
        confirmations=confirmations,
        l1_poll_s=float(l1_poll),
        l1_start_block=start_block,
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message and any ``extra``."""

    _STANDARD: ClassVar[frozenset[str]] = frozenset(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


async def serve(config: Settings, *, ready: asyncio.Event | None = None) -> int:
    """Run the sequencer until SIGTERM/SIGINT; its exit code (1 if the log failed)."""
    exit_code = 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with LevelDB(config.data_dir / "db") as db:
        started = time.monotonic()
        engine = Sequencer(
            db,
            config.genesis,
            config.domain,
            config.key,
            max_batch_transactions=config.max_transactions,
        )
        log.info(
            "engine ready",
            extra={
                "entries": engine.ledger.head,
                "closed_batches": engine.closed,
                "recovery_s": round(time.monotonic() - started, 3),
            },
        )
        public = {
            "chainId": config.domain.chain_id,
            "l1ChainId": config.l1_chain_id,
            "contracts": config.contracts,
            "maxBatchTransactions": config.max_transactions,
            "batchIntervalS": config.max_interval_s,
        }
        api = Api(engine, config.genesis, public)

        async def health() -> dict[str, Any]:
            return {"ok": True, "sequence": engine.ledger.head, "closedBatches": engine.closed}

        runner = web.AppRunner(application(api, health), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        log.info("serving", extra={"host": config.host, "port": config.port})
        if ready is not None:
            ready.set()

        async def batch_timer() -> None:
            while True:
                await asyncio.sleep(config.max_interval_s)
                await engine.close_batch()

        timer = asyncio.create_task(batch_timer())
        workers = [timer]
        if config.l1_rpc is not None:
            w3 = Web3(Web3.HTTPProvider(config.l1_rpc, request_kwargs={"timeout": 10}))
            reader = InboxReader(
                w3,
                config.contracts["bridge"],
                config.confirmations,
                start_block=config.l1_start_block,
            )
            follower = InboxFollower(reader, engine, poll_s=config.l1_poll_s)
            workers.append(asyncio.create_task(follower.run(stop)))
        failed = asyncio.create_task(engine.committer.failed.wait())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait((failed, stopped), return_when=asyncio.FIRST_COMPLETED)
            if failed.done():
                log.critical("the transaction log failed: stopping, nothing more is acknowledged")
                exit_code = 1
        finally:
            failed.cancel()
            stopped.cancel()
            log.info("shutting down")
            stop.set()
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await runner.cleanup()
            if exit_code == 0:
                await engine.flush()
    log.info("stopped", extra={"exit_code": exit_code})
    return exit_code


def main(config_path: str) -> int:
    """Entry point of ``ratchet sequencer``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    try:
        config = settings(config_path)
    except ConfigError as exc:
        print(f"ratchet sequencer: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(serve(config))
