"""Watches as async iterators against a real 3-member cluster: data and
children iterators converge to the latest state under bursts of writes
from another member, end cleanly, and persistent-watch iterators deliver
every change in order with the sync side's overflow policy."""

from __future__ import annotations

import asyncio
import threading

import pytest
from aio_helpers import run

import coord
from coord.aio import AsyncCoordinator

pytestmark = pytest.mark.cluster


def _burst(member: coord.Coordinator, path: str, count: int) -> None:
    for i in range(count):
        member.set(path, b"%d" % i)
    member.set(path, b"done")


def test_watch_data_converges_under_a_burst_from_another_member(shared_cluster, amembers) -> None:
    async def scenario() -> None:
        writer = shared_cluster.members[0]
        watcher = amembers[1]
        await amembers[0].create("/wd/burst", b"start", makepath=True)
        await watcher.sync()
        seen = []
        async with watcher.watch_data("/wd/burst") as updates:
            first = await updates.__anext__()
            assert first[0] == b"start" and first[2] is None
            thread = threading.Thread(target=_burst, args=(writer, "/wd/burst", 300))
            thread.start()
            try:
                async for data, stat, event in updates:
                    assert event is not None and event.type == coord.EventType.CHANGED
                    seen.append((data, stat.mzxid, stat.version))
                    if data == b"done":
                        break
            finally:
                await asyncio.to_thread(thread.join, 20)
        assert seen[-1][0] == b"done" and seen[-1][2] == 301
        mzxids = [s[1] for s in seen]
        assert mzxids == sorted(set(mzxids))  # strictly newer every time
        values = [int(s[0]) for s in seen[:-1]]
        assert values == sorted(values)  # never goes back to an older value

    run(scenario)


def test_watch_data_follows_creation_and_deletion(amembers) -> None:
    async def scenario() -> None:
        member, writer = amembers[2], amembers[0]
        updates = member.watch_data("/wd/life/node")
        assert await updates.__anext__() == (None, None, None)
        await writer.create("/wd/life/node", b"born", makepath=True)
        data, stat, event = await updates.__anext__()
        assert data == b"born" and stat.version == 0 and event.type == coord.EventType.CREATED
        await writer.delete("/wd/life/node")
        data, stat, event = await updates.__anext__()
        assert (data, stat) == (None, None) and event.type == coord.EventType.DELETED
        # aclose wakes a pending __anext__, which ends the iteration.
        pending = asyncio.create_task(updates.__anext__())
        await asyncio.sleep(0)
        await updates.aclose()
        with pytest.raises(StopAsyncIteration):
            await pending
        with pytest.raises(StopAsyncIteration):
            await updates.__anext__()
        with pytest.raises(coord.InvalidPathError):
            member.watch_data("relative")

    run(scenario)


def test_watch_children_converges_and_ends_on_delete(shared_cluster, amembers) -> None:
    async def scenario() -> None:
        member = amembers[1]
        with pytest.raises(coord.NoNodeError):
            await member.watch_children("/wc/missing").__anext__()
        await amembers[0].create("/wc/dir", makepath=True)
        await member.sync()
        lists = []
        updates = member.watch_children("/wc/dir")
        assert await updates.__anext__() == []
        writer = shared_cluster.members[2]

        def burst() -> None:
            for i in range(100):
                writer.create(f"/wc/dir/c{i:03d}")

        thread = threading.Thread(target=burst)
        thread.start()
        try:
            async for children in updates:
                lists.append(children)
                if len(children) == 100:
                    break
        finally:
            await asyncio.to_thread(thread.join, 20)
        assert lists[-1] == [f"c{i:03d}" for i in range(100)]
        assert [len(c) for c in lists] == sorted({len(c) for c in lists})
        await amembers[2].delete("/wc/dir", recursive=True)
        rest = [children async for children in updates]  # ends when the node goes
        assert all(len(c) < 100 for c in rest)

    run(scenario)


def test_persistent_watch_iterator_delivers_every_change_in_order(shared_cluster, amembers) -> None:
    async def scenario() -> None:
        member = amembers[0]
        await member.create("/pw/tree", makepath=True)
        writer = shared_cluster.members[1]
        async with member.watch("/pw/tree", recursive=True) as events:
            thread = threading.Thread(
                target=lambda: [writer.create(f"/pw/tree/n{i}", b"") for i in range(50)]
                + [writer.set("/pw/tree/n0", b"x"), writer.delete("/pw/tree/n1")]
            )
            thread.start()
            got = []
            try:
                async for event in events:
                    got.append((event.type, event.path))
                    if event.type == coord.EventType.DELETED:
                        break
            finally:
                await asyncio.to_thread(thread.join, 20)
        assert got == [(coord.EventType.CREATED, f"/pw/tree/n{i}") for i in range(50)] + [
            (coord.EventType.CHANGED, "/pw/tree/n0"),
            (coord.EventType.DELETED, "/pw/tree/n1"),
        ]
        # Leaving ``async with`` removed the watch.
        with pytest.raises(StopAsyncIteration):
            await events.__anext__()

    run(scenario)


def test_persistent_watch_iterator_overflow_ends_with_watch_overflow(amembers) -> None:
    async def scenario() -> None:
        member = amembers[2]
        await member.create("/pw/slow", b"", makepath=True)
        events = member.watch("/pw/slow", max_queued=5)
        for i in range(20):  # nobody consumes meanwhile
            await member.set("/pw/slow", b"%d" % i)
        await member.sync()
        delivered = [event async for event in events]
        assert [e.type for e in delivered] == [coord.EventType.CHANGED] * 5 + [coord.EventType.WATCH_OVERFLOW]
        assert delivered[-1].path == "/pw/slow"
        assert not await member.remove_watch("/pw/slow", events._callback)  # already removed
        with pytest.raises(ValueError, match="max_queued"):
            member.watch("/pw/slow", max_queued=0)

    run(scenario)


def test_coroutine_persistent_watch_callback(amembers) -> None:
    async def scenario() -> None:
        member: AsyncCoordinator = amembers[1]
        seen: list[str] = []
        arrived = asyncio.Event()

        async def on_change(event: coord.WatchedEvent) -> None:
            seen.append(event.type)
            arrived.set()

        await member.add_watch("/pw/cb", on_change)
        await amembers[0].create("/pw/cb", makepath=True)
        await asyncio.wait_for(arrived.wait(), 10)
        assert seen == [coord.EventType.CREATED]
        arrived.clear()
        assert await member.remove_watch("/pw/cb", on_change)
        await asyncio.wait_for(arrived.wait(), 10)  # the final event, as ZooKeeper's Java client
        assert seen == [coord.EventType.CREATED, coord.EventType.PERSISTENT_WATCH_REMOVED]

    run(scenario)
