"""The watchtower's verifier on a real LevelDB: it reproduces honest roots, flags wrong
ones, survives a reopen, forgets rejected batches, and can prove any step of a trace."""

from pathlib import Path

import pytest

from challenger.verifier import Verifier, VerifierError
from node.protocol.batch import Batch
from node.protocol.crypto import address_of, keccak256, sign_digest
from node.protocol.genesis import genesis_state
from node.protocol.inbox import Deposit, encode_l1_message
from node.protocol.state import State
from node.protocol.step import BatchContext, Step, StepKind
from node.protocol.stf import apply_step
from node.protocol.transactions import Message, SignedTransaction, Transfer, encode_transaction
from node.protocol.tree import MemoryNodeStore
from node.protocol.witness import decode_witness
from node.storage import LevelDB
from tests.stf_env import DOMAIN, GENESIS, START_TIME
from tests.stf_env import test_key as key_of

KEYS = [key_of(1), key_of(2)]


def signed(key: bytes, message: Message) -> bytes:
    signature = sign_digest(key, message.signing_hash(DOMAIN))
    return encode_transaction(SignedTransaction(message, signature))


def deposits() -> list[bytes]:
    return [
        encode_l1_message(Deposit(address_of(key), account, 1_000_000))
        for account, key in enumerate(KEYS, start=1)
    ]


def honest_root(parent: bytes, batch_steps: list[tuple[StepKind, bytes]], timestamp: int) -> bytes:
    """An independent replay from genesis (the watcher's must match it)."""
    store = MemoryNodeStore()
    genesis_state(GENESIS, store)
    state = State(store, parent)
    for kind, data in batch_steps:
        apply_step(state, Step(kind, data), BatchContext(timestamp, DOMAIN))
    return state.commit()


def test_verify_reopen_reject_and_prove(tmp_path: Path) -> None:
    transfers = [signed(KEYS[0], Transfer(1, 2, 10 * n, n)) for n in range(1, 4)]
    messages = deposits()
    steps = [(StepKind.L1_MESSAGE, m) for m in messages] + [
        (StepKind.TRANSACTION, t) for t in transfers
    ]
    with LevelDB(tmp_path / "db") as db:
        verifier = Verifier(db, GENESIS, DOMAIN)
        genesis_root = verifier.genesis_root
        right = honest_root(genesis_root, steps, START_TIME)
        first_root = honest_root(genesis_root, steps[:4], START_TIME)
        first = Batch(0, genesis_root, START_TIME, 0, 2, first_root, tuple(transfers[:2]))
        verdict = verifier.verify(first, serial=1, messages=messages)
        assert not verdict.wrong and verdict.own_root == first_root
        with pytest.raises(VerifierError, match="not next"):
            verifier.verify(first, serial=1, messages=messages)
        lie = Batch(1, first_root, START_TIME, 2, 2, keccak256(b"lie"), (transfers[2],))
        wrong = verifier.verify(lie, serial=2, messages=[])
        assert wrong.wrong and wrong.own_root == right
        # every step of the wrong batch can be proven; its trace ends at the watcher's root
        trace = verifier.trace(lie, [])
        assert trace.roots == [first_root, right]
        witness = decode_witness(verifier.witness(trace, 0))
        assert witness.proofs  # the transfer reads both accounts
    with LevelDB(tmp_path / "db") as db:
        reopened = Verifier(db, GENESIS, DOMAIN)
        assert reopened.next_index == 2
        assert reopened.records[1] == wrong
        reopened.rejected(1)
        assert reopened.next_index == 1
        honest = Batch(1, first_root, START_TIME, 2, 2, right, (transfers[2],))
        assert not reopened.verify(honest, serial=3, messages=[]).wrong
    with LevelDB(tmp_path / "db") as db:
        assert Verifier(db, GENESIS, DOMAIN).records[1].serial == 3
