"""
A withdrawal from L2 to L1, end to end, on a running devnet: deposit (if the account
needs it), withdraw on L2, watch the withdrawal's receipt go soft -> posted -> final,
fetch its proof, claim it on L1, and check that the recipient's L1 token balance grew
by exactly the amount withdrawn.

    ratchet devnet                                        # in one terminal
    python examples/withdraw.py --devnet data/devnet/devnet.json --amount 250.5

*Final* means the batch holding the withdrawal was posted to L1 and its challenge window
passed without a successful challenge. The devnet closes a batch every 2 s and posts it
at once, and its challenge window is at most 60 s, so this takes a minute or two (with
``ratchet devnet --challenge-window 10``, well under a minute).

It uses the blocking client, ``SyncClient`` (docs/sdk.md), and ``node.sdk.l1`` for the
L1 side. Exit code 0 if the L1 balance changed by exactly the amount, 1 otherwise.
"""

import argparse
import sys
import time
from decimal import Decimal
from typing import Any

from common import load_devnet
from web3 import Web3

from node.sdk import NotAvailableError, SdkError, SyncClient, l1
from node.sdk.units import plain

STARTED = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} +{time.monotonic() - STARTED:5.1f} s] {text}", flush=True)


def ensure_collateral(client: SyncClient, info: dict[str, Any], key: str, wanted: Decimal) -> None:
    """Deposit from L1 whatever the account's free collateral lacks of ``wanted``, and
    wait until the sequencer has credited it."""
    free = Decimal(0)
    if client.account is not None:
        free = client.collateral.from_wire(client.account_info()["freeCollateral"])
    if free >= wanted:
        say(f"account {client.account} has {plain(free)} USD of free collateral on L2: enough")
        return
    missing = wanted - free
    say(
        f"account has {plain(free)} USD of free collateral on L2: depositing the missing "
        f"{plain(missing)} collateral tokens from L1 first ..."
    )
    done = l1.deposit(info["l1_rpc"], key, info["contracts"]["bridge"], missing)
    say(f"L1 deposit {done.tx_hash[:12]}… is inbox message {done.message_index}; waiting ...")
    while int(client.status()["inboxConsumed"]) <= done.message_index:
        time.sleep(0.25)
    client.wait_for_account()
    say(f"credited on L2: account {client.account}")


def withdraw(args: argparse.Namespace, info: dict[str, Any], client: SyncClient, key: str) -> int:
    amount = Decimal(args.amount)
    client.collateral.to_wire(amount)  # refuse an amount with too many decimals at once
    recipient = Web3.to_checksum_address(args.recipient or str(client.address))
    ensure_collateral(client, info, key, amount)

    before = l1.collateral_balance(info["l1_rpc"], info["contracts"]["bridge"], recipient)
    say(f"{recipient} holds {plain(before)} collateral tokens on L1")

    receipt = client.withdraw(amount, recipient)
    withdrawal = receipt.withdrawal_id
    if withdrawal is None:
        say(f"the receipt names no withdrawal id: {receipt.json}")
        return 1
    window = client.config.get("challengePeriod")
    say(
        f"withdrew {plain(amount)} on L2: withdrawal {withdrawal}, tx {receipt.tx_hash[:18]}… "
        f"in batch {receipt.batch} (receipt signed by the sequencer, checked by the SDK)"
    )
    say(
        f"soft: the sequencer promised it. Final once batch {receipt.batch} is posted to L1 "
        f"and its {window} s challenge window has passed ..."
    )

    seen = receipt.finality
    deadline = time.monotonic() + args.timeout
    reminded = time.monotonic()
    while seen != "final":
        if time.monotonic() > deadline:
            say(f"still {seen} after {args.timeout} s: giving up")
            return 1
        time.sleep(0.5)
        receipt = client.receipt(receipt.tx_hash)
        if receipt.finality == seen:
            if time.monotonic() - reminded >= 15:
                reminded = time.monotonic()
                say(f"still {seen}: waiting for the challenge window to pass ...")
            continue
        seen, reminded = receipt.finality, time.monotonic()
        if seen == "rejected":
            # A watcher proved the batch wrong on L1. The sequencer re-executes the undone
            # transactions in new batches; the receipt changes once ours is (if it still
            # applies), possibly with another withdrawal id.
            say(f"batch {receipt.batch} was REJECTED on L1; waiting for the re-execution ...")
            continue
        if receipt.withdrawal_id is not None and receipt.withdrawal_id != withdrawal:
            withdrawal = receipt.withdrawal_id
            say(f"re-executed: now withdrawal {withdrawal}")
        posted_in = receipt.json.get("l1TxHash")
        where = f" (L1 tx {posted_in[:18]}…)" if posted_in else ""
        say(f"{seen}: batch {receipt.batch}{where}")

    proof = None
    while proof is None:
        try:
            proof = client.withdrawal_proof(withdrawal)
        except NotAvailableError:  # the proof follows finality by at most a moment
            time.sleep(0.5)
    say(
        f"proof of withdrawal {withdrawal}: batch {proof['batch']}, "
        f"{len(proof['siblings'])} Merkle siblings; claiming on L1 ..."
    )
    claimed = l1.claim(info["l1_rpc"], key, proof)
    say(f"claimed in L1 tx {claimed.tx_hash[:18]}… (proven against final batch {claimed.batch})")

    after = l1.collateral_balance(info["l1_rpc"], info["contracts"]["bridge"], recipient)
    say(f"{recipient} holds {plain(after)} collateral tokens on L1")
    if after - before != amount:
        print(
            f"MISMATCH: the L1 balance changed by {plain(after - before)}, not by the "
            f"{plain(amount)} withdrawn",
            file=sys.stderr,
        )
        return 1
    say(f"the L1 balance grew by exactly {plain(amount)}: the withdrawal went through")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--devnet", default="data/devnet/devnet.json", help="devnet.json (data/devnet/devnet.json)"
    )
    parser.add_argument("--account", type=int, default=2, help="devnet account index (2)")
    parser.add_argument("--amount", default="100", help="collateral tokens to withdraw (100)")
    parser.add_argument("--recipient", help="L1 address to pay (default: the account's own)")
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds to wait for finality (600)"
    )
    args = parser.parse_args()
    info = load_devnet(args.devnet)
    accounts = info["accounts"]
    if not 0 <= args.account < len(accounts):
        sys.exit(f"--account must be 0..{len(accounts) - 1}")
    key = accounts[args.account]["private_key"]
    if args.recipient is not None and not Web3.is_address(args.recipient):
        sys.exit(f"--recipient {args.recipient!r} is not an address")
    try:
        with SyncClient.connect(info["rpc"], key=key) as client:
            say(f"withdrawal example: devnet account {args.account}, {client.address}")
            return withdraw(args, info, client, key)
    except SdkError as exc:  # an unreachable node, a refused withdrawal, an L1 revert ...
        print(f"withdraw: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
