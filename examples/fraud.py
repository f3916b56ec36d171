"""
A fraud proof, live, on a running devnet: the sequencer posts one batch with a wrong state
root, the devnet's watchtower challenges it on L1, the two bisect the batch's trace move by
move, L1's one-step executor computes the disputed step itself, the batch is rejected, the
watcher is paid, and the sequencer reposts the batch honestly.

    ratchet devnet                                 # in one terminal
    python examples/fraud.py --devnet data/devnet/devnet.json

The wrong root comes from the devnet's fault injection (``devnet_postWrongRoot``, served
only by a devnet's sequencer). Everything shown after that is read from L1 events: this
script makes no move itself.
"""

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from web3 import Web3

from node.l1.deploy import bind
from node.l1.dispute import GameStatus

ETHER = 10**18


def rpc(url: str, method: str, *params: Any, timeout: float = 90.0) -> Any:
    """One JSON-RPC call to the sequencer; its result (RuntimeError on an error)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        answer = json.load(reply)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def short(value: bytes | str) -> str:
    text = value if isinstance(value, str) else "0x" + bytes(value).hex()
    return text[:10] + "…"


class Story:
    """Reads the rollup's and the dispute game's events and tells what happened."""

    def __init__(self, w3: Web3, info: dict[str, Any], batch: int, from_block: int) -> None:
        self.w3 = w3
        self.rollup = bind(w3, "Rollup", info["contracts"]["rollup"])
        self.game = bind(w3, "DisputeGame", info["contracts"]["dispute"])
        self.watcher = Web3.to_checksum_address(info["watcher"]["address"])
        self.sequencer = Web3.to_checksum_address(info["sequencer"])
        self.batch = batch
        self.next_block = from_block
        self.games: set[int] = set()
        self.started = time.monotonic()
        self.rejected = False
        self.paid_wei = 0
        self.reward_wei = 0
        self.reposted_root: str | None = None
        self.wrong_root: str | None = None

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f} s] {text}", flush=True)

    def read(self) -> None:
        """Tell every new event, in L1 order."""
        head = self.w3.eth.block_number
        if head < self.next_block:
            return
        span = {"from_block": self.next_block, "to_block": head}
        found: list[Any] = []
        for contract, names in (
            (self.rollup, ("BatchPosted", "BatchesRejected", "StakeBurned", "CreditClaimed")),
            (
                self.game,
                (
                    "GameOpened",
                    "Bisected",
                    "Responded",
                    "StepProven",
                    "GameResolved",
                    "CreditClaimed",
                ),
            ),
        ):
            for name in names:
                for log in contract.events[name]().get_logs(**span):
                    found.append((log["blockNumber"], log["logIndex"], contract, name, log))
        self.next_block = head + 1
        for block, _, contract, name, log in sorted(found, key=lambda f: (f[0], f[1])):
            self.tell(block, contract is self.game, name, log["args"])

    def tell(self, block: int, in_game: bool, name: str, args: Any) -> None:
        where = f"L1 block {block}"
        if name == "BatchPosted" and args["index"] == self.batch:
            root = "0x" + bytes(args["postRoot"]).hex()
            if self.wrong_root is not None and root == self.wrong_root:
                self.say(
                    f"{where}: the sequencer posted batch {self.batch} with the WRONG "
                    f"root {short(root)} ({args['txCount']} transactions)"
                )
            elif self.rejected:
                self.reposted_root = root
                self.say(
                    f"{where}: the sequencer reposted batch {self.batch}, honestly this "
                    f"time: root {short(root)}"
                )
        elif name == "GameOpened" and args["batchIndex"] == self.batch:
            self.games.add(args["gameId"])
            who = "the devnet's watcher" if args["challenger"] == self.watcher else "someone"
            self.say(
                f"{where}: {who} ({short(args['challenger'])}) challenged batch "
                f"{self.batch}: game {args['gameId']}, disputed steps 0..{args['steps']}"
            )
        elif in_game and args.get("gameId") in self.games:
            game = args["gameId"]
            if name == "Bisected":
                self.say(
                    f"{where}: game {game}: the sequencer claims the root after step "
                    f"{args['mid']} is {short(args['midRoot'])}"
                )
            elif name == "Responded":
                verdict = "agrees" if args["agree"] else "disagrees"
                self.say(
                    f"{where}: game {game}: the watcher {verdict}: the dispute is now "
                    f"steps {args['lo']}..{args['hi']}"
                )
            elif name == "StepProven":
                self.say(
                    f"{where}: game {game}: L1's one-step executor ran step "
                    f"{args['step']} itself: its true post-root is {short(args['postRoot'])}"
                )
            elif name == "GameResolved":
                status = GameStatus(args["status"]).name.lower().replace("_", " ")
                self.say(
                    f"{where}: game {game} resolved: {status}; bond of "
                    f"{args['bond'] / ETHER} ETH credited to {short(args['creditedTo'])}"
                )
        elif name == "BatchesRejected" and args["fromIndex"] <= self.batch < args["toIndex"]:
            self.rejected = True
            self.reward_wei = args["reward"]
            self.say(
                f"{where}: batches {args['fromIndex']}..{args['toIndex'] - 1} REJECTED; "
                f"{short(args['winner'])} credited {args['reward'] / ETHER} ETH of the "
                "sequencer's stake"
            )
        elif name == "StakeBurned":
            self.say(f"{where}: {args['amount'] / ETHER} ETH of the sequencer's stake burned")
        elif name == "CreditClaimed" and args["account"] == self.watcher:
            self.paid_wei += args["amount"]
            source = "dispute game" if in_game else "rollup"
            self.say(
                f"{where}: the watcher withdrew {args['amount'] / ETHER} ETH from the {source}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devnet", default="data/devnet/devnet.json", help="devnet.json")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait in all")
    args = parser.parse_args()
    info = json.loads(Path(args.devnet).read_text())
    w3 = Web3(Web3.HTTPProvider(info["l1_rpc"]))
    watcher = info["watcher"]["address"]
    balance_before = w3.eth.get_balance(watcher)
    from_block = w3.eth.block_number + 1

    print("Asking the devnet's sequencer to post its next batch with a wrong root ...")
    lie = rpc(info["rpc"], "devnet_postWrongRoot")
    story = Story(w3, info, lie["batch"], from_block)
    story.wrong_root = lie["postRoot"]
    story.say(
        f"batch {lie['batch']} sealed: true root {short(lie['honestRoot'])}, recorded "
        f"and posted as {short(lie['postRoot'])}"
    )

    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        story.read()
        if story.rejected and story.paid_wei and story.reposted_root:
            break
        time.sleep(0.5)
    else:
        print("timed out before the end of the story", file=sys.stderr)
        return 1
    gained = w3.eth.get_balance(watcher) - balance_before
    print()
    print(
        f"The wrong batch {story.batch} was rejected on L1. The watcher withdrew "
        f"{story.paid_wei / ETHER} ETH: its own challenge bond back and "
        f"{story.reward_wei / ETHER} ETH of the sequencer's stake (its balance grew by "
        f"{gained / ETHER:.4f} ETH after gas). The sequencer reposted the batch honestly."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
