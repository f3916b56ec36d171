"""
Naive reference computations of Merkle roots, written straight from the definitions
in docs/protocol.md and sharing no code with node.protocol.tree or state.
"""

from sha3 import keccak_256

from node.protocol.state import StateLayout


def keccak(data: bytes) -> bytes:
    return keccak_256(data).digest()  # type: ignore[no-any-return]


def leaf_hash(record: bytes) -> bytes:
    return keccak(record) if record else b"\x00" * 32


def dense_root(depth: int, records: dict[int, bytes]) -> bytes:
    """Hash every one of the 2**depth leaves and every inner node: no shortcuts at all."""
    level = [leaf_hash(records.get(i, b"")) for i in range(1 << depth)]
    while len(level) > 1:
        level = [keccak(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def empty_root(depth: int) -> bytes:
    node = b"\x00" * 32
    for _ in range(depth):
        node = keccak(node + node)
    return node


def sparse_root(depth: int, records: dict[int, bytes]) -> bytes:
    """The recursive definition: an empty subtree's root is the empty root of its height."""
    live = {i: r for i, r in records.items() if r}
    if not live:
        return empty_root(depth)
    if depth == 0:
        return leaf_hash(live[0])
    half = 1 << (depth - 1)
    left = {i: r for i, r in live.items() if i < half}
    right = {i - half: r for i, r in live.items() if i >= half}
    return keccak(sparse_root(depth - 1, left) + sparse_root(depth - 1, right))


def state_root(
    layout: StateLayout, records: dict[tuple[int, int], bytes], dense: bool = False
) -> bytes:
    """The global root over table roots; an unused table slot holds 32 zero bytes."""
    table_root = dense_root if dense else sparse_root
    slots = []
    for slot in range(1 << layout.global_depth):
        table = layout.by_id.get(slot)
        if table is None:
            slots.append(b"\x00" * 32)
        else:
            rows = {i: r for (t, i), r in records.items() if t == slot}
            slots.append(table_root(table.depth, rows))
    while len(slots) > 1:
        slots = [keccak(slots[i] + slots[i + 1]) for i in range(0, len(slots), 2)]
    return slots[0]
