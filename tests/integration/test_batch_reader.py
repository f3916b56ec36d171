"""
The batch reader on anvil: posted batches read back from their postBatch calldata alone,
byte for byte and verified against the Rollup; rejections and finalizations in L1 order
with the repost's new serial; the confirmation depth; pages and a cursor that resumes,
inside a block too; bounded getLogs windows; and a node that leaves out events, alters
calldata, or a batch posted through a contract, all refused.
"""

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pytest
from hexbytes import HexBytes
from web3.types import TxReceipt

from node.l1.batch_reader import (
    GENESIS_COUNTS,
    BatchMismatchError,
    BatchReader,
    ChainCounts,
    Cursor,
    Finalized,
    Posted,
    PostedBatch,
    Rejected,
    RollupEvent,
    UnsupportedPostingError,
    verify_batch,
)
from node.protocol.batch import Batch, encode_transactions
from node.protocol.crypto import keccak256
from node.protocol.transactions import MAX_TRANSACTION_BYTES, Message, Transfer
from tests.integration.l1_env import GAS, System
from tests.stf_env import USD, Exchange, btc, sats


def reader(system: System, confirmations: int = 0, **kw: Any) -> BatchReader:
    """A reader of ``system``'s Rollup from its deployment block."""
    return BatchReader(
        system.w3,
        system.rollup.address,
        confirmations,
        start_block=system.deployment.start_block,
        **kw,
    )


def signed_transactions(system: System, count: int, seed: int = 0) -> list[bytes]:
    """``count`` real signed transactions (orders, every fourth a transfer) in ``system``'s
    EIP-712 domain."""
    exchange = Exchange(domain=system.deployment.domain)
    traders = [exchange.new_trader(key_number=seed * 10 + i) for i in range(3)]
    out = []
    for i in range(count):
        trader = traders[i % len(traders)]
        message: Message
        if i % 4 == 3:
            message = Transfer(
                trader.id, traders[0].id, (i + 1) * USD, exchange.nonce(trader, None)
            )
        else:
            message = exchange.order_message(trader, 0, i % 2 == 0, btc(60_000 - i), sats(0.1))
        out.append(exchange.sign(trader.key, message))
    return out


def post(system: System, transactions: Sequence[bytes], **kw: Any) -> TxReceipt:
    """Post the next batch (parent root chained from the Rollup) with ``transactions``."""
    return system.post(list(transactions), **kw)


def mine(system: System, blocks: int) -> None:
    """Mine ``blocks`` empty blocks."""
    for _ in range(blocks):
        system.chain.anvil.rpc("evm_mine")


def spy(monkeypatch: pytest.MonkeyPatch, batches: BatchReader) -> list[tuple[int, int]]:
    """Record the block range of every getLogs window ``batches`` fetches."""
    calls: list[tuple[int, int]] = []
    original = batches.fetch

    def fetch(from_block: int, to_block: int) -> list[RollupEvent]:
        calls.append((from_block, to_block))
        return original(from_block, to_block)

    monkeypatch.setattr(batches, "fetch", fetch)
    return calls


def tamper(
    monkeypatch: pytest.MonkeyPatch,
    batches: BatchReader,
    change: Callable[[list[RollupEvent]], list[RollupEvent]],
) -> None:
    """Make ``batches``'s node answer every getLogs window with ``change(events)``."""
    original = batches.fetch
    monkeypatch.setattr(batches, "fetch", lambda a, b: change(original(a, b)))


def everything(batches: BatchReader) -> list[Any]:
    """Read until nothing more is confirmed."""
    items: list[Any] = []
    while page := batches.read(100):
        items.extend(page)
    return items


# reading back -------------------------------------------------------------------------


def test_posted_batches_read_back_byte_exact_and_verified(system: System) -> None:
    """Three batches (signed orders, an empty and a 256-byte transaction, inbox messages
    consumed in two of them) come back from the calldata exactly as posted, with the
    Rollup's serials, header hashes and postedAt, and their L1 block and transaction."""
    system.stake()
    alice, bob = system.users[:2]
    system.deposit(alice, 5 * USD)
    system.deposit(bob, 7 * USD)
    genesis = system.parameters.genesis_root
    plans = [
        (signed_transactions(system, 5), 1),
        ([b"", b"\x01", b"\xff" * MAX_TRANSACTION_BYTES], 1),
        (signed_transactions(system, 12, seed=1), 2),
    ]
    receipts, timestamps, post_roots = [], [], []
    for n, (transactions, inbox_end) in enumerate(plans):
        timestamp = system.chain.now() + 1
        post_root = keccak256(b"root after batch %d" % n)
        receipts.append(
            post(system, transactions, inbox_end=inbox_end, post_root=post_root, at=timestamp)
        )
        timestamps.append(timestamp)
        post_roots.append(post_root)

    batches = reader(system)
    items = batches.read(100)
    read = [item for item in items if isinstance(item, PostedBatch)]

    assert read == items
    assert [item.index for item in read] == [0, 1, 2]
    parent, inbox_start = genesis, 0
    for n, (item, (transactions, inbox_end)) in enumerate(zip(read, plans, strict=True)):
        assert item.batch == Batch(
            index=n,
            parent_root=parent,
            timestamp=timestamps[n],
            inbox_start=inbox_start,
            inbox_end=inbox_end,
            post_root=post_roots[n],
            transactions=tuple(transactions),
        )
        record = system.batch(n)
        assert item.serial == record["serial"] == n + 1
        assert item.header_hash == system.rollup.functions.headerHash(n).call()
        assert item.header_hash == item.batch.header().hash()
        assert item.posted_at == record["postedAt"]
        assert item.posted_at == system.w3.eth.get_block(receipts[n]["blockNumber"])["timestamp"]
        assert item.l1_block == receipts[n]["blockNumber"]
        assert item.l1_tx_hash == bytes(receipts[n]["transactionHash"])
        tx = system.w3.eth.get_transaction(receipts[n]["transactionHash"])
        assert encode_transactions(item.batch.transactions) in bytes(tx["input"])
        parent, inbox_start = post_roots[n], inbox_end
    assert batches.counts == ChainCounts(3, 3, 0)
    assert batches.read(100) == []


def test_an_empty_rollup_reads_as_nothing(system: System) -> None:
    """Nothing posted: nothing to read, and the counters are the genesis ones."""
    batches = reader(system)
    assert batches.read(10) == []
    assert batches.poll(10) == []
    assert batches.counts == GENESIS_COUNTS


def test_posts_newer_than_the_confirmation_depth_are_held_back(system: System) -> None:
    """With 3 confirmations a batch posted in block B is read only once B <= latest - 3."""
    system.stake()
    batches = reader(system, confirmations=3)
    receipt = post(system, signed_transactions(system, 2))
    posted_in = receipt["blockNumber"]
    assert batches.confirmed_head() == posted_in - 3
    assert batches.read(10) == []
    mine(system, 2)
    assert batches.read(10) == []
    assert batches.events(posted_in, posted_in + 5) == []
    mine(system, 1)
    (item,) = batches.read(10)
    assert isinstance(item, PostedBatch) and item.l1_block == posted_in
    assert batches.cursor == Cursor(posted_in + 1)


# rejections and finality --------------------------------------------------------------


def test_a_rejection_then_a_repost_reads_as_rejected_then_posted_with_a_new_serial(
    system: System,
) -> None:
    """Batches 0..2 posted, 1..2 rejected (by the DisputeGame, impersonated), batch 1 posted
    again and everything finalized: the events come in that order, the rejected post still
    decodes (checked against its event), and the repost carries serial 4 and new data."""
    system.stake()
    chain, user = system.chain, system.users[0]
    first = [signed_transactions(system, 2, seed=s) for s in range(3)]
    for transactions in first:
        post(system, transactions)
    game = chain.impersonate(system.game.address)
    rejection = system.send(system.rollup.functions.rejectBatch(1, user), game)
    system.stake()
    repost = signed_transactions(system, 3, seed=7)
    post(system, repost)
    finalization = system.finalize(1)

    batches = reader(system)
    items = everything(batches)

    kinds = [type(item).__name__ for item in items]
    assert kinds == ["PostedBatch"] * 3 + ["Rejected", "PostedBatch"] + ["Finalized"] * 2
    assert [(i.index, i.serial) for i in items if isinstance(i, PostedBatch)] == [
        (0, 1),
        (1, 2),
        (2, 3),
        (1, 4),
    ]
    rejected = items[3]
    assert isinstance(rejected, Rejected)
    assert (rejected.from_index, rejected.to_index, rejected.winner) == (1, 3, user)
    assert rejected.reward == system.parameters.sequencer_bond // 2
    assert rejected.l1_tx_hash == bytes(rejection["transactionHash"])
    gone, again = items[1], items[4]
    assert isinstance(gone, PostedBatch) and isinstance(again, PostedBatch)
    assert gone.batch.transactions == tuple(first[1])
    assert again.batch.transactions == tuple(repost)
    assert again.batch.parent_root == gone.batch.parent_root
    assert not system.rollup.functions.isAlive(1, 2).call()
    assert system.rollup.functions.isAlive(1, 4).call()
    finals = items[5:]
    assert [(f.index, f.serial) for f in finals if isinstance(f, Finalized)] == [(0, 1), (1, 4)]
    assert {f.l1_tx_hash for f in finals} == {bytes(finalization["transactionHash"])}
    assert [f.post_root for f in finals] == [system.batch(0)["postRoot"], again.batch.post_root]
    assert batches.counts == ChainCounts(next_index=2, serial_count=4, finalized_count=2)


# pages, the cursor and windows --------------------------------------------------------


def test_pages_resume_where_the_last_one_stopped_even_inside_a_block(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of 2 give the same items as one read, each getLogs window fetched once; a new
    reader given the saved cursor and counts resumes exactly, also from the middle of the
    block where one finalize emitted three events; without counts it reads them from the
    Rollup."""
    system.stake()
    for seed in range(4):
        post(system, signed_transactions(system, 2, seed=seed))
    system.finalize(2)  # three BatchFinalized in one block
    whole = everything(reader(system))
    assert len(whole) == 7

    batches = reader(system)
    calls = spy(monkeypatch, batches)
    pages = [batches.read(2) for _ in range(4)]
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert [item for page in pages for item in page] == whole
    assert len(calls) == 1  # one window, its events handed out page by page
    assert batches.read(2) == []

    for cut in range(1, 7):
        first = reader(system)
        assert first.read(cut) == whole[:cut]
        resumed = reader(system, cursor=first.cursor, counts=first.counts)
        assert everything(resumed) == whole[cut:]
    # a cursor at the start of a block needs no counts: they are read from the Rollup
    block = whole[4].l1_block
    resumed = reader(system, cursor=Cursor(block))
    assert everything(resumed) == whole[4:]
    with pytest.raises(ValueError, match="counts"):
        reader(system, cursor=whole[4].cursor)

    post(system, signed_transactions(system, 1, seed=9))
    (latest,) = batches.read(5)
    assert isinstance(latest, PostedBatch) and (latest.index, latest.serial) == (4, 5)
    assert calls[-1][0] == whole[-1].l1_block + 1


def test_a_range_longer_than_the_getlogs_window_is_read_in_several_windows(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a 2-block window the reader walks the chain window by window, never asking for
    more than 2 blocks, and returns the same items as one wide read; events() too."""
    system.stake()
    for seed in range(4):
        post(system, signed_transactions(system, 1, seed=seed))
        mine(system, 1)
    wide = everything(reader(system))
    narrow = reader(system, max_block_range=2)
    calls = spy(monkeypatch, narrow)
    assert everything(narrow) == wide
    assert len(calls) > 3
    assert all(1 <= high - low + 1 <= 2 for low, high in calls)
    start = system.deployment.start_block
    assert [low for low, _ in calls] == [start + 2 * i for i in range(len(calls))]
    assert calls[-1][1] == system.w3.eth.block_number
    head = system.w3.eth.block_number
    events = narrow.events(start, head + 10)
    assert [e.cursor for e in events] == [item.cursor for item in wide]
    assert all(isinstance(e, Posted) for e in events)


# what is refused ---------------------------------------------------------------------


def test_verify_batch_refuses_any_change_to_the_posted_data() -> None:
    """verify_batch accepts the batch a post announces and refuses it with one transaction
    changed, two swapped, one dropped, or another root, time or inbox range."""
    batch = Batch(3, b"\x01" * 32, 1_750_000_000, 4, 6, b"\x02" * 32, (b"\x0a", b"\x0b", b""))
    header = batch.header()
    posted = Posted(header, 7, header.hash(), 100, b"\x33" * 32, 0)
    verify_batch(batch, posted)
    changes: list[dict[str, Any]] = [
        {"transactions": (b"\x0a", b"\x0c", b"")},
        {"transactions": (b"\x0b", b"\x0a", b"")},
        {"transactions": (b"\x0a", b"\x0b")},
        {"post_root": b"\x03" * 32},
        {"parent_root": b"\x00" * 32},
        {"timestamp": batch.timestamp + 1},
        {"inbox_end": 5},
    ]
    for change in changes:
        with pytest.raises(BatchMismatchError):
            verify_batch(replace(batch, **change), posted)
    forged = replace(posted, header_hash=b"\x00" * 32)
    with pytest.raises(BatchMismatchError, match="hashes to"):
        verify_batch(batch, forged)


def test_altered_calldata_is_refused_and_the_cursor_stays(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that returns the posting transaction with one transaction of the batch changed
    (a well-formed postBatch call) is caught by the header hash; the read raises, the cursor
    does not move, and an honest answer then reads the batch."""
    system.stake()
    post(system, signed_transactions(system, 3))
    batches = reader(system)
    eth = system.w3.eth
    honest = eth.get_transaction

    def lying(tx_hash: Any) -> Any:
        tx = dict(honest(tx_hash))
        _, args = system.rollup.decode_function_input(tx["input"])
        listing = bytearray(args["transactions"])
        listing[-1] ^= 1  # a byte of the last signature
        args = {**args, "transactions": bytes(listing)}
        tx["input"] = HexBytes(system.rollup.encode_abi("postBatch", args=list(args.values())))
        return tx

    monkeypatch.setattr(eth, "get_transaction", lying)
    with pytest.raises(BatchMismatchError, match="differs from the BatchPosted event in tx_root"):
        batches.read(10)
    assert batches.cursor == Cursor(system.deployment.start_block)
    monkeypatch.setattr(eth, "get_transaction", honest)
    (item,) = batches.read(10)
    assert isinstance(item, PostedBatch) and item.serial == 1


def test_events_left_out_by_the_node_are_detected(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A post left out in the middle breaks the serial sequence; one left out at the end
    leaves the counters short of the Rollup's own."""
    system.stake()
    for seed in range(3):
        post(system, signed_transactions(system, 1, seed=seed))

    middle = reader(system)
    tamper(monkeypatch, middle, lambda events: [e for e in events if getattr(e, "serial", 0) != 2])
    with pytest.raises(BatchMismatchError, match="serial 2 expected"):
        middle.poll(10)

    last = reader(system)
    tamper(monkeypatch, last, lambda events: [e for e in events if getattr(e, "serial", 0) != 3])
    with pytest.raises(BatchMismatchError, match="left events out"):
        last.poll(10)
    assert last.cursor == Cursor(system.deployment.start_block)


def test_a_batch_posted_through_a_contract_is_unsupported(system: System) -> None:
    """When the sequencer is a contract that forwards postBatch (a multisig, say), the
    posting transaction is not a call of the Rollup: the reader says so plainly."""
    system.stake()
    rollup = bytes.fromhex(system.rollup.address[2:])
    # calldatacopy(0, 0, calldatasize); call(gas, rollup, 0, 0, calldatasize, 0, 0);
    # revert on failure
    forwarder = (
        bytes.fromhex("365f5f375f5f365f5f73") + rollup + bytes.fromhex("5af16026575f5ffd5b00")
    )
    system.chain.anvil.rpc("anvil_setCode", system.sequencer, "0x" + forwarder.hex())
    fn = system.post_batch(signed_transactions(system, 2))
    data = system.rollup.encode_abi("postBatch", args=list(fn.args))
    user = system.users[0]
    tx_hash = system.w3.eth.send_transaction(
        {"from": user, "to": system.sequencer, "data": HexBytes(data), "gas": GAS}
    )
    assert system.w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1
    assert system.rollup.functions.nextIndex().call() == 1

    batches = reader(system)
    (posted,) = batches.poll(10)
    assert isinstance(posted, Posted) and posted.l1_tx_hash == bytes(tx_hash)
    with pytest.raises(UnsupportedPostingError, match="only direct calls"):
        batches.decode(posted)
    with pytest.raises(UnsupportedPostingError):
        reader(system).read(10)
