"""
The L1 batch poster: posts every closed batch to the Rollup, in order, exactly once, and
follows it to ``posted`` and, after its challenge window, ``final`` (or ``rejected``).

Posting is where the sequencer spends real money against an unreliable outside world:
the L1 node may be down, slow or lying about its mempool, a transaction may sit unmined
or be replaced, and the process may die between sending a transaction and learning
that it landed. The poster's guarantees:

- **In order, never twice.** Batch ``k`` is sent only while ``Rollup.nextIndex() == k``.
  Before every send, and whenever a nonce it used was taken by something else, the poster
  reconciles with L1: if L1 already holds batch ``k`` and ``Rollup.headerHash(k)`` is the
  local header's hash, the batch is recorded as posted, whichever transaction put it
  there (one sent before a crash, one sent by hand). If L1 holds a *different* batch at
  ``k``, it stops with :class:`ConflictingBatchError`: another sequencer is posting with
  this key, and fighting it would only burn gas.
- **Write ahead.** The posting state (:class:`PostState`) is written with ``sync=True``
  before any transaction is sent, with its nonce, fees and hash. A restart therefore
  knows every transaction that may be in flight: it re-broadcasts the last one (signing
  is deterministic, so it is the same transaction) and follows it.
- **One nonce per batch at a time.** A batch's transaction is only ever replaced with the
  same nonce and fees raised by at least 12.5 % (both the fee cap and the priority fee),
  so at most one of its versions can land. A fresh nonce is taken only once the old one
  is provably used (the account's mined nonce passed it) and L1 does not hold the batch.
- **Errors that pass are waited out, errors that stay are raised.** L1 RPC failures
  (connection refused, timeouts, 5xx, rate limits) are retried with capped exponential
  backoff, forever: a batch is never dropped. A ``postBatch`` that reverts, in the
  pre-send gas estimate or on chain, is decoded to its custom error
  (``node.l1.errors``) and raised as :class:`PostingError`, except for the reverts that
  say the chain moved (an earlier batch is gone, or this one is already there), which
  are reconciled.

Following: a posted batch is ``final`` once it is below ``Rollup.finalizedCount()``; the
poster itself calls ``Rollup.finalize`` for the batches whose window
(``postedAt + challengeWindow``, in L1 time) has passed, for liveness (anyone may, and
someone else may have). A batch that is no longer on L1 at its serial
(``Rollup.isAlive``) and is covered by a ``BatchesRejected`` event is ``rejected``, with
every later one; posting then stops at it (the dispute defence will revert and repost).
Gone without a rejection (an L1 reorg) it goes back to ``posting`` and is sent again.

The poster assumes it is the only sender of the sequencer key's transactions: a new
transaction takes the account's mined nonce, replacing anything of ours left pending.

The posting state of each batch is a :class:`PostState` under ``schema.post_key(index)``
(``node.sequencer.post_state``, which documents its encoding).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from node.l1.deploy import bind
from node.l1.errors import RevertReason
from node.protocol.batch import Batch, encode_transactions
from node.storage import schema
from node.storage.db import KeyValueDB

from .post_state import PostState, PostStateError, PostStatus, read_post_state
from .sender import Fees, L1Metrics, L1Sender, SenderConfig, gas_limit

logger = logging.getLogger(__name__)

__all__ = [
    "BatchSource",
    "ChangeCallback",
    "ConflictingBatchError",
    "PostState",
    "PostStateError",
    "PostStatus",
    "Poster",
    "PosterConfig",
    "PosterError",
    "PosterMetrics",
    "PostingError",
    "default_metrics",
]


class PosterError(Exception):
    """The poster cannot go on without an operator (or the code that calls it)."""


class PostingError(PosterError):
    """L1 refuses the batch for a reason that will not pass by itself: ``reason`` is the
    decoded revert (a custom error of IRollup)."""

    def __init__(self, index: int, message: str, reason: RevertReason | None = None) -> None:
        super().__init__(f"batch {index}: {message}")
        self.index = index
        self.reason = reason


class ConflictingBatchError(PosterError):
    """L1 holds a different batch at an index this sequencer wants to post."""


@dataclass(frozen=True)
class PosterConfig:
    """The poster's settings (docs/sequencer.md, "Posting batches to L1")."""

    sender: SenderConfig = field(default_factory=SenderConfig)
    """Receipt timeout, polling, backoff and fee cap of its L1 transactions."""

    max_reverts: int = 3
    """Mined reverts of one batch's transactions before the poster gives up on it."""

    finalize: bool = True
    """Whether the poster calls ``Rollup.finalize`` once a window has passed."""

    start_block: int = 0
    """L1 block to search ``BatchPosted``/``BatchesRejected`` logs from (the deployment's)."""


class PosterMetrics(L1Metrics):
    """The L1 counters (``ratchet_l1_gas_spent_total`` ...) and the batches posted."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        super().__init__(registry)
        self.batches_posted = Counter(
            "ratchet_batches_posted", "Batches recorded as posted on L1", registry=registry
        )


_default_metrics: list[PosterMetrics] = []


def default_metrics() -> PosterMetrics:
    """The counters in prometheus-client's default registry (registered once per process)."""
    if not _default_metrics:
        _default_metrics.append(PosterMetrics())
    return _default_metrics[0]


BatchSource = Callable[[int], Batch | None]
"""``batch(index)``: the closed batch ``index``, or None while it is not closed."""

ChangeCallback = Callable[[int, PostState], None]
"""Called with ``(index, state)`` once a batch's new status is durable."""


class Poster:
    """
    Posts the closed batches of ``batches`` to the Rollup at ``rollup_address`` from the
    sequencer key ``private_key`` and follows them to final, keeping its state in ``db``.

    ``w3`` must be a synchronous ``Web3`` (an HTTP provider): its calls run in worker
    threads. The daemon awaits :meth:`run`; tests call :meth:`tick`.
    """

    def __init__(
        self,
        w3: Web3,
        rollup_address: str,
        private_key: str | bytes,
        db: KeyValueDB,
        batches: BatchSource,
        *,
        config: PosterConfig | None = None,
        on_change: ChangeCallback | None = None,
        metrics: PosterMetrics | None = None,
        l1_lock: asyncio.Lock | None = None,
    ) -> None:
        self.w3 = w3
        self.rollup: Contract = bind(w3, "Rollup", rollup_address)
        self.account: LocalAccount = Account.from_key(private_key)
        self.db = db
        self.batches = batches
        self.config = config or PosterConfig()
        self.on_change = on_change
        self.metrics = metrics or default_metrics()
        self.l1 = L1Sender(w3, self.account, self.rollup.address, self.config.sender, self.metrics)
        self._lock = l1_lock or asyncio.Lock()
        """Held for each tick: shared with every other sender of the key's transactions
        (the dispute defence), whose nonces would otherwise collide with ours."""
        self._wakeup = asyncio.Event()
        self._loaded = False
        self._cursor = 0
        self._halted: int | None = None
        self.finalized = 0
        """Rollup.finalizedCount() as last seen: batches below it are final."""
        self.blocked: str | None = None
        """Why posting is waiting on an operator (e.g. the stake), or None."""
        self._unfinal: dict[int, PostState] = {}
        self._window = 0

    @property
    def address(self) -> ChecksumAddress:
        """The sequencer's L1 address."""
        return self.account.address

    @property
    def next_index(self) -> int:
        """The first batch not yet recorded as posted (once :meth:`tick` has run)."""
        return self._cursor

    @property
    def halted_at(self) -> int | None:
        """The first rejected batch, where posting stopped; None while posting goes on."""
        return self._halted

    def status(self, index: int) -> PostState | None:
        """The posting state of batch ``index``; None before the poster reached it."""
        return read_post_state(self.db, index)

    def finality(self, index: int) -> str:
        """The finality of batch ``index`` as receipts show it (INTERFACE.md): ``soft``
        until it is on L1, then ``posted``, ``final`` or ``rejected``."""
        state = self.status(index)
        if state is None or state.status is PostStatus.POSTING:
            return "soft"
        return state.status.value

    def l1_tx_hash(self, index: int) -> str | None:
        """The L1 transaction that posted batch ``index`` (0x-hex), once it is on L1."""
        state = self.status(index)
        if state is None or state.status is PostStatus.POSTING or not state.l1_tx_hash:
            return None
        return "0x" + state.l1_tx_hash.hex()

    def wake(self) -> None:
        """Tell :meth:`run` that a batch was closed (else it notices at its next poll)."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set, then return promptly: a tick in progress is
        cancelled, and what it left in flight is followed again after a restart.

        Raises :class:`PosterError` when posting cannot go on. Any other failure of a tick
        (an L1 answer it does not understand, say) is logged and the tick retried after a
        capped exponential backoff: the poster outlives a misbehaving node."""
        config = self.config.sender
        delay = config.poll_interval
        while not stop.is_set():
            try:
                if not await _unless_stopped(self.tick(), stop):
                    return
                delay = config.poll_interval
            except (PosterError, PostStateError):
                raise
            except Exception:
                logger.exception("poster tick failed; retrying in %.2fs", delay)
                delay = min(max(delay * 2, config.backoff_initial), config.backoff_max)
            self._wakeup.clear()
            waiters = [asyncio.ensure_future(e.wait()) for e in (stop, self._wakeup)]
            try:
                await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def resume_from(self, index: int) -> None:
        """After the engine has undone batch ``index`` and later ones (they were rejected):
        forget their posting states and post again from ``index`` (the engine's new
        batches there, which L1 will give new serials)."""
        async with self._lock:
            stale = await asyncio.to_thread(lambda: list(self._stored()))
            keys: dict[bytes, bytes | None] = {
                schema.post_key(s.index): None for s in stale if s.index >= index
            }
            await asyncio.to_thread(self.db.apply, keys, sync=True)
            for key in list(self._unfinal):
                if key >= index:
                    del self._unfinal[key]
            self._cursor = min(self._cursor, index)
            if self._halted is not None and self._halted >= index:
                self._halted = None
        logger.warning("posting resumes at batch %d", index, extra={"batch": index})
        self.wake()

    async def tick(self) -> None:
        """One round: follow the posted batches (rejection, finality, ``finalize``), then
        post every closed batch that is next in line, each until it is mined."""
        async with self._lock:
            if not self._loaded:
                await self._load()
            await self._follow()
            while self._halted is None and await self._post_next():
                pass

    # state -----------------------------------------------------------------------------

    async def _load(self) -> None:
        self._window = await self._view("challengeWindow")
        states = await asyncio.to_thread(lambda: list(self._stored()))
        for state in states:
            if state.status is PostStatus.REJECTED and self._halted is None:
                self._halted = state.index
            if state.status is PostStatus.POSTED:
                self._unfinal[state.index] = state
            if state.index == self._cursor and state.status in (
                PostStatus.POSTED,
                PostStatus.FINAL,
            ):
                self._cursor += 1
        self._loaded = True
        logger.info(
            "poster ready: next batch %d, %d posted and not final",
            self._cursor,
            len(self._unfinal),
            extra={"sequencer": self.address},
        )

    def _stored(self) -> Iterator[PostState]:
        for _, raw in self.db.iterate(schema.POST_PREFIX):
            yield PostState.decode(raw)

    async def _store(self, state: PostState) -> None:
        """Write ``state`` durably; then, if its status changed, tell ``on_change``."""
        previous = self.status(state.index)
        key, value = schema.post_key(state.index), state.encode()
        await asyncio.to_thread(self.db.put, key, value, sync=True)
        if state.status is PostStatus.POSTED:
            self._unfinal[state.index] = state
        else:
            self._unfinal.pop(state.index, None)
        changed = previous is None or previous.status is not state.status
        if changed and self.on_change is not None:
            try:
                self.on_change(state.index, state)
            except Exception:
                logger.exception("on_change failed", extra={"batch": state.index})

    async def _view(self, name: str, *args: object) -> Any:
        """A Rollup view, at the latest block."""
        function = getattr(self.rollup.functions, name)
        return await self.l1.call(name, lambda: function(*args).call())

    # posting ---------------------------------------------------------------------------

    async def _post_next(self) -> bool:
        """Post (or find on L1) the batch at the cursor; True if it is now posted."""
        index = self._cursor
        # decoding and hashing a batch of thousands of transactions takes milliseconds:
        # in a thread, so that the sequencer's loop keeps answering meanwhile
        found = await asyncio.to_thread(self._source, index)
        state = self.status(index)
        if found is None:
            if state is not None and state.attempts:
                logger.warning("batch %d is being posted but its source does not have it", index)
            return False
        batch, header_hash = found
        if state is not None and state.header_hash != header_hash:
            raise PosterError(
                f"batch {index} changed since posting began: 0x{state.header_hash.hex()} "
                f"was being posted, the source now gives 0x{header_hash.hex()}"
            )
        next_index = await self._view("nextIndex")
        if next_index > index:
            return await self._reconcile(index, header_hash, state)
        if next_index < index:
            return False  # an earlier batch is gone: the next _follow sees why
        return await self._send(batch, header_hash, state)

    def _source(self, index: int) -> tuple[Batch, bytes] | None:
        """Batch ``index`` from the source and its header hash, or None if it has none."""
        batch = self.batches(index)
        if batch is None:
            return None
        if batch.index != index:
            raise PosterError(f"asked for batch {index}, the source gave batch {batch.index}")
        return batch, batch.header().hash()

    async def _reconcile(self, index: int, header_hash: bytes, state: PostState | None) -> bool:
        """Whether L1 already holds batch ``index`` with ``header_hash`` (then it is recorded
        as posted); :class:`ConflictingBatchError` if L1 holds another batch there."""
        if await self._view("nextIndex") <= index:
            return False
        on_chain = bytes(await self._view("headerHash", index))
        if on_chain != header_hash:
            raise ConflictingBatchError(
                f"L1 holds batch {index} with header hash 0x{on_chain.hex()}, this sequencer's "
                f"is 0x{header_hash.hex()}: another sequencer is posting with this key"
            )
        record = await self._view("batch", index)
        serial, posted_at = int(record[6]), int(record[5])
        logs = await self.l1.call(
            "BatchPosted logs",
            lambda: self.rollup.events.BatchPosted().get_logs(
                argument_filters={"index": index, "serial": serial},
                from_block=self.config.start_block,
            ),
        )
        tx_hash, block = b"", 0
        if logs:
            tx_hash, block = bytes(logs[-1]["transactionHash"]), int(logs[-1]["blockNumber"])
        else:
            logger.warning("batch %d is on L1 but its BatchPosted log was not found", index)
        base = state or PostState(index, PostStatus.POSTING, header_hash)
        await self._posted(replace(base, l1_tx_hash=tx_hash, l1_block=block), serial, posted_at)
        logger.info("batch %d found on L1 (serial %d)", index, serial, extra={"batch": index})
        return True

    async def _posted(self, state: PostState, serial: int, posted_at: int) -> None:
        posted = replace(state, status=PostStatus.POSTED, serial=serial, posted_at=posted_at)
        await self._store(posted)
        self.metrics.batches_posted.inc()
        self._cursor = state.index + 1

    async def _send(self, batch: Batch, header_hash: bytes, state: PostState | None) -> bool:
        """Get ``batch``, next in line on L1, posted; True once it is, False to come back at
        the next tick."""
        index = batch.index
        data = await asyncio.to_thread(
            lambda: _calldata(
                self.rollup,
                "postBatch",
                index,
                batch.parent_root,
                batch.timestamp,
                batch.inbox_end,
                batch.post_root,
                encode_transactions(batch.transactions),
            )
        )
        tracked = [state or PostState(index, PostStatus.POSTING, header_hash)]

        async def persist(fees: Fees, attempts: tuple[bytes, ...]) -> None:
            before = tracked[0]
            tracked[0] = replace(
                before, max_fee=fees.max_fee, priority_fee=fees.priority_fee, attempts=attempts
            )
            await self._store(tracked[0])

        reverts = 0
        gas_factor = 1  # doubled whenever a version runs out of gas
        while True:
            if not tracked[0].attempts:  # a fresh transaction, at a fresh nonce
                estimate = await self.l1.estimate(data)
                if isinstance(estimate, RevertReason):
                    return await self._reverted(index, header_hash, estimate, mined=False)
                fees = await self.l1.market_fees()
                nonce = await self.l1.mined_nonce()
                tracked[0] = replace(
                    tracked[0],
                    nonce=nonce,
                    max_fee=fees.max_fee,
                    priority_fee=fees.priority_fee,
                    gas=gas_limit(estimate) * gas_factor,
                )
                logger.info("posting batch %d at nonce %d", index, nonce, extra={"batch": index})
            sent = tracked[0]
            receipt = await self.l1.transact(
                "postBatch",
                data,
                sent.gas,
                sent.nonce,
                Fees(sent.max_fee, sent.priority_fee),
                sent.attempts,
                persist,
            )
            if receipt is not None and receipt["status"] == 1:
                await self._mined(tracked[0], receipt)
                return True
            # the nonce is spent: no version of the transaction can land any more
            tracked[0] = replace(tracked[0], attempts=())
            await self._store(tracked[0])
            if receipt is None:
                if await self._reconcile(index, header_hash, tracked[0]):
                    return True
                logger.warning(
                    "nonce %d meant for batch %d went to another transaction; sending again",
                    sent.nonce,
                    index,
                    extra={"batch": index},
                )
                continue
            reverts += 1
            out_of_gas = receipt["gasUsed"] >= sent.gas
            if out_of_gas:
                reason = RevertReason("OutOfGas", (("gas", sent.gas),))
            else:
                reason = await self.l1.replay(data, receipt)
            logger.error(
                "postBatch of batch %d reverted on L1: %s",
                index,
                reason,
                extra={"batch": index, "tx": "0x" + bytes(receipt["transactionHash"]).hex()},
            )
            if out_of_gas:
                gas_factor *= 2
            elif await self._reverted(index, header_hash, reason, mined=True):
                return True
            if self._halted is not None or self._cursor != index:
                return False  # the chain below this batch changed
            if reverts >= self.config.max_reverts:
                raise PostingError(
                    index, f"postBatch reverted {reverts} times, last with {reason}", reason
                )

    async def _reverted(
        self, index: int, header_hash: bytes, reason: RevertReason, *, mined: bool
    ) -> bool:
        """Judge a postBatch of batch ``index`` that reverts (in the gas estimate, or
        ``mined``): True if the batch turns out to be on L1 already, False if the revert
        says the chain moved or the batch is early (try again), and :class:`PostingError`
        if L1 refuses the batch itself."""
        if self._unfinal:
            await self._check_alive()  # e.g. InsufficientStake: a rejection unstaked us
            if self._halted is not None:
                return False
        next_index = await self._view("nextIndex")
        if next_index > index:
            return await self._reconcile(index, header_hash, self.status(index))
        if next_index < index:
            logger.warning("batch %d: an earlier batch is gone from L1 (%s)", index, reason)
            return False
        if reason.name == "WrongIndex" or (mined and reason.name == "NotReproducible"):
            return False
        if reason.name == "InsufficientStake":
            # an operator's move (after a rejection the stake is gone): wait for it
            self.blocked = f"batch {index} waits for the sequencer's stake ({reason})"
            logger.error(self.blocked, extra={"batch": index})
            return False
        if reason.name == "InvalidTimestamp":
            timestamp, low, high = (reason.arg(n) for n in ("timestamp", "min", "max"))
            assert isinstance(timestamp, int) and isinstance(low, int) and isinstance(high, int)
            if low <= high < timestamp:
                logger.info("batch %d: its timestamp is ahead of L1, waiting for a block", index)
                return False
        raise PostingError(index, f"L1 refuses postBatch with {reason}", reason)

    async def _mined(self, state: PostState, receipt: TxReceipt) -> None:
        self.blocked = None
        logs = self.rollup.events.BatchPosted().process_receipt(receipt, errors=DISCARD)
        (event,) = [log for log in logs if log["args"]["index"] == state.index]
        number = receipt["blockNumber"]
        block = await self.l1.call("block", lambda: self.w3.eth.get_block(number))
        tx_hash = bytes(receipt["transactionHash"])
        serial = int(event["args"]["serial"])
        mined = replace(state, l1_tx_hash=tx_hash, l1_block=int(number))
        await self._posted(mined, serial, int(block["timestamp"]))
        logger.info(
            "batch %d posted in L1 block %d (serial %d, %d gas)",
            state.index,
            number,
            serial,
            receipt["gasUsed"],
            extra={"batch": state.index, "tx": "0x" + tx_hash.hex()},
        )

    # following -------------------------------------------------------------------------

    async def _follow(self) -> None:
        """Rejections first (a rejected batch is neither finalized nor built on), then
        finality."""
        if not self._unfinal:
            return
        await self._check_alive()
        if not self._unfinal:
            return
        finalized = await self._view("finalizedCount")
        await self._mark_final(finalized)
        if self.config.finalize and self._unfinal:
            await self._finalize(finalized)

    async def _check_alive(self) -> None:
        """Find posted batches that L1 no longer holds: rejected, or lost in a reorg."""
        ordered = sorted(self._unfinal.values(), key=lambda s: s.index)
        top = ordered[-1]
        if await self._view("isAlive", top.index, top.serial):
            return  # rejections and reorgs drop a suffix: everything below stands too
        lost = top
        for state in ordered:
            if not await self._view("isAlive", state.index, state.serial):
                lost = state
                break
        head = await self.l1.call("block number", lambda: int(self.w3.eth.block_number))
        from_block = min(max(lost.l1_block, self.config.start_block), head)  # a reorg may
        logs = await self.l1.call(  # have taken the post's block away
            "BatchesRejected logs",
            lambda: self.rollup.events.BatchesRejected().get_logs(from_block=from_block),
        )
        rejected = any(
            int(log["args"]["fromIndex"]) <= lost.index < int(log["args"]["toIndex"])
            for log in logs
        )
        gone = [s for s in ordered if s.index >= lost.index]
        self._cursor = min(self._cursor, lost.index)
        if not rejected:
            logger.warning(
                "batch %d is gone from L1 without a rejection (a reorg?): posting it again",
                lost.index,
                extra={"batch": lost.index},
            )
            for state in gone:
                await self._store(PostState(state.index, PostStatus.POSTING, state.header_hash))
            return
        pending = self.status(gone[-1].index + 1)
        if pending is not None and pending.status is PostStatus.POSTING:
            gone.append(pending)
        logger.error(
            "batch %d was rejected on L1 with every later one (to %d): posting stops",
            lost.index,
            gone[-1].index,
            extra={"batch": lost.index},
        )
        for state in gone:
            await self._store(replace(state, status=PostStatus.REJECTED))
        self._halted = lost.index

    async def _mark_final(self, finalized: int) -> None:
        self.finalized = max(self.finalized, finalized)
        for index in sorted(i for i in self._unfinal if i < finalized):
            await self._store(replace(self._unfinal[index], status=PostStatus.FINAL))
            logger.info("batch %d is final", index, extra={"batch": index})

    async def _finalize(self, finalized: int) -> None:
        """Call ``finalize`` up to the last batch whose window has passed in L1 time."""
        latest = await self.l1.call("block", lambda: self.w3.eth.get_block("latest"))
        now = int(latest["timestamp"])
        target = None
        for index in range(finalized, max(self._unfinal) + 1):
            state = self._unfinal.get(index)
            if state is None or state.posted_at + self._window > now:
                break
            target = index
        while target is not None and target >= finalized:
            data = _calldata(self.rollup, "finalize", target)
            estimate = await self.l1.estimate(data)
            if not isinstance(estimate, RevertReason):
                await self._send_finalize(target, data, estimate)
                return
            if estimate.name != "GamesOpen":
                logger.info("finalize(%d) is not possible now: %s", target, estimate)
                return
            games = estimate.arg("index")
            assert isinstance(games, int)
            logger.info("batch %d has open dispute games: it cannot finalize yet", games)
            target = games - 1

    async def _send_finalize(self, target: int, data: bytes, estimate: int) -> None:
        fees = await self.l1.market_fees()
        nonce = await self.l1.mined_nonce()
        receipt = await self.l1.transact("finalize", data, gas_limit(estimate), nonce, fees)
        if receipt is not None and receipt["status"] != 1:
            reason = await self.l1.replay(data, receipt)
            logger.warning("finalize(%d) reverted: %s", target, reason)
        await self._mark_final(await self._view("finalizedCount"))


def _calldata(contract: Contract, function: str, *args: object) -> bytes:
    """The calldata of ``contract.function(*args)``."""
    return bytes(HexBytes(contract.encode_abi(function, args=list(args))))


async def _unless_stopped(work: Awaitable[None], stop: asyncio.Event) -> bool:
    """Run ``work`` unless ``stop`` is set first (then cancel it); whether it finished."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        stopper.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return False
    task.result()
    return True
