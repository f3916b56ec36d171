"""
Hostile inputs for the sequencer's JSON-RPC API: Hypothesis strategies that draw
:class:`Case` values (what to send, over which transport, and which answers are
acceptable), and hand-picked classics (:func:`classics`).

Every case is built so that it cannot be sequenced: a transaction is either not a
transaction at all, or validly signed but made invalid on purpose (a used nonce, the
wrong signer or domain, an unknown market, a price off the tick grid, ...; see
:func:`rejected_messages`), or a mutation of one of those or of a transaction the
seeding already sequenced (whose digest is then either unchanged, so ``NONCE_USED``,
or changed, so the signature recovers some other address). A case that is sequenced
anyway is a finding (``accepted``), not noise.

The generators know the seeded state through :class:`World` and nothing else; the
runner (:mod:`tests.fuzz_rpc.run`) sends the cases and checks the answers.
"""

import gzip
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import rlp
from hypothesis import strategies as st

from node.protocol.crypto import SECP256K1N, sign_digest
from node.protocol.eip712 import Domain
from node.protocol.genesis import MarketSpec
from node.protocol.transactions import (
    ALL_MARKETS,
    Cancel,
    CancelAll,
    Liquidate,
    Message,
    OraclePrice,
    Order,
    SignedTransaction,
    Transfer,
    Withdraw,
    decode_transaction,
    encode_transaction,
    message_to_json,
)
from node.sequencer.rpc import MAX_JSON_DEPTH
from tests.strategies import messages, private_keys

MAX_BODY = 1 << 20
"""The server's request-body limit (``client_max_size``) and WebSocket ``max_msg_size``."""

MAX_BATCH = 1_000
"""The server's most calls per batch request."""

STANDARD_CODES = frozenset({-32700, -32600, -32601, -32602, -32603})
"""JSON-RPC 2.0's own error codes."""

READ_METHODS = {
    "ratchet_getConfig": 0,
    "ratchet_getReceipt": 1,
    "ratchet_getAccount": 1,
    "ratchet_getOrder": 1,
    "ratchet_getOpenOrders": 1,
    "ratchet_getOrderBook": 2,
    "ratchet_getMarkets": 0,
    "ratchet_getBatch": 1,
    "ratchet_getStatus": 0,
    "ratchet_getWithdrawalProof": 1,
}
"""The methods that only read, and how many parameters each takes at most."""

PARAM_NAMES = {
    "ratchet_getReceipt": ("txHash",),
    "ratchet_getAccount": ("idOrAddress",),
    "ratchet_getOrder": ("orderHash",),
    "ratchet_getOpenOrders": ("account",),
    "ratchet_getOrderBook": ("market", "depth"),
    "ratchet_getBatch": ("index",),
    "ratchet_getWithdrawalProof": ("withdrawalId",),
    "ratchet_sendTransaction": ("tx",),
    "ratchet_subscribe": ("channel", "params"),
    "ratchet_unsubscribe": ("subscription",),
}
"""Parameter names, for named-parameter (object) requests."""

TX_CODES = frozenset({-32602, -32010})
"""What ``ratchet_sendTransaction`` may answer a hostile transaction with."""

PARAM_CODES = frozenset({-32600, -32601, -32602, -32010, -32011, -32012})
"""What a real method may answer hostile parameters with (besides a result): a broken
request, ``ratchet_subscribe`` over HTTP, a bad parameter, a refused transaction, not
found, not available yet."""

Transport = Literal["http", "ws", "raw", "raw_ws"]


@dataclass(frozen=True)
class Case:
    """One hostile input and what may come back."""

    category: str
    """What kind of hostility (the summary counts by it)."""

    transport: Transport
    """``http``: one HTTP request; ``ws``: one frame on a WebSocket; ``raw``: bytes on a
    fresh TCP connection; ``raw_ws``: raw frames after a WebSocket handshake."""

    body: bytes = b""
    """The HTTP body, the WebSocket frame's payload, or (``raw``) every byte sent."""

    method: str = "POST"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    chunked: bool = False
    """Send the HTTP body with chunked transfer encoding."""

    binary: bool = False
    """A binary WebSocket frame (the server ignores those)."""

    frames: tuple[bytes, ...] = ()
    """``raw_ws``: the raw frames, sent after the handshake."""

    abrupt: bool = False
    """``raw``/``raw_ws``: close right after sending, without reading."""

    rpc: bool = True
    """A JSON-RPC answer is required; otherwise a clean refusal (any status below 500,
    or a WebSocket close) is fine too."""

    codes: frozenset[int] = frozenset()
    """If not empty: the only error codes acceptable (besides results of reads)."""

    note: str = ""


@dataclass(frozen=True)
class World:
    """What the generators know of the seeded state."""

    domain: Domain
    markets: tuple[MarketSpec, ...]
    keys: Mapping[int, bytes]
    """The traders' accounts and their owners' keys."""
    registered: int
    """Accounts 0 .. registered-1 exist."""
    used_nonces: Mapping[int, frozenset[int]]
    nonce_base: Mapping[int, int]
    open_orders: Mapping[int, frozenset[bytes]]
    positions: Mapping[int, frozenset[int]]
    """The markets each account holds a position in."""
    oracle_key: bytes
    oracle_time: Mapping[int, int]
    now: int
    """Unix time at seeding: every batch after it is later."""
    sequenced: tuple[bytes, ...]
    """Encodings of the transactions the seeding sequenced."""
    tx_hashes: tuple[bytes, ...]
    order_hashes: tuple[bytes, ...]
    addresses: tuple[bytes, ...]
    withdrawals: tuple[int, ...]


# JSON text, including what json.dumps will not write ------------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text written verbatim: NaN, 1e400, a 5000-digit number, a broken token."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """A JSON object written from (key, value) pairs: keys may repeat."""

    items: tuple[tuple[str, Any], ...]


def dumps(value: Any) -> str:
    """JSON text of ``value``, with :class:`Raw` and :class:`Pairs` written as they say."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(k)}:{dumps(v)}" for k, v in value.items) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def strict_loads(text: str) -> Any:
    """JSON as RFC 8259 has it and the server takes it: no NaN or Infinity, nested at
    most ``MAX_JSON_DEPTH`` deep (raises ValueError). The depth is checked first: with
    py_ecc imported (through web3) the recursion limit is 100,000, and json.loads of
    100,000 nested arrays overflows the C stack (SIGSEGV) in this process too."""
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        depth = 0
        for bracket in re.findall(r"[\[\]{}]", _STRING.sub("", text)):
            depth += 1 if bracket in "[{" else -1
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"nested more than {MAX_JSON_DEPTH} deep")

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


Reply = Literal["yes", "no", "either"]


def expects_reply(payload: bytes, websocket: bool) -> Reply:
    """Whether the server must answer this JSON-RPC payload: every request with an id
    gets an answer, as does anything that is not a request; a notification (no ``id``)
    does not. ``"id": null`` is ``either`` (JSON-RPC 2.0 answers it; aiohttp-rpc takes it
    for a notification). On a WebSocket, a response-shaped message gets no answer."""
    try:
        data = strict_loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):
        return "yes"
    if websocket and _looks_like_response(data):
        return "no"
    if isinstance(data, list):
        if not data or len(data) > MAX_BATCH:
            return "yes"
        answers = [_answered(item) for item in data]
        if "yes" in answers:
            return "yes"
        return "no" if all(a == "no" for a in answers) else "either"
    return _answered(data)


def _looks_like_response(data: Any) -> bool:
    first = data[0] if isinstance(data, list) and data else data
    return (
        isinstance(first, dict)
        and "method" not in first
        and "id" in first
        and ("result" in first or "error" in first)
    )


def _answered(item: Any) -> Reply:
    if not isinstance(item, dict):
        return "yes"
    if item.get("jsonrpc") != "2.0" or not isinstance(item.get("method"), str):
        return "yes"
    if not item["method"]:
        return "yes"
    ident = item.get("id")
    if ident is not None and (isinstance(ident, float) or not isinstance(ident, (int, str))):
        return "yes"
    params = item.get("params", [])
    if not isinstance(params, (list, dict)):
        return "yes"
    if "id" not in item:
        return "no"
    return "either" if ident is None else "yes"


# plain values ---------------------------------------------------------------------------

EDGE_INTS = (
    *(0, 1, 2, -1, -(2**63), 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40, 2**53 - 1),
    *(2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**128, 2**256 - 1, 2**256),
    *(-(2**64), 10**30, 10**80),
)
"""Integers on every width a parameter could have, and past them."""

EDGE_STRINGS = (
    *("", " ", "0", "1", " 1", "1 ", "\t1", "01", "00", "-0", "-1", "+1", "1.0", "1.5"),
    *("1e3", "1E3", "1e400", "0x", "0x0", "0x1", "0X1", "0x-1", "0b1", "0o1", "1_000"),
    *("\u0661\u0662\u0663", "\U0001d7d9", "\u00b2", "\u0000", "\ufeff1", "1\u0000"),
    *("NaN", "Infinity", "null", "true"),
    *("9" * 20, "9" * 80, "9" * 81, "9" * 4300, "9" * 4301, "1" + "0" * 10_000),
    *("0x" + "0" * 63, "0x" + "0" * 64, "0x" + "0" * 65, "0x" + "g" * 64, "0x" + "00" * 19),
    *("0x" + "00" * 20, "0x" + "00" * 21, "0X" + "00" * 20, "0x" + "zz" * 20),
    *("0x" + "0" * 62 + "é", "0x" + "ff" * 32 + " ", "receipts", "fills", "book", "batches"),
)
"""Strings a decimal, hex, hash, address or channel parser could stumble on."""

RAW_SCALARS = (
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "1e-400",
    "0.0000000000000000000000001",
    "1" + "0" * 400,
    "9" * 4301,
    "-" + "9" * 5000,
    "1.5e308",
    "-0",
    "-0.0",
    "1E+2",
)
"""JSON number tokens Python parses oddly or not at all, and what JSON forbids."""

edge_ints = st.sampled_from(EDGE_INTS)
edge_strings = st.sampled_from(EDGE_STRINGS)
raw_scalars = st.sampled_from(RAW_SCALARS).map(Raw)

scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    edge_ints,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    edge_strings,
    raw_scalars,
)

json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
"""Any JSON value, hostile leaves included."""


def hex0x(data: bytes) -> str:
    return "0x" + data.hex()


def hex_variants(data: bytes) -> st.SearchStrategy[Any]:
    """``data`` as 0x-hex, and nearly so: cut, grown, re-cased, re-prefixed, non-hex."""
    text = data.hex()
    return st.sampled_from(
        [
            "0x" + text,
            "0x" + text.upper(),
            "0X" + text,
            text,
            "0x" + text[:-1],
            "0x" + text[:-2],
            "0x" + text + "0",
            "0x" + text + "00",
            "0x" + text[:-1] + "g",
            " 0x" + text,
            "0x" + text + "\n",
            "0x" + text.replace("0", "O", 1),
            "0x" + text[: len(text) // 2],
            ["0x" + text],
            {"hash": "0x" + text},
            int(text or "0", 16),
        ]
    )


# the world's names, right and wrong -----------------------------------------------------


def hashes(world: World) -> st.SearchStrategy[Any]:
    """Values for a txHash / orderHash parameter."""
    known = [*world.tx_hashes, *world.order_hashes]
    return st.one_of(
        st.sampled_from(known).flatmap(hex_variants),
        st.binary(min_size=32, max_size=32).map(hex0x),
        st.binary(max_size=40).map(hex0x),
        scalars,
    )


def account_refs(world: World) -> st.SearchStrategy[Any]:
    """Values for an account id / address parameter."""
    return st.one_of(
        st.integers(0, world.registered + 2),
        st.integers(0, world.registered + 2).map(str),
        st.sampled_from(world.addresses).flatmap(hex_variants),
        st.binary(min_size=20, max_size=20).map(hex0x),
        edge_ints,
        scalars,
    )


def small_numbers(top: int) -> st.SearchStrategy[Any]:
    """Values for a small integer parameter (market, depth, batch, withdrawal id)."""
    return st.one_of(
        st.integers(0, top),
        st.integers(0, top).map(str),
        st.integers(0, top).map(lambda n: f"{n} "),
        st.integers(0, top).map(hex),
        st.integers(0, top).map(float),
        edge_ints,
        edge_strings,
        scalars,
    )


def method_params(world: World) -> dict[str, list[st.SearchStrategy[Any]]]:
    """Per method, a strategy for each positional parameter."""
    return {
        "ratchet_getReceipt": [hashes(world)],
        "ratchet_getOrder": [hashes(world)],
        "ratchet_getAccount": [account_refs(world)],
        "ratchet_getOpenOrders": [account_refs(world)],
        "ratchet_getOrderBook": [small_numbers(len(world.markets) + 1), small_numbers(120)],
        "ratchet_getBatch": [small_numbers(5)],
        "ratchet_getWithdrawalProof": [
            st.one_of(st.sampled_from(world.withdrawals), small_numbers(5))
        ],
        "ratchet_getConfig": [],
        "ratchet_getMarkets": [],
        "ratchet_getStatus": [],
        "ratchet_sendTransaction": [
            st.one_of(
                json_values,
                edge_strings,
                st.binary(max_size=120).map(hex0x),
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["Order", "Cancel", "Transfer"]) | scalars},
                    optional={"message": json_values, "signature": edge_strings},
                ),
            )
        ],
        "ratchet_subscribe": [
            st.one_of(st.sampled_from(["receipts", "fills", "book", "batches"]), scalars),
            json_values,
        ],
        "ratchet_unsubscribe": [st.one_of(st.integers(0, 9).map(hex), scalars)],
    }


# JSON-RPC requests ----------------------------------------------------------------------

ids: st.SearchStrategy[Any] = st.one_of(
    st.integers(0, 1000),
    st.text(max_size=12),
    edge_ints,
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    raw_scalars,
)
"""Request ids: the allowed ones (numbers, strings) and every other JSON type."""

versions: st.SearchStrategy[Any] = st.one_of(
    st.just("2.0"),
    st.just("2.0"),
    st.just("2.0"),
    st.sampled_from(["1.0", "2", "2.0 ", "2.00", "", "3.0", "\uff12.0"]),
    st.sampled_from([2, 2.0, None, True, ["2.0"]]),
)

MISSING = object()
"""A member a request leaves out."""


@st.composite
def params_for(
    draw: st.DrawFn, per_method: dict[str, list[st.SearchStrategy[Any]]], method: str
) -> Any:
    """Parameters for ``method`` (``per_method``: :func:`method_params`): right and wrong
    values, any arity, by position or by name."""
    strategies = per_method.get(method, [])
    values = [draw(s) for s in strategies]
    arity = draw(st.sampled_from(["exact", "exact", "fewer", "more", "other"]))
    if arity == "fewer" and values:
        values = values[: draw(st.integers(0, len(values) - 1))]
    elif arity == "more":
        values += draw(st.lists(json_values, min_size=1, max_size=3))
    elif arity == "other":
        values = draw(st.lists(json_values, max_size=4))
    if draw(st.integers(0, 3)) == 0:
        names = [*PARAM_NAMES.get(method, ()), "self", "rpc_request", "kwargs", ""]
        return {draw(st.sampled_from(names)): v for v in values}
    return values


def payload(value: Any) -> bytes:
    return dumps(value).encode()


# transactions ---------------------------------------------------------------------------

M = TypeVar("M", bound=Message)


def _owner(world: World, account: int) -> bytes:
    return world.keys[account]


def _fresh_nonce(draw: st.DrawFn, world: World, account: int) -> int:
    return draw(st.integers(world.nonce_base.get(account, 0), (1 << 64) - 1))


def _trader(draw: st.DrawFn, world: World) -> int:
    return draw(st.sampled_from(sorted(world.keys)))


def _with(message: M, **changes: Any) -> M:
    return replace(message, **changes)  # type: ignore[type-var]


def _account_message(draw: st.DrawFn, world: World, cls: type[Message]) -> Message:
    return _with(draw(messages(cls)), account=_trader(draw, world))


def _wrong_signer(draw: st.DrawFn, world: World, cls: type[Message]) -> tuple[Message, bytes]:
    """Signed by a key that does not own the account it names."""
    message = _account_message(draw, world, cls)
    owner = _owner(world, message.account)  # type: ignore[attr-defined]
    key = draw(st.one_of(st.sampled_from(list(world.keys.values())), private_keys))
    if key == owner:
        key = world.oracle_key
    return message, key


def rejected_message(draw: st.DrawFn, world: World) -> tuple[Message, bytes, Domain, str]:
    """A message signed so that it verifies, made invalid on purpose; and the key and
    domain to sign it with, and what makes it invalid."""
    cls = draw(st.sampled_from([Order, Cancel, CancelAll, Transfer, Withdraw, Liquidate]))
    generic = ["wrong_signer", "unknown_account", "used_nonce", "other_domain"]
    specific = {
        Order: [
            *("unknown_market", "bad_tif", "reduce_only", "size", "tick", "price_range"),
            *("market_gtc", "expired", "nothing_to_reduce"),
        ],
        Cancel: ["not_open"],
        CancelAll: [],
        Transfer: ["zero", "self", "unknown_recipient", "too_much"],
        Withdraw: ["zero", "too_much"],
        Liquidate: ["self", "unknown_target", "unknown_market", "no_position", "healthy"],
    }[cls]
    why = draw(st.sampled_from([*generic, *specific]))
    domain = world.domain
    if why == "wrong_signer":
        message, key = _wrong_signer(draw, world, cls)
        return message, key, domain, why
    if why == "unknown_account":
        message = _with(draw(messages(cls)), account=draw(st.integers(world.registered, 2**64 - 1)))
        return message, draw(private_keys), domain, why
    message = _account_message(draw, world, cls)
    account: int = message.account  # type: ignore[attr-defined]
    key = _owner(world, account)
    nonce = _fresh_nonce(draw, world, account)
    if why == "used_nonce":
        old = list(world.used_nonces.get(account, ()))
        if world.nonce_base.get(account, 0) > 0:
            old.append(draw(st.integers(0, world.nonce_base[account] - 1)))
        nonce = draw(st.sampled_from(old))
    elif why == "other_domain":
        domain = draw(
            st.sampled_from(
                [
                    Domain(world.domain.chain_id + 1, world.domain.verifying_contract),
                    Domain(world.domain.chain_id, bytes(20)),
                    Domain(1, world.domain.verifying_contract),
                ]
            )
        )
    message = _with(message, nonce=nonce)
    return _specific(draw, world, message, why), key, domain, why


def _specific(draw: st.DrawFn, world: World, message: Message, why: str) -> Message:
    """``message`` changed so that ``why`` holds (generic reasons: unchanged)."""
    account: int = getattr(message, "account", 0)
    unknown_market = st.integers(len(world.markets), ALL_MARKETS - 1)
    if isinstance(message, Order):
        return _bad_order(draw, world, message, why)
    if isinstance(message, Cancel) and why == "not_open":
        open_ = world.open_orders.get(account, frozenset())
        order_hash = draw(
            st.one_of(
                st.binary(min_size=32, max_size=32),
                st.sampled_from(world.order_hashes),
            ).filter(lambda h: h not in open_)
        )
        return _with(message, order_hash=order_hash)
    if isinstance(message, (Transfer, Withdraw)):
        if why == "zero":
            return _with(message, amount=0)
        if why == "too_much":
            return _with(message, amount=draw(st.integers(10**13, 2**64 - 1)))
    if isinstance(message, Transfer):
        if why == "self":
            return _with(message, to=account)
        if why == "unknown_recipient":
            return _with(message, to=draw(st.integers(world.registered, 2**64 - 1)))
    if isinstance(message, Liquidate):
        if why == "self":
            return _with(message, target=account)
        if why == "unknown_target":
            return _with(message, target=draw(st.integers(world.registered, 2**64 - 1)))
        if why == "unknown_market":
            return _with(message, market=draw(unknown_market))
        targets = [a for a in world.keys if a != account]
        target = draw(st.sampled_from(targets))
        held = world.positions.get(target, frozenset())
        if why == "no_position":
            free = [m.id for m in world.markets if m.id not in held]
            return _with(message, target=target, market=draw(st.sampled_from(free)))
        if why == "healthy":
            holders = [a for a in targets if world.positions.get(a)]
            target = draw(st.sampled_from(holders))
            market = draw(st.sampled_from(sorted(world.positions[target])))
            return _with(message, target=target, market=market)
    return message


def _bad_order(draw: st.DrawFn, world: World, order: Order, why: str) -> Message:
    """``order`` (of an account with its owner's key and a fresh nonce) made invalid by
    ``why`` alone: its other members are first made plausible (a known market, a time in
    force, sizes and prices on the grid, no expiry), so that the check of ``why`` is the
    one that refuses it, deep in the order checks."""
    spec = next((m for m in world.markets if m.id == order.market), world.markets[0])
    tick, lot = spec.tick_size, spec.lot_size
    tif = draw(st.integers(0, 3))
    order = _with(
        order,
        market=spec.id,
        time_in_force=tif,
        reduce_only=tif in (1, 2) and order.reduce_only,
        size=lot * draw(st.integers(1, 10**6)),
        price=tick * draw(st.integers(0 if tif in (1, 2) else 1, (1 << 24) - 1)),
        expiry=0,
    )
    if why == "unknown_market":
        return _with(order, market=draw(st.integers(len(world.markets), ALL_MARKETS)))
    if why == "bad_tif":
        return _with(order, time_in_force=draw(st.integers(4, 255)))
    if why == "reduce_only":
        return _with(order, reduce_only=True, time_in_force=draw(st.sampled_from([0, 3])))
    if why == "size" and lot > 1:
        lots = draw(st.integers(0, ((1 << 64) - lot) // lot))
        return _with(order, size=lots * lot + draw(st.integers(1, lot - 1)))
    if why == "tick" and tick > 1:
        return _with(order, price=draw(st.integers(0, (2**64 - 2) // tick - 1)) * tick + 1)
    if why == "price_range":
        return _with(order, price=draw(st.integers(tick << 24, 2**64 - 1)))
    if why == "market_gtc":
        return _with(order, price=0, time_in_force=draw(st.sampled_from([0, 3])))
    if why == "expired":
        return _with(order, expiry=draw(st.integers(1, world.now - 1_000_000)))
    if why == "nothing_to_reduce":
        flat = [a for a in sorted(world.keys) if spec.id not in world.positions.get(a, ())]
        account = draw(st.sampled_from(flat))
        return _with(
            order,
            account=account,
            nonce=_fresh_nonce(draw, world, account),
            reduce_only=True,
            time_in_force=draw(st.sampled_from([1, 2])),
            size=lot * draw(st.integers(1, 1000)),
            price=tick * draw(st.integers(1, 1000)),
        )
    return _with(order, size=0)  # a size of 0: never valid


def rejected_oracle_price(draw: st.DrawFn, world: World) -> tuple[Message, bytes, Domain, str]:
    """An oracle price that must be refused."""
    why = draw(st.sampled_from(["signer", "unknown_market", "zero", "stale", "future"]))
    market = draw(st.sampled_from(world.markets)).id
    price = draw(st.integers(1, 2**64 - 1))
    stamp = draw(st.integers(world.oracle_time[market] + 1, world.now + 1_000))
    key = world.oracle_key
    if why == "signer":
        key = draw(st.one_of(st.sampled_from(list(world.keys.values())), private_keys))
    elif why == "unknown_market":
        market = draw(st.integers(len(world.markets), 2**32 - 1))
    elif why == "zero":
        price = 0
    elif why == "stale":
        stamp = draw(st.integers(0, world.oracle_time[market]))
    else:
        stamp = draw(st.integers(world.now + 10_000_000, 2**64 - 1))
    return OraclePrice(market, price, stamp), key, world.domain, why


@st.composite
def rejected_transactions(draw: st.DrawFn, world: World) -> tuple[SignedTransaction, str]:
    """A validly signed transaction the STF must refuse, and why."""
    if draw(st.integers(0, 6)) == 0:
        message, key, domain, why = rejected_oracle_price(draw, world)
    else:
        message, key, domain, why = rejected_message(draw, world)
    return SignedTransaction(message, sign_digest(key, message.signing_hash(domain))), why


def json_form(tx: SignedTransaction) -> dict[str, Any]:
    return {
        "type": type(tx.message).__name__,
        "message": message_to_json(tx.message),
        "signature": hex0x(tx.signature),
    }


@st.composite
def json_form_variants(draw: st.DrawFn, tx: SignedTransaction) -> dict[str, Any]:
    """The JSON form with integers written another accepted way (same message)."""
    form = json_form(tx)
    message = dict(form["message"])
    for name, value in list(message.items()):
        if isinstance(value, (int, str)) and not isinstance(value, bool) and draw(st.booleans()):
            number = int(value) if isinstance(value, int) or value.isdecimal() else None
            if number is not None:
                message[name] = draw(st.sampled_from([number, str(number), hex(number)]))
    return {**form, "message": message}


def malleated(signature: bytes, v: int | None = None) -> bytes:
    """The other signature of the same key over the same digest: ``(r, n - s, v ^ 1)``."""
    s = SECP256K1N - int.from_bytes(signature[32:64], "big")
    flipped = 55 - signature[64] if v is None else v
    return signature[:32] + s.to_bytes(32, "big") + bytes([flipped])


@st.composite
def signature_variants(draw: st.DrawFn, signature: bytes) -> bytes:
    """Signatures of the wrong length, high s, every kind of v, r or s zero or past n."""
    choice = draw(st.integers(0, 7))
    if choice == 0:
        return malleated(signature)
    if choice == 1:
        v = draw(st.sampled_from([0, 1, 2, 26, 29, 35, 36, 37, 38, 127, 255]))
        return signature[:64] + bytes([v])
    if choice == 2:
        return draw(st.binary(max_size=70).filter(lambda b: len(b) != 65))
    if choice == 3:
        return signature[:32] + bytes(32) + signature[64:]
    if choice == 4:
        return bytes(32) + signature[32:]
    if choice == 5:
        return SECP256K1N.to_bytes(32, "big") + signature[32:]
    if choice == 6:
        return signature[:32] + (SECP256K1N - 1).to_bytes(32, "big") + signature[64:]
    return draw(st.binary(min_size=65, max_size=65))


def _rlp_bytes(item: bytes, long_form: bool) -> bytes:
    if len(item) == 1 and item[0] < 0x80 and not long_form:
        return item
    if len(item) <= 55 and not long_form:
        return bytes([0x80 + len(item)]) + item
    size = len(item).to_bytes(max(1, (len(item).bit_length() + 7) // 8), "big")
    return bytes([0xB7 + len(size)]) + size + item


def _rlp_list(items: list[bytes], long_form: bool) -> bytes:
    body = b"".join(items)
    if len(body) <= 55 and not long_form:
        return bytes([0xC0 + len(body)]) + body
    size = len(body).to_bytes(max(1, (len(body).bit_length() + 7) // 8), "big")
    return bytes([0xF7 + len(size)]) + size + body


@st.composite
def mutated_encodings(draw: st.DrawFn, raw: bytes) -> bytes:
    """``raw`` (a transaction's encoding) changed: bytes flipped, inserted, cut; RLP
    items re-encoded non-canonically, swapped, dropped, nested; the kind changed."""
    choice = draw(st.integers(0, 9))
    data = bytearray(raw)
    if choice == 0:
        at = draw(st.integers(0, len(data) - 1))
        data[at] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if choice == 1:
        at = draw(st.integers(0, len(data)))
        return bytes(data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:])
    if choice == 2:
        at = draw(st.integers(0, len(data) - 1))
        return bytes(data[:at] + data[at + draw(st.integers(1, 8)) :])
    if choice == 3:
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if choice == 4:
        return bytes([draw(st.integers(0, 255))]) + bytes(data[1:])
    items: list[Any] = list(rlp.decode(raw[1:]))
    at = draw(st.integers(0, len(items) - 1))
    if choice == 5:
        items[at] = b"\x00" + items[at]
    elif choice == 6:
        items.insert(at, draw(st.binary(max_size=40)))
    elif choice == 7:
        del items[at]
    elif choice == 8:
        other = draw(st.integers(0, len(items) - 1))
        items[at], items[other] = items[other], items[at]
    else:
        return raw[:1] + bytes(rlp.encode([items[:at], *items[at:]]))
    long_form = draw(st.booleans())
    encoded = [_rlp_bytes(item, long_form and draw(st.booleans())) for item in items]
    return raw[:1] + _rlp_list(encoded, long_form)


def send_request(tx: Any, ident: Any = 1) -> dict[str, Any]:
    """A ``ratchet_sendTransaction`` request object."""
    return {"jsonrpc": "2.0", "id": ident, "method": "ratchet_sendTransaction", "params": [tx]}


Payload = tuple[bytes, frozenset[int]]
"""A JSON-RPC payload and the error codes acceptable for it (empty: any but -32603)."""


@st.composite
def tx_signed_payloads(draw: st.DrawFn, world: World) -> Payload:
    """``ratchet_sendTransaction`` of validly signed transactions the STF must refuse
    (-32010): made invalid on purpose, signed over another message, replayed, or replayed
    with the malleated twin of its signature (high s: -32602 in the JSON form, whose
    signature is checked while parsing; MALFORMED in the raw form)."""
    choice = draw(st.integers(0, 5))
    if choice <= 2:
        tx, _ = draw(rejected_transactions(world))
    elif choice == 3:
        base, _ = draw(rejected_transactions(world))
        donor = decode_transaction(draw(st.sampled_from(world.sequenced)))
        tx = SignedTransaction(base.message, donor.signature)
    elif choice == 4:
        tx = decode_transaction(draw(st.sampled_from(world.sequenced)))
    else:
        raw = draw(st.sampled_from(world.sequenced))
        twin = malleated(raw[-65:])
        forms = [
            {**json_form(decode_transaction(raw)), "signature": hex0x(twin)},
            hex0x(raw[:-65] + twin),
        ]
        return payload(send_request(draw(st.sampled_from(forms)))), TX_CODES
    if draw(st.booleans()):
        value: Any = hex0x(encode_transaction(tx))
    else:
        value = draw(json_form_variants(tx))
    return payload(send_request(value)), frozenset({-32010})


@st.composite
def bases(draw: st.DrawFn, world: World) -> SignedTransaction:
    """A transaction to mutate: one the seeding sequenced, or one made invalid."""
    if draw(st.booleans()):
        return decode_transaction(draw(st.sampled_from(world.sequenced)))
    return draw(rejected_transactions(world))[0]


@st.composite
def tx_json_payloads(draw: st.DrawFn, world: World) -> Payload:
    """The JSON form, broken: the type, a member missing, extra or of the wrong type,
    the signature, the outer object."""
    tx = draw(bases(world))
    form: dict[str, Any] = json_form(tx)
    message = dict(form["message"])
    names = sorted(message)
    choice = draw(st.integers(0, 7))
    if choice == 0:
        form["type"] = draw(
            st.one_of(
                st.sampled_from(["order", "ORDER", "Order ", "Receipt", "EIP712Domain", ""]),
                st.sampled_from(["__class__", "Message", "SignedTransaction", "Order\u0000"]),
                json_values,
            )
        )
    elif choice == 1:
        del message[draw(st.sampled_from(names))]
    elif choice == 2:
        extra = draw(st.sampled_from(["signature", "type", "orderHash", "to", "target", "x"]))
        message[extra] = draw(json_values)
    elif choice in (3, 4):
        message[draw(st.sampled_from(names))] = draw(
            st.one_of(json_values, edge_ints, edge_strings, raw_scalars)
        )
    elif choice == 5:
        signature = draw(signature_variants(tx.signature))
        form["signature"] = draw(
            st.one_of(
                st.just(hex0x(signature)),
                st.just(signature.hex()),
                st.just("0x" + signature.hex() + "z"),
                hex_variants(tx.signature),
                json_values,
            )
        )
    elif choice == 6:
        key = draw(st.sampled_from(["type", "message", "signature"]))
        if draw(st.booleans()):
            del form[key]
        else:
            form[draw(st.text(max_size=10))] = draw(json_values)
    else:
        form["message"] = draw(st.one_of(json_values, st.just([message]), st.just(names)))
        return payload(send_request(form)), TX_CODES
    form["message"] = message
    return payload(send_request(form)), TX_CODES


@st.composite
def tx_raw_payloads(draw: st.DrawFn, world: World) -> Payload:
    """Raw hex that is not a transaction: random bytes, kind byte plus random RLP, too
    long, and mutations of real encodings."""
    choice = draw(st.integers(0, 4))
    if choice == 0:
        raw = draw(st.binary(max_size=300))
    elif choice == 1:
        items = draw(st.lists(st.binary(max_size=70), max_size=12))
        raw = bytes([draw(st.integers(0, 9))]) + rlp.encode(items)
    elif choice == 2:
        raw = draw(st.binary(min_size=257, max_size=2_000))
    else:
        raw = draw(mutated_encodings(encode_transaction(draw(bases(world)))))
    text = draw(
        st.sampled_from(
            [hex0x(raw), hex0x(raw), "0X" + raw.hex(), raw.hex(), hex0x(raw) + "0", hex0x(raw)[:-1]]
        )
    )
    return payload(send_request(text)), TX_CODES


# payloads that are not requests ---------------------------------------------------------

VALID_READ = {"jsonrpc": "2.0", "id": 1, "method": "ratchet_getStatus", "params": []}


@st.composite
def not_json_payloads(draw: st.DrawFn) -> Payload:
    """Bytes that are not JSON: random, truncated, invalid UTF-8, BOM, NaN, trailing
    garbage, JavaScript-isms, deep nesting."""
    request = json.dumps(VALID_READ).encode()
    choice = draw(st.integers(0, 8))
    if choice == 0:
        body = draw(st.binary(max_size=200))
    elif choice == 1:
        body = request[: draw(st.integers(0, len(request) - 1))]
    elif choice == 2:
        at = draw(st.integers(0, len(request)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]))
        body = request[:at] + bad + request[at:]
    elif choice == 3:
        bom = draw(st.sampled_from(["\ufeff".encode(), b"\xfe\xff", b"\xff\xfe", b"\x00\x00"]))
        body = bom + request
    elif choice == 4:
        constant = draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
        body = payload({**VALID_READ, "id": Raw(constant)})
    elif choice == 5:
        tail = draw(st.sampled_from([b" x", b"{}", b",", b"]", b"\x00", request]))
        body = request + tail
    elif choice == 6:
        body = draw(
            st.sampled_from(
                [
                    b"{'jsonrpc': '2.0', 'id': 1, 'method': 'ratchet_getStatus'}",
                    b'{jsonrpc: "2.0", id: 1, method: "ratchet_getStatus"}',
                    b'{"jsonrpc": "2.0", "id": 1, "method": "ratchet_getStatus",}',
                    b'/* */ {"jsonrpc": "2.0", "id": 1, "method": "ratchet_getStatus"}',
                    b'{"jsonrpc": "2.0", "id": 0x1, "method": "ratchet_getStatus"}',
                    b'{"jsonrpc": "2.0", "id": 01, "method": "ratchet_getStatus"}',
                    b'{"jsonrpc": "2.0", "id": 1, "method": "ratchet_\\ud800getStatus"}',
                    b"",
                    b" ",
                    b"\x00",
                ]
            )
        )
    elif choice == 7:
        depth = draw(st.sampled_from([99, 100, 101, 1_000, 10_000, 100_000, 500_000]))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        body = opener * depth + (closer * depth if draw(st.booleans()) else b"")
    else:
        body = draw(st.text(max_size=50)).encode()
    return body, frozenset()  # -32700 if it is indeed not JSON: run.expected_codes


@st.composite
def not_request_payloads(draw: st.DrawFn) -> Payload:
    """JSON that is not a request: other types, objects without a method, wrong
    versions, methods and ids of the wrong type, params that are not structured."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        value: Any = draw(json_values)
    elif choice == 1:
        keys = st.sampled_from(["jsonrpc", "id", "params", "x"])
        value = draw(st.dictionaries(keys, json_values))
    elif choice == 2:
        value = {**VALID_READ, "method": draw(st.one_of(json_values, st.just("")))}
    else:
        value = draw(requests(st.just("ratchet_getStatus"), lambda _: st.just([])))
    return payload(value), frozenset()


@st.composite
def requests(
    draw: st.DrawFn,
    methods: st.SearchStrategy[Any],
    params_of: Callable[[Any], st.SearchStrategy[Any]],
) -> Any:
    """A request object for a method of ``methods``, with parameters from
    ``params_of(method)``, or a broken one: the version, the id, the params' shape, a
    member missing or written twice, a notification."""
    method = draw(methods)
    members: list[tuple[str, Any]] = [("method", method)]
    if draw(st.integers(0, 3)) == 0:
        version = draw(st.one_of(versions, st.just(MISSING)))
        if version is not MISSING:
            members.append(("jsonrpc", version))
    else:
        members.append(("jsonrpc", "2.0"))
    shape = draw(st.sampled_from(["given", "given", "given", "given", "missing", "scalar"]))
    if shape == "scalar":
        members.append(("params", draw(scalars)))
    elif shape == "given":
        members.append(("params", draw(params_of(method))))
    if draw(st.integers(0, 9)):
        members.append(("id", draw(ids) if draw(st.integers(0, 3)) == 0 else 1))
    members = list(draw(st.permutations(members)))
    if draw(st.integers(0, 19)) == 0:  # a key twice: JSON allows it, the last one wins
        key, _ = draw(st.sampled_from(members))
        members.append((key, draw(json_values)))
    return Pairs(tuple(members))


def method_requests(world: World) -> st.SearchStrategy[Any]:
    """Requests of the real methods with hostile parameters."""
    cached = _METHOD_REQUESTS.get(id(world))
    if cached is None or cached[0] is not world:
        everything = [*sorted(READ_METHODS), "ratchet_sendTransaction", "ratchet_subscribe"]
        per_method = method_params(world)
        built = requests(
            st.sampled_from([*everything, "ratchet_unsubscribe"]),
            lambda method: params_for(per_method, method),
        )
        cached = _METHOD_REQUESTS[id(world)] = (world, built)
    return cached[1]


_METHOD_REQUESTS: dict[int, tuple[World, st.SearchStrategy[Any]]] = {}
"""method_requests(world), built once per world."""


@st.composite
def params_payloads(draw: st.DrawFn, world: World) -> Payload:
    return payload(draw(method_requests(world))), PARAM_CODES


UNKNOWN_METHODS = (
    "ratchet_getstatus",
    "ratchet_getStatus ",
    " ratchet_getStatus",
    "Ratchet_getStatus",
    "ratchet_getStatus\u0000",
    "ratchet_subscription",
    "ratchet_",
    "ratchet",
    "rpc.discover",
    "eth_chainId",
    "eth_sendRawTransaction",
    "devnet_postWrongRoot",
    "_account_id",
    "_on_event",
    "__init__",
    "__class__",
    "ratchet_getStatus.__call__",
    "ratchet_" + "x" * 10_000,
)


@st.composite
def unknown_method_payloads(draw: st.DrawFn) -> Payload:
    """Requests of methods that do not exist."""
    real = {*READ_METHODS, "ratchet_sendTransaction", "ratchet_subscribe", "ratchet_unsubscribe"}
    names = st.one_of(
        st.sampled_from(UNKNOWN_METHODS),
        st.text(min_size=1, max_size=30).filter(lambda name: name not in real),
        st.text(max_size=20).map(lambda name: "ratchet_" + name).filter(lambda n: n not in real),
    )
    value = draw(requests(names, lambda _: st.lists(json_values, max_size=3)))
    return payload(value), frozenset({-32600, -32601, -32602})


@st.composite
def subscription_payloads(draw: st.DrawFn, world: World) -> Payload:
    """``ratchet_subscribe`` with bad channels and params, ``ratchet_unsubscribe`` of
    unknown, others' and malformed ids."""
    channel = st.one_of(
        st.sampled_from(["receipts", "fills", "book", "batches"]), edge_strings, json_values
    )
    options = st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "account": account_refs(world),
                "market": small_numbers(len(world.markets) + 1),
                "depth": small_numbers(120),
            },
        ),
        json_values,
    )
    if draw(st.booleans()):
        params: Any = [draw(channel), draw(options)][: draw(st.integers(0, 3))]
        method = "ratchet_subscribe"
    else:
        ident = st.one_of(
            st.integers(0, 50).map(hex),
            st.integers(0, 2**70).map(hex),
            st.sampled_from(["0x", "0x0", "0X1", "1", "0x01", ""]),
            json_values,
        )
        params = draw(st.lists(ident, max_size=2))
        method = "ratchet_unsubscribe"
    request = {"jsonrpc": "2.0", "id": draw(st.integers(0, 99)), "method": method}
    return payload({**request, "params": params}), frozenset({-32600, -32601, -32602})


@st.composite
def batch_payloads(draw: st.DrawFn, world: World) -> Payload:
    """Batch requests: empty, nested, over the limit, at it, and mixed (valid reads,
    notifications, hostile calls and transactions)."""
    choice = draw(st.integers(0, 5))
    if choice == 0:
        value: Any = draw(st.sampled_from([[], [[]], [[VALID_READ]], [1, 2, 3], [None], [[], {}]]))
    elif choice == 1:
        count = draw(st.sampled_from([MAX_BATCH + 1, MAX_BATCH + 2, 5_000]))
        value = [{**VALID_READ, "id": i} for i in range(count)]
    elif choice == 2:
        value = [{**VALID_READ, "method": "ratchet_nope", "id": i} for i in range(MAX_BATCH)]
    else:
        elements = st.one_of(
            st.just(VALID_READ),
            method_requests(world),
            json_values,
            st.builds(lambda p: strict_loads(p[0].decode()), tx_signed_payloads(world)),
            st.lists(st.just(VALID_READ), max_size=2),
        )
        value = draw(st.lists(elements, min_size=1, max_size=30))
    return payload(value), frozenset()


# over a transport -----------------------------------------------------------------------


def over_transport(category: str, payloads: st.SearchStrategy[Payload]) -> st.SearchStrategy[Case]:
    """Cases sending each payload over HTTP or as a WebSocket text frame (invalid UTF-8:
    a raw text frame, which the server must close the connection on)."""

    @st.composite
    def build(draw: st.DrawFn) -> Case:
        body, codes = draw(payloads)
        transport = draw(st.sampled_from(["http", "ws"]))
        if transport == "http":
            return Case(category, "http", body, rpc=len(body) <= MAX_BODY, codes=codes)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return Case(category, "raw_ws", frames=(ws_frame(1, body),), rpc=False)
        return Case(category, "ws", body, rpc=len(body) < MAX_BODY, codes=codes)

    return build()


# HTTP misuse and WebSocket frames -------------------------------------------------------


@st.composite
def http_misuse_cases(draw: st.DrawFn, world: World) -> Case:
    """Other HTTP methods and paths, content types and encodings, chunked bodies."""
    body = payload(draw(st.one_of(st.just(VALID_READ), method_requests(world))))
    choice = draw(st.integers(0, 4))
    if choice == 0:
        method = draw(st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
        return Case("http_misuse", "http", body, method=method, rpc=False)
    if choice == 1:
        path = draw(
            st.sampled_from(["/ws", "/health", "/metrics", "/nope", "//", "/%00", "/..%2f", "/?x"])
        )
        return Case("http_misuse", "http", body, path=path, rpc=path == "/?x")
    if choice == 2:
        content_type = draw(
            st.sampled_from(
                [
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data; boundary=x",
                    "application/json; charset=latin-1",
                    "application/json; charset=utf-16",
                    "application/json; charset=utf-32",
                    "application/json; charset=bogus-42",
                    "application/json; charset=",
                    "application/json;;;",
                    "application/jsonx",
                    "*/*",
                    "",
                ]
            )
        )
        return Case("http_misuse", "http", body, headers=(("Content-Type", content_type),))
    if choice == 3:
        return Case("http_misuse", "http", body, chunked=True)
    encoding = draw(st.sampled_from(["gzip", "deflate", "br", "identity", "x-unknown"]))
    return Case("http_misuse", "http", body, headers=(("Content-Encoding", encoding),), rpc=False)


def ws_frame(
    opcode: int,
    data: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    length: int | None = None,
) -> bytes:
    """One WebSocket frame as a client sends it (masked), or as a hostile one might."""
    size = len(data) if length is None else length
    first = (0x80 if fin else 0) | (rsv & 7) << 4 | opcode & 0x0F
    masked = 0x80 if mask else 0
    if size < 126:
        header = bytes([first, masked | size])
    elif size < 1 << 16:
        header = bytes([first, masked | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([first, masked | 127]) + size.to_bytes(8, "big")
    if not mask:
        return header + data
    key = b"\x37\xfa\x21\x3d"
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(data))


@st.composite
def raw_frames(draw: st.DrawFn, request: bytes) -> bytes:
    """One frame: any opcode, FIN, RSV bits and masking, of random bytes or ``request``
    (a close frame: maybe with an invalid code)."""
    opcode = draw(st.sampled_from([0, 1, 2, 8, 9, 10, *range(3, 8), *range(11, 16)]))
    data = draw(st.one_of(st.binary(max_size=140), st.just(request)))
    if opcode == 8 and draw(st.booleans()):
        code = draw(st.sampled_from([0, 999, 1000, 1004, 1005, 1006, 1015, 2999, 5000]))
        data = code.to_bytes(2, "big") + draw(st.binary(max_size=10))
    return ws_frame(
        opcode,
        data,
        fin=draw(st.integers(0, 4)) > 0,
        rsv=draw(st.sampled_from([0, 0, 0, 1, 2, 4, 7])),
        mask=draw(st.integers(0, 9)) > 0,
    )


@st.composite
def ws_frame_cases(draw: st.DrawFn, world: World) -> Case:
    """A request split into fragments (maybe with a ping between), or a few raw frames
    (:func:`raw_frames`): too-long or fragmented control frames, bad opcodes, invalid
    close codes, ..."""
    request = payload(draw(st.one_of(st.just(VALID_READ), method_requests(world))))
    if draw(st.booleans()):  # a request split into fragments, maybe with a ping between
        cuts = sorted(draw(st.lists(st.integers(1, len(request) - 1), max_size=4, unique=True)))
        parts = [request[a:b] for a, b in zip([0, *cuts], [*cuts, len(request)], strict=True)]
        sent = [
            ws_frame(1 if i == 0 else 0, part, fin=i == len(parts) - 1)
            for i, part in enumerate(parts)
        ]
        if len(sent) > 1 and draw(st.booleans()):
            sent.insert(1, ws_frame(9, b"ping"))
        answered = expects_reply(request, websocket=True) == "yes"
        return Case("ws_frames", "raw_ws", frames=tuple(sent), rpc=answered)
    sent = draw(st.lists(raw_frames(request), min_size=1, max_size=3))
    return Case("ws_frames", "raw_ws", frames=tuple(sent), rpc=False)


@st.composite
def huge_cases(draw: st.DrawFn) -> Case:
    """Bodies and frames around the 1 MiB limit, and past it."""
    size = draw(st.sampled_from([MAX_BODY - 1, MAX_BODY, MAX_BODY + 1, 4 * MAX_BODY]))
    kind = draw(st.sampled_from(["padded", "string", "array"]))
    if kind == "padded":  # a valid read, padded with whitespace to the size
        request = json.dumps(VALID_READ).encode()
        body = request + b" " * max(0, size - len(request))
    elif kind == "string":
        filler = "0x" + "ab" * ((size - 120) // 2)
        body = payload(send_request(filler))
        body += b" " * max(0, size - len(body))
    else:
        body = b"[" + b"1," * ((size - 2) // 2) + b"1]"
    transport = draw(st.sampled_from(["http", "ws"]))
    if transport == "http":
        return Case("huge", "http", body, rpc=len(body) <= MAX_BODY, chunked=draw(st.booleans()))
    return Case("huge", "ws", body, rpc=len(body) < MAX_BODY)  # a frame of 1 MiB is too big


# all of it ------------------------------------------------------------------------------

WEIGHTS = {
    "not_json": 3,
    "not_request": 3,
    "batch": 2,
    "unknown_method": 2,
    "params": 7,
    "subscribe": 2,
    "tx_json": 5,
    "tx_raw": 5,
    "tx_signed": 6,
    "http_misuse": 2,
    "ws_frames": 2,
    "huge": 1,
}
"""How often each category is drawn, relative to the others."""


def cases(world: World) -> st.SearchStrategy[Case]:
    """Every kind of hostile case, weighted by :data:`WEIGHTS`."""
    by_category: dict[str, st.SearchStrategy[Case]] = {
        "not_json": over_transport("not_json", not_json_payloads()),
        "not_request": over_transport("not_request", not_request_payloads()),
        "batch": over_transport("batch", batch_payloads(world)),
        "unknown_method": over_transport("unknown_method", unknown_method_payloads()),
        "params": over_transport("params", params_payloads(world)),
        "subscribe": over_transport("subscribe", subscription_payloads(world)),
        "tx_json": over_transport("tx_json", tx_json_payloads(world)),
        "tx_raw": over_transport("tx_raw", tx_raw_payloads(world)),
        "tx_signed": over_transport("tx_signed", tx_signed_payloads(world)),
        "http_misuse": http_misuse_cases(world),
        "ws_frames": ws_frame_cases(world),
        "huge": huge_cases(),
    }
    weighted = [name for name, weight in WEIGHTS.items() for _ in range(weight)]
    return st.sampled_from(weighted).flatmap(lambda name: by_category[name])


# hand-picked classics -------------------------------------------------------------------


def http_bytes(request_line: str, headers: list[str], body: bytes = b"") -> bytes:
    """A raw HTTP/1.1 request."""
    head = "\r\n".join([request_line, "Host: 127.0.0.1", "Connection: close", *headers, "", ""])
    return head.encode("latin-1") + body


def classics(world: World) -> list[Case]:
    """Hand-picked hostile inputs, each sent once per run (before the generated ones)."""
    read = json.dumps(VALID_READ).encode()
    tx = encode_transaction(decode_transaction(world.sequenced[0]))
    found: list[Case] = []

    def rpc(
        category: str, body: bytes, codes: frozenset[int] = frozenset(), note: str = ""
    ) -> None:
        found.append(Case(category, "http", body, codes=codes, note=note))
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            found.append(
                Case(category, "raw_ws", frames=(ws_frame(1, body),), rpc=False, note=note)
            )
        else:
            found.append(
                Case(category, "ws", body, rpc=len(body) < MAX_BODY, codes=codes, note=note)
            )

    parse_error = frozenset({-32700})
    for body, note in [
        (b"{not json", "truncated"),
        (read[:-1], "truncated request"),
        (b"\xff\xfe" + read, "UTF-16 BOM"),
        ("\ufeff".encode() + read, "UTF-8 BOM"),
        (read.replace(b"ratchet", b"\xffratchet"), "invalid UTF-8"),
        (read.replace(b"ratchet", b"\xed\xa0\x80ratchet"), "UTF-8 surrogate"),
        (read.replace(b"1", b"NaN", 1), "id NaN"),
        (payload({**VALID_READ, "params": [Raw("Infinity")]}), "Infinity param"),
        (payload({**VALID_READ, "id": Raw("9" * 5000)}), "id of 5000 digits"),
        (payload(send_request(Raw("-" + "9" * 100_000))), "a 100,000-digit number"),
        (b"[" * 100_000, "100,000 ["),
        (b"[" * 50_000 + b"]" * 50_000, "50,000 nested arrays"),
        (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "50,000 nested objects"),
        (b"", "empty body"),
    ]:
        rpc("not_json", body, parse_error, note)
    for depth in (98, 99, 100, 101, 990, 1_000, 5_000):  # around the limits
        nested = "[" * depth + "1" + "]" * depth
        for deep in (
            {**VALID_READ, "params": Raw(nested)},
            send_request(Raw(nested)),
            {**VALID_READ, "method": "ratchet_getAccount", "params": [Raw(nested)]},
            {**VALID_READ, "id": Raw(nested)},
        ):
            rpc("not_json", payload(deep), frozenset(), f"nesting {depth}")
    duplicate = b'{"jsonrpc":"2.0","id":1,"method":"ratchet_getStatus","method":"ratchet_nope"}'
    rpc("not_request", duplicate, frozenset({-32601}), "duplicate keys")
    for other in [1, "x", None, True, {}, {"jsonrpc": "2.0"}, {"method": "ratchet_getStatus"}]:
        rpc("not_request", payload(other), frozenset({-32600}))
    for version in ["1.0", 2.0, None, "2.0 "]:
        rpc("not_request", payload({**VALID_READ, "jsonrpc": version}), frozenset({-32600}))
    for ident in [1.5, {"a": 1}, [1], True, 2**64, -(2**64), "x" * 10_000]:
        rpc("not_request", payload({**VALID_READ, "id": ident}))
    rpc("not_request", payload({**VALID_READ, "id": None}), frozenset(), "id null")
    rpc("batch", b"[]", frozenset({-32600}), "empty batch")
    rpc("batch", payload([[VALID_READ]]), frozenset({-32600}), "nested batch")
    big = [{**VALID_READ, "id": i} for i in range(MAX_BATCH + 1)]
    rpc("batch", payload(big), frozenset({-32600}), "1001 calls")
    calls = [{**VALID_READ, "method": "ratchet_getConfig", "id": i} for i in range(MAX_BATCH)]
    rpc("batch", payload(calls), frozenset(), "1000 ratchet_getConfig")
    notes = [{k: v for k, v in VALID_READ.items() if k != "id"}] * 3
    rpc("batch", payload(notes), frozenset(), "notifications only")
    for name in UNKNOWN_METHODS:
        rpc("unknown_method", payload({**VALID_READ, "method": name}), frozenset({-32601}))
    rpc("subscribe", payload({**VALID_READ, "method": "ratchet_subscribe", "params": ["batches"]}))
    for number in ("9" * 4301, "9" * 10_000, "\u0661", "1" * 80 + " "):
        for method in ("ratchet_getAccount", "ratchet_getBatch", "ratchet_getWithdrawalProof"):
            call = {**VALID_READ, "method": method, "params": [number]}
            rpc("params", payload(call), frozenset({-32602, -32011}), f"{method}({number[:6]}…)")
        call = {**VALID_READ, "method": "ratchet_getOrderBook", "params": [0, number]}
        rpc("params", payload(call), frozenset({-32602}), "depth " + number[:6])
    for tx_value in [
        "0x",
        "0x0",
        "0x" + tx.hex() + "00",
        "0x" + tx[:-1].hex(),
        "0x" + (b"\x01" + bytes(300)).hex(),
        "0x" + "zz",
        tx.hex(),
        {"type": "Receipt", "message": {}, "signature": "0x"},
        {"type": "Order", "message": {}, "signature": "0x" + "00" * 65},
        {"type": ["Order"], "message": {}, "signature": "0x"},
        {"type": {}, "message": [], "signature": "0x"},
        {"type": "Order", "message": None, "signature": None},
    ]:
        rpc("tx_raw", payload(send_request(tx_value)), TX_CODES)
    oversized = read + b" " * MAX_BODY
    found += [
        Case("http_misuse", "http", read, method=method, rpc=False)
        for method in ("GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
    ]
    found += [
        Case("http_misuse", "http", read, headers=(("Content-Type", content_type),))
        for content_type in (
            "text/plain",
            "application/json; charset=bogus-42",
            "application/json; charset=utf-16",
            "multipart/form-data; boundary=x",
        )
    ]
    found += [
        Case("huge", "http", oversized, rpc=False, note="1 MiB + a request"),
        Case("huge", "http", oversized, chunked=True, rpc=False, note="chunked, 1 MiB+"),
        Case("huge", "http", read + b" " * (MAX_BODY - len(read)), note="exactly 1 MiB"),
        Case("huge", "http", b" " * (16 * MAX_BODY), rpc=False, note="16 MiB"),
        Case("huge", "ws", read + b" " * (MAX_BODY - len(read) - 1), note="1 MiB - 1"),
        Case("huge", "ws", oversized, rpc=False, note="a frame past 1 MiB"),
        Case("huge", "ws", read, binary=True, rpc=False, note="a binary frame"),
    ]
    bomb = gzip.compress(b" " * (64 * MAX_BODY))
    found += [
        Case("huge", "http", bomb, headers=(("Content-Encoding", "gzip"),), rpc=False, note="bomb"),
        Case("http_misuse", "http", gzip.compress(read), headers=(("Content-Encoding", "gzip"),)),
        Case(
            "http_misuse", "http", b"\x1f\x8bxx", headers=(("Content-Encoding", "gzip"),), rpc=False
        ),
    ]
    length = f"Content-Length: {len(read)}"
    raw_http = [
        (http_bytes("POST / HTTP/1.1", ["Content-Length: 100"], b"{"), True, "cut body"),
        (http_bytes("POST / HTTP/1.1", ["Content-Length: 100"]), True, "no body"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Le", True, "cut headers"),
        (b"GARBAGE\r\n\r\n", False, "request line"),
        (b"\x00\xff\xfe\xfd\r\n\r\n", False, "binary request line"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", False, "HTTP/2 preface"),
        (http_bytes("POST / HTTP/9.9", [length], read), False, "HTTP/9.9"),
        (http_bytes("POST / HTTP/1.1", ["Content-Length: abc"], read), False, "length abc"),
        (http_bytes("POST / HTTP/1.1", ["Content-Length: -1"], read), False, "length -1"),
        (http_bytes("POST / HTTP/1.1", [length, "Content-Length: 3"], read), False, "2 lengths"),
        (
            http_bytes("POST / HTTP/1.1", [length, "Transfer-Encoding: chunked"], read),
            False,
            "length and chunked",
        ),
        (
            http_bytes(
                "POST / HTTP/1.1", ["Transfer-Encoding: chunked"], b"zz\r\nabc\r\n0\r\n\r\n"
            ),
            False,
            "chunk size zz",
        ),
        (
            http_bytes("POST / HTTP/1.1", ["Transfer-Encoding: chunked"], b"f" * 40 + b"\r\nx"),
            False,
            "chunk size 2^160",
        ),
        (http_bytes("POST / HTTP/1.1", ["X-Big: " + "a" * 100_000, length], read), False, "header"),
        (http_bytes("POST / HTTP/1.1", [f"X-{i}: {i}" for i in range(2_000)]), False, "headers"),
        (http_bytes("POST /" + "a" * 100_000 + " HTTP/1.1", [length], read), False, "long URL"),
        (http_bytes("POST / HTTP/1.0", [length], read), False, "HTTP/1.0"),
        (http_bytes("POST / HTTP/1.1", [length], read) * 3, False, "pipelined"),
        (
            http_bytes("GET /ws HTTP/1.1", ["Upgrade: websocket", "Connection: Upgrade"]),
            False,
            "upgrade without a key",
        ),
        (
            http_bytes(
                "GET /ws HTTP/1.1",
                [
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    "Sec-WebSocket-Key: x",
                    "Sec-WebSocket-Version: 8",
                ],
            ),
            False,
            "upgrade, version 8",
        ),
        (
            http_bytes("POST / HTTP/1.1", ["Expect: 100-continue", "Content-Length: 99999999"]),
            True,
            "100-continue for 100 MB",
        ),
    ]
    found += [
        Case("raw_http", "raw", data, abrupt=abrupt, rpc=False, note=note)
        for data, abrupt, note in raw_http
    ]
    request = read
    fragments = [request[:5], request[5:20], request[20:]]
    raw_ws = [
        ((ws_frame(1, b"\xff" + request),), False, "invalid UTF-8 text"),
        (
            (
                ws_frame(1, fragments[0], fin=False),
                ws_frame(9, b"between"),
                ws_frame(0, fragments[1], fin=False),
                ws_frame(0, fragments[2]),
            ),
            False,
            "fragments and a ping",
        ),
        ((ws_frame(0, request),), False, "continuation first"),
        ((ws_frame(1, request[:5], fin=False), ws_frame(1, request)), False, "text in text"),
        ((ws_frame(9, b"x" * 126),), False, "ping of 126 bytes"),
        ((ws_frame(9, b"x", fin=False),), False, "fragmented ping"),
        ((ws_frame(1, request, rsv=4),), False, "RSV1"),
        ((ws_frame(3, request),), False, "opcode 3"),
        ((ws_frame(15, request),), False, "opcode 15"),
        ((ws_frame(1, request, mask=False),), False, "unmasked"),
        ((ws_frame(1, b"", length=2**63 - 1),), False, "length 2^63-1"),
        ((ws_frame(8, b"\x03"),), False, "close of 1 byte"),
        ((ws_frame(8, (999).to_bytes(2, "big")),), False, "close 999"),
        ((ws_frame(8, (1000).to_bytes(2, "big") + b"\xff"),), False, "close reason not UTF-8"),
        ((ws_frame(10, b"unasked"),), False, "unsolicited pong"),
        (
            tuple(
                ws_frame(1 if i == 0 else 0, bytes([b]), fin=i == len(request) - 1)
                for i, b in enumerate(request)
            ),
            False,
            "a fragment per byte",
        ),
        (tuple(ws_frame(0, b"x", fin=False) for _ in range(5_000)), False, "5000 fragments"),
        ((ws_frame(1, b"x" * 500, length=1_000),), True, "cut frame"),
        ((), True, "handshake, then gone"),
    ]
    answered = ("fragments and a ping", "a fragment per byte")
    found += [
        Case("ws_frames", "raw_ws", frames=f, abrupt=abrupt, rpc=note in answered, note=note)
        for f, abrupt, note in raw_ws
    ]
    return found
