"""
Deploy the one-step executor: its step contracts, then ``OneStepExecutor`` over them.

The executor is split so that every deployed contract stays under the 24 KiB code
limit (docs/protocol.md, sections 5 and 9): ``OrderStep`` (orders), ``AccountStep``
(deposits, cancels, transfers, withdrawals) and ``RiskStep`` (liquidations, oracle
prices) each apply one slice of the STF; ``OneStepExecutor`` decodes a step and calls the
right one. All four are stateless, so one deployment serves any number of rollups.
"""

from typing import Final

from eth_typing import ChecksumAddress
from web3 import Web3

from .artifacts import load_artifact

STEP_CONTRACTS: Final = ("OrderStep", "AccountStep", "RiskStep")
"""The step contracts, in the order ``OneStepExecutor``'s constructor takes them."""


def deploy_contract(w3: Web3, sender: str, name: str, *args: object) -> ChecksumAddress:
    """Deploy the committed artifact of contract ``name`` from ``sender``; its address."""
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx_hash = factory.constructor(*args).transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1:
        raise RuntimeError(f"deploying {name} failed: {receipt}")
    address = receipt["contractAddress"]
    assert address is not None
    return address


def deploy_executor(w3: Web3, sender: str) -> ChecksumAddress:
    """Deploy the step contracts and a ``OneStepExecutor`` using them; the executor's address.

    ``sender`` must be an account the node signs for (e.g. one of anvil's); it sends four
    transactions with consecutive nonces.
    """
    steps = [deploy_contract(w3, sender, name) for name in STEP_CONTRACTS]
    return deploy_contract(w3, sender, "OneStepExecutor", *steps)
