"""kazoo's distributed queues: ``Queue`` (an entry is removed when taken)
and ``LockingQueue`` (an entry is locked when taken and removed when
consumed, so a consumer that dies gives it back).

Layout, as kazoo's:

* ``Queue``: sequential children ``<path>/entry-<priority:03d>-<seq>``;
* ``LockingQueue``: entries ``<path>/entries/entry-<priority:03d>-<seq>``
  and, for each taken entry, an ephemeral ``<path>/taken/<entry name>``
  holding the taker's random id.

Lower priority values come out first; equal priorities come out in put
order (the sequence suffix). Built only on the public client API.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from typing import TYPE_CHECKING

from ..errors import NodeExistsError, NoNodeError, RolledBackError, RuntimeInconsistency
from ..types import EventType, WatchedEvent

if TYPE_CHECKING:
    from ..client import Coordinator
    from ..transaction import Transaction


def _check_priority(priority: object) -> None:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, got {type(priority).__name__}")
    if not 0 <= priority <= 999:
        raise ValueError(f"priority must be between 0 and 999, got {priority}")


def _check_value(value: object) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"value must be a byte string, got {type(value).__name__}")


def _commit(transaction: Transaction) -> None:
    """Commit; raise the error of the op that failed (nothing was applied)."""
    results = transaction.commit()
    failures = [r for r in results if isinstance(r, Exception)]
    for failure in failures:
        if not isinstance(failure, (RolledBackError, RuntimeInconsistency)):
            raise failure
    if failures:
        raise failures[0]


class BaseQueue:
    """What both queues share: the paths they need and their length."""

    def __init__(self, client: Coordinator, path: str) -> None:
        self.client = client
        self.path = path
        self._entries_path = path
        self.structure_paths: tuple[str, ...] = (path,)
        self.ensured_path = False

    def _check_put_arguments(self, value: object, priority: object = 100) -> None:
        _check_value(value)
        _check_priority(priority)

    def _ensure_paths(self) -> None:
        if not self.ensured_path:
            for path in self.structure_paths:
                self.client.ensure_path(path)
            self.ensured_path = True

    def __len__(self) -> int:
        self._ensure_paths()
        _, stat = self.client.get(self._entries_path)
        return stat.numChildren


class Queue(BaseQueue):
    """A distributed priority queue (kazoo's ``Queue``).

    Consumption is not reliable: an entry is deleted from the queue before
    the consumer processes it. Use ``LockingQueue`` when that matters.
    """

    prefix = "entry-"

    def __init__(self, client: Coordinator, path: str) -> None:
        super().__init__(client, path)
        self._children: list[str] = []

    def __len__(self) -> int:
        """The number of entries in the queue."""
        return super().__len__()

    def put(self, value: bytes, priority: int = 100) -> None:
        """Add ``value``; lower ``priority`` values (0..999) come out first."""
        self._check_put_arguments(value, priority)
        self._ensure_paths()
        self.client.create(f"{self.path}/{self.prefix}{priority:03d}-", value, sequence=True)

    def get(self) -> bytes | None:
        """Remove the first entry and return its value (None when empty)."""
        self._ensure_paths()
        while True:
            if not self._children:
                children = self.client.get_children(self.path)
                assert isinstance(children, list)
                self._children = sorted(children)
            if not self._children:
                return None
            name = self._children.pop(0)
            try:
                data, _ = self.client.get(f"{self.path}/{name}")
                self.client.delete(f"{self.path}/{name}")
            except NoNodeError:
                # Another consumer took it first: look at the queue again.
                self._children = []
                continue
            return data


class LockingQueue(BaseQueue):
    """A distributed priority queue with locked, reliable consumption
    (kazoo's ``LockingQueue``).

    ``get()`` locks the next free entry with an ephemeral ``taken`` node
    and returns its value; ``consume()`` then deletes the entry and its
    lock in one transaction, while ``release()`` gives it back. If the
    taker's session expires, its locks go and the entries become available
    again; ``holds_lock()`` tells a consumer whether it still has its lock.
    """

    lock = "/taken"
    entries = "/entries"
    entry = "entry"

    def __init__(self, client: Coordinator, path: str) -> None:
        super().__init__(client, path)
        self.id = uuid.uuid4().hex.encode()
        self.processing_element: tuple[str, bytes] | None = None
        self._lock_path = path + self.lock
        self._entries_path = path + self.entries
        self.structure_paths = (self._lock_path, self._entries_path)
        self._changed = threading.Event()

    def __len__(self) -> int:
        """The number of entries, including locked ones."""
        return super().__len__()

    def _entry_prefix(self, priority: int) -> str:
        return f"{self._entries_path}/{self.entry}-{priority:03d}-"

    def put(self, value: bytes, priority: int = 100) -> None:
        """Add ``value``; lower ``priority`` values (0..999) come out first."""
        self._check_put_arguments(value, priority)
        self._ensure_paths()
        self.client.create(self._entry_prefix(priority), value, sequence=True)

    def put_all(self, values: list[bytes], priority: int = 100) -> None:
        """Add all ``values`` in one transaction: all of them or none."""
        if not isinstance(values, list):
            raise TypeError(f"values must be a list of byte strings, got {type(values).__name__}")
        _check_priority(priority)
        for value in values:
            _check_value(value)
        self._ensure_paths()
        transaction = self.client.transaction()
        for value in values:
            transaction.create(self._entry_prefix(priority), value, sequence=True)
        _commit(transaction)

    def get(self, timeout: float | None = None) -> bytes | None:
        """Lock and return the next free entry, waiting up to ``timeout``
        seconds (None: forever) for one to appear.

        If an entry got earlier was neither consumed nor released, that
        entry is returned again.

        :returns: the entry's value, or None on timeout.
        """
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError(f"timeout must be a number of seconds or None, got {type(timeout).__name__}")
            if timeout < 0:
                raise ValueError(f"timeout must not be negative, got {timeout!r}")
        self._ensure_paths()
        if self.processing_element is not None:
            return self.processing_element[1]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._changed.clear()
            entries = self.client.get_children(self._entries_path, watch=self._on_change)
            taken = self.client.get_children(self._lock_path, watch=self._on_change)
            assert isinstance(entries, list) and isinstance(taken, list)
            busy = set(taken)
            for name in sorted(entries):
                if name in busy:
                    continue
                value = self._take(name)
                if value is not None:
                    self.processing_element = (name, value)
                    return value
            if deadline is None:
                self._changed.wait()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._changed.wait(remaining):
                    return None

    def _on_change(self, event: WatchedEvent) -> None:
        # Runs on the member's callback thread: only wake the waiting caller.
        if event.type in (EventType.CHILD, EventType.DELETED):
            self._changed.set()

    def _take(self, name: str) -> bytes | None:
        lock_path = f"{self._lock_path}/{name}"
        try:
            self.client.create(lock_path, self.id, ephemeral=True)
        except NodeExistsError:
            return None  # someone else locked it first
        try:
            value, _ = self.client.get(f"{self._entries_path}/{name}")
        except NoNodeError:
            # Consumed between our listing and our lock: drop the lock again.
            with contextlib.suppress(NoNodeError):
                self.client.delete(lock_path)
            return None
        return value

    def holds_lock(self) -> bool:
        """Whether this consumer still holds the lock on its current entry
        (read after a ``sync``, so it reflects the latest committed state)."""
        if self.processing_element is None:
            return False
        lock_path = f"{self._lock_path}/{self.processing_element[0]}"
        self.client.sync(lock_path)
        try:
            value, _ = self.client.get(lock_path)
        except NoNodeError:
            return False
        return value == self.id

    def consume(self) -> bool:
        """Delete the current entry and its lock; returns False when there
        is no current entry or its lock was lost."""
        if self.processing_element is None or not self.holds_lock():
            return False
        name = self.processing_element[0]
        transaction = self.client.transaction()
        transaction.delete(f"{self._entries_path}/{name}")
        transaction.delete(f"{self._lock_path}/{name}")
        _commit(transaction)
        self.processing_element = None
        return True

    def release(self) -> bool:
        """Unlock the current entry without consuming it (others may take
        it); returns False when there is no current entry or its lock was lost."""
        if self.processing_element is None or not self.holds_lock():
            return False
        name = self.processing_element[0]
        transaction = self.client.transaction()
        transaction.delete(f"{self._lock_path}/{name}")
        _commit(transaction)
        self.processing_element = None
        return True


__all__ = ["BaseQueue", "LockingQueue", "Queue"]
