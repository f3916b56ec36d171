"""
A taker on a running devnet: it sends immediate-or-cancel orders that cross the book
(alternately buying and selling unless ``--side`` says which), prints every receipt
(what was filled, at what average price, the fees, the sequencer's checked signature,
the finality) and its positions at the end.

    ratchet devnet                                              # in one terminal
    python examples/market_maker.py --devnet data/devnet/devnet.json   # in a second
    python examples/taker.py --devnet data/devnet/devnet.json --market ETH-PERP --size 0.1

Each order is a limit IOC: its price is the best opposite quote (the oracle price if the
book side is empty) moved ``--slippage-bps`` against the taker and rounded onto the tick
here (the SDK refuses an off-tick price rather than round it). ``--market-order`` sends
a true market order (price 0, IOC) instead. It deposits collateral from L1 first if the
account's free collateral is short of ``--collateral``.

Exit code 0 if at least one order was filled; 1 if nothing was (no maker was quoting).
"""

import argparse
import asyncio
import sys
from decimal import Decimal

from common import BPS, ceil_to, ensure_collateral, floor_to, load_devnet, say, signed

from node.sdk import Client, Market, SdkError, TxReceipt
from node.sdk.units import plain


async def limit_price(client: Client, market: Market, is_buy: bool, slippage: Decimal) -> Decimal:
    """An aggressive limit: the best opposite quote (or the oracle price) moved
    ``slippage`` bps against us, rounded onto the tick away from the book's side so it
    still crosses. The SDK never rounds: an off-tick price raises ``UnitError``."""
    book = await client.order_book(market, depth=1)
    levels = book.asks if is_buy else book.bids
    if levels:
        reference = levels[0].price
    else:
        live = next(m for m in await client.markets() if m.id == market.id)
        reference = market.price_from_wire(live.info["oraclePrice"])
    if is_buy:
        price = reference * (1 + slippage / BPS)
        return ceil_to(price, market.tick)
    price = reference * (1 - slippage / BPS)
    return max(market.tick, floor_to(price, market.tick))


def describe(client: Client, market: Market, asked: Decimal, receipt: TxReceipt) -> Decimal:
    """Print an order's receipt; its filled size."""
    outcome = receipt.outcome
    filled = market.size_from_wire(receipt.filled)
    units = client.collateral
    print(f"    filled {plain(filled)} of {plain(asked)} ({outcome.get('end', '?')})")
    fees = Decimal(0)
    for fill in outcome.get("fills", []):
        fee = units.from_wire(fill["takerFee"])
        fees += fee
        print(
            f"      {plain(market.size_from_wire(fill['size']))} @ "
            f"{plain(market.price_from_wire(fill['price']))} from account "
            f"{fill['makerAccount']} (taker fee {plain(fee)} USD)"
        )
    if receipt.filled:
        # notional is the sum of wire price * wire size: divide exactly, then scale
        average = Decimal(int(outcome["notional"])) / receipt.filled
        average = average.scaleb(-market.price_decimals).normalize()
        print(f"    average price {average}, taker fees {plain(fees)} USD")
    print(
        f"    tx {receipt.tx_hash[:18]}…: batch {receipt.batch}, index {receipt.index}, "
        f"sequence {receipt.sequence}, finality {receipt.finality}"
    )
    print(
        f"    signature checked by the SDK: signed by the sequencer "
        f"0x{client.sequencer.hex()[:8]}… over Receipt{{txHash, batch, index}}"
    )
    return filled


async def amain(args: argparse.Namespace) -> int:
    info = load_devnet(args.devnet)
    accounts = info["accounts"]
    if not 0 <= args.account < len(accounts):
        sys.exit(f"--account must be 0..{len(accounts) - 1}")
    key = accounts[args.account]["private_key"]
    async with await Client.connect(info["rpc"], key=key) as client:
        say(f"taker: devnet account {args.account}, {client.address}")
        market = client.market(args.market)
        size = Decimal(args.size)
        market.size_to_wire(size)  # refuse an off-lot size before depositing anything
        await ensure_collateral(client, info, key, Decimal(args.collateral))
        total = Decimal(0)
        last: TxReceipt | None = None
        for number in range(args.orders):
            is_buy = args.side == "buy" or (args.side == "alternate" and number % 2 == 0)
            side = "buy" if is_buy else "sell"
            if args.market_order:
                price: Decimal | None = None
                shown = "market"
            else:
                price = await limit_price(client, market, is_buy, Decimal(args.slippage_bps))
                shown = plain(price)
            what = f"{side} {plain(size)} {market.symbol} IOC @ {shown}"
            say(f"order {number + 1}/{args.orders}: {what}")
            receipt = await client.place_order(market, side, price, size, tif="IOC")
            filled = describe(client, market, size, receipt)
            total += filled
            if filled:
                last = receipt
            if number + 1 < args.orders:
                await asyncio.sleep(args.interval)
        if last is not None and args.wait != "soft":
            say(f"waiting until the last filled order is {args.wait} ...")
            done = await client.wait_for_finality(last.tx_hash, args.wait, timeout=600)
            say(f"tx {done.tx_hash[:18]}… is {done.finality} (batch {done.batch})")
        positions = await client.positions()
        account = await client.account_info()
        say("positions, read from the sequencer:")
        for position in positions:
            print(f"    {position.market.symbol:9} {position.side:5} {signed(position.size)}")
        if not positions:
            print("    no positions")
        units = client.collateral
        print(
            f"    collateral {plain(units.from_wire(account['collateral']))} USD, equity "
            f"{plain(units.from_wire(account['equity']))} USD"
        )
    if total == 0:
        print(
            f"nothing was filled: no maker was quoting {market.symbol}. Start one first: "
            f"python examples/market_maker.py --devnet {args.devnet}",
            file=sys.stderr,
        )
        return 1
    say(f"filled {plain(total)} {market.symbol} in all")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--devnet", default="data/devnet/devnet.json", help="devnet.json (data/devnet/devnet.json)"
    )
    parser.add_argument("--account", type=int, default=1, help="devnet account index (1)")
    parser.add_argument("--market", default="ETH-PERP", help="market symbol (ETH-PERP)")
    parser.add_argument("--size", default="0.1", help="size of each order, on the lot (0.1)")
    parser.add_argument("--orders", type=int, default=4, help="how many orders (4)")
    parser.add_argument(
        "--side",
        choices=("buy", "sell", "alternate"),
        default="alternate",
        help="side of every order (alternate)",
    )
    parser.add_argument("--slippage-bps", default="50", help="limit beyond the best quote (50 bps)")
    parser.add_argument(
        "--market-order", action="store_true", help="send market orders (price 0, IOC)"
    )
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between orders (0.5)")
    parser.add_argument(
        "--wait",
        choices=("soft", "posted", "final"),
        default="soft",
        help="wait until the last fill is posted or final (soft: do not wait)",
    )
    parser.add_argument(
        "--collateral", default="10000", help="free collateral to top up to (10000 USD)"
    )
    args = parser.parse_args()
    try:
        return asyncio.run(amain(args))
    except SdkError as exc:  # e.g. an off-lot --size, an unknown market, a refusal
        print(f"taker: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
