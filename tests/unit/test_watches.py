"""The watch registry's trigger rules (ZooKeeper's, as kazoo applies them)
and the dispatcher that runs callbacks off the replication thread."""

from __future__ import annotations

import threading

from coord import ops
from coord.tree import Tree
from coord.types import WatchedEvent
from coord.watches import Dispatcher, WatchRegistry


def _fired(registry: WatchRegistry, events: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    return [(name.__name__, e.type, e.path) for name, e in registry.trigger(events)]


def data_fn(event: WatchedEvent) -> None: ...
def child_fn(event: WatchedEvent) -> None: ...
def both_fn(event: WatchedEvent) -> None: ...


def test_trigger_rules_per_event_kind() -> None:
    registry = WatchRegistry()
    registry.add_data_watch("/a", data_fn)
    registry.add_child_watch("/a", child_fn)
    assert _fired(registry, [("child", "/a")]) == [("child_fn", "CHILD", "/a")]
    assert _fired(registry, [("changed", "/a")]) == [("data_fn", "CHANGED", "/a")]
    assert _fired(registry, [("changed", "/a"), ("child", "/a")]) == []  # one-shot: both consumed


def test_delete_fires_data_and_child_watches_and_the_same_function_twice_like_kazoo() -> None:
    registry = WatchRegistry()
    registry.add_data_watch("/a", both_fn)
    registry.add_data_watch("/a", both_fn)  # deduplicated within a kind
    registry.add_child_watch("/a", both_fn)
    assert _fired(registry, [("deleted", "/a")]) == [("both_fn", "DELETED", "/a"), ("both_fn", "DELETED", "/a")]
    assert registry.count() == 0


def test_created_fires_exists_watches_only_on_that_path() -> None:
    registry = WatchRegistry()
    registry.add_data_watch("/a/b", data_fn)
    registry.add_child_watch("/a", child_fn)
    assert _fired(registry, [("created", "/a/b/c"), ("created", "/a/b")]) == [("data_fn", "CREATED", "/a/b")]
    assert registry.count() == 1


def _tree_with(*ops_list: tuple[object, ...]) -> Tree:
    tree = Tree()
    tree.apply(ops.make_entry(1, 1, 1, 1, ("open_session", 1000)))
    for index, op in enumerate(ops_list, start=2):
        tree.apply(ops.make_entry(1, index, index, 1, op))
    return tree


def test_changes_between_two_replica_states_match_what_the_entries_would_fire() -> None:
    old = _tree_with(ops.create_op("/kept"), ops.create_op("/gone"), ops.create_op("/parent"))
    new = _tree_with(
        ops.create_op("/kept"), ops.create_op("/gone"), ops.create_op("/parent"),
        ops.set_op("/kept", b"v", -1), ops.delete_op("/gone", -1), ops.create_op("/parent/kid"), ops.create_op("/born"),
    )  # fmt: skip
    registry = WatchRegistry()
    for path in ("/kept", "/gone", "/born", "/parent", "/never"):
        registry.add_data_watch(path, data_fn)
    registry.add_child_watch("/parent", child_fn)
    registry.add_child_watch("/gone", child_fn)
    assert registry.changes_between(old, new) == [
        ("created", "/born"),
        ("deleted", "/gone"),
        ("changed", "/kept"),
        ("child", "/parent"),
    ]
    assert registry.changes_between(new, new) == []


def test_dispatcher_runs_callbacks_in_order_on_its_own_thread_and_survives_errors() -> None:
    dispatcher = Dispatcher(name="coord-callbacks-test")
    seen: list[tuple[int, str]] = []
    done = threading.Event()

    def record(value: int) -> None:
        seen.append((value, threading.current_thread().name))

    def explode() -> None:
        raise RuntimeError("user bug")

    dispatcher.submit(record, 1)
    dispatcher.submit(explode)
    dispatcher.submit(record, 2)
    dispatcher.submit(done.set)
    assert done.wait(5)
    dispatcher.stop()
    assert seen == [(1, "coord-callbacks-test"), (2, "coord-callbacks-test")]
