"""Persistent and persistent-recursive watches (ZooKeeper 3.6's addWatch).

A one-shot watch tells a client that *something* changed; a persistent
watch tells it *every* change. coord can promise more than ZooKeeper here:
each member applies the whole committed log itself, so a watcher sees every
committed change of its path (or subtree), once, in commit order, with no
gap when the cluster changes leader or this member loses its session.

Trigger rules are ZooKeeper's:

* persistent on ``p``: CREATED, DELETED, CHANGED and CHILD events of ``p``;
* recursive on ``p``: CREATED, DELETED and CHANGED events of ``p`` and of
  every node below it (no CHILD events: the creates and deletes say it).

Delivery never blocks replication: the apply path only appends events to
each matching watcher's bounded queue; a small pool of ``coord-watch``
threads runs the callbacks, one queue at a time per watcher so its events
stay in order, while a slow watcher does not hold up the others.

Overflow policy: a watcher whose queue holds ``max_queued`` undelivered
events when another arrives is *cancelled*, never silently gapped. It still
receives everything queued before the overflow, then one final event of type
``EventType.WATCH_OVERFLOW`` for its path, and gets nothing after that; the
application re-reads the state it cares about and adds a new watch (etcd's
answer to a watcher that falls behind compaction). ``remove_watch`` ends a
watch with a final ``EventType.PERSISTENT_WATCH_REMOVED`` event, as
ZooKeeper's Java client does.

Snapshot installs: a member that fell so far behind that the leader sends a
snapshot skips individual entries. Its watchers then receive the *net*
changes between the two states (created, deleted, changed, and for
persistent watches child events), computed from the stats, in path order.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import threading
from collections.abc import Iterable
from typing import Protocol

from .types import EventType, KeeperState, WatchedEvent, ZnodeStat
from .watches import WatchCallback

logger = logging.getLogger(__name__)

#: Undelivered events one watcher may have before it is cancelled.
DEFAULT_MAX_QUEUED = 100_000

_EVENT_TYPE = {
    "created": EventType.CREATED,
    "changed": EventType.CHANGED,
    "deleted": EventType.DELETED,
    "child": EventType.CHILD,
}


class TreeView(Protocol):
    """What snapshot diffs need from a replica."""

    def stat(self, path: str) -> ZnodeStat | None: ...

    def walk(self, path: str) -> list[str]: ...


class _Watcher:
    """One registration: its callback and its queue of undelivered events."""

    __slots__ = ("active", "draining", "fn", "path", "queue", "recursive")

    def __init__(self, path: str, fn: WatchCallback, recursive: bool) -> None:
        self.path = path
        self.fn = fn
        self.recursive = recursive
        self.queue: collections.deque[WatchedEvent] = collections.deque()
        self.draining = False  # a pool thread owns the queue right now
        self.active = True  # still registered (False after remove or overflow)


def _ancestors(path: str) -> Iterable[str]:
    """``path`` and every ancestor up to the root."""
    yield path
    while path != "/":
        path = path[: path.rfind("/")] or "/"
        yield path


class PersistentWatches:
    """The persistent watches of one member and their delivery threads.

    ``publish`` is called by the apply path under the member's lock; the
    other methods may be called from any thread.
    """

    def __init__(self, max_queued: int = DEFAULT_MAX_QUEUED, workers: int = 4) -> None:
        if type(max_queued) is not int or max_queued < 1:
            raise ValueError(f"max_queued must be a positive int, got {max_queued!r}")
        self.max_queued = max_queued
        self._lock = threading.Lock()  # guards the tables and every watcher's queue
        self._exact: dict[str, list[_Watcher]] = {}
        self._recursive: dict[str, list[_Watcher]] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="coord-watch")
        self._stopped = False

    # ------------------------------------------------------------------ registration

    def add(self, path: str, fn: WatchCallback, recursive: bool) -> None:
        """Register ``fn`` for ``path``; the same (path, fn, mode) twice is one watch."""
        table = self._recursive if recursive else self._exact
        with self._lock:
            watchers = table.setdefault(path, [])
            if not any(w.fn == fn for w in watchers):
                watchers.append(_Watcher(path, fn, recursive))

    def remove(self, path: str, fn: WatchCallback) -> bool:
        """Unregister ``fn`` from ``path`` (both modes); False if it was not there.

        The watcher still receives the events queued before the call, then a
        ``PERSISTENT_WATCH_REMOVED`` event.
        """
        removed = False
        with self._lock:
            for table in (self._exact, self._recursive):
                watchers = table.get(path, [])
                for watcher in [w for w in watchers if w.fn == fn]:
                    self._end(table, watcher, EventType.PERSISTENT_WATCH_REMOVED)
                    removed = True
        return removed

    def count(self) -> int:
        with self._lock:
            return sum(map(len, self._exact.values())) + sum(map(len, self._recursive.values()))

    def queued(self) -> int:
        """Events waiting for delivery, over all watchers."""
        with self._lock:
            return sum(len(w.queue) for table in (self._exact, self._recursive) for ws in table.values() for w in ws)

    def queue_depths(self) -> tuple[int, int]:
        """(events waiting for delivery over all watchers, the most any one watcher has)."""
        with self._lock:
            depths = [len(w.queue) for table in (self._exact, self._recursive) for ws in table.values() for w in ws]
        return sum(depths), max(depths, default=0)

    # ------------------------------------------------------------------ events in

    def publish(self, events: Iterable[tuple[str, str]]) -> None:
        """Queue the tree events of one applied entry for matching watchers."""
        if not self._exact and not self._recursive:
            return
        with self._lock:
            for kind, path in events:
                event = WatchedEvent(_EVENT_TYPE[kind], KeeperState.CONNECTED, path)
                for watcher in self._exact.get(path, ()):
                    self._offer(watcher, event)
                if kind == "child" or not self._recursive:
                    continue
                for ancestor in _ancestors(path):
                    for watcher in self._recursive.get(ancestor, ()):
                        self._offer(watcher, event)

    def changes_between(self, old: TreeView, new: TreeView) -> list[tuple[str, str]]:
        """Net tree events under the watched paths between two replica
        states (a snapshot install skipped the entries in between)."""
        with self._lock:
            exact, recursive = sorted(self._exact), sorted(self._recursive)
        events: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()

        def add(kind: str, path: str) -> None:
            if (kind, path) not in seen:
                seen.add((kind, path))
                events.append((kind, path))

        for root in recursive:
            for path in sorted(set(old.walk(root)) | set(new.walk(root))):
                _diff_node(path, old.stat(path), new.stat(path), add, children=False)
        for path in exact:
            _diff_node(path, old.stat(path), new.stat(path), add, children=True)
        return events

    # ------------------------------------------------------------------ delivery

    def _offer(self, watcher: _Watcher, event: WatchedEvent) -> None:
        if not watcher.active:
            return
        if len(watcher.queue) >= self.max_queued:
            logger.warning(
                "persistent watch on %s fell %d events behind and was cancelled (WATCH_OVERFLOW)",
                watcher.path,
                self.max_queued,
            )
            table = self._recursive if watcher.recursive else self._exact
            self._end(table, watcher, EventType.WATCH_OVERFLOW)
            return
        watcher.queue.append(event)
        self._schedule(watcher)

    def _end(self, table: dict[str, list[_Watcher]], watcher: _Watcher, final: str) -> None:
        watcher.active = False
        watchers = table[watcher.path]
        watchers.remove(watcher)
        if not watchers:
            del table[watcher.path]
        watcher.queue.append(WatchedEvent(final, KeeperState.CONNECTED, watcher.path))
        self._schedule(watcher)

    def _schedule(self, watcher: _Watcher) -> None:
        if watcher.draining or self._stopped:
            return
        watcher.draining = True
        self._pool.submit(self._drain, watcher)

    def _drain(self, watcher: _Watcher) -> None:
        while True:
            with self._lock:
                if not watcher.queue or self._stopped:
                    watcher.draining = False
                    return
                event = watcher.queue.popleft()
            try:
                watcher.fn(event)
            except Exception:
                logger.exception("persistent watch callback %r raised", watcher.fn)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop delivering (queued events are dropped) and end the threads."""
        with self._lock:
            self._stopped = True
            self._exact.clear()
            self._recursive.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _diff_node(
    path: str,
    before: ZnodeStat | None,
    after: ZnodeStat | None,
    add: collections.abc.Callable[[str, str], None],
    *,
    children: bool,
) -> None:
    if before is None and after is not None:
        add("created", path)
    elif before is not None and after is None:
        add("deleted", path)
    elif before is not None and after is not None:
        if before.czxid != after.czxid:  # deleted and created again meanwhile
            add("deleted", path)
            add("created", path)
        elif before.mzxid != after.mzxid:
            add("changed", path)
        if children and before.pzxid != after.pzxid:
            add("child", path)


__all__ = ["DEFAULT_MAX_QUEUED", "PersistentWatches"]
