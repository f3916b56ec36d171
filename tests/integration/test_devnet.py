"""
End to end on a devnet started by ``ratchet devnet`` (a real process: anvil, the
contracts, a sequencer and a watcher), as a newcomer meets Ratchet:

- a client that knows only eth-account and plain HTTP JSON-RPC (not the SDK, not web3)
  deposits on L1, trades against a second account, checks every receipt's signature,
  waits for ``final``, withdraws and claims on L1, and sees its token balance change by
  exactly the amount;
- the same journey through the SDK, with its WebSocket cut mid-stream;
- Ctrl-C stops everything the devnet started.

The devnet runs with a 10 s challenge window (``--challenge-window``) so that ``final``
comes quickly; nothing here moves L1 time by hand.
"""

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils.crypto import keccak  # eth-account's own keccak

from node.sdk import Client, Event, Gap
from node.sdk import l1 as sdk_l1
from tests.integration.devnet_env import RunningDevnet, running_devnet, wait_until
from tests.integration.net_proxy import Proxy

TOKEN = 10**6
"""Collateral base units per token (6 decimals)."""

RECEIPT_TYPE = [
    {"name": "txHash", "type": "bytes32"},
    {"name": "batch", "type": "uint64"},
    {"name": "index", "type": "uint32"},
]
"""INTERFACE.md: the sequencer signs ``Receipt{txHash bytes32, batch uint64, index uint32}``."""


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDevnet]:
    with running_devnet(tmp_path_factory.mktemp("devnet") / "data") as running:
        yield running


# a plain client: eth-account, hand-encoded calldata, JSON-RPC over urllib ------------------


class PlainL1:
    """L1 through plain JSON-RPC: raw transactions signed with eth-account."""

    def __init__(self, url: str, chain_id: int) -> None:
        self.url = url
        self.chain_id = chain_id

    def rpc(self, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        request = urllib.request.Request(
            self.url, body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            answer = json.load(reply)
        assert "error" not in answer, answer
        return answer["result"]

    def send(self, key: str, to: str, data: bytes) -> dict[str, Any]:
        """Sign and send a call; its receipt (which must have succeeded)."""
        sender = Account.from_key(key).address
        fee = int(self.rpc("eth_gasPrice"), 16)
        tx = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": int(self.rpc("eth_getTransactionCount", sender, "pending"), 16),
            "to": to,
            "value": 0,
            "data": data,
            "gas": 1_000_000,
            "maxFeePerGas": 2 * fee + 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
        signed = Account.sign_transaction(tx, key)
        tx_hash = self.rpc("eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())
        receipt = wait_until(lambda: self.rpc("eth_getTransactionReceipt", tx_hash), 60, "L1")
        assert receipt["status"] == "0x1", receipt
        return dict(receipt)

    def token_balance(self, token: str, owner: str) -> int:
        data = selector("balanceOf(address)") + word(int(owner, 16))
        return int(self.rpc("eth_call", {"to": token, "data": "0x" + data.hex()}, "latest"), 16)


def selector(signature: str) -> bytes:
    return bytes(keccak(text=signature))[:4]


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def plain_deposit(l1: PlainL1, info: dict[str, Any], key: str, amount: int) -> int:
    """approve + deposit on L1; the account id from the Deposited event."""
    bridge, token = info["contracts"]["bridge"], info["contracts"]["collateral"]
    l1.send(key, token, selector("approve(address,uint256)") + word(int(bridge, 16)) + word(amount))
    receipt = l1.send(key, bridge, selector("deposit(uint256)") + word(amount))
    topic = "0x" + bytes(keccak(text="Deposited(address,uint64,uint256,uint256)")).hex()
    (log,) = [entry for entry in receipt["logs"] if entry["topics"][0] == topic]
    return int(log["topics"][2], 16)


def typed(config: dict[str, Any], primary: str, message: dict[str, Any]) -> dict[str, Any]:
    """An eth_signTypedData_v4 request in the rollup's domain, its types from getConfig
    (eth-account wants only the primary type's beside the domain's)."""
    known = {**config["types"], "Receipt": RECEIPT_TYPE}
    types = {"EIP712Domain": known["EIP712Domain"], primary: known[primary]}
    return {"types": types, "domain": config["domain"], "primaryType": primary, "message": message}


def plain_send(
    devnet: RunningDevnet, config: dict[str, Any], key: str, kind: str, message: dict[str, Any]
) -> dict[str, Any]:
    """Sign ``message`` with eth-account, send it, check the receipt's hash and the
    sequencer's signature; the receipt."""
    request = typed(config, kind, message)
    signed = Account.sign_message(encode_typed_data(full_message=request), key)
    receipt: dict[str, Any] = devnet.call(
        "ratchet_sendTransaction",
        {"type": kind, "message": message, "signature": "0x" + signed.signature.hex()},
    )
    digest = "0x" + _hash_eip191_message(encode_typed_data(full_message=request)).hex()
    assert receipt["txHash"] == digest
    check_receipt(config, receipt)
    return receipt


def check_receipt(config: dict[str, Any], receipt: dict[str, Any]) -> None:
    """The receipt is signed by the sequencer getConfig names, over its exact position."""
    promise = {
        "txHash": receipt["txHash"],
        "batch": receipt["batch"],
        "index": receipt["index"],
    }
    signable = encode_typed_data(full_message=typed(config, "Receipt", promise))
    signer = Account.recover_message(signable, signature=receipt["signature"])
    assert signer.lower() == config["sequencer"].lower()


def test_a_plain_client_deposits_trades_withdraws_and_claims(devnet: RunningDevnet) -> None:
    info = devnet.info
    config = devnet.call("ratchet_getConfig")
    assert (config["chainId"], config["l1ChainId"]) == (info["chain_id"], info["l1_chain_id"])
    assert config["contracts"]["rollup"] == info["contracts"]["rollup"]
    assert config["sequencer"].lower() == info["sequencer"].lower()
    l1 = PlainL1(info["l1_rpc"], info["l1_chain_id"])
    maker, taker = info["accounts"][0], info["accounts"][1]
    ids = {}
    for who in (maker, taker):
        ids[who["address"]] = plain_deposit(l1, info, who["private_key"], 10_000 * TOKEN)
    for who in (maker, taker):
        wait_until(
            lambda who=who: (
                devnet.call("ratchet_getAccount", who["address"])["collateral"]
                == str(10_000 * TOKEN)
            ),
            what="the deposits credited on L2",
        )
    maker_id, taker_id = ids[maker["address"]], ids[taker["address"]]
    assert (
        devnet.call("ratchet_getAccount", maker_id)["address"].lower() == maker["address"].lower()
    )

    # a resting ask one tick off the oracle price, and an IOC bid that takes it
    (eth,) = [m for m in config["markets"] if m["symbol"] == "ETH-PERP"]
    tick, lot = int(eth["tickSize"]), int(eth["lotSize"])
    oracle = int(devnet.call("ratchet_getMarkets")[eth["id"]]["oraclePrice"])
    price, size = (oracle // tick + 1) * tick, 1_000 * lot
    order = {
        "market": eth["id"],
        "price": price,
        "size": size,
        "reduceOnly": False,
        "expiry": 0,
        "nonce": 1,
    }
    ask = plain_send(
        devnet,
        config,
        maker["private_key"],
        "Order",
        {**order, "account": maker_id, "isBuy": False, "timeInForce": 0},
    )
    assert (ask["type"], ask["account"], ask["outcome"]["resting"]) == (
        "Order",
        maker_id,
        str(size),
    )
    bid = plain_send(
        devnet,
        config,
        taker["private_key"],
        "Order",
        {**order, "account": taker_id, "isBuy": True, "timeInForce": 1},
    )
    assert bid["outcome"]["filled"] == str(size)
    assert [(f["makerAccount"], f["makerOrder"]) for f in bid["outcome"]["fills"]] == [
        (maker_id, ask["outcome"]["orderHash"])
    ]
    positions = {
        who: devnet.call("ratchet_getAccount", who)["positions"] for who in (maker_id, taker_id)
    }
    assert positions == {
        maker_id: [
            {
                "market": eth["id"],
                "size": str(-size),
                "fundingIndex": positions[maker_id][0]["fundingIndex"],
            }
        ],
        taker_id: [
            {
                "market": eth["id"],
                "size": str(size),
                "fundingIndex": positions[taker_id][0]["fundingIndex"],
            }
        ],
    }

    # withdraw to L1; once final, claim with the sequencer's ready-made call
    amount = 1_234 * TOKEN + 567_890
    withdrawal = plain_send(
        devnet,
        config,
        maker["private_key"],
        "Withdraw",
        {"account": maker_id, "recipient": maker["address"], "amount": amount, "nonce": 2},
    )
    withdrawal_id = withdrawal["outcome"]["withdrawalId"]
    seen: list[str] = []

    def final() -> bool:
        finality = devnet.call("ratchet_getReceipt", withdrawal["txHash"])["finality"]
        if not seen or seen[-1] != finality:
            seen.append(finality)
        return bool(finality == "final")

    wait_until(final, 180, "the withdrawal's batch to be final")
    assert seen[-1] == "final" and "rejected" not in seen
    for receipt in (ask, bid, withdrawal):
        again = devnet.call("ratchet_getReceipt", receipt["txHash"])
        assert again["finality"] == "final"
        assert again["l1TxHash"].startswith("0x")
        check_receipt(config, again)
    proof = devnet.call("ratchet_getWithdrawalProof", withdrawal_id)
    assert (proof["recipient"].lower(), proof["amount"]) == (maker["address"].lower(), str(amount))
    token = info["contracts"]["collateral"]
    before = l1.token_balance(token, maker["address"])
    l1.send(maker["private_key"], proof["l1Call"]["to"], bytes.fromhex(proof["l1Call"]["data"][2:]))
    assert l1.token_balance(token, maker["address"]) - before == amount


# the same journey through the SDK ---------------------------------------------------------


async def next_item(subscription: Any, timeout: float = 60.0) -> Event | Gap:
    item = await subscription.next(timeout)
    assert isinstance(item, Event | Gap)
    return item


def test_the_sdk_journey_survives_a_cut_websocket(devnet: RunningDevnet) -> None:
    info = devnet.info
    maker, taker = info["accounts"][2], info["accounts"][3]
    bridge = info["contracts"]["bridge"]
    for who in (maker, taker):
        sdk_l1.deposit(info["l1_rpc"], who["private_key"], bridge, "5000")
    port = int(info["rpc"].rsplit(":", 1)[1])

    async def journey() -> tuple[int, dict[str, Any], int]:
        proxy = await Proxy(port).start()
        try:
            ws = f"ws://127.0.0.1:{proxy.port}/ws"
            async with (
                await Client.connect(info["rpc"], key=maker["private_key"], ws_url=ws) as mm,
                await Client.connect(info["rpc"], key=taker["private_key"]) as tk,
            ):
                await mm.wait_for_account()
                await tk.wait_for_account()
                markets = {m.symbol: m for m in await mm.markets()}
                btc = markets["BTC-PERP"]
                oracle = btc.price_from_wire(
                    int((await mm.call("ratchet_getMarkets"))[btc.id]["oraclePrice"])
                )
                price = oracle.to_integral_value() + 1
                receipts = await mm.subscribe("receipts")
                first = await mm.place_order("BTC-PERP", "sell", price, "0.01", client_id="a1")
                event = await next_item(receipts)
                assert isinstance(event, Event) and event.result["txHash"] == first.tx_hash
                # the network drops the maker's WebSocket; meanwhile its order is filled
                proxy.cut()
                taken = await tk.place_order("BTC-PERP", "buy", price, "0.01", tif="IOC")
                assert taken.filled == btc.size_to_wire("0.01")
                gap = await next_item(receipts)
                assert isinstance(gap, Gap) and gap.reason == "reconnected"
                # resubscribed: new receipts arrive again, in order
                second = await mm.place_order("BTC-PERP", "sell", price, "0.02", client_id="a2")
                event = await next_item(receipts)
                assert isinstance(event, Event) and event.result["txHash"] == second.tx_hash
                assert (await mm.order(client_id="a1"))["status"] == "filled"
                await mm.cancel(client_id="a2")
                await receipts.close()
                positions = {p.market.symbol: p.size for p in await tk.positions()}
                assert positions["BTC-PERP"] == Decimal("0.01")
                withdrawal = await mm.withdraw("321.5")
                assert withdrawal.withdrawal_id is not None
                await mm.wait_for_finality(withdrawal.tx_hash, "final", timeout=180)
                proof = await mm.withdrawal_proof(withdrawal.withdrawal_id)
                return withdrawal.withdrawal_id, proof, proxy.accepted
        finally:
            await proxy.close()

    withdrawal_id, proof, connections = asyncio.run(journey())
    assert connections >= 2  # the subscription really connected again
    before = sdk_l1.collateral_balance(info["l1_rpc"], bridge, maker["address"])
    claimed = sdk_l1.claim(info["l1_rpc"], maker["private_key"], proof)
    assert (claimed.withdrawal_id, claimed.amount) == (withdrawal_id, 321_500_000)
    after = sdk_l1.collateral_balance(info["l1_rpc"], bridge, maker["address"])
    assert after - before == Decimal("321.5")


def test_ctrl_c_stops_everything_the_devnet_started(devnet: RunningDevnet) -> None:
    pids = devnet.info["pids"]
    assert set(pids) == {"devnet", "anvil", "sequencer", "watcher"}
    assert devnet.leftovers() == ["anvil", "sequencer", "watcher"]
    assert devnet.stop() == 0
    deadline = time.monotonic() + 10
    while devnet.leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)  # a child reaped a moment after its parent
    assert devnet.leftovers() == []
    assert "devnet stopped." in devnet.output.read_text()


def test_a_second_run_starts_clean_and_a_foreign_directory_is_refused(tmp_path: Path) -> None:
    from node.config import ConfigError  # noqa: PLC0415
    from node.devnet import MARKER, prepare  # noqa: PLC0415

    previous = tmp_path / "devnet"
    (previous / "sequencer" / "db").mkdir(parents=True)
    (previous / "sequencer" / "db" / "LOG").write_text("old")
    (previous / "devnet.json").write_text("{}")
    (previous / MARKER).write_text("")
    assert prepare(previous) is True
    assert sorted(p.name for p in previous.iterdir()) == [MARKER, "logs"]
    assert prepare(tmp_path / "fresh") is False

    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(ConfigError, match="holds no devnet"):
        prepare(foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"
