"""
Follows the L1 inbox and sequences its messages (deposits, forced transactions).

Every ``poll_s`` it asks the :class:`~node.l1.inbox_reader.InboxReader` (in a worker
thread: web3 is blocking) for the confirmed messages from the engine's next inbox
index on, checked against the Bridge's accumulator, and hands each to
:meth:`Sequencer.submit_l1_message` in order. Messages are consumed as soon as they
are confirmed, so a posted batch meets the forced-inclusion deadline as long as the
confirmation depth and the posting latency stay well under the delay
(docs/sequencer.md). An L1 error is logged and retried at the next poll; a
mismatch with the Bridge's accumulator (a lying or reorged node) stops consumption
until it resolves, without sequencing anything unverified.
"""

import asyncio
import contextlib
import logging

from node.l1.inbox_reader import InboxError, InboxReader

from .engine import InboxMovedError, Sequencer

log = logging.getLogger(__name__)


class InboxFollower:
    """Feeds confirmed L1 inbox messages into the engine, in order."""

    def __init__(
        self, reader: InboxReader, engine: Sequencer, *, poll_s: float = 1.0, page: int = 256
    ) -> None:
        self.reader = reader
        self.engine = engine
        self.poll_s = poll_s
        self.page = page
        self.consumed = 0
        """Messages this follower has sequenced since it started."""

    async def tick(self) -> int:
        """Read and sequence what is confirmed now; how many messages it sequenced."""
        start = self.engine.inbox_next
        messages = await asyncio.to_thread(self.reader.read, start, self.page)
        async with self.engine.inbox_lock:
            for expected, message in enumerate(messages, start=start):
                if self.engine.inbox_next != expected:
                    return 0  # a re-execution consumed it meanwhile: read again
                if message.index != expected:
                    raise InboxError(f"inbox message {message.index} out of order at {expected}")
                try:
                    await self.engine.submit_l1_message(message.data, message.index)
                except InboxMovedError:
                    return 0  # reverted meanwhile: read again from the new position
        self.consumed += len(messages)
        if messages:
            log.info(
                "inbox messages sequenced",
                extra={"first": start, "count": len(messages), "next": self.engine.inbox_next},
            )
        return len(messages)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; errors are logged and retried."""
        while not stop.is_set():
            try:
                while await self.tick() == self.page:
                    pass  # a full page: more may be waiting
            except InboxError as exc:
                log.error("inbox check failed, nothing consumed: %s", exc)
            except Exception as exc:
                log.warning("L1 inbox read failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_s)
