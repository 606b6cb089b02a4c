"""At-most-once writes in session order, with deadlines (the Raft thesis'
client sessions, with TCP's retransmission discipline).

Every write a member proposes carries its session id and a request id. The
tree applies a session's requests strictly in request-id order (ZooKeeper's
FIFO client order) and remembers each result until the member acknowledges
it (``ack_below``), so a retransmitted request is never applied twice and a
request that overtook a lost one is refused (``OUT_OF_ORDER``) rather than
applied early. That makes retrying always safe, which matters because
pysyncobj sometimes fails a proposal and sometimes never calls back at all.

Retransmission is go-back-N, as in TCP: the session's pipeline has one
trigger (a refusal, a failure report from Raft, or the oldest request
outliving the retransmission timeout) and on it every pending request is
re-sent once, in id order, so on pysyncobj's FIFO links they arrive in
order. The timeout adapts to the observed commit latency (Karn's rule: only
requests sent once are sampled), so a merely slow cluster is not flooded.

When a request's deadline passes without a result the member does not guess:
it proposes ``cancel(request_id)`` through the log (a cancel may overtake the
request it cancels). Once the cancel is applied the outcome is definite:
either the request was applied first (and its result delivered) or it never
will be, and the caller gets ``OperationTimeoutError``. Only if even the
cancel cannot commit does the caller get ``UnknownOutcomeError``.

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

from .errors import ErrorCode, OperationTimeoutError, SessionExpiredError, UnknownOutcomeError
from .ops import make_entry
from .replication import FailureKind
from .tree import Applied

logger = logging.getLogger(__name__)

Propose = Callable[[tuple[Any, ...], Callable[[str, str], None]], None]
Convert = Callable[[Applied], Any]

#: Go-back rounds are at least this far apart, however many triggers arrive.
_GO_BACK_MIN_INTERVAL_S = 0.1
#: A cancellation races a deadline, so it is retried more eagerly than a write.
_CANCEL_RETRY_S = 0.2
#: The retransmission timeout is this many times the smoothed commit latency
#: (never below the configured minimum, never above the maximum).
_RTO_LATENCY_FACTOR = 4.0
_RTO_MAX_S = 5.0
_LATENCY_SMOOTHING = 0.125  # TCP's alpha for SRTT


class _Pending:
    __slots__ = (
        "cancel_of",
        "cancelling",
        "convert",
        "deadline",
        "entry",
        "future",
        "holds_slot",
        "last_failure",
        "request_id",
        "sends",
        "sent_at",
    )

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
        self.sent_at = 0.0
        self.sends = 0
        # Past its deadline with a cancel in flight: never re-sent or re-cancelled.
        self.cancelling = False

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
        self._min_rto_s = retry_interval_s
        self._cancel_grace_s = cancel_grace_s
        self._clock = clock
        self._wall_clock_ms = wall_clock_ms
        self._lock = threading.Lock()
        self._session_id = 0
        self._request_ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}  # insertion order == request id order
        self._deadlines: list[tuple[float, int]] = []  # heap of (deadline, request id)
        self._go_back_wanted = False
        self._go_back_not_before = 0.0
        self._smoothed_latency_s: float | None = None

    @property
    def session_id(self) -> int:
        return self._session_id

    def in_flight(self) -> int:
        return len(self._pending)

    def pending_ids(self) -> list[int]:
        with self._lock:
            return list(self._pending)

    def retransmission_timeout(self) -> float:
        """Seconds the oldest request may wait before the pipeline is re-sent."""
        latency = self._smoothed_latency_s
        if latency is None:
            return self._min_rto_s
        return min(_RTO_MAX_S, max(self._min_rto_s, _RTO_LATENCY_FACTOR * latency))

    def begin_session(self, session_id: int) -> None:
        """Switch to a new session: requests of the old one fail (their
        session is gone, so the tree will never apply them)."""
        with self._lock:
            orphans = list(self._pending.values())
            self._pending.clear()
            self._deadlines.clear()
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
            heapq.heappush(self._deadlines, (deadline, request_id))
            self._mark_sent(pending)
        self._send(pending)
        return future

    def _mark_sent(self, pending: _Pending) -> None:
        pending.sent_at = self._clock()
        pending.sends += 1

    def _send(self, pending: _Pending) -> None:
        def on_failure(kind: str, reason: str) -> None:
            pending.last_failure = reason
            if kind == FailureKind.NOT_APPENDED:
                self._want_go_back()

        self._propose(pending.entry, on_failure)

    def _want_go_back(self) -> None:
        with self._lock:
            self._go_back_wanted = True

    def on_applied(self, request_id: int, applied: Applied) -> None:
        """An entry of this member's current session was applied locally."""
        if applied.result[0] == ErrorCode.OUT_OF_ORDER:
            self._want_go_back()  # an earlier request was lost on the way
            return
        with self._lock:
            pending = self._pending.pop(request_id, None)
            cancelled = None
            if pending is not None:
                if pending.sends == 1 and not applied.duplicate:
                    self._sample_latency(self._clock() - pending.sent_at)
                if pending.cancel_of is not None:
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

    def _sample_latency(self, latency_s: float) -> None:
        previous = self._smoothed_latency_s
        self._smoothed_latency_s = (
            latency_s if previous is None else previous + _LATENCY_SMOOTHING * (latency_s - previous)
        )

    def tick(self) -> None:
        """Act on passed deadlines, then re-send the pipeline if it is due."""
        now = self._clock()
        expired: list[_Pending] = []
        with self._lock:
            while self._deadlines and self._deadlines[0][0] <= now:
                _, request_id = heapq.heappop(self._deadlines)
                pending = self._pending.get(request_id)
                if pending is not None and not pending.cancelling:
                    expired.append(pending)
        for pending in expired:
            self._on_deadline(pending)
        for pending in self._go_back_batch(now):
            self._send(pending)

    def _go_back_batch(self, now: float) -> list[_Pending]:
        """Every re-sendable pending request, in id order, if a go-back round
        is due (and marks them sent); else nothing."""
        with self._lock:
            if now < self._go_back_not_before:
                return []
            resendable = [p for p in self._pending.values() if not p.cancelling]
            if not resendable:
                return []
            rto = self.retransmission_timeout()
            overdue = any(
                now - p.sent_at >= (rto if p.cancel_of is None else _CANCEL_RETRY_S) for p in resendable
            )
            if not (self._go_back_wanted or overdue):
                return []
            self._go_back_wanted = False
            self._go_back_not_before = now + _GO_BACK_MIN_INTERVAL_S
            ack_below = next(iter(self._pending))
            for pending in resendable:
                self._refresh_ack(pending, ack_below)
                self._mark_sent(pending)
            return resendable

    @staticmethod
    def _refresh_ack(pending: _Pending, ack_below: int) -> None:
        # A re-sent entry tells the tree the current ack_below, so a request
        # the member gave up on can never hold the session's later ones back.
        _format, session_id, request_id, old_ack, time_ms, op = pending.entry
        if ack_below > old_ack:
            pending.entry = make_entry(session_id, request_id, ack_below, time_ms, op)

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
            if pending.request_id not in self._pending or pending.cancelling:
                return
            # The original stays pending (never re-sent) until the cancel settles it.
            pending.cancelling = True
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
        if applied is not None and hasattr(future, "zxid") and not applied.duplicate:
            # A duplicate's answer comes from the dedup table: the zxid the
            # entry applied at is not known here, so none is claimed.
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
            self._deadlines.clear()
        for pending in orphans:
            self._finish(pending, exc=exc)
