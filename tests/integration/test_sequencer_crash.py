"""
SIGKILL ``ratchet sequencer`` while clients stream signed orders at it, restart it,
and check that every receipt a client got is still there with the same content, and
that the state root it reports equals a fresh replay of its log from genesis. Three
kills per run, at random moments (``make soak`` does a hundred).
"""

import asyncio
import json
import os
import random
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.config import load_config, load_genesis
from node.protocol.crypto import address_of, sign_digest
from node.protocol.eip712 import Domain
from node.protocol.genesis import genesis_state
from node.protocol.inbox import Deposit, encode_l1_message
from node.protocol.step import BatchContext, Step
from node.protocol.stf import apply_step
from node.protocol.transactions import (
    Message,
    OraclePrice,
    Order,
    SignedTransaction,
    encode_transaction,
)
from node.protocol.tree import MemoryNodeStore
from node.sequencer.engine import Sequencer
from node.sequencer.ledger import Ledger
from node.storage import LevelDB
from tests.integration.sequencer_env import Daemon, port, write_config
from tests.stf_env import FEE_OWNER_KEY, ORACLE_KEY
from tests.stf_env import test_key as key_of

DOMAIN = Domain(901_337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
SEQUENCER_KEY = key_of(77)
TRADERS = [key_of(i) for i in range(1, 5)]
BTC = 0
PRICE = 600_000  # $60,000 in BTC-PERP's $0.1 units
LOT = 1_000


def signed(key: bytes, message: Message) -> str:
    signature = sign_digest(key, message.signing_hash(DOMAIN))
    return "0x" + encode_transaction(SignedTransaction(message, signature)).hex()


async def stream(
    url: str, account: int, key: bytes, nonces: list[int], got: dict[str, dict[str, Any]]
) -> None:
    """Send orders one after another (buys for odd accounts, sells for even ones, all
    crossing at one price) until the connection breaks; keep every receipt received."""
    async with aiohttp.ClientSession() as session:
        while True:
            nonces[0] += 1
            message = Order(account, BTC, account % 2 == 1, PRICE, LOT, 1, False, 0, nonces[0])
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "ratchet_sendTransaction",
                "params": [signed(key, message)],
            }
            try:
                async with session.post(url + "/", json=body) as reply:
                    answer = await reply.json()
            except (TimeoutError, aiohttp.ClientError):
                return
            if "result" in answer:
                got[answer["result"]["txHash"]] = answer["result"]
            else:
                assert answer["error"]["code"] == -32010, answer


async def stream_until(
    url: str, nonces: list[list[int]], receipts: int, daemon: Daemon
) -> dict[str, dict[str, Any]]:
    """Four clients stream; SIGKILL the daemon once ``receipts`` more came back."""
    got: dict[str, dict[str, Any]] = {}
    tasks = [
        asyncio.create_task(stream(url, account, key, nonces[account - 1], got))
        for account, key in enumerate(TRADERS, start=1)
    ]
    while len(got) < receipts:
        await asyncio.sleep(0.005)
        assert not all(t.done() for t in tasks), "every client stopped"
    await asyncio.to_thread(daemon.kill)
    await asyncio.gather(*tasks)
    return got


def replayed_root(data: Path, config: Path) -> bytes:
    """The state root of a fresh replay of the log (genesis on an empty node store)."""
    genesis = load_genesis(load_config(config, {}), config)
    state = genesis_state(genesis, MemoryNodeStore())
    with LevelDB(data) as db:
        for entry in Ledger(db).entries():
            outcome = apply_step(
                state, Step(entry.kind, entry.data), BatchContext(entry.timestamp, DOMAIN)
            )
            assert outcome.applied or entry.kind == 0
    return state.commit()


def test_sigkill_under_load_loses_no_receipt(tmp_path: Path) -> None:
    crash_and_check(tmp_path, kills=3)


@pytest.mark.slow
def test_soak_a_hundred_sigkills(tmp_path: Path) -> None:
    """``make soak``: the same with RATCHET_SOAK_KILLS kills (100 by default)."""
    crash_and_check(tmp_path, kills=int(os.environ.get("RATCHET_SOAK_KILLS", "100")))


def crash_and_check(tmp_path: Path, kills: int) -> None:
    """Stream, SIGKILL and restart ``kills`` times; then every receipt given must be
    unchanged and the root must equal a fresh replay of the log."""
    rng = random.Random()
    seed = rng.randrange(1 << 32)
    rng.seed(seed)
    config = write_config(
        tmp_path,
        DOMAIN,
        port=port(),
        oracle="0x" + address_of(ORACLE_KEY).hex(),
        fee_owner="0x" + address_of(FEE_OWNER_KEY).hex(),
    )
    data = tmp_path / "data" / "db"
    # fund the traders and price BTC through the engine itself (no L1 in this test)
    genesis = load_genesis(load_config(config, {}), config)

    async def fund() -> None:
        with LevelDB(data) as db:
            engine = Sequencer(db, genesis, DOMAIN, SEQUENCER_KEY)
            for account, key in enumerate(TRADERS, start=1):
                deposit = Deposit(address_of(key), account, 10**12)
                await engine.submit_l1_message(encode_l1_message(deposit))
            price = OraclePrice(BTC, PRICE, engine.open.timestamp if engine.open else 0)
            await engine.submit(bytes.fromhex(signed(ORACLE_KEY, price)[2:]))
            await engine.flush()

    asyncio.run(fund())
    daemon = Daemon(config, SEQUENCER_KEY, int(load_config(config, {})["rpc"]["port"]))
    nonces = [[0] for _ in TRADERS]
    every: dict[str, dict[str, Any]] = {}
    try:
        for _ in range(kills):
            daemon.start()
            got = asyncio.run(stream_until(daemon.url, nonces, rng.randrange(20, 300), daemon))
            every.update(got)
            for nonce in nonces:
                nonce[0] += 50  # skip whatever was in flight
        daemon.start()
        for tx_hash, receipt in every.items():
            stored = daemon.call("ratchet_getReceipt", tx_hash)
            stored.pop("finality")
            receipt.pop("finality", None)
            assert stored == receipt, f"seed {seed}: receipt {tx_hash} changed"
        root = daemon.call("ratchet_getStatus")["root"]
        assert daemon.stop() == 0, daemon.log.read_text()[-2000:]
    finally:
        daemon.kill()
    assert root == "0x" + replayed_root(data, config).hex(), f"seed {seed}"
    assert len(every) >= 20 * kills
    print(json.dumps({"kills": kills, "receipts_checked": len(every), "lost": 0, "seed": seed}))
