"""Queue and LockingQueue (modelled on kazoo's test_queue.py) with producers
and consumers on different members of a real 3-member cluster."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from helpers import InProcessCluster, wait_until

from coord.recipes import LockingQueue, Queue

from ._support import Worker, running_cluster

pytestmark = pytest.mark.cluster


def _path() -> str:
    return "/" + uuid.uuid4().hex


# ---------------------------------------------------------------------- Queue


def test_queue_validation(shared_cluster: InProcessCluster) -> None:
    queue = shared_cluster.members[0].Queue(_path())
    assert isinstance(queue, Queue)
    for bad_value in ({}, "text", None):
        with pytest.raises(TypeError):
            queue.put(bad_value)  # type: ignore[arg-type]
    for bad_priority in (b"100", 10.0, True):
        with pytest.raises(TypeError):
            queue.put(b"one", bad_priority)  # type: ignore[arg-type]
    for out_of_range in (-1, 1000, 100000):
        with pytest.raises(ValueError):
            queue.put(b"one", out_of_range)
    assert len(queue) == 0  # nothing was put


def test_empty_queue(shared_cluster: InProcessCluster) -> None:
    queue = Queue(shared_cluster.members[1], _path())
    assert len(queue) == 0
    assert queue.get() is None
    assert len(queue) == 0


def test_queue_fifo_across_members(shared_cluster: InProcessCluster) -> None:
    path = _path()
    producer, consumer = Queue(shared_cluster.members[0], path), Queue(shared_cluster.members[1], path)
    for value in (b"one", b"two", b"three"):
        producer.put(value)
    shared_cluster.members[1].sync()
    assert len(consumer) == 3
    assert [consumer.get(), consumer.get()] == [b"one", b"two"]
    producer.put(b"four")
    shared_cluster.members[1].sync()
    assert [consumer.get(), consumer.get(), consumer.get()] == [b"three", b"four", None]
    shared_cluster.members[0].sync()  # the producer's replica reads what the consumer did
    assert len(producer) == 0


def test_queue_priority(shared_cluster: InProcessCluster) -> None:
    path = _path()
    producer, consumer = Queue(shared_cluster.members[2], path), Queue(shared_cluster.members[0], path)
    producer.put(b"four", priority=101)
    producer.put(b"one", priority=0)
    producer.put(b"two", priority=0)
    producer.put(b"three", priority=99)
    shared_cluster.members[0].sync()
    assert [consumer.get() for _ in range(5)] == [b"one", b"two", b"three", b"four", None]


def test_queue_concurrent_consumers_on_three_members_take_each_entry_once(shared_cluster: InProcessCluster) -> None:
    path = _path()
    producer = Queue(shared_cluster.members[0], path)
    values = [f"item-{i:02d}".encode() for i in range(30)]
    for value in values:
        producer.put(value)
    got: list[bytes] = []
    lock = threading.Lock()

    def consume(member_index: int) -> None:
        member = shared_cluster.members[member_index]
        member.sync()
        queue = Queue(member, path)
        while (value := queue.get()) is not None:
            with lock:
                got.append(value)

    workers = [Worker(lambda i=i: consume(i)) for i in range(3)]
    for worker in workers:
        worker.join(30)
    assert sorted(got) == values  # each entry exactly once


# ---------------------------------------------------------------------- LockingQueue


def test_locking_queue_validation(shared_cluster: InProcessCluster) -> None:
    queue = shared_cluster.members[0].LockingQueue(_path())
    assert isinstance(queue, LockingQueue)
    with pytest.raises(TypeError):
        queue.put({})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        queue.put(b"one", b"100")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        queue.put(b"one", 10.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        queue.put(b"one", -100)
    with pytest.raises(ValueError):
        queue.put(b"one", 100000)
    with pytest.raises(TypeError):
        queue.put_all({})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        queue.put_all([b"ok", {}])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        queue.put_all([b"one"], b"100")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        queue.put_all([b"one"], 10.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        queue.put_all([b"one"], -100)
    with pytest.raises(ValueError):
        queue.put_all([b"one"], 100000)
    with pytest.raises(ValueError):
        queue.get(-1)
    assert len(queue) == 0  # nothing was put, not even the valid first value of put_all


def test_locking_queue_layout_is_kazoos(shared_cluster: InProcessCluster) -> None:
    member = shared_cluster.members[0]
    path = _path()
    queue = LockingQueue(member, path)
    queue.put(b"a", priority=7)
    assert sorted(member.get_children(path)) == ["entries", "taken"]  # type: ignore[arg-type]
    (entry,) = member.get_children(f"{path}/entries")
    assert entry.startswith("entry-007-") and entry[len("entry-007-") :].isdigit()
    assert queue.get(1) == b"a"
    assert member.get_children(f"{path}/taken") == [entry]
    data, stat = member.get(f"{path}/taken/{entry}")
    assert data == queue.id and stat.ephemeralOwner == member.session_id


def test_empty_locking_queue(shared_cluster: InProcessCluster) -> None:
    queue = LockingQueue(shared_cluster.members[1], _path())
    assert len(queue) == 0
    started = time.monotonic()
    assert queue.get(0.3) is None
    assert time.monotonic() - started >= 0.3
    assert queue.get(0) is None
    assert len(queue) == 0


def test_locking_queue(shared_cluster: InProcessCluster) -> None:
    path = _path()
    producer = LockingQueue(shared_cluster.members[0], path)
    queue = LockingQueue(shared_cluster.members[1], path)
    producer.put(b"one")
    producer.put_all([b"two", b"three"])
    shared_cluster.members[1].sync()
    assert len(queue) == 3
    assert not queue.consume()
    assert not queue.holds_lock()
    assert queue.get(1) == b"one"
    assert queue.holds_lock()
    assert queue.get(1) == b"one"  # not consumed yet: the same entry again
    assert queue.consume()
    assert not queue.holds_lock()
    assert queue.get(1) == b"two"
    assert queue.consume()
    assert queue.get(1) == b"three"
    assert queue.holds_lock()
    assert queue.consume()
    assert not queue.holds_lock()
    assert not queue.consume()
    assert len(queue) == 0
    shared_cluster.members[0].sync()
    assert len(producer) == 0


def test_locking_queue_release_lets_another_member_take_it(shared_cluster: InProcessCluster) -> None:
    path = _path()
    first = LockingQueue(shared_cluster.members[0], path)
    second = LockingQueue(shared_cluster.members[2], path)
    first.put(b"one")
    assert first.get(1) == b"one"
    shared_cluster.members[2].sync()
    assert second.get(0.2) is None  # locked by the first consumer
    assert first.release()
    assert not first.holds_lock()
    assert not first.release()
    assert second.get(5) == b"one"
    assert second.holds_lock()
    assert second.consume()
    shared_cluster.members[0].sync()
    assert len(first) == 0


def test_locking_queue_priority(shared_cluster: InProcessCluster) -> None:
    path = _path()
    producer, queue = LockingQueue(shared_cluster.members[2], path), LockingQueue(shared_cluster.members[1], path)
    producer.put(b"four", priority=101)
    producer.put(b"one", priority=0)
    producer.put(b"two", priority=0)
    producer.put(b"three", priority=10)
    shared_cluster.members[1].sync()
    for expected in (b"one", b"two", b"three", b"four"):
        assert queue.get(1) == expected
        assert queue.consume()


def test_blocked_get_wakes_when_another_member_puts(shared_cluster: InProcessCluster) -> None:
    path = _path()
    consumer = LockingQueue(shared_cluster.members[0], path)
    consumer._ensure_paths()
    waiting = Worker(lambda: consumer.get(20))
    time.sleep(0.2)
    assert not waiting.done.is_set()
    LockingQueue(shared_cluster.members[2], path).put(b"late")
    assert waiting.join(10) == b"late"
    assert consumer.consume()


def test_concurrent_getters_on_three_members_lock_each_entry_once(shared_cluster: InProcessCluster) -> None:
    path = _path()
    for member in shared_cluster.members:
        LockingQueue(member, path)._ensure_paths()
    getters = [Worker(lambda m=m: LockingQueue(m, path).get(1.5)) for m in shared_cluster.members]
    time.sleep(0.1)
    LockingQueue(shared_cluster.members[0], path).put(b"one")
    results = [getter.join(10) for getter in getters]
    assert results.count(b"one") == 1
    assert results.count(None) == 2


def test_expired_consumer_gives_its_entry_back() -> None:
    """A consumer's member stops (its session closes): its lock goes and
    another member's consumer gets the entry."""
    with running_cluster() as own:
        _expired_consumer_gives_its_entry_back(own)


def _expired_consumer_gives_its_entry_back(cluster: InProcessCluster) -> None:
    path = _path()
    doomed, survivor = cluster.members[1], cluster.members[2]
    LockingQueue(survivor, path).put(b"job")
    doomed.sync()
    taker = LockingQueue(doomed, path)
    assert taker.get(1) == b"job"
    other = LockingQueue(survivor, path)
    assert other.get(0.1) is None
    doomed.stop()
    assert other.get(10) == b"job"
    assert other.consume()
    wait_until(lambda: len(other) == 0, 5, what="the queue to be empty")
