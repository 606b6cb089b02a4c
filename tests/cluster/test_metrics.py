"""``metrics()``, the Prometheus endpoint and the operational log lines on
one shared 3-member cluster (authenticated transport, fault-injection
transport for a leader isolation, small snapshot threshold): every counter
and gauge moves exactly as the operations that drive it say."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import InProcessCluster, free_ports, wait_until

import coord
from coord import replication
from coord.security import split_address
from coord.testing.faults import NetworkFaults

pytestmark = pytest.mark.cluster

SECRET = "Hq3vT8kLr5tWb9xYc3mPd7fZg1jKs4aE"
SNAPSHOT_ENTRIES = 40


@pytest.fixture(scope="module")
def faults() -> NetworkFaults:
    return NetworkFaults(seed=11)


@pytest.fixture(scope="module")
def cluster(faults: NetworkFaults) -> Iterator[InProcessCluster]:
    members = InProcessCluster(
        3,
        secret=SECRET,
        session_timeout=2.0,
        network_faults=faults,
        snapshot_entries=SNAPSHOT_ENTRIES,
        metrics_address="127.0.0.1:0",
    ).start()
    try:
        yield members
    finally:
        members.stop()


@pytest.fixture
def coord_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="coord")
    return caplog


def _events(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == event]


def _delta(after: dict[str, Any], before: dict[str, Any], key: str) -> Any:
    return after[key] - before[key]


def test_metrics_has_every_documented_key_with_its_type(cluster: InProcessCluster) -> None:
    values = cluster.members[0].metrics()
    strings = {"server_state", "leader"}
    floats = {k for k in values if k.endswith(("_ms", "_seconds"))}
    for key, value in values.items():
        expected = str if key in strings else float if key in floats else int
        assert type(value) is expected, f"{key}={value!r}"
    assert values["server_state"] in ("leader", "follower")
    assert values["leader"] == cluster.leader().address
    assert values["voters"] == 3 and values["observers"] == 0
    assert list(values) == sorted(values)


def test_metrics_before_start_raise_not_ready() -> None:
    member = coord.Coordinator("127.0.0.1:1")
    with pytest.raises(coord.NotReadyError):
        member.metrics()
    assert member.metrics_address is None


def test_the_async_twin_reads_the_same_member(cluster: InProcessCluster) -> None:
    from coord.aio import AsyncCoordinator

    member = cluster.members[2]
    values = asyncio.run(AsyncCoordinator.from_sync(member).metrics())
    assert values["znode_count"] == member.metrics()["znode_count"]
    assert values["uptime_seconds"] <= member.metrics()["uptime_seconds"]


def test_the_endpoint_goes_away_with_the_member() -> None:
    pytest.importorskip("prometheus_client")
    (port,) = free_ports(1)
    member = coord.Coordinator(f"127.0.0.1:{port}", metrics_address="127.0.0.1:0")
    member.start()
    try:
        address = member.metrics_address
        assert address is not None
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as reply:
            assert b"coord_znode_count " in reply.read()
    finally:
        member.stop()
    assert member.metrics_address is None
    with pytest.raises(OSError):
        socket.create_connection(split_address(address), timeout=5).close()


def test_writes_move_counts_sizes_commits_and_latency(cluster: InProcessCluster) -> None:
    writer = cluster.members[0]
    writer.ensure_path("/mt/w")
    before = writer.metrics()
    others_before = [m.metrics() for m in cluster.members[1:]]
    paths = [f"/mt/w/n{i}" for i in range(25)]
    for path in paths:
        writer.create(path, b"0123456789")
    after = writer.metrics()
    assert _delta(after, before, "znode_count") == len(paths)
    assert _delta(after, before, "approximate_data_size") == sum(len(p) + 10 for p in paths)
    assert _delta(after, before, "commits_total") >= len(paths)
    assert _delta(after, before, "write_latency_count") >= len(paths)
    assert _delta(after, before, "applied_zxid") >= len(paths)
    assert 0 < after["write_latency_min_ms"] <= after["write_latency_p50_ms"] <= after["write_latency_p90_ms"]
    assert after["write_latency_p90_ms"] <= after["write_latency_p99_ms"] <= after["write_latency_max_ms"]
    assert after["write_latency_min_ms"] <= after["write_latency_avg_ms"] <= after["write_latency_max_ms"]
    for member, old in zip(cluster.members[1:], others_before, strict=True):
        wait_until(lambda m=member: m.metrics()["znode_count"] == after["znode_count"], 10, what="replicas to catch up")
        now = member.metrics()
        assert _delta(now, old, "commits_total") >= len(paths)
        assert now["approximate_data_size"] == after["approximate_data_size"]
        # Nobody wrote from there: its own latency samples are its keepalives only.
        assert _delta(now, old, "write_latency_count") < len(paths)
    leader = cluster.leader()
    status = leader.metrics()
    assert status["followers"] == 2 and status["peers_connected"] == 2
    assert status["has_quorum"] == 1 and status["peer_lag_max"] >= 0


def test_watch_counts_and_queue_depths(cluster: InProcessCluster) -> None:
    member = cluster.members[1]
    member.ensure_path("/mt/watch")
    for name in ("a", "b", "c"):
        member.create(f"/mt/watch/{name}", b"")
    before = member.metrics()
    fired: list[Any] = []
    for name in ("a", "b", "c"):
        member.exists(f"/mt/watch/{name}", watch=fired.append)
    member.get_children("/mt/watch", watch=fired.append)
    assert _delta(member.metrics(), before, "watch_count") == 4
    member.set("/mt/watch/a", b"1")  # fires a's data watch only
    wait_until(lambda: member.metrics()["watch_count"] == before["watch_count"] + 3, 5, what="a's watch to go")

    release = threading.Event()

    def slow(event: coord.WatchedEvent) -> None:
        release.wait(10)

    member.add_watch("/mt/watch/b", slow)
    try:
        assert _delta(member.metrics(), before, "persistent_watch_count") == 1
        for value in (b"1", b"2", b"3", b"4"):
            member.set("/mt/watch/b", value)  # the first event blocks in `slow`, the rest queue
        depths = wait_until(
            lambda: (m := member.metrics())["watch_queue_depth_max"] >= 2 and m, 5, what="events to queue up"
        )
        assert depths["watch_queue_depth"] >= depths["watch_queue_depth_max"]
    finally:
        release.set()
    wait_until(lambda: member.metrics()["watch_queue_depth"] == 0, 5, what="the queue to drain")
    assert member.remove_watch("/mt/watch/b", slow)
    assert member.metrics()["persistent_watch_count"] == before["persistent_watch_count"]


def test_sessions_and_ephemerals(cluster: InProcessCluster) -> None:
    for member in cluster.members:
        wait_until(lambda m=member: m.metrics()["num_sessions"] == 3, 10, what="three sessions")
    owner = cluster.members[2]
    before = [m.metrics()["ephemerals_count"] for m in cluster.members]
    owner.ensure_path("/mt/eph")
    owner.create("/mt/eph/x", b"", ephemeral=True)
    owner.create("/mt/eph/y", b"", ephemeral=True)
    for member, count in zip(cluster.members, before, strict=True):
        wait_until(lambda m=member, c=count: m.metrics()["ephemerals_count"] == c + 2, 10, what="two ephemerals")
    owner.delete("/mt/eph/x")
    owner.delete("/mt/eph/y")
    assert owner.metrics()["ephemerals_count"] == before[2]


def test_snapshots_are_counted_sized_and_logged(
    cluster: InProcessCluster, coord_logs: pytest.LogCaptureFixture
) -> None:
    before = [m.metrics()["snapshot_count"] for m in cluster.members]
    transaction = cluster.members[0].transaction()
    cluster.members[0].ensure_path("/mt/snap")
    for index in range(SNAPSHOT_ENTRIES + 5):  # one multi of more ops than snapshot_entries forces a snapshot
        transaction.create(f"/mt/snap/{index}", b"v")
    transaction.commit()
    for member, count in zip(cluster.members, before, strict=True):
        wait_until(lambda m=member, c=count: m.metrics()["snapshot_count"] > c, 10, what="a snapshot")
        values = wait_until(
            lambda m=member: (v := m.metrics())["last_snapshot_write_bytes"] > 0 and v, 10, what="the snapshot written"
        )
        assert values["last_snapshot_bytes"] > values["approximate_data_size"] // 2
        assert values["last_snapshot_seconds"] >= 0 and values["last_snapshot_write_seconds"] > 0
    records = _events(coord_logs, "snapshot")
    assert records, "no snapshot was logged"
    assert all(r.bytes > 0 and r.znodes > 1 and r.seconds >= 0 for r in records)  # type: ignore[attr-defined]
    assert "snapshot taken event=snapshot member=" in records[0].getMessage()


def test_refused_peer_connections_are_counted_and_logged(
    cluster: InProcessCluster, coord_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replication, "_peer_log", replication._RateLimitedLog())  # this test's first warning
    member = cluster.members[1]
    before = member.metrics()["refused_connections_total"]
    with socket.create_connection(split_address(member.address), timeout=5) as sock:
        sock.sendall(os.urandom(64))  # not coord's handshake
        wait_until(
            lambda: member.metrics()["refused_connections_total"] > before, 10, what="the connection to be refused"
        )
    records = [r for r in _events(coord_logs, "refused_connection") if r.member == member.address]  # type: ignore[attr-defined]
    assert records and records[0].levelno == logging.WARNING
    assert "reason=" in records[0].getMessage()


def test_pysyncobj_own_lines_are_logged_under_coord(
    cluster: InProcessCluster, coord_logs: pytest.LogCaptureFixture
) -> None:
    # printStatus is pysyncobj's own code logging (INFO, one line per status field).
    cluster.members[0]._member._replicator._sync_obj.printStatus()  # type: ignore[union-attr]
    names = {r.name for r in coord_logs.records if r.getMessage().startswith("raft_term: ")}
    assert "coord.pysyncobj.syncobj" in names


def test_prometheus_endpoint_serves_the_same_values(cluster: InProcessCluster) -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    for member in cluster.members:
        assert member.metrics_address is not None and member.metrics_address.startswith("127.0.0.1:")
        first = member.metrics()
        with urllib.request.urlopen(f"http://{member.metrics_address}/metrics", timeout=10) as reply:
            assert reply.status == 200
            assert reply.headers["Content-Type"].startswith("text/plain")
            text = reply.read().decode()
        second = member.metrics()
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in parser.text_string_to_metric_families(text)
            for sample in family.samples
        }
        values = {name: value for (name, labels), value in samples.items() if not labels}
        info = next(dict(labels) for (name, labels) in samples if name == "coord_info")
        assert info["server_state"] == second["server_state"] and info["leader"] == second["leader"]
        for key in ("znode_count", "approximate_data_size", "voters", "num_sessions", "watch_count"):
            assert values[f"coord_{key}"] == first[key] == second[key], key
        assert first["commits_total"] <= values["coord_commits_total"] <= second["commits_total"]
        assert first["term"] <= values["coord_term"] <= second["term"]
        count = values["coord_write_latency_seconds_count"]
        assert first["write_latency_count"] <= count <= second["write_latency_count"]
        assert samples[("coord_write_latency_seconds_bucket", (("le", "+Inf"),))] == count
        assert values["coord_write_latency_seconds_sum"] > 0
        for key, value in second.items():  # every numeric metric is exposed
            if isinstance(value, str) or key.startswith("write_latency_"):
                continue
            name = key if not key.endswith("_total") else key[: -len("_total")]
            assert f"coord_{name}" in values or f"coord_{name}_total" in values, key


def test_leader_isolation_counts_elections_leader_changes_and_session_expiry(
    cluster: InProcessCluster, faults: NetworkFaults, coord_logs: pytest.LogCaptureFixture
) -> None:
    old = cluster.leader()
    others = [m for m in cluster.members if m is not old]
    old.ensure_path("/mt/iso")
    old.create("/mt/iso/owned", b"", ephemeral=True)
    old_session = old.session_id
    before = {m.address: m.metrics() for m in cluster.members}
    cut = faults.isolate(old.address)
    try:
        stalled = old.create_async("/mt/iso/stalled", b"", timeout=2.0)  # cannot commit: no quorum
        assert old.metrics()["outstanding_requests"] >= 1

        def new_leader() -> str | None:
            leaders = {m.metrics()["leader"] for m in others}
            (leader,) = leaders if len(leaders) == 1 else (None,)
            return leader if leader and leader != old.address else None

        elected = wait_until(new_leader, 15, what="a new leader among the others")
        for member in others:
            wait_until(
                lambda m=member: _delta(m.metrics(), before[m.address], "session_expirations_total") >= 1,
                15,
                what="the isolated member's session to expire",
            )
            assert member.exists("/mt/iso/owned") is None
            after = member.metrics()
            assert _delta(after, before[member.address], "leader_changes_total") >= 1
        assert sum(_delta(m.metrics(), before[m.address], "elections_total") for m in others) >= 1
    finally:
        faults.heal(cut)
    with pytest.raises(coord.CoordError):
        stalled.result(timeout=30)
    wait_until(lambda: old.connected and old.session_id != old_session, 20, what="the old leader's new session")
    wait_until(lambda: len({m.metrics()["leader"] for m in cluster.members} - {""}) == 1, 15, what="one leader")

    changes = [r for r in _events(coord_logs, "leader_change") if r.leader == elected]  # type: ignore[attr-defined]
    assert {r.member for r in changes} >= {m.address for m in others}  # type: ignore[attr-defined]
    assert all(r.previous in (old.address, "") and r.term >= 1 for r in changes)  # type: ignore[attr-defined]
    expired = [r for r in _events(coord_logs, "session_expired") if r.session == f"0x{old_session:x}"]  # type: ignore[attr-defined]
    assert {r.member for r in expired} >= {m.address for m in others}  # type: ignore[attr-defined]
    assert all(r.ephemerals_deleted == 1 for r in expired)  # type: ignore[attr-defined]
    assert "session expired event=session_expired member=" in expired[0].getMessage()
    assert _events(coord_logs, "election_start"), "no election was logged"
