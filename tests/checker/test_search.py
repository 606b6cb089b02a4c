"""The search itself: time limits, partitions, reports, malformed input."""

from __future__ import annotations

import random
import time

import pytest

from coord.testing.history import INFO, INVOKE, OK, Event
from coord.testing.linearizability import Disposition, check
from coord.testing.models import CasRegister

from .builder import Script, simulate_register, widen


def pathological(writers: int, key: str = "x") -> Script:
    """``writers`` fully concurrent writes, then a read of a value nobody
    wrote: the search must try every order of every subset of the writes
    (about writers * 2**writers configurations) before it can say no."""
    s = Script(key=key)
    for p in range(writers):
        s.invoke(p, "write", p)
    for p in range(writers):
        s.ok(p)
    return s.call(writers, "read", result="nobody wrote this")


def test_search_exhausts_a_small_pathological_history() -> None:
    result = check(pathological(6).events, CasRegister())
    assert result.valid is False
    assert result.partitions[0].explored >= 6 * 2**5


def test_time_limit_reports_unknown_never_pass() -> None:
    started = time.monotonic()
    result = check(pathological(20).events, CasRegister(), time_limit_s=0.05)
    assert time.monotonic() - started < 2.0
    assert result.valid is None
    assert not result  # an unknown result is not a pass
    assert result.unknowns and not result.failures
    assert "UNKNOWN" in result.format()


def test_cache_size_limit_reports_unknown() -> None:
    result = check(pathological(12).events, CasRegister(), time_limit_s=None, max_configurations=2000)
    assert result.valid is None
    assert 2000 < result.partitions[0].explored < 2000 + 1100  # checked every 1024 steps


def test_time_limit_is_per_partition_and_a_failure_dominates() -> None:
    slow = pathological(20, key="slow").events
    bad = Script(key="bad").call(1, "write", 1).call(1, "write", 2).call(2, "read", result=1).events
    fine = Script(key="fine").call(1, "write", 1).call(2, "read", result=1).events
    events = _merge(slow, bad, fine)
    result = check(events, CasRegister(), time_limit_s=0.05)
    assert result.valid is False
    assert result.partition("slow").valid is None
    assert result.partition("bad").valid is False
    assert result.partition("fine").valid is True
    without_bad = check(_merge(slow, fine), CasRegister(), time_limit_s=0.05)
    assert without_bad.valid is None


def test_one_bad_key_among_many() -> None:
    rng = random.Random(7)
    histories = []
    for k in range(30):
        steps = simulate_register(rng, 30)
        for step in steps:
            step.key = f"k{k}"
        if k == 17:
            reads = [step for step in steps if step.f == "read"]
            reads[-1].result = "corrupt"
        histories.append(widen(steps, 3, rng))
    # Distinct process ids per key so the merged history stays well formed.
    events = _merge(*histories)
    result = check(events, CasRegister())
    assert result.valid is False
    assert [p.partition for p in result.failures] == ["k17"]
    assert len(result.partitions) == 30
    assert "k17" in result.format() and "corrupt" in result.format()


def test_counterexample_names_the_prefix_and_the_blocked_operation() -> None:
    s = Script().call(1, "write", 1).call(1, "write", 2).call(2, "read", result=1).call(2, "read", result=2)
    result = check(s.events, CasRegister())
    failure = result.failures[0]
    example = failure.counterexample
    assert example is not None
    assert [op.value for op in example.prefix] == [1, 2]
    assert example.blocked.result == 1 and example.blocked.f == "read"
    assert example.state == "value=2 version=1"
    assert [accepted for _, accepted in example.candidates] == [False]
    text = str(result)
    assert "NOT linearizable" in text and "rejected by the model here" in text


def test_equal_timestamps_count_as_concurrent() -> None:
    """Calls sort before returns at the same instant, for definite and
    unknown operations alike: a tie never manufactures a violation."""

    def history(second_write: str) -> list[Event]:
        return [
            Event(0, 0, 1, INVOKE, "write", "x", 1),
            Event(1, 5, 1, OK, "write", "x"),
            Event(2, 6, 2, INVOKE, "read", "x"),
            Event(3, 10, 3, INVOKE, "write", "x", 2),
            Event(4, 10, 2, OK, "read", "x", 2),
            *([Event(5, 10, 3, second_write, "write", "x")] if second_write != INVOKE else []),
        ]

    assert check(history(OK), CasRegister()).valid is True
    assert check(history(INFO), CasRegister()).valid is True
    assert check(history(INVOKE), CasRegister()).valid is True  # never completed


def test_witness_linearization_when_valid() -> None:
    s = Script().invoke(1, "write", 1).invoke(2, "write", 2).ok(1).ok(2).call(3, "read", result=1)
    result = check(s.events, CasRegister())
    assert result.valid is True
    order = result.partitions[0].linearization
    assert order is not None
    assert [(op.f, op.value) for op in order] == [("write", 2), ("write", 1), ("read", None)]


def test_empty_history_and_all_dropped_partitions_pass() -> None:
    assert check([], CasRegister()).valid is True
    s = Script().invoke(1, "read").info(1).invoke(2, "write", 3).fail(2, "ConnectionLoss")
    result = check(s.events, CasRegister())
    assert result.valid is True and result.partitions[0].dropped == 2


def test_nemesis_events_are_ignored() -> None:
    events = Script().call(1, "write", 1).events
    events.append(Event(len(events), 10**9, -1, "info", "partition", None, ["n1"]))
    assert check(events, CasRegister()).valid is True


def test_malformed_histories_are_refused() -> None:
    bad = [Event(0, 1, 1, INVOKE, "write", "x", 1), Event(1, 2, 1, INVOKE, "write", "x", 2)]
    with pytest.raises(ValueError, match="invoked again"):
        check(bad, CasRegister())
    backwards = [Event(0, 5, 1, INVOKE, "write", "x", 1), Event(1, 2, 1, OK, "write", "x")]
    with pytest.raises(ValueError, match="before it is invoked"):
        check(backwards, CasRegister())


def test_a_model_may_not_check_an_unknown_outcome() -> None:
    class Broken(CasRegister):
        def disposition(self, op):  # type: ignore[no-untyped-def]
            return Disposition.CHECK

    s = Script().invoke(1, "write", 1).info(1)
    with pytest.raises(ValueError, match="unknown outcome"):
        check(s.events, Broken())


def test_a_few_thousand_operations_on_one_key_are_quick() -> None:
    rng = random.Random(3)
    steps = simulate_register(rng, 2000, unknown_rate=0.01)
    events = widen(steps, 5, rng)
    started = time.monotonic()
    result = check(events, CasRegister(), time_limit_s=30)
    assert result.valid is True, result.format()
    assert time.monotonic() - started < 10


def _merge(*histories: list[Event]) -> list[Event]:
    """Interleave histories by time, giving each its own process ids."""
    tagged = []
    for n, events in enumerate(histories):
        for e in events:
            tagged.append((e.time_ns, e.index, n, e))
    tagged.sort(key=lambda t: (t[0], t[2], t[1]))
    return [
        Event(i, e.time_ns, e.process * 1000 + n, e.type, e.f, e.key, e.value, e.zxid, e.error)
        for i, (_, _, n, e) in enumerate(tagged)
    ]
