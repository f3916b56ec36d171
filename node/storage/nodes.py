"""Merkle-tree nodes in a key-value database, content-addressed under ``schema.node_key``."""

from collections.abc import Iterable

from . import schema
from .db import KeyValueDB


class DBNodeStore:
    """
    A :class:`node.protocol.tree.NodeStore` over a :class:`KeyValueDB`.

    Node writes are not synced: every node can be recomputed by replaying the
    durable transaction log, so the sequencer syncs that log, not the tree.
    """

    def __init__(self, db: KeyValueDB, *, sync: bool = False) -> None:
        self.db = db
        self.sync = sync

    def get_node(self, node_hash: bytes) -> bytes | None:
        return self.db.get(schema.NODE_PREFIX + node_hash)

    def put_nodes(self, nodes: Iterable[tuple[bytes, bytes]]) -> None:
        prefix = schema.NODE_PREFIX
        self.db.apply({prefix + key: value for key, value in nodes}, sync=self.sync)
