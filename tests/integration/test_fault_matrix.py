"""
The watchtower's fault matrix (issue 6): for each kind of fault, a rogue batch is posted
on a real anvil with the real contracts, with the post root of a faulty execution, and
a rogue defender bisects with the roots of that faulty execution. One ``ratchet watch``
process must challenge every one inside the window, win at the one-step proof of the
faulty step, see the batch (and its successors) rejected, and be paid.

Every batch carries the same honest trace: three deposits, an oracle price, two makers
at one price, a taker, transfers, a withdrawal, a badly signed transfer (the STF
refuses it) and an order over the taker's margin (the STF stops it). A fault is a
change to how the rogue executed it: a step skipped or swapped, a refused transaction
executed anyway, a step executed with other contents, or records edited around a step.
"""

import dataclasses
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from node.config import load_config, load_genesis
from node.l1.deploy import bind
from node.protocol.batch import encode_transactions
from node.protocol.crypto import address_of, keccak256, sign_digest
from node.protocol.eip712 import Domain
from node.protocol.genesis import Genesis, genesis_state
from node.protocol.inbox import Deposit, encode_l1_message
from node.protocol.records import (
    ASKS,
    Level,
    load_account,
    load_level,
    load_order,
    store_account,
    store_level,
    store_order,
)
from node.protocol.state import State
from node.protocol.step import BatchContext, Step, StepKind
from node.protocol.stf import apply_step
from node.protocol.transactions import (
    Message,
    OraclePrice,
    Order,
    SignedTransaction,
    Transfer,
    Withdraw,
    encode_transaction,
)
from node.protocol.tree import MemoryNodeStore
from tests.integration.rollup_env import (
    SEQUENCER_KEY,
    WATCHER_KEYS,
    Rollup,
    Watchtower,
    deployed_rollup,
    stake,
    wait_for,
    watcher_config,
)
from tests.integration.sequencer_env import port, write_config
from tests.stf_env import FEE_OWNER_KEY, ORACLE_KEY
from tests.stf_env import test_key as key_of
from tests.vectors.stf_scenarios import unrecoverable_signature

MAKER_A, MAKER_B, TAKER = key_of(11), key_of(12), key_of(13)
BTC = 0
PRICE = 600_000  # $60,000 (BTC-PERP prices are in $0.1)
LOT = 1_000_000  # 0.01 BTC (sizes in satoshi)
DOLLAR = 1_000_000


@dataclass
class Plan:
    """One batch: its L1 inputs and its honest steps."""

    domain: Domain
    messages: list[bytes]
    transactions: list[bytes]
    timestamp: int

    def sign(self, key: bytes, message: Message) -> bytes:
        """``message`` signed by ``key`` in the rollup's domain, encoded."""
        signature = sign_digest(key, message.signing_hash(self.domain))
        return encode_transaction(SignedTransaction(message, signature))

    @property
    def steps(self) -> list[Step]:
        return [Step(StepKind.L1_MESSAGE, m) for m in self.messages] + [
            Step(StepKind.TRANSACTION, t) for t in self.transactions
        ]


Rogue = Callable[[State, int, Step, BatchContext], None]
"""How a rogue executes step ``k``: applies something to the state (or nothing)."""


def honest(state: State, k: int, step: Step, context: BatchContext) -> None:
    apply_step(state, step, context)


def trace(genesis: Genesis, plan: Plan, execute: Rogue) -> list[bytes]:
    """The roots of an execution of ``plan`` from genesis, step by step."""
    state = genesis_state(genesis, MemoryNodeStore())
    context = BatchContext(plan.timestamp, plan.domain)
    roots = [state.root]
    for k, step in enumerate(plan.steps):
        execute(state, k, step, context)
        roots.append(state.commit())
    return roots


def plan(domain: Domain, timestamp: int) -> Plan:
    deposits = [
        encode_l1_message(Deposit(address_of(key), account, amount))
        for account, (key, amount) in enumerate(
            [(MAKER_A, 10_000 * DOLLAR), (MAKER_B, 10_000 * DOLLAR), (TAKER, 150 * DOLLAR)],
            start=1,
        )
    ]
    p = Plan(domain, deposits, [], timestamp)
    sign = p.sign
    bad = bytearray(sign(MAKER_A, Transfer(1, 3, 7, 2)))
    bad[-65:] = unrecoverable_signature()
    transactions = [
        sign(ORACLE_KEY, OraclePrice(BTC, PRICE, timestamp)),  # step 3
        sign(MAKER_A, Order(1, BTC, False, PRICE, LOT, 0, False, 0, 1)),  # 4: A rests first
        sign(MAKER_B, Order(2, BTC, False, PRICE, LOT, 0, False, 0, 1)),  # 5: B behind A
        sign(TAKER, Order(3, BTC, True, PRICE, LOT, 1, False, 0, 1)),  # 6: fills A
        sign(MAKER_A, Transfer(1, 2, 1_000, 3)),  # 7
        sign(MAKER_B, Withdraw(2, b"\x11" * 20, 500_000, 2)),  # 8
        sign(TAKER, Transfer(3, 1, 80 * DOLLAR, 2)),  # 9: leaves the taker ~$70
        bytes(bad),  # 10: refused, BAD_SIGNATURE
        sign(TAKER, Order(3, BTC, True, PRICE, LOT * 10, 1, False, 0, 3)),  # 11: over margin
    ]
    p.transactions = transactions
    return p


def step_at(k: int, replacement: Callable[[], bytes | None]) -> Rogue:
    """Execute step ``k`` as ``replacement()`` (a transaction, or None: skip it)."""

    def execute(state: State, i: int, step: Step, context: BatchContext) -> None:
        if i != k:
            apply_step(state, step, context)
            return
        raw = replacement()
        if raw is not None:
            apply_step(state, Step(StepKind.TRANSACTION, raw), context)

    return execute


def skip(k: int) -> Rogue:
    """Leave step ``k`` out."""

    def execute(state: State, i: int, step: Step, context: BatchContext) -> None:
        if i != k:
            apply_step(state, step, context)

    return execute


def around(k: int, before: Callable[[State], None], after: Callable[[State], None]) -> Rogue:
    """Edit records right before and right after step ``k``."""

    def execute(state: State, i: int, step: Step, context: BatchContext) -> None:
        if i == k:
            before(state)
        apply_step(state, step, context)
        if i == k:
            after(state)

    return execute


def collateral(account_id: int, delta: int) -> Callable[[State], None]:
    def edit(state: State) -> None:
        account = load_account(state, account_id)
        assert account is not None
        store_account(
            state, account_id, dataclasses.replace(account, collateral=account.collateral + delta)
        )

    return edit


def swap_queue(state: State) -> None:
    """Put maker B's order ahead of maker A's at the level (price-time violated)."""
    tick = PRICE // 10
    level = load_level(state, BTC, ASKS, tick)
    assert level is not None
    a, b = level.head, level.tail
    order_a, order_b = load_order(state, a), load_order(state, b)
    assert order_a is not None and order_b is not None
    store_level(state, BTC, ASKS, tick, Level(b, a, level.size))
    store_order(state, b, dataclasses.replace(order_b, prev=0, next=a))
    store_order(state, a, dataclasses.replace(order_a, prev=b, next=0))


def nothing(state: State) -> None:
    pass


def faults(p: Plan) -> dict[str, tuple[Rogue, int]]:
    """Each fault: the rogue execution, and the step where it first goes wrong."""
    sign = p.sign

    def swapped(state: State, i: int, step: Step, context: BatchContext) -> None:
        order = {4: 5, 5: 4}.get(i, i)
        apply_step(state, p.steps[order], context)

    return {
        "wrong final root only": (honest, len(p.steps) - 1),
        "a skipped transaction": (step_at(7, lambda: None), 7),
        "two transactions swapped": (swapped, 4),
        "an invalid signature executed": (
            step_at(10, lambda: sign(MAKER_A, Transfer(1, 3, 7, 2))),
            10,
        ),
        "an order overfilled": (
            step_at(6, lambda: sign(TAKER, Order(3, BTC, True, PRICE, 2 * LOT, 1, False, 0, 1))),
            6,
        ),
        "a fill that breaches initial margin": (
            around(11, collateral(3, 100_000 * DOLLAR), collateral(3, -100_000 * DOLLAR)),
            11,
        ),
        "price-time priority violated": (around(6, swap_queue, nothing), 6),
        "a deposit skipped": (skip(1), 1),
        "a withdrawal record with the wrong amount": (
            step_at(8, lambda: sign(MAKER_B, Withdraw(2, b"\x11" * 20, 400_000, 2))),
            8,
        ),
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rollup, Watchtower]]:
    tmp = tmp_path_factory.mktemp("faults")
    with deployed_rollup(tmp) as rollup:
        metrics_port = port()
        config = watcher_config(rollup, tmp / "watcher", metrics_port)
        with Watchtower(config, WATCHER_KEYS[0], metrics_port) as watch:
            for key in (MAKER_A, MAKER_B, TAKER):
                deposit_on_l1(rollup, key)
            yield rollup, watch


def deposit_on_l1(rollup: Rollup, key: bytes) -> None:
    """Fund ``key`` with ETH and collateral and deposit what plan() says it deposits."""
    w3, deployment = rollup.w3, rollup.deployment
    owner = Account.from_key(key).address
    w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "to": owner, "value": Web3.to_wei(1, "ether")}
    )
    amount = 150 * DOLLAR if key == TAKER else 10_000 * DOLLAR
    token = bind(w3, "TestToken", deployment.collateral)
    bridge = bind(w3, "Bridge", deployment.bridge)
    for call in (
        token.functions.mint(owner, amount),
        token.functions.approve(deployment.bridge, amount),
        bridge.functions.deposit(amount),
    ):
        tx = call.build_transaction({"from": owner, "nonce": w3.eth.get_transaction_count(owner)})
        signed = Account.from_key(key).sign_transaction(tx)
        assert (
            w3.eth.wait_for_transaction_receipt(
                w3.eth.send_raw_transaction(signed.raw_transaction)
            )["status"]
            == 1
        )


def send(rollup: Rollup, call: Any) -> None:
    """Send a contract call from the sequencer's key (with a gas margin) and require it to
    succeed."""
    w3 = rollup.w3
    sender = Account.from_key(SEQUENCER_KEY)
    tx = call.build_transaction(
        {"from": sender.address, "nonce": w3.eth.get_transaction_count(sender.address)}
    )
    tx["gas"] = tx["gas"] * 5 // 4
    signed = sender.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction)
    )
    assert receipt["status"] == 1, receipt


FAULTS = [
    "wrong final root only",
    "a skipped transaction",
    "two transactions swapped",
    "an invalid signature executed",
    "an order overfilled",
    "a fill that breaches initial margin",
    "price-time priority violated",
    "a deposit skipped",
    "a withdrawal record with the wrong amount",
]


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_is_caught_and_won(world: tuple[Rollup, Watchtower], fault: str) -> None:
    rollup, watch = world
    w3 = rollup.w3
    genesis = load_genesis(load_config(rollup.config, {}), rollup.config)
    rollup_contract = bind(w3, "Rollup", rollup.deployment.rollup)
    game = bind(w3, "DisputeGame", rollup.deployment.dispute_game)
    timestamp = int(w3.eth.get_block("latest")["timestamp"])
    p = plan(rollup.deployment.domain, timestamp)
    execute, divergence = faults(p)[fault]
    right = trace(genesis, p, honest)
    rogue = trace(genesis, p, execute)
    if fault == "wrong final root only":
        rogue[-1] = keccak256(b"a wrong root")
    first_wrong = next(k for k, (a, b) in enumerate(zip(right, rogue, strict=True)) if a != b)
    assert first_wrong == divergence + 1, (fault, first_wrong)
    stake(rollup)
    index = rollup_contract.functions.nextIndex().call()
    assert index == 0  # every earlier fault's batch was rejected
    games_before = game.functions.gameCount().call()
    send(
        rollup,
        rollup_contract.functions.postBatch(
            index,
            right[0],
            timestamp,
            len(p.messages),
            rogue[-1],
            encode_transactions(p.transactions),
        ),
    )
    # a successor on top of the faulty root (one no-op step: the oracle price again, now
    # stale): it must fall with it
    successor = encode_transactions([p.transactions[0]])
    send(
        rollup,
        rollup_contract.functions.postBatch(
            index + 1, rogue[-1], timestamp, len(p.messages), rogue[-1], successor
        ),
    )
    posted_block = w3.eth.block_number - 1
    wait_for(lambda: game.functions.gameCount().call() == games_before + 1, timeout=60)
    game_id = games_before
    opened = game.events.GameOpened().get_logs(from_block=posted_block)
    print(
        f"\n{fault}: challenged {opened[0]['blockNumber'] - posted_block} L1 blocks"
        " after the posting block"
    )

    def defended() -> bool:
        state = game.functions.game(game_id).call()
        if state[2] != 1:
            return True
        lo, hi = state[5], state[6]
        if state[3] == 0 and hi - lo >= 2:  # the rogue defends with its own roots
            send(rollup, game.functions.bisect(game_id, rogue[(lo + hi) // 2]))
        return False

    wait_for(defended, timeout=90)
    assert game.functions.game(game_id).call()[2] == 3, fault  # ChallengerWon
    proven = game.events.StepProven().get_logs(from_block=0)
    assert proven[-1]["args"]["gameId"] == game_id
    assert proven[-1]["args"]["step"] == divergence, fault
    assert rollup_contract.functions.nextIndex().call() == 0  # the batch and its successor
    assert game.functions.gameCount().call() == games_before + 1  # the successor was spared
    wait_for(lambda: rollup_contract.functions.credit(watch.address).call() == 0)
    wait_for(lambda: game.functions.credit(watch.address).call() == 0)


def test_the_matrix_is_complete() -> None:
    """Every fault of issue 6 is built, each going wrong at a step of the batch."""
    p = plan(Domain(1, b"\x00" * 20), 1)
    built = faults(p)
    assert list(built) == FAULTS
    assert all(0 <= step < len(p.steps) for _, step in built.values())
    # the honest trace does what the faults bend: every step applies except the badly
    # signed transfer, and the order over the taker's margin stops at its first fill
    state = genesis_state(p_genesis(), MemoryNodeStore())
    context = BatchContext(p.timestamp, p.domain)
    outcomes = [apply_step(state, step, context) for step in p.steps]
    assert [o.reason.name for o in outcomes[:10]] == ["OK"] * 10
    assert outcomes[10].reason.name == "BAD_SIGNATURE"
    stopped = outcomes[11].order
    assert stopped is not None and (stopped.filled, stopped.end.name) == (0, "TAKER_MARGIN")
    assert outcomes[6].order is not None and outcomes[6].order.filled == LOT


def p_genesis() -> Genesis:
    """The devnet genesis of configs/markets.toml, as the daemons' configs have it."""
    directory = Path(tempfile.mkdtemp())
    config = write_config(
        directory,
        Domain(1, b"\x00" * 20),
        port=0,
        oracle="0x" + address_of(ORACLE_KEY).hex(),
        fee_owner="0x" + address_of(FEE_OWNER_KEY).hex(),
    )
    return load_genesis(load_config(config, {}), config)
