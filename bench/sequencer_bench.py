"""
Sequencer throughput and receipt latency, and the same load against anvil.

    python -m bench.sequencer_bench [--quick] [--streams S] [--duration D] [--flat N]

A devnet without its watcher (in production a watchtower runs on other machines) is
started: anvil, the contracts, the real ``ratchet sequencer`` process, posting its
batches to L1 as it always does. ``2 S`` traders deposit through the L1 bridge, the oracle
prices every market once, and then the load generator (:mod:`bench.load`, its own
process) sends pre-signed orders as raw JSON-RPC ``ratchet_sendTransaction`` requests,
over HTTP and over WebSocket, at 1,000/s and 5,000/s for ``D`` seconds each and flat out
for ``N`` orders; then in JSON-RPC batch requests of 16 over HTTP (5,000/s, flat out); then
at 500/s (below capacity) over both. Every receipt it counts is durable and signed: the
sequencer answers only after the order's log entry is synced.

The orders are makers and takers in every market: stream ``i`` (of ``S``, side by side)
trades market ``i mod 3`` between its two accounts A and B, in cycles of four: A rests a
sell at the oracle price (GTC), B takes it (IOC buy), B rests a sell, A takes it; any
stream's taker may take any stream's resting order (one shared book per market).

Then a fresh anvil (automine) gets the same generator, rates and streams with
pre-signed ETH transfers through ``eth_sendRawTransaction``; the report gives
Ratchet/anvil for each. One JSON line per scenario, then a table.
"""

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from eth_account import Account
from prometheus_client.parser import text_string_to_metric_families
from web3 import Web3

from bench.common import emit
from node.devnet import Devnet, OracleFeed, anvil_key, rpc_call
from node.l1.anvil import Anvil, free_port
from node.l1.deploy import bind
from node.protocol.crypto import sign_digest
from node.protocol.eip712 import Domain
from node.protocol.transactions import (
    Order,
    SignedTransaction,
    TimeInForce,
    encode_transaction,
)

COLLATERAL = 10_000_000 * 10**6
"""Each trader's deposit: ten million tokens, far more than any margin it will need."""


def first_port() -> int:
    """A first port N with N..N+3 free (a devnet's)."""
    import socket  # noqa: PLC0415

    for _ in range(100):
        port = free_port()
        ok = port <= 65530
        for offset in (1, 2, 3):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port + offset))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no free ports")


class Traders:
    """The benchmark's accounts on a devnet: keys, L2 ids, next nonces."""

    def __init__(self, devnet: Devnet, count: int) -> None:
        assert devnet.deployment is not None and devnet.anvil is not None
        self.devnet = devnet
        self.keys = [Account.create().key for _ in range(count)]
        self.addresses = [Account.from_key(k).address for k in self.keys]
        self.ids: list[int] = []
        self.nonces: list[int] = []
        w3 = Web3(Web3.HTTPProvider(devnet.anvil.url, request_kwargs={"timeout": 60}))
        token = bind(w3, "TestToken", devnet.deployment.collateral)
        bridge = bind(w3, "Bridge", devnet.deployment.bridge)
        deployer = Account.from_key(anvil_key(0)).address
        pending = []
        for address in self.addresses:
            devnet.anvil.rpc("anvil_setBalance", address, hex(10**20))
            devnet.anvil.rpc("anvil_impersonateAccount", address)
            pending.append(token.functions.mint(address, COLLATERAL).transact({"from": deployer}))
            pending.append(
                token.functions.approve(devnet.deployment.bridge, COLLATERAL).transact(
                    {"from": address}
                )
            )
            pending.append(bridge.functions.deposit(COLLATERAL).transact({"from": address}))
        for tx_hash in pending:
            assert w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1
        for address in self.addresses:
            self.ids.append(self._wait_credited(address))
            self.nonces.append(0)

    def _wait_credited(self, address: str) -> int:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            reply = rpc_call(
                self.devnet.rpc,
                {"jsonrpc": "2.0", "id": 1, "method": "ratchet_getAccount", "params": [address]},
            )
            if "result" in reply and reply["result"]["collateral"] == str(COLLATERAL):
                return int(reply["result"]["id"])
            time.sleep(0.2)
        raise RuntimeError(f"the deposit of {address} was not credited")

    def order(self, who: int, market: int, is_buy: bool, price: int, size: int, tif: int) -> str:
        """A signed order of trader ``who`` with its next nonce, as 0x-hex."""
        nonce = self.nonces[who] = self.nonces[who] + 1
        assert self.devnet.deployment is not None
        message = Order(self.ids[who], market, is_buy, price, size, tif, False, 0, nonce)
        domain: Domain = self.devnet.deployment.domain
        signature = sign_digest(self.keys[who], message.signing_hash(domain))
        return "0x" + encode_transaction(SignedTransaction(message, signature)).hex()


def set_oracle(devnet: Devnet) -> list[dict[str, Any]]:
    """One oracle price for every market; the markets as the API shows them after it."""
    assert devnet.deployment is not None
    markets = rpc_call(devnet.rpc, {"jsonrpc": "2.0", "id": 1, "method": "ratchet_getMarkets"})
    feed = OracleFeed(
        devnet.rpc, devnet.keys["oracle"], devnet.deployment.domain, markets["result"], 1
    )
    deadline = time.monotonic() + 60
    while feed.accepted < len(feed.markets):
        if time.monotonic() > deadline:
            raise RuntimeError("the oracle prices were not accepted")
        feed.tick()
        time.sleep(0.5)
    reply = rpc_call(devnet.rpc, {"jsonrpc": "2.0", "id": 1, "method": "ratchet_getMarkets"})
    result: list[dict[str, Any]] = reply["result"]
    return result


def order_streams(
    traders: Traders, markets: list[dict[str, Any]], streams: int, per_stream: int
) -> list[list[dict[str, Any]]]:
    """``streams`` lists of ``per_stream`` JSON-RPC bodies: maker/taker cycles (module doc)."""
    out = []
    request_id = 0
    for i in range(streams):
        market = markets[i % len(markets)]
        tick, lot = int(market["tickSize"]), int(market["lotSize"])
        price = int(market["oraclePrice"]) // tick * tick
        # about 100 USD of the asset a fill, in whole lots
        value_per_lot = (
            price * lot // 10 ** (int(market["priceDecimals"]) + int(market["sizeDecimals"]) - 6)
        )
        size = max(1, 100 * 10**6 // max(1, value_per_lot)) * lot
        a, b = 2 * i, 2 * i + 1
        cycle = [
            (a, False, int(TimeInForce.GTC)),
            (b, True, int(TimeInForce.IOC)),
            (b, False, int(TimeInForce.GTC)),
            (a, True, int(TimeInForce.IOC)),
        ]
        bodies = []
        for k in range(per_stream):
            who, is_buy, tif = cycle[k % 4]
            raw = traders.order(who, market["id"], is_buy, price, size, tif)
            request_id += 1
            bodies.append(
                {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "method": "ratchet_sendTransaction",
                    "params": [raw],
                }
            )
        out.append(bodies)
    return out


def serialise(streams: list[list[dict[str, Any]]], batch: int) -> list[list[str]]:
    """Each stream's requests as bodies of ``batch`` requests each (a JSON-RPC batch request
    when more than one), in order."""
    if batch == 1:
        return [[json.dumps(r) for r in stream] for stream in streams]
    return [
        [json.dumps(stream[k : k + batch]) for k in range(0, len(stream) - batch + 1, batch)]
        for stream in streams
    ]


def generate(spec: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Run the load generator (its own process) on ``spec``; its results."""
    path = directory / "spec.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, "-m", "bench.load", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def scenario_spec(
    transport: str,
    url: str,
    rate: int | None,
    batch: int,
    streams: list[list[dict[str, Any]]],
    server_pid: int,
) -> dict[str, Any]:
    """The load generator's spec for one scenario (:mod:`bench.load`)."""
    return {
        "transport": transport,
        "url": url,
        "rate": rate,
        "batch": batch,
        "streams": serialise(streams, batch),
        "server_pid": server_pid,
    }


def measure(
    system: str, spec: dict[str, Any], directory: Path, metrics_url: str | None = None
) -> dict[str, Any]:
    """Run one scenario against ``system`` (ratchet or anvil); print and return its line.
    With ``metrics_url`` (the sequencer's /metrics), the line also has ``phases_ms``: the
    scenario's p50/p90/p99 of each phase the sequencer times (bucket upper bounds)."""
    before = phase_buckets(metrics_url) if metrics_url else {}
    result = {"system": system, **generate(spec, directory)}
    if metrics_url:
        result["phases_ms"] = phase_quantiles(before, phase_buckets(metrics_url))
    emit("sequencer_load" if system == "ratchet" else "anvil_load", result)
    return result


Buckets = dict[str, dict[float, float]]
"""Per phase, the cumulative count at each bucket's upper bound (seconds)."""


def phase_buckets(metrics_url: str) -> Buckets:
    """The sequencer's ``ratchet_sequencer_phase_seconds`` histogram, now."""
    with urllib.request.urlopen(metrics_url, timeout=10) as reply:
        text = reply.read().decode()
    found: Buckets = {}
    for family in text_string_to_metric_families(text):
        if family.name != "ratchet_sequencer_phase_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                found.setdefault(sample.labels["phase"], {})[bound] = sample.value
    return found


def phase_quantiles(before: Buckets, after: Buckets) -> dict[str, dict[str, float | None]]:
    """p50/p90/p99 in ms of what each phase's histogram gained between two scrapes: the
    upper bound of the bucket that holds the quantile (None past the last finite one)."""
    quantiles: dict[str, dict[str, float | None]] = {}
    for phase, buckets in after.items():
        counts = sorted((b, n - before.get(phase, {}).get(b, 0.0)) for b, n in buckets.items())
        total = counts[-1][1] if counts else 0.0
        quantiles[phase] = {}
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            bound = next((b for b, n in counts if total and n >= q * total), math.inf)
            quantiles[phase][name] = round(bound * 1000, 3) if bound != math.inf else None
    return quantiles


def sequencer_pid(devnet: Devnet) -> int:
    return int(devnet.children[0].process.pid)


BATCH = 16
"""Transactions per request in the batch-request scenarios (a market maker's quotes)."""


def scenarios(duration: float, flat: int) -> list[tuple[str, int, int | None, int]]:
    """(transport, transactions per request, rate, transactions) per scenario: HTTP and
    WebSocket at 1,000/s, 5,000/s and flat out, one transaction a request; HTTP batch
    requests at 5,000/s and flat out; then both at 500/s, below the capacity."""
    rates: list[tuple[int | None, int]] = [
        (1000, int(1000 * duration)),
        (5000, int(5000 * duration)),
        (None, flat),
    ]
    out: list[tuple[str, int, int | None, int]] = [
        (transport, 1, rate, count) for transport in ("http", "ws") for rate, count in rates
    ]
    out += [("http", BATCH, rate, count) for rate, count in rates[1:]]
    # and the latency of a sequencer below its capacity
    out += [(transport, 1, 500, int(500 * duration)) for transport in ("http", "ws")]
    return out


def ratchet_runs(args: argparse.Namespace, directory: Path) -> list[dict[str, Any]]:
    results = []
    with Devnet(directory / "devnet", first_port(), 60, watcher=False) as devnet:
        traders = Traders(devnet, 2 * args.streams)
        markets = set_oracle(devnet)
        for transport, batch, rate, requests in scenarios(args.duration, args.flat):
            per_stream = max(4 * batch, requests // args.streams // (4 * batch) * 4 * batch)
            streams = order_streams(traders, markets, args.streams, per_stream)
            url = devnet.rpc + ("/ws" if transport == "ws" else "/")
            url = url.replace("http://", "ws://") if transport == "ws" else url
            spec = scenario_spec(transport, url, rate, batch, streams, sequencer_pid(devnet))
            results.append(measure("ratchet", spec, directory, devnet.rpc + "/metrics"))
            time.sleep(2.5)  # let the batch close and post between scenarios
        with urllib.request.urlopen(devnet.rpc + "/metrics", timeout=10) as reply:
            metrics = reply.read().decode()
        batches = [
            line for line in metrics.splitlines() if line.startswith("ratchet_batch_transactions")
        ]
        emit("sequencer_batches", {"metrics": batches[-3:]})
    return results


def anvil_streams(
    url: str, chain_id: int, keys: list[bytes], per_stream: int
) -> list[list[dict[str, Any]]]:
    """Pre-signed ETH transfers, one stream per key, as eth_sendRawTransaction bodies."""
    sink = Account.create().address
    out = []
    request_id = 0
    for key in keys:
        account = Account.from_key(key)
        nonce = int(
            rpc_call(
                url,
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "eth_getTransactionCount",
                    "params": [account.address, "pending"],
                },
            )["result"],
            16,
        )
        bodies = []
        for k in range(per_stream):
            tx = {
                "type": 2,
                "chainId": chain_id,
                "nonce": nonce + k,
                "to": sink,
                "value": 1,
                "gas": 21_000,
                "maxFeePerGas": 100 * 10**9,
                "maxPriorityFeePerGas": 10**9,
            }
            raw = Account.sign_transaction(tx, key).raw_transaction
            request_id += 1
            bodies.append(
                {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "method": "eth_sendRawTransaction",
                    "params": ["0x" + raw.hex()],
                }
            )
        out.append(bodies)
    return out


def anvil_runs(args: argparse.Namespace, directory: Path) -> list[dict[str, Any]]:
    results = []
    with Anvil(log_path=directory / "anvil-bench.log") as anvil:
        keys = [Account.create().key for _ in range(args.streams)]
        for key in keys:
            anvil.rpc("anvil_setBalance", Account.from_key(key).address, hex(10**24))
        assert anvil.process is not None
        for transport, batch, rate, requests in scenarios(args.duration, args.flat):
            per_stream = max(batch, requests // args.streams // batch * batch)
            streams = anvil_streams(anvil.url, anvil.chain_id, keys, per_stream)
            url = anvil.url if transport == "http" else anvil.url.replace("http", "ws")
            spec = scenario_spec(transport, url, rate, batch, streams, anvil.process.pid)
            results.append(measure("anvil", spec, directory))
    return results


def table(ratchet: list[dict[str, Any]], anvil: list[dict[str, Any]]) -> str:
    """The summary: one row per scenario, Ratchet beside anvil."""
    rows = [
        "| transport | tx/request | target/s | Ratchet ok/s | p50 ms | p99 ms | seq CPU "
        "| errors | anvil ok/s | anvil p99 ms | Ratchet/anvil |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mine, theirs in zip(ratchet, anvil, strict=True):
        target = mine["target_rate"] or "flat out"
        ratio = mine["throughput"] / theirs["throughput"] if theirs["throughput"] else float("inf")
        errors = sum(mine["errors"].values())
        rows.append(
            f"| {mine['transport']} | {mine['batch']} | {target} | {mine['throughput']:,.0f} "
            f"| {mine['p50_ms']} "
            f"| {mine['p99_ms']} | {mine['server_cpu']} | {errors} | "
            f"{theirs['throughput']:,.0f} | {theirs['p99_ms']} | {ratio:.2f} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=32, help="concurrent order streams")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per fixed rate")
    parser.add_argument("--flat", type=int, default=40_000, help="orders sent flat out")
    parser.add_argument("--quick", action="store_true", help="2 s per rate, 8,000 flat out")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.flat = 2.0, 8_000
    with tempfile.TemporaryDirectory(prefix="ratchet-bench-") as tmp:
        directory = Path(tmp)
        ratchet = ratchet_runs(args, directory)
        anvil = anvil_runs(args, directory)
    print(table(ratchet, anvil), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
