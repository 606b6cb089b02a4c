"""Lock / ReadLock / WriteLock against a real 3-member cluster, with
contention from different members (modelled on kazoo's test_lock.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from helpers import InProcessCluster, wait_until

import coord
from coord.errors import CancelledError, LockTimeout
from coord.recipes import Lock, ReadLock, WriteLock
from coord.recipes.fencing import NotHeldError
from coord.testing.faults import NetworkFaults

from ._support import Worker, running_cluster

WAIT = 10.0


def hold_until(lock: Lock, release: threading.Event, acquired: threading.Event | None = None) -> int | None:
    """Acquire (blocking), signal, hold until ``release``; return the token."""
    with lock:
        token = lock.fencing_token
        if acquired is not None:
            acquired.set()
        assert release.wait(WAIT)
    return token


def test_client_binding_builds_the_recipes(shared, path):
    m0 = shared[0]
    lock = m0.Lock(path, "a")
    assert isinstance(lock, Lock) and lock.client is m0 and lock.path == path
    assert isinstance(m0.ReadLock(path), ReadLock)
    assert isinstance(m0.WriteLock(path), WriteLock)
    assert coord.Coordinator.Lock is Lock


def test_contenders_seen_from_every_member(shared, path):
    m0, m1, m2 = shared
    holder = Lock(m0, path, "holder")
    assert holder.acquire()
    release = threading.Event()
    waiters = []
    try:
        for member, name in ((m1, "one"), (m2, "two")):
            lock = Lock(member, path, name)
            waiters.append(Worker(hold_until, lock, release))
            wait_until(lambda name=name: name in holder.contenders(), WAIT, what=f"{name} queued")
        for member in shared:
            wait_until(
                lambda member=member: Lock(member, path).contenders() == ["holder", "one", "two"],
                WAIT,
                what="contenders replicated",
            )
        assert holder.is_acquired
        assert not any(w.done.is_set() for w in waiters)
    finally:
        holder.release()
        release.set()
    for worker in waiters:
        worker.join(WAIT)
    assert Lock(m2, path).contenders() == []


def test_fair_order_and_mutual_exclusion_across_members(shared, path):
    """Contenders on three members acquire strictly in queue order, one at
    a time, each with a larger fencing token than the one before."""
    holder = Lock(shared[0], path, "first")
    assert holder.acquire()
    names = [f"c{i}" for i in range(6)]
    order: list[tuple[str, int | None]] = []
    active = []
    guard = threading.Lock()

    def contend(lock: Lock, name: str) -> None:
        with lock:
            with guard:
                active.append(name)
                assert len(active) == 1, f"two holders at once: {active}"
            order.append((name, lock.fencing_token))
            time.sleep(0.01)
            with guard:
                active.remove(name)

    workers = []
    for index, name in enumerate(names):
        workers.append(Worker(contend, Lock(shared[index % 3], path, name), name))
        # Queue them one by one, so the queue order is known.
        wait_until(lambda name=name: name in holder.contenders(), WAIT, what=f"{name} queued")
    assert holder.contenders() == ["first", *names]
    first_token = holder.fencing_token
    assert holder.release()
    for worker in workers:
        worker.join(WAIT)
    assert [name for name, _ in order] == names
    tokens = [first_token] + [token for _, token in order]
    assert all(isinstance(t, int) for t in tokens)
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)


def test_many_threads_on_many_members_exclude_each_other(shared, path):
    active = []
    tokens: list[int] = []
    guard = threading.Lock()

    def work(member: coord.Coordinator, name: str) -> None:
        for _ in range(3):
            with Lock(member, path, name) as lock:
                with guard:
                    active.append(name)
                    assert len(active) == 1, f"two holders at once: {active}"
                    tokens.append(lock.fencing_token)
                time.sleep(0.002)
                with guard:
                    active.remove(name)

    workers = [Worker(work, shared[i % 3], f"w{i}") for i in range(9)]
    for worker in workers:
        worker.join(60)
    assert len(tokens) == 27
    assert all(b > a for a, b in zip(tokens, tokens[1:], strict=False)), tokens


def test_non_blocking_acquire_on_another_member(shared, path):
    holder = Lock(shared[0], path, "holder")
    assert holder.acquire(blocking=False) is True
    other = Lock(shared[1], path, "other")
    assert other.acquire(blocking=False) is False
    assert other.fencing_token is None
    # The failed attempt left no contender node behind.
    assert Lock(shared[1], path).contenders() == ["holder"]
    holder.release()
    assert other.acquire(blocking=False) is True
    other.release()


def test_not_reentrant(shared, path):
    lock = Lock(shared[0], path, "one")
    assert lock.acquire() is True
    assert lock.is_acquired is True
    assert lock.acquire(blocking=False) is False
    started = time.monotonic()
    assert lock.acquire(timeout=0.5) is False  # kazoo: False, not LockTimeout
    assert 0.4 <= time.monotonic() - started < 5
    assert lock.is_acquired is True
    assert lock.contenders() == ["one"]
    assert lock.release() is True
    assert lock.is_acquired is False
    assert lock.release() is False
    # reacquire works
    assert lock.acquire() and lock.release()


def test_one_lock_object_shared_by_threads(shared, path):
    lock = Lock(shared[0], path, "one")
    results = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait(WAIT)
        results.append(lock.acquire(blocking=False))

    for worker in [Worker(attempt) for _ in range(8)]:
        worker.join(WAIT)
    assert results.count(True) == 1
    lock.release()

    # Blocking threads sharing it take it one at a time.
    active = []
    guard = threading.Lock()

    def take() -> None:
        with lock:
            with guard:
                active.append(1)
                assert len(active) == 1
            time.sleep(0.01)
            with guard:
                active.pop()

    for worker in [Worker(take) for _ in range(5)]:
        worker.join(WAIT)


def test_cancel_a_waiting_acquire_on_another_member(shared, path):
    holder = Lock(shared[0], path, "one")
    assert holder.acquire()
    waiter = Lock(shared[1], path, "two")
    worker = Worker(waiter.acquire)
    wait_until(lambda: holder.contenders() == ["one", "two"], WAIT, what="waiter queued")
    waiter.cancel()
    with pytest.raises(CancelledError):
        worker.join(WAIT)
    wait_until(lambda: holder.contenders() == ["one"], WAIT, what="cancelled contender removed")
    holder.release()
    # a cancelled lock can be acquired again afterwards
    assert waiter.acquire(timeout=WAIT)
    waiter.release()


def test_timeout_raises_lock_timeout_and_cleans_up(shared, path):
    holder = Lock(shared[0], path, "one")
    assert holder.acquire()
    other = Lock(shared[2], path, "two")
    started = time.monotonic()
    with pytest.raises(LockTimeout):
        other.acquire(timeout=1.0)
    assert 0.9 <= time.monotonic() - started < 6
    assert other.is_acquired is False
    assert other.contenders() == ["one"]  # read on the member that cleaned up (read-your-writes)
    holder.release()


def test_read_and_write_locks(shared, path):
    m0, m1, m2 = shared
    r1, r2 = ReadLock(m0, path, "r1"), ReadLock(m1, path, "r2")
    assert r1.acquire(timeout=WAIT) and r2.acquire(timeout=WAIT)  # readers share
    writer = WriteLock(m2, path, "w")
    with pytest.raises(LockTimeout):
        writer.acquire(timeout=0.5)
    release = threading.Event()
    acquired = threading.Event()
    worker = Worker(hold_until, writer, release, acquired)
    wait_until(lambda: writer.contenders() == ["r1", "r2", "w"], WAIT, what="writer queued")
    # A reader queued after a waiting writer waits for it.
    late_reader = ReadLock(m0, path, "r3")
    assert late_reader.acquire(blocking=False) is False
    r1.release()
    assert not acquired.wait(0.3)
    r2.release()
    assert acquired.wait(WAIT)
    assert ReadLock(m1, path).acquire(blocking=False) is False  # writer holds
    assert WriteLock(m0, path).acquire(blocking=False) is False
    release.set()
    worker.join(WAIT)
    reader = ReadLock(m1, path, "r4")
    assert reader.acquire(blocking=False) is True
    reader.release()


def test_lock_and_write_lock_exclude_each_other_but_plain_lock_ignores_readers(shared, path):
    m0, m1, _ = shared
    lock = Lock(m0, path, "plain")
    assert lock.acquire()
    assert WriteLock(m1, path).acquire(blocking=False) is False
    # kazoo's plain Lock does not know about readers; readers wait for it.
    assert ReadLock(m1, path).acquire(blocking=False) is False
    lock.release()
    reader = ReadLock(m1, path, "r")
    assert reader.acquire(blocking=False)
    plain = Lock(m0, path)
    assert plain.acquire(blocking=False) is True  # plain Lock ignores __rlock__ nodes
    plain.release()
    reader.release()


def test_extra_lock_patterns(shared, path):
    m0, m1, _ = shared
    m0.ensure_path(path)
    m0.create(path + "/foreign-lock-", b"other", ephemeral=True, sequence=True)
    plain = Lock(m1, path, "plain")
    assert plain.acquire(blocking=False) is True  # the foreign node is not a contender to it
    plain.release()
    patterned = Lock(m1, path, "mine", extra_lock_patterns=["foreign-lock-"])
    assert patterned.acquire(blocking=False) is False
    assert patterned.contenders() == ["other"]


def test_fenced_transaction(shared, path):
    m0, m1, _ = shared
    lock = Lock(m0, path, "one")
    with pytest.raises(NotHeldError):
        lock.fenced_check()
    assert lock.acquire()
    m1.create(path + "-data", b"v0")
    txn = lock.fenced_transaction()
    txn.set_data(path + "-data", b"v1")
    assert not any(isinstance(r, Exception) for r in txn.commit())
    node_path, version = lock.fenced_check()
    # The holder's node vanishes (what a session expiry does): its fenced writes fail.
    m1.delete(node_path)
    txn = m0.transaction()
    txn.check(node_path, version)
    txn.set_data(path + "-data", b"stale")
    results = txn.commit()
    assert isinstance(results[0], coord.NoNodeError)
    assert m1.get(path + "-data")[0] == b"v1"


def test_bad_arguments_change_nothing(shared, path):
    m0 = shared[0]
    with pytest.raises(coord.InvalidPathError):
        Lock(m0, "relative/path")
    with pytest.raises(ValueError):
        Lock(m0, "/")
    with pytest.raises(TypeError):
        Lock(m0, 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Lock(m0, path, extra_lock_patterns="abc")
    lock = Lock(m0, path)
    with pytest.raises(ValueError):
        lock.acquire(timeout=-1)
    with pytest.raises(TypeError):
        lock.acquire(timeout="5")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        lock.acquire(ephemeral="no")  # type: ignore[arg-type]
    assert m0.exists(path) is None


# ---------------------------------------------------------------------- holder death


@pytest.fixture
def faulty() -> Iterator[tuple[InProcessCluster, NetworkFaults]]:
    """A cluster of its own whose members can be cut off (healed and stopped after the test)."""
    faults = NetworkFaults(7)
    with running_cluster(session_timeout=2.5, network_faults=faults) as running:
        yield running, faults


def test_next_contender_acquires_when_holder_member_stops(faulty, path):
    cluster, _ = faulty
    holder_member, waiter_member = cluster.followers()
    holder = Lock(holder_member, path, "holder")
    assert holder.acquire()
    token = holder.fencing_token
    waiter = Lock(waiter_member, path, "waiter")
    worker = Worker(waiter.acquire)
    wait_until(lambda: waiter.contenders() == ["holder", "waiter"], WAIT, what="waiter queued")
    holder_member.stop()
    assert worker.join(holder_member.session_timeout + 3.0) is True
    assert holder.is_acquired is False and holder.fencing_token is None
    assert waiter.fencing_token > token
    waiter.release()


def test_next_contender_acquires_when_holder_session_expires(faulty, path):
    """The holder's member is cut off: the cluster expires its session, the
    waiter on another member acquires within session_timeout + 3 s, and the
    cut-off holder learns (LOST) that it no longer holds the lock."""
    cluster, faults = faulty
    holder_member, waiter_member = cluster.followers()
    states: list[str] = []
    holder_member.add_listener(states.append)
    holder = Lock(holder_member, path, "holder")
    assert holder.acquire()
    old_token = holder.fencing_token
    waiter = Lock(waiter_member, path, "waiter")
    worker = Worker(waiter.acquire)
    wait_until(lambda: waiter.contenders() == ["holder", "waiter"], WAIT, what="waiter queued")
    cut = faults.isolate(holder_member.address)
    try:
        assert worker.join(holder_member.session_timeout + 3.0) is True
        assert waiter.fencing_token > old_token
    finally:
        faults.heal(cut)
    wait_until(lambda: coord.SessionState.LOST in states, WAIT, what="holder told LOST")
    wait_until(lambda: not holder.is_acquired, WAIT, what="holder no longer acquired")
    assert holder.fencing_token is None
    with pytest.raises(NotHeldError):
        holder.fenced_check()
    assert holder.release() is False  # forgotten, nothing to delete
    waiter.release()


def test_lock_with_ephemeral_false_survives_its_member(faulty, path):
    cluster, _ = faulty
    member, other = cluster.followers()
    lock = Lock(member, path, "persistent")
    assert lock.acquire(ephemeral=False)
    node = f"{path}/{lock.node}"
    member.stop()
    assert other.exists(node) is not None
    assert Lock(other, path).acquire(blocking=False) is False
    other.delete(node)
    assert Lock(other, path).acquire(blocking=False) is True


def test_waiting_acquire_survives_its_own_session_loss(faulty, path):
    """A waiter cut off long enough to lose its session queues again in its
    new session and acquires once the holder releases."""
    cluster, faults = faulty
    holder_member = cluster.leader()
    waiter_member = cluster.followers()[0]
    states: list[str] = []
    waiter_member.add_listener(states.append)
    holder = Lock(holder_member, path, "holder")
    assert holder.acquire()
    waiter = Lock(waiter_member, path, "waiter")
    worker = Worker(waiter.acquire)
    wait_until(lambda: holder.contenders() == ["holder", "waiter"], WAIT, what="waiter queued")
    old_session = waiter_member.session_id
    cut = faults.isolate(waiter_member.address)
    try:
        # The cluster expires the cut-off waiter's session: its node goes.
        wait_until(lambda: holder.contenders() == ["holder"], waiter_member.session_timeout + 3.0, what="expiry")
    finally:
        faults.heal(cut)
    wait_until(lambda: coord.SessionState.LOST in states, WAIT, what="waiter told LOST")
    wait_until(lambda: holder.contenders() == ["holder", "waiter"], WAIT, what="waiter queued again")
    assert waiter_member.session_id != old_session
    assert not worker.done.is_set()
    holder.release()
    assert worker.join(WAIT) is True
    assert waiter.is_acquired and waiter.fencing_token > holder_member.exists(path).czxid
    waiter.release()
