"""SetPartitioner (modelled on kazoo's test_partitioner.py) with every
partitioner on a different member of a real 3-member cluster, plus a
member whose session expires (cut off by the in-process fault policy)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from helpers import InProcessCluster, wait_until

import coord
from coord.recipes import PartitionState, SetPartitioner
from coord.testing.faults import NetworkFaults

from ._support import running_cluster

pytestmark = pytest.mark.cluster


class Partitioners:
    """The partitioners of one test, each on the member given (all finished at the end)."""

    def __init__(self) -> None:
        self.path = "/" + uuid.uuid4().hex
        self.all: list[SetPartitioner] = []

    def create(self, member: coord.Coordinator, size: int, identifier: str) -> SetPartitioner:
        partitioner = member.SetPartitioner(self.path, set=range(size), time_boundary=0.2, identifier=identifier)
        assert isinstance(partitioner, SetPartitioner)
        self.all.append(partitioner)
        return partitioner

    def wait_for_acquire(self, partitioners: list[SetPartitioner] | None = None) -> None:
        for partitioner in self.all if partitioners is None else partitioners:
            assert partitioner.wait_for_acquire(14), f"state {partitioner.state}"

    def assert_state(self, state: str, partitioners: list[SetPartitioner] | None = None) -> None:
        for partitioner in self.all if partitioners is None else partitioners:
            assert partitioner.state == state

    def wait_state(self, state: str, partitioners: list[SetPartitioner], timeout: float = 10.0) -> None:
        wait_until(lambda: all(p.state == state for p in partitioners), timeout, what=f"state {state}")

    def assert_partitions(self, *partitions: list[int]) -> None:
        assert len(partitions) == len(self.all)
        for partitioner, own in zip(self.all, partitions, strict=True):
            assert list(partitioner) == own

    def release(self, partitioners: list[SetPartitioner] | None = None) -> None:
        for partitioner in self.all if partitioners is None else partitioners:
            partitioner.release_set()

    def finish(self) -> None:
        for partitioner in self.all:
            partitioner.finish()


@pytest.fixture
def parts() -> Iterator[Partitioners]:
    created = Partitioners()
    try:
        yield created
    finally:
        created.finish()


def test_party_of_one(shared_cluster: InProcessCluster, parts: Partitioners) -> None:
    parts.create(shared_cluster.members[0], 3, "0")
    parts.wait_for_acquire()
    parts.assert_state(PartitionState.ACQUIRED)
    parts.assert_partitions([0, 1, 2])
    # kazoo's layout: a lock per item under <path>/locks, a party member under <path>/party
    member = shared_cluster.members[0]
    assert sorted(member.get_children(f"{parts.path}/locks")) == ["0", "1", "2"]  # type: ignore[arg-type]
    assert [c.split("-", 1)[1] for c in member.get_children(f"{parts.path}/party")] == ["0"]  # type: ignore[union-attr]


def test_party_of_two_on_two_members(shared_cluster: InProcessCluster, parts: Partitioners) -> None:
    first = parts.create(shared_cluster.members[0], 2, "0")
    second = parts.create(shared_cluster.members[1], 2, "1")
    parts.wait_for_acquire()
    parts.assert_partitions([0], [1])
    first.finish()
    assert first.failed
    parts.wait_state(PartitionState.RELEASE, [second])
    second.release_set()
    parts.wait_for_acquire([second])
    assert list(second) == [0, 1]


def test_party_expansion_to_three_members(shared_cluster: InProcessCluster, parts: Partitioners) -> None:
    for i in range(2):
        parts.create(shared_cluster.members[i], 3, str(i))
    parts.wait_for_acquire()
    parts.assert_state(PartitionState.ACQUIRED)
    parts.assert_partitions([0, 2], [1])
    for partitioner in parts.all:
        partitioner.state_change_event.clear()

    parts.create(shared_cluster.members[2], 3, "2")
    old = parts.all[:-1]
    parts.wait_state(PartitionState.RELEASE, old)
    assert all(p.state_change_event.is_set() for p in old)
    parts.release(old)
    parts.wait_for_acquire()
    parts.assert_state(PartitionState.ACQUIRED)
    parts.assert_partitions([0], [1], [2])


def test_more_members_than_set_items(shared_cluster: InProcessCluster, parts: Partitioners) -> None:
    for i in range(2):
        parts.create(shared_cluster.members[i + 1], 1, str(i))
    parts.wait_for_acquire()
    parts.assert_state(PartitionState.ACQUIRED)
    parts.assert_partitions([0], [])


def test_failed_partitioner_stays_failed(shared_cluster: InProcessCluster, parts: Partitioners) -> None:
    partitioner = parts.create(shared_cluster.members[2], 3, "0")
    parts.wait_for_acquire()
    assert partitioner.state == PartitionState.ACQUIRED
    partitioner._fail_out()  # what a session loss does (kazoo's test does the same)
    partitioner.release_set()
    assert partitioner.failed is True


def test_custom_partition_func_and_state_change_event(shared_cluster: InProcessCluster, parts: Partitioners) -> None:
    changed = threading.Event()
    calls: list[tuple[str, list[str]]] = []

    def evens_to_me(identifier: str, members: list[str], items: object) -> list[int]:
        calls.append((identifier, sorted(members)))
        return [i for i in sorted(items) if i % 2 == 0]  # type: ignore[call-overload]

    partitioner = SetPartitioner(
        shared_cluster.members[1],
        parts.path,
        set=range(5),
        partition_func=evens_to_me,
        identifier="me",
        time_boundary=0.1,
        state_change_event=changed,
    )
    parts.all.append(partitioner)
    assert partitioner.wait_for_acquire(14)
    assert changed.is_set()
    assert list(partitioner) == [0, 2, 4]
    assert calls == [("me", ["me"])]


def test_bad_arguments(shared_cluster: InProcessCluster) -> None:
    member = shared_cluster.members[0]
    with pytest.raises(TypeError, match="set"):
        SetPartitioner(member, "/bad", set=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="partition_func"):
        SetPartitioner(member, "/bad", set=[1], partition_func=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time_boundary"):
        SetPartitioner(member, "/bad", set=[1], time_boundary=-1)
    with pytest.raises(ValueError, match="max_reaction_time"):
        SetPartitioner(member, "/bad", set=[1], max_reaction_time=0)
    assert member.exists("/bad") is None  # nothing was created


def test_session_loss_fails_that_member_and_the_rest_repartition() -> None:
    faults = NetworkFaults(11)
    with running_cluster(session_timeout=2.0, network_faults=faults) as own:
        parts = Partitioners()
        try:
            victim_member = own.followers()[0]
            others = [m for m in own.members if m is not victim_member]
            victim = parts.create(victim_member, 3, "0")
            survivors = [parts.create(m, 3, str(i + 1)) for i, m in enumerate(others)]
            parts.wait_for_acquire()
            parts.assert_partitions([0], [1], [2])

            cut = faults.isolate(victim_member.address)
            try:
                # The majority expires the victim's session: its party node goes.
                parts.wait_state(PartitionState.RELEASE, survivors, timeout=12)
            finally:
                faults.heal(cut)
            parts.wait_state(PartitionState.FAILURE, [victim], timeout=15)  # LOST reached it
            parts.release(survivors)
            parts.wait_for_acquire(survivors)
            assert sorted([*survivors[0], *survivors[1]]) == [0, 1, 2]
            assert list(survivors[0]) == [0, 2] and list(survivors[1]) == [1]
        finally:
            faults.heal()
            parts.finish()
