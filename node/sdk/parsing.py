"""
Parsing what a trader hands the SDK (keys, sides, times in force, addresses, hashes)
and checking the sequencer's ``ratchet_getConfig`` against what the SDK signs with.
"""

from typing import Any

from node.protocol.eip712 import DOMAIN_NAME, DOMAIN_VERSION, Domain, types_json
from node.protocol.transactions import MESSAGE_TYPES, TimeInForce

from .errors import ConfigError, InvalidArgumentError

SIGNED_TYPES = ("Order", "Cancel", "CancelAll", "Transfer", "Withdraw", "Liquidate", "Receipt")
"""The message types whose definitions the client checks against ``ratchet_getConfig``."""

_TIME_IN_FORCE = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "POST_ONLY": TimeInForce.POST_ONLY,
    "POSTONLY": TimeInForce.POST_ONLY,
}
_SIDES = {"buy": True, "bid": True, "long": True, "sell": False, "ask": False, "short": False}


def parse_key(key: bytes | str) -> bytes:
    """A 32-byte private key from bytes or 0x-hex."""
    raw = key
    if isinstance(key, str):
        try:
            raw = bytes.fromhex(key.strip().removeprefix("0x"))
        except ValueError:
            raise InvalidArgumentError("a private key is 32 bytes of hex") from None
    if not isinstance(raw, bytes) or len(raw) != 32:
        raise InvalidArgumentError("a private key is 32 bytes of hex")
    return raw


def parse_side(side: str | bool) -> bool:
    """``is_buy`` for ``"buy"``/``"sell"`` (also bid/ask, long/short) or a bool."""
    if isinstance(side, bool):
        return side
    found = _SIDES.get(str(side).strip().lower())
    if found is None:
        raise InvalidArgumentError(f"side must be buy or sell, not {side!r}")
    return found


def parse_time_in_force(tif: str | int) -> TimeInForce:
    """A :class:`TimeInForce` from its name (GTC, IOC, FOK, POST_ONLY) or number."""
    if isinstance(tif, int):
        try:
            return TimeInForce(tif)
        except ValueError:
            raise InvalidArgumentError(f"time in force must be 0..3, not {tif}") from None
    found = _TIME_IN_FORCE.get(tif.strip().upper().replace("-", "_"))
    if found is None:
        raise InvalidArgumentError(f"time in force must be GTC, IOC, FOK or POST_ONLY, not {tif!r}")
    return found


def parse_address(address: str | bytes) -> bytes:
    """A 20-byte address from 0x-hex or bytes."""
    if isinstance(address, bytes):
        raw = address
    else:
        try:
            raw = bytes.fromhex(address.strip().removeprefix("0x"))
        except ValueError:
            raise InvalidArgumentError(f"not an address: {address!r}") from None
    if len(raw) != 20:
        raise InvalidArgumentError(f"an address is 20 bytes, got {len(raw)}")
    return raw


def domain_of(config: dict[str, Any]) -> Domain:
    """The EIP-712 domain of ``ratchet_getConfig``, checked to be the one this SDK signs
    in (name, version, and the chain id and rollup it names elsewhere)."""
    try:
        shown = config["domain"]
        domain = Domain(int(shown["chainId"]), parse_address(shown["verifyingContract"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"ratchet_getConfig has no usable domain: {exc}") from None
    if (shown.get("name"), shown.get("version")) != (DOMAIN_NAME, DOMAIN_VERSION):
        raise ConfigError(
            f"the sequencer signs in domain {shown.get('name')!r} version "
            f"{shown.get('version')!r}; this SDK signs {DOMAIN_NAME!r} version "
            f"{DOMAIN_VERSION!r}"
        )
    if "chainId" in config and int(config["chainId"]) != domain.chain_id:
        raise ConfigError("ratchet_getConfig: chainId differs from domain.chainId")
    rollup = config.get("contracts", {}).get("rollup")
    if rollup is not None and parse_address(rollup) != domain.verifying_contract:
        raise ConfigError("ratchet_getConfig: contracts.rollup differs from the domain's")
    types = config.get("types", {})
    for name in SIGNED_TYPES:
        cls = MESSAGE_TYPES[name]
        if types.get(name) != types_json(name, cls.FIELDS):
            raise ConfigError(
                f"the sequencer's EIP-712 type {name} is {types.get(name)!r}; this SDK "
                f"signs {types_json(name, cls.FIELDS)!r}: use a matching SDK version"
            )
    return domain


def parse_hash(value: str) -> bytes:
    """A 0x-hex 32-byte hash."""
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except (ValueError, AttributeError):
        raise InvalidArgumentError(f"not a 0x-hex hash: {value!r}") from None
    if len(raw) != 32:
        raise InvalidArgumentError(f"a hash is 32 bytes, got {len(raw)}")
    return raw
