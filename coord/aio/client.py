"""``AsyncCoordinator``: the asyncio twin of ``coord.Coordinator``.

Same method names, arguments, return values and exceptions as the sync
client (as httpx's ``AsyncClient`` mirrors ``Client``), each awaitable.
Nothing here blocks the event loop:

* reads are answered by the local replica, in microseconds, so they are
  served directly on the loop (no thread hop costs more than the read);
* writes are proposed on the loop (proposing only queues the entry) and the
  member's ``CoordFuture`` is awaited through ``asyncio.wrap_future``; its
  hand-off runs on the member's callback thread, so a task resumes after
  the watch events the same write fired have been queued;
* calls that block by nature (``start``, ``stop``, recursive ``delete``)
  run on a worker thread.

Cancellation: cancelling a task that awaits a write abandons the wait, not
the write. The request was already handed to Raft, so it may still commit
(exactly as a kazoo request whose caller stopped waiting); the member is
left consistent either way, and reading the node tells which happened.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from .. import ops, paths
from ..acl import ACL
from ..client import Coordinator, _check_flags
from ..errors import NodeExistsError, NoNodeError, UnknownOutcomeError
from ..member import MemberStatus, check_timeout
from ..transaction import Transaction
from ..types import ZnodeStat
from . import _bridge
from .recipes import AsyncRecipeBinding
from .watches import ChildrenWatchIterator, DataWatchIterator, PersistentWatchIterator, _WatchIterator

#: Extra seconds past a request's own deadline before an await gives up on a
#: member that never settled the request (the sync client's outer bound).
_OUTER_BOUND_S = 10.0


class AsyncTransaction:
    """The asyncio twin of ``coord.Transaction``: ops are collected (and
    validated) synchronously, ``await commit()`` applies them atomically.
    ``async with member.transaction() as txn:`` commits on a clean exit."""

    def __init__(self, client: AsyncCoordinator, transaction: Transaction) -> None:
        self._client = client
        self._transaction = transaction

    @property
    def committed(self) -> bool:
        """Whether ``commit()`` was called (a transaction commits once)."""
        return self._transaction.committed

    def create(
        self, path: str, value: bytes = b"", acl: object = None, ephemeral: bool = False, sequence: bool = False
    ) -> None:
        """Add a create; validated now (see ``coord.Transaction.create``)."""
        self._transaction.create(path, value, acl, ephemeral, sequence)

    def delete(self, path: str, version: int = -1) -> None:
        """Add a delete; validated now (see ``coord.Transaction.delete``)."""
        self._transaction.delete(path, version)

    def set_data(self, path: str, value: bytes, version: int = -1) -> None:
        """Add a set; validated now (see ``coord.Transaction.set_data``)."""
        self._transaction.set_data(path, value, version)

    def check(self, path: str, version: int) -> None:
        """Add a version check; validated now (see ``coord.Transaction.check``)."""
        self._transaction.check(path, version)

    async def commit(self, timeout: float | None = None) -> list[Any]:
        """Commit; the per-op results (exceptions in place of failed ops;
        nothing is applied unless everything is)."""
        return await self._client._settle(self._transaction.commit_async(timeout), timeout)  # type: ignore[no-any-return]

    async def __aenter__(self) -> AsyncTransaction:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            await self.commit()


class AsyncCoordinator:
    """One coord member driven from asyncio; see ``coord.Coordinator`` for
    the parameters (identical) and the semantics of every call.

    ``AsyncCoordinator.from_sync(member)`` wraps an existing
    ``Coordinator`` instead, so sync and async code can share one member.
    ``async with AsyncCoordinator(...) as member:`` starts and stops it.
    """

    def __init__(self, address: str, peers: Sequence[str] = (), **options: Any) -> None:
        # The options are forwarded unchanged, so the two constructors can
        # never drift apart (the sync one validates them).
        coordinator = Coordinator(address, peers, **options)
        self._bind(coordinator, options.get("max_in_flight", 1000))

    @classmethod
    def from_sync(cls, coordinator: Coordinator) -> AsyncCoordinator:
        """An async facade over an existing (started or not) ``Coordinator``.
        Both can be used side by side; they are the same member."""
        if not isinstance(coordinator, Coordinator):
            raise TypeError(f"from_sync needs a coord.Coordinator, got {type(coordinator).__name__}")
        self = cls.__new__(cls)
        # Async writes queue on the loop before they could block on a slot.
        self._bind(coordinator, coordinator.max_in_flight)
        return self

    def _bind(self, coordinator: Coordinator, max_in_flight: int) -> None:
        self._sync = coordinator
        # Proposing a write takes one of the member's in-flight slots and
        # would block the thread while none is free; async writes wait for
        # this loop-side gate instead (created lazily: it binds to a loop).
        self._max_in_flight = max(1, max_in_flight)
        self._gate: asyncio.Semaphore | None = None
        self._gate_loop: asyncio.AbstractEventLoop | None = None
        self._iterators: weakref.WeakSet[_WatchIterator | PersistentWatchIterator] = weakref.WeakSet()

    # ------------------------------------------------------------------ identity and lifecycle

    @property
    def coordinator(self) -> Coordinator:
        """The sync ``Coordinator`` this facade drives (the same member)."""
        return self._sync

    @property
    def address(self) -> str:
        """This member's Raft address (``"host:port"``)."""
        return self._sync.address

    @property
    def peers(self) -> tuple[str, ...]:
        """The other members' addresses, as configured."""
        return tuple(self._sync.peers)

    @property
    def data_dir(self) -> str | None:
        """The Raft journal and snapshot directory (None: nothing on disk)."""
        return self._sync.data_dir

    @property
    def session_timeout(self) -> float:
        """Seconds after which the leader expires a silent member's session."""
        return self._sync.session_timeout

    @property
    def request_timeout(self) -> float:
        """Default deadline of every write, in seconds."""
        return self._sync.request_timeout

    @property
    def max_data_bytes(self) -> int:
        """The largest znode value accepted, in bytes."""
        return self._sync.max_data_bytes

    async def start(self, timeout: float = 15.0) -> None:
        """Join the cluster and open the session (on a worker thread).

        If the awaiting task is cancelled, the start carries on in the
        background; ``stop()`` it afterwards if it is not wanted.

        :raises NotReadyError: no leader/quorum within ``timeout``.
        """
        await _bridge.run_blocking(self._sync.start, timeout, name=f"coord-aio-start-{self.address}")

    async def stop(self) -> None:
        """Close the session and leave (on a worker thread). Open watch
        iterators of this facade end (``StopAsyncIteration``)."""
        for iterator in list(self._iterators):
            iterator._finish()
        # Shielded: a cancelled caller must not leave a half-stopped member
        # behind without anyone finishing the job.
        await asyncio.shield(_bridge.run_blocking(self._sync.stop, name=f"coord-aio-stop-{self.address}"))

    async def __aenter__(self) -> AsyncCoordinator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def session_id(self) -> int:
        """This member's current session id (0 before start)."""
        return self._sync.session_id

    @property
    def state(self) -> str:
        """``SessionState`` of this member's session."""
        return self._sync.state

    @property
    def connected(self) -> bool:
        """True while this member's session is CONNECTED (kazoo's ``connected``)."""
        return self._sync.connected

    def add_listener(self, listener: Callable[[str], Any]) -> None:
        """Call ``listener(state)`` on CONNECTED / SUSPENDED / LOST changes.

        A plain function runs on the member's callback thread (as with the
        sync client); a coroutine function is scheduled on the running loop.
        Registration does no I/O, so this is a plain method.
        """
        self._sync.add_listener(_bridge.adapt_callback(listener))

    def remove_listener(self, listener: Callable[[str], Any]) -> None:
        """Stop calling ``listener`` (the one given to ``add_listener``)."""
        self._sync.remove_listener(_bridge.adapt_callback(listener))

    async def status(self) -> MemberStatus:
        """This member's role, leader, term, applied zxid and session."""
        return self._sync.status()

    async def metrics(self) -> dict[str, int | float | str]:
        """ZooKeeper ``mntr``-style metrics of this member (``Coordinator.metrics``)."""
        return self._sync.metrics()

    # ------------------------------------------------------------------ reads (local replica, on the loop)

    async def exists(self, path: str, watch: Callable[..., Any] | None = None) -> ZnodeStat | None:
        """The node's Stat, or None. ``watch`` (a function or a coroutine
        function) fires on its creation, data change or deletion."""
        return self._sync.exists(path, _bridge.adapt_callback(watch))

    async def get(self, path: str, watch: Callable[..., Any] | None = None) -> tuple[bytes, ZnodeStat]:
        """The node's value and Stat. :raises NoNodeError: it does not exist."""
        return self._sync.get(path, _bridge.adapt_callback(watch))

    async def get_children(
        self, path: str, watch: Callable[..., Any] | None = None, include_data: bool = False
    ) -> list[str] | tuple[list[str], ZnodeStat]:
        """The node's sorted child names (with ``include_data``, also its Stat)."""
        return self._sync.get_children(path, _bridge.adapt_callback(watch), include_data)

    async def get_ephemerals(self, prefix: str = "/") -> list[str]:
        """This member's session's ephemeral paths starting with ``prefix``."""
        return self._sync.get_ephemerals(prefix)

    async def get_all_children_number(self, path: str) -> int:
        """How many nodes are below ``path``, at any depth."""
        return self._sync.get_all_children_number(path)

    # ------------------------------------------------------------------ writes (through the log)

    def _loop_gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate_loop is not loop:
            self._gate = asyncio.Semaphore(self._max_in_flight)
            self._gate_loop = loop
        return self._gate

    async def _settle(self, future: concurrent.futures.Future[Any], timeout: float | None) -> Any:
        """Await a member future from the loop, with the sync client's outer
        bound against a member that never settles it."""
        if future.done():
            return future.result()
        limit = (self._sync.request_timeout if timeout is None else timeout) + _OUTER_BOUND_S
        waiter = asyncio.wrap_future(future)
        try:
            async with asyncio.timeout(limit) as scope:
                return await waiter
        except TimeoutError:
            if scope.expired():
                raise UnknownOutcomeError("no outcome was reported for the request") from None
            raise

    async def _write(self, submit: Callable[[], concurrent.futures.Future[Any]], timeout: float | None) -> Any:
        """Propose (bounded by the loop-side gate) and await the outcome."""
        check_timeout(timeout)
        async with self._loop_gate():
            return await self._settle(submit(), timeout)

    async def create(
        self,
        path: str,
        value: bytes = b"",
        acl: object = None,
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
        include_data: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """Create a node; returns its path (``(path, ZnodeStat)`` with
        ``include_data``). ``makepath`` creates missing ancestors."""
        _check_flags(makepath=makepath)
        acl = acl or self._sync.default_acl  # kazoo's rule, as the sync create

        def attempt() -> concurrent.futures.Future[Any]:
            return self._sync.create_async(
                path, value, acl, ephemeral, sequence, include_data=include_data, timeout=timeout
            )

        try:
            return await self._write(attempt, timeout)
        except NoNodeError:
            if not makepath:
                raise
        await self.ensure_path(paths.parent_of(path), acl)
        return await self._write(attempt, timeout)

    async def ensure_path(self, path: str, acl: object = None) -> str | bool:
        """Create ``path`` and any missing ancestors (with ``acl``); like
        kazoo, returns the path if this call created it, else True."""
        path = paths.validate_path(path)
        acl = acl or self._sync.default_acl
        current = ""
        result: str | bool = True
        for name in path.strip("/").split("/") if path != "/" else []:
            current = f"{current}/{name}"
            result = True
            if self._sync.exists(current) is not None:
                continue
            with contextlib.suppress(NodeExistsError):  # created concurrently: fine
                result = await self.create(current, acl=acl)
        return result

    async def set(self, path: str, value: bytes, version: int = -1, timeout: float | None = None) -> ZnodeStat:
        """Replace the node's value if ``version`` matches (-1: any); the new Stat."""
        return await self._write(lambda: self._sync.set_async(path, value, version, timeout), timeout)  # type: ignore[no-any-return]

    async def delete(
        self, path: str, version: int = -1, recursive: bool = False, timeout: float | None = None
    ) -> bool:
        """Delete the node if ``version`` matches; with ``recursive`` the
        whole subtree (on a worker thread: it takes several round trips, and
        if the awaiting task is cancelled it still runs to completion)."""
        _check_flags(recursive=recursive)
        if not recursive:
            return await self._write(lambda: self._sync.delete_async(path, version, timeout), timeout)  # type: ignore[no-any-return]
        # Argument errors raise here, before any thread exists.
        paths.validate_path(path)
        ops.delete_op(path, version)
        check_timeout(timeout)
        call = asyncio.shield(
            _bridge.run_blocking(self._sync.delete, path, version, True, timeout, name="coord-aio-delete")
        )
        return await call  # type: ignore[no-any-return]

    async def sync(self, path: str = "/", timeout: float | None = None) -> str:
        """Wait until a no-op proposed now is applied here: reads then see
        every write committed before this call."""
        return await self._write(lambda: self._sync.sync_async(path, timeout), timeout)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ ACLs and authentication

    async def get_acls(self, path: str) -> tuple[list[ACL], ZnodeStat]:
        """The node's ACL and Stat (see ``Coordinator.get_acls``)."""
        return self._sync.get_acls(path)

    async def set_acls(
        self, path: str, acls: Sequence[Any], version: int = -1, timeout: float | None = None
    ) -> ZnodeStat:
        """Replace the node's ACL if its aversion matches; the new Stat."""
        return await self._write(lambda: self._sync.set_acls_async(path, acls, version, timeout), timeout)  # type: ignore[no-any-return]

    async def add_auth(self, scheme: str, credential: str, timeout: float | None = None) -> bool:
        """Authenticate this member's session (see ``Coordinator.add_auth``)."""
        return await self._write(lambda: self._sync.add_auth_async(scheme, credential, timeout), timeout)  # type: ignore[no-any-return]

    def transaction(self) -> AsyncTransaction:
        """An all-or-nothing transaction builder; ``await txn.commit()``."""
        return AsyncTransaction(self, self._sync.transaction())

    # ------------------------------------------------------------------ watch iterators

    def watch_data(self, path: str) -> DataWatchIterator:
        """``async for data, stat, event in member.watch_data(path):`` -- the
        node's value now and after every change (``(None, None, event)``
        while it does not exist), like ``DataWatch``. Intermediate values
        may be skipped under a burst, the latest is always delivered."""
        iterator = DataWatchIterator(self._sync, path)
        self._iterators.add(iterator)
        return iterator

    def watch_children(self, path: str) -> ChildrenWatchIterator:
        """``async for children in member.watch_children(path):`` -- the
        sorted child names now and after every change, like
        ``ChildrenWatch``; ends when the node is deleted.

        :raises NoNodeError: (on the first ``__anext__``) the node does not exist.
        """
        iterator = ChildrenWatchIterator(self._sync, path)
        self._iterators.add(iterator)
        return iterator

    def watch(self, path: str, recursive: bool = False, max_queued: int | None = None) -> PersistentWatchIterator:
        """``async for event in member.watch(path, recursive=False):`` --
        every committed change of ``path`` (or, recursive, of its subtree)
        as a ``WatchedEvent``, in commit order, through a persistent watch
        registered by this call (call it from a coroutine). A consumer
        ``max_queued`` events behind (default: the member's
        ``max_watch_queue``) gets a final ``WATCH_OVERFLOW`` event and the
        iteration ends, the sync side's overflow policy.
        """
        _check_flags(recursive=recursive)
        if max_queued is None:
            max_queued = self._watch_queue_bound()
        iterator = PersistentWatchIterator(self._sync, path, recursive, max_queued)
        self._iterators.add(iterator)
        return iterator

    def _watch_queue_bound(self) -> int:
        return self._sync.max_watch_queue

    async def add_watch(self, path: str, func: Callable[..., Any], recursive: bool = False) -> None:
        """``Coordinator.add_watch``: ``func(event)`` for every committed
        change. A coroutine function is scheduled on the running loop per
        event (tasks start in commit order but may interleave at their
        awaits: use ``watch()`` for strictly ordered async consumption)."""
        self._sync.add_watch(path, _bridge.adapt_callback(func), recursive)

    async def remove_watch(self, path: str, func: Callable[..., Any]) -> bool:
        """``Coordinator.remove_watch``: False if ``func`` watched nothing there."""
        return self._sync.remove_watch(path, _bridge.adapt_callback(func))

    # ------------------------------------------------------------------ recipes

    def DataWatch(self, path: str, func: Callable[..., Any] | None = None, *args: Any, **kwargs: Any) -> Any:  # noqa: N802
        """The sync ``DataWatch`` recipe; a coroutine function is scheduled
        on the running loop (its return value cannot stop the watch: use
        ``watch_data`` for an async consumer that stops)."""
        from ..recipes import DataWatch

        watch = DataWatch(self._sync, path, None, *args, **kwargs)
        if func is None:
            return lambda f: watch(_bridge.adapt_callback(f))
        watch(_bridge.adapt_callback(func))
        return watch

    def ChildrenWatch(self, path: str, func: Callable[..., Any] | None = None, *args: Any, **kwargs: Any) -> Any:  # noqa: N802
        """The sync ``ChildrenWatch`` recipe (see ``DataWatch`` about coroutine functions)."""
        from ..recipes import ChildrenWatch

        watch = ChildrenWatch(self._sync, path, None, *args, **kwargs)
        if func is None:
            return lambda f: watch(_bridge.adapt_callback(f))
        watch(_bridge.adapt_callback(func))
        return watch

    # Async adapters of the sync recipes, bound to this member (kazoo style):
    # ``async with member.Lock(path):`` -- see ``coord.aio.recipes``.
    Lock = AsyncRecipeBinding()
    ReadLock = AsyncRecipeBinding()
    WriteLock = AsyncRecipeBinding()
    Semaphore = AsyncRecipeBinding()
    Election = AsyncRecipeBinding()
    Barrier = AsyncRecipeBinding()
    DoubleBarrier = AsyncRecipeBinding()
    Queue = AsyncRecipeBinding()
    LockingQueue = AsyncRecipeBinding()
    Counter = AsyncRecipeBinding()
    Party = AsyncRecipeBinding()
    ShallowParty = AsyncRecipeBinding()
    SetPartitioner = AsyncRecipeBinding()
    NonBlockingLease = AsyncRecipeBinding()
    MultiNonBlockingLease = AsyncRecipeBinding()
    PersistentEphemeralNode = AsyncRecipeBinding()


__all__ = ["AsyncCoordinator", "AsyncTransaction"]
