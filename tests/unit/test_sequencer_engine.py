"""The sequencing engine on a real LevelDB with real signatures: admission, receipts
signed in the rollup's domain, batches, and recovery by replay after a reopen."""

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from node.protocol.batch import Batch
from node.protocol.crypto import address_of, sign_digest
from node.protocol.inbox import Deposit, ForcedTransaction, encode_l1_message
from node.protocol.step import Reason
from node.protocol.transactions import (
    Message,
    OraclePrice,
    Order,
    SignedTransaction,
    TimeInForce,
    Transfer,
    encode_transaction,
)
from node.sequencer.engine import AdmissionError, InboxMovedError, Sequencer
from node.sequencer.rpc import Api
from node.storage import LevelDB
from tests.stf_env import BTC, DOMAIN, GENESIS, ORACLE_KEY, START_TIME, USD, btc, sats
from tests.stf_env import test_key as key_of

SEQUENCER_KEY = key_of(77)


def signed(key: bytes, message: Message) -> bytes:
    """``message`` signed by ``key`` in the test domain, encoded."""
    signature = sign_digest(key, message.signing_hash(DOMAIN))
    return encode_transaction(SignedTransaction(message, signature))


def open_engine(path: Path, max_batch_transactions: int = 1_000) -> tuple[LevelDB, Sequencer]:
    """A LevelDB at ``path`` and an engine on it whose clock is the test start time."""
    db = LevelDB(path)
    engine = Sequencer(
        db,
        GENESIS,
        DOMAIN,
        SEQUENCER_KEY,
        max_batch_transactions=max_batch_transactions,
        clock=lambda: START_TIME,
    )
    return db, engine


async def fund(engine: Sequencer, *keys: bytes) -> None:
    for account, key in enumerate(keys, start=1):
        message = encode_l1_message(Deposit(address_of(key), account, 100_000 * USD))
        await engine.submit_l1_message(message)


def order(account: int, key: bytes, is_buy: bool, dollars: int, size: float, nonce: int) -> bytes:
    message = Order(
        account, BTC.id, is_buy, btc(dollars), sats(size), int(TimeInForce.GTC), False, 0, nonce
    )
    return signed(key, message)


def test_receipts_are_signed_by_the_sequencer_in_the_rollup_domain(tmp_path: Path) -> None:
    maker, taker = key_of(1), key_of(2)

    async def run() -> list[dict[str, Any]]:
        db, engine = open_engine(tmp_path / "db")
        with db:
            await fund(engine, maker, taker)
            price = OraclePrice(BTC.id, btc(60_000), START_TIME)
            await engine.submit(signed(ORACLE_KEY, price))
            first = await engine.submit(order(1, maker, False, 60_000, 0.5, 1))
            second = await engine.submit(order(2, taker, True, 60_000, 0.2, 1))
            return [first, second]

    first, second = asyncio.run(run())
    assert first["outcome"]["resting"] == str(sats(0.5))
    assert second["outcome"]["filled"] == str(sats(0.2))
    assert second["outcome"]["fills"][0]["makerAccount"] == 1
    assert (first["batch"], first["index"], first["sequence"]) == (0, 3, 3)
    assert (second["batch"], second["index"], second["sequence"]) == (0, 4, 4)
    for receipt in (first, second):
        data = {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Receipt": [
                    {"name": "txHash", "type": "bytes32"},
                    {"name": "batch", "type": "uint64"},
                    {"name": "index", "type": "uint32"},
                ],
            },
            "primaryType": "Receipt",
            "domain": DOMAIN.to_json(),
            "message": {
                "txHash": receipt["txHash"],
                "batch": receipt["batch"],
                "index": receipt["index"],
            },
        }
        signer = Account.recover_message(
            encode_typed_data(full_message=data), signature=str(receipt["signature"])
        )
        assert signer.lower() == "0x" + address_of(SEQUENCER_KEY).hex()


def test_a_rejected_transaction_is_not_sequenced(tmp_path: Path) -> None:
    trader = key_of(1)

    async def run() -> None:
        db, engine = open_engine(tmp_path / "db")
        with db:
            await fund(engine, trader)
            head, root = engine.ledger.head, engine.state.commit()
            with pytest.raises(AdmissionError) as rejected:
                await engine.submit(order(1, trader, True, 60_000, 0.1, 1))
            assert rejected.value.reason is Reason.NO_ORACLE_PRICE
            bad = signed(key_of(9), Transfer(1, 2, 5, 1))
            with pytest.raises(AdmissionError) as wrong:
                await engine.submit(bad)
            assert wrong.value.reason in (Reason.WRONG_SIGNER, Reason.UNKNOWN_RECIPIENT)
            with pytest.raises(AdmissionError) as malformed:
                await engine.submit(b"\x01\x02")
            assert malformed.value.reason is Reason.MALFORMED
            assert engine.ledger.head == head
            assert engine.state.commit() == root

    asyncio.run(run())


def test_a_resent_transaction_is_refused(tmp_path: Path) -> None:
    trader = key_of(1)

    async def run() -> None:
        db, engine = open_engine(tmp_path / "db")
        with db:
            await fund(engine, trader, key_of(2))
            raw = signed(trader, Transfer(1, 2, 5, 1))
            await engine.submit(raw)
            with pytest.raises(AdmissionError, match="already sequenced"):
                await engine.submit(raw)

    asyncio.run(run())


def test_batches_close_by_count_and_the_state_replays_after_reopen(tmp_path: Path) -> None:
    """Three transactions per batch (the fourth seals it), and an inbox message seals a
    batch that already has transactions; after a reopen the engine has the same root, the
    same closed batches and the same open batch, and goes on from there."""
    keys = [key_of(i) for i in range(1, 4)]
    identical = encode_l1_message(Deposit(address_of(keys[0]), 1, 5))

    async def first_run() -> tuple[bytes, list[Batch | None]]:
        db, engine = open_engine(tmp_path / "db", max_batch_transactions=3)
        with db:
            await fund(engine, *keys)
            # two byte-identical deposits are two steps
            await engine.submit_l1_message(identical)
            await engine.submit_l1_message(identical)
            for nonce in range(1, 8):
                await engine.submit(signed(keys[0], Transfer(1, 2, 10, nonce)))
            forced = encode_l1_message(ForcedTransaction(signed(keys[1], Transfer(2, 3, 1, 1))))
            await engine.submit_l1_message(forced)  # closes batch 2 (one transaction)
            await engine.submit(signed(keys[2], Transfer(3, 1, 1, 1)))
            assert engine.closed == 3
            await engine.flush()
            return engine.state.commit(), [engine.batch(i) for i in range(4)]

    root, found = asyncio.run(first_run())
    assert found[3] is None
    batches = [b for b in found if b is not None]
    shapes = [(b.inbox_start, b.inbox_end, len(b.transactions)) for b in batches]
    assert shapes == [(0, 5, 3), (5, 5, 3), (5, 5, 1)]
    for parent, child in itertools.pairwise(batches):
        assert child.parent_root == parent.post_root

    async def second_run() -> None:
        db, engine = open_engine(tmp_path / "db", max_batch_transactions=3)
        with db:
            assert engine.state.root == root
            assert engine.closed == 3
            assert engine.open is not None and engine.open.index == 3
            assert (engine.open.inbox_start, engine.open.inbox_end) == (5, 6)
            assert len(engine.open.transactions) == 1
            assert [engine.batch(i) for i in range(3)] == batches
            for nonce in (2, 3):
                await engine.submit(signed(keys[2], Transfer(3, 1, 1, nonce)))
            assert engine.batch(3) is None  # full, sealed by the next transaction or the timer
            assert await engine.close_batch() == engine.batch(3)
            fourth = engine.batch(3)
            assert fourth is not None and fourth.parent_root == batches[2].post_root
            assert fourth.post_root == engine.state.root
            assert len(fourth.transactions) == 3

    asyncio.run(second_run())


def test_revert_undoes_batches_and_reexecution_sequences_them_again(tmp_path: Path) -> None:
    """Reverting to batch 1 puts the state back at batch 0's post root and undoes the later
    steps, whose receipts now read rejected; re-executing them reseals the same
    transactions with new receipts, except one that no longer applies (its nonce was
    taken meanwhile), which stays rejected. A reopen replays to the same state."""
    keys = [key_of(i) for i in range(1, 3)]

    async def run() -> tuple[bytes, dict[str, Any]]:
        db, engine = open_engine(tmp_path / "db", max_batch_transactions=2)
        with db:
            await fund(engine, *keys)
            sent = [
                await engine.submit(signed(keys[0], Transfer(1, 2, 10, nonce)))
                for nonce in range(1, 6)
            ]
            await engine.close_batch()
            assert engine.closed == 3  # [2 deposits + 2], [2], [1]
            first = engine.batch(0)
            assert first is not None
            undone = await engine.revert(1)
            assert engine.state.root == first.post_root
            assert (engine.closed, engine.inbox_next) == (1, 2)
            assert len(undone) == 3
            for receipt in sent[2:]:
                old = engine.receipt(bytes.fromhex(receipt["txHash"][2:]))
                assert old is not None and old["finality"] == "rejected"
            # meanwhile account 1 uses nonce 5 for another transfer: the undone one fails
            await engine.submit(signed(keys[0], Transfer(1, 2, 7, 5)))
            again, dropped = await engine.reexecute(undone)
            assert (again, dropped) == (2, 1)
            renewed = engine.receipt(bytes.fromhex(sent[2]["txHash"][2:]))
            assert renewed is not None and "finality" not in renewed
            assert (renewed["batch"], renewed["sequence"]) != (
                sent[2]["batch"],
                sent[2]["sequence"],
            )
            lost = engine.receipt(bytes.fromhex(sent[4]["txHash"][2:]))
            assert lost is not None and lost["finality"] == "rejected"
            # the API keeps it rejected whatever L1 says of the batch index now
            api = Api(engine, GENESIS, {}, finality=lambda batch: "posted")
            shown = await api.ratchet_getReceipt(sent[4]["txHash"])
            assert shown["finality"] == "rejected"
            assert (await api.ratchet_getReceipt(sent[2]["txHash"]))["finality"] == "posted"
            await engine.close_batch()
            return engine.state.commit(), renewed

    root, renewed = asyncio.run(run())

    async def reopen() -> None:
        db, engine = open_engine(tmp_path / "db", max_batch_transactions=2)
        with db:
            assert engine.state.root == root
            assert engine.receipt(bytes.fromhex(renewed["txHash"][2:])) == renewed

    asyncio.run(reopen())


def test_an_inbox_message_for_a_stale_position_is_refused(tmp_path: Path) -> None:
    """The follower names the inbox position it read a message at; if the engine's next
    position moved (a revert while it waited), the message is refused, not misplaced."""

    async def run() -> None:
        db, engine = open_engine(tmp_path / "db")
        with db:
            message = encode_l1_message(Deposit(address_of(key_of(1)), 1, 5))
            await engine.submit_l1_message(message, 0)
            with pytest.raises(InboxMovedError):
                await engine.submit_l1_message(message, 0)
            await engine.submit_l1_message(message, 1)
            assert engine.inbox_next == 2

    asyncio.run(run())
