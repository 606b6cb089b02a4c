"""kazoo's non-blocking leases, timed by the cluster instead of client clocks.

A lease reserves a task for one holder (``NonBlockingLease``) or for up to
``count`` holders (``MultiNonBlockingLease``) for a duration, without
blocking: the object is truthy when the lease was obtained (or renewed).

Time model (the deliberate difference from kazoo): kazoo writes an end
time computed from the client's own ``utcnow()`` into the node and every
contender compares it with ITS clock, so skewed clocks break the lease.
coord reads no client clock at all. The lease is a TTL node,
``<path>/lease_holder``, created with ``ttl=duration``: the cluster's
leader deletes it once it has gone unmodified for ``duration``, timed on
the leader's own monotonic clock from when it saw that version of the node
(no two machines' clocks are compared). So:

* obtain: create the lease node (data: the holder identifier). If it
  exists and holds OUR identifier, renew it with a version-checked ``set``,
  which makes a new version; if it holds another identifier, the lease is
  someone else's until the cluster deletes it.
* expiry is decided by one clock, the leader's; the lease may outlive
  ``duration`` by up to two of the leader's reap intervals
  (``reap_interval``, 1 s by default) and a leader change, and never ends
  earlier than ``duration`` after the last renewal was committed.
* the TTL is fixed when the node is created; a renewal with a different
  ``duration`` keeps the creation's TTL.

Identifiers default to ``socket.gethostname()`` as in kazoo, so two
processes on one host share (and renew) one lease unless they pass
distinct identifiers.

Fencing: ``fencing_token`` is the mzxid of the create or renewing set that
won the lease (see ``coord.recipes.fencing``).
"""

from __future__ import annotations

import datetime
import logging
import math
import socket
from typing import TYPE_CHECKING

from .. import paths
from ..errors import BadVersionError, NodeExistsError, NoNodeError
from .lock import _check_recipe_path

if TYPE_CHECKING:
    from ..client import Coordinator

logger = logging.getLogger(__name__)

#: Rounds of create / read / renew before giving up when the node keeps
#: changing under us (each round loses only to a concurrent writer).
_ATTEMPTS = 8


def _duration_ms(duration: object) -> int:
    if isinstance(duration, datetime.timedelta):
        seconds = duration.total_seconds()
    elif isinstance(duration, int | float) and not isinstance(duration, bool):
        seconds = float(duration)
    else:
        raise TypeError(f"duration must be a datetime.timedelta or seconds, got {type(duration).__name__}")
    if math.isnan(seconds) or seconds <= 0 or math.isinf(seconds):
        raise ValueError(f"duration must be a positive, finite time, got {duration!r}")
    return max(1, round(seconds * 1000))


class NonBlockingLease:
    """An exclusive lease that does not block; truthy when obtained.

    ::

        lease = member.NonBlockingLease("/leases/hourly", datetime.timedelta(minutes=70), identifier="host-a")
        if lease:
            do_hourly_cleanup(token=lease.fencing_token)

    Creating the object again with the same path and identifier renews the
    lease; another identifier gets it only after the cluster let it expire.

    :param duration: how long the lease lasts without renewal: a
        ``datetime.timedelta`` or seconds.
    :param identifier: the holder's name, stored in the lease node;
        defaults to ``socket.gethostname()``.
    """

    #: The TTL node under ``path`` that records the holder.
    HOLDER_NAME = "lease_holder"

    def __init__(self, client: Coordinator, path: str, duration: object, identifier: str | None = None) -> None:
        self.client = client
        self.path = _check_recipe_path(path)
        self.ttl_ms = _duration_ms(duration)
        if identifier is not None and not isinstance(identifier, str):
            raise TypeError(f"identifier must be a str, got {type(identifier).__name__}")
        self.identifier = identifier or socket.gethostname()
        self.holder_path = paths.join(self.path, self.HOLDER_NAME)
        self.obtained = False
        #: The mzxid of the write that won the lease, or None.
        self.fencing_token: int | None = None
        self._attempt_obtaining()

    def _attempt_obtaining(self) -> None:
        data = self.identifier.encode("utf-8")
        self.client.ensure_path(self.path)
        for _attempt in range(_ATTEMPTS):
            try:
                _created, stat = self.client.create(self.holder_path, data, ttl=self.ttl_ms, include_data=True)
            except NodeExistsError:
                pass
            else:
                self.obtained, self.fencing_token = True, stat.mzxid
                return
            try:
                holder, stat = self.client.get(self.holder_path)
            except NoNodeError:
                continue  # expired just now: try to create it
            if holder != data:
                logger.debug("lease %s is held by %r", self.path, holder)
                return
            try:
                stat = self.client.set(self.holder_path, data, version=stat.version)
            except (NoNodeError, BadVersionError):
                continue  # expired or renewed concurrently: look again
            self.obtained, self.fencing_token = True, stat.mzxid
            return
        logger.info("lease %s kept changing; not obtained", self.path)

    def __bool__(self) -> bool:
        """True when the lease was obtained or renewed by this call (kazoo's ``if lease:``)."""
        return self.obtained

    def __repr__(self) -> str:
        return f"<NonBlockingLease {self.path} obtained={self.obtained}>"


class MultiNonBlockingLease:
    """Up to ``count`` holders at once: tries the leases ``<path>/0`` ..
    ``<path>/<count-1>`` in order and is truthy once one is obtained
    (``fencing_token`` is that lease's token)."""

    def __init__(
        self, client: Coordinator, count: int, path: str, duration: object, identifier: str | None = None
    ) -> None:
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError(f"count must be an int, got {type(count).__name__}")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        path = _check_recipe_path(path)
        _duration_ms(duration)  # bad input fails before anything is written
        self.obtained = False
        self.fencing_token: int | None = None
        self.lease: NonBlockingLease | None = None
        for num in range(count):
            lease = NonBlockingLease(client, f"{path}/{num}", duration, identifier=identifier)
            if lease:
                self.obtained, self.fencing_token, self.lease = True, lease.fencing_token, lease
                break

    def __bool__(self) -> bool:
        """True when the lease was obtained or renewed by this call (kazoo's ``if lease:``)."""
        return self.obtained

    def __repr__(self) -> str:
        return f"<MultiNonBlockingLease obtained={self.obtained}>"


__all__ = ["MultiNonBlockingLease", "NonBlockingLease"]
