"""
Sparse fixed-depth Merkle trees over a content-addressed node store.

A node store maps a node's hash to its preimage: ``left || right`` (64 bytes) for
an inner node, the record bytes for a leaf. Empty subtrees are never stored; a
node equal to ``ZERO_HASHES[h]`` at height ``h`` is known to be empty. Since no
stored node is ever overwritten (its key is its hash), every root that was once
committed stays readable for as long as its nodes are kept.

Updates are batched: :func:`update_leaves` rewrites all changed leaves of a tree
in one descent from the old root, so a node shared by many changed paths is read
and hashed once.
"""

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import Protocol

from .crypto import keccak256
from .errors import MissingNodeError
from .merkle import EMPTY_LEAF, ZERO_HASHES


class NodeStore(Protocol):
    """Where tree nodes live, addressed by their hash."""

    def get_node(self, node_hash: bytes) -> bytes | None:
        """The preimage of ``node_hash``, or None if this store does not hold it."""
        ...

    def put_nodes(self, nodes: Iterable[tuple[bytes, bytes]]) -> None:
        """Store ``(hash, preimage)`` pairs. Storing a pair twice is harmless."""
        ...


class MemoryNodeStore:
    """A node store in a dict: for tests, witness building and throwaway replays."""

    def __init__(self) -> None:
        self.nodes: dict[bytes, bytes] = {}

    def get_node(self, node_hash: bytes) -> bytes | None:
        return self.nodes.get(node_hash)

    def put_nodes(self, nodes: Iterable[tuple[bytes, bytes]]) -> None:
        self.nodes.update(nodes)

    def __len__(self) -> int:
        return len(self.nodes)


class OverlayNodeStore:
    """
    Reads through to ``base``; keeps its own writes in memory.

    Lets a replay or a witness builder commit intermediate roots without writing
    anything to the durable store below it.
    """

    def __init__(self, base: NodeStore) -> None:
        self.base = base
        self.nodes: dict[bytes, bytes] = {}

    def get_node(self, node_hash: bytes) -> bytes | None:
        node = self.nodes.get(node_hash)
        return node if node is not None else self.base.get_node(node_hash)

    def put_nodes(self, nodes: Iterable[tuple[bytes, bytes]]) -> None:
        self.nodes.update(nodes)


def _load(store: NodeStore, node_hash: bytes) -> bytes:
    preimage = store.get_node(node_hash)
    if preimage is None:
        raise MissingNodeError(f"node {node_hash.hex()} is not in the node store")
    return preimage


def read_leaf(store: NodeStore, root: bytes, depth: int, index: int) -> bytes:
    """The record at leaf ``index`` of the tree of ``depth`` under ``root`` (b"" if absent)."""
    node = root
    for height in range(depth, 0, -1):
        if node == ZERO_HASHES[height]:
            return b""
        preimage = _load(store, node)
        node = preimage[32:] if (index >> (height - 1)) & 1 else preimage[:32]
    if node == EMPTY_LEAF:
        return b""
    return _load(store, node)


def prove_leaf(store: NodeStore, root: bytes, depth: int, index: int) -> tuple[bytes, list[bytes]]:
    """
    The record at leaf ``index`` and its siblings, bottom-up, in the tree rooted at ``root``.

    ``merkle.root_from_path(hash_leaf(record), index, siblings) == root`` holds for the result.
    """
    node, siblings = _walk(store, root, depth, index)
    siblings.reverse()
    record = b"" if node == EMPTY_LEAF else _load(store, node)
    return record, siblings


def update_leaves(
    store: NodeStore, root: bytes, depth: int, leaves: Mapping[int, bytes]
) -> tuple[bytes, dict[bytes, bytes]]:
    """
    Set the leaf hashes of a tree in one pass.

    ``leaves`` maps leaf indices to their new leaf hashes (``EMPTY_LEAF`` deletes).
    Returns the new root and the new inner nodes (hash -> ``left || right``) that
    the caller must store for the new root to be readable. Reads each node on a
    changed path once, from ``store``; computes each changed inner node once.
    """
    if not leaves:
        return root, {}
    keys = sorted(leaves)
    if keys[0] < 0 or keys[-1] >= 1 << depth:
        raise ValueError(f"leaf index outside a tree of depth {depth}")
    values = [leaves[k] for k in keys]
    filled = [0]
    """``filled[i]``: how many of ``values[:i]`` are not deletions."""
    for value in values:
        filled.append(filled[-1] + (value != EMPTY_LEAF))
    new_nodes: dict[bytes, bytes] = {}

    def descend(node: bytes, height: int, lo: int, hi: int) -> bytes:
        # keys[lo:hi] all lie in the subtree rooted at ``node`` (height ``height``).
        if node == ZERO_HASHES[height] and filled[hi] == filled[lo]:
            return node  # deleting absent records (made and removed since the last commit)
        if hi - lo == 1:
            return _one_path(store, node, height, keys[lo], values[lo], new_nodes)
        below = height - 1
        if node == ZERO_HASHES[height]:
            left = right = ZERO_HASHES[below]
        else:
            preimage = _load(store, node)
            left, right = preimage[:32], preimage[32:]
        split = bisect_left(keys, ((keys[lo] >> height) << height) | (1 << below), lo, hi)
        if split > lo:
            left = descend(left, below, lo, split)
        if hi > split:
            right = descend(right, below, split, hi)
        zero = ZERO_HASHES[below]
        if left == zero and right == zero:
            return ZERO_HASHES[height]
        pair = left + right
        parent = keccak256(pair)
        new_nodes[parent] = pair
        return parent

    return descend(root, depth, 0, len(keys)), new_nodes


def _one_path(
    store: NodeStore,
    node: bytes,
    height: int,
    index: int,
    leaf: bytes,
    new_nodes: dict[bytes, bytes],
) -> bytes:
    """The new root of the subtree ``node`` (of ``height``) whose only changed leaf is
    ``index`` (its low ``height`` bits), now ``leaf``: its siblings are read on the way
    down (none below an empty subtree), the new path hashed on the way up (its nodes go
    into ``new_nodes``), without recursing."""
    _, siblings = _walk(store, node, height, index)
    for level, sibling in enumerate(reversed(siblings)):
        if leaf == sibling == ZERO_HASHES[level]:
            leaf = ZERO_HASHES[level + 1]
            continue
        pair = sibling + leaf if (index >> level) & 1 else leaf + sibling
        leaf = keccak256(pair)
        new_nodes[leaf] = pair
    return leaf


def _walk(store: NodeStore, node: bytes, height: int, index: int) -> tuple[bytes, list[bytes]]:
    """From ``node`` (a subtree of ``height``) down to leaf ``index`` (its low ``height``
    bits): that leaf's hash and its siblings, top-down (empty subtrees are not read)."""
    siblings: list[bytes] = []
    for level in range(height - 1, -1, -1):
        if node == ZERO_HASHES[level + 1]:
            siblings.extend(ZERO_HASHES[: level + 1][::-1])
            return EMPTY_LEAF, siblings
        preimage = _load(store, node)
        if (index >> level) & 1:
            siblings.append(preimage[:32])
            node = preimage[32:]
        else:
            siblings.append(preimage[32:])
            node = preimage[:32]
    return node, siblings
