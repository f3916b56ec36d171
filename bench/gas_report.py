"""
L1 gas report (JSON on stdout): what posting, disputing and proving one step cost.

- **Posting**: the timed batches of the realistic flow of bench/stf_flow.py (makers
  quoting, takers crossing, cancels, oracle prices, transfers, withdrawals) posted with
  ``postBatch``: gas and calldata bytes per transaction, and per order.
- **Dispute moves**: two full games on anvil with the real one-step executor, from the
  challenge to the one-step proof of the two heaviest steps (the order and the CancelAll).
- **One step**: ``OneStepExecutor.execute`` sent as a transaction (so the figure includes
  the calldata of the step and its witness) for the worst case of each step kind
  (bench/worst_case.py), and ``DisputeGame.proveStep`` of the two heaviest.

Goals (issue 4): <= 100 calldata bytes per average order, <= 100k gas per move,
<= 1.5M gas for the heaviest one-step proof.

    python -m bench.gas_report [--flow-steps N] [--batch-size N]
"""

import argparse
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from bench.common import emit
from bench.stf_flow import FlowGenerator
from bench.worst_case import BUILDERS, WorstCase, heaviest_cancel_all, heaviest_order
from node.l1.anvil import Anvil
from node.l1.deploy import RollupParameters, bind, contract_address, deploy_all, deploy_rollup
from node.protocol.batch import encode_transactions, transaction_proof
from node.protocol.eip712 import Domain, domain_separator
from node.protocol.encoding import encode_items
from node.protocol.step import StepKind
from node.protocol.stf import prove_step
from node.protocol.transactions import TxKind

ETHER = 10**18


def parameters(sequencer: str, genesis_root: bytes, chain_id: int) -> RollupParameters:
    """Production-like bonds; windows short enough to play a game on anvil."""
    return RollupParameters(
        sequencer=Web3.to_checksum_address(sequencer),
        genesis_root=genesis_root,
        l2_chain_id=chain_id,
        sequencer_bond=10 * ETHER,
        challenger_bond=ETHER,
        challenge_window=3_600,
        clock_budget=1_800,
        forced_inclusion_delay=600,
    )


def send(w3: Web3, call: Any, sender: str, value: int = 0) -> TxReceipt:
    """Send a contract call and wait for it; fails loudly if it reverts."""
    tx_hash = call.transact({"from": sender, "value": value})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction reverted: {receipt}")
    return receipt


def calldata_bytes(w3: Web3, receipt: TxReceipt) -> int:
    """Length of the transaction's calldata."""
    return len(HexBytes(w3.eth.get_transaction(receipt["transactionHash"])["input"]))


def post(
    w3: Web3, rollup: Contract, sequencer: str, transactions: Sequence[bytes], post_root: bytes
) -> TxReceipt:
    """Post the next batch (no inbox messages) at the latest block time."""
    index = rollup.functions.nextIndex().call()
    parent = rollup.functions.parentRootOf(index).call()
    now = w3.eth.get_block("latest")["timestamp"]
    call = rollup.functions.postBatch(
        index, parent, now, 0, post_root, encode_transactions(transactions)
    )
    return send(w3, call, sequencer)


def posting(
    w3: Web3, deployer: str, sequencer: str, flow_steps: int, batch_size: int
) -> dict[str, Any]:
    """Post the realistic flow's transactions in batches of ``batch_size``."""
    flow = FlowGenerator(
        seed=7, steps=flow_steps, batch_size=batch_size, makers=8, takers=48, oracle_every=50
    ).generate()
    transactions = [
        step.data
        for batch in flow.batches
        for step in batch.steps
        if step.kind == StepKind.TRANSACTION
    ]
    deployment = deploy_all(w3, deployer, parameters(sequencer, b"\x01" * 32, 1))
    rollup = bind(w3, "Rollup", deployment.rollup)
    send(w3, rollup.functions.stake(), sequencer, value=10 * ETHER)
    gas, sizes, counts = [], [], []
    for start in range(0, len(transactions), batch_size):
        chunk = transactions[start : start + batch_size]
        receipt = post(w3, rollup, sequencer, chunk, bytes(32))
        gas.append(receipt["gasUsed"])
        sizes.append(calldata_bytes(w3, receipt))
        counts.append(len(chunk))
    orders = [tx for tx in transactions if tx[0] == TxKind.ORDER]
    # each transaction in the list costs its bytes plus an RLP string header (1-2 bytes)
    listed = [len(encode_items([tx])) - 1 for tx in transactions]
    by_kind: dict[str, list[int]] = {}
    for tx, size in zip(transactions, listed, strict=True):
        kind = TxKind(tx[0]).name.lower() if 1 <= tx[0] <= 7 else "other"
        by_kind.setdefault(kind, []).append(size)
    return {
        "batches": len(gas),
        "transactions": len(transactions),
        "transactions_per_batch": batch_size,
        "gas_per_batch_mean": round(statistics.mean(gas)),
        "gas_per_transaction": round(sum(gas) / len(transactions), 1),
        "calldata_bytes_per_transaction": round(sum(sizes) / len(transactions), 1),
        "calldata_bytes_per_order": round(
            statistics.mean(len(encode_items([o])) - 1 for o in orders), 1
        ),
        "listed_bytes_by_kind": {
            k: round(statistics.mean(v), 1) for k, v in sorted(by_kind.items())
        },
        "transaction_mix": {k: len(v) for k, v in sorted(by_kind.items())},
    }


def executor_gas(w3: Web3, executor: Contract, case: WorstCase, separator: bytes) -> dict[str, Any]:
    """``execute`` of the case's step as a transaction: gas, witness size, agreement."""
    reason, pre_root, witness, post_root = case.prove()
    call = executor.functions.execute(
        pre_root, int(case.step.kind), case.step.data, case.exchange.timestamp, separator, witness
    )
    root, solidity_reason = call.call()
    if bytes(root) != post_root or solidity_reason != reason:
        raise RuntimeError(f"{case.name}: the executor disagrees with the Python STF")
    return {
        "reason": reason.name,
        "gas": call.estimate_gas(),
        "witness_bytes": len(witness),
        "step_bytes": len(case.step.data),
    }


def one_step(w3: Web3, executor_address: ChecksumAddress) -> dict[str, Any]:
    """The worst case of every step kind through the executor, as transactions."""
    executor = bind(w3, "OneStepExecutor", executor_address)
    results = {}
    for build in BUILDERS:
        case = build()
        separator = domain_separator(case.exchange.domain)
        results[case.name] = executor_gas(w3, executor, case, separator)
    return results


def dispute(w3: Web3, executor: ChecksumAddress) -> dict[str, Any]:
    """Play a game to the one-step proof of the heaviest order, and one to that of the
    heaviest CancelAll (the two heaviest steps): the gas of every move."""
    moves: dict[str, list[int]] = {}
    play(w3, executor, heaviest_order, "heaviest order", moves)
    play(w3, executor, heaviest_cancel_all, "heaviest cancel all", moves)
    return {
        name: max(gas) if len(gas) == 1 else {"max": max(gas), "mean": round(statistics.mean(gas))}
        for name, gas in moves.items()
    }


def play(
    w3: Web3,
    executor: ChecksumAddress,
    build: Callable[[Domain], WorstCase],
    label: str,
    moves: dict[str, list[int]],
    fillers: int = 63,
) -> None:
    """Deploy a rollup whose genesis is the case's pre-state, post a batch of ``fillers``
    no-op steps and the case's step under a wrong root, and play the game down to
    ``proveStep``; every move's gas goes into ``moves``."""
    accounts = list(w3.eth.accounts)
    deployer, sequencer, challenger = accounts[0], accounts[1], accounts[2]
    # The step must be signed in the domain of the rollup that will judge it: predict
    # the rollup's address first (deploy_rollup deploys a token, then Bridge, Rollup, ...).
    nonce = w3.eth.get_transaction_count(deployer)
    rollup_address = contract_address(deployer, nonce + 2)
    domain = Domain(chain_id=901_337, verifying_contract=bytes.fromhex(rollup_address[2:]))
    case = build(domain)
    pre_root = case.exchange.root()
    deployment = deploy_rollup(
        w3, deployer, parameters(sequencer, pre_root, domain.chain_id), executor
    )
    assert deployment.rollup == rollup_address
    rollup = bind(w3, "Rollup", deployment.rollup)
    game = bind(w3, "DisputeGame", deployment.dispute_game)
    send(w3, rollup.functions.stake(), sequencer, value=10 * ETHER)

    # malformed transactions: no-op steps, the root stays the pre-root until the last
    transactions = [*([b"\x00"] * fillers), case.step.data]
    outcome, witness, _ = prove_step(
        case.exchange.state.store, pre_root, case.step, case.exchange.context
    )
    assert outcome.applied

    def record(name: str, receipt: TxReceipt) -> None:
        moves.setdefault(name, []).append(receipt["gasUsed"])

    # batch 0 claims a wrong root; the honest trace is pre_root until the last step
    now = w3.eth.get_block("latest")["timestamp"]
    timestamp = case.exchange.timestamp
    assert timestamp <= now, "the worst case's batch time is in the past of anvil's clock"
    call = rollup.functions.postBatch(
        0, pre_root, timestamp, 0, b"\x66" * 32, encode_transactions(transactions)
    )
    record(f"postBatch ({len(transactions)} txs)", send(w3, call, sequencer))
    receipt = send(w3, game.functions.challenge(0), challenger, value=ETHER)
    record("challenge", receipt)
    game_id = game.events.GameOpened().process_receipt(receipt)[0]["args"]["gameId"]
    lo, hi = 0, len(transactions)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        record("bisect", send(w3, game.functions.bisect(game_id, pre_root), sequencer))
        record("respond (agree)", send(w3, game.functions.respond(game_id, True), challenger))
        lo = mid
    proof = transaction_proof(transactions, lo)
    receipt = send(
        w3, game.functions.proveStep(game_id, case.step.data, list(proof), witness), challenger
    )
    record(f"proveStep ({label})", receipt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flow-steps", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        accounts = list(w3.eth.accounts)
        executor = deploy_all(w3, accounts[0], parameters(accounts[1], bytes(32), 1)).executor
        emit(
            "gas_report",
            {
                "posting": posting(w3, accounts[0], accounts[1], args.flow_steps, args.batch_size),
                "one_step": one_step(w3, executor),
                "dispute": dispute(w3, executor),
            },
        )


if __name__ == "__main__":
    main()
