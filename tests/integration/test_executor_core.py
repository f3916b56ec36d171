"""
Differential: the executor's core Solidity libraries (LibRLP, LibTransaction, LibRecords,
LibStepState) against the Python core, on a real anvil through ExecutorCoreHarness.

- every transaction vector, Hypothesis-signed transactions, their mutations and random
  bytes parse to the same kind, members, digest and signer as Python, or to the same
  MALFORMED / BAD_SIGNATURE classification as ``stf.apply_transaction``;
- random records of every kind round-trip byte-identically and decode to the same fields;
- the step state, driven with the accesses Python's ``StepState`` makes (every STF vector
  step, and random get/set programs on a real ``State``), reaches the same post-root and
  reads the same records; a witness for another key, a tampered record or sibling, a
  missing or a leftover entry reverts.
"""

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError

from node.protocol import stf
from node.protocol.crypto import SECP256K1N, keccak256, recover_signer
from node.protocol.eip712 import UINT_BITS, Domain, domain_separator
from node.protocol.encoding import decode_rlp, decode_rlp_list, encode_items, encode_uint
from node.protocol.errors import InvalidSignatureError, WireError
from node.protocol.merkle import ZERO_HASHES, hash_leaf, root_from_path
from node.protocol.records import (
    Account,
    Exchange,
    Level,
    Market,
    Position,
    RestingOrder,
    WithdrawalRecord,
    decode_account,
    decode_exchange,
    decode_level,
    decode_market,
    decode_order,
    decode_withdrawal,
    encode_account,
    encode_exchange,
    encode_level,
    encode_market,
    encode_order,
    encode_withdrawal,
)
from node.protocol.state import LAYOUT, State, global_tree
from node.protocol.step import BatchContext, Reason, Step, StepKind, StepState
from node.protocol.transactions import (
    TRANSACTION_TYPES,
    SignedTransaction,
    decode_transaction,
    encode_transaction,
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
from tests.conftest import deploy
from tests.strategies import domains, mutations, nested_lists, signed_transactions
from tests.vectors.test_vectors import unhex

VECTORS = Path(__file__).parent.parent / "vectors"
TX_VECTORS = json.loads((VECTORS / "transactions.json").read_text())
INVALID_TX_VECTORS = json.loads((VECTORS / "invalid_transactions.json").read_text())
STF_VECTORS = {
    path.name: json.loads(path.read_text()) for path in sorted((VECTORS / "stf").glob("*.json"))
}
DOMAIN = Domain(
    TX_VECTORS["domain"]["chainId"], bytes.fromhex(TX_VECTORS["domain"]["verifyingContract"][2:])
)
SEPARATOR = domain_separator(DOMAIN)
MALFORMED, BAD_SIGNATURE = int(Reason.MALFORMED), int(Reason.BAD_SIGNATURE)
SECP256K1P = 2**256 - 2**32 - 977


def selector(signature: str) -> str:
    """The 0x-hex selector of a custom error, as it appears in revert data."""
    return "0x" + keccak256(signature.encode())[:4].hex()


BAD_WITNESS = selector("BadWitness(uint256,uint256)")
NOT_CONSUMED = selector("WitnessNotConsumed()")


@pytest.fixture(scope="module")
def harness(w3: Web3) -> Contract:
    return deploy(w3, "ExecutorCoreHarness")


# RLP ------------------------------------------------------------------------------------


def rlp_header(data: bytes) -> tuple[bool, bool, int, int] | None:
    """(ok, isList, payload offset, length) when Python decodes ``data`` as one canonical
    item, None when it rejects it."""
    try:
        item = decode_rlp(data)
    except WireError:
        return None
    first = data[0]
    if first < 0x80:
        return (True, False, 0, 1)
    if first < 0xB8:
        return (True, False, 1, first - 0x80)
    if first < 0xC0:
        return (True, False, 1 + first - 0xB7, len(data) - 1 - (first - 0xB7))
    assert isinstance(item, list)
    if first < 0xF8:
        return (True, True, 1, first - 0xC0)
    return (True, True, 1 + first - 0xF7, len(data) - 1 - (first - 0xF7))


def list_header(length: int) -> bytes:
    """The canonical RLP header of a list payload of ``length`` bytes."""
    if length < 56:
        return bytes([0xC0 + length])
    size = encode_uint(length)
    return bytes([0xF7 + len(size)]) + size


def rlp_inputs(rng: random.Random) -> list[bytes]:
    """Canonical items of every header form, their mutations, and hostile headers."""
    items: list[Any] = [b"", b"\x00", b"\x7f", b"\x80", b"\xff", b"a" * 55, b"b" * 56, b"c" * 300]
    items += [[], [b"x"], [b"y" * 60], [[b""], b"z"], [b"q"] * 30]
    inputs = [encode_items(item) for item in items]
    inputs += [flip(raw, rng.randrange(len(raw))) for raw in inputs for _ in range(3)]
    inputs += [raw[:-1] for raw in inputs if len(raw) > 1] + [raw + b"\x00" for raw in inputs]
    inputs += [
        b"\x81\x00", b"\x81\x7f", b"\xb8\x01a", b"\xb8\x37" + b"a" * 55,
        b"\xb9\x00\x38" + b"a" * 56, b"\xf8\x00", b"\xf8\x01\x80", b"\xf9\x00\x38" + b"\x80" * 56,
        b"\xbf" + b"\xff" * 8, b"\xff" + b"\xff" * 8, b"\xb8", b"\xf8", b"\xc1", b"\xc0\xc0",
    ]  # fmt: skip
    inputs += [rng.randbytes(rng.randrange(1, 70)) for _ in range(60)]
    return inputs


def test_rlp_reader_agrees(harness: Contract) -> None:
    """LibRLP reads the header of every input Python decodes as one canonical item, and
    rejects every string Python rejects (a list's items are checked item by item by
    callers, so a list with a bad item may pass the header check alone)."""
    inputs = rlp_inputs(random.Random(3))
    oks, lists, payloads, lengths = harness.functions.readWholeMany(inputs).call()
    for raw, *got in zip(inputs, oks, lists, payloads, lengths, strict=True):
        want = rlp_header(raw)
        if want is not None:
            assert tuple(got) == want, raw.hex()
        elif got[0]:
            # only a list can pass on its header, and only a canonical header spanning it
            _ok, is_list, payload, length = got
            assert is_list and payload + length == len(raw), raw.hex()
            assert raw[:payload] == list_header(length), raw.hex()


# Transactions ---------------------------------------------------------------------------

Parsed = tuple[int, int, tuple[int, ...], bytes, bytes]
"""(reason, kind, the 9 member words, digest, signer); all zero for MALFORMED."""

NOTHING: Parsed = (MALFORMED, 0, (0,) * 9, b"\x00" * 32, b"\x00" * 20)


def word(abi_type: str, value: Any) -> int:
    """A member's EIP-712 word as an integer (an address or bytes32 as its big-endian value)."""
    if abi_type in UINT_BITS or abi_type == "bool":
        return int(value)
    return int.from_bytes(value, "big")


def python_parse(raw: bytes, domain: Domain = DOMAIN) -> Parsed:
    """What ``stf.apply_transaction`` makes of ``raw`` before it reads any state."""
    try:
        tx = decode_transaction(raw)
    except WireError:
        return NOTHING
    message = tx.message
    words = [word(spec.type, getattr(message, spec.attr)) for spec in message.FIELDS]
    words += [0] * (9 - len(words))
    digest = tx.hash(domain)
    try:
        signer = recover_signer(digest, tx.signature)
    except InvalidSignatureError:
        return (BAD_SIGNATURE, int(tx.kind), tuple(words), digest, b"\x00" * 20)
    return (0, int(tx.kind), tuple(words), digest, signer)


def solidity_parse(
    harness: Contract, raws: list[bytes], separator: bytes = SEPARATOR
) -> list[Parsed]:
    reasons, txs = harness.functions.parseMany(raws, separator).call()
    return [
        (reason, kind, tuple(fields), bytes(digest), bytes.fromhex(signer[2:]))
        for reason, (kind, fields, digest, signer) in zip(reasons, txs, strict=True)
    ]


def check_parse(harness: Contract, raws: list[bytes], domain: Domain = DOMAIN) -> list[Parsed]:
    expected = [python_parse(raw, domain) for raw in raws]
    got = solidity_parse(harness, raws, domain_separator(domain))
    for raw, want, have in zip(raws, expected, got, strict=True):
        assert have == want, raw.hex()
    return expected


def no_point_r(rng: random.Random) -> int:
    """An r in [1, n) that is the x-coordinate of no secp256k1 point: nothing recovers."""
    while True:
        r = rng.randrange(1, SECP256K1N)
        if pow(r**3 + 7, (SECP256K1P - 1) // 2, SECP256K1P) != 1:
            return r


def unrecoverable(tx: SignedTransaction, rng: random.Random) -> bytes:
    """``tx`` re-signed with a canonical signature that recovers no key."""
    signature = no_point_r(rng).to_bytes(32, "big") + tx.signature[32:]
    return encode_transaction(replace(tx, signature=signature))


def test_type_hashes_agree(harness: Contract) -> None:
    for kind, cls in TRANSACTION_TYPES.items():
        expected = unhex(TX_VECTORS["types"][cls.TYPE_NAME]["typeHash"])
        assert harness.functions.typeHashOf(int(kind)).call() == expected


def test_transaction_vectors_parse_alike(harness: Contract) -> None:
    """Every vector transaction is accepted with its members, digest and signer."""
    raws = [unhex(case["encoded"]) for case in TX_VECTORS["cases"] if "encoded" in case]
    assert len(raws) >= 40
    parsed = check_parse(harness, raws)
    by_digest = {unhex(case["digest"]): case for case in TX_VECTORS["cases"]}
    for reason, _kind, _words, digest, signer in parsed:
        assert reason == 0
        assert signer == unhex(by_digest[digest]["signer"])


def test_invalid_transaction_vectors_are_malformed(harness: Contract) -> None:
    raws = [unhex(case["encoded"]) for case in INVALID_TX_VECTORS["cases"]]
    assert all(reason == MALFORMED for reason, *_ in check_parse(harness, raws))


def test_hostile_transactions_classify_alike(harness: Contract) -> None:
    """Hand-made edge cases: every RLP header form, nesting, limits, unrecoverable signatures."""
    rng = random.Random(4)
    base = decode_transaction(unhex(TX_VECTORS["cases"][0]["encoded"]))
    raw = encode_transaction(base)
    body = raw[1:]
    raws = [
        b"",
        b"\x01",
        b"\x01\xc0",
        b"\x01\x80",
        b"\x01\x00",
        bytes([1]) + nested_lists(3),
        bytes([1]) + nested_lists(300)[:255],
        raw + b"\x00" * (257 - len(raw)),
        bytes([2]) + body,  # Order members as a Cancel
        bytes([7]) + body,
        bytes([1]) + b"\xf8" + bytes([len(body) - 2]) + body[2:],  # long list, short payload
        bytes([1]) + b"\xb9\x00\x01\x00",
        bytes([1]) + b"\xff" + b"\xff" * 8,
        bytes([1]) + b"\xf9\x00\x00",
        bytes([1]) + b"\xbf" + b"\x00" * 8,
    ]
    # unrecoverable but canonical signatures: BAD_SIGNATURE, not MALFORMED
    for case in TX_VECTORS["cases"]:
        if "encoded" in case:
            raws.append(unrecoverable(decode_transaction(unhex(case["encoded"])), rng))
    # every truncation and one-byte extension of a valid transaction
    raws += [raw[:cut] for cut in range(len(raw))]
    raws += [raw + bytes([b]) for b in (0x00, 0x7F, 0x80, 0xC0)]
    # a signature with r = n - 1, s = n/2 (the edges still allowed) and v = 28
    edge = (SECP256K1N - 1).to_bytes(32, "big") + (SECP256K1N // 2).to_bytes(32, "big") + b"\x1c"
    raws.append(encode_transaction(replace(base, signature=edge)))
    parsed = check_parse(harness, raws)
    assert sum(p[0] == BAD_SIGNATURE for p in parsed) >= 40


@settings(max_examples=12)
@given(
    st.lists(signed_transactions(DOMAIN), min_size=8, max_size=16),
    st.data(),
)
def test_random_transactions_parse_alike(
    harness: Contract, txs: list[SignedTransaction], data: st.DataObject
) -> None:
    """Signed transactions of every kind, their mutations, and random bytes."""
    raws = [encode_transaction(tx) for tx in txs]
    raws += [data.draw(mutations(raw)) for raw in raws]
    raws += data.draw(st.lists(st.binary(max_size=300), min_size=4, max_size=8))
    raws += [bytes([k]) + data.draw(st.binary(max_size=130)) for k in range(1, 8)]
    parsed = check_parse(harness, raws)
    assert all(p[0] == 0 for p in parsed[: len(txs)])


@settings(max_examples=4)
@given(domains, st.data())
def test_transactions_in_random_domains_parse_alike(
    harness: Contract, domain: Domain, data: st.DataObject
) -> None:
    """Transactions signed in a drawn domain, parsed in it (the digest and signer follow the
    domain separator) and in the vectors' domain (another signer recovers, or none)."""
    txs = data.draw(st.lists(signed_transactions(domain), min_size=4, max_size=8))
    raws = [encode_transaction(tx) for tx in txs]
    assert all(p[0] == 0 for p in check_parse(harness, raws, domain))
    check_parse(harness, raws, DOMAIN)


def test_parse_gas(harness: Contract) -> None:
    """Gas of one parse (printed); a loose ceiling catches a gross regression."""
    figures = {}
    for case in TX_VECTORS["cases"]:
        if "encoded" in case and case["type"] not in figures:
            figures[case["type"]] = harness.functions.parseGas(
                unhex(case["encoded"]), SEPARATOR
            ).call()
    print("parse gas:", figures)
    assert max(figures.values()) < 30_000


# Records --------------------------------------------------------------------------------

u = st.integers
i256 = st.integers(-(2**255), 2**255 - 1)
addresses = st.binary(min_size=20, max_size=20)

exchanges = st.builds(Exchange, addresses, i256, u(0, 2**64 - 1), u(0, 2**16 - 1), u(0, 2**16 - 1))
markets = st.builds(
    Market,
    *(u(0, 2**64 - 1) for _ in range(3)),
    *(u(0, 2**16 - 1) for _ in range(4)),
    u(0, 2**32 - 1),
    *(u(0, 2**64 - 1) for _ in range(3)),
    i256,
    i256,
)
positions = st.builds(Position, u(0, 2**32 - 1), st.integers(-(2**63), 2**63 - 1), i256)
accounts = st.builds(
    Account,
    addresses,
    i256,
    u(0, 2**64 - 1),
    u(0, 2**256 - 1),
    st.lists(u(0, 2**64 - 1), max_size=16),
    st.lists(positions, max_size=8),
)
orders = st.builds(
    RestingOrder,
    u(0, 2**64 - 1),
    u(0, 2**32 - 1),
    st.booleans(),
    *(u(0, 2**64 - 1) for _ in range(6)),
    st.binary(min_size=32, max_size=32),
)
levels = st.builds(Level, u(0, 2**64 - 1), u(0, 2**64 - 1), u(0, 2**128 - 1))
withdrawals = st.builds(WithdrawalRecord, u(0, 2**64 - 1), addresses, u(0, 2**64 - 1))


def address_arg(value: bytes) -> str:
    return Web3.to_checksum_address(value)


def exchange_abi(e: Exchange) -> tuple[Any, ...]:
    return (address_arg(e.oracle), e.insurance_fund, e.withdrawal_count,
            e.liquidation_reward_bps, e.liquidation_insurance_bps)  # fmt: skip


def market_abi(m: Market) -> tuple[Any, ...]:
    return (m.tick_size, m.lot_size, m.divisor, m.initial_margin_bps, m.maintenance_margin_bps,
            m.maker_fee_bps, m.taker_fee_bps, m.max_funding_ppm, m.oracle_price, m.oracle_time,
            m.last_price, m.funding_index, m.funding_balance)  # fmt: skip


def account_abi(a: Account) -> tuple[Any, ...]:
    order_ids = a.orders + [0] * (16 - len(a.orders))
    slots = [(p.market, p.size, p.funding_index) for p in a.positions]
    slots += [(0, 0, 0)] * (8 - len(slots))
    return (address_arg(a.owner), a.collateral, a.nonce_base, a.nonce_bits, order_ids,
            len(a.orders), slots, len(a.positions))  # fmt: skip


def order_abi(o: RestingOrder) -> tuple[Any, ...]:
    return (o.account, o.market, o.is_buy, o.tick, o.size, o.remaining, o.expiry, o.prev,
            o.next, o.order_hash)  # fmt: skip


def level_abi(level: Level) -> tuple[Any, ...]:
    return (level.head, level.tail, level.size)


def withdrawal_abi(w: WithdrawalRecord) -> tuple[Any, ...]:
    return (w.account, address_arg(w.recipient), w.amount)


def normalized(value: Any) -> Any:
    """A web3 result with addresses as lowercase 0x-hex and bytes as bytes, for comparing."""
    if isinstance(value, list | tuple):
        return tuple(normalized(v) for v in value)
    if isinstance(value, str) and value.startswith("0x"):
        return value.lower()
    return value


@dataclass(frozen=True)
class RecordKind:
    number: int
    name: str
    strategy: st.SearchStrategy[Any]
    encode: Any
    decode: Any
    to_abi: Any


RECORD_KINDS = [
    RecordKind(0, "Exchange", exchanges, encode_exchange, decode_exchange, exchange_abi),
    RecordKind(1, "Market", markets, encode_market, decode_market, market_abi),
    RecordKind(2, "Account", accounts, encode_account, decode_account, account_abi),
    RecordKind(3, "Order", orders, encode_order, decode_order, order_abi),
    RecordKind(4, "Level", levels, encode_level, decode_level, level_abi),
    RecordKind(5, "Withdrawal", withdrawals, encode_withdrawal, decode_withdrawal, withdrawal_abi),
]


@pytest.mark.parametrize("kind", RECORD_KINDS, ids=lambda k: k.name)
def test_records_round_trip(harness: Contract, kind: RecordKind) -> None:
    """Solidity decode+encode is byte-identical to Python's encoding; Solidity's encoding
    of Python's fields is Python's encoding; Solidity decodes Python's fields."""

    @settings(max_examples=3)
    @given(st.lists(kind.strategy, min_size=6, max_size=12))
    def run(values: list[Any]) -> None:
        records = [kind.encode(v) for v in values]
        assert [
            bytes(r) for r in harness.functions.roundTrip(kind.number, records).call()
        ] == records
        encode = harness.functions[f"encode{kind.name}"]
        decode = harness.functions[f"decode{kind.name}"]
        for value, record in list(zip(values, records, strict=True))[:3]:
            assert kind.decode(record) == value
            assert bytes(encode(kind.to_abi(value)).call()) == record
            assert normalized(decode(record).call()) == normalized(kind.to_abi(value))

    run()


# Step state -----------------------------------------------------------------------------

Op = tuple[bool, int, int, bytes]
"""(write, table, index, record) as the harness takes it."""


class RecordingStepState(StepState):
    """Python's StepState, writing down every get/set the STF makes on it."""

    log: ClassVar[list[list[Op]]] = []

    def __init__(self, base: Any) -> None:
        super().__init__(base)
        self.ops: list[Op] = []
        RecordingStepState.log.append(self.ops)

    def get(self, table: int, index: int) -> bytes:
        self.ops.append((False, table, index, b""))
        return super().get(table, index)

    def set(self, table: int, index: int, record: bytes) -> None:
        self.ops.append((True, table, index, record))
        super().set(table, index, record)


@dataclass
class StepCase:
    name: str
    pre_root: bytes
    witness: bytes
    post_root: bytes
    ops: list[Op]
    reads: list[bytes]
    applied: bool


def python_reads(ops: list[Op], pre_root: bytes, witness: bytes) -> list[bytes]:
    """What each op returns on Python's StepState over the witness (b"" for a set)."""
    state = StepState(WitnessView(pre_root, decode_witness(witness)))
    reads = []
    for write, table, index, record in ops:
        if write:
            state.set(table, index, record)
            reads.append(b"")
        else:
            reads.append(state.get(table, index))
    return reads


def stf_vector_steps(monkeypatch: pytest.MonkeyPatch) -> Iterator[StepCase]:
    """Every STF vector step, with the accesses the STF makes, replayed from its witness."""
    monkeypatch.setattr(stf, "StepState", RecordingStepState)
    kinds = {"l1Message": StepKind.L1_MESSAGE, "transaction": StepKind.TRANSACTION}
    for name, vector in STF_VECTORS.items():
        domain = Domain(vector["domain"]["chainId"], unhex(vector["domain"]["verifyingContract"]))
        root = unhex(vector["preRoot"])
        for number, entry in enumerate(vector["steps"]):
            witness = unhex(entry["witness"])
            view = WitnessView(root, decode_witness(witness))
            RecordingStepState.log.clear()
            step = Step(kinds[entry["kind"]], unhex(entry["data"]))
            outcome = stf.apply_step(view, step, BatchContext(int(entry["timestamp"]), domain))
            assert outcome.reason.name == entry["reason"]
            (ops,) = RecordingStepState.log
            post_root = view.finish()
            assert post_root == unhex(entry["postRoot"])
            reads = python_reads(ops, root, witness)
            yield StepCase(
                f"{name}#{number}", root, witness, post_root, ops, reads, outcome.applied
            )
            root = post_root


def replay(harness: Contract, case: StepCase) -> tuple[bytes, list[bytes]]:
    """The harness's post-root and reads for ``case``."""
    root, reads, _gas = replay_gas(harness, case)
    return root, reads


def replay_gas(harness: Contract, case: StepCase) -> tuple[bytes, list[bytes], int]:
    """The harness's post-root, reads, and the gas the step state took."""
    call = harness.functions.replay(case.pre_root, case.witness, case.ops, case.applied)
    root, reads, gas = call.call()
    return bytes(root), [bytes(r) for r in reads], gas


def test_stf_vector_steps_replay(harness: Contract, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each STF vector step's accesses on the Solidity step state, from the step's witness:
    same reads, same post-root (a rejected step flushes nothing, and its witness holds
    exactly its reads)."""
    count = 0
    heaviest = (0, "", 0)
    for case in stf_vector_steps(monkeypatch):
        root, reads, gas = replay_gas(harness, case)
        assert root == case.post_root, case.name
        assert reads == case.reads, case.name
        count += 1
        heaviest = max(heaviest, (gas, case.name, len(case.ops)))
    assert count >= 500
    print(
        f"replayed {count} STF vector steps; heaviest step state (gas, step, accesses):", heaviest
    )


# Random programs on a real State ---------------------------------------------------------


def random_record(rng: random.Random) -> bytes:
    return rng.choice(
        [b"", b"\x01", rng.randbytes(rng.randrange(1, 40)), rng.randbytes(rng.randrange(60, 600))]
    )


def random_state(rng: random.Random) -> tuple[MemoryNodeStore, bytes, list[tuple[int, int]]]:
    """A committed State with records in every table (dense, clustered and scattered ids),
    and a pool of keys to access: present ones, absent ones, the first and last index of
    each table."""
    store = MemoryNodeStore()
    state = State(store)
    keys = []
    for table in LAYOUT.tables:
        top = (1 << table.depth) - 1
        base = rng.randrange(0, top - 64)
        ids = {0, top, *range(1, 6), *(rng.randrange(0, top + 1) for _ in range(6))}
        ids |= {base + rng.randrange(64) for _ in range(8)}  # a cluster: paths meet low
        for index in ids:
            keys.append((table.id, index))
            if rng.random() < 0.7:
                state.set(table.id, index, rng.randbytes(rng.randrange(1, 120)))
    root = state.commit()
    return store, root, keys


def random_program(rng: random.Random, keys: list[tuple[int, int]], length: int) -> list[Op]:
    pool = rng.sample(keys, min(len(keys), rng.randrange(1, 60)))
    ops: list[Op] = []
    for _ in range(length):
        table, index = rng.choice(pool)
        if rng.random() < 0.5:
            ops.append((False, table, index, b""))
        else:
            ops.append((True, table, index, random_record(rng)))
    return ops


def python_program(store: MemoryNodeStore, root: bytes, ops: list[Op]) -> StepCase:
    """Run ``ops`` on Python's StepState over a witness recorder: witness, reads, post-root."""
    recorder = WitnessRecorder(store, root)
    state = StepState(recorder)
    reads = []
    for write, table, index, record in ops:
        if write:
            state.set(table, index, record)
            reads.append(b"")
        else:
            reads.append(state.get(table, index))
    state.flush()
    return StepCase("program", root, recorder.witness(), recorder.root, ops, reads, True)


def test_random_programs_replay(harness: Contract) -> None:
    """Random get/set programs (deletes, rewrites of the original record, repeated keys,
    every table, ids at both ends of each table) reach Python's post-root."""
    rng = random.Random(2024)
    for _ in range(3):
        store, root, keys = random_state(rng)
        for length in (0, 1, 2, 5, 20, 60, 120):
            ops = random_program(rng, keys, length)
            if length and rng.random() < 0.5:
                # set a key back to its pre-state record: no write entry for it
                table, index = ops[0][1], ops[0][2]
                ops.append((True, table, index, State(store, root).get(table, index)))
            case = python_program(store, root, ops)
            got_root, reads = replay(harness, case)
            assert reads == case.reads
            assert got_root == case.post_root


def test_many_touched_keys_grow_the_index(harness: Contract) -> None:
    """More than the initial capacity of touched keys (the list and hash table grow), each
    read twice and half of them written."""
    rng = random.Random(7)
    store = MemoryNodeStore()
    state = State(store)
    keys = [(3, rng.randrange(1 << 40)) for _ in range(150)] + [(1, i) for i in range(100)]
    for table, index in keys[::2]:
        state.set(table, index, rng.randbytes(50))
    root = state.commit()
    ops: list[Op] = [(False, t, i, b"") for t, i in keys]
    ops += [(True, t, i, rng.randbytes(30)) for t, i in keys[::2]]
    ops += [(False, t, i, b"") for t, i in keys]
    case = python_program(store, root, ops)
    got_root, reads = replay(harness, case)
    assert reads == case.reads
    assert got_root == case.post_root


# Witnesses that prove something else revert ---------------------------------------------


def reverts_with(harness: Contract, case: StepCase, error: str) -> None:
    with pytest.raises(ContractCustomError) as info:
        harness.functions.replay(case.pre_root, case.witness, case.ops, case.applied).call()
    assert str(info.value.args[0]).startswith(error), info.value.args


def root_or_revert(harness: Contract, case: StepCase, want: bytes) -> bool:
    """Replay ``case``: it must revert ``BadWitness`` or reach ``want`` (never another
    root). True when it reverted."""
    try:
        got = replay(harness, case)[0]
    except ContractCustomError as exc:
        assert str(exc.args[0]).startswith(BAD_WITNESS), exc.args
        return True
    assert got == want
    return False


def with_entries(
    case: StepCase, proofs: Sequence[LeafProof], roots: Sequence[bytes] = ()
) -> StepCase:
    """``case`` with a witness of ``proofs`` over its own table roots (or ``roots``)."""
    table_roots = tuple(roots) or decode_witness(case.witness).table_roots
    return replace(case, witness=encode_witness(Witness(table_roots, tuple(proofs))))


def leaf_proof(store: MemoryNodeStore, root: bytes, table: int, index: int) -> LeafProof:
    """The v2 witness entry of (table, index) at ``root``: its table-level siblings."""
    proof = State(store, root).prove(table, index)
    return LeafProof(table, index, proof.record, proof.siblings[: LAYOUT.table(table).depth])


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def substitute(proofs: Sequence[LeafProof], at: int, proof: LeafProof) -> list[LeafProof]:
    return [*proofs[:at], proof, *proofs[at + 1 :]]


def with_sibling(proof: LeafProof, height: int, sibling: bytes) -> LeafProof:
    siblings = list(proof.siblings)
    siblings[height] = sibling
    return replace(proof, siblings=tuple(siblings))


def entry_spans(witness: bytes) -> list[range]:
    """Where each entry (header included) lies in an encoded witness."""
    spans = []

    def item_end(at: int) -> tuple[int, int]:
        """(payload start, end) of the RLP item at ``at``."""
        b = witness[at]
        if b < 0x80:
            return at, at + 1
        if b < 0xB8 or 0xC0 <= b < 0xF8:
            base = 0x80 if b < 0xC0 else 0xC0
            return at + 1, at + 1 + b - base
        n = b - (0xB7 if b < 0xC0 else 0xF7)
        length = int.from_bytes(witness[at + 1 : at + 1 + n], "big")
        return at + 1 + n, at + 1 + n + length

    outer, _ = item_end(0)
    _, roots_end = item_end(outer)
    entries, end = item_end(roots_end)
    at = entries
    while at < end:
        _, stop = item_end(at)
        spans.append(range(at, stop))
        at = stop
    return spans


def test_bad_witnesses_revert(harness: Contract) -> None:
    """A witness that does not prove the step's accesses reverts, and never yields another
    post-root."""
    rng = random.Random(99)
    store, root, keys = random_state(rng)
    present = [k for k in keys if State(store, root).get(*k)]
    # two keys of one table (orders) and one of another; the second order read goes
    # through the table's read cache
    orders = [k for k in present if k[0] == 3]
    ops: list[Op] = [
        (False, *orders[0], b""),
        (True, *orders[1], b"new"),
        (False, *keys[-1], b""),
        (True, *orders[0], b"other"),
    ]
    case = python_program(store, root, ops)
    witness = decode_witness(case.witness)
    proofs = list(witness.proofs)
    assert [(p.table, p.index) for p in proofs] == [orders[0], orders[1], keys[-1]]
    assert replay(harness, case)[0] == case.post_root

    # an entry for another key, at each position; two entries swapped
    other = leaf_proof(store, root, *keys[2])
    assert (other.table, other.index) not in [(p.table, p.index) for p in proofs]
    for at in range(len(proofs)):
        reverts_with(harness, with_entries(case, substitute(proofs, at, other)), BAD_WITNESS)
    reverts_with(harness, with_entries(case, [proofs[1], proofs[0], proofs[2]]), BAD_WITNESS)
    reverts_with(harness, with_entries(case, [proofs[0], proofs[2], proofs[1]]), BAD_WITNESS)
    # a record tampered, extended or emptied
    for at, proof in enumerate(proofs):
        record = proof.record
        for tampered in (flip(record, 0) if record else b"\x01", record + b"\x00", b""):
            if tampered != record:
                bad = with_entries(case, substitute(proofs, at, replace(proof, record=tampered)))
                reverts_with(harness, bad, BAD_WITNESS)
    # a tampered sibling: every sibling of a table's first read counts; a later read of the
    # table is checked against the cached path below the height where it meets it (its
    # lowest sibling always counts), and its siblings above are never used
    tables_seen: set[int] = set()
    for at, proof in enumerate(proofs):
        first_of_table = proof.table not in tables_seen
        tables_seen.add(proof.table)
        for height, sibling in enumerate(proof.siblings):
            bad = with_entries(
                case, substitute(proofs, at, with_sibling(proof, height, flip(sibling, 31)))
            )
            if first_of_table or height == 0:
                reverts_with(harness, bad, BAD_WITNESS)
            else:
                root_or_revert(harness, bad, case.post_root)
    # a missing entry (the witness ends early) and a leftover one
    reverts_with(harness, with_entries(case, proofs[:-1]), BAD_WITNESS)
    reverts_with(harness, with_entries(case, []), BAD_WITNESS)
    reverts_with(harness, with_entries(case, [*proofs, proofs[-1]]), NOT_CONSUMED)
    reverts_with(harness, with_entries(case, [*proofs, other]), NOT_CONSUMED)
    # table roots that do not make the pre-root: any slot, used or not, tampered
    for slot in range(len(witness.table_roots)):
        roots = list(witness.table_roots)
        roots[slot] = flip(roots[slot], 0)
        reverts_with(harness, with_entries(case, proofs, roots), BAD_WITNESS)
    roots = list(witness.table_roots)
    roots[orders[0][0]] = proofs[0].table_root()
    assert replay(harness, with_entries(case, proofs, roots))[0] == case.post_root
    # a witness that is not [roots, entries]: every access reverts
    for broken in (b"", b"\xc0", encode_items([b"".join(witness.table_roots)])):
        reverts_with(harness, replace(case, witness=broken), BAD_WITNESS)
    # raw byte damage anywhere in the encoded witness never yields another post-root; in
    # the roots and the first entry (the first read of its table) every byte counts
    spans = entry_spans(case.witness)
    counts = range(0, spans[0].stop)
    for at in [*counts, *rng.sample(range(spans[1].start, len(case.witness)), 150)]:
        damaged = replace(case, witness=flip(case.witness, at))
        if at in counts:
            reverts_with(harness, damaged, BAD_WITNESS)
        else:
            root_or_revert(harness, damaged, case.post_root)
    # a rejected step's reads with an extra entry left over
    reads_only = replace(case, ops=case.ops[:1], applied=False)
    assert replay(harness, with_entries(reads_only, proofs[:1]))[0] == case.pre_root
    reverts_with(harness, with_entries(reads_only, proofs[:2]), NOT_CONSUMED)
    # an unknown table or an index outside its table is never proven
    for table, index in ((7, 0), (16, 0), (0, 1 << 8), (4, 1 << 41), (3, 1 << 40)):
        bad_key = replace(case, ops=[(False, table, index, b"")])
        reverts_with(harness, bad_key, BAD_WITNESS)


def test_later_reads_high_siblings_are_never_used(harness: Contract) -> None:
    """A later read of a table is verified only up to the height where its path meets the
    table's last read path; its siblings above are garbage here. The multiproof at flush
    takes every sibling from the earliest-read key of the subtree, which was verified that
    high, so the post-root is still right (or the step reverts), never another."""
    rng = random.Random(11)
    store = MemoryNodeStore()
    state = State(store)
    table = 3  # orders, depth 40
    base = rng.randrange(1 << 39)
    near = [base ^ (1 << h) for h in (0, 3, 9, 20)]
    far = [rng.randrange(1 << 40) for _ in range(6)]
    pool = [base, *near, *far]
    for index in pool + [rng.randrange(1 << 40) for _ in range(200)]:
        state.set(table, index, rng.randbytes(60))
    state.set(1, 7, b"account")
    root = state.commit()
    garbage_runs = 0
    for trial in range(24):
        keys = rng.sample(pool, rng.randrange(2, 6))
        ops: list[Op] = [(False, table, k, b"") for k in keys]
        ops.insert(rng.randrange(len(ops)), (False, 1, 7, b""))
        for k in keys:
            if rng.random() < 0.6:
                ops.append((True, table, k, rng.choice([b"", rng.randbytes(40)])))
        case = python_program(store, root, ops)
        assert replay(harness, case)[0] == case.post_root
        proofs = list(decode_witness(case.witness).proofs)
        # garbage every sibling of each later read of the table above its meeting height
        seen: list[int] = []
        garbled = []
        for honest in proofs:
            proof = honest
            if proof.table == table and seen:
                meet = (proof.index ^ seen[-1]).bit_length()
                siblings = [
                    s if h < meet else rng.choice([rng.randbytes(32), ZERO_HASHES[h]])
                    for h, s in enumerate(proof.siblings)
                ]
                proof = replace(proof, siblings=tuple(siblings))
            if proof.table == table:
                seen.append(proof.index)
            garbled.append(proof)
        bad = with_entries(case, garbled)
        assert not root_or_revert(harness, bad, case.post_root), f"trial {trial} reverted"
        garbage_runs += garbled != proofs
        # below the meeting height, the same garbage is caught
        for at, proof in enumerate(proofs[1:], 1):
            if proof.table == table and any(p.table == table for p in proofs[:at]):
                bad = with_entries(
                    case, substitute(proofs, at, with_sibling(proof, 0, rng.randbytes(32)))
                )
                reverts_with(harness, bad, BAD_WITNESS)
    assert garbage_runs >= 10


def test_lenient_witness_forms_verify(harness: Contract) -> None:
    """What the reader accepts beyond the canonical encoding cannot change the result: a
    zero sibling marked present in the bitmap, bitmap bits above the table depth, and
    non-minimal RLP lengths."""
    rng = random.Random(5)
    store, root, keys = random_state(rng)
    key = next(k for k in keys if k[0] == 3)  # orders: sparse, most siblings are empty
    case = python_program(store, root, [(False, 1, 0, b""), (True, *key, b"written")])
    outer = decode_rlp_list(case.witness)
    entries = [list(entry) for entry in outer[1]]
    (proof,) = [p for p in decode_witness(case.witness).proofs if p.table == 3]
    depth = LAYOUT.table(key[0]).depth
    bits = int.from_bytes(entries[1][3], "big")
    height = next(h for h in range(depth) if not bits >> h & 1)
    lenient_bits = bits | 1 << height
    kept = [s for h, s in enumerate(proof.siblings) if lenient_bits >> h & 1]
    entries[1][3] = encode_uint(lenient_bits)
    entries[1][4] = b"".join(kept)
    zero_present = replace(case, witness=encode_items([outer[0], entries]))
    with pytest.raises(WireError):
        decode_witness(zero_present.witness)  # Python's decoder is strict
    assert replay(harness, zero_present)[0] == case.post_root

    entries = [list(entry) for entry in outer[1]]
    entries[1][3] = encode_uint(bits | 1 << 50)
    high_bit = replace(case, witness=encode_items([outer[0], entries]))
    with pytest.raises(WireError):
        decode_witness(high_bit.witness)
    assert replay(harness, high_bit)[0] == case.post_root

    # a one-byte integer written as a string of length 1 (b"\x81\x05" for 5)
    entries = [list(entry) for entry in outer[1]]
    raw_entries = b"".join(encode_items(e) for e in entries)
    table_item = encode_items(entries[0][0])
    assert len(table_item) == 1
    long_first = encode_items(entries[0])
    payload = long_first[header_length(long_first) :]
    widened = b"\x81" + payload  # table id as a non-canonical 1-byte string
    first = list_header(len(widened)) + widened
    rest = raw_entries[len(long_first) :]
    body = encode_items(outer[0]) + list_header(len(first + rest)) + first + rest
    non_canonical = replace(case, witness=list_header(len(body)) + body)
    with pytest.raises(WireError):
        decode_witness(non_canonical.witness)
    assert replay(harness, non_canonical)[0] == case.post_root


def header_length(rlp: bytes) -> int:
    """Length of the RLP header at the start of ``rlp``."""
    if rlp[0] < 0xB8 or 0xC0 <= rlp[0] < 0xF8:
        return 1 if rlp[0] >= 0x80 else 0
    return 1 + rlp[0] - (0xB7 if rlp[0] < 0xC0 else 0xF7)


# Gas ------------------------------------------------------------------------------------


def test_step_state_gas(harness: Contract) -> None:
    """Gas of the memory model (printed; loose ceilings catch gross regressions): the first
    read of a table, depth 40 (orders) with every sibling present (the worst case), and its
    write; another read (and write) in a table of 2000 scattered orders; and a heavy step,
    200 first-touch reads then 100 writes, of keys scattered at random over the deep tables
    (no two paths meet low: the worst case for the read caches and the multiproof) and of
    keys clustered as an order book's are."""
    rng = random.Random(1)
    empty = StepCase("empty", b"\x00" * 32, b"\xc0", b"\x00" * 32, [], [], True)
    base = replay_gas(harness, empty)[2]
    table = 3  # orders
    depth = LAYOUT.table(table).depth
    proof = LeafProof(
        table,
        rng.randrange(1 << 40),
        rng.randbytes(93),
        tuple(rng.randbytes(32) for _ in range(depth)),
    )
    roots = [rng.randbytes(32) if t in (0, 1, 2) else b"\x00" * 32 for t in range(16)]
    roots[table] = proof.table_root()
    root = global_tree(roots)[0]
    witness = encode_witness(Witness(tuple(roots), (proof,)))
    ops: list[Op] = [(False, table, proof.index, b"")]
    read = StepCase("read", root, witness, root, ops, [], True)
    got, _, read_gas = replay_gas(harness, read)
    assert got == root
    new = rng.randbytes(93)
    write = replace(read, ops=[(True, table, proof.index, new)])
    got, _, write_gas = replay_gas(harness, write)
    roots[table] = root_from_path(hash_leaf(new), proof.index, proof.siblings)
    assert got == global_tree(roots)[0]
    figures = {
        "empty step (init, flush)": base,
        "first read of a table, depth 40, all siblings": read_gas - base,
        "its write too (read + write)": write_gas - base,
    }
    store = MemoryNodeStore()
    state = State(store)
    orders = [rng.randrange(1 << 40) for _ in range(2000)]
    for index in orders:
        state.set(table, index, rng.randbytes(93))
    orders_root = state.commit()
    programs: list[list[Op]] = [
        [(False, table, orders[0], b"")],
        [(False, table, orders[0], b""), (False, table, orders[1], b"")],
        [(False, table, orders[0], b""), (True, table, orders[1], rng.randbytes(93))],
    ]
    used = []
    for ops in programs:
        case = python_program(store, orders_root, ops)
        got, _, gas = replay_gas(harness, case)
        assert got == case.post_root
        used.append(gas)
    figures["another read of the table, depth 40, 2000 orders"] = used[1] - used[0]
    figures["another read + its write, depth 40, 2000 orders"] = used[2] - used[0]
    scattered = [(rng.choice((3, 4, 5)), rng.randrange(1 << 35)) for _ in range(200)]
    clustered = [(1, rng.randrange(1, 5000)) for _ in range(60)]
    clustered += [(4, (3 << 25) | (1 << 24) | rng.randrange(50_000, 50_400)) for _ in range(60)]
    clustered += [(5, (3 << 19) | (1 << 18) | rng.randrange(0, 300)) for _ in range(20)]
    clustered += [(3, rng.randrange(1 << 40)) for _ in range(60)]
    for name, keys in (("scattered", scattered), ("clustered", clustered)):
        store = MemoryNodeStore()
        state = State(store)
        for key in keys:
            state.set(*key, rng.randbytes(93))
        heavy_root = state.commit()
        ops = [(False, *key, b"") for key in keys]
        ops += [(True, *key, rng.randbytes(93)) for key in keys[::2]]
        case = python_program(store, heavy_root, ops)
        got, _, heavy_gas = replay_gas(harness, case)
        assert got == case.post_root
        call = harness.functions.replay(heavy_root, case.witness, ops, True)
        figures[f"{name}: 200 reads + 100 writes"] = heavy_gas - base
        figures[f"{name}: same, whole call (estimate_gas)"] = call.estimate_gas()
    print("step state gas:", figures)
    assert read_gas - base < 30_000
    assert used[2] - used[0] < 60_000
    assert figures["scattered: 200 reads + 100 writes"] < 6_000_000
