"""
Nonces for one account's transactions, handed out without serialising the order flow.

The STF keeps a 256-wide window of nonces per account (docs/protocol.md, 9.3
"useNonce"): ``nonceBase`` and a bit per nonce ``base .. base+255`` already used.
Distinct nonces may arrive in any order; a nonce ``>= base + 256`` moves the window
up. So every nonce above the highest one used is free, and the allocator hands out
``base + bitlength(used)``, then +1 for each transaction after it: increasing,
distinct, from any number of tasks or threads at once, with no round trip per
transaction. A transaction signed with nonce ``n`` stays valid while fewer than 256
later nonces have been used, i.e. keep at most 256 of an account's transactions in
flight at once.

When another program signs for the same key, the window moves under the allocator
and a transaction comes back ``NONCE_USED`` or ``NONCE_TOO_OLD``; the client then
reads the account again, :meth:`NonceAllocator.seed`\\s with it (the allocator never
goes backwards) and signs once more with a fresh nonce.
"""

import threading


class NonceAllocator:
    """Hands out increasing, distinct nonces for one account; safe across threads and
    asyncio tasks (a lock held for one increment, never across an ``await``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: int | None = None

    @property
    def seeded(self) -> bool:
        """Whether the account's window has been read at least once."""
        return self._next is not None

    def seed(self, base: int, used: int) -> None:
        """Fold in the account's window as read from ``ratchet_getAccount``: ``nonce.base``
        and the bitmap ``nonce.used`` (bit ``i``: nonce ``base + i`` is used). The next
        nonce becomes the first one above every used one, unless it already is higher."""
        if base < 0 or used < 0:
            raise ValueError("a nonce window is non-negative")
        first_free = base + used.bit_length()
        with self._lock:
            if self._next is None or first_free > self._next:
                self._next = first_free

    def take(self) -> int:
        """The next nonce (never the same twice). :class:`RuntimeError` before ``seed``."""
        with self._lock:
            if self._next is None:
                raise RuntimeError("the nonce allocator is not seeded: read the account first")
            nonce = self._next
            self._next += 1
            return nonce
