"""
The sequencer's defence of its batches in the DisputeGame (docs/l1.md, "The dispute
game"): it answers every challenge of a batch it posted, by its own trace, within its
clock, and collects the bonds it wins.

Each game of one of its batches (same index and serial as the poster recorded) is
played by :func:`defender_moves`, a pure function of the game's state and the L1 time:

- on the defender's turn with ``hi - lo >= 2``: **bisect** with the root of its own
  trace at ``mid = (lo + hi) // 2``;
- on the defender's turn at one step (``hi = lo + 1``): **prove** step ``lo`` on the
  one-step executor, with the step's input (an inbox message, or a transaction with its
  inclusion proof against the batch's transaction root) and the witness built by
  replaying it from the agreed root. An honest batch always wins here;
- on the challenger's turn, once the challenger's clock has run out: **timeout**, which
  wins the game;
- once it has credit in the DisputeGame (won bonds): **claim** it.

The trace's roots come from :meth:`Sequencer.trace_roots`, a replay of the batch from
its parent root over the stored state. Moves are sent with the sequencer's key through
its own :class:`~node.sequencer.sender.L1Sender`, holding the lock the poster holds, so
the two never race for a nonce. A batch that is not honest (a test's rogue batch) loses:
the defence plays its real trace regardless, and the batch is rejected on L1.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from eth_account import Account
from hexbytes import HexBytes
from prometheus_client import CollectorRegistry, Counter, Gauge
from web3 import Web3
from web3.contract import Contract

from node.l1.deploy import bind
from node.l1.dispute import Game, GameStatus, Party
from node.protocol.batch import transaction_proof
from node.protocol.step import BatchContext, StepKind
from node.protocol.stf import prove_step
from node.protocol.tree import OverlayNodeStore

from .engine import Sequencer
from .poster import PosterMetrics
from .sender import L1Sender, SenderConfig, gas_limit

log = logging.getLogger(__name__)


class MoveKind(Enum):
    """What the defender does."""

    BISECT = "bisect"
    PROVE = "proveStep"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Move:
    """One move: for BISECT the position ``at`` whose root goes on L1 (``mid``), for
    PROVE the step ``at`` (``lo``)."""

    kind: MoveKind
    game: int
    at: int = 0


def defender_moves(game: Game, now: int) -> list[Move]:
    """The defender's moves in ``game`` at L1 time ``now`` (none while it waits)."""
    if game.status != GameStatus.OPEN:
        return []
    if game.turn == Party.DEFENDER:
        if game.hi - game.lo >= 2:
            return [Move(MoveKind.BISECT, game.id, (game.lo + game.hi) // 2)]
        return [Move(MoveKind.PROVE, game.id, game.lo)]
    if now - game.last_move_at > game.challenger_clock:
        return [Move(MoveKind.TIMEOUT, game.id)]
    return []


class DefenceMetrics:
    """Dispute metrics: games seen and their outcomes, moves made, bonds at stake."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.games = Counter(
            "ratchet_disputes_total", "Games opened on our batches", registry=registry
        )
        self.moves = Counter(
            "ratchet_dispute_moves_total", "Moves made, by kind", ["kind"], registry=registry
        )
        self.resolved = Counter(
            "ratchet_disputes_resolved_total",
            "Games on our batches that ended, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.open = Gauge("ratchet_disputes_open", "Games open on our batches", registry=registry)


class Defence:
    """Plays every game on the sequencer's batches."""

    def __init__(
        self,
        w3: Web3,
        dispute_address: str,
        key: bytes,
        engine: Sequencer,
        serial_of: Callable[[int], int | None],
        *,
        l1_lock: asyncio.Lock,
        metrics: DefenceMetrics,
        l1_metrics: PosterMetrics,
        poll_s: float = 1.0,
        sender: SenderConfig | None = None,
    ) -> None:
        self.w3 = w3
        self.game_contract: Contract = bind(w3, "DisputeGame", dispute_address)
        self.engine = engine
        self.serial_of = serial_of
        """The L1 serial the poster recorded for a batch index (None: not posted)."""
        self.lock = l1_lock
        self.metrics = metrics
        self.poll_s = poll_s
        account = Account.from_key(key)
        self.address = account.address
        self.l1 = L1Sender(
            w3, account, self.game_contract.address, sender or SenderConfig(), l1_metrics
        )
        self._next_game = 0
        self._open: dict[int, Game] = {}

    def open_games(self) -> list[dict[str, object]]:
        """The games open on our batches, as ``ratchet_getStatus`` shows them."""
        return [
            {
                "game": g.id,
                "batch": g.batch_index,
                "challenger": g.challenger,
                "lo": g.lo,
                "hi": g.hi,
                "turn": g.turn.name.lower(),
            }
            for g in self._open.values()
        ]

    async def _view(self, name: str, *args: object) -> Any:
        function = getattr(self.game_contract.functions, name)
        return await self.l1.call(name, lambda: function(*args).call())

    async def tick(self) -> None:
        """Discover new games on our batches, move in every open one, claim credit."""
        count = int(await self._view("gameCount"))
        while self._next_game < count:
            game = Game.from_call(self._next_game, await self._view("game", self._next_game))
            self._next_game += 1
            if game.status == GameStatus.OPEN and self.serial_of(game.batch_index) == game.serial:
                self._open[game.id] = game
                self.metrics.games.inc()
                log.warning(
                    "batch %d challenged (game %d)",
                    game.batch_index,
                    game.id,
                    extra={"game": game.id, "batch": game.batch_index, "by": game.challenger},
                )
        now = await self.l1.call("block", lambda: self.w3.eth.get_block("latest")["timestamp"])
        for game_id in list(self._open):
            game = Game.from_call(game_id, await self._view("game", game_id))
            if game.status != GameStatus.OPEN:
                del self._open[game_id]
                won = game.status == GameStatus.DEFENDER_WON
                self.metrics.resolved.labels("won" if won else game.status.name.lower()).inc()
                log.info("game %d ended: %s", game_id, game.status.name, extra={"game": game_id})
                continue
            self._open[game_id] = game
            for move in defender_moves(game, now):
                await self._play(game, move)
        self.metrics.open.set(len(self._open))
        credit = int(await self._view("credit", self.address))
        if credit > 0:
            await self._send("claimCredit", self.game_contract.encode_abi("claimCredit", args=[]))
            log.info("claimed %d wei of dispute credit", credit, extra={"wei": credit})

    async def _play(self, game: Game, move: Move) -> None:
        contract = self.game_contract
        if move.kind == MoveKind.BISECT:
            root = self.engine.trace_roots(game.batch_index)[move.at]
            data = contract.encode_abi("bisect", args=[game.id, root])
        elif move.kind == MoveKind.PROVE:
            step_input, proof, witness = self._proof(game.batch_index, move.at)
            data = contract.encode_abi("proveStep", args=[game.id, step_input, proof, witness])
        else:
            data = contract.encode_abi("timeout", args=[game.id])
        log.info(
            "game %d: %s at %d",
            game.id,
            move.kind.value,
            move.at,
            extra={"game": game.id, "move": move.kind.value, "lo": game.lo, "hi": game.hi},
        )
        if await self._send(move.kind.value, data):
            self.metrics.moves.labels(move.kind.value).inc()

    def _proof(self, index: int, position: int) -> tuple[bytes, list[bytes], bytes]:
        """Step ``position`` of batch ``index``: its input, its inclusion proof (none for
        an inbox message) and its witness from the agreed root."""
        batch, steps = self.engine.trace(index)
        step = steps[position]
        pre_root = self.engine.trace_roots(index)[position]
        context = BatchContext(batch.timestamp, self.engine.domain)
        store = OverlayNodeStore(self.engine.trace_store(index))
        _, witness, _ = prove_step(store, pre_root, step, context)
        proof: list[bytes] = []
        if step.kind == StepKind.TRANSACTION:
            inbox = batch.inbox_end - batch.inbox_start
            proof = list(transaction_proof(batch.transactions, position - inbox))
        return step.data, proof, witness

    async def _send(self, label: str, data_hex: str) -> bool:
        """Send one move under the shared L1 lock; whether it was mined successfully."""
        data = bytes(HexBytes(data_hex))
        async with self.lock:
            estimate = await self.l1.estimate(data)
            if not isinstance(estimate, int):
                log.warning("%s would revert: %s", label, estimate)
                return False
            fees = await self.l1.market_fees()
            nonce = await self.l1.mined_nonce()
            receipt = await self.l1.transact(label, data, gas_limit(estimate), nonce, fees)
        ok = receipt is not None and receipt["status"] == 1
        if not ok:
            log.warning("%s did not succeed: %s", label, receipt)
        return ok

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every ``poll_s`` until ``stop``; errors are logged and retried."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("dispute defence round failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_s)
