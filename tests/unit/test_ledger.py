"""The sequencer's transaction log on a real LevelDB: appends, lookups, refusals, reopen,
and the group commit."""

import asyncio
from pathlib import Path

import pytest

from node.protocol.crypto import keccak256
from node.protocol.step import StepKind
from node.sequencer.ledger import GroupCommitter, Ledger, LedgerError, LogEntry
from node.storage import LevelDB, schema


def entry(sequence: int, batch: int = 0, receipt: bytes = b"") -> LogEntry:
    data = b"tx-%d" % sequence
    kind = StepKind.L1_MESSAGE if sequence % 5 == 0 else StepKind.TRANSACTION
    return LogEntry(
        sequence, batch, sequence, 1_700_000_000 + batch, kind, data, keccak256(data), receipt
    )


def test_entries_round_trip_and_are_found_by_hash(tmp_path: Path) -> None:
    with LevelDB(tmp_path / "db") as db:
        ledger = Ledger(db)
        assert ledger.head == 0 and ledger.entry(0) is None
        written = [entry(i, receipt=b'{"n":%d}' % i) for i in range(7)]
        ledger.append(written[:3])
        ledger.append(written[3:])
        assert ledger.head == 7
        assert [ledger.entry(i) for i in range(7)] == written
        assert list(ledger.entries()) == written
        assert list(ledger.entries(4)) == written[4:]
        assert ledger.by_hash(written[5].tx_hash) == written[5]
        assert ledger.sequence_of(keccak256(b"never sent")) is None
        assert ledger.entry(7) is None


def test_a_gap_or_a_repeated_hash_writes_nothing(tmp_path: Path) -> None:
    with LevelDB(tmp_path / "db") as db:
        ledger = Ledger(db)
        ledger.append([entry(0), entry(1)])
        before = dict(db.iterate())
        with pytest.raises(LedgerError, match="does not follow"):
            ledger.append([entry(2), entry(4)])
        with pytest.raises(LedgerError, match="does not follow"):
            ledger.append([entry(1)])
        duplicate = LogEntry(2, 0, 2, 0, StepKind.TRANSACTION, b"again", entry(1).tx_hash)
        with pytest.raises(LedgerError, match="already in the log"):
            ledger.append([duplicate])
        twice = LogEntry(3, 0, 3, 0, StepKind.TRANSACTION, b"x", entry(2).tx_hash)
        with pytest.raises(LedgerError, match="already in the log"):
            ledger.append([entry(2), twice])
        assert dict(db.iterate()) == before
        assert ledger.head == 2


def test_the_log_survives_close_and_reopen(tmp_path: Path) -> None:
    written = [entry(i, batch=i // 3) for i in range(10)]
    with LevelDB(tmp_path / "db") as db:
        Ledger(db).append(written)
    with LevelDB(tmp_path / "db") as db:
        ledger = Ledger(db)
        assert ledger.head == 10
        assert list(ledger.entries()) == written
        ledger.append([entry(10)])
        assert ledger.head == 11


def test_a_missing_or_corrupt_entry_below_the_head_is_an_error(tmp_path: Path) -> None:
    with LevelDB(tmp_path / "db") as db:
        ledger = Ledger(db)
        ledger.append([entry(i) for i in range(4)])
        db.delete(schema.log_key(2))
        with pytest.raises(LedgerError, match="entry 2 is missing"):
            list(ledger.entries())
        with pytest.raises(LedgerError, match="missing"):
            ledger.entry(2)
        db.put(schema.log_key(1), b"\xc1\x01")
        with pytest.raises(LedgerError, match="corrupt"):
            ledger.entry(1)


def test_concurrent_commits_share_one_sync_and_keep_their_order(tmp_path: Path) -> None:
    """A hundred requests committing at once are written in order, in fewer synced
    writes than entries (asyncio runs them all before the writer takes the group)."""

    async def run(ledger: Ledger) -> GroupCommitter:
        committer = GroupCommitter(ledger)
        await asyncio.gather(*(committer.commit(entry(i)) for i in range(100)))
        await committer.commit(entry(100))
        return committer

    with LevelDB(tmp_path / "db") as db:
        ledger = Ledger(db)
        committer = asyncio.run(run(ledger))
        assert ledger.head == 101
        assert [e.sequence for e in ledger.entries()] == list(range(101))
        assert 2 <= committer.groups < 101


def test_a_failed_write_fails_its_waiters_and_every_later_commit(tmp_path: Path) -> None:
    """Fail-stop: after the log refuses a group, nothing more is acknowledged."""

    async def run(ledger: Ledger) -> list[BaseException | None]:
        committer = GroupCommitter(ledger)
        await committer.commit(entry(0))
        results = await asyncio.gather(
            committer.commit(entry(1)), committer.commit(entry(3)), return_exceptions=True
        )
        with pytest.raises(LedgerError, match="must stop"):
            await committer.commit(entry(2))
        return list(results)

    with LevelDB(tmp_path / "db") as db:
        ledger = Ledger(db)
        results = asyncio.run(run(ledger))
        assert all(isinstance(r, LedgerError) for r in results)
        assert ledger.head == 1
