"""Persistent and recursive watches on a real 3-member cluster: every
committed change delivered once, in commit order, with no gaps, across a
leader change; slow callbacks never stall writes; the overflow policy."""

from __future__ import annotations

import concurrent.futures
import random
import threading
from typing import Any

import pytest
from helpers import InProcessCluster, wait_until

import coord
from coord import EventType, WatchedEvent
from coord.errors import CoordError

pytestmark = pytest.mark.cluster

ROOT = "/pw"
NAMES = ["a", "b", "c"]


class Recorder:
    """A persistent-watch callback that records (type, path) in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, event: WatchedEvent) -> None:
        with self.lock:
            self.events.append((event.type, event.path))

    def snapshot(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self.events)


def _random_op(rng: random.Random) -> tuple[str, tuple[Any, ...]]:
    """A write on a small namespace under ROOT, so that creates, deletes,
    sets and multis collide and many fail."""
    depth_two = rng.random() < 0.4
    path = f"{ROOT}/{rng.choice(NAMES)}" + (f"/{rng.choice(NAMES)}" if depth_two else "")
    kind = rng.choice(["create", "create", "set", "delete", "multi"])
    if kind == "multi":
        other = f"{ROOT}/{rng.choice(NAMES)}"
        return "multi", (("create", path), ("set", other))
    return kind, (path,)


def _submit(member: coord.Coordinator, kind: str, args: tuple[Any, ...], value: bytes) -> concurrent.futures.Future:
    if kind == "create":
        return member.create_async(args[0], value)
    if kind == "set":
        return member.set_async(args[0], value)
    if kind == "delete":
        return member.delete_async(args[0])
    txn = member.transaction()
    for sub_kind, path in args:
        txn.create(path, value) if sub_kind == "create" else txn.set_data(path, value)
    return txn.commit_async()


def _events_of(kind: str, args: tuple[Any, ...]) -> list[tuple[str, str]]:
    def parent(path: str) -> str:
        return path[: path.rfind("/")] or "/"

    if kind == "create":
        return [(EventType.CREATED, args[0]), (EventType.CHILD, parent(args[0]))]
    if kind == "set":
        return [(EventType.CHANGED, args[0])]
    if kind == "delete":
        return [(EventType.DELETED, args[0]), (EventType.CHILD, parent(args[0]))]
    return [event for sub_kind, path in args for event in _events_of(sub_kind, (path,))]


def _run_writes(members: list[coord.Coordinator], rng: random.Random, count: int) -> list[tuple[int, list]]:
    """``count`` random writes spread over ``members``, up to 64 in flight;
    returns ``(zxid, events)`` of each one that succeeded."""
    done: list[tuple[int, list]] = []
    pending: list[tuple[concurrent.futures.Future, str, tuple]] = []
    for index in range(count):
        kind, args = _random_op(rng)
        member = members[index % len(members)]
        pending.append((_submit(member, kind, args, str(index).encode()), kind, args))
        if len(pending) >= 64 or index == count - 1:
            for future, kind, args in pending:
                try:
                    result = future.result(timeout=30)
                    if kind == "multi" and any(isinstance(item, Exception) for item in result):
                        continue  # a failed multi fires nothing
                except (coord.NoNodeError, coord.NodeExistsError, coord.NotEmptyError, coord.RolledBackError):
                    continue  # a failed write fires nothing
                except coord.BadVersionError:
                    continue
                done.append((future.zxid, _events_of(kind, args)))  # type: ignore[attr-defined]
            pending.clear()
    return done


def _expected(done: list[tuple[int, list]], path: str, recursive: bool) -> list[tuple[str, str]]:
    events = [event for _, evs in sorted(done, key=lambda item: item[0]) for event in evs]
    if recursive:
        prefix = path.rstrip("/") + "/"
        return [(t, p) for t, p in events if t != EventType.CHILD and (p == path or p.startswith(prefix))]
    return [(t, p) for t, p in events if p == path]


def test_every_committed_change_in_commit_order_across_a_leader_change() -> None:
    rng = random.Random(4242)
    cluster = InProcessCluster(3, session_timeout=5.0).start()
    try:
        members = cluster.members
        members[0].create(ROOT)
        for member in members:
            member.sync()
        recorders: dict[tuple[int, str, bool], Recorder] = {}
        for index, member in enumerate(members):
            for path, recursive in [(ROOT, True), (f"{ROOT}/a", False), (f"{ROOT}/a/b", True), ("/nowhere", True)]:
                recorder = recorders[(index, path, recursive)] = Recorder()
                member.add_watch(path, recorder, recursive=recursive)

        done = _run_writes(members, rng, 1500)
        leader = cluster.leader()
        survivors = [m for m in members if m is not leader]
        leader.stop()
        wait_until(lambda: any(m.status().role == "leader" for m in survivors), 20, what="a new leader")
        done += _run_writes(survivors, rng, 1000)
        assert len(done) > 500, "too few writes succeeded to test anything"

        for (index, path, recursive), recorder in recorders.items():
            member = members[index]
            if member is leader:
                continue
            expected = _expected(done, path, recursive)
            wait_until(lambda r=recorder, e=expected: len(r.snapshot()) >= len(e), 30, what=f"events on {path}")
            assert recorder.snapshot() == expected, f"member {index}, watch on {path} (recursive={recursive})"
        assert recorders[(0, "/nowhere", True)].snapshot() == []
        counts = {len(_expected(done, ROOT, True)), len(_expected(done, f"{ROOT}/a", False))}
        assert min(counts) > 100
    finally:
        cluster.stop()


def test_slow_callback_never_stalls_writes_and_still_gets_everything() -> None:
    cluster = InProcessCluster(3, session_timeout=5.0).start()
    try:
        member = cluster.followers()[0]
        gate = threading.Event()
        seen = Recorder()

        def slow(event: WatchedEvent) -> None:
            gate.wait(30)
            seen(event)

        member.add_watch("/slow", slow, recursive=True)
        fast = Recorder()
        member.add_watch("/slow", fast, recursive=True)
        member.create("/slow")
        futures = [member.create_async(f"/slow/n{i}") for i in range(300)]
        for future in futures:
            future.result(timeout=20)  # all committed while ``slow`` is blocked
        wait_until(lambda: len(fast.snapshot()) == 301, 10, what="the fast watcher's events")
        assert len(seen.snapshot()) == 0
        gate.set()
        wait_until(lambda: len(seen.snapshot()) == 301, 20, what="the slow watcher catching up")
        assert seen.snapshot() == [(EventType.CREATED, "/slow")] + [
            (EventType.CREATED, f"/slow/n{i}") for i in range(300)
        ]
    finally:
        cluster.stop()


def test_overflow_cancels_the_watch_with_a_final_event_and_remove_watch_ends_it() -> None:
    cluster = InProcessCluster(1, session_timeout=5.0, max_watch_queue=10).start()
    try:
        (member,) = cluster.members
        gate = threading.Event()
        seen = Recorder()

        def blocked(event: WatchedEvent) -> None:
            gate.wait(30)
            seen(event)

        member.add_watch("/o", blocked, recursive=True)
        member.create("/o")
        for i in range(30):
            member.create(f"/o/n{i}")
        gate.set()
        wait_until(lambda: seen.snapshot() and seen.snapshot()[-1][0] == EventType.WATCH_OVERFLOW, 10, what="overflow")
        events = seen.snapshot()
        # the first event was taken by the blocked callback; 10 more were queued
        assert events[:-1] == [(EventType.CREATED, "/o")] + [(EventType.CREATED, f"/o/n{i}") for i in range(10)]
        assert events[-1] == (EventType.WATCH_OVERFLOW, "/o")
        member.create("/o/after")
        member.sync()
        assert member.remove_watch("/o", blocked) is False  # already cancelled

        plain = Recorder()
        member.add_watch("/o/after", plain)
        member.set("/o/after", b"1")
        assert member.remove_watch("/o/after", plain) is True
        member.set("/o/after", b"2")
        member.sync()
        wait_until(lambda: len(plain.snapshot()) == 2, 10, what="the removal event")
        assert plain.snapshot() == [
            (EventType.CHANGED, "/o/after"),
            (EventType.PERSISTENT_WATCH_REMOVED, "/o/after"),
        ]
    finally:
        cluster.stop()


def test_persistent_watch_bad_input() -> None:
    cluster = InProcessCluster(1, session_timeout=5.0).start()
    try:
        (member,) = cluster.members
        with pytest.raises(coord.InvalidPathError):
            member.add_watch("no-slash", Recorder())
        with pytest.raises(TypeError, match="func must be callable"):
            member.add_watch("/x", "not callable")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="recursive must be a bool"):
            member.add_watch("/x", Recorder(), recursive="yes")  # type: ignore[arg-type]
    finally:
        cluster.stop()


def test_admin_reads_get_ephemerals_and_all_children_number() -> None:
    cluster = InProcessCluster(3, session_timeout=5.0).start()
    try:
        a, b = cluster.members[0], cluster.members[1]
        a.create("/svc/x", makepath=True)
        a.create("/svc/x/e1", ephemeral=True)
        a.create("/svc/e2", ephemeral=True)
        b.create("/svc/b1", ephemeral=True)
        a.create("/other", ephemeral=True)
        assert a.get_ephemerals("/svc") == ["/svc/e2", "/svc/x/e1"]
        assert a.get_ephemerals() == ["/other", "/svc/e2", "/svc/x/e1"]
        assert a.get_ephemerals("/svc/x/") == ["/svc/x/e1"]
        assert b.get_ephemerals("/") == ["/svc/b1"]
        b.sync()
        assert b.get_all_children_number("/svc") == 4
        assert b.get_all_children_number("/svc/x/e1") == 0
        with pytest.raises(coord.NoNodeError):
            b.get_all_children_number("/missing")
        with pytest.raises(CoordError):
            a.get_ephemerals("svc")
    finally:
        cluster.stop()
