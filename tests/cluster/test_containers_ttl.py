"""Container and TTL nodes on a real 3-member cluster: the leader reaps
them through the log (every replica agrees), a modification keeps a TTL
node alive, and a new leader takes the job over."""

from __future__ import annotations

import time

import pytest
from helpers import InProcessCluster, wait_until

import coord

pytestmark = pytest.mark.cluster


@pytest.fixture()
def fast_reaping() -> InProcessCluster:
    cluster = InProcessCluster(3, session_timeout=5.0, reap_interval=0.05).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _gone_everywhere(cluster: InProcessCluster, path: str) -> bool:
    return all(member.exists(path) is None for member in cluster.members if member.connected)


def test_container_is_reaped_after_its_last_child_goes(fast_reaping: InProcessCluster) -> None:
    follower = fast_reaping.followers()[0]
    path = follower.create("/locks", container=True)
    assert path == "/locks"
    assert follower.exists("/locks").ephemeralOwner == 0  # as ZooKeeper shows clients
    follower.create("/locks/holder", ephemeral=True)
    # with a child it stays; an unused container stays too
    follower.create("/unused", container=True)
    # A due container going proves reap rounds ran; the others must survive them.
    follower.create("/probe", container=True)
    follower.create("/probe/k")
    follower.delete("/probe/k")
    wait_until(lambda: _gone_everywhere(fast_reaping, "/probe"), 10, what="the due /probe container reaped")
    assert follower.exists("/locks") is not None
    follower.delete("/locks/holder")
    wait_until(lambda: _gone_everywhere(fast_reaping, "/locks"), 10, what="the container reaped on every member")
    assert follower.exists("/unused") is not None


def test_a_path_reaped_once_is_reaped_again_when_recreated(fast_reaping: InProcessCluster) -> None:
    member = fast_reaping.members[2]
    for round_ in range(3):
        member.create("/again", str(round_).encode(), ttl=50)
        wait_until(lambda: _gone_everywhere(fast_reaping, "/again"), 10, what=f"/again reaped in round {round_}")
        member.create("/box", container=True)
        member.create("/box/k")
        member.delete("/box/k")
        wait_until(lambda: _gone_everywhere(fast_reaping, "/box"), 10, what=f"/box reaped in round {round_}")


def test_ttl_node_expires_unless_modified(fast_reaping: InProcessCluster) -> None:
    member = fast_reaping.members[0]
    member.create("/kept", b"v", ttl=400)
    member.create("/expiring", b"v", ttl=400)
    started = time.monotonic()
    # Touch /kept well inside its ttl until /expiring has gone.
    while member.exists("/expiring") is not None:
        assert time.monotonic() - started < 10, "/expiring was never reaped"
        member.set("/kept", b"touch")
        time.sleep(0.1)
    assert time.monotonic() - started >= 0.4  # never before its ttl
    assert member.exists("/kept") is not None
    wait_until(lambda: _gone_everywhere(fast_reaping, "/kept"), 10, what="/kept expiring once left alone")


def test_ttl_node_with_children_waits_until_childless(fast_reaping: InProcessCluster) -> None:
    member = fast_reaping.members[1]
    member.create("/parent", ttl=100)
    member.create("/parent/child")
    seq = member.create("/seq-", ttl=100, sequence=True)
    wait_until(lambda: _gone_everywhere(fast_reaping, seq), 10, what="the sequential TTL node reaped")
    assert member.exists("/parent") is not None  # its child keeps it
    member.delete("/parent/child")
    wait_until(lambda: _gone_everywhere(fast_reaping, "/parent"), 10, what="/parent reaped once childless")


def test_a_new_leader_takes_reaping_over(fast_reaping: InProcessCluster) -> None:
    leader = fast_reaping.leader()
    follower = fast_reaping.followers()[0]
    follower.create("/survivor", ttl=300)
    follower.sync()
    leader.stop()
    wait_until(lambda: _gone_everywhere(fast_reaping, "/survivor"), 20, what="the new leader reaping /survivor")


def test_bad_container_and_ttl_arguments_change_nothing(fast_reaping: InProcessCluster) -> None:
    member = fast_reaping.members[0]
    zxid_before = member.exists("/").pzxid
    bad = [
        (dict(container=True, ephemeral=True), coord.BadArgumentsError, "container node cannot"),
        (dict(container=True, sequence=True), coord.BadArgumentsError, "container node cannot"),
        (dict(container=True, ttl=10), coord.BadArgumentsError, "container node cannot"),
        (dict(ttl=10, ephemeral=True), coord.BadArgumentsError, "cannot be ephemeral"),
        (dict(ttl=0), coord.BadArgumentsError, "ttl must be between"),
        (dict(ttl=1 << 40), coord.BadArgumentsError, "ttl must be between"),
        (dict(ttl=1.5), TypeError, "ttl must be an int"),
        (dict(ttl=True), TypeError, "ttl must be an int"),
        (dict(container="yes"), TypeError, "container must be a bool"),
    ]
    for kwargs, error, message in bad:
        with pytest.raises(error, match=message):
            member.create("/bad", **kwargs)
    member.sync()
    assert member.exists("/bad") is None
    assert member.exists("/").pzxid == zxid_before
