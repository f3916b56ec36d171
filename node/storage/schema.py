"""
Every LevelDB key Ratchet writes, built in one place.

A key is a one-byte prefix naming its kind followed by the kind's own fields;
prefixes are never reused, so kinds cannot collide and a prefix scan lists one
kind. New kinds get the next free prefix and a line in this table.

| prefix | key                       | value                                   |
|--------|---------------------------|-----------------------------------------|
| 0x01   | node hash (32)            | tree node preimage: ``left || right`` or a leaf record |
"""

from typing import Final

NODE_PREFIX: Final = b"\x01"
"""Content-addressed Merkle nodes and leaf records (see node.protocol.tree)."""


def node_key(node_hash: bytes) -> bytes:
    """Key of a Merkle node or leaf record, by its hash."""
    if len(node_hash) != 32:
        raise ValueError("a node hash is 32 bytes")
    return NODE_PREFIX + node_hash
