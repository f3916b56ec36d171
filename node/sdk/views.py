"""
What the client returns besides receipts: positions, book levels, and the client
order ids it keeps.
"""

import json
import os
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from .errors import DuplicateClientIdError
from .units import Market


@dataclass(frozen=True)
class Position:
    """One position of an account, in decimal units."""

    market: Market
    """Its market."""

    size: Decimal
    """Signed size in units of the asset: positive long, negative short."""

    size_wire: int
    """The same in wire units."""

    funding_index: int
    """The market's cumulative funding index when it was last settled."""

    @property
    def side(self) -> str:
        """``long`` or ``short``."""
        return "long" if self.size_wire > 0 else "short"


@dataclass(frozen=True)
class Level:
    """One price level of the book."""

    price: Decimal
    """Its price (USD per unit)."""

    size: Decimal
    """Total resting size (units)."""


@dataclass(frozen=True)
class Book:
    """The best levels of one market's book."""

    market: Market
    """The market."""

    bids: list[Level]
    """Best (highest) first."""

    asks: list[Level]
    """Best (lowest) first."""


class ClientIds:
    """The client order ids a trader gave its orders, mapped to the order hashes (known
    before sending: an order's hash is its EIP-712 digest). In memory, and in a JSON
    file too when ``path`` is given (the CLI keeps one per chain and account, so that
    ``ratchet cancel --client-id`` works in a later process). An id is taken once: a
    second order with it is refused with :class:`DuplicateClientIdError`."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        """The JSON file, or None."""
        self._ids: dict[str, str] = {}
        self._dirty = False
        if path is not None and path.exists():
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict):
                self._ids = {str(k): str(v) for k, v in loaded.items()}

    def get(self, client_id: str) -> str | None:
        """The order hash of ``client_id``, or None."""
        return self._ids.get(client_id)

    def reserve(self, client_id: str, order_hash: str) -> None:
        """Take ``client_id`` for ``order_hash``; :class:`DuplicateClientIdError` if taken."""
        if client_id in self._ids:
            raise DuplicateClientIdError(
                f"client order id {client_id!r} is taken by order {self._ids[client_id]}"
            )
        self._ids[client_id] = order_hash
        self._dirty = True

    def move(self, client_id: str, order_hash: str) -> None:
        """Point ``client_id`` at a re-signed order's hash."""
        self._ids[client_id] = order_hash
        self._dirty = True

    def release(self, client_id: str) -> None:
        """Free ``client_id`` (its order was refused: nothing was sequenced)."""
        if self._ids.pop(client_id, None) is not None:
            self._dirty = True

    def save(self) -> None:
        """Write the file (atomically), if there is one and anything changed."""
        if self.path is None or not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=".client-ids")
        with os.fdopen(handle, "w") as out:
            json.dump(self._ids, out, indent=1, sort_keys=True)
        os.replace(name, self.path)
        self._dirty = False
