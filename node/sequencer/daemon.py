"""
``ratchet sequencer --config FILE``: the daemon that runs the engine, its JSON-RPC
server and its timers, until SIGTERM or SIGINT.

Configuration (TOML, every option overridable as ``RATCHET_<SECTION>_<KEY>``; see
configs/devnet.toml and docs/sequencer.md):

- ``[chain] chain_id``: the L2 chain id of the EIP-712 domain;
- ``[contracts] rollup``: the L1 rollup address, the domain's ``verifyingContract``
  (and the other addresses ``ratchet deploy`` wrote, served by ``ratchet_getConfig``);
- ``[rpc] host, port``; ``[batch] max_transactions, max_interval_s``;
- ``[l1] rpc, confirmations, poll_s, start_block`` and ``[contracts] bridge, dispute``:
  where the inbox is followed from and games are watched (without ``rpc`` the daemon
  runs without L1);
- ``[storage] data_dir``; ``[genesis]``;
- the sequencer's key: the environment variable ``RATCHET_SEQUENCER_KEY`` (0x-hex) or
  the file named by ``[sequencer] key_file``, never the config itself.

With ``[l1] rpc`` set it also follows the L1 inbox (:mod:`.follower`) and posts every
sealed batch with the sequencer's key (:mod:`.poster`), following it to final (receipts
show that finality), and defends its batches in the DisputeGame (:mod:`.defence`).

Shutdown is graceful: the server stops taking requests, every acknowledged entry and
sealed batch is already durable (nothing is acknowledged before), and the open batch
stays open in the log and is reopened at the next start.
"""

import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp_rpc
import uvloop
from aiohttp import web
from web3 import Web3

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
from node.l1.deploy import bind
from node.l1.inbox_reader import InboxReader
from node.logs import json_logging
from node.protocol.eip712 import Domain
from node.protocol.genesis import COLLATERAL_DECIMALS, Genesis
from node.storage import LevelDB

from .defence import Defence, DefenceMetrics
from .engine import Sequencer
from .faults import DEV_CHAIN_IDS, WrongRoot
from .follower import InboxFollower
from .post_state import PostState, PostStatus
from .poster import Poster, PosterConfig, PosterError, PosterMetrics
from .rpc import Api, Metrics, application

log = logging.getLogger(__name__)

RECURSION_LIMIT = 4_000
"""Python's recursion limit in the daemon (see :func:`main`)."""

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
    devnet_faults: bool = False
    """``[devnet] faults``: serve ``devnet_postWrongRoot`` (:mod:`.faults`; dev chains only)."""


def settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check the config at ``path``; :class:`ConfigError` says what is wrong."""
    env = os.environ if environ is None else environ
    config = load_config(path, env)
    base = Path(path).parent
    chain = require_section(config, "chain")
    contracts = {k: str(v) for k, v in require_section(config, "contracts").items()}
    domain = domain_option(config)
    rpc = config.get("rpc", {})
    batch = config.get("batch", {})
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
        address_option(contracts.get("bridge"), "contracts.bridge")
        address_option(contracts.get("dispute"), "contracts.dispute")
    faults = config.get("devnet", {}).get("faults", False)
    if not isinstance(faults, bool):
        raise ConfigError("devnet.faults must be true or false")
    if faults and (l1_rpc is None or l1_chain_id not in DEV_CHAIN_IDS):
        raise ConfigError(
            f"devnet.faults needs an L1 development chain (chain.l1_chain_id in "
            f"{sorted(DEV_CHAIN_IDS)}): a wrong root costs the sequencer its stake"
        )
    return Settings(
        domain=domain,
        genesis=load_genesis(config, path),
        key=private_key(config.get("sequencer", {}), env, KEY_ENV, base),
        data_dir=data_dir_option(config, base),
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
        devnet_faults=faults,
    )


def check_l1_chain(actual: int, config: Settings) -> None:
    """The L1 node must be on the chain the config names (a config pointed at the wrong
    node would post there), and fault injection needs a development chain in fact, not
    only in the config. :class:`ConfigError` otherwise."""
    if config.l1_chain_id is not None and actual != config.l1_chain_id:
        raise ConfigError(
            f"the L1 at {config.l1_rpc} has chain id {actual}, "
            f"the config says chain.l1_chain_id = {config.l1_chain_id}"
        )
    if config.devnet_faults and actual not in DEV_CHAIN_IDS:
        raise ConfigError(f"devnet.faults on L1 chain {actual}: only development chains")


class Node:
    """A sequencer's parts, assembled from its settings over an open database."""

    def __init__(self, config: Settings, db: LevelDB) -> None:
        self.config = config
        self.w3: Web3 | None = None
        clock: Callable[[], float] = time.time
        if config.l1_rpc is not None:
            self.w3 = connect(config.l1_rpc)
            check_l1_chain(self.w3.eth.chain_id, config)
            self.l1_time = int(self.w3.eth.get_block("latest")["timestamp"])
            clock = self._l1_clock
        started = time.monotonic()
        self.engine = Sequencer(
            db,
            config.genesis,
            config.domain,
            config.key,
            max_batch_transactions=config.max_transactions,
            clock=clock,
        )
        log.info(
            "engine ready",
            extra={
                "entries": self.engine.ledger.head,
                "closed_batches": self.engine.closed,
                "recovery_s": round(time.monotonic() - started, 3),
            },
        )
        self.problems: list[str] = []
        """What is wrong, for /health (empty: all is well)."""
        metrics = Metrics()
        self.poster: Poster | None = None
        self.defence: Defence | None = None
        self._recovery: asyncio.Task[None] | None = None
        if self.w3 is not None:
            l1_lock = asyncio.Lock()  # one sender of the key's transactions at a time
            l1_metrics = PosterMetrics(metrics.registry)
            self.poster = Poster(
                self.w3,
                config.contracts["rollup"],
                config.key,
                db,
                self.engine.batch,
                config=PosterConfig(start_block=config.l1_start_block),
                metrics=l1_metrics,
                l1_lock=l1_lock,
                on_change=self._on_post_change,
            )
            poster = self.poster

            def serial_of(index: int) -> int | None:
                state = poster.status(index)
                return state.serial if state is not None else None

            self.defence = Defence(
                self.w3,
                config.contracts["dispute"],
                config.key,
                self.engine,
                serial_of,
                l1_lock=l1_lock,
                metrics=DefenceMetrics(metrics.registry),
                l1_metrics=l1_metrics,
                poll_s=config.l1_poll_s,
            )
            wake = self.poster.wake
            self.engine.listeners.append(
                lambda channel, _: wake() if channel == "batches" else None
            )
        public = {
            "chainId": config.domain.chain_id,
            "l1ChainId": config.l1_chain_id,
            "contracts": config.contracts,
            "maxBatchTransactions": config.max_transactions,
            "batchIntervalS": config.max_interval_s,
            "collateralDecimals": COLLATERAL_DECIMALS,
        }
        if self.w3 is not None:
            rollup = bind(self.w3, "Rollup", config.contracts["rollup"])
            public["challengePeriod"] = int(rollup.functions.challengeWindow().call())
        finality = self.poster.finality if self.poster is not None else None
        self.extra_methods: list[aiohttp_rpc.JSONRPCMethod] = []
        """JSON-RPC methods beside the API's: the devnet's fault injection, if enabled."""
        if config.devnet_faults:
            fault = WrongRoot(self.engine)
            self.extra_methods.append(
                aiohttp_rpc.JSONRPCMethod(fault.devnet_postWrongRoot, name="devnet_postWrongRoot")
            )
            log.warning("devnet fault injection is on: devnet_postWrongRoot posts a wrong root")
        self.api = Api(
            self.engine,
            config.genesis,
            public,
            metrics=metrics,
            finality=finality,
            heads=self.heads,
            l1_tx_hash=self.poster.l1_tx_hash if self.poster is not None else None,
        )

    def heads(self) -> dict[str, Any]:
        """The L1 heads for ``ratchet_getStatus``: batches posted and final (counts),
        the open disputes on our batches, the L1 time."""
        if self.poster is None or self.defence is None:
            return {}
        return {
            "posted": self.poster.next_index,
            "final": self.poster.finalized,
            "openDisputes": self.defence.open_games(),
            "l1Time": self.l1_time,
        }

    def _on_post_change(self, index: int, state: PostState) -> None:
        """A batch's L1 status changed: a rejection starts the recovery (once)."""
        if state.status is PostStatus.REJECTED and (
            self._recovery is None or self._recovery.done()
        ):
            self._recovery = asyncio.get_running_loop().create_task(self._recover_from(index))

    async def _recover_from(self, index: int) -> None:
        """Batch ``index`` was proven wrong on L1 (it and every later batch are gone): revert
        the engine to the last good root, repost from ``index``, and sequence the undone
        steps again (their old receipts read ``rejected``; re-executed transactions get
        new ones)."""
        assert self.poster is not None
        log.critical("batch %d was rejected on L1: reverting to the last good root", index)
        try:
            undone = await self.engine.revert(index)
            await self.poster.resume_from(index)
            again, dropped = await self.engine.reexecute(undone)
        except Exception as exc:
            log.exception("recovery from the rejection of batch %d failed", index)
            self.problems.append(f"recovery from the rejection of batch {index} failed: {exc}")
            return
        log.warning(
            "recovered from the rejection of batch %d: %d transactions again, %d dropped",
            index,
            again,
            dropped,
            extra={"batch": index, "again": again, "dropped": dropped},
        )

    def _l1_clock(self) -> float:
        """The batch clock with L1: the latest L1 block's time. A batch's timestamp may not
        be ahead of the block that posts it, and L1 only moves with its blocks."""
        return self.l1_time

    async def _follow_l1_time(self, stop: asyncio.Event) -> None:
        assert self.w3 is not None
        w3 = self.w3
        while not stop.is_set():
            try:
                block = await asyncio.to_thread(w3.eth.get_block, "latest")
                self.l1_time = max(self.l1_time, int(block["timestamp"]))
            except Exception as exc:
                log.warning("cannot read the L1 head: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.l1_poll_s)

    async def health(self) -> dict[str, Any]:
        """The /health body."""
        return {
            "ok": not self.problems,
            "problems": self.problems,
            "sequence": self.engine.ledger.head,
            "closedBatches": self.engine.closed,
            "postingHaltedAt": self.poster.halted_at if self.poster is not None else None,
            "postingBlocked": self.poster.blocked if self.poster is not None else None,
        }

    def workers(self, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        """Start the background work: the batch timer, and with L1 the inbox follower and
        the poster."""
        tasks = [asyncio.create_task(self._batch_timer())]
        if self.w3 is not None:
            tasks.append(asyncio.create_task(self._follow_l1_time(stop)))
            reader = InboxReader(
                self.w3,
                self.config.contracts["bridge"],
                self.config.confirmations,
                start_block=self.config.l1_start_block,
            )
            follower = InboxFollower(reader, self.engine, poll_s=self.config.l1_poll_s)
            tasks.append(asyncio.create_task(follower.run(stop)))
        if self.poster is not None:
            tasks.append(asyncio.create_task(post_batches(self.poster, stop, self.problems)))
        if self.defence is not None:
            tasks.append(asyncio.create_task(self.defence.run(stop)))
        return tasks

    async def _batch_timer(self) -> None:
        while True:
            await asyncio.sleep(self.config.max_interval_s)
            try:
                await self.engine.close_batch()
            except Exception:
                # a batch record could not be written: as for the log, stop (exit 1)
                log.critical("sealing a batch failed", exc_info=True)
                self.engine.committer.failed.set()
                return


async def serve(config: Settings, *, ready: asyncio.Event | None = None) -> int:
    """Run the sequencer until SIGTERM/SIGINT; its exit code (1 if the log failed)."""
    exit_code = 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with LevelDB(config.data_dir / "db") as db:
        node = Node(config, db)
        # no access log: a line per request is noise at thousands of requests a second
        runner = web.AppRunner(
            application(node.api, node.health, node.extra_methods),
            handle_signals=False,
            access_log=None,
        )
        await runner.setup()
        await web.TCPSite(runner, config.host, config.port).start()
        log.info("serving", extra={"host": config.host, "port": config.port})
        if ready is not None:
            ready.set()
        workers = node.workers(stop)
        failed = asyncio.create_task(node.engine.committer.failed.wait())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait((failed, stopped), return_when=asyncio.FIRST_COMPLETED)
            if failed.done():
                log.critical("the transaction log failed: stopping, nothing more is acknowledged")
                exit_code = 1
        finally:
            log.info("shutting down")
            stop.set()
            for task in (failed, stopped, *workers):
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await runner.cleanup()
            if exit_code == 0:
                await node.engine.flush()
    log.info("stopped", extra={"exit_code": exit_code})
    return exit_code


async def post_batches(poster: Poster, stop: asyncio.Event, problems: list[str]) -> None:
    """Run the poster; a permanent error (which needs an operator) is logged and shown
    on /health, and the sequencer keeps serving soft receipts."""
    try:
        await poster.run(stop)
    except PosterError as exc:
        log.critical("batch posting stopped: %s", exc)
        problems.append(f"posting stopped: {exc}")


def main(config_path: str) -> int:
    """Entry point of ``ratchet sequencer``."""
    # `kill -USR1 <pid>` dumps every thread's stack to stderr: for a daemon that seems stuck
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # py_ecc (imported through web3) raises the recursion limit to 100,000, past where the
    # C stack ends: code that recurses on hostile data would crash instead of raising
    sys.setrecursionlimit(RECURSION_LIMIT)
    json_logging()
    try:
        config = settings(config_path)
    except ConfigError as exc:
        print(f"ratchet sequencer: {exc}", file=sys.stderr)
        return 2
    try:
        # uvloop: the event loop and its sockets in C (libuv); a request costs less
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(serve(config))
    except ConfigError as exc:
        print(f"ratchet sequencer: {exc}", file=sys.stderr)
        return 2
