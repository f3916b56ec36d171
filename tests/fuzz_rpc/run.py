"""
The JSON-RPC fuzzer behind ``make fuzz-rpc``: hostile input against a real
``ratchet sequencer`` process, which must answer every JSON-RPC request with a JSON-RPC
answer, refuse everything else cleanly, never crash, and never change its state.

    python -m tests.fuzz_rpc.run --cases 20000 [--seed S]

The daemon runs without L1 on a loopback port, on a data directory seeded through the
engine itself: four funded traders, an oracle price in every market, resting orders,
a fill (so positions), a cancel, a cancel-all, a transfer and a withdrawal, and one
account whose nonce window has moved on (see :func:`seed`).

**Covered** (:mod:`tests.fuzz_rpc.hostile` draws them; a fixed list of classics runs
first): over HTTP POST ``/`` and as WebSocket text frames on ``/ws``: bytes that are not
JSON (truncated, invalid UTF-8, BOMs, NaN/Infinity, numbers Python cannot parse, 100,000
nested arrays, nesting around the server's limit), JSON that is not a request (other
types, no method, wrong versions, ids of every type, duplicate keys), batches (empty,
nested, 1,001 calls, 1,000 calls, mixed), unknown methods, every real method with wrong
types, arities, extra and named params and out-of-range numbers, subscriptions with bad
channels and params, and ``ratchet_sendTransaction`` with broken JSON forms, raw hex of
random bytes and of mutated real encodings, and validly signed transactions made
invalid on purpose (wrong signer or domain, used or too old nonce, unknown market, off
the tick or lot grid, expired, zero or excessive amounts, self transfer or liquidation,
a healthy target, stale and future oracle prices), signatures over other messages and
malleated (high-s) replays. Over HTTP also: other methods and paths, content types,
charsets and encodings (a gzip bomb), chunked bodies, bodies of 1 MiB and past it, and
raw-socket abuse (cut bodies and headers, bad request lines, conflicting lengths, bad
chunk sizes, huge headers and URLs, pipelining, broken upgrades). Over raw WebSocket
frames: invalid UTF-8, fragments (with pings between), bad opcodes, RSV bits, unmasked,
oversized and fragmented control frames, bad close frames, absurd lengths, frames cut
off, and abrupt closes.

Then the scenarios (:func:`run_scenarios`), whose figures are reported: a client that
sends 20,000 calls and never reads (the daemon's memory, and its latency meanwhile),
20,000 subscriptions on one socket, unsubscribing another socket's id (must be refused),
a ping flood, hundreds of connections at once, what 50,000 idle subscriptions cost each
transaction (valid transfers, tracked: the sequence must move by exactly their number),
and how much log one invalid request of 1 MiB writes.

**A failure** (a finding; the run exits 1 if there is any):

- ``crash``: the process died (it is restarted, and the run goes on);
- ``unhealthy``: ``/health`` is not ``200 {"ok": true}``, or the daemon does not answer;
- ``state_change``: ``ratchet_getStatus`` ``sequence`` or ``root`` moved over a case;
- ``accepted``: a case was sequenced (a receipt of a new sequence number came back):
  every case is built to be refused, so the generator or the server is wrong;
- ``internal_error``: a -32603 answer;
- ``http_5xx``: any 5xx status;
- ``bad_reply``: a JSON-RPC request answered with something that is not a JSON-RPC 2.0
  response (not JSON, an HTML or text page, no ``jsonrpc: "2.0"``, no id, both or
  neither of result and error, a code outside the standard ones and -32000..-32099, an
  application error without a ``data`` object, a -32010 without ``reason``/``code``/
  ``detail``, an empty array), a notification that got an answer, or a scenario whose
  expectation failed;
- ``unexpected_code``: an error code outside what the case allows: a body that is not
  JSON (RFC 8259: no NaN or Infinity; nested at most ``MAX_JSON_DEPTH`` deep; integers
  Python can read) must get -32700, a validly signed invalid transaction -32010, ...;
- ``missing_reply``: a request with an id got no answer;
- ``hang``: the server neither answered nor closed the connection within 10 s.

**Acceptable** for what is not a JSON-RPC request: any status below 500 (405 for GET on
``/``, 413 for a body past 1 MiB, 400 for a broken request, ...), the server closing the
connection (a WebSocket close 1002/1007/1009 for a protocol error, invalid UTF-8 or a
frame of 1 MiB or more), or no answer at all for a WebSocket binary frame. Results are
fine for the methods that only read (a hostile case may happen to be a valid read).

Prints one JSON summary on stdout: cases by category and transport, error codes and
-32010 reasons, HTTP statuses and WebSocket close codes seen, findings by kind with the
first examples (their input, cut to 300 characters; ``--findings FILE`` writes every
finding's whole input), the scenarios' figures, the daemon's memory and log growth,
elapsed seconds. Progress goes to stderr.
"""

import argparse
import asyncio
import base64
import contextlib
import io
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from yarl import URL

from node.config import load_config, load_genesis
from node.protocol.crypto import address_of, sign_digest
from node.protocol.eip712 import Domain
from node.protocol.genesis import Genesis
from node.protocol.inbox import Deposit, encode_l1_message
from node.protocol.transactions import (
    ALL_MARKETS,
    Cancel,
    CancelAll,
    Message,
    OraclePrice,
    Order,
    SignedTransaction,
    Transfer,
    Withdraw,
    encode_transaction,
)
from node.sequencer.engine import Sequencer
from node.sequencer.views import account_json
from node.storage import LevelDB
from tests.fuzz_rpc import hostile
from tests.fuzz_rpc.hostile import MAX_BODY, Case, World
from tests.integration.sequencer_env import Daemon, port, write_config
from tests.stf_env import FEE_OWNER_KEY, ORACLE_KEY
from tests.stf_env import test_key as key_of

DOMAIN = Domain(901_337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
SEQUENCER_KEY = key_of(77)
TRADERS = {account: key_of(account) for account in (1, 2, 3, 4)}
FUNDS = 10**12
"""Each trader's deposit (a million collateral tokens)."""

TIMEOUT = 10.0
"""Seconds the server has to answer a case (or close) before it counts as a hang."""

APPLICATION_CODES = range(-32099, -32000 + 1)

FINDING_KINDS = (
    "crash",
    "unhealthy",
    "state_change",
    "accepted",
    "internal_error",
    "http_5xx",
    "bad_reply",
    "unexpected_code",
    "missing_reply",
    "hang",
)


# the seeded world ---------------------------------------------------------------------


def signed(key: bytes, message: Message) -> bytes:
    signature = sign_digest(key, message.signing_hash(DOMAIN))
    return encode_transaction(SignedTransaction(message, signature))


async def seed(data: Path, genesis: Genesis) -> World:
    """Fund the traders, price every market and trade a little, through the engine
    itself (no L1); what the generators need to know of it."""
    sequenced: list[bytes] = []
    receipts: list[dict[str, Any]] = []
    with LevelDB(data) as db:
        engine = Sequencer(db, genesis, DOMAIN, SEQUENCER_KEY)
        for account, key in TRADERS.items():
            await engine.submit_l1_message(
                encode_l1_message(Deposit(address_of(key), account, FUNDS))
            )
        now = int(engine.clock())
        price = {m.id: m.tick_size << 20 for m in genesis.markets}
        lot = {m.id: m.lot_size for m in genesis.markets}
        tick = {m.id: m.tick_size for m in genesis.markets}
        transactions: list[tuple[bytes, Message]] = [
            (ORACLE_KEY, OraclePrice(m.id, price[m.id], now)) for m in genesis.markets
        ]
        btc, eth = genesis.markets[0].id, genesis.markets[1].id
        ask = Order(1, btc, False, price[btc] + 10 * tick[btc], 100 * lot[btc], 0, False, 0, 1)
        bid = Order(1, btc, True, price[btc] - 10 * tick[btc], 100 * lot[btc], 0, False, 0, 2)
        eth_ask = Order(1, eth, False, price[eth] + 5 * tick[eth], 100 * lot[eth], 0, False, 0, 3)
        transactions += [(TRADERS[1], ask), (TRADERS[1], bid), (TRADERS[1], eth_ask)]
        transactions += [
            (TRADERS[1], Cancel(1, eth_ask.signing_hash(DOMAIN), 4)),
            (TRADERS[2], Order(2, btc, True, ask.price, 50 * lot[btc], 1, False, 0, 1)),
            (TRADERS[2], CancelAll(2, ALL_MARKETS, 2)),
            (TRADERS[3], Transfer(3, 4, 1_000, 1)),
            (TRADERS[3], Withdraw(3, address_of(TRADERS[3]), 1_000_000, 2)),
            (
                TRADERS[4],
                Order(4, eth, True, price[eth] - 5 * tick[eth], 100 * lot[eth], 0, False, 0, 1_000),
            ),
        ]
        used: dict[int, set[int]] = {a: set() for a in TRADERS}
        for key, message in transactions:
            if not isinstance(message, OraclePrice):
                used[message.account].add(message.nonce)  # type: ignore[attr-defined]
            raw = signed(key, message)
            receipts.append(await engine.submit(raw))
            sequenced.append(raw)
        await engine.close_batch()
        await engine.flush()
        accounts = {a: account_json(engine.state, a) for a in range(len(TRADERS) + 2)}
        registered = sum(1 for found in accounts.values() if found is not None)
        assert registered == len(TRADERS) + 1 and accounts[registered] is None
        traders = {a: found for a, found in accounts.items() if a in TRADERS and found}
        return World(
            domain=DOMAIN,
            markets=genesis.markets,
            keys=TRADERS,
            registered=registered,
            used_nonces={a: frozenset(n) for a, n in used.items()},
            nonce_base={a: int(found["nonce"]["base"]) for a, found in traders.items()},
            open_orders={
                a: frozenset(bytes.fromhex(h[2:]) for h in found["openOrders"])
                for a, found in traders.items()
            },
            positions={
                a: frozenset(p["market"] for p in found["positions"] if int(p["size"]))
                for a, found in traders.items()
            },
            oracle_key=ORACLE_KEY,
            oracle_time={m.id: now for m in genesis.markets},
            now=now,
            sequenced=tuple(sequenced),
            tx_hashes=tuple(bytes.fromhex(r["txHash"][2:]) for r in receipts),
            order_hashes=tuple(
                bytes.fromhex(r["outcome"]["orderHash"][2:])
                for r in receipts
                if "orderHash" in r["outcome"]
            ),
            addresses=tuple(address_of(key) for key in TRADERS.values()),
            withdrawals=tuple(
                int(r["outcome"]["withdrawalId"])
                for r in receipts
                if "withdrawalId" in r["outcome"]
            ),
        )


@contextlib.contextmanager
def serving(directory: Path) -> Iterator[tuple[Daemon, World]]:
    """A seeded ``ratchet sequencer`` without L1 on a free loopback port; stopped (by
    pid) on the way out."""
    config = write_config(
        directory,
        DOMAIN,
        port=port(),
        oracle="0x" + address_of(ORACLE_KEY).hex(),
        fee_owner="0x" + address_of(FEE_OWNER_KEY).hex(),
    )
    settings_ = load_config(config, {})
    world = asyncio.run(seed(directory / "data" / "db", load_genesis(settings_, config)))
    daemon = Daemon(config, SEQUENCER_KEY, int(settings_["rpc"]["port"]))
    daemon.start()
    try:
        yield daemon, world
    finally:
        daemon.stop()
        daemon.kill()


def memory_kb(pid: int) -> dict[str, int]:
    """The process's resident memory now and at its peak, in kB (Linux)."""
    found = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0])
    return found


# what came back, and what is wrong with it ----------------------------------------------


@dataclass
class Answer:
    """What came back for one case."""

    statuses: list[int] = field(default_factory=list)
    replies: list[Any] = field(default_factory=list)
    """JSON answers: an HTTP body, or each WebSocket text message but the sentinel's."""
    texts: list[bytes] = field(default_factory=list)
    """Answers that are not JSON (HTTP bodies of refusals, mostly)."""
    close: int | None = None
    """The WebSocket close code, if the server closed (0: closed without a close frame)."""
    error: str | None = None
    """A client-side error: the connection reset, the request refused mid-body."""
    timed_out: bool = False
    sentinel: bool = False
    """The request sent after the case on the same socket was answered."""
    receipts: list[dict[str, Any]] = field(default_factory=list)
    """Receipt-shaped results of new sequence numbers: what a case got sequenced."""


@dataclass
class Report:
    """Everything counted over a run."""

    cases: Counter[str] = field(default_factory=Counter)
    transports: Counter[str] = field(default_factory=Counter)
    codes: Counter[int] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    closes: Counter[int] = field(default_factory=Counter)
    client_errors: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)
    full: list[dict[str, Any]] = field(default_factory=list)
    scenarios: dict[str, Any] = field(default_factory=dict)

    def finding(self, kind: str, case: Case, detail: str) -> None:
        self.findings[kind] += 1
        shown = sum(1 for e in self.examples if (e["kind"], e["category"]) == (kind, case.category))
        if shown < 3 and len(self.examples) < 60:
            self.examples.append(
                {
                    "kind": kind,
                    "category": case.category,
                    "transport": case.transport,
                    "note": case.note,
                    "detail": detail[:300],
                    "input": excerpt(case),
                }
            )
        if len(self.full) < 1_000:
            self.full.append({"kind": kind, "detail": detail, "case": case_json(case)})


def excerpt(case: Case, limit: int = 300) -> str:
    """The case's input, cut to ``limit`` characters."""
    data = b"".join(case.frames) if case.transport == "raw_ws" else case.body
    text = data[:limit].decode("utf-8", "backslashreplace")
    head = f"{case.method} {case.path} " if case.transport == "http" else ""
    extra = f" {dict(case.headers)}" if case.headers else ""
    more = f" …({len(data)} bytes)" if len(data) > limit else ""
    return head + text + more + extra


def case_json(case: Case) -> dict[str, Any]:
    """The whole case, for ``--findings`` (bytes as base64)."""
    return {
        "category": case.category,
        "transport": case.transport,
        "method": case.method,
        "path": case.path,
        "headers": case.headers,
        "chunked": case.chunked,
        "binary": case.binary,
        "abrupt": case.abrupt,
        "note": case.note,
        "body": base64.b64encode(case.body).decode(),
        "frames": [base64.b64encode(f).decode() for f in case.frames],
    }


def expected_codes(case: Case) -> frozenset[int]:
    """The error codes acceptable for a JSON-RPC case: -32700 alone for a body that is
    not JSON (as the body's own bytes say; not when headers change how it is read)."""
    if case.transport in ("http", "ws") and not case.headers and not case.binary:
        try:
            hostile.strict_loads(case.body.decode("utf-8"))
        except (ValueError, RecursionError):
            return frozenset({-32700})
    return case.codes


def check_reply(
    value: Any, codes: frozenset[int], baseline: int, answer: Answer
) -> list[tuple[str, str]]:
    """What is wrong with one JSON answer (a response, or a batch's array of them), given
    the error codes acceptable (empty: any) and the sequence before the case."""
    if isinstance(value, list):
        if not value:
            return [("bad_reply", "an empty array")]
        return [p for item in value for p in check_response(item, codes, baseline, answer)]
    return check_response(value, codes, baseline, answer)


def check_response(
    item: Any, codes: frozenset[int], baseline: int, answer: Answer
) -> list[tuple[str, str]]:
    """What is wrong with one JSON-RPC 2.0 response object."""
    shown = json.dumps(item)[:200]
    if not isinstance(item, dict) or item.get("jsonrpc") != "2.0" or "id" not in item:
        return [("bad_reply", f"not a JSON-RPC 2.0 response: {shown}")]
    if ("result" in item) == ("error" in item):
        return [("bad_reply", f"both or neither of result and error: {shown}")]
    if "result" in item:
        result = item["result"]
        shape = isinstance(result, dict) and {"txHash", "sequence", "signature"} <= result.keys()
        if shape and isinstance(result["sequence"], int) and result["sequence"] >= baseline:
            answer.receipts.append(result)
        return []
    error = item["error"]
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return [("bad_reply", f"a malformed error: {shown}")]
    code = error.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        return [("bad_reply", f"an error code that is not an integer: {shown}")]
    problems: list[tuple[str, str]] = []
    if code == -32603:
        problems.append(("internal_error", shown))
    elif code not in hostile.STANDARD_CODES and code not in APPLICATION_CODES:
        problems.append(("bad_reply", f"code {code} is neither standard nor -32000..-32099"))
    elif code in APPLICATION_CODES and not isinstance(error.get("data"), dict):
        problems.append(("bad_reply", f"application error without a data object: {shown}"))
    elif code == -32010 and not {"reason", "code", "detail"} <= error["data"].keys():
        problems.append(("bad_reply", f"-32010 without reason, code and detail: {shown}"))
    if codes and code not in codes and code != -32603:
        problems.append(("unexpected_code", f"{code} (allowed: {sorted(codes)}): {shown}"))
    return problems


def parse_json(data: bytes) -> Any:
    """Strict JSON, or raise ValueError."""
    return hostile.strict_loads(data.decode("utf-8"))


# the transports -------------------------------------------------------------------------


def handshake(host: str, key: str) -> bytes:
    return (
        f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One frame from the server: its opcode and payload."""
    head = await reader.readexactly(2)
    size = head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    mask = await reader.readexactly(4) if head[1] & 0x80 else b""
    data = await reader.readexactly(size)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return head[0] & 0x0F, data


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    for at in range(0, len(body), 65_536):
        yield body[at : at + 65_536]


class Fuzzer:
    """Sends cases to one daemon and checks the answers and the daemon after each."""

    def __init__(self, daemon: Daemon, world: World) -> None:
        self.daemon = daemon
        self.world = world
        self.url = daemon.url
        self.report = Report()
        self.loop = asyncio.new_event_loop()
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.baseline: tuple[int, str] = (0, "")
        self.serial = 0
        self.restarts = 0

    def __enter__(self) -> "Fuzzer":
        self.session = self.loop.run_until_complete(self._session())
        status = self.loop.run_until_complete(self.status())
        assert status is not None, "the daemon does not answer"
        self.baseline = status
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            if self.ws is not None:
                await self.ws.close()
            if self.session is not None:
                await self.session.close()

        self.loop.run_until_complete(close())
        self.loop.close()

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self.session is not None
        return self.session

    def run(self, case: Case) -> None:
        """Send ``case``, check what came back and the daemon's state after it."""
        self.loop.run_until_complete(self._run(case))

    def run_async(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def _run(self, case: Case) -> None:
        self.serial += 1
        self.report.cases[case.category] += 1
        self.report.transports[case.transport] += 1
        send = {
            "http": self._http,
            "ws": self._ws,
            "raw": self._raw,
            "raw_ws": self._raw_ws,
        }[case.transport]
        answer = Answer()
        try:
            await asyncio.wait_for(send(case, answer), 3 * TIMEOUT)
        except TimeoutError:
            answer.timed_out = True
        problems = self.check(case, answer)
        problems += await self.check_server(answer)
        for kind, detail in problems:
            self.report.finding(kind, case, detail)
        for status in answer.statuses:
            self.report.statuses[status] += 1
        if answer.close is not None:
            self.report.closes[answer.close] += 1
        if answer.error is not None:
            self.report.client_errors[answer.error.split("(")[0]] += 1

    def check(self, case: Case, answer: Answer) -> list[tuple[str, str]]:
        """What is wrong with the answer to ``case`` (not yet the state)."""
        problems: list[tuple[str, str]] = []
        if answer.timed_out and not case.abrupt and not answer.sentinel:
            problems.append(("hang", f"no answer and no close in {TIMEOUT} s"))
        for code in answer.statuses:
            if code >= 500:
                text = b"".join(answer.texts)[:200].decode("utf-8", "replace")
                problems.append(("http_5xx", f"status {code}: {text}"))
        baseline = self.baseline[0]
        codes = expected_codes(case) if answer.replies else frozenset()
        for reply in answer.replies:
            problems += check_reply(reply, codes, baseline, answer)
            for item in reply if isinstance(reply, list) else [reply]:
                if isinstance(item, dict) and isinstance(item.get("error"), dict):
                    code = item["error"].get("code")
                    if isinstance(code, int):
                        self.report.codes[code] += 1
                    data = item["error"].get("data")
                    if code == -32010 and isinstance(data, dict):
                        self.report.reasons[str(data.get("reason"))] += 1
        if not case.rpc or (answer.timed_out and not answer.sentinel):
            return problems
        expect = hostile.expects_reply(case.body, websocket=case.transport == "ws")
        if case.transport == "raw_ws":
            expect = "yes"
        elif case.headers:  # a charset or an encoding: the server reads other text
            expect = "either"
        if case.transport == "http":
            status = answer.statuses[0] if answer.statuses else None
            if answer.error is not None:
                problems.append(("bad_reply", f"a JSON-RPC request, and then {answer.error}"))
            elif status is not None and status < 500 and status not in (200, 204):
                problems.append(("bad_reply", f"status {status} for a JSON-RPC request"))
            elif answer.texts:
                text = answer.texts[0][:200].decode("utf-8", "replace")
                problems.append(("bad_reply", f"an answer that is not JSON: {text}"))
        if expect == "yes" and not answer.replies and not answer.texts:
            problems.append(("missing_reply", "a request with an id got no answer"))
        elif expect == "no" and answer.replies:
            problems.append(("bad_reply", "a notification was answered"))
        return problems

    async def check_server(self, answer: Answer) -> list[tuple[str, str]]:
        """The daemon is alive, healthy, and its state is the baseline (or moved by a
        case that got sequenced: ``accepted``)."""
        problems: list[tuple[str, str]] = []
        process = self.daemon.process
        assert process is not None
        if process.poll() is not None:
            problems.append(("crash", f"exit code {process.returncode}"))
            self.restarts += 1
            await asyncio.to_thread(self.daemon.start)
            self.ws = None
        health = await self.health()
        if health is not None:
            problems.append(("unhealthy", health))
        status = await self.status()
        if status is None:
            problems.append(("unhealthy", "ratchet_getStatus does not answer"))
        elif status != self.baseline:
            if answer.receipts:
                for receipt in answer.receipts:
                    problems.append(("accepted", json.dumps(receipt)[:300]))
            else:
                problems.append(("state_change", f"{self.baseline} -> {status}"))
            self.baseline = status
        return problems

    async def status(self) -> tuple[int, str] | None:
        """``ratchet_getStatus``'s sequence and root (retried for 10 s)."""
        body = {"jsonrpc": "2.0", "id": 0, "method": "ratchet_getStatus", "params": []}
        for _ in range(20):
            try:
                async with self.http.post(self.url + "/", json=body) as reply:
                    result = (await reply.json())["result"]
                    return result["sequence"], result["root"]
            except (aiohttp.ClientError, TimeoutError, KeyError, ValueError):
                await asyncio.sleep(0.5)
        return None

    async def health(self) -> str | None:
        """None if ``/health`` is ``200 {"ok": true}``; else what it is."""
        try:
            async with self.http.get(self.url + "/health") as reply:
                body = await reply.json()
                if reply.status == 200 and body.get("ok") is True:
                    return None
                return f"/health: {reply.status} {body}"
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return f"/health: {exc!r}"

    # HTTP ---------------------------------------------------------------------------

    async def _http(self, case: Case, answer: Answer) -> None:
        headers = {"Content-Type": "application/json", **dict(case.headers)}
        data: Any = _chunks(case.body) if case.chunked else io.BytesIO(case.body)
        url = URL(self.url + case.path, encoded=True)
        try:
            async with self.http.request(
                case.method, url, data=data, headers=headers, auto_decompress=True
            ) as reply:
                body = await reply.read()
                answer.statuses.append(reply.status)
        except TimeoutError:
            answer.timed_out = True
            return
        except aiohttp.ClientError as exc:
            answer.error = repr(exc)
            return
        if not body:
            return
        try:
            value = parse_json(body)
        except (ValueError, RecursionError):
            answer.texts.append(body)
            return
        if reply.status == 200 and reply.content_type == "application/json":
            answer.replies.append(value)
        else:
            answer.texts.append(body)

    # WebSocket ----------------------------------------------------------------------

    async def websocket(self) -> aiohttp.ClientWebSocketResponse:
        if self.ws is None or self.ws.closed:
            self.ws = await self.http.ws_connect(self.url + "/ws", max_msg_size=0)
        return self.ws

    async def _ws(self, case: Case, answer: Answer) -> None:
        ws = await self.websocket()
        sentinel = f"sentinel-{self.serial}"
        request = {"jsonrpc": "2.0", "id": sentinel, "method": "ratchet_getStatus"}
        try:
            if case.binary:
                await ws.send_bytes(case.body)
            else:
                await ws.send_str(case.body.decode("utf-8"))
            await ws.send_str(json.dumps(request))
        except (aiohttp.ClientError, ConnectionError) as exc:
            answer.error = repr(exc)
        expect = "no" if case.binary else hostile.expects_reply(case.body, websocket=True)
        deadline = self.loop.time() + TIMEOUT
        while not (answer.sentinel and (expect != "yes" or answer.replies or answer.texts)):
            try:
                message = await ws.receive(timeout=max(0.0, deadline - self.loop.time()))
            except TimeoutError:
                answer.timed_out = True
                await ws.close()  # a late answer must not count for the next case
                self.ws = None
                return
            if message.type == aiohttp.WSMsgType.TEXT:
                self._ws_text(message.data.encode(), sentinel, answer)
            elif message.type == aiohttp.WSMsgType.BINARY:
                answer.texts.append(message.data)
            else:
                answer.close = ws.close_code or 0
                self.ws = None
                return
        if expect == "either":  # an answer to "id": null may still come
            with contextlib.suppress(TimeoutError):
                message = await ws.receive(timeout=0.03)
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._ws_text(message.data.encode(), sentinel, answer)

    def _ws_text(self, data: bytes, sentinel: str, answer: Answer) -> None:
        try:
            value = parse_json(data)
        except (ValueError, RecursionError):
            answer.texts.append(data)
            return
        if isinstance(value, dict) and value.get("id") == sentinel:
            answer.sentinel = True
            return
        if isinstance(value, dict) and value.get("method") == "ratchet_subscription":
            return
        answer.replies.append(value)

    # raw sockets --------------------------------------------------------------------

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.daemon.port, limit=1 << 24)

    async def _raw(self, case: Case, answer: Answer) -> None:
        reader, writer = await self._connect()
        try:
            writer.write(case.body)
            await writer.drain()
            if case.abrupt:
                return
            data = b""
            deadline = self.loop.time() + TIMEOUT
            while self.loop.time() < deadline:
                try:
                    chunk = await asyncio.wait_for(
                        reader.read(1 << 16), deadline - self.loop.time()
                    )
                except TimeoutError:
                    break
                if not chunk:
                    break
                data += chunk
            else:
                if not data:
                    answer.timed_out = True
            statuses = [
                int(line.split()[1])
                for line in data.split(b"\r\n")
                if line.startswith(b"HTTP/1.") and len(line.split()) > 1
            ]
            answer.statuses += statuses
            if (not statuses and data) or (statuses and any(s >= 500 for s in statuses)):
                answer.texts.append(data)
        except (ConnectionError, OSError) as exc:
            answer.error = repr(exc)
        finally:
            writer.transport.abort()

    async def _raw_ws(self, case: Case, answer: Answer) -> None:
        reader, writer = await self._connect()
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(handshake(f"127.0.0.1:{self.daemon.port}", key))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            answer.statuses.append(int(head.split()[1]))
            writer.write(b"".join(case.frames))
            await writer.drain()
            if case.abrupt:
                return
            sentinel = f"sentinel-{self.serial}"
            request = {"jsonrpc": "2.0", "id": sentinel, "method": "ratchet_getStatus"}
            writer.write(hostile.ws_frame(1, json.dumps(request).encode()))
            await writer.drain()
            await self._read_frames(reader, sentinel, answer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError) as exc:
            answer.error = repr(exc)
            if answer.close is None and isinstance(exc, asyncio.IncompleteReadError):
                answer.close = 0
        finally:
            writer.transport.abort()

    async def _read_frames(
        self, reader: asyncio.StreamReader, sentinel: str, answer: Answer
    ) -> None:
        deadline = self.loop.time() + TIMEOUT
        while True:
            try:
                opcode, data = await asyncio.wait_for(
                    read_frame(reader), max(0.0, deadline - self.loop.time())
                )
            except TimeoutError:
                answer.timed_out = True
                return
            if opcode == 1:
                self._ws_text(data, sentinel, answer)
                if answer.sentinel:
                    return
            elif opcode == 8:
                answer.close = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                return
            elif opcode == 2:
                answer.texts.append(data)


# scenarios ------------------------------------------------------------------------------


async def raw_websocket(daemon: Daemon) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket on a raw socket, past its handshake."""
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port, limit=1 << 24)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(handshake(f"127.0.0.1:{daemon.port}", key))
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    return reader, writer


async def latency(fuzzer: Fuzzer) -> float | None:
    """Seconds ``ratchet_getStatus`` takes over HTTP now (None: no answer)."""
    started = time.monotonic()
    status = await fuzzer.status()
    return round(time.monotonic() - started, 4) if status is not None else None


class MemoryWatch:
    """Samples a process's resident memory every 50 ms while it runs; the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = memory_kb(pid).get("VmRSS", 0)
        self.task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, memory_kb(self.pid).get("VmRSS", 0))
            await asyncio.sleep(0.05)

    def __enter__(self) -> "MemoryWatch":
        self.task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()


async def never_reads(fuzzer: Fuzzer, requests: int, pause: float) -> dict[str, Any]:
    """A client that sends ``requests`` calls of ``ratchet_getConfig`` (a big answer)
    and never reads: does the daemon's memory grow with it, does it still serve others?"""
    pid = fuzzer.daemon.process.pid if fuzzer.daemon.process else 0
    before = memory_kb(pid).get("VmRSS", 0)
    call = {"jsonrpc": "2.0", "id": 1, "method": "ratchet_getConfig"}
    async with fuzzer.http.post(fuzzer.url + "/", json=call) as reply:
        answer_bytes = len(await reply.read())
    reader, writer = await raw_websocket(fuzzer.daemon)
    frame = hostile.ws_frame(1, json.dumps(call).encode())
    sent, blocked = 0, False
    with MemoryWatch(pid) as watch:
        for _ in range(requests // 100):
            writer.write(frame * 100)
            sent += 100
            try:
                await asyncio.wait_for(writer.drain(), 5)
            except TimeoutError:
                blocked = True  # the server stopped reading: back-pressure
                break
        await asyncio.sleep(pause)
        slow = await latency(fuzzer)  # once it has worked through them
        await asyncio.sleep(pause)
    writer.transport.abort()
    await asyncio.sleep(pause)
    del reader
    return {
        "requests_sent": sent,
        "answer_bytes_each": answer_bytes,
        "server_stopped_reading": blocked,
        "rss_kb_before": before,
        "rss_kb_peak_while_unread": watch.peak,
        "rss_kb_after_close": memory_kb(pid).get("VmRSS", 0),
        "status_latency_s_meanwhile": slow,
    }


async def many_subscriptions(fuzzer: Fuzzer, count: int) -> dict[str, Any]:
    """``count`` subscriptions on one socket (1,000 per batch frame), then the socket
    closes: nothing limits them, and they stay registered until the next event."""
    pid = fuzzer.daemon.process.pid if fuzzer.daemon.process else 0
    before = memory_kb(pid).get("VmRSS", 0)
    ws = await fuzzer.http.ws_connect(fuzzer.url + "/ws", max_msg_size=0)
    granted = 0
    try:
        for first in range(0, count, 1_000):
            calls = [
                {"jsonrpc": "2.0", "id": i, "method": "ratchet_subscribe", "params": ["batches"]}
                for i in range(first, min(count, first + 1_000))
            ]
            await ws.send_str(json.dumps(calls))
            answer = json.loads((await ws.receive(timeout=TIMEOUT)).data)
            granted += sum(1 for a in answer if isinstance(a.get("result"), str))
        during = memory_kb(pid).get("VmRSS", 0)
    finally:
        await ws.close()
    await asyncio.sleep(0.5)
    return {
        "subscriptions_granted": granted,
        "rss_kb_before": before,
        "rss_kb_with_them": during,
        "rss_kb_after_close": memory_kb(pid).get("VmRSS", 0),
        "status_latency_s": await latency(fuzzer),
    }


async def foreign_unsubscribe(fuzzer: Fuzzer) -> dict[str, Any]:
    """Socket B cannot unsubscribe socket A's subscription; A can, once."""

    async def call(ws: aiohttp.ClientWebSocketResponse, method: str, *params: Any) -> Any:
        await ws.send_str(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        )
        return json.loads((await ws.receive(timeout=TIMEOUT)).data).get("result")

    first = await fuzzer.http.ws_connect(fuzzer.url + "/ws")
    second = await fuzzer.http.ws_connect(fuzzer.url + "/ws")
    try:
        ident = await call(first, "ratchet_subscribe", "receipts", {"account": 1})
        by_other = await call(second, "ratchet_unsubscribe", ident)
        by_owner = await call(first, "ratchet_unsubscribe", ident)
        again = await call(first, "ratchet_unsubscribe", ident)
    finally:
        await first.close()
        await second.close()
    return {
        "other_socket_refused": by_other is False,
        "owner_unsubscribed": by_owner is True,
        "second_time_refused": again is False,
        "ok": (by_other, by_owner, again) == (False, True, False),
    }


async def ping_flood(fuzzer: Fuzzer, pings: int) -> dict[str, Any]:
    """``pings`` pings of 125 bytes, unread, then a request: answered, and pongs."""
    reader, writer = await raw_websocket(fuzzer.daemon)
    started = time.monotonic()
    ping = hostile.ws_frame(9, b"p" * 125)
    try:
        for _ in range(pings // 100):
            writer.write(ping * 100)
            await asyncio.wait_for(writer.drain(), TIMEOUT)
        request = {"jsonrpc": "2.0", "id": "after", "method": "ratchet_getStatus"}
        writer.write(hostile.ws_frame(1, json.dumps(request).encode()))
        pongs, answered = 0, False
        while not answered:
            opcode, data = await asyncio.wait_for(read_frame(reader), 3 * TIMEOUT)
            pongs += opcode == 10
            answered = opcode == 1 and b'"after"' in data
            if opcode == 8:
                break
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
        answered = False
    finally:
        writer.transport.abort()
    return {
        "pings": pings,
        "pongs": pongs,
        "answered_after": answered,
        "seconds": round(time.monotonic() - started, 2),
    }


async def many_connections(fuzzer: Fuzzer, count: int) -> dict[str, Any]:
    """``count`` WebSockets at once, each asking once; half closed politely, half cut."""

    async def one(i: int) -> bool:
        reader, writer = await raw_websocket(fuzzer.daemon)
        try:
            request = {"jsonrpc": "2.0", "id": i, "method": "ratchet_getStatus"}
            writer.write(hostile.ws_frame(1, json.dumps(request).encode()))
            opcode, _ = await asyncio.wait_for(read_frame(reader), TIMEOUT)
            if i % 2:
                writer.write(hostile.ws_frame(8, (1000).to_bytes(2, "big")))
                await writer.drain()
            return opcode == 1
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            return False
        finally:
            writer.transport.abort()

    started = time.monotonic()
    answered = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    return {
        "connections": count,
        "answered": sum(1 for a in answered if a is True),
        "seconds": round(time.monotonic() - started, 2),
    }


async def subscription_fanout(fuzzer: Fuzzer, count: int) -> dict[str, Any]:
    """What ``count`` idle subscriptions (of another account's receipts) cost every
    transaction: valid transfers (account 3 to 4, one unit, tracked exactly: the
    sequence must move by one each) without them, with them, and after their socket
    closed."""
    nonces = itertools.count(100)

    async def transfer() -> float:
        raw = signed(TRADERS[3], Transfer(3, 4, 1, next(nonces)))
        request = {"jsonrpc": "2.0", "id": 1, "method": "ratchet_sendTransaction"}
        started = time.monotonic()
        async with fuzzer.http.post(
            fuzzer.url + "/", json={**request, "params": ["0x" + raw.hex()]}
        ) as reply:
            answer = await reply.json()
        assert "result" in answer, answer
        return time.monotonic() - started

    async def median_of(runs: int) -> float:
        return round(statistics.median([await transfer() for _ in range(runs)]), 4)

    sequence = fuzzer.baseline[0]
    alone = await median_of(5)
    ws = await fuzzer.http.ws_connect(fuzzer.url + "/ws", max_msg_size=0)
    try:
        for first in range(0, count, 1_000):
            calls = [
                {"jsonrpc": "2.0", "id": n, "method": "ratchet_subscribe"}
                | {"params": ["receipts", {"account": 2}]}
                for n in range(first, min(count, first + 1_000))
            ]
            await ws.send_str(json.dumps(calls))
            await ws.receive(timeout=TIMEOUT)
        crowded = await median_of(5)
    finally:
        await ws.close()
    after = await median_of(1)
    status = await fuzzer.status()
    moved = status[0] - sequence if status is not None else None
    if status is not None:
        fuzzer.baseline = status
    return {
        "subscriptions": count,
        "transfer_s_median_alone": alone,
        "transfer_s_median_with_them": crowded,
        "transfer_s_after_their_socket_closed": after,
        "sequenced": moved,
        "ok": moved == 11,
    }


async def log_amplification(fuzzer: Fuzzer) -> dict[str, Any]:
    """How many bytes of the daemon's log one invalid request of about 1 MiB writes,
    over a WebSocket and over HTTP."""
    log = fuzzer.daemon.log
    garbage = b"x" * (MAX_BODY - 1)
    start = log.stat().st_size
    await fuzzer._ws(Case("scenario", "ws", garbage), Answer())
    await asyncio.sleep(0.3)
    middle = log.stat().st_size
    await fuzzer._http(Case("scenario", "http", garbage), Answer())
    await asyncio.sleep(0.3)
    return {
        "request_bytes": len(garbage),
        "log_bytes_ws": middle - start,
        "log_bytes_http": log.stat().st_size - middle,
    }


def run_scenarios(fuzzer: Fuzzer, scale: float) -> None:
    """Each scenario, then the daemon's checks (its findings count as category
    ``scenario``)."""
    plan: list[tuple[str, Any]] = [
        ("never_reads", lambda: never_reads(fuzzer, max(100, int(20_000 * scale)), 2 * scale)),
        ("many_subscriptions", lambda: many_subscriptions(fuzzer, max(1_000, int(20_000 * scale)))),
        ("foreign_unsubscribe", lambda: foreign_unsubscribe(fuzzer)),
        ("ping_flood", lambda: ping_flood(fuzzer, max(100, int(20_000 * scale)))),
        ("many_connections", lambda: many_connections(fuzzer, max(10, int(300 * scale)))),
        (
            "subscription_fanout",
            lambda: subscription_fanout(fuzzer, max(1_000, int(50_000 * scale))),
        ),
        ("log_amplification", lambda: log_amplification(fuzzer)),
    ]
    for name, scenario in plan:
        case = Case("scenario", "ws", note=name)
        fuzzer.report.cases["scenario"] += 1
        try:
            figures = fuzzer.run_async(scenario())
        except Exception as exc:
            figures = {"error": repr(exc)}
            fuzzer.report.finding("bad_reply", case, f"{name}: {exc!r}")
        fuzzer.report.scenarios[name] = figures
        if figures.get("ok") is False:
            fuzzer.report.finding("bad_reply", case, f"{name}: {figures}")
        for kind, detail in fuzzer.run_async(fuzzer.check_server(Answer())):
            fuzzer.report.finding(kind, case, f"{name}: {detail}")


# the run --------------------------------------------------------------------------------


def run_generated(fuzzer: Fuzzer, world: World, count: int, seed_: int) -> int:
    """``count`` cases drawn by Hypothesis (seeded), each sent and checked; how many ran."""
    ran = [0]

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(hostile.cases(world))
    def one(case: Case) -> None:
        fuzzer.run(case)
        ran[0] += 1
        if ran[0] % 1_000 == 0:
            found = sum(fuzzer.report.findings.values())
            print(f"fuzz-rpc: {ran[0]} cases, {found} findings", file=sys.stderr, flush=True)

    hypothesis_seed(seed_)(one)()
    return ran[0]


def fuzz_rpc(directory: Path, cases: int, seed_: int, scale: float = 1.0) -> dict[str, Any]:
    """Serve a seeded daemon in ``directory``; run the classics, ``cases`` generated
    cases and the scenarios (sized by ``scale``) against it; the summary."""
    started = time.monotonic()
    with serving(directory) as (daemon, world):
        assert daemon.process is not None
        pid = daemon.process.pid
        memory_start = memory_kb(pid)
        log_start = daemon.log.stat().st_size
        with Fuzzer(daemon, world) as fuzzer:
            classics = hostile.classics(world)
            for case in classics:
                fuzzer.run(case)
            generated = run_generated(fuzzer, world, cases, seed_)
            run_scenarios(fuzzer, scale)
        report = fuzzer.report
        memory_end = memory_kb(daemon.process.pid)
        log_bytes = daemon.log.stat().st_size - log_start
        exit_code = daemon.stop()
    return {
        "cases": sum(report.cases.values()),
        "classics": len(classics),
        "generated": generated,
        "seed": seed_,
        "by_category": dict(sorted(report.cases.items())),
        "by_transport": dict(sorted(report.transports.items())),
        "error_codes": {str(c): n for c, n in sorted(report.codes.items())},
        "rejection_reasons": dict(report.reasons.most_common()),
        "http_statuses": {str(s): n for s, n in sorted(report.statuses.items())},
        "ws_close_codes": {str(c): n for c, n in sorted(report.closes.items())},
        "client_errors": dict(report.client_errors),
        "crashes": report.findings["crash"],
        "state_changes": report.findings["state_change"],
        "findings": {k: report.findings[k] for k in FINDING_KINDS if report.findings[k]},
        "examples": report.examples,
        "scenarios": report.scenarios,
        "daemon": {
            "rss_kb_start": memory_start.get("VmRSS"),
            "rss_kb_end": memory_end.get("VmRSS"),
            "rss_kb_peak": memory_end.get("VmHWM"),
            "log_bytes": log_bytes,
            "restarts": fuzzer.restarts,
            "exit_code": exit_code,
        },
        "elapsed_s": round(time.monotonic() - started, 1),
        "_full_findings": report.full,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20_000, help="generated cases")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed")
    parser.add_argument("--scale", type=float, default=1.0, help="size of the scenarios")
    parser.add_argument("--findings", type=Path, help="write every finding's whole input here")
    args = parser.parse_args(argv)
    seed_ = random.randrange(1 << 32) if args.seed is None else args.seed
    print(f"fuzz-rpc: seed {seed_}, {args.cases} cases", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="fuzz-rpc-") as directory:
        summary = fuzz_rpc(Path(directory), args.cases, seed_, args.scale)
    full = summary.pop("_full_findings")
    if args.findings is not None:
        args.findings.write_text("".join(json.dumps(f) + "\n" for f in full))
    print(json.dumps(summary, indent=1))
    return 1 if summary["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
