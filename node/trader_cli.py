"""The traders' commands of ``ratchet`` (deposit, order, cancel, positions, withdraw,
claim), over the SDK (:mod:`node.sdk`); docs/sdk.md has the reference.

Common options: ``--rpc`` (the sequencer, default http://127.0.0.1:8547), ``--l1-rpc``
(default http://127.0.0.1:8545), ``--devnet PATH`` (take both from a devnet.json),
``--json`` (machine output on stdout). The key comes from ``RATCHET_TRADER_KEY``
(0x-hex) or ``--key-file``, never from a flag holding the key itself.

Exit codes: 0 done; 1 refused or failed (the sequencer rejected it, L1 reverted, an
endpoint is unreachable, not final yet); 2 usage (bad arguments, a price or size off
the market's grid, no key). Nothing heavy is imported until a command runs.
"""

import argparse
import json
import os
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.sdk import SyncClient, TxReceipt

DEFAULT_RPC = "http://127.0.0.1:8547"
"""The devnet sequencer's JSON-RPC URL."""

DEFAULT_L1_RPC = "http://127.0.0.1:8545"
"""The devnet anvil's URL."""

KEY_ENV = "RATCHET_TRADER_KEY"
"""The environment variable holding the trader's private key (0x-hex)."""

HOME_ENV = "RATCHET_HOME"
"""Where the CLI keeps its state (client order ids); default ``~/.ratchet``."""

OK, FAILED, USAGE = 0, 1, 2


class UsageError(Exception):
    """The command line asks for something impossible (exit 2)."""


def register(sub: "argparse._SubParsersAction[Any]") -> None:
    """Add the traders' subcommands to ``ratchet``'s parser; each sets ``run``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--rpc", help=f"sequencer JSON-RPC URL (default {DEFAULT_RPC})")
    common.add_argument("--l1-rpc", help=f"L1 JSON-RPC URL (default {DEFAULT_L1_RPC})")
    common.add_argument(
        "--devnet", metavar="PATH", help="read rpc and l1_rpc from this devnet.json"
    )
    common.add_argument(
        "--key-file", metavar="PATH", help=f"file holding the trader's key (else ${KEY_ENV})"
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")

    def command(name: str, help_text: str, run: Callable[[argparse.Namespace], int]) -> Any:
        parser = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        parser.set_defaults(run=_guarded(run))
        return parser

    deposit = command("deposit", "deposit collateral on L1 into your account", _deposit)
    deposit.add_argument("amount", help="collateral tokens, e.g. 1000 or 12.5")
    deposit.add_argument(
        "--no-wait", action="store_true", help="do not wait for the sequencer to credit it"
    )
    deposit.add_argument("--timeout", type=float, default=120.0, help="seconds to wait")

    order = command("order", "place an order", _order)
    order.add_argument("market", help="market symbol or id, e.g. BTC-PERP")
    order.add_argument("side", choices=["buy", "sell"])
    order.add_argument("size", help="size in units of the asset, a multiple of the lot")
    order.add_argument("price", help="USD per unit, a multiple of the tick; or 'market'")
    order.add_argument(
        "--tif",
        default="GTC",
        type=str.upper,
        choices=["GTC", "IOC", "FOK", "POST_ONLY"],
        help="time in force (default GTC)",
    )
    order.add_argument("--reduce-only", action="store_true", help="only shrink a position")
    order.add_argument("--expiry", type=int, default=0, help="unix seconds (default: none)")
    order.add_argument("--client-id", help="your own name for the order (for cancel)")

    cancel = command("cancel", "cancel an order, or all of them", _cancel)
    cancel.add_argument("order_hash", nargs="?", help="the order's hash (0x...)")
    cancel.add_argument("--client-id", help="cancel the order you named so")
    cancel.add_argument("--all", action="store_true", help="cancel every open order")
    cancel.add_argument("--market", help="with --all: only in this market")

    positions = command("positions", "show collateral, positions and open orders", _positions)
    positions.add_argument("--account", help="another account's id or address (no key needed)")

    withdraw = command("withdraw", "withdraw collateral to L1 (claim it once final)", _withdraw)
    withdraw.add_argument("amount", help="collateral tokens")
    withdraw.add_argument("--recipient", help="L1 address paid (default: your own)")

    claim = command("claim", "claim a final withdrawal on L1", _claim)
    claim.add_argument("withdrawal_id", type=int)
    claim.add_argument("--wait", action="store_true", help="wait until it is final")
    claim.add_argument("--timeout", type=float, default=600.0, help="seconds to wait")


# plumbing -------------------------------------------------------------------------


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command; map the SDK's errors to a message and an exit code."""

    def guarded(args: argparse.Namespace) -> int:
        from node.sdk import (  # noqa: PLC0415 - keeps `ratchet --version` light
            DuplicateClientIdError,
            InvalidArgumentError,
            RejectedError,
            SdkError,
            UnitError,
            UnknownClientIdError,
            UnknownMarketError,
        )

        try:
            return run(args)
        except (
            UsageError,
            UnitError,
            InvalidArgumentError,
            UnknownMarketError,
            UnknownClientIdError,
            DuplicateClientIdError,
        ) as exc:
            return _fail(args, "usage", str(exc), USAGE)
        except RejectedError as exc:
            return _fail(args, "rejected", str(exc), FAILED, reason=exc.reason, detail=exc.detail)
        except (SdkError, TimeoutError) as exc:
            return _fail(args, type(exc).__name__, str(exc) or type(exc).__name__, FAILED)

    return guarded


def _fail(args: argparse.Namespace, kind: str, message: str, code: int, **extra: Any) -> int:
    if args.json:
        print(json.dumps({"error": {"kind": kind, "message": message, **extra}}))
    print(f"ratchet {args.command}: {message}", file=sys.stderr)
    return code


def _urls(args: argparse.Namespace) -> tuple[str, str]:
    """The sequencer and L1 URLs: flags, else devnet.json, else the defaults."""
    rpc, l1 = args.rpc, args.l1_rpc
    if args.devnet:
        try:
            devnet = json.loads(Path(args.devnet).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read {args.devnet}: {exc}") from None
        rpc = rpc or devnet.get("rpc")
        l1 = l1 or devnet.get("l1_rpc")
    return rpc or DEFAULT_RPC, l1 or DEFAULT_L1_RPC


def _key(args: argparse.Namespace) -> str:
    """The trader's key: ``--key-file``, else ``$RATCHET_TRADER_KEY``."""
    if args.key_file:
        try:
            return Path(args.key_file).read_text().strip()
        except OSError as exc:
            raise UsageError(f"cannot read the key file: {exc.strerror}") from None
    found = os.environ.get(KEY_ENV)
    if not found:
        raise UsageError(f"no key: set {KEY_ENV} (0x-hex) or pass --key-file")
    return found


def _connect(args: argparse.Namespace, key: bool = True, ids: bool = False) -> "SyncClient":
    from node.sdk import ClientIds, SyncClient  # noqa: PLC0415

    rpc, _ = _urls(args)
    secret = _key(args) if key else None
    client = SyncClient.connect(rpc, secret)
    if ids and client.account is not None:
        client.client.client_ids = ClientIds(_ids_path(client))
    return client


def _ids_path(client: "SyncClient") -> Path:
    """The client order ids file of this chain, rollup and account."""
    home = Path(os.environ.get(HOME_ENV) or Path.home() / ".ratchet")
    domain = client.config["domain"]
    name = f"{domain['chainId']}-{domain['verifyingContract'].lower()}-{client.account}.json"
    return home / "client-ids" / name


def _show(value: Any) -> str:
    from node.sdk.units import plain  # noqa: PLC0415

    return plain(value) if isinstance(value, Decimal) else str(value)


def _emit(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print(json.dumps(data, default=_show, sort_keys=True))
    else:
        print("\n".join(lines))


def _where(receipt: "TxReceipt") -> str:
    return (
        f"tx {receipt.tx_hash}: batch {receipt.batch}, index {receipt.index} ({receipt.finality})"
    )


def _receipt_json(receipt: "TxReceipt") -> dict[str, Any]:
    return {
        "txHash": receipt.tx_hash,
        "batch": receipt.batch,
        "index": receipt.index,
        "sequence": receipt.sequence,
        "finality": receipt.finality,
    }


# the commands ---------------------------------------------------------------------


def _deposit(args: argparse.Namespace) -> int:
    import time  # noqa: PLC0415

    from node.sdk import l1  # noqa: PLC0415

    _, l1_url = _urls(args)
    with _connect(args) as client:
        bridge = client.config.get("contracts", {}).get("bridge")
        if not bridge:
            raise UsageError("the sequencer's config names no bridge contract")
        units = client.collateral
        units.to_wire(args.amount)  # refuse a bad amount before touching L1
        done = l1.deposit(l1_url, _key(args), bridge, args.amount)
        credited = False
        if not args.no_wait:
            deadline = time.monotonic() + args.timeout
            while int(client.status()["inboxConsumed"]) <= done.message_index:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"not credited after {args.timeout} s (L1 tx {done.tx_hash})"
                    )
                time.sleep(0.25)
            credited = True
        amount = units.from_wire(done.amount)
        _emit(
            args,
            {
                "account": done.account,
                "owner": done.owner,
                "amount": amount,
                "amountBaseUnits": str(done.amount),
                "messageIndex": done.message_index,
                "l1TxHash": done.tx_hash,
                "credited": credited,
            },
            [
                f"deposited {_show(amount)} to account {done.account} ({done.owner})",
                f"L1 tx {done.tx_hash}, inbox message {done.message_index}",
                "credited on L2" if credited else "not waited for: credited once sequenced",
            ],
        )
    return OK


def _order(args: argparse.Namespace) -> int:
    price = None if args.price.lower() == "market" else args.price
    with _connect(args, ids=True) as client:
        market = client.market(args.market)
        receipt = client.place_order(
            market,
            args.side,
            price,
            args.size,
            tif=args.tif,
            reduce_only=args.reduce_only,
            expiry=args.expiry,
            client_id=args.client_id,
        )
        outcome = receipt.outcome
        filled = market.size_from_wire(receipt.filled)
        resting = market.size_from_wire(receipt.resting)
        average = outcome.get("averagePrice")
        avg = market.price_from_wire(average) if average is not None else None
        fills = [
            {
                "price": market.price_from_wire(f["price"]),
                "size": market.size_from_wire(f["size"]),
                "makerOrder": f["makerOrder"],
                "takerFee": client.collateral.from_wire(f["takerFee"]),
            }
            for f in outcome.get("fills", [])
        ]
        shown_price = (
            "market"
            if price is None
            else _show(market.price_from_wire(market.price_to_wire(price)))
        )
        _emit(
            args,
            {
                **_receipt_json(receipt),
                "orderHash": receipt.order_hash,
                "clientId": args.client_id,
                "market": market.symbol,
                "side": args.side,
                "price": shown_price,
                "size": market.size_from_wire(market.size_to_wire(args.size)),
                "filled": filled,
                "averagePrice": avg,
                "resting": resting,
                "end": outcome.get("end"),
                "fills": fills,
            },
            [
                f"order {receipt.order_hash}" + (f" ({args.client_id})" if args.client_id else ""),
                f"{args.side} {args.size} {market.symbol} @ {shown_price} {args.tif}: "
                f"filled {_show(filled)}"
                + (f" at {_show(avg)}" if avg is not None else "")
                + f", resting {_show(resting)}",
                _where(receipt),
            ],
        )
    return OK


def _cancel(args: argparse.Namespace) -> int:
    chosen = [args.order_hash is not None, args.client_id is not None, args.all]
    if sum(chosen) != 1:
        raise UsageError("give exactly one of ORDER_HASH, --client-id and --all")
    if args.market and not args.all:
        raise UsageError("--market goes with --all")
    with _connect(args, ids=True) as client:
        if args.all:
            receipt = client.cancel_all(args.market)
        else:
            receipt = client.cancel(args.order_hash, client_id=args.client_id)
        removed = [r["orderHash"] for r in receipt.outcome.get("removals", [])]
        _emit(
            args,
            {**_receipt_json(receipt), "cancelled": removed},
            [
                *(f"cancelled {h}" for h in removed),
                *([f"{len(removed)} order(s) cancelled"] if args.all else []),
                _where(receipt),
            ],
        )
    return OK


def _positions(args: argparse.Namespace) -> int:
    with _connect(args, key=args.account is None) as client:
        account = args.account
        if account is None and client.account is None:
            from node.sdk import NoAccountError  # noqa: PLC0415

            raise NoAccountError(f"{client.address} has no account: deposit first")
        info = client.account_info(account)
        units = client.collateral
        markets = {m.id: m for m in client.markets()}
        held = []
        for p in info["positions"]:
            market = markets[int(p["market"])]
            held.append(
                (
                    market.symbol,
                    market.size_from_wire(p["size"]),
                    market.price_from_wire(market.info["markPrice"]),
                )
            )
        positions = [
            {"market": symbol, "size": size, "markPrice": mark, "notional": size * mark}
            for symbol, size, mark in held
        ]
        orders = []
        for o in client.open_orders(info["id"]):
            market = markets[int(o["market"])]
            orders.append(
                {
                    "orderHash": o["orderHash"],
                    "market": market.symbol,
                    "side": "buy" if o["isBuy"] else "sell",
                    "price": market.price_from_wire(o["price"]),
                    "size": market.size_from_wire(o["size"]),
                    "remaining": market.size_from_wire(o["remaining"]),
                }
            )
        money = {
            name: units.from_wire(info[name])
            for name in (
                "collateral",
                "equity",
                "initialMargin",
                "maintenanceMargin",
                "freeCollateral",
            )
        }
        lines = [
            f"account {info['id']} ({info['address']})",
            f"collateral {_show(money['collateral'])}  equity {_show(money['equity'])}  "
            f"free {_show(money['freeCollateral'])}  "
            f"margin {_show(money['initialMargin'])} initial / "
            f"{_show(money['maintenanceMargin'])} maintenance  "
            + ("healthy" if info["healthy"] else "UNHEALTHY"),
        ]
        lines += [
            f"{symbol:<10} {'long' if size > 0 else 'short':<5} {_show(abs(size))} "
            f"(mark {_show(mark)}, notional {_show(abs(size * mark))})"
            for symbol, size, mark in held
        ] or ["no positions"]
        lines.append(f"{len(orders)} open order(s)")
        lines += [
            f"  {o['orderHash']} {o['side']} {_show(o['remaining'])}/{_show(o['size'])} "
            f"{o['market']} @ {_show(o['price'])}"
            for o in orders
        ]
        _emit(
            args,
            {
                "account": info["id"],
                "address": info["address"],
                **money,
                "healthy": info["healthy"],
                "positions": positions,
                "openOrders": orders,
            },
            lines,
        )
    return OK


def _withdraw(args: argparse.Namespace) -> int:
    with _connect(args) as client:
        receipt = client.withdraw(args.amount, args.recipient)
        recipient = args.recipient or client.address
        amount = client.collateral.from_wire(client.collateral.to_wire(args.amount))
        period = client.config.get("challengePeriod")
        _emit(
            args,
            {
                **_receipt_json(receipt),
                "withdrawalId": receipt.withdrawal_id,
                "amount": amount,
                "recipient": recipient,
            },
            [
                f"withdrawal {receipt.withdrawal_id}: {_show(amount)} to {recipient}",
                _where(receipt),
                "claim it once its batch is final"
                + (f" (posted, then {period} s)" if period else "")
                + f": ratchet claim {receipt.withdrawal_id}",
            ],
        )
    return OK


def _claim(args: argparse.Namespace) -> int:
    import time  # noqa: PLC0415

    from node.sdk import NotAvailableError, l1  # noqa: PLC0415

    _, l1_url = _urls(args)
    key = _key(args)
    with _connect(args, key=False) as client:
        deadline = time.monotonic() + args.timeout
        while True:
            try:
                proof = client.withdrawal_proof(args.withdrawal_id)
                break
            except NotAvailableError as exc:
                if not args.wait or time.monotonic() > deadline:
                    detail = exc.data.get("detail") if isinstance(exc.data, dict) else None
                    message = f"withdrawal {args.withdrawal_id} is not claimable yet: "
                    message += detail or exc.message
                    return _fail(args, "NotAvailableError", message, FAILED)
                time.sleep(1.0)
        claimed = l1.claim(l1_url, key, proof)
        amount = client.collateral.from_wire(claimed.amount)
        _emit(
            args,
            {
                "withdrawalId": claimed.withdrawal_id,
                "recipient": claimed.recipient,
                "amount": amount,
                "amountBaseUnits": str(claimed.amount),
                "batch": claimed.batch,
                "l1TxHash": claimed.tx_hash,
            },
            [
                f"claimed withdrawal {claimed.withdrawal_id}: {_show(amount)} "
                f"to {claimed.recipient}",
                f"L1 tx {claimed.tx_hash} (proven against final batch {claimed.batch})",
            ],
        )
    return OK
