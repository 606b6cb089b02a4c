"""Operation histories in Jepsen's shape, for the checkers.

Every client operation is recorded twice on one monotonic clock: an
``invoke`` when the logical process calls it, and a completion when it
returns: ``ok`` (it happened), ``fail`` (it certainly did not happen) or
``info`` (outcome unknown: a timeout, a crash, UnknownOutcomeError). After an
``info`` the logical process is retired and a fresh process id takes over
(Jepsen's convention), because its next call could overlap the unknown one.
Nemesis faults go into the same history with ``process = NEMESIS``.

Histories are plain data (``Event`` records) and round-trip through
JSON lines, so a failing run can be saved and checked again offline.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

INVOKE = "invoke"
OK = "ok"
FAIL = "fail"
INFO = "info"
NEMESIS = -1


@dataclasses.dataclass(frozen=True)
class Event:
    """One line of a history.

    ``f`` is the operation ("read", "write", "cas", "add", "enqueue", ...),
    ``key`` the independent object it acts on (None for whole-system events),
    ``value`` its argument on invoke and its result on completion, ``zxid``
    the zxid the response carried (None if it carried none), ``index`` the
    event's position in the history.
    """

    index: int
    time_ns: int
    process: int
    type: str
    f: str
    key: str | None = None
    value: Any = None
    zxid: int | None = None
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=_jsonable)

    @staticmethod
    def from_json(line: str) -> Event:
        return Event(**json.loads(line))


def _jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot record {type(value).__name__} in a history")


class History:
    """A thread-safe recorder of invocations, completions and faults."""

    def __init__(self, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._process_ids = itertools.count()

    def new_process(self) -> int:
        """A fresh logical process id (use one per client, and a new one
        after every ``info`` completion)."""
        return next(self._process_ids)

    def invoke(self, process: int, f: str, key: str | None = None, value: Any = None) -> Event:
        return self._append(process, INVOKE, f, key, value, None, None)

    def complete(
        self,
        invocation: Event,
        type: str,
        value: Any = None,
        *,
        zxid: int | None = None,
        error: str | None = None,
    ) -> Event:
        """Record the completion of ``invocation`` (``OK``, ``FAIL`` or ``INFO``)."""
        if type not in (OK, FAIL, INFO):
            raise ValueError(f"completion type must be ok, fail or info, got {type!r}")
        return self._append(invocation.process, type, invocation.f, invocation.key, value, zxid, error)

    def nemesis(self, f: str, value: Any = None) -> Event:
        """Record a fault (or its healing) as it is injected."""
        return self._append(NEMESIS, INFO, f, None, value, None, None)

    def _append(
        self, process: int, type: str, f: str, key: str | None, value: Any, zxid: int | None, error: str | None
    ) -> Event:
        with self._lock:
            event = Event(len(self._events), self._clock(), process, type, f, key, value, zxid, error)
            self._events.append(event)
            return event

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def save(self, path: str | Path) -> None:
        Path(path).write_text("".join(e.to_json() + "\n" for e in self.events))

    @staticmethod
    def load(path: str | Path) -> list[Event]:
        return [Event.from_json(line) for line in Path(path).read_text().splitlines() if line.strip()]


@dataclasses.dataclass(frozen=True)
class Operation:
    """An invocation paired with its completion (``completion`` is None when
    the history ended before it returned: outcome unknown)."""

    invoke: Event
    completion: Event | None

    @property
    def process(self) -> int:
        return self.invoke.process

    @property
    def f(self) -> str:
        return self.invoke.f

    @property
    def key(self) -> str | None:
        return self.invoke.key

    @property
    def type(self) -> str:
        return self.completion.type if self.completion is not None else INFO

    @property
    def start_ns(self) -> int:
        return self.invoke.time_ns

    @property
    def end_ns(self) -> int | None:
        """None when the outcome is unknown: it may take effect at any later time."""
        if self.completion is None or self.completion.type == INFO:
            return None
        return self.completion.time_ns


def pair_operations(events: Iterable[Event]) -> Iterator[Operation]:
    """Client operations in invocation order, each with its completion.

    Raises ValueError on a malformed history (a process invoking twice
    without completing, or completing what it never invoked).
    """
    open_ops: dict[int, Event] = {}
    paired: dict[int, Operation] = {}
    order: list[int] = []
    for event in events:
        if event.process == NEMESIS:
            continue
        if event.type == INVOKE:
            if event.process in open_ops:
                raise ValueError(f"process {event.process} invoked again before completing (event {event.index})")
            open_ops[event.process] = event
            order.append(event.index)
        else:
            invocation = open_ops.pop(event.process, None)
            if invocation is None:
                raise ValueError(f"process {event.process} completed without an invocation (event {event.index})")
            paired[invocation.index] = Operation(invocation, event)
    for invocation in open_ops.values():
        paired[invocation.index] = Operation(invocation, None)
    for index in order:
        yield paired[index]
