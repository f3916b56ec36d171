"""TOML config with RATCHET_<SECTION>_<KEY> environment overrides."""

from pathlib import Path

import pytest

from node.config import ConfigError, load_config

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
