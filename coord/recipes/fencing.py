"""Fencing tokens: make a lock holder that lost its lock harmless.

A distributed lock cannot stop a holder that *believes* it still holds the
lock: a process paused by GC, swapped out or cut off from the cluster keeps
running its critical section after its session expired and someone else
took over. ZooKeeper and kazoo offer nothing against this; coord gives
every acquisition a **fencing token**: an integer taken from the replicated
log that strictly increases across successive holders. The protected
resource remembers the highest token it has seen and refuses requests that
carry a lower one (``FenceGuard``), so a stale holder's writes bounce.

Where the tokens come from, and why they strictly increase
----------------------------------------------------------

Every write applied by the cluster gets the next zxid of the one Raft log,
so zxids are totally ordered and never reused; a node's Stat carries the
zxid of its creation (``czxid``) and of its last modification (``mzxid``).
A recipe takes the zxid of the write that won it the resource, read from
the Stat that ``create(..., include_data=True)`` / ``set`` return for the
holder's OWN node (never from a clock and never from another node).

* ``Lock`` / ``WriteLock`` / ``Election``: the token is the czxid of the
  holder's sequential contender node. The lock is fair: a contender holds
  when no contender with a lower sequence number is left, and deleted
  contender nodes never come back. Sequence numbers are assigned in log
  order, the same order as czxids. When holder H acquired, every contender
  created before H's node was already gone, so any LATER holder's node was
  created after H's: its czxid is larger. Holder order = sequence order =
  creation order = czxid order, so tokens strictly increase across
  holders. (An ``Election`` is a ``Lock``; its leader's token is the
  lock's.)
* ``ReadLock``: readers share the lock, so there is no single "next
  holder" among them: a reader's token (the czxid of its ``__rlock__``
  node) is larger than that of every writer that held before it, and
  every later writer's token is larger than it, but two readers holding
  at the same time may present their tokens in any order. Fence writes
  with the ``WriteLock`` side; do not fence one reader against another.
* ``Semaphore``: the token is the czxid of the holder's lease node. A lease
  node is only created while holding the semaphore's internal lock (after
  counting the leases in use), so lease creations are serialised and each
  acquisition's create comes after every earlier acquisition's: successive
  lease holders get strictly increasing tokens (with ``max_leases`` > 1,
  in the order the leases were granted).
* ``NonBlockingLease`` / ``MultiNonBlockingLease``: the token is the mzxid
  of the write that won or renewed the lease (the ``create`` of the TTL
  lease node, or the version-checked ``set`` that renewed it). A new
  holder can only create the node after the cluster deleted the previous
  holder's node, which happens after that holder's last renewal, so its
  token exceeds every token the previous holder was ever given; a holder's
  own renewals also only increase its token.

Using a token
-------------

Outside coord (a database, an object store, a device): send the token with
every request and keep a ``FenceGuard`` (or the same rule in the resource's
own storage) that accepts a token only if it is >= the highest it has seen
for that resource, and records it::

    guard = FenceGuard()              # owned by the protected resource
    guard.check(request.token, key="orders-db")   # raises StaleFencingTokenError

Inside coord (data kept in znodes): make the write conditional on still
holding the lock, in the same transaction. ``lock.fenced_check()`` returns
the ``(path, version)`` of the holder's own contender node, which exists
only while the holder still holds the lock (its session alive, not
released); ``lock.fenced_transaction()`` returns a transaction that already
contains that check::

    txn = lock.fenced_transaction()
    txn.set_data("/app/config", b"new")
    results = txn.commit()   # NoNodeError in results[0] if the lock was lost

If the holder's session expired, the contender node is gone, the check
fails and nothing in the transaction is applied.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from ..errors import CoordError


class StaleFencingTokenError(CoordError):
    """A request carried a fencing token lower than one the resource has
    already seen: its sender no longer holds the lock (or lease)."""

    def __init__(self, token: int, highest: int, key: Hashable | None = None) -> None:
        self.token = token
        self.highest = highest
        self.key = key
        where = "" if key is None else f" for key {key!r}"
        super().__init__(f"stale fencing token {token}{where}: a holder with token {highest} has been seen since")


class NotHeldError(CoordError):
    """A fenced operation was requested from a recipe that does not hold
    its lock/lease (never acquired, released, or its session was lost)."""


def check_token(token: object) -> int:
    """``token`` if it is a fencing token (a non-negative int), else raise TypeError/ValueError."""
    if isinstance(token, bool) or not isinstance(token, int):
        raise TypeError(f"fencing token must be an int, got {type(token).__name__}")
    if token < 0:
        raise ValueError(f"fencing token must be >= 0, got {token}")
    return token


class FenceGuard:
    """What a protected resource keeps to refuse stale lock holders.

    ``check(token, key)`` accepts a token that is >= the highest token seen
    so far for ``key`` (and records it), and raises
    ``StaleFencingTokenError`` naming both tokens for a lower one. Keys let
    one guard protect several independent resources (one lock each).
    Thread-safe. The state lives in this object only: a resource that must
    survive restarts should persist the highest token with its data.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._highest: dict[Hashable | None, int] = {}

    def check(self, token: int, key: Hashable | None = None) -> int:
        """Accept ``token`` for ``key`` and return it, or raise.

        :raises StaleFencingTokenError: a higher token was seen for ``key``.
        :raises TypeError, ValueError: ``token`` is not a non-negative int
            (or ``key`` is unhashable); nothing is recorded.
        """
        check_token(token)
        hash(key)  # an unhashable key fails here, before anything changes
        with self._lock:
            highest = self._highest.get(key)
            if highest is not None and token < highest:
                raise StaleFencingTokenError(token, highest, key)
            self._highest[key] = token
            return token

    def highest(self, key: Hashable | None = None) -> int | None:
        """The highest token accepted for ``key`` (None if none yet)."""
        with self._lock:
            return self._highest.get(key)


__all__ = ["FenceGuard", "NotHeldError", "StaleFencingTokenError", "check_token"]
