"""Parent side of the recipe RPC: drive recipe objects that live inside
member processes (see :mod:`coord.local_cluster.recipe_host`).

:class:`RemoteRecipe` is a handle on one recipe in one member;
:class:`RecipeEvents` collects the events the members stream (pass it as
``LocalCluster(event_handler=...)``) and waits for them with a deadline::

    events = RecipeEvents()
    with LocalCluster(3, session_timeout=3, event_handler=events) as cluster:
        locks = [RemoteRecipe(m, "Lock", "/app/lock", m.name) for m in cluster]
        runs = [lock.run(hold=1.0) for lock in locks]
        first = events.wait_for(lambda e: e["what"] == "acquired", timeout=10)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

from coord.local_cluster.protocol import RpcTimeoutError, _bounded, _exception_from_remote

if TYPE_CHECKING:  # pragma: no cover - typing only
    from coord.local_cluster.process import RpcProcess

Event = dict[str, Any]


class RecipeEvents:
    """Thread-safe log of the ``recipe`` events streamed by member processes.

    Callable as an ``event_handler(process, message)``; every kept event
    gets ``member`` (the process name).  Other events go to ``forward``
    when given.
    """

    def __init__(self, forward: Callable[[RpcProcess, dict[str, Any]], None] | None = None) -> None:
        self._cond = threading.Condition()
        self._events: list[Event] = []
        self.forward = forward

    def __call__(self, process: RpcProcess, message: dict[str, Any]) -> None:
        if message.get("event") != "recipe":
            if self.forward is not None:
                self.forward(process, message)
            return
        event = dict(message)
        event["member"] = process.name
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def all(self, predicate: Callable[[Event], bool] | None = None) -> list[Event]:
        """Every event so far (in arrival order), optionally filtered."""
        with self._cond:
            return [dict(e) for e in self._events if predicate is None or predicate(e)]

    def of(self, what: str | Iterable[str]) -> list[Event]:
        """Events whose ``what`` is ``what`` (or one of them)."""
        kinds = {what} if isinstance(what, str) else set(what)
        return self.all(lambda e: e.get("what") in kinds)

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float, *,
                 what: str = "a recipe event", after: int = 0) -> Event:
        """The first event (at index >= ``after``) matching ``predicate``,
        waiting up to ``timeout`` seconds; :class:`TimeoutError` otherwise."""
        end = time.monotonic() + _bounded(timeout)
        with self._cond:
            while True:
                for event in self._events[after:]:
                    if predicate(event):
                        return dict(event)
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{what} not seen within {timeout:.1f}s")
                self._cond.wait(left)

    def __len__(self) -> int:
        with self._cond:
            return len(self._events)


class RemoteRecipe:
    """One recipe object living in a member process.

    ``RemoteRecipe(member, "Lock", "/path", "identifier")`` builds
    ``member.Lock("/path", "identifier")`` inside the child.  :meth:`call`
    runs a method there; :meth:`run` starts a holder actor (acquire, hold,
    release; or contend in an election) whose steps arrive as events.
    """

    def __init__(self, member: RpcProcess, kind: str, *args: Any, rpc_timeout: float = 30.0,
                 **kwargs: Any) -> None:
        self.member = member
        self.kind = kind
        answer = cast("dict[str, Any]", member.call_with("recipe_new", [kind, *args], kwargs,
                                                          timeout=rpc_timeout))
        self.recipe_id = int(answer["recipe_id"])
        #: The state right after construction (for a lease: ``held``).
        self.initial_state: dict[str, Any] = dict(answer.get("state") or {})

    def __repr__(self) -> str:
        return f"<RemoteRecipe {self.kind}#{self.recipe_id} in {self.member.name}>"

    def call(self, method: str, *args: Any, wait: float = 30.0, **kwargs: Any) -> Any:
        """Run ``method(*args, **kwargs)`` in the child and return its value
        (the child's exception is re-raised here); :class:`RpcTimeoutError`
        when it did not finish within ``wait`` seconds."""
        record = self.start(method, *args, wait=wait, **kwargs)
        return self.value_of(record)

    def start(self, method: str, *args: Any, wait: float = 0.0, **kwargs: Any) -> dict[str, Any]:
        """Start ``method`` in the child and return its call record after at
        most ``wait`` seconds (``done`` False: still running; see
        :meth:`result`)."""
        wait = _bounded(wait)
        return cast("dict[str, Any]", self.member.call(
            "recipe_call", self.recipe_id, method, list(args), kwargs, wait=wait, timeout=wait + 15.0))

    def result(self, call_id: int, wait: float = 30.0) -> dict[str, Any]:
        """The record of an earlier :meth:`start`, waiting up to ``wait``."""
        wait = _bounded(wait)
        return cast("dict[str, Any]", self.member.call("recipe_result", call_id, wait=wait,
                                                       timeout=wait + 15.0))

    @staticmethod
    def value_of(record: dict[str, Any]) -> Any:
        """A finished call record's value (or its exception, raised)."""
        if not record.get("done"):
            raise RpcTimeoutError(f"recipe call {record.get('method')} #{record.get('call_id')} "
                                  "still running")
        if not record.get("ok"):
            raise _exception_from_remote(record.get("error") or {})
        return record.get("value")

    def state(self, *, timeout: float = 10.0) -> dict[str, Any]:
        """The recipe's state in the child (``is_acquired``, ``fencing_token``...)."""
        return cast("dict[str, Any]", self.member.call("recipe_state", self.recipe_id, timeout=timeout))

    def run(self, hold: float | None = None, work: dict[str, Any] | None = None, *,
            max_seconds: float = 120.0, stop_on_lost: bool = True,
            acquire_timeout: float | None = None, timeout: float = 10.0) -> int:
        """Start a holder actor in the child (see
        :meth:`~coord.local_cluster.recipe_host.RecipeHost.recipe_run`);
        returns its run id."""
        return int(self.member.call("recipe_run", self.recipe_id, hold, work, max_seconds=max_seconds,
                                    stop_on_lost=stop_on_lost, acquire_timeout=acquire_timeout,
                                    timeout=timeout))

    def stop(self, run_id: int, wait: float = 10.0) -> dict[str, Any]:
        """Ask actor ``run_id`` to let go; ``{"done", "outcome"}``."""
        wait = _bounded(wait)
        return cast("dict[str, Any]", self.member.call("recipe_stop", run_id, wait=wait,
                                                       timeout=wait + 10.0))

    def wait_run(self, run_id: int, wait: float = 10.0) -> dict[str, Any]:
        """Wait for actor ``run_id`` to finish by itself; ``{"done", "outcome"}``."""
        wait = _bounded(wait)
        return cast("dict[str, Any]", self.member.call("recipe_wait_run", run_id, wait=wait,
                                                       timeout=wait + 10.0))

    def close(self, *, timeout: float = 10.0) -> bool:
        """Forget the recipe in the child (its actors are told to stop)."""
        return bool(self.member.call("recipe_close", self.recipe_id, timeout=timeout))


def hold_intervals(events: Iterable[Event], ends: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Holding intervals from ``acquired`` .. ``releasing``/``lost`` events,
    one per ``(member, run_id)``, sorted by fencing token.

    Each: ``{"member", "run_id", "token", "start", "end"}`` in
    ``CLOCK_MONOTONIC`` seconds (system-wide on Linux).  An interval that
    never ended gets ``ends[member]`` (e.g. the time its process was killed)
    or ``inf``.
    """
    ends = ends or {}
    open_: dict[tuple[str, int], dict[str, Any]] = {}
    done: list[dict[str, Any]] = []
    for e in events:
        key = (str(e.get("member")), int(e.get("run_id", -1)))
        if e.get("what") == "acquired":
            open_[key] = {"member": key[0], "run_id": key[1], "token": e.get("fencing_token"),
                          "start": float(e["mono"]), "end": None}
        elif e.get("what") in ("releasing", "lost") and key in open_:
            interval = open_.pop(key)
            interval["end"] = float(e["mono"])
            done.append(interval)
    for key, interval in open_.items():
        interval["end"] = ends.get(key[0], float("inf"))
        done.append(interval)
    return sorted(done, key=lambda i: (i["token"] is None, i["token"] or 0, i["start"]))


def overlapping(intervals: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Pairs of intervals (from :func:`hold_intervals`) that overlap in time."""
    by_start = sorted(intervals, key=lambda i: i["start"])
    bad = []
    for i, a in enumerate(by_start):
        for b in by_start[i + 1:]:
            if b["start"] < a["end"]:
                bad.append((a, b))
    return bad
