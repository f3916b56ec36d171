"""
The committed vectors are reproduced exactly by the implementation, and are not stale.

Each test reads a JSON file (the same files the Solidity tests will load) and
recomputes every value from its inputs; eth-account checks every EIP-712 digest
independently.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from node.protocol import errors
from node.protocol.batch import decode_batch, encode_batch, transaction_leaf
from node.protocol.crypto import keccak256, recover_signer
from node.protocol.eip712 import Domain, domain_separator, encode_type, type_hash
from node.protocol.merkle import ZERO_HASHES, root_from_path
from node.protocol.state import LAYOUT, Proof, State, global_tree, verify_proof
from node.protocol.transactions import (
    MESSAGE_TYPES,
    decode_transaction,
    encode_transaction,
    message_from_json,
    typed_data,
)
from node.protocol.tree import MemoryNodeStore
from node.protocol.witness import (
    LeafProof,
    Witness,
    WitnessRecorder,
    WitnessView,
    decode_witness,
    encode_witness,
)
from tests.vectors import generate

VECTORS = Path(__file__).parent


def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text())  # type: ignore[no-any-return]


def unhex(value: str) -> bytes:
    assert value.startswith("0x")
    return bytes.fromhex(value[2:])


TX = load("transactions.json")
DOMAIN = Domain(TX["domain"]["chainId"], unhex(TX["domain"]["verifyingContract"]))


def test_vectors_are_not_stale() -> None:
    assert generate.main(["--check"]) == 0, "run `make vectors` and commit the result"


def test_domain_and_type_hashes() -> None:
    assert domain_separator(DOMAIN) == unhex(TX["domainSeparator"])
    assert set(TX["types"]) == set(MESSAGE_TYPES)
    for name, cls in MESSAGE_TYPES.items():
        assert encode_type(name, cls.FIELDS) == TX["types"][name]["encodeType"]
        assert type_hash(name, cls.FIELDS) == keccak256(TX["types"][name]["encodeType"].encode())
        assert type_hash(name, cls.FIELDS) == unhex(TX["types"][name]["typeHash"])


@pytest.mark.parametrize("case", TX["cases"], ids=lambda c: c["type"])
def test_transaction_vector(case: dict[str, Any]) -> None:
    message = message_from_json(case["type"], case["message"])
    digest = unhex(case["digest"])
    assert message.struct_hash() == unhex(case["structHash"])
    assert message.signing_hash(DOMAIN) == digest
    oracle = encode_typed_data(full_message=typed_data(DOMAIN, message))
    assert keccak256(b"\x19" + oracle.version + oracle.header + oracle.body) == digest
    signature = unhex(case["signature"])
    assert recover_signer(digest, signature) == unhex(case["signer"])
    assert Account.from_key(unhex(case["privateKey"])).address.lower() == case["signer"]
    if "encoded" in case:
        encoded = unhex(case["encoded"])
        tx = decode_transaction(encoded)
        assert tx.message == message
        assert tx.signature == signature
        assert tx.hash(DOMAIN) == unhex(case["txHash"]) == digest
        assert tx.recover_signer(DOMAIN) == unhex(case["signer"])
        assert encode_transaction(tx) == encoded


@pytest.mark.parametrize(
    "case", load("invalid_transactions.json")["cases"], ids=lambda c: c["name"]
)
def test_invalid_transaction_vector(case: dict[str, Any]) -> None:
    error = getattr(errors, case["error"])
    with pytest.raises(error):
        decode_transaction(unhex(case["encoded"]))


@pytest.mark.parametrize("case", load("batches.json")["batches"], ids=lambda c: str(c["txCount"]))
def test_batch_vector(case: dict[str, Any]) -> None:
    batch = decode_batch(unhex(case["encoded"]))
    assert encode_batch(batch) == unhex(case["encoded"])
    assert batch.index == case["index"]
    assert batch.parent_root == unhex(case["parentRoot"])
    assert batch.timestamp == case["timestamp"]
    assert (batch.inbox_start, batch.inbox_end) == (case["inboxStart"], case["inboxEnd"])
    assert batch.post_root == unhex(case["postRoot"])
    assert [f"0x{tx.hex()}" for tx in batch.transactions] == case["transactions"]
    header = batch.header()
    assert header.tx_count == case["txCount"] == len(case["transactions"])
    assert header.tx_root == unhex(case["txRoot"])
    assert header.hash() == unhex(case["headerHash"])
    for position, (tx, leaf, proof) in enumerate(
        zip(batch.transactions, case["txLeaves"], case["txProofs"], strict=True)
    ):
        assert transaction_leaf(tx) == unhex(leaf)
        assert root_from_path(unhex(leaf), position, [unhex(s) for s in proof]) == header.tx_root


STATE = load("state.json")


def test_state_layout_vector() -> None:
    assert STATE["globalDepth"] == LAYOUT.global_depth
    assert STATE["tables"] == [
        {"id": t.id, "name": t.name, "depth": t.depth} for t in LAYOUT.tables
    ]
    assert [unhex(z) for z in STATE["zeroHashes"]] == list(ZERO_HASHES)
    assert unhex(STATE["emptyRoot"]) == LAYOUT.empty_root


def test_state_commits_vector() -> None:
    state = State(MemoryNodeStore())
    for commit in STATE["commits"]:
        for write in commit["writes"]:
            state.set(write["table"], int(write["index"]), unhex(write["record"]))
        assert state.commit() == unhex(commit["root"])
        assert [state.table_root(t.id) for t in LAYOUT.tables] == [
            unhex(r) for r in commit["tableRoots"]
        ]
        for p in commit["proofs"]:
            proof = Proof(
                p["table"],
                int(p["index"]),
                unhex(p["record"]),
                tuple(unhex(s) for s in p["siblings"]),
            )
            assert verify_proof(state.root, proof)
            assert state.prove(proof.table, proof.index) == proof


WITNESS = load("witness.json")


@pytest.mark.parametrize("run", WITNESS["runs"], ids=lambda r: str(len(r["operations"])))
def test_witness_vector(run: dict[str, Any]) -> None:
    store = MemoryNodeStore()
    base = State(store)
    for write in WITNESS["preStateWrites"]:
        base.set(write["table"], int(write["index"]), unhex(write["record"]))
    assert base.commit() == unhex(run["preRoot"])

    # The table roots make the pre-root, and every proof leads to its table's root.
    table_roots = tuple(unhex(r) for r in run["tableRoots"])
    assert global_tree(list(table_roots))[0] == unhex(run["preRoot"])
    proofs = tuple(
        LeafProof(
            p["table"], int(p["index"]), unhex(p["record"]), tuple(unhex(s) for s in p["siblings"])
        )
        for p in run["proofs"]
    )
    for proof in proofs:
        assert proof.table_root() == table_roots[proof.table]
        assert proof.record == base.get(proof.table, proof.index)
    witness = Witness(table_roots, proofs)
    assert decode_witness(unhex(run["encoded"])) == witness
    assert encode_witness(witness) == unhex(run["encoded"])

    # What the one-step executor does: serve the run from the witness, then compute the root.
    view = WitnessView(unhex(run["preRoot"]), witness)
    for op in run["operations"]:
        if op["op"] == "get":
            view.get(op["table"], int(op["index"]))
        else:
            view.set(op["table"], int(op["index"]), unhex(op["record"]))
    assert view.finish() == unhex(run["postRoot"])

    # The recorder reproduces the very same witness and post-root.
    recorder = WitnessRecorder(store, unhex(run["preRoot"]))
    for op in run["operations"]:
        if op["op"] == "get":
            recorder.get(op["table"], int(op["index"]))
        else:
            recorder.set(op["table"], int(op["index"]), unhex(op["record"]))
    assert recorder.root == unhex(run["postRoot"])
    assert recorder.witness() == unhex(run["encoded"])
