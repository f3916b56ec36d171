"""
Freshly generated step programs for the differential test of the one-step executor.

:class:`FreshDriver` extends the property tests' :class:`~tests.unit.test_stf_properties.Driver`
(a test exchange turning actions into signed steps) with a seeded ``random.Random`` that
draws the actions, a few composite actions of its own (MAX_MATCHES-maker sweeps, makers that
over-commit and breach their margin, expired makers, funding over hours, 17 resting
orders, bad signatures, malformed L1 messages, many accounts), and a hook that proves
every step with :func:`node.protocol.stf.prove_step` from the exact current root. Each
step comes out as a :class:`FreshStep`: everything ``IOneStepExecutor.execute`` takes
(pre-root, kind, data, batch timestamp, domain separator, witness) and what it must
return (post-root, reason).

Actions are drawn by weight (:data:`ACTIONS`), except that every :data:`TOUR_SPACING`
steps the next action of a fixed :data:`TOUR` runs with arguments aimed at one outcome
(each hostile category, a MAX_MATCHES-maker sweep, a maker's margin breach, an overfill, a
liquidation, funding): whatever the seed, a run of 2,000 steps reaches every feature of
:data:`REQUIRED_FEATURES` about three times. About 70% of the steps are applied and
change the state; the rest are rejected, for each of the 30 rejection reasons (the
first steps: orders before any oracle price, and two orders of one account whose ids
collide, found once by the vectors' birthday search).

The same seed gives the same steps (RFC 6979 signatures, a seeded generator, a fixed
start time), so a seed and a step number reproduce any step::

    from tests.differential.fresh import replay_step
    step = replay_step(seed, index)

:class:`ExecutorClient` runs steps on a deployed ``OneStepExecutor`` through JSON-RPC
batch requests (one HTTP POST carrying many ``eth_call`` objects); :func:`compare`
turns a disagreement into a message that reproduces it.
"""

import json
import random
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode

from node.protocol.accounts import MAX_DEPOSIT
from node.protocol.crypto import SECP256K1N, keccak256, sign_digest
from node.protocol.eip712 import Domain, domain_separator
from node.protocol.inbox import Deposit, ForcedTransaction, encode_l1_message
from node.protocol.orders import MAX_MATCHES
from node.protocol.records import ACCOUNT_LIMIT, MAX_OPEN_ORDERS, TICK_BITS
from node.protocol.step import Outcome, Reason, Step, StepKind
from node.protocol.stf import apply_step, prove_step
from node.protocol.transactions import (
    ALL_MARKETS,
    MAX_TRANSACTION_BYTES,
    Cancel,
    CancelAll,
    Liquidate,
    Message,
    Order,
    TimeInForce,
    TxKind,
    Withdraw,
)
from node.protocol.tree import MemoryNodeStore
from node.protocol.witness import WitnessView, decode_witness
from tests.stf_env import DOMAIN, USD
from tests.unit.test_stf_properties import (
    BAD_ORDER_VARIANTS,
    INITIAL_PRICE,
    PRICE_MOVES_BPS,
    TRANSFER_MODES,
    Driver,
    Record,
    inner_transaction,
)
from tests.vectors.stf_scenarios import (
    COLLISION_NONCES,
    collision_order,
    unrecoverable_signature,
)

DOMAIN_SEPARATOR: Final = domain_separator(DOMAIN)
"""The EIP-712 domain separator every generated transaction is signed in."""

MAX_TRADERS: Final = 48
"""Accounts a program registers at most (besides the fee account)."""

INITIAL_TRADERS: Final = 12
"""Accounts registered by the first steps of every program."""

_GTC, _IOC, _FOK, _POST = (int(t) for t in TimeInForce)
_MAX_U64: Final = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class FreshStep:
    """One generated step: the executor's inputs and the outputs the Python STF gives."""

    index: int
    """Position in the program (0 is its first step)."""

    action: str
    """The action that produced it (the driver's ``act_*`` name)."""

    pre_root: bytes
    """The state root the step starts from (the previous step's post-root)."""

    kind: StepKind
    """L1 inbox message or batch transaction."""

    data: bytes
    """The step's bytes."""

    timestamp: int
    """The batch timestamp it runs at."""

    witness: bytes
    """``prove_step``'s witness of the step from :attr:`pre_root`."""

    post_root: bytes
    """The state root after it (== :attr:`pre_root` if it was rejected)."""

    reason: Reason
    """``Reason.OK`` if applied, else why not."""

    outcome: Outcome
    """The Python STF's full outcome."""

    tags: frozenset[str] = frozenset()
    """Coverage features beyond the reason (see :func:`step_features`)."""

    def describe(self, seed: int) -> str:
        """Everything that reproduces this step."""
        return (
            f"seed {seed} step {self.index} ({self.action}): kind {self.kind.name}, "
            f"timestamp {self.timestamp}, Python reason {self.reason.name}, "
            f"preRoot 0x{self.pre_root.hex()}, postRoot 0x{self.post_root.hex()}, "
            f"data 0x{self.data.hex()} (replay: tests.differential.fresh.replay_step"
            f"({seed}, {self.index}))"
        )


def step_features(step: FreshStep) -> set[str]:
    """What a step exercised: its reason, its source, how an order ended, what it removed."""
    features = {step.reason.name, *step.tags}
    outcome = step.outcome
    if step.kind == StepKind.L1_MESSAGE:
        source = {b"\x00": "deposit", b"\x01": "forced"}.get(step.data[:1], "other")
        features.add(f"l1:{source}:{step.reason.name}")
    if outcome.order is not None:
        features.add(f"end:{outcome.order.end.name}")
        if outcome.fills:
            features.add("filled")
    for removal in outcome.removals:
        features.add(f"removal:{removal.reason.name}")
    if len(outcome.fills) >= MAX_MATCHES:
        features.add("fills:16")
    return features


# The generator ----------------------------------------------------------------------------


class FreshDriver(Driver):
    """
    The property tests' driver with seeded action draws and a prover: every step it
    submits is proved from the committed root before it is applied, and queued as a
    :class:`FreshStep` once applied (after checking both runs agree).
    """

    def __init__(self, seed: int, check_witness: bool = False) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.check_witness = check_witness
        self.queue: list[FreshStep] = []
        self.count = 0
        self.action_name = "genesis"
        self._proof: tuple[bytes, int, Outcome, bytes, bytes] | None = None
        self._funding: tuple[int, ...] | None = None
        self._booting = True  # no oracle prices yet: the first steps see NO_ORACLE_PRICE
        self.next_tour = 0
        self.tour_position = 0
        rng = self.rng
        deposits = [
            rng.choice((2_000, 20_000, 100_000, 100_000, 1_000_000)) * USD
            for _ in range(INITIAL_TRADERS)
        ]
        super().__init__(deposits, before=_before_hook, after=_after_hook)
        self._booting = False
        self.action_name = "no_price"
        self.act_order(0, 0, True, 0, 5, _GTC, False, 0, False, False, "next")
        self.act_liquidate(1, 0, 1, "random", False)
        self.action_name = "genesis"
        for market, price in INITIAL_PRICE.items():
            self.act_price(market, 0, "ok", price)
        self.action_name = "order_id_collision"
        self.act_order_id_collision()

    # proving every step -----------------------------------------------------------------

    def _before(self, step: Step) -> None:
        ex = self.ex
        root = ex.root()
        store = ex.state.store
        assert isinstance(store, MemoryNodeStore)
        context = ex.context
        outcome, witness, post_root = prove_step(store, root, step, context)
        if self.check_witness:
            view = WitnessView(root, decode_witness(witness))
            replayed = apply_step(view, step, context)
            assert view.finish() == post_root and replayed == outcome, (
                f"seed {self.seed} step {self.count}: the witness replay disagrees"
            )
        self._proof = (root, context.timestamp, outcome, witness, post_root)
        raw = inner_transaction(step)
        if raw[:1] == bytes((TxKind.ORACLE_PRICE,)):
            self._funding = tuple(ex.market(m).funding_index for m in INITIAL_PRICE)

    def _after(self, record: Record) -> None:
        assert self._proof is not None
        pre_root, timestamp, proved, witness, post_root = self._proof
        self._proof = None
        root = self.ex.root()
        assert record.outcome == proved and root == post_root, (
            f"seed {self.seed} step {self.count}: prove_step and apply_step disagree"
        )
        tags: set[str] = set()
        if self._funding is not None:
            funding = tuple(self.ex.market(m).funding_index for m in INITIAL_PRICE)
            if funding != self._funding:
                tags.add("funding")
            self._funding = None
        if proved.reason is Reason.OK and inner_transaction(record.step)[:1] == LIQUIDATE:
            tags.add("liquidation")
        self.queue.append(
            FreshStep(
                self.count, self.action_name, pre_root, record.step.kind, record.step.data,
                timestamp, witness, post_root, proved.reason, proved, frozenset(tags),
            )
        )  # fmt: skip
        self.count += 1

    def act_price(self, market: int, move_bps: int, mode: str, price: int | None = None) -> None:
        if not self._booting:
            super().act_price(market, move_bps, mode, price)

    # the stream -------------------------------------------------------------------------

    def steps(self, count: int) -> Iterator[FreshStep]:
        """The program's first ``count`` steps, generated as they are consumed."""
        produced = 0
        while produced < count:
            while not self.queue:
                self.act_random()
            batch, self.queue = self.queue, []
            for step in batch[: count - produced]:
                yield step
                produced += 1

    def act_random(self) -> None:
        """Run one action: the next one of the tour every :data:`TOUR_SPACING` steps,
        else one drawn by weight."""
        if self.count >= self.next_tour:
            self.next_tour = self.count + TOUR_SPACING
            name, fixed = TOUR[self.tour_position % len(TOUR)]
            self.tour_position += 1
            self.action_name = name
            args = getattr(self, "draw_" + name)()
            args = tuple(fixed.get(k, a) for k, a in enumerate(args))
        else:
            name = self.rng.choices(ACTION_NAMES, ACTION_WEIGHTS)[0]
            self.action_name = name
            args = getattr(self, "draw_" + name)()
        getattr(self, "act_" + name)(*args)

    # drawing the actions of the base driver ---------------------------------------------

    def t(self) -> int:
        return self.rng.randrange(len(self.traders))

    def forced(self) -> bool:
        return self.rng.random() < 0.15

    def nonce_mode(self) -> str:
        return self.rng.choice(("next",) * 12 + ("reuse", "old", "jump", "far"))

    def market_id(self) -> int:
        return self.rng.randrange(2)

    def draw_order(self) -> tuple[Any, ...]:
        r = self.rng
        tif = r.choice((_GTC, _GTC, _GTC, _IOC, _IOC, _FOK, _POST))
        return (
            self.t(), self.market_id(), r.random() < 0.5, r.randint(-12, 12),
            r.choice((1, 5, 20, 50, 90, 95, 99, 150, 250)), tif, r.random() < 0.12,
            r.choice((0, 0, 0, 0, 5, 60, 600, 3_600)), r.random() < 0.12, self.forced(),
            self.nonce_mode(),
        )  # fmt: skip

    def draw_bad_order(self) -> tuple[Any, ...]:
        r = self.rng
        variant = r.choice(BAD_ORDER_VARIANTS)
        return (self.t(), self.market_id(), r.random() < 0.5, variant, self.forced())

    def draw_quote(self) -> tuple[Any, ...]:
        r = self.rng
        distance = r.randint(0, 12) if r.random() < 0.85 else r.randint(13, 1_999)
        return (
            self.t(), self.market_id(), r.random() < 0.5, distance, r.choice((1, 3, 10, 20)),
            r.choice((0, 0, 0, 30, 600)),
        )  # fmt: skip

    def draw_ladder(self) -> tuple[Any, ...]:
        r = self.rng
        return (
            self.t(), self.market_id(), r.random() < 0.5, r.randint(0, 6), r.randint(2, 12),
            r.random() < 0.5,
        )  # fmt: skip

    def draw_sweep(self) -> tuple[Any, ...]:
        r = self.rng
        return (self.t(), self.market_id(), r.random() < 0.5, r.choice((20, 50, 90)), self.forced())

    def draw_cancel(self) -> tuple[Any, ...]:
        r = self.rng
        mode = r.choice(("own", "own", "own", "own", "other", "random", "gone"))
        return (self.t(), r.randrange(32), mode, self.forced(), self.nonce_mode())

    def draw_cancel_all(self) -> tuple[Any, ...]:
        market = self.rng.choice((0, 1, ALL_MARKETS, ALL_MARKETS, 2, 123_456))
        return (self.t(), market, self.forced())

    def draw_transfer(self) -> tuple[Any, ...]:
        mode = self.rng.choice(TRANSFER_MODES + ("small",) * 6)
        return (self.t(), self.rng.randrange(64), mode, self.forced())

    def draw_withdraw(self) -> tuple[Any, ...]:
        modes = ("small", "small", "small", "free", "half", "over", "huge", "zero", "elsewhere",
                 "fee_account")  # fmt: skip
        return (self.t(), self.rng.choice(modes), self.forced())

    def draw_liquidate(self) -> tuple[Any, ...]:
        r = self.rng
        mode = r.choice(("scan",) * 6 + ("random", "self", "unknown", "unknown_market"))
        return (self.t(), r.randrange(64), self.market_id(), mode, self.forced())

    def draw_price(self) -> tuple[Any, ...]:
        r = self.rng
        mode = r.choice(("ok",) * 12 + ("zero", "stale", "future", "wrong_key", "unknown_market"))
        return (self.market_id(), r.choice(PRICE_MOVES_BPS), mode)

    def draw_squeeze(self) -> tuple[Any, ...]:
        return (self.market_id(), self.rng.choice((300, 600, 1_000, 1_500, 3_000)))

    def draw_advance(self) -> tuple[Any, ...]:
        return (self.rng.choice((1, 5, 30, 120, 600, 3_600)),)

    def draw_deposit(self) -> tuple[Any, ...]:
        r = self.rng
        amount = r.choice((0, 1, 500 * USD, 20_000 * USD, 250_000 * USD, MAX_DEPOSIT))
        mode = r.choice(("trader",) * 4 + ("out_of_range", "too_much", "fee"))
        return (self.t(), amount, mode)

    def draw_junk(self) -> tuple[Any, ...]:
        r = self.rng
        prefix = r.choice((b"", b"\x00", b"\x01", *(bytes([k]) for k in range(1, 8))))
        return (r.random() < 0.5, prefix, r.randbytes(r.randrange(0, 120)))

    def draw_mutate(self) -> tuple[Any, ...]:
        r = self.rng
        ops = [
            (r.choice(("flip", "flip", "set", "insert", "delete", "truncate", "append")),
             r.randrange(256), r.randrange(256))
            for _ in range(r.randint(1, 3))
        ]  # fmt: skip
        # mostly recent steps: they are valid transactions of the current accounts
        index = max(len(self.log) - 1 - int(r.expovariate(1 / 30)), 0)
        return (index, r.random() < 0.3, ops)

    def draw_replay(self) -> tuple[Any, ...]:
        return (max(len(self.log) - 1 - int(self.rng.expovariate(1 / 20)), 0),)

    def draw_wrong_key(self) -> tuple[Any, ...]:
        r = self.rng
        mode = r.choice(("trader", "stranger", "oracle", "fee_owner", "unregistered"))
        kind = r.choice(("order", "withdraw", "transfer", "liquidate", "cancel_all"))
        return (self.t(), r.randrange(64), mode, kind, self.forced())

    # actions of its own -----------------------------------------------------------------

    def draw_register(self) -> tuple[Any, ...]:
        amount = self.rng.choice((2_000, 20_000, 100_000, 250_000, 1_000_000)) * USD
        return (amount,)

    def act_register(self, amount: int) -> None:
        """A new account by a deposit (up to :data:`MAX_TRADERS`), else a top-up."""
        if len(self.traders) < MAX_TRADERS:
            self.register(amount)
        else:
            trader = self.trader(self.t())
            self.deposit(trader.address, trader.id, amount)

    def draw_deep_sweep(self) -> tuple[Any, ...]:
        r = self.rng
        return (
            self.t(),
            self.market_id(),
            r.random() < 0.5,
            r.randint(MAX_MATCHES, MAX_MATCHES + 4),
            r.random() < 0.3,
        )

    def act_deep_sweep(
        self, t: int, market: int, is_buy: bool, makers: int, same_level: bool
    ) -> None:
        """At least MAX_MATCHES small resting orders from successive traders, then a large IOC from
        the richest trader through all of them: it stops at ``MAX_MATCHES`` makers."""
        self.act_ladder(t, market, is_buy, 1, makers, same_level)
        self.act_sweep(1, market, not is_buy, 90, self.forced())

    def draw_maker_breach(self) -> tuple[Any, ...]:
        r = self.rng
        return (self.t(), self.market_id(), r.random() < 0.5, r.choice((50, 80, 95)))

    def act_maker_breach(self, t: int, market: int, is_buy: bool, tenths: int) -> None:
        """A maker rests a large order at the touch, withdraws all its free collateral,
        then a sweep reaches its order: the fill would breach its margin (MAKER_MARGIN)."""
        trader = self.trader(t)
        self.act_quote(t, market, is_buy, 0, tenths, 0)
        amount = min(self.free_collateral(trader.id), _MAX_U64)
        if amount > 0:
            message = Withdraw(trader.id, trader.address, amount, self.nonce(trader))
            self.send(message, trader.key, False)
        self.act_sweep(t + 1 + self.rng.randrange(len(self.traders) - 1), market, not is_buy, 50,
                       False)  # fmt: skip

    def draw_expired_makers(self) -> tuple[Any, ...]:
        r = self.rng
        return (self.t(), self.market_id(), r.random() < 0.5, r.randint(2, 6))

    def act_expired_makers(self, t: int, market: int, is_buy: bool, count: int) -> None:
        """``count`` quotes expiring in 5 s, 10 s later a taker reaches them (EXPIRED
        removals) and an order already expired arrives (EXPIRED rejection)."""
        for j in range(count):
            self.act_quote(t + j, market, is_buy, 0, 1, 5)
        self.act_advance(10)
        self.act_sweep(t + count, market, not is_buy, 20, False)
        self.act_bad_order(t, market, is_buy, "expired", self.forced())

    def draw_funding(self) -> tuple[Any, ...]:
        return (self.rng.choice((600, 3_600, 4 * 3_600, 9 * 3_600)), self.rng.randint(-300, 300))

    def act_funding(self, seconds: int, move_bps: int) -> None:
        """Time passes, a trade moves the mark, then both markets get a new oracle price:
        funding accrues on the premium of the mark over the index."""
        self.act_advance(seconds)
        market = self.market_id()
        self.act_order(self.t(), market, self.rng.random() < 0.5, 8, 5, _IOC, False, 0,
                       False, False, "next")  # fmt: skip
        for m in INITIAL_PRICE:
            self.act_price(m, move_bps, "ok")

    def draw_order_spam(self) -> tuple[Any, ...]:
        return (self.t(), self.market_id())

    def act_order_spam(self, t: int, market: int) -> None:
        """One trader rests far-away orders until the 17th is refused (TOO_MANY_ORDERS),
        then cancels them all."""
        trader = self.trader(t)
        account = self.ex.account(trader.id)
        assert account is not None
        for j in range(MAX_OPEN_ORDERS + 1 - len(account.orders)):
            self.act_quote(t, market, j % 2 == 0, 500 + 3 * j, 1, 0)
        self.act_cancel_all(t, ALL_MARKETS, self.forced())

    def draw_fok(self) -> tuple[Any, ...]:
        r = self.rng
        return (
            self.t(),
            self.market_id(),
            r.random() < 0.5,
            r.choice((20, 90, 400)),
            r.random() < 0.3,
        )

    def act_fok(self, t: int, market: int, is_buy: bool, tenths: int, market_order: bool) -> None:
        """A fill-or-kill order, often larger than the book can fill (NOT_FILLED)."""
        self.act_order(t, market, is_buy, 6, tenths, _FOK, False, 0, market_order, self.forced(),
                       "next")  # fmt: skip

    def draw_post_cross(self) -> tuple[Any, ...]:
        r = self.rng
        return (self.t(), self.market_id(), r.random() < 0.5, r.randint(-2, 25))

    def act_post_cross(self, t: int, market: int, is_buy: bool, offset: int) -> None:
        """A post-only order at or through the touch: rests or is refused (WOULD_CROSS)."""
        self.act_order(t, market, is_buy, offset if is_buy else -offset, 5, _POST, False, 0,
                       False, self.forced(), "next")  # fmt: skip

    def draw_bad_signature(self) -> tuple[Any, ...]:
        r = self.rng
        variant = r.choice(("unrecoverable", "random", "random", "high_s", "v", "zero", "short",
                            "long", "domain", "r_max"))  # fmt: skip
        return (self.t(), variant, r.randbytes(64), self.forced())

    def act_bad_signature(self, t: int, variant: str, noise: bytes, forced: bool) -> None:
        """A valid order or transfer whose 65 signature bytes are replaced: unrecoverable
        (BAD_SIGNATURE), random (usually WRONG_SIGNER or BAD_SIGNATURE), non-canonical
        (MALFORMED), or signed in another domain (WRONG_SIGNER)."""
        trader = self.trader(t)
        message = self.valid_message(trader)
        raw = self.ex.sign(trader.key, message)
        body, signature = raw[:-65], raw[-65:]
        r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
        match variant:
            case "unrecoverable":
                signature = UNRECOVERABLE
            case "random":
                low_s = int.from_bytes(noise[32:], "big") % (SECP256K1N // 2) + 1
                signature = noise[:32] + low_s.to_bytes(32, "big") + bytes([27 + noise[0] % 2])
            case "high_s":
                signature = r + (SECP256K1N - s).to_bytes(32, "big") + bytes([v ^ 1])
            case "v":
                signature = signature[:64] + bytes([noise[0] % 4 if noise[0] % 2 else 29])
            case "zero":
                signature = bytes(65)
            case "r_max":
                signature = SECP256K1N.to_bytes(32, "big") + signature[32:]
            case "short" | "long":
                # the signature item's length changes: its RLP header must follow
                sig = signature[:64] if variant == "short" else signature + b"\x00"
                raw = body[:-2] + bytes([0xB8, len(sig)]) + sig
                raw = raw[:1] + _relist(raw[1:])
                self._send_raw(raw, forced)
                return
            case "domain":
                foreign = Domain(DOMAIN.chain_id + 1, DOMAIN.verifying_contract)
                signature = sign_digest(trader.key, message.signing_hash(foreign))
        self._send_raw(body + signature, forced)

    def draw_bad_l1(self) -> tuple[Any, ...]:
        r = self.rng
        variant = r.choice(("empty", "kind", "short_deposit", "long_deposit", "forced_empty",
                            "forced_oversize", "forced_junk", "account_limit", "amount_u256",
                            "account_max"))  # fmt: skip
        return (self.t(), variant, r.randbytes(80))

    def act_bad_l1(self, t: int, variant: str, noise: bytes) -> None:
        """An L1 inbox message the bridge would never queue (MALFORMED, INVALID_DEPOSIT)."""
        trader = self.trader(t)
        deposit = encode_l1_message(Deposit(trader.address, trader.id, USD))
        valid = self.ex.sign(trader.key, self.valid_message(trader))
        data = {
            "empty": b"",
            "kind": bytes([2 + noise[0] % 254]) + noise[1 : 1 + noise[2] % 70],
            "short_deposit": deposit[: 1 + noise[0] % 60],
            "long_deposit": deposit + noise[: 1 + noise[0] % 8],
            "forced_empty": b"\x01",
            "forced_oversize": b"\x01" + valid + bytes(MAX_TRANSACTION_BYTES + 1 - len(valid)),
            "forced_junk": b"\x01" + noise[: noise[0] % 80],
            "account_limit": encode_l1_message(Deposit(trader.address, ACCOUNT_LIMIT, USD)),
            "amount_u256": encode_l1_message(Deposit(trader.address, trader.id, 1 << 64)),
            "account_max": encode_l1_message(Deposit(trader.address, _MAX_U64, 1)),
        }[variant]
        self.submit(Step(StepKind.L1_MESSAGE, data))

    def draw_nonces(self) -> tuple[Any, ...]:
        return (self.t(), self.forced())

    def act_nonces(self, t: int, forced: bool) -> None:
        """A trader's valid CancelAll, then the same nonce again (NONCE_USED), then a nonce
        past the window (applied: it slides the window), then one below it (NONCE_TOO_OLD)."""
        trader = self.trader(t)
        nonce = self.nonce(trader)
        for n in (nonce, nonce, nonce + 300, nonce + 1):
            self.send(CancelAll(trader.id, ALL_MARKETS, n), trader.key, forced)
        trader.next_nonce = max(trader.next_nonce, nonce + 301)

    def draw_liquidate_flat(self) -> tuple[Any, ...]:
        return (self.t(), self.market_id(), self.forced())

    def act_liquidate_flat(self, t: int, market: int, forced: bool) -> None:
        """Liquidate an account without a position in the market (NO_POSITION)."""
        liquidator = self.trader(t)
        for trader in self.traders:
            account = self.ex.account(trader.id)
            assert account is not None
            if trader.id != liquidator.id and all(p.market != market for p in account.positions):
                target = trader.id
                break
        else:
            self.register(1_000 * USD)
            target = self.traders[-1].id
        message = Liquidate(liquidator.id, target, market, self.nonce(liquidator))
        self.send(message, liquidator.key, forced)

    def draw_poor_liquidator(self) -> tuple[Any, ...]:
        return (self.market_id(), self.rng.choice((1_500, 3_000)))

    def act_poor_liquidator(self, market: int, move_bps: int) -> None:
        """A squeeze, then the poorest trader tries to take over an underwater position
        (LIQUIDATOR_MARGIN unless it happens to be able to)."""
        self.act_squeeze(market, move_bps)
        poorest = min(
            range(len(self.traders)), key=lambda i: self.free_collateral(self.traders[i].id)
        )
        self.act_liquidate(poorest, 0, market, "scan", False)

    def act_order_id_collision(self) -> None:
        """Account 1 rests an order, then sends one whose hash differs but whose order id
        is the same (the nonces the vectors found by a birthday search): ORDER_ID_TAKEN;
        it cancels the first, and the second rests in its slot."""
        trader = self.traders[0]
        first, second = (collision_order(nonce) for nonce in COLLISION_NONCES)
        assert trader.id == first.account
        self.send(first, trader.key, False)
        self.send(second, trader.key, False)
        trader.next_nonce = max(trader.next_nonce, second.nonce + 1)
        self.send(Cancel(trader.id, first.signing_hash(DOMAIN), self.nonce(trader)), trader.key,
                  self.forced())  # fmt: skip
        self.send(second, trader.key, False)

    def valid_message(self, trader: Any) -> Message:
        """A valid order of ``trader`` resting well away from the price (its next nonce)."""
        m = self.ex.market(0)
        tick = min(max(self.near_tick(0, -200), 1), (1 << TICK_BITS) - 1)
        return Order(trader.id, 0, True, tick * m.tick_size, m.lot_size, _GTC, False, 0,
                     self.nonce(trader))  # fmt: skip

    def _send_raw(self, raw: bytes, forced: bool) -> None:
        if forced:
            self.submit(Step(StepKind.L1_MESSAGE, encode_l1_message(ForcedTransaction(raw))))
        else:
            self.submit(Step(StepKind.TRANSACTION, raw))


def _before_hook(driver: Driver, step: Step) -> None:
    assert isinstance(driver, FreshDriver)
    driver._before(step)


def _after_hook(driver: Driver, record: Record) -> None:
    assert isinstance(driver, FreshDriver)
    driver._after(record)


LIQUIDATE: Final = bytes((TxKind.LIQUIDATE,))

UNRECOVERABLE: Final = unrecoverable_signature()
"""A canonical signature from which no public key recovers."""


def _relist(payload: bytes) -> bytes:
    """Re-frame an RLP list whose items changed length: ``payload`` is the old list
    (header included); its items are kept, the header is rebuilt."""
    first = payload[0]
    header = 1 if first <= 0xF7 else 1 + (first - 0xF7)
    items = payload[header:]
    n = len(items)
    if n < 56:
        return bytes([0xC0 + n]) + items
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0xF7 + len(length)]) + length + items


ACTIONS: Final[dict[str, int]] = {
    "order": 200,
    "quote": 130,
    "ladder": 20,
    "sweep": 15,
    "deep_sweep": 6,
    "price": 70,
    "squeeze": 25,
    "liquidate": 60,
    "cancel": 50,
    "cancel_all": 12,
    "transfer": 25,
    "withdraw": 25,
    "deposit": 20,
    "register": 12,
    "advance": 25,
    "funding": 6,
    "maker_breach": 5,
    "expired_makers": 5,
    "order_spam": 2,
    "fok": 10,
    "post_cross": 12,
    "bad_order": 30,
    "bad_signature": 15,
    "bad_l1": 12,
    "junk": 15,
    "mutate": 25,
    "replay": 12,
    "wrong_key": 15,
}
"""Relative weights of the actions (a composite action is several steps)."""

TOUR_SPACING: Final = 12
"""Steps between two actions of the tour."""

TOUR: Final[list[tuple[str, dict[int, Any]]]] = [
    ("transfer", {2: "self"}),  # SELF_TRANSFER
    ("deep_sweep", {}),  # end MATCH_LIMIT: MAX_MATCHES makers visited
    ("bad_signature", {1: "unrecoverable"}),  # BAD_SIGNATURE
    ("order", {4: 250, 5: _IOC, 6: False, 8: True, 10: "next"}),  # overfill: TAKER_MARGIN
    ("transfer", {2: "zero"}),  # ZERO_AMOUNT
    ("bad_l1", {1: "kind"}),  # L1 message of an unknown kind
    ("maker_breach", {}),  # removal MAKER_MARGIN
    ("transfer", {2: "unknown"}),  # UNKNOWN_RECIPIENT
    ("bad_signature", {1: "high_s"}),  # non-canonical: MALFORMED
    ("nonces", {}),  # NONCE_USED, NONCE_TOO_OLD
    ("withdraw", {1: "over"}),  # INSUFFICIENT_COLLATERAL
    ("bad_l1", {1: "short_deposit"}),  # a deposit of the wrong length
    ("expired_makers", {}),  # removal EXPIRED, EXPIRED
    ("bad_signature", {1: "domain"}),  # WRONG_SIGNER
    ("wrong_key", {2: "unregistered"}),  # UNKNOWN_ACCOUNT
    ("bad_order", {1: 0, 3: "price_off_tick"}),  # INVALID_PRICE
    ("squeeze", {1: 3_000}),
    ("liquidate", {3: "scan"}),  # liquidation, after the squeeze
    ("bad_l1", {1: "account_limit"}),  # INVALID_DEPOSIT
    ("bad_order", {3: "size_off_lot"}),  # INVALID_SIZE
    ("bad_order", {3: "bad_tif"}),  # INVALID_TIME_IN_FORCE
    ("bad_order", {3: "unknown_market"}),  # UNKNOWN_MARKET
    ("bad_order", {3: "post_only_cross"}),  # WOULD_CROSS
    ("bad_l1", {1: "forced_junk"}),  # forced transaction: MALFORMED
    ("funding", {}),  # funding accrues
    ("bad_order", {3: "reduce_wrong_side"}),  # NOTHING_TO_REDUCE
    ("fok", {3: 400}),  # NOT_FILLED
    ("order_spam", {}),  # TOO_MANY_ORDERS
    ("cancel", {2: "random", 4: "next"}),  # ORDER_NOT_FOUND
    ("liquidate", {3: "self"}),  # SELF_LIQUIDATION
    ("liquidate_flat", {}),  # NO_POSITION
    ("liquidate", {3: "random"}),  # TARGET_HEALTHY mostly
    ("poor_liquidator", {}),  # LIQUIDATOR_MARGIN mostly
    ("price", {2: "zero"}),  # INVALID_ORACLE_PRICE
    ("price", {2: "stale"}),  # STALE_TIMESTAMP
    ("price", {2: "future"}),  # FUTURE_TIMESTAMP
    ("order", {4: 250, 5: _IOC, 6: True, 8: True, 10: "next"}),  # reduce-only: REDUCED
    ("order", {9: True, 10: "next"}),  # a forced order
    ("junk", {}),  # MALFORMED
    ("mutate", {}),
    ("deposit", {2: "too_much"}),  # INVALID_DEPOSIT
]
"""Actions run in turn, one every :data:`TOUR_SPACING` steps, with some arguments fixed
(position -> value): they make every run of a few hundred steps reach every targeted
outcome, whatever the seed."""

ACTION_NAMES: Final = list(ACTIONS)
ACTION_WEIGHTS: Final = list(ACTIONS.values())


def fresh_steps(seed: int, count: int, check_witness: bool = False) -> Iterator[FreshStep]:
    """The first ``count`` steps of the program of ``seed``."""
    return FreshDriver(seed, check_witness).steps(count)


def replay_step(seed: int, index: int) -> FreshStep:
    """Step ``index`` of the program of ``seed`` (regenerates the program up to it)."""
    *_, step = fresh_steps(seed, index + 1)
    assert step.index == index
    return step


# Coverage ---------------------------------------------------------------------------------

REQUIRED_FEATURES: Final = {
    # accepted steps of every kind
    "OK", "filled", "end:RESTING", "end:FILLED", "end:NO_LIQUIDITY", "liquidation", "funding",
    "l1:deposit:OK", "l1:forced:OK", "removal:CANCELLED", "removal:SELF_TRADE",
    # MAX_MATCHES-maker sweeps, overfills and margin breaches
    "end:MATCH_LIMIT", "end:TAKER_MARGIN", "removal:MAKER_MARGIN", "INSUFFICIENT_COLLATERAL",
    "TARGET_HEALTHY",
    # malformed bytes, bad signatures, wrong signers, nonces
    "MALFORMED", "BAD_SIGNATURE", "WRONG_SIGNER", "NONCE_USED", "NONCE_TOO_OLD",
    # unknown accounts and markets, bad prices, sizes, times in force
    "UNKNOWN_ACCOUNT", "UNKNOWN_MARKET", "NO_ORACLE_PRICE", "INVALID_PRICE", "INVALID_SIZE",
    "INVALID_TIME_IN_FORCE",
    # post-only that would cross, expired orders and makers, reduce-only, FOK, order limit
    "WOULD_CROSS", "EXPIRED", "removal:EXPIRED", "NOTHING_TO_REDUCE", "NOT_FILLED",
    "TOO_MANY_ORDERS", "ORDER_NOT_FOUND", "ORDER_ID_TAKEN",
    # transfers, withdrawals, liquidations, prices
    "ZERO_AMOUNT", "SELF_TRANSFER", "UNKNOWN_RECIPIENT", "SELF_LIQUIDATION", "NO_POSITION",
    "INVALID_ORACLE_PRICE", "STALE_TIMESTAMP", "FUTURE_TIMESTAMP",
    # L1 messages: forced transactions rejected, malformed messages, deposits out of range
    "l1:forced:MALFORMED", "l1:other:MALFORMED", "l1:deposit:MALFORMED", "INVALID_DEPOSIT",
}  # fmt: skip
"""What every run of at least 2,000 steps must have exercised."""


@dataclass
class Coverage:
    """Counts of reasons and features over a run."""

    reasons: Counter[str] = field(default_factory=Counter)
    features: Counter[str] = field(default_factory=Counter)
    steps: int = 0
    changed: int = 0
    """Steps whose post-root differs from their pre-root."""

    def add(self, step: FreshStep) -> None:
        self.steps += 1
        self.reasons[step.reason.name] += 1
        self.features.update(step_features(step))
        self.changed += step.post_root != step.pre_root

    def missing(self, required: Iterable[str] = REQUIRED_FEATURES) -> set[str]:
        return {feature for feature in required if not self.features[feature]}

    def histogram(self) -> str:
        width = max(map(len, self.reasons), default=0)
        lines = [f"{name:<{width}} {n:>7}" for name, n in self.reasons.most_common()]
        return "\n".join(lines)


# Running steps on the Solidity executor ---------------------------------------------------

EXECUTE_SELECTOR: Final = keccak256(b"execute(bytes32,uint8,bytes,uint64,bytes32,bytes)")[:4]
"""``IOneStepExecutor.execute``'s selector."""


def execute_calldata(step: FreshStep) -> bytes:
    """The calldata of ``execute`` for ``step``."""
    args = abi_encode(
        ["bytes32", "uint8", "bytes", "uint64", "bytes32", "bytes"],
        [step.pre_root, int(step.kind), step.data, step.timestamp, DOMAIN_SEPARATOR, step.witness],
    )
    return EXECUTE_SELECTOR + args


@dataclass(frozen=True, slots=True)
class ExecutorResult:
    """What the executor returned for one step (or how its call failed)."""

    post_root: bytes | None
    reason: int | None
    error: str | None = None


class ExecutorClient:
    """Calls ``execute`` on a deployed executor, many steps per HTTP request."""

    def __init__(self, url: str, address: str, timeout: float = 300.0) -> None:
        self.url = url
        self.address = address
        self.timeout = timeout

    def _post(self, body: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The replies to ``body``'s calls, in order: as few batch requests as fit under
        :data:`MAX_REQUEST_BYTES` each."""
        encoded = [json.dumps(call) for call in body]
        replies: list[dict[str, Any]] = []
        start, size = 0, 2
        for end, item in enumerate(encoded):
            if end > start and size + len(item) + 1 > MAX_REQUEST_BYTES:
                replies += self._post_batch(encoded[start:end])
                start, size = end, 2
            size += len(item) + 1
        replies += self._post_batch(encoded[start:])
        return replies

    def _post_batch(self, encoded: list[str]) -> list[dict[str, Any]]:
        data = ("[" + ",".join(encoded) + "]").encode()
        request = urllib.request.Request(
            self.url, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            replies = json.loads(response.read())
        if not isinstance(replies, list) or len(replies) != len(encoded):
            raise RuntimeError(f"JSON-RPC batch of {len(encoded)} calls answered {replies!r:.2000}")
        replies.sort(key=lambda reply: int(reply["id"]))
        return replies

    def execute(self, steps: Sequence[FreshStep]) -> list[ExecutorResult]:
        """``execute`` of every step, in one JSON-RPC batch of ``eth_call``s."""
        body = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "eth_call",
                "params": [
                    {"to": self.address, "data": "0x" + execute_calldata(step).hex()},
                    "latest",
                ],
            }
            for i, step in enumerate(steps)
        ]
        results = []
        for reply in self._post(body):
            if "error" in reply:
                results.append(ExecutorResult(None, None, json.dumps(reply["error"])))
                continue
            raw = bytes.fromhex(reply["result"][2:])
            try:
                root, reason = abi_decode(["bytes32", "uint8"], raw)
            except Exception as exc:
                results.append(
                    ExecutorResult(None, None, f"undecodable return 0x{raw.hex()}: {exc}")
                )
                continue
            results.append(ExecutorResult(root, reason))
        return results

    def gas(self, steps: Sequence[FreshStep]) -> list[int | None]:
        """The gas an ``execute`` transaction of each step uses, calldata included (None if
        it fails): ``eth_createAccessList``'s ``gasUsed``, one exact execution (with the
        step contracts pre-warmed by the list, ~100 gas less than without; anvil's
        ``eth_estimateGas`` is a binary search, slower and up to a few % high)."""
        body = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "eth_createAccessList",
                "params": [
                    {
                        "to": self.address,
                        "data": "0x" + execute_calldata(step).hex(),
                        "gas": hex(CALL_GAS),
                    },
                    "latest",
                ],
            }
            for i, step in enumerate(steps)
        ]
        return [
            int(r["result"]["gasUsed"], 16) if "result" in r and not r["result"].get("error")
            else None
            for r in self._post(body)
        ]  # fmt: skip


MAX_REQUEST_BYTES: Final = 1_500_000
"""Largest JSON-RPC request body sent (anvil answers "Invalid request" to one of 2 MiB)."""

CALL_GAS: Final = 30_000_000
"""Gas of the sampled calls (anvil's default block gas limit)."""


def compare(seed: int, step: FreshStep, result: ExecutorResult) -> str | None:
    """None if the executor agrees with Python on ``step``, else a reproducing message."""
    if result.error is None and result.post_root == step.post_root and result.reason == step.reason:
        return None
    if result.error is not None:
        solidity = f"reverted: {result.error}"
    else:
        assert result.reason is not None and result.post_root is not None
        name = Reason(result.reason).name if result.reason in {r.value for r in Reason} else "?"
        solidity = f"reason {result.reason} ({name}), postRoot 0x{result.post_root.hex()}"
    return f"MISMATCH {step.describe(seed)}; Solidity: {solidity}"


def new_seed() -> int:
    """A fresh random seed (printed by the runs so that a failure replays)."""
    return random.SystemRandom().randrange(1 << 32)


# A differential run -----------------------------------------------------------------------


@dataclass
class RunReport:
    """What a differential run found."""

    seed: int
    steps: int = 0
    mismatches: list[str] = field(default_factory=list)
    coverage: Coverage = field(default_factory=Coverage)
    seconds: float = 0.0
    max_gas: int | None = None
    max_gas_step: str | None = None
    max_witness: int = 0

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {
            "seed": self.seed,
            "steps": self.steps,
            "mismatches": len(self.mismatches),
            "firstMismatches": self.mismatches[:10],
            "stepsChangingState": self.coverage.changed,
            "reasons": dict(self.coverage.reasons.most_common()),
            "missingFeatures": sorted(self.coverage.missing()),
            "seconds": round(self.seconds, 1),
            "stepsPerSecond": round(self.steps / self.seconds, 1) if self.seconds else None,
            "maxGas": self.max_gas,
            "maxGasStep": self.max_gas_step,
            "maxWitnessBytes": self.max_witness,
        }


def run_differential(
    client: ExecutorClient,
    seed: int,
    count: int,
    chunk: int = 200,
    gas_samples: int = 0,
    report: RunReport | None = None,
    max_mismatches: int = 50,
) -> RunReport:
    """
    Generate the first ``count`` steps of the program of ``seed`` and run each on the
    executor, ``chunk`` steps per JSON-RPC batch; the executor works on one chunk while
    the next is generated. ``gas_samples`` steps per chunk (those with the longest
    witnesses) also get an ``eth_estimateGas``. Stops early after ``max_mismatches``.
    """
    report = report if report is not None else RunReport(seed)
    start = time.monotonic()

    def work(steps: list[FreshStep]) -> tuple[list[ExecutorResult], list[int | None]]:
        results = client.execute(steps)
        gas: list[int | None] = []
        if gas_samples:
            heavy = sorted(steps, key=lambda s: len(s.witness), reverse=True)[:gas_samples]
            gas = client.gas(heavy)
            for step, used in zip(heavy, gas, strict=True):
                if used is not None and (report.max_gas is None or used > report.max_gas):
                    report.max_gas = used
                    report.max_gas_step = f"seed {seed} step {step.index} ({step.action})"
        return results, gas

    def check(steps: list[FreshStep], future: "Future[Any]") -> None:
        results, _ = future.result()
        assert len(results) == len(steps)
        for step, result in zip(steps, results, strict=True):
            message = compare(seed, step, result)
            if message is not None:
                report.mismatches.append(message)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: tuple[list[FreshStep], Future[Any]] | None = None
        batch: list[FreshStep] = []
        for step in fresh_steps(seed, count):
            report.steps += 1
            report.coverage.add(step)
            report.max_witness = max(report.max_witness, len(step.witness))
            batch.append(step)
            if len(batch) == chunk:
                if pending is not None:
                    check(*pending)
                pending, batch = (batch, pool.submit(work, batch)), []
                if len(report.mismatches) >= max_mismatches:
                    break
        if pending is not None:
            check(*pending)
        if batch and len(report.mismatches) < max_mismatches:
            check(batch, pool.submit(work, batch))
    report.seconds += time.monotonic() - start
    return report
