"""The ZooKeeper endpoint at the wire level (requests kazoo never sends,
session handshakes, reply order, bounds), with a raw jute client."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from helpers import wait_until
from kazoo.client import KazooClient

from coord.zk import jute
from coord.zk.jute import Err, EventType, OpCode

from .conftest import ZkCluster
from .rawclient import Closed, RawClient, create_record

pytestmark = pytest.mark.cluster

Factory = Callable[..., KazooClient]


def _base() -> str:
    return f"/p-{uuid.uuid4().hex[:10]}"


def _catch_up(zk_cluster: ZkCluster, index: int, zxid: int) -> None:
    """Wait until member ``index`` applied ``zxid``: a member refuses a
    client that has seen more than its replica (as ZooKeeper does)."""
    member = zk_cluster.members[index]._member
    wait_until(lambda: member.read_tree(lambda tree: tree.zxid) >= zxid, 10, what=f"member {index} at zxid {zxid}")


def test_set_watches_on_reconnect_fire_for_changes_missed(zk_cluster: ZkCluster, kazoo_factory: Factory) -> None:
    other = kazoo_factory(2)
    base = _base()
    other.create(base)
    other.create(base + "/changed", b"0")
    other.create(base + "/same", b"0")
    with RawClient(zk_cluster.zk_addresses[0]) as first:
        first.connect(2000)
        assert first.get_data(base + "/changed", watch=True)[0] == 0
        assert first.get_data(base + "/same", watch=True)[0] == 0
        assert first.exists(base + "/new", watch=True) == Err.NO_NODE
        assert first.get_children(base, watch=True)[0] == 0
        session = (first.session_id, first.password, first.last_zxid)
    other.set(base + "/changed", b"1")  # missed while disconnected
    other.create(base + "/new")  # missed too (and changes base's children)
    other.sync(base)
    _catch_up(zk_cluster, 1, session[2])
    with RawClient(zk_cluster.zk_addresses[1]) as second:
        timeout_ms, session_id, _password = second.connect(2000, session[0], session[1], session[2])
        assert session_id == session[0] and timeout_ms > 0
        relative = session[2]
        data, exist, child = [base + "/changed", base + "/same"], [base + "/new"], [base]
        assert second.set_watches(relative, data, exist, child) == 0
        immediate = {second.wait_event() for _ in range(3)}
        assert immediate == {
            (EventType.NODE_DATA_CHANGED, base + "/changed"),
            (EventType.NODE_CREATED, base + "/new"),
            (EventType.NODE_CHILDREN_CHANGED, base),
        }
        other.set(base + "/same", b"1")  # the watch that was re-registered
        assert second.wait_event() == (EventType.NODE_DATA_CHANGED, base + "/same")


def test_persistent_and_recursive_watches(zk_cluster: ZkCluster, kazoo_factory: Factory) -> None:
    other = kazoo_factory(1)
    base = _base()
    other.create(base)
    with RawClient(zk_cluster.zk_addresses[0]) as persistent, RawClient(zk_cluster.zk_addresses[0]) as recursive:
        persistent.connect(2000)
        recursive.connect(2000)
        assert persistent.add_watch(base, 0) == 0
        assert recursive.add_watch(base, 1) == 0
        other.create(base + "/a", b"")
        other.set(base + "/a", b"x")
        other.set(base, b"y")
        other.delete(base + "/a")
        assert [persistent.wait_event() for _ in range(3)] == [
            (EventType.NODE_CHILDREN_CHANGED, base),
            (EventType.NODE_DATA_CHANGED, base),
            (EventType.NODE_CHILDREN_CHANGED, base),
        ]
        assert [recursive.wait_event() for _ in range(4)] == [
            (EventType.NODE_CREATED, base + "/a"),
            (EventType.NODE_DATA_CHANGED, base + "/a"),
            (EventType.NODE_DATA_CHANGED, base),
            (EventType.NODE_DELETED, base + "/a"),
        ]
        err, _zxid, _reader = recursive.call(OpCode.REMOVE_WATCHES, jute.string_(base) + jute.int_(3))
        assert err == 0
        err, _zxid, _reader = recursive.call(OpCode.CHECK_WATCHES, jute.string_(base) + jute.int_(3))
        assert err == Err.NO_WATCHER


def test_misc_reads(zk_cluster: ZkCluster) -> None:
    base = _base()
    with RawClient(zk_cluster.zk_addresses[2]) as client:
        client.connect(2000)
        client.create(base, b"root")
        client.create(base + "/a", b"")
        client.create(base + "/a/b", b"")
        client.create(base + "/e", b"", flags=1)
        err, _zxid, reader = client.call(OpCode.GET_ALL_CHILDREN_NUMBER, jute.string_(base))
        assert err == 0 and reader.int32() == 3
        err, _zxid, reader = client.call(OpCode.GET_EPHEMERALS, jute.string_(base))
        assert err == 0 and reader.strings() == [base + "/e"]
        err, _zxid, reader = client.call(OpCode.WHO_AM_I)
        assert err == 0 and reader.int32() == 1 and (reader.string(), reader.string()) == ("ip", "127.0.0.1")
        body = (
            jute.multi_header(OpCode.GET_DATA, False, -1)
            + jute.string_(base)
            + jute.bool_(False)
            + jute.multi_header(OpCode.GET_CHILDREN, False, -1)
            + jute.string_(base + "/missing")
            + jute.bool_(False)
            + jute.multi_header(OpCode.GET_CHILDREN, False, -1)
            + jute.string_(base)
            + jute.bool_(False)
            + jute.multi_header(-1, True, -1)
        )
        err, _zxid, reader = client.call(OpCode.MULTI_READ, body)
        assert err == 0
        assert jute.read_multi_header(reader) == (OpCode.GET_DATA, False, 0)
        assert reader.buffer() == b"root"
        jute.read_stat(reader)
        assert jute.read_multi_header(reader) == (-1, False, Err.NO_NODE)
        assert reader.int32() == Err.NO_NODE
        assert jute.read_multi_header(reader) == (OpCode.GET_CHILDREN, False, 0)
        assert reader.strings() == ["a", "e"]
        assert client.close_session() == 0
        assert client.closed_by_server()
    with RawClient(zk_cluster.zk_addresses[0]) as check:
        check.connect(2000)
        assert check.exists(base + "/e") == Err.NO_NODE  # closeSession removed the ephemeral


@pytest.mark.parametrize("max_pipeline", [1000, 3])
def test_replies_are_fifo_and_read_your_writes(zk_cluster: ZkCluster, max_pipeline: int) -> None:
    base = _base()
    server = zk_cluster.server(1)
    default, server.max_pipeline = server.max_pipeline, max_pipeline  # 3: back-pressure throughout
    try:
        _pipelined_round_trip(zk_cluster, base)
    finally:
        server.max_pipeline = default


def _pipelined_round_trip(zk_cluster: ZkCluster, base: str) -> None:
    with RawClient(zk_cluster.zk_addresses[1]) as client:
        client.connect(4000)
        client.create(base)
        frames = []
        for index in range(100):
            path = f"{base}/n{index}"
            frames.append(jute.frame(jute.request_header(2 * index + 1, OpCode.CREATE) + create_record(path)))
            frames.append(jute.frame(jute.request_header(2 * index + 2, OpCode.EXISTS) + jute.string_(path) + b"\0"))
        client.send_raw(b"".join(frames))  # pipelined: nothing waits for a reply
        zxids = []
        for expected_xid in range(1, 201):
            reader = jute.Reader(client.read_frame())
            xid, zxid, err = jute.read_reply_header(reader)
            assert (xid, err) == (expected_xid, 0)  # in order, and each exists sees its create
            zxids.append(zxid)
        assert zxids == sorted(zxids)


def test_client_ahead_of_the_replica_is_refused(zk_cluster: ZkCluster) -> None:
    with RawClient(zk_cluster.zk_addresses[0]) as client:
        zxid = zk_cluster.members[0]._member.read_tree(lambda tree: tree.zxid)
        client.send_frame(jute.connect_request(jute.ConnectRequest(0, zxid + 1_000_000, 4000, 0, bytes(16), False)))
        with pytest.raises(Closed):
            client.read_frame()


def test_wrong_password_and_expired_session_get_timeout_zero(zk_cluster: ZkCluster) -> None:
    with RawClient(zk_cluster.zk_addresses[0]) as client:
        _timeout, session_id, password = client.connect(500)
    with RawClient(zk_cluster.zk_addresses[1]) as client:
        assert client.connect(4000, session_id, bytes(16))[0] == 0
    # Nothing keeps the session alive now: the leader expires it after ~0.5 s.
    member = zk_cluster.members[2]._member
    wait_until(lambda: member.read_tree(lambda tree: tree.has_session(session_id)), 10, what="the session here")
    wait_until(lambda: not member.read_tree(lambda tree: tree.has_session(session_id)), 10, what="expiry")
    with RawClient(zk_cluster.zk_addresses[2]) as client:
        assert client.connect(4000, session_id, password)[0] == 0


def test_timeout_negotiation_is_clamped_to_ticks(zk_cluster: ZkCluster) -> None:
    with RawClient(zk_cluster.zk_addresses[0]) as client:
        assert client.connect(1)[0] == 500  # 2 ticks of 250 ms
    with RawClient(zk_cluster.zk_addresses[0]) as client:
        assert client.connect(10**6)[0] == 5000  # 20 ticks


def test_session_move_fences_the_old_member(zk_cluster: ZkCluster) -> None:
    base = _base()
    with RawClient(zk_cluster.zk_addresses[0]) as old:
        old.connect(4000)
        assert old.create(base)[0] == 0
        _catch_up(zk_cluster, 1, old.last_zxid)
        with RawClient(zk_cluster.zk_addresses[1]) as new:
            new.connect(4000, old.session_id, old.password, old.last_zxid)
            assert old.closed_by_server()  # the old member saw the new epoch
            assert new.create(base + "/after")[0] == 0
            assert new.ping() == 0


def test_slow_reader_is_disconnected_alone(zk_cluster: ZkCluster, kazoo_factory: Factory) -> None:
    server = zk_cluster.server(0)
    bystander = kazoo_factory(0)
    base = _base()
    bystander.create(base, b"x" * 200_000)
    limit, server.max_outbox_bytes = server.max_outbox_bytes, 1_000_000
    try:
        with RawClient(zk_cluster.zk_addresses[0]) as slow:
            slow.connect(4000)
            slow.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
            request = jute.frame(jute.request_header(7, OpCode.GET_DATA) + jute.string_(base) + b"\0")
            slow.send_raw(request * 200)  # 40 MB of replies it never reads
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(
                c.session is not None and c.session.session_id == slow.session_id for c in server.connections()
            ):
                time.sleep(0.05)
            assert not any(
                c.session is not None and c.session.session_id == slow.session_id for c in server.connections()
            )
    finally:
        server.max_outbox_bytes = limit
    assert bystander.get(base)[0] == b"x" * 200_000


def test_ttl_and_container_creates(zk_cluster: ZkCluster) -> None:
    base = _base()
    acl = jute.acls_([jute.Acl(31, "world", "anyone")])
    with RawClient(zk_cluster.zk_addresses[0]) as client:
        client.connect(4000)
        ttl_body = jute.string_(base + "-ttl") + jute.buffer_(b"t") + acl + jute.int_(5) + jute.long_(60_000)
        err, _zxid, reader = client.call(OpCode.CREATE_TTL, ttl_body)
        assert err == 0 and reader.string() == base + "-ttl"
        assert jute.read_stat(reader).ephemeralOwner == 0  # as ZooKeeper shows TTL nodes
        bad_ttl = jute.string_(base + "-bad") + jute.buffer_(b"") + acl + jute.int_(5) + jute.long_(0)
        assert client.call(OpCode.CREATE_TTL, bad_ttl)[0] == Err.BAD_ARGUMENTS
        container = jute.string_(base + "-c") + jute.buffer_(b"") + acl + jute.int_(4)
        err, _zxid, reader = client.call(OpCode.CREATE_CONTAINER, container)
        assert err == 0 and reader.string() == base + "-c"
        not_container = jute.string_(base + "-d") + jute.buffer_(b"") + acl + jute.int_(0)
        assert client.call(OpCode.CREATE_CONTAINER, not_container)[0] == Err.BAD_ARGUMENTS
        assert client.call(OpCode.RECONFIG, b"")[0] == Err.RECONFIG_DISABLED
        assert client.ping() == 0  # an unsupported request does not end the connection
