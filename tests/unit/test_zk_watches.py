"""The ZooKeeper endpoint's per-connection watch tables on their own:
ZooKeeper's trigger rules, SetWatches after a reconnect, and the events a
snapshot install stands in for."""

from __future__ import annotations

from coord import ops
from coord.tree import Tree
from coord.zk.jute import EventType
from coord.zk.watches import (
    WATCHER_ANY,
    WATCHER_CHILDREN,
    WATCHER_DATA,
    ZkWatches,
)

Events = list[tuple[int, int, str]]


def _collect() -> tuple[Events, object]:
    events: Events = []
    return events, lambda conn, event_type, path: events.append((conn, int(event_type), path))


def _apply(tree: Tree, op: tuple[object, ...]) -> tuple[tuple[str, str], ...]:
    return tree.apply(ops.make_entry(0, 0, 0, 1, op)).events


def test_one_shot_watches_follow_zookeepers_rules() -> None:
    tree, watches = Tree(), ZkWatches()
    events, notify = _collect()
    watches.add_data(1, "/a")  # exists watch on a missing node
    watches.add_child(2, "/")
    watches.trigger(_apply(tree, ops.create_op("/a", b"")), notify)  # type: ignore[arg-type]
    assert events == [(1, EventType.NODE_CREATED, "/a"), (2, EventType.NODE_CHILDREN_CHANGED, "/")]
    events.clear()
    watches.trigger(_apply(tree, ops.set_op("/a", b"x")), notify)  # type: ignore[arg-type]
    assert events == []  # both fired once already
    watches.add_data(1, "/a")
    watches.add_child(1, "/a")
    watches.add_data(2, "/a")
    watches.trigger(_apply(tree, ops.delete_op("/a")), notify)  # type: ignore[arg-type]
    # One event per connection, however many of its watches fire.
    assert events == [(1, EventType.NODE_DELETED, "/a"), (2, EventType.NODE_DELETED, "/a")]
    assert watches.count() == 0


def test_persistent_and_recursive_watches_stay() -> None:
    tree, watches = Tree(), ZkWatches()
    events, notify = _collect()
    _apply(tree, ops.create_op("/p", b""))
    watches.add_persistent(1, "/p", recursive=False)
    watches.add_persistent(2, "/p", recursive=True)
    for op in (ops.create_op("/p/c", b""), ops.set_op("/p/c", b"1"), ops.delete_op("/p/c")):
        watches.trigger(_apply(tree, op), notify)  # type: ignore[arg-type]
    assert events == [
        (2, EventType.NODE_CREATED, "/p/c"),
        (1, EventType.NODE_CHILDREN_CHANGED, "/p"),
        (2, EventType.NODE_DATA_CHANGED, "/p/c"),
        (2, EventType.NODE_DELETED, "/p/c"),
        (1, EventType.NODE_CHILDREN_CHANGED, "/p"),
    ]
    assert watches.count() == 2


def test_check_and_remove_by_type_and_connection_drop() -> None:
    watches = ZkWatches()
    watches.add_data(1, "/x")
    watches.add_child(1, "/x")
    watches.add_data(2, "/x")
    assert watches.has(1, "/x", WATCHER_CHILDREN) and watches.has(1, "/x", WATCHER_DATA)
    assert watches.remove(1, "/x", WATCHER_CHILDREN)
    assert not watches.has(1, "/x", WATCHER_CHILDREN)
    assert not watches.remove(1, "/x", WATCHER_CHILDREN)
    watches.drop_connection(1)
    assert not watches.has(1, "/x", WATCHER_ANY) and watches.has(2, "/x", WATCHER_DATA)


def test_set_watches_fires_for_what_changed_after_the_relative_zxid() -> None:
    tree, watches = Tree(), ZkWatches()
    events, notify = _collect()
    _apply(tree, ops.create_op("/same", b""))
    _apply(tree, ops.create_op("/changed", b""))
    _apply(tree, ops.create_op("/gone", b""))
    relative = tree.zxid
    _apply(tree, ops.set_op("/changed", b"1"))
    _apply(tree, ops.delete_op("/gone"))
    _apply(tree, ops.create_op("/born", b""))
    _apply(tree, ops.create_op("/same/kid", b""))
    watches.set_watches(
        7,
        tree,
        relative,
        ["/same", "/changed", "/gone"],
        ["/born", "/never"],
        ["/same"],
        [],
        [],
        notify,  # type: ignore[arg-type]
    )
    assert events == [
        (7, EventType.NODE_DATA_CHANGED, "/changed"),
        (7, EventType.NODE_DELETED, "/gone"),
        (7, EventType.NODE_CREATED, "/born"),
        (7, EventType.NODE_CHILDREN_CHANGED, "/same"),
    ]
    assert watches.has(7, "/same", WATCHER_DATA) and watches.has(7, "/never", WATCHER_DATA)
    assert not watches.has(7, "/same", WATCHER_CHILDREN)


def test_changes_between_snapshots_stand_in_for_skipped_entries() -> None:
    old = Tree()
    _apply(old, ops.create_op("/d", b""))
    _apply(old, ops.create_op("/c", b""))
    new = Tree.restore(old.snapshot())
    _apply(new, ops.set_op("/d", b"1"))
    _apply(new, ops.create_op("/c/k", b""))
    _apply(new, ops.create_op("/n", b""))
    watches = ZkWatches()
    watches.add_data(1, "/d")
    watches.add_data(1, "/n")
    watches.add_child(2, "/c")
    assert watches.changes_between(old, new) == [("changed", "/d"), ("created", "/n"), ("child", "/c")]
    recursive = ZkWatches()
    recursive.add_persistent(3, "/c", recursive=True)
    assert recursive.changes_between(old, new) == [("created", "/c/k")]
