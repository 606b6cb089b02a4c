"""Property tests: sequential runs made concurrent stay linearizable, and one
impossible result makes them fail.

Histories come from a reference simulation written independently of the
models (``builder.simulate_register`` and the ones below), then
``builder.widen`` stretches every interval around its linearization point.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coord.testing.history import FAIL, INFO, OK
from coord.testing.linearizability import CheckResult, Model, check
from coord.testing.models import CasRegister, QueueModel, SetModel

from .builder import Step, mutate_first, simulate_register, widen

IMPOSSIBLE = "never written by anyone"

common = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def simulate_set(rng: random.Random, count: int, unknown_rate: float) -> list[Step]:
    present: set[int] = set()
    steps: list[Step] = []
    for n in range(count):
        if rng.random() < 0.3:
            steps.append(Step("read", None, OK, sorted(present)))
        elif rng.random() < 0.1:
            steps.append(Step("add", n, FAIL, None, "OperationTimeoutError"))
        elif rng.random() < unknown_rate:
            effect = rng.random() < 0.5
            if effect:
                present.add(n)
            steps.append(Step("add", n, INFO, None, "UnknownOutcomeError", effect=effect))
        else:
            present.add(n)
            steps.append(Step("add", n, OK))
    steps.append(Step("final-read", None, OK, sorted(present)))
    return steps


def simulate_queue(rng: random.Random, count: int, unknown_rate: float) -> list[Step]:
    queue: list[int] = []
    steps: list[Step] = []
    for n in range(count):
        unknown = rng.random() < unknown_rate
        effect = not unknown or rng.random() < 0.5
        outcome, error = (INFO, "UnknownOutcomeError") if unknown else (OK, None)
        if rng.random() < 0.5:
            if effect:
                queue.append(n)
            steps.append(Step("enqueue", n, outcome, None, error, effect=effect))
        elif queue or not unknown:
            taken: Any = queue.pop(0) if queue and effect else None
            steps.append(Step("dequeue", None, outcome, None if unknown else taken, error, effect=effect))
    steps.append(Step("final-read", None, OK, list(queue)))
    return steps


def assert_witness(result: CheckResult, model: Model[Any]) -> None:
    """A valid verdict's linearization replays through the model and respects real time."""
    for partition in result.partitions:
        order = partition.linearization
        assert order is not None
        state = model.init()
        for op in order:
            ok, state = model.step(state, op)
            assert ok, op.describe()
        for i, earlier in enumerate(order):
            for later in order[i + 1 :]:
                assert later.end_ns is None or later.end_ns >= earlier.start_ns, "real-time order broken"


@common
@given(
    rng=st.randoms(use_true_random=False),
    count=st.integers(1, 60),
    processes=st.integers(1, 5),
    unknown_rate=st.sampled_from([0.0, 0.1, 0.25]),
)
def test_register_runs_are_linearizable_until_a_read_lies(
    rng: random.Random, count: int, processes: int, unknown_rate: float
) -> None:
    steps = simulate_register(rng, count, unknown_rate=unknown_rate)
    model = CasRegister()
    result = check(widen(steps, processes, rng), model)
    assert result.valid is True, result.format()
    assert_witness(result, model)
    if mutate_first(steps, lambda s: s.f == "read" and s.outcome == OK, IMPOSSIBLE):
        assert check(widen(steps, processes, rng), model).valid is False


@common
@given(
    rng=st.randoms(use_true_random=False),
    count=st.integers(1, 50),
    processes=st.integers(1, 5),
    unknown_rate=st.sampled_from([0.0, 0.2]),
)
def test_set_runs_are_linearizable_until_a_read_invents_an_element(
    rng: random.Random, count: int, processes: int, unknown_rate: float
) -> None:
    steps = simulate_set(rng, count, unknown_rate)
    model = SetModel()
    result = check(widen(steps, processes, rng), model)
    assert result.valid is True, result.format()
    assert_witness(result, model)
    final = steps[-1]
    final.result = [*final.result, IMPOSSIBLE]
    assert check(widen(steps, processes, rng), model).valid is False


@common
@given(
    rng=st.randoms(use_true_random=False),
    count=st.integers(1, 50),
    processes=st.integers(1, 5),
    unknown_rate=st.sampled_from([0.0, 0.15]),
)
def test_queue_runs_are_linearizable_until_a_dequeue_invents_an_item(
    rng: random.Random, count: int, processes: int, unknown_rate: float
) -> None:
    steps = simulate_queue(rng, count, unknown_rate)
    model = QueueModel()
    result = check(widen(steps, processes, rng), model)
    assert result.valid is True, result.format()
    assert_witness(result, model)
    if mutate_first(steps, lambda s: s.f == "dequeue" and s.outcome == OK and s.result is not None, IMPOSSIBLE):
        assert check(widen(steps, processes, rng), model).valid is False


@common
@given(rng=st.randoms(use_true_random=False), count=st.integers(2, 40), processes=st.integers(2, 5))
def test_partitions_are_independent(rng: random.Random, count: int, processes: int) -> None:
    """The same runs on two keys, checked together, give each key's own verdict."""
    good = simulate_register(rng, count)
    bad = simulate_register(rng, count)
    for step in good:
        step.key = "good"
    for step in bad:
        step.key = "bad"
    corrupted = mutate_first(bad, lambda s: s.f == "read" and s.outcome == OK, IMPOSSIBLE)
    events = widen(good + bad, processes, rng)
    result = check(events, CasRegister())
    assert result.partition("good").valid is True
    assert result.partition("bad").valid is (not corrupted)
