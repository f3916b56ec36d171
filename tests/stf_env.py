"""
A small exchange to drive the STF with: genesis, keys, signing and step helpers.

Every STF test, the scenario-vector generator and the STF benchmark build on
:class:`Exchange`. It is a *client* of the pure core, with real signatures and
a real Merkle state; it holds no rules of its own.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from node.protocol.crypto import address_of, keccak256, sign_digest
from node.protocol.eip712 import Domain
from node.protocol.genesis import Genesis, MarketSpec, genesis_state
from node.protocol.inbox import Deposit, ForcedTransaction, encode_l1_message
from node.protocol.records import (
    Account,
    Level,
    Market,
    RestingOrder,
    WithdrawalRecord,
    decode_account,
    decode_exchange,
    decode_level,
    decode_market,
    decode_order,
    decode_withdrawal,
    level_key,
    order_id_of,
)
from node.protocol.records import (
    Exchange as ExchangeRecord,
)
from node.protocol.state import (
    TABLE_ACCOUNTS,
    TABLE_LEVELS,
    TABLE_MARKETS,
    TABLE_META,
    TABLE_ORDERS,
    TABLE_WITHDRAWALS,
    State,
)
from node.protocol.step import BatchContext, Outcome, Step, StepKind
from node.protocol.stf import apply_step
from node.protocol.transactions import (
    Cancel,
    CancelAll,
    Liquidate,
    Message,
    OraclePrice,
    Order,
    SignedTransaction,
    TimeInForce,
    Transfer,
    Withdraw,
    encode_transaction,
)
from node.protocol.tree import MemoryNodeStore, NodeStore

DOMAIN = Domain(
    chain_id=901_337, verifying_contract=bytes.fromhex("5FbDB2315678afecb367f032d93F642f64180aa3")
)
"""The domain every test transaction and vector is signed in (the address anvil gives the
first deployment)."""

START_TIME = 1_750_000_000
"""Batch timestamp the test exchange starts at."""


def test_key(i: int) -> bytes:
    """Deterministic throwaway private key number ``i``."""
    return keccak256(b"ratchet test key " + str(i).encode())


ORACLE_KEY = test_key(1000)
"""Key of the oracle in the test genesis."""

FEE_OWNER_KEY = test_key(1001)
"""Key owning the fee account (id 0)."""

BTC = MarketSpec(
    id=0,
    symbol="BTC-PERP",
    tick_size=10,  # $1: prices are in $0.1
    lot_size=1_000,  # 0.00001 BTC: sizes are in satoshi
    price_decimals=1,
    size_decimals=8,
    initial_margin_bps=1_000,  # 10x
    maintenance_margin_bps=500,
    maker_fee_bps=2,
    taker_fee_bps=5,
    max_funding_ppm=5_000,
)
"""A BTC perpetual: ``price = dollars * 10``, ``size = BTC * 1e8``."""

ETH = MarketSpec(
    id=1,
    symbol="ETH-PERP",
    tick_size=1,  # $0.01
    lot_size=100,  # 0.0001 ETH: sizes are in 1e-6 ETH
    price_decimals=2,
    size_decimals=6,
    initial_margin_bps=500,  # 20x
    maintenance_margin_bps=300,
    maker_fee_bps=0,
    taker_fee_bps=4,
    max_funding_ppm=5_000,
)
"""An ETH perpetual: ``price = dollars * 100``, ``size = ETH * 1e6``."""

GENESIS = Genesis(
    oracle=address_of(ORACLE_KEY),
    fee_owner=address_of(FEE_OWNER_KEY),
    liquidation_reward_bps=100,
    liquidation_insurance_bps=100,
    markets=(BTC, ETH),
)
"""The genesis every STF test starts from unless it says otherwise."""

USD = 1_000_000
"""One dollar of collateral, in base units."""


def btc(dollars: float) -> int:
    """A BTC-PERP price from dollars."""
    return round(dollars * 10)


def sats(btc_amount: float) -> int:
    """A BTC-PERP size from BTC."""
    return round(btc_amount * 100_000_000)


@dataclass
class Trader:
    """A registered test account."""

    id: int
    """Its account id."""

    key: bytes
    """Its private key."""

    next_nonce: int = 0
    """Next nonce :meth:`Exchange.sign` will use."""

    @property
    def address(self) -> bytes:
        """Its owner address."""
        return address_of(self.key)


class Exchange:
    """A test exchange: a genesis state plus helpers that sign and apply steps."""

    def __init__(
        self,
        genesis: Genesis = GENESIS,
        store: NodeStore | None = None,
        timestamp: int = START_TIME,
        domain: Domain = DOMAIN,
    ) -> None:
        self.genesis = genesis
        self.state: State = genesis_state(
            genesis, store if store is not None else MemoryNodeStore()
        )
        self.domain = domain
        self.timestamp = timestamp
        self.traders: dict[int, Trader] = {}
        self.next_account = 1
        self.steps: list[Step] = []
        self.outcomes: list[Outcome] = []
        self.fee_owner = Trader(0, FEE_OWNER_KEY)
        self.oracle_time = dict.fromkeys((spec.id for spec in genesis.markets), 0)

    # stepping ------------------------------------------------------------------------

    @property
    def context(self) -> BatchContext:
        """The batch context steps run in."""
        return BatchContext(self.timestamp, self.domain)

    def apply(self, step: Step) -> Outcome:
        """Apply one step and remember it."""
        outcome = apply_step(self.state, step, self.context)
        self.steps.append(step)
        self.outcomes.append(outcome)
        return outcome

    def advance(self, seconds: int) -> None:
        """Move the batch time forward."""
        self.timestamp += seconds

    def root(self) -> bytes:
        """Commit and return the state root."""
        return self.state.commit()

    # signing -------------------------------------------------------------------------

    def sign(self, key: bytes, message: Message) -> bytes:
        """The encoded transaction of ``message`` signed with ``key``."""
        signature = sign_digest(key, message.signing_hash(self.domain))
        return encode_transaction(SignedTransaction(message, signature))

    def nonce(self, trader: Trader, nonce: int | None) -> int:
        """``nonce`` if given, else the trader's next one (which it advances)."""
        if nonce is not None:
            return nonce
        trader.next_nonce += 1
        return trader.next_nonce - 1

    def send(self, trader: Trader, message: Message, key: bytes | None = None) -> Outcome:
        """Sign ``message`` (with the trader's key unless ``key``) and apply it."""
        raw = self.sign(key or trader.key, message)
        return self.apply(Step(StepKind.TRANSACTION, raw))

    # L1 messages ---------------------------------------------------------------------

    def new_trader(self, key_number: int | None = None, deposit: int = 100_000 * USD) -> Trader:
        """Register a new account by a deposit of ``deposit`` (default $100k)."""
        account_id = self.next_account
        self.next_account += 1
        key = test_key(key_number if key_number is not None else account_id)
        trader = Trader(account_id, key)
        self.traders[account_id] = trader
        outcome = self.deposit(trader, deposit)
        assert outcome.applied, outcome
        return trader

    def deposit(self, trader: Trader, amount: int) -> Outcome:
        """A deposit message from the L1 inbox."""
        message = Deposit(trader.address, trader.id, amount)
        return self.apply(Step(StepKind.L1_MESSAGE, encode_l1_message(message)))

    def force(self, raw: bytes) -> Outcome:
        """A transaction forced through the L1 inbox."""
        message = encode_l1_message(ForcedTransaction(raw))
        return self.apply(Step(StepKind.L1_MESSAGE, message))

    # transactions --------------------------------------------------------------------

    def order_message(
        self,
        trader: Trader,
        market: int,
        is_buy: bool,
        price: int,
        size: int,
        tif: int = TimeInForce.GTC,
        reduce_only: bool = False,
        expiry: int = 0,
        nonce: int | None = None,
    ) -> Order:
        """An order message (nonce from the trader unless given)."""
        return Order(
            trader.id, market, is_buy, price, size, int(tif), reduce_only, expiry,
            self.nonce(trader, nonce),
        )  # fmt: skip

    def order(
        self, trader: Trader, market: int, is_buy: bool, price: int, size: int, **kw: Any
    ) -> Outcome:
        """Sign and apply an order."""
        return self.send(trader, self.order_message(trader, market, is_buy, price, size, **kw))

    def order_hash(self, message: Order) -> bytes:
        """The hash of an order message (its transaction hash)."""
        return message.signing_hash(self.domain)

    def cancel(self, trader: Trader, order_hash: bytes, nonce: int | None = None) -> Outcome:
        """Sign and apply a Cancel."""
        return self.send(trader, Cancel(trader.id, order_hash, self.nonce(trader, nonce)))

    def cancel_all(self, trader: Trader, market: int, nonce: int | None = None) -> Outcome:
        """Sign and apply a CancelAll."""
        return self.send(trader, CancelAll(trader.id, market, self.nonce(trader, nonce)))

    def transfer(self, trader: Trader, to: int, amount: int, nonce: int | None = None) -> Outcome:
        """Sign and apply a Transfer."""
        return self.send(trader, Transfer(trader.id, to, amount, self.nonce(trader, nonce)))

    def withdraw(
        self, trader: Trader, amount: int, recipient: bytes | None = None, nonce: int | None = None
    ) -> Outcome:
        """Sign and apply a Withdraw (to the trader's own address unless ``recipient``)."""
        message = Withdraw(
            trader.id, recipient or trader.address, amount, self.nonce(trader, nonce)
        )
        return self.send(trader, message)

    def liquidate(
        self, trader: Trader, target: int, market: int, nonce: int | None = None
    ) -> Outcome:
        """Sign and apply a Liquidate."""
        return self.send(trader, Liquidate(trader.id, target, market, self.nonce(trader, nonce)))

    def set_price(self, market: int, price: int, timestamp: int | None = None) -> Outcome:
        """An oracle price, timestamped at the batch time unless given (the batch time moves
        forward a second if the market's last price already has it)."""
        if timestamp is None:
            if self.timestamp <= self.oracle_time[market]:
                self.timestamp = self.oracle_time[market] + 1
            timestamp = self.timestamp
        outcome = self.send(self.fee_owner, OraclePrice(market, price, timestamp), ORACLE_KEY)
        if outcome.applied:
            self.oracle_time[market] = timestamp
        return outcome

    # reading the state ---------------------------------------------------------------

    def account(self, account_id: int) -> Account | None:
        """An account record, or None."""
        record = self.state.get(TABLE_ACCOUNTS.id, account_id)
        return decode_account(record) if record else None

    def market(self, market_id: int) -> Market:
        """A market record."""
        return decode_market(self.state.get(TABLE_MARKETS.id, market_id))

    def exchange(self) -> ExchangeRecord:
        """The exchange record."""
        return decode_exchange(self.state.get(TABLE_META.id, 0))

    def resting(self, order_hash: bytes) -> RestingOrder | None:
        """The resting order with this hash, or None."""
        record = self.state.get(TABLE_ORDERS.id, order_id_of(order_hash))
        if not record:
            return None
        order = decode_order(record)
        return order if order.order_hash == order_hash else None

    def level(self, market: int, side: int, tick: int) -> Level | None:
        """A price level, or None."""
        record = self.state.get(TABLE_LEVELS.id, level_key(market, side, tick))
        return decode_level(record) if record else None

    def withdrawal(self, withdrawal_id: int) -> WithdrawalRecord | None:
        """A withdrawal record, or None."""
        record = self.state.get(TABLE_WITHDRAWALS.id, withdrawal_id)
        return decode_withdrawal(record) if record else None

    def collateral(self, account_id: int) -> int:
        """An account's collateral (0 if none)."""
        account = self.account(account_id)
        return 0 if account is None else account.collateral

    def accounts(self) -> Iterable[int]:
        """Every registered account id (the fee account included)."""
        return [0, *self.traders]
