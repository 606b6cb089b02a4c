"""Semaphore against a real 3-member cluster, leases taken from different
members (modelled on kazoo's TestSemaphore)."""

from __future__ import annotations

import threading

import pytest
from helpers import wait_until

from coord.errors import CancelledError, LockTimeout
from coord.recipes import Semaphore
from coord.recipes.fencing import NotHeldError

from ._support import Worker, running_cluster

WAIT = 10.0


def test_max_leases_across_members(shared, path):
    m0, m1, m2 = shared
    s0 = m0.Semaphore(path, "zero", max_leases=2)
    s1 = Semaphore(m1, path, "one", max_leases=2)
    s2 = Semaphore(m2, path, "two", max_leases=2)
    assert s0.acquire() and s1.acquire()
    wait_until(lambda: sorted(s2.lease_holders()) == ["one", "zero"], WAIT, what="holders replicated")
    assert s2.acquire(blocking=False) is False
    with pytest.raises(LockTimeout):
        s2.acquire(timeout=0.5)
    assert s2.is_acquired is False and s2.fencing_token is None
    worker = Worker(s2.acquire, timeout=WAIT)
    assert not worker.done.wait(0.3)
    assert s1.release() is True
    assert worker.join(WAIT) is True
    assert s2.is_acquired
    assert sorted(s2.lease_holders()) == ["two", "zero"]
    assert m0.get(path)[0] == b"2"  # max_leases is stored in the semaphore node
    s0.release()
    s2.release()


def test_tokens_increase_across_successive_lease_holders(shared, path):
    tokens = []
    for i in range(6):
        sem = Semaphore(shared[i % 3], path, f"h{i}")
        assert sem.acquire(timeout=WAIT)
        tokens.append(sem.fencing_token)
        sem.release()
        assert sem.fencing_token is None
    assert all(isinstance(t, int) for t in tokens)
    assert all(b > a for a, b in zip(tokens, tokens[1:], strict=False)), tokens


def test_mutual_exclusion_with_one_lease(shared, path):
    active = []
    guard = threading.Lock()

    def work(index: int) -> None:
        for _ in range(3):
            with Semaphore(shared[index % 3], path, f"w{index}"):
                with guard:
                    active.append(index)
                    assert len(active) == 1, active
                with guard:
                    active.remove(index)

    for worker in [Worker(work, i) for i in range(6)]:
        worker.join(60)


def test_acquire_twice_and_release(shared, path):
    sem = Semaphore(shared[0], path, "one")
    assert sem.acquire() is True
    assert sem.acquire() is True  # kazoo: the lease is already ours
    assert sem.release() is True
    assert sem.release() is False
    assert sem.acquire() is True
    sem.release()


def test_cancel_waiting_acquire(shared, path):
    holder = Semaphore(shared[0], path, "one")
    assert holder.acquire()
    waiter = Semaphore(shared[1], path, "two")
    worker = Worker(waiter.acquire)
    # wait until the waiter holds the internal lock and watches the leases
    wait_until(
        lambda: (
            shared[1].exists(path + "-__lock__") is not None and len(shared[1].get_children(path + "-__lock__")) == 1
        ),
        WAIT,
        what="waiter waiting",
    )
    waiter.cancel()
    with pytest.raises(CancelledError):
        worker.join(WAIT)
    assert waiter.is_acquired is False
    wait_until(lambda: holder.lease_holders() == ["one"], WAIT, what="cancelled waiter left no lease")
    holder.release()
    assert waiter.acquire(timeout=WAIT)  # usable again after a cancel
    waiter.release()


def test_inconsistent_max_leases(shared, path):
    assert Semaphore(shared[0], path, max_leases=2).acquire()
    with pytest.raises(ValueError, match="Inconsistent max leases"):
        Semaphore(shared[0], path, max_leases=3).acquire()


def test_non_numeric_data_is_ignored(shared, path):
    shared[0].create(path, b"used for something else", makepath=True)
    sem = Semaphore(shared[0], path, max_leases=2)
    assert sem.acquire()
    sem.release()


def test_fenced_transaction(shared, path):
    m0, m1, _ = shared
    sem = Semaphore(m0, path, "one")
    with pytest.raises(NotHeldError):
        sem.fenced_check()
    assert sem.acquire()
    m0.create(path + "-data", b"v0")
    txn = sem.fenced_transaction()
    txn.set_data(path + "-data", b"v1")
    assert not any(isinstance(r, Exception) for r in txn.commit())
    node, version = sem.fenced_check()
    m1.delete(node)  # what a session expiry does to the lease
    txn = m0.transaction()
    txn.check(node, version)
    txn.set_data(path + "-data", b"stale")
    assert isinstance(txn.commit()[0], Exception)
    assert m0.get(path + "-data")[0] == b"v1"


def test_bad_arguments(shared, path):
    with pytest.raises(ValueError):
        Semaphore(shared[0], path, max_leases=0)
    with pytest.raises(TypeError):
        Semaphore(shared[0], path, max_leases="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Semaphore(shared[0], path, max_leases=True)
    with pytest.raises(ValueError):
        Semaphore(shared[0], path).acquire(timeout=-0.5)
    assert shared[0].exists(path) is None


def test_lease_freed_when_holder_member_stops(path):
    with running_cluster(session_timeout=2.5) as cluster:
        holder_member, waiter_member = cluster.followers()
        holder = Semaphore(holder_member, path, "holder")
        assert holder.acquire()
        token = holder.fencing_token
        waiter = Semaphore(waiter_member, path, "waiter")
        worker = Worker(waiter.acquire)
        wait_until(
            lambda: (
                waiter_member.exists(path + "-__lock__") is not None
                and len(waiter_member.get_children(path + "-__lock__")) == 1
            ),
            WAIT,
            what="waiter waiting",
        )
        holder_member.stop()
        assert worker.join(holder_member.session_timeout + 3.0) is True
        assert holder.is_acquired is False
        assert waiter.fencing_token > token
        assert waiter.lease_holders() == ["waiter"]
