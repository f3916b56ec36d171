"""
The trader's L1 side: deposit collateral through the Bridge, and claim a final
withdrawal (docs/l1.md, "Bridge").

These are blocking web3 calls (from asyncio, run them with ``asyncio.to_thread``).
Each signs with the trader's key and waits for the transaction to be mined. Amounts
are in tokens (``Decimal``, ``str`` or ``int``), converted exactly with the
collateral token's ``decimals()``. Failures raise :class:`~node.sdk.errors.L1Error`
saying why: not enough tokens, not enough ETH for gas, or the revert reason of a
Ratchet contract decoded from the committed ABIs (``BatchNotFinal(batchIndex=7)``,
``AlreadyClaimed(withdrawalId=3)``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from eth_account import Account
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, Web3Exception
from web3.logs import DISCARD
from web3.types import TxParams, TxReceipt

from node.l1.deploy import bind
from node.l1.errors import decode_revert, revert_data, rpc_error_message

from .errors import InvalidArgumentError, L1Error
from .parsing import parse_key
from .units import Collateral, DecimalLike, plain

RECEIPT_TIMEOUT = 120.0
"""Seconds to wait for an L1 transaction to be mined."""

T = TypeVar("T")


@dataclass(frozen=True)
class Deposited:
    """A deposit that went through on L1."""

    account: int
    """The L2 account id the Bridge credits (assigned at the owner's first deposit)."""

    owner: str
    """The depositing address (its key signs the account's L2 transactions)."""

    amount: int
    """Base units deposited."""

    message_index: int
    """The inbox position: credited on L2 once ``ratchet_getStatus.inboxConsumed``
    exceeds it."""

    tx_hash: str
    """The L1 transaction of the deposit."""


@dataclass(frozen=True)
class Claimed:
    """A withdrawal paid on L1."""

    withdrawal_id: int
    """The withdrawal id."""

    recipient: str
    """Who got the tokens."""

    amount: int
    """Base units paid."""

    batch: int
    """The final batch whose root proved it."""

    tx_hash: str
    """The L1 transaction of the claim."""


def web3_of(l1: Web3 | str) -> Web3:
    """A web3 client: ``l1`` itself, or an HTTP provider for the URL ``l1``."""
    if isinstance(l1, Web3):
        return l1
    return Web3(Web3.HTTPProvider(l1, request_kwargs={"timeout": 30}))


def collateral_token(l1: Web3 | str, bridge: str) -> Contract:
    """The Bridge's collateral token (``bridge.collateral()``)."""
    w3 = web3_of(l1)
    address = _l1(lambda: bind(w3, "Bridge", bridge).functions.collateral().call(), "read")
    return bind(w3, "TestToken", str(address))  # the ERC-20 part of its ABI


def collateral_units(token: Contract) -> Collateral:
    """The token's units (its ``decimals()``)."""
    return Collateral(int(_l1(lambda: token.functions.decimals().call(), "read decimals")))


def collateral_balance(l1: Web3 | str, bridge: str, owner: str) -> Decimal:
    """``owner``'s collateral tokens on L1."""
    token = collateral_token(l1, bridge)
    owner = Web3.to_checksum_address(owner)
    base = int(_l1(lambda: token.functions.balanceOf(owner).call(), "read the balance"))
    return collateral_units(token).from_wire(base)


def deposit(l1: Web3 | str, key: bytes | str, bridge: str, amount: DecimalLike) -> Deposited:
    """Deposit ``amount`` tokens from the key's address: ``approve`` the Bridge (unless
    the allowance already covers it), then ``Bridge.deposit``, each waited for. The
    account id comes from the ``Deposited`` event."""
    w3 = web3_of(l1)
    secret = parse_key(key)
    owner = Account.from_key(secret).address
    token = collateral_token(w3, bridge)
    units = collateral_units(token)
    wire = units.to_wire(amount)
    balance = int(_l1(lambda: token.functions.balanceOf(owner).call(), "read the balance"))
    if balance < wire:
        raise L1Error(
            f"{owner} holds {plain(units.from_wire(balance))} collateral tokens, "
            f"not the {plain(units.from_wire(wire))} to deposit"
        )
    bridge_address = Web3.to_checksum_address(bridge)
    allowance = int(
        _l1(lambda: token.functions.allowance(owner, bridge_address).call(), "read allowance")
    )
    if allowance < wire:
        _transact(w3, secret, token.functions.approve(bridge_address, wire), "approve")
    contract = bind(w3, "Bridge", bridge)
    receipt = _transact(w3, secret, contract.functions.deposit(wire), "deposit")
    events = contract.events.Deposited().process_receipt(receipt, errors=DISCARD)
    if not events:
        raise L1Error(f"the deposit {receipt['transactionHash'].hex()} emitted no Deposited")
    args = events[0]["args"]
    return Deposited(
        account=int(args["accountId"]),
        owner=owner,
        amount=int(args["amount"]),
        message_index=int(args["messageIndex"]),
        tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
    )


def claim(l1: Web3 | str, key: bytes | str, proof: dict[str, Any]) -> Claimed:
    """Send the claim of a final withdrawal from the key's address (anyone may send
    it; the tokens go to the withdrawal's recipient). ``proof``: the result of
    ``ratchet_getWithdrawalProof`` (or its ``l1Call`` ``{to, data}``)."""
    w3 = web3_of(l1)
    secret = parse_key(key)
    call = proof.get("l1Call", proof)
    if not isinstance(call, dict) or "to" not in call or "data" not in call:
        raise InvalidArgumentError(
            "proof must be a ratchet_getWithdrawalProof result or its l1Call"
        )
    sender = Account.from_key(secret).address
    to = Web3.to_checksum_address(call["to"])
    tx: TxParams = {"from": sender, "to": to, "data": call["data"]}
    receipt = _send(w3, secret, tx, "claim")
    bridge = bind(w3, "Bridge", to)
    events = bridge.events.WithdrawalClaimed().process_receipt(receipt, errors=DISCARD)
    if not events:
        raise L1Error("the claim emitted no WithdrawalClaimed")
    args = events[0]["args"]
    return Claimed(
        withdrawal_id=int(args["withdrawalId"]),
        recipient=str(args["recipient"]),
        amount=int(args["amount"]),
        batch=int(args["batchIndex"]),
        tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
    )


def _l1(read: Callable[[], T], what: str) -> T:
    """Run one L1 read; :class:`L1Error` if the node cannot be reached or it reverts."""
    try:
        return read()
    except ContractLogicError as exc:
        raise L1Error(f"{what}: reverted {decode_revert(revert_data(exc) or b'')}") from exc
    except (Web3Exception, OSError, ValueError) as exc:
        raise L1Error(f"{what}: {rpc_error_message(exc)}") from exc


def _transact(w3: Web3, key: bytes, function: ContractFunction, what: str) -> TxReceipt:
    sender = Account.from_key(key).address
    tx = _l1(lambda: function.build_transaction({"from": sender}), what)
    return _send(w3, key, tx, what)


def _send(w3: Web3, key: bytes, tx: TxParams, what: str) -> TxReceipt:
    """Fill in gas and nonce, sign, send, wait; :class:`L1Error` on any failure."""
    sender = Account.from_key(key).address
    filled: dict[str, Any] = dict(tx)
    filled.setdefault("chainId", _l1(lambda: w3.eth.chain_id, what))
    filled["nonce"] = _l1(lambda: w3.eth.get_transaction_count(sender, "pending"), what)
    if "gas" not in filled:
        filled["gas"] = _l1(lambda: w3.eth.estimate_gas(filled), f"{what} would fail")  # type: ignore[arg-type]
    if "maxFeePerGas" not in filled and "gasPrice" not in filled:
        filled["gasPrice"] = _l1(lambda: w3.eth.gas_price, what)
    signed = Account.sign_transaction(filled, key)
    tx_hash = _l1(lambda: w3.eth.send_raw_transaction(signed.raw_transaction), what)
    receipt = _l1(lambda: w3.eth.wait_for_transaction_receipt(tx_hash, RECEIPT_TIMEOUT), what)
    if receipt["status"] != 1:
        raise L1Error(f"{what} reverted in L1 transaction 0x{bytes(tx_hash).hex()}")
    return receipt
