"""Observers and runtime membership changes, with real in-process members
on loopback: observers replicate, serve reads and watches and forward
writes without counting for quorum; voters are added and removed one
change at a time without losing quorum or data; membership survives a
restart from data_dir; status() reports roles, voters, observers and the
leader's view of each peer's lag."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import InProcessCluster, free_ports, start_members, wait_until

import coord
from coord import MembershipChangeError
from coord.testing.faults import NetworkFaults

pytestmark = pytest.mark.cluster

SECRET = "membership-test-secret-0123456789abcdefghijklmnop"


def _new_address() -> str:
    return f"127.0.0.1:{free_ports(1)[0]}"


@contextlib.contextmanager
def running(*members: coord.Coordinator) -> Iterator[None]:
    """Stop ``members`` (concurrently) however the block ends."""
    try:
        yield
    finally:
        threads = [threading.Thread(target=m.stop) for m in members]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)


def _lag_of(member: coord.Coordinator, peer: str) -> int | None:
    with contextlib.suppress(coord.NotReadyError):
        return member.status().peer_lag.get(peer)
    return None


# ---------------------------------------------------------------- observers


def test_observer_replicates_serves_reads_and_watches_and_forwards_writes() -> None:
    # with a secret: the observer's connections go through the authenticated handshake
    cluster = InProcessCluster(3, secret=SECRET)
    observer = coord.Coordinator(
        _new_address(), peers=cluster.addresses, observer=True, session_timeout=5.0, secret=SECRET
    )
    with running(observer, *cluster.members):
        cluster.start()
        leader = cluster.leader()
        leader.create("/before", b"early")
        observer.start(timeout=20)

        status = observer.status()
        assert status.role == "observer"
        assert status.leader == leader.address
        assert list(status.voters) == sorted(cluster.addresses)
        assert status.peer_lag == {}
        assert observer.get("/before")[0] == b"early"  # caught up before start() returned
        # the voters know the observer by its name, but never count it as a voter
        wait_until(lambda: observer.address in leader.status().observers, 10, what="the leader to name the observer")
        assert observer.address not in leader.status().voters

        # a watch set on the observer fires for a write made on the leader
        fired = threading.Event()
        observer.exists("/watched", watch=lambda event: fired.set())
        leader.create("/watched", b"w")
        assert fired.wait(10), "the observer's watch did not fire"
        assert observer.get("/watched")[0] == b"w"

        # writes on the observer are forwarded to the leader and read back locally
        assert observer.create("/from-observer", b"o") == "/from-observer"
        assert observer.get("/from-observer")[0] == b"o"
        observer.create("/eph", b"", ephemeral=True)
        for member in cluster.members:
            member.sync()
            assert member.get("/from-observer")[0] == b"o"
            stat = member.exists("/eph")
            assert stat is not None and stat.ephemeralOwner == observer.session_id
        assert leader.status().sessions == 4  # three voters and the observer

        # the leader tracks the observer's lag, which returns to 0
        wait_until(lambda: _lag_of(leader, observer.address) == 0, 10, what="the observer's lag to reach 0")

        # its session (and ephemeral) goes when the observer stops
        observer.stop()
        wait_until(lambda: leader.exists("/eph") is None, 10, what="the observer's ephemeral to vanish")
        wait_until(lambda: leader.status().sessions == 3, 10, what="the observer's session to close")


def test_observer_never_counts_for_quorum() -> None:
    cluster = InProcessCluster(3)
    observer = coord.Coordinator(_new_address(), peers=cluster.addresses, observer=True, request_timeout=3.0)
    with running(observer, *cluster.members):
        cluster.start()
        observer.start(timeout=20)
        leader = cluster.leader()
        down = [m for m in cluster.members if m is not leader]

        # one voter of three down: two voters are a quorum, writes go on
        down[0].stop()
        observer.create("/one-down", b"1")
        leader.create("/one-down-leader", b"1")
        observer.sync()
        assert observer.get("/one-down-leader")[0] == b"1"

        # two voters of three down: the remaining voter plus the observer are no quorum
        down[1].stop()
        wait_until(lambda: not leader.status().has_quorum, 10, what="the last voter to see it has no quorum")
        with pytest.raises((coord.NotReadyError, coord.OperationTimeoutError, coord.ConnectionLoss)):
            observer.create("/no-quorum", b"x", timeout=1.0)
        with pytest.raises((coord.NotReadyError, coord.OperationTimeoutError, coord.ConnectionLoss)):
            leader.create("/no-quorum-leader", b"x", timeout=1.0)
        # the observer still serves (possibly stale) local reads
        assert observer.get("/one-down")[0] == b"1"
        assert observer.status().role == "observer"


# ---------------------------------------------------------------- voter changes


def test_add_a_voter_then_remove_an_old_one_while_writes_flow(tmp_path: Path) -> None:
    cluster = InProcessCluster(3)
    newcomer_address = _new_address()
    newcomer = coord.Coordinator(newcomer_address, peers=cluster.addresses, join=True, session_timeout=5.0)
    with running(newcomer, *cluster.members):
        cluster.start()
        leader = cluster.leader()
        followers = cluster.followers()
        writer, retiring = followers[0], followers[1]

        acked: list[str] = []
        stop_writing = threading.Event()
        errors: list[BaseException] = []

        def write_loop() -> None:
            while not stop_writing.is_set() and len(acked) < 5000:
                try:
                    acked.append(writer.create("/load/n-", b"x", sequence=True, makepath=True))
                except coord.CoordError as exc:  # an election blip: the write was not acked
                    errors.append(exc)

        thread = threading.Thread(target=write_loop)
        thread.start()
        try:
            wait_until(lambda: len(acked) >= 20, 10, what="writes before the change")
            # 1. add the newcomer (asked on a follower: forwarded to the leader), then start it
            writer.add_member(newcomer_address, timeout=10)
            assert newcomer_address in leader.status().voters
            newcomer.start(timeout=20)
            assert newcomer.status().role == "follower"
            wait_until(lambda: _lag_of(cluster.leader(), newcomer_address) == 0, 15, what="the newcomer to catch up")
            count = len(acked)
            wait_until(lambda: len(acked) >= count + 20, 10, what="writes after the add")

            # 2. remove an old voter (asked on the leader), then stop it
            leader.remove_member(retiring.address, timeout=10)
            retiring.stop()
            count = len(acked)
            wait_until(lambda: len(acked) >= count + 20, 10, what="writes after the remove")
        finally:
            stop_writing.set()
            thread.join(30)

        survivors = [leader, writer, newcomer]
        expected = sorted([leader.address, writer.address, newcomer_address])
        for member in survivors:
            wait_until(lambda m=member: list(m.status().voters) == expected, 10, what="every survivor's voters")
        current = cluster.leader()
        assert sorted(current.status().peer_lag) == sorted(a for a in expected if a != current.address)
        names = {path.rsplit("/", 1)[1] for path in acked}
        children = []
        for member in survivors:
            member.sync()
            children.append(sorted(member.get_children("/load")))
        assert children[0] == children[1] == children[2], "the replicas disagree"
        assert names <= set(children[0]), f"acknowledged writes lost: {sorted(names - set(children[0]))[:5]}"
        assert len(acked) >= 60


def test_a_second_change_is_refused_while_one_is_uncommitted() -> None:
    faults = NetworkFaults(seed=1)
    cluster = InProcessCluster(3, network_faults=faults)
    with running(*cluster.members):
        cluster.start()
        leader = cluster.leader()
        follower = cluster.followers()[0]
        first, second = _new_address(), _new_address()
        # Followers' acknowledgements arrive 0.4 s late: an entry takes that
        # long to commit, while the leader keeps its quorum (fallback 0.7 s).
        faults.set_delay(0.4, 0.4, message_types={"next_node_idx"})
        outcome: list[BaseException | None] = []

        def add_first() -> None:
            try:
                leader.add_member(first, timeout=10)
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=add_first)
        thread.start()
        try:
            # the configuration takes effect on append, so it shows before the commit
            wait_until(lambda: first in follower.status().voters, 5, interval=0.005, what="the first change appended")
            with pytest.raises(MembershipChangeError, match="not yet committed"):
                follower.add_member(second, timeout=5)
            with pytest.raises(MembershipChangeError, match="not yet committed"):
                leader.remove_member(follower.address, timeout=5)
        finally:
            thread.join(15)
        faults.set_delay(0, 0)
        assert outcome == [None], outcome
        assert sorted(leader.status().voters) == sorted([*cluster.addresses, first])
        assert second not in leader.status().voters
        # once committed (and, on the member asked, applied: sync), the next
        # change is accepted (take the never-started voter out again)
        follower.sync()
        follower.remove_member(first, timeout=10)
        assert list(leader.status().voters) == sorted(cluster.addresses)


def test_unsafe_or_invalid_changes_are_refused_and_change_nothing() -> None:
    cluster = InProcessCluster(3)
    observer = coord.Coordinator(_new_address(), peers=cluster.addresses, observer=True)
    with running(observer, *cluster.members):
        cluster.start()
        observer.start(timeout=20)
        leader = cluster.leader()
        follower, other = cluster.followers()
        with pytest.raises(MembershipChangeError, match="already is a voter"):
            follower.add_member(other.address)
        with pytest.raises(MembershipChangeError, match="not a voter"):
            follower.remove_member(_new_address())
        with pytest.raises(MembershipChangeError, match="is the leader"):
            follower.remove_member(leader.address)
        with pytest.raises(MembershipChangeError, match="observer"):
            observer.add_member(_new_address())
        with pytest.raises(coord.ConfigurationError):
            follower.add_member("no-port")
        with pytest.raises(ValueError):
            follower.add_member(_new_address(), timeout=-1)

        other.stop()
        wait_until(lambda: not leader.status().peers_connected.get(other.address), 10, what="the leader to see it")
        # two of three voters left: removing one of them would leave 1 of 2
        with pytest.raises(MembershipChangeError, match="not a quorum"):
            leader.remove_member(follower.address)
        # and adding a fourth would make the cluster depend on the newcomer (2 of 4)
        with pytest.raises(MembershipChangeError, match="not a quorum"):
            leader.add_member(_new_address())
        assert list(leader.status().voters) == sorted(cluster.addresses)
        # removing the stopped voter is safe: the two remaining are both reached
        follower.remove_member(other.address, timeout=10)
        assert list(leader.status().voters) == sorted([leader.address, follower.address])
        leader.create("/still-writable", b"")


def test_membership_survives_a_restart_from_data_dir(tmp_path: Path) -> None:
    cluster = InProcessCluster(3, data_root=str(tmp_path))
    newcomer_address = _new_address()

    def make_newcomer() -> coord.Coordinator:
        return coord.Coordinator(
            newcomer_address, peers=cluster.addresses, join=True, data_dir=str(tmp_path / "new"), session_timeout=5.0
        )

    newcomer = make_newcomer()
    with running(newcomer, *cluster.members):
        cluster.start()
        leader = cluster.leader()
        retiring = cluster.followers()[0]
        leader.create("/kept", b"before")
        leader.add_member(newcomer_address, timeout=10)
        newcomer.start(timeout=20)
        leader.remove_member(retiring.address, timeout=10)
        retiring.stop()
        leader.create("/kept-after", b"after")
        survivors = [m for m in cluster.members if m is not retiring]
        expected = sorted([*(m.address for m in survivors), newcomer_address])
        for member in [*survivors, newcomer]:
            member.sync()
        # every survivor stops, then restarts with its ORIGINAL peers list
        threads = [threading.Thread(target=m.stop) for m in [*survivors, newcomer]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        newcomer = make_newcomer()
        restarted = [*survivors, newcomer]
        with running(newcomer):
            start_members(restarted)
            for member in restarted:
                wait_until(
                    lambda m=member: list(m.status().voters) == expected, 10, what="the restarted member's voters"
                )
                member.sync()
                assert member.get("/kept-after")[0] == b"after"
            # the removed member is not needed for a quorum: writes work
            restarted[0].create("/after-restart", b"")


def test_status_reports_roles_and_peer_lag(tmp_path: Path) -> None:
    cluster = InProcessCluster(3, data_root=str(tmp_path))
    with running(*cluster.members):
        cluster.start()
        leader = cluster.leader()
        lagging = cluster.followers()[0]
        status = leader.status()
        assert status.role == "leader" and status.leader == leader.address
        assert status.zxid > 0 and status.commit_index >= status.last_applied > 0
        assert status.sessions == 3
        assert status.znode_count >= 1
        assert sorted(status.peer_lag) == sorted(m.address for m in cluster.followers())
        json.dumps(status.to_dict())  # JSON-serialisable as it is
        follower_status = lagging.status()
        assert follower_status.role == "follower" and follower_status.peer_lag == {}
        assert follower_status.leader == leader.address
        wait_until(lambda: _lag_of(leader, lagging.address) == 0, 10, what="an idle follower's lag to be 0")

        lagging.stop()
        for index in range(30):
            leader.create(f"/lag-{index}", b"")
        lag = leader.status().peer_lag[lagging.address]
        assert lag >= 30, lag
        assert max(v for k, v in leader.status().peer_lag.items() if k != lagging.address) < 30
        lagging.start(timeout=20)  # restarts from its data_dir and catches up
        wait_until(lambda: _lag_of(cluster.leader(), lagging.address) == 0, 15, what="the lag to return to 0")


def test_membership_rules_on_the_leaders_view() -> None:
    """coord's quorum rule, case by case (the pure decision the leader makes)."""
    from coord.replication import membership_problem

    three = ["a:1", "b:1", "c:1"]
    # healthy cluster: both kinds of change are fine
    assert membership_problem("add", "d:1", voters=three, connected=three, leader="a:1") is None
    assert membership_problem("rem", "c:1", voters=three, connected=three, leader="a:1") is None
    # one voter down: adding a fourth would need the newcomer (2 of 4) ...
    assert "not a quorum" in str(membership_problem("add", "d:1", voters=three, connected=three[:2], leader="a:1"))
    # ... removing the down voter is fine, removing a live one is not (1 of 2)
    assert membership_problem("rem", "c:1", voters=three, connected=three[:2], leader="a:1") is None
    assert "not a quorum" in str(membership_problem("rem", "b:1", voters=three, connected=three[:2], leader="a:1"))
    # growing a single voter is the one exception; shrinking to nothing is not allowed
    assert membership_problem("add", "b:1", voters=["a:1"], connected=["a:1"], leader="a:1") is None
    assert membership_problem("rem", "a:1", voters=["a:1"], connected=["a:1"], leader="a:1") is not None
    assert "is the leader" in str(membership_problem("rem", "a:1", voters=three, connected=three, leader="a:1"))
    assert "malformed" in str(membership_problem("set_version", "a:1", voters=three, connected=three, leader="a:1"))
