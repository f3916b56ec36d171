"""
WebSocket subscriptions that survive a dropped connection and never hide a loss.

``ratchet_subscribe(channel, params)`` on the sequencer's ``/ws`` pushes
``ratchet_subscription`` notifications ``{subscription, seq, result}`` with ``seq``
counting from 1 per subscription (docs/sequencer.md). A :class:`Subscription`
holds one such subscription on its own WebSocket and is an async iterator of:

- :class:`Event`: one notification's ``result`` and its ``seq``, in order;
- :class:`Gap`: something may have been missed. ``reason="seq"``: within one
  connection a ``seq`` was skipped (``expected``, ``got``). ``reason="reconnected"``:
  the connection dropped; the subscription reconnected with backoff, subscribed
  again (a new server-side subscription, ``seq`` from 1), and every event after the
  Gap is delivered. What happened while it was away is not replayed: on a Gap,
  read the state you track again (``account_info``, ``order_book``...).

A background task reads the socket into an unbounded queue, so a slow consumer loses
nothing (and a consumer that never reads lets the queue grow). The first subscribe
happens in :meth:`Subscription.start` (``Client.subscribe`` awaits it), so an event
caused after ``subscribe`` returns is delivered. A JSON-RPC error on (re)subscribing
is raised: by ``start``, or from the iterator after a reconnect.
"""

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from .errors import InvalidArgumentError, RpcError, TransportError, error_from_json

log = logging.getLogger(__name__)

CHANNELS = ("receipts", "fills", "book", "batches")
"""The sequencer's subscription channels."""


@dataclass(frozen=True)
class Event:
    """One notification."""

    seq: int
    """Its sequence number within the (current) server-side subscription."""

    result: Any
    """The payload: a receipt, a fill, a book snapshot or a batch."""

    channel: str
    """The channel it came on."""


@dataclass(frozen=True)
class Gap:
    """Events may have been missed here: resynchronise what you track."""

    reason: str
    """``seq`` (a skipped sequence number) or ``reconnected`` (the connection dropped)."""

    expected: int
    """The sequence number that was due next."""

    got: int | None
    """The one that came instead (None after a reconnect: numbering restarted at 1)."""


_END = object()


class Subscription:
    """One channel subscription on its own WebSocket, reconnecting until closed."""

    SUBSCRIBE_TIMEOUT = 30.0
    """Seconds to wait for the answer to ``ratchet_subscribe``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        ws_url: str,
        channel: str,
        params: dict[str, Any],
        *,
        backoff: tuple[float, float] = (0.1, 5.0),
        heartbeat: float = 15.0,
        on_close: Callable[["Subscription"], None] | None = None,
    ) -> None:
        if channel not in CHANNELS:
            raise InvalidArgumentError(
                f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}"
            )
        self.channel = channel
        """The channel: receipts, fills, book or batches."""
        self.params = params
        """Its parameters (``account``, ``market``, ``depth``)."""
        self.ws_url = ws_url
        """Where it connects."""
        self.reconnects = 0
        """How many times the connection was made again."""
        self.id: str | None = None
        """The current server-side subscription id."""
        self._session = session
        self._backoff = backoff
        self._heartbeat = heartbeat
        self._on_close = on_close
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._expected = 1
        self._closed = False
        self._ids = itertools.count(1)

    async def start(self) -> "Subscription":
        """Connect and subscribe; :class:`RpcError` if the sequencer refuses the
        subscription, :class:`TransportError` if it cannot be reached."""
        early = await self._open()
        self._task = asyncio.get_running_loop().create_task(self._main(early))
        return self

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Event | Gap:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)  # every later call ends too
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, Event | Gap)
        return item

    async def next(self, timeout: float | None = None) -> Event | Gap:
        """The next item; ``TimeoutError`` if none comes within ``timeout`` seconds,
        ``StopAsyncIteration`` once closed."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def close(self) -> None:
        """Unsubscribe (best effort), close the socket and end the iteration."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.send_str(self._request("ratchet_unsubscribe", [self.id]))
            with contextlib.suppress(Exception):
                await ws.close()
        self._queue.put_nowait(_END)
        if self._on_close is not None:
            self._on_close(self)

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # the connection -----------------------------------------------------------------

    def _request(self, method: str, params: list[Any]) -> str:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        return json.dumps(body)

    async def _open(self) -> list[dict[str, Any]]:
        """Connect, subscribe, and wait for the subscription id; the notifications that
        arrived before it (for the new id: they go out after the reconnect Gap)."""
        try:
            ws = await self._session.ws_connect(self.ws_url, heartbeat=self._heartbeat)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransportError(f"cannot open {self.ws_url}: {exc}") from exc
        try:
            async with asyncio.timeout(self.SUBSCRIBE_TIMEOUT):
                return await self._subscribe(ws)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await ws.close()
            raise TransportError(f"subscribing on {self.ws_url} failed: {exc!r}") from exc
        except BaseException:
            await ws.close()
            raise

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
        request_id = next(self._ids)
        body = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "ratchet_subscribe",
            "params": [self.channel, self.params],
        }
        await ws.send_str(json.dumps(body))
        early: list[dict[str, Any]] = []
        while True:
            message = await ws.receive()
            if message.type != aiohttp.WSMsgType.TEXT:
                raise TransportError(f"{self.ws_url} closed while subscribing")
            for obj in _objects(message.data):
                if obj.get("id") == request_id and "method" not in obj:
                    if "error" in obj:
                        raise error_from_json(obj["error"])
                    self.id = str(obj["result"])
                    self._ws, self._expected = ws, 1
                    return [n for n in early if _subscription_of(n) == self.id]
                if obj.get("method") == "ratchet_subscription":
                    early.append(obj)

    async def _main(self, early: list[dict[str, Any]]) -> None:
        try:
            await self._run(early)
        except Exception as exc:  # never leave the consumer waiting on a dead reader
            log.exception("subscription %s failed", self.channel)
            self._queue.put_nowait(exc)
            self._queue.put_nowait(_END)

    async def _run(self, early: list[dict[str, Any]]) -> None:
        """Read notifications into the queue; on a drop, reconnect and put a Gap."""
        while not self._closed:
            for notification in early:
                self._deliver(notification)
            ws = self._ws
            assert ws is not None
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    for obj in _objects(message.data):
                        if obj.get("method") == "ratchet_subscription":
                            self._deliver(obj)
            await ws.close()
            if self._closed:
                return
            log.info("subscription %s: connection lost, reconnecting", self.channel)
            missed = self._expected
            delay = self._backoff[0]
            while True:
                await asyncio.sleep(delay)
                try:
                    early = await self._open()
                    break
                except TransportError as exc:
                    log.debug("reconnecting to %s: %s", self.ws_url, exc)
                    delay = min(delay * 2, self._backoff[1])
                except RpcError as exc:
                    self._queue.put_nowait(exc)
                    self._queue.put_nowait(_END)
                    return
            self.reconnects += 1
            self._queue.put_nowait(Gap("reconnected", missed, None))

    def _deliver(self, notification: dict[str, Any]) -> None:
        params = notification.get("params")
        if not isinstance(params, dict) or params.get("subscription") != self.id:
            return
        seq = params.get("seq")
        if isinstance(seq, int):
            if seq != self._expected:
                self._queue.put_nowait(Gap("seq", self._expected, seq))
            self._expected = seq + 1
        else:
            seq = 0
        self._queue.put_nowait(Event(seq, params.get("result"), self.channel))


def _objects(text: Any) -> list[dict[str, Any]]:
    """The JSON-RPC objects of one WebSocket text message (a batch is a list)."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        return []
    items = data if isinstance(data, list) else [data]
    return [item for item in items if isinstance(item, dict)]


def _subscription_of(notification: dict[str, Any]) -> Any:
    params = notification.get("params")
    return params.get("subscription") if isinstance(params, dict) else None


def ws_url_of(rpc_url: str) -> str:
    """The WebSocket URL beside an HTTP JSON-RPC URL: same host and port, ``ws``/``wss``
    scheme, path ``/ws`` (``http://127.0.0.1:8547`` -> ``ws://127.0.0.1:8547/ws``)."""
    if rpc_url.startswith("https://"):
        rest, scheme = rpc_url[len("https://") :], "wss://"
    elif rpc_url.startswith("http://"):
        rest, scheme = rpc_url[len("http://") :], "ws://"
    else:
        raise InvalidArgumentError(f"not an http(s) URL: {rpc_url!r}")
    host, _, path = rest.partition("/")
    path = path.rstrip("/")
    return f"{scheme}{host}/{path + '/' if path else ''}ws"
