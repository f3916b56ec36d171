"""The ``ratchet`` command line: the operators' commands of INTERFACE.md (devnet, deploy,
sequencer, watch, status) and the traders' commands (:mod:`node.trader_cli`)."""

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
"""The operators' subcommands of INTERFACE.md."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ratchet``."""
    from . import trader_cli  # noqa: PLC0415 - keeps `ratchet --version` light

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
        if name == "deploy":
            cmd.add_argument(
                "--rpc", help="L1 JSON-RPC URL (default: the config's [l1] rpc)", default=None
            )
        if name == "devnet":
            cmd.add_argument(
                "--data-dir", default="./data/devnet", help="data directory (default %(default)s)"
            )
            cmd.add_argument(
                "--port",
                type=int,
                default=8545,
                help="first of the four loopback ports it uses: anvil, +2 the sequencer's "
                "JSON-RPC, +3 the watcher's metrics (default %(default)s)",
            )
            cmd.add_argument(
                "--challenge-window",
                type=int,
                default=60,
                help="seconds a posted batch can be challenged (default %(default)s, at most 60)",
            )
        if name == "status":
            cmd.add_argument("--rpc", default="http://127.0.0.1:8547", help="sequencer RPC URL")
    trader_cli.register(sub)
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
    # heavy imports (web3, aiohttp, trio) only for the command that needs them
    if args.command == "sequencer":
        from .sequencer.daemon import main as sequencer_main  # noqa: PLC0415

        return sequencer_main(args.config)
    if args.command == "watch":
        from challenger.daemon import main as watch_main  # noqa: PLC0415

        return watch_main(args.config)
    if args.command == "status":
        return status(args.rpc)
    if args.command == "deploy":
        from .deploy_cli import main as deploy_main  # noqa: PLC0415

        return deploy_main(args.config, args.rpc)
    if args.command == "devnet":
        from .devnet import main as devnet_main  # noqa: PLC0415

        return devnet_main(args.data_dir, args.port, args.challenge_window)
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return 2
    result: int = run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
