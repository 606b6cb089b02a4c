"""Multi-process tests: each member is its own OS process on loopback, so
SIGKILL, SIGSTOP and restarts from data_dir behave as in production."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from helpers import wait_until

from coord.errors import CoordError
from coord.local_cluster import LocalCluster, MemberProcess, RpcError

pytestmark = pytest.mark.multiprocess

SESSION_TIMEOUT = 3.0


def _write_until_ok(member: MemberProcess, path: str, deadline_s: float) -> float:
    """Retry a create on ``member`` until it succeeds; returns when (monotonic)."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            member.create(path, b"after-failover", timeout=10.0)
            return time.monotonic()
        except (CoordError, RpcError):
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def test_leader_sigkill_writes_resume_and_its_ephemerals_go(tmp_path: Path) -> None:
    with LocalCluster(3, data_root=tmp_path, session_timeout=SESSION_TIMEOUT) as cluster:
        leader = cluster.leader()
        survivor, other = [m for m in cluster.members if m is not leader]
        leader.create("/durable", b"before")
        leader.create("/leader-eph", b"", ephemeral=True)
        survivor.sync()
        watch_id = survivor.watch("exists", "/leader-eph")

        killed_at = time.monotonic()
        leader.kill()
        resumed_at = _write_until_ok(survivor, "/written-after-kill", deadline_s=SESSION_TIMEOUT + 10)
        wait_until(
            lambda: survivor.exists("/leader-eph") is None,
            timeout=SESSION_TIMEOUT + 3.0 - (time.monotonic() - killed_at),
            what="the dead leader's ephemeral to disappear",
        )
        gone_after = time.monotonic() - killed_at
        event = survivor.wait_watch_event(watch_id, wait=2.0)
        assert event is not None and event["type"] == "DELETED" and event["path"] == "/leader-eph"
        assert gone_after <= SESSION_TIMEOUT + 3.0, gone_after
        assert resumed_at - killed_at < SESSION_TIMEOUT + 3.0

        other.sync()
        assert other.get("/written-after-kill")[0] == b"after-failover"
        new_leader = cluster.leader()
        assert new_leader is not leader

        # the killed member comes back from its data_dir and catches up
        leader.restart()
        leader.sync()
        assert leader.get("/durable")[0] == b"before"
        assert leader.get("/written-after-kill")[0] == b"after-failover"
        assert leader.exists("/leader-eph") is None


def test_sigkill_of_all_members_loses_no_acknowledged_write(tmp_path: Path) -> None:
    acknowledged: dict[str, bytes] = {}
    lock = threading.Lock()
    stop = threading.Event()

    with LocalCluster(3, data_root=tmp_path, session_timeout=SESSION_TIMEOUT) as cluster:
        for member in cluster.members:
            member.ensure_path(f"/acked/{member.name}")

        def writer(member: MemberProcess) -> None:
            for i in range(10_000):  # bounded; the stop event ends it first
                if stop.is_set():
                    return
                path, value = f"/acked/{member.name}/k{i}", f"{member.name}:{i}".encode()
                try:
                    member.create(path, value, timeout=5.0)
                except (CoordError, RpcError):
                    return  # the member was killed mid-call: outcome unknown, not acknowledged
                with lock:
                    acknowledged[path] = value

        threads = [threading.Thread(target=writer, args=(m,)) for m in cluster.members]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(acknowledged) >= 150, timeout=30, what="150 acknowledged writes")
        for member in cluster.members:  # as close to simultaneous as signals get
            member.kill()
        stop.set()
        for thread in threads:
            thread.join(15)
        with lock:
            snapshot = dict(acknowledged)

        for member in cluster.members:
            member.spawn()
        for member in cluster.members:
            member.wait_ready(30)
        reader = cluster.members[0]
        reader.sync()
        missing = [p for p, v in snapshot.items() if reader.exists(p) is None]
        assert not missing, f"{len(missing)} of {len(snapshot)} acknowledged writes lost: {missing[:5]}"
        wrong = [p for p, v in snapshot.items() if reader.get(p)[0] != v]
        assert not wrong, wrong[:5]


def test_a_paused_member_loses_its_session_and_gets_a_new_one(tmp_path: Path) -> None:
    with LocalCluster(3, session_timeout=SESSION_TIMEOUT) as cluster:
        victim = cluster.followers()[0]
        observer = next(m for m in cluster.members if m is not victim)
        old_session = victim.session_id()
        victim.create("/victim-eph", b"", ephemeral=True)
        observer.sync()
        assert observer.exists("/victim-eph") is not None

        victim.pause()
        paused_at = time.monotonic()
        try:
            wait_until(
                lambda: observer.exists("/victim-eph") is None,
                timeout=SESSION_TIMEOUT + 3.0,
                what="the paused member's ephemeral to expire",
            )
            # never while the session could still be alive
            assert time.monotonic() - paused_at >= SESSION_TIMEOUT * 0.9
        finally:
            victim.resume()

        lost = victim.call("wait_listener_state", "LOST", 15.0, timeout=25.0)
        assert lost is not None, victim.listener_states()
        states = [s["state"] for s in victim.listener_states()]
        index = states.index("LOST")
        wait_until(
            lambda: "CONNECTED" in [s["state"] for s in victim.listener_states()[index:]],
            timeout=15,
            what="a new session after LOST",
        )
        assert victim.session_id() != old_session
        victim.sync()
        assert victim.exists("/victim-eph") is None  # an expired session's ephemerals stay gone
        victim.create("/victim-eph-2", b"", ephemeral=True)  # the new session works
        observer.sync()
        assert observer.get("/victim-eph-2")[1].ephemeralOwner == victim.session_id()


def test_a_member_cut_off_from_the_majority_is_suspended_then_reconnects(tmp_path: Path) -> None:
    with LocalCluster(3, data_root=tmp_path, session_timeout=SESSION_TIMEOUT) as cluster:
        lonely = cluster.members[0]
        others = cluster.members[1:]
        lonely.create("/lonely-eph", b"", ephemeral=True)
        for member in others:
            member.kill()
        suspended = lonely.call("wait_listener_state", "SUSPENDED", SESSION_TIMEOUT + 5.0, timeout=SESSION_TIMEOUT + 15)
        assert suspended is not None, lonely.listener_states()
        count = len(lonely.listener_states())
        for member in others:
            member.spawn()
        for member in others:
            member.wait_ready(30)
        # the new leader grants every session a fresh timeout, so this one survives
        reconnected = lonely.call("wait_listener_state", "CONNECTED", 20.0, count, timeout=30)
        assert reconnected is not None, lonely.listener_states()
        lonely.sync()
        assert lonely.exists("/lonely-eph") is not None
