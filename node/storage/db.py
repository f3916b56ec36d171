"""
The key-value interface every storage backend implements, and its in-memory twin.

Deliberately small (get, put, delete, atomic write batches, prefix iteration), as
in py-evm's ``BaseDB``; ``tests/unit/test_storage.py`` runs one suite against
every backend.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import TracebackType
from typing import Self


class WriteBatch:
    """
    Puts and deletes applied atomically when the ``with`` block exits normally.

    Nothing is written if the block raises. ``sync=True`` makes the write
    durable (fsync) before ``__exit__`` returns.
    """

    def __init__(self, db: "KeyValueDB", sync: bool) -> None:
        self._db = db
        self._sync = sync
        self._ops: dict[bytes, bytes | None] = {}

    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value`` when the batch commits."""
        self._ops[key] = value

    def delete(self, key: bytes) -> None:
        """Remove ``key`` when the batch commits."""
        self._ops[key] = None

    def __len__(self) -> int:
        return len(self._ops)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._db.apply(self._ops, sync=self._sync)
        self._ops = {}


class KeyValueDB(ABC):
    """Byte keys to byte values."""

    @abstractmethod
    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None."""

    @abstractmethod
    def put(self, key: bytes, value: bytes, *, sync: bool = False) -> None:
        """Set one key."""

    @abstractmethod
    def delete(self, key: bytes, *, sync: bool = False) -> None:
        """Remove one key (absent keys are fine)."""

    @abstractmethod
    def apply(self, ops: dict[bytes, bytes | None], *, sync: bool = False) -> None:
        """Apply puts (value) and deletes (None) atomically."""

    @abstractmethod
    def iterate(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Every ``(key, value)`` whose key starts with ``prefix``, in key order."""

    @abstractmethod
    def close(self) -> None:
        """Release the backend; the object is unusable afterwards."""

    def exists(self, key: bytes) -> bool:
        """Whether ``key`` has a value."""
        return self.get(key) is not None

    def write_batch(self, *, sync: bool = False) -> WriteBatch:
        """An atomic batch of writes (use as a context manager)."""
        return WriteBatch(self, sync)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemoryDB(KeyValueDB):
    """A dict; for tests and throwaway replays. ``sync`` is meaningless and ignored."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def put(self, key: bytes, value: bytes, *, sync: bool = False) -> None:
        self.data[key] = value

    def delete(self, key: bytes, *, sync: bool = False) -> None:
        self.data.pop(key, None)

    def apply(self, ops: dict[bytes, bytes | None], *, sync: bool = False) -> None:
        for key, value in ops.items():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value

    def iterate(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(k for k in self.data if k.startswith(prefix)):
            yield key, self.data[key]

    def close(self) -> None:
        """Nothing to release."""
