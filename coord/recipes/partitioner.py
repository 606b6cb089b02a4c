"""kazoo's ``SetPartitioner``: divide a set of items among the members of a
party, each item owned by exactly one member at a time.

Layout, as kazoo's: the party is a ``ShallowParty`` under ``<path>/party``
and each item owned is held with a ``Lock`` on ``<path>/locks/<item>``.
The state machine is kazoo's (see ``SetPartitioner``). Built only on the
public client API and the ``Lock`` recipe (``client.Lock``).

Threads: the party watch and the lock acquisition run on a worker thread of
the partitioner's own (one per allocation round), never on the member's
callback thread; watch and session callbacks only flip state.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import CoordError, LockTimeout
from ..types import SessionState, WatchedEvent

if TYPE_CHECKING:
    from ..client import Coordinator

logger = logging.getLogger(__name__)

PartitionFunc = Callable[[str, list[str], Any], list[Any]]


class PartitionState:
    """High-level states of a ``SetPartitioner`` (kazoo's values).

    ALLOCATING: the set is being divided; ACQUIRED: this member holds its
    partition; RELEASE: the party changed (or the session wobbled) and the
    partition must be released with ``release_set()``; FAILURE: the
    session was lost, or ``finish()`` was called: the partitioner is done.
    """

    ALLOCATING = "ALLOCATING"
    ACQUIRED = "ACQUIRED"
    RELEASE = "RELEASE"
    FAILURE = "FAILURE"


class _ChildrenChanged:
    """A one-shot child watch that can also run callbacks linked after it
    was armed (kazoo's async result of ``PatientChildrenWatch``)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def __call__(self, event: WatchedEvent) -> None:
        with self._lock:
            self.event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def link(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if not self.event.is_set():
                self._callbacks.append(callback)
                return
        callback()


class SetPartitioner:
    """Partition ``set`` among the members of the party at ``path``.

    ::

        qp = member.SetPartitioner("/work_queues", set=("q-1", "q-2", "q-3"))
        while True:
            if qp.failed:
                raise RuntimeError("lost or unable to acquire the partition")
            elif qp.release:
                qp.release_set()
            elif qp.acquired:
                for item in qp:
                    ...                       # work on the items owned
            elif qp.allocating:
                qp.wait_for_acquire()

    State transitions (kazoo's): ALLOCATING -> ACQUIRED once the party has
    been stable for ``time_boundary`` seconds and this member locked its
    items; ACQUIRED -> RELEASE when the party changes (or the session is
    SUSPENDED / reconnects); RELEASE -> ALLOCATING on ``release_set()``;
    any -> FAILURE when the session is LOST or on ``finish()``. A failed
    partitioner is not reusable: create a new one.

    :param client: the member to use.
    :param path: the partitioner's path.
    :param set: the items to divide (each item's ``str`` is its lock name).
    :param partition_func: ``func(identifier, members, set) -> items`` for
        this member; by default every n-th item of the sorted set.
    :param identifier: this member's name in the party (default: host
        name and pid; give distinct ones to partitioners of one process).
    :param time_boundary: seconds the party must stay unchanged before the
        set is divided.
    :param max_reaction_time: how long a lock attempt waits before checking
        whether the party changed meanwhile.
    :param state_change_event: an Event set on every state change.
    """

    def __init__(
        self,
        client: Coordinator,
        path: str,
        set: Iterable[Any],  # noqa: A002 - kazoo's argument name
        partition_func: PartitionFunc | None = None,
        identifier: str | None = None,
        time_boundary: float = 30,
        max_reaction_time: float = 1,
        state_change_event: threading.Event | None = None,
    ) -> None:
        if isinstance(set, (str, bytes)) or not isinstance(set, Iterable):
            raise TypeError(f"set must be an iterable of items, got {type(set).__name__}")
        if partition_func is not None and not callable(partition_func):
            raise TypeError("partition_func must be callable or None")
        if identifier is not None and not isinstance(identifier, str):
            raise TypeError(f"identifier must be a str or None, got {type(identifier).__name__}")
        for name, value in (("time_boundary", time_boundary), ("max_reaction_time", max_reaction_time)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
        if time_boundary < 0:
            raise ValueError(f"time_boundary must not be negative, got {time_boundary!r}")
        if max_reaction_time <= 0:
            raise ValueError(f"max_reaction_time must be above 0, got {max_reaction_time!r}")
        # Differentiates two occurrences of the same state in time.
        self.state_id = 0
        self.state = PartitionState.ALLOCATING
        self.state_change_event = state_change_event or threading.Event()
        self._client = client
        self._path = path
        self._set = set
        self._partition_set: list[Any] = []
        self._partition_func: PartitionFunc = partition_func or self._partitioner
        self._identifier = identifier or f"{socket.getfqdn()}-{os.getpid()}"
        self._locks: list[Any] = []
        self._lock_path = f"{path}/locks"
        self._party_path = f"{path}/party"
        self._time_boundary = float(time_boundary)
        self._max_reaction_time = float(max_reaction_time)
        self._acquire_event = threading.Event()
        self._state_change = threading.RLock()

        client.ensure_path(path)
        client.ensure_path(self._lock_path)
        client.ensure_path(self._party_path)
        self._party = client.ShallowParty(self._party_path, identifier=self._identifier)
        self._party.join()
        client.add_listener(self._establish_sessionwatch)
        self._child_watching(self._allocate_transition)

    # ------------------------------------------------------------------ public API

    def __iter__(self) -> Iterator[Any]:
        """The items of this member's partition."""
        yield from list(self._partition_set)

    @property
    def failed(self) -> bool:
        """In ``PartitionState.FAILURE``."""
        return self.state == PartitionState.FAILURE

    @property
    def release(self) -> bool:
        """In ``PartitionState.RELEASE``."""
        return self.state == PartitionState.RELEASE

    @property
    def allocating(self) -> bool:
        """In ``PartitionState.ALLOCATING``."""
        return self.state == PartitionState.ALLOCATING

    @property
    def acquired(self) -> bool:
        """In ``PartitionState.ACQUIRED``."""
        return self.state == PartitionState.ACQUIRED

    def wait_for_acquire(self, timeout: float | None = 30) -> bool:
        """Wait until the set was divided and this member's part acquired;
        returns whether it was (kazoo returns None; a bool is truthier)."""
        return self._acquire_event.wait(timeout)

    def release_set(self) -> None:
        """Release this member's items and start a new allocation round."""
        self._release_locks()
        if self._locks:
            # Some locks could not be released: give up rather than risk a
            # double assignment.
            self._fail_out()
            return
        with self._state_change:
            if self.failed:
                return
            self._set_state(PartitionState.ALLOCATING)
        self._child_watching(self._allocate_transition)

    def finish(self) -> None:
        """Release the items and leave the party (the partitioner is done)."""
        self._release_locks()
        self._fail_out()

    # ------------------------------------------------------------------ state machine

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_id += 1
        self.state_change_event.set()

    def _fail_out(self) -> None:
        with self._state_change:
            self._set_state(PartitionState.FAILURE)
        with contextlib.suppress(ValueError):  # already removed
            self._client.remove_listener(self._establish_sessionwatch)
        if self._party.participating:
            try:
                self._party.leave()
            except CoordError:
                logger.warning("partitioner %s could not leave its party", self._path, exc_info=True)

    def _establish_sessionwatch(self, state: str) -> None:
        """Session listener (callback thread): LOST fails the partitioner,
        any other change asks for a release, as kazoo does."""
        with self._state_change:
            if self.failed:
                return
            if state == SessionState.LOST:
                threading.Thread(target=self._fail_out, name="coord-partitioner-failout", daemon=True).start()
            elif not self.release:
                self._set_state(PartitionState.RELEASE)

    def _allocate_transition(self, children: list[str], change: _ChildrenChanged) -> None:
        """Runs on the worker thread once the party was stable."""
        children_changed = threading.Event()

        def updated() -> None:
            with self._state_change:
                children_changed.set()
                if self.acquired:
                    self._set_state(PartitionState.RELEASE)

        with self._state_change:
            if not self.allocating:
                return  # the session wobbled while we waited
            state_id = self.state_id
            change.link(updated)

        def abort_if_needed() -> bool:
            if self.state_id == state_id:
                if children_changed.is_set():
                    self._abort_lock_acquisition()  # the party changed: start over
                    return True
                return False
            if self.allocating or self.acquired:
                # The session wobbled and the user started another round:
                # drop this one to avoid racing it for the locks.
                with self._state_change:
                    self._set_state(PartitionState.RELEASE)
            return True

        try:
            partition_set = list(self._partition_func(self._identifier, list(self._party), self._set))
        except Exception:
            logger.exception("partitioner %s could not divide its set", self._path)
            self._fail_out()
            return
        for item in partition_set:
            lock = self._client.Lock(f"{self._lock_path}/{item}")
            while True:
                try:
                    # Never without a timeout: a party change while we wait
                    # could otherwise deadlock two members on each other's items.
                    lock.acquire(timeout=self._max_reaction_time)
                except LockTimeout:
                    if abort_if_needed():
                        return
                except CoordError:
                    logger.warning("partitioner %s could not lock %s", self._path, item, exc_info=True)
                    self.finish()
                    return
                else:
                    break
            self._locks.append(lock)
            if abort_if_needed():
                return
        with self._state_change:
            if self.state_id == state_id and not children_changed.is_set():
                self._partition_set = partition_set
                self._set_state(PartitionState.ACQUIRED)
                self._acquire_event.set()
                return
        if not abort_if_needed():
            self._fail_out()  # cannot happen: a logic error; fail safe

    def _release_locks(self) -> None:
        self._acquire_event.clear()
        for lock in self._locks[:]:
            try:
                lock.release()
            except CoordError:
                logger.warning("partitioner %s could not release %s", self._path, lock.path, exc_info=True)
            else:
                self._locks.remove(lock)

    def _abort_lock_acquisition(self) -> None:
        self._release_locks()
        if self._locks:
            self._fail_out()
            return
        self._child_watching(self._allocate_transition)

    def _child_watching(self, func: Callable[[list[str], _ChildrenChanged], None]) -> None:
        """Start a worker thread that waits until the party's children were
        unchanged for ``time_boundary`` seconds, then calls ``func(children,
        change)`` where ``change`` fires on the next party change (kazoo's
        ``PatientChildrenWatch``)."""

        def run() -> None:
            try:
                settled = self._wait_for_stable_party()
            except CoordError:
                logger.warning("partitioner %s lost track of its party", self._path, exc_info=True)
                self._fail_out()
                return
            if settled is not None:
                func(*settled)

        threading.Thread(target=run, name=f"coord-partitioner-{self._path}", daemon=True).start()

    def _wait_for_stable_party(self) -> tuple[list[str], _ChildrenChanged] | None:
        while True:
            if self.failed:
                return None
            change = _ChildrenChanged()
            children = self._client.get_children(self._party_path, watch=change)
            assert isinstance(children, list)
            deadline = time.monotonic() + self._time_boundary
            while not change.event.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return children, change
                if self.failed:
                    return None
                change.event.wait(min(remaining, 0.1))

    @staticmethod
    def _partitioner(identifier: str, members: list[str], partitions: Any) -> list[Any]:
        """Every n-th item of the sorted set, starting at this member's rank."""
        all_partitions = sorted(partitions)
        workers = sorted(members)
        i = workers.index(identifier)
        return all_partitions[i :: len(workers)]


__all__ = ["PartitionState", "SetPartitioner"]
