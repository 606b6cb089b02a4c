"""ZooKeeper protocol sessions as coord tree sessions.

A protocol session IS a session of the replicated tree: opened with
``open_session`` through the log, kept alive by the ``keepalive`` entries
its pings cause, expired by the leader like any other (``ExpiryTracker``),
closed with ``close_session``. Its ephemerals are the tree's. The member a
client is connected to runs the session's request pipeline: a
``RequestTracker`` of its own (at-most-once writes in request-id order).

Passwords. ZooKeeper derives a session's password from its id and a
server-side seed, so any server can check it without shared state; so do
we, with HMAC-SHA256 keyed by the cluster secret (or a fixed key when the
cluster runs without one, which is only allowed on loopback).

Moving a session. When a client reconnects to another member, that member
must never reuse a request id the previous member may still have in flight:
request ids collide and the tree would answer the new request with the old
one's result. The new member first passes a ``sync`` through the log (its
replica then holds everything committed before the reconnect), reads the
session's request horizon, and starts a fresh *epoch* of request ids above
it: ``((horizon >> 40) + 1) << 40``. Its first entry is a keepalive whose
request id and ``ack_below`` are that epoch's first id, which tells the tree
that every lower id is decided: the old member's stragglers are answered
``STALE_REQUEST`` and never applied. The old member notices an applied
entry of its session from a later epoch and drops its connection (the
session moved, as ZooKeeper's SessionMovedException). A member serves one
epoch for at most 2**40 requests, far more than any connection lives for.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import secrets
import time
from typing import Any

from ..requests import RequestTracker

EPOCH_BITS = 40
PASSWORD_BYTES = 16
_FIXED_KEY = b"coord-zk-session-password-v1"


def session_password(session_id: int, key: bytes | None) -> bytes:
    """The password of ``session_id`` (16 bytes, like ZooKeeper's)."""
    mac = hmac.new(key or _FIXED_KEY, b"zk-session:" + session_id.to_bytes(8, "big", signed=True), hashlib.sha256)
    return mac.digest()[:PASSWORD_BYTES]


def password_ok(session_id: int, password: bytes, key: bytes | None) -> bool:
    return hmac.compare_digest(session_password(session_id, key), password)


def new_session_id() -> int:
    return secrets.randbits(63) or 1


def resume_request_id(horizon: int) -> int:
    """The first request id of a new epoch above ``horizon``."""
    return ((horizon >> EPOCH_BITS) + 1) << EPOCH_BITS


def epoch_of(request_id: int) -> int:
    return request_id >> EPOCH_BITS


class ResultFuture(concurrent.futures.Future):  # type: ignore[type-arg]
    """A plain future with the zxid the tracker records (callbacks run inline
    on the thread that settles it: under the member lock for an applied
    entry, which is what keeps replies behind their own watch events)."""

    zxid: int | None = None


class ZkSession:
    """One protocol session as served by this member."""

    def __init__(self, session_id: int, timeout_ms: int, tracker: RequestTracker, first_request_id: int) -> None:
        self.session_id = session_id
        self.timeout_ms = timeout_ms
        self.tracker = tracker
        self.epoch = epoch_of(first_request_id)
        self.password = b""
        #: monotonic time one of the session's entries last applied here
        self.last_commit = time.monotonic()
        self.last_keepalive = time.monotonic()
        #: a local session of a member without quorum (not in the tree)
        self.read_only = False

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000.0

    def keepalive_due(self, now: float) -> bool:
        """Clients ping every third of the timeout (kazoo, the Java client);
        due after a quarter, every ping of an idle client causes one."""
        return now - self.last_keepalive >= self.timeout_s / 4.0

    def stale(self, now: float) -> bool:
        """No entry of the session committed for 2/3 of its timeout: the
        cluster is not keeping it alive (no quorum?), so stop pretending."""
        return now - self.last_commit > self.timeout_s * 2.0 / 3.0


def make_tracker(member: Any, *, max_in_flight: int = 1000) -> RequestTracker:
    """A request pipeline that proposes through ``member`` (not yet in a session)."""
    return RequestTracker(
        member.propose_entry,
        ResultFuture,
        max_in_flight=max_in_flight,
        cancel_grace_s=min(3.0, member.session_timeout),
    )


__all__ = [
    "EPOCH_BITS",
    "PASSWORD_BYTES",
    "ResultFuture",
    "ZkSession",
    "epoch_of",
    "make_tracker",
    "new_session_id",
    "password_ok",
    "resume_request_id",
    "session_password",
]
