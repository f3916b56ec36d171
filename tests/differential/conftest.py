"""Fixtures of the differential tests: one-step executors deployed on the session anvil."""

import pytest
from web3 import Web3
from web3.contract import Contract

from node.l1.artifacts import load_artifact
from node.l1.executor import deploy_executor


@pytest.fixture(scope="session")
def executor(w3: Web3) -> Contract:
    """A ``OneStepExecutor`` (with its step contracts) on the session anvil.

    It is stateless, so every test of the session may share it.
    """
    address = deploy_executor(w3, w3.eth.accounts[0])
    contract = w3.eth.contract(address=address, abi=load_artifact("OneStepExecutor")["abi"])
    assert isinstance(contract, Contract)
    return contract
