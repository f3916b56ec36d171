"""
A Ratchet rollup on its own anvil for the L1 contract tests: deployment, time control,
exact revert checks, the inbox accumulator recomputed in Python, and the "alphabet"
trace that the toy executor (contracts/test/AlphabetExecutor.sol) computes.

Every helper is a client of the contracts; none holds rules of its own except the
alphabet step, which is the toy executor's definition written twice on purpose.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD
from web3.types import TxParams, TxReceipt, Wei

from node.l1.anvil import Anvil
from node.l1.artifacts import load_artifact
from node.l1.deploy import Deployment, RollupParameters, bind, deploy_contract, deploy_rollup
from node.protocol.batch import encode_transactions, transaction_proof
from node.protocol.crypto import keccak256

ETHER = 10**18
"""Wei per ether."""

GAS = 15_000_000
"""Gas limit of every test transaction: explicit, so web3 never estimates (an estimate runs
in another block context than the one a timed transaction lands in)."""

TEST_PARAMETERS = {
    "sequencer_bond": 2 * ETHER,
    "challenger_bond": ETHER // 4,
    "challenge_window": 1_000,
    "clock_budget": 300,
    "forced_inclusion_delay": 600,
}
"""Bonds and timings of the test deployments (distinct values, so a test that mixes two of
them up fails)."""

L2_CHAIN_ID = 901_337
"""The L2 chain id of the test deployments."""

CONTRACTS = ("TestToken", "Bridge", "Rollup", "DisputeGame", "AlphabetExecutor", "BatchHarness")
"""Artifacts whose custom errors the tests decode."""


@cache
def error_signatures() -> dict[str, str]:
    """Every custom error of the tested contracts by name: its canonical signature."""
    signatures: dict[str, str] = {}
    for name in CONTRACTS:
        for entry in load_artifact(name)["abi"]:
            if entry["type"] != "error":
                continue
            types = ",".join(i["type"] for i in entry["inputs"])
            signature = f"{entry['name']}({types})"
            assert signatures.setdefault(entry["name"], signature) == signature, signature
    return signatures


def error_data(name: str, *args: object) -> str:
    """The 0x-hex revert data of custom error ``name`` with ``args``."""
    signature = error_signatures()[name]
    types = signature[signature.index("(") + 1 : -1]
    encoded = abi_encode(types.split(","), list(args)) if types else b""
    return "0x" + (keccak256(signature.encode())[:4] + encoded).hex()


def tx_params(sender: str, value: int = 0) -> TxParams:
    """Transaction parameters with an explicit gas limit (see GAS)."""
    return {"from": Web3.to_checksum_address(sender), "value": Wei(value), "gas": GAS}


class Chain:
    """A web3 client of one anvil, with explicit control of block time."""

    def __init__(self, anvil: Anvil) -> None:
        self.anvil = anvil
        self.w3 = Web3(Web3.HTTPProvider(anvil.url))
        self.accounts: list[ChecksumAddress] = list(self.w3.eth.accounts)

    def now(self) -> int:
        """Timestamp of the latest block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def at(self, timestamp: int) -> None:
        """Make the next block carry ``timestamp``."""
        self.anvil.rpc("evm_setNextBlockTimestamp", timestamp)

    def mine(self, timestamp: int) -> None:
        """Mine an empty block at ``timestamp``."""
        self.anvil.rpc("evm_mine", timestamp)

    def impersonate(self, address: str, balance: int = 100 * ETHER) -> str:
        """Let the tests send from ``address`` (e.g. a trader key's address); fund it."""
        address = Web3.to_checksum_address(address)
        self.anvil.rpc("anvil_impersonateAccount", address)
        self.anvil.rpc("anvil_setBalance", address, hex(balance))
        return address

    def balance(self, address: str) -> int:
        """ETH balance (wei)."""
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def send(
        self, fn: ContractFunction, sender: str, *, value: int = 0, at: int | None = None
    ) -> TxReceipt:
        """Send ``fn`` from ``sender`` (at block time ``at`` if given); the receipt of a
        successful transaction (a failure raises with its revert data)."""
        if at is not None:
            self.at(at)
        receipt = self._transact(fn, sender, value)
        if receipt["status"] != 1:
            raise AssertionError(
                f"transaction failed: {self.revert_data(fn, sender, value, receipt)}"
            )
        return receipt

    def reverts(
        self,
        fn: ContractFunction,
        sender: str,
        error: str,
        *args: object,
        value: int = 0,
        at: int | None = None,
    ) -> None:
        """Assert that ``fn`` from ``sender`` reverts with exactly custom error ``error(args)``.
        With ``at``, the transaction is really sent and mined at that block time (and its
        revert data read by replaying it in that block)."""
        expected = error_data(error, *args)
        if at is None:
            actual = self.revert_data(fn, sender, value, None)
        else:
            self.at(at)
            receipt = self._transact(fn, sender, value)
            assert receipt["status"] == 0, "the transaction succeeded"
            assert int(self.w3.eth.get_block(receipt["blockNumber"])["timestamp"]) == at
            actual = self.revert_data(fn, sender, value, receipt)
        assert actual == expected, f"reverted with {actual}, expected {error}{args}"

    def revert_data(
        self, fn: ContractFunction, sender: str, value: int, receipt: TxReceipt | None
    ) -> str:
        """The revert data of calling ``fn`` now, or in the block of a failed ``receipt``."""
        block: Any = "latest" if receipt is None else receipt["blockNumber"]
        try:
            fn.call(tx_params(sender, value), block_identifier=block)
        except ContractCustomError as exc:
            return str(exc.data)
        raise AssertionError("the call did not revert with a custom error")

    def constructor_revert(self, name: str, *args: object) -> str:
        """The revert data of deploying contract ``name`` with ``args`` (from account 0)."""
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        try:
            data = factory.constructor(*args).data_in_transaction
            self.w3.eth.call({"from": self.accounts[0], "gas": GAS, "data": data})
        except ContractCustomError as exc:
            return str(exc.data)
        raise AssertionError(f"deploying {name} did not revert with a custom error")

    def cost(self, receipt: TxReceipt) -> int:
        """Wei the sender paid for gas."""
        return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])

    def _transact(self, fn: ContractFunction, sender: str, value: int) -> TxReceipt:
        tx_hash = fn.transact(tx_params(sender, value))
        return self.w3.eth.wait_for_transaction_receipt(tx_hash)


def events(contract: Contract, receipt: TxReceipt, name: str) -> list[dict[str, Any]]:
    """The ``name`` events ``contract`` emitted in ``receipt``, as dicts of their arguments."""
    logs = contract.events[name]().process_receipt(receipt, errors=DISCARD)
    return [dict(log["args"]) for log in logs]


@dataclass
class System:
    """A deployed rollup with the alphabet executor, and who plays which role."""

    chain: Chain
    deployment: Deployment
    parameters: RollupParameters
    token: Contract
    bridge: Contract
    rollup: Contract
    game: Contract
    executor: Contract
    deployer: str
    sequencer: str
    challengers: list[ChecksumAddress]
    users: list[ChecksumAddress]
    domain_separator: bytes = field(default=b"")

    @property
    def w3(self) -> Web3:
        return self.chain.w3

    def send(self, fn: ContractFunction, sender: str, **kw: Any) -> TxReceipt:
        return self.chain.send(fn, sender, **kw)

    def reverts(
        self, fn: ContractFunction, sender: str, error: str, *args: object, **kw: Any
    ) -> None:
        self.chain.reverts(fn, sender, error, *args, **kw)

    # the sequencer -------------------------------------------------------------------

    def stake(self, amount: int | None = None) -> TxReceipt:
        """Stake the sequencer bond (or ``amount``)."""
        value = self.parameters.sequencer_bond if amount is None else amount
        return self.send(self.rollup.functions.stake(), self.sequencer, value=value)

    def post(
        self,
        transactions: Sequence[bytes] = (b"\x01",),
        *,
        post_root: bytes | None = None,
        inbox_end: int | None = None,
        timestamp: int | None = None,
        at: int | None = None,
    ) -> TxReceipt:
        """Post the next batch from the sequencer (every inbox message, the block time and a
        made-up post root unless given)."""
        if timestamp is None:
            timestamp = self.chain.now() if at is None else at
        fn = self.post_batch(
            transactions, post_root=post_root, inbox_end=inbox_end, timestamp=timestamp
        )
        return self.send(fn, self.sequencer, at=at)

    def post_batch(
        self,
        transactions: Sequence[bytes] = (b"\x01",),
        *,
        index: int | None = None,
        parent_root: bytes | None = None,
        post_root: bytes | None = None,
        inbox_end: int | None = None,
        timestamp: int | None = None,
    ) -> ContractFunction:
        """The postBatch call for the next batch; every field can be overridden."""
        next_index = self.rollup.functions.nextIndex().call()
        index = next_index if index is None else index
        if parent_root is None:
            parent_root = bytes(self.rollup.functions.parentRootOf(next_index).call())
        if inbox_end is None:
            inbox_end = self.bridge.functions.messageCount().call()
        if timestamp is None:
            timestamp = self.chain.now()
        if post_root is None:
            post_root = keccak256(b"post root" + parent_root)
        return self.rollup.functions.postBatch(
            index, parent_root, timestamp, inbox_end, post_root, encode_transactions(transactions)
        )

    def batch(self, index: int) -> dict[str, Any]:
        """Posted batch ``index`` as a dict of its fields."""
        names = [c["name"] for c in _struct_components("Rollup", "batch")]
        return dict(zip(names, self.rollup.functions.batch(index).call(), strict=True))

    def window_end(self, index: int) -> int:
        """First second at which batch ``index`` can no longer be challenged."""
        return int(self.batch(index)["postedAt"]) + self.parameters.challenge_window

    def finalize(self, index: int) -> TxReceipt:
        """Finalize up to batch ``index`` as soon as its window allows (from a user)."""
        at = max(self.window_end(index), self.chain.now() + 1)
        return self.send(self.rollup.functions.finalize(index), self.users[-1], at=at)

    # users ---------------------------------------------------------------------------

    def fund(self, user: str, amount: int) -> None:
        """Mint ``amount`` collateral to ``user`` and approve the bridge for it."""
        self.send(self.token.functions.mint(user, amount), user)
        self.send(self.token.functions.approve(self.bridge.address, amount), user)

    def deposit(self, user: str, amount: int) -> TxReceipt:
        """Fund and deposit."""
        self.fund(user, amount)
        return self.send(self.bridge.functions.deposit(amount), user)

    def messages(self) -> list[bytes]:
        """Every inbox message, rebuilt from the MessageQueued logs alone."""
        logs = self.bridge.events.MessageQueued().get_logs(from_block=self.deployment.start_block)
        ordered = sorted(logs, key=lambda log: log["args"]["messageIndex"])
        assert [log["args"]["messageIndex"] for log in ordered] == list(range(len(ordered)))
        return [bytes(log["args"]["message"]) for log in ordered]

    # games ---------------------------------------------------------------------------

    def challenge(self, challenger: str, index: int, **kw: Any) -> int:
        """Open a game with the exact bond; its id."""
        receipt = self.send(
            self.game.functions.challenge(index),
            challenger,
            value=self.parameters.challenger_bond,
            **kw,
        )
        (opened,) = events(self.game, receipt, "GameOpened")
        return int(opened["gameId"])

    def state(self, game_id: int) -> dict[str, Any]:
        """Game ``game_id`` as a dict of its fields."""
        names = [c["name"] for c in _struct_components("DisputeGame", "game")]
        return dict(zip(names, self.game.functions.game(game_id).call(), strict=True))


@cache
def _struct_components(contract: str, function: str) -> list[dict[str, Any]]:
    abi = load_artifact(contract)["abi"]
    (entry,) = [e for e in abi if e.get("name") == function and e["type"] == "function"]
    components: list[dict[str, Any]] = entry["outputs"][0]["components"]
    return components


def deploy_system(chain: Chain, genesis_root: bytes = b"\x42" * 32, **overrides: int) -> System:
    """A fresh TestToken, Bridge, Rollup and DisputeGame on ``chain`` with the alphabet
    executor. Accounts: 0 deploys, 1 sequences, 2-4 challenge, 5-9 use the bridge."""
    w3, accounts = chain.w3, chain.accounts
    executor = deploy_contract(w3, accounts[0], "AlphabetExecutor")
    parameters = RollupParameters(
        sequencer=accounts[1],
        genesis_root=genesis_root,
        l2_chain_id=L2_CHAIN_ID,
        **{**TEST_PARAMETERS, **overrides},
    )
    deployment = deploy_rollup(w3, accounts[0], parameters, executor)
    system = System(
        chain=chain,
        deployment=deployment,
        parameters=parameters,
        token=bind(w3, "TestToken", deployment.collateral),
        bridge=bind(w3, "Bridge", deployment.bridge),
        rollup=bind(w3, "Rollup", deployment.rollup),
        game=bind(w3, "DisputeGame", deployment.dispute_game),
        executor=bind(w3, "AlphabetExecutor", executor),
        deployer=accounts[0],
        sequencer=accounts[1],
        challengers=list(accounts[2:5]),
        users=list(accounts[5:10]),
    )
    system.domain_separator = bytes(system.rollup.functions.domainSeparator().call())
    return system


# the alphabet trace ------------------------------------------------------------------

L1_MESSAGE = 0
TRANSACTION = 1


@dataclass(frozen=True)
class Step:
    """One step of a batch's trace: its kind and input bytes."""

    kind: int
    data: bytes


def alphabet_step(
    pre: bytes, kind: int, data: bytes, timestamp: int, domain_separator: bytes
) -> tuple[bytes, int]:
    """What AlphabetExecutor.execute returns: (post root, reason)."""
    if not data:
        return pre, 1
    post = keccak256(
        pre
        + kind.to_bytes(32, "big")
        + keccak256(data)
        + timestamp.to_bytes(32, "big")
        + domain_separator
    )
    return post, 0


def alphabet_trace(
    parent: bytes, steps: Sequence[Step], timestamp: int, domain_separator: bytes
) -> list[bytes]:
    """Roots at positions 0 .. len(steps): position k is the root after k steps."""
    roots = [parent]
    for step in steps:
        roots.append(alphabet_step(roots[-1], step.kind, step.data, timestamp, domain_separator)[0])
    return roots


def lie_from(trace: Sequence[bytes], position: int) -> list[bytes]:
    """A trace that is honest before ``position`` and wrong from it on."""
    return [root if k < position else keccak256(b"lie" + root) for k, root in enumerate(trace)]


@dataclass
class Play:
    """A game to play out: the batch's steps and the two parties' strategies."""

    steps: list[Step]
    """The batch's trace inputs, inbox messages first."""

    inbox_count: int
    """How many of them are inbox messages."""

    defender_trace: list[bytes]
    """The roots the defender claims at every position."""

    honest_trace: list[bytes]
    """The true roots."""

    challenger: str
    """Who challenges."""

    strategy: str = "honest"
    """The challenger's answers: "honest" (agree exactly with true mid roots), "random",
    "agree" or "disagree"."""

    rng: random.Random = field(default_factory=lambda: random.Random(0))
    """Randomness of the "random" strategy."""

    def agree(self, mid: int, mid_root: bytes) -> bool:
        """The challenger's answer to ``mid_root`` at position ``mid``."""
        if self.strategy == "honest":
            return mid_root == self.honest_trace[mid]
        if self.strategy == "random":
            return self.rng.random() < 0.5
        return self.strategy == "agree"

    def step_input(self, position: int) -> tuple[bytes, list[bytes]]:
        """Step ``position``'s data and transaction proof."""
        step = self.steps[position]
        if position < self.inbox_count:
            return step.data, []
        transactions = [s.data for s in self.steps[self.inbox_count :]]
        proof = transaction_proof(transactions, position - self.inbox_count)
        return step.data, list(proof)


def play_to_one_step(system: System, game_id: int, play: Play) -> list[TxReceipt]:
    """Bisect (defender) and respond (challenger) until one step remains; the receipts."""
    receipts: list[TxReceipt] = []
    while True:
        state = system.state(game_id)
        lo, hi = state["lo"], state["hi"]
        if hi - lo == 1:
            return receipts
        mid = (lo + hi) // 2
        mid_root = play.defender_trace[mid]
        receipts.append(
            system.send(system.game.functions.bisect(game_id, mid_root), system.sequencer)
        )
        agree = play.agree(mid, mid_root)
        receipts.append(system.send(system.game.functions.respond(game_id, agree), play.challenger))


def prove(system: System, game_id: int, play: Play, caller: str) -> TxReceipt:
    """Submit the one-step proof of the game's remaining step."""
    state = system.state(game_id)
    lo = state["lo"]
    data, proof = play.step_input(lo)
    lo_root, _, _ = system.game.functions.roots(game_id).call()
    fn = system.game.functions.proveStep(game_id, data, proof, bytes(lo_root))
    return system.send(fn, caller)
