"""
Fixed-depth binary Merkle trees with keccak-256: the hashing rules.

A tree of depth ``d`` has ``2**d`` leaves addressed by their index. Leaf ``i``'s
path from the root follows the bits of ``i`` from the most significant (bit
``d-1``, taken at the root) to the least significant (bit 0, taken just above the
leaf); a 0 bit goes left. An absent leaf hashes to 32 zero bytes, and an empty
subtree of height ``h`` to :data:`ZERO_HASHES` ``[h]``, precomputed, so a tree of
any depth is as cheap as its occupied paths.

These rules are exactly what the Solidity one-step executor and the L1 bridge
compute; both sides are tested against the vectors in ``tests/vectors/``.
"""

from collections.abc import Sequence
from typing import Final

from .crypto import keccak256

HASH_LENGTH: Final = 32
"""Every node hash is 32 bytes."""

MAX_DEPTH: Final = 64
"""The deepest tree (a table under the global tree, counted together) this module supports."""

EMPTY_LEAF: Final = b"\x00" * HASH_LENGTH
"""Hash of an absent leaf (a leaf whose record is the empty byte string)."""


def hash_pair(left: bytes, right: bytes) -> bytes:
    """The parent of two nodes: ``keccak256(left || right)``."""
    return keccak256(left + right)


def hash_leaf(value: bytes) -> bytes:
    """
    The hash of a leaf holding ``value``: ``keccak256(value)``, or 32 zero bytes
    when ``value`` is empty, which is how a record is deleted.
    """
    return keccak256(value) if value else EMPTY_LEAF


def _zero_hashes(depth: int) -> tuple[bytes, ...]:
    hashes = [EMPTY_LEAF]
    for _ in range(depth):
        hashes.append(hash_pair(hashes[-1], hashes[-1]))
    return tuple(hashes)


ZERO_HASHES: Final = _zero_hashes(MAX_DEPTH)
"""``ZERO_HASHES[h]`` is the root of an empty subtree of height ``h`` (0 = a leaf)."""


def root_from_path(leaf: bytes, index: int, siblings: Sequence[bytes]) -> bytes:
    """
    The root reached from ``leaf`` at ``index`` through ``siblings``, listed
    bottom-up (``siblings[0]`` is the leaf's neighbour). The tree's depth is
    ``len(siblings)``.
    """
    node = leaf
    for level, sibling in enumerate(siblings):
        if (index >> level) & 1:
            node = keccak256(sibling + node)
        else:
            node = keccak256(node + sibling)
    return node


def merkle_root(depth: int, leaves: Sequence[bytes]) -> bytes:
    """
    The root of a depth-``depth`` tree whose first ``len(leaves)`` leaf hashes are
    ``leaves`` and whose other leaves are absent. Costs ``O(len(leaves) + depth)``
    hashes; used for the transaction root of a batch.
    """
    if len(leaves) > 1 << depth:
        raise ValueError(f"{len(leaves)} leaves do not fit a tree of depth {depth}")
    level = list(leaves)
    for height in range(depth):
        if len(level) % 2:
            level.append(ZERO_HASHES[height])
        level = [keccak256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0] if level else ZERO_HASHES[depth]


def merkle_proof(depth: int, leaves: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    """Bottom-up siblings of leaf ``index`` in the tree :func:`merkle_root` builds."""
    if not 0 <= index < 1 << depth:
        raise ValueError(f"index {index} outside a tree of depth {depth}")
    siblings = []
    level = list(leaves)
    position = index
    for height in range(depth):
        if len(level) % 2:
            level.append(ZERO_HASHES[height])
        neighbour = position ^ 1
        siblings.append(level[neighbour] if neighbour < len(level) else ZERO_HASHES[height])
        level = [keccak256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        position >>= 1
    return tuple(siblings)


def root_after_updates(depth: int, leaves: Sequence[tuple[int, bytes, Sequence[bytes]]]) -> bytes:
    """
    The root of a depth-``depth`` tree after setting several leaves at once, from
    their proofs against the tree before (a multiproof update).

    ``leaves`` lists ``(index, new_leaf_hash, siblings)`` sorted by strictly
    increasing index, where ``siblings`` are the leaf's bottom-up siblings in the
    tree *before* any of the updates. Climbing one height at a time, two listed
    nodes that are siblings hash together; any other node hashes with its
    sibling from the proof of a leaf below it. That sibling's subtree holds no
    listed leaf (it would be listed next to it), so its old value is still right.
    """
    level = [(index, leaf, siblings) for index, leaf, siblings in leaves]
    if not level:
        raise ValueError("no leaves to update")
    for height in range(depth):
        parents = []
        i = 0
        while i < len(level):
            index, node, siblings = level[i]
            if index & 1 == 0 and i + 1 < len(level) and level[i + 1][0] == index + 1:
                parent = hash_pair(node, level[i + 1][1])
                i += 2
            else:
                sibling = siblings[height]
                parent = hash_pair(sibling, node) if index & 1 else hash_pair(node, sibling)
                i += 1
            parents.append((index >> 1, parent, siblings))
        level = parents
    return level[0][1]
