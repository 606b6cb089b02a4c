"""The known holes of pysyncobj 0.3.17 (reliability.md section 2), each
driven on real members with the fault transport or a direct hook, and each
closed or shown harmless by coord's adapter."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

import pytest
from faultkit import faulty_cluster, leader_among, raft, wait_converged
from helpers import free_ports, wait_until

from coord import ops
from coord.replication import RaftTiming, Replicator, replicated_command_bytes

pytestmark = pytest.mark.cluster


# ---------------------------------------------------------------------- R1


def test_a_stale_append_entries_never_deletes_acknowledged_entries() -> None:
    """R1: a replayed AppendEntries from before a run of acknowledged writes
    reaches the follower that acknowledged them, then the leader is cut
    off. pysyncobj 0.3.17 would truncate the follower back to the stale
    message, and the new majority would lose the acknowledged writes."""
    # Slow elections: the stale copy must reach the follower before it gives
    # up on the (cut off) leader and moves to a higher term.
    timing = RaftTiming(election_timeout_min_s=1.2, election_timeout_max_s=1.6, leader_fallback_s=1.0)
    cluster, faults = faulty_cluster(seed=21, raft_timing=timing)
    try:
        leader = cluster.leader()
        acker, lagger = (m for m in cluster.members if m is not leader)
        leader.create("/r1", b"")
        lagging = faults.isolate(lagger.address)  # the leader now needs `acker` for every commit
        faults.set_stale_redelivery(
            1.0,
            min_delay_s=0.8,
            max_delay_s=0.8,
            src=leader.address,
            dst=acker.address,
            message_types=["append_entries"],
        )
        wait_until(lambda: faults.fate_count("stale") >= 1, 1, what="an AppendEntries to replay")
        faults.set_stale_redelivery(0.0)
        before = raft(acker).last_log_index
        acknowledged = [leader.create(f"/r1/w{i:02d}", b"acked") for i in range(20)]
        after = raft(acker).last_log_index
        assert after >= before + 20
        faults.isolate(leader.address)  # it cannot repair the follower any more
        assert faults.in_flight() == 1, "the stale copy arrived before the leader was cut off: too slow a machine?"
        wait_until(lambda: faults.in_flight() == 0, 3, what="the stale copy to reach the follower")
        time.sleep(0.1)
        assert raft(acker).term == raft(leader).term, "the follower moved on before the stale copy arrived"
        assert raft(acker).last_log_index == after, "the follower dropped entries it acknowledged (R1)"

        faults.heal(lagging)  # acker + lagger are a majority without the old leader
        new_leader = leader_among([acker, lagger])
        lagger.sync(timeout=10)
        missing = [path for path in acknowledged if lagger.exists(path) is None]
        assert not missing, f"acknowledged writes lost after a stale AppendEntries (R1): {missing}"
        assert new_leader is acker, "only the follower holding every acknowledged entry can win"

        faults.heal()
        wait_converged(cluster.members)
    finally:
        cluster.stop()


# ---------------------------------------------------------------------- R2


def test_a_rejoining_ex_leader_never_applies_its_uncommitted_entries() -> None:
    """R2: an ex-leader holding uncommitted entries of its old term rejoins
    while the majority, having compacted its log, can only send it a
    snapshot; the keep-alive sent while the leader serialises a snapshot
    (``serialized: None``) made pysyncobj commit the ex-leader's own
    unverified log, so it applied and acknowledged a write the majority
    never committed."""
    cluster, faults = faulty_cluster(seed=22, snapshot_entries=10, session_timeout=30.0, request_timeout=30.0)
    try:
        old = cluster.leader()
        majority = [m for m in cluster.members if m is not old]
        old.create("/r2", b"")
        alone = faults.isolate(old.address)
        phantom = old.create_async("/r2/phantom", b"never committed")
        wait_until(
            lambda: raft(old).last_log_index > raft(old).commit_index, 2, what="the phantom write in the old log"
        )
        new = leader_among(majority)
        for i in range(40):  # several compactions on the majority
            new.create(f"/r2/majority-{i:02d}", b"")
        assert raft(new).last_log_index > raft(old).last_log_index + 20

        # Let the ex-leader rejoin, minus the snapshot itself (so it keeps its
        # old log) and minus its retries of the phantom (so only its own
        # uncommitted entry could ever apply it).
        faults.cut_oneway(new.address, old.address, message_types=["install_snapshot"])
        faults.isolate(old.address, message_types=["apply_command"])
        faults.heal(alone)
        pending_before = faults.sent_count(new.address, old.address, "snapshot_pending")
        deadline = time.monotonic() + 15
        i = 0
        while faults.sent_count(new.address, old.address, "snapshot_pending") < pending_before + 3:
            assert time.monotonic() < deadline, "the leader never sent a snapshot_pending message"
            new.create(f"/r2/more-{i:03d}", b"")
            i += 1
            assert old.exists("/r2/phantom") is None, "the ex-leader applied an uncommitted entry (R2)"
            assert not phantom.done(), "the ex-leader acknowledged a write the majority never committed (R2)"
        time.sleep(0.3)
        assert old.exists("/r2/phantom") is None, "the ex-leader applied an uncommitted entry (R2)"
        assert not phantom.done(), "the ex-leader acknowledged a write the majority never committed (R2)"
        assert raft(old).role == "follower" and raft(old).term == raft(new).term

        faults.heal()  # the snapshot goes through; the phantom's retry may now commit for real
        wait_converged(cluster.members, timeout=20)
        if phantom.done() and phantom.exception() is None:
            for member in cluster.members:
                assert member.exists("/r2/phantom") is not None
    finally:
        cluster.stop()


# ---------------------------------------------------------------------- R4


def test_an_isolated_old_leader_acknowledges_no_write_and_no_sync() -> None:
    """R4: pysyncobj lets a deposed leader believe it leads; coord never
    acknowledges from that belief. Writes are acknowledged after the local
    apply of a committed entry, ``sync`` after its no-op commits: an
    isolated old leader acknowledges neither, and after ``sync`` returns on
    it, its reads include the majority's writes. (Harmless by design; the
    test fails if sync or a write were answered from leader state.)"""
    cluster, faults = faulty_cluster(seed=24, session_timeout=30.0, request_timeout=30.0)
    try:
        old = cluster.leader()
        majority = [m for m in cluster.members if m is not old]
        cut = faults.isolate(old.address)
        write = old.create_async("/r4-from-old-leader", b"x")
        synced = old.sync_async()
        new = leader_among(majority)
        new.create("/r4-from-majority", b"y")
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert not write.done(), "the isolated old leader acknowledged a write"
            assert not synced.done(), "the isolated old leader acknowledged a sync"
            assert old.exists("/r4-from-old-leader") is None
            time.sleep(0.05)
        assert old.exists("/r4-from-majority") is None

        faults.heal(cut)
        assert synced.result(15) == "/"
        assert old.get("/r4-from-majority")[0] == b"y", "a read after sync missed the majority's write"
        assert write.result(15) == "/r4-from-old-leader"
        for member in majority:
            member.sync()
            assert member.get("/r4-from-old-leader")[1].czxid == write.zxid
    finally:
        cluster.stop()


# ---------------------------------------------------------------------- R5


def _lone_replicator(apply_hook: Any) -> Replicator:
    address = f"127.0.0.1:{free_ports(1)[0]}"
    return Replicator(
        address,
        [],
        apply_hook=apply_hook,
        snapshot_hook=lambda: b"",
        restore_hook=lambda data: None,
    )


def test_an_entry_is_applied_once_even_when_the_apply_hook_raises() -> None:
    """R5: an exception escaping a replicated method makes pysyncobj retry
    the tick and apply the same entry again; the adapter's wrapper consumes
    the entry exactly once."""
    applied: list[object] = []
    raised = threading.Event()

    def hook(entry: object) -> object:
        applied.append(entry)
        if entry == "boom" and not raised.is_set():
            raised.set()
            raise RuntimeError("apply bug")
        return entry

    rep = _lone_replicator(hook)
    try:
        wait_until(lambda: rep.status().role == "leader", 5, what="the lone member to lead")
        failures: list[tuple[str, str]] = []
        for entry in ("before", "boom", "after"):
            rep.propose(entry, lambda kind, reason: failures.append((kind, reason)))
        wait_until(lambda: "after" in applied, 5, what="the entries to apply")
        time.sleep(0.2)  # a retried tick would re-apply within this
        assert raised.is_set()
        counts = Counter(applied)
        assert counts == {"before": 1, "boom": 1, "after": 1}, f"entries applied {dict(counts)} times (R5)"
        assert not failures
    finally:
        rep.destroy()


# ---------------------------------------------------------------------- R6


def _replicator_cluster(size: int, max_entry_bytes: int) -> tuple[list[Replicator], list[list[object]]]:
    addresses = [f"127.0.0.1:{port}" for port in free_ports(size)]
    logs: list[list[object]] = [[] for _ in addresses]
    reps = [
        Replicator(
            address,
            addresses,
            apply_hook=log.append,
            snapshot_hook=lambda: b"",
            restore_hook=lambda data: None,
            max_entry_bytes=max_entry_bytes,
        )
        for address, log in zip(addresses, logs, strict=True)
    ]
    return reps, logs


def _entry_of_command_size(size: int) -> bytes:
    """A bytes entry whose replicated command is exactly ``size`` bytes."""
    entry = b"\0" * size
    entry = b"\0" * (size - (replicated_command_bytes(entry) - size))
    assert replicated_command_bytes(entry) == size
    return entry


def test_entries_at_and_near_multiples_of_64k_replicate(caplog: pytest.LogCaptureFixture) -> None:
    """R6: pysyncobj splits an entry of at least ``appendEntriesBatchSizeBytes``
    into chunks and, for a command at or just below a multiple of the batch
    size, sends 'finish' before the last chunk, wedging the follower. coord
    sets the batch size above its largest entry, so entries stay whole.
    (The predicted permanent wedge does not happen in 0.3.17: the follower
    keeps its buffer after the failed unpickling, so the next chunk
    completes the entry; but each such entry raises out of its Raft tick.)"""
    max_entry = ops.HARD_MAX_DATA_BYTES + ops.MAX_ENTRY_OVERHEAD_BYTES
    reps, logs = _replicator_cluster(3, max_entry)
    try:
        leader = wait_until(lambda: next((r for r in reps if r.status().role == "leader"), None), 10, what="a leader")
        k64 = 64 * 1024
        sizes = [m * k64 + d for m in (1, 2, 16) for d in (-1, 0, 1)] + [ops.HARD_MAX_DATA_BYTES]
        entries = [_entry_of_command_size(size) for size in sizes]
        for entry in entries:
            leader.propose(entry, lambda kind, reason: None)
        with caplog.at_level(logging.ERROR, logger="coord.replication"):
            wait_until(
                lambda: all(len(log) >= len(entries) for log in logs),
                20,
                what="every member to apply the large entries",
            )
            time.sleep(0.2)
        failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not failures, f"replicating large entries failed Raft ticks (R6): {failures[:3]}"
        for log in logs:
            assert [len(e) for e in log[-len(entries) :]] == [len(e) for e in entries]  # type: ignore[arg-type]
        assert all(rep.append_entries_batch_bytes > max_entry for rep in reps)
    finally:
        for rep in reps:
            rep.destroy()


def test_znode_values_up_to_the_default_limit_replicate() -> None:
    cluster, _faults = faulty_cluster(seed=26)
    try:
        k64 = 64 * 1024
        sizes = [k64 - 1, k64, 2 * k64 - 40, 2 * k64, ops.DEFAULT_MAX_DATA_BYTES - k64, ops.DEFAULT_MAX_DATA_BYTES]
        writer = cluster.members[1]
        for size in sizes:
            writer.create(f"/big-{size}", bytes([size % 251]) * size)
        zxid = wait_converged(cluster.members)
        for member in cluster.members:
            assert member.status().zxid == zxid
            for size in sizes:
                assert member.get(f"/big-{size}")[1].dataLength == size
    finally:
        cluster.stop()


def test_the_replicated_command_size_matches_the_journal() -> None:
    """``replicated_command_bytes`` (used above to hit exact sizes) is what
    pysyncobj stores: checked against a member's journal."""
    seen: list[object] = []
    rep = _lone_replicator(seen.append)
    try:
        wait_until(lambda: rep.status().role == "leader", 5, what="the lone member to lead")
        entry = ("x" * 1000, 12345678901234, 7)
        rep.propose(entry, lambda kind, reason: None)
        wait_until(lambda: entry in seen, 5, what="the entry to apply")
        journal = rep._raft_log.journal
        assert len(journal[-1][0]) == replicated_command_bytes(entry)
    finally:
        rep.destroy()


def test_a_stale_reset_reply_never_undoes_a_deeper_back_off() -> None:
    from coord.replication import ReplicationBackoff

    backoff = ReplicationBackoff()

    def reset(index: int) -> dict:
        return {"type": "next_node_idx", "next_node_idx": index, "reset": True, "success": False}

    assert backoff.screen("b", reset(85), term=8)["next_node_idx"] == 85  # mismatch at 85
    assert backoff.screen("b", reset(86), term=8)["next_node_idx"] == 85  # a stale "I end at 85": not above 85
    assert backoff.screen("b", reset(84), term=8)["next_node_idx"] == 84
    assert backoff.screen("c", reset(90), term=8)["next_node_idx"] == 90  # per follower
    success = {"type": "next_node_idx", "next_node_idx": 120, "reset": False, "success": True}
    assert backoff.screen("b", success, term=8) == success
    assert backoff.screen("b", reset(100), term=8)["next_node_idx"] == 100  # the log changed: a fresh back-off
    assert backoff.screen("c", reset(95), term=9)["next_node_idx"] == 95  # a new term starts over


def test_a_deposed_leader_with_uncommitted_entries_catches_up_after_heal() -> None:
    # Found by the Jepsen runs: pysyncobj's leader bounced between two
    # back-off points forever and the ex-leader never caught up.
    cluster, faults = faulty_cluster(seed=5, session_timeout=3.0)
    try:
        old = leader_among(cluster.members)
        others = [m for m in cluster.members if m is not old]
        for i in range(20):
            old.create(f"/pre-{i}")
        faults.isolate(old.address)
        orphans = [old.create_async(f"/orphan-{i}", timeout=2.0) for i in range(30)]  # appended, never committed
        new = leader_among(others, timeout=15)
        for i in range(200):
            new.create(f"/majority-{i}")
        faults.heal()
        zxid = wait_converged(cluster.members, timeout=20)
        assert all(m.status().zxid == zxid for m in cluster.members)
        assert old.exists("/majority-199") is not None
        for future in orphans:  # each either failed definitely or, if it was applied, is readable
            if future.exception(10) is None:
                assert old.exists(future.result()) is not None
    finally:
        cluster.stop()
