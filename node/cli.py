"""The ``ratchet`` command line."""

import argparse
import sys
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
    print(
        f"ratchet {args.command}: not available yet in this version ({__version__})",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
