"""NonBlockingLease / MultiNonBlockingLease against a real 3-member
cluster (modelled on kazoo's test_lease.py). coord's leases are TTL nodes
timed by the cluster's leader, so instead of kazoo's mock client clock
these tests wait for the cluster to expire the lease (with deadlines)."""

from __future__ import annotations

import datetime
import inspect
import time

import pytest
from helpers import wait_until

import coord
from coord.recipes import MultiNonBlockingLease, NonBlockingLease

pytestmark = pytest.mark.skipif(
    "ttl" not in inspect.signature(coord.Coordinator.create).parameters,
    reason="coord.Coordinator.create has no ttl= yet (TTL nodes not landed)",
)

#: How long after its TTL the cluster may take to delete an expired node.
EXPIRY_SLACK = 5.0


def test_obtain_and_renew_from_another_member(shared, path):
    m0, m1, _ = shared
    lease = m0.NonBlockingLease(path, datetime.timedelta(seconds=30), identifier="host-a")
    assert lease and lease.obtained is True
    assert m0.get(path + "/lease_holder")[0] == b"host-a"  # no end time: no client clock
    renewed = NonBlockingLease(m1, path, 30, identifier="host-a")
    assert renewed
    assert renewed.fencing_token > lease.fencing_token


def test_busy(shared, path):
    m0, m1, _ = shared
    assert NonBlockingLease(m0, path, 30, identifier="host-a")
    foreigner = NonBlockingLease(m1, path, 30, identifier="host-b")
    assert not foreigner
    assert foreigner.obtained is False and foreigner.fencing_token is None


def test_overtake_after_the_cluster_expires_it(shared, path):
    m0, m1, _ = shared
    duration = 1.0
    lease = NonBlockingLease(m0, path, duration, identifier="host-a")
    assert lease
    started = time.monotonic()
    # Read on the creating member: another replica may not have the node yet.
    wait_until(lambda: m0.exists(lease.holder_path) is None, duration + EXPIRY_SLACK, what="lease expired")
    assert time.monotonic() - started >= duration * 0.9  # never before its TTL
    foreigner = NonBlockingLease(m1, path, 30, identifier="host-b")
    assert foreigner
    assert foreigner.fencing_token > lease.fencing_token


def test_renewing_keeps_it_past_its_duration(shared, path):
    m0, m1, m2 = shared
    duration = 1.5
    assert NonBlockingLease(m0, path, duration, identifier="host-a")
    end = time.monotonic() + 2 * duration
    while time.monotonic() < end:
        time.sleep(duration / 4)
        assert NonBlockingLease(m1, path, duration, identifier="host-a"), "renewal failed"
        assert not NonBlockingLease(m2, path, duration, identifier="host-b")
    # Renewals stop: the other host gets it once the cluster expires it.
    wait_until(
        lambda: NonBlockingLease(m2, path, duration, identifier="host-b"),
        duration + EXPIRY_SLACK,
        what="lease handed over",
    )


def test_multi_lease(shared, path):
    m0, m1, m2 = shared
    a = m0.MultiNonBlockingLease(2, path, 30, identifier="a")
    b = MultiNonBlockingLease(m1, 2, path, 30, identifier="b")
    c = MultiNonBlockingLease(m2, 2, path, 30, identifier="c")
    assert a and b and not c
    assert c.fencing_token is None and a.fencing_token != b.fencing_token
    assert MultiNonBlockingLease(m2, 2, path, 30, identifier="a")  # renewal of its slot
    assert MultiNonBlockingLease(m2, 2, path, 30, identifier="b")


def test_multi_lease_handover(shared, path):
    m0, m1, m2 = shared
    duration = 1.0
    assert MultiNonBlockingLease(m0, 2, path, duration, identifier="a")
    assert MultiNonBlockingLease(m1, 2, path, 30, identifier="b")
    assert not MultiNonBlockingLease(m2, 2, path, 30, identifier="c")
    wait_until(
        lambda: MultiNonBlockingLease(m2, 2, path, 30, identifier="c"),
        duration + EXPIRY_SLACK,
        what="a's slot handed to c",
    )
    assert not MultiNonBlockingLease(m0, 2, path, 30, identifier="a")


def test_bad_arguments_change_nothing(shared, path):
    m0 = shared[0]
    for duration, error in ((0, ValueError), (-1, ValueError), (float("nan"), ValueError), ("1", TypeError)):
        with pytest.raises(error):
            NonBlockingLease(m0, path, duration, identifier="x")
        with pytest.raises(error):
            MultiNonBlockingLease(m0, 2, path, duration, identifier="x")
    with pytest.raises(TypeError):
        NonBlockingLease(m0, path, 1, identifier=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        MultiNonBlockingLease(m0, 0, path, 1)
    with pytest.raises(TypeError):
        MultiNonBlockingLease(m0, "2", path, 1)  # type: ignore[arg-type]
    assert m0.exists(path) is None
