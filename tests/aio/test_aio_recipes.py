"""Async adapters of the sync recipes against a real 3-member cluster:
``async with member.Lock(...)`` excludes tasks on different members,
cancelled waiters never leave a held lock, ``Election.run`` with a
coroutine, and the generic adapter over the other recipe shapes."""

from __future__ import annotations

import asyncio

import pytest
from aio_helpers import eventually, run

import coord
from coord.aio import AsyncLock

pytestmark = pytest.mark.cluster


def test_async_with_lock_excludes_tasks_on_different_members(amembers) -> None:
    async def scenario() -> None:
        holders = 0
        overlaps = 0
        tokens: list[int] = []

        async def worker(index: int) -> None:
            nonlocal holders, overlaps
            member = amembers[index % 3]
            for _ in range(3):
                lock = member.Lock("/alock/excl", f"w{index}")
                async with lock:
                    holders += 1
                    overlaps += holders > 1
                    tokens.append(lock.fencing_token)
                    await asyncio.sleep(0.005)
                    holders -= 1

        await asyncio.gather(*(worker(i) for i in range(6)))
        assert overlaps == 0 and len(tokens) == 18
        assert tokens == sorted(set(tokens))  # fencing tokens strictly increase

    run(scenario)


def test_cancelled_acquire_never_leaves_the_lock_held(amembers) -> None:
    async def scenario() -> None:
        holder = amembers[0].Lock("/alock/cancel", "holder")
        assert isinstance(holder, AsyncLock)
        assert await holder.acquire(timeout=5)
        waiter = amembers[1].Lock("/alock/cancel", "waiter")
        task = asyncio.create_task(waiter.acquire())
        await eventually(lambda: len(holder.recipe.contenders()) == 2, what="the waiter queued")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not waiter.is_acquired
        await amembers[0].sync()  # the waiter's cleanup was written through member 1
        assert await holder.contenders() == ["holder"]
        # A cancel that races with an acquire of a free lock: whether the
        # recipe saw the cancel or acquired first, nothing stays held.
        await holder.release()
        racer = amembers[2].Lock("/alock/cancel", "racer")
        task = asyncio.create_task(racer.acquire())
        await asyncio.sleep(0)  # the worker thread is acquiring now
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not racer.is_acquired
        await amembers[0].sync()
        assert await holder.contenders() == []
        # The waiter's lock object is usable again after the cancellation.
        assert await waiter.acquire(timeout=5)
        assert waiter.fencing_token is not None
        await waiter.release()
        with pytest.raises(coord.errors.LockTimeout):
            async with amembers[0].Lock("/alock/cancel"):
                await amembers[1].Lock("/alock/cancel").acquire(timeout=0.2)

    run(scenario)


def test_election_runs_coroutine_leaders_one_at_a_time(amembers) -> None:
    async def scenario() -> None:
        leading = 0
        order: list[str] = []

        async def lead(name: str) -> None:
            nonlocal leading
            leading += 1
            assert leading == 1
            order.append(name)
            await asyncio.sleep(0.01)
            leading -= 1

        elections = [amembers[i % 3].Election("/aelection/e", f"c{i}") for i in range(4)]
        await asyncio.gather(*(e.run(lead, f"c{i}") for i, e in enumerate(elections)))
        assert sorted(order) == ["c0", "c1", "c2", "c3"]

        # Cancelling a running leader gives up leadership for the next one.
        started = asyncio.Event()

        async def forever() -> None:
            started.set()
            await asyncio.Event().wait()

        stuck = asyncio.create_task(elections[0].run(forever))
        await asyncio.wait_for(started.wait(), 10)
        follower = asyncio.create_task(elections[1].run(lead, "next"))
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        await asyncio.wait_for(follower, 10)
        assert order[-1] == "next"
        await amembers[2].sync()
        assert await elections[2].contenders() == []

    run(scenario)


def test_generic_adapter_drives_the_other_recipes(amembers) -> None:
    async def scenario() -> None:
        first, second, third = amembers
        counter = first.Counter("/arecipes/counter")
        await (counter + 5)
        await (counter - 2)
        assert await counter.value == 3
        sem = [second.Semaphore("/arecipes/sem", f"s{i}", max_leases=2) for i in range(3)]
        assert await sem[0].acquire(timeout=5) and await sem[1].acquire(timeout=5)
        assert not await sem[2].acquire(blocking=False)
        await sem[0].release()
        async with sem[2]:
            assert sem[2].is_acquired
        lease = await third.NonBlockingLease("/arecipes/lease", 30, identifier="me")
        assert bool(lease) and lease.fencing_token is not None
        await first.sync()
        other = await first.NonBlockingLease("/arecipes/lease", 30, identifier="other")
        assert not other
        barrier = first.Barrier("/arecipes/barrier")
        await barrier.create()
        await second.sync()
        waiting = asyncio.create_task(second.Barrier("/arecipes/barrier").wait(10))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        assert await barrier.remove()
        assert await asyncio.wait_for(waiting, 10) is True
        queue = third.LockingQueue("/arecipes/queue")
        getter = asyncio.create_task(queue.get(10))
        await first.LockingQueue("/arecipes/queue").put(b"job")
        assert await asyncio.wait_for(getter, 10) == b"job"
        assert await queue.consume()
        party = second.Party("/arecipes/party", "p1")
        await party.join()
        assert len(party) == 1 and list(party) == ["p1"]
        await party.leave()
        with pytest.raises(TypeError, match="not a context manager"):
            async with first.Counter("/arecipes/counter"):
                pass

    run(scenario)
