"""LevelDB backend (plyvel)."""

from collections.abc import Iterator
from pathlib import Path

import plyvel

from .db import KeyValueDB


class LevelDB(KeyValueDB):
    """
    A LevelDB database in directory ``path`` (created if missing).

    Writes are asynchronous (in the OS page cache) unless ``sync=True``, which
    fsyncs the log before returning: what the sequencer uses for anything it
    acknowledges. One write batch with ``sync=True`` makes many records durable
    for the price of one fsync (group commit).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_open_files: int = 256,
        lru_cache_size: int = 64 << 20,
        bloom_filter_bits: int = 10,
    ) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._db = plyvel.DB(
            str(self.path),
            create_if_missing=True,
            max_open_files=max_open_files,
            lru_cache_size=lru_cache_size,
            bloom_filter_bits=bloom_filter_bits,  # node keys are random: skip SSTs without them
        )

    def get(self, key: bytes) -> bytes | None:
        return self._db.get(key)  # type: ignore[no-any-return]

    def put(self, key: bytes, value: bytes, *, sync: bool = False) -> None:
        self._db.put(key, value, sync=sync)

    def delete(self, key: bytes, *, sync: bool = False) -> None:
        self._db.delete(key, sync=sync)

    def apply(self, ops: dict[bytes, bytes | None], *, sync: bool = False) -> None:
        with self._db.write_batch(sync=sync) as batch:
            for key, value in ops.items():
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)

    def iterate(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        with self._db.iterator(prefix=prefix) as it:
            yield from it

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return bool(self._db.closed)
