"""
The sequencer's JSON-RPC 2.0 API (INTERFACE.md): HTTP POST on ``/`` and WebSocket
on ``/ws``, one port, plus ``/health`` and ``/metrics``.

The JSON-RPC plumbing (parsing, batch requests, notifications, the standard error
codes -32700/-32600/-32601/-32602/-32603) is aiohttp-rpc's; this module holds the
methods. Application errors use -32000..-32099 with a ``data`` object saying what
was wrong:

| code   | meaning                                              | data                     |
|--------|------------------------------------------------------|--------------------------|
| -32010 | the STF rejected the transaction; nothing sequenced  | ``reason``, ``code``, ``detail`` |
| -32011 | not found (receipt, account, order, market, batch)   | ``what``                 |
| -32012 | not available yet (e.g. a withdrawal not yet final)  | ``detail``               |

WebSocket subscriptions (``ratchet_subscribe(channel, params)``) push
``ratchet_subscription`` notifications ``{subscription, seq, result}``; ``seq``
counts from 1 per subscription, so a client that sees a gap knows it missed one.
Channels: ``receipts`` (params ``{"account": id}``: the transactions it sends),
``fills`` (optional ``{"market": id, "account": id}``: an account's fills as taker or
maker), ``book`` (``{"market": id, "depth": n}``: a snapshot after each change),
``batches``.

A WebSocket client must read what it is sent: once more than :data:`MAX_UNSENT_BYTES`
of its answers and notifications wait in the server's buffer, the connection is cut
(as geth drops a subscriber whose buffer overflows); it may reconnect and resubscribe,
and the ``seq`` gap tells it what it missed.
"""

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import re
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp_rpc
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp_rpc import errors as rpc_errors
from aiohttp_rpc.server import JSONRPCServer, WSJSONRPCServer
from hexbytes import HexBytes
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from web3 import Web3
from web3.contract import Contract

from node.l1.artifacts import load_artifact
from node.protocol.crypto import address_of
from node.protocol.errors import WireError
from node.protocol.genesis import Genesis
from node.protocol.records import decode_withdrawal
from node.protocol.state import TABLE_WITHDRAWALS
from node.protocol.transactions import (
    SignedTransaction,
    eip712_types,
    encode_transaction,
    message_from_json,
)

from .engine import AdmissionError, Sequencer
from .views import account_json, book_json, hex0x, market_json

log = logging.getLogger(__name__)

REJECTED = -32010
NOT_FOUND = -32011
NOT_AVAILABLE = -32012

MAX_BOOK_DEPTH = 100
"""Most price levels per side ``ratchet_getOrderBook`` returns."""


class RejectedError(rpc_errors.JSONRPCError):
    """The STF refused the transaction."""

    code = REJECTED
    message = "Transaction rejected"


class NotFoundError(rpc_errors.JSONRPCError):
    """Nothing is known under that name."""

    code = NOT_FOUND
    message = "Not found"


class NotAvailableError(rpc_errors.JSONRPCError):
    """Known, but not available yet."""

    code = NOT_AVAILABLE
    message = "Not available yet"


def invalid(detail: str) -> rpc_errors.InvalidParams:
    """An InvalidParams error whose data says what was wrong."""
    return rpc_errors.InvalidParams(data={"detail": detail})


def parse_hash(value: Any, name: str = "hash") -> bytes:
    """A 0x-hex 32-byte hash parameter."""
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise invalid(f"{name} must be a 0x-hex 32-byte string")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise invalid(f"{name} must be a 0x-hex 32-byte string") from None


def parse_uint(value: Any, name: str, bits: int = 64) -> int:
    """A non-negative integer parameter, as a JSON number or a decimal string."""
    if isinstance(value, bool):
        raise invalid(f"{name} must be an integer")
    if isinstance(value, str) and value.isascii() and value.isdecimal():
        try:
            value = int(value)
        except ValueError:  # more digits than int() takes (4300)
            raise invalid(f"{name} must be an integer in 0..2^{bits}-1") from None
    if not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise invalid(f"{name} must be an integer in 0..2^{bits}-1")
    return value


MAX_JSON_DEPTH = 100
"""Deepest nesting of arrays and objects a request may have. The C JSON decoder recurses
once per level and relies on the recursion limit to stop before the C stack ends, but
py_ecc (imported through web3) raises that limit to 100,000: unchecked, 100,000 nested
``[`` in a request would crash the process (SIGSEGV)."""

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: str) -> Any:
    """Parse a request: strict JSON (no NaN or Infinity), at most :data:`MAX_JSON_DEPTH`
    deep; anything else raises ``json.JSONDecodeError``, which aiohttp-rpc answers with
    -32700 (it lets other exceptions escape: an HTTP 500, or no answer on a WebSocket)."""
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        depth = 0
        for bracket in re.findall(r"[\[\]{}]", _JSON_STRING.sub("", text)):
            depth += 1 if bracket in "[{" else -1
            if depth > MAX_JSON_DEPTH:
                raise json.JSONDecodeError(f"nested more than {MAX_JSON_DEPTH} deep", text, 0)
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:  # NaN, an integer of over 4300 digits
        raise json.JSONDecodeError(str(exc), text, 0) from None


def parse_transaction(tx: Any) -> bytes:
    """``ratchet_sendTransaction``'s parameter: raw 0x-hex, or ``{type, message, signature}``."""
    if isinstance(tx, str):
        if not tx.startswith("0x"):
            raise invalid("a raw transaction is 0x-hex")
        try:
            return bytes.fromhex(tx[2:])
        except ValueError:
            raise invalid("a raw transaction is 0x-hex") from None
    if not isinstance(tx, dict) or set(tx) != {"type", "message", "signature"}:
        raise invalid("tx must be 0x-hex or an object {type, message, signature}")
    signature = tx["signature"]
    if not isinstance(signature, str) or not signature.startswith("0x"):
        raise invalid("signature must be 0x-hex")
    try:
        message = message_from_json(tx["type"], tx["message"])
        return encode_transaction(SignedTransaction(message, bytes.fromhex(signature[2:])))
    except (WireError, ValueError, TypeError) as exc:
        raise invalid(str(exc)) from None


@dataclass
class Subscription:
    """One WebSocket subscription."""

    id: str
    channel: str
    params: dict[str, Any]
    socket: web.WebSocketResponse
    seq: int = 0


MAX_SUBSCRIPTIONS_PER_SOCKET = 100
"""Subscriptions one WebSocket connection may hold."""

MAX_SUBSCRIPTIONS = 10_000
"""Subscriptions the server holds in all (every event is fanned out while sequencing)."""


MAX_UNSENT_BYTES = 4 << 20
"""Output a WebSocket connection may have waiting for its client to read (beyond what
the kernel's socket buffers hold) before the server cuts it off."""


class BoundedWebSocket(web.WebSocketResponse):
    """A WebSocket connection whose unread output is bounded. Without a bound, a client
    that sends requests (or holds subscriptions) and never reads makes the server buffer
    every answer for it: memory without limit. Past :data:`MAX_UNSENT_BYTES` the
    connection is aborted (its buffer dropped) and ``on_cut_off`` called."""

    def __init__(self, *, on_cut_off: Callable[[], None] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_cut_off = on_cut_off
        self._transport: asyncio.Transport | None = None

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter:
        self._transport = request.transport
        return await super().prepare(request)

    async def send_str(self, data: str, compress: int | None = None) -> None:
        """Send ``data``, unless the connection is gone (the client left, or was cut off
        now or earlier): then there is nobody to tell, and it is dropped."""
        transport = self._transport
        # not isinstance(asyncio.WriteTransport): uvloop's transports are not its subclasses
        if transport is not None:
            if transport.is_closing():
                return
            if transport.get_write_buffer_size() > MAX_UNSENT_BYTES:
                transport.abort()
                if self.on_cut_off is not None:
                    self.on_cut_off()
                return
        with contextlib.suppress(ConnectionResetError):
            await super().send_str(data, compress)


def _index_key(subscription: Subscription) -> tuple[Any, ...]:
    """What a subscription listens to: batches; an account's receipts; fills (filtered
    later by market and account); a market's book."""
    if subscription.channel == "receipts":
        return ("receipts", subscription.params["account"])
    if subscription.channel == "book":
        return ("book", subscription.params["market"])
    return (subscription.channel,)


class Metrics:
    """The sequencer's Prometheus metrics (its own registry, served on /metrics)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.admitted = Counter(
            "ratchet_transactions_admitted_total",
            "Transactions sequenced, by type",
            ["type"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "ratchet_transactions_rejected_total",
            "Transactions refused at admission, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.batch_transactions = Histogram(
            "ratchet_batch_transactions",
            "Transactions per sealed batch",
            buckets=(1, 10, 50, 100, 500, 1000, 4096, 16384, 65536),
            registry=self.registry,
        )
        self.receipt_latency = Histogram(
            "ratchet_receipt_latency_seconds",
            "From a transaction's arrival to its durable, signed receipt",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.phases = Histogram(
            "ratchet_sequencer_phase_seconds",
            "Time spent per phase: sequence (a transaction's decoding, STF and signed "
            "receipt), durable (its wait for the log's synced write), seal (closing a "
            "batch, its root included)",
            ["phase"],
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0),
            registry=self.registry,
        )
        self.websockets_cut_off = Counter(
            "ratchet_websockets_cut_off_total",
            "WebSocket connections dropped because their client did not read its messages",
            registry=self.registry,
        )


class Api:
    """The methods of INTERFACE.md over one engine."""

    def __init__(
        self,
        engine: Sequencer,
        genesis: Genesis,
        config: dict[str, Any],
        *,
        metrics: Metrics | None = None,
        finality: Callable[[int], str] | None = None,
        heads: Callable[[], dict[str, Any]] | None = None,
        l1_tx_hash: Callable[[int], str | None] | None = None,
    ) -> None:
        self.engine = engine
        self.genesis = genesis
        self.config = config
        self.metrics = metrics or Metrics()
        self.finality = finality or (lambda batch: "soft")
        """The finality of a batch: soft | posted | final | rejected (the poster's view)."""
        self.l1_tx_hash = l1_tx_hash or (lambda batch: None)
        """The L1 transaction that posted a batch, once posted (the poster's view)."""
        self.heads = heads or dict
        """The L1 side of ``ratchet_getStatus``: posted and final heads, open disputes."""
        self.subscriptions: dict[str, Subscription] = {}
        self._index: dict[tuple[Any, ...], dict[str, Subscription]] = {}
        """Subscriptions by what they listen to (:func:`_index_key`)."""
        self._by_socket: weakref.WeakKeyDictionary[web.WebSocketResponse, set[str]] = (
            weakref.WeakKeyDictionary()
        )
        self._ids = itertools.count(1)
        engine.listeners.append(self._on_event)
        phases = {p: self.metrics.phases.labels(p) for p in ("sequence", "durable", "seal")}
        engine.timings = lambda phase, seconds: phases[phase].observe(seconds)

    # methods -----------------------------------------------------------------------

    async def ratchet_getConfig(self) -> dict[str, Any]:  # noqa: N802 - JSON-RPC name
        engine = self.engine
        return {
            **self.config,
            "sequencer": hex0x(address_of(engine.key)),
            "domain": engine.domain.to_json(),
            "types": eip712_types(),
            "markets": [
                market_json(engine.state, self.genesis, m.id) for m in self.genesis.markets
            ],
        }

    async def ratchet_sendTransaction(self, tx: Any) -> dict[str, Any]:  # noqa: N802
        raw = parse_transaction(tx)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            receipt = await self.engine.submit(raw)
        except AdmissionError as exc:
            self.metrics.rejected.labels(exc.reason.name).inc()
            raise RejectedError(
                message=f"Transaction rejected: {exc.reason.name}",
                data={"reason": exc.reason.name, "code": int(exc.reason), "detail": exc.detail},
            ) from None
        self.metrics.admitted.labels(receipt["type"]).inc()
        self.metrics.receipt_latency.observe(loop.time() - started)
        return {**receipt, "finality": "soft"}

    async def ratchet_getReceipt(self, txHash: Any) -> dict[str, Any]:  # noqa: N802, N803
        tx_hash = parse_hash(txHash, "txHash")
        receipt = self.engine.receipt(tx_hash)
        if receipt is None:
            raise NotFoundError(data={"what": "receipt", "txHash": txHash})
        # an undone entry's receipt already says "rejected" (the engine knows); else L1's
        result = {"finality": self.finality(receipt["batch"]), **receipt}
        if result["finality"] in ("posted", "final"):
            posted_in = self.l1_tx_hash(receipt["batch"])
            if posted_in is not None:
                result["l1TxHash"] = posted_in
        return result

    async def ratchet_getAccount(self, idOrAddress: Any) -> dict[str, Any]:  # noqa: N802, N803
        account_id = self._account_id(idOrAddress)
        found = account_json(self.engine.state, account_id) if account_id is not None else None
        if found is None:
            raise NotFoundError(data={"what": "account", "account": idOrAddress})
        return found

    async def ratchet_getOrder(self, orderHash: Any) -> dict[str, Any]:  # noqa: N802, N803
        order_hash = parse_hash(orderHash, "orderHash")
        found = self.engine.orders.json(self.engine.state, order_hash)
        if found is None:
            raise NotFoundError(data={"what": "order", "orderHash": orderHash})
        return found

    async def ratchet_getOpenOrders(self, account: Any) -> list[dict[str, Any]]:  # noqa: N802
        found = await self.ratchet_getAccount(account)
        orders = [
            self.engine.orders.json(self.engine.state, parse_hash(h)) for h in found["openOrders"]
        ]
        return [o for o in orders if o is not None]

    async def ratchet_getOrderBook(self, market: Any, depth: Any = 20) -> dict[str, Any]:  # noqa: N802
        market_id = parse_uint(market, "market", 32)
        levels = parse_uint(depth, "depth", 32)
        if not 1 <= levels <= MAX_BOOK_DEPTH:
            raise invalid(f"depth must be 1..{MAX_BOOK_DEPTH}")
        found = book_json(self.engine.state, market_id, levels)
        if found is None:
            raise NotFoundError(data={"what": "market", "market": market})
        return found

    async def ratchet_getMarkets(self) -> list[dict[str, Any]]:  # noqa: N802
        state = self.engine.state
        return [m for s in self.genesis.markets if (m := market_json(state, self.genesis, s.id))]

    async def ratchet_getBatch(self, index: Any) -> dict[str, Any]:  # noqa: N802
        batch_index = parse_uint(index, "index")
        batch = self.engine.batch(batch_index)
        if batch is not None:
            return {
                "index": batch.index,
                "status": self.finality(batch.index),
                "parentRoot": hex0x(batch.parent_root),
                "postRoot": hex0x(batch.post_root),
                "timestamp": batch.timestamp,
                "inboxStart": batch.inbox_start,
                "inboxEnd": batch.inbox_end,
                "transactions": len(batch.transactions),
                "txRoot": hex0x(batch.header().tx_root),
                "l1TxHash": self.l1_tx_hash(batch.index),
            }
        open_batch = self.engine.open
        if open_batch is not None and open_batch.index == batch_index:
            return {
                "index": batch_index,
                "status": "open",
                "parentRoot": hex0x(open_batch.parent_root),
                "timestamp": open_batch.timestamp,
                "inboxStart": open_batch.inbox_start,
                "inboxEnd": open_batch.inbox_end,
                "transactions": len(open_batch.transactions),
            }
        raise NotFoundError(data={"what": "batch", "index": index})

    async def ratchet_getStatus(self) -> dict[str, Any]:  # noqa: N802
        engine = self.engine
        return {
            "sequence": engine.ledger.head,
            "soft": {"batch": engine.open.index if engine.open else engine.closed},
            "closedBatches": engine.closed,
            "root": hex0x(engine.state.commit()),
            "inboxConsumed": engine.inbox_next,
            **self.heads(),
        }

    async def ratchet_getWithdrawalProof(self, withdrawalId: Any) -> dict[str, Any]:  # noqa: N802, N803
        withdrawal_id = parse_uint(withdrawalId, "withdrawalId", 40)
        batch = self.engine.withdrawals.get(withdrawal_id)
        if batch is None:
            raise NotFoundError(data={"what": "withdrawal", "withdrawalId": withdrawalId})
        finality = self.finality(batch)
        if finality != "final":
            raise NotAvailableError(
                data={"detail": f"its batch {batch} is {finality}: claimable once final"}
            )
        proof = self.engine.prove_at(batch, TABLE_WITHDRAWALS.id, withdrawal_id)
        record = decode_withdrawal(proof.record)
        recipient = hex0x(record.recipient)
        args = [batch, withdrawal_id, record.account, recipient, record.amount, proof.siblings]
        bridge = self.config.get("contracts", {}).get("bridge")
        return {
            "withdrawalId": str(withdrawal_id),
            "batch": batch,
            "account": record.account,
            "recipient": recipient,
            "amount": str(record.amount),
            "siblings": [hex0x(s) for s in proof.siblings],
            "l1Call": {"to": bridge, "data": hex0x(claim_calldata(args))},
        }

    async def ratchet_subscribe(
        self, channel: Any, params: Any = None, *, rpc_request: aiohttp_rpc.JSONRPCRequest
    ) -> str:
        socket = rpc_request.context.get("ws_connect")
        if socket is None:
            raise rpc_errors.MethodNotFound(data={"detail": "subscriptions are WebSocket only"})
        if channel not in ("receipts", "fills", "book", "batches"):
            raise invalid("channel must be receipts, fills, book or batches")
        options = params or {}
        if not isinstance(options, dict):
            raise invalid("params must be an object")
        if channel == "receipts":
            options = {"account": parse_uint(options.get("account"), "account", 32)}
        elif channel == "book":
            depth = parse_uint(options.get("depth", 10), "depth", 32)
            if not 1 <= depth <= MAX_BOOK_DEPTH:
                raise invalid(f"depth must be 1..{MAX_BOOK_DEPTH}")
            options = {"market": parse_uint(options.get("market"), "market", 32), "depth": depth}
        elif channel == "fills":
            options = {
                name: parse_uint(options[name], name, 32)
                for name in ("market", "account")
                if name in options
            }
        self._forget_closed()
        mine = self._by_socket.setdefault(socket, set())
        if len(mine) >= MAX_SUBSCRIPTIONS_PER_SOCKET:
            raise invalid(f"at most {MAX_SUBSCRIPTIONS_PER_SOCKET} subscriptions a connection")
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise NotAvailableError(
                data={"detail": f"the server holds {MAX_SUBSCRIPTIONS} subscriptions already"}
            )
        subscription = Subscription(f"0x{next(self._ids):x}", channel, options, socket)
        self.subscriptions[subscription.id] = subscription
        self._index.setdefault(_index_key(subscription), {})[subscription.id] = subscription
        mine.add(subscription.id)
        return subscription.id

    async def ratchet_unsubscribe(
        self, subscription: Any, *, rpc_request: aiohttp_rpc.JSONRPCRequest
    ) -> bool:
        found = self.subscriptions.get(subscription) if isinstance(subscription, str) else None
        if found is None or found.socket is not rpc_request.context.get("ws_connect"):
            return False
        self._drop(found)
        return True

    # helpers -----------------------------------------------------------------------

    def _account_id(self, value: Any) -> int | None:
        if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
            try:
                owner = bytes.fromhex(value[2:])
            except ValueError:
                raise invalid("an address is 0x-hex, 20 bytes") from None
            return self._account_by_owner(owner)
        return parse_uint(value, "account", 32)

    def _account_by_owner(self, owner: bytes) -> int | None:
        return self.engine.owners.get(owner)

    def _drop(self, subscription: Subscription) -> None:
        """Forget one subscription everywhere it is listed."""
        self.subscriptions.pop(subscription.id, None)
        self._index.get(_index_key(subscription), {}).pop(subscription.id, None)
        mine = self._by_socket.get(subscription.socket)
        if mine is not None:
            mine.discard(subscription.id)

    def _forget_closed(self) -> None:
        """Drop the subscriptions of every closed connection."""
        for socket in [socket for socket in self._by_socket if socket.closed]:
            for subscription_id in list(self._by_socket.pop(socket, ())):
                found = self.subscriptions.get(subscription_id)
                if found is not None:
                    self._drop(found)

    def _candidates(self, channel: str, payload: dict[str, Any]) -> list[Subscription]:
        """The subscriptions an event may concern (only these are looked at: an event costs
        what its listeners cost, not what every subscription on the server costs)."""
        if channel == "batches":
            return list(self._index.get(("batches",), {}).values())
        if channel != "receipts":
            return []
        found = list(self._index.get(("receipts", payload.get("account")), {}).values())
        if payload.get("outcome", {}).get("fills"):
            found += self._index.get(("fills",), {}).values()
        for market in self._markets_touched(payload):
            found += self._index.get(("book", market), {}).values()
        return found

    def _on_event(self, channel: str, payload: dict[str, Any]) -> None:
        """Count an engine event, and fan it out to the matching subscriptions."""
        if channel == "batches":
            self.metrics.batch_transactions.observe(payload.get("transactions", 0))
        for subscription in self._candidates(channel, payload):
            if subscription.socket.closed:
                self._forget_closed()
                continue
            for result in self._results(subscription, channel, payload):
                subscription.seq += 1
                message = {
                    "jsonrpc": "2.0",
                    "method": "ratchet_subscription",
                    "params": {
                        "subscription": subscription.id,
                        "seq": subscription.seq,
                        "result": result,
                    },
                }
                self._send(subscription.socket, json.dumps(message))

    def _results(
        self, subscription: Subscription, channel: str, payload: dict[str, Any]
    ) -> list[Any]:
        wanted = subscription.channel
        if channel == "batches":
            return [payload] if wanted == "batches" else []
        if channel != "receipts":
            return []
        if wanted == "receipts":
            return [payload] if payload.get("account") == subscription.params["account"] else []
        market = payload.get("market")
        if wanted == "fills":
            outcome = payload.get("outcome", {})
            fills = outcome.get("fills", [])
            if not fills or (
                "market" in subscription.params and market != subscription.params["market"]
            ):
                return []
            taker = payload.get("account")
            taker_order = self.engine.orders.orders.get(bytes.fromhex(outcome["orderHash"][2:]))
            account = subscription.params.get("account")
            return [
                {
                    **fill,
                    "market": market,
                    "taker": taker,
                    "takerIsBuy": taker_order.is_buy if taker_order is not None else None,
                    "txHash": payload["txHash"],
                }
                for fill in fills
                if account is None or account in (taker, fill["makerAccount"])
            ]
        if wanted == "book" and subscription.params["market"] in self._markets_touched(payload):
            wanted_market = subscription.params["market"]
            book = book_json(self.engine.state, wanted_market, subscription.params["depth"])
            return [book] if book is not None else []
        return []

    def _markets_touched(self, receipt: dict[str, Any]) -> set[int]:
        """The markets whose book a receipt's transaction may have changed: the one it
        names and those of the orders it removed (a Cancel names no market)."""
        touched = {receipt["market"]} if isinstance(receipt.get("market"), int) else set()
        for removal in receipt.get("outcome", {}).get("removals", []):
            info = self.engine.orders.orders.get(bytes.fromhex(removal["orderHash"][2:]))
            if info is not None:
                touched.add(info.market)
        return touched

    def _send(self, socket: web.WebSocketResponse, text: str) -> None:
        task = asyncio.get_running_loop().create_task(socket.send_str(text))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)


@functools.cache
def _bridge() -> type[Contract]:
    """The Bridge's ABI, for encoding claims (no provider needed)."""
    return Web3().eth.contract(abi=load_artifact("Bridge")["abi"])


def claim_calldata(args: list[Any]) -> bytes:
    """The calldata of ``Bridge.claimWithdrawal(batchIndex, withdrawalId, account,
    recipient, amount, siblings)``."""
    args = [*args[:3], Web3.to_checksum_address(args[3]), *args[4:]]
    return bytes(HexBytes(_bridge().encode_abi("claimWithdrawal", args=args)))


def methods(api: Api) -> list[aiohttp_rpc.JSONRPCMethod]:
    """The API's methods for aiohttp-rpc, by their JSON-RPC names."""
    found = []
    for name in dir(api):
        if name.startswith("ratchet_"):
            extra = name in ("ratchet_subscribe", "ratchet_unsubscribe")
            found.append(
                aiohttp_rpc.JSONRPCMethod(getattr(api, name), name=name, pass_extra_kwargs=extra)
            )
    return found


def application(
    api: Api,
    health: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    extra: Sequence[aiohttp_rpc.JSONRPCMethod] = (),
) -> web.Application:
    """The aiohttp application: JSON-RPC on ``/`` (POST) and ``/ws``, ``/health``, ``/metrics``;
    ``extra`` methods beside the API's (the devnet's fault injection)."""
    # aiohttp-rpc logs every unparsable request at WARNING, a WebSocket one with its whole
    # text: a client could write a MiB of log per request. Its errors still go to the log.
    logging.getLogger("aiohttp_rpc").setLevel(logging.ERROR)
    middlewares = (
        aiohttp_rpc.middlewares.exception_middleware,
        aiohttp_rpc.middlewares.inject_request_middleware,
    )
    http = JSONRPCServer(middlewares=middlewares, max_batch=1_000, json_deserialize=loads)
    ws = WSJSONRPCServer(
        middlewares=middlewares,
        max_batch=1_000,
        json_deserialize=loads,
        ws_response_cls=BoundedWebSocket,
        ws_response_kwargs={
            "max_msg_size": 1 << 20,
            "on_cut_off": api.metrics.websockets_cut_off.inc,
        },
    )
    for server in (http, ws):
        server.add_methods([*methods(api), *extra])

    async def handle_http(request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            # aiohttp-rpc parses only application/json; be lenient, as geth is
            request = request.clone(headers={**request.headers, "Content-Type": "application/json"})
        try:
            await request.text()  # a body that is not text gets -32700 (not a 500)
        except (UnicodeDecodeError, LookupError, web.RequestPayloadError):
            # not text in its charset, an unknown charset, a broken gzip body: not JSON
            error = rpc_errors.ParseError(data={"details": "the body is not text"})
            return web.json_response(aiohttp_rpc.JSONRPCResponse(error=error).dump())
        return await http.handle_http_request(request)

    async def handle_health(_: web.Request) -> web.Response:
        body = await health() if health is not None else {"ok": True}
        return web.json_response(body, status=200 if body.get("ok") else 503)

    async def handle_metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(api.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/", handle_http)
    app.router.add_get("/ws", ws.handle_http_request)
    app.router.add_get("/health", handle_health)
    app.router.add_get("/metrics", handle_metrics)
    app.on_shutdown.append(ws.on_shutdown)
    return app
