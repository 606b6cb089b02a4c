"""``durability="fsync"``: the journal, the term/vote file and the snapshot
reach stable storage before a member sends any Raft message or applies
(and so acknowledges) any entry."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultkit import replicator, wait_converged
from helpers import InProcessCluster, free_ports, wait_until

import coord
from coord import replication
from coord.replication import Replicator

pytestmark = pytest.mark.cluster


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts ``os.fsync`` calls by the base name of the synced file."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        with lock:
            counts[name] += 1
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    yield counts


def test_fsync_mode_works_end_to_end_and_syncs_journal_vote_and_snapshot(tmp_path: Path, fsynced: Counter[str]) -> None:
    cluster = InProcessCluster(3, data_root=str(tmp_path), durability="fsync", snapshot_entries=10).start()
    try:
        writer = cluster.members[0]
        for i in range(30):  # past snapshot_entries: every member compacts
            writer.create(f"/durable-{i:02d}", str(i).encode())
        wait_converged(cluster.members)
        assert fsynced["raft.journal"] >= 30, dict(fsynced)
        assert fsynced["raft.journal.meta.tmp"] >= 3, "the term/vote file was not fsynced before its rename"
        assert fsynced["raft.dump"] >= 3, "no snapshot was fsynced before the journal dropped its entries"
        assert sum(fsynced[f"m{i}"] for i in range(3)) >= 6, "the data directories were not fsynced"

        # A member restarted from its fsynced data_dir recovers and rejoins.
        restarted = cluster.members[2]
        restarted.stop()
        writer.create("/while-away", b"w")
        again = coord.Coordinator(
            restarted.address,
            peers=cluster.addresses,
            data_dir=str(tmp_path / "m2"),
            durability="fsync",
            session_timeout=2.0,
            snapshot_entries=10,
        )
        cluster.members[2] = again
        again.start(timeout=20)
        again.sync()
        assert again.get("/durable-29")[0] == b"29" and again.get("/while-away")[0] == b"w"
        wait_converged(cluster.members)
    finally:
        cluster.stop()


def test_no_raft_message_leaves_a_member_before_its_journal_is_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Raft requires a follower's entries (and a candidate's or voter's
    term) durable before its reply; coord checks it at the one point every
    outgoing message passes."""
    transmitted: Counter[str] = Counter()
    unsynced: list[tuple[str, str]] = []
    real_transmit = replication._GuardedTransport._transmit

    def checking_transmit(self: Any, node: Any, message: Any) -> bool:
        kind = replication.message_kind(message)
        transmitted[kind] += 1
        if self._raft_log.journal.unsynced:
            unsynced.append((self._selfNode.address, kind))
        return bool(real_transmit(self, node, message))

    monkeypatch.setattr(replication._GuardedTransport, "_transmit", checking_transmit)
    cluster = InProcessCluster(3, data_root=str(tmp_path), durability="fsync").start()
    try:
        futures = [cluster.members[i % 3].create_async(f"/n{i}", b"") for i in range(60)]
        for future in futures:
            future.result(10)
        wait_converged(cluster.members)
    finally:
        cluster.stop()
    # group commit batches appends under load, so fewer messages than writes
    assert transmitted["append_entries"] > 10 and transmitted["next_node_idx"] > 10
    assert transmitted["request_vote"] >= 1 and transmitted["response_vote"] >= 1
    assert not unsynced, f"messages sent with unsynced journal writes: {unsynced[:5]}"


def test_a_lone_member_applies_only_synced_entries(tmp_path: Path) -> None:
    """A lone member commits without sending anything, so the barrier also
    sits before every apply."""
    seen_unsynced: list[object] = []
    holder: list[Replicator] = []

    def apply(entry: object) -> object:
        if holder and holder[0]._raft_log.journal.unsynced:
            seen_unsynced.append(entry)
        return entry

    rep = Replicator(
        f"127.0.0.1:{free_ports(1)[0]}",
        [],
        apply_hook=apply,
        snapshot_hook=lambda: b"",
        restore_hook=lambda data: None,
        data_dir=str(tmp_path),
        durability="fsync",
    )
    holder.append(rep)
    try:
        wait_until(lambda: rep.status().role == "leader", 5, what="the lone member to lead")
        for i in range(20):
            rep.propose(("entry", i), lambda kind, reason: None)
        wait_until(lambda: rep.status().last_applied >= rep.status().last_log_index >= 21, 5, what="the applies")
    finally:
        rep.destroy()
    assert not seen_unsynced, f"entries applied before they were durable: {seen_unsynced[:5]}"


def test_the_default_mode_never_fsyncs_and_fsync_mode_needs_a_data_dir(tmp_path: Path, fsynced: Counter[str]) -> None:
    member = coord.Coordinator(f"127.0.0.1:{free_ports(1)[0]}", data_dir=str(tmp_path))
    member.start(timeout=10)
    try:
        member.create("/plain", b"")
        assert replicator(member).durability == "process-crash"
    finally:
        member.stop()
    assert not fsynced, "process-crash mode must keep pysyncobj's (unsynced) behaviour"
    with pytest.raises(ValueError, match="needs a data_dir"):
        coord.Coordinator("127.0.0.1:1", durability="fsync")
    with pytest.raises(ValueError, match="durability must be one of"):
        coord.Coordinator("127.0.0.1:1", data_dir=str(tmp_path), durability="sometimes")
    with pytest.raises(coord.ConfigurationError, match="needs a data_dir"):
        Replicator(
            "127.0.0.1:1",
            [],
            apply_hook=lambda e: e,
            snapshot_hook=lambda: b"",
            restore_hook=lambda d: None,
            durability="fsync",
        )
