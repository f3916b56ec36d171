"""
The SDK's pure parts: exact unit conversion (and its refusals, word for word as
docs/sdk.md shows them), the nonce allocator under concurrency, the config and
receipt checks with real signatures, and gap detection on a real WebSocket.
"""

import asyncio
import json
import threading
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from hypothesis import given
from hypothesis import strategies as st

from node.l1.anvil import free_port
from node.protocol.crypto import address_of, sign_digest
from node.protocol.eip712 import Domain
from node.protocol.transactions import Receipt, eip712_types
from node.sdk import (
    Collateral,
    ConfigError,
    Event,
    Gap,
    InvalidArgumentError,
    Market,
    NonceAllocator,
    ReceiptError,
    UnitError,
    verify_receipt,
)
from node.sdk.parsing import domain_of, parse_side, parse_time_in_force
from node.sdk.subscription import Subscription, ws_url_of
from tests.stf_env import test_key as key_of

BTC = Market(0, "BTC-PERP", tick_size=10, lot_size=1000, price_decimals=1, size_decimals=8)
"""configs/markets.toml's BTC-PERP: tick $1, lot 0.00001 BTC."""

SOL = Market(2, "SOL-PERP", tick_size=1, lot_size=10, price_decimals=3, size_decimals=3)
"""configs/markets.toml's SOL-PERP: tick $0.001, lot 0.01 SOL."""


@pytest.mark.parametrize(
    ("price", "wire"),
    [
        ("60000", 600_000),
        (Decimal("60000"), 600_000),
        (60000, 600_000),
        ("60000.0", 600_000),
        ("6E+4", 600_000),
        (" 1 ", 10),
        ("16777215", 167_772_150),  # the highest tick
    ],
)
def test_exact_prices_convert(price: Any, wire: int) -> None:
    assert BTC.price_to_wire(price) == wire
    assert BTC.price_from_wire(wire) == Decimal(str(price).strip())


@pytest.mark.parametrize(
    ("size", "wire"),
    [("0.00001", 1000), ("0.01", 1_000_000), (Decimal("1.5"), 150_000_000), (2, 200_000_000)],
)
def test_exact_sizes_convert(size: Any, wire: int) -> None:
    assert BTC.size_to_wire(size) == wire
    assert BTC.size_from_wire(wire) == Decimal(str(size))


@pytest.mark.parametrize(
    ("price", "message"),
    [
        (
            "60000.5",
            "BTC-PERP: price 60000.5 is not a multiple of the tick 1; nearest valid: "
            "60000 or 60001",
        ),
        ("60000.55", "nearest valid: 60000 or 60001"),
        ("0.4", "BTC-PERP: price 0.4 is not a multiple of the tick 1; nearest valid: 1"),
        ("-60000", "BTC-PERP: price -60000 is negative"),
        ("0", "BTC-PERP: price must be positive, got 0"),
        ("16777216", "BTC-PERP: price 16777216 is above the highest valid price 16777215"),
        ("1e50", "BTC-PERP: price 1E+50 is out of range"),
        ("1e999999999", "out of range"),
        ("1e-999999999", "far too many decimal places"),
        ("sixty", "BTC-PERP: price 'sixty' is not a decimal number"),
        ("NaN", "BTC-PERP: price NaN is not a finite number"),
        ("Infinity", "is not a finite number"),
    ],
)
def test_prices_off_the_grid_are_refused(price: str, message: str) -> None:
    with pytest.raises(UnitError) as refused:
        BTC.price_to_wire(price)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (
            "0.000015",
            "BTC-PERP: size 0.000015 is not a multiple of the lot 0.00001; nearest "
            "valid: 0.00001 or 0.00002",
        ),
        ("0.000000001", "nearest valid: 0.00001"),
        ("0", "BTC-PERP: size must be positive, got 0"),
        ("-0.01", "BTC-PERP: size -0.01 is negative"),
        ("184467440737.09552", "BTC-PERP: size 184467440737.09552 is out of range"),
    ],
)
def test_sizes_off_the_grid_are_refused(size: str, message: str) -> None:
    with pytest.raises(UnitError) as refused:
        BTC.size_to_wire(size)
    assert message in str(refused.value)


def test_a_market_order_price_of_zero_only_when_allowed() -> None:
    assert BTC.price_to_wire("0", allow_zero=True) == 0
    with pytest.raises(UnitError, match="must be positive"):
        BTC.price_to_wire("0")


@pytest.mark.parametrize("value", [0.1, 60000.0, True, None, [1]])
def test_floats_and_other_types_are_refused(value: Any) -> None:
    with pytest.raises(TypeError) as refused:
        BTC.price_to_wire(value)
    if isinstance(value, float):
        assert "use Decimal or str" in str(refused.value)
    with pytest.raises(TypeError):
        BTC.size_to_wire(value)
    with pytest.raises(TypeError):
        Collateral().to_wire(value)


def test_trailing_zeros_do_not_count_as_decimals() -> None:
    assert BTC.size_to_wire("10." + "0" * 60) == 1_000_000_000
    assert SOL.price_to_wire("12.345000") == 12_345


@given(st.integers(1, (1 << 24) - 1), st.integers(1, 10**9))
def test_every_grid_point_round_trips(ticks: int, lots: int) -> None:
    for market in (BTC, SOL):
        price = market.price_from_wire(ticks * market.tick_size)
        size = market.size_from_wire(lots * market.lot_size)
        assert market.price_to_wire(price) == ticks * market.tick_size
        assert market.price_to_wire(str(price)) == ticks * market.tick_size
        assert market.size_to_wire(size) == lots * market.lot_size


@given(st.integers(1, (1 << 24) - 2), st.integers(1, 9))
def test_every_point_between_ticks_is_refused(ticks: int, tenth: int) -> None:
    between = BTC.price_from_wire(ticks * 10) + Decimal(tenth) / 10
    with pytest.raises(UnitError, match="not a multiple of the tick 1"):
        BTC.price_to_wire(between)


def test_collateral_amounts() -> None:
    usd = Collateral(6)
    assert usd.to_wire("12.5") == 12_500_000
    assert usd.to_wire(Decimal("0.000001")) == 1
    assert usd.from_wire(12_500_000) == Decimal("12.5")
    assert usd.from_wire(-1) == Decimal("-0.000001")
    with pytest.raises(UnitError, match=r"amount 0\.0000001 has more than the 6 decimal places"):
        usd.to_wire("0.0000001")
    with pytest.raises(UnitError, match="amount must be positive"):
        usd.to_wire("0")
    with pytest.raises(UnitError, match="is out of range"):
        usd.to_wire("18446744073709.551616")
    assert usd.to_wire("0", allow_zero=True) == 0


def test_market_from_the_config_json() -> None:
    market = Market.from_json(
        {
            "id": 1,
            "symbol": "ETH-PERP",
            "tickSize": "1",
            "lotSize": "100",
            "priceDecimals": 2,
            "sizeDecimals": 6,
            "initialMarginBps": 500,
        }
    )
    assert (market.tick, market.lot) == (Decimal("0.01"), Decimal("0.0001"))
    assert market.info["initialMarginBps"] == 500
    assert market.price_to_wire("3000.01") == 300_001


# nonces --------------------------------------------------------------------------


def test_nonces_start_above_every_used_one() -> None:
    allocator = NonceAllocator()
    with pytest.raises(RuntimeError, match="not seeded"):
        allocator.take()
    allocator.seed(10, 0b1011)  # 10, 11 and 13 used
    assert [allocator.take(), allocator.take()] == [14, 15]
    allocator.seed(0, 0)  # an older view never moves it back
    assert allocator.take() == 16
    allocator.seed(100, 0)  # another program used nonces up to 99
    assert allocator.take() == 100


def test_nonces_are_distinct_across_threads() -> None:
    allocator = NonceAllocator()
    allocator.seed(5, 0)
    taken: list[list[int]] = [[] for _ in range(8)]

    def work(out: list[int]) -> None:
        for _ in range(2000):
            out.append(allocator.take())

    threads = [threading.Thread(target=work, args=(out,)) for out in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [n for out in taken for n in out]
    assert sorted(everything) == list(range(5, 5 + 16_000))
    assert all(out == sorted(out) for out in taken)  # increasing within each thread


def test_nonces_are_distinct_across_tasks() -> None:
    allocator = NonceAllocator()
    allocator.seed(0, 0)

    async def task() -> list[int]:
        found = []
        for _ in range(100):
            found.append(allocator.take())
            await asyncio.sleep(0)
        return found

    async def main() -> list[list[int]]:
        return list(await asyncio.gather(*(task() for _ in range(20))))

    everything = [n for out in asyncio.run(main()) for n in out]
    assert sorted(everything) == list(range(2000))


# parsing, config and receipts -----------------------------------------------------


def test_sides_and_times_in_force() -> None:
    assert [parse_side(s) for s in ("buy", "SELL", "bid", "ask", True)] == [
        True,
        False,
        True,
        False,
        True,
    ]
    assert [int(parse_time_in_force(t)) for t in ("gtc", "IOC", "fok", "post-only", 3)] == [
        0,
        1,
        2,
        3,
        3,
    ]
    with pytest.raises(InvalidArgumentError, match="side must be buy or sell"):
        parse_side("hold")
    with pytest.raises(InvalidArgumentError, match="time in force must be"):
        parse_time_in_force("GTD")


def test_ws_url_beside_the_rpc_url() -> None:
    assert ws_url_of("http://127.0.0.1:8547") == "ws://127.0.0.1:8547/ws"
    assert ws_url_of("http://127.0.0.1:8547/") == "ws://127.0.0.1:8547/ws"
    assert ws_url_of("https://rpc.example/ratchet") == "wss://rpc.example/ratchet/ws"


DOMAIN = Domain(901_337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
SEQUENCER_KEY = key_of(77)


def config() -> dict[str, Any]:
    return {
        "chainId": DOMAIN.chain_id,
        "contracts": {"rollup": DOMAIN.to_json()["verifyingContract"]},
        "domain": DOMAIN.to_json(),
        "types": eip712_types(),
    }


def test_the_config_domain_and_types_are_checked() -> None:
    assert domain_of(config()) == DOMAIN
    renamed = config()
    renamed["domain"]["name"] = "Other"
    with pytest.raises(ConfigError, match="'Other'"):
        domain_of(renamed)
    changed = config()
    changed["types"]["Order"] = changed["types"]["Order"][:-1]
    with pytest.raises(ConfigError, match="EIP-712 type Order"):
        domain_of(changed)
    elsewhere = config()
    elsewhere["contracts"]["rollup"] = "0x" + "11" * 20
    with pytest.raises(ConfigError, match=r"contracts\.rollup"):
        domain_of(elsewhere)


def signed_receipt(key: bytes, tx_hash: bytes, batch: int, index: int) -> dict[str, Any]:
    signature = sign_digest(key, Receipt(tx_hash, batch, index).signing_hash(DOMAIN))
    return {
        "txHash": "0x" + tx_hash.hex(),
        "batch": batch,
        "index": index,
        "signature": "0x" + signature.hex(),
        "type": "Order",
        "account": 1,
        "outcome": {"orderHash": "0x" + tx_hash.hex(), "filled": "5", "resting": "0"},
        "sequence": 9,
        "finality": "soft",
    }


def test_receipts_are_checked_against_the_sequencer() -> None:
    sequencer = address_of(SEQUENCER_KEY)
    tx_hash = b"\x07" * 32
    receipt = signed_receipt(SEQUENCER_KEY, tx_hash, 3, 4)
    checked = verify_receipt(receipt, DOMAIN, sequencer, tx_hash)
    assert (checked.batch, checked.index, checked.filled, checked.order_hash) == (
        3,
        4,
        5,
        receipt["txHash"],
    )
    with pytest.raises(ReceiptError, match="not by the sequencer"):
        verify_receipt({**receipt, "batch": 2}, DOMAIN, sequencer)
    with pytest.raises(ReceiptError, match="not by the sequencer"):
        verify_receipt(signed_receipt(key_of(5), tx_hash, 3, 4), DOMAIN, sequencer)
    with pytest.raises(ReceiptError, match="not for the transaction sent"):
        verify_receipt(receipt, DOMAIN, sequencer, b"\x08" * 32)
    with pytest.raises(ReceiptError, match="malformed"):
        verify_receipt({"txHash": receipt["txHash"]}, DOMAIN, sequencer)


# gap detection -------------------------------------------------------------------


def test_a_skipped_seq_on_the_socket_yields_a_gap() -> None:
    """A WebSocket server that numbers its notifications 1, 2, 4: the subscription
    yields events 1 and 2, then Gap(expected 3, got 4), then event 4."""

    async def serve(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                break
            call = json.loads(message.data)
            if call["method"] != "ratchet_subscribe":
                continue
            await socket.send_str(json.dumps({"jsonrpc": "2.0", "id": call["id"], "result": "0x1"}))
            for seq in (1, 2, 4):
                params = {"subscription": "0x1", "seq": seq, "result": {"n": seq}}
                note = {"jsonrpc": "2.0", "method": "ratchet_subscription", "params": params}
                await socket.send_str(json.dumps(note))
        return socket

    async def main() -> list[Event | Gap]:
        app = web.Application()
        app.router.add_get("/ws", serve)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with aiohttp.ClientSession() as session:
                subscription = Subscription(session, f"ws://127.0.0.1:{port}/ws", "batches", {})
                await subscription.start()
                items = [await subscription.next(10) for _ in range(4)]
                await subscription.close()
                return items
        finally:
            await runner.cleanup()

    assert asyncio.run(main()) == [
        Event(1, {"n": 1}, "batches"),
        Event(2, {"n": 2}, "batches"),
        Gap("seq", 3, 4),
        Event(4, {"n": 4}, "batches"),
    ]
