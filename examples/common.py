"""
What the example programs share: reading ``devnet.json``, printing with a clock, exact
rounding onto a grid, and topping an account's collateral up from L1 (docs/sdk.md).

The examples import it as ``common`` (Python puts a script's own folder on its path).
"""

import asyncio
import json
import sys
import time
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from node.sdk import Client, l1
from node.sdk.units import plain

BPS = Decimal(10_000)
"""Basis points in one."""


def load_devnet(path: str) -> dict[str, Any]:
    """The devnet's ``devnet.json`` (what ``ratchet devnet`` wrote)."""
    file = Path(path)
    if not file.exists():
        sys.exit(f"{file} does not exist: start `ratchet devnet` first (or pass --devnet PATH)")
    info: dict[str, Any] = json.loads(file.read_text())
    return info


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of ``step`` at or below ``value``."""
    return (value / step).to_integral_value(ROUND_FLOOR) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    """The smallest multiple of ``step`` at or above ``value``."""
    return (value / step).to_integral_value(ROUND_CEILING) * step


def signed(size: Decimal) -> str:
    """A position's size with its sign: ``+0.3``, ``-0.01``, ``0``."""
    return ("+" if size > 0 else "") + plain(size)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


async def ensure_collateral(
    client: Client, info: dict[str, Any], key: str, wanted: Decimal
) -> None:
    """Deposit from L1 whatever the account's free collateral lacks of ``wanted``, and
    wait until the sequencer has credited it."""
    free = Decimal(0)
    if client.account is not None:
        account = await client.account_info()
        free = client.collateral.from_wire(account["freeCollateral"])
    if free >= wanted:
        say(f"account {client.account} has {plain(free)} USD of free collateral: enough")
        return
    missing = wanted - free
    say(
        f"{client.address} has {plain(free)} USD of free collateral on L2: depositing "
        f"{plain(missing)} collateral tokens from L1 first ..."
    )
    bridge = info["contracts"]["bridge"]
    done = await asyncio.to_thread(l1.deposit, info["l1_rpc"], key, bridge, missing)
    say(f"L1 deposit {done.tx_hash[:12]}… is inbox message {done.message_index}; waiting ...")
    while int((await client.status())["inboxConsumed"]) <= done.message_index:
        await asyncio.sleep(0.25)
    await client.wait_for_account()
    say(f"credited on L2: account {client.account}")
