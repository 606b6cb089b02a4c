"""Overload on a real cluster: every write gets exactly one outcome and is
applied at most once, however deep the pipeline; with ``wait_for_slot=False``
the excess is refused at once (``TooManyRequestsError``) and never sent."""

from __future__ import annotations

import concurrent.futures

import pytest
from helpers import InProcessCluster

import coord
from coord.errors import OperationTimeoutError, TooManyRequestsError

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def shedding_cluster():
    cluster = InProcessCluster(3, max_in_flight=16, wait_for_slot=False).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_a_deep_pipeline_settles_every_write_exactly_once(shedding_cluster: InProcessCluster) -> None:
    leader = shedding_cluster.leader()
    leader.create("/deep")
    # 1,500 writes through 16 slots: a refused write is retried once one of the last ones is done.
    futures = []
    for i in range(1500):
        while True:
            try:
                futures.append(leader.create_async(f"/deep/n{i:05d}", b"v"))
                break
            except TooManyRequestsError:
                concurrent.futures.wait(futures[-16:], timeout=30, return_when=concurrent.futures.FIRST_COMPLETED)
    done, not_done = concurrent.futures.wait(futures, timeout=60)
    assert not not_done
    assert sorted(f.result() for f in done) == [f"/deep/n{i:05d}" for i in range(1500)]
    assert len(leader.get_children("/deep")) == 1500
    assert leader.status().requests_in_flight == 0


def test_without_waiting_the_excess_is_refused_at_once_and_never_sent(shedding_cluster: InProcessCluster) -> None:
    member = shedding_cluster.followers()[0]
    member.create("/shed")
    sent, refused = [], 0
    for i in range(300):
        try:
            sent.append((i, member.create_async(f"/shed/n{i:04d}", b"v")))
        except TooManyRequestsError as exc:
            assert isinstance(exc, OperationTimeoutError) and "max_in_flight" in str(exc)
            refused += 1
    assert refused > 0 and len(sent) >= 16  # 16 slots were free at first
    for _, future in sent:
        future.result(timeout=30)
    member.sync()
    assert sorted(member.get_children("/shed")) == [f"n{i:04d}" for i, _ in sent]
    assert member.status().requests_in_flight == 0


def test_wait_for_slot_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="wait_for_slot must be a bool"):
        coord.Coordinator("127.0.0.1:1", wait_for_slot="no")  # type: ignore[arg-type]
