"""kazoo, unmodified, against coord's ZooKeeper endpoint: CRUD, sequential
and ephemeral nodes, watches, transactions, ACLs, sessions that move
between members, and the four-letter words."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest
from helpers import wait_until
from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
)
from kazoo.protocol.states import EventType, KazooState
from kazoo.security import make_digest_acl

from coord import ops
from coord.zk import jute

from .conftest import ZkCluster
from .rawclient import RawClient, four_letter

pytestmark = pytest.mark.cluster

Factory = Callable[..., KazooClient]


def _base() -> str:
    return f"/t-{uuid.uuid4().hex[:10]}"


def test_crud_round_trip(kazoo_factory: Factory) -> None:
    client = kazoo_factory(0)
    base = _base()
    assert client.create(base, b"v0") == base
    data, stat = client.get(base)
    assert data == b"v0" and stat.version == 0 and stat.dataLength == 2
    stat = client.set(base, b"v1")
    assert stat.version == 1
    with pytest.raises(BadVersionError):
        client.set(base, b"v2", version=0)
    with pytest.raises(NodeExistsError):
        client.create(base)
    with pytest.raises(NoNodeError):
        client.get(base + "/missing")
    client.create(base + "/child")
    with pytest.raises(NotEmptyError):
        client.delete(base)
    assert client.get_children(base) == ["child"]
    children, stat = client.get_children(base, include_data=True)
    assert children == ["child"] and stat.numChildren == 1
    client.delete(base, recursive=True)
    assert client.exists(base) is None
    client.ensure_path(base + "/a/b/c")
    assert client.exists(base + "/a/b/c") is not None
    assert client.sync(base) == base


def test_reads_on_other_members_see_writes_after_sync(kazoo_factory: Factory) -> None:
    writer, reader = kazoo_factory(0), kazoo_factory(1)
    base = _base()
    writer.create(base, b"x")
    reader.sync(base)
    assert reader.get(base)[0] == b"x"


def test_sequential_and_ephemeral_nodes(kazoo_factory: Factory) -> None:
    owner, observer = kazoo_factory(0), kazoo_factory(2)
    base = _base()
    owner.create(base)
    first = owner.create(base + "/n-", sequence=True, ephemeral=True)
    second = owner.create(base + "/n-", sequence=True)
    assert first == base + "/n-0000000000" and second == base + "/n-0000000001"
    observer.sync(base)
    stat = observer.exists(first)
    assert stat is not None and stat.ephemeralOwner == owner.client_id[0]
    assert observer.exists(second).ephemeralOwner == 0
    owner.stop()
    observer.sync(base)
    assert observer.exists(first) is None
    assert observer.exists(second) is not None


def test_watches_fire_once_in_order(kazoo_factory: Factory) -> None:
    client, other = kazoo_factory(0), kazoo_factory(1)
    base = _base()
    events: list[tuple[str, str]] = []
    got = threading.Event()

    def record(event: object) -> None:
        events.append((event.type, event.path))  # type: ignore[attr-defined]
        got.set()

    assert client.exists(base, watch=record) is None  # a watch on a missing node
    other.create(base, b"1")
    wait_until(lambda: (EventType.CREATED, base) in events, 5, what="NodeCreated")
    client.get(base, watch=record)
    client.get_children(base, watch=record)
    other.create(base + "/c")
    other.set(base, b"2")
    other.set(base, b"3")  # the data watch already fired: no second event
    wait_until(lambda: len(events) >= 3, 5, what="child and data events")
    other.sync(base)
    client.sync(base)
    assert events == [
        (EventType.CREATED, base),
        (EventType.CHILD, base),
        (EventType.CHANGED, base),
    ]


def test_watch_event_precedes_the_reply_that_shows_the_change(zk_cluster: ZkCluster, kazoo_factory: Factory) -> None:
    # ZooKeeper's guarantee: a client sees the event before it can read the
    # new data. The raw client records notifications in arrival order.
    other = kazoo_factory(0)
    base = _base()
    other.create(base, b"0")
    with RawClient(zk_cluster.zk_addresses[1]) as client:
        client.connect(4000)
        for value in range(1, 21):
            client.events.clear()
            assert client.get_data(base, watch=True)[0] == 0
            other.set(base, str(value).encode())
            deadline = time.monotonic() + 5
            while client.get_data(base)[1][0] != str(value).encode():
                assert time.monotonic() < deadline, "the new value never arrived"
            assert client.events[:1] == [(jute.EventType.NODE_DATA_CHANGED, base)], (
                "the reply showed the new data before the watch event arrived"
            )


def test_transaction_results_and_errors(kazoo_factory: Factory) -> None:
    client = kazoo_factory(0)
    base = _base()
    client.create(base, b"")
    txn = client.transaction()
    txn.create(base + "/a", b"1")
    txn.check(base, 0)
    txn.set_data(base, b"x")
    txn.delete(base + "/a")
    results = txn.commit()
    assert results[0] == base + "/a" and results[1] is True and results[2].version == 1 and results[3] is True
    txn = client.transaction()
    txn.create(base + "/b")
    txn.create(base)  # exists: fails the whole transaction
    txn.delete(base + "/zzz")
    results = txn.commit()
    assert isinstance(results[0], RolledBackError)
    assert isinstance(results[1], NodeExistsError)
    assert type(results[2]).__name__ == "RuntimeInconsistency"
    assert client.exists(base + "/b") is None


def test_digest_auth_and_acls(kazoo_factory: Factory) -> None:
    owner = kazoo_factory(0, auth_data=[("digest", "alice:secret")])
    stranger = kazoo_factory(1)
    base = _base()
    owner.create(base, b"private", acl=[make_digest_acl("alice", "secret", all=True)])
    acls, _stat = owner.get_acls(base)
    assert [(acl.perms, acl.id.scheme) for acl in acls] == [(31, "digest")]
    stranger.sync(base)
    with pytest.raises(NoAuthError):
        stranger.get(base)
    with pytest.raises(NoAuthError):
        stranger.set(base, b"x")
    assert stranger.exists(base) is not None  # exists needs no permission
    stranger.add_auth("digest", "alice:secret")
    assert stranger.get(base)[0] == b"private"
    stat = owner.set_acls(base, [make_digest_acl("alice", "secret", read=True)])
    assert stat.aversion == 1
    with pytest.raises(NoAuthError):
        owner.set(base, b"y")


def test_session_moves_to_another_member_keeping_ephemerals(zk_cluster: ZkCluster, kazoo_factory: Factory) -> None:
    client = kazoo_factory(0, 1, randomize_hosts=False)
    watcher = kazoo_factory(2)
    base = _base()
    session_id = client.client_id[0]
    client.create(base, b"")
    client.create(base + "/eph", b"mine", ephemeral=True)
    states: list[str] = []
    client.add_listener(states.append)
    first = client._connection._socket.getpeername()[1]
    # Drop the connection server-side: kazoo reconnects, to the next host.
    server = zk_cluster.server(zk_cluster.zk_addresses.index(f"127.0.0.1:{first}"))
    for conn in server.connections():
        if conn.session is not None and conn.session.session_id == session_id:
            server._request_close(conn, "test: drop the connection")
    wait_until(lambda: KazooState.SUSPENDED in states and client.connected, 10, what="reconnect")
    assert client.client_id[0] == session_id
    assert KazooState.LOST not in states
    assert client.get(base + "/eph")[0] == b"mine"
    client.set(base + "/eph", b"still mine")
    watcher.sync(base)
    assert watcher.get(base + "/eph")[1].ephemeralOwner == session_id
    client.stop()
    watcher.sync(base)
    assert watcher.exists(base + "/eph") is None


def test_expired_session_is_reported_to_kazoo(zk_cluster: ZkCluster, kazoo_factory: Factory) -> None:
    client = kazoo_factory(0, timeout=1.0)
    states: list[str] = []
    client.add_listener(states.append)
    session_id = client.client_id[0]
    base = _base()
    client.create(base, b"", ephemeral=True)
    # Expire the session through the log, as the leader does on a timeout.
    member = zk_cluster.members[0]._member
    activity = member.read_tree(lambda tree: tree.session_info(session_id).activity)
    entry = ops.make_entry(0, 0, 0, 1, ops.expire_session_op(session_id, activity))
    member.propose_entry(entry, lambda kind, reason: None)
    wait_until(lambda: KazooState.LOST in states, 10, what="kazoo's LOST state")
    wait_until(lambda: client.connected, 10, what="a new session")
    assert client.client_id[0] != session_id
    assert client.exists(base) is None


@pytest.mark.parametrize("word", ["ruok", "srvr", "stat", "mntr", "envi", "conf", "isro"])
def test_four_letter_words(zk_cluster: ZkCluster, word: str) -> None:
    texts = [four_letter(address, word) for address in zk_cluster.zk_addresses]
    if word == "ruok":
        assert texts == ["imok"] * 3
    elif word in ("srvr", "stat"):
        modes = sorted(line.split(": ")[1] for text in texts for line in text.splitlines() if line.startswith("Mode"))
        assert modes == ["follower", "follower", "leader"]
        assert all("Zxid: 0x" in text and "Node count: " in text for text in texts)
    elif word == "mntr":
        values = dict(line.split("\t", 1) for line in texts[0].splitlines())
        for key in ("zk_server_state", "zk_znode_count", "zk_num_alive_connections", "zk_watch_count"):
            assert key in values
        assert int(values["zk_znode_count"]) >= 1
        assert values["zk_server_state"] in ("leader", "follower")
    elif word == "envi":
        assert texts[0].startswith("Environment:") and "host.name=" in texts[0]
    elif word == "conf":
        assert f"tickTime={250}" in texts[0] and "minSessionTimeout=500" in texts[0]
    else:
        assert texts == ["rw"] * 3


def test_kazoo_four_letter_helper_and_version(kazoo_factory: Factory) -> None:
    client = kazoo_factory(0)
    assert client.command(b"ruok") == "imok"
    assert client.server_version()[:2] == (3, 8)
