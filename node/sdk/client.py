"""
The trader's asynchronous client of a Ratchet sequencer (docs/sdk.md).

:meth:`Client.connect` reads ``ratchet_getConfig`` once: the EIP-712 domain and
message types (checked against what this SDK signs with, :class:`ConfigError` if
they differ), the markets and their grids, and the sequencer's address, against
which every receipt is verified before it is returned. With a key, the client finds
the key's account (``ratchet_getAccount(address)``; None until the first deposit is
sequenced) and signs with it, using ``node.protocol`` for EIP-712 and secp256k1.

Nonces come from a :class:`~node.sdk.nonces.NonceAllocator` seeded from the
account's window, so any number of tasks send at once. If a transaction the client
built is rejected ``NONCE_USED``, ``NONCE_TOO_OLD`` or ``ORDER_ID_TAKEN`` (another
program signs for the same key, or an order id collides), the client reads the
account again and signs it once more with a fresh nonce; any other rejection raises
:class:`RejectedError`, and a transport failure is never retried (the transaction
may have been sequenced: ask :meth:`Client.receipt`). Messages given to
:meth:`Client.send` or :meth:`Client.send_many` are sent as they are.
"""

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any, Self

import aiohttp

from node.protocol.crypto import address_of, sign_digest
from node.protocol.transactions import (
    ALL_MARKETS,
    Cancel,
    CancelAll,
    Message,
    Order,
    Transfer,
    Withdraw,
    message_to_json,
)

from .errors import (
    DuplicateClientIdError,
    FinalityError,
    InvalidArgumentError,
    NoAccountError,
    NotFoundError,
    RejectedError,
    RpcError,
    TransportError,
    UnknownClientIdError,
    UnknownMarketError,
    error_from_json,
)
from .nonces import NonceAllocator
from .parsing import (
    domain_of,
    parse_address,
    parse_hash,
    parse_key,
    parse_side,
    parse_time_in_force,
)
from .receipts import FINALITY_RANK, TxReceipt, verify_receipt
from .subscription import Subscription, ws_url_of
from .transport import post, request, rpc
from .units import Collateral, DecimalLike, Market
from .views import Book, ClientIds, Level, Position

DEFAULT_RPC = "http://127.0.0.1:8547"
"""The devnet sequencer's JSON-RPC URL."""

RETRIED_REASONS = frozenset({"NONCE_USED", "NONCE_TOO_OLD", "ORDER_ID_TAKEN"})
"""Rejections of a client-built transaction that are answered by re-reading the account
and signing once more with a fresh nonce."""


class Client:
    """An asynchronous client of one sequencer; make it with :meth:`connect`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        rpc_url: str,
        config: dict[str, Any],
        *,
        key: bytes | None = None,
        ws_url: str | None = None,
        client_ids: ClientIds | None = None,
        owns_session: bool = True,
    ) -> None:
        self.rpc_url = rpc_url
        """The sequencer's HTTP JSON-RPC URL."""
        self.ws_url = ws_url or ws_url_of(rpc_url)
        """Its WebSocket URL."""
        self.config = config
        """``ratchet_getConfig`` as read at connect."""
        self.domain = domain_of(config)
        """The EIP-712 domain every message is signed in."""
        self.sequencer = parse_address(config["sequencer"])
        """The sequencer's address: every receipt must be signed by it."""
        self.collateral = Collateral(int(config.get("collateralDecimals", 6)))
        """The collateral token's units."""
        self.client_ids = client_ids or ClientIds()
        """Client order ids of this client's orders."""
        self.account: int | None = None
        """The key's account id (None until its first deposit is sequenced)."""
        self._key = key
        self.address = "0x" + address_of(key).hex() if key is not None else None
        """The key's address, 0x-hex (lower case), or None without a key."""
        self._session = session
        self._owns_session = owns_session
        self._markets = {m.id: m for m in (Market.from_json(o) for o in config["markets"])}
        self._nonces = NonceAllocator()
        self._ids = itertools.count(1)
        self._subscriptions: set[Subscription] = set()

    @classmethod
    async def connect(
        cls,
        rpc_url: str = DEFAULT_RPC,
        key: bytes | str | None = None,
        ws_url: str | None = None,
        *,
        timeout: float = 30.0,
        client_ids: ClientIds | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> Self:
        """Read the sequencer's config at ``rpc_url`` and, with ``key`` (32 bytes or
        0x-hex), find its account. ``timeout``: seconds per HTTP request.
        ``session``: an aiohttp session of yours to use (then yours to close)."""
        secret = parse_key(key) if key is not None else None
        owns = session is None
        if session is None:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
        try:
            config = await rpc(session, rpc_url, request(0, "ratchet_getConfig", ()))
            client = cls(
                session,
                rpc_url,
                config,
                key=secret,
                ws_url=ws_url,
                client_ids=client_ids,
                owns_session=owns,
            )
            if secret is not None:
                await client.refresh_account()
        except BaseException:
            if owns:
                await session.close()
            raise
        return client

    async def close(self) -> None:
        """Close every subscription and the HTTP session."""
        for subscription in list(self._subscriptions):
            await subscription.close()
        if self._owns_session:
            await self._session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # JSON-RPC -----------------------------------------------------------------------

    async def call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; its result, or :class:`RpcError` (a subclass for the
        application codes), :class:`TransportError` if there was no JSON-RPC answer."""
        return await rpc(self._session, self.rpc_url, request(next(self._ids), method, params))

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several calls in one JSON-RPC batch request: their results in order, each
        an error in place as an :class:`RpcError` instance (returned, not raised)."""
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        body = [request(i, method, params) for i, (method, params) in zip(ids, calls, strict=True)]
        reply = await post(self._session, self.rpc_url, body)
        if isinstance(reply, dict) and "error" in reply:
            raise error_from_json(reply["error"])
        if not isinstance(reply, list):
            raise TransportError(f"a batch request got {reply!r}")
        by_id = {item.get("id"): item for item in reply if isinstance(item, dict)}
        results: list[Any] = []
        for request_id in ids:
            item = by_id.get(request_id)
            if item is None:
                results.append(RpcError(-32603, "no answer to this request in the batch"))
            elif "error" in item:
                results.append(error_from_json(item["error"]))
            else:
                results.append(item.get("result"))
        return results

    # markets and units --------------------------------------------------------------

    @property
    def markets_by_id(self) -> dict[int, Market]:
        """The markets of ``ratchet_getConfig``, by id."""
        return dict(self._markets)

    def market(self, market: int | str | Market) -> Market:
        """A market by id or symbol (case-insensitive); :class:`UnknownMarketError`."""
        if isinstance(market, Market):
            return market
        if isinstance(market, int) or (isinstance(market, str) and market.isdecimal()):
            found = self._markets.get(int(market))
        else:
            wanted = market.strip().upper()
            found = next((m for m in self._markets.values() if m.symbol.upper() == wanted), None)
        if found is None:
            known = ", ".join(f"{m.id} {m.symbol}" for m in self._markets.values())
            raise UnknownMarketError(f"no market {market!r}; markets: {known}")
        return found

    async def markets(self) -> list[Market]:
        """The markets with their live figures (``ratchet_getMarkets``; ``info`` holds
        the oracle and mark prices, funding, best bid and ask)."""
        return [Market.from_json(obj) for obj in await self.call("ratchet_getMarkets")]

    # the account --------------------------------------------------------------------

    async def refresh_account(self) -> dict[str, Any] | None:
        """Read the key's account (``ratchet_getAccount(address)``): sets
        :attr:`account` and reseeds the nonces. None if it has no account yet."""
        if self.address is None:
            raise NoAccountError("this client has no key")
        try:
            info: dict[str, Any] = await self.call("ratchet_getAccount", self.address)
        except NotFoundError:
            return None
        self._adopt(info)
        return info

    async def wait_for_account(self, timeout: float = 60.0, poll: float = 0.25) -> int:
        """Wait until the key's first deposit is sequenced; its account id."""
        deadline = time.monotonic() + timeout
        while await self.refresh_account() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no account for {self.address} after {timeout} s")
            await asyncio.sleep(poll)
        assert self.account is not None
        return self.account

    def _adopt(self, info: dict[str, Any]) -> None:
        self.account = int(info["id"])
        nonce = info.get("nonce", {})
        self._nonces.seed(int(nonce.get("base", 0)), int(str(nonce.get("used", "0x0")), 16))

    async def _require_account(self) -> int:
        if self.account is None and self.address is not None:
            await self.refresh_account()
        if self.account is None:
            raise NoAccountError(
                f"{self.address or 'this client'} has no account: deposit first"
                if self.address
                else "this client has no key"
            )
        return self.account

    def next_nonce(self) -> int:
        """A fresh nonce for a message of this client's account (never the same twice)."""
        if self.account is None:
            raise NoAccountError("the account is not known yet: refresh_account() first")
        return self._nonces.take()

    async def account_info(self, account: int | str | None = None) -> dict[str, Any]:
        """``ratchet_getAccount`` of ``account`` (id or address; default: the key's)."""
        if account is None:
            await self._require_account()
            account = self.account
        info: dict[str, Any] = await self.call("ratchet_getAccount", account)
        if self.address is not None and info.get("address") == self.address:
            self._adopt(info)
        return info

    async def positions(self, account: int | str | None = None) -> list[Position]:
        """The account's positions in decimal units."""
        info = await self.account_info(account)
        return [
            Position(
                market=self.market(int(p["market"])),
                size=self.market(int(p["market"])).size_from_wire(p["size"]),
                size_wire=int(p["size"]),
                funding_index=int(p["fundingIndex"]),
            )
            for p in info["positions"]
        ]

    async def open_orders(self, account: int | str | None = None) -> list[dict[str, Any]]:
        """The account's resting orders (``ratchet_getOpenOrders``)."""
        if account is None:
            account = await self._require_account()
        orders: list[dict[str, Any]] = await self.call("ratchet_getOpenOrders", account)
        return orders

    # reading ------------------------------------------------------------------------

    async def order(
        self, order_hash: str | None = None, *, client_id: str | None = None
    ) -> dict[str, Any]:
        """An order's state (``ratchet_getOrder``) by hash or by client order id."""
        found: dict[str, Any] = await self.call(
            "ratchet_getOrder", self._order_hash(order_hash, client_id)
        )
        return found

    async def order_book(self, market: int | str | Market, depth: int = 20) -> Book:
        """The best ``depth`` levels of each side, in decimal units."""
        spec = self.market(market)
        book = await self.call("ratchet_getOrderBook", spec.id, depth)

        def levels(side: list[dict[str, str]]) -> list[Level]:
            return [
                Level(spec.price_from_wire(lv["price"]), spec.size_from_wire(lv["size"]))
                for lv in side
            ]

        return Book(spec, levels(book["bids"]), levels(book["asks"]))

    async def status(self) -> dict[str, Any]:
        """``ratchet_getStatus``: heads (soft, posted, final), open disputes, L1 time."""
        found: dict[str, Any] = await self.call("ratchet_getStatus")
        return found

    async def receipt(self, tx_hash: str) -> TxReceipt:
        """A transaction's receipt with its current finality, verified."""
        found = await self.call("ratchet_getReceipt", tx_hash)
        return verify_receipt(found, self.domain, self.sequencer, parse_hash(tx_hash))

    async def wait_for_finality(
        self, tx_hash: str, finality: str = "final", timeout: float = 300.0, poll: float = 0.5
    ) -> TxReceipt:
        """Poll the receipt until it is ``finality`` (soft, posted or final) or beyond;
        :class:`FinalityError` if its batch is rejected, ``TimeoutError`` after
        ``timeout`` seconds."""
        if finality not in FINALITY_RANK:
            raise InvalidArgumentError(f"finality must be soft, posted or final, not {finality!r}")
        deadline = time.monotonic() + timeout
        while True:
            found = await self.receipt(tx_hash)
            if found.finality == "rejected":
                raise FinalityError(f"{tx_hash}: its batch {found.batch} was rejected on L1")
            if FINALITY_RANK.get(found.finality, -1) >= FINALITY_RANK[finality]:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{tx_hash} is still {found.finality} after {timeout} s")
            await asyncio.sleep(poll)

    async def withdrawal_proof(self, withdrawal_id: int | str) -> dict[str, Any]:
        """``ratchet_getWithdrawalProof``: the proof and ``l1Call {to, data}`` of a final
        withdrawal; :class:`NotAvailableError` until its batch is final."""
        found: dict[str, Any] = await self.call("ratchet_getWithdrawalProof", str(withdrawal_id))
        return found

    # signing and sending ------------------------------------------------------------

    def sign(self, message: Message) -> dict[str, Any]:
        """``{type, message, signature}`` as ``ratchet_sendTransaction`` takes it."""
        if self._key is None:
            raise NoAccountError("this client has no key to sign with")
        signature = sign_digest(self._key, message.signing_hash(self.domain))
        return {
            "type": message.TYPE_NAME,
            "message": message_to_json(message),
            "signature": "0x" + signature.hex(),
        }

    def hash_of(self, message: Message) -> str:
        """A message's transaction hash (an order's hash), 0x-hex, before it is sent."""
        return "0x" + message.signing_hash(self.domain).hex()

    async def send(self, message: Message) -> TxReceipt:
        """Sign and send one message as it is; the verified receipt.
        :class:`RejectedError` if the STF refuses it (nothing sequenced)."""
        found = await self.call("ratchet_sendTransaction", self.sign(message))
        return verify_receipt(found, self.domain, self.sequencer, message.signing_hash(self.domain))

    async def send_many(
        self, messages: Sequence[Message], *, client_ids: Sequence[str | None] | None = None
    ) -> list[TxReceipt | RpcError]:
        """Sign and send several messages in one JSON-RPC batch request, as they are
        (no retry); per message its verified receipt or its error, in order. The
        sequencer admits them in the batch's order. ``client_ids``: one per message
        (None for none), for orders."""
        if client_ids is not None and len(client_ids) != len(messages):
            raise InvalidArgumentError("client_ids must have one entry per message")
        hashes = [message.signing_hash(self.domain) for message in messages]
        taken: list[str] = []
        try:
            for cid, digest in zip(client_ids or [], hashes, strict=False):
                if cid is not None:
                    self.client_ids.reserve(cid, "0x" + digest.hex())
                    taken.append(cid)
        except DuplicateClientIdError:
            for cid in taken:
                self.client_ids.release(cid)
            raise
        answers = await self.batch(
            [("ratchet_sendTransaction", [self.sign(message)]) for message in messages]
        )
        out: list[TxReceipt | RpcError] = []
        for index, (answer, digest) in enumerate(zip(answers, hashes, strict=True)):
            cid = client_ids[index] if client_ids is not None else None
            if isinstance(answer, RpcError):
                if cid is not None and isinstance(answer, RejectedError):
                    self.client_ids.release(cid)
                out.append(answer)
            else:
                out.append(verify_receipt(answer, self.domain, self.sequencer, digest))
        self.client_ids.save()
        return out

    async def _send_new(
        self, build: Callable[[int, int], Message], client_id: str | None = None
    ) -> TxReceipt:
        """Build a message with ``build(account, nonce)``, sign and send it; once more
        with a fresh nonce after a rejection of :data:`RETRIED_REASONS`."""
        account = await self._require_account()
        message = build(account, self._nonces.take())
        if client_id is not None:
            self.client_ids.reserve(client_id, self.hash_of(message))
        try:
            try:
                return await self.send(message)
            except RejectedError as exc:
                if exc.reason not in RETRIED_REASONS:
                    raise
            await self.refresh_account()
            message = build(account, self._nonces.take())
            if client_id is not None:
                self.client_ids.move(client_id, self.hash_of(message))
            return await self.send(message)
        except RejectedError:
            if client_id is not None:
                self.client_ids.release(client_id)
            raise
        finally:
            self.client_ids.save()

    # orders -------------------------------------------------------------------------

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
        """An :class:`Order` of this client's account in wire units (e.g. for
        :meth:`send_many`): :class:`UnitError` if ``price`` or ``size`` is off the
        market's grid. ``price`` None (or 0) is a market order (IOC or FOK only).
        ``nonce`` defaults to a fresh one."""
        if self.account is None:
            raise NoAccountError("the account is not known yet: refresh_account() first")
        return self._order(
            self.account,
            self._nonces.take() if nonce is None else nonce,
            market,
            side,
            price,
            size,
            tif,
            reduce_only,
            expiry,
        )

    def _order(
        self,
        account: int,
        nonce: int,
        market: int | str | Market,
        side: str | bool,
        price: DecimalLike | None,
        size: DecimalLike,
        tif: str | int,
        reduce_only: bool,
        expiry: int,
    ) -> Order:
        spec = self.market(market)
        return Order(
            account=account,
            market=spec.id,
            is_buy=parse_side(side),
            price=spec.price_to_wire(0 if price is None else price, allow_zero=True),
            size=spec.size_to_wire(size),
            time_in_force=int(parse_time_in_force(tif)),
            reduce_only=bool(reduce_only),
            expiry=int(expiry),
            nonce=nonce,
        )

    async def place_order(
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
        """Place an order; its verified receipt (``order_hash``, ``filled``, ``resting``,
        fills in ``outcome``). Prices in USD per unit and sizes in units, as Decimal or
        str, exactly on the market's grid (:class:`UnitError` otherwise, before anything
        is sent). ``client_id``: a name of your own for the order, usable with
        :meth:`order` and :meth:`cancel`."""
        spec = self.market(market)
        self._order(0, 0, spec, side, price, size, tif, reduce_only, expiry)  # check first
        return await self._send_new(
            lambda account, nonce: self._order(
                account, nonce, spec, side, price, size, tif, reduce_only, expiry
            ),
            client_id,
        )

    def _order_hash(self, order_hash: str | None, client_id: str | None) -> str:
        if (order_hash is None) == (client_id is None):
            raise InvalidArgumentError("give exactly one of order_hash and client_id")
        if client_id is not None:
            found = self.client_ids.get(client_id)
            if found is None:
                raise UnknownClientIdError(f"no order has the client id {client_id!r}")
            return found
        assert order_hash is not None
        parse_hash(order_hash)
        return order_hash

    async def cancel(
        self, order_hash: str | None = None, *, client_id: str | None = None
    ) -> TxReceipt:
        """Cancel one resting order, by hash or client order id. Rejected
        ``ORDER_NOT_FOUND`` if it is not resting (filled, cancelled, another's)."""
        target = parse_hash(self._order_hash(order_hash, client_id))
        return await self._send_new(lambda account, nonce: Cancel(account, target, nonce))

    async def cancel_all(self, market: int | str | Market | None = None) -> TxReceipt:
        """Cancel every resting order of the account in ``market``, or in every market."""
        market_id = ALL_MARKETS if market is None else self.market(market).id
        return await self._send_new(lambda account, nonce: CancelAll(account, market_id, nonce))

    # collateral ---------------------------------------------------------------------

    async def transfer(self, to: int, amount: DecimalLike) -> TxReceipt:
        """Move ``amount`` of collateral (tokens, e.g. ``"12.5"``) to account ``to``."""
        wire = self.collateral.to_wire(amount)
        return await self._send_new(lambda account, nonce: Transfer(account, to, wire, nonce))

    async def withdraw(
        self, amount: DecimalLike, recipient: str | bytes | None = None
    ) -> TxReceipt:
        """Withdraw ``amount`` of collateral (tokens) to ``recipient`` on L1 (default:
        the key's address). The receipt's ``withdrawal_id`` is what to claim once its
        batch is final (:func:`node.sdk.l1.claim`)."""
        wire = self.collateral.to_wire(amount)
        if recipient is None:
            if self.address is None:
                raise NoAccountError("this client has no key")
            recipient = self.address
        to = parse_address(recipient)
        return await self._send_new(lambda account, nonce: Withdraw(account, to, wire, nonce))

    # subscriptions ------------------------------------------------------------------

    async def subscribe(self, channel: str, **params: Any) -> Subscription:
        """Subscribe on the WebSocket: ``receipts`` (``account``, default the key's),
        ``fills`` (optional ``market``), ``book`` (``market``, ``depth``), ``batches``.
        Returns once the subscription is live; iterate it for :class:`Event` and
        :class:`Gap` items."""
        if channel == "receipts" and "account" not in params:
            params["account"] = await self._require_account()
        if "market" in params:
            params["market"] = self.market(params["market"]).id
        subscription = Subscription(
            self._session,
            self.ws_url,
            channel,
            params,
            on_close=self._subscriptions.discard,
        )
        await subscription.start()
        self._subscriptions.add(subscription)
        return subscription
