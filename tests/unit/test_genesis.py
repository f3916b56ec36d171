"""
Genesis: the records the chain starts from, and the checks on its configuration
(node/protocol/genesis.py).
"""

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from node.protocol.genesis import (
    Genesis,
    GenesisError,
    MarketSpec,
    genesis_from_config,
    genesis_state,
)
from node.protocol.records import (
    Account,
    Exchange,
    Market,
    decode_account,
    decode_exchange,
    decode_market,
    encode_account,
    encode_exchange,
    encode_market,
)
from node.protocol.state import (
    TABLE_ACCOUNTS,
    TABLE_MARKETS,
    TABLE_META,
    TABLE_WITHDRAWALS,
    State,
)
from node.protocol.tree import MemoryNodeStore
from tests.stf_env import GENESIS

ORACLE = "0x" + "a0" * 20
FEE_OWNER = "0x" + "0B" * 20
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_genesis_state_writes_exchange_fee_account_and_markets() -> None:
    """The test genesis gives: the exchange record (oracle, empty fund, no withdrawals,
    100 / 100 bps penalties), the fee account 0 (owner, nothing else) and both markets
    with their parameters (BTC divisor 10**(1+8-6) = 1,000; ETH 10**(2+6-6) = 100)
    and no price, funding or fill yet."""
    state = genesis_state(GENESIS, MemoryNodeStore())
    assert decode_exchange(state.get(TABLE_META.id, 0)) == Exchange(GENESIS.oracle, 0, 0, 100, 100)
    assert decode_account(state.get(TABLE_ACCOUNTS.id, 0)) == Account(
        GENESIS.fee_owner, 0, 0, 0, [], []
    )
    assert decode_market(state.get(TABLE_MARKETS.id, 0)) == Market(
        10, 1_000, 1_000, 1_000, 500, 2, 5, 5_000, 0, 0, 0, 0, 0
    )
    assert decode_market(state.get(TABLE_MARKETS.id, 1)) == Market(
        1, 100, 100, 500, 300, 0, 4, 5_000, 0, 0, 0, 0, 0
    )
    assert state.get(TABLE_ACCOUNTS.id, 1) == b""
    assert state.get(TABLE_MARKETS.id, 2) == b""
    assert state.get(TABLE_WITHDRAWALS.id, 0) == b""


def test_genesis_state_is_committed_and_holds_nothing_else() -> None:
    """The genesis root is committed (no pending writes) and equals the root of a state
    holding exactly those four records, so genesis wrote nothing more."""
    state = genesis_state(GENESIS, MemoryNodeStore())
    assert state.dirty_count == 0
    expected = State(MemoryNodeStore())
    expected.set(TABLE_META.id, 0, encode_exchange(Exchange(GENESIS.oracle, 0, 0, 100, 100)))
    expected.set(TABLE_ACCOUNTS.id, 0, encode_account(Account(GENESIS.fee_owner, 0, 0, 0)))
    expected.set(TABLE_MARKETS.id, 0, encode_market(Market(10, 1_000, 1_000, 1_000, 500, 2, 5,
                                                          5_000, 0, 0, 0, 0, 0)))  # fmt: skip
    expected.set(TABLE_MARKETS.id, 1, encode_market(Market(1, 100, 100, 500, 300, 0, 4,
                                                          5_000, 0, 0, 0, 0, 0)))  # fmt: skip
    assert state.root == expected.commit()


def test_genesis_state_refuses_an_unsound_genesis() -> None:
    """genesis_state checks the genesis first: two markets with one id are refused."""
    btc = GENESIS.markets[0]
    bad = Genesis(GENESIS.oracle, GENESIS.fee_owner, 100, 100, (btc, btc))
    with pytest.raises(GenesisError, match="id"):
        genesis_state(bad, MemoryNodeStore())


# genesis_from_config --------------------------------------------------------------------


def _section() -> dict[str, Any]:
    return {
        "oracle": ORACLE,
        "fee_owner": FEE_OWNER,
        "liquidation_reward_bps": 100,
        "liquidation_insurance_bps": 50,
        "markets": "markets.toml",
    }


def _market(**changes: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "id": 0,
        "symbol": "BTC-PERP",
        "price_decimals": 1,
        "size_decimals": 8,
        "tick_size": 10,
        "lot_size": 1_000,
        "initial_margin_bps": 1_000,
        "maintenance_margin_bps": 500,
        "maker_fee_bps": 2,
        "taker_fee_bps": 5,
        "max_funding_ppm": 5_000,
    }
    table.update(changes)
    return table


def test_genesis_from_config_parses_a_sound_config() -> None:
    """A sound section and market list give the expected Genesis (addresses decoded,
    mixed-case hex accepted)."""
    eth = _market(id=1, symbol="ETH-PERP", price_decimals=2, size_decimals=6, tick_size=1,
                  lot_size=100, initial_margin_bps=500, maintenance_margin_bps=300,
                  maker_fee_bps=0, taker_fee_bps=4)  # fmt: skip
    genesis = genesis_from_config(_section(), [_market(), eth])
    assert genesis == Genesis(
        oracle=b"\xa0" * 20,
        fee_owner=b"\x0b" * 20,
        liquidation_reward_bps=100,
        liquidation_insurance_bps=50,
        markets=(
            MarketSpec(0, "BTC-PERP", 10, 1_000, 1, 8, 1_000, 500, 2, 5, 5_000),
            MarketSpec(1, "ETH-PERP", 1, 100, 2, 6, 500, 300, 0, 4, 5_000),
        ),
    )
    assert genesis.market(1).divisor == 100
    assert (
        genesis_state(genesis, MemoryNodeStore()).root
        == genesis_state(genesis, MemoryNodeStore()).root
    )


def test_genesis_from_config_accepts_the_committed_devnet_config() -> None:
    """configs/devnet.toml with configs/markets.toml makes a sound genesis."""
    config = tomllib.loads((CONFIGS / "devnet.toml").read_text())
    markets = tomllib.loads((CONFIGS / config["genesis"]["markets"]).read_text())["markets"]
    genesis = genesis_from_config(config["genesis"], markets)
    assert [spec.symbol for spec in genesis.markets] == [m["symbol"] for m in markets]
    assert genesis.oracle == bytes.fromhex(config["genesis"]["oracle"][2:])


def test_genesis_from_config_accepts_the_boundaries() -> None:
    """Limits are inclusive: penalties and fees of 1,000 bps, initial margin 10,000 bps,
    funding clamp 100,000 ppm, market id 65,535, uint64 tick and lot sizes."""
    section = _section() | {"liquidation_reward_bps": 1_000, "liquidation_insurance_bps": 0}
    market = _market(id=2**16 - 1, initial_margin_bps=10_000, maintenance_margin_bps=1,
                     maker_fee_bps=1_000, taker_fee_bps=0, max_funding_ppm=100_000,
                     price_decimals=0, size_decimals=6, tick_size=2**64 - 1,
                     lot_size=2**64 - 1)  # fmt: skip
    genesis = genesis_from_config(section, [market])
    assert genesis.markets[0].divisor == 1


SECTION_CASES: list[tuple[str, Any]] = [
    ("oracle", None),  # missing
    ("oracle", "0x1234"),
    ("oracle", "a0" * 20),  # no 0x prefix
    ("oracle", "0x" + "g0" * 20),
    ("oracle", b"\xa0" * 20),
    ("fee_owner", None),
    ("fee_owner", "0x" + "0b" * 21),
    ("liquidation_reward_bps", None),
    ("liquidation_reward_bps", "100"),
    ("liquidation_reward_bps", True),
    ("liquidation_reward_bps", 100.0),
    ("liquidation_reward_bps", 1_001),
    ("liquidation_reward_bps", -1),
    ("liquidation_insurance_bps", None),
    ("liquidation_insurance_bps", "50"),
    ("liquidation_insurance_bps", 1_001),
    ("liquidation_insurance_bps", -1),
]


@pytest.mark.parametrize(("key", "value"), SECTION_CASES)
def test_genesis_from_config_rejects_a_bad_genesis_field(key: str, value: Any) -> None:
    """A missing, mistyped or out-of-range field of [genesis]: GenesisError naming it."""
    section = _section()
    if value is None:
        del section[key]
    else:
        section[key] = value
    with pytest.raises(GenesisError) as error:
        genesis_from_config(section, [_market()])
    assert key in str(error.value)


INT_KEYS = [
    "id",
    "tick_size",
    "lot_size",
    "price_decimals",
    "size_decimals",
    "initial_margin_bps",
    "maintenance_margin_bps",
    "maker_fee_bps",
    "taker_fee_bps",
    "max_funding_ppm",
]

MARKET_CASES: list[tuple[str, Any]] = [
    *((key, None) for key in INT_KEYS),  # missing
    *((key, "1") for key in INT_KEYS),  # a string
    *((key, True) for key in INT_KEYS),  # a bool is not an integer here
    *((key, 1.0) for key in INT_KEYS),  # nor is a float
    ("symbol", None),
    ("symbol", ""),
    ("symbol", 5),
    ("id", -1),
    ("id", 2**16),
    ("tick_size", 0),
    ("tick_size", 2**64),
    ("lot_size", 0),
    ("lot_size", 2**64),
    ("lot_size", 10),  # tick 10 * lot 10 = 100: not a multiple of the divisor 1,000
    ("price_decimals", 0),  # 0 + 5 < 6 collateral decimals (with size_decimals 5 below)
    ("size_decimals", 30),  # divisor 10**33 does not fit a uint64
    ("initial_margin_bps", 10_001),
    ("initial_margin_bps", 500),  # not above maintenance
    ("maintenance_margin_bps", 0),
    ("maintenance_margin_bps", 1_000),  # not below initial
    ("maker_fee_bps", 1_001),
    ("maker_fee_bps", -1),
    ("taker_fee_bps", 1_001),
    ("taker_fee_bps", -1),
    ("max_funding_ppm", 100_001),
    ("max_funding_ppm", -1),
]


@pytest.mark.parametrize(("key", "value"), MARKET_CASES)
def test_genesis_from_config_rejects_a_bad_market_field(key: str, value: Any) -> None:
    """A missing, mistyped or unsound field of a [[markets]] table: GenesisError whose
    message names the field (its config key) so the operator can find it."""
    market = _market()
    if value is None:
        del market[key]
    else:
        market[key] = value
    if (key, value) == ("price_decimals", 0):
        market["size_decimals"] = 5
    other = _market(id=1, symbol="ETH-PERP")
    with pytest.raises(GenesisError) as error:
        genesis_from_config(_section(), [other, market])
    message = str(error.value)
    assert key in message
    assert "markets[1]" in message or "(BTC-PERP)" in message


def test_genesis_from_config_rejects_two_markets_with_one_id() -> None:
    """Two [[markets]] tables with the same id: GenesisError naming the id."""
    markets = [_market(), _market(symbol="BTC-PERP-2")]
    with pytest.raises(GenesisError, match="id"):
        genesis_from_config(_section(), markets)


def test_genesis_from_config_does_not_modify_its_input() -> None:
    """Parsing leaves the config tables as they were."""
    section, markets = _section(), [_market()]
    before = copy.deepcopy((section, markets))
    genesis_from_config(section, markets)
    assert (section, markets) == before
