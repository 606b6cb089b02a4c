"""The in-process fault transport on a real 3-member cluster: every member
consults one seeded ``NetworkFaults`` policy for each Raft message it sends
(no root, no network namespaces, part of the default suite)."""

from __future__ import annotations

import logging
import time

import pytest
from faultkit import faulty_cluster, leader_among, raft, wait_converged
from helpers import wait_until

pytestmark = pytest.mark.cluster

_TRUNCATION = "truncating already-applied log entries"


def test_an_isolated_leader_is_replaced_and_catches_up_after_heal() -> None:
    cluster, faults = faulty_cluster(seed=11)
    try:
        old = cluster.leader()
        old.create("/before", b"0")
        majority = [m for m in cluster.members if m is not old]
        cut = faults.isolate(old.address)
        new = leader_among(majority)
        assert new is not old
        for i in range(20):
            new.create(f"/during-{i:02d}", str(i).encode())
        majority[0].sync()
        majority[1].sync()
        assert raft(old).last_applied < raft(new).last_applied
        assert old.exists("/during-00") is None, "an isolated member cannot have seen the majority's writes"
        assert faults.fate_count("drop_cut") > 0

        faults.heal(cut)
        zxid = wait_converged(cluster.members)
        assert old.get("/during-19")[0] == b"19"
        assert zxid == old.status().zxid == new.status().zxid
        assert raft(old).role == "follower"
    finally:
        cluster.stop()


def test_a_one_way_cut_follower_applies_what_it_cannot_acknowledge() -> None:
    cluster, faults = faulty_cluster(seed=12)
    try:
        leader = cluster.leader()
        deaf, other = [m for m in cluster.members if m is not leader]
        replies_before = faults.sent_count(deaf.address, leader.address, "next_node_idx")
        faults.cut_oneway(deaf.address, leader.address)  # its replies and forwards are lost
        stuck = deaf.create_async("/from-the-cut-follower", b"x")
        for i in range(10):
            leader.create(f"/one-way-{i}", b"")
        # The cut follower still receives AppendEntries and the commit index.
        wait_until(lambda: deaf.exists("/one-way-9") is not None, 5, what="the cut follower to apply the writes")
        assert leader.status().leader == leader.address and raft(other).role == "follower"
        time.sleep(0.5)
        assert not stuck.done(), "a write that never reached the leader was acknowledged"
        assert faults.sent_count(deaf.address, leader.address, "next_node_idx") == replies_before
        assert faults.fate_count("drop_cut", "next_node_idx") > 0

        faults.heal()
        assert stuck.result(15) == "/from-the-cut-follower"
        wait_converged(cluster.members)
        assert leader.get("/from-the-cut-follower")[1].version == 0
    finally:
        cluster.stop()


def test_loss_duplication_delay_and_stale_replays_leave_identical_replicas(caplog: pytest.LogCaptureFixture) -> None:
    cluster, faults = faulty_cluster(seed=13)
    try:
        faults.set_loss(0.03)
        faults.set_delay(0.0, 0.02)
        faults.set_duplicate(0.2, max_delay_s=0.1)
        faults.set_stale_redelivery(0.05, min_delay_s=0.1, max_delay_s=0.5)
        with caplog.at_level(logging.CRITICAL, logger="pysyncobj"):
            creates, updates = [], []
            for i in range(300):
                member = cluster.members[i % 3]
                creates.append(member.create_async(f"/load-{i:03d}", str(i).encode()))
                if i % 10 == 0:  # pipelined behind its create: FIFO per session must hold under loss
                    updates.append(member.set_async(f"/load-{i:03d}", b"updated"))
            created = [future.result(30) for future in creates]
            versions = {future.result(30).version for future in updates}
            faults.clear()
            wait_until(lambda: faults.in_flight() == 0, 5, what="delayed copies to drain")
            zxid = wait_converged(cluster.members)
        assert created == [f"/load-{i:03d}" for i in range(300)] and versions == {1}
        assert faults.fate_count("duplicate") > 50 and faults.fate_count("stale") > 10
        assert faults.fate_count("drop_loss") > 10
        for member in cluster.members:
            assert member.status().zxid == zxid
            assert len(member.get_children("/")) == 300
            assert member.get("/load-290") == (b"updated", member.get("/load-290")[1])
            assert member.get("/load-290")[1].version == 1
        truncations = [r.getMessage() for r in caplog.records if _TRUNCATION in r.getMessage()]
        assert not truncations, f"a follower truncated applied entries (R1): {truncations[:3]}"
    finally:
        cluster.stop()
