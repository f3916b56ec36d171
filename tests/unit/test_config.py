"""TOML config with RATCHET_<SECTION>_<KEY> environment overrides."""

from pathlib import Path

import pytest

from node.config import ConfigError, load_config, load_genesis

ROOT = Path(__file__).resolve().parent.parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_devnet_config_loads() -> None:
    config = load_config(ROOT / "configs" / "devnet.toml", env={})
    assert config["chain"]["chain_id"] == 901337
    assert config["rpc"]["host"] == "127.0.0.1"


def test_overrides_take_the_type_of_the_value_they_replace(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[rpc]\nport = 8547\nhost = "127.0.0.1"\ndebug = false\n[batch]\nmax_interval_s = 2.0\n',
    )
    config = load_config(
        path,
        env={
            "RATCHET_RPC_PORT": "9000",
            "RATCHET_RPC_DEBUG": "yes",
            "RATCHET_RPC_HOST": "0.0.0.0",
            "RATCHET_BATCH_MAX_INTERVAL_S": "0.5",
            "RATCHET_RPC_KEY_FILE": "/run/key",
            "OTHER_RPC_PORT": "1",
            "RATCHET_NOSUCH_THING": "x",
        },
    )
    assert config["rpc"] == {"port": 9000, "host": "0.0.0.0", "debug": True, "key_file": "/run/key"}
    assert config["batch"]["max_interval_s"] == 0.5
    assert "nosuch" not in config


def test_overrides_do_not_leak_between_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "[rpc]\nport = 8547\n")
    assert load_config(path, env={"RATCHET_RPC_PORT": "1"})["rpc"]["port"] == 1
    assert load_config(path, env={})["rpc"]["port"] == 8547


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        (
            "[rpc]\nport = 8547\n",
            {"RATCHET_RPC_PORT": "eighty"},
            "RATCHET_RPC_PORT: expected an integer",
        ),
        ("[rpc]\ndebug = true\n", {"RATCHET_RPC_DEBUG": "maybe"}, "expected a boolean"),
        ("[batch]\nt = 1.5\n", {"RATCHET_BATCH_T": "soon"}, "expected a number"),
        ('[l1]\nurls = ["a"]\n', {"RATCHET_L1_URLS": "b"}, "lists and tables"),
        ("port = 1\n", {}, "must be inside a [section]"),
        ("[rpc\n", {}, "not valid TOML"),
        ("[my_section]\nx = 1\n", {}, "no underscore"),
    ],
)
def test_invalid_configs_and_overrides(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(write(tmp_path, text), env=env)


def test_invalid_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.toml", env={})


def test_devnet_genesis_loads_every_market() -> None:
    """The committed devnet config and markets file make a sound genesis."""
    path = ROOT / "configs" / "devnet.toml"
    genesis = load_genesis(load_config(path, env={}), path)
    assert [spec.symbol for spec in genesis.markets] == ["BTC-PERP", "ETH-PERP", "SOL-PERP"]
    assert genesis.oracle == bytes.fromhex("a0Ee7A142d267C1f36714E4a8F75612F20a79720")
    assert genesis.market(0).divisor == 1000  # 10^(1 + 8 - 6)


def test_genesis_oracle_can_come_from_the_environment() -> None:
    """Like every option, the oracle address can be overridden."""
    path = ROOT / "configs" / "devnet.toml"
    oracle = "0x" + "ab" * 20
    genesis = load_genesis(load_config(path, env={"RATCHET_GENESIS_ORACLE": oracle}), path)
    assert genesis.oracle == b"\xab" * 20


def test_invalid_markets_file_names_the_bad_field(tmp_path: Path) -> None:
    """A market whose grid gives inexact fill values is refused, naming the market."""
    (tmp_path / "markets.toml").write_text(
        "[[markets]]\nid = 0\nsymbol = 'X'\nprice_decimals = 2\nsize_decimals = 6\n"
        "tick_size = 1\nlot_size = 3\ninitial_margin_bps = 500\nmaintenance_margin_bps = 300\n"
        "maker_fee_bps = 0\ntaker_fee_bps = 4\nmax_funding_ppm = 5000\n"
    )
    path = write(
        tmp_path,
        '[genesis]\noracle = "0x' + "11" * 20 + '"\nfee_owner = "0x' + "22" * 20 + '"\n'
        'liquidation_reward_bps = 100\nliquidation_insurance_bps = 100\nmarkets = "markets.toml"\n',
    )
    with pytest.raises(ConfigError, match=r"market 0 \(X\).*multiple of 100"):
        load_genesis(load_config(path, env={}), path)


def test_invalid_genesis_without_markets_file(tmp_path: Path) -> None:
    """A missing markets file is a ConfigError, not a crash."""
    path = write(
        tmp_path,
        '[genesis]\noracle = "0x' + "11" * 20 + '"\nfee_owner = "0x' + "22" * 20 + '"\n'
        'liquidation_reward_bps = 1\nliquidation_insurance_bps = 1\nmarkets = "none.toml"\n',
    )
    with pytest.raises(ConfigError, match="cannot read markets file"):
        load_genesis(load_config(path, env={}), path)
