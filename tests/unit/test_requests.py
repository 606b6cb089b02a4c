"""At-most-once requests, retries, deadlines and cancellation, driven by an
in-memory log: a deterministic stand-in for Raft (hashicorp/raft's
InmemTransport idea) that loses, duplicates and delays proposals on demand."""

from __future__ import annotations

import concurrent.futures
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
