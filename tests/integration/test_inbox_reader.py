"""
The L1 inbox reader on anvil: deposits and forced transactions read back from the logs
with the Bridge's exact bytes, times and accumulators; the confirmation depth; pages and
resumption; bounded getLogs windows and the binary search for a far message; logs that do
not add up to the Bridge's inbox and reorgs deeper than the confirmation depth refused; and
the forced-inclusion deadline judged by the Rollup's own postBatch.
"""

from collections.abc import Callable
from dataclasses import replace

import pytest
from web3.exceptions import Web3RPCError
from web3.types import TxReceipt

from node.l1.inbox_reader import (
    ZERO_ACCUMULATOR,
    InboxMessage,
    InboxMismatchError,
    InboxReader,
    InboxReorgError,
    deadline,
    must_consume,
    verify_messages,
)
from node.protocol.inbox import Deposit, ForcedTransaction, encode_l1_message, next_accumulator
from tests.integration.l1_env import System
from tests.stf_env import USD

Change = Callable[[list[InboxMessage]], list[InboxMessage]]


def reader(system: System, confirmations: int = 0, **kw: int) -> InboxReader:
    """A reader of ``system``'s Bridge from its deployment block."""
    return InboxReader(
        system.w3,
        system.bridge.address,
        confirmations,
        start_block=system.deployment.start_block,
        **kw,
    )


def force(system: System, user: str, transaction: bytes, **kw: int) -> TxReceipt:
    """Queue ``transaction`` through the inbox from ``user``."""
    return system.send(system.bridge.functions.forceTransaction(transaction), user, **kw)


def queue_messages(system: System, count: int) -> list[TxReceipt]:
    """``count`` messages, alternating deposits and forced transactions; their receipts."""
    receipts = []
    for i in range(count):
        user = system.users[i % len(system.users)]
        if i % 2 == 0:
            receipts.append(system.deposit(user, (i + 1) * USD))
        else:
            receipts.append(force(system, user, bytes([i + 1]) * (i + 1)))
    return receipts


def mine(system: System, blocks: int) -> None:
    """Mine ``blocks`` empty blocks."""
    for _ in range(blocks):
        system.chain.anvil.rpc("evm_mine")


def spy(monkeypatch: pytest.MonkeyPatch, inbox: InboxReader) -> list[tuple[int, int]]:
    """Record the block range of every getLogs window ``inbox`` fetches."""
    calls: list[tuple[int, int]] = []
    original = inbox.fetch

    def fetch(from_block: int, to_block: int) -> list[InboxMessage]:
        calls.append((from_block, to_block))
        return original(from_block, to_block)

    monkeypatch.setattr(inbox, "fetch", fetch)
    return calls


def tamper(monkeypatch: pytest.MonkeyPatch, inbox: InboxReader, change: Change) -> None:
    """Make ``inbox``'s log fetch pass every window through ``change`` (a lying node)."""
    original = inbox.fetch

    def fetch(from_block: int, to_block: int) -> list[InboxMessage]:
        return change(original(from_block, to_block))

    monkeypatch.setattr(inbox, "fetch", fetch)


# reading -----------------------------------------------------------------------------


def test_deposits_and_forced_transactions_read_back_as_the_bridge_queued_them(
    system: System,
) -> None:
    """Deposits from several accounts and forced transactions come back in inbox order with
    the exact message bytes, the Bridge's timestamps and accumulators, and their L1 block
    and transaction."""
    alice, bob, carol = system.users[:3]
    plan: list[tuple[str, Deposit | ForcedTransaction]] = [
        (alice, Deposit(bytes.fromhex(alice[2:]), 1, 5 * USD)),
        (bob, Deposit(bytes.fromhex(bob[2:]), 2, 7 * USD)),
        (carol, ForcedTransaction(b"\x02" + b"\xab" * 80)),
        (alice, Deposit(bytes.fromhex(alice[2:]), 1, 11 * USD)),
        (bob, ForcedTransaction(b"\x07")),
        (carol, Deposit(bytes.fromhex(carol[2:]), 3, (1 << 64) - 1)),
    ]
    receipts = []
    for user, queued in plan:
        if isinstance(queued, Deposit):
            receipts.append(system.deposit(user, queued.amount))
        else:
            receipts.append(force(system, user, queued.transaction))

    messages = reader(system).read(0, 100)

    assert [m.index for m in messages] == list(range(len(plan)))
    previous = ZERO_ACCUMULATOR
    for message, (_, expected), receipt in zip(messages, plan, receipts, strict=True):
        assert message.data == encode_l1_message(expected)
        assert message.decode() == expected
        block = system.w3.eth.get_block(receipt["blockNumber"])
        assert message.timestamp == block["timestamp"]
        assert message.timestamp == system.bridge.functions.messageTimestamp(message.index).call()
        assert message.accumulator == system.bridge.functions.accumulator(message.index).call()
        assert message.accumulator == next_accumulator(previous, message.data, message.timestamp)
        assert system.bridge.functions.verifyMessage(message.index, message.data).call()
        assert message.l1_block == receipt["blockNumber"]
        assert message.l1_tx_hash == bytes(receipt["transactionHash"])
        previous = message.accumulator
    assert [m.data for m in messages] == system.messages()


def test_an_empty_inbox_reads_as_nothing(system: System) -> None:
    """No message queued: nothing to read, from any index."""
    inbox = reader(system)
    assert inbox.read(0, 10) == []
    assert inbox.read(5, 10) == []


def test_messages_newer_than_the_confirmation_depth_are_held_back(system: System) -> None:
    """With 3 confirmations a message queued in block B is read only once B <= latest - 3."""
    inbox = reader(system, confirmations=3)
    receipt = system.deposit(system.users[0], 9 * USD)
    queued_in = receipt["blockNumber"]
    assert system.w3.eth.block_number == queued_in
    assert inbox.confirmed_head() == queued_in - 3
    assert inbox.read(0, 10) == []
    mine(system, 2)
    assert inbox.confirmed_head() == queued_in - 1
    assert inbox.read(0, 10) == []
    mine(system, 1)
    assert inbox.confirmed_head() == queued_in
    (message,) = inbox.read(0, 10)
    assert message.l1_block == queued_in
    assert message.accumulator == system.bridge.functions.accumulator(0).call()


def test_pages_resume_where_the_last_one_stopped(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading in pages of 2 gives the same messages as one read; later pages scan only
    blocks after the ones already read; a fresh reader can start at any index."""
    queue_messages(system, 5)
    everything = reader(system).read(0, 100)
    assert len(everything) == 5

    inbox = reader(system)
    calls = spy(monkeypatch, inbox)
    pages = [inbox.read(0, 2), inbox.read(2, 2), inbox.read(4, 2), inbox.read(5, 2)]
    assert [len(page) for page in pages] == [2, 2, 1, 0]
    assert [m for page in pages for m in page] == everything
    # each page scans from the block of its first message; past the last, nothing is left
    head = system.w3.eth.block_number
    firsts = [everything[i].l1_block for i in (0, 2, 4)]
    assert calls == [(system.deployment.start_block, head), (firsts[1], head), (firsts[2], head)]
    more = queue_messages(system, 2)
    assert [m.index for m in inbox.read(5, 10)] == [5, 6]
    assert calls[-1] == (head + 1, more[-1]["blockNumber"])

    for start in (1, 3, 4):
        assert reader(system).read(start, 100) == everything[start:] + inbox.read(5, 10)


def test_a_range_longer_than_the_getlogs_window_is_read_in_several_windows(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a 2-block window the reader walks the chain window by window, never asking for
    more than 2 blocks, and returns the same inbox as one wide read."""
    queue_messages(system, 6)
    wide = reader(system).read(0, 100)
    narrow = reader(system, max_block_range=2)
    calls = spy(monkeypatch, narrow)
    assert narrow.read(0, 100) == wide
    assert len(calls) > 3
    assert all(1 <= high - low + 1 <= 2 for low, high in calls)
    assert [low for low, _ in calls] == [
        system.deployment.start_block + 2 * i for i in range(len(calls))
    ]
    assert calls[-1][1] == system.w3.eth.block_number


def test_a_far_message_is_found_by_binary_search_or_by_scanning(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh reader asked for the last of many messages finds its block with a binary
    search of messageCount() instead of scanning every 1-block window; when the node
    refuses historical state it scans, and gets the same message."""
    queue_messages(system, 8)
    expected = reader(system).read(7, 1)
    blocks = system.w3.eth.block_number - system.deployment.start_block + 1

    searching = reader(system, max_block_range=1)
    calls = spy(monkeypatch, searching)
    assert searching.read(7, 1) == expected
    assert calls == [(expected[0].l1_block, expected[0].l1_block)]

    scanning = reader(system, max_block_range=1)

    def refuse(block: int) -> int:
        raise Web3RPCError("missing trie node")

    monkeypatch.setattr(scanning, "_count_at", refuse)
    calls = spy(monkeypatch, scanning)
    assert scanning.read(7, 1) == expected
    assert len(calls) == expected[0].l1_block - system.deployment.start_block + 1
    assert len(calls) > blocks // 2

    # a message not queued yet: the search says so without scanning
    ahead = reader(system, max_block_range=1)
    calls = spy(monkeypatch, ahead)
    assert ahead.read(8, 1) == []
    assert calls == []


def test_a_hint_saves_the_search_and_a_wrong_one_is_forgotten(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader told the block of a message it will read (as a restarted sequencer would
    be) reads it with one getLogs call, even from a node without historical state; a hint
    that points past the message raises a gap once and is then forgotten."""
    queue_messages(system, 8)
    everything = reader(system).read(0, 100)

    def refuse(block: int) -> int:
        raise Web3RPCError("missing trie node")

    hinted = reader(system, max_block_range=1)
    monkeypatch.setattr(hinted, "_count_at", refuse)
    hinted.hint(6, everything[6].l1_block)
    calls = spy(monkeypatch, hinted)
    assert hinted.read(6, 1) == everything[6:7]
    assert calls == [(everything[6].l1_block, everything[6].l1_block)]

    misled = reader(system)
    misled.hint(5, everything[7].l1_block)
    with pytest.raises(InboxMismatchError, match="message 5 expected"):
        misled.read(5, 100)
    assert misled.read(5, 100) == everything[5:]


# refusing what is not the Bridge's inbox ---------------------------------------------


def test_a_tampered_message_is_refused(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node that alters a message's bytes or time, drops one, or makes up a whole
    self-consistent inbox is caught by the accumulator chain and its anchors."""
    queue_messages(system, 4)
    honest = reader(system).read(0, 100)

    def altered_bytes(messages: list[InboxMessage]) -> list[InboxMessage]:
        return [replace(m, data=m.data + b"\x00") if m.index == 2 else m for m in messages]

    def altered_time(messages: list[InboxMessage]) -> list[InboxMessage]:
        return [replace(m, timestamp=m.timestamp + 1) if m.index == 1 else m for m in messages]

    def dropped(messages: list[InboxMessage]) -> list[InboxMessage]:
        return [m for m in messages if m.index != 1]

    def made_up(messages: list[InboxMessage]) -> list[InboxMessage]:
        forged, previous = [], ZERO_ACCUMULATOR
        for m in messages:
            data = encode_l1_message(ForcedTransaction(b"forged"))
            previous = next_accumulator(previous, data, m.timestamp)
            forged.append(replace(m, data=data, accumulator=previous))
        return forged

    for change, match in (
        (altered_bytes, r"message 2 .* does not match its accumulator"),
        (altered_time, r"message 1 .* does not match its accumulator"),
        (dropped, "message 1 expected"),
        (made_up, "the Bridge holds"),
    ):
        with monkeypatch.context() as patch:
            inbox = reader(system)
            tamper(patch, inbox, change)
            with pytest.raises(InboxMismatchError, match=match):
                inbox.read(0, 100)
    # the same reader recovers once the node tells the truth again
    inbox = reader(system)
    with monkeypatch.context() as patch:
        tamper(patch, inbox, dropped)
        with pytest.raises(InboxMismatchError):
            inbox.read(0, 100)
    assert inbox.read(0, 100) == honest


def test_a_message_left_out_at_the_end_is_found_after_the_gap_shows(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that leaves out the newest message gives a shorter but true inbox; once a
    later message reveals the gap the read raises, and the next read scans again from the
    last message it is sure of."""
    queue_messages(system, 4)
    honest = reader(system).read(0, 100)
    inbox = reader(system)
    with monkeypatch.context() as patch:
        tamper(patch, inbox, lambda messages: [m for m in messages if m.index != 3])
        assert inbox.read(0, 100) == honest[:3]
    queue_messages(system, 1)
    with pytest.raises(InboxMismatchError, match="message 3 expected"):
        inbox.read(3, 100)
    assert [m.index for m in inbox.read(3, 100)] == [3, 4]
    assert inbox.read(3, 1) == honest[3:]


def test_verify_messages_checks_order_and_every_accumulator() -> None:
    """The pure check: contiguous indices from start_index, each accumulator chained from
    the previous one."""
    previous = b"\x11" * 32
    messages = []
    accumulator = previous
    for index, data in enumerate([b"\x01a", b"\x01b", b"\x01c"], start=10):
        accumulator = next_accumulator(accumulator, data, 1_000 + index)
        messages.append(InboxMessage(index, data, 1_000 + index, accumulator, 7, b"\x00" * 32))
    verify_messages(messages, 10, previous)
    verify_messages([], 10, previous)
    with pytest.raises(InboxMismatchError, match=r"message 10 .* does not match"):
        verify_messages(messages, 10, b"\x12" * 32)
    with pytest.raises(InboxMismatchError, match="message 9 expected, got message 10"):
        verify_messages(messages, 9, previous)
    with pytest.raises(InboxMismatchError, match="message 11 expected, got message 12"):
        verify_messages([messages[0], messages[2]], 10, previous)
    swapped = [messages[0], replace(messages[1], data=b"\x01x"), messages[2]]
    with pytest.raises(InboxMismatchError, match=r"message 11 .* does not match"):
        verify_messages(swapped, 10, previous)


def test_a_reorg_deeper_than_the_confirmations_is_detected(system: System) -> None:
    """If L1 replaces messages the reader already returned (a reorg deeper than its
    confirmation depth), reading them or anything after them raises."""
    alice = system.users[0]
    system.deposit(alice, 1 * USD)
    snapshot = system.chain.anvil.rpc("evm_snapshot")
    system.deposit(alice, 2 * USD)
    inbox = reader(system)
    consumed = inbox.read(0, 10)[-1]
    assert consumed.index == 1
    assert system.chain.anvil.rpc("evm_revert", snapshot) is True
    system.deposit(alice, 3 * USD)  # another message 1
    system.deposit(alice, 4 * USD)
    with pytest.raises(InboxReorgError, match="message 1 changed"):
        inbox.read(1, 10)
    with pytest.raises(InboxReorgError, match="message 1 changed"):
        inbox.read(2, 10)
    assert [m.index for m in reader(system).read(0, 10)] == [0, 1, 2]
    # a restarted reader told what was consumed before sees it too
    restarted = reader(system)
    restarted.hint(1, consumed.l1_block, consumed.accumulator)
    with pytest.raises(InboxReorgError, match="message 1 changed"):
        restarted.read(2, 10)


# the forced-inclusion deadline ------------------------------------------------------


def test_deadline_is_the_last_second_the_rollup_lets_a_message_wait(system: System) -> None:
    """A batch leaving a message unconsumed lands at deadline(message) and is refused one
    second later with ForcedInclusionOverdue; must_consume says how many a batch landing
    at a given time must take, and a batch taking that many is accepted."""
    system.stake()
    chain, user = system.chain, system.users[0]
    delay = system.parameters.forced_inclusion_delay
    t = chain.now() + 10
    force(system, user, b"\x01", at=t)
    force(system, user, b"\x02", at=t + 100)
    first, second = reader(system).read(0, 10)
    assert (first.timestamp, second.timestamp) == (t, t + 100)
    assert deadline(first, delay) == t + delay - 1
    assert deadline(second, delay) == t + 100 + delay - 1

    assert must_consume([first, second], deadline(first, delay), delay) == 0
    system.post(inbox_end=0, timestamp=t, at=deadline(first, delay))
    assert must_consume([first, second], deadline(first, delay) + 1, delay) == 1
    late = system.post_batch(inbox_end=0, timestamp=t)
    system.reverts(late, system.sequencer, "ForcedInclusionOverdue", 0, t + delay, at=t + delay)
    system.post(inbox_end=1, timestamp=t, at=t + delay + 1)

    # message 1 alone is left: the same rule from its own time
    assert must_consume([second], deadline(second, delay), delay) == 0
    system.post(inbox_end=1, timestamp=t, at=deadline(second, delay))
    land_at = deadline(second, delay) + 1
    assert must_consume([second], land_at, delay) == 1
    late = system.post_batch(inbox_end=1, timestamp=t)
    system.reverts(late, system.sequencer, "ForcedInclusionOverdue", 1, land_at, at=land_at)
    system.post(inbox_end=1 + must_consume([second], land_at + 1, delay), at=land_at + 1)
    assert system.batch(3)["inboxEnd"] == 2


def test_must_consume_takes_every_message_due_in_order() -> None:
    """must_consume counts up to the last message due before the landing time."""
    delay = 600

    def message(index: int, timestamp: int) -> InboxMessage:
        return InboxMessage(index, b"\x01", timestamp, b"\x00" * 32, 0, b"\x00" * 32)

    messages = [message(0, 1_000), message(1, 1_000), message(2, 1_050), message(3, 2_000)]
    assert must_consume([], 10**9, delay) == 0
    assert must_consume(messages, 1_599, delay) == 0
    assert must_consume(messages, 1_600, delay) == 2
    assert must_consume(messages, 1_649, delay) == 2
    assert must_consume(messages, 1_650, delay) == 3
    assert must_consume(messages, 2_599, delay) == 3
    assert must_consume(messages, 2_600, delay) == 4
