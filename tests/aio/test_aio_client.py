"""The asyncio twin of the client API against a real 3-member cluster:
same results and exceptions as the sync API, many concurrent tasks,
cancellation that leaves the member consistent, coroutine callbacks."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from aio_helpers import eventually, run
from helpers import free_ports

import coord
from coord.aio import AsyncCoordinator

pytestmark = pytest.mark.cluster

BIG = b"x" * (1024 * 1024 + 1)

# (method, args, kwargs); "{p}" in a str argument is the case's own prefix.
CASES: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("create", ("{p}/a", b"1"), {}),
    ("create", ("{p}/a", b"1"), {}),  # NodeExistsError
    ("create", ("{p}/missing/b",), {}),  # NoNodeError
    ("create", ("{p}/deep/x/y", b"v"), {"makepath": True}),
    ("create", ("{p}/seq-", b""), {"sequence": True}),
    ("create", ("{p}/seq-", b""), {"sequence": True}),
    ("create", ("{p}/eph", b"", None, True), {}),
    ("create", ("{p}/eph/child",), {}),  # NoChildrenForEphemeralsError
    ("create", ("{p}/inc", b"d"), {"include_data": True}),
    ("create", ("{p}/none", None), {}),
    ("create", ("{p}/s", "text"), {}),  # bad value type
    ("create", ("no-slash",), {}),
    ("create", ("{p}/f",), {"ephemeral": "yes"}),
    ("create", ("{p}/f",), {"makepath": 1}),
    ("create", ("{p}/f", BIG), {}),
    ("create", ("{p}/f",), {"timeout": -1}),
    ("create", ("{p}/f",), {"timeout": "soon"}),
    ("get", ("{p}/a",), {}),
    ("get", ("{p}/nope",), {}),
    ("get", ("bad",), {}),
    ("get", ("{p}/a",), {"watch": 5}),
    ("exists", ("{p}/a",), {}),
    ("exists", ("{p}/nope",), {}),
    ("exists", ("{p}//double",), {}),
    ("get_children", ("{p}",), {}),
    ("get_children", ("{p}",), {"include_data": True}),
    ("get_children", ("{p}",), {"include_data": "x"}),
    ("get_children", ("{p}/nope",), {}),
    ("set", ("{p}/a", b"2"), {}),
    ("set", ("{p}/a", b"3"), {"version": 0}),  # BadVersionError
    ("set", ("{p}/a", b"3"), {"version": "1"}),
    ("set", ("{p}/a", 3), {}),
    ("set", ("{p}/nope", b"3"), {}),
    ("delete", ("{p}/deep",), {}),  # NotEmptyError
    ("delete", ("{p}/a",), {"version": 7}),  # BadVersionError
    ("delete", ("{p}/deep",), {"recursive": True}),
    ("delete", ("{p}/deep",), {"recursive": True}),  # already gone: True
    ("delete", ("/",), {"recursive": True}),
    ("delete", ("/",), {}),
    ("delete", ("{p}/a",), {"recursive": "yes"}),
    ("delete", ("{p}/a",), {"recursive": True, "timeout": 0}),
    ("delete", ("{p}/a",), {}),
    ("delete", ("{p}/a",), {}),  # NoNodeError
    ("ensure_path", ("{p}/ens/a",), {}),
    ("ensure_path", ("{p}/ens/a",), {}),
    ("ensure_path", ("relative",), {}),
    ("sync", ("{p}",), {}),
    ("sync", ("bad",), {}),
    ("sync", ("/",), {"timeout": float("inf")}),
]


def _fill(value: Any, prefix: str) -> Any:
    return value.replace("{p}", prefix) if isinstance(value, str) else value


def _normalize(value: Any, prefix: str) -> Any:
    """A result with the prefix and the replica-specific stat fields
    (zxids, times) taken out, so two runs under different prefixes compare."""
    if isinstance(value, str):
        return value.replace(prefix, "{p}")
    if isinstance(value, coord.ZnodeStat):
        return ("stat", value.version, value.cversion, value.aversion, value.ephemeralOwner, value.dataLength,
                value.numChildren)
    if isinstance(value, (list, tuple)):
        return type(value)(_normalize(item, prefix) for item in value)
    if isinstance(value, BaseException):
        return ("error", type(value), str(value).replace(prefix, "{p}"))
    return value


def _sync_outcomes(member: coord.Coordinator, prefix: str) -> list[Any]:
    member.create(prefix, makepath=True)
    outcomes = []
    for method, args, kwargs in CASES:
        try:
            result: Any = getattr(member, method)(*[_fill(a, prefix) for a in args], **kwargs)
        except Exception as exc:
            result = exc
        outcomes.append(_normalize(result, prefix))
    return outcomes


async def _async_outcomes(member: AsyncCoordinator, prefix: str) -> list[Any]:
    await member.create(prefix, makepath=True)
    outcomes = []
    for method, args, kwargs in CASES:
        try:
            result: Any = await getattr(member, method)(*[_fill(a, prefix) for a in args], **kwargs)
        except Exception as exc:
            result = exc
        outcomes.append(_normalize(result, prefix))
    return outcomes


def test_crud_parity_with_the_sync_api(shared_cluster, amembers) -> None:
    """Every call, bad input included, gives the sync API's result or
    exception (type and message)."""
    sync_results = _sync_outcomes(shared_cluster.members[0], "/parity/sync")
    async_results = run(_async_outcomes, amembers[0], "/parity/async")
    for case, expected, got in zip(CASES, sync_results, async_results, strict=True):
        assert got == expected, case
    # The suite exercises both outcomes (guards against a vacuous comparison).
    assert sum(isinstance(r, tuple) and r[:1] == ("error",) for r in sync_results) > 20
    assert "{p}/seq-0000000003" in sync_results


def _transaction_outcome(results: list[Any], prefix: str) -> list[Any]:
    return [_normalize(r, prefix) for r in results]


def test_transaction_parity(shared_cluster, amembers) -> None:
    def build(txn: Any, prefix: str, fail: bool) -> None:
        txn.create(f"{prefix}/t1", b"a")
        txn.set_data(f"{prefix}/t1", b"b")
        txn.check(f"{prefix}/t1", 5 if fail else 1)
        txn.create(f"{prefix}/t2", sequence=True)
        txn.delete(f"{prefix}/t2-none" if fail else f"{prefix}/t1")

    sync_member = shared_cluster.members[0]
    sync_member.ensure_path("/txn/sync")
    expected = []
    for fail in (True, False):
        txn = sync_member.transaction()
        build(txn, "/txn/sync", fail)
        expected.append(_transaction_outcome(txn.commit(), "/txn/sync"))
    with pytest.raises(ValueError, match="already committed") as sync_error:
        txn.commit()

    async def scenario() -> list[Any]:
        member = amembers[1]
        await member.ensure_path("/txn/async")
        got = []
        for fail in (True, False):
            txn = member.transaction()
            build(txn, "/txn/async", fail)
            got.append(_transaction_outcome(await txn.commit(), "/txn/async"))
        with pytest.raises(ValueError, match="already committed") as async_error:
            await txn.commit()
        assert str(async_error.value) == str(sync_error.value)
        with pytest.raises(coord.InvalidPathError):
            member.transaction().create("no-slash")
        async with member.transaction() as txn:  # commits on a clean exit
            txn.create("/txn/async/ctx", b"c")
        assert txn.committed and (await member.get("/txn/async/ctx"))[0] == b"c"
        assert await member.transaction().commit() == []
        return got

    got = run(scenario)
    assert got == expected
    assert expected[0][1][0] == "error" and expected[1][0] == "{p}/t1"


def test_500_concurrent_creates(amembers) -> None:
    async def scenario() -> None:
        writer, reader = amembers[1], amembers[2]
        await writer.ensure_path("/many")
        named = [writer.create(f"/many/n{i}", str(i).encode()) for i in range(250)]
        sequential = [writer.create("/many/s-", b"s", sequence=True) for _ in range(250)]
        results = await asyncio.gather(*named, *sequential)
        assert results[:250] == [f"/many/n{i}" for i in range(250)]
        assert len(set(results[250:])) == 250
        # Tasks start in order and a member applies its writes in order, so
        # the sequence numbers follow the tasks.
        assert results[250:] == sorted(results[250:])
        await reader.sync()
        children = await reader.get_children("/many")
        assert sorted(children) == sorted(r.rsplit("/", 1)[1] for r in results)
        assert (await reader.get("/many/n137"))[0] == b"137"

    run(scenario)


def test_cancelled_writes_leave_the_member_consistent(shared_cluster, amembers) -> None:
    """Cancelling awaiting tasks abandons the waits: some of those writes
    commit anyway, none is half-applied, and the member keeps working."""

    async def scenario() -> None:
        member = amembers[0]
        await member.create("/cancel/node", b"0", makepath=True)
        tasks = [asyncio.create_task(member.set("/cancel/node", b"%d" % i)) for i in range(200)]
        await asyncio.sleep(0)  # every task has proposed its write
        # (A task whose write settled already cannot be cancelled any more.)
        requested = sum(task.cancel() for task in tasks[::2])
        assert requested > 50
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        cancelled = [o for o in outcomes if isinstance(o, asyncio.CancelledError)]
        assert len(cancelled) == requested
        assert all(isinstance(o, (coord.ZnodeStat, asyncio.CancelledError)) for o in outcomes)
        # A task cancelled before it ever ran proposes nothing.
        never = asyncio.create_task(member.create("/cancel/never"))
        never.cancel()
        with pytest.raises(asyncio.CancelledError):
            await never
        final = await member.set("/cancel/node", b"final")
        assert 101 <= final.version <= 201
        await eventually(lambda: shared_cluster.members[0].status().requests_in_flight == 0, what="no requests")
        assert await member.exists("/cancel/never") is None
        for other in amembers[1:]:
            await other.sync()
            data, stat = await other.get("/cancel/node")
            assert (data, stat.version) == (b"final", final.version)

    run(scenario)


def test_coroutine_watch_and_listener_run_on_the_loop(amembers) -> None:
    async def scenario() -> None:
        member, writer = amembers[0], amembers[1]
        loop_thread = threading.current_thread()
        seen: list[tuple[str, Any, bool]] = []
        done = asyncio.Event()

        async def first(event: coord.WatchedEvent) -> None:
            seen.append(("first", event.type, threading.current_thread() is loop_thread))

        async def second(event: coord.WatchedEvent) -> None:
            seen.append(("second", event.type, threading.current_thread() is loop_thread))
            done.set()

        assert await member.exists("/cbw/node", watch=first) is None
        assert await member.exists("/cbw/node", watch=first) is None  # the same watch once, as kazoo
        assert await member.exists("/cbw/node", watch=second) is None
        await writer.create("/cbw/node", makepath=True)
        await asyncio.wait_for(done.wait(), 10)
        # Callbacks are scheduled in registration order, so "first" ran already.
        assert seen == [("first", coord.EventType.CREATED, True), ("second", coord.EventType.CREATED, True)]

        async def listener(state: str) -> None: ...

        member.add_listener(listener)
        member.remove_listener(listener)  # the same (wrapped) listener is found again
        with pytest.raises(ValueError):
            member.remove_listener(listener)
        with pytest.raises(TypeError):
            member.add_listener(42)  # type: ignore[arg-type]

    run(scenario)


def test_from_sync_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match="coord.Coordinator"):
        AsyncCoordinator.from_sync(object())  # type: ignore[arg-type]


def test_own_members_with_async_with_and_a_tiny_in_flight_cap() -> None:
    """AsyncCoordinator built from the constructor's parameters: ``async
    with`` starts and stops it; with max_in_flight=2 a burst of 100 writes
    queues on the loop instead of blocking it; stop ends watch iterators."""
    addresses = [f"127.0.0.1:{port}" for port in free_ports(3)]

    async def scenario() -> None:
        members = [
            AsyncCoordinator(address, peers=addresses, session_timeout=5.0, max_in_flight=2) for address in addresses
        ]
        try:
            await asyncio.gather(*(m.start(timeout=20) for m in members))
            first = members[0]
            assert first.connected and first.session_id != 0 and first.state == coord.SessionState.CONNECTED
            assert (await first.status()).session_id == first.session_id
            ticks = 0

            async def heartbeat() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            beating = asyncio.create_task(heartbeat())
            results = await asyncio.gather(*(first.create(f"/burst-{i}") for i in range(100)))
            beating.cancel()
            assert results == [f"/burst-{i}" for i in range(100)]
            assert ticks > 10  # the loop kept running while writes waited for slots
            iterator = members[1].watch_data("/burst-7")
            assert (await iterator.__anext__())[0] == b""
            pending = asyncio.create_task(iterator.__anext__())
            await asyncio.sleep(0)
            await members[1].stop()
            with pytest.raises(StopAsyncIteration):
                await pending
        finally:
            await asyncio.gather(*(m.stop() for m in members))

    run(scenario)
