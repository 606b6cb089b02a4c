"""In-process multi-member tests: three real members (pysyncobj over
loopback TCP) in this process, exercising the client API end to end."""

from __future__ import annotations

import concurrent.futures
import logging
import random
import threading
import traceback

import pytest
from helpers import InProcessCluster, wait_until

import coord

pytestmark = pytest.mark.cluster


def test_writes_on_any_member_are_read_everywhere_after_sync(cluster: InProcessCluster) -> None:
    leader = cluster.leader()
    follower = cluster.followers()[0]
    assert leader.create("/via-leader", b"1") == "/via-leader"
    assert follower.create("/via-follower", b"2") == "/via-follower"
    # read-your-writes on the writer, without sync
    assert follower.get("/via-follower")[0] == b"2"
    for member in cluster.members:
        member.sync()
        assert member.get("/via-leader")[0] == b"1"
        assert member.get("/via-follower")[0] == b"2"
    zxids = {m.get("/via-follower")[1].czxid for m in cluster.members}
    assert len(zxids) == 1, "every replica must agree on the zxid of a write"


def test_versions_and_cas(cluster: InProcessCluster) -> None:
    member = cluster.members[1]
    member.create("/cas", b"a")
    stat = member.set("/cas", b"b", version=0)
    assert stat.version == 1
    with pytest.raises(coord.BadVersionError):
        member.set("/cas", b"c", version=0)
    with pytest.raises(coord.BadVersionError):
        member.delete("/cas", version=5)
    assert member.get("/cas")[0] == b"b"
    assert member.delete("/cas", version=1) is True
    assert member.exists("/cas") is None


def test_watches_fire_once_on_the_callback_thread_after_the_data_is_applied(cluster: InProcessCluster) -> None:
    writer, watcher = cluster.members[0], cluster.members[2]
    writer.create("/w", b"0")
    watcher.sync()
    seen: list[tuple[coord.WatchedEvent, bytes, str]] = []
    fired = threading.Event()

    def on_change(event: coord.WatchedEvent) -> None:
        # ZooKeeper's guarantee: the event comes no later than the data
        data = watcher.get(event.path)[0]
        seen.append((event, data, threading.current_thread().name))
        fired.set()

    watcher.get("/w", watch=on_change)
    watcher.get("/w", watch=on_change)  # the same function registered twice fires once
    writer.set("/w", b"1")
    assert fired.wait(5), "data watch did not fire"
    writer.set("/w", b"2")
    watcher.sync()
    writer.sync()
    assert len(seen) == 1, seen
    event, data, thread_name = seen[0]
    assert event == coord.WatchedEvent("CHANGED", "CONNECTED", "/w")
    assert data in (b"1", b"2")
    assert thread_name.startswith("coord-callbacks"), thread_name


def test_exists_and_child_watches(cluster: InProcessCluster) -> None:
    writer, watcher = cluster.members[0], cluster.members[1]
    events: list[coord.WatchedEvent] = []
    arrived = threading.Semaphore(0)

    def record(event: coord.WatchedEvent) -> None:
        events.append(event)
        arrived.release()

    assert watcher.exists("/parent", watch=record) is None
    writer.create("/parent")
    assert arrived.acquire(timeout=5)
    watcher.sync()
    watcher.get_children("/parent", watch=record)
    writer.create("/parent/kid")
    assert arrived.acquire(timeout=5)
    watcher.get_children("/parent", watch=record)
    watcher.get("/parent/kid", watch=record)
    writer.delete("/parent/kid")
    assert arrived.acquire(timeout=5) and arrived.acquire(timeout=5)
    assert events[0] == coord.WatchedEvent("CREATED", "CONNECTED", "/parent")
    assert events[1] == coord.WatchedEvent("CHILD", "CONNECTED", "/parent")
    assert sorted(events[2:]) == sorted(
        [coord.WatchedEvent("DELETED", "CONNECTED", "/parent/kid"), coord.WatchedEvent("CHILD", "CONNECTED", "/parent")]
    )


def test_election_timeouts_do_not_come_from_the_shared_random_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that seeds ``random`` identically in every process must not
    get correlated election timeouts (split votes), so coord draws them
    from its own generator: ``random.random`` is never called for them."""
    callers: list[str] = []

    def shared_random() -> float:
        callers.append(repr(traceback.extract_stack(limit=3)[0]))
        return 0.5

    monkeypatch.setattr(random, "random", shared_random)
    cluster = InProcessCluster(3).start()
    try:
        first = cluster.leader()
        first.stop()  # the survivors draw new election timeouts and elect again
        wait_until(
            lambda: any(m is not first and m.status().role == "leader" for m in cluster.members),
            10,
            what="a new leader",
        )
    finally:
        cluster.stop()
    assert callers == []


def test_stop_closes_the_session_and_its_ephemerals_go_at_once() -> None:
    cluster = InProcessCluster(3, session_timeout=30.0).start()
    try:
        owner, observer = cluster.members[0], cluster.members[1]
        owner.create("/eph", b"", ephemeral=True)
        stat = owner.exists("/eph")
        assert stat is not None and stat.ephemeralOwner == owner.session_id
        gone = threading.Event()
        observer.sync()
        assert observer.exists("/eph", watch=lambda event: gone.set()) is not None
        owner.stop()
        # far below the 30 s session timeout: the close went through the log
        assert gone.wait(5), "ephemeral of a stopped member was not deleted"
        assert observer.exists("/eph") is None
    finally:
        cluster.stop()


def test_transactions_are_all_or_nothing_with_kazoo_results(cluster: InProcessCluster) -> None:
    member = cluster.members[0]
    member.create("/tx", b"v")
    before = member.get_children("/")
    txn = member.transaction()
    txn.create("/tx/new")
    txn.set_data("/tx", b"w", version=7)
    txn.check("/tx", 0)
    results = txn.commit()
    assert [type(r) for r in results] == [coord.RolledBackError, coord.BadVersionError, coord.RuntimeInconsistency]
    assert member.exists("/tx/new") is None and member.get("/tx")[0] == b"v"
    assert member.get_children("/") == before
    with member.transaction() as txn:
        txn.create("/tx/new", b"n")
        txn.set_data("/tx", b"w")
        txn.check("/tx", 1)
        txn.delete("/tx/new")
    assert member.get("/tx")[0] == b"w" and member.exists("/tx/new") is None


def test_bad_input_raises_clear_errors_and_changes_nothing(cluster: InProcessCluster) -> None:
    member = cluster.members[0]
    member.create("/keep", b"x")
    zxid = member.status().zxid
    cases = [
        (lambda: member.create("no-slash"), coord.InvalidPathError, "/"),
        (lambda: member.create("/a//b"), coord.InvalidPathError, "empty"),
        (lambda: member.create("/a/../b"), coord.InvalidPathError, ".."),
        (lambda: member.create("/trailing/"), coord.InvalidPathError, "/"),
        (lambda: member.create("/s", "text"), TypeError, "bytes"),  # type: ignore[arg-type]
        (lambda: member.set("/keep", b"y", version="1"), TypeError, "version"),  # type: ignore[arg-type]
        (lambda: member.create("/big", b"x" * ((1 << 20) + 1)), coord.DataTooLargeError, "1048576"),
        (lambda: member.get("/keep", watch=42), TypeError, "callable"),  # type: ignore[arg-type]
    ]
    for call, error, fragment in cases:
        with pytest.raises(error) as info:
            call()
        assert fragment in str(info.value), (error, str(info.value))
    member.sync()
    assert member.status().zxid == zxid, "bad input must not consume a zxid"
    assert member.get("/keep")[0] == b"x"


def test_sequential_and_recursive_delete(cluster: InProcessCluster) -> None:
    member = cluster.members[2]
    member.create("/q")
    names = [member.create("/q/item-", sequence=True) for _ in range(3)]
    assert names == ["/q/item-0000000000", "/q/item-0000000001", "/q/item-0000000002"]
    member.delete(names[2])
    # ZooKeeper's suffix counts child creations, not deletions
    assert member.create("/q/item-", sequence=True) == "/q/item-0000000003"
    member.create("/q/a/b/c", makepath=True)
    assert member.delete("/q", recursive=True) is True
    assert member.exists("/q") is None
    assert member.delete("/q", recursive=True) is True  # missing: kazoo returns True too


def test_async_writes_and_bounded_in_flight() -> None:
    cluster = InProcessCluster(3, max_in_flight=8).start()
    try:
        member = cluster.followers()[0]
        futures = [member.create_async(f"/async-{i}", b"x") for i in range(200)]
        done, not_done = concurrent.futures.wait(futures, timeout=30)
        assert not not_done
        assert sorted(f.result() for f in done) == sorted(f"/async-{i}" for i in range(200))
        assert member.status().requests_in_flight == 0
        assert member.get_async("/async-7").result(0)[0] == b"x"
        assert member.exists_async("/async-7").result(0).version == 0
        assert "async-7" in member.get_children_async("/").result(0)
        with pytest.raises(coord.NoNodeError):
            member.get_async("/missing").result(0)
        assert member.delete_async("/async-7").result(10) is True
        assert member.sync_async().result(10) == "/"
    finally:
        cluster.stop()


def test_status_reports_role_leader_term_and_session(cluster: InProcessCluster) -> None:
    leader = cluster.leader()
    statuses = [m.status() for m in cluster.members]
    assert sorted(s.role for s in statuses) == ["follower", "follower", "leader"]
    assert {s.leader for s in statuses} == {leader.address}
    assert len({s.term for s in statuses}) == 1
    pairs = zip(statuses, cluster.members, strict=True)
    assert all(s.session_id == m.session_id and s.session_id > 0 for s, m in pairs)
    assert all(s.session_state == coord.SessionState.CONNECTED for s in statuses)


def test_secret_cluster_works_and_start_requires_a_majority(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = "f3Q9-pLx2vR8zK1mW7cN4bT6yH0jD5sAaEeGgIiUuOo"
    cluster = InProcessCluster(3, secret=secret).start()
    try:
        cluster.members[0].create("/secret", b"s")
        cluster.members[1].sync()
        assert cluster.members[1].get("/secret")[0] == b"s"
    finally:
        cluster.stop()
    lonely = InProcessCluster(3)
    with pytest.raises(coord.NotReadyError, match="no leader"):
        lonely.members[0].start(timeout=2.5)


def test_a_member_restarted_from_data_dir_recovers_its_tree(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cluster = InProcessCluster(3, data_root=str(tmp_path)).start()
    try:
        cluster.members[0].create("/durable", b"d")
        restarted_address = cluster.members[2].address
        cluster.members[2].sync()
        cluster.members[2].stop()
        cluster.members[0].create("/while-down", b"w")
        again = coord.Coordinator(
            restarted_address, peers=cluster.addresses, data_dir=str(tmp_path / "m2"), session_timeout=2.0
        )
        cluster.members[2] = again
        again.start(timeout=20)
        again.sync()
        assert again.get("/durable")[0] == b"d"
        assert again.get("/while-down")[0] == b"w"
    finally:
        cluster.stop()


def test_a_raising_callback_never_reaches_raft_and_nothing_is_applied_twice(cluster: InProcessCluster) -> None:
    writer, watcher = cluster.members[0], cluster.members[1]
    calls: list[coord.WatchedEvent] = []

    def explode(event: coord.WatchedEvent) -> None:
        calls.append(event)
        raise RuntimeError("user bug")

    writer.create("/boom", b"0")
    watcher.sync()
    watcher.get("/boom", watch=explode)
    future = writer.set_async("/boom", b"1")
    future.add_done_callback(lambda f: (_ for _ in ()).throw(RuntimeError("done-callback bug")))
    assert future.result(10).version == 1
    for i in range(20):
        writer.set("/boom", str(i).encode())
    for member in cluster.members:
        member.sync()
    wait_until(lambda: len(calls) == 1, timeout=5, what="the raising watch to run")
    stats = [m.get("/boom")[1] for m in cluster.members]
    assert {s.version for s in stats} == {21}, "an entry was applied twice or lost"
    assert len({m.status().zxid for m in cluster.members}) == 1


def test_the_installed_pysyncobj_is_the_audited_release(monkeypatch: pytest.MonkeyPatch) -> None:
    from coord import replication

    replication.check_pysyncobj_version()
    monkeypatch.setattr(replication, "PYSYNCOBJ_VERSION", "0.3.18")
    with pytest.raises(coord.ConfigurationError, match="written for pysyncobj 0.3.17, but 0.3.18"):
        replication.check_pysyncobj_version()


def test_a_member_behind_a_compacted_log_catches_up_from_a_snapshot(caplog: pytest.LogCaptureFixture) -> None:
    cluster = InProcessCluster(3, snapshot_entries=20).start()
    try:
        lagging_address = cluster.members[2].address
        cluster.members[2].stop()
        writer = cluster.members[0]
        for i in range(120):  # several compactions while the member is away
            writer.create(f"/snap-{i:03d}", str(i).encode())
        rejoined = coord.Coordinator(lagging_address, peers=cluster.addresses, session_timeout=2.0, snapshot_entries=20)
        cluster.members[2] = rejoined
        with caplog.at_level(logging.INFO, logger="coord.member"):
            rejoined.start(timeout=20)
        assert f"member {lagging_address} installed a snapshot" in caplog.text
        rejoined.sync()
        assert rejoined.get_children("/") == [f"snap-{i:03d}" for i in range(120)]
        assert rejoined.get("/snap-119") == writer.get("/snap-119")
        assert rejoined.status().zxid == writer.status().zxid
    finally:
        cluster.stop()


def test_the_same_member_object_can_stop_and_start_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cluster = InProcessCluster(3, data_root=str(tmp_path)).start()
    try:
        member = cluster.members[1]
        member.create("/before", b"1")
        member.stop()
        cluster.members[0].create("/during", b"2")
        member.start(timeout=20)
        member.sync()
        assert member.get("/before")[0] == b"1" and member.get("/during")[0] == b"2"
        # Re-applying the journal onto the old tree would diverge for good;
        # concurrent session traffic only delays convergence.
        wait_until(
            lambda: len({(m.sync(), m.status().zxid)[1] for m in cluster.members}) == 1,
            timeout=10,
            what="the restarted member to agree with the others (it must not re-apply its journal)",
        )
        assert member.create("/after", b"3") == "/after"
    finally:
        cluster.stop()


def test_a_transaction_refuses_bad_ops_when_added_and_bad_timeouts_before_committing(
    cluster: InProcessCluster,
) -> None:
    member = cluster.members[0]
    txn = member.transaction()
    with pytest.raises(coord.DataTooLargeError):
        txn.create("/big", b"x" * ((1 << 20) + 1))
    txn.create("/fine")
    with pytest.raises(ValueError, match="timeout"):
        txn.commit(timeout=-1)
    assert txn.commit() == ["/fine"]  # the refused timeout did not use the transaction up
