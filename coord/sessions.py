"""Session liveness: who decides that a session expired, and when.

Sessions live in the replicated tree; this module holds the two clocks that
must never enter it:

* ``ExpiryTracker`` runs on every member but only the LEADER acts on it. It
  notes, on the member's own monotonic clock, when each session last showed
  activity in the applied log. A session silent for its timeout is due for
  an ``expire_session`` proposal, which carries the activity counter the
  leader saw: if a keepalive was committed in between, apply ignores the
  expiry (compare-and-expire), so the decision stays clock-free in the tree.
  A member that becomes leader restarts every session's clock (a new leader
  grants a fresh timeout, as ZooKeeper and etcd's lessor do), so a leader
  change can never expire a live session early.
* ``LivenessMonitor`` is the member's view of its OWN session: CONNECTED while
  its writes/keepalives commit, SUSPENDED after two thirds of the session
  timeout without one (ZooKeeper's client read timeout), LOST once the member
  applies its session's expiry.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable

from .types import SessionState

Clock = Callable[[], float]


@dataclasses.dataclass
class _Seen:
    activity: int
    at: float
    proposed_at: float | None = None


class ExpiryTracker:
    """Tracks session activity as applied on this member (not thread-safe:
    callers hold the node lock)."""

    def __init__(self, clock: Clock = time.monotonic, repropose_after_s: float = 1.0) -> None:
        self._clock = clock
        self._repropose_after_s = repropose_after_s
        self._seen: dict[int, _Seen] = {}

    def observe(self, session_id: int, activity: int) -> None:
        """A session's activity counter as of an entry just applied."""
        seen = self._seen.get(session_id)
        if seen is None or seen.activity != activity:
            self._seen[session_id] = _Seen(activity, self._clock())

    def forget(self, session_id: int) -> None:
        self._seen.pop(session_id, None)

    def restart_all(self, sessions: Iterable[tuple[int, int]]) -> None:
        """Give every (session_id, activity) a fresh timeout from now: used
        when this member becomes leader and after a snapshot install."""
        now = self._clock()
        self._seen = {sid: _Seen(activity, now) for sid, activity in sessions}

    def due(self, sessions: Iterable[tuple[int, int, int]]) -> list[tuple[int, int]]:
        """(session_id, activity) pairs whose timeout ran out on this clock.

        ``sessions`` is (session_id, timeout_ms, activity) for every open
        session of the tree. A pair is returned again only after
        ``repropose_after_s``, so a lost proposal is retried without flooding.
        """
        now = self._clock()
        result = []
        live = set()
        for sid, timeout_ms, activity in sessions:
            live.add(sid)
            seen = self._seen.get(sid)
            if seen is None or seen.activity != activity:
                self._seen[sid] = _Seen(activity, now)
                continue
            if now - seen.at < timeout_ms / 1000.0:
                continue
            if seen.proposed_at is not None and now - seen.proposed_at < self._repropose_after_s:
                continue
            seen.proposed_at = now
            result.append((sid, activity))
        for sid in [s for s in self._seen if s not in live]:
            del self._seen[sid]
        return result


class LivenessMonitor:
    """This member's own session state, from the fate of its requests."""

    def __init__(self, session_timeout_s: float, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._suspend_after_s = session_timeout_s * 2.0 / 3.0
        self._last_commit = clock()
        self.state = SessionState.LOST

    def connected(self) -> str | None:
        """A new session is open. Returns the new state if it changed."""
        self._last_commit = self._clock()
        return self._set(SessionState.CONNECTED)

    def committed(self) -> str | None:
        """One of this session's requests was applied."""
        self._last_commit = self._clock()
        if self.state == SessionState.SUSPENDED:
            return self._set(SessionState.CONNECTED)
        return None

    def check(self) -> str | None:
        """Called periodically: suspend after too long without a commit."""
        if self.state == SessionState.CONNECTED and self._clock() - self._last_commit > self._suspend_after_s:
            return self._set(SessionState.SUSPENDED)
        return None

    def lost(self) -> str | None:
        """The session was expired or closed through the log."""
        return self._set(SessionState.LOST)

    def _set(self, state: str) -> str | None:
        if state == self.state:
            return None
        self.state = state
        return state
