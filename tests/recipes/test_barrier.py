"""Barrier and DoubleBarrier (modelled on kazoo's test_barrier.py) with the
participants on different members of a real 3-member cluster."""

from __future__ import annotations

import time
import uuid

import pytest
from helpers import InProcessCluster, wait_until

from coord.recipes import Barrier, DoubleBarrier

from ._support import Worker

pytestmark = pytest.mark.cluster


def _path() -> str:
    return f"/barriers/{uuid.uuid4().hex}"


def test_barrier_that_does_not_exist_is_open(shared_cluster: InProcessCluster) -> None:
    barrier = shared_cluster.members[0].Barrier(_path())
    assert isinstance(barrier, Barrier)
    assert barrier.wait() is True
    assert barrier.remove() is False


def test_barrier_blocks_until_removed_on_another_member(shared_cluster: InProcessCluster) -> None:
    path = _path()
    a, b, c = shared_cluster.members
    a.Barrier(path).create()
    b.sync()
    assert b.Barrier(path).wait(0) is False
    assert b.Barrier(path).wait(0.2) is False
    waiters = [Worker(lambda m=m: m.Barrier(path).wait(20)) for m in (b, c)]
    time.sleep(0.2)
    assert not any(w.done.is_set() for w in waiters)  # still blocked while the barrier is up
    assert a.Barrier(path).remove() is True
    assert [w.join(10) for w in waiters] == [True, True]


def test_barrier_wait_rejects_bad_timeout(shared_cluster: InProcessCluster) -> None:
    barrier = shared_cluster.members[0].Barrier(_path())
    with pytest.raises(TypeError):
        barrier.wait("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        barrier.wait(-1)


def test_double_barrier_of_one(shared_cluster: InProcessCluster) -> None:
    barrier = shared_cluster.members[1].DoubleBarrier(_path(), 1)
    assert not barrier.participating
    barrier.enter()
    assert barrier.participating
    barrier.leave()
    assert not barrier.participating
    assert shared_cluster.members[1].get_children(barrier.path) == []


def test_double_barrier_of_three_members_enters_and_leaves_together(shared_cluster: InProcessCluster) -> None:
    path = _path()
    barriers = [DoubleBarrier(member, path, 3, identifier=f"p{i}") for i, member in enumerate(shared_cluster.members)]
    first_two = [Worker(barrier.enter) for barrier in barriers[:2]]
    time.sleep(0.3)
    assert not any(b.done.is_set() for b in first_two), "entered before the third participant arrived"
    assert not any(b.participating for b in barriers)
    barriers[2].enter()  # the third one completes the quorum
    for entering in first_two:
        entering.join(15)
    assert all(b.participating for b in barriers)
    shared_cluster.members[0].sync()
    names = sorted(shared_cluster.members[0].get_children(path))  # type: ignore[arg-type]
    assert "ready" in names and len(names) == 4
    data = sorted(shared_cluster.members[0].get(f"{path}/{n}")[0] for n in names if n != "ready")
    assert data == [b"p0", b"p1", b"p2"]

    leaving = [Worker(barrier.leave) for barrier in barriers[:2]]
    time.sleep(0.3)
    assert not all(b.done.is_set() for b in leaving), "both left before the third participant"
    barriers[2].leave()
    for left in leaving:
        left.join(15)
    assert not any(b.participating for b in barriers)
    wait_until(
        lambda: shared_cluster.members[2].sync() and shared_cluster.members[2].get_children(path) == [],
        10,
        what="the barrier to be empty",
    )


def test_double_barrier_under_an_ephemeral_parent_does_not_participate(shared_cluster: InProcessCluster) -> None:
    member = shared_cluster.members[0]
    parent = _path()
    member.ensure_path(parent)
    member.create(f"{parent}/eph", ephemeral=True)
    barrier = DoubleBarrier(member, f"{parent}/eph/path", 1)
    barrier.enter()  # cannot create children under an ephemeral node
    assert barrier.participating is False


def test_double_barrier_reuses_its_existing_node(shared_cluster: InProcessCluster) -> None:
    member = shared_cluster.members[2]
    barrier = DoubleBarrier(member, _path(), 1)
    member.ensure_path(barrier.path)
    member.create(barrier.create_path, ephemeral=True)
    barrier.enter()
    assert barrier.participating is True
    barrier.leave()
    assert member.get_children(barrier.path) == []


def test_double_barrier_rejects_bad_arguments(shared_cluster: InProcessCluster) -> None:
    member = shared_cluster.members[0]
    with pytest.raises(ValueError, match="num_clients"):
        DoubleBarrier(member, "/b", 0)
    with pytest.raises(TypeError, match="num_clients"):
        DoubleBarrier(member, "/b", "2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="identifier"):
        DoubleBarrier(member, "/b", 2, identifier=5)  # type: ignore[arg-type]
