"""At-most-once writes with deadlines (the Raft thesis' client sessions).

Every write a member proposes carries its session id and a request id; the
tree remembers each request's result until the member acknowledges it
(``ack_below``), so a retransmitted request is never applied twice. That
makes it safe to retry whenever pysyncobj fails a proposal or never calls
back at all (it sometimes does not, after a snapshot install or under load).

When a request's deadline passes without a result, the member does not
guess: it proposes ``cancel(request_id)`` through the log. Once the cancel
is applied the outcome is definite: either the request was applied first
(and its result was already delivered) or it never will be, and the caller
gets ``OperationTimeoutError``. Only if even the cancel cannot commit does the
caller get ``UnknownOutcomeError``.

The number of requests in flight is bounded: a caller waits for a slot up to
its own deadline, so overload gives waits or errors, never an unbounded queue.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import OperationTimeoutError, SessionExpiredError, UnknownOutcomeError
from .ops import make_entry
from .replication import FailureKind
from .tree import Applied

logger = logging.getLogger(__name__)

Propose = Callable[[tuple[Any, ...], Callable[[str, str], None]], None]
Convert = Callable[[Applied], Any]


class _Pending:
    __slots__ = ("request_id", "entry", "future", "convert", "deadline", "cancel_of", "holds_slot", "last_failure")

    def __init__(
        self,
        request_id: int,
        entry: tuple[Any, ...],
        future: concurrent.futures.Future[Any],
        convert: Convert,
        deadline: float,
        cancel_of: int | None,
        holds_slot: bool,
    ) -> None:
        self.request_id = request_id
        self.entry = entry
        self.future = future
        self.convert = convert
        self.deadline = deadline
        self.cancel_of = cancel_of
        self.holds_slot = holds_slot
        self.last_failure = ""

    def failure_note(self) -> str:
        return f" (last report from Raft: {self.last_failure})" if self.last_failure else ""


class RequestTracker:
    """Proposes this member's requests and matches applied entries to them.

    Thread model: ``submit`` runs on caller threads, ``on_applied`` on the
    replication thread (under the node lock), ``tick`` on the housekeeping
    thread. Proposals are always made outside the tracker's own lock.
    """

    def __init__(
        self,
        propose: Propose,
        future_factory: Callable[[], concurrent.futures.Future[Any]],
        *,
        max_in_flight: int = 1000,
        retry_interval_s: float = 1.0,
        cancel_grace_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._propose = propose
        self._future_factory = future_factory
        self._max_in_flight = max_in_flight
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._retry_interval_s = retry_interval_s
        self._cancel_grace_s = cancel_grace_s
        self._clock = clock
        self._wall_clock_ms = wall_clock_ms
        self._lock = threading.Lock()
        self._session_id = 0
        self._request_ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}  # insertion order == request id order
        self._timers: list[tuple[float, int]] = []  # (when, request id): retries and deadlines

    @property
    def session_id(self) -> int:
        return self._session_id

    def in_flight(self) -> int:
        return len(self._pending)

    def pending_ids(self) -> list[int]:
        with self._lock:
            return list(self._pending)

    def begin_session(self, session_id: int) -> None:
        """Switch to a new session: requests of the old one fail (their
        session is gone, so the tree will never apply them)."""
        with self._lock:
            orphans = list(self._pending.values())
            self._pending.clear()
            self._timers.clear()
            self._session_id = session_id
            self._request_ids = itertools.count(1)
        for pending in orphans:
            self._finish(pending, exc=SessionExpiredError("the session was lost before this request was applied"))

    def submit(
        self, op: tuple[Any, ...], convert: Convert, timeout: float, *, wait_for_slot: bool = True
    ) -> concurrent.futures.Future[Any]:
        """Propose ``op`` and return a future for its converted result."""
        deadline = self._clock() + timeout
        if not self._slots.acquire(timeout=timeout if wait_for_slot else 0):
            raise OperationTimeoutError(
                f"{self._max_in_flight} requests are already in flight on this member; "
                f"no slot freed up within {timeout:.3g}s (the request was not sent)"
            )
        try:
            return self._register(op, convert, deadline, cancel_of=None, holds_slot=True)
        except BaseException:
            self._slots.release()
            raise

    def _register(
        self, op: tuple[Any, ...], convert: Convert, deadline: float, *, cancel_of: int | None, holds_slot: bool
    ) -> concurrent.futures.Future[Any]:
        future = self._future_factory()
        with self._lock:
            request_id = next(self._request_ids)
            ack_below = next(iter(self._pending), request_id)
            entry = make_entry(self._session_id, request_id, ack_below, self._wall_clock_ms(), op)
            pending = _Pending(request_id, entry, future, convert, deadline, cancel_of, holds_slot)
            self._pending[request_id] = pending
            now = self._clock()
            heapq.heappush(self._timers, (min(now + self._retry_interval_s, deadline), request_id))
        self._send(pending)
        return future

    def _send(self, pending: _Pending) -> None:
        request_id = pending.request_id
        session_id = pending.entry[1]

        def on_failure(kind: str, reason: str) -> None:
            pending.last_failure = reason
            if kind == FailureKind.NOT_APPENDED:
                self._schedule_retry(session_id, request_id, 0.05)

        self._propose(pending.entry, on_failure)

    def _schedule_retry(self, session_id: int, request_id: int, delay_s: float) -> None:
        with self._lock:
            if session_id == self._session_id and request_id in self._pending:
                heapq.heappush(self._timers, (self._clock() + delay_s, request_id))

    def on_applied(self, request_id: int, applied: Applied) -> None:
        """An entry of this member's current session was applied locally."""
        with self._lock:
            pending = self._pending.pop(request_id, None)
            cancelled = None
            if pending is not None and pending.cancel_of is not None:
                cancelled = self._pending.pop(pending.cancel_of, None)
        if pending is None:
            return
        if cancelled is not None:
            self._finish(
                cancelled,
                exc=OperationTimeoutError(
                    "the request did not complete before its deadline and was cancelled "
                    f"through the log: it was not applied and never will be{cancelled.failure_note()}"
                ),
            )
        if pending.cancel_of is None:
            self._finish(pending, applied=applied)
        else:
            self._finish(pending, value=None)

    def tick(self) -> None:
        """Retry overdue requests and act on passed deadlines."""
        now = self._clock()
        resend: list[_Pending] = []
        expired: list[_Pending] = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                _, request_id = heapq.heappop(self._timers)
                pending = self._pending.get(request_id)
                if pending is None:
                    continue
                if now >= pending.deadline:
                    expired.append(pending)
                else:
                    resend.append(pending)
                    retry_at = min(now + self._retry_interval_s, pending.deadline)
                    heapq.heappush(self._timers, (retry_at, request_id))
        for pending in resend:
            self._send(pending)
        for pending in expired:
            self._on_deadline(pending)

    def _on_deadline(self, pending: _Pending) -> None:
        if pending.cancel_of is not None:
            with self._lock:
                self._pending.pop(pending.request_id, None)
                original = self._pending.pop(pending.cancel_of, None)
            self._finish(pending, value=None)
            if original is not None:
                self._finish(
                    original,
                    exc=UnknownOutcomeError(
                        "the request timed out and its cancellation could not be committed either "
                        f"(no quorum?): it may or may not have been applied{original.failure_note()}"
                    ),
                )
            return
        with self._lock:
            if pending.request_id not in self._pending:
                return
            # Keep the original pending (without timers) until the cancel settles it.
        self._register(
            ("cancel", pending.request_id),
            lambda applied: None,
            self._clock() + self._cancel_grace_s,
            cancel_of=pending.request_id,
            holds_slot=False,
        )

    def _finish(
        self, pending: _Pending, *, applied: Applied | None = None, value: Any = None, exc: BaseException | None = None
    ) -> None:
        if pending.holds_slot:
            self._slots.release()
        future = pending.future
        if future.done():
            return
        if applied is not None and hasattr(future, "zxid"):
            future.zxid = applied.zxid
        if exc is None and applied is not None:
            try:
                value = pending.convert(applied)
            except BaseException as error:  # the converter raises the coord error for a failed op
                exc = error
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)

    def fail_all(self, exc: BaseException) -> None:
        """Fail every pending request (the member is stopping)."""
        with self._lock:
            orphans = list(self._pending.values())
            self._pending.clear()
            self._timers.clear()
        for pending in orphans:
            self._finish(pending, exc=exc)
