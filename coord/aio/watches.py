"""Watches as async iterators: ``DataWatch`` / ``ChildrenWatch`` for asyncio.

Each iterator re-reads the node on the event loop (a local read, in
microseconds) and re-arms its one-shot watch in the same read, atomically
under the member's lock. The watch callback itself only flags the iterator
dirty and wakes it (through ``call_soon_threadsafe``); it never reads. So
nothing can fall between two reads: a change after a read fires the watch
that read armed, and the next read sees at least that change. Under a
burst, intermediate values are skipped (ZooKeeper's watch semantics), but
the iterator always converges to the latest value.

Closing (``aclose()``, leaving an ``async for`` with ``break`` inside
``async with``, or stopping the member through its ``AsyncCoordinator``)
ends the iteration. The one-shot watch the last read armed stays
registered in the member until the node next changes, and then fires into
nothing, exactly as a kazoo ``DataWatch`` that returned False.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import weakref
from typing import TYPE_CHECKING, Any

from .. import paths
from ..errors import CoordError, NoNodeError
from ..types import EventType, KeeperState, WatchedEvent, ZnodeStat
from . import _bridge

if TYPE_CHECKING:
    from ..client import Coordinator

logger = logging.getLogger(__name__)

_UNSET: Any = object()


class _WatchIterator:
    """Shared machinery: wake-up flag, loop binding, closing."""

    def __init__(self, client: Coordinator, path: str) -> None:
        self._client = client
        self._path = paths.validate_path(path)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._dirty = True  # the first __anext__ reads at once
        self._event: WatchedEvent | None = None
        self._closed = False

    @property
    def path(self) -> str:
        """The watched path."""
        return self._path

    def __aiter__(self) -> _WatchIterator:
        return self

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop iterating; a pending ``__anext__`` ends with StopAsyncIteration."""
        self._finish()

    def _finish(self) -> None:
        self._closed = True
        if self._wakeup is not None and self._loop is not None:
            # May be called from another loop's task or thread (member stop).
            _bridge.call_soon_threadsafe(self._loop, self._wakeup.set)

    def _on_watch(self, event: WatchedEvent) -> None:
        """The one-shot watch fired (member's callback thread)."""
        if self._loop is not None and not self._closed:
            _bridge.call_soon_threadsafe(self._loop, self._mark_dirty, event)

    def _mark_dirty(self, event: WatchedEvent) -> None:
        self._event = event  # coalesced: the latest trigger is reported
        self._dirty = True
        assert self._wakeup is not None
        self._wakeup.set()

    async def _next_trigger(self) -> WatchedEvent | None:
        """Wait until a re-read is due; the event that made it due."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._wakeup = asyncio.Event()
        elif self._loop is not loop:
            raise RuntimeError("a watch iterator is bound to the event loop that first iterated it")
        assert self._wakeup is not None
        while not self._dirty:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        if self._closed:
            raise StopAsyncIteration
        self._dirty = False
        event, self._event = self._event, None
        return event


class DataWatchIterator(_WatchIterator):
    """Yields ``(data, stat, event)``: the node's value and Stat now
    (``event`` None) and after each change; ``(None, None, event)`` while
    the node does not exist. Consecutive yields always differ in the node's
    existence or mzxid."""

    def __init__(self, client: Coordinator, path: str) -> None:
        super().__init__(client, path)
        self._last_mzxid: Any = _UNSET

    def __aiter__(self) -> DataWatchIterator:
        return self

    async def __aenter__(self) -> DataWatchIterator:
        return self

    def _read(self) -> tuple[bytes | None, ZnodeStat | None]:
        while True:
            try:
                return self._client.get(self._path, watch=self._on_watch)
            except NoNodeError:
                # Missing: arm an exists watch instead (it fires on creation).
                if self._client.exists(self._path, watch=self._on_watch) is None:
                    return None, None
                # Created in between: read it (the watch above is armed).

    async def __anext__(self) -> tuple[bytes | None, ZnodeStat | None, WatchedEvent | None]:
        while True:
            event = await self._next_trigger()
            data, stat = self._read()
            version = stat.mzxid if stat is not None else None
            if version != self._last_mzxid:
                self._last_mzxid = version
                return data, stat, event


class ChildrenWatchIterator(_WatchIterator):
    """Yields the node's sorted child names now and after each change of
    the list; ends when the node is deleted.

    :raises NoNodeError: from the first ``__anext__`` if the node does not exist.
    """

    def __init__(self, client: Coordinator, path: str) -> None:
        super().__init__(client, path)
        self._prior: list[str] | None = None

    def __aiter__(self) -> ChildrenWatchIterator:
        return self

    async def __aenter__(self) -> ChildrenWatchIterator:
        return self

    async def __anext__(self) -> list[str]:
        while True:
            await self._next_trigger()
            try:
                children = self._client.get_children(self._path, watch=self._on_watch)
            except NoNodeError:
                self._closed = True
                if self._prior is None:
                    raise
                raise StopAsyncIteration from None
            assert isinstance(children, list)
            if children != self._prior:
                self._prior = children
                return children


class PersistentWatchIterator:
    """Every committed change of a path (or subtree) as ``WatchedEvent``s,
    in commit order, from a persistent watch (``Coordinator.add_watch``).

    The watch is registered when the iterator is created, so every change
    applied after ``member.watch(...)`` returned is delivered. Events wait
    in a loop-side queue bounded like the sync side's: a consumer that
    falls ``max_queued`` events behind gets the events queued so far, then
    one final ``EventType.WATCH_OVERFLOW`` event, and the iteration ends
    (re-read the state, then watch again). A ``WATCH_OVERFLOW`` from the
    member's own queue ends it the same way. ``aclose()`` (or leaving
    ``async with``) removes the watch at once; so does garbage collection
    of an iterator that was never closed.
    """

    def __init__(self, client: Coordinator, path: str, recursive: bool, max_queued: int) -> None:
        if isinstance(max_queued, bool) or not isinstance(max_queued, int) or max_queued < 1:
            raise ValueError(f"max_queued must be an int >= 1, got {max_queued!r}")
        self._client = client
        self._path = paths.validate_path(path)
        self._loop = asyncio.get_running_loop()
        self._max_queued = max_queued
        self._queue: collections.deque[WatchedEvent] = collections.deque()
        self._wakeup = asyncio.Event()
        self._ending = False  # no more events are accepted (overflow, member's final event)
        self._closed = False
        # The callback must not keep the iterator alive (the finalizer below
        # removes the watch of an iterator that was dropped unclosed).
        ref = weakref.ref(self)
        loop = self._loop

        def deliver(event: WatchedEvent) -> None:  # a coord-watch thread, in commit order
            iterator = ref()
            if iterator is not None:
                _bridge.call_soon_threadsafe(loop, iterator._offer, event)

        self._callback = deliver
        client.add_watch(self._path, deliver, recursive)
        self._finalizer = weakref.finalize(self, _remove_quietly, client, self._path, deliver)

    @property
    def path(self) -> str:
        """The watched path."""
        return self._path

    def _offer(self, event: WatchedEvent) -> None:
        if self._ending or self._closed:
            return
        if event.type in (EventType.WATCH_OVERFLOW, EventType.PERSISTENT_WATCH_REMOVED):
            self._ending = True
            if event.type == EventType.WATCH_OVERFLOW:
                self._queue.append(event)
        elif len(self._queue) >= self._max_queued:
            logger.warning(
                "async persistent watch on %s fell %d events behind and was cancelled (WATCH_OVERFLOW)",
                self._path,
                self._max_queued,
            )
            self._ending = True
            self._queue.append(WatchedEvent(EventType.WATCH_OVERFLOW, KeeperState.CONNECTED, self._path))
            self._finalizer()
        else:
            self._queue.append(event)
        self._wakeup.set()

    def __aiter__(self) -> PersistentWatchIterator:
        return self

    async def __anext__(self) -> WatchedEvent:
        while not self._queue:
            if self._closed or self._ending:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        if self._closed:
            raise StopAsyncIteration
        return self._queue.popleft()

    async def aclose(self) -> None:
        """Remove the watch and end the iteration (queued events are dropped)."""
        self._finish()

    def _finish(self) -> None:
        self._closed = True
        self._queue.clear()
        self._finalizer()
        _bridge.call_soon_threadsafe(self._loop, self._wakeup.set)

    async def __aenter__(self) -> PersistentWatchIterator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _remove_quietly(client: Coordinator, path: str, callback: Any) -> None:
    with contextlib.suppress(CoordError):  # the member stopped: its watches are gone anyway
        client.remove_watch(path, callback)
