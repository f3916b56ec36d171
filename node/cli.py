"""The ``ratchet`` command line."""

import argparse
import json
import sys
import urllib.request
from collections.abc import Sequence

from . import __version__

COMMANDS = {
    "devnet": "start anvil, deploy the contracts, run a sequencer and a watcher",
    "deploy": "deploy the L1 contracts for a config",
    "sequencer": "run the sequencer daemon",
    "watch": "run one watchtower",
    "status": "show the soft, posted and final heads and open disputes",
}
"""The subcommands of INTERFACE.md. Each lands with the issue that builds it."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ratchet``."""
    parser = argparse.ArgumentParser(
        prog="ratchet",
        description="Ratchet: an optimistic rollup for derivatives trading.",
    )
    parser.add_argument("--version", action="version", version=f"ratchet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name in ("deploy", "sequencer", "watch"):
            cmd.add_argument("--config", required=True, help="TOML config file")
        if name == "devnet":
            cmd.add_argument("--data-dir", default="./data/devnet", help="data directory")
            cmd.add_argument("--port", type=int, default=8545, help="first port to use")
        if name == "status":
            cmd.add_argument("--rpc", default="http://127.0.0.1:8547", help="sequencer RPC URL")
    return parser


def status(url: str) -> int:
    """``ratchet status``: the sequencer's heads and open disputes, from its JSON-RPC."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ratchet_getStatus", "params": []})
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            answer = json.load(reply)
    except (OSError, ValueError) as exc:
        print(f"ratchet status: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    if "error" in answer:
        print(f"ratchet status: {answer['error']}", file=sys.stderr)
        return 1
    result = answer["result"]
    print(f"soft:    batch {result['soft']['batch']} (sequence {result['sequence']})")
    if "posted" in result:
        print(f"posted:  {result['posted']} batches")
        print(f"final:   {result['final']} batches")
        print(f"L1 time: {result['l1Time']}")
        disputes = result["openDisputes"]
        print(f"open disputes: {len(disputes)}")
        for game in disputes:
            print(
                f"  game {game['game']} on batch {game['batch']}: range [{game['lo']}, "
                f"{game['hi']}], {game['turn']} to move"
            )
    else:
        print("L1: not configured")
    print(f"root:    {result['root']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ratchet`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "sequencer":
        from .sequencer.daemon import main as sequencer_main  # noqa: PLC0415 - heavy imports

        return sequencer_main(args.config)
    if args.command == "watch":
        from challenger.daemon import main as watch_main  # noqa: PLC0415 - heavy imports

        return watch_main(args.config)
    if args.command == "status":
        return status(args.rpc)
    print(
        f"ratchet {args.command}: not available yet in this version ({__version__})",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
