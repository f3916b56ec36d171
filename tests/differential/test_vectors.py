"""
The Solidity one-step executor reproduces every committed STF vector step
(tests/vectors/stf/*.json): called with the step's pre-root, kind, data, batch
timestamp, domain separator and witness, ``OneStepExecutor.execute`` returns exactly
the post-root and reason the Python STF recorded. A witness that does not prove the
step's accesses makes it revert (never return a root). The gas of the heaviest steps
of each kind is printed (``pytest -s``) and bounded.

Steps run as ``eth_call``s on the session anvil, many per JSON-RPC batch request.
"""

import json
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import pytest
from eth_abi.abi import encode as abi_encode
from web3.contract import Contract

from bench.worst_case import BUILDERS
from node.l1.anvil import Anvil
from node.protocol.crypto import keccak256
from node.protocol.eip712 import Domain, domain_separator
from node.protocol.errors import WireError
from node.protocol.inbox import Deposit, decode_l1_message
from node.protocol.step import Reason, StepKind
from node.protocol.transactions import TxKind, decode_transaction
from node.protocol.witness import Witness, decode_witness, encode_witness
from tests.vectors.test_vectors import unhex

STF_DIR: Final = Path(__file__).parent.parent / "vectors" / "stf"
FILES: Final = sorted(STF_DIR.glob("*.json"))
KINDS: Final = {"l1Message": StepKind.L1_MESSAGE, "transaction": StepKind.TRANSACTION}
EXECUTE_SELECTOR: Final = keccak256(b"execute(bytes32,uint8,bytes,uint64,bytes32,bytes)")[:4]
BAD_WITNESS: Final = keccak256(b"BadWitness(uint256,uint256)")[:4]
WITNESS_NOT_CONSUMED: Final = keccak256(b"WitnessNotConsumed()")[:4]
GAS_BUDGET: Final = 1_500_000
"""Most gas one vector step may take as an L1 transaction, calldata included: the goal for
the heaviest one-step proof. Gas is deterministic, so this is a regression check, not a
timing. The heaviest vector step, an 8-fill sweep (match_limit step 35), takes about
0.8M; the worst cases built on purpose (bench/worst_case.py) about 1.3M."""


@dataclass(frozen=True)
class VectorStep:
    """One vector step: the executor's inputs and what it must return."""

    vector: str
    number: int
    pre_root: bytes
    kind: StepKind
    data: bytes
    timestamp: int
    separator: bytes
    witness: bytes
    post_root: bytes
    reason: Reason

    @property
    def label(self) -> str:
        """What the step is: deposit, a transaction kind (forced or not), or malformed."""
        data, prefix = self.data, ""
        if self.kind == StepKind.L1_MESSAGE:
            try:
                message = decode_l1_message(data)
            except WireError:
                return "malformed"
            if isinstance(message, Deposit):
                return "deposit"
            data, prefix = message.transaction, "forced "
        try:
            return prefix + TxKind(decode_transaction(data).kind).name
        except WireError:
            return "malformed"

    def calldata(self, witness: bytes | None = None) -> bytes:
        """The calldata of ``execute`` for this step (with another witness if given)."""
        args = abi_encode(
            ["bytes32", "uint8", "bytes", "uint64", "bytes32", "bytes"],
            [
                self.pre_root,
                int(self.kind),
                self.data,
                self.timestamp,
                self.separator,
                self.witness if witness is None else witness,
            ],
        )
        return EXECUTE_SELECTOR + args

    def __str__(self) -> str:
        return f"{self.vector} step {self.number} ({self.label}, {self.reason.name})"


def vector_steps(path: Path) -> list[VectorStep]:
    """The steps of one vector file, each with its pre-root (the previous post-root)."""
    vector = json.loads(path.read_text())
    domain = Domain(vector["domain"]["chainId"], unhex(vector["domain"]["verifyingContract"]))
    separator = domain_separator(domain)
    root = unhex(vector["preRoot"])
    steps = []
    for number, entry in enumerate(vector["steps"]):
        post_root = unhex(entry["postRoot"])
        steps.append(
            VectorStep(
                vector=path.stem,
                number=number,
                pre_root=root,
                kind=KINDS[entry["kind"]],
                data=unhex(entry["data"]),
                timestamp=int(entry["timestamp"]),
                separator=separator,
                witness=unhex(entry["witness"]),
                post_root=post_root,
                reason=Reason[entry["reason"]],
            )
        )
        root = post_root
    return steps


STEPS: Final = {path.stem: vector_steps(path) for path in FILES}
ALL_STEPS: Final = [step for steps in STEPS.values() for step in steps]


def rpc_batch(url: str, calls: Sequence[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    """One JSON-RPC batch request; the replies in the order of ``calls``."""
    body = [
        {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
        for i, (method, params) in enumerate(calls)
    ]
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        replies: list[dict[str, Any]] = json.loads(response.read())
    replies.sort(key=lambda reply: int(reply["id"]))
    return replies


def call(address: str, data: bytes) -> tuple[str, list[Any]]:
    return "eth_call", [{"to": address, "data": "0x" + data.hex()}, "latest"]


def revert_data(reply: dict[str, Any]) -> bytes:
    """The revert data of a failed ``eth_call`` reply."""
    assert "error" in reply, f"expected a revert, got {reply}"
    data = reply["error"].get("data")
    return unhex(data) if isinstance(data, str) and data.startswith("0x") else b""


def disagreement(step: VectorStep, reply: dict[str, Any]) -> str | None:
    """None if the executor returned the step's post-root and reason, else what it did."""
    if "error" in reply:
        return f"{step}: reverted {reply['error']}"
    result = unhex(reply["result"])
    root, reason = result[:32], int.from_bytes(result[32:64], "big")
    if root == step.post_root and reason == step.reason:
        return None
    name = Reason(reason).name if reason in {r.value for r in Reason} else "?"
    return f"{step}: returned reason {reason} ({name}) and root 0x{root.hex()}"


@pytest.mark.parametrize("name", STEPS)
def test_executor_reproduces_vector_steps(anvil: Anvil, executor: Contract, name: str) -> None:
    """Every step of one vector file: the executor's (postRoot, reason) is the Python STF's."""
    steps = STEPS[name]
    replies = rpc_batch(anvil.url, [call(executor.address, step.calldata()) for step in steps])
    wrong = [
        message
        for step, reply in zip(steps, replies, strict=True)
        if (message := disagreement(step, reply))
    ]
    assert not wrong, f"{len(wrong)} of {len(steps)} steps disagree:\n" + "\n".join(wrong)


def test_vectors_hold_every_kind_of_step() -> None:
    """The vectors the executor is checked on are the 526 committed steps, of every kind."""
    assert len(ALL_STEPS) == 526
    labels = {step.label for step in ALL_STEPS}
    wanted = {"deposit", "malformed", *(kind.name for kind in TxKind)}
    assert wanted <= labels
    assert {step.reason for step in ALL_STEPS} == set(Reason)


def heaviest_fill() -> VectorStep:
    """The applied order step with the longest witness (a MAX_MATCHES-maker sweep)."""
    orders = [s for s in ALL_STEPS if s.label == "ORDER" and s.reason == Reason.OK]
    return max(orders, key=lambda s: len(s.witness))


def test_executor_refuses_a_tampered_witness(anvil: Anvil, executor: Contract) -> None:
    """A witness that does not prove the step's accesses reverts (BadWitness, or
    WitnessNotConsumed for entries left over), whatever the step would return."""
    step = heaviest_fill()
    witness = decode_witness(step.witness)
    proofs = list(witness.proofs)
    first = proofs[0]
    sibling = bytearray(first.siblings[-1])
    sibling[0] ^= 1
    siblings = (*first.siblings[:-1], bytes(sibling))
    roots = list(witness.table_roots)
    roots[15] = b"\x01" * 32  # an unused slot: the roots no longer make the pre-root
    tampered = {
        "record changed": [replace(first, record=first.record + b"\x00"), *proofs[1:]],
        "sibling changed": [replace(first, siblings=siblings), *proofs[1:]],
        "entry missing": proofs[:-1],
        "entries swapped": [proofs[1], proofs[0], *proofs[2:]],
        "entry left over": [*proofs, proofs[-1]],
    }
    witnesses = {
        name: encode_witness(Witness(witness.table_roots, tuple(p))) for name, p in tampered.items()
    }
    witnesses["table roots changed"] = encode_witness(Witness(tuple(roots), witness.proofs))
    witnesses["not a list"] = b"\x80"
    replies = rpc_batch(
        anvil.url, [call(executor.address, step.calldata(w)) for w in witnesses.values()]
    )
    for (name, _), reply in zip(witnesses.items(), replies, strict=True):
        expected = WITNESS_NOT_CONSUMED if name == "entry left over" else BAD_WITNESS
        assert revert_data(reply)[:4] == expected, f"{name}: {reply}"
    # the untampered witness is accepted (so the reverts above are the tampering's doing)
    (reply,) = rpc_batch(anvil.url, [call(executor.address, step.calldata())])
    assert disagreement(step, reply) is None


def test_gas_of_the_heaviest_steps(anvil: Anvil, executor: Contract) -> None:
    """The gas of ``execute`` as an L1 transaction (calldata included) for the steps with
    the longest witnesses of each kind: printed as a table, and within GAS_BUDGET."""
    by_label: dict[str, list[VectorStep]] = {}
    for step in ALL_STEPS:
        by_label.setdefault(step.label, []).append(step)
    chosen = []
    for steps in by_label.values():
        chosen.extend(sorted(steps, key=lambda s: len(s.witness), reverse=True)[:2])
    replies = rpc_batch(
        anvil.url,
        [
            ("eth_estimateGas", [{"to": executor.address, "data": "0x" + s.calldata().hex()}])
            for s in chosen
        ],
    )
    rows = []
    for step, reply in zip(chosen, replies, strict=True):
        assert "result" in reply, f"{step}: {reply}"
        rows.append((step.label, int(reply["result"], 16), len(step.witness), str(step)))
    rows.sort(key=lambda row: (row[0], -row[1]))
    print(f"\n{'kind':<22}{'gas':>10}{'witness B':>11}  step")
    for label, gas, size, name in rows:
        print(f"{label:<22}{gas:>10}{size:>11}  {name}")
    heaviest = max(rows, key=lambda row: row[1])
    assert heaviest[1] <= GAS_BUDGET, f"heaviest step takes {heaviest[1]} gas: {heaviest[3]}"


def test_worst_cases_fit_the_gas_goal(executor: Contract) -> None:
    """The heaviest step of each kind built on purpose (bench/worst_case.py: an order
    visiting MAX_MATCHES makers that each hold MAX_OPEN_ORDERS orders and MAX_POSITIONS
    positions, a CancelAll of MAX_OPEN_ORDERS orders, ...): the executor agrees with Python
    and ``execute`` as an L1 transaction takes at most GAS_BUDGET, the 1.5M goal."""
    gas = {}
    for build in BUILDERS:
        case = build()
        reason, pre_root, witness, post_root = case.prove()
        call = executor.functions.execute(
            pre_root,
            int(case.step.kind),
            case.step.data,
            case.exchange.timestamp,
            domain_separator(case.exchange.domain),
            witness,
        )
        root, solidity_reason = call.call()
        assert (bytes(root), solidity_reason) == (post_root, reason), case.name
        gas[case.name] = call.estimate_gas()
    print("\nworst-case execute gas:", gas)
    assert {"order", "cancel all", "liquidate"} <= set(gas)
    assert max(gas.values()) <= GAS_BUDGET, gas
