"""
``ratchet watch --config FILE``: run one watchtower until SIGTERM or SIGINT.

Configuration (TOML, ``RATCHET_<SECTION>_<KEY>`` overrides; docs/watchtower.md):
``[chain] chain_id``, ``[contracts] rollup, bridge, dispute``, ``[l1] rpc, confirmations,
poll_s, start_block``, ``[storage] data_dir`` (the watcher's own, never the sequencer's),
``[genesis]``, ``[watcher] metrics_port`` (0: none) and ``metrics_host`` (default
127.0.0.1), and its key from
``RATCHET_WATCHER_KEY`` or ``[watcher] key_file``.
"""

import logging
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import trio
from prometheus_client import CollectorRegistry, start_http_server

from node.config import (
    ConfigError,
    address_option,
    data_dir_option,
    domain_option,
    load_config,
    load_genesis,
    private_key,
    require_section,
)
from node.l1.connect import connect
from node.logs import json_logging
from node.protocol.eip712 import Domain
from node.protocol.genesis import Genesis
from node.storage import LevelDB

from .watcher import Contracts, Watcher, WatcherMetrics

log = logging.getLogger(__name__)

KEY_ENV = "RATCHET_WATCHER_KEY"
"""The environment variable holding the watcher's private key (0x-hex)."""


@dataclass(frozen=True)
class Settings:
    """A watchtower's configuration, checked."""

    domain: Domain
    genesis: Genesis
    key: bytes
    data_dir: Path
    l1_rpc: str
    contracts: Contracts
    confirmations: int
    poll_s: float
    metrics_port: int
    metrics_host: str = "127.0.0.1"
    """Where /metrics listens (``[watcher] metrics_host``; 0.0.0.0 in a container)."""


def settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check the config at ``path``; :class:`ConfigError` says what is wrong."""
    env = os.environ if environ is None else environ
    config = load_config(path, env)
    base = Path(path).parent
    contracts = require_section(config, "contracts")
    l1 = require_section(config, "l1")
    domain = domain_option(config)
    for name in ("bridge", "dispute"):
        address_option(contracts.get(name), f"contracts.{name}")
    rpc = l1.get("rpc")
    if not isinstance(rpc, str) or not rpc:
        raise ConfigError("l1.rpc is required: a watcher reads everything from L1")
    watcher = config.get("watcher", {})
    numbers = {
        "l1.confirmations": l1.get("confirmations", 0),
        "l1.start_block": l1.get("start_block", 0),
        "watcher.metrics_port": watcher.get("metrics_port", 0),
    }
    for name, value in numbers.items():
        if not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer")
    poll = l1.get("poll_s", 1.0)
    if not isinstance(poll, (int, float)) or poll <= 0:
        raise ConfigError("l1.poll_s must be positive")
    return Settings(
        domain=domain,
        genesis=load_genesis(config, path),
        key=private_key(watcher, env, KEY_ENV, base),
        data_dir=data_dir_option(config, base),
        l1_rpc=rpc,
        contracts=Contracts(
            str(contracts["rollup"]),
            str(contracts["bridge"]),
            str(contracts["dispute"]),
            numbers["l1.start_block"],
        ),
        confirmations=numbers["l1.confirmations"],
        poll_s=float(poll),
        metrics_port=numbers["watcher.metrics_port"],
        metrics_host=str(watcher.get("metrics_host", "127.0.0.1")),
    )


async def serve(config: Settings) -> None:
    """Run the watchtower until SIGTERM or SIGINT."""
    registry = CollectorRegistry()
    if config.metrics_port:
        start_http_server(config.metrics_port, config.metrics_host, registry)
    w3 = connect(config.l1_rpc)
    with LevelDB(config.data_dir / "db") as db:
        watcher = Watcher(
            w3,
            config.contracts,
            config.key,
            db,
            config.genesis,
            config.domain,
            confirmations=config.confirmations,
            metrics=WatcherMetrics(registry),
        )
        log.info(
            "watching",
            extra={"watcher": watcher.me, "verified": watcher.verifier.next_index},
        )
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watcher.run, config.poll_s)
                async for _ in signals:
                    log.info("shutting down")
                    nursery.cancel_scope.cancel()
                    break
    log.info("stopped")


def main(config_path: str) -> int:
    """Entry point of ``ratchet watch``."""
    json_logging()
    try:
        config = settings(config_path)
    except ConfigError as exc:
        print(f"ratchet watch: {exc}", file=sys.stderr)
        return 2
    trio.run(serve, config)
    return 0
