"""coord's Raft journal (``replication._CoordJournal``, reliability.md R3):
checksummed append-only records, a torn or corrupt tail cut off on open,
compaction that a crash at any step cannot half-apply, a compaction
interrupted between pysyncobj's snapshot and its journal truncation
finished on restart, and a term/vote file that fails loudly when damaged."""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import free_ports, wait_until
from pysyncobj.config import SERIALIZER_STATE
from pysyncobj.journal import FileJournal
from pysyncobj.serializer import Serializer

from coord.errors import ConfigurationError
from coord.replication import Replicator, _CoordJournal

pytestmark = pytest.mark.timeout(60)

NO_OP = b"\x01"  # pysyncobj's no-op command: a replica can apply a journal of these


def entries(first: int, last: int, term: int = 1) -> list[tuple[bytes, int, int]]:
    return [(b"cmd-%d" % i, i, term) for i in range(first, last + 1)]


def journal_path(tmp_path: Path) -> str:
    return str(tmp_path / "raft.journal")


def open_journal(tmp_path: Path, *, durable: bool = False, dump: bool = False) -> _CoordJournal:
    return _CoordJournal(journal_path(tmp_path), str(tmp_path / "raft.dump") if dump else None, durable=durable)


def filled(tmp_path: Path, items: list[tuple[bytes, int, int]], **kwargs: Any) -> _CoordJournal:
    journal = open_journal(tmp_path, **kwargs)
    for entry in items:
        journal.add(*entry)
    return journal


def crash(journal: _CoordJournal) -> None:
    """Abandon ``journal`` as a SIGKILL would: no flush, no meta store, only
    the file descriptor is closed (so tests do not leak it)."""
    if journal._fd is not None:
        with contextlib.suppress(OSError):
            os.close(journal._fd)
        journal._fd = None


@pytest.mark.parametrize("durable", [False, True], ids=["process-crash", "fsync"])
def test_entries_term_vote_and_commit_index_survive_a_reopen(tmp_path: Path, durable: bool) -> None:
    journal = filled(tmp_path, entries(1, 50), durable=durable)
    journal.setCurrentTerm(7, "127.0.0.1:5000")
    journal.setRaftCommitIndex(42)
    assert (journal.getCurrentTerm(), journal.getVotedForNodeId(), journal.getRaftCommitIndex()) == (
        7,
        "127.0.0.1:5000",
        42,
    )
    journal._destroy()
    again = open_journal(tmp_path, durable=durable)
    try:
        assert list(again[:]) == entries(1, 50) and len(again) == 50 and again[-1] == (b"cmd-50", 50, 1)
        assert (again.getCurrentTerm(), again.getVotedForNodeId(), again.getRaftCommitIndex()) == (
            7,
            "127.0.0.1:5000",
            42,
        )
        again.add(b"more", 51, 2)
    finally:
        again._destroy()
    assert open_journal(tmp_path)[-1] == (b"more", 51, 2)


def test_a_killed_member_keeps_its_vote_and_every_completed_append(tmp_path: Path) -> None:
    journal = filled(tmp_path, entries(1, 20))
    journal.setCurrentTerm(3, "127.0.0.1:1")  # stored before it returns: a vote request may follow at once
    crash(journal)
    again = open_journal(tmp_path)
    assert len(again) == 20 and again.getCurrentTerm() == 3 and again.getVotedForNodeId() == "127.0.0.1:1"
    assert again.getRaftCommitIndex() == 1, "no commit index was stored: pysyncobj's default"


def test_a_fresh_journal_is_empty_with_pysyncobj_defaults(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    assert len(journal) == 0 and journal.getCurrentTerm() == 0 and journal.getVotedForNodeId() is None
    assert journal.getRaftCommitIndex() == 1


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_a_torn_last_record_is_cut_off_on_open(tmp_path: Path, cut: int) -> None:
    filled(tmp_path, entries(1, 10))._destroy()
    path = journal_path(tmp_path)
    intact = os.path.getsize(path) - len(b"cmd-10") - 8 - 16  # the end of record 9
    os.truncate(path, os.path.getsize(path) - cut)  # a crash in the middle of appending record 10
    again = open_journal(tmp_path)
    assert list(again[:]) == entries(1, 9)
    assert os.path.getsize(path) == intact, "the torn bytes must be gone, so the next append follows record 9"
    again.add(b"after", 10, 2)
    again._destroy()
    assert list(open_journal(tmp_path)[:]) == [*entries(1, 9), (b"after", 10, 2)]


def test_reading_stops_at_the_first_record_that_fails_its_checksum(tmp_path: Path) -> None:
    filled(tmp_path, entries(1, 10))._destroy()
    path = journal_path(tmp_path)
    data = bytearray(Path(path).read_bytes())
    where = data.index(b"cmd-6")
    data[where + 4] ^= 0x01  # one flipped bit in record 6's command
    Path(path).write_bytes(bytes(data))
    again = open_journal(tmp_path)
    assert list(again[:]) == entries(1, 5), "nothing at or after a damaged record may be trusted"
    assert b"cmd-7" not in Path(path).read_bytes()


def test_a_damaged_length_field_is_not_read_past_the_file(tmp_path: Path) -> None:
    filled(tmp_path, entries(1, 3))._destroy()
    path = journal_path(tmp_path)
    data = bytearray(Path(path).read_bytes())
    data[data.index(b"cmd-3") - 16 - 8 + 3] = 0x7F  # record 3 now claims ~2 GiB
    Path(path).write_bytes(bytes(data))
    assert list(open_journal(tmp_path)[:]) == entries(1, 2)


def test_delete_entries_from_truncates_the_conflicting_tail(tmp_path: Path) -> None:
    journal = filled(tmp_path, entries(1, 10))
    journal.deleteEntriesFrom(6)  # Raft: entries 7.. conflict with the leader's
    assert list(journal[:]) == entries(1, 6)
    journal.add(b"leader", 7, 2)
    journal.deleteEntriesFrom(100)  # beyond the end: nothing to delete
    assert len(journal) == 7
    crash(journal)
    assert list(open_journal(tmp_path)[:]) == [*entries(1, 6), (b"leader", 7, 2)]


def test_compaction_keeps_the_tail_and_appends_continue(tmp_path: Path) -> None:
    journal = filled(tmp_path, entries(1, 100))
    journal.deleteEntriesTo(60)
    assert list(journal[:]) == entries(61, 100) and journal[0][1] == 61
    journal.add(b"next", 101, 1)
    crash(journal)
    assert list(open_journal(tmp_path)[:]) == [*entries(61, 100), (b"next", 101, 1)]
    assert not os.path.exists(journal_path(tmp_path) + ".compact")


class Killed(BaseException):
    """The simulated SIGKILL (a BaseException, so nothing catches it)."""


@contextlib.contextmanager
def kill_at_call(number: int) -> Iterator[list[str]]:
    """Raise ``Killed`` instead of making the ``number``-th call (1-based)
    to any of the OS functions the journal writes with; yields the calls
    made so far."""
    calls: list[str] = []
    names = ("open", "pwrite", "write", "fsync", "ftruncate", "replace", "close")
    originals = {name: getattr(os, name) for name in names}

    def wrap(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is threading.main_thread():
                calls.append(name)
                if len(calls) == number:
                    raise Killed(f"killed at {name} (call {number})")
            return real(*args, **kwargs)

        return step

    for name, real in originals.items():
        setattr(os, name, wrap(name, real))
    try:
        yield calls
    finally:
        for name, real in originals.items():
            setattr(os, name, real)


@pytest.mark.parametrize("durable", [False, True], ids=["process-crash", "fsync"])
def test_a_kill_at_any_step_of_a_compaction_leaves_the_old_or_the_new_journal(tmp_path: Path, durable: bool) -> None:
    old, new = entries(1, 40), entries(31, 40)
    step = 0
    outcomes = set()
    while True:
        step += 1
        directory = tmp_path / f"step{step}"
        directory.mkdir()
        journal = filled(directory, old, durable=durable)
        finished = False
        with kill_at_call(step) as calls:
            try:
                journal.deleteEntriesTo(30)
                finished = True
            except Killed:
                pass
        crash(journal)
        reopened = open_journal(directory, durable=durable)
        got = list(reopened[:])
        assert got in (old, new), f"killed at {calls[-1]} (step {step}): the journal is neither whole version"
        outcomes.add("new" if got == new else "old")
        reopened.add(b"after", 41, 1)  # and it is usable
        reopened._destroy()
        assert sorted(os.listdir(directory)) == ["raft.journal"], "a leftover rewrite was not removed"
        if finished:
            break
    assert outcomes == {"old", "new"} and step > 4, (step, outcomes)


def test_clear_leaves_the_old_journal_on_disk_until_the_next_write(tmp_path: Path) -> None:
    """pysyncobj's snapshot load is clear() then two add()s: a kill between
    them must not leave an empty journal."""
    journal = filled(tmp_path, entries(1, 10))
    journal.clear()
    assert len(journal) == 0
    crash(journal)
    assert list(open_journal(tmp_path)[:]) == entries(1, 10)

    journal = open_journal(tmp_path)
    journal.clear()
    journal.add(b"snap-1", 20, 2)
    journal.add(b"snap-2", 21, 2)
    crash(journal)
    assert list(open_journal(tmp_path)[:]) == [(b"snap-1", 20, 2), (b"snap-2", 21, 2)]


def test_fsync_mode_tracks_unsynced_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    journal = open_journal(tmp_path, durable=True)
    assert not journal.unsynced
    journal.add(b"a", 1, 1)
    journal.add(b"b", 2, 1)
    assert journal.unsynced
    before = len(synced)
    journal.sync()
    assert not journal.unsynced and len(synced) == before + 1, "one fsync covers a batch of appends"
    journal.sync()
    assert len(synced) == before + 1, "a sync with nothing new costs nothing"
    journal.deleteEntriesFrom(1)
    assert journal.unsynced
    journal._destroy()
    (tmp_path / "plain").mkdir()
    plain = open_journal(tmp_path / "plain")
    count = len(synced)
    plain.add(b"x", 1, 1)
    plain.setCurrentTerm(1, None)
    plain.deleteEntriesTo(0)
    plain.sync()
    plain._destroy()
    assert len(synced) == count and not plain.unsynced, "the default mode never fsyncs"


def corrupt_meta(tmp_path: Path) -> Path:
    journal = open_journal(tmp_path)
    journal.setCurrentTerm(5, "127.0.0.1:2")
    journal._destroy()
    return tmp_path / "raft.journal.meta"


def test_a_damaged_term_vote_file_stops_the_member(tmp_path: Path) -> None:
    meta = corrupt_meta(tmp_path)
    data = bytearray(meta.read_bytes())
    data[-3] ^= 0x20
    meta.write_bytes(bytes(data))
    with pytest.raises(ConfigurationError, match="term/vote file .* checksum does not match.*vote twice"):
        open_journal(tmp_path)


@pytest.mark.parametrize(
    "content",
    [b"", b"COORDM\x00\x01\x05", pickle.dumps({"currentTerm": 5, "votedForNodeId": "x"})],
    ids=["empty", "truncated", "pysyncobj-format"],
)
def test_an_unreadable_term_vote_file_is_never_taken_for_no_vote(tmp_path: Path, content: bytes) -> None:
    corrupt_meta(tmp_path).write_bytes(content)
    with pytest.raises(ConfigurationError, match="cannot be read"):
        open_journal(tmp_path)


def test_a_vote_that_could_not_be_read_back_is_refused_when_stored(tmp_path: Path) -> None:
    journal = open_journal(tmp_path)
    with pytest.raises(TypeError, match="node ids"):
        journal.setCurrentTerm(2, 12345)  # type: ignore[arg-type]


def test_a_journal_in_pysyncobjs_format_is_refused_with_advice(tmp_path: Path) -> None:
    legacy = FileJournal(journal_path(tmp_path))
    legacy.add(b"x", 1, 1)
    legacy._destroy()
    with pytest.raises(ConfigurationError, match="pysyncobj's own FileJournal format.*empty data_dir"):
        open_journal(tmp_path)


def write_dump(tmp_path: Path, before_last: tuple[bytes, int, int], last: tuple[bytes, int, int]) -> None:
    """A snapshot as pysyncobj writes it (its own Serializer), of state up to ``last``."""
    serializer = Serializer(str(tmp_path / "raft.dump"), 0, False, None, None, None)
    serializer.serialize(([{}, {"coord_snapshot": b"snapshot-state"}], last, before_last, set()), before_last[1])
    assert serializer.checkSerializing()[0] == SERIALIZER_STATE.SUCCESS


def test_a_compaction_cut_short_after_the_snapshot_is_finished_on_open(tmp_path: Path) -> None:
    """The kill lands after pysyncobj replaced its snapshot (entries 29, 30)
    and before the journal dropped entries 1-28: on open the journal is
    compacted to start at the snapshot's entries, so pysyncobj's restart
    check passes and entries 31-40 stay."""
    log = entries(1, 40)
    crash(filled(tmp_path, log))
    write_dump(tmp_path, log[28], log[29])
    journal = open_journal(tmp_path, dump=True)
    assert list(journal[:]) == log[28:]
    crash(journal)
    assert list(open_journal(tmp_path)[:]) == log[28:], "the finished compaction is on disk"


@pytest.mark.parametrize(
    "snapshot",
    [
        ((b"cmd-29", 29, 2), (b"cmd-30", 30, 2)),  # same indexes, other terms: the journal conflicts
        ((b"cmd-59", 59, 1), (b"cmd-60", 60, 1)),  # the snapshot is past the journal's end
        ((b"cmd-1", 1, 1), (b"cmd-2", 2, 1)),  # the journal already starts at the snapshot
    ],
    ids=["conflicting", "ahead", "already-compacted"],
)
def test_a_journal_that_does_not_hold_the_snapshot_entries_is_left_to_pysyncobj(
    tmp_path: Path, snapshot: tuple[tuple[bytes, int, int], tuple[bytes, int, int]]
) -> None:
    crash(filled(tmp_path, entries(1, 40)))
    write_dump(tmp_path, *snapshot)
    assert list(open_journal(tmp_path, dump=True)[:]) == entries(1, 40)


def test_an_unreadable_snapshot_leaves_the_journal_alone(tmp_path: Path) -> None:
    crash(filled(tmp_path, entries(1, 10)))
    (tmp_path / "raft.dump").write_bytes(b"not a snapshot")
    assert len(open_journal(tmp_path, dump=True)) == 10


def test_a_replica_restarted_between_snapshot_and_compaction_keeps_the_entries_after_it(tmp_path: Path) -> None:
    """End to end through pysyncobj's restart path (``__loadDumpFile``): a
    replica whose journal holds entries 1-40 and whose snapshot covers up to
    30 restarts with its log still reaching 40, and applies from the
    snapshot on. (pysyncobj's own journal would keep only 29 and 30.)"""
    log = [(NO_OP, i, 1) for i in range(1, 41)]
    journal = filled(tmp_path, log)
    journal.setCurrentTerm(1, None)
    journal.setRaftCommitIndex(40)
    journal._destroy()
    write_dump(tmp_path, log[28], log[29])
    restored: list[bytes] = []
    replica = Replicator(
        f"127.0.0.1:{free_ports(1)[0]}",
        [],
        apply_hook=lambda entry: entry,
        snapshot_hook=lambda: b"",
        restore_hook=restored.append,
        data_dir=str(tmp_path),
    )
    try:
        wait_until(lambda: replica.status().role == "leader", 10, what="the lone replica to lead")
        wait_until(lambda: replica.status().last_applied >= 41, 10, what="the replica to apply its log")
        status = replica.status()
        assert restored == [b"snapshot-state"]
        assert status.last_log_index == 41 and status.commit_index >= 41, status  # 1-40 plus the leader's no-op
        assert replica._raft_log.journal[0][1] == 29, "the journal starts at the snapshot's entries"
    finally:
        replica.destroy()
