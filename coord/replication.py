"""The replication adapter: the only module of coord that imports pysyncobj.

It turns pysyncobj's camelCase, callback-based SyncObj into a small
snake_case surface for the node: ``propose(entry, on_failure)``, a status
snapshot, and three hooks the node provides (apply one entry, take a
snapshot, restore a snapshot). Everything pysyncobj-specific (its config
names, FAIL_REASON codes, the replicated-method decorator, its transport's
utility commands) stays here, so an upgrade or a replacement of pysyncobj
touches one file.

Rules this module enforces, because pysyncobj 0.3.17 does not:

* the hooks never raise into pysyncobj: an exception escaping a replicated
  method makes pysyncobj retry the tick and apply the same entry twice
  (reliability.md R5), so every hook call is wrapped;
* the server binds the member's own address, never pysyncobj's 0.0.0.0
  default (R7);
* the journal and dump live under ``data_dir``; without ``data_dir`` nothing
  is kept (and a restarted member must rejoin with an empty log);
* no fork for snapshots (``useFork=False``): forking a multi-threaded host
  application is unsafe;
* the transport's remote admin commands that could change the cluster
  (``add``, ``remove``, ``set_version``, ``transfer``) are refused.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjConsumer, replicated
from pysyncobj.transport import TCPTransport
from pysyncobj.version import VERSION as PYSYNCOBJ_VERSION

from .errors import ConfigurationError

logger = logging.getLogger(__name__)

#: The pysyncobj release this adapter was written and tested against.
SUPPORTED_PYSYNCOBJ_VERSION = "0.3.17"

JOURNAL_FILE = "raft.journal"
DUMP_FILE = "raft.dump"

#: Raft roles as reported by ``status()``.
ROLE_FOLLOWER = "follower"
ROLE_CANDIDATE = "candidate"
ROLE_LEADER = "leader"
_ROLE_BY_STATE = {0: ROLE_FOLLOWER, 1: ROLE_CANDIDATE, 2: ROLE_LEADER}


class FailureKind:
    """Why pysyncobj could not complete a proposal, in coord's terms.

    ``NOT_APPENDED``: the entry certainly did not enter any log (queue full,
    no leader, forwarded to a non-leader); safe to retry at once.
    ``MAYBE_APPENDED``: the entry may sit in some log and may still commit
    (leader changed, discarded, unknown); retrying is safe only because the
    tree deduplicates by (session, request id).
    """

    NOT_APPENDED = "not_appended"
    MAYBE_APPENDED = "maybe_appended"


_FAILURES = {
    FAIL_REASON.QUEUE_FULL: (FailureKind.NOT_APPENDED, "the Raft command queue was full"),
    FAIL_REASON.MISSING_LEADER: (FailureKind.NOT_APPENDED, "there was no leader"),
    FAIL_REASON.NOT_LEADER: (FailureKind.NOT_APPENDED, "it was forwarded to a member that was no longer leader"),
    FAIL_REASON.REQUEST_DENIED: (FailureKind.NOT_APPENDED, "the leader denied it"),
    FAIL_REASON.DISCARDED: (FailureKind.MAYBE_APPENDED, "a new leader overwrote its log position"),
    FAIL_REASON.LEADER_CHANGED: (FailureKind.MAYBE_APPENDED, "the leader changed before it committed"),
    FAIL_REASON.UNKNOWN_OUTCOME: (FailureKind.MAYBE_APPENDED, "Raft lost track of it"),
}
_UNKNOWN_FAILURE = (FailureKind.MAYBE_APPENDED, "Raft reported an unknown failure")


@dataclasses.dataclass(frozen=True)
class RaftTiming:
    """Raft timers, in seconds.

    Defaults and why:

    * ``heartbeat_s`` 0.1: followers learn commits and liveness ten times a
      second; cheap on loopback.
    * ``election_timeout_min_s``/``max_s`` 0.8-1.6: eight or more missed
      heartbeats before a follower stands, so a loaded 2-core box does not
      trigger spurious elections, while a dead leader is replaced in about a
      second (coord's failover budget is session_timeout + a few seconds).
    * ``leader_fallback_s`` 0.7: a leader that has not heard from a majority
      for this long steps down. pysyncobj's default is 30 s, during which a
      deposed leader still believes it leads; keeping it below the minimum
      election timeout means an isolated leader normally steps down before
      the majority can elect a new one.
    * ``tick_s`` 0.05: the Raft thread's poll period; with unbatched appends
      new commands wake it at once, so this only bounds timer lag.
    """

    heartbeat_s: float = 0.1
    election_timeout_min_s: float = 0.8
    election_timeout_max_s: float = 1.6
    leader_fallback_s: float = 0.7
    tick_s: float = 0.05
    connection_timeout_s: float = 3.5
    connection_retry_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_s * 3 <= self.election_timeout_min_s:
            raise ConfigurationError(
                "RaftTiming: election_timeout_min_s must be at least 3 heartbeats "
                f"(heartbeat_s={self.heartbeat_s}, election_timeout_min_s={self.election_timeout_min_s})"
            )
        if self.election_timeout_max_s <= self.election_timeout_min_s:
            raise ConfigurationError("RaftTiming: election_timeout_max_s must exceed election_timeout_min_s")
        if not self.heartbeat_s < self.leader_fallback_s < self.election_timeout_min_s:
            raise ConfigurationError(
                "RaftTiming: leader_fallback_s must lie between heartbeat_s and election_timeout_min_s, "
                "so a deposed leader steps down before a new one can be elected"
            )


@dataclasses.dataclass(frozen=True)
class ReplicaStatus:
    """A point-in-time view of this member's Raft state."""

    role: str
    leader: str | None
    term: int
    commit_index: int
    last_applied: int
    has_quorum: bool
    ready: bool
    peers_connected: dict[str, bool]


class _GuardedTransport(TCPTransport):  # type: ignore[misc]
    """pysyncobj's TCP transport without the remote cluster-changing commands.

    pysyncobj accepts ``add``/``remove``/``set_version``/``transfer`` utility
    messages from any connection; coord changes membership only through its
    own API, so those handlers are never installed. ``status`` stays.
    """

    _REFUSED = frozenset({"add", "remove", "set_version", "transfer"})

    def setOnUtilityMessageCallback(self, message: str, callback: Any) -> None:  # noqa: N802 - pysyncobj's name
        if message in self._REFUSED:
            callback = None
        super().setOnUtilityMessageCallback(message, callback)


class _TreeConsumer(SyncObjConsumer):  # type: ignore[misc]
    """The single replicated entry point, plus snapshot hooks.

    pysyncobj harvests a consumer's attributes for snapshots; this class
    overrides ``_serialize``/``_deserialize`` so that only the node's
    canonical snapshot bytes are stored.
    """

    def __init__(
        self,
        apply_hook: Callable[[object], object],
        snapshot_hook: Callable[[], bytes],
        restore_hook: Callable[[bytes], None],
    ) -> None:
        super().__init__()
        self._apply_hook = apply_hook
        self._snapshot_hook = snapshot_hook
        self._restore_hook = restore_hook

    @replicated
    def apply_entry(self, entry: object) -> object:
        try:
            return self._apply_hook(entry)
        except Exception:  # never let pysyncobj re-apply this entry (R5)
            logger.exception("apply hook raised; the entry was consumed once")
            return None

    def _serialize(self) -> dict[str, bytes]:
        return {"coord_snapshot": self._snapshot_hook()}

    def _deserialize(self, data: dict[str, bytes]) -> None:
        try:
            self._restore_hook(data["coord_snapshot"])
        except Exception:
            logger.exception("restoring a snapshot failed")


def check_pysyncobj_version() -> None:
    """Fail loudly if the installed pysyncobj is not the audited release."""
    if PYSYNCOBJ_VERSION != SUPPORTED_PYSYNCOBJ_VERSION:
        raise ConfigurationError(
            f"coord's replication adapter was written for pysyncobj {SUPPORTED_PYSYNCOBJ_VERSION}, "
            f"but {PYSYNCOBJ_VERSION} is installed"
        )


def prepare_data_dir(data_dir: str) -> dict[str, str]:
    """Create ``data_dir`` (mode 0700) and return the Raft file paths in it.

    The journal and dump are pickles, so a directory others can write to is
    a code-execution hole: refuse to start in one.
    """
    os.makedirs(data_dir, mode=0o700, exist_ok=True)
    mode = os.stat(data_dir).st_mode & 0o777
    if mode & 0o022:
        raise ConfigurationError(
            f"data_dir {data_dir!r} is writable by group or others (mode {mode:o}); "
            "coord stores pickled Raft state there and requires mode 0700"
        )
    return {"journal": os.path.join(data_dir, JOURNAL_FILE), "dump": os.path.join(data_dir, DUMP_FILE)}


class Replicator:
    """One member's Raft replica, driven by pysyncobj's own tick thread.

    The node supplies three hooks; they run on pysyncobj's thread, must be
    quick and are shielded from raising. ``on_role_change`` is told about
    role changes (same thread).
    """

    def __init__(
        self,
        address: str,
        peers: Sequence[str],
        *,
        apply_hook: Callable[[object], object],
        snapshot_hook: Callable[[], bytes],
        restore_hook: Callable[[bytes], None],
        on_role_change: Callable[[str], None] | None = None,
        data_dir: str | None = None,
        secret: bytes | None = None,
        timing: RaftTiming | None = None,
        max_entry_bytes: int = 1 << 21,
        queue_size: int = 100_000,
        snapshot_entries: int = 100_000,
    ) -> None:
        check_pysyncobj_version()
        timing = timing or RaftTiming()
        self.address = address
        self._on_role_change = on_role_change
        self._consumer = _TreeConsumer(apply_hook, snapshot_hook, restore_hook)
        files = prepare_data_dir(data_dir) if data_dir else {"journal": None, "dump": None}
        conf = SyncObjConf(
            bindAddress=address,
            password=secret,
            # coord drives the ticks from its own thread: pysyncobj's auto-tick
            # thread quits as soon as the thread that built the SyncObj exits,
            # which an embedded library cannot control.
            autoTick=False,
            appendEntriesUseBatch=False,
            appendEntriesPeriod=timing.heartbeat_s,
            raftMinTimeout=timing.election_timeout_min_s,
            raftMaxTimeout=timing.election_timeout_max_s,
            leaderFallbackTimeout=timing.leader_fallback_s,
            connectionTimeout=timing.connection_timeout_s,
            connectionRetryTime=timing.connection_retry_s,
            # Entries are capped well below this, so pysyncobj's chunked path
            # for oversized entries (R6) is never taken.
            appendEntriesBatchSizeBytes=max(2 * max_entry_bytes, 1 << 16),
            commandsQueueSize=queue_size,
            commandsWaitLeader=False,
            logCompactionMinEntries=snapshot_entries,
            journalFile=files["journal"],
            fullDumpFile=files["dump"],
            useFork=False,
            dynamicMembershipChange=False,
            onStateChanged=self._state_changed,
        )
        others = [p for p in peers if p != address]
        self._tick_s = timing.tick_s
        # pysyncobj decides commits before it appends queued commands within a
        # tick; with peers their replies wake the next tick at once, but a lone
        # member would wait a whole tick_s per write, so it ticks again at once.
        self._lone_member = not others
        self._stopping = threading.Event()
        # With autoTick off the constructor binds the server synchronously,
        # so a busy port fails here, in the caller's thread.
        self._sync_obj = SyncObj(
            address, others, conf=conf, consumers=[self._consumer], transportClass=_GuardedTransport
        )
        self._thread = threading.Thread(target=self._tick_loop, name=f"coord-raft-{address}", daemon=True)
        self._thread.start()

    def _tick_loop(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._sync_obj.doTick(self._tick_s)
                    if self._lone_member:
                        self._sync_obj.doTick(0.0)
                except Exception:
                    logger.exception("pysyncobj tick failed on %s; retrying", self.address)
                    time.sleep(self._tick_s)
        finally:
            self._sync_obj.destroy()

    def _state_changed(self, old: int, new: int) -> None:
        role = _ROLE_BY_STATE.get(new, ROLE_FOLLOWER)
        logger.info("member %s is now %s", self.address, role)
        if self._on_role_change is not None:
            try:
                self._on_role_change(role)
            except Exception:
                logger.exception("role-change hook raised")

    def propose(self, entry: object, on_failure: Callable[[str, str], None]) -> None:
        """Hand ``entry`` to Raft. Success shows up through the apply hook;
        only failures come back, as ``(FailureKind, reason)``, on pysyncobj's thread."""

        if self._stopping.is_set():
            on_failure(FailureKind.NOT_APPENDED, "the member is stopping")
            return

        def callback(_result: object, error: int) -> None:
            if error == FAIL_REASON.SUCCESS:
                return
            try:
                on_failure(*_FAILURES.get(error, _UNKNOWN_FAILURE))
            except Exception:
                logger.exception("proposal failure handler raised")

        self._consumer.apply_entry(entry, callback=callback)

    def status(self) -> ReplicaStatus:
        """This member's Raft state (possibly stale by one tick)."""
        raw = self._sync_obj.getStatus()
        leader = raw.get("leader")
        peers = {
            key[len("partner_node_status_server_") :]: value == 2
            for key, value in raw.items()
            if key.startswith("partner_node_status_server_")
        }
        return ReplicaStatus(
            role=_ROLE_BY_STATE.get(raw["state"], ROLE_FOLLOWER),
            leader=getattr(leader, "address", None) if leader is not None else None,
            term=int(raw["raft_term"]),
            commit_index=int(raw["commit_idx"]),
            last_applied=int(raw["last_applied"]),
            has_quorum=bool(raw["has_quorum"]),
            ready=bool(self._sync_obj.isReady()),
            peers_connected=peers,
        )

    def is_leader(self) -> bool:
        """Whether pysyncobj believes this member leads (a deposed leader may
        still say yes for up to ``leader_fallback_s``: never base safety on it)."""
        return bool(self._sync_obj._isLeader())

    def leader_address(self) -> str | None:
        leader = self._sync_obj._getLeader()
        return getattr(leader, "address", None) if leader is not None else None

    def force_compaction(self) -> None:
        """Take a snapshot and truncate the log at the next tick."""
        self._sync_obj.forceLogCompaction()

    def destroy(self) -> None:
        """Stop the tick thread and close connections (waits for the thread)."""
        self._stopping.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                logger.warning("the Raft thread of %s did not stop within 5 s", self.address)
