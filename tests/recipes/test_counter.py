"""Counter against a real 3-member cluster (modelled on kazoo's
test_counter.py), with concurrent changes from every member."""

from __future__ import annotations

import struct

import pytest

from coord.recipes import Counter

from ._support import Worker


def test_int_counter(shared, path):
    counter = shared[0].Counter(path)
    counter += 2
    counter -= 1
    assert counter.value == 1
    other = Counter(shared[1], path)
    other.client.sync()
    assert other.value == 1
    other += 5
    assert other.value == 6


def test_float_counter(shared, path):
    counter = Counter(shared[0], path, default=1.0)
    assert counter.value == 1.0
    counter += 2.0
    assert counter.value == 3.0
    counter -= 0.5
    assert counter.value == 2.5
    assert shared[0].get(path)[0] == b"2.5"  # kazoo's repr format


def test_curator_counter(shared, path):
    counter = Counter(shared[0], path, support_curator=True)
    counter += 2
    counter -= 1
    assert counter.value == 1
    assert shared[0].get(path)[0] == struct.pack(">i", 1)
    counter -= 3
    assert counter.value == -2
    with pytest.raises(TypeError):
        Counter(shared[0], path, default=1.5, support_curator=True)
    with pytest.raises(ValueError):
        counter += 2**32  # does not fit Curator's 32 bits
    assert counter.value == -2


def test_errors(shared, path):
    counter = Counter(shared[0], path)
    with pytest.raises(TypeError):
        counter += 2.1
    with pytest.raises(TypeError):
        counter += "a"
    with pytest.raises(TypeError):
        counter -= "a"
    with pytest.raises(ValueError):
        Counter(shared[0], "no-slash")
    assert counter.value == 0


def test_pre_post_values(shared, path):
    counter = Counter(shared[0], path)
    assert counter.pre_value is None and counter.post_value is None
    counter += 2
    assert (counter.pre_value, counter.post_value) == (0, 2)
    counter -= 3
    assert (counter.pre_value, counter.post_value) == (2, -1)


def test_concurrent_increments_from_every_member_are_all_counted(shared, path):
    """12 threads on 3 members race on one node: the optimistic retries on
    BadVersionError must count every increment exactly once."""

    def bump(index: int) -> list[tuple[int, int]]:
        counter = Counter(shared[index % 3], path)
        seen = []
        for _ in range(15):
            counter += 1
            seen.append((counter.pre_value, counter.post_value))
        return seen

    workers = [Worker(bump, i) for i in range(12)]
    changes = [change for worker in workers for change in worker.join(60)]
    shared[1].sync()
    assert Counter(shared[1], path).value == 12 * 15
    # Every change moved the counter from one distinct value to the next.
    assert sorted(pre for pre, _ in changes) == list(range(12 * 15))
    assert all(post == pre + 1 for pre, post in changes)
