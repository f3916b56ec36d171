"""
A market maker on a running devnet: it quotes a bid and an ask in every market (or the
ones you name) around the oracle price, replaces its quotes whenever the oracle moves,
and reports each fill and its position as they happen.

    ratchet devnet                                        # in one terminal
    python examples/market_maker.py --devnet data/devnet/devnet.json
    python examples/taker.py --devnet data/devnet/devnet.json   # in a third: trade with it

It runs until Ctrl-C (or ``--rounds N`` quote refreshes), then cancels its quotes and
prints its position. What it shows of the SDK (docs/sdk.md):

- a deposit from L1 first, if the account's free collateral is short of ``--collateral``;
- prices and sizes rounded onto the market's tick and lot *here*, in this file: the SDK
  refuses an off-grid price or size (``UnitError``) rather than round it for you;
- a quote refresh as one JSON-RPC batch request (``send_many``): per market a
  ``CancelAll`` then the new post-only bid and ask, admitted in that order;
- a WebSocket subscription to the ``fills`` channel, and what to do on a ``Gap`` (a
  dropped connection or a skipped sequence number): read the account again.
"""

import argparse
import asyncio
import contextlib
import signal
import sys
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal

from common import BPS, ceil_to, ensure_collateral, floor_to, load_devnet, say, signed

from node.protocol.transactions import CancelAll, Message
from node.sdk import (
    Client,
    Gap,
    Market,
    RejectedError,
    RpcError,
    SdkError,
    Subscription,
    TransportError,
    TxReceipt,
)
from node.sdk.units import plain


@dataclass(frozen=True)
class Quote:
    """One resting order this program placed."""

    market: Market
    is_buy: bool
    price: Decimal
    size: Decimal


class MarketMaker:
    """Two-sided quotes in some markets, refreshed when the oracle moves or a quote fills."""

    def __init__(
        self,
        client: Client,
        markets: list[Market],
        spread_bps: Decimal,
        requote_bps: Decimal,
        size: Decimal | None,
        notional: Decimal,
    ) -> None:
        assert client.account is not None
        self.client = client
        self.me = client.account
        self.markets = markets
        self.spread_bps = spread_bps
        self.requote_bps = requote_bps
        self.size = size
        self.notional = notional
        self.quoted_at: dict[int, Decimal] = {}  # market id -> the oracle price quoted around
        self.dirty: set[int] = set()  # markets to quote again at once (a quote was filled)
        self.wake = asyncio.Event()
        self.orders: OrderedDict[str, Quote] = OrderedDict()  # our order hashes, newest last
        self.position: dict[int, Decimal] = {}
        self.fills = 0

    # pricing ------------------------------------------------------------------------

    def quote_size(self, market: Market, price: Decimal) -> Decimal:
        """``--size``, or ``--notional`` USD worth at ``price`` rounded down to the lot
        (at least one lot)."""
        if self.size is not None:
            return self.size  # the SDK refuses it if it is not a multiple of the lot
        return max(market.lot, floor_to(self.notional / price, market.lot))

    def prices(self, market: Market, oracle: Decimal) -> tuple[Decimal, Decimal]:
        """Bid and ask ``spread_bps`` either side of ``oracle``, on the tick. The SDK
        never rounds a price (an off-tick price raises ``UnitError``), so we do it here,
        away from the oracle: the bid down, the ask up."""
        half = oracle * self.spread_bps / BPS
        bid = floor_to(oracle - half, market.tick)
        ask = ceil_to(oracle + half, market.tick)
        if ask <= bid:
            ask = bid + market.tick
        return max(bid, market.tick), ask

    def needs_quotes(self, market: Market, oracle: Decimal) -> bool:
        """No quotes yet, a quote was filled, or the oracle moved ``requote_bps`` or more
        from the price we quoted around."""
        before = self.quoted_at.get(market.id)
        if before is None or market.id in self.dirty:
            return True
        return abs(oracle - before) * BPS >= self.requote_bps * before

    # quoting ------------------------------------------------------------------------

    async def refresh(self, todo: list[tuple[Market, Decimal]]) -> None:
        """Replace the quotes of these markets in one batch request: per market a
        CancelAll of its old quotes, then a post-only bid and ask."""
        messages: list[Message] = []
        planned: list[tuple[Market, Quote | None]] = []  # None: the CancelAll
        for market, oracle in todo:
            bid, ask = self.prices(market, oracle)
            messages.append(CancelAll(self.me, market.id, self.client.next_nonce()))
            planned.append((market, None))
            size = self.quote_size(market, oracle)
            for is_buy, price in ((True, bid), (False, ask)):
                messages.append(
                    self.client.order_message(market, is_buy, price, size, tif="POST_ONLY")
                )
                planned.append((market, Quote(market, is_buy, price, size)))
            self.quoted_at[market.id] = oracle
            self.dirty.discard(market.id)
        for message, (_, quote) in zip(messages, planned, strict=True):
            if quote is not None:  # remember the hash before sending: a fill may come first
                self.orders[self.client.hash_of(message)] = quote
        while len(self.orders) > 1000:  # keep the recent ones: late fills still resolve
            self.orders.popitem(last=False)
        results = await self.client.send_many(messages)
        lines: dict[int, list[str]] = {}
        for result, (market, quote) in zip(results, planned, strict=True):
            what = "cancel" if quote is None else ("bid" if quote.is_buy else "ask")
            if isinstance(result, RejectedError):  # e.g. WOULD_CROSS: the book moved
                text = f"{what} REFUSED {result.reason}: {result.detail}"
            elif isinstance(result, RpcError):
                text = f"{what} failed ({result})"
            elif quote is None:
                continue
            else:
                text = f"{what} {plain(quote.size)} @ {plain(quote.price)}"
            lines.setdefault(market.id, []).append(text)
        for market, oracle in todo:
            shown = ", ".join(lines.get(market.id, []))
            say(f"{market.symbol:9} oracle {plain(oracle):>9}  quotes: {shown}")

    async def cancel_everything(self) -> TxReceipt:
        """One CancelAll in every market."""
        return await self.client.cancel_all()

    # fills --------------------------------------------------------------------------

    async def resync(self) -> None:
        """Read the positions again and quote every market afresh (after a Gap)."""
        self.dirty.update(m.id for m in self.markets)
        self.wake.set()
        try:
            self.position = {p.market.id: p.size for p in await self.client.positions()}
        except TransportError as exc:
            say(f"could not re-read the account ({exc}); the positions shown may be stale")
            return
        say(f"re-read the account: positions {self.describe_positions() or 'none'}")

    def describe_positions(self) -> str:
        return ", ".join(
            f"{self.client.market(mid).symbol} {signed(size)}"
            for mid, size in sorted(self.position.items())
            if size
        )

    async def watch_fills(self, feed: Subscription) -> None:
        """Report our fills as they come, and keep the position up to date."""
        async for item in feed:
            if isinstance(item, Gap):
                say(f"subscription gap ({item.reason}): fills may have been missed")
                await self.resync()
                continue
            fill = item.result
            if fill.get("makerAccount") != self.me:
                continue  # someone else's fill (the channel carries every fill)
            quote = self.orders.get(str(fill["makerOrder"]))
            if quote is None:
                say(f"a fill of an order this run does not know ({fill['makerOrder']})")
                await self.resync()
                continue
            market = quote.market
            size = market.size_from_wire(fill["size"])
            price = market.price_from_wire(fill["price"])
            fee = self.client.collateral.from_wire(fill["makerFee"])
            change = size if quote.is_buy else -size
            self.position[market.id] = self.position.get(market.id, Decimal(0)) + change
            self.fills += 1
            verb = "bought" if quote.is_buy else "sold"
            say(
                f"FILL {market.symbol}: {verb} {plain(size)} @ {plain(price)} to account "
                f"{fill['taker']} (maker fee {plain(fee)} USD); position now "
                f"{signed(self.position[market.id])}"
            )
            self.dirty.add(market.id)  # quote the full size again
            self.wake.set()

    # the loop -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, rounds: int, poll: float) -> int:
        """Quote until ``stop`` is set (or after ``rounds`` refreshes); the rounds done."""
        done = 0
        while not stop.is_set():
            self.wake.clear()
            try:
                todo = await self.due()
                if todo:
                    await self.refresh(todo)
                    done += 1
                    if rounds and done >= rounds:
                        break
            except TransportError as exc:
                # No answer: a refresh may or may not have landed. Its CancelAll makes the
                # next one safe to send whatever happened, so quote everything afresh.
                say(f"lost the sequencer ({exc}); trying again")
                self.dirty.update(m.id for m in self.markets)
                poll_now = 1.0
            else:
                poll_now = poll
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
            await asyncio.wait(waiters, timeout=poll_now, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
        return done

    async def due(self) -> list[tuple[Market, Decimal]]:
        """The markets to quote again, with their oracle prices (``ratchet_getMarkets``)."""
        live = {m.id: m for m in await self.client.markets()}
        todo: list[tuple[Market, Decimal]] = []
        for market in self.markets:
            wire = int(live[market.id].info.get("oraclePrice") or 0)
            if wire == 0:
                continue  # no oracle price yet: nothing to quote around
            oracle = market.price_from_wire(wire)
            if self.needs_quotes(market, oracle):
                todo.append((market, oracle))
        return todo


async def amain(args: argparse.Namespace) -> int:
    info = load_devnet(args.devnet)
    accounts = info["accounts"]
    if not 0 <= args.account < len(accounts):
        sys.exit(f"--account must be 0..{len(accounts) - 1}")
    key = accounts[args.account]["private_key"]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(signum, stop.set)

    async with await Client.connect(info["rpc"], key=key) as client:
        say(f"market maker: devnet account {args.account}, {client.address}")
        if args.markets == "all":
            markets = list(client.markets_by_id.values())
        else:
            markets = [client.market(name.strip()) for name in args.markets.split(",")]
        for market in markets:
            if args.size is not None:
                market.size_to_wire(args.size)  # refuse an off-lot --size before any deposit
            say(
                f"{market.symbol}: tick {plain(market.tick)} USD, lot {plain(market.lot)} "
                f"(prices and sizes must be multiples of these)"
            )
        await ensure_collateral(client, info, key, Decimal(args.collateral))
        maker = MarketMaker(
            client,
            markets,
            Decimal(args.spread_bps),
            Decimal(args.requote_bps),
            Decimal(args.size) if args.size is not None else None,
            Decimal(args.notional),
        )
        cleared = await maker.cancel_everything()
        if cleared.outcome.get("removals"):
            say(f"cancelled {len(cleared.outcome['removals'])} order(s) left by an earlier run")
        maker.position = {p.market.id: p.size for p in await client.positions()}
        say(f"starting position: {maker.describe_positions() or 'none'}")

        feed = await client.subscribe("fills")  # every market's fills; we pick ours
        say("subscribed to fills over the WebSocket; quoting (Ctrl-C stops) ...")
        watcher = asyncio.create_task(maker.watch_fills(feed))
        watcher.add_done_callback(lambda _: stop.set())  # the feed failed: stop quoting
        status = 0
        try:
            rounds = await maker.run(stop, args.rounds, args.poll)
            say(f"stopping after {rounds} quote refresh(es)")
        except SdkError as exc:
            say(f"error: {exc}")
            status = 1
        finally:
            await asyncio.sleep(0.2)  # let the fills already on the wire be reported
            await feed.close()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if not watcher.cancelled() and watcher.exception() is not None:
            say(f"the fills subscription failed: {watcher.exception()}")
            status = 1
        return max(status, await finish(client, maker))


async def finish(client: Client, maker: MarketMaker) -> int:
    """Cancel every quote and show the position; 0 if no order is left open."""
    try:
        receipt = await maker.cancel_everything()
        removed = len(receipt.outcome.get("removals", []))
        left = await client.open_orders()
        say(f"cancelled {removed} quote(s); {len(left)} order(s) still open")
        positions = await client.positions()
        account = await client.account_info()
    except SdkError as exc:
        say(f"could not cancel the quotes: {exc}")
        return 1
    say(f"{maker.fills} fill(s) this run. Position read from the sequencer:")
    for position in positions:
        print(f"    {position.market.symbol:9} {position.side:5} {signed(position.size)}")
    if not positions:
        print("    no positions")
    units = client.collateral
    print(
        f"    collateral {plain(units.from_wire(account['collateral']))} USD, equity "
        f"{plain(units.from_wire(account['equity']))} USD",
        flush=True,
    )
    return 1 if left else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--devnet", default="data/devnet/devnet.json", help="devnet.json (data/devnet/devnet.json)"
    )
    parser.add_argument("--account", type=int, default=0, help="devnet account index (0)")
    parser.add_argument(
        "--markets", default="all", help="comma-separated symbols, e.g. ETH-PERP (all)"
    )
    parser.add_argument(
        "--spread-bps", default="10", help="each quote's distance from the oracle (10 bps)"
    )
    parser.add_argument(
        "--requote-bps", default="5", help="oracle move that triggers new quotes (5 bps)"
    )
    parser.add_argument(
        "--size", help="quote size in every market, on its lot (default: from --notional)"
    )
    parser.add_argument("--notional", default="1000", help="USD per quote without --size (1000)")
    parser.add_argument(
        "--collateral", default="100000", help="free collateral to top up to (100000 USD)"
    )
    parser.add_argument("--rounds", type=int, default=0, help="stop after N refreshes (0: never)")
    parser.add_argument(
        "--poll", type=float, default=0.5, help="seconds between oracle reads (0.5)"
    )
    args = parser.parse_args()
    try:
        return asyncio.run(amain(args))
    except SdkError as exc:  # e.g. an off-lot --size, an unknown market, no devnet
        print(f"market_maker: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
