"""Helpers of the fault-injection tests: clusters wired to one
``NetworkFaults`` policy, white-box access to a member's Raft status,
convergence checks."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from helpers import InProcessCluster, wait_until

import coord
from coord.replication import ReplicaStatus, Replicator
from coord.testing.faults import NetworkFaults


def replicator(member: coord.Coordinator) -> Replicator:
    """The member's replication adapter (white box)."""
    found = member._member._replicator
    assert found is not None, f"member {member.address} is not started"
    return found


def raft(member: coord.Coordinator) -> ReplicaStatus:
    """The member's Raft status, read without the client API's checks."""
    return replicator(member).status()


def snapshot(member: coord.Coordinator) -> bytes:
    """The canonical bytes of the member's replica of the tree."""
    return member._member._snapshot()


def faulty_cluster(seed: int, size: int = 3, **kwargs: Any) -> tuple[InProcessCluster, NetworkFaults]:
    """A started in-process cluster whose members all consult one policy."""
    faults = NetworkFaults(seed)
    kwargs.setdefault("session_timeout", 10.0)
    return InProcessCluster(size, network_faults=faults, **kwargs).start(), faults


def leader_among(members: Sequence[coord.Coordinator], timeout: float = 10.0) -> coord.Coordinator:
    """The member of ``members`` that leads with a term no other member of
    ``members`` has passed (waits for one)."""

    def find() -> coord.Coordinator | None:
        statuses = []
        for member in members:
            with contextlib.suppress(coord.NotReadyError, AssertionError):
                statuses.append((member, raft(member)))
        top = max((status.term for _, status in statuses), default=-1)
        for member, status in statuses:
            if status.role == "leader" and status.term == top:
                return member
        return None

    return wait_until(find, timeout, what="a leader among " + ", ".join(m.address for m in members))  # type: ignore[no-any-return]


def wait_converged(members: Sequence[coord.Coordinator], timeout: float = 15.0) -> int:
    """Wait until every member has applied the same zxid and holds a
    byte-identical tree; returns that zxid."""

    def same() -> int | None:
        zxids = {member.status().zxid for member in members}
        if len(zxids) != 1:
            return None
        images = {snapshot(member) for member in members}
        zxids_after = {member.status().zxid for member in members}
        return zxids.pop() if len(images) == 1 and zxids_after == zxids else None

    return wait_until(same, timeout, interval=0.05, what="all replicas to reach the same zxid and tree")  # type: ignore[no-any-return]
