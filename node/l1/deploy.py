"""
Deploy a Ratchet rollup's L1 contracts: the collateral token (or an existing one), the
Bridge, the Rollup and the DisputeGame, wired to a one-step executor deployed before
(``node.l1.executor.deploy_executor``, or a toy executor in tests); :func:`deploy_all`
deploys the executor too.

The three chain contracts name each other in their constructors: the Bridge names the
Rollup, the Rollup names the Bridge and the DisputeGame, the DisputeGame names the
Rollup. Their addresses are predicted from the deployer's nonce (an address is
``keccak256(rlp([sender, nonce]))[12:]``), the three are sent with consecutive explicit
nonces, and each constructor checks that its counterpart points back at it, so a wrong
prediction fails the deployment instead of wiring two rollups together.
"""

from dataclasses import dataclass
from typing import Any, Final

import rlp
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract

from node.protocol.crypto import keccak256
from node.protocol.eip712 import Domain

from .artifacts import load_artifact
from .executor import deploy_executor

CHAIN_CONTRACTS: Final = ("Bridge", "Rollup", "DisputeGame")
"""The contracts deployed with consecutive nonces, in order."""


class DeploymentError(RuntimeError):
    """A deployment transaction failed or a contract did not land where it was predicted."""


@dataclass(frozen=True)
class RollupParameters:
    """Everything the chain contracts' constructors take besides each other's addresses
    (docs/l1.md, "Parameters")."""

    sequencer: ChecksumAddress
    """The only address that posts batches and defends them in dispute games."""

    genesis_root: bytes
    """The state root before batch 0 (``node.protocol.genesis``)."""

    l2_chain_id: int
    """The L2 chain id of the EIP-712 domain."""

    sequencer_bond: int
    """Wei the sequencer must have staked to post."""

    challenger_bond: int
    """Wei every challenge carries."""

    challenge_window: int
    """Seconds after posting during which a batch may be challenged."""

    clock_budget: int
    """Seconds each party of a game has for all its moves."""

    forced_inclusion_delay: int
    """Seconds within which the sequencer must consume an inbox message."""


ETHER: Final = 10**18
"""Wei per ether."""


def devnet_parameters(sequencer: str, genesis_root: bytes, l2_chain_id: int) -> RollupParameters:
    """The devnet's parameters (docs/l1.md, "Parameters"): a newcomer sees a batch final a
    minute after it is posted, and a whole dispute plays out within three minutes."""
    return RollupParameters(
        sequencer=Web3.to_checksum_address(sequencer),
        genesis_root=genesis_root,
        l2_chain_id=l2_chain_id,
        sequencer_bond=ETHER,
        challenger_bond=ETHER // 10,
        challenge_window=60,
        clock_budget=60,
        forced_inclusion_delay=30,
    )


@dataclass(frozen=True)
class Deployment:
    """Where a rollup's contracts live."""

    collateral: ChecksumAddress
    """The collateral ERC-20 (a TestToken on devnets)."""

    bridge: ChecksumAddress
    """Bridge and inbox."""

    rollup: ChecksumAddress
    """The chain of batches; also the EIP-712 ``verifyingContract``."""

    dispute_game: ChecksumAddress
    """The dispute games."""

    executor: ChecksumAddress
    """The one-step executor the games use."""

    l2_chain_id: int
    """The L2 chain id."""

    start_block: int
    """The L1 block of the Bridge's deployment: followers scan logs from here."""

    @property
    def domain(self) -> Domain:
        """The EIP-712 domain every L2 transaction of this rollup is signed in."""
        return Domain(self.l2_chain_id, _canonical(self.rollup))

    def to_json(self) -> dict[str, str]:
        """The ``contracts`` object of ``devnet.json`` and ``ratchet_getConfig``."""
        return {
            "rollup": self.rollup,
            "bridge": self.bridge,
            "dispute": self.dispute_game,
            "collateral": self.collateral,
            "executor": self.executor,
        }


def _canonical(address: str) -> bytes:
    """The 20 bytes of a 0x-hex address."""
    return bytes.fromhex(Web3.to_checksum_address(address)[2:])


def contract_address(sender: str, nonce: int) -> ChecksumAddress:
    """The address of the contract ``sender`` creates with transaction number ``nonce``."""
    return Web3.to_checksum_address(keccak256(rlp.encode([_canonical(sender), nonce]))[12:])


def deploy_contract(
    w3: Web3, sender: str, name: str, *args: object, nonce: int | None = None
) -> ChecksumAddress:
    """Deploy the committed artifact of contract ``name`` from ``sender`` (with ``nonce`` if
    given); its address. ``sender`` must be an account the node or a signing middleware
    signs for."""
    return _deploy(w3, sender, name, args, nonce)[0]


def _deploy(
    w3: Web3, sender: str, name: str, args: tuple[object, ...], nonce: int | None
) -> tuple[ChecksumAddress, int]:
    """Deploy contract ``name``; its address and the block it landed in."""
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    params: dict[str, Any] = {"from": Web3.to_checksum_address(sender)}
    if nonce is not None:
        params["nonce"] = nonce
    tx_hash = factory.constructor(*args).transact(params)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    address = receipt["contractAddress"]
    if receipt["status"] != 1 or address is None:
        raise DeploymentError(f"deploying {name} failed: {receipt}")
    return address, receipt["blockNumber"]


def bind(w3: Web3, name: str, address: str) -> Contract:
    """Contract ``name``'s committed ABI at ``address``."""
    contract = w3.eth.contract(
        address=Web3.to_checksum_address(address), abi=load_artifact(name)["abi"]
    )
    assert isinstance(contract, Contract)
    return contract


def deploy_rollup(
    w3: Web3,
    deployer: str,
    parameters: RollupParameters,
    executor: str,
    collateral: str | None = None,
) -> Deployment:
    """
    Deploy Bridge, Rollup and DisputeGame (and a TestToken first unless ``collateral`` names
    an existing token) from ``deployer``, wired to ``executor``.

    Nothing else may send from ``deployer`` meanwhile: the addresses are predicted from its
    pending nonce, and every constructor check fails if they are not where predicted.
    """
    if collateral is None:
        collateral = deploy_contract(w3, deployer, "TestToken")
    nonce = w3.eth.get_transaction_count(Web3.to_checksum_address(deployer), "pending")
    bridge, rollup, game = (contract_address(deployer, nonce + i) for i in range(3))
    p = parameters
    executor_address = Web3.to_checksum_address(executor)
    constructor_args: dict[str, tuple[object, ...]] = {
        "Bridge": (Web3.to_checksum_address(collateral), rollup),
        "Rollup": (
            bridge,
            game,
            p.sequencer,
            p.genesis_root,
            p.l2_chain_id,
            p.sequencer_bond,
            p.challenge_window,
            p.forced_inclusion_delay,
        ),
        "DisputeGame": (rollup, executor_address, p.challenger_bond, p.clock_budget),
    }
    predicted = {"Bridge": bridge, "Rollup": rollup, "DisputeGame": game}
    blocks = []
    for offset, name in enumerate(CHAIN_CONTRACTS):
        args = constructor_args[name]
        address, block = _deploy(w3, deployer, name, args, nonce + offset)
        if address != predicted[name]:
            raise DeploymentError(f"{name} landed at {address}, predicted {predicted[name]}")
        blocks.append(block)
    return Deployment(
        collateral=Web3.to_checksum_address(collateral),
        bridge=bridge,
        rollup=rollup,
        dispute_game=game,
        executor=executor_address,
        l2_chain_id=p.l2_chain_id,
        start_block=blocks[0],
    )


def deploy_all(
    w3: Web3, deployer: str, parameters: RollupParameters, collateral: str | None = None
) -> Deployment:
    """Deploy the one-step executor (its step contracts and ``OneStepExecutor``), then the
    rollup over it (:func:`deploy_rollup`): everything a new rollup needs."""
    executor = deploy_executor(w3, deployer)
    return deploy_rollup(w3, deployer, parameters, executor, collateral)
