"""
Durable storage: one small key-value interface with an in-memory and a LevelDB
(plyvel) backend, every key built in :mod:`node.storage.schema`, and the adapter
that stores Merkle-tree nodes in it.
"""

from .db import KeyValueDB, MemoryDB, WriteBatch
from .level import LevelDB
from .nodes import DBNodeStore

__all__ = ["DBNodeStore", "KeyValueDB", "LevelDB", "MemoryDB", "WriteBatch"]
