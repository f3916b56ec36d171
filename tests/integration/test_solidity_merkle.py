"""
Differential: the Solidity Merkle libraries against the committed vectors (and so
against the Python core that generated them), on a real anvil.
"""

from typing import Any

import pytest
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError

from node.protocol.crypto import keccak256
from node.protocol.merkle import ZERO_HASHES
from node.protocol.state import LAYOUT
from tests.conftest import deploy
from tests.vectors.test_vectors import STATE, WITNESS, load, unhex


def selector(signature: str) -> str:
    """The 0x-hex selector of a custom error, as it appears in revert data."""
    return "0x" + keccak256(signature.encode())[:4].hex()


@pytest.fixture(scope="module")
def harness(w3: Web3) -> Contract:
    return deploy(w3, "MerkleHarness")


def test_zero_hashes_agree(harness: Contract) -> None:
    for height in (0, 1, 2, 16, 32, 48, 52, 64):
        assert harness.functions.zeroHash(height).call() == ZERO_HASHES[height]


def test_layout_agrees(harness: Contract) -> None:
    for table in LAYOUT.tables:
        assert harness.functions.tableDepth(table.id).call() == table.depth
    for unused in range(1 << LAYOUT.global_depth):
        if unused not in LAYOUT.by_id:
            with pytest.raises(ContractCustomError, match=selector("UnknownTable(uint256)")):
                harness.functions.tableDepth(unused).call()


def test_state_proofs_agree(harness: Contract) -> None:
    checked = 0
    for commit in STATE["commits"]:
        root = unhex(commit["root"])
        for proof in commit["proofs"]:
            table, index = proof["table"], int(proof["index"])
            record = unhex(proof["record"])
            siblings = [unhex(s) for s in proof["siblings"]]
            assert harness.functions.verifyState(root, table, index, record, siblings).call()
            assert harness.functions.stateRootWith(table, index, record, siblings).call() == root
            tampered = record + b"\x00"
            assert not harness.functions.verifyState(root, table, index, tampered, siblings).call()
            assert not harness.functions.verifyState(
                root, table, index, record, siblings[:-1]
            ).call()
            assert not harness.functions.verifyState(root, 9, index, record, siblings).call()
            checked += 1
    assert checked >= 20


@pytest.mark.parametrize("run", WITNESS["runs"], ids=lambda r: str(len(r["proofs"])))
def test_witness_proofs_agree(harness: Contract, run: dict[str, Any]) -> None:
    """What the one-step executor checks first: the table roots make the pre-root, and each
    first-touch proof leads to its table's root."""
    table_roots = [unhex(r) for r in run["tableRoots"]]
    assert harness.functions.merkleRoot(LAYOUT.global_depth, table_roots).call() == unhex(
        run["preRoot"]
    )
    for proof in run["proofs"]:
        leaf = harness.functions.hashLeaf(unhex(proof["record"])).call()
        siblings = [unhex(s) for s in proof["siblings"]]
        root = harness.functions.rootFromPath(leaf, int(proof["index"]), siblings).call()
        assert root == table_roots[proof["table"]]


def test_transaction_roots_agree(harness: Contract) -> None:
    vectors = load("batches.json")
    depth = vectors["txTreeDepth"]
    for batch in vectors["batches"]:
        leaves = [unhex(leaf) for leaf in batch["txLeaves"]]
        assert harness.functions.merkleRoot(depth, leaves).call() == unhex(batch["txRoot"])
        for position, (leaf, proof) in enumerate(zip(leaves, batch["txProofs"], strict=True)):
            siblings = [unhex(s) for s in proof]
            assert harness.functions.rootFromPath(leaf, position, siblings).call() == unhex(
                batch["txRoot"]
            )
        for tx, leaf in zip(batch["transactions"], leaves, strict=True):
            assert harness.functions.hashLeaf(unhex(tx)).call() == leaf


def test_invalid_too_many_leaves_reverts(harness: Contract) -> None:
    with pytest.raises(ContractCustomError, match=selector("TooManyLeaves(uint256,uint256)")):
        harness.functions.merkleRoot(1, [b"\x01" * 32] * 3).call()
