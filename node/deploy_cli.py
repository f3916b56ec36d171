"""
``ratchet deploy --config FILE``: deploy a rollup's L1 contracts for a config and write
their addresses into it.

The genesis root comes from the config's own ``[genesis]`` (so the contracts and the
sequencer that reads the same file start from one state); the parameters from its
``[deploy]`` section; the deployer's key from ``RATCHET_DEPLOY_KEY`` or ``[deploy]
key_file``. On success the config's ``[contracts]`` (rollup, bridge, dispute,
collateral, executor) and ``[l1] start_block`` are set in place, keeping the file's
comments and layout, so ``ratchet sequencer`` and ``ratchet watch`` can run on it as it
is. A config that already names a rollup is refused: deploying again would silently
orphan the first rollup and every deposit in it.
"""

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from eth_account import Account
from web3 import Web3
from web3.middleware import SignAndSendRawMiddlewareBuilder

from node.config import (
    ConfigError,
    address_option,
    load_config,
    load_genesis,
    private_key,
    require_section,
)
from node.l1.deploy import Deployment, DeploymentError, RollupParameters, deploy_all
from node.protocol.genesis import genesis_state
from node.protocol.tree import MemoryNodeStore

KEY_ENV = "RATCHET_DEPLOY_KEY"
"""The environment variable holding the deployer's private key (0x-hex)."""

SEQUENCER_KEY_ENV = "RATCHET_SEQUENCER_KEY"
"""The sequencer's key, from which its address is taken when ``[deploy] sequencer`` is empty."""

DEV_CHAIN_IDS = frozenset({31337, 1337})
"""L1 chain ids of development nodes (anvil, hardhat, geth --dev): the only chains on which
``ratchet deploy`` deploys a throwaway TestToken as the collateral."""


@dataclass(frozen=True)
class DeployPlan:
    """Everything a deployment needs, read from a config and checked."""

    l1_rpc: str
    l1_chain_id: int
    deployer_key: bytes
    parameters: RollupParameters
    collateral: str | None
    """An existing ERC-20, or None to deploy a TestToken (development chains only)."""


def _int_option(section: Mapping[str, Any], name: str, minimum: int = 0) -> int:
    value = section.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"deploy.{name} must be an integer >= {minimum}")
    return value


def plan(
    path: str | Path, environ: Mapping[str, str] | None = None, rpc: str | None = None
) -> DeployPlan:
    """Read and check what ``ratchet deploy`` would deploy for the config at ``path``."""
    env = os.environ if environ is None else environ
    config = load_config(path, env)
    base = Path(path).parent
    chain = require_section(config, "chain")
    contracts = config.get("contracts", {})
    if contracts.get("rollup"):
        raise ConfigError(
            f"contracts.rollup is already set ({contracts['rollup']}): this config's rollup "
            "is deployed; remove the [contracts] addresses to deploy a new one"
        )
    deploy = require_section(config, "deploy")
    l1_rpc = rpc or config.get("l1", {}).get("rpc")
    if not l1_rpc:
        raise ConfigError("no L1: set [l1] rpc or pass --rpc")
    l2_chain_id = chain.get("chain_id")
    l1_chain_id = chain.get("l1_chain_id")
    if not isinstance(l2_chain_id, int) or not isinstance(l1_chain_id, int):
        raise ConfigError("chain.chain_id and chain.l1_chain_id must be integers")
    sequencer = deploy.get("sequencer") or ""
    if sequencer:
        address_option(sequencer, "deploy.sequencer")
    else:
        sequencer_key = private_key(config.get("sequencer", {}), env, SEQUENCER_KEY_ENV, base)
        sequencer = Account.from_key(sequencer_key).address
    collateral = deploy.get("collateral") or None
    if collateral is not None:
        address_option(collateral, "deploy.collateral")
    root = genesis_state(load_genesis(config, path), MemoryNodeStore()).root
    parameters = RollupParameters(
        sequencer=Web3.to_checksum_address(sequencer),
        genesis_root=root,
        l2_chain_id=l2_chain_id,
        sequencer_bond=_int_option(deploy, "sequencer_bond_wei", 1),
        challenger_bond=_int_option(deploy, "challenger_bond_wei", 1),
        challenge_window=_int_option(deploy, "challenge_window_s", 1),
        clock_budget=_int_option(deploy, "clock_budget_s", 1),
        forced_inclusion_delay=_int_option(deploy, "forced_inclusion_delay_s", 1),
    )
    return DeployPlan(
        l1_rpc=str(l1_rpc),
        l1_chain_id=l1_chain_id,
        deployer_key=private_key(deploy, env, KEY_ENV, base),
        parameters=parameters,
        collateral=collateral,
    )


def execute(deploy_plan: DeployPlan) -> Deployment:
    """Deploy on L1 as planned; the addresses. The deployer's key signs locally."""
    w3 = Web3(Web3.HTTPProvider(deploy_plan.l1_rpc, request_kwargs={"timeout": 60}))
    chain_id = w3.eth.chain_id
    if chain_id != deploy_plan.l1_chain_id:
        raise ConfigError(
            f"the L1 at {deploy_plan.l1_rpc} has chain id {chain_id}, "
            f"the config says chain.l1_chain_id = {deploy_plan.l1_chain_id}"
        )
    if deploy_plan.collateral is None and chain_id not in DEV_CHAIN_IDS:
        raise ConfigError(
            f"deploy.collateral is empty: a TestToken is deployed only on development chains "
            f"(chain ids {sorted(DEV_CHAIN_IDS)}), not on chain {chain_id}"
        )
    deployer = Account.from_key(deploy_plan.deployer_key)
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(deployer), layer=0)
    return deploy_all(w3, deployer.address, deploy_plan.parameters, deploy_plan.collateral)


def write_addresses(path: str | Path, deployment: Deployment) -> None:
    """Set ``[contracts]`` and ``[l1] start_block`` in the config at ``path``, in place,
    keeping its comments (the file is replaced atomically)."""
    target = Path(path)
    document = tomlkit.parse(target.read_text())
    contracts = document.get("contracts")
    if contracts is None:
        contracts = tomlkit.table()
        document["contracts"] = contracts
    for name, address in deployment.to_json().items():
        contracts[name] = address
    l1 = document.get("l1")
    if l1 is None:
        l1 = tomlkit.table()
        document["l1"] = l1
    l1["start_block"] = deployment.start_block
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(tomlkit.dumps(document))
    os.replace(temporary, target)


def main(config_path: str, rpc: str | None = None) -> int:
    """Entry point of ``ratchet deploy``."""
    try:
        deploy_plan = plan(config_path, rpc=rpc)
        deployment = execute(deploy_plan)
        write_addresses(config_path, deployment)
    except ConfigError as exc:
        print(f"ratchet deploy: {exc}", file=sys.stderr)
        return 2
    except (DeploymentError, OSError) as exc:
        print(f"ratchet deploy: {exc}", file=sys.stderr)
        return 1
    for name, address in deployment.to_json().items():
        print(f"{name:<10} {address}")
    print(f"start block {deployment.start_block}; written to {config_path}")
    return 0
