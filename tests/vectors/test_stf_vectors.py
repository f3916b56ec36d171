"""
The committed STF scenario vectors (tests/vectors/stf/*.json) are reproduced by the
STF, step by step, both on the full Merkle state and on the one-step executor's
memory model (a root and the step's witness, nothing else); together they cover
every rejection reason and every kind of step; and they are not stale.

Each vector is rebuilt from nothing but its own JSON: its genesis object, its
domain, its pre-writes and its steps; the same files drive the Solidity tests.
"""

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from node.protocol.eip712 import Domain
from node.protocol.errors import WireError
from node.protocol.genesis import Genesis, MarketSpec, genesis_state
from node.protocol.inbox import Deposit, ForcedTransaction, decode_l1_message
from node.protocol.records import (
    decode_account,
    decode_exchange,
    decode_market,
    decode_withdrawal,
    order_id_of,
)
from node.protocol.state import (
    TABLE_ACCOUNTS,
    TABLE_MARKETS,
    TABLE_META,
    TABLE_WITHDRAWALS,
    State,
)
from node.protocol.step import (
    BatchContext,
    OrderEnd,
    Outcome,
    Reason,
    RemovalReason,
    Step,
    StepKind,
)
from node.protocol.stf import apply_step
from node.protocol.transactions import (
    ALL_MARKETS,
    CancelAll,
    Liquidate,
    Message,
    OraclePrice,
    Order,
    TimeInForce,
    decode_transaction,
)
from node.protocol.tree import MemoryNodeStore
from node.protocol.witness import LeafProof, Witness, WitnessError, WitnessView, decode_witness
from tests.stf_env import DOMAIN
from tests.vectors import generate, stf_scenarios
from tests.vectors.stf_scenarios import outcome_json

STF_DIR = Path(__file__).parent / "stf"
FILES = sorted(STF_DIR.glob("*.json"))
KINDS = {"l1Message": StepKind.L1_MESSAGE, "transaction": StepKind.TRANSACTION}


def unhex(value: str) -> bytes:
    assert value.startswith("0x")
    return bytes.fromhex(value[2:])


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


VECTORS = {path.name: load(path) for path in FILES}


def genesis_of(vector: dict[str, Any]) -> Genesis:
    """The genesis configuration a vector describes (its divisors must be the derived ones)."""
    data = vector["genesis"]
    markets = []
    for m in data["markets"]:
        spec = MarketSpec(
            id=m["id"],
            symbol=m["symbol"],
            tick_size=int(m["tickSize"]),
            lot_size=int(m["lotSize"]),
            price_decimals=m["priceDecimals"],
            size_decimals=m["sizeDecimals"],
            initial_margin_bps=m["initialMarginBps"],
            maintenance_margin_bps=m["maintenanceMarginBps"],
            maker_fee_bps=m["makerFeeBps"],
            taker_fee_bps=m["takerFeeBps"],
            max_funding_ppm=m["maxFundingPpm"],
        )
        assert spec.divisor == int(m["divisor"]), m
        markets.append(spec)
    return Genesis(
        oracle=unhex(data["oracle"]),
        fee_owner=unhex(data["feeOwner"]),
        liquidation_reward_bps=data["liquidationRewardBps"],
        liquidation_insurance_bps=data["liquidationInsuranceBps"],
        markets=tuple(markets),
    )


def pre_state(vector: dict[str, Any]) -> State:
    """Genesis plus the vector's pre-writes, committed; checked against its preRoot."""
    state = genesis_state(genesis_of(vector), MemoryNodeStore())
    for write in vector["preWrites"]:
        state.set(write["table"], int(write["index"]), unhex(write["record"]))
    assert state.commit() == unhex(vector["preRoot"])
    return state


def domain_of(vector: dict[str, Any]) -> Domain:
    return Domain(vector["domain"]["chainId"], unhex(vector["domain"]["verifyingContract"]))


@dataclass
class Replayed:
    """One vector step replayed on the full state."""

    entry: dict[str, Any]
    step: Step
    context: BatchContext
    pre_root: bytes
    outcome: Outcome
    state: State


def replay(vector: dict[str, Any]) -> Iterator[Replayed]:
    """Apply a vector's steps in order to its pre-state, committing after each."""
    state = pre_state(vector)
    domain = domain_of(vector)
    root = state.root
    for entry in vector["steps"]:
        step = Step(KINDS[entry["kind"]], unhex(entry["data"]))
        context = BatchContext(int(entry["timestamp"]), domain)
        outcome = apply_step(state, step, context)
        yield Replayed(entry, step, context, root, outcome, state)
        root = state.commit()


def deposits_applied(replayed: Replayed) -> Deposit | None:
    """The deposit an applied step credited, if it was one."""
    if replayed.step.kind != StepKind.L1_MESSAGE or not replayed.outcome.applied:
        return None
    message = decode_l1_message(replayed.step.data)
    return message if isinstance(message, Deposit) else None


def check_conservation(
    state: State, accounts: set[int], markets: list[int], deposited: int
) -> None:
    """Collateral is neither created nor destroyed, and every market's sizes sum to zero."""
    exchange = decode_exchange(state.get(TABLE_META.id, 0))
    total = exchange.insurance_fund
    sizes: Counter[int] = Counter()
    for account_id in accounts:
        account = decode_account(state.get(TABLE_ACCOUNTS.id, account_id))
        total += account.collateral
        for position in account.positions:
            sizes[position.market] += position.size
    for market_id in markets:
        total += decode_market(state.get(TABLE_MARKETS.id, market_id)).funding_balance
    for withdrawal_id in range(exchange.withdrawal_count):
        total += decode_withdrawal(state.get(TABLE_WITHDRAWALS.id, withdrawal_id)).amount
    assert total == deposited
    assert all(size == 0 for size in sizes.values()), sizes


@pytest.mark.parametrize("name", VECTORS)
def test_stf_vector_steps_reproduce(name: str) -> None:
    """Every step gives the vector's reason, outcome and post-root on the full state, and
    the same outcome and post-root replayed from its witness alone (the executor's model);
    a rejected step leaves the root unchanged; collateral is conserved after every step."""
    vector = VECTORS[name]
    assert vector["name"] == Path(name).stem
    accounts = {0}
    markets = [market["id"] for market in vector["genesis"]["markets"]]
    deposited = 0
    for replayed in replay(vector):
        entry, outcome = replayed.entry, replayed.outcome
        assert outcome.reason.name == entry["reason"]
        assert outcome_json(outcome) == entry["outcome"]
        post_root = replayed.state.commit()
        assert post_root == unhex(entry["postRoot"])
        if not outcome.applied:
            assert post_root == replayed.pre_root
        view = WitnessView(replayed.pre_root, decode_witness(unhex(entry["witness"])))
        assert apply_step(view, replayed.step, replayed.context) == outcome
        assert view.finish() == post_root
        deposit = deposits_applied(replayed)
        if deposit is not None:
            accounts.add(deposit.account)
            deposited += deposit.amount
        check_conservation(replayed.state, accounts, markets, deposited)


def test_witness_replay_refuses_a_tampered_witness() -> None:
    """The executor model is not satisfied by just any witness: one step's witness short of
    an entry, or with a record changed, is refused."""
    vector = VECTORS["time_in_force.json"]
    replayed = next(r for r in replay(vector) if r.outcome.fills)
    witness = decode_witness(unhex(replayed.entry["witness"]))
    short = Witness(witness.table_roots, witness.proofs[:-1])
    with pytest.raises(WitnessError):
        apply_step(WitnessView(replayed.pre_root, short), replayed.step, replayed.context)
    first, *rest = witness.proofs
    forged = LeafProof(first.table, first.index, first.record + b"\x00", first.siblings)
    tampered = Witness(witness.table_roots, (forged, *rest))
    with pytest.raises(WitnessError):
        apply_step(WitnessView(replayed.pre_root, tampered), replayed.step, replayed.context)


def message_of(step: Step) -> tuple[str, Message | None]:
    """How a step's bytes decode: ("deposit" | "forced" | "transaction" | "malformed", tx)."""
    data = step.data
    source = "transaction"
    if step.kind == StepKind.L1_MESSAGE:
        try:
            l1 = decode_l1_message(data)
        except WireError:
            return "malformed", None
        if not isinstance(l1, ForcedTransaction):
            return "deposit", None
        source, data = "forced", l1.transaction
    try:
        return source, decode_transaction(data).message
    except WireError:
        return "malformed", None


def features(vector: dict[str, Any]) -> set[str]:
    """What the applied steps of a vector exercise, as labels."""
    seen = set()
    for replayed in replay(vector):
        source, message = message_of(replayed.step)
        if not replayed.outcome.applied:
            continue
        seen.add(source)
        if message is None:
            continue
        seen.add(type(message).__name__)
        if isinstance(message, CancelAll):
            seen.add("CancelAll(all)" if message.market == ALL_MARKETS else "CancelAll(one)")
        if isinstance(message, Order):
            seen.add(TimeInForce(message.time_in_force).name)
            if message.price == 0:
                seen.add(f"market {TimeInForce(message.time_in_force).name}")
            if message.reduce_only:
                seen.add(f"reduce-only {TimeInForce(message.time_in_force).name}")
        if replayed.outcome.order is not None:
            seen.add(replayed.outcome.order.end.name)
        seen.update(removal.reason.name for removal in replayed.outcome.removals)
    return seen


def test_vectors_cover_every_reason() -> None:
    """Every rejection reason is the outcome of some vector step (and OK of many)."""
    reasons = Counter(step["reason"] for v in VECTORS.values() for step in v["steps"])
    missing = [reason.name for reason in Reason if reasons[reason.name] == 0]
    assert not missing, f"no vector step is rejected with {missing}"
    assert set(reasons) <= {reason.name for reason in Reason}


def test_vectors_cover_every_step_kind() -> None:
    """Among applied steps: deposits, forced transactions, every transaction type, CancelAll
    for one and all markets, every time in force, market and reduce-only orders, every way
    an order ends and every way a resting order is removed."""
    seen: set[str] = set()
    for vector in VECTORS.values():
        seen |= features(vector)
    wanted = {
        "deposit", "forced", "transaction",
        "Order", "Cancel", "CancelAll", "Transfer", "Withdraw", "Liquidate", "OraclePrice",
        "CancelAll(one)", "CancelAll(all)",
        *(tif.name for tif in TimeInForce),
        "market IOC", "market FOK", "reduce-only IOC", "reduce-only FOK",
        *(end.name for end in OrderEnd),
        *(reason.name for reason in RemovalReason),
    }  # fmt: skip
    assert wanted <= seen, f"not exercised: {sorted(wanted - seen)}"


def test_vectors_cover_funding_and_bad_debt() -> None:
    """Some oracle price accrues funding, some later trade settles it (the market's funding
    balance moves), and some liquidation leaves bad debt that the insurance fund absorbs."""
    seen = set()
    for vector in VECTORS.values():
        for replayed in replay(vector):
            _, message = message_of(replayed.step)
            if not replayed.outcome.applied or message is None:
                continue
            before = State(replayed.state.store, replayed.pre_root)
            after = replayed.state
            if isinstance(message, OraclePrice | Order):
                old = decode_market(before.get(TABLE_MARKETS.id, message.market))
                new = decode_market(after.get(TABLE_MARKETS.id, message.market))
                if isinstance(message, OraclePrice) and new.funding_index != old.funding_index:
                    seen.add("funding accrued")
                if isinstance(message, Order) and new.funding_balance != old.funding_balance:
                    seen.add("funding settled")
            if isinstance(message, Liquidate):
                old_fund = decode_exchange(before.get(TABLE_META.id, 0)).insurance_fund
                new_fund = decode_exchange(after.get(TABLE_META.id, 0)).insurance_fund
                if new_fund < old_fund:
                    seen.add("bad debt")
    assert seen == {"funding accrued", "funding settled", "bad debt"}


def test_stf_vectors_are_not_stale() -> None:
    """Regenerating the STF vectors gives byte-identical files, and no other file is there."""
    assert generate.sync_stf_vectors(check=True) == [], "run `make vectors` and commit the result"


@pytest.mark.slow
def test_collision_nonces_are_the_first_the_search_finds() -> None:
    """The order-id collision of the order_id_collision scenario is reproducible: the
    birthday search finds exactly the committed nonces, and they collide (about 5 s)."""
    first, second = stf_scenarios.COLLISION_NONCES
    template = stf_scenarios.collision_order(0)
    assert stf_scenarios.find_order_id_collision(DOMAIN, template) == (first, second)
    hashes = [stf_scenarios.collision_order(n).signing_hash(DOMAIN) for n in (first, second)]
    assert hashes[0] != hashes[1]
    assert order_id_of(hashes[0]) == order_id_of(hashes[1])
