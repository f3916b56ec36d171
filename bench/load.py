"""
The load generator: pre-built JSON-RPC requests sent over HTTP or WebSocket, at a fixed
rate or flat out, each reply timed. It runs in its own process, so that its work is not
the measured server's.

    python -m bench.load SPEC.json   # prints one JSON object of results

The spec (written by bench/sequencer_bench.py) names the transport (``http`` or ``ws``),
the URL, the rate (transactions per second; null for flat out), how many transactions
each request carries (``batch``: more than one makes it a JSON-RPC batch request, as a
market maker sends its quotes) and the *streams*: lists of request bodies, each already
serialised (the transactions in them pre-signed). A stream
is sent in order, one request at a time (a trader's next order follows the last one's
receipt); the streams run side by side. At a fixed rate request ``k`` of stream ``i`` of
``S`` is due at ``t0 + (k * S + i) / rate``; its latency is counted from when it was due,
not from when it went out, so a server that falls behind is charged for the queue it
causes (no coordinated omission). Flat out, every stream sends its next request as soon
as the last one is answered.
"""

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Tally:
    """What came back."""

    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    first_error: str | None = None

    def record(self, due: float, reply: Any) -> None:
        """One reply: a response, or (a batch request's) a list of them, all as late."""
        if isinstance(reply, list):
            for item in reply:
                self.record(due, item)
            return
        self.latencies.append(time.perf_counter() - due)
        error: Any = reply.get("error") if isinstance(reply, dict) else {"message": "no reply"}
        if error is None:
            self.ok += 1
            return
        data = error.get("data") or {}
        key = str(data.get("reason") or error.get("code"))
        self.errors[key] = self.errors.get(key, 0) + 1
        if self.first_error is None:
            self.first_error = json.dumps(error)[:300]


def percentile(ordered: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of sorted values (nearest rank)."""
    if not ordered:
        return float("nan")
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[rank]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _when_due(schedule: list[float] | None, k: int) -> float:
    """Wait until request ``k`` is due (flat out: now); the time it was due."""
    if schedule is None:
        return time.perf_counter()
    delay = schedule[k] - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    return schedule[k]


async def _stream_http(
    session: aiohttp.ClientSession,
    url: str,
    bodies: list[str],
    schedule: list[float] | None,
    tally: Tally,
) -> None:
    for k, body in enumerate(bodies):
        due = await _when_due(schedule, k)
        async with session.post(
            url, data=body, headers={"Content-Type": "application/json"}
        ) as response:
            reply = await response.json(content_type=None)
        tally.record(due, reply)


async def _stream_ws(
    session: aiohttp.ClientSession,
    url: str,
    bodies: list[str],
    schedule: list[float] | None,
    tally: Tally,
) -> None:
    async with session.ws_connect(url, max_msg_size=0) as socket:
        for k, body in enumerate(bodies):
            due = await _when_due(schedule, k)
            await socket.send_str(body)
            while True:  # the answer (a subscription notification is not one)
                message = await socket.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"the WebSocket closed: {message}")
                reply = json.loads(message.data)
                if isinstance(reply, list) or "id" in reply:
                    break
            tally.record(due, reply)


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Send the spec's streams; the figures."""
    streams: list[list[str]] = spec["streams"]
    rate = spec.get("rate")
    per_request = int(spec.get("batch", 1))
    """Transactions per request (a JSON-RPC batch when more than one)."""
    count = sum(len(s) for s in streams) * per_request
    tally = Tally()
    sender = _stream_ws if spec["transport"] == "ws" else _stream_http
    connector = aiohttp.TCPConnector(limit=len(streams) + 4, force_close=False)
    server_pid = spec.get("server_pid")
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter() + 0.2
        tasks = []
        for i, bodies in enumerate(streams):
            schedule = None
            if rate:
                requests_per_s = rate / per_request
                schedule = [
                    start + (k * len(streams) + i) / requests_per_s for k in range(len(bodies))
                ]
            tasks.append(sender(session, spec["url"], bodies, schedule, tally))
        # every stream, flat out too, starts at ``start``: the clock and the CPU figures
        # cover exactly the sending
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        server_cpu = cpu_seconds(server_pid) if server_pid else 0.0
        own_cpu = time.process_time()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        server_used = (cpu_seconds(server_pid) - server_cpu) if server_pid else None
        own_used = time.process_time() - own_cpu
    ordered = sorted(tally.latencies)
    return {
        "transport": spec["transport"],
        "batch": per_request,
        "target_rate": rate,
        "requests": count,
        "ok": tally.ok,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "elapsed_s": round(elapsed, 3),
        "throughput": round(tally.ok / elapsed, 1),
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 3),
        "p90_ms": round(percentile(ordered, 0.90) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3) if ordered else None,
        "server_cpu": round(server_used / elapsed, 3) if server_used is not None else None,
        "generator_cpu": round(own_used / elapsed, 3),
    }


def main() -> int:
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    results = asyncio.run(run(spec))
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
