"""
Fault injection for demonstrations: the devnet's sequencer can be told to post one batch
with a wrong state root, so that a newcomer watches a watchtower catch it, win the dispute
game move by move, and the sequencer replay honestly (examples/fraud.py).

It exists only where ``[devnet] faults = true`` *and* the L1 is a development chain
(``ratchet devnet`` writes that option; nothing else does). Then the JSON-RPC method
``devnet_postWrongRoot`` arms it: the next sealed batch that holds a transaction is
recorded, and so posted, with a post root that is not its state's. The engine keeps its
honest state, so its defence plays the true trace and loses at the one-step proof, L1
rejects the batch, and the daemon's recovery reposts it honestly, exactly as after a real
fault. A sequencer that lies loses its stake: never enable this on a chain that matters.
"""

import asyncio
from dataclasses import replace
from typing import Any

from node.protocol.batch import Batch
from node.protocol.crypto import keccak256

from .engine import Sequencer
from .views import hex0x

DEV_CHAIN_IDS = frozenset({31337, 1337})
"""L1 chain ids of development nodes, the only ones fault injection may run against."""

ARM_TIMEOUT_S = 60.0
"""How long ``devnet_postWrongRoot`` waits for a batch with a transaction to be sealed."""


class WrongRoot:
    """The devnet's one fault: a batch recorded with a wrong post root, on request.

    A liar stays consistent, as a real faulty sequencer's chain would: the batch after the
    wrong one names the wrong root as its parent (L1 refuses any other), until L1 rejects
    the lie and the engine goes back to before it (the next batch sealed then has the
    wrong batch's index or a lower one).
    """

    def __init__(self, engine: Sequencer) -> None:
        self._armed: asyncio.Future[tuple[Batch, Batch]] | None = None
        self._lie: tuple[Batch, Batch] | None = None
        """The last (honest, wrong) record pair, while its successor is not sealed."""
        engine.record_hook = self._filter

    def _filter(self, record: Batch) -> Batch:
        if self._lie is not None:
            honest, wrong = self._lie
            if record.index <= honest.index:  # reverted: the lie is gone
                self._lie = None
            elif record.index == honest.index + 1 and record.parent_root == honest.post_root:
                self._lie = None
                record = replace(record, parent_root=wrong.post_root)
        armed = self._armed
        if armed is None or armed.done() or not record.transactions:
            return record
        wrong = replace(
            record, post_root=keccak256(b"ratchet devnet: a wrong root" + bytes(record.post_root))
        )
        self._lie = (record, wrong)
        armed.set_result((record, wrong))
        return wrong

    async def devnet_postWrongRoot(self) -> dict[str, Any]:  # noqa: N802 - JSON-RPC name
        """Arm the fault and wait for the batch it falsifies: its index, the wrong root it
        will be posted with, and the true one."""
        if self._armed is None or self._armed.done():
            self._armed = asyncio.get_running_loop().create_future()
        honest, wrong = await asyncio.wait_for(asyncio.shield(self._armed), ARM_TIMEOUT_S)
        return {
            "batch": wrong.index,
            "postRoot": hex0x(wrong.post_root),
            "honestRoot": hex0x(honest.post_root),
            "transactions": len(wrong.transactions),
        }
