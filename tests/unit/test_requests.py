"""At-most-once requests, retries, deadlines and cancellation, driven by an
in-memory log: a deterministic stand-in for Raft (hashicorp/raft's
InmemTransport idea) that loses, duplicates and delays proposals on demand."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import pytest

from coord import errors
from coord.ops import create_op
from coord.replication import FailureKind
from coord.requests import RequestTracker
from coord.tree import Tree


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class InMemoryLog:
    """Collects proposals; the test decides which reach the tree, when."""

    def __init__(self) -> None:
        self.proposed: list[tuple[Any, ...]] = []
        self.failures: list[Any] = []
        self.tree = Tree()

    def propose(self, entry: tuple[Any, ...], on_failure: Any) -> None:
        self.proposed.append(entry)
        self.failures.append(on_failure)

    def commit(self, entry: tuple[Any, ...], tracker: RequestTracker) -> Any:
        applied = self.tree.apply(entry)
        if entry[1] == tracker.session_id:
            tracker.on_applied(entry[2], applied)
        return applied


def _tracker(log: InMemoryLog, clock: FakeClock, **kwargs: Any) -> RequestTracker:
    tracker = RequestTracker(log.propose, concurrent.futures.Future, clock=clock, wall_clock_ms=lambda: 1_000, **kwargs)
    tracker.begin_session(7)
    return tracker


def _open(log: InMemoryLog, tracker: RequestTracker) -> None:
    future = tracker.submit(("open_session", 5000), lambda applied: applied.result, 5.0)
    log.commit(log.proposed[-1], tracker)
    assert future.result(0) == (0, None)


def _created_path(applied: Any) -> str:
    if applied.result[0] != 0:
        raise errors.error_for_code(applied.result[0])
    return applied.result[1][0]  # type: ignore[no-any-return]


def test_a_retried_request_is_applied_once() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock, retry_interval_s=1.0)
    _open(log, tracker)
    future = tracker.submit(create_op("/a", sequence=True), _created_path, 10.0)
    first = log.proposed[-1]
    clock.now += 1.5  # no answer within the retry interval: resend the same entry
    tracker.tick()
    assert log.proposed[-1] == first
    log.commit(first, tracker)
    duplicate = log.commit(first, tracker)
    assert future.result(0) == "/a0000000000"
    assert duplicate.duplicate and log.tree.children("/") == ["a0000000000"]


def test_not_appended_failures_are_retried_quickly() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock)
    _open(log, tracker)
    tracker.submit(create_op("/b"), _created_path, 10.0)
    log.failures[-1](FailureKind.NOT_APPENDED, "there was no leader")
    clock.now += 0.06
    tracker.tick()
    assert log.proposed[-1] == log.proposed[-2]


def test_deadline_cancels_through_the_log_and_reports_a_definite_not_applied() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock, retry_interval_s=1.0, cancel_grace_s=2.0)
    _open(log, tracker)
    future = tracker.submit(create_op("/lost"), _created_path, 3.0)
    original = log.proposed[-1]
    clock.now += 3.1
    tracker.tick()  # deadline: propose cancel(request_id)
    cancel = log.proposed[-1]
    assert cancel[5] == ("cancel", original[2])
    log.commit(cancel, tracker)
    with pytest.raises(errors.OperationTimeoutError, match="was not applied and never will be"):
        future.result(0)
    late = log.commit(original, tracker)  # the original surfaces after the cancel
    assert late.duplicate and log.tree.stat("/lost") is None


def test_an_applied_request_whose_answer_was_late_still_returns_its_result() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock, retry_interval_s=1.0, cancel_grace_s=2.0)
    _open(log, tracker)
    future = tracker.submit(create_op("/late"), _created_path, 3.0)
    original = log.proposed[-1]
    clock.now += 3.1
    tracker.tick()
    cancel = log.proposed[-1]
    log.commit(original, tracker)  # applied before the cancel: the caller learns it
    log.commit(cancel, tracker)
    assert future.result(0) == "/late"


def test_unknown_outcome_only_when_even_the_cancel_cannot_commit() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock, retry_interval_s=1.0, cancel_grace_s=2.0)
    _open(log, tracker)
    future = tracker.submit(create_op("/unknown"), _created_path, 3.0)
    log.failures[-1](FailureKind.MAYBE_APPENDED, "the leader changed before it committed")
    clock.now += 3.1
    tracker.tick()
    clock.now += 2.1
    tracker.tick()
    with pytest.raises(errors.UnknownOutcomeError, match="the leader changed before it committed"):
        future.result(0)


def test_in_flight_requests_are_bounded() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock, max_in_flight=2)
    _open(log, tracker)
    tracker.submit(create_op("/1"), _created_path, 5.0)
    tracker.submit(create_op("/2"), _created_path, 5.0)
    with pytest.raises(errors.OperationTimeoutError, match="2 requests are already in flight"):
        tracker.submit(create_op("/3"), _created_path, 0.05)
    log.commit(log.proposed[-2], tracker)
    tracker.submit(create_op("/3"), _created_path, 0.05)  # a slot freed up


def test_acknowledged_results_are_forgotten_by_the_tree() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock)
    _open(log, tracker)
    for name in ("/x", "/y", "/z"):
        tracker.submit(create_op(name), _created_path, 5.0)
        log.commit(log.proposed[-1], tracker)
    # ack_below of the last entry told the tree the earlier answers arrived
    assert log.tree.request_result(7, 1) is None
    assert log.tree.request_result(7, 4) is not None


def test_a_new_session_fails_the_old_sessions_requests() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock)
    _open(log, tracker)
    future = tracker.submit(create_op("/orphan"), _created_path, 5.0)
    tracker.begin_session(8)
    with pytest.raises(errors.SessionExpiredError):
        future.result(0)


def test_a_request_that_overtook_a_lost_one_waits_and_the_gap_is_resent() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock, retry_interval_s=1.0)
    _open(log, tracker)
    first = tracker.submit(create_op("/first"), _created_path, 10.0)
    lost = log.proposed[-1]
    second = tracker.submit(create_op("/first/second"), _created_path, 10.0)
    overtaking = log.proposed[-1]
    refused = log.commit(overtaking, tracker)  # arrives first: the session's order says no
    assert refused.result[0] == errors.ErrorCode.OUT_OF_ORDER and not second.done()
    clock.now += 0.05
    tracker.tick()  # re-sends the gap first, then the refused one
    assert log.proposed[-2:] == [lost, overtaking]
    log.commit(log.proposed[-2], tracker)
    log.commit(log.proposed[-1], tracker)
    assert first.result(0) == "/first" and second.result(0) == "/first/second"


def test_without_waiting_a_full_pipeline_refuses_at_once() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock, max_in_flight=1)
    _open(log, tracker)
    tracker.submit(create_op("/1"), _created_path, 5.0)
    sent = len(log.proposed)
    with pytest.raises(errors.TooManyRequestsError, match="max_in_flight"):
        tracker.submit(create_op("/2"), _created_path, 5.0, wait_for_slot=False)
    assert len(log.proposed) == sent  # nothing was sent
    assert issubclass(errors.TooManyRequestsError, errors.OperationTimeoutError)


def _submit_creates(tracker: RequestTracker, log: InMemoryLog, names: list[str]) -> list[Any]:
    futures = []
    for name in names:
        futures.append(tracker.submit(create_op(name), _created_path, 60.0))
    return futures


def test_a_slow_pipeline_that_keeps_answering_is_never_resent() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock, retry_interval_s=1.0)
    _open(log, tracker)
    futures = _submit_creates(tracker, log, [f"/s{i}" for i in range(8)])
    originals = list(log.proposed[-8:])
    for entry in originals:  # each answer 0.9 s after the previous one: 7 s in all, never silent for 1 s
        clock.now += 0.9
        tracker.tick()
        log.commit(entry, tracker)
    tracker.tick()
    assert len(log.proposed) == 1 + 8  # the open and the eight writes, no copy re-sent
    assert [f.result(0) for f in futures] == [f"/s{i}" for i in range(8)]


def test_one_loss_costs_one_go_back_however_many_refusals_follow() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock, retry_interval_s=1.0)
    _open(log, tracker)
    futures = _submit_creates(tracker, log, ["/g1", "/g2", "/g3", "/g4"])
    lost, *rest = log.proposed[-4:]
    log.commit(rest[0], tracker)  # /g2 arrives: /g1's copy was lost, /g2 refused
    clock.now += 0.2
    tracker.tick()
    resent = log.proposed[-4:]
    assert [e[2] for e in resent] == [lost[2], *(e[2] for e in rest)]  # go-back from /g1, in id order
    for entry in rest[1:]:  # the originals of /g3, /g4 arrive (refused): already re-sent, nothing more
        assert log.commit(entry, tracker).result[0] == errors.ErrorCode.OUT_OF_ORDER
    clock.now += 0.2
    tracker.tick()
    assert len(log.proposed) == 1 + 4 + 4
    for entry in resent:
        log.commit(entry, tracker)
    assert [f.result(0) for f in futures] == ["/g1", "/g2", "/g3", "/g4"]


def test_silence_sends_one_probe_whose_answer_reveals_a_lost_tail() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock, retry_interval_s=1.0)
    _open(log, tracker)
    futures = _submit_creates(tracker, log, ["/t1", "/t2", "/t3"])  # all three copies get lost
    originals = list(log.proposed[-3:])
    clock.now += 1.1
    tracker.tick()
    keepalive, again = log.proposed[-2:]  # the probe: a keepalive as a new request, then the oldest again
    assert keepalive[5] == ("keepalive",) and again == originals[0] and len(log.proposed) == 1 + 3 + 2
    clock.now += 0.5
    tracker.tick()
    assert len(log.proposed) == 1 + 3 + 2  # backing off: no second probe yet
    assert log.commit(keepalive, tracker).result[0] == errors.ErrorCode.OUT_OF_ORDER
    log.commit(again, tracker)  # /t2 and /t3 were sent before the keepalive and never came: lost
    clock.now += 0.2
    tracker.tick()
    resent = log.proposed[-3:]
    assert [e[2] for e in resent] == [originals[1][2], originals[2][2], keepalive[2]]
    for entry in resent:
        log.commit(entry, tracker)
    assert [f.result(0) for f in futures] == ["/t1", "/t2", "/t3"]
    assert tracker.in_flight() == 0


def test_a_stall_costs_one_probe_and_nothing_more() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock, retry_interval_s=1.0)
    _open(log, tracker)
    futures = _submit_creates(tracker, log, ["/u1", "/u2", "/u3"])
    originals = list(log.proposed[-3:])
    clock.now += 1.5  # the cluster stalls (a snapshot, a pause) for longer than the timeout
    tracker.tick()
    probe = log.proposed[-2:]
    for entry in [*originals, *probe]:  # then everything arrives, in send order
        log.commit(entry, tracker)
    clock.now += 0.2
    tracker.tick()
    assert len(log.proposed) == 1 + 3 + 2
    assert [f.result(0) for f in futures] == ["/u1", "/u2", "/u3"]
    assert tracker.in_flight() == 0


def test_a_lost_probe_is_dropped_at_its_deadline_and_holds_nothing_back() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock, retry_interval_s=1.0, cancel_grace_s=2.0)
    _open(log, tracker)
    first = tracker.submit(create_op("/p1"), _created_path, 60.0)
    original = log.proposed[-1]
    clock.now += 1.1
    tracker.tick()  # probe: keepalive + /p1 again; all of it lost, as is the original
    clock.now += 2.5
    tracker.tick()  # the keepalive's deadline passed: dropped
    later = tracker.submit(create_op("/p2"), _created_path, 60.0)
    log.commit(original, tracker)
    refused = log.commit(log.proposed[-1], tracker)  # the keepalive's id was never applied
    assert refused.result[0] == errors.ErrorCode.OUT_OF_ORDER
    clock.now += 0.2
    tracker.tick()  # go-back: /p2 again, now with ack_below past the dropped keepalive
    resent = log.proposed[-1]
    assert resent[5] == ("create", "/p2", b"", 0) and resent[3] > original[2] + 1
    for entry in log.proposed[-2:]:  # (a second probe, sent after more silence, is still pending)
        log.commit(entry, tracker)
    assert first.result(0) == "/p1" and later.result(0) == "/p2"


class YieldingLog(InMemoryLog):
    """Gives other threads the interpreter in the middle of each proposal."""

    def propose(self, entry: tuple[Any, ...], on_failure: Any) -> None:
        time.sleep(0)
        super().propose(entry, on_failure)


def test_concurrent_submitters_propose_in_request_id_order() -> None:
    log, clock = YieldingLog(), FakeClock()
    tracker = _tracker(log, clock, max_in_flight=10_000)
    _open(log, tracker)

    def submit_many(prefix: str) -> None:
        _submit_creates(tracker, log, [f"/{prefix}{i}" for i in range(300)])

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for f in [pool.submit(submit_many, p) for p in "abcd"]:
            f.result(timeout=30)
    ids = [entry[2] for entry in log.proposed]
    assert ids == sorted(ids) and len(ids) == 1 + 1200


def test_a_waiting_submitter_gets_a_freed_slot_even_below_the_wake_up_batch() -> None:
    log, clock = InMemoryLog(), FakeClock()
    tracker = _tracker(log, clock, max_in_flight=100)  # waiters are woken 25 free slots at a time
    _open(log, tracker)
    _submit_creates(tracker, log, [f"/f{i}" for i in range(100)])
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(tracker.submit, create_op("/waiter"), _created_path, 30.0)
        log.commit(log.proposed[1], tracker)  # one slot frees up
        waiting.result(timeout=30)  # taken by the waiter's own look, no batch needed
    assert log.proposed[-1][5] == ("create", "/waiter", b"", 0)
