"""
A process that sequences entries into a ledger as fast as it can and prints one line
per acknowledged entry, for the crash test (tests/integration/test_ledger_crash.py).

    python -m tests.integration.ledger_writer DIR

Each entry is committed through a :class:`GroupCommitter` with up to 64 in flight,
like concurrent clients of the sequencer; ``acked <sequence> <entry hex>`` is printed
(and flushed) only after the commit returns, exactly when the sequencer would answer.
It resumes from the log's head, and runs until killed.
"""

import asyncio
import sys

from node.protocol.crypto import keccak256
from node.protocol.step import StepKind
from node.sequencer.ledger import GroupCommitter, Ledger, LogEntry
from node.storage import LevelDB


async def run(directory: str) -> None:
    with LevelDB(directory) as db:
        ledger = Ledger(db)
        committer = GroupCommitter(ledger)
        slots = asyncio.Semaphore(64)

        async def commit(entry: LogEntry) -> None:
            try:
                await committer.commit(entry)
                sys.stdout.write(f"acked {entry.sequence} {entry.encode().hex()}\n")
                sys.stdout.flush()
            finally:
                slots.release()

        sequence = ledger.head
        tasks = set()
        while True:
            await slots.acquire()
            data = b"step %d " % sequence + bytes(sequence % 200)
            entry = LogEntry(
                sequence,
                sequence // 100,
                sequence % 100,
                1_700_000_000,
                StepKind.TRANSACTION,
                data,
                keccak256(data),
                b'{"sequence":%d}' % sequence,
            )
            task = asyncio.create_task(commit(entry))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sequence += 1


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1]))
