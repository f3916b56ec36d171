"""
The table at the end of ``make bench``: the headline figures of every benchmark's JSON
lines (read from a file, or stdin), one row each.

    python -m bench.summary bench-results.jsonl
"""

import json
import sys
from typing import Any


def rows(lines: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(figure, value) pairs from the benchmarks' JSON objects, in the order they ran."""
    out: list[tuple[str, str]] = []
    anvil = {
        (r["results"]["transport"], r["results"].get("batch", 1), r["results"]["target_rate"]): r[
            "results"
        ]
        for r in lines
        if r["bench"] == "anvil_load"
    }
    for line in lines:
        name, result = line["bench"], line["results"]
        if name == "sequencer_load":
            key = (result["transport"], result.get("batch", 1), result["target_rate"])
            rate = result["target_rate"] or "flat out"
            label = f"sequencer {result['transport']} x{key[1]} @ {rate}"
            theirs = anvil.get(key)
            ratio = (
                f", {result['throughput'] / theirs['throughput']:.2f}x anvil"
                if theirs and theirs["throughput"]
                else ""
            )
            out.append(
                (
                    label,
                    f"{result['throughput']:,.0f} orders/s, p50 {result['p50_ms']} ms, "
                    f"p99 {result['p99_ms']} ms, errors {sum(result['errors'].values())}{ratio}",
                )
            )
        elif name == "anvil_load":
            rate = result["target_rate"] or "flat out"
            out.append(
                (
                    f"anvil {result['transport']} x{result.get('batch', 1)} @ {rate}",
                    f"{result['throughput']:,.0f} tx/s, p99 {result['p99_ms']} ms",
                )
            )
        elif name == "gas_report":
            posting = result["posting"]
            out.append(
                (
                    "L1 posting",
                    f"{posting['calldata_bytes_per_transaction']} calldata bytes and "
                    f"{posting['gas_per_transaction']:,.0f} gas per transaction",
                )
            )
            heaviest = max(result["one_step"].values(), key=lambda step: step["gas"])
            out.append(("heaviest one-step proof", f"{heaviest['gas']:,} gas"))
        elif name == "watch_report":
            again = result["re_execution"]
            out.append(
                (
                    "watcher re-execution",
                    f"{again['watcher_steps_per_s']:,} steps/s "
                    f"(sequencer engine {again['sequencer_steps_per_s']:,})",
                )
            )
            for size, game in result["games"].items():
                out.append(
                    (
                        f"dispute, {size}-step batch",
                        f"{game['bisections']} bisections, {game['moves']} moves, "
                        f"{game['game_gas']:,} gas",
                    )
                )
    return out


def main() -> int:
    if len(sys.argv) > 1:
        with open(sys.argv[1]) as handle:
            texts = handle.read().splitlines()
    else:
        texts = sys.stdin.read().splitlines()
    lines = [json.loads(text) for text in texts if text.startswith("{")]
    table = rows(lines)
    width = max((len(label) for label, _ in table), default=10)
    print()
    print("| figure".ljust(width + 2) + " | value |")
    print("|" + "-" * (width + 2) + "|---|")
    for label, value in table:
        print(f"| {label.ljust(width)} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
