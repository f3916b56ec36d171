"""
Genesis: the state a chain starts from, built from its configuration.

Genesis writes the exchange record (oracle key, liquidation penalties, an empty
insurance fund), the fee account (id 0, owned by the configured fee address;
the bridge assigns ids from 1) and every market with its parameters. Markets
start without an oracle price: they trade once the oracle has sent one.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .margin import BPS
from .records import (
    EXCHANGE_SLOT,
    FEE_ACCOUNT,
    MARKET_LIMIT,
    Account,
    Exchange,
    Market,
    encode_account,
    encode_exchange,
    encode_market,
)
from .state import LAYOUT, TABLE_ACCOUNTS, TABLE_MARKETS, TABLE_META, State, StateLayout
from .tree import NodeStore

COLLATERAL_DECIMALS: Final = 6
"""Decimals of the collateral token (a USD stablecoin)."""

FUNDING_CLAMP_LIMIT: Final = 100_000
"""Largest funding clamp accepted at genesis: 10% per funding period."""


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class GenesisError(ValueError):
    """A genesis configuration that cannot start a chain; the message says which field."""


@dataclass(frozen=True)
class MarketSpec:
    """One market as configured."""

    id: int
    """Market id (dense from 0 by convention)."""

    symbol: str
    """Display name, e.g. ``BTC-PERP`` (not part of the state)."""

    tick_size: int
    """Price grid, in price units."""

    lot_size: int
    """Size grid, in size units."""

    price_decimals: int
    """A price of 1 means ``10**-price_decimals`` collateral (USD) per unit of the asset."""

    size_decimals: int
    """A size of 1 means ``10**-size_decimals`` units of the asset."""

    initial_margin_bps: int
    """Initial margin fraction in bps (e.g. 1000 = 10x)."""

    maintenance_margin_bps: int
    """Maintenance margin fraction in bps, below the initial one."""

    maker_fee_bps: int
    """Maker fee in bps."""

    taker_fee_bps: int
    """Taker fee in bps."""

    max_funding_ppm: int
    """Funding premium clamp, millionths per funding period."""

    @property
    def divisor(self) -> int:
        """``price * size / divisor`` is in collateral base units."""
        return int(10 ** (self.price_decimals + self.size_decimals - COLLATERAL_DECIMALS))

    def check(self) -> None:
        """Raise :class:`GenesisError` unless the parameters make a sound market."""
        name = f"market {self.id} ({self.symbol})"
        if not 0 <= self.id < MARKET_LIMIT:
            raise GenesisError(f"{name}: id must be below {MARKET_LIMIT}")
        for field, value, bits in (
            ("tick_size", self.tick_size, 64),
            ("lot_size", self.lot_size, 64),
        ):
            if not 0 < value < 1 << bits:
                raise GenesisError(f"{name}: {field} must be a positive uint{bits}")
        if self.price_decimals + self.size_decimals < COLLATERAL_DECIMALS:
            raise GenesisError(
                f"{name}: price_decimals + size_decimals must be at least {COLLATERAL_DECIMALS}"
            )
        if self.divisor >= 1 << 64:
            raise GenesisError(
                f"{name}: price_decimals + size_decimals must be at most 25 "
                "(the divisor must fit a uint64)"
            )
        if self.tick_size * self.lot_size % self.divisor != 0:
            raise GenesisError(
                f"{name}: tick_size * lot_size must be a multiple of {self.divisor}, "
                "so that every fill has an exact value in collateral units"
            )
        if not 0 < self.maintenance_margin_bps < self.initial_margin_bps <= BPS:
            raise GenesisError(
                f"{name}: need 0 < maintenance_margin_bps < initial_margin_bps <= {BPS}"
            )
        for field, value in (
            ("maker_fee_bps", self.maker_fee_bps),
            ("taker_fee_bps", self.taker_fee_bps),
        ):
            if not 0 <= value <= 1000:
                raise GenesisError(f"{name}: {field} must be 0..1000")
        if not 0 <= self.max_funding_ppm <= FUNDING_CLAMP_LIMIT:
            raise GenesisError(f"{name}: max_funding_ppm must be 0..{FUNDING_CLAMP_LIMIT}")

    def record(self) -> Market:
        """The market's genesis record."""
        return Market(
            self.tick_size, self.lot_size, self.divisor, self.initial_margin_bps,
            self.maintenance_margin_bps, self.maker_fee_bps, self.taker_fee_bps,
            self.max_funding_ppm, 0, 0, 0, 0, 0,
        )  # fmt: skip


@dataclass(frozen=True)
class Genesis:
    """Everything the initial state is made of."""

    oracle: bytes
    """Address of the oracle key."""

    fee_owner: bytes
    """Owner address of the fee account (id 0)."""

    liquidation_reward_bps: int
    """Liquidation penalty to the liquidator, in bps of the position value."""

    liquidation_insurance_bps: int
    """Liquidation penalty to the insurance fund, in bps."""

    markets: tuple[MarketSpec, ...]
    """Every market."""

    def check(self) -> None:
        """Raise :class:`GenesisError` unless this is a sound genesis."""
        for name, value in (("oracle", self.oracle), ("fee_owner", self.fee_owner)):
            if type(value) is not bytes or len(value) != 20:
                raise GenesisError(f"{name} must be a 20-byte address")
        penalties = (
            ("liquidation_reward_bps", self.liquidation_reward_bps),
            ("liquidation_insurance_bps", self.liquidation_insurance_bps),
        )
        for name, bps in penalties:
            if not 0 <= bps <= 1000:
                raise GenesisError(f"{name} must be 0..1000")
        ids = [spec.id for spec in self.markets]
        if len(set(ids)) != len(ids):
            raise GenesisError("two markets share an id")
        for spec in self.markets:
            spec.check()

    def market(self, market_id: int) -> MarketSpec:
        """The spec of ``market_id``."""
        for spec in self.markets:
            if spec.id == market_id:
                return spec
        raise KeyError(market_id)


def genesis_state(genesis: Genesis, store: NodeStore, layout: StateLayout = LAYOUT) -> State:
    """Write the genesis records into ``store`` and return the committed state."""
    genesis.check()
    state = State(store, layout=layout)
    exchange = Exchange(
        genesis.oracle, 0, 0, genesis.liquidation_reward_bps, genesis.liquidation_insurance_bps
    )
    state.set(TABLE_META.id, EXCHANGE_SLOT, encode_exchange(exchange))
    state.set(TABLE_ACCOUNTS.id, FEE_ACCOUNT, encode_account(Account(genesis.fee_owner, 0, 0, 0)))
    for spec in genesis.markets:
        state.set(TABLE_MARKETS.id, spec.id, encode_market(spec.record()))
    state.commit()
    return state


def _address(name: str, value: Any) -> bytes:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise GenesisError(f"{name} must be a 0x-prefixed 20-byte hex address")
    return bytes.fromhex(value[2:])


def _int(name: str, table: Mapping[str, Any], key: str) -> int:
    if key not in table:
        raise GenesisError(f"{name}: missing {key}")
    value = table[key]
    if type(value) is not int:
        raise GenesisError(f"{name}: {key} must be an integer")
    return value


def genesis_from_config(
    section: Mapping[str, Any], markets: Sequence[Mapping[str, Any]]
) -> Genesis:
    """
    A :class:`Genesis` from the ``[genesis]`` section of a config and its list of
    ``[[markets]]`` tables (as parsed TOML); :class:`GenesisError` names a bad field.
    """
    specs = []
    for number, table in enumerate(markets):
        name = f"markets[{number}]"
        symbol = table.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise GenesisError(f"{name}: symbol must be a non-empty string")
        specs.append(
            MarketSpec(
                id=_int(name, table, "id"),
                symbol=symbol,
                tick_size=_int(name, table, "tick_size"),
                lot_size=_int(name, table, "lot_size"),
                price_decimals=_int(name, table, "price_decimals"),
                size_decimals=_int(name, table, "size_decimals"),
                initial_margin_bps=_int(name, table, "initial_margin_bps"),
                maintenance_margin_bps=_int(name, table, "maintenance_margin_bps"),
                maker_fee_bps=_int(name, table, "maker_fee_bps"),
                taker_fee_bps=_int(name, table, "taker_fee_bps"),
                max_funding_ppm=_int(name, table, "max_funding_ppm"),
            )
        )
    genesis = Genesis(
        oracle=_address("genesis.oracle", section.get("oracle")),
        fee_owner=_address("genesis.fee_owner", section.get("fee_owner")),
        liquidation_reward_bps=_int("genesis", section, "liquidation_reward_bps"),
        liquidation_insurance_bps=_int("genesis", section, "liquidation_insurance_bps"),
        markets=tuple(specs),
    )
    genesis.check()
    return genesis
