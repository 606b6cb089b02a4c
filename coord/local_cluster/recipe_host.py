"""Child side: recipe objects living inside a member process, driven over RPC.

A multi-process test wants contenders in *separate* member processes (so
that SIGKILL and SIGSTOP of a lock holder behave as in production), yet
steered from one parent.  :class:`RecipeHost` keeps recipe objects
(``member.Lock(path)``, ``member.Election(path)``...) by id and serves:

* ``recipe_new(kind, *args, **kwargs)``: build a whitelisted recipe on the
  member; returns ``{"recipe_id", "state"}``;
* ``recipe_call(recipe_id, method, args, kwargs, wait)``: run one
  whitelisted method on a worker thread, answer within ``wait`` seconds with
  its outcome, or with ``done: False`` and a ``call_id`` to collect later
  (``recipe_result``): blocking calls (``acquire``, ``wait``, ``enter``...)
  never hold up the RPC server;
* ``recipe_run(recipe_id, hold, work, ...)``: a *holder* actor: acquire the
  lock / semaphore lease, or contend in the election, then hold for ``hold``
  seconds (or until ``recipe_stop``), optionally doing periodic work while
  holding, then release;
* ``recipe_state`` / ``recipe_events`` / ``recipe_stop`` / ``recipe_close``.

Every step of an actor is recorded as an event and streamed to the parent
(``{"event": "recipe", "what": "acquired" | "work" | "releasing" |
"released" | "lost" | "timeout" | "error" | "call_done", ...}``) with the
child's wall clock (``time``) and ``CLOCK_MONOTONIC`` (``mono``, which is
system-wide on Linux, so events of different processes on one host can be
ordered), plus the holder's ``fencing_token``.

Everything is bounded: worker threads are daemons, a blocking acquire gets
the actor's deadline as its ``timeout``, an election contender is cancelled
when its deadline passes, and every RPC wait is clamped
(:func:`~coord.local_cluster.protocol._bounded`).
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from coord.local_cluster.protocol import _bounded, _error_reply

if TYPE_CHECKING:  # pragma: no cover - typing only
    from coord import Coordinator

logger = logging.getLogger(__name__)

#: Lock-like recipes: an actor acquires, holds, releases.
LOCK_KINDS = ("Lock", "ReadLock", "WriteLock", "Semaphore")

#: Recipe kind -> the methods a parent may call on it.  ``len``, ``members``
#: and ``add`` are pseudo methods (``len(obj)``, ``list(obj)``, ``obj += n``).
RECIPE_METHODS: dict[str, frozenset[str]] = {
    "Lock": frozenset({"acquire", "release", "cancel", "contenders"}),
    "ReadLock": frozenset({"acquire", "release", "cancel", "contenders"}),
    "WriteLock": frozenset({"acquire", "release", "cancel", "contenders"}),
    "Semaphore": frozenset({"acquire", "release", "cancel", "lease_holders"}),
    "Election": frozenset({"cancel", "contenders"}),
    "NonBlockingLease": frozenset(),
    "MultiNonBlockingLease": frozenset(),
    "Counter": frozenset({"add"}),
    "Barrier": frozenset({"create", "remove", "wait"}),
    "DoubleBarrier": frozenset({"enter", "leave"}),
    "Queue": frozenset({"put", "get", "len"}),
    "LockingQueue": frozenset({"put", "put_all", "get", "consume", "release", "holds_lock", "len"}),
    "Party": frozenset({"join", "leave", "len", "members"}),
    "ShallowParty": frozenset({"join", "leave", "len", "members"}),
}

#: Methods that take a ``timeout`` keyword: when the caller gives none, the
#: call's deadline is passed, so no worker thread blocks for ever.
_TIMEOUT_METHODS = frozenset({"acquire", "wait", "get"})

#: Attributes reported by ``recipe_state`` when the recipe has them.
STATE_ATTRIBUTES = ("is_acquired", "is_leader", "fencing_token", "obtained", "path", "identifier", "max_leases")

#: Default and maximum lifetime of an actor or a call, in seconds.
DEFAULT_MAX_SECONDS = 120.0
#: Recipes and calls one process keeps at most (a runaway parent cannot
#: exhaust the child).
MAX_RECIPES = 1000
MAX_EVENTS = 100_000


def _number(name: str, value: Any, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return float(value)


class _Actor:
    """Bookkeeping of one ``recipe_run``."""

    def __init__(self, run_id: int, recipe_id: int) -> None:
        self.run_id = run_id
        self.recipe_id = recipe_id
        self.stop = threading.Event()
        self.done = threading.Event()
        self.outcome: str = "running"
        self.thread: threading.Thread | None = None


class RecipeHost:
    """Recipe objects of one member, by id, with their call and actor logs.

    ``emit`` (the agent's, which forwards to the RPC server's ``send``)
    streams events to the parent; they are also kept here
    (``recipe_events``).
    """

    def __init__(self, member: Coordinator,
                 emit: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.member = member
        self.emit = emit
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._recipes: dict[int, tuple[str, Any]] = {}
        self._calls: dict[int, dict[str, Any]] = {}
        self._actors: dict[int, _Actor] = {}
        self._events: list[dict[str, Any]] = []
        self._seq = itertools.count()
        self._lost_count = 0
        member.add_listener(self._on_state)

    def handlers(self) -> dict[str, Callable[..., Any]]:
        """RPC method name -> callable."""
        return {
            "recipe_new": self.recipe_new,
            "recipe_call": self.recipe_call,
            "recipe_result": self.recipe_result,
            "recipe_run": self.recipe_run,
            "recipe_stop": self.recipe_stop,
            "recipe_wait_run": self.recipe_wait_run,
            "recipe_state": self.recipe_state,
            "recipe_events": self.recipe_events,
            "recipe_close": self.recipe_close,
        }

    # -- events ------------------------------------------------------------

    def _on_state(self, state: str) -> None:
        if str(state) == "LOST":
            with self._cond:
                self._lost_count += 1
                self._cond.notify_all()

    def _record(self, what: str, recipe_id: int, **fields: Any) -> dict[str, Any]:
        kind = self._recipes.get(recipe_id, ("?", None))[0]
        event: dict[str, Any] = {
            "event": "recipe", "what": what, "recipe_id": recipe_id, "kind": kind,
            "address": self.member.address, "pid": os.getpid(),
            "time": time.time(), "mono": time.monotonic(), **fields,
        }
        with self._cond:
            event["seq"] = next(self._seq)
            if len(self._events) < MAX_EVENTS:
                self._events.append(event)
            self._cond.notify_all()
        emit = self.emit
        if emit is not None:
            with contextlib.suppress(Exception):
                emit(event)
        logger.info("recipe %d (%s): %s %s", recipe_id, kind, what,
                    {k: v for k, v in fields.items() if k in ("fencing_token", "run_id", "error", "seq_no")})
        return event

    def recipe_events(self, after: int = -1, wait: float = 0.0) -> list[dict[str, Any]]:
        """Events with ``seq > after``; waits up to ``wait`` seconds for one."""
        end = time.monotonic() + _bounded(wait)
        with self._cond:
            while True:
                out = [dict(e) for e in self._events if e["seq"] > after]
                left = end - time.monotonic()
                if out or left <= 0:
                    return out
                self._cond.wait(left)

    # -- recipes -----------------------------------------------------------

    def _get(self, recipe_id: int) -> tuple[str, Any]:
        with self._cond:
            entry = self._recipes.get(recipe_id)
        if entry is None:
            raise KeyError(f"no recipe with id {recipe_id!r} in this member")
        return entry

    def recipe_new(self, kind: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Build ``member.<kind>(*args, **kwargs)``; returns its id and state.

        ``duration`` (NonBlockingLease, MultiNonBlockingLease) is given in
        seconds and passed as a :class:`datetime.timedelta`.  Building a
        lease *is* the attempt to take it: ``state["held"]`` says whether it
        was obtained.
        """
        if kind not in RECIPE_METHODS:
            raise ValueError(f"recipe kind {kind!r} is not served (allowed: {sorted(RECIPE_METHODS)})")
        if "duration" in kwargs and kind in ("NonBlockingLease", "MultiNonBlockingLease"):
            seconds = _number("duration", kwargs["duration"])
            kwargs["duration"] = datetime.timedelta(seconds=seconds or 0.0)
        with self._cond:
            if len(self._recipes) >= MAX_RECIPES:
                raise RuntimeError(f"too many recipes in this member (max {MAX_RECIPES}); close some")
        obj = getattr(self.member, kind)(*args, **kwargs)
        with self._cond:
            recipe_id = next(self._ids)
            self._recipes[recipe_id] = (kind, obj)
        return {"recipe_id": recipe_id, "state": self.recipe_state(recipe_id)}

    def recipe_state(self, recipe_id: int) -> dict[str, Any]:
        """The recipe's observable state (``is_acquired``, ``fencing_token``,
        ``held`` for leases, ``value`` for a counter...)."""
        kind, obj = self._get(recipe_id)
        state: dict[str, Any] = {"kind": kind, "recipe_id": recipe_id}
        for name in STATE_ATTRIBUTES:
            with contextlib.suppress(Exception):
                if hasattr(obj, name):
                    value = getattr(obj, name)
                    if value is None or isinstance(value, (bool, int, float, str)):
                        state[name] = value
        if kind == "Election":
            inner = getattr(obj, "lock", None)
            if "fencing_token" not in state and inner is not None:
                state["fencing_token"] = getattr(inner, "fencing_token", None)
            if "is_acquired" not in state and inner is not None:
                state["is_acquired"] = getattr(inner, "is_acquired", None)
        if kind in ("NonBlockingLease", "MultiNonBlockingLease"):
            state["held"] = bool(obj)
        if kind == "Counter":
            with contextlib.suppress(Exception):
                state["value"] = obj.value
        return state

    def recipe_close(self, recipe_id: int) -> bool:
        """Forget a recipe (stops its actors; does not release anything)."""
        with self._cond:
            actors = [a for a in self._actors.values() if a.recipe_id == recipe_id]
        for actor in actors:
            actor.stop.set()
        with self._cond:
            return self._recipes.pop(recipe_id, None) is not None

    # -- single calls ------------------------------------------------------

    def _invoke(self, obj: Any, method: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        if method == "len":
            return len(obj)
        if method == "members":
            return list(obj)
        if method == "add":
            obj += args[0] if args else kwargs.get("n", 1)
            return {"pre_value": getattr(obj, "pre_value", None), "post_value": getattr(obj, "post_value", None)}
        result = getattr(obj, method)(*args, **kwargs)
        return result

    def recipe_call(self, recipe_id: int, method: str, args: Sequence[Any] = (),
                    kwargs: Mapping[str, Any] | None = None, wait: float = 30.0,
                    max_seconds: float = DEFAULT_MAX_SECONDS) -> dict[str, Any]:
        """Run ``method(*args, **kwargs)`` on the recipe in a worker thread.

        Answers within ``wait`` seconds: ``{"call_id", "done", "ok", "value"
        | "error", "state", "started", "finished"}`` (``started``/``finished``
        are ``CLOCK_MONOTONIC`` readings).  ``done`` False means the call is
        still running; fetch it with ``recipe_result(call_id, wait)``.  A
        method that takes ``timeout`` (``acquire``, ``wait``, ``get``) gets
        ``max_seconds`` when the caller gave none.
        """
        kind, obj = self._get(recipe_id)
        allowed = RECIPE_METHODS[kind]
        if method not in allowed:
            raise ValueError(f"{kind}.{method} is not served (allowed: {sorted(allowed)})")
        wait_s = _bounded(_number("wait", wait))
        limit = min(_bounded(_number("max_seconds", max_seconds)), DEFAULT_MAX_SECONDS * 5)
        call_kwargs = dict(kwargs or {})
        takes_timeout = method in _TIMEOUT_METHODS and not (method == "get" and kind == "Queue")
        non_blocking = method == "acquire" and call_kwargs.get("blocking") is False
        if takes_timeout and not non_blocking and call_kwargs.get("timeout") is None:
            call_kwargs["timeout"] = limit
        with self._cond:
            if len(self._calls) >= MAX_RECIPES * 10:
                for cid in [c for c, rec in self._calls.items() if rec["done"]][: MAX_RECIPES]:
                    del self._calls[cid]
            call_id = next(self._ids)
            record: dict[str, Any] = {"call_id": call_id, "recipe_id": recipe_id, "method": method,
                                      "done": False, "started": time.monotonic()}
            self._calls[call_id] = record

        def run() -> None:
            try:
                value = self._invoke(obj, method, list(args), call_kwargs)
                outcome: dict[str, Any] = {"ok": True, "value": value}
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                outcome = {"ok": False, "error": _error_reply(exc)}
            outcome["finished"] = time.monotonic()
            with contextlib.suppress(Exception):
                outcome["state"] = self.recipe_state(recipe_id)
            with self._cond:
                record.update(outcome)
                record["done"] = True
                self._cond.notify_all()
            self._record("call_done", recipe_id, call_id=call_id, method=method, ok=outcome["ok"],
                         fencing_token=(outcome.get("state") or {}).get("fencing_token"))

        threading.Thread(target=run, name=f"recipe-call-{call_id}", daemon=True).start()
        return self.recipe_result(call_id, wait_s)

    def recipe_result(self, call_id: int, wait: float = 0.0) -> dict[str, Any]:
        """The record of call ``call_id``, waiting up to ``wait`` seconds for
        it to finish."""
        end = time.monotonic() + _bounded(_number("wait", wait))
        with self._cond:
            record = self._calls.get(call_id)
            if record is None:
                raise KeyError(f"no recipe call with id {call_id!r}")
            while not record["done"]:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return dict(record)

    # -- holder actors -----------------------------------------------------

    def recipe_run(self, recipe_id: int, hold: float | None = None,
                   work: Mapping[str, Any] | None = None, *,
                   max_seconds: float = DEFAULT_MAX_SECONDS, stop_on_lost: bool = True,
                   acquire_timeout: float | None = None) -> int:
        """Start a holder actor on a lock-like recipe or an election; returns
        its ``run_id`` at once.

        The actor acquires (``acquire(timeout=...)``, or ``Election.run``
        with a leader function), records ``acquired`` with the fencing
        token, then holds until ``hold`` seconds passed, ``recipe_stop``, the
        session is LOST (``stop_on_lost``; recorded as ``lost``) or
        ``max_seconds`` after the start; records ``releasing`` right before
        it lets go and ``released`` after.  Not acquired in time: ``timeout``.

        ``work`` (optional) runs while holding, as a naive client would:
        ``{"interval": s, "path": znode or None, "count": n or None,
        "delay": s}``: every ``interval`` seconds (the first after
        ``delay``) it writes ``{"token", "seq", "holder"}`` as JSON to
        ``path`` (creating it) and records ``work`` with the write's
        ``zxid``.  The decision to write is taken *before* the sleep, so a
        process paused in between writes late with its old token -- which
        is what fencing tokens are for.
        """
        kind, obj = self._get(recipe_id)
        if kind not in (*LOCK_KINDS, "Election"):
            raise ValueError(f"recipe_run needs a lock, semaphore or election, not {kind}")
        hold_s = _number("hold", hold, allow_none=True)
        limit = min(_bounded(_number("max_seconds", max_seconds)), DEFAULT_MAX_SECONDS * 5)
        acq_limit = _number("acquire_timeout", acquire_timeout, allow_none=True)
        work_spec = self._check_work(work)
        with self._cond:
            run_id = next(self._ids)
            actor = _Actor(run_id, recipe_id)
            self._actors[run_id] = actor
        deadline = time.monotonic() + limit

        def hold_it() -> None:
            self._hold(actor, obj, kind, hold_s, work_spec, deadline, stop_on_lost)

        def body() -> None:
            try:
                if kind == "Election":
                    self._run_election(actor, obj, hold_it, deadline if acq_limit is None
                                       else min(deadline, time.monotonic() + acq_limit))
                else:
                    self._run_lock(actor, obj, hold_it, deadline, acq_limit)
            except BaseException as exc:  # noqa: BLE001 - recorded
                actor.outcome = "error"
                self._record("error", recipe_id, run_id=run_id, error=_error_reply(exc)["message"],
                             error_type=type(exc).__name__)
            finally:
                actor.done.set()
                with self._cond:
                    self._cond.notify_all()

        actor.thread = threading.Thread(target=body, name=f"recipe-run-{run_id}", daemon=True)
        actor.thread.start()
        return run_id

    @staticmethod
    def _check_work(work: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if work is None:
            return None
        if not isinstance(work, Mapping):
            raise TypeError(f"work must be a mapping, got {type(work).__name__}")
        unknown = set(work) - {"interval", "path", "count", "delay"}
        if unknown:
            raise ValueError(f"unknown work keys: {sorted(unknown)}")
        spec = {"interval": _number("work interval", work.get("interval", 0.5)),
                "delay": _number("work delay", work.get("delay", 0.0)),
                "path": work.get("path"), "count": work.get("count")}
        if spec["path"] is not None and not isinstance(spec["path"], str):
            raise TypeError("work path must be a string or None")
        if spec["count"] is not None and (isinstance(spec["count"], bool) or not isinstance(spec["count"], int)):
            raise TypeError("work count must be an int or None")
        return spec

    def _run_lock(self, actor: _Actor, obj: Any, hold_it: Callable[[], None], deadline: float,
                  acq_limit: float | None) -> None:
        timeout = max(0.0, deadline - time.monotonic())
        if acq_limit is not None:
            timeout = min(timeout, acq_limit)
        self._record("contending", actor.recipe_id, run_id=actor.run_id)
        if not obj.acquire(timeout=timeout):
            actor.outcome = "timeout"
            self._record("timeout", actor.recipe_id, run_id=actor.run_id)
            return
        try:
            hold_it()
        finally:
            self._record("releasing", actor.recipe_id, run_id=actor.run_id)
            try:
                obj.release()
                self._record("released", actor.recipe_id, run_id=actor.run_id, ok=True)
            except Exception as exc:  # noqa: BLE001 - e.g. the session is gone
                self._record("released", actor.recipe_id, run_id=actor.run_id, ok=False,
                             error=f"{type(exc).__name__}: {exc}")

    def _run_election(self, actor: _Actor, obj: Any, hold_it: Callable[[], None], deadline: float) -> None:
        elected = threading.Event()

        def leader() -> None:
            elected.set()
            try:
                hold_it()
            finally:
                self._record("releasing", actor.recipe_id, run_id=actor.run_id)

        def watchdog() -> None:  # the election has no timeout: cancel it
            while not actor.done.is_set() and not elected.is_set():
                if actor.stop.is_set() or time.monotonic() >= deadline:
                    with contextlib.suppress(Exception):
                        obj.cancel()
                    return
                actor.done.wait(0.05)

        threading.Thread(target=watchdog, name=f"recipe-watchdog-{actor.run_id}", daemon=True).start()
        self._record("contending", actor.recipe_id, run_id=actor.run_id)
        obj.run(leader)
        if elected.is_set():
            self._record("released", actor.recipe_id, run_id=actor.run_id, ok=True)
        else:
            actor.outcome = "timeout" if not actor.stop.is_set() else "cancelled"
            self._record(actor.outcome, actor.recipe_id, run_id=actor.run_id)

    def _token(self, obj: Any, kind: str) -> Any:
        token = getattr(obj, "fencing_token", None)
        if token is None and kind == "Election":
            token = getattr(getattr(obj, "lock", None), "fencing_token", None)
        return token

    def _hold(self, actor: _Actor, obj: Any, kind: str, hold: float | None, work: dict[str, Any] | None,
              deadline: float, stop_on_lost: bool) -> None:
        token = self._token(obj, kind)
        with self._cond:
            lost_at_start = self._lost_count
        end = deadline if hold is None else min(deadline, time.monotonic() + hold)
        self._record("acquired", actor.recipe_id, run_id=actor.run_id, fencing_token=token,
                     session_id=self.member.session_id)
        actor.outcome = "held"
        seq = 0
        next_work = None if work is None else time.monotonic() + float(work["delay"] or work["interval"])
        while True:
            now = time.monotonic()
            wake = end if next_work is None else min(end, next_work)
            if stop_on_lost:  # look at the session now and then
                wake = min(wake, now + 0.1)
            # the naive client: it decided to work (or keep holding) before
            # this sleep; a pause here does not change that decision
            if actor.stop.wait(max(0.0, wake - now)):
                actor.outcome = "stopped"
                return
            if work is not None and next_work is not None and time.monotonic() >= next_work:
                seq += 1
                self._do_work(actor, token, seq, work)
                if work["count"] is not None and seq >= work["count"]:
                    next_work = None
                else:
                    next_work = time.monotonic() + float(work["interval"])
            if time.monotonic() >= end:
                actor.outcome = "held"
                return
            if stop_on_lost:
                with self._cond:
                    lost = self._lost_count != lost_at_start
                if lost:
                    actor.outcome = "lost"
                    self._record("lost", actor.recipe_id, run_id=actor.run_id, fencing_token=token)
                    return

    def _do_work(self, actor: _Actor, token: Any, seq: int, work: dict[str, Any]) -> None:
        from coord.errors import CoordError, NoNodeError

        fields: dict[str, Any] = {"run_id": actor.run_id, "fencing_token": token, "seq_no": seq}
        path = work["path"]
        if path is not None:
            data = json.dumps({"token": token, "seq": seq, "holder": self.member.address}).encode()
            try:
                stat: Any
                try:
                    stat = self.member.set(path, data)
                except NoNodeError:
                    self.member.create(path, data, makepath=True)
                    stat = self.member.exists(path)
                fields["zxid"] = getattr(stat, "mzxid", None)
                fields["ok"] = True
            except CoordError as exc:
                fields.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        self._record("work", actor.recipe_id, **fields)

    def recipe_stop(self, run_id: int, wait: float = 10.0) -> dict[str, Any]:
        """Ask actor ``run_id`` to let go (or stop contending); waits up to
        ``wait`` seconds for it to finish.  Returns ``{"done", "outcome"}``."""
        with self._cond:
            actor = self._actors.get(run_id)
        if actor is None:
            raise KeyError(f"no recipe run with id {run_id!r}")
        actor.stop.set()
        actor.done.wait(_bounded(_number("wait", wait)))
        return {"done": actor.done.is_set(), "outcome": actor.outcome}

    def recipe_wait_run(self, run_id: int, wait: float = 10.0) -> dict[str, Any]:
        """Wait up to ``wait`` seconds for actor ``run_id`` to finish by
        itself.  Returns ``{"done", "outcome"}``."""
        with self._cond:
            actor = self._actors.get(run_id)
        if actor is None:
            raise KeyError(f"no recipe run with id {run_id!r}")
        actor.done.wait(_bounded(_number("wait", wait)))
        return {"done": actor.done.is_set(), "outcome": actor.outcome}
