"""Helpers shared by the benchmarks: timing and JSON output."""

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any


def rate(fn: Callable[[], object], *, min_seconds: float = 1.0, batch: int = 100) -> float:
    """Calls of ``fn`` per second, measured for at least ``min_seconds``."""
    calls = 0
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return calls / elapsed


def emit(name: str, results: dict[str, Any]) -> None:
    """Print one benchmark's results as a JSON object on one line."""
    out = {
        "bench": name,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "results": results,
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
