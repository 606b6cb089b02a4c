"""SetModel, QueueModel and TreeModel: hand-written histories."""

from __future__ import annotations

import pytest

from coord.testing.linearizability import check, subtree_key
from coord.testing.models import QueueModel, SetModel, TreeModel, error_kind

from .builder import Script

# ---------------------------------------------------------------- set


def test_set_final_read_with_every_acknowledged_add() -> None:
    s = Script().call(1, "add", 1).call(2, "add", 2).invoke(3, "add", 3).info(3).call(1, "read", result=[2, 1])
    assert check(s.events, SetModel()).valid is True


def test_set_loses_an_acknowledged_add() -> None:
    s = Script().call(1, "add", 1).call(2, "add", 2).call(3, "add", 3).call(1, "read", result=[1, 3])
    assert check(s.events, SetModel()).valid is False


def test_set_unknown_add_may_or_may_not_appear() -> None:
    for final in ([1, 4], [1]):
        s = Script().call(1, "add", 1).invoke(2, "add", 4).info(2).call(1, "read", result=final)
        assert check(s.events, SetModel()).valid is True


def test_set_element_never_added_is_caught() -> None:
    s = Script().call(1, "add", 1).invoke(2, "add", 4).fail(2, "ConnectionLoss").call(1, "read", result=[1, 4])
    assert check(s.events, SetModel()).valid is False
    s = Script().call(1, "add", 1).call(1, "read", result=[1, 9])
    assert check(s.events, SetModel()).valid is False


def test_set_read_concurrent_with_an_add() -> None:
    s = Script().call(1, "add", 1).invoke(2, "add", 2).call(3, "read", result=[1]).call(3, "read", result=[1, 2]).ok(2)
    assert check(s.events, SetModel()).valid is True
    s = Script().call(1, "add", 1).invoke(2, "add", 2).call(3, "read", result=[1, 2]).call(3, "read", result=[1]).ok(2)
    assert check(s.events, SetModel()).valid is False


# ---------------------------------------------------------------- queue


def test_queue_fifo_in_order() -> None:
    s = Script().call(1, "enqueue", "a").call(1, "enqueue", "b").call(2, "dequeue", result="a")
    s.call(2, "dequeue", result="b").call(2, "dequeue", result=None)
    assert check(s.events, QueueModel()).valid is True


def test_queue_dequeues_out_of_order() -> None:
    s = Script().call(1, "enqueue", "a").call(1, "enqueue", "b").call(2, "dequeue", result="b")
    assert check(s.events, QueueModel()).valid is False


def test_queue_concurrent_enqueues_may_go_either_way() -> None:
    s = Script().invoke(1, "enqueue", "a").invoke(2, "enqueue", "b").ok(1).ok(2)
    s.call(3, "dequeue", result="b").call(3, "dequeue", result="a")
    assert check(s.events, QueueModel()).valid is True


def test_queue_item_dequeued_twice_or_empty_while_full() -> None:
    s = Script().call(1, "enqueue", "a").call(2, "dequeue", result="a").call(3, "dequeue", result="a")
    assert check(s.events, QueueModel()).valid is False
    s = Script().call(1, "enqueue", "a").call(2, "dequeue", result="empty")
    assert check(s.events, QueueModel()).valid is False
    # A failed "empty" dequeue is definite only when the harness says so.
    s = Script().call(1, "enqueue", "a").invoke(2, "dequeue").fail(2, "empty")
    assert check(s.events, QueueModel()).valid is True
    assert check(s.events, QueueModel(empty_failures=True)).valid is False


def test_queue_unknown_dequeue_may_have_taken_the_head() -> None:
    s = Script().call(1, "enqueue", "a").call(1, "enqueue", "b").invoke(2, "dequeue").info(2)
    s.call(3, "dequeue", result="b").call(3, "dequeue", result=None)
    assert check(s.events, QueueModel()).valid is True


def test_queue_order_revealed_by_reads_and_dequeues() -> None:
    # Three concurrent enqueues; a read and the dequeues reveal one order.
    s = Script().invoke(1, "enqueue", "a").invoke(2, "enqueue", "b").invoke(3, "enqueue", "c").ok(1).ok(2).ok(3)
    s.call(4, "read", result=["c", "a", "b"]).call(4, "dequeue", result="c").call(5, "dequeue", result="a")
    s.call(5, "final-read", result=["b"])
    assert check(s.events, QueueModel()).valid is True
    # An enqueue that completed before another was invoked cannot come out second.
    s = Script().call(1, "enqueue", "a").call(2, "enqueue", "b").call(3, "final-read", result=["b", "a"])
    assert check(s.events, QueueModel()).valid is False
    s = Script().call(1, "enqueue", "a").call(2, "enqueue", "b").invoke(3, "dequeue").invoke(4, "dequeue")
    s.ok(3, "b").ok(4, "a")  # overlapping dequeues may return in either order
    assert check(s.events, QueueModel()).valid is True
    s = Script().call(1, "enqueue", "a").call(2, "enqueue", "b").call(3, "dequeue", result="b")
    s.call(4, "dequeue", result="a")
    assert check(s.events, QueueModel()).valid is False


def test_queue_unknown_enqueues_nobody_saw_are_pruned() -> None:
    s = Script().invoke(1, "enqueue", "lost").info(1).call(2, "enqueue", "a").invoke(3, "enqueue", "seen").info(3)
    s.call(4, "final-read", result=["a", "seen"])
    result = check(s.events, QueueModel())
    assert result.valid is True
    partition = result.partitions[0]
    assert (partition.checked, partition.unknown, partition.dropped) == (2, 1, 1)


def test_queue_lowest_order_and_final_read() -> None:
    s = Script().call(1, "enqueue", 5).call(1, "enqueue", 2).call(1, "enqueue", 9).call(2, "dequeue", result=2)
    s.call(2, "read", result=[9, 5])
    assert check(s.events, QueueModel(order="lowest")).valid is True
    assert check(s.events, QueueModel()).valid is False


# ---------------------------------------------------------------- tree


def test_tree_sequential_names_and_children() -> None:
    s = Script(key="/t/q")
    s.call(1, "create", b"")
    s.call(1, "create", {"data": "a", "sequence": True}, "/t/q/n-0000000000", key="/t/q/n-")
    s.call(2, "create", {"data": "b", "sequence": True}, "/t/q/n-0000000001", key="/t/q/n-")
    s.call(2, "delete", -1, key="/t/q/n-0000000000")
    s.call(2, "create", {"data": "c", "sequence": True}, "/t/q/n-0000000002", key="/t/q/n-")
    s.call(3, "children", result=["n-0000000002", "n-0000000001"])
    s.call(3, "get", result=["b", 0], key="/t/q/n-0000000001")
    s.invoke(3, "delete", 0).fail(3, "NotEmptyError")
    events = s.events
    model = TreeModel(initial={"/t": b""})
    assert check(events, model, partition_key=subtree_key(2)).valid is True

    wrong = Script(key="/t/q")
    wrong.call(1, "create", b"")
    wrong.call(1, "create", {"data": "a", "sequence": True}, "/t/q/n-0000000000", key="/t/q/n-")
    wrong.call(2, "delete", -1, key="/t/q/n-0000000000")
    wrong.call(2, "create", {"data": "c", "sequence": True}, "/t/q/n-0000000000", key="/t/q/n-")  # reused
    assert check(wrong.events, model, partition_key=subtree_key(2)).valid is False


def test_tree_errors_in_zookeeper_order() -> None:
    model = TreeModel(initial={"/t": b""})
    s = Script(key="/t/a/b").invoke(1, "create", "x").fail(1, "NoNodeError")  # no parent
    assert check(s.events, model).valid is True
    s = Script(key="/t/a").call(1, "create", "x").invoke(1, "set", ["y", 3]).fail(1, "BadVersionError")
    s.call(1, "set", ["y", 0], 1).call(2, "get", result=["y", 1]).call(2, "exists", result=1)
    assert check(s.events, model).valid is True
    s = Script(key="/t/a").call(1, "create", "x").call(2, "exists", result=None)
    assert check(s.events, model).valid is False


def test_tree_ephemerals_and_session_close() -> None:
    model = TreeModel(initial={"/t": b""})
    whole = subtree_key(1)  # one partition: close_session is logged against /t
    s = Script(key="/t/e").call(1, "create", {"data": "x", "ephemeral": 7})
    s.invoke(1, "create", "child", key="/t/e/c").fail(1, "NoChildrenForEphemeralsError")
    s.call(9, "close_session", 7, key="/t").call(2, "exists", result=False)
    assert check(s.events, model, partition_key=whole).valid is True
    s = Script(key="/t/e").call(1, "create", {"data": "x", "ephemeral": 7}).call(9, "close_session", 7, key="/t")
    s.call(2, "get", result=["x", 0])
    assert check(s.events, model, partition_key=whole).valid is False


def test_subtree_key() -> None:
    key = subtree_key(2)
    s = Script(key="/t/k1/a/b").call(1, "get", result=None).call(1, "get", key="/t/k2", result=None)
    from coord.testing.history import pair_operations

    assert [key(op) for op in pair_operations(s.events)] == ["/t/k1", "/t/k2"]
    with pytest.raises(ValueError):
        subtree_key(0)


# ---------------------------------------------------------------- shared rules


def test_error_names_are_normalized() -> None:
    assert error_kind("BadVersionError") == "badversion"
    assert error_kind("BAD_VERSION") == "badversion"
    assert error_kind("kazoo.exceptions.NoNodeError: /x") == "nonode"
    assert error_kind("NodeExistsError()") == "nodeexists"
    assert error_kind(None) is None


def test_unknown_operation_names_are_refused() -> None:
    s = Script().call(1, "frobnicate", 1)
    with pytest.raises(ValueError, match="frobnicate"):
        check(s.events, SetModel())
