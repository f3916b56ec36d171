"""
The sequencer's JSON-RPC API over a real aiohttp server on a loopback socket, a real
LevelDB and real signatures: JSON-RPC 2.0 conformance, every admission error (and
that it sequences nothing), transactions signed by eth-account's typed-data signer,
receipts verified with eth-account against the advertised sequencer address, and
WebSocket subscriptions with sequence numbers.
"""

import asyncio
import base64
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
import uvloop
from aiohttp import web
from eth_account import Account
from eth_account.messages import encode_typed_data
from prometheus_client.parser import text_string_to_metric_families

from node.l1.anvil import free_port
from node.protocol.crypto import address_of, sign_digest
from node.protocol.inbox import Deposit, encode_l1_message
from node.protocol.transactions import (
    Cancel,
    Message,
    OraclePrice,
    Order,
    SignedTransaction,
    Transfer,
    Withdraw,
    encode_transaction,
    message_to_json,
    typed_data,
)
from node.sequencer.engine import Sequencer
from node.sequencer.rpc import Api, application
from node.storage import LevelDB
from tests.stf_env import BTC, DOMAIN, GENESIS, ORACLE_KEY, START_TIME, USD, btc, sats
from tests.stf_env import test_key as key_of
from tests.vectors.stf_scenarios import unrecoverable_signature

SEQUENCER_KEY = key_of(77)
MAKER, TAKER = key_of(1), key_of(2)


@dataclass
class Node:
    """A served sequencer and a client session to it."""

    url: str
    session: aiohttp.ClientSession
    engine: Sequencer
    api: Api

    async def post(
        self, body: Any, raw: bool = False, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        data = body if raw else json.dumps(body)
        headers = {"Content-Type": content_type}
        async with self.session.post(self.url + "/", data=data, headers=headers) as reply:
            text = await reply.text()
            return reply.status, (json.loads(text) if text else None)

    async def call(self, method: str, *params: Any) -> dict[str, Any]:
        _, reply = await self.post({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        assert isinstance(reply, dict)
        return reply


@contextlib.asynccontextmanager
async def serving(path: Path) -> AsyncIterator[Node]:
    """A sequencer on a fresh LevelDB, served on a free loopback port, with two funded
    traders (accounts 1 and 2) and an oracle price in BTC."""
    with LevelDB(path) as db:
        engine = Sequencer(db, GENESIS, DOMAIN, SEQUENCER_KEY, clock=lambda: START_TIME)
        for account, key in ((1, MAKER), (2, TAKER)):
            deposit = Deposit(address_of(key), account, 100_000 * USD)
            await engine.submit_l1_message(encode_l1_message(deposit))
        await engine.submit(signed(ORACLE_KEY, OraclePrice(BTC.id, btc(60_000), START_TIME)))
        api = Api(engine, GENESIS, {"chainId": DOMAIN.chain_id})
        runner = web.AppRunner(application(api))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with aiohttp.ClientSession() as session:
                yield Node(f"http://127.0.0.1:{port}", session, engine, api)
        finally:
            await runner.cleanup()


def run(path: Path, body: Any, loop: str = "asyncio") -> None:
    """Run the coroutine function ``body(node)`` against a served sequencer, on asyncio's
    own event loop or (``loop="uvloop"``) on the daemon's."""

    async def main() -> None:
        async with serving(path) as node:
            await body(node)

    factory = uvloop.new_event_loop if loop == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


def signed(key: bytes, message: Message) -> bytes:
    return encode_transaction(
        SignedTransaction(message, sign_digest(key, message.signing_hash(DOMAIN)))
    )


def raw(key: bytes, message: Message) -> str:
    return "0x" + signed(key, message).hex()


def order(account: int, is_buy: bool, dollars: int, size: float, nonce: int) -> Order:
    return Order(account, BTC.id, is_buy, btc(dollars), sats(size), 0, False, 0, nonce)


def test_json_rpc_conformance(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        status, reply = await node.post("{not json", raw=True)
        assert reply["error"]["code"] == -32700 and reply["id"] is None
        _, reply = await node.post({"jsonrpc": "2.0", "id": 7})
        assert reply["error"]["code"] == -32600
        _, reply = await node.post([])
        assert reply["error"]["code"] == -32600
        reply = await node.call("ratchet_noSuchMethod")
        assert reply["error"]["code"] == -32601 and reply["id"] == 1
        reply = await node.call("ratchet_getReceipt", "0x1234")
        assert reply["error"]["code"] == -32602
        reply = await node.call("ratchet_getReceipt")
        assert reply["error"]["code"] == -32602
        reply = await node.call("ratchet_getOrderBook", BTC.id, 0)
        assert reply["error"]["code"] == -32602
        # a client that does not say application/json is still understood (as geth does)
        request = {"jsonrpc": "2.0", "id": 9, "method": "ratchet_getStatus"}
        _, reply = await node.post(request, content_type="text/plain")
        assert reply["id"] == 9 and "result" in reply
        # a notification gets no answer
        status, reply = await node.post({"jsonrpc": "2.0", "method": "ratchet_getStatus"})
        assert (status, reply) == (204, None)
        # a batch: answers for the requests only, by id, errors in place
        _, replies = await node.post(
            [
                {"jsonrpc": "2.0", "id": "a", "method": "ratchet_getStatus"},
                {"jsonrpc": "2.0", "method": "ratchet_getStatus"},
                {"jsonrpc": "2.0", "id": "b", "method": "nope"},
                {"jsonrpc": "2.0", "id": "c", "method": "ratchet_getMarkets"},
            ]
        )
        by_id = {r["id"]: r for r in replies}
        assert sorted(by_id) == ["a", "b", "c"]
        assert by_id["a"]["result"]["sequence"] == 3
        assert by_id["b"]["error"]["code"] == -32601
        assert [m["symbol"] for m in by_id["c"]["result"]] == [m.symbol for m in GENESIS.markets]

    run(tmp_path / "db", body)


def test_every_admission_error_says_why_and_sequences_nothing(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        head = node.engine.ledger.head
        cases = {
            "BAD_SIGNATURE": "0x"
            + (signed(MAKER, Transfer(1, 2, 5, 1))[:-65] + unrecoverable_signature()).hex(),
            "WRONG_SIGNER": raw(TAKER, Transfer(1, 2, 5, 1)),
            "UNKNOWN_MARKET": raw(
                MAKER, Order(1, 99, True, btc(60_000), sats(0.1), 0, False, 0, 1)
            ),
            "INVALID_PRICE": raw(
                MAKER, Order(1, BTC.id, True, btc(60_000) + 1, sats(0.1), 0, False, 0, 1)
            ),
            "INVALID_SIZE": raw(
                MAKER, Order(1, BTC.id, True, btc(60_000), sats(0.1) + 1, 0, False, 0, 1)
            ),
            "INSUFFICIENT_COLLATERAL": raw(MAKER, Withdraw(1, address_of(MAKER), 10**12, 1)),
            "MALFORMED": "0x0102",
        }
        for reason, tx in cases.items():
            reply = await node.call("ratchet_sendTransaction", tx)
            error = reply.get("error")
            assert error is not None and error["code"] == -32010, (reason, reply)
            assert error["data"]["reason"] == reason, error
        # a used nonce
        first = await node.call("ratchet_sendTransaction", raw(MAKER, Transfer(1, 2, 5, 1)))
        assert "result" in first
        again = await node.call("ratchet_sendTransaction", raw(MAKER, Transfer(1, 2, 6, 1)))
        assert again["error"]["data"]["reason"] == "NONCE_USED"
        assert node.engine.ledger.head == head + 1

    run(tmp_path / "db", body)


def test_typed_data_signed_by_a_wallet_and_receipts_verified_against_the_sequencer(
    tmp_path: Path,
) -> None:
    """The maker signs with eth-account's eth_signTypedData_v4 over the domain and types
    ratchet_getConfig serves; every receipt's signature recovers to the advertised
    sequencer address."""

    async def body(node: Node) -> None:
        config = (await node.call("ratchet_getConfig"))["result"]
        message = order(1, False, 60_000, 0.5, 1)
        wallet = Account.from_key(MAKER)
        typed = {
            "types": {
                "EIP712Domain": config["types"]["EIP712Domain"],
                "Order": config["types"]["Order"],
            },
            "primaryType": "Order",
            "domain": config["domain"],
            "message": message_to_json(message),
        }
        assert typed == typed_data(DOMAIN, message) | {"types": typed["types"]}
        signature = wallet.sign_message(encode_typed_data(full_message=typed)).signature
        tx = {
            "type": "Order",
            "message": message_to_json(message),
            "signature": "0x" + signature.hex(),
        }
        maker = (await node.call("ratchet_sendTransaction", tx))["result"]
        taker = (
            await node.call("ratchet_sendTransaction", raw(TAKER, order(2, True, 60_000, 0.2, 1)))
        )["result"]
        assert maker["outcome"]["resting"] == str(sats(0.5))
        assert taker["outcome"]["filled"] == str(sats(0.2))
        for receipt in (maker, taker):
            stored = (await node.call("ratchet_getReceipt", receipt["txHash"]))["result"]
            assert stored == receipt
            promise = {
                "types": {
                    "EIP712Domain": config["types"]["EIP712Domain"],
                    "Receipt": config["types"]["Receipt"],
                },
                "primaryType": "Receipt",
                "domain": config["domain"],
                "message": {
                    "txHash": receipt["txHash"],
                    "batch": receipt["batch"],
                    "index": receipt["index"],
                },
            }
            signer = Account.recover_message(
                encode_typed_data(full_message=promise), signature=receipt["signature"]
            )
            assert signer.lower() == config["sequencer"]
        placed = (await node.call("ratchet_getOrder", maker["outcome"]["orderHash"]))["result"]
        assert (placed["filled"], placed["remaining"], placed["status"]) == (
            str(sats(0.2)),
            str(sats(0.3)),
            "open",
        )
        book = (await node.call("ratchet_getOrderBook", BTC.id, 5))["result"]
        assert book["asks"] == [{"price": str(btc(60_000)), "size": str(sats(0.3))}]
        account = (await node.call("ratchet_getAccount", "0x" + address_of(TAKER).hex()))["result"]
        assert account["id"] == 2 and account["positions"][0]["size"] == str(sats(0.2))
        missing = await node.call("ratchet_getReceipt", "0x" + "11" * 32)
        assert missing["error"]["code"] == -32011

    run(tmp_path / "db", body)


def test_websocket_subscriptions_number_their_notifications(tmp_path: Path) -> None:
    async def body(node: Node) -> None:
        async with node.session.ws_connect(node.url + "/ws") as ws:
            await ws.send_json(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "ratchet_subscribe",
                    "params": ["receipts", {"account": 1}],
                }
            )
            subscription = (await ws.receive_json())["result"]
            await ws.send_json(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "ratchet_subscribe",
                    "params": ["book", {"market": BTC.id, "depth": 3}],
                }
            )
            book_subscription = (await ws.receive_json())["result"]
            await ws.send_json(
                {
                    "jsonrpc": "2.0",
                    "id": 5,
                    "method": "ratchet_subscribe",
                    "params": ["fills", {"market": BTC.id}],
                }
            )
            fills_subscription = (await ws.receive_json())["result"]
            # an account's fills, as maker too; and an account that trades nothing
            by_account = {}
            for request_id, account in ((6, 1), (7, 3)):
                await ws.send_json(
                    {
                        "jsonrpc": "2.0",
                        "id": request_id,
                        "method": "ratchet_subscribe",
                        "params": ["fills", {"account": account}],
                    }
                )
                by_account[account] = (await ws.receive_json())["result"]
            placed = []
            for nonce in (1, 2):
                reply = await node.call(
                    "ratchet_sendTransaction",
                    raw(MAKER, order(1, True, 59_000 + nonce, 0.1, nonce)),
                )
                placed.append(reply["result"]["outcome"]["orderHash"])
            # the taker's transfer is not account 1's: no receipt notification for it
            await node.call("ratchet_sendTransaction", raw(TAKER, Transfer(2, 1, 5, 1)))
            # the taker sells into the best bid (account 1's at 59,002): one fill
            sell = order(2, False, 59_000, 0.05, 2)
            assert "result" in await node.call("ratchet_sendTransaction", raw(TAKER, sell))
            # a Cancel names no market: the book subscription still hears of it
            cancel = Cancel(1, bytes.fromhex(placed[0][2:]), 3)
            assert "result" in await node.call("ratchet_sendTransaction", raw(MAKER, cancel))
            seen: dict[str, list[dict[str, Any]]] = {
                subscription: [],
                book_subscription: [],
                fills_subscription: [],
                by_account[1]: [],
                by_account[3]: [],
            }
            while (
                len(seen[subscription]) < 3
                or len(seen[book_subscription]) < 4
                or not seen[fills_subscription]
                or not seen[by_account[1]]
            ):
                message = await asyncio.wait_for(ws.receive_json(), 10)
                assert message["method"] == "ratchet_subscription"
                seen[message["params"]["subscription"]].append(message["params"])
            assert [p["seq"] for p in seen[subscription]] == [1, 2, 3]
            assert [p["result"]["type"] for p in seen[subscription]] == ["Order", "Order", "Cancel"]
            assert [len(p["result"]["bids"]) for p in seen[book_subscription]] == [1, 2, 2, 1]
            (fill,) = seen[fills_subscription]
            result = fill["result"]
            assert (fill["seq"], result["makerAccount"], result["taker"]) == (1, 1, 2)
            assert result["price"] == str(btc(59_002))
            assert result["takerIsBuy"] is False
            # the maker hears of the fill its resting order got; account 3 of nothing
            assert [p["result"] for p in seen[by_account[1]]] == [result]
            assert seen[by_account[3]] == []
            await ws.send_json(
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "ratchet_unsubscribe",
                    "params": [subscription],
                }
            )
            assert (await ws.receive_json())["result"] is True
            await ws.send_json(
                {
                    "jsonrpc": "2.0",
                    "id": 4,
                    "method": "ratchet_unsubscribe",
                    "params": [subscription],
                }
            )
            assert (await ws.receive_json())["result"] is False
        # subscribing over HTTP is refused
        reply = await node.call("ratchet_subscribe", "batches")
        assert reply["error"]["code"] == -32601

    run(tmp_path / "db", body)


def test_subscriptions_are_bounded_per_connection_and_freed_when_it_closes(
    tmp_path: Path,
) -> None:
    """One connection holds at most MAX_SUBSCRIPTIONS_PER_SOCKET; a closed connection's
    are forgotten (an event costs what its listeners cost, not what every old
    subscription would)."""
    from node.sequencer.rpc import MAX_SUBSCRIPTIONS_PER_SOCKET  # noqa: PLC0415

    def subscribe(request_id: int, account: int) -> dict[str, Any]:
        return {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "ratchet_subscribe",
            "params": ["receipts", {"account": account}],
        }

    async def body(node: Node) -> None:
        async with node.session.ws_connect(node.url + "/ws") as ws:
            await ws.send_json(
                [subscribe(i, 1) for i in range(1, MAX_SUBSCRIPTIONS_PER_SOCKET + 2)]
            )
            replies = sorted(await ws.receive_json(), key=lambda r: r["id"])
            assert all("result" in r for r in replies[:-1])
            refused = replies[-1]["error"]
            assert refused["code"] == -32602
            assert str(MAX_SUBSCRIPTIONS_PER_SOCKET) in refused["data"]["detail"]
            # each of them hears of account 1's next transaction, with its own seq
            sent = await node.call(
                "ratchet_sendTransaction", raw(MAKER, order(1, True, 50_000, 0.1, 7))
            )
            tx_hash = sent["result"]["txHash"]
            seen: set[str] = set()
            while len(seen) < MAX_SUBSCRIPTIONS_PER_SOCKET:
                message = await asyncio.wait_for(ws.receive_json(), 10)
                assert message["params"]["seq"] == 1
                assert message["params"]["result"]["txHash"] == tx_hash
                seen.add(message["params"]["subscription"])
        # closed: a new connection may subscribe again, and the old ones are gone
        async with node.session.ws_connect(node.url + "/ws") as ws:
            await ws.send_json(subscribe(1, 2))
            assert "result" in await ws.receive_json()
        assert len(node.api.subscriptions) == 1

    run(tmp_path / "db", body)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_websocket_client_that_stops_reading_is_cut_off(tmp_path: Path, loop: str) -> None:
    """A client that asks and never reads its answers cannot make the server buffer
    without bound: once MAX_UNSENT_BYTES of output wait for it, the server drops that
    connection (and counts it), and serves everyone else as before. On both event loops:
    the daemon runs on uvloop, whose transports are not asyncio's classes."""
    from node.sequencer.rpc import MAX_UNSENT_BYTES  # noqa: PLC0415
    from tests.fuzz_rpc.hostile import ws_frame  # noqa: PLC0415
    from tests.fuzz_rpc.run import handshake  # noqa: PLC0415

    def cut_off(node: Node) -> float | None:
        return node.api.metrics.registry.get_sample_value("ratchet_websockets_cut_off_total")

    async def body(node: Node) -> None:
        loop = asyncio.get_running_loop()
        request = [{"jsonrpc": "2.0", "id": i, "method": "ratchet_getMarkets"} for i in range(1000)]
        answer_bytes = len(json.dumps((await node.call("ratchet_getMarkets"))["result"])) * 1000
        # more than the bound, the server's largest socket buffer and the client's together
        frames = 3 * (MAX_UNSENT_BYTES + (8 << 20)) // answer_bytes + 1
        host, port = "127.0.0.1", int(node.url.rsplit(":", 1)[1])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            writer.write(handshake(f"{host}:{port}", base64.b64encode(os.urandom(16)).decode()))
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
            # read-write (uvloop's transports are not asyncio's classes: no isinstance)
            transport = cast(asyncio.Transport, writer.transport)
            transport.pause_reading()  # from here on, the client reads nothing
            frame = ws_frame(1, json.dumps(request).encode())
            sent = 0
            with contextlib.suppress(ConnectionError, TimeoutError):
                async with asyncio.timeout(30):  # an unbounded server slows down as it piles up
                    for _ in range(frames):
                        writer.write(frame)
                        await writer.drain()
                        sent += 1
                        if cut_off(node):
                            break
            for _ in range(100):
                if cut_off(node):
                    break
                await asyncio.sleep(0.1)
            assert cut_off(node) == 1
            # the connection is over: what is left to read ends (EOF or a reset) well short
            # of the answers asked for
            transport.resume_reading()
            received = 0
            with contextlib.suppress(ConnectionError):
                while chunk := await asyncio.wait_for(reader.read(1 << 20), 10):
                    received += len(chunk)
            assert received < sent * answer_bytes
        finally:
            writer.transport.abort()  # whatever happened, this side is done
        # everyone else is served: over HTTP and on a new WebSocket
        assert "result" in await node.call("ratchet_getMarkets")
        async with node.session.ws_connect(node.url + "/ws") as ws:
            await ws.send_json(request[0])
            assert "result" in await asyncio.wait_for(ws.receive_json(), 10)
        assert cut_off(node) == 1

    run(tmp_path / "db", body, loop)


def test_metrics_say_where_a_transactions_time_went(tmp_path: Path) -> None:
    """/metrics times each admitted transaction's phases (sequencing, then the wait for its
    durable write) and each sealed batch; a refused transaction is in neither."""

    def phase_counts(text: str) -> dict[str, float]:
        return {
            sample.labels["phase"]: sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "ratchet_sequencer_phase_seconds"
            for sample in family.samples
            if sample.name.endswith("_count")
        }

    async def body(node: Node) -> None:
        for nonce in (1, 2):
            reply = await node.call(
                "ratchet_sendTransaction", raw(MAKER, order(1, True, 50_000, 0.1, nonce))
            )
            assert "result" in reply
        refused = await node.call(
            "ratchet_sendTransaction", raw(MAKER, order(1, True, 50_000, 0.1, 1))
        )
        assert refused["error"]["code"] == -32010
        await node.engine.close_batch()
        async with node.session.get(node.url + "/metrics") as page:
            counts = phase_counts(await page.text())
        assert counts == {"sequence": 2.0, "durable": 2.0, "seal": 1.0}

    run(tmp_path / "db", body)
