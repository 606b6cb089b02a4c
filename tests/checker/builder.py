"""Hand-written and generated histories for the checker tests."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from coord.testing.history import FAIL, INFO, INVOKE, OK, Event, History


class Script:
    """Write a history line by line; every event advances the clock 1 µs, so
    the order of the calls below is the real-time order.

    >>> s = Script()
    >>> s.invoke(1, "write", 1).ok(1).call(2, "read", result=1)
    """

    def __init__(self, key: Any = "x") -> None:
        self.key = key
        self._now = 0
        self._history = History(clock=self._tick)
        self._open: dict[int, Event] = {}

    def _tick(self) -> int:
        self._now += 1000
        return self._now

    def invoke(self, process: int, f: str, value: Any = None, *, key: Any = ...) -> Script:
        if process in self._open:
            raise AssertionError(f"process {process} is already in a call")
        self._open[process] = self._history.invoke(process, f, self.key if key is ... else key, value)
        return self

    def ok(self, process: int, result: Any = None, *, zxid: int | None = None) -> Script:
        self._history.complete(self._open.pop(process), OK, result, zxid=zxid)
        return self

    def fail(self, process: int, error: str, result: Any = None, *, zxid: int | None = None) -> Script:
        self._history.complete(self._open.pop(process), FAIL, result, zxid=zxid, error=error)
        return self

    def info(self, process: int, error: str = "UnknownOutcomeError") -> Script:
        self._history.complete(self._open.pop(process), INFO, None, error=error)
        return self

    def call(
        self, process: int, f: str, value: Any = None, result: Any = None, *, key: Any = ..., zxid: int | None = None
    ) -> Script:
        """An operation that completes ``ok`` before anything else happens."""
        return self.invoke(process, f, value, key=key).ok(process, result, zxid=zxid)

    @property
    def events(self) -> list[Event]:
        return self._history.events


@dataclass
class Step:
    """One operation of a sequential run: what was called and what it returned.
    ``effect=False`` with ``outcome=INFO`` is a call that never took effect."""

    f: str
    value: Any
    outcome: str = OK
    result: Any = None
    error: str | None = None
    key: Any = "x"
    effect: bool = True


def widen(
    steps: Sequence[Step], processes: int, rng: random.Random, *, keep_open: bool = True, spread: int | None = None
) -> list[Event]:
    """Events for a sequential run ``steps``, with concurrency added.

    Step i takes effect at time 100*i (its linearization point). Each is
    given to a random process and its interval is widened at random around
    that point without overlapping the same process's neighbours (and, with
    ``spread``, by at most ``spread`` steps either way), so the history
    stays linearizable. After an ``info`` a process is retired
    (Jepsen's convention); an ``info`` either gets a completion event or
    (``keep_open`` and a coin flip) none at all.
    """
    next_process = processes
    active = list(range(processes))
    owner: list[int] = []
    for step in steps:
        slot = rng.randrange(len(active))
        owner.append(active[slot])
        if step.outcome == INFO:
            active[slot] = next_process
            next_process += 1
    by_process: dict[int, list[int]] = {}
    for i, process in enumerate(owner):
        by_process.setdefault(process, []).append(i)
    raw: list[tuple[int, int, Event]] = []  # (time, tiebreak, event without index)
    for process, indexes in by_process.items():
        previous_end = -1
        for n, i in enumerate(indexes):
            point = 100 * (i + 1)
            reach = 10**9 if spread is None else 100 * spread
            start = rng.randint(max(previous_end + 1, point - reach), point)
            following = 100 * (indexes[n + 1] + 1) if n + 1 < len(indexes) else point + 1000
            end = rng.randint(point, min((point + following) // 2, point + reach))
            previous_end = end
            step = steps[i]
            raw.append((start, 0, Event(0, start, process, INVOKE, step.f, step.key, step.value)))
            if step.outcome == INFO:
                if keep_open and rng.random() < 0.5:
                    continue
                raw.append((end, 1, Event(0, end, process, INFO, step.f, step.key, None, None, step.error)))
            else:
                completion = Event(0, end, process, step.outcome, step.f, step.key, step.result, None, step.error)
                raw.append((end, 1, completion))
    raw.sort(key=lambda item: (item[0], item[1]))
    return [Event(n, t, e.process, e.type, e.f, e.key, e.value, e.zxid, e.error) for n, (t, _, e) in enumerate(raw)]


def simulate_register(rng: random.Random, count: int, *, unknown_rate: float = 0.0, values: int = 5) -> list[Step]:
    """A random sequential run of a versioned register (independent of CasRegister)."""
    node: list[Any] | None = None  # [value, version]
    steps: list[Step] = []
    for _ in range(count):
        f = rng.choice(["read", "read", "write", "cas", "cas", "create", "delete"])
        if f == "read":
            steps.append(Step("read", None, OK, None if node is None else node[0]))
            continue
        unknown = rng.random() < unknown_rate
        effect = not unknown or rng.random() < 0.5
        if f == "write":
            value = rng.randrange(values)
            if effect:
                node = [value, 0] if node is None else [value, node[1] + 1]
            outcome, error = (INFO, "timeout") if unknown else (OK, None)
            steps.append(Step("write", value, outcome, None, error, effect=effect))
        elif f == "cas":
            version = rng.choice([node[1] if node else 0, rng.randrange(4)])
            value = rng.randrange(values)
            if node is not None and node[1] == version:
                if effect:
                    node = [value, version + 1]
                steps.append(Step("cas", [version, value], INFO if unknown else OK, None, None, effect=effect))
            elif not unknown:
                error = "NoNodeError" if node is None else "BadVersionError"
                steps.append(Step("cas", [version, value], FAIL, None, error))
        elif f == "create":
            value = rng.randrange(values)
            if node is None:
                if effect:
                    node = [value, 0]
                steps.append(Step("create", value, INFO if unknown else OK, None, None, effect=effect))
            elif not unknown:
                steps.append(Step("create", value, FAIL, None, "NodeExistsError"))
        else:
            if node is not None:
                if effect:
                    node = None
                steps.append(Step("delete", -1, INFO if unknown else OK, None, None, effect=effect))
            elif not unknown:
                steps.append(Step("delete", -1, FAIL, None, "NoNodeError"))
    return steps


def mutate_first(steps: list[Step], predicate: Callable[[Step], bool], result: Any) -> bool:
    """Give the first step matching ``predicate`` another result; False if none matched."""
    for step in steps:
        if predicate(step):
            step.result = result
            return True
    return False
