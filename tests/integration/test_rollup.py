"""
The Rollup on anvil: the sequencer's stake, postBatch's header checks and its transaction
root (differential against node/protocol/batch.py, valid and malformed lists), the
forced-inclusion delay, finalization in order after the window, the open-game count the
DisputeGame keeps in each batch record, and the credit ledger.
"""

import random

import pytest
from rlp.codec import length_prefix
from web3.contract import Contract
from web3.exceptions import ContractCustomError
from web3.types import TxParams

from node.l1.deploy import bind, deploy_contract
from node.protocol.batch import (
    BatchHeader,
    decode_batch,
    encode_transactions,
    transaction_proof,
    transactions_root,
)
from node.protocol.crypto import keccak256
from node.protocol.encoding import encode_items, encode_uint
from node.protocol.errors import WireError
from node.protocol.inbox import Deposit, encode_l1_message
from tests.integration.l1_env import (
    GAS,
    TRANSACTION,
    Chain,
    System,
    alphabet_step,
    error_data,
    events,
)
from tests.stf_env import USD, Exchange, btc, sats


@pytest.fixture(scope="module")
def harness(chain: Chain) -> Contract:
    """LibBatch exposed (contracts/test/BatchHarness.sol)."""
    address = deploy_contract(chain.w3, chain.accounts[0], "BatchHarness")
    return bind(chain.w3, "BatchHarness", address)


# the stake ---------------------------------------------------------------------------


def test_stake_is_the_sequencers_and_nonzero(system: System) -> None:
    """stake() adds to sequencerStake (Staked event); others and zero values are refused."""
    stake = system.rollup.functions.stake
    system.reverts(stake(), system.users[0], "NotSequencer", system.users[0], value=10)
    system.reverts(stake(), system.sequencer, "ZeroStake")
    receipt = system.stake(3)
    assert events(system.rollup, receipt, "Staked") == [
        {"sequencer": system.sequencer, "amount": 3, "total": 3}
    ]
    system.stake(4)
    assert system.rollup.functions.sequencerStake().call() == 7


def test_stake_fits_in_128_bits(system: System) -> None:
    """The stake shares a word with the burned total: a stake past 2^128 - 1 wei (more than
    all the ETH there is; anvil can mint it) reverts SafeCastOverflowedUintDowncast."""
    half = 1 << 127  # anvil refuses a transaction value of 2^128 or more
    system.chain.impersonate(system.sequencer, balance=4 * half)
    system.stake(half)
    system.stake(half - 1)
    assert system.rollup.functions.sequencerStake().call() == 2 * half - 1
    fn = system.rollup.functions.stake()
    system.reverts(fn, system.sequencer, "SafeCastOverflowedUintDowncast", 128, 2 * half, value=1)


def test_posting_needs_the_bond_staked(system: System) -> None:
    """postBatch reverts InsufficientStake until the stake reaches sequencerBond."""
    bond = system.parameters.sequencer_bond
    system.reverts(system.post_batch(), system.sequencer, "InsufficientStake", 0, bond)
    system.stake(bond - 1)
    system.reverts(system.post_batch(), system.sequencer, "InsufficientStake", bond - 1, bond)
    system.stake(1)
    system.send(system.post_batch(), system.sequencer)
    assert system.rollup.functions.nextIndex().call() == 1


def test_only_the_sequencer_posts(system: System) -> None:
    """postBatch from anyone else reverts NotSequencer."""
    system.stake()
    user = system.users[0]
    system.reverts(system.post_batch(), user, "NotSequencer", user)


def test_unstake_only_when_every_batch_is_final(system: System) -> None:
    """unstake reverts BatchesPending while a batch is not final; afterwards it returns the
    whole stake in ETH, and posting needs a new stake."""
    chain = system.chain
    system.stake()
    system.post()
    unstake = system.rollup.functions.unstake
    system.reverts(unstake(), system.sequencer, "BatchesPending", 1)
    system.reverts(unstake(), system.users[0], "NotSequencer", system.users[0])
    system.finalize(0)
    before = chain.balance(system.sequencer)
    receipt = system.send(unstake(), system.sequencer)
    bond = system.parameters.sequencer_bond
    assert events(system.rollup, receipt, "Unstaked") == [
        {"sequencer": system.sequencer, "amount": bond}
    ]
    assert chain.balance(system.sequencer) == before + bond - chain.cost(receipt)
    assert chain.balance(system.rollup.address) == 0
    system.reverts(system.post_batch(), system.sequencer, "InsufficientStake", 0, bond)


# posting -----------------------------------------------------------------------------


def test_post_batch_records_and_announces_the_header(system: System) -> None:
    """The stored batch and BatchPosted hold the header; the header hash is
    BatchHeader.hash(); views follow the chain."""
    system.stake()
    genesis = b"\x42" * 32
    user = system.users[0]
    system.deposit(user, 5 * USD)
    system.send(system.bridge.functions.forceTransaction(b"\x05\x06"), user)
    transactions = [b"\x01\x02", b"", b"\x7f", bytes(range(200))]
    timestamp = system.chain.now()
    post_root = keccak256(b"state after batch 0")
    at = timestamp + 5
    receipt = system.post(
        transactions, post_root=post_root, inbox_end=2, timestamp=timestamp, at=at
    )
    header = BatchHeader(0, genesis, timestamp, 0, 2, 4, transactions_root(transactions), post_root)
    (posted,) = events(system.rollup, receipt, "BatchPosted")
    assert posted == {
        "index": 0,
        "serial": 1,
        "headerHash": header.hash(),
        "parentRoot": genesis,
        "timestamp": timestamp,
        "inboxStart": 0,
        "inboxEnd": 2,
        "txCount": 4,
        "txRoot": header.tx_root,
        "postRoot": post_root,
    }
    assert system.batch(0) == {
        "postRoot": post_root,
        "txRoot": header.tx_root,
        "timestamp": timestamp,
        "inboxStart": 0,
        "inboxEnd": 2,
        "postedAt": at,
        "serial": 1,
        "txCount": 4,
        "openGames": 0,
    }
    rollup = system.rollup.functions
    assert rollup.headerHash(0).call() == header.hash()
    assert rollup.parentRootOf(0).call() == genesis
    assert rollup.parentRootOf(1).call() == post_root
    assert (rollup.nextIndex().call(), rollup.serialCount().call()) == (1, 1)
    assert (rollup.finalizedCount().call(), rollup.isFinal(0).call()) == (0, False)
    assert rollup.isAlive(0, 1).call() and not rollup.isAlive(0, 2).call()
    assert not rollup.isAlive(1, 0).call()
    # batch 1 continues from batch 0: inboxStart = 2, parent = batch 0's post root
    system.deposit(user, 6 * USD)
    receipt = system.post([], timestamp=timestamp)  # an inbox-only batch, same timestamp
    (posted,) = events(system.rollup, receipt, "BatchPosted")
    assert (posted["inboxStart"], posted["inboxEnd"], posted["txCount"]) == (2, 3, 0)
    assert posted["parentRoot"] == post_root and posted["serial"] == 2
    assert posted["txRoot"] == transactions_root([])
    deposit = encode_l1_message(Deposit(bytes.fromhex(user[2:]), 1, 6 * USD))
    assert system.messages()[2] == deposit


def test_post_batch_checks_index_and_parent_root(system: System) -> None:
    """A wrong index reverts WrongIndex(expected, index); a wrong parent WrongParentRoot."""
    system.stake()
    system.post()
    seq = system.sequencer
    system.reverts(system.post_batch(index=0), seq, "WrongIndex", 1, 0)
    system.reverts(system.post_batch(index=2), seq, "WrongIndex", 1, 2)
    parent = system.rollup.functions.parentRootOf(1).call()
    wrong = b"\x13" * 32
    system.reverts(system.post_batch(parent_root=wrong), seq, "WrongParentRoot", parent, wrong)


def test_post_batch_timestamp_is_monotonic_and_not_ahead_of_l1(system: System) -> None:
    """previous timestamp <= timestamp <= block.timestamp, both ends inclusive."""
    system.stake()
    chain, seq = system.chain, system.sequencer
    t = chain.now() + 10
    system.reverts(system.post_batch(timestamp=t + 1), seq, "InvalidTimestamp", t + 1, 0, t, at=t)
    system.post(timestamp=t, at=t + 1)  # exactly the block time is fine
    system.reverts(
        system.post_batch(timestamp=t - 1), seq, "InvalidTimestamp", t - 1, t, t + 2, at=t + 2
    )
    system.post(timestamp=t, at=t + 3)  # equal to the previous batch's is fine
    assert system.rollup.functions.nextIndex().call() == 2


def test_post_batch_inbox_end_within_the_inbox(system: System) -> None:
    """inboxEnd beyond messageCount, or below the previous batch's inboxEnd, reverts
    InvalidInboxEnd(inboxEnd, inboxStart, messageCount)."""
    system.stake()
    user, seq = system.users[0], system.sequencer
    for _ in range(3):
        system.send(system.bridge.functions.forceTransaction(b"\x01"), user)
    system.reverts(system.post_batch(inbox_end=4), seq, "InvalidInboxEnd", 4, 0, 3)
    system.post(inbox_end=2)
    system.reverts(system.post_batch(inbox_end=1), seq, "InvalidInboxEnd", 1, 2, 3)
    system.post(inbox_end=2)  # consuming nothing new is fine
    assert system.batch(1)["inboxStart"] == 2


def test_a_batch_needs_a_step(system: System) -> None:
    """No inbox message and no transaction: EmptyBatch."""
    system.stake()
    system.reverts(system.post_batch([]), system.sequencer, "EmptyBatch")
    system.send(system.bridge.functions.forceTransaction(b"\x01"), system.users[0])
    system.post([])  # one inbox step is a batch


def test_a_batch_has_fewer_than_2_pow_32_steps(system: System) -> None:
    """Inbox messages plus transactions above 2^32 - 1 revert TooManySteps (the inbox length
    is set through anvil, after checking its storage slot)."""
    system.stake()
    chain, bridge = system.chain, system.bridge.address
    system.send(system.bridge.functions.forceTransaction(b"\x01"), system.users[0])
    slot = 3  # accountOf, ownerOf, nextAccountId, then the inbox array's length
    assert int(chain.w3.eth.get_storage_at(bridge, slot).hex(), 16) == 1
    count = (1 << 32) + 1
    chain.anvil.rpc("anvil_setStorageAt", bridge, hex(slot), "0x" + f"{count:064x}")
    assert system.bridge.functions.messageCount().call() == count
    fn = system.post_batch([b"\x01"], inbox_end=count)
    system.reverts(fn, system.sequencer, "TooManySteps", count + 1)


def test_forced_inclusion_delay_is_enforced(system: System) -> None:
    """A batch that leaves a message unconsumed passes until the message's deadline
    (queued time + forcedInclusionDelay) and reverts ForcedInclusionOverdue from that second
    on; consuming it passes."""
    system.stake()
    chain, seq, user = system.chain, system.sequencer, system.users[0]
    delay = system.parameters.forced_inclusion_delay
    t = chain.now() + 10
    system.send(system.bridge.functions.forceTransaction(b"\x01"), user, at=t)
    system.send(system.bridge.functions.forceTransaction(b"\x02"), user, at=t + 100)
    skip_all = system.post_batch(inbox_end=0, timestamp=t)
    system.send(skip_all, seq, at=t + delay - 1)  # the last second before the deadline
    late = system.post_batch(inbox_end=0, timestamp=t)
    system.reverts(late, seq, "ForcedInclusionOverdue", 0, t + delay, at=t + delay)
    # consuming message 0 but not message 1 is fine until message 1's own deadline
    system.post(inbox_end=1, timestamp=t, at=t + delay + 1)
    late = system.post_batch(inbox_end=1, timestamp=t)
    system.reverts(late, seq, "ForcedInclusionOverdue", 1, t + 100 + delay, at=t + 100 + delay)
    system.post(inbox_end=2, timestamp=t, at=t + 100 + delay + 1)
    assert system.batch(2)["inboxEnd"] == 2


# the transaction list ----------------------------------------------------------------


def python_transactions(listing: bytes) -> tuple[bytes, ...] | None:
    """What node.protocol.batch.decode_batch makes of ``listing`` as a batch's transaction
    list: the transactions, or None if it rejects the batch."""
    header = [encode_uint(0), b"\x00" * 32, b"", b"", b"", b"\x00" * 32]
    body = b"".join(encode_items(item) for item in header) + listing  # type: ignore[arg-type]
    try:
        return decode_batch(length_prefix(len(body), 0xC0) + body).transactions
    except WireError:
        return None


def random_transactions(rng: random.Random, count: int) -> list[bytes]:
    """Byte strings around every RLP length boundary."""
    lengths = [0, 1, 1, 2, 55, 56, 57, 79, 118, 255, 256]
    out = []
    for _ in range(count):
        length = rng.choice(lengths) if rng.random() < 0.5 else rng.randrange(257)
        if length == 1:
            out.append(bytes([rng.choice([0x00, 0x7F, 0x80, 0xFF, rng.randrange(256)])]))
        else:
            out.append(rng.randbytes(length))
    return out


def contract_transactions(harness: Contract, listing: bytes) -> tuple[bytes, int] | str:
    """LibBatch.transactionsRoot of ``listing``: (root, count), or the revert data."""
    try:
        root, count = harness.functions.transactionsRoot(listing).call({"gas": GAS})
    except Exception as exc:
        return str(getattr(exc, "data", exc))
    return bytes(root), count


def test_tx_root_matches_python_for_random_lists(harness: Contract) -> None:
    """For random lists of 0..300 transactions of 0..256 bytes, LibBatch computes
    transactions_root and the count, and the leaves are keccak256(tx)."""
    rng = random.Random(4)
    for case in range(120):
        count = rng.choice([0, 1, 2, 3, 17, 64, 65, 300]) if case % 3 else rng.randrange(40)
        transactions = random_transactions(rng, count)
        listing = encode_transactions(transactions)
        assert python_transactions(listing) == tuple(transactions)
        assert contract_transactions(harness, listing) == (
            transactions_root(transactions),
            count,
        )
    leaves = harness.functions.transactionLeaves(encode_transactions([b"", b"\x01", b"ab"])).call()
    assert leaves == [keccak256(b""), keccak256(b"\x01"), keccak256(b"ab")]


MALFORMED = {
    "empty input": b"",
    "a string, not a list": b"\x83abc",
    "a single byte, not a list": b"\x01",
    "trailing byte": b"\xc1\x01\x01",
    "truncated list": b"\xc3\x01\x02",
    "truncated item": b"\xc3\x83ab",
    "nested list": b"\xc2\xc1\x01",
    "single byte below 0x80 wrapped": b"\xc2\x81\x05",
    "long string form under 56 bytes": b"\xc4\xb8\x02ab",
    "long string length with a leading zero": b"\xf8\x3c\xb9\x00\x38" + b"a" * 56,
    "long list form under 56 bytes": b"\xf8\x02\x01\x02",
    "long list length with a leading zero": b"\xf9\x00\x3a" + b"\xb8\x38" + b"a" * 56,
    "list length of length past the end": b"\xf9\x01",
    "string length of length past the end": b"\xc2\xb9\x01",
    "string over 256 bytes": encode_transactions([b"a" * 257]),
    "long list form, 9 length bytes": b"\xff" + b"\x00" * 8,
}
"""Lists both decoders must reject, one per rule."""


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_list_is_rejected_by_both(harness: Contract, name: str) -> None:
    """Each malformed list: decode_batch rejects it and LibBatch reverts."""
    listing = MALFORMED[name]
    assert python_transactions(listing) is None
    result = contract_transactions(harness, listing)
    assert isinstance(result, str) and result.startswith("0x"), result
    selectors = {
        error_data(e, *args)[:10]
        for e, args in (("MalformedTransactionList", (0,)), ("TransactionTooLong", (0, 0)))
    }
    assert result[:10] in selectors


def test_mutated_lists_are_accepted_exactly_when_python_accepts(harness: Contract) -> None:
    """Random byte mutations of valid lists (flip, insert, delete, truncate): LibBatch
    accepts exactly what decode_batch accepts, with the same root."""
    rng = random.Random(7)
    accepted = rejected = 0
    for _ in range(400):
        listing = bytearray(encode_transactions(random_transactions(rng, rng.randrange(1, 6))))
        for _ in range(rng.randrange(1, 3)):
            op = rng.randrange(4)
            at = rng.randrange(len(listing) + 1)
            if op == 0 and at < len(listing):
                listing[at] = rng.choice(
                    [0x00, 0x7F, 0x80, 0x81, 0xB7, 0xB8, 0xC0, 0xF8, rng.randrange(256)]
                )
            elif op == 1:
                listing.insert(at, rng.randrange(256))
            elif op == 2 and at < len(listing):
                del listing[at]
            else:
                del listing[at:]
        data = bytes(listing)
        expected = python_transactions(data)
        result = contract_transactions(harness, data)
        if expected is None:
            assert isinstance(result, str), data.hex()
            rejected += 1
        else:
            assert result == (transactions_root(expected), len(expected)), data.hex()
            accepted += 1
    assert accepted > 20 and rejected > 200  # both sides of the boundary were exercised


def test_transaction_count_limit(chain: Chain, harness: Contract) -> None:
    """2^16 transactions are accepted; one more reverts TooManyTransactions. (Far more than
    an L1 block holds: the call runs with a raised gas limit.)"""
    full = [b"\x01"] * (1 << 16)
    limit = chain.w3.eth.get_block("latest")["gasLimit"]
    chain.anvil.rpc("evm_setBlockGasLimit", hex(500_000_000))
    try:
        call: TxParams = {"gas": 400_000_000}
        root, count = harness.functions.transactionsRoot(encode_transactions(full)).call(call)
        assert (bytes(root), count) == (transactions_root(full), 1 << 16)
        assert python_transactions(encode_transactions([*full, b"\x01"])) is None
        with pytest.raises(ContractCustomError) as raised:
            harness.functions.transactionsRoot(encode_transactions([*full, b"\x01"])).call(call)
        assert raised.value.data == error_data("TooManyTransactions")
    finally:
        chain.anvil.rpc("evm_setBlockGasLimit", hex(limit))


def test_post_batch_reverts_on_a_malformed_list(system: System) -> None:
    """postBatch refuses a malformed list and an over-long transaction, with their errors."""
    system.stake()
    seq = system.sequencer
    fn = system.post_batch()
    args = list(fn.args)
    args[5] = b"\xc2\x81\x05"
    bad = system.rollup.functions.postBatch(*args)
    system.reverts(bad, seq, "MalformedTransactionList", 1)
    args[5] = encode_transactions([b"ok", b"a" * 257])
    too_long = system.rollup.functions.postBatch(*args)
    system.reverts(too_long, seq, "TransactionTooLong", 1, 257)


# finality ----------------------------------------------------------------------------


def test_finalization_in_order_after_the_window(system: System) -> None:
    """A batch finalizes from postedAt + challengeWindow on, never a second earlier, and
    only after every earlier batch; finalize(i) finalizes everything up to i."""
    system.stake()
    chain, user = system.chain, system.users[0]
    window = system.parameters.challenge_window
    t = chain.now() + 10
    for k in range(3):
        system.post(at=t + 10 * k)
    finalize = system.rollup.functions.finalize
    system.reverts(finalize(0), user, "ChallengeWindowOpen", 0, t + window, at=t + window - 1)
    system.reverts(finalize(1), user, "ChallengeWindowOpen", 1, t + 10 + window, at=t + window)
    receipt = system.send(finalize(0), user, at=t + window + 1)
    assert events(system.rollup, receipt, "BatchFinalized") == [
        {"index": 0, "serial": 1, "postRoot": system.batch(0)["postRoot"]}
    ]
    system.reverts(finalize(0), user, "AlreadyFinal", 0)
    system.reverts(finalize(3), user, "NoSuchBatch", 3)
    receipt = system.send(finalize(2), user, at=t + 20 + window)
    assert [e["index"] for e in events(system.rollup, receipt, "BatchFinalized")] == [1, 2]
    assert system.rollup.functions.finalizedCount().call() == 3
    assert all(system.rollup.functions.isFinal(k).call() for k in range(3))
    assert not system.rollup.functions.isFinal(3).call()


def test_no_finalization_while_a_game_is_open(system: System) -> None:
    """finalize reverts GamesOpen while a game on the batch is open, and succeeds once the
    game has ended (here the honest defender proves its single step)."""
    system.stake()
    user = system.users[0]
    genesis, timestamp = b"\x42" * 32, system.chain.now()
    post_root, _ = alphabet_step(genesis, TRANSACTION, b"\x01", timestamp, system.domain_separator)
    system.post([b"\x01"], post_root=post_root, timestamp=timestamp)
    window_end = system.window_end(0)
    game_id = system.challenge(system.challengers[0], 0, at=window_end - 100)
    assert system.rollup.functions.openGames(0).call() == 1
    finalize = system.rollup.functions.finalize
    system.reverts(finalize(0), user, "GamesOpen", 0, 1, at=window_end)
    proof = list(transaction_proof([b"\x01"], 0))
    prove = system.game.functions.proveStep(game_id, b"\x01", proof, genesis)
    system.send(prove, user, at=window_end + 1)
    assert system.rollup.functions.openGames(0).call() == 0
    system.send(finalize(0), user)
    assert system.rollup.functions.isFinal(0).call()


def test_rejection_and_game_counting_only_through_the_dispute_game(system: System) -> None:
    """rejectBatch, openDispute and closeDispute from anyone but the DisputeGame revert
    NotDisputeGame."""
    system.stake()
    system.post()
    rollup = system.rollup.functions
    for who in (system.users[0], system.sequencer, system.deployer):
        for fn in (rollup.rejectBatch(0, who), rollup.openDispute(0), rollup.closeDispute(0, 1)):
            system.reverts(fn, who, "NotDisputeGame", who)
    assert rollup.openGames(0).call() == 0


def test_open_game_count_follows_the_batch_record(system: System) -> None:
    """The Rollup's side of the game count, called as the DisputeGame (impersonated):
    openDispute counts a game on a standing batch inside its window and returns its serial
    and step count; closeDispute uncounts it, but only on the record posted with that
    serial, so a stale call after a rejection and repost leaves the repost's count alone;
    finalize waits for 0."""
    system.stake()
    chain, user = system.chain, system.users[0]
    rollup = system.rollup.functions
    game = chain.impersonate(system.game.address)
    system.send(system.bridge.functions.forceTransaction(b"\x01"), user)
    system.post([b"\x01", b"\x02"])  # serial 1: one inbox step, two transactions
    assert rollup.openDispute(0).call({"from": game}) == [1, 3]
    for _ in range(2):
        system.send(rollup.openDispute(0), game)
    assert rollup.openGames(0).call() == 2 == system.batch(0)["openGames"]
    system.reverts(rollup.openDispute(1), game, "NoSuchBatch", 1)
    system.send(rollup.closeDispute(0, 1), game)
    assert rollup.openGames(0).call() == 1
    # batch 0 is rejected with its last game open, then reposted as serial 2
    receipt = system.send(rollup.rejectBatch(0, user), game)
    assert events(system.rollup, receipt, "BatchesRejected")[0]["toIndex"] == 1
    system.reverts(rollup.openGames(0), user, "NoSuchBatch", 0)
    system.reverts(rollup.openDispute(0), game, "NoSuchBatch", 0)
    system.stake()
    system.post()
    assert system.batch(0)["serial"] == 2 and rollup.openGames(0).call() == 0
    system.send(rollup.openDispute(0), game)
    system.send(rollup.closeDispute(0, 1), game)  # the old batch's game: a no-op
    assert rollup.openGames(0).call() == 1
    window_end = system.window_end(0)
    system.reverts(rollup.finalize(0), user, "GamesOpen", 0, 1, at=window_end)
    system.reverts(rollup.openDispute(0), game, "ChallengeWindowClosed", 0, window_end)
    system.send(rollup.closeDispute(0, 2), game)
    assert rollup.openGames(0).call() == 0
    system.send(rollup.finalize(0), user)
    assert rollup.isFinal(0).call()


def test_claim_credit_needs_credit(system: System) -> None:
    """claimCredit with nothing owed reverts NothingToClaim."""
    system.reverts(system.rollup.functions.claimCredit(), system.users[0], "NothingToClaim")


def test_views_refuse_unknown_batches(system: System) -> None:
    """batch, headerHash, openGames and parentRootOf revert NoSuchBatch past the chain's
    end."""
    user, rollup = system.users[0], system.rollup.functions
    system.reverts(rollup.batch(0), user, "NoSuchBatch", 0)
    system.reverts(rollup.headerHash(0), user, "NoSuchBatch", 0)
    system.reverts(rollup.openGames(0), user, "NoSuchBatch", 0)
    system.reverts(rollup.parentRootOf(1), user, "NoSuchBatch", 1)
    assert rollup.parentRootOf(0).call() == b"\x42" * 32


# gas ---------------------------------------------------------------------------------


def realistic_orders(count: int) -> list[bytes]:
    """``count`` signed orders from 20 traders around a BTC price (tests/stf_env.py)."""
    exchange = Exchange()
    exchange.set_price(0, btc(60_000))
    traders = [exchange.new_trader(deposit=1_000_000 * USD) for _ in range(20)]
    rng = random.Random(1)
    orders = []
    for i in range(count):
        trader = traders[i % len(traders)]
        is_buy = rng.random() < 0.5
        price = btc(60_000 + rng.randrange(-200, 200))
        size = sats(rng.choice([0.01, 0.1, 0.5]))
        message = exchange.order_message(trader, 0, is_buy, price, size)
        orders.append(exchange.sign(trader.key, message))
    return orders


def test_post_batch_gas_for_200_orders(system: System) -> None:
    """A batch of 200 signed orders: calldata per order stays under 100 bytes and posting
    stays under 1.5M gas (the figures are printed with -s)."""
    system.stake()
    orders = realistic_orders(200)
    receipt = system.send(system.post_batch(orders), system.sequencer)
    calldata = len(system.w3.eth.get_transaction(receipt["transactionHash"])["input"])
    gas = receipt["gasUsed"]
    print(
        f"\npostBatch, 200 orders: gas {gas} ({gas / 200:.0f}/order), calldata {calldata} "
        f"bytes ({calldata / 200:.1f}/order), average order {sum(map(len, orders)) / 200:.1f} "
        f"bytes"
    )
    assert calldata / 200 <= 100
    assert gas < 1_500_000
    assert system.batch(0)["txRoot"] == transactions_root(orders)
