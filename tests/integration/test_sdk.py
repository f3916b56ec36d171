"""
The trader SDK (``node.sdk``) against the real thing: anvil with the real contracts, a
``ratchet sequencer`` process, real signatures. Deposits on L1 through the SDK, two
accounts trading with verified receipts, a JSON-RPC batch of orders with client ids,
refusals that change nothing, subscriptions through a connection that is cut for real,
a withdrawal claimed on L1 once final, and the blocking client.

One rollup serves the module; the tests run in file order and build on one another's
state only where a test says so.
"""

import asyncio
import contextlib
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_account import Account

from node.config import load_config
from node.l1.deploy import bind
from node.protocol.transactions import OraclePrice, Transfer
from node.sdk import (
    Client,
    DuplicateClientIdError,
    Event,
    Gap,
    L1Error,
    NotAvailableError,
    ReceiptError,
    RejectedError,
    SyncClient,
    TxReceipt,
    UnitError,
    verify_receipt,
)
from node.sdk import l1 as sdk_l1
from tests.integration.net_proxy import Proxy
from tests.integration.rollup_env import (
    SEQUENCER_KEY,
    TRADERS,
    Rollup,
    deployed_rollup,
    signed,
    stake,
    wait_for,
)
from tests.integration.sequencer_env import Daemon
from tests.stf_env import ORACLE_KEY

MAKER, TAKER = TRADERS
DEPOSIT = 10_000_000_000  # base units: 10,000 tokens
BTC_PRICE = 600_000  # $60,000 in BTC-PERP's wire units


@dataclass
class Env:
    """The module's rollup, its sequencer and the SDK deposits made at the start."""

    rollup: Rollup
    daemon: Daemon
    deposits: list[sdk_l1.Deposited]
    balances_before: list[int]

    @property
    def rpc(self) -> str:
        return self.daemon.url

    @property
    def bridge(self) -> str:
        return self.rollup.deployment.bridge

    def token_balance(self, key: bytes) -> int:
        token = bind(self.rollup.w3, "TestToken", self.rollup.deployment.collateral)
        return int(token.functions.balanceOf(Account.from_key(key).address).call())

    def sequence(self) -> int:
        return int(self.daemon.call("ratchet_getStatus")["sequence"])


def mint(rollup: Rollup, key: bytes, amount: int) -> None:
    """Give the key's address collateral tokens on L1 (the test token mints to anyone)."""
    token = bind(rollup.w3, "TestToken", rollup.deployment.collateral)
    owner = Account.from_key(key).address
    tx = token.functions.mint(owner, amount).transact({"from": rollup.w3.eth.accounts[0]})
    assert rollup.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1


def feed_oracle(rollup: Rollup, daemon: Daemon) -> None:
    """A BTC-PERP oracle price (orders need one), stamped with the sequencer's L1 clock."""
    l1_time = int(daemon.call("ratchet_getStatus")["l1Time"])
    price = OraclePrice(0, BTC_PRICE, l1_time - 30)
    daemon.call("ratchet_sendTransaction", signed(rollup, ORACLE_KEY, price))


@contextlib.contextmanager
def running_rollup(directory: Path) -> Iterator[tuple[Rollup, Daemon]]:
    """A deployed rollup with a staked, running sequencer and a BTC-PERP oracle price."""
    with deployed_rollup(directory) as rollup:
        stake(rollup)
        port = int(load_config(rollup.config, {})["rpc"]["port"])
        with Daemon(rollup.config, SEQUENCER_KEY, port) as daemon:
            feed_oracle(rollup, daemon)
            yield rollup, daemon
            assert daemon.stop() == 0


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with running_rollup(tmp_path_factory.mktemp("sdk")) as (rollup, daemon):
        for key in TRADERS:
            mint(rollup, key, DEPOSIT)
        token = bind(rollup.w3, "TestToken", rollup.deployment.collateral)
        before = [
            int(token.functions.balanceOf(Account.from_key(k).address).call()) for k in TRADERS
        ]
        deposits = [
            sdk_l1.deposit(rollup.anvil.url, key, rollup.deployment.bridge, "10000")
            for key in TRADERS
        ]
        last = deposits[-1].message_index
        wait_for(lambda: daemon.call("ratchet_getStatus")["inboxConsumed"] > last)
        yield Env(rollup, daemon, deposits, before)


def run(body: Any) -> Any:
    """Run a coroutine in a fresh event loop."""
    return asyncio.run(body)


@contextlib.asynccontextmanager
async def connected(env: Env, key: bytes, **options: Any) -> AsyncIterator[Client]:
    client = await Client.connect(env.rpc, key, **options)
    try:
        yield client
    finally:
        await client.close()


def test_sdk_deposits_on_l1_register_and_credit_the_accounts(env: Env) -> None:
    """``l1.deposit`` approves and deposits, returns the account id of the Deposited
    event; the sequencer credits it, and the client finds its account by address."""
    assert [d.account for d in env.deposits] == [1, 2]
    assert [d.amount for d in env.deposits] == [DEPOSIT, DEPOSIT]
    for key, before in zip(TRADERS, env.balances_before, strict=True):
        assert env.token_balance(key) == before - DEPOSIT

    async def body() -> None:
        async with connected(env, MAKER) as client:
            account = await client.wait_for_account()
            assert account == 1
            info = await client.account_info()
            assert info["collateral"] == str(DEPOSIT)
            assert info["address"] == Account.from_key(MAKER).address.lower()

    run(body())
    assert sdk_l1.collateral_balance(
        env.rollup.anvil.url, env.bridge, Account.from_key(MAKER).address
    ) == Decimal(0)


def test_deposit_beyond_the_balance_is_refused_before_sending(env: Env) -> None:
    sent = env.rollup.w3.eth.get_transaction_count(Account.from_key(MAKER).address)
    with pytest.raises(L1Error, match="holds 0 collateral tokens"):
        sdk_l1.deposit(env.rollup.anvil.url, MAKER, env.bridge, "1")
    assert env.rollup.w3.eth.get_transaction_count(Account.from_key(MAKER).address) == sent


def test_two_accounts_trade_and_every_receipt_is_verified(env: Env) -> None:
    """A resting GTC ask and an IOC bid that crosses it: both receipts are the
    sequencer's (checked by the SDK, and a tampered copy is refused), the fill is
    at the maker's price, and the positions are equal and opposite."""

    async def body() -> None:
        async with connected(env, MAKER) as maker, connected(env, TAKER) as taker:
            await maker.wait_for_account()
            await taker.wait_for_account()
            ask = await maker.place_order("BTC-PERP", "sell", "60000", "0.01")
            assert ask.type == "Order" and ask.finality == "soft"
            assert ask.resting == 1_000_000 and ask.filled == 0
            bid = await taker.place_order(0, "buy", Decimal("60001"), "0.01", tif="IOC")
            assert bid.filled == 1_000_000 and bid.resting == 0
            [fill] = bid.outcome["fills"]
            assert (fill["makerOrder"], fill["price"], fill["size"]) == (
                ask.order_hash,
                str(BTC_PRICE),
                "1000000",
            )
            assert (await maker.order(ask.order_hash))["status"] == "filled"
            [long] = await taker.positions()
            [short] = await maker.positions()
            assert (long.market.symbol, long.size, long.side) == (
                "BTC-PERP",
                Decimal("0.01"),
                "long",
            )
            assert (short.size, short.side) == (Decimal("-0.01"), "short")
            # the receipts read back are verified too; a forged one is refused
            again = await taker.receipt(bid.tx_hash)
            assert (again.batch, again.index) == (bid.batch, bid.index)
            forged = {**bid.json, "index": bid.index + 1}
            with pytest.raises(ReceiptError, match="not by the sequencer"):
                verify_receipt(forged, taker.domain, taker.sequencer)
            stranger = bytes.fromhex(Account.create().address[2:])
            with pytest.raises(ReceiptError, match="not by the sequencer"):
                verify_receipt(bid.json, taker.domain, stranger)
            with pytest.raises(ReceiptError, match="not for the transaction sent"):
                verify_receipt(bid.json, taker.domain, taker.sequencer, b"\x01" * 32)

    run(body())


def test_many_orders_go_in_one_batch_request_with_client_ids(env: Env) -> None:
    """Three orders signed with distinct nonces travel in one HTTP request and are all
    sequenced; their client ids find and cancel them; a taken client id is refused
    before anything is sent."""
    requests: list[str] = []

    async def on_request(_: Any, __: Any, params: aiohttp.TraceRequestStartParams) -> None:
        requests.append(params.method)

    async def body() -> None:
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(on_request)
        async with (
            aiohttp.ClientSession(trace_configs=[trace]) as session,
            connected(env, MAKER, session=session) as client,
        ):
            prices = ["59000", "59001", "59002"]
            orders = [client.order_message("BTC-PERP", "buy", p, "0.001") for p in prices]
            assert len({o.nonce for o in orders}) == 3
            before = len(requests)
            receipts = await client.send_many(orders, client_ids=["a", "b", "c"])
            assert len(requests) - before == 1
            sent = [r for r in receipts if isinstance(r, TxReceipt)]
            assert len(sent) == 3
            hashes = [client.hash_of(o) for o in orders]
            assert [r.order_hash for r in sent] == hashes
            sequences = [r.sequence for r in sent]
            assert sequences == list(range(sequences[0], sequences[0] + 3))
            found = await client.order(client_id="b")
            assert (found["orderHash"], found["price"], found["status"]) == (
                hashes[1],
                "590010",
                "open",
            )
            sequence = env.sequence()
            with pytest.raises(DuplicateClientIdError, match="'a'"):
                await client.place_order("BTC-PERP", "buy", "59003", "0.001", client_id="a")
            assert env.sequence() == sequence
            cancelled = await client.cancel(client_id="b")
            assert cancelled.outcome["removals"][0]["orderHash"] == hashes[1]
            assert (await client.order(client_id="b"))["status"] == "cancelled"
            # in a batch, a refused entry comes back as its error, the others go through
            again = orders[0]  # already sequenced: refused NONCE_USED
            mixed = await client.send_many(
                [again, client.order_message(0, "buy", "59004", "0.001")]
            )
            assert isinstance(mixed[0], RejectedError) and mixed[0].reason == "NONCE_USED"
            assert not isinstance(mixed[1], Exception)
            everything = await client.cancel_all("BTC-PERP")
            assert len(everything.outcome["removals"]) == 3
            assert await client.open_orders() == []

    run(body())


def test_a_refused_order_raises_and_changes_nothing(env: Env) -> None:
    """Off the grid, the SDK refuses before sending; a valid-looking order the STF refuses
    raises RejectedError with its reason; neither sequences anything or moves a nonce."""

    async def body() -> None:
        async with connected(env, TAKER) as client:
            before = await client.account_info()
            sequence = env.sequence()
            with pytest.raises(UnitError, match=r"60000\.5 is not a multiple of the tick 1"):
                await client.place_order("BTC-PERP", "buy", "60000.5", "0.01")
            with pytest.raises(UnitError, match=r"nearest valid: 0\.00001 or 0\.00002"):
                await client.place_order("BTC-PERP", "buy", "60000", "0.000015")
            with pytest.raises(TypeError, match="use Decimal or str"):
                await client.place_order("BTC-PERP", "buy", 60000.0, "0.01")  # type: ignore[arg-type]
            with pytest.raises(RejectedError) as refused:
                await client.place_order("BTC-PERP", "buy", "60000", "1000", tif="FOK")
            assert (refused.value.reason, refused.value.code) == ("NOT_FILLED", -32010)
            with pytest.raises(RejectedError) as refused_again:
                await client.place_order("BTC-PERP", "sell", "60000", "0.01", reduce_only=True)
            assert refused_again.value.reason == "INVALID_TIME_IN_FORCE"
            assert env.sequence() == sequence
            assert await client.account_info() == before

    run(body())


def test_two_clients_of_one_key_recover_from_a_nonce_collision(env: Env) -> None:
    """Two programs sign for one key from the same nonce window: the second's
    transaction is refused NONCE_USED, and its client re-reads the account and signs
    again with a fresh nonce, once, without the caller noticing."""
    refused_before = rejections(env, "NONCE_USED")

    async def body() -> None:
        async with connected(env, MAKER) as first, connected(env, MAKER) as second:
            a, b = first.next_nonce(), second.next_nonce()
            assert a == b  # both seeded from the same window
            await first.send(Transfer(1, 2, 1, a))
            await first.transfer(2, "0.000001")  # nonce a + 1
            receipt = await second.transfer(2, "0.000002")  # b + 1 = a + 1: used
            assert receipt.tx_hash != second.hash_of(Transfer(1, 2, 2, b + 1))
            assert (await second.receipt(receipt.tx_hash)).type == "Transfer"

    run(body())
    assert rejections(env, "NONCE_USED") == refused_before + 1


def rejections(env: Env, reason: str) -> float:
    """The sequencer's count of transactions refused for ``reason``."""
    with urllib.request.urlopen(env.rpc + "/metrics") as reply:
        text = reply.read().decode()
    line = f'ratchet_transactions_rejected_total{{reason="{reason}"}} '
    found = [float(row[len(line) :]) for row in text.splitlines() if row.startswith(line)]
    return found[0] if found else 0.0


async def next_event(subscription: Any, timeout: float = 30.0) -> Event | Gap:
    item = await subscription.next(timeout)
    assert isinstance(item, Event | Gap)
    return item


def test_subscriptions_arrive_in_order_and_survive_a_cut_connection(env: Env) -> None:
    """Receipts and fills arrive with seq 1, 2, ...; when the WebSocket's TCP connection
    is cut, the subscription reconnects by itself, yields a Gap, and delivers what
    happens next."""
    port = env.daemon.port

    async def body() -> None:
        proxy = await Proxy(port).start()
        ws_url = f"ws://127.0.0.1:{proxy.port}/ws"
        try:
            async with (
                connected(env, MAKER, ws_url=ws_url) as maker,
                connected(env, TAKER) as taker,
            ):
                receipts = await maker.subscribe("receipts")
                fills = await maker.subscribe("fills", market="BTC-PERP")
                ask = await maker.place_order("BTC-PERP", "sell", "60000", "0.002")
                bid = await taker.place_order("BTC-PERP", "buy", "60000", "0.001", tif="IOC")
                first = await next_event(receipts)
                assert isinstance(first, Event) and first.seq == 1
                assert first.result["txHash"] == ask.tx_hash
                fill = await next_event(fills)
                assert isinstance(fill, Event) and fill.seq == 1
                assert (fill.result["txHash"], fill.result["makerOrder"]) == (
                    bid.tx_hash,
                    ask.order_hash,
                )
                far = await maker.place_order("BTC-PERP", "buy", "50000", "0.001")
                second = await next_event(receipts)
                assert isinstance(second, Event) and second.seq == 2
                assert second.result["txHash"] == far.tx_hash
                assert proxy.accepted == 2
                proxy.cut()
                gap = await next_event(receipts)
                assert gap == Gap("reconnected", 3, None)
                assert await next_event(fills) == Gap("reconnected", 2, None)
                assert receipts.reconnects == 1 and proxy.accepted == 4
                # after the gap, new events come again, numbered afresh
                cancel = await maker.cancel_all("BTC-PERP")
                assert len(cancel.outcome["removals"]) == 2
                resumed = await next_event(receipts)
                assert isinstance(resumed, Event) and resumed.seq == 1
                assert resumed.result["txHash"] == cancel.tx_hash
                await receipts.close()
                with pytest.raises(StopAsyncIteration):
                    await receipts.next(1)
        finally:
            await proxy.close()

    run(body())


def test_a_withdrawal_is_claimed_on_l1_once_final(env: Env) -> None:
    """withdraw -> posted -> the challenge window passes -> final -> the SDK's claim pays
    exactly the amount to the recipient, and a second claim is refused with the
    Bridge's reason."""
    recipient = Account.create().address

    async def body() -> tuple[int, dict[str, Any]]:
        async with connected(env, TAKER) as client:
            receipt = await client.withdraw("25.5", recipient)
            withdrawal_id = receipt.withdrawal_id
            assert withdrawal_id is not None
            with pytest.raises(NotAvailableError, match="claimable once final"):
                await client.withdrawal_proof(withdrawal_id)
            await client.wait_for_finality(receipt.tx_hash, "posted", timeout=60)
            env.rollup.anvil.rpc("evm_increaseTime", 61)
            env.rollup.anvil.rpc("evm_mine")
            final = await client.wait_for_finality(receipt.tx_hash, "final", timeout=60)
            assert final.finality == "final"
            return withdrawal_id, await client.withdrawal_proof(withdrawal_id)

    withdrawal_id, proof = run(body())
    token = bind(env.rollup.w3, "TestToken", env.rollup.deployment.collateral)
    assert token.functions.balanceOf(recipient).call() == 0
    claimed = sdk_l1.claim(env.rollup.anvil.url, MAKER, proof)  # anyone may send it
    assert (claimed.withdrawal_id, claimed.recipient, claimed.amount) == (
        withdrawal_id,
        recipient,
        25_500_000,
    )
    assert token.functions.balanceOf(recipient).call() == 25_500_000
    with pytest.raises(L1Error, match=f"AlreadyClaimed\\(withdrawalId={withdrawal_id}\\)"):
        sdk_l1.claim(env.rollup.anvil.url, MAKER, proof["l1Call"])


def test_the_blocking_client_on_a_short_journey(env: Env) -> None:
    """SyncClient: connect, subscribe, place and cancel an order, read positions."""
    with SyncClient.connect(env.rpc, "0x" + MAKER.hex()) as client:
        assert client.account == 1
        with client.subscribe("receipts") as receipts:
            placed = client.place_order("BTC-PERP", "buy", "50000", "0.001", client_id="sync")
            event = receipts.next(30)
            assert isinstance(event, Event) and event.result["txHash"] == placed.tx_hash
            assert client.order(client_id="sync")["status"] == "open"
            client.cancel(client_id="sync")
            assert client.order(client_id="sync")["status"] == "cancelled"
        shown = client.account_info()["positions"]
        assert [(p.market.id, p.size_wire) for p in client.positions()] == [
            (p["market"], int(p["size"])) for p in shown
        ]
        book = client.order_book("BTC-PERP", 5)
        assert all(level.price != Decimal("50000") for level in book.bids)
