"""
``ratchet sequencer`` that posts one wrong root: the first batch with a transaction is
recorded (and so posted) with a post root that is not its state's. For tests only:

    python -m tests.integration.rogue_sequencer --config FILE

Nothing in the package can make a sequencer do this (no option, no environment
variable): the lie is patched in here, in test code, around the real daemon. The engine
keeps its honest state, so the defence plays its real trace and loses, L1 rejects the
batch, and the daemon's recovery reposts it honestly.
"""

import sys
from dataclasses import replace

from node.cli import main
from node.protocol.batch import Batch
from node.protocol.crypto import keccak256
from node.sequencer.engine import Sequencer

_honest_write = Sequencer._write_record
_lied: list[int] = []


async def _write_record(self: Sequencer, record: Batch) -> None:
    if not _lied and record.transactions:
        _lied.append(record.index)
        record = replace(record, post_root=keccak256(b"a wrong root"))
    await _honest_write(self, record)


Sequencer._write_record = _write_record  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(["sequencer", *sys.argv[1:]]))
