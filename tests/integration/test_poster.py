"""
The batch poster on anvil: batches posted in order and followed to final, restarts and
crashes that never post twice, a stuck transaction replaced with higher fees, an L1 node
that is down or loses a reply, permanent reverts that stop with their decoded reason, a
rejection reported, and a batch lost in a reorg posted again.

Every test deploys its own rollup (the real contracts, ``deploy_all`` with the devnet
parameters) for a fresh sequencer key on the module's anvil, and keeps the poster's
state in a real LevelDB.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from prometheus_client import CollectorRegistry
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import TransactionNotFound

from node.l1.anvil import free_port
from node.l1.deploy import Deployment, RollupParameters, bind, deploy_all, devnet_parameters
from node.protocol.batch import Batch, encode_transactions
from node.protocol.crypto import keccak256
from node.sequencer.poster import (
    ConflictingBatchError,
    Poster,
    PosterConfig,
    PosterMetrics,
    PostingError,
    PostState,
    PostStatus,
)
from node.sequencer.sender import FEE_BUMP, SenderConfig
from node.storage.level import LevelDB
from tests.integration.l1_env import ETHER, Chain, tx_params

GENESIS = keccak256(b"poster test genesis")
"""The genesis root of the test rollups (posting does not check roots against a state)."""

FAST = SenderConfig(receipt_timeout=30.0, poll_interval=0.02, backoff_initial=0.02, backoff_max=0.1)
"""Quick polls and retries; a receipt timeout no test reaches unless it means to."""

DEADLINE = 30.0
"""Seconds any one wait in these tests may take before it fails (never reached when green)."""


@dataclass
class Rig:
    """A fresh rollup whose sequencer is a fresh key, the batches it closed, and the
    poster's database directory."""

    chain: Chain
    deployment: Deployment
    parameters: RollupParameters
    rollup: Contract
    key: LocalAccount
    db_path: Path
    closed: dict[int, Batch] = field(default_factory=dict)
    changes: list[tuple[int, PostState]] = field(default_factory=list)
    dbs: list[LevelDB] = field(default_factory=list)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    @property
    def w3(self) -> Web3:
        return self.chain.w3

    def close(
        self,
        count: int = 1,
        *,
        inbox_end: int | None = None,
        parent_root: bytes | None = None,
    ) -> list[Batch]:
        """Close ``count`` more batches: roots chained from genesis, the latest L1 time."""
        made = []
        for _ in range(count):
            index = len(self.closed)
            previous = self.closed.get(index - 1)
            parent = previous.post_root if previous else GENESIS
            start = previous.inbox_end if previous else 0
            batch = Batch(
                index=index,
                parent_root=parent if parent_root is None else parent_root,
                timestamp=self.chain.now(),
                inbox_start=start,
                inbox_end=start if inbox_end is None else inbox_end,
                post_root=keccak256(b"post root" + parent),
                transactions=(bytes([index % 250 + 1]), b"\x02\x03"),
            )
            self.closed[index] = batch
            made.append(batch)
        return made

    def poster(self, url: str | None = None, config: SenderConfig = FAST, **options: Any) -> Poster:
        """A poster (as after a restart: the database reopened) talking to ``url`` (anvil)."""
        for db in self.dbs:
            db.close()
        db = LevelDB(self.db_path)
        self.dbs.append(db)
        provider = Web3.HTTPProvider(
            url or self.chain.anvil.url,
            exception_retry_configuration=None,  # the poster's own backoff is under test
            request_kwargs={"timeout": 5},
        )
        self.registry = CollectorRegistry()
        return Poster(
            Web3(provider),
            self.deployment.rollup,
            self.key.key,
            db,
            self.closed.get,
            config=PosterConfig(sender=config, start_block=self.deployment.start_block, **options),
            on_change=lambda index, state: self.changes.append((index, state)),
            metrics=PosterMetrics(self.registry),
        )

    def posted(self) -> list[dict[str, Any]]:
        """Every BatchPosted event of this rollup, in order."""
        logs = self.rollup.events.BatchPosted().get_logs(from_block=self.deployment.start_block)
        return [{**log["args"], "tx": bytes(log["transactionHash"])} for log in logs]

    def nonce(self) -> int:
        """The sequencer's mined transaction count."""
        return int(self.w3.eth.get_transaction_count(self.key.address, "latest"))

    def statuses(self, index: int) -> list[PostStatus]:
        """The statuses ``on_change`` reported for batch ``index``, in order."""
        return [state.status for i, state in self.changes if i == index]

    def sample(self, name: str, **labels: str) -> float:
        """A counter of the latest poster's metrics."""
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else float(value)

    def sent(self, poster: Poster, index: int, versions: int = 1) -> bool:
        """Whether ``poster`` has sent ``versions`` transactions for batch ``index`` and the
        node has the last one (its hash is persisted just before it is sent)."""
        state = poster.status(index)
        if state is None or len(state.attempts) < versions:
            return False
        try:
            self.w3.eth.get_transaction(HexBytes(state.attempts[-1]))
        except TransactionNotFound:
            return False
        return True

    def automine(self, on: bool) -> None:
        self.chain.anvil.rpc("evm_setAutomine", on)


@pytest.fixture
def rig(chain: Chain, tmp_path: Path) -> Iterator[Rig]:
    """A rollup deployed for a fresh, funded and staked sequencer key."""
    key = Account.create()
    chain.impersonate(key.address, 100 * ETHER)  # funds it; stake() is sent unsigned
    parameters = devnet_parameters(key.address, GENESIS, 901_337)
    deployment = deploy_all(chain.w3, chain.accounts[0], parameters)
    rollup = bind(chain.w3, "Rollup", deployment.rollup)
    tx = rollup.functions.stake().transact(tx_params(key.address, parameters.sequencer_bond))
    assert chain.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    rig = Rig(chain, deployment, parameters, rollup, key, tmp_path / "poster")
    try:
        yield rig
    finally:
        rig.automine(True)
        for db in rig.dbs:
            db.close()


def run(main: Awaitable[Any]) -> Any:
    """Run a test's coroutine with an overall deadline."""

    async def bounded() -> Any:
        return await asyncio.wait_for(main, DEADLINE)

    return asyncio.run(bounded())


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (polling) until ``condition()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


# posting and finality ----------------------------------------------------------------


def test_batches_are_posted_in_order_and_finalized_after_the_window(rig: Rig) -> None:
    """Closed batches are posted in index order, each recorded with its L1 transaction,
    block, serial and time; nothing is finalized before the window ends; after it, the
    poster calls finalize and every batch is final (on_change saw each step)."""
    poster = rig.poster()
    run(poster.tick())
    assert poster.next_index == 0 and rig.posted() == []  # nothing closed yet
    rig.close(2)
    run(poster.tick())
    rig.chain.mine(rig.chain.now() + 10)  # batch 2 is posted ten seconds later
    rig.close(1)
    run(poster.tick())
    events = rig.posted()
    assert [(e["index"], e["serial"]) for e in events] == [(0, 1), (1, 2), (2, 3)]
    for event in events:
        state = poster.status(event["index"])
        assert state is not None and state.status is PostStatus.POSTED
        batch = rig.closed[event["index"]]
        assert state.header_hash == event["headerHash"] == batch.header().hash()
        assert state.l1_tx_hash == event["tx"] and state.tx_hash == event["tx"]
        receipt = rig.w3.eth.get_transaction_receipt(event["tx"])
        assert state.l1_block == receipt["blockNumber"] and state.serial == event["serial"]
        record = rig.rollup.functions.batch(event["index"]).call()
        assert state.posted_at == record[5]
    assert rig.nonce() == 1 + 3  # the stake, then one transaction per batch
    assert rig.sample("ratchet_batches_posted_total") == 3
    assert rig.sample("ratchet_l1_gas_spent_total", function="postBatch") > 0

    last = poster.status(2)
    assert last is not None
    window_end = last.posted_at + rig.parameters.challenge_window
    rig.chain.mine(window_end - 2)  # batch 2's window is still open
    run(poster.tick())
    assert rig.rollup.functions.finalizedCount().call() == 2  # 0 and 1 were older
    assert [poster.status(i).status for i in range(3)] == [  # type: ignore[union-attr]
        PostStatus.FINAL,
        PostStatus.FINAL,
        PostStatus.POSTED,
    ]
    rig.chain.mine(window_end)
    run(poster.tick())
    assert rig.rollup.functions.finalizedCount().call() == 3
    assert all(poster.status(i).status is PostStatus.FINAL for i in range(3))  # type: ignore[union-attr]
    for index in range(3):
        assert rig.statuses(index) == [PostStatus.POSTING, PostStatus.POSTED, PostStatus.FINAL]
    assert rig.sample("ratchet_l1_gas_spent_total", function="finalize") > 0
    nonce = rig.nonce()
    run(poster.tick())  # nothing left to do, nothing sent
    assert rig.nonce() == nonce


def test_someone_elses_finalize_is_noticed(rig: Rig) -> None:
    """A batch finalized by another caller is marked final without a transaction of ours."""
    poster = rig.poster(finalize=False)
    rig.close(1)
    run(poster.tick())
    state = poster.status(0)
    assert state is not None and state.status is PostStatus.POSTED
    rig.chain.mine(state.posted_at + rig.parameters.challenge_window)
    run(poster.tick())
    assert poster.status(0).status is PostStatus.POSTED  # type: ignore[union-attr]
    user = rig.chain.accounts[5]
    tx = rig.rollup.functions.finalize(0).transact({"from": user})
    assert rig.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    nonce = rig.nonce()
    run(poster.tick())
    assert poster.status(0).status is PostStatus.FINAL  # type: ignore[union-attr]
    assert rig.nonce() == nonce


def test_a_batch_consuming_deposits_is_posted(rig: Rig) -> None:
    """A batch that consumes queued inbox messages posts its inbox range."""
    token = bind(rig.w3, "TestToken", rig.deployment.collateral)
    bridge = bind(rig.w3, "Bridge", rig.deployment.bridge)
    user = rig.chain.accounts[6]
    for fn in (
        token.functions.mint(user, 10**6),
        token.functions.approve(bridge.address, 10**6),
        bridge.functions.deposit(10**6),
        token.functions.mint(user, 10**6),
        token.functions.approve(bridge.address, 10**6),
        bridge.functions.deposit(10**6),
    ):
        assert rig.w3.eth.wait_for_transaction_receipt(fn.transact({"from": user}))["status"]
    rig.close(1, inbox_end=2)
    rig.close(1)
    poster = rig.poster()
    run(poster.tick())
    events = rig.posted()
    assert [(e["inboxStart"], e["inboxEnd"]) for e in events] == [(0, 2), (2, 2)]


# restarts and crashes ----------------------------------------------------------------


def test_a_restarted_poster_resumes_without_posting_twice(rig: Rig) -> None:
    """A new poster on the same database posts only the batches not yet posted."""
    rig.close(2)
    run(rig.poster().tick())
    assert rig.nonce() == 3
    rig.close(2)
    poster = rig.poster()  # the database reopened, as after a restart
    run(poster.tick())
    assert [e["index"] for e in rig.posted()] == [0, 1, 2, 3]
    assert rig.rollup.functions.serialCount().call() == 4
    assert rig.nonce() == 1 + 4
    assert poster.next_index == 4
    assert rig.sample("ratchet_batches_posted_total") == 2  # this process posted two


def test_a_batch_posted_before_its_state_was_written_is_recognised(rig: Rig) -> None:
    """The batch is on L1 but the database knows nothing of it (the process died after
    sending): a fresh poster finds it by its header hash and records it, sending nothing."""
    (batch,) = rig.close(1)
    data = rig.rollup.encode_abi(
        "postBatch",
        args=[
            0,
            batch.parent_root,
            batch.timestamp,
            batch.inbox_end,
            batch.post_root,
            encode_transactions(batch.transactions),
        ],
    )
    fees = rig.w3.eth.get_block("latest")["baseFeePerGas"] * 2 + 10**9
    signed = rig.key.sign_transaction(
        {
            "type": 2,
            "chainId": rig.w3.eth.chain_id,
            "nonce": rig.nonce(),
            "to": rig.rollup.address,
            "data": data,
            "gas": 500_000,
            "maxFeePerGas": fees,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    tx = rig.w3.eth.send_raw_transaction(signed.raw_transaction)
    assert rig.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    nonce = rig.nonce()
    poster = rig.poster()
    run(poster.tick())
    state = poster.status(0)
    assert state is not None and state.status is PostStatus.POSTED
    assert state.l1_tx_hash == bytes(tx) and state.serial == 1 and state.attempts == ()
    assert rig.nonce() == nonce and len(rig.posted()) == 1
    rig.close(1)
    run(poster.tick())
    assert [e["index"] for e in rig.posted()] == [0, 1]


def test_a_poster_killed_while_waiting_for_its_receipt_is_followed_up(rig: Rig) -> None:
    """The state (nonce, fees, hash) is durable before the transaction is sent: a poster
    stopped while its transaction is pending leaves it recorded, and after the block is
    mined a fresh poster recognises that transaction instead of sending another."""
    rig.close(1)
    poster = rig.poster()
    rig.automine(False)

    async def kill_while_pending() -> PostState:
        task = asyncio.create_task(poster.tick())
        await until(lambda: rig.sent(poster, 0), "the send")
        await asyncio.sleep(0.1)  # well into the receipt wait
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        state = poster.status(0)
        assert state is not None
        return state

    pending = run(kill_while_pending())
    assert pending.status is PostStatus.POSTING and len(pending.attempts) == 1
    assert rig.posted() == []
    rig.chain.anvil.rpc("evm_mine")
    rig.automine(True)
    restarted = rig.poster()
    run(restarted.tick())
    state = restarted.status(0)
    assert state is not None and state.status is PostStatus.POSTED
    assert state.l1_tx_hash == pending.attempts[0] and state.nonce == pending.nonce
    assert [e["tx"] for e in rig.posted()] == [pending.attempts[0]]
    assert rig.nonce() == 2


def test_run_stops_promptly_and_a_restart_sends_the_same_transaction(rig: Rig) -> None:
    """run() returns when stop is set, even mid-wait; a pending transaction that the node
    then dropped is re-broadcast unchanged (signing is deterministic) by the next poster."""
    rig.close(1)
    poster = rig.poster()
    rig.automine(False)

    async def start_and_stop() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(poster.run(stop))
        await until(lambda: rig.sent(poster, 0), "the send")
        stop.set()
        await task

    run(start_and_stop())
    pending = poster.status(0)
    assert pending is not None and len(pending.attempts) == 1
    rig.chain.anvil.rpc("anvil_dropAllTransactions")
    rig.automine(True)
    restarted = rig.poster()
    run(restarted.tick())
    state = restarted.status(0)
    assert state is not None and state.status is PostStatus.POSTED
    assert state.l1_tx_hash == pending.attempts[0]  # the very same transaction
    assert len(rig.posted()) == 1


# stuck transactions and a flaky L1 -----------------------------------------------------


def test_a_stuck_transaction_is_replaced_with_higher_fees(rig: Rig) -> None:
    """Unmined past the receipt timeout, the transaction is replaced at the same nonce with
    both fees raised by at least 12.5 %; exactly one postBatch lands."""
    rig.close(1)
    poster = rig.poster(config=replace(FAST, receipt_timeout=0.3))
    rig.automine(False)

    async def replace_then_mine() -> None:
        task = asyncio.create_task(poster.tick())
        await until(lambda: rig.sent(poster, 0, versions=2), "a replacement")
        rig.chain.anvil.rpc("evm_mine")
        await task

    run(replace_then_mine())
    state = poster.status(0)
    assert state is not None and state.status is PostStatus.POSTED
    assert len(state.attempts) >= 2 and state.l1_tx_hash in state.attempts[1:]
    (event,) = rig.posted()
    assert event["tx"] == state.l1_tx_hash
    mined = rig.w3.eth.get_transaction(HexBytes(state.l1_tx_hash))
    (first,) = [s for _, s in rig.changes if s.status is PostStatus.POSTING]
    max_fee, priority_fee = first.max_fee, first.priority_fee
    num, den = FEE_BUMP
    assert mined["maxFeePerGas"] * den >= max_fee * num
    assert mined["maxPriorityFeePerGas"] * den >= priority_fee * num
    assert mined["nonce"] == state.nonce and rig.nonce() == state.nonce + 1
    assert rig.sample("ratchet_l1_tx_replacements_total") >= 1


def test_the_fee_cap_is_never_passed(rig: Rig) -> None:
    """With max_fee_cap at the market fee, a stuck transaction is re-broadcast, never
    replaced above the cap; it lands once the block comes."""
    rig.close(1)
    rig.automine(False)
    base = int(rig.w3.eth.get_block("latest")["baseFeePerGas"])
    cap = 2 * base + int(rig.w3.eth.max_priority_fee)
    poster = rig.poster(config=replace(FAST, receipt_timeout=0.1, max_fee_cap=cap))

    async def wait_out_timeouts() -> None:
        task = asyncio.create_task(poster.tick())
        await until(lambda: rig.sent(poster, 0), "the send")
        await asyncio.sleep(0.5)  # several receipt timeouts
        assert not task.done()
        rig.chain.anvil.rpc("evm_mine")
        await task

    run(wait_out_timeouts())
    state = poster.status(0)
    assert state is not None and state.status is PostStatus.POSTED
    assert len(state.attempts) == 1 and state.max_fee <= cap
    assert rig.sample("ratchet_l1_tx_replacements_total") == 0
    assert len(rig.posted()) == 1


def test_run_posts_each_batch_as_it_is_closed(rig: Rig) -> None:
    """The daemon's loop: run() posts a batch soon after wake(), until stop is set."""
    poster = rig.poster(config=replace(FAST, poll_interval=5.0))  # only wake() is quick

    async def daemon() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(poster.run(stop))
        for index in range(2):
            rig.close(1)
            poster.wake()
            await until(lambda i=index: poster.finality(i) == "posted", f"batch {index}")  # type: ignore[misc]
        stop.set()
        await task

    assert poster.finality(0) == "soft"
    run(daemon())
    assert [e["index"] for e in rig.posted()] == [0, 1]


class FlakyProxy:
    """An HTTP proxy in front of anvil that can answer 503 to everything, or forward a
    request and then lose the reply (answer 502) for the next ``lose`` sends."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.unavailable = False
        self.lose = 0
        self.lost = 0
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._session = ClientSession()
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.unavailable:
            return web.Response(status=503, text="unavailable")
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        async with self._session.post(self.upstream, data=body, headers=headers) as reply:
            payload = await reply.read()
        if self.lose and b"eth_sendRawTransaction" in body:
            self.lose -= 1
            self.lost += 1
            return web.Response(status=502, text="bad gateway")
        return web.Response(body=payload, content_type="application/json")


def test_an_l1_outage_is_waited_out_without_duplicates(rig: Rig) -> None:
    """Connection refused, then 503s, then a send whose reply is lost after anvil got it:
    the poster retries with backoff throughout and the batch is posted exactly once."""
    rig.close(1)
    proxy = FlakyProxy(rig.chain.anvil.url)
    poster = rig.poster(proxy.url)

    async def outage() -> None:
        task = asyncio.create_task(poster.tick())
        try:
            await until(lambda: rig.sample("ratchet_l1_rpc_errors_total") >= 3, "refusals")
            proxy.unavailable = True
            await proxy.start()
            await until(lambda: rig.sample("ratchet_l1_rpc_errors_total") >= 6, "503s")
            assert not task.done() and rig.posted() == []
            proxy.lose = 1
            proxy.unavailable = False
            await task
        finally:
            task.cancel()
            await proxy.stop()

    run(outage())
    assert proxy.lost == 1  # anvil took the transaction, the poster never heard back
    (event,) = rig.posted()
    state = poster.status(0)
    assert state is not None and state.status is PostStatus.POSTED
    assert state.l1_tx_hash == event["tx"] and rig.nonce() == 2


# permanent errors ----------------------------------------------------------------------


def test_a_batch_l1_refuses_is_a_clear_error_and_nothing_is_sent(rig: Rig) -> None:
    """A wrong parent root fails the gas estimate with WrongParentRoot: tick() and run()
    raise PostingError naming it, no transaction is sent, no state is written."""
    wrong = b"\x13" * 32
    rig.close(1, parent_root=wrong)
    poster = rig.poster()
    with pytest.raises(PostingError, match="WrongParentRoot") as raised:
        run(poster.tick())
    reason = raised.value.reason
    assert reason is not None and reason.name == "WrongParentRoot"
    assert reason.arg("expected") == GENESIS and reason.arg("parentRoot") == wrong
    assert rig.nonce() == 1 and poster.status(0) is None
    with pytest.raises(PostingError, match="WrongParentRoot"):
        run(poster.run(asyncio.Event()))


def test_a_mined_revert_is_decoded_and_raised(rig: Rig) -> None:
    """A postBatch that passes the estimate but reverts on chain (the batch skips a deposit
    whose forced-inclusion deadline passed before it was mined) raises its decoded error."""
    token = bind(rig.w3, "TestToken", rig.deployment.collateral)
    bridge = bind(rig.w3, "Bridge", rig.deployment.bridge)
    user = rig.chain.accounts[7]
    for fn in (
        token.functions.mint(user, 10**6),
        token.functions.approve(bridge.address, 10**6),
        bridge.functions.deposit(10**6),
    ):
        assert rig.w3.eth.wait_for_transaction_receipt(fn.transact({"from": user}))["status"]
    queued_at = int(bridge.functions.messageTimestamp(0).call())
    rig.close(1)  # consumes nothing: fine until the deadline
    poster = rig.poster()
    rig.automine(False)
    deadline = queued_at + rig.parameters.forced_inclusion_delay

    async def mine_too_late() -> None:
        task = asyncio.create_task(poster.tick())
        await until(lambda: rig.sent(poster, 0), "the send")
        rig.chain.mine(deadline)
        await task

    with pytest.raises(PostingError, match="ForcedInclusionOverdue") as raised:
        run(mine_too_late())
    reason = raised.value.reason
    assert reason is not None and reason.arg("deadline") == deadline
    assert rig.posted() == [] and rig.nonce() == 2  # it was mined, and reverted
    state = poster.status(0)
    assert state is not None and state.status is PostStatus.POSTING and state.attempts == ()
    rig.automine(True)
    with pytest.raises(PostingError, match="ForcedInclusionOverdue"):
        run(rig.poster().tick())  # a restart does not retry it blindly
    assert rig.nonce() == 2


def test_a_different_batch_on_l1_stops_the_poster(rig: Rig) -> None:
    """L1 holds another batch at the index (a second sequencer with this key): the poster
    raises ConflictingBatchError instead of posting on top of it."""
    (batch,) = rig.close(1)
    other = replace(batch, post_root=b"\x77" * 32)
    fn = rig.rollup.functions.postBatch(
        0,
        other.parent_root,
        other.timestamp,
        0,
        other.post_root,
        encode_transactions(other.transactions),
    )
    tx = fn.transact({"from": rig.key.address})  # impersonated
    assert rig.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    with pytest.raises(ConflictingBatchError, match="another sequencer"):
        run(rig.poster().tick())


# rejection and reorgs ------------------------------------------------------------------


def reject(rig: Rig, index: int) -> None:
    """Reject batch ``index`` as the DisputeGame would."""
    game = rig.chain.impersonate(rig.deployment.dispute_game)
    fn = rig.rollup.functions.rejectBatch(index, rig.chain.accounts[8])
    assert rig.w3.eth.wait_for_transaction_receipt(fn.transact({"from": game}))["status"]


def test_a_rejected_batch_is_reported_and_posting_stops(rig: Rig) -> None:
    """Rejecting batch 1 drops 1 and 2: both are reported rejected (0 stands), and the
    poster posts nothing more, before or after a restart."""
    rig.close(3)
    poster = rig.poster()
    run(poster.tick())
    reject(rig, 1)
    rig.close(1)
    run(poster.tick())
    assert [poster.status(i).status for i in range(4) if poster.status(i)] == [  # type: ignore[union-attr]
        PostStatus.POSTED,
        PostStatus.REJECTED,
        PostStatus.REJECTED,
    ]
    assert rig.statuses(1)[-1] is PostStatus.REJECTED and rig.statuses(2)[-1] is PostStatus.REJECTED
    assert poster.halted_at == 1 and len(rig.posted()) == 3
    restarted = rig.poster()
    run(restarted.tick())
    assert restarted.halted_at == 1 and len(rig.posted()) == 3
    assert rig.rollup.functions.nextIndex().call() == 1


def test_a_batch_in_flight_when_its_parent_is_rejected_is_reported_too(rig: Rig) -> None:
    """Batch 1 is being sent when batch 0 is rejected: both are reported rejected."""
    rig.close(2)
    poster = rig.poster()
    rig.automine(False)

    async def send_then_crash() -> None:
        task = asyncio.create_task(poster.tick())
        await until(lambda: rig.sent(poster, 0), "batch 0's send")
        rig.chain.anvil.rpc("evm_mine")  # batch 0
        await until(lambda: rig.sent(poster, 1), "batch 1's send")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run(send_then_crash())
    rig.automine(True)  # batch 1's transaction lands
    reject(rig, 0)
    restarted = rig.poster()
    run(restarted.tick())
    assert restarted.status(0).status is PostStatus.REJECTED  # type: ignore[union-attr]
    assert restarted.status(1).status is PostStatus.REJECTED  # type: ignore[union-attr]
    assert restarted.halted_at == 0


def test_a_batch_lost_in_a_reorg_is_posted_again(rig: Rig) -> None:
    """A posted batch that vanishes from L1 without a rejection (the chain was reverted
    under it) goes back to posting and is posted again, once."""
    snapshot = rig.chain.anvil.rpc("evm_snapshot")
    rig.close(1)
    poster = rig.poster()
    run(poster.tick())
    assert rig.chain.anvil.rpc("evm_revert", snapshot) is True
    rig.chain.anvil.rpc("anvil_dropAllTransactions")
    assert rig.posted() == []
    run(poster.tick())
    state = poster.status(0)
    assert state is not None and state.status is PostStatus.POSTED
    (event,) = rig.posted()
    assert state.l1_tx_hash == event["tx"]
    assert rig.statuses(0) == [
        PostStatus.POSTING,
        PostStatus.POSTED,
        PostStatus.POSTING,
        PostStatus.POSTED,
    ]
