"""Server-side watches of the ZooKeeper endpoint, per connection.

ZooKeeper keeps watches on the server, per connection: one-shot data
(getData/exists) and child (getChildren) watches, and since 3.6 persistent
and persistent-recursive ones (addWatch). This table is that, for one
member's connections. It is plain data guarded by the member lock: it is
read and changed only from ``Member.read_tree`` callbacks (registration,
atomic with the read that answers the request) and from the member's apply
hook (triggering, atomic with the apply), so a notification is always queued
on the connection before any reply that shows the change, and after the
reply that registered the watch -- ZooKeeper's ordering guarantee.

Trigger rules (``WatchManager``/``DataTree`` of ZooKeeper 3.8):

=============  ===========================================================
tree event     notified (one event per connection, however many watches)
=============  ===========================================================
created p      data watches on p (NodeCreated); persistent on p;
               recursive on p and its ancestors
changed p      data watches on p (NodeDataChanged); persistent; recursive
deleted p      data and child watches on p (NodeDeleted); persistent;
               recursive
child p        child watches on p (NodeChildrenChanged); persistent on p
               (a recursive watch gets no child events)
=============  ===========================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from ..types import ZnodeStat
from .jute import EventType

Notify = Callable[[int, int, str], None]
"""``notify(connection_id, event_type, path)``: queue a WatcherEvent."""

_KIND_TYPE = {
    "created": EventType.NODE_CREATED,
    "deleted": EventType.NODE_DELETED,
    "changed": EventType.NODE_DATA_CHANGED,
    "child": EventType.NODE_CHILDREN_CHANGED,
}

#: removeWatches/checkWatches ``type``: ``WatcherType`` of ZooKeeper.
WATCHER_CHILDREN, WATCHER_DATA, WATCHER_ANY, WATCHER_PERSISTENT, WATCHER_PERSISTENT_RECURSIVE = 1, 2, 3, 4, 5
#: addWatch ``mode``.
ADD_WATCH_PERSISTENT, ADD_WATCH_PERSISTENT_RECURSIVE = 0, 1


def _ancestors(path: str) -> Iterable[str]:
    """``path`` and every ancestor up to ``/``."""
    yield path
    while path != "/":
        path = path[: path.rfind("/")] or "/"
        yield path


class StatSource(Protocol):
    """Anything with ``stat(path)`` and ``walk(path)`` (a tree)."""

    def stat(self, path: str) -> ZnodeStat | None: ...

    def walk(self, path: str) -> list[str]: ...


class ZkWatches:
    """The watch tables of one member's ZooKeeper connections (not
    thread-safe: callers hold the member lock)."""

    def __init__(self) -> None:
        self._data: dict[str, set[int]] = {}
        self._child: dict[str, set[int]] = {}
        self._persistent: dict[str, set[int]] = {}
        self._recursive: dict[str, set[int]] = {}

    def _tables(self) -> tuple[dict[str, set[int]], ...]:
        return (self._data, self._child, self._persistent, self._recursive)

    # ------------------------------------------------------------ registration

    def add_data(self, conn: int, path: str) -> None:
        self._data.setdefault(path, set()).add(conn)

    def add_child(self, conn: int, path: str) -> None:
        self._child.setdefault(path, set()).add(conn)

    def add_persistent(self, conn: int, path: str, recursive: bool) -> None:
        table = self._recursive if recursive else self._persistent
        table.setdefault(path, set()).add(conn)

    def _tables_for(self, watcher_type: int) -> tuple[dict[str, set[int]], ...]:
        if watcher_type == WATCHER_CHILDREN:
            return (self._child,)
        if watcher_type == WATCHER_DATA:
            return (self._data,)
        if watcher_type == WATCHER_PERSISTENT:
            return (self._persistent,)
        if watcher_type == WATCHER_PERSISTENT_RECURSIVE:
            return (self._recursive,)
        if watcher_type == WATCHER_ANY:
            return self._tables()
        return ()

    def has(self, conn: int, path: str, watcher_type: int) -> bool:
        """checkWatches: does ``conn`` hold such a watch on ``path``?"""
        return any(conn in table.get(path, ()) for table in self._tables_for(watcher_type))

    def remove(self, conn: int, path: str, watcher_type: int) -> bool:
        """removeWatches: drop ``conn``'s watches of that type; False if none."""
        removed = False
        for table in self._tables_for(watcher_type):
            holders = table.get(path)
            if holders and conn in holders:
                holders.discard(conn)
                removed = True
                if not holders:
                    del table[path]
        return removed

    def drop_connection(self, conn: int) -> None:
        """Forget every watch of a closed connection."""
        for table in self._tables():
            for path in [p for p, holders in table.items() if conn in holders]:
                holders = table[path]
                holders.discard(conn)
                if not holders:
                    del table[path]

    def set_watches(
        self,
        conn: int,
        tree: StatSource,
        relative_zxid: int,
        data: list[str],
        exist: list[str],
        child: list[str],
        persistent: list[str],
        recursive: list[str],
        notify: Notify,
    ) -> None:
        """Re-register a reconnecting client's watches (SetWatches): a watch
        whose node changed after ``relative_zxid`` fires at once instead, as
        ``DataTree.setWatches`` does."""
        for path in data:
            stat = tree.stat(path)
            if stat is None:
                notify(conn, EventType.NODE_DELETED, path)
            elif stat.mzxid > relative_zxid:
                notify(conn, EventType.NODE_DATA_CHANGED, path)
            else:
                self.add_data(conn, path)
        for path in exist:
            if tree.stat(path) is not None:
                notify(conn, EventType.NODE_CREATED, path)
            else:
                self.add_data(conn, path)
        for path in child:
            stat = tree.stat(path)
            if stat is None:
                notify(conn, EventType.NODE_DELETED, path)
            elif stat.pzxid > relative_zxid:
                notify(conn, EventType.NODE_CHILDREN_CHANGED, path)
            else:
                self.add_child(conn, path)
        for path in persistent:
            self.add_persistent(conn, path, recursive=False)
        for path in recursive:
            self.add_persistent(conn, path, recursive=True)

    # ------------------------------------------------------------ triggering

    def trigger(self, events: Iterable[tuple[str, str]], notify: Notify) -> None:
        """Notify the watchers of each tree event, in event order."""
        for kind, path in events:
            event_type = _KIND_TYPE.get(kind)
            if event_type is None:
                continue
            targets: list[int] = []
            if kind == "child":
                targets.extend(sorted(self._child.pop(path, ())))
            else:
                targets.extend(sorted(self._data.pop(path, ())))
                if kind == "deleted":
                    targets.extend(sorted(self._child.pop(path, ())))
            targets.extend(sorted(self._persistent.get(path, ())))
            if kind != "child" and self._recursive:
                for ancestor in _ancestors(path):
                    targets.extend(sorted(self._recursive.get(ancestor, ())))
            seen: set[int] = set()
            for conn in targets:
                if conn not in seen:
                    seen.add(conn)
                    notify(conn, event_type, path)

    def changes_between(self, old: StatSource, new: StatSource) -> list[tuple[str, str]]:
        """Tree events for the watched paths across a snapshot install (the
        individual entries were skipped): compare existence, mzxid, pzxid."""
        events: list[tuple[str, str]] = []
        for path in sorted(set(self._data) | set(self._persistent)):
            before, after = old.stat(path), new.stat(path)
            if before is None and after is not None:
                events.append(("created", path))
            elif before is not None and after is None:
                events.append(("deleted", path))
            elif before is not None and after is not None and before.mzxid != after.mzxid:
                events.append(("changed", path))
        for path in sorted(set(self._child) | set(self._persistent)):
            before, after = old.stat(path), new.stat(path)
            if before is not None and after is None:
                if path not in self._data and path not in self._persistent:
                    events.append(("deleted", path))
            elif before is not None and after is not None and before.pzxid != after.pzxid:
                events.append(("child", path))
        # A recursive watch sees every node of its subtree: diff them all
        # (snapshot installs are rare; subtrees are walked once per root).
        for root in sorted(self._recursive):
            for path in sorted(set(old.walk(root)) | set(new.walk(root))):
                before, after = old.stat(path), new.stat(path)
                if before is None and after is not None:
                    events.append(("created", path))
                elif before is not None and after is None:
                    events.append(("deleted", path))
                elif before is not None and after is not None and before.mzxid != after.mzxid:
                    events.append(("changed", path))
        return events

    def count(self) -> int:
        """Watches held, ZooKeeper's zk_watch_count (one per path and connection)."""
        return sum(len(holders) for table in self._tables() for holders in table.values())

    def paths(self) -> int:
        return len(set().union(*(set(table) for table in self._tables())))
