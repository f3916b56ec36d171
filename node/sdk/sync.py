"""
A blocking twin of :class:`~node.sdk.client.Client` for scripts, notebooks and threads.

:class:`SyncClient` runs one asynchronous client on an event loop of its own, in a
background (daemon) thread, and waits for each call. It may be used from any number
of threads at once: the calls interleave on the loop, and the nonce allocator keeps
their transactions distinct. Subscriptions iterate blockingly. Close it (or use it as
a context manager) to stop the thread.
"""

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Sequence
from decimal import Decimal
from typing import Any, Self, TypeVar

from node.protocol.transactions import Message, Order

from .client import DEFAULT_RPC, Client
from .errors import RpcError
from .receipts import TxReceipt
from .subscription import Event, Gap, Subscription
from .units import Collateral, DecimalLike, Market
from .views import Book, ClientIds, Position

T = TypeVar("T")


class _LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="ratchet-sdk", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coroutine`` on the loop and wait for its result (or exception)."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("a SyncClient cannot be called from its own event loop")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop the loop, join the thread, close the loop."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class SyncSubscription:
    """A :class:`~node.sdk.subscription.Subscription`, iterated blockingly."""

    def __init__(self, subscription: Subscription, runner: _LoopThread) -> None:
        self.subscription = subscription
        """The asynchronous subscription underneath."""
        self._runner = runner

    def __iter__(self) -> Iterator[Event | Gap]:
        return self

    def __next__(self) -> Event | Gap:
        try:
            return self._runner.run(self.subscription.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def next(self, timeout: float | None = None) -> Event | Gap:
        """The next item; ``TimeoutError`` if none comes within ``timeout`` seconds."""
        return self._runner.run(self.subscription.next(timeout))

    def close(self) -> None:
        """Unsubscribe and close its socket (already done if the client was closed)."""
        if not self._runner.loop.is_closed():
            self._runner.run(self.subscription.close())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SyncClient:
    """The blocking client: the methods of :class:`~node.sdk.client.Client`, same
    names and arguments, without ``await``."""

    def __init__(self, client: Client, runner: _LoopThread) -> None:
        self.client = client
        """The asynchronous client underneath (its methods run on :attr:`loop`)."""
        self._runner = runner

    @classmethod
    def connect(
        cls,
        rpc_url: str = DEFAULT_RPC,
        key: bytes | str | None = None,
        ws_url: str | None = None,
        *,
        timeout: float = 30.0,
        client_ids: ClientIds | None = None,
    ) -> Self:
        """As :meth:`Client.connect`: read the config and find the key's account."""
        runner = _LoopThread()
        try:
            client = runner.run(
                Client.connect(rpc_url, key, ws_url, timeout=timeout, client_ids=client_ids)
            )
        except BaseException:
            runner.stop()
            raise
        return cls(client, runner)

    def close(self) -> None:
        """Close the client and stop its thread."""
        if not self._runner.loop.is_closed():
            try:
                self._runner.run(self.client.close())
            finally:
                self._runner.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the client runs on."""
        return self._runner.loop

    # plain attributes ----------------------------------------------------------------

    @property
    def account(self) -> int | None:
        """The key's account id, or None before its first deposit."""
        return self.client.account

    @property
    def address(self) -> str | None:
        """The key's address."""
        return self.client.address

    @property
    def config(self) -> dict[str, Any]:
        """``ratchet_getConfig``."""
        return self.client.config

    @property
    def collateral(self) -> Collateral:
        """The collateral's units."""
        return self.client.collateral

    @property
    def client_ids(self) -> ClientIds:
        """The client order ids."""
        return self.client.client_ids

    def market(self, market: int | str | Market) -> Market:
        """A market by id or symbol."""
        return self.client.market(market)

    def sign(self, message: Message) -> dict[str, Any]:
        """``{type, message, signature}``."""
        return self.client.sign(message)

    def hash_of(self, message: Message) -> str:
        """A message's transaction hash."""
        return self.client.hash_of(message)

    def next_nonce(self) -> int:
        """A fresh nonce."""
        return self.client.next_nonce()

    def order_message(
        self,
        market: int | str | Market,
        side: str | bool,
        price: DecimalLike | None,
        size: DecimalLike,
        *,
        tif: str | int = "GTC",
        reduce_only: bool = False,
        expiry: int = 0,
        nonce: int | None = None,
    ) -> Order:
        """An order message in wire units (see :meth:`Client.order_message`)."""
        return self.client.order_message(
            market, side, price, size, tif=tif, reduce_only=reduce_only, expiry=expiry, nonce=nonce
        )

    # calls ---------------------------------------------------------------------------

    def call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call."""
        return self._run(self.client.call(method, *params))

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """One JSON-RPC batch request."""
        return self._run(self.client.batch(calls))

    def markets(self) -> list[Market]:
        """The markets with live figures."""
        return self._run(self.client.markets())

    def refresh_account(self) -> dict[str, Any] | None:
        """Read the key's account again."""
        return self._run(self.client.refresh_account())

    def wait_for_account(self, timeout: float = 60.0) -> int:
        """Wait for the key's first deposit to be sequenced."""
        return self._run(self.client.wait_for_account(timeout))

    def account_info(self, account: int | str | None = None) -> dict[str, Any]:
        """``ratchet_getAccount``."""
        return self._run(self.client.account_info(account))

    def positions(self, account: int | str | None = None) -> list[Position]:
        """The account's positions."""
        return self._run(self.client.positions(account))

    def open_orders(self, account: int | str | None = None) -> list[dict[str, Any]]:
        """The account's resting orders."""
        return self._run(self.client.open_orders(account))

    def order(
        self, order_hash: str | None = None, *, client_id: str | None = None
    ) -> dict[str, Any]:
        """An order's state."""
        return self._run(self.client.order(order_hash, client_id=client_id))

    def order_book(self, market: int | str | Market, depth: int = 20) -> Book:
        """The book."""
        return self._run(self.client.order_book(market, depth))

    def status(self) -> dict[str, Any]:
        """``ratchet_getStatus``."""
        return self._run(self.client.status())

    def receipt(self, tx_hash: str) -> TxReceipt:
        """A verified receipt."""
        return self._run(self.client.receipt(tx_hash))

    def wait_for_finality(
        self, tx_hash: str, finality: str = "final", timeout: float = 300.0
    ) -> TxReceipt:
        """Wait until the transaction is ``finality``."""
        return self._run(self.client.wait_for_finality(tx_hash, finality, timeout))

    def withdrawal_proof(self, withdrawal_id: int | str) -> dict[str, Any]:
        """The proof of a final withdrawal."""
        return self._run(self.client.withdrawal_proof(withdrawal_id))

    def send(self, message: Message) -> TxReceipt:
        """Sign and send one message."""
        return self._run(self.client.send(message))

    def send_many(
        self, messages: Sequence[Message], *, client_ids: Sequence[str | None] | None = None
    ) -> list[TxReceipt | RpcError]:
        """Several messages in one batch request."""
        return self._run(self.client.send_many(messages, client_ids=client_ids))

    def place_order(
        self,
        market: int | str | Market,
        side: str | bool,
        price: DecimalLike | None,
        size: DecimalLike,
        *,
        tif: str | int = "GTC",
        reduce_only: bool = False,
        expiry: int = 0,
        client_id: str | None = None,
    ) -> TxReceipt:
        """Place an order."""
        return self._run(
            self.client.place_order(
                market,
                side,
                price,
                size,
                tif=tif,
                reduce_only=reduce_only,
                expiry=expiry,
                client_id=client_id,
            )
        )

    def cancel(self, order_hash: str | None = None, *, client_id: str | None = None) -> TxReceipt:
        """Cancel one order."""
        return self._run(self.client.cancel(order_hash, client_id=client_id))

    def cancel_all(self, market: int | str | Market | None = None) -> TxReceipt:
        """Cancel every order (of one market)."""
        return self._run(self.client.cancel_all(market))

    def transfer(self, to: int, amount: Decimal | str | int) -> TxReceipt:
        """Move collateral to another account."""
        return self._run(self.client.transfer(to, amount))

    def withdraw(self, amount: DecimalLike, recipient: str | bytes | None = None) -> TxReceipt:
        """Withdraw collateral to L1."""
        return self._run(self.client.withdraw(amount, recipient))

    def subscribe(self, channel: str, **params: Any) -> SyncSubscription:
        """Subscribe; iterate the result blockingly."""
        return SyncSubscription(self._run(self.client.subscribe(channel, **params)), self._runner)
