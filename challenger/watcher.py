"""
``ratchet watch --config FILE``: one watchtower. It follows the Rollup from L1 alone,
re-executes every posted batch on its own state, and disputes every wrong root it finds
while the batch's window is open, playing :func:`challenger.game.next_moves` down to the
one-step proof, then claims what it won.

It runs on trio; every web3 call is blocking and runs in a worker thread
(``trio.to_thread.run_sync``). Each round (:meth:`Watcher.tick`):

1. read new Rollup events (:class:`~node.l1.batch_reader.BatchReader`, confirmed blocks);
   for a post, read the inbox messages it consumed from the Bridge
   (:class:`~node.l1.inbox_reader.InboxReader`) and verify it
   (:class:`~challenger.verifier.Verifier`); a rejection makes the verifier forget the
   rejected batches;
2. open a game (with the bond) on each wrong batch still in its window that it has no
   game on yet (:func:`~challenger.game.should_challenge`);
3. move in each of its open games; close the ones whose batch another game rejected
   (the bond comes back); claim its credit in the DisputeGame and the Rollup.

Restart-safe: the verdicts are in its LevelDB (a batch is re-executed once); the events
are read again from the deployment block on every start, which is cheap and gives back
the data of every standing batch a dispute may need; its open games are found again on
L1 (by challenger address) and resumed. Several watchers, each with its own key
and data dir, never touch each other's games.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from prometheus_client import CollectorRegistry, Counter, Gauge
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from node.l1.batch_reader import BatchReader, PostedBatch, Rejected
from node.l1.deploy import bind
from node.l1.inbox_reader import InboxReader
from node.protocol.batch import Batch, transaction_proof
from node.protocol.eip712 import Domain
from node.protocol.genesis import Genesis
from node.protocol.step import StepKind
from node.storage.db import KeyValueDB

from .game import Game, GameStatus, Move, MoveKind, Party, next_moves, should_challenge
from .verifier import Trace, Verifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Contracts:
    """The rollup's L1 addresses."""

    rollup: str
    bridge: str
    dispute: str
    start_block: int = 0


class WatcherMetrics:
    """What a watchtower exposes on /metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.verified = Counter(
            "ratchet_watch_batches_verified_total", "Batches re-executed", registry=registry
        )
        self.wrong = Counter(
            "ratchet_watch_wrong_batches_total", "Batches whose root was wrong", registry=registry
        )
        self.games = Counter(
            "ratchet_watch_games_opened_total", "Games this watcher opened", registry=registry
        )
        self.won = Counter("ratchet_watch_games_won_total", "Games won", registry=registry)
        self.open = Gauge("ratchet_watch_games_open", "Own games in play", registry=registry)
        self.bonds = Gauge(
            "ratchet_watch_bonds_at_stake_wei", "Bonds in own open games", registry=registry
        )
        self.clock = Gauge(
            "ratchet_watch_game_clock_seconds",
            "Seconds left on each party's clock in own open games",
            ["game", "party"],
            registry=registry,
        )
        self.lag = Gauge(
            "ratchet_watch_lag_blocks", "L1 blocks between the head and the cursor",
            registry=registry,
        )  # fmt: skip


class Watcher:
    """One watchtower over one rollup."""

    def __init__(
        self,
        w3: Web3,
        contracts: Contracts,
        key: bytes,
        db: KeyValueDB,
        genesis: Genesis,
        domain: Domain,
        *,
        confirmations: int = 0,
        metrics: WatcherMetrics | None = None,
    ) -> None:
        self.w3 = w3
        self.account: LocalAccount = Account.from_key(key)
        self.me = self.account.address
        self.db = db
        self.rollup: Contract = bind(w3, "Rollup", contracts.rollup)
        self.game_contract: Contract = bind(w3, "DisputeGame", contracts.dispute)
        self.verifier = Verifier(db, genesis, domain)
        # read from the deployment on every start: the standing batches' data is what a
        # dispute needs, and re-reading is cheap next to re-executing (which the verdicts
        # already recorded spare)
        self.reader = BatchReader(
            w3, contracts.rollup, confirmations, start_block=contracts.start_block
        )
        self.inbox = InboxReader(
            w3, contracts.bridge, confirmations, start_block=contracts.start_block
        )
        self.metrics = metrics or WatcherMetrics(CollectorRegistry())
        self.batches: dict[int, PostedBatch] = {}
        """The standing posted batches by index (what a dispute needs)."""
        self.games: dict[int, int] = {}
        """Own open games: game id -> batch index."""
        self._next_game = 0

    # following ---------------------------------------------------------------------------

    async def tick(self) -> None:
        """One round: follow, verify and challenge, then play and claim."""
        items = await trio.to_thread.run_sync(self.reader.read, 256)
        head = int(await self._call(lambda: self.w3.eth.block_number))
        lag = max(0, head - self.reader.cursor.block)
        self.metrics.lag.set(lag)
        if len(items) == 256:
            log.info("catching up", extra={"events": len(items), "lag_blocks": lag})
        for item in items:
            if isinstance(item, PostedBatch):
                await self._verify(item)
            elif isinstance(item, Rejected):
                log.warning("batches %d..%d rejected on L1", item.from_index, item.to_index - 1)
                self.verifier.rejected(item.from_index)
                for index in [i for i in self.batches if i >= item.from_index]:
                    del self.batches[index]
        await self._discover_games()
        await self._challenge()
        await self._play()
        await self._claim()

    async def _verify(self, posted: PostedBatch) -> None:
        batch = posted.batch
        known = self.verifier.records.get(batch.index)
        if known is not None:
            if known.serial == posted.serial:
                self.batches[batch.index] = posted  # verified before a restart
            return  # or history: a post a later rejection replaced
        self.batches[batch.index] = posted
        messages = await self._messages(batch)
        verdict = self.verifier.verify(batch, posted.serial, messages)
        self.metrics.verified.inc()
        if verdict.wrong:
            self.metrics.wrong.inc()
            log.warning(
                "batch %d has a wrong root: L1 0x%s, replay 0x%s",
                batch.index,
                verdict.posted_root.hex(),
                verdict.own_root.hex(),
                extra={"batch": batch.index, "serial": posted.serial},
            )
        else:
            log.info("batch %d verified", batch.index, extra={"batch": batch.index})

    async def _messages(self, batch: Batch) -> list[bytes]:
        count = batch.inbox_end - batch.inbox_start
        if count == 0:
            return []
        found = await trio.to_thread.run_sync(self.inbox.read, batch.inbox_start, count)
        if len(found) != count:
            raise RuntimeError(f"batch {batch.index}'s inbox messages are not confirmed yet")
        return [m.data for m in found]

    # games -------------------------------------------------------------------------------

    async def _call(self, function: Callable[[], Any]) -> Any:
        return await trio.to_thread.run_sync(function)

    async def _discover_games(self) -> None:
        """Find own open games on L1 (after a restart, and the ones opened this round)."""
        count = int(await self._call(self.game_contract.functions.gameCount().call))
        while self._next_game < count:
            game_id = self._next_game
            self._next_game += 1
            fields = await self._call(self.game_contract.functions.game(game_id).call)
            found = Game.from_call(game_id, fields)
            if found.challenger.lower() == self.me.lower() and found.status == GameStatus.OPEN:
                self.games[game_id] = found.batch_index
        self.metrics.open.set(len(self.games))

    async def _challenge(self) -> None:
        now = int((await self._call(lambda: self.w3.eth.get_block("latest")))["timestamp"])
        window = int(await self._call(self.rollup.functions.challengeWindow().call))
        bond = int(await self._call(self.game_contract.functions.challengerBond().call))
        for index, posted in sorted(self.batches.items()):
            verdict = self.verifier.records.get(index)
            if verdict is None or not verdict.wrong:
                continue
            if any(b < index for b in self.games.values()):
                # an earlier wrong batch is disputed already: rejecting it takes this one
                # (and every later one) with it
                break
            mine = sum(1 for b in self.games.values() if b == index)
            if not should_challenge(
                verdict.posted_root, verdict.own_root, now, posted.posted_at + window, mine
            ):
                continue
            alive = await self._call(self.rollup.functions.isAlive(index, posted.serial).call)
            if not alive:
                continue
            data = self.game_contract.encode_abi("challenge", args=[index])
            receipt = await self._send(self.game_contract.address, data, value=bond)
            if receipt is None:
                continue
            opened = self.game_contract.events.GameOpened().process_receipt(receipt)
            game_id = int(opened[0]["args"]["gameId"])
            self.games[game_id] = index
            self.metrics.games.inc()
            log.warning("challenged batch %d: game %d", index, game_id, extra={"game": game_id})
        self.metrics.open.set(len(self.games))
        self.metrics.bonds.set(bond * len(self.games))

    async def _play(self) -> None:
        now = int((await self._call(lambda: self.w3.eth.get_block("latest")))["timestamp"])
        for game_id, index in list(self.games.items()):
            fields = await self._call(self.game_contract.functions.game(game_id).call)
            game = Game.from_call(game_id, fields)
            self._show_clocks(game, now)
            if game.status != GameStatus.OPEN:
                del self.games[game_id]
                for party in ("defender", "challenger"):
                    self.metrics.clock.remove(str(game_id), party)
                if game.status == GameStatus.CHALLENGER_WON:
                    self.metrics.won.inc()
                log.info("game %d ended: %s", game_id, game.status.name, extra={"game": game_id})
                continue
            posted = self.batches.get(index)
            alive = posted is not None and await self._call(
                self.rollup.functions.isAlive(index, game.serial).call
            )
            if not alive:
                # another game rejected the batch: stand down, and get the bond back
                data = self.game_contract.encode_abi("closeGame", args=[game_id])
                await self._send(self.game_contract.address, data)
                continue
            assert posted is not None
            trace = self.verifier.trace(posted.batch, await self._messages(posted.batch))
            for move in next_moves(game, self.me, trace.roots.__getitem__, now):
                log.info(
                    "game %d: %s",
                    game_id,
                    move.kind.value,
                    extra={"game": game_id, "lo": game.lo, "hi": game.hi},
                )
                await self._send(self.game_contract.address, self._move(move, posted, trace))
        self.metrics.open.set(len(self.games))

    def _show_clocks(self, game: Game, now: int) -> None:
        """Export the seconds left on both clocks (the one on turn runs since the last
        move)."""
        elapsed = max(0, now - game.last_move_at)
        clocks = {"defender": game.defender_clock, "challenger": game.challenger_clock}
        on_turn = "defender" if game.turn == Party.DEFENDER else "challenger"
        clocks[on_turn] = max(0, clocks[on_turn] - elapsed)
        for party, left in clocks.items():
            self.metrics.clock.labels(str(game.id), party).set(left)

    def _move(self, move: Move, posted: PostedBatch, trace: Trace) -> str:
        """The calldata of ``move``."""
        game_id = move.game
        args: list[Any]
        if move.kind == MoveKind.RESPOND:
            name, args = "respond", [game_id, move.agree]
        elif move.kind == MoveKind.TIMEOUT:
            name, args = "timeout", [game_id]
        else:
            step = trace.steps[move.step]
            proof: list[bytes] = []
            if step.kind == StepKind.TRANSACTION:
                batch = posted.batch
                inbox = batch.inbox_end - batch.inbox_start
                proof = list(transaction_proof(batch.transactions, move.step - inbox))
            witness = self.verifier.witness(trace, move.step)
            name, args = "proveStep", [game_id, step.data, proof, witness]
        return str(self.game_contract.encode_abi(name, args=args))

    async def _claim(self) -> None:
        for contract in (self.game_contract, self.rollup):
            credit = int(await self._call(contract.functions.credit(self.me).call))
            if credit > 0:
                data = contract.encode_abi("claimCredit", args=[])
                if await self._send(contract.address, data) is not None:
                    log.info("claimed %d wei", credit, extra={"contract": contract.address})

    async def _send(self, to: str, data: str, value: int = 0) -> TxReceipt | None:
        """Sign and send one transaction, wait for it; None (logged) if it reverts."""
        return await trio.to_thread.run_sync(self._send_sync, to, data, value)

    def _send_sync(self, to: str, data: str, value: int) -> TxReceipt | None:
        params: Any = {"from": self.me, "to": to, "data": data, "value": value}
        try:
            params["gas"] = int(self.w3.eth.estimate_gas(params) * 5 // 4)
        except Exception as exc:
            log.warning("a transaction to %s would revert: %s", to, exc)
            return None
        params["nonce"] = self.w3.eth.get_transaction_count(self.me, "pending")
        params["chainId"] = self.w3.eth.chain_id
        fees = self.w3.eth.fee_history(1, "latest", [50])
        base = int(fees["baseFeePerGas"][-1])
        params["maxPriorityFeePerGas"] = 10**9
        params["maxFeePerGas"] = 2 * base + 10**9
        signed = self.account.sign_transaction(params)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            log.warning("transaction 0x%s reverted", bytes(HexBytes(tx_hash)).hex())
            return None
        return receipt

    async def run(self, poll_s: float) -> None:
        """Tick every ``poll_s`` seconds, forever; a failed round is logged and retried."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("watch round failed; retrying")
            await trio.sleep(poll_s)
