"""kazoo's locks: ``Lock``, ``ReadLock``, ``WriteLock`` and ``Semaphore``.

Built only on coord's public client API, with kazoo's names, arguments and
behaviour:

* A ``Lock`` is fair. Each acquire creates a sequential (by default
  ephemeral) contender node ``<path>/<uuid>__lock__<seq>`` holding the
  identifier; the contender with the lowest sequence number holds the lock.
  A waiting contender watches only its predecessor node (no polling, no
  herd) and wakes when it goes.
* ``ReadLock`` / ``WriteLock`` share a path: readers (``__rlock__`` nodes)
  wait only for writers queued before them, writers (``__lock__`` nodes)
  for everyone queued before them. ``Lock`` and ``WriteLock`` exclude each
  other on the same path.
* ``Semaphore`` grants up to ``max_leases`` leases (ephemeral nodes under
  ``path``); the count is stored in ``path`` and must agree between users.
  Lease creation is serialised by an internal ``Lock`` on ``path-__lock__``.

Re-entrancy (as kazoo): a lock object is not re-entrant. While it is held,
``acquire(blocking=False)`` returns False and a blocking ``acquire`` waits
until this object is released (by another thread) or its timeout passes
(then it returns False, it does not raise). Several threads may share one
lock object; they take it one at a time.

Session loss: an ephemeral contender or lease node belongs to the member's
session. When the session is LOST (expired by the cluster, or the member
was cut off for longer than its session timeout), the node is gone and
the next contender acquires, so ``is_acquired`` turns False (it compares
the node's owner session with the member's current, live session) and
``fencing_token`` becomes None. SUSPENDED means the member cannot reach a
quorum and does not know yet: ``is_acquired`` stays True, but a careful
holder should pause its critical section (or rely on fencing tokens, see
``coord.recipes.fencing``). A waiting acquire survives session loss: it
starts over with a new contender node in the member's new session. With
``acquire(ephemeral=False)`` the node outlives sessions and only
``release()`` frees the lock.

Fencing: every acquisition exposes ``fencing_token`` (the czxid of the
holder's own node; strictly increasing across holders, see
``coord.recipes.fencing``) and ``fenced_check()`` / ``fenced_transaction()``
to make a coord write conditional on still holding the lock.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from .. import paths
from ..errors import (
    CancelledError,
    ConnectionLoss,
    CoordError,
    LockTimeout,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    SessionExpiredError,
)
from ..types import SessionState, WatchedEvent, ZnodeStat
from .fencing import NotHeldError

if TYPE_CHECKING:
    from ..client import Coordinator
    from ..transaction import Transaction

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Errors after which an acquire step is simply tried again (kazoo's retry
#: policy): the cluster was briefly unreachable or the session was replaced.
_RETRYABLE = (ConnectionLoss, OperationTimeoutError, SessionExpiredError)

_SEQUENCE_RE = r"(-?\d{10})$"


class _Restart(Exception):
    """Our contender node vanished (session lost): start the acquire over."""


class _Deadline:
    """A monotonic deadline; ``None`` timeout means never."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        self._end = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end


def _check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, got {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"timeout must be >= 0 seconds, got {timeout!r}")
    return float(timeout)


def _check_recipe_path(path: object) -> str:
    path = paths.validate_path(path)
    if path == "/":
        raise ValueError("a recipe path must not be the root '/'")
    return path


def _identifier_bytes(identifier: object) -> bytes:
    # kazoo: str(identifier or "").encode("utf-8")
    if isinstance(identifier, bytes):
        return identifier
    return str(identifier or "").encode("utf-8")


def _retrying(deadline: _Deadline, attempt: Callable[[], T], on_retry: Callable[[], None] | None = None) -> T | None:
    """Run ``attempt`` until it returns, retrying retryable errors with
    backoff. Returns None once the deadline passed (kazoo's RetryFailedError)."""
    delay = 0.05
    while True:
        try:
            return attempt()
        except (*_RETRYABLE, _Restart) as exc:
            if deadline.expired():
                logger.info("giving up retrying after %r: deadline passed", exc)
                return None
            logger.debug("retrying recipe step after %r", exc)
        if on_retry is not None:
            on_retry()
        remaining = deadline.remaining()
        time.sleep(delay if remaining is None else min(delay, remaining))
        delay = min(delay * 2, 1.0)


def _session_alive(client: Coordinator, owner: int) -> bool:
    """True while ``owner`` is the member's current session and it is not LOST."""
    if owner == 0 or client.session_id != owner:
        return False
    state = client.state
    if state == SessionState.LOST:
        return False
    # A stopped member is not "connected" although its last state stays;
    # SUSPENDED is "unknown", which kazoo also treats as still held.
    return client.connected or state == SessionState.SUSPENDED


class Lock:
    """A fair, exclusive, kazoo-compatible distributed lock.

    ::

        lock = member.Lock("/locks/orders", "worker-7")
        with lock:                          # blocks until acquired
            write(token=lock.fencing_token)

    :param client: the ``Coordinator`` to use.
    :param path: the lock's node; contender nodes are created under it.
    :param identifier: stored in this contender's node; ``contenders()``
        lists them.
    :param extra_lock_patterns: further node-name patterns that count as
        contenders (for locks made by other implementations).
    """

    # The node name between the contender's uuid and its sequence number.
    _NODE_NAME = "__lock__"
    # Names that exclude this contender when queued before it.
    _EXCLUDE_NAMES: tuple[str, ...] = ("__lock__",)

    def __init__(
        self,
        client: Coordinator,
        path: str,
        identifier: object = None,
        extra_lock_patterns: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.client = client
        self.path = _check_recipe_path(path)
        if isinstance(extra_lock_patterns, str) or not all(isinstance(p, str) for p in extra_lock_patterns):
            raise TypeError("extra_lock_patterns must be a sequence of str")
        self._exclude_names = set(self._EXCLUDE_NAMES) | set(extra_lock_patterns)
        self._contenders_re = re.compile("(?:{}){}".format("|".join(sorted(self._exclude_names)), _SEQUENCE_RE))
        self._all_contenders_re = re.compile(
            "(?:{}){}".format("|".join(sorted(self._exclude_names | {self._NODE_NAME})), _SEQUENCE_RE)
        )
        self.data = _identifier_bytes(identifier)
        # The uuid prefix lets a retried create find its node (the first
        # attempt may have been applied although its answer was lost).
        self.prefix = uuid.uuid4().hex + self._NODE_NAME
        self.create_path = paths.join(self.path, self.prefix)
        self.node: str | None = None
        self.wake_event = threading.Event()
        self.cancelled = False
        self.assured_path = False
        self._acquired = False
        self._ephemeral = True
        self._stat: ZnodeStat | None = None
        self._create_tried = False
        self._acquire_method_lock = threading.Lock()
        self._released = threading.Condition()

    # ------------------------------------------------------------------ state

    @property
    def is_acquired(self) -> bool:
        """True while this object holds the lock: acquired, not released,
        and (for an ephemeral node) its session not lost."""
        if not self._acquired or self._stat is None:
            return False
        if not self._ephemeral:
            return True
        return _session_alive(self.client, self._stat.ephemeralOwner)

    @property
    def fencing_token(self) -> int | None:
        """The czxid of this holder's contender node while held, else None;
        strictly increasing across successive holders of the lock."""
        stat = self._stat
        return stat.czxid if stat is not None and self.is_acquired else None

    def fenced_check(self) -> tuple[str, int]:
        """``(path, version)`` of this holder's own contender node, for
        ``transaction.check(path, version)``: the check (and so the whole
        transaction) fails once the lock is released or its session lost.

        :raises NotHeldError: the lock is not held now.
        """
        node, stat = self.node, self._stat
        if node is None or stat is None or not self.is_acquired:
            raise NotHeldError(f"lock {self.path} is not held")
        return paths.join(self.path, node), stat.version

    def fenced_transaction(self) -> Transaction:
        """A ``client.transaction()`` that already checks that this lock
        is still held (see ``fenced_check``)."""
        check = self.fenced_check()
        txn = self.client.transaction()
        txn.check(*check)
        return txn

    # ------------------------------------------------------------------ acquire / release

    def cancel(self) -> None:
        """Cancel a pending ``acquire`` (it raises ``CancelledError``)."""
        self.cancelled = True
        self.wake_event.set()
        with self._released:
            self._released.notify_all()

    def acquire(self, blocking: bool = True, timeout: float | None = None, ephemeral: bool = True) -> bool:
        """Acquire the lock; by default block until it is held.

        :param blocking: False: return at once, True if the lock was free.
        :param timeout: give up after this many seconds (``LockTimeout``).
        :param ephemeral: False: the contender node outlives this member's
            session (only ``release`` frees the lock).
        :returns: whether the lock was acquired.
        :raises LockTimeout: not acquired within ``timeout``.
        :raises CancelledError: ``cancel()`` was called.
        """
        timeout = _check_timeout(timeout)
        if not isinstance(ephemeral, bool):
            raise TypeError(f"ephemeral must be a bool, got {type(ephemeral).__name__}")
        deadline = _Deadline(timeout)
        if blocking:
            locked = self._acquire_method_lock.acquire(True, -1 if timeout is None else timeout)
        else:
            locked = self._acquire_method_lock.acquire(False)
        if not locked:
            return False
        try:
            if self._acquired:
                if self.is_acquired or not self._ephemeral:
                    if not blocking or not self._wait_for_release(deadline):
                        return False
                else:
                    self._forget()  # held once, but the session was lost since
            self._create_tried = False
            self.client.add_listener(self._watch_session)
            try:
                gotten = _retrying(
                    deadline, lambda: self._inner_acquire(bool(blocking), deadline, ephemeral), self._check_cancelled
                )
            except CoordError:
                self._best_effort_cleanup()
                self.cancelled = False
                raise
            finally:
                self._remove_listener()
            if gotten:
                self._ephemeral = ephemeral
                self._acquired = True
                return True
            self._best_effort_cleanup()
            return False
        finally:
            self._acquire_method_lock.release()

    def _check_cancelled(self) -> None:
        if self.cancelled:
            raise CancelledError(f"acquire of {self.path} was cancelled")

    def _wait_for_release(self, deadline: _Deadline) -> bool:
        """While this object is held: wait for another thread to release it."""
        with self._released:
            while self._acquired:
                if self.cancelled:
                    self.cancelled = False
                    raise CancelledError(f"acquire of {self.path} was cancelled")
                remaining = deadline.remaining()
                if remaining == 0.0:
                    return False
                self._released.wait(remaining)
        return True

    def _remove_listener(self) -> None:
        with contextlib.suppress(ValueError):
            self.client.remove_listener(self._watch_session)

    def _watch_session(self, state: str) -> None:
        self.wake_event.set()

    def _watch_predecessor(self, event: WatchedEvent) -> None:
        self.wake_event.set()

    def _ensure_path(self) -> None:
        self.client.ensure_path(self.path)
        self.assured_path = True

    def _inner_acquire(self, blocking: bool, deadline: _Deadline, ephemeral: bool) -> bool:
        self._check_cancelled()
        if not self.assured_path:
            self._ensure_path()
        node: str | None = None
        stat: ZnodeStat | None = None
        if self._create_tried:
            # An earlier create may have been applied without our hearing of
            # it; a sync orders every earlier request of our session first.
            self.client.sync(self.path)
            node, stat = self._find_node()
        self._create_tried = True
        if node is None:
            created, stat = self.client.create(
                self.create_path, self.data, ephemeral=ephemeral, sequence=True, include_data=True
            )
            node = paths.basename(created)
        self.node, self._stat = node, stat
        while True:
            self.wake_event.clear()
            self._check_cancelled()
            predecessor = self._get_predecessor(node)
            if predecessor is None:
                return True
            if not blocking:
                return False
            try:
                self.client.get(paths.join(self.path, predecessor), watch=self._watch_predecessor)
            except NoNodeError:
                continue  # already gone: look again
            if not self.wake_event.wait(deadline.remaining()):
                raise LockTimeout(f"failed to acquire lock on {self.path} after {deadline.timeout} seconds")

    def _sequence(self, name: str) -> int:
        return int(name[-10:]) if name[-11:-10] != "-" else int(name[-11:])

    def _get_predecessor(self, node: str) -> str | None:
        """The contender just before ``node`` that excludes it, or None.

        :raises _Restart: ``node`` is gone (its session was lost).
        """
        own = self._sequence(node)
        children = self.client.get_children(self.path)
        assert isinstance(children, list)
        found_self = False
        best: tuple[int, str] | None = None
        for child in children:
            if child == node:
                found_self = True
                continue
            match = self._contenders_re.search(child)
            if match is None:
                continue
            seq = int(match.group(1))
            if seq < own and (best is None or seq > best[0]):
                best = (seq, child)
        if not found_self:
            raise _Restart(f"contender node {node} vanished")
        return None if best is None else best[1]

    def _find_node(self) -> tuple[str | None, ZnodeStat | None]:
        """Our contender node (by uuid prefix) and its Stat, if it exists.
        Duplicates from retried creates are deleted; the first is kept."""
        children = self.client.get_children(self.path)
        assert isinstance(children, list)
        mine = sorted((c for c in children if c.startswith(self.prefix)), key=self._sequence)
        for extra in mine[1:]:
            self._delete_quietly(extra)
        for child in mine[:1]:
            stat = self.client.exists(paths.join(self.path, child))
            if stat is not None:
                return child, stat
        return None, None

    def _delete_quietly(self, node: str) -> None:
        try:
            self.client.delete(paths.join(self.path, node))
        except NoNodeError:
            pass
        except CoordError as exc:
            logger.warning("could not delete contender node %s/%s: %r", self.path, node, exc)

    def _best_effort_cleanup(self) -> None:
        try:
            node = self.node
            if node is None and self._create_tried:
                node = self._find_node()[0]
            if node is not None:
                self._delete_quietly(node)
        except CoordError as exc:
            logger.warning("cleanup of lock %s failed: %r", self.path, exc)
        self.node = None
        self._stat = None

    def _forget(self) -> None:
        with self._released:
            self._acquired = False
            self.node = None
            self._stat = None
            self._released.notify_all()

    def release(self) -> bool:
        """Release the lock now. Returns False if this object did not hold it
        (a lock whose session was lost is forgotten and returns False)."""
        if not self._acquired:
            return False
        node = self.node
        held = self.is_acquired
        if node is not None and (held or not self._ephemeral):
            deadline = _Deadline(self.client.request_timeout)

            def delete() -> bool:
                try:
                    return self.client.delete(paths.join(self.path, node))
                except NoNodeError:
                    return True

            if _retrying(deadline, delete) is None:
                raise ConnectionLoss(f"could not release lock {self.path}: the cluster did not answer")
        self._forget()
        return held

    def contenders(self) -> list[str]:
        """Identifiers of the current contenders, the holder(s) first, in
        queue order ("" for contenders without an identifier)."""
        if not self.assured_path:
            self._ensure_path()
        children = self.client.get_children(self.path)
        assert isinstance(children, list)
        matches = []
        for child in children:
            match = self._all_contenders_re.search(child)
            if match is not None:
                matches.append((int(match.group(1)), child))
        result = []
        for _seq, child in sorted(matches):
            try:
                data, _stat = self.client.get(paths.join(self.path, child))
            except NoNodeError:
                continue
            result.append(data.decode("utf-8", errors="replace"))
        return result

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path} acquired={self.is_acquired}>"


class WriteLock(Lock):
    """The exclusive side of a shared lock: held by no one else, reader or
    writer. Same path as the ``ReadLock`` it pairs with."""

    _NODE_NAME = "__lock__"
    _EXCLUDE_NAMES = ("__lock__", "__rlock__")


class ReadLock(Lock):
    """The shared side of a shared lock: any number of readers hold it
    together while no writer queued before them does."""

    _NODE_NAME = "__rlock__"
    _EXCLUDE_NAMES = ("__lock__",)


class Semaphore:
    """kazoo's distributed semaphore: up to ``max_leases`` holders at once.

    ::

        sem = member.Semaphore("/pools/db", "worker-7", max_leases=4)
        with sem:
            use_connection(token=sem.fencing_token)

    ``max_leases`` is stored in the semaphore node when it is created; a
    user with a different ``max_leases`` gets ValueError on acquire (delete
    the node to change it). Not re-entrant.
    """

    def __init__(self, client: Coordinator, path: str, identifier: object = None, max_leases: int = 1) -> None:
        if isinstance(max_leases, bool) or not isinstance(max_leases, int):
            raise TypeError(f"max_leases must be an int, got {type(max_leases).__name__}")
        if max_leases < 1:
            raise ValueError(f"max_leases must be >= 1, got {max_leases}")
        self.client = client
        self.path = _check_recipe_path(path)
        self.data = _identifier_bytes(identifier)
        self.max_leases = max_leases
        self.wake_event = threading.Event()
        self.create_path = paths.join(self.path, uuid.uuid4().hex)
        self.lock_path = self.path + "-__lock__"
        self.assured_path = False
        self.cancelled = False
        self._acquired = False
        self._stat: ZnodeStat | None = None
        self._session_expired = False

    @property
    def is_acquired(self) -> bool:
        """True while this object holds a lease (its session not lost)."""
        stat = self._stat
        return self._acquired and stat is not None and _session_alive(self.client, stat.ephemeralOwner)

    @property
    def fencing_token(self) -> int | None:
        """The czxid of this holder's lease node while held, else None;
        strictly increasing across successive lease grants."""
        stat = self._stat
        return stat.czxid if stat is not None and self.is_acquired else None

    def fenced_check(self) -> tuple[str, int]:
        """``(path, version)`` of this holder's lease node, for
        ``transaction.check``; fails once the lease is released or lost.

        :raises NotHeldError: no lease is held now.
        """
        stat = self._stat
        if stat is None or not self.is_acquired:
            raise NotHeldError(f"semaphore {self.path}: no lease held")
        return self.create_path, stat.version

    def fenced_transaction(self) -> Transaction:
        """A ``client.transaction()`` that already checks that the lease is held."""
        check = self.fenced_check()
        txn = self.client.transaction()
        txn.check(*check)
        return txn

    def _ensure_path(self) -> None:
        result = self.client.ensure_path(self.path)
        self.assured_path = True
        if result is True:  # it existed: its max_leases must be ours
            data, _stat = self.client.get(self.path)
            try:
                leases = int(data.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                return  # not a number: the node's data is used for something else
            if leases != self.max_leases:
                raise ValueError(f"Inconsistent max leases: {leases}, expected: {self.max_leases}")
        else:
            self.client.set(self.path, str(self.max_leases).encode("utf-8"))

    def cancel(self) -> None:
        """Cancel a pending ``acquire`` (it raises ``CancelledError``)."""
        self.cancelled = True
        self.wake_event.set()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Acquire a lease; by default block until one is free.

        :returns: whether a lease is held.
        :raises ValueError: ``max_leases`` differs from the stored one.
        :raises LockTimeout: no lease within ``timeout`` seconds.
        :raises CancelledError: ``cancel()`` was called.
        """
        timeout = _check_timeout(timeout)
        self.cancelled = False
        deadline = _Deadline(timeout)
        self.client.add_listener(self._watch_session)
        try:
            gotten = _retrying(deadline, lambda: self._inner_acquire(bool(blocking), deadline))
        except (CoordError, ValueError):
            self._best_effort_cleanup()
            self.cancelled = False
            raise
        finally:
            with contextlib.suppress(ValueError):
                self.client.remove_listener(self._watch_session)
        self._acquired = bool(gotten)
        if not gotten:
            self._best_effort_cleanup()
        return self._acquired

    def _inner_acquire(self, blocking: bool, deadline: _Deadline) -> bool:
        self._session_expired = False
        if not self.assured_path:
            self._ensure_path()
        stat = self.client.exists(self.create_path)
        if stat is not None and _session_alive(self.client, stat.ephemeralOwner):
            self._stat = stat  # we already have a lease
            return True
        lock = Lock(self.client, self.lock_path, self.data)
        if not lock.acquire(blocking=blocking, timeout=deadline.remaining()):
            return False
        try:
            while True:
                self.wake_event.clear()
                if self._session_expired:
                    raise _Restart("session lost while acquiring a lease")
                if self.cancelled:
                    raise CancelledError(f"semaphore {self.path} cancelled")
                if self._get_lease():
                    return True
                if not blocking:
                    return False
                if not self.wake_event.wait(deadline.remaining()):
                    raise LockTimeout(f"failed to acquire semaphore on {self.path} after {deadline.timeout} seconds")
        finally:
            lock.release()

    def _get_lease(self) -> bool:
        children = self.client.get_children(self.path, watch=self._watch_lease_change)
        assert isinstance(children, list)
        name = paths.basename(self.create_path)
        if name not in children and len(children) < self.max_leases:
            try:
                _created, self._stat = self.client.create(
                    self.create_path, self.data, ephemeral=True, include_data=True
                )
                return True
            except NodeExistsError:
                pass  # a retried create of ours was applied after all
        stat = self.client.exists(self.create_path)
        if stat is not None and _session_alive(self.client, stat.ephemeralOwner):
            self._stat = stat
            return True
        return False

    def _watch_lease_change(self, event: WatchedEvent) -> None:
        self.wake_event.set()

    def _watch_session(self, state: str) -> None:
        if state == SessionState.LOST:
            self._session_expired = True
            self.wake_event.set()

    def _best_effort_cleanup(self) -> None:
        try:
            self.client.delete(self.create_path)
        except NoNodeError:
            pass
        except CoordError as exc:
            logger.warning("cleanup of semaphore lease %s failed: %r", self.create_path, exc)
        self._stat = None

    def release(self) -> bool:
        """Give the lease back now. Returns False if none was held."""
        if not self._acquired:
            return False
        held = self.is_acquired
        if held:
            deadline = _Deadline(self.client.request_timeout)

            def delete() -> bool:
                try:
                    return self.client.delete(self.create_path)
                except NoNodeError:
                    return True

            if _retrying(deadline, delete) is None:
                raise ConnectionLoss(f"could not release semaphore {self.path}: the cluster did not answer")
        self._acquired = False
        self._stat = None
        return held

    def lease_holders(self) -> list[str]:
        """Identifiers of the current lease holders (unordered)."""
        if self.client.exists(self.path) is None:
            return []
        children = self.client.get_children(self.path)
        assert isinstance(children, list)
        holders = []
        for child in children:
            try:
                data, _stat = self.client.get(paths.join(self.path, child))
            except NoNodeError:
                continue
            holders.append(data.decode("utf-8", errors="replace"))
        return holders

    def __enter__(self) -> Semaphore:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<Semaphore {self.path} max_leases={self.max_leases} acquired={self.is_acquired}>"


__all__ = ["Lock", "ReadLock", "Semaphore", "WriteLock"]
