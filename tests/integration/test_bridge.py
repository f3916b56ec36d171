"""
The Bridge on anvil: deployment wiring, deposits and dense account ids, forced
transactions, the inbox accumulator, and withdrawals built by the Python STF, paid once
and only against final roots.
"""

from dataclasses import dataclass

import pytest
from web3 import Web3

from node.l1.deploy import bind, contract_address, deploy_all, deploy_contract, devnet_parameters
from node.protocol.eip712 import Domain, domain_separator
from node.protocol.inbox import (
    Deposit,
    ForcedTransaction,
    decode_l1_message,
    encode_l1_message,
    next_accumulator,
)
from node.protocol.state import TABLE_WITHDRAWALS
from node.protocol.step import StepKind
from tests.integration.l1_env import (
    L2_CHAIN_ID,
    TEST_PARAMETERS,
    Chain,
    System,
    deploy_system,
    error_data,
    events,
)
from tests.stf_env import USD, Exchange, Trader

U64_MAX = (1 << 64) - 1
ZERO = "0x" + "00" * 20


def invalid(parameter: str) -> str:
    """Revert data of InvalidParameter(parameter)."""
    return error_data("InvalidParameter", parameter)


# deployment --------------------------------------------------------------------------


def test_deployment_wires_every_contract(system: System) -> None:
    """Bridge, Rollup and DisputeGame point at each other, and the game at the executor."""
    d = system.deployment
    assert system.bridge.functions.rollup().call() == d.rollup
    assert system.bridge.functions.collateral().call() == d.collateral
    assert system.rollup.functions.bridge().call() == d.bridge
    assert system.rollup.functions.disputeGame().call() == d.dispute_game
    assert system.rollup.functions.sequencer().call() == system.sequencer
    assert system.rollup.functions.genesisRoot().call() == b"\x42" * 32
    assert system.rollup.functions.l2ChainId().call() == L2_CHAIN_ID
    assert system.rollup.functions.sequencerBond().call() == TEST_PARAMETERS["sequencer_bond"]
    assert system.rollup.functions.challengeWindow().call() == TEST_PARAMETERS["challenge_window"]
    delay = TEST_PARAMETERS["forced_inclusion_delay"]
    assert system.rollup.functions.forcedInclusionDelay().call() == delay
    assert system.game.functions.rollup().call() == d.rollup
    assert system.game.functions.bridge().call() == d.bridge
    assert system.game.functions.executor().call() == d.executor
    assert system.game.functions.sequencer().call() == system.sequencer
    assert system.game.functions.challengerBond().call() == TEST_PARAMETERS["challenger_bond"]
    assert system.game.functions.clockBudget().call() == TEST_PARAMETERS["clock_budget"]
    assert system.game.functions.challengeWindow().call() == TEST_PARAMETERS["challenge_window"]
    assert d.to_json() == {
        "rollup": d.rollup,
        "bridge": d.bridge,
        "dispute": d.dispute_game,
        "collateral": d.collateral,
        "executor": d.executor,
    }


def test_deploy_all_wires_the_real_executor(chain: Chain) -> None:
    """deploy_all deploys the OneStepExecutor and its step contracts, then the rollup over
    it, with a given collateral token."""
    w3, deployer = chain.w3, chain.accounts[0]
    token = deploy_contract(w3, deployer, "TestToken")
    parameters = devnet_parameters(chain.accounts[1], b"\x07" * 32, L2_CHAIN_ID)
    deployment = deploy_all(w3, deployer, parameters, collateral=token)
    assert deployment.collateral == token
    assert w3.eth.get_code(deployment.executor)
    game = bind(w3, "DisputeGame", deployment.dispute_game)
    assert game.functions.executor().call() == deployment.executor
    rollup = bind(w3, "Rollup", deployment.rollup)
    assert rollup.functions.challengeWindow().call() == parameters.challenge_window == 60
    assert rollup.functions.genesisRoot().call() == b"\x07" * 32


def test_contract_address_prediction_matches_the_chain(chain: Chain) -> None:
    """contract_address(sender, nonce) is where the node puts the contract."""
    sender = chain.accounts[0]
    nonce = chain.w3.eth.get_transaction_count(sender)
    assert deploy_contract(chain.w3, sender, "TestToken") == contract_address(sender, nonce)


def test_domain_separator_agrees_with_python(system: System) -> None:
    """Rollup and DisputeGame compute eip712.py's domain separator for (l2ChainId, rollup)."""
    domain = Domain(L2_CHAIN_ID, bytes.fromhex(system.deployment.rollup[2:]))
    assert system.deployment.domain == domain
    expected = domain_separator(domain)
    assert system.rollup.functions.domainSeparator().call() == expected
    assert system.game.functions.domainSeparator().call() == expected


def test_constructors_refuse_counterparts_that_do_not_point_back(system: System) -> None:
    """Rollup checks bridge.rollup() == this and DisputeGame rollup.disputeGame() == this, so a
    second Rollup or DisputeGame cannot attach to a deployed system; zero addresses and
    parameters are refused."""
    chain, p = system.chain, system.parameters
    rollup, bridge, game = system.rollup.address, system.bridge.address, system.game.address
    executor, token = system.executor.address, system.token.address
    rollup_args = (bridge, game, system.sequencer, b"\x00" * 32, L2_CHAIN_ID, 1, 1, 1)
    assert chain.constructor_revert("Rollup", *rollup_args) == invalid("bridge")
    game_args = (rollup, executor, p.challenger_bond, p.clock_budget)
    assert chain.constructor_revert("DisputeGame", *game_args) == invalid("rollup")
    assert chain.constructor_revert("Bridge", ZERO, rollup) == invalid("collateral")
    assert chain.constructor_revert("Bridge", token, ZERO) == invalid("rollup")


def test_rollup_and_game_constructors_check_their_parameters(chain: Chain) -> None:
    """A zero dispute game, sequencer, bond, window or delay (Rollup), or a codeless executor,
    zero bond, zero clock or one over 2^32 - 1 (DisputeGame) is refused."""
    w3, deployer = chain.w3, chain.accounts[0]
    token = deploy_contract(w3, deployer, "TestToken")
    executor = deploy_contract(w3, deployer, "AlphabetExecutor")
    nonce = w3.eth.get_transaction_count(deployer)
    bridge = deploy_contract(w3, deployer, "Bridge", token, contract_address(deployer, nonce + 1))
    rollup_at = contract_address(deployer, nonce + 1)
    game_at = contract_address(deployer, nonce + 2)
    good = [bridge, game_at, chain.accounts[1], b"\x00" * 32, 1, 1, 1, 1]
    for position, name in (
        (1, "disputeGame"),
        (2, "sequencer"),
        (5, "sequencerBond"),
        (6, "challengeWindow"),
        (7, "forcedInclusionDelay"),
    ):
        args = list(good)
        args[position] = ZERO if position in (1, 2) else 0
        assert chain.constructor_revert("Rollup", *args) == invalid(name)
    assert deploy_contract(w3, deployer, "Rollup", *good) == rollup_at
    game_cases: list[tuple[tuple[object, ...], str]] = [
        ((rollup_at, chain.accounts[3], 1, 1), "executor"),
        ((rollup_at, executor, 0, 1), "challengerBond"),
        ((rollup_at, executor, 1, 0), "clockBudget"),
        ((rollup_at, executor, 1, 1 << 32), "clockBudget"),
    ]
    for game_args, name in game_cases:
        assert chain.constructor_revert("DisputeGame", *game_args) == invalid(name)
    assert deploy_contract(w3, deployer, "DisputeGame", rollup_at, executor, 1, (1 << 32) - 1)


def test_test_token_has_six_decimals_and_anyone_mints(system: System) -> None:
    """TestToken: 6 decimals, and mint() is an open faucet."""
    user = system.users[0]
    assert system.token.functions.decimals().call() == 6
    system.send(system.token.functions.mint(user, 123 * USD), system.users[1])
    assert system.token.functions.balanceOf(user).call() == 123 * USD


# deposits ----------------------------------------------------------------------------


def test_deposits_assign_dense_ids_from_one(system: System) -> None:
    """The first deposit of each owner registers it with the next id (1, 2, 3, ...); a later
    deposit keeps the id; Deposited carries owner, id, amount and message index."""
    alice, bob, carol = system.users[:3]
    expected = [(alice, 1, 0), (bob, 2, 1), (alice, 1, 2), (carol, 3, 3)]
    for owner, account, index in expected:
        amount = (index + 1) * 1_000 * USD
        receipt = system.deposit(owner, amount)
        (deposited,) = events(system.bridge, receipt, "Deposited")
        assert deposited == {
            "owner": owner,
            "accountId": account,
            "amount": amount,
            "messageIndex": index,
        }
        registered = events(system.bridge, receipt, "AccountRegistered")
        assert registered == ([{"owner": owner, "accountId": account}] if index != 2 else [])
    assert [system.bridge.functions.accountOf(u).call() for u in (alice, bob, carol)] == [1, 2, 3]
    assert system.bridge.functions.accountOf(system.users[3]).call() == 0
    assert system.bridge.functions.ownerOf(2).call() == bob
    assert system.bridge.functions.nextAccountId().call() == 4
    assert system.bridge.functions.messageCount().call() == 4
    total = sum((i + 1) * 1_000 * USD for i in range(4))
    assert system.token.functions.balanceOf(system.bridge.address).call() == total


def test_deposit_messages_and_accumulator_match_python(system: System) -> None:
    """Each queued message is encode_l1_message(Deposit(...)); MessageQueued carries it; the
    accumulator chain and timestamps match a recomputation from the logs."""
    alice, bob = system.users[:2]
    plan = [(alice, 1, 5 * USD), (bob, 2, U64_MAX), (alice, 1, 7)]
    previous = b"\x00" * 32
    for i, (owner, account, amount) in enumerate(plan):
        receipt = system.deposit(owner, amount)
        timestamp = system.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
        owner_bytes = bytes.fromhex(owner[2:])
        message = encode_l1_message(Deposit(owner_bytes, account, amount))
        assert len(message) == 61
        (queued,) = events(system.bridge, receipt, "MessageQueued")
        previous = next_accumulator(previous, message, timestamp)
        assert queued == {
            "messageIndex": i,
            "message": message,
            "accumulator": previous,
            "timestamp": timestamp,
        }
        assert system.bridge.functions.accumulator(i).call() == previous
        assert system.bridge.functions.messageTimestamp(i).call() == timestamp
        assert system.bridge.functions.verifyMessage(i, message).call()
        assert decode_l1_message(message) == Deposit(owner_bytes, account, amount)
    assert system.messages() == [
        encode_l1_message(Deposit(bytes.fromhex(o[2:]), a, m)) for o, a, m in plan
    ]


def test_deposit_amount_must_be_a_nonzero_uint64(system: System) -> None:
    """0 and 2^64 revert InvalidAmount; 2^64 - 1 is accepted."""
    user = system.users[0]
    system.fund(user, 1 << 65)
    deposit = system.bridge.functions.deposit
    system.reverts(deposit(0), user, "InvalidAmount", 0)
    system.reverts(deposit(1 << 64), user, "InvalidAmount", 1 << 64)
    system.send(deposit(U64_MAX), user)
    assert system.bridge.functions.accountOf(user).call() == 1


def test_deposit_without_allowance_reverts(system: System) -> None:
    """The transferFrom fails without an approve, and nothing is registered or queued."""
    user = system.users[0]
    system.send(system.token.functions.mint(user, 10 * USD), user)
    system.reverts(
        system.bridge.functions.deposit(10 * USD),
        user,
        "ERC20InsufficientAllowance",
        system.bridge.address,
        0,
        10 * USD,
    )
    assert system.bridge.functions.messageCount().call() == 0
    assert system.bridge.functions.nextAccountId().call() == 1


# forced transactions -----------------------------------------------------------------


def test_force_transaction_queues_its_bytes(system: System) -> None:
    """forceTransaction queues 0x01 || tx, announced by TransactionForced and MessageQueued,
    and chains into the same accumulator as deposits."""
    user = system.users[0]
    system.deposit(user, 5 * USD)
    tx = bytes(range(1, 80))
    receipt = system.send(system.bridge.functions.forceTransaction(tx), system.users[1])
    assert events(system.bridge, receipt, "TransactionForced") == [
        {"sender": system.users[1], "messageIndex": 1}
    ]
    (queued,) = events(system.bridge, receipt, "MessageQueued")
    message = encode_l1_message(ForcedTransaction(tx))
    assert queued["message"] == message == b"\x01" + tx
    first = system.bridge.functions.accumulator(0).call()
    assert queued["accumulator"] == next_accumulator(first, message, queued["timestamp"])
    assert decode_l1_message(message) == ForcedTransaction(tx)


def test_force_transaction_length_is_1_to_256_bytes(system: System) -> None:
    """Empty and 257-byte transactions revert; 1 and 256 bytes are queued."""
    user = system.users[0]
    force = system.bridge.functions.forceTransaction
    system.reverts(force(b""), user, "InvalidTransactionLength", 0)
    system.reverts(force(b"\x07" * 257), user, "InvalidTransactionLength", 257)
    system.send(force(b"\x07"), user)
    system.send(force(b"\x07" * 256), user)
    assert system.messages() == [b"\x01\x07", b"\x01" + b"\x07" * 256]


def test_message_views_refuse_unknown_indices(system: System) -> None:
    """messageTimestamp and accumulator revert NoSuchMessage past the end; verifyMessage
    says false for an unknown index or other bytes."""
    user = system.users[0]
    system.send(system.bridge.functions.forceTransaction(b"\xaa"), user)
    system.reverts(system.bridge.functions.messageTimestamp(1), user, "NoSuchMessage", 1)
    system.reverts(system.bridge.functions.accumulator(1), user, "NoSuchMessage", 1)
    verify = system.bridge.functions.verifyMessage
    assert verify(0, b"\x01\xaa").call()
    assert not verify(0, b"\x01\xab").call()
    assert not verify(0, b"\x01\xaa\x00").call()
    assert not verify(1, b"\x01\xaa").call()


# withdrawals -------------------------------------------------------------------------


@dataclass
class Withdrawals:
    """A rollup whose batch 0 carries two deposits and two withdrawals, executed by the
    Python STF: its post root holds withdrawal records 0 and 1."""

    system: System
    exchange: Exchange
    alice: Trader
    bob: Trader
    bob_recipient: str

    def claim_args(self, withdrawal_id: int) -> tuple[int, int, str, int, list[bytes]]:
        """(withdrawalId, account, recipient, amount, siblings) proven in the exchange's
        current state."""
        record = self.exchange.withdrawal(withdrawal_id)
        assert record is not None
        proof = self.exchange.state.prove(TABLE_WITHDRAWALS.id, withdrawal_id)
        recipient = Web3.to_checksum_address(record.recipient)
        return withdrawal_id, record.account, recipient, record.amount, list(proof.siblings)


@pytest.fixture
def withdrawals(chain: Chain) -> Withdrawals:
    """Batch 0 with two deposits and two withdrawals, posted with the Python STF's root."""
    return build_withdrawals(chain)


def build_withdrawals(chain: Chain) -> Withdrawals:
    """See :class:`Withdrawals`."""
    exchange = Exchange()
    system = deploy_system(chain, genesis_root=exchange.root())
    exchange.domain = system.deployment.domain
    exchange.timestamp = chain.now()
    traders = []
    for _ in range(2):
        trader = exchange.new_trader(deposit=10_000 * USD)
        owner = chain.impersonate("0x" + trader.address.hex())
        receipt = system.deposit(owner, 10_000 * USD)
        (deposited,) = events(system.bridge, receipt, "Deposited")
        assert deposited["accountId"] == trader.id  # the bridge and the STF agree on ids
        assert exchange.steps[-1].kind == StepKind.L1_MESSAGE
        assert system.messages()[-1] == exchange.steps[-1].data  # byte for byte
        traders.append(trader)
    alice, bob = traders
    bob_recipient = system.users[4]
    assert exchange.withdraw(alice, 1_000 * USD).withdrawal_id == 0
    recipient_bytes = bytes.fromhex(bob_recipient[2:])
    assert exchange.withdraw(bob, 2_500 * USD, recipient=recipient_bytes).withdrawal_id == 1
    transactions = [step.data for step in exchange.steps[-2:]]
    system.stake()
    system.post(transactions, post_root=exchange.root(), timestamp=exchange.timestamp)
    return Withdrawals(system, exchange, alice, bob, bob_recipient)


def test_withdrawal_is_paid_once_against_a_final_root(withdrawals: Withdrawals) -> None:
    """Both records are paid to their recipients once the batch is final, by anyone; a second
    claim reverts AlreadyClaimed; WithdrawalClaimed says what was paid."""
    system = withdrawals.system
    system.finalize(0)
    claimant = system.users[3]  # anyone may submit the claim
    alice_address = Web3.to_checksum_address("0x" + withdrawals.alice.address.hex())
    for withdrawal_id, recipient, amount, account in (
        (0, alice_address, 1_000 * USD, withdrawals.alice.id),
        (1, withdrawals.bob_recipient, 2_500 * USD, withdrawals.bob.id),
    ):
        args = withdrawals.claim_args(withdrawal_id)
        assert args[1:4] == (account, recipient, amount)
        before = system.token.functions.balanceOf(recipient).call()
        assert not system.bridge.functions.isClaimed(withdrawal_id).call()
        receipt = system.send(system.bridge.functions.claimWithdrawal(0, *args), claimant)
        assert events(system.bridge, receipt, "WithdrawalClaimed") == [
            {
                "withdrawalId": withdrawal_id,
                "account": account,
                "recipient": recipient,
                "amount": amount,
                "batchIndex": 0,
            }
        ]
        assert system.token.functions.balanceOf(recipient).call() == before + amount
        assert system.bridge.functions.isClaimed(withdrawal_id).call()
        system.reverts(
            system.bridge.functions.claimWithdrawal(0, *args),
            claimant,
            "AlreadyClaimed",
            withdrawal_id,
        )
    bridge_balance = system.token.functions.balanceOf(system.bridge.address).call()
    assert bridge_balance == 20_000 * USD - 3_500 * USD
    assert system.token.functions.balanceOf(claimant).call() == 0


def test_withdrawal_is_refused_before_finality(withdrawals: Withdrawals) -> None:
    """A proof against a posted but not final root, or an unknown batch, reverts
    BatchNotFinal."""
    system = withdrawals.system
    args = withdrawals.claim_args(0)
    claim = system.bridge.functions.claimWithdrawal
    system.reverts(claim(0, *args), system.users[0], "BatchNotFinal", 0)
    system.reverts(claim(7, *args), system.users[0], "BatchNotFinal", 7)
    assert not system.bridge.functions.isClaimed(0).call()


def test_withdrawal_with_wrong_record_or_proof_is_refused(withdrawals: Withdrawals) -> None:
    """Any change to the record, the id or the siblings reverts InvalidWithdrawalProof."""
    system = withdrawals.system
    system.finalize(0)
    withdrawal_id, account, recipient, amount, siblings = withdrawals.claim_args(1)
    claim = system.bridge.functions.claimWithdrawal
    user = system.users[0]
    bad = [
        (withdrawal_id, account, recipient, amount + 1, siblings),
        (withdrawal_id, account + 1, recipient, amount, siblings),
        (withdrawal_id, account, system.users[0], amount, siblings),
        (withdrawal_id, account, recipient, amount, [*siblings[:3], b"\x01" * 32, *siblings[4:]]),
        (withdrawal_id, account, recipient, amount, siblings[:-1]),
    ]
    for args in bad:
        system.reverts(claim(0, *args), user, "InvalidWithdrawalProof", args[0])
    # the record of withdrawal 1 does not prove withdrawal 0, nor a fresh id 2
    system.reverts(claim(0, 0, *withdrawals.claim_args(1)[1:]), user, "InvalidWithdrawalProof", 0)
    system.reverts(claim(0, 2, *withdrawals.claim_args(1)[1:]), user, "InvalidWithdrawalProof", 2)
    assert not system.bridge.functions.isClaimed(1).call()


def test_a_later_final_root_cannot_pay_a_claimed_withdrawal_again(
    withdrawals: Withdrawals,
) -> None:
    """The record stays in later states; proving it against a later final batch still
    reverts AlreadyClaimed, and a record only a pending batch holds is not payable."""
    system, exchange = withdrawals.system, withdrawals.exchange
    system.finalize(0)
    claim = system.bridge.functions.claimWithdrawal
    user = system.users[0]
    system.send(claim(0, *withdrawals.claim_args(0)), user)
    # batch 1: alice withdraws again (record 2)
    exchange.timestamp = system.chain.now()
    assert exchange.withdraw(withdrawals.alice, 100 * USD).withdrawal_id == 2
    system.post([exchange.steps[-1].data], post_root=exchange.root(), timestamp=exchange.timestamp)
    system.reverts(claim(1, *withdrawals.claim_args(2)), user, "BatchNotFinal", 1)
    system.finalize(1)
    system.reverts(claim(1, *withdrawals.claim_args(0)), user, "AlreadyClaimed", 0)
    system.send(claim(1, *withdrawals.claim_args(2)), user)
    system.send(claim(1, *withdrawals.claim_args(1)), user)  # record 1 proven in batch 1
    assert [system.bridge.functions.isClaimed(i).call() for i in range(4)] == [
        True,
        True,
        True,
        False,
    ]


def test_account_ids_stop_below_2_pow_32(system: System) -> None:
    """The last id is 2^32 - 1; the next new depositor reverts AccountsExhausted (the
    counter is set near its end through anvil, after checking its storage slot)."""
    chain, bridge = system.chain, system.bridge.address
    slot = 2  # accountOf, ownerOf, then nextAccountId
    assert int(chain.w3.eth.get_storage_at(bridge, slot).hex(), 16) == 1
    chain.anvil.rpc("anvil_setStorageAt", bridge, hex(slot), "0x" + f"{(1 << 32) - 1:064x}")
    assert system.bridge.functions.nextAccountId().call() == (1 << 32) - 1
    first, second = system.users[:2]
    system.deposit(first, 1)
    assert system.bridge.functions.accountOf(first).call() == (1 << 32) - 1
    system.fund(second, 1)
    system.reverts(system.bridge.functions.deposit(1), second, "AccountsExhausted")
    system.deposit(first, 2)  # a registered owner still deposits
