"""At-most-once writes in session order, with deadlines (the Raft thesis'
client sessions, with TCP's retransmission discipline).

Every write a member proposes carries its session id and a request id. The
tree applies a session's requests strictly in request-id order (ZooKeeper's
FIFO client order) and remembers each result until the member acknowledges
it (``ack_below``), so a retransmitted request is never applied twice and a
request that overtook a lost one is refused (``OUT_OF_ORDER``) rather than
applied early. That makes retrying always safe, which matters because
pysyncobj sometimes fails a proposal and sometimes never calls back at all.

Proposals leave in request-id order (one send lock orders them), and
pysyncobj's links are FIFO, so the copies a member sends come back -- as
applied, duplicate or refused entries -- in the order they were sent. The
tracker keeps its copies in flight in that order and reads the answers the
way TCP reads acknowledgements:

* a copy that comes back tells that every copy sent before it and not yet
  back was lost (it will never come);
* a request is *lost* when its latest copy was lost, refused, or failed by
  Raft as certainly not appended;
* a loss triggers go-back-N from the lowest lost request: every pending
  request from there on is re-sent once, in id order (the ones sent after
  the gap would be refused anyway). Copies sent before the go-back that come
  back refused are not the latest copies and trigger nothing, so one loss
  costs one round of re-sends, however deep the pipeline.

Mere slowness never re-sends anything: a saturated cluster keeps answering,
only later. Only silence does -- no copy back for a retransmission timeout
(the smoothed commit latency times four, at least ``retry_interval_s``)
while copies are out. Then the tracker probes, and backs off exponentially:
it sends a keepalive as a new request (a copy whose answer cannot be
confused with an earlier one), then the oldest pending request once more. If
the tail of the pipeline was lost, the keepalive's answer reveals it
(everything sent before it and not back is lost) and go-back repairs it; if
the cluster only stalled, the probe costs a keepalive and one duplicate.

When a request's deadline passes without a result the member does not guess:
it proposes ``cancel(request_id)`` through the log (a cancel may overtake the
request it cancels). Once the cancel is applied the outcome is definite:
either the request was applied first (and its result delivered) or it never
will be, and the caller gets ``OperationTimeoutError``. Only if even the
cancel cannot commit does the caller get ``UnknownOutcomeError``.

The number of requests in flight is bounded: a caller waits for a slot up to
its own deadline (or, with ``wait_for_slot=False``, gets
``TooManyRequestsError`` at once), so overload gives waits or errors, never
an unbounded queue.
"""

from __future__ import annotations

import collections
import concurrent.futures
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import ErrorCode, OperationTimeoutError, SessionExpiredError, TooManyRequestsError, UnknownOutcomeError
from .metrics import MemberMetrics
from .ops import ENTRY_FORMAT, keepalive_op, make_entry
from .replication import FailureKind
from .tree import Applied

logger = logging.getLogger(__name__)

Propose = Callable[[tuple[Any, ...], Callable[[str, str], None]], None]
Convert = Callable[[Applied], Any]

#: Go-back rounds are at least this far apart, however many losses are
#: reported (without a leader every proposal fails at once).
_GO_BACK_MIN_INTERVAL_S = 0.1
#: A cancellation races a deadline, so it is retried more eagerly than a write.
_CANCEL_RETRY_S = 0.2
#: The retransmission timeout is this many times the smoothed commit latency
#: (never below the configured minimum, never above the maximum).
_RTO_LATENCY_FACTOR = 4.0
_RTO_MAX_S = 5.0
#: Consecutive unanswered probes double the wait, up to this factor.
_PROBE_BACKOFF_MAX = 8
_LATENCY_SMOOTHING = 0.125  # TCP's alpha for SRTT
_OUT_OF_ORDER = int(ErrorCode.OUT_OF_ORDER)


class _Slots:
    """The in-flight bound: a counting semaphore whose waiters are woken in
    batches.

    At saturation every settled request frees a slot; waking a blocked
    submitter for each one (a futex wake, a GIL hand-off and contention for
    the tracker's locks with the Raft thread that settles them) costs more
    than the request. Here a waiter is woken once ``batch`` slots are free
    and then takes them one by one without blocking; it also looks on its
    own every ``poll_s``, so a slot never stays unused for longer than that.
    """

    def __init__(self, size: int, batch: int = 32, poll_s: float = 0.002) -> None:
        self._size = size
        self._free = size
        self._batch = max(1, min(batch, size // 4))
        self._poll_s = poll_s
        self._waiters = 0
        self._cond = threading.Condition(threading.Lock())

    def acquire(self, timeout: float) -> bool:
        """Take a slot, waiting up to ``timeout`` s (0: do not wait)."""
        with self._cond:
            if self._free > 0:
                self._free -= 1
                return True
            if timeout <= 0:
                return False
            end = time.monotonic() + timeout
            self._waiters += 1
            try:
                while self._free <= 0:
                    remaining = end - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(min(remaining, self._poll_s))
            finally:
                self._waiters -= 1
            self._free -= 1
            return True

    def release(self) -> None:
        with self._cond:
            if self._free >= self._size:
                raise ValueError("slot released too many times")
            self._free += 1
            if self._waiters and self._free >= self._batch:
                self._cond.notify(self._free)


class _Pending:
    __slots__ = (
        "cancel_of",
        "cancelling",
        "convert",
        "deadline",
        "entry",
        "first_sent_at",
        "future",
        "holds_slot",
        "last_failure",
        "last_seq",
        "probe",
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
        self.sent_at = self.first_sent_at = 0.0
        self.sends = 0
        self.last_seq = 0  # send sequence number of the latest copy
        self.probe = False  # a keepalive sent to learn what was lost: dropped at its deadline
        # Past its deadline with a cancel in flight: never re-sent or re-cancelled.
        self.cancelling = False

    def failure_note(self) -> str:
        return f" (last report from Raft: {self.last_failure})" if self.last_failure else ""


class RequestTracker:
    """Proposes this member's requests and matches applied entries to them.

    Thread model: ``submit`` runs on caller threads, ``on_applied`` on the
    replication thread (under the node lock), ``tick`` on the housekeeping
    thread. Proposals are made under the send lock (so they leave in the
    order their sequence numbers were given) and never under the state lock;
    ``on_applied`` takes only the state lock.
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
        metrics: MemberMetrics | None = None,
    ) -> None:
        self._propose = propose
        self._metrics = metrics if metrics is not None else MemberMetrics()
        self._future_factory = future_factory
        self._max_in_flight = max_in_flight
        self._slots = _Slots(max_in_flight)
        self._min_rto_s = retry_interval_s
        self._cancel_grace_s = cancel_grace_s
        self._clock = clock
        self._wall_clock_ms = wall_clock_ms
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()  # taken before _lock, never after it
        self._session_id = 0
        self._request_ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}  # insertion order == request id order
        self._deadlines: list[tuple[float, int]] = []  # heap of (deadline, request id)
        self._cancels: set[int] = set()  # request ids of the pending cancels
        # Copies sent and not yet back, in send order: (sequence number, request id).
        self._copies: collections.deque[tuple[int, int]] = collections.deque()
        self._copies_of: dict[int, int] = {}  # request id -> how many of its copies are in _copies
        self._send_seq = 0
        self._lost_from: int | None = None  # the lowest request id known lost, until go-back
        self._go_back_not_before = 0.0
        self._last_answer = 0.0  # when a copy last came back (or copies went out after a quiet spell)
        self._probe_backoff = 1
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
        """Seconds of silence (no copy back) before the tracker probes."""
        latency = self._smoothed_latency_s
        if latency is None:
            return self._min_rto_s
        return min(_RTO_MAX_S, max(self._min_rto_s, _RTO_LATENCY_FACTOR * latency))

    def begin_session(self, session_id: int, first_request_id: int = 1) -> None:
        """Switch to a new session: requests of the old one fail (their
        session is gone, so the tree will never apply them). Request ids
        continue from ``first_request_id`` (a session resumed on another
        member starts above every id its previous member used)."""
        with self._lock:
            orphans = list(self._pending.values())
            self._pending.clear()
            self._deadlines.clear()
            self._forget_copies()
            self._session_id = session_id
            self._request_ids = itertools.count(first_request_id)
        for pending in orphans:
            self._finish(pending, exc=SessionExpiredError("the session was lost before this request was applied"))

    def _forget_copies(self) -> None:
        self._cancels.clear()  # (every caller also clears _pending)
        self._copies.clear()
        self._copies_of.clear()
        self._lost_from = None
        self._probe_backoff = 1

    def submit(
        self, op: tuple[Any, ...], convert: Convert, timeout: float, *, wait_for_slot: bool = True
    ) -> concurrent.futures.Future[Any]:
        """Propose ``op`` and return a future for its converted result.

        With every slot busy, waits for one up to ``timeout`` (then raises
        ``OperationTimeoutError``), or with ``wait_for_slot=False`` raises
        ``TooManyRequestsError`` at once; either way nothing was sent.
        """
        deadline = self._clock() + timeout
        if wait_for_slot:
            if not self._slots.acquire(timeout):
                raise OperationTimeoutError(
                    f"{self._max_in_flight} requests are already in flight on this member; "
                    f"no slot freed up within {timeout:.3g}s (the request was not sent)"
                )
        elif not self._slots.acquire(0):
            raise TooManyRequestsError(
                f"{self._max_in_flight} requests are already in flight on this member (max_in_flight); "
                "the request was not sent"
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
        time_ms = self._wall_clock_ms()
        # Validated here, outside both locks, with stand-in ids: the real entry
        # differs only in ids the tracker makes (and may not fail to be valid).
        make_entry(self._session_id, 1, 0, time_ms, op)
        with self._send_lock:
            with self._lock:
                pending, seq = self._new_request(op, time_ms, convert, deadline, future, cancel_of, holds_slot)
            self._send(pending, seq)
        return future

    def _new_request(
        self,
        op: tuple[Any, ...],
        time_ms: int,
        convert: Convert,
        deadline: float,
        future: concurrent.futures.Future[Any],
        cancel_of: int | None,
        holds_slot: bool,
    ) -> tuple[_Pending, int]:
        """A new pending request and the sequence number of its first copy
        (under both locks; ``op`` already validated, see ``_register``)."""
        request_id = next(self._request_ids)
        ack_below = next(iter(self._pending), request_id)
        entry = (ENTRY_FORMAT, self._session_id, request_id, ack_below, time_ms, op)
        pending = _Pending(request_id, entry, future, convert, deadline, cancel_of, holds_slot)
        self._pending[request_id] = pending
        if cancel_of is not None:
            self._cancels.add(request_id)
        heapq.heappush(self._deadlines, (deadline, request_id))
        seq = self._mark_sent(pending)
        pending.first_sent_at = pending.sent_at
        return pending, seq

    def _mark_sent(self, pending: _Pending) -> int:
        """Number the next copy of ``pending`` (under the state lock, with the
        send lock held until the copy is proposed)."""
        now = self._clock()
        if not self._copies:
            self._last_answer = now  # the silence clock starts with the first copy out
        self._send_seq += 1
        seq = self._send_seq
        pending.sent_at = now
        pending.sends += 1
        pending.last_seq = seq
        self._copies.append((seq, pending.request_id))
        self._copies_of[pending.request_id] = self._copies_of.get(pending.request_id, 0) + 1
        return seq

    def _send(self, pending: _Pending, seq: int) -> None:
        def on_failure(kind: str, reason: str) -> None:
            pending.last_failure = reason
            self._metrics.proposals_failed += 1
            if kind == FailureKind.NOT_APPENDED:
                with self._lock:
                    if pending.last_seq == seq:  # its latest copy never entered the log
                        self._mark_lost(pending)

        self._propose(pending.entry, on_failure)

    def _mark_lost(self, pending: _Pending) -> None:
        if pending.cancelling or self._pending.get(pending.request_id) is not pending:
            return  # settled, or waiting for its cancel: never re-sent
        if self._lost_from is None or pending.request_id < self._lost_from:
            self._lost_from = pending.request_id

    def _answered(self, request_id: int) -> int:
        """A copy of ``request_id`` came back: match it to the oldest such copy
        in flight; every copy sent before it and not back was lost. Returns
        the copy's sequence number (0 if none was in flight: a copy from
        before a snapshot install or a non-FIFO path, which proves nothing)."""
        if not self._copies_of.get(request_id):
            return 0
        self._last_answer = self._clock()
        self._probe_backoff = 1
        copies, copies_of, pending_by_id = self._copies, self._copies_of, self._pending
        while True:
            seq, copy_of = copies.popleft()
            left = copies_of[copy_of] - 1
            if left:
                copies_of[copy_of] = left
            else:
                del copies_of[copy_of]
            if copy_of == request_id:
                return seq
            lost = pending_by_id.get(copy_of)
            if lost is not None and lost.last_seq == seq:
                self._mark_lost(lost)

    def on_applied(self, request_id: int, applied: Applied) -> None:
        """An entry of this member's current session was applied locally."""
        with self._lock:
            seq = self._answered(request_id)
            if applied.result[0] == _OUT_OF_ORDER:  # an earlier request was lost on the way
                refused = self._pending.get(request_id)
                if refused is not None and (seq == 0 or refused.last_seq == seq):
                    self._mark_lost(refused)
                return
            pending = self._pending.pop(request_id, None)
            if pending is None:
                return
            self._cancels.discard(request_id)
            now = self._clock()
            if pending.cancel_of is None and not pending.probe:
                self._metrics.write_latency.observe(now - pending.first_sent_at)
            if pending.sends == 1 and not applied.duplicate:
                self._sample_latency(now - pending.sent_at)
            cancelled = self._pending.pop(pending.cancel_of, None) if pending.cancel_of is not None else None
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
        """Act on passed deadlines, then repair losses (go-back), re-send
        overdue cancels and probe a silent pipeline."""
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
        with self._send_lock:
            with self._lock:
                sends = self._resends(now)
            for pending, seq in sends:
                self._send(pending, seq)

    def _resends(self, now: float) -> list[tuple[_Pending, int]]:
        """The copies to send now, numbered, in send order (under both locks):
        a probe if nothing came back for a retransmission timeout, and the
        re-sends of ``_resend_batch``."""
        sends: list[tuple[_Pending, int]] = []
        batch = self._resend_batch(now)
        silent_s = now - self._last_answer
        if not batch and self._copies and silent_s >= self.retransmission_timeout() * self._probe_backoff:
            self._last_answer = now
            self._probe_backoff = min(_PROBE_BACKOFF_MAX, 2 * self._probe_backoff)
            oldest = next((p for p in self._pending.values() if not p.cancelling and p.cancel_of is None), None)
            if oldest is not None:
                logger.debug("no answer for %.2fs: probing (oldest pending request %d)", silent_s, oldest.request_id)
                probe, seq = self._new_request(
                    keepalive_op(),
                    self._wall_clock_ms(),
                    lambda applied: None,
                    now + self._cancel_grace_s,
                    concurrent.futures.Future(),
                    None,
                    False,
                )
                probe.probe = True
                sends.append((probe, seq))
                if not oldest.probe:
                    self._refresh_ack(oldest, next(iter(self._pending)))
                    batch = [oldest]
        sends.extend((pending, self._mark_sent(pending)) for pending in batch)
        self._metrics.retransmissions += len(batch)
        return sends

    def _resend_batch(self, now: float) -> list[_Pending]:
        """What to re-send now, in id order: the go-back from the lowest lost
        request, and the cancels that are overdue."""
        if not self._pending:
            if self._copies:
                self._forget_copies()  # only copies of settled requests are out
            return []
        batch: list[_Pending] = []
        lost_from = self._lost_from
        if lost_from is not None and now >= self._go_back_not_before:
            self._lost_from = None
            self._go_back_not_before = now + _GO_BACK_MIN_INTERVAL_S
            batch = [p for p in self._pending.values() if p.request_id >= lost_from and not p.cancelling]
        if self._cancels:
            chosen = {p.request_id for p in batch}
            for request_id in sorted(self._cancels):
                cancel = self._pending.get(request_id)
                if cancel is not None and now - cancel.sent_at >= _CANCEL_RETRY_S and request_id not in chosen:
                    batch.append(cancel)
        if batch:
            batch.sort(key=lambda p: p.request_id)
            ack_below = next(iter(self._pending))
            for pending in batch:
                self._refresh_ack(pending, ack_below)
        return batch

    @staticmethod
    def _refresh_ack(pending: _Pending, ack_below: int) -> None:
        # A re-sent entry tells the tree the current ack_below, so a request
        # the member gave up on can never hold the session's later ones back.
        _format, session_id, request_id, old_ack, time_ms, op = pending.entry
        if ack_below > old_ack:
            pending.entry = make_entry(session_id, request_id, ack_below, time_ms, op)

    def _on_deadline(self, pending: _Pending) -> None:
        if pending.probe:  # its answer no longer matters; a later write's ack_below passes it
            with self._lock:
                self._pending.pop(pending.request_id, None)
            self._finish(pending, value=None)
            return
        if pending.cancel_of is not None:
            with self._lock:
                self._pending.pop(pending.request_id, None)
                self._cancels.discard(pending.request_id)
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
            self._metrics.requests_cancelled += 1
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
            self._forget_copies()
        for pending in orphans:
            self._finish(pending, exc=exc)
