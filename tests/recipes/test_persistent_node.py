"""PersistentEphemeralNode against a real 3-member in-process cluster: the
registration comes back after an outside delete and after its member's
session expired (the member is cut off by the in-process network fault
policy for longer than the session timeout), with the same data and the
member's new session; close() removes it for good."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from helpers import InProcessCluster, wait_until

import coord
from coord.recipes import PersistentEphemeralNode
from coord.testing.faults import NetworkFaults

from ._support import running_cluster

pytestmark = pytest.mark.cluster

SESSION_TIMEOUT = 2.0


@pytest.fixture
def faulty() -> Iterator[tuple[InProcessCluster, NetworkFaults]]:
    """A cluster of its own whose members can be cut off (healed and stopped after the test)."""
    faults = NetworkFaults(7)
    with running_cluster(session_timeout=SESSION_TIMEOUT, network_faults=faults) as running:
        yield running, faults


def _path() -> str:
    return f"/services/{uuid.uuid4().hex}/instance"


def _seen(observer: coord.Coordinator, path: str) -> tuple[bytes, coord.ZnodeStat] | None:
    observer.sync()
    try:
        return observer.get(path)
    except coord.NoNodeError:
        return None


def test_registers_on_another_member_and_close_removes_it_for_good(shared_cluster: InProcessCluster) -> None:
    owner, observer = shared_cluster.members[0], shared_cluster.members[1]
    path = _path()
    node = owner.PersistentEphemeralNode(path, b"host-a:8080")
    assert isinstance(node, PersistentEphemeralNode)
    node.start()
    try:
        assert node.wait_for_initial_create(10)
        assert node.actual_path == path
        data, stat = wait_until(lambda: _seen(observer, path), 10, what="the registration on another member")
        assert data == b"host-a:8080"
        assert stat.ephemeralOwner == owner.session_id
    finally:
        node.close()
    assert _seen(observer, path) is None
    # It stays gone: nothing re-creates it over a few re-check periods.
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        assert _seen(observer, path) is None
        time.sleep(0.1)
    assert node.creations == 1
    with pytest.raises(RuntimeError):
        node.start()
    node.close()  # idempotent


def test_outside_delete_is_healed_with_the_same_data(shared_cluster: InProcessCluster) -> None:
    owner, other = shared_cluster.members[0], shared_cluster.members[2]
    path = _path()
    with PersistentEphemeralNode(owner, path, b"v1") as node:
        assert node.wait_for_initial_create(10)
        node.set_data(b"v2")
        wait_until(lambda: (_seen(other, path) or (b"",))[0] == b"v2", 10, what="set_data to reach another member")
        other.delete(path)
        found = wait_until(
            lambda: (seen := _seen(other, path)) is not None and seen[1].ephemeralOwner == owner.session_id and seen,
            10,
            what="the deleted registration to come back",
        )
        assert found[0] == b"v2"
        assert node.creations == 2
    assert _seen(other, path) is None


def test_sequential_node_gets_a_new_name_when_recreated(shared_cluster: InProcessCluster) -> None:
    owner, other = shared_cluster.members[1], shared_cluster.members[0]
    base = f"/svc-{uuid.uuid4().hex}/worker-"
    with PersistentEphemeralNode(owner, base, b"w", sequence=True) as node:
        assert node.wait_for_initial_create(10)
        first = node.actual_path
        assert first is not None and first.startswith(base) and first[len(base) :].isdigit()
        wait_until(lambda: _seen(other, first), 10, what="the sequential node on another member")
        other.delete(first)
        wait_until(lambda: node.actual_path not in (None, first), 10, what="a new sequential node")
        second = node.actual_path
        assert second is not None
        assert wait_until(lambda: _seen(other, second), 10, what="the new node on another member")[0] == b"w"
        assert other.get_children(base.rsplit("/", 1)[0]) == [second.rsplit("/", 1)[1]]


def test_session_expiry_is_healed_with_same_data_and_new_session(
    faulty: tuple[InProcessCluster, NetworkFaults],
) -> None:
    cluster, faults = faulty
    owner = cluster.followers()[0]
    observer = next(m for m in cluster.members if m is not owner)
    states: list[str] = []
    owner.add_listener(states.append)
    path = _path()
    node = PersistentEphemeralNode(owner, path, b"first")
    node.start()
    try:
        assert node.wait_for_initial_create(10)
        node.set_data(b"kept")
        old_session = owner.session_id
        seen = wait_until(lambda: _seen(observer, path), 10, what="the registration")
        assert seen[1].ephemeralOwner == old_session

        cut = faults.isolate(owner.address)
        try:
            wait_until(
                lambda: _seen(observer, path) is None,
                SESSION_TIMEOUT + 8.0,
                what="the cut-off member's session to expire on the majority",
            )
        finally:
            faults.heal(cut)

        found = wait_until(
            lambda: (seen := _seen(observer, path)) is not None and seen[1].ephemeralOwner != old_session and seen,
            20,
            what="the registration to come back under a new session",
        )
        assert found[0] == b"kept"
        assert found[1].ephemeralOwner == owner.session_id != old_session
        assert "LOST" in states
        assert node.creations == 2
        assert node.actual_path == path
    finally:
        node.close()
    assert _seen(observer, path) is None


def test_bad_arguments_raise_and_change_nothing(shared_cluster: InProcessCluster) -> None:
    member = shared_cluster.members[0]
    with pytest.raises(TypeError, match="value must be bytes"):
        PersistentEphemeralNode(member, "/x", "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path"):
        PersistentEphemeralNode(member, "relative")
    with pytest.raises(TypeError, match="sequence"):
        PersistentEphemeralNode(member, "/x", b"", sequence=1)  # type: ignore[arg-type]
    path = _path()
    with PersistentEphemeralNode(member, path, b"ok") as node:
        assert node.wait_for_initial_create(10)
        with pytest.raises(TypeError):
            node.set_data(None)  # type: ignore[arg-type]
        assert node.data == b"ok"
        assert member.get(path)[0] == b"ok"
        with pytest.raises(ValueError):
            node.wait_for_initial_create(-1)
