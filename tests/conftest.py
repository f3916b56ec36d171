"""Fixtures shared by every test directory: anvil on loopback, started and stopped by pid."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from web3 import Web3
from web3.contract import Contract

from node.l1.anvil import Anvil
from node.l1.artifacts import load_artifact

settings.register_profile(
    "ratchet",
    deadline=None,  # a shared 2-core CI machine must not turn slowness into failures
    print_blob=True,  # a failure prints what reproduces it
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ratchet")


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    """One anvil for the session, on a free port of 127.0.0.1."""
    log = Path(tmp_path_factory.mktemp("anvil")) / "anvil.log"
    with Anvil(log_path=log) as node:
        yield node
    assert node.process is None  # stopped


@pytest.fixture(scope="session")
def w3(anvil: Anvil) -> Web3:
    """A web3 client of the session's anvil."""
    client = Web3(Web3.HTTPProvider(anvil.url))
    assert client.is_connected()
    return client


def deploy(w3: Web3, name: str, *args: object) -> Contract:
    """Deploy the committed artifact of contract ``name`` from anvil's first account."""
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx_hash = factory.constructor(*args).transact({"from": w3.eth.accounts[0]})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 1
    contract = w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    assert isinstance(contract, Contract)
    return contract
