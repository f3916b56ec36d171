"""
Configuration: a TOML file whose every option can be overridden from the environment.

``RATCHET_<SECTION>_<KEY>`` (upper case) overrides ``[section] key``; for example
``RATCHET_RPC_PORT=9000`` sets ``[rpc] port``. An override takes the type of the
value it replaces (integer, float, boolean, string); an override of an option the
file does not have is a string. Secrets (private keys) never live in committed
files: they come from the environment or from a key file the config names.
"""

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from node.protocol.eip712 import Domain
from node.protocol.genesis import Genesis, GenesisError, genesis_from_config

ENV_PREFIX = "RATCHET_"
"""Prefix of every environment override."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message says which option."""


def _coerce(name: str, raw: str, current: object) -> object:
    if isinstance(current, bool):
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{name}: expected a boolean (true/false), got {raw!r}")
    if isinstance(current, int):
        try:
            return int(raw, 0)
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if isinstance(current, float):
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if isinstance(current, (list, dict)):
        raise ConfigError(f"{name}: lists and tables cannot be set from the environment")
    return raw


def load_config(
    path: str | Path, env: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """
    Read ``path`` and apply the environment overrides in ``env`` (default: ``os.environ``).

    Returns ``{section: {key: value}}``. Top-level keys outside a section are not
    allowed, so that every option has a ``RATCHET_<SECTION>_<KEY>`` name.
    """
    environ = os.environ if env is None else env
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    config: dict[str, dict[str, Any]] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"config {path}: option {section!r} must be inside a [section]")
        if "_" in section:
            raise ConfigError(f"config {path}: section names have no underscore ({section!r})")
        config[section] = dict(table)
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("_")
        if not key or section not in config:
            continue
        current = config[section].get(key)
        config[section][key] = raw if current is None else _coerce(name, raw, current)
    return config


def load_genesis(config: Mapping[str, Mapping[str, Any]], config_path: str | Path) -> Genesis:
    """
    The chain's genesis from the ``[genesis]`` section of a loaded config; its
    ``markets`` option names a TOML file of ``[[markets]]`` tables, relative to the
    config file. :class:`ConfigError` says what is wrong.
    """
    section = config.get("genesis")
    if section is None:
        raise ConfigError(f"config {config_path}: no [genesis] section")
    markets_file = section.get("markets")
    if not isinstance(markets_file, str):
        raise ConfigError("genesis.markets must name the markets file")
    path = Path(config_path).parent / markets_file
    try:
        with open(path, "rb") as handle:
            markets = tomllib.load(handle).get("markets")
    except OSError as exc:
        raise ConfigError(f"cannot read markets file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"markets file {path} is not valid TOML: {exc}") from None
    if not isinstance(markets, list) or not all(isinstance(m, dict) for m in markets):
        raise ConfigError(f"markets file {path} must hold [[markets]] tables")
    try:
        return genesis_from_config(section, markets)
    except GenesisError as exc:
        raise ConfigError(f"genesis: {exc}") from None


def require_section(config: Mapping[str, Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    """Section ``[name]`` of a loaded config; :class:`ConfigError` if it is missing."""
    section = config.get(name)
    if section is None:
        raise ConfigError(f"no [{name}] section")
    return section


def address_option(value: Any, name: str) -> bytes:
    """A 0x-hex address option as 20 bytes; :class:`ConfigError` says which option."""
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 42:
        raise ConfigError(f"{name} must be a 0x-hex address")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise ConfigError(f"{name} must be a 0x-hex address") from None


def private_key(
    section: Mapping[str, Any], environ: Mapping[str, str], env_name: str, base: Path
) -> bytes:
    """A private key from the environment variable ``env_name`` (0x-hex), or else from the
    file named by the section's ``key_file`` (relative to ``base``): never from the config
    itself. :class:`ConfigError` if there is none or it is not 32 bytes of hex."""
    text = environ.get(env_name)
    if text is None:
        key_file = section.get("key_file")
        if not key_file:
            raise ConfigError(f"no key: set {env_name} or key_file")
        try:
            text = (base / str(key_file)).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the key file {key_file}: {exc.strerror}") from None
    try:
        key = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise ConfigError("a private key must be 32 bytes of hex") from None
    if len(key) != 32:
        raise ConfigError("a private key must be 32 bytes of hex")
    return key


def domain_option(config: Mapping[str, Mapping[str, Any]]) -> Domain:
    """The rollup's EIP-712 domain: ``[chain] chain_id`` and ``[contracts] rollup``."""
    chain_id = require_section(config, "chain").get("chain_id")
    if not isinstance(chain_id, int) or chain_id < 0:
        raise ConfigError("chain.chain_id must be a non-negative integer")
    rollup = require_section(config, "contracts").get("rollup")
    return Domain(chain_id, address_option(rollup, "contracts.rollup"))


def data_dir_option(config: Mapping[str, Mapping[str, Any]], base: Path) -> Path:
    """``[storage] data_dir``, relative to ``base`` (the config file's directory)."""
    data_dir = Path(str(require_section(config, "storage").get("data_dir", "")))
    if not str(data_dir):
        raise ConfigError("storage.data_dir is required")
    return data_dir if data_dir.is_absolute() else base / data_dir
