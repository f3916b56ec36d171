"""
The Ratchet trader SDK (docs/sdk.md): an asynchronous :class:`Client` of a sequencer's
JSON-RPC API and its blocking twin :class:`SyncClient`, exact unit conversion
(:class:`Market`), verified receipts, reconnecting WebSocket subscriptions, and L1
helpers to deposit and claim (:mod:`node.sdk.l1`, imported on its own: it needs web3).

    async with await Client.connect("http://127.0.0.1:8547", key=KEY) as client:
        receipt = await client.place_order("BTC-PERP", "buy", "60000", "0.01", tif="IOC")
"""

from .client import DEFAULT_RPC, Client
from .errors import (
    ConfigError,
    DuplicateClientIdError,
    FinalityError,
    InvalidArgumentError,
    L1Error,
    NoAccountError,
    NotAvailableError,
    NotFoundError,
    ReceiptError,
    RejectedError,
    RpcError,
    SdkError,
    TransportError,
    UnknownClientIdError,
    UnknownMarketError,
)
from .nonces import NonceAllocator
from .receipts import TxReceipt, verify_receipt
from .subscription import Event, Gap, Subscription
from .sync import SyncClient, SyncSubscription
from .units import Collateral, Market, UnitError
from .views import Book, ClientIds, Level, Position

__all__ = [
    "DEFAULT_RPC",
    "Book",
    "Client",
    "ClientIds",
    "Collateral",
    "ConfigError",
    "DuplicateClientIdError",
    "Event",
    "FinalityError",
    "Gap",
    "InvalidArgumentError",
    "L1Error",
    "Level",
    "Market",
    "NoAccountError",
    "NonceAllocator",
    "NotAvailableError",
    "NotFoundError",
    "Position",
    "ReceiptError",
    "RejectedError",
    "RpcError",
    "SdkError",
    "Subscription",
    "SyncClient",
    "SyncSubscription",
    "TransportError",
    "TxReceipt",
    "UnitError",
    "UnknownClientIdError",
    "UnknownMarketError",
    "verify_receipt",
]
