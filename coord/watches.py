"""One-shot watches and the thread that runs user callbacks.

The registry is plain data guarded by the node's lock: the apply path asks
it which watches an applied entry triggers and hands the resulting calls to
the ``Dispatcher``, all before the new state becomes readable. That is
ZooKeeper's ordering guarantee in in-process form: a watch event is queued
before any read can return the data that triggered it. User code only ever
runs on the dispatcher's thread, never on pysyncobj's, so a slow callback
cannot stall replication.

Trigger rules are ZooKeeper's (and kazoo's client-side bookkeeping):

================  ==========================================
tree event        watches fired (and removed)
================  ==========================================
created p         data/exists watches on p  -> CREATED
changed p         data/exists watches on p  -> CHANGED
deleted p         data/exists and child watches on p -> DELETED
child p           child watches on p        -> CHILD
================  ==========================================
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .types import EventType, KeeperState, WatchedEvent, ZnodeStat

logger = logging.getLogger(__name__)

WatchCallback = Callable[[WatchedEvent], Any]


class StatSource(Protocol):
    """Anything that answers ``stat(path)`` (a tree replica)."""

    def stat(self, path: str) -> ZnodeStat | None: ...


_EVENT_TYPE = {
    "created": EventType.CREATED,
    "changed": EventType.CHANGED,
    "deleted": EventType.DELETED,
    "child": EventType.CHILD,
}


class WatchRegistry:
    """Registered one-shot watches of one member. Not thread-safe: the
    caller holds the node lock."""

    def __init__(self) -> None:
        self._data: dict[str, list[WatchCallback]] = {}
        self._child: dict[str, list[WatchCallback]] = {}

    def add_data_watch(self, path: str, fn: WatchCallback) -> None:
        """Watch ``path``'s creation, data changes and deletion (get/exists)."""
        _add_once(self._data, path, fn)

    def add_child_watch(self, path: str, fn: WatchCallback) -> None:
        """Watch ``path``'s list of children and its deletion (get_children)."""
        _add_once(self._child, path, fn)

    def changes_between(self, old: StatSource, new: StatSource) -> list[tuple[str, str]]:
        """The tree events a watched path went through between two replica
        states, for when a snapshot install skips the individual entries.

        Data/exists watches compare the node's existence and mzxid, child
        watches its existence and pzxid, so each watch fires exactly when
        one of the skipped entries would have fired it.
        """
        events: list[tuple[str, str]] = []
        for path in sorted(self._data):
            before, after = old.stat(path), new.stat(path)
            if before is None and after is not None:
                events.append(("created", path))
            elif before is not None and after is None:
                events.append(("deleted", path))
            elif before is not None and after is not None and before.mzxid != after.mzxid:
                events.append(("changed", path))
        for path in sorted(self._child):
            before, after = old.stat(path), new.stat(path)
            if before is not None and after is None:
                if path not in self._data:
                    events.append(("deleted", path))
            elif before is not None and after is not None and before.pzxid != after.pzxid:
                events.append(("child", path))
        return events

    def count(self) -> int:
        return sum(map(len, self._data.values())) + sum(map(len, self._child.values()))

    def trigger(self, events: Iterable[tuple[str, str]]) -> list[tuple[WatchCallback, WatchedEvent]]:
        """Remove and return the watches the given tree events fire, in event order."""
        fired: list[tuple[WatchCallback, WatchedEvent]] = []
        for kind, path in events:
            event = WatchedEvent(_EVENT_TYPE[kind], KeeperState.CONNECTED, path)
            if kind == "child":
                callbacks = self._child.pop(path, [])
            elif kind == "deleted":
                callbacks = self._data.pop(path, []) + self._child.pop(path, [])
            else:
                callbacks = self._data.pop(path, [])
            fired.extend((fn, event) for fn in callbacks)
        return fired

    def clear(self) -> None:
        """Drop every watch (the session they belonged to is gone)."""
        self._data.clear()
        self._child.clear()


def _add_once(table: dict[str, list[WatchCallback]], path: str, fn: WatchCallback) -> None:
    # kazoo keeps a set per path: the same function registered twice fires once.
    callbacks = table.setdefault(path, [])
    if fn not in callbacks:
        callbacks.append(fn)


class Dispatcher:
    """Runs user callbacks in submission order on one named daemon thread.

    The queue is unbounded on purpose: one-shot watches are bounded by the
    registrations that created them, and dropping a watch event would break
    the guarantee that every registered watch fires. A callback that raises
    is logged and does not stop the dispatcher.
    """

    _STOP = object()

    def __init__(self, name: str = "coord-callbacks") -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._queue.put((fn, args))

    def submit_all(self, calls: Iterable[tuple[WatchCallback, WatchedEvent]]) -> None:
        for fn, event in calls:
            self._queue.put((fn, (event,)))

    def depth(self) -> int:
        """Callbacks queued and not yet started (approximate, like ``qsize``)."""
        return self._queue.qsize()

    def in_dispatcher_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def stop(self, timeout: float = 5.0) -> None:
        """Run what is queued, then stop the thread (bounded wait)."""
        self._queue.put(self._STOP)
        if not self.in_dispatcher_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:
                logger.exception("callback %r raised", fn)
