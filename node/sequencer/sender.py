"""
Getting the sequencer's L1 transactions mined: local signing, explicit nonces, EIP-1559
fees, replacement of stuck transactions, and retries through L1 RPC failures.

The batch poster (``node.sequencer.poster``) is its first user; the dispute defence will
send its moves through it too. It never decides *what* to send, only how to get one
transaction, at one nonce, into a block:

- Transactions are signed here with eth-account and sent raw, so the L1 node never holds
  the key. Signing is deterministic (RFC 6979): the same nonce, fees, gas and data give
  the same transaction and hash, so a caller that persisted them can re-broadcast exactly
  what it sent before a crash.
- :meth:`L1Sender.transact` follows one nonce until it is used. A version unmined after
  ``receipt_timeout`` is replaced at the same nonce with both fees raised by at least
  12.5 % (:func:`bump_fees`), so at most one version can ever land; the caller persists
  each version's hash before it is sent. It returns the receipt of whichever version was
  mined, or None once the nonce went to some other transaction.
- Every RPC call is retried, with capped exponential backoff, for as long as it fails
  transiently (``node.l1.errors.is_transient``): the sender waits out an L1 outage rather
  than giving up on a transaction. Anything else is raised to the caller.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from eth_account.datastructures import SignedTransaction
from eth_account.signers.local import LocalAccount
from eth_account.types import TransactionDictType
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import TxParams, TxReceipt

from node.l1.errors import RevertReason, decode_revert, is_transient, revert_data, rpc_error_message

logger = logging.getLogger(__name__)

T = TypeVar("T")

FEE_BUMP: Final = (9, 8)
"""A replacement pays at least 9/8 (+12.5 %) of the replaced fee cap and priority fee:
above geth's 10 % price bump, so every common client accepts it."""

GAS_MARGIN: Final = (5, 4)
"""Gas limit = estimate x 5/4: the estimate runs against the latest block, the
transaction in a later one."""

ALREADY_SENT: Final = ("already known", "already imported", "known transaction")
"""Node messages for a transaction already in its pool (a re-broadcast)."""

NONCE_USED: Final = ("nonce too low", "nonce has already been used")
"""Node messages for a nonce already mined: the wait finds out by what."""

UNDERPRICED: Final = ("underpriced", "fee too low", "less than block base fee")
"""Node messages for fees too low to enter the pool (or to replace what is there)."""


@dataclass(frozen=True)
class Fees:
    """EIP-1559 fees of one transaction (wei per gas)."""

    max_fee: int
    """``maxFeePerGas``."""

    priority_fee: int
    """``maxPriorityFeePerGas``."""


def bump_fees(old: Fees, market: Fees, cap: int | None = None) -> Fees | None:
    """Fees for a replacement of a transaction sent with ``old``: at least :data:`FEE_BUMP`
    times each old fee (and one wei more), and at least the market's. None if the fee cap
    would pass ``cap``."""
    num, den = FEE_BUMP

    def bump(fee: int) -> int:
        return max(-(-fee * num // den), fee + 1)

    fees = Fees(
        max(bump(old.max_fee), market.max_fee),
        max(bump(old.priority_fee), market.priority_fee),
    )
    if cap is not None and fees.max_fee > cap:
        return None
    return fees


def gas_limit(estimate: int) -> int:
    """The gas limit sent for a gas ``estimate`` (:data:`GAS_MARGIN`)."""
    num, den = GAS_MARGIN
    return estimate * num // den


@dataclass(frozen=True)
class SenderConfig:
    """How patient the sender is. The defaults suit a 12-second L1."""

    receipt_timeout: float = 60.0
    """Seconds a transaction may stay unmined before it is replaced with higher fees."""

    poll_interval: float = 1.0
    """Seconds between polls of the account's mined nonce while a transaction is pending."""

    backoff_initial: float = 0.5
    """First wait (s) after a failed L1 RPC call; doubled after each further failure."""

    backoff_max: float = 30.0
    """Longest wait (s) between retries of a failing L1 RPC call."""

    max_fee_cap: int | None = None
    """``maxFeePerGas`` (wei) never exceeded; a replacement that would pass it is not sent
    (the transaction waits for the base fee to fall). None: no cap."""


class L1Metrics:
    """Prometheus counters of the sequencer's L1 transactions, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.gas_spent = Counter(
            "ratchet_l1_gas_spent",
            "L1 gas used by the sequencer's mined transactions, by contract function",
            ["function"],
            registry=registry,
        )
        self.rpc_errors = Counter(
            "ratchet_l1_rpc_errors",
            "L1 JSON-RPC calls that failed transiently and were retried",
            registry=registry,
        )
        self.replacements = Counter(
            "ratchet_l1_tx_replacements",
            "L1 transactions replaced with higher fees after the receipt timeout",
            registry=registry,
        )


Persist = Callable[[Fees, tuple[bytes, ...]], Awaitable[None]]
"""Called with the fees and every hash so far before a new version is sent."""


class L1Sender:
    """Transactions from ``account`` to the contract at ``to``, through ``w3`` (synchronous,
    called from worker threads)."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        to: ChecksumAddress,
        config: SenderConfig,
        metrics: L1Metrics,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.to = to
        self.config = config
        self.metrics = metrics
        self._chain_id: int | None = None

    async def call(self, what: str, call: Callable[[], T]) -> T:
        """``call()`` in a worker thread, retried with capped exponential backoff for as
        long as it fails transiently; any other exception is raised."""
        delay = self.config.backoff_initial
        failures = 0
        while True:
            try:
                return await asyncio.to_thread(call)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                self.metrics.rpc_errors.inc()
                logger.warning(
                    "L1 call %s failed (%s), retry %d in %.2fs",
                    what,
                    exc.__class__.__name__,
                    failures,
                    delay,
                    extra={"l1_call": what, "failures": failures},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.backoff_max)

    async def market_fees(self) -> Fees:
        """Fees that get a transaction into the next blocks: twice the latest base fee plus
        the node's suggested priority fee (capped by ``max_fee_cap``)."""

        def fetch() -> Fees:
            base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
            tip = int(self.w3.eth.max_priority_fee)
            return Fees(2 * base + tip, tip)

        fees = await self.call("fees", fetch)
        cap = self.config.max_fee_cap
        if cap is not None and fees.max_fee > cap:
            fees = Fees(cap, min(fees.priority_fee, cap))
        return fees

    async def mined_nonce(self) -> int:
        """The account's nonce in the latest block: its next transaction's, once every one
        before has been mined."""
        address = self.account.address
        return await self.call(
            "nonce", lambda: int(self.w3.eth.get_transaction_count(address, "latest"))
        )

    async def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        """The receipt of ``tx_hash``, None while it is not mined."""

        def fetch() -> TxReceipt | None:
            try:
                return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                return None

        return await self.call("receipt", fetch)

    def _params(self, data: bytes) -> TxParams:
        return {"from": self.account.address, "to": self.to, "data": data}

    async def estimate(self, data: bytes) -> int | RevertReason:
        """Gas to send ``data`` now, or the reason it would revert."""

        def estimate() -> int | RevertReason:
            try:
                return int(self.w3.eth.estimate_gas(self._params(data)))
            except Exception as exc:
                raw = revert_data(exc)
                if raw is None:
                    raise
                return decode_revert(raw)

        return await self.call("estimate_gas", estimate)

    async def replay(self, data: bytes, receipt: TxReceipt) -> RevertReason:
        """Why the reverted transaction of ``receipt`` (calldata ``data``) reverted, by
        calling it again on the state its block left (``NotReproducible()`` if it no
        longer reverts there)."""

        def replay() -> RevertReason:
            try:
                self.w3.eth.call(self._params(data), block_identifier=receipt["blockNumber"])
            except Exception as exc:
                raw = revert_data(exc)
                if raw is None:
                    raise
                return decode_revert(raw)
            return RevertReason("NotReproducible", ())

        return await self.call("replay", replay)

    async def sign(self, data: bytes, gas: int, nonce: int, fees: Fees) -> SignedTransaction:
        """The EIP-1559 transaction sending ``data`` with ``gas``, ``nonce`` and ``fees``."""
        if self._chain_id is None:
            self._chain_id = await self.call("chain id", lambda: int(self.w3.eth.chain_id))
        transaction: TransactionDictType = {
            "type": 2,
            "chainId": self._chain_id,
            "nonce": nonce,
            "to": self.to,
            "value": 0,
            "data": data,
            "gas": gas,
            "maxFeePerGas": fees.max_fee,
            "maxPriorityFeePerGas": fees.priority_fee,
        }
        # hashing and RLP-encoding a batch's calldata: in a thread, off the sequencer's loop
        return await asyncio.to_thread(self.account.sign_transaction, transaction)

    async def broadcast(self, signed: SignedTransaction) -> bool:
        """Send ``signed``: True once the node has it or its nonce is already mined, False if
        the node refuses it as underpriced. Other refusals (insufficient funds, ...) raise."""
        raw = bytes(signed.raw_transaction)
        try:
            await self.call("send", lambda: self.w3.eth.send_raw_transaction(raw))
        except Exception as exc:
            message = rpc_error_message(exc)
            if any(s in message for s in (*ALREADY_SENT, *NONCE_USED)):
                return True
            if any(s in message for s in UNDERPRICED):
                return False
            raise
        return True

    async def transact(
        self,
        label: str,
        data: bytes,
        gas: int,
        nonce: int,
        fees: Fees,
        attempts: tuple[bytes, ...] = (),
        persist: Persist | None = None,
    ) -> TxReceipt | None:
        """
        Get ``data`` mined at ``nonce``: (re)broadcast it with ``fees``, and replace it with
        :func:`bump_fees` whenever it stays unmined for ``receipt_timeout`` (or the node
        refuses it as underpriced). ``attempts`` are hashes of versions sent earlier (before
        a restart) with this nonce; ``persist`` sees every new version before it is sent.
        ``label`` names the contract function in logs and the gas metric.

        Returns the receipt of whichever version was mined (successful or reverted), or
        None once the nonce is used by a transaction that is none of them.
        """
        loop = asyncio.get_running_loop()
        signed = await self.sign(data, gas, nonce, fees)
        if bytes(signed.hash) not in attempts:
            attempts = (*attempts, bytes(signed.hash))
            if persist is not None:
                await persist(fees, attempts)
        accepted = True
        if await self.mined_nonce() <= nonce:
            accepted = await self.broadcast(signed)
        deadline = loop.time() + self.config.receipt_timeout
        while True:
            if await self.mined_nonce() > nonce:
                for tx_hash in reversed(attempts):
                    receipt = await self.receipt(tx_hash)
                    if receipt is not None:
                        self.metrics.gas_spent.labels(label).inc(receipt["gasUsed"])
                        return receipt
                return None
            if accepted and loop.time() < deadline:
                await asyncio.sleep(self.config.poll_interval)
                continue
            bumped = bump_fees(fees, await self.market_fees(), self.config.max_fee_cap)
            if bumped is None:
                logger.warning(
                    "%s at nonce %d is unmined; replacing it would pass the fee cap",
                    label,
                    nonce,
                    extra={"nonce": nonce, "max_fee": fees.max_fee},
                )
                await self.broadcast(signed)
                accepted = True  # nothing more to try: wait another round
            else:
                fees = bumped
                signed = await self.sign(data, gas, nonce, fees)
                attempts = (*attempts, bytes(signed.hash))
                if persist is not None:
                    await persist(fees, attempts)
                self.metrics.replacements.inc()
                logger.info(
                    "%s at nonce %d replaced: max fee %d, priority fee %d",
                    label,
                    nonce,
                    fees.max_fee,
                    fees.priority_fee,
                    extra={"nonce": nonce, "tx": "0x" + bytes(signed.hash).hex()},
                )
                accepted = await self.broadcast(signed)
                if not accepted:  # let the market move before raising again
                    await asyncio.sleep(self.config.poll_interval)
            deadline = loop.time() + self.config.receipt_timeout
