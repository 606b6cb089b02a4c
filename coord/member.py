"""The member: one embedded Raft replica of the znode tree and the
machinery around it, under the kazoo-compatible ``Coordinator`` facade.

A member wires the layers together: the pure ``Tree`` (guarded by one lock),
the replication adapter, the request tracker (at-most-once writes with
deadlines), the watch registry and its callback dispatcher, and the session
clocks. It owns three kinds of thread:

* pysyncobj's Raft thread calls ``_apply_entry`` for every committed entry:
  apply to the tree, queue triggered watches, settle this member's pending
  requests, all under the lock and before the new state is readable;
* ``coord-callbacks`` runs watch, listener and future callbacks;
* ``coord-housekeeping`` retries and times out requests, sends keepalives,
  follows this member's session and, on the leader, proposes expiries.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
import math
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import ops
from .acl import Permissions, auth_id_problem, redact_digests, resolve_auth
from .errors import (
    CoordError,
    NoAuthError,
    NoNodeError,
    NotReadyError,
    PoisonedError,
    UnknownOutcomeError,
    error_for_code,
)
from .logs import RateLimitedLog
from .metrics import MemberMetrics, MetricsServer, MetricValue, parse_metrics_address
from .persistent_watches import DEFAULT_MAX_QUEUED, PersistentWatches
from .replication import (
    DURABILITY_FSYNC,
    DURABILITY_MODES,
    DURABILITY_PROCESS_CRASH,
    ROLE_CANDIDATE,
    ROLE_LEADER,
    RaftTiming,
    ReplicaStatus,
    Replicator,
)
from .requests import RequestTracker
from .security import check_network_exposure, load_secret, split_address
from .sessions import ExpiryTracker, LivenessMonitor
from .tree import Applied, Tree
from .types import SessionState, ZnodeStat
from .watches import Dispatcher, WatchCallback, WatchRegistry

if TYPE_CHECKING:
    from .testing.faults import NetworkFaults

logger = logging.getLogger(__name__)

_OK = 0
_HOUSEKEEPING_PERIOD_S = 0.05
_CLOSE_SESSION_WAIT_S = 1.0


@dataclasses.dataclass(frozen=True)
class MemberStatus:
    """What ``Coordinator.status()`` reports about this member."""

    address: str
    role: str
    leader: str | None
    term: int
    zxid: int
    session_id: int
    session_state: str
    commit_index: int
    last_applied: int
    has_quorum: bool
    peers_connected: dict[str, bool]
    znode_count: int
    requests_in_flight: int
    #: Open sessions in the replica (every member's, not only this one's).
    sessions: int = 0
    #: The voters as this member knows them, sorted.
    voters: tuple[str, ...] = ()
    #: Observers connected to this member (a voter), by the name they gave.
    observers: tuple[str, ...] = ()
    #: Leader only: each peer's lag in Raft log entries (leader's last log
    #: index minus the peer's match index), observers included; else empty.
    peer_lag: dict[str, int] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict (for logs and health endpoints)."""
        return dataclasses.asdict(self)


class CoordFuture(concurrent.futures.Future):  # type: ignore[type-arg]
    """A Future whose done-callbacks run on the member's callback thread,
    never on the replication thread that resolves it."""

    _dispatcher: Dispatcher | None = None
    #: The zxid of the replica state the result reflects (ZooKeeper's reply
    #: header zxid): the entry's zxid for a write, the replica's for a read.
    zxid: int | None = None

    def add_done_callback(self, fn: Callable[[concurrent.futures.Future[Any]], object]) -> None:
        dispatcher = self._dispatcher
        if dispatcher is None or self.done():
            super().add_done_callback(fn)
        else:
            super().add_done_callback(lambda future: dispatcher.submit(fn, future))


def check_timeout(timeout: object) -> None:
    """A per-call timeout must be None (the member's default) or a finite
    number of seconds above 0: anything else raises before a request exists."""
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, got {type(timeout).__name__}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a finite number of seconds above 0, got {timeout!r}")


def raise_for_result(applied: Applied, path: str) -> None:
    """Raise the kazoo-named error of a failed op's result (no-op on success)."""
    code = applied.result[0]
    if code != _OK:
        raise error_for_code(code, path)


class Member:
    """One replica and its session; see ``Coordinator`` for the parameters."""

    def __init__(
        self,
        address: str,
        peers: Sequence[str] = (),
        *,
        data_dir: str | None = None,
        secret: str | bytes | None = None,
        secret_file: str | None = None,
        session_timeout: float = 10.0,
        request_timeout: float = 10.0,
        max_data_bytes: int = ops.DEFAULT_MAX_DATA_BYTES,
        max_in_flight: int = 1000,
        raft_timing: RaftTiming | None = None,
        snapshot_entries: int = 100_000,
        durability: str = DURABILITY_PROCESS_CRASH,
        wait_for_slot: bool = True,
        network_faults: NetworkFaults | None = None,
        observer: bool = False,
        join: bool = False,
        reap_interval: float = 1.0,
        max_watch_queue: int = DEFAULT_MAX_QUEUED,
        super_digest: str | None = None,
        zk_address: str | None = None,
        zk_options: dict[str, Any] | None = None,
        metrics_address: str | None = None,
        metrics_allow_remote: bool = False,
    ) -> None:
        split_address(address)
        if zk_address is not None:
            split_address(zk_address)
        if zk_options:
            from .zk.server import OPTION_NAMES

            unknown = sorted(set(zk_options) - OPTION_NAMES)
            if unknown:
                raise ValueError(f"unknown zk_options {unknown}; known: {sorted(OPTION_NAMES)}")
        #: ZooKeeper client-protocol listener address (None: no listener); see coord.zk.
        self.zk_address = zk_address
        self._zk_options = dict(zk_options or {})
        self._zk_server: Any = None
        #: Called under the lock on the Raft thread: see ``add_apply_hook``.
        self._apply_hooks: list[Any] = []
        peer_list = [p for p in peers if p != address]
        if not isinstance(observer, bool) or not isinstance(join, bool):
            raise TypeError("observer and join must be bools")
        if observer and join:
            raise ValueError("join is for a new voter; an observer needs no membership change")
        if observer and not peer_list:
            raise ValueError("an observer needs the voters' addresses in peers")
        self.observer = observer
        self.join = join
        for peer in peer_list:
            split_address(peer)
        if not session_timeout > 0 or not request_timeout > 0:
            raise ValueError("session_timeout and request_timeout must be positive")
        if type(max_data_bytes) is not int or not 0 < max_data_bytes <= ops.HARD_MAX_DATA_BYTES:
            raise ValueError(f"max_data_bytes must be an int in 1..{ops.HARD_MAX_DATA_BYTES}, got {max_data_bytes!r}")
        self._secret = load_secret(secret, secret_file)
        check_network_exposure(address, peer_list, self._secret, zk_address)
        self.address = address
        self.peers = tuple(peer_list)
        self.data_dir = data_dir
        self.session_timeout = float(session_timeout)
        self.request_timeout = float(request_timeout)
        self.max_data_bytes = max_data_bytes
        self._max_in_flight = max_in_flight
        if not isinstance(wait_for_slot, bool):
            raise TypeError(f"wait_for_slot must be a bool, got {type(wait_for_slot).__name__}")
        #: With every in-flight slot busy: wait for one (True) or raise TooManyRequestsError.
        self.wait_for_slot = wait_for_slot
        self._raft_timing = raft_timing or RaftTiming()
        if type(snapshot_entries) is not int or snapshot_entries < 10:
            raise ValueError(f"snapshot_entries must be an int >= 10, got {snapshot_entries!r}")
        self._snapshot_entries = snapshot_entries
        # Tree changes since the last snapshot, a multi counting each of its
        # ops: pysyncobj counts log entries, so a log of large multis would
        # otherwise go unsnapshotted and a restart would replay all of it.
        self._ops_since_snapshot = 0
        if durability not in DURABILITY_MODES:
            raise ValueError(f"durability must be one of {', '.join(DURABILITY_MODES)}, got {durability!r}")
        if durability == DURABILITY_FSYNC and data_dir is None:
            raise ValueError('durability="fsync" needs a data_dir')
        self.durability = durability
        self._network_faults = network_faults
        if not isinstance(reap_interval, (int, float)) or not reap_interval > 0:
            raise ValueError(f"reap_interval must be a positive number of seconds, got {reap_interval!r}")
        self.reap_interval = float(reap_interval)
        self._next_reap = 0.0
        self._reaping: set[str] = set()  # reap entries proposed and not yet settled
        #: Leader only: path -> (mzxid, monotonic time this leader first saw
        #: that version of the TTL node). Restarts empty with each term.
        self._ttl_seen: dict[str, tuple[int, float]] = {}

        self._lock = threading.Lock()  # guards the tree, watches and session bookkeeping
        self._tree = Tree(max_data_bytes=ops.HARD_MAX_DATA_BYTES)
        self._watches = WatchRegistry()
        self._persistent = PersistentWatches(max_queued=max_watch_queue)
        self._listeners: list[Callable[[str], Any]] = []
        self._expiry = ExpiryTracker()
        self._liveness = LivenessMonitor(self.session_timeout)
        self._became_leader = False
        self._session_lost = False
        self._opening_session = False
        self._poisoned = False
        self._started = False
        self._serving = False  # start() completed and stop() not yet begun
        self._stopping = False
        self._dispatcher: Dispatcher | None = None
        self._replicator: Replicator | None = None
        self._requests: RequestTracker | None = None
        self._housekeeping: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._last_keepalive = 0.0
        if super_digest is not None and (type(super_digest) is not str or auth_id_problem("digest", super_digest)):
            raise ValueError(f"super_digest must be 'user:base64(sha1(user:password))', got {super_digest!r}")
        #: ZooKeeper's superDigest: a digest add_auth that resolves to it also gains the super id.
        self.super_digest = super_digest
        #: Ids this member's session authenticated with ``add_auth``; every
        #: new session of this member gets them again (kazoo re-sends its auth_data).
        self._auth_ids: tuple[tuple[str, str], ...] = ()
        # Metrics and operational logs (coord.metrics, coord.logs).
        if metrics_address is not None:
            parse_metrics_address(metrics_address, allow_remote=metrics_allow_remote)
        self._metrics_address = metrics_address
        self._metrics_allow_remote = metrics_allow_remote
        self._metrics_server: MetricsServer | None = None
        self._metrics = MemberMetrics()
        self._started_at = time.monotonic()
        self._known_leader: str | None = None  # housekeeping thread
        self._events = RateLimitedLog(logger, interval_s=10.0, burst=5)

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 15.0) -> None:
        """Join the cluster and open this member's session.

        Returns once a leader exists, this replica has caught up with the
        commit index it learned, and the session is open.

        :raises NotReadyError: no leader/quorum within ``timeout``.
        """
        if self._started:
            return
        deadline = time.monotonic() + timeout
        if not self.observer:  # an observer listens on nothing
            self._check_port_free()
        self._stop_event.clear()
        self._stopping = False
        with self._lock:
            # Raft replays the journal (or a peer sends everything) into the
            # replica, so a restarted member begins from an empty tree.
            self._tree = Tree(max_data_bytes=ops.HARD_MAX_DATA_BYTES)
            self._poisoned = False
            self._session_lost = False
            self._became_leader = False
        self._dispatcher = Dispatcher(name=f"coord-callbacks-{self.address}")
        future_factory = self.new_future
        try:
            replicator = Replicator(
                self.address,
                self.peers,
                apply_hook=self._apply_entry,
                snapshot_hook=self._snapshot,
                restore_hook=self._restore,
                on_role_change=self._role_changed,
                data_dir=self.data_dir,
                secret=self._secret,
                timing=self._raft_timing,
                max_entry_bytes=ops.HARD_MAX_DATA_BYTES + ops.MAX_ENTRY_OVERHEAD_BYTES,
                snapshot_entries=self._snapshot_entries,
                durability=self.durability,
                network_faults=self._network_faults,
                observer=self.observer,
                joining=self.join,
            )
        except BaseException:
            # A refused start (bad data_dir, port taken) must leave nothing running.
            self._dispatcher.stop()
            self._dispatcher = None
            raise
        self._replicator = replicator
        replicator.status_provider = lambda: self.status().to_dict()  # `coord status` asks over the peer port
        self._requests = RequestTracker(
            self._replicator.propose,
            future_factory,
            max_in_flight=self._max_in_flight,
            cancel_grace_s=min(3.0, self.session_timeout),
            metrics=self._metrics,
        )
        self._started = True
        self._started_at = time.monotonic()
        self._known_leader = None
        try:
            self._wait_until_ready(deadline)
            opened = self._begin_session()
            self._housekeeping = threading.Thread(
                target=self._housekeeping_loop, name=f"coord-housekeeping-{self.address}", daemon=True
            )
            self._housekeeping.start()
            remaining = max(0.1, deadline - time.monotonic())
            try:
                opened.result(timeout=remaining + self.request_timeout)
            except concurrent.futures.TimeoutError:
                raise NotReadyError(f"member {self.address} could not open its session in time") from None
            except CoordError as exc:
                raise NotReadyError(f"member {self.address} could not open its session: {exc!r}") from exc
            self._session_opened(opened)
        except BaseException:
            self.stop()
            raise
        # Only now may callers read or write: before, the replica may be half
        # replayed and writes would carry no session (and no deduplication).
        self._serving = True
        if self._metrics_address is not None:
            try:
                self._start_metrics_server(self._metrics_address)
            except BaseException:
                self.stop()
                raise
        if self.zk_address is not None:
            try:
                self._start_zk_server()
            except BaseException:
                self.stop()
                raise
        logger.info("member %s started (session 0x%x)", self.address, self.session_id)

    def stop(self) -> None:
        """Close this member's session (its ephemerals go at once) and leave.

        The member stays a voter of the cluster configuration: stopping it
        is like a crash to the others, minus the session timeout.
        """
        if not self._started or self._stopping:
            return
        self._stopping = True
        self._serving = False
        if self._metrics_server is not None:
            self._metrics_server.stop()
            self._metrics_server = None
        if self._zk_server is not None:
            self._zk_server.stop()
            self._zk_server = None
        requests = self._requests
        if self._can_close_session():
            assert requests is not None
            # Best effort and brief: if the close cannot commit (the other
            # members are leaving too), the leader expires the session anyway.
            wait_s = min(_CLOSE_SESSION_WAIT_S, self.request_timeout)
            try:
                requests.submit(("close_session",), lambda a: None, wait_s).result(timeout=wait_s)
            except (CoordError, concurrent.futures.TimeoutError) as exc:
                logger.info("session of %s not closed through the log (%r); it will expire", self.address, exc)
        self._stop_event.set()
        if self._housekeeping is not None and self._housekeeping is not threading.current_thread():
            self._housekeeping.join(timeout=5.0)
        if self._replicator is not None:
            self._replicator.destroy()
        if requests is not None:
            requests.fail_all(NotReadyError(f"member {self.address} stopped"))
        with self._lock:
            self._watches.clear()  # like a closed kazoo client's
        if self._dispatcher is not None:
            self._dispatcher.stop()
        self._persistent.stop()
        self._started = False
        logger.info("member %s stopped", self.address)

    def _can_close_session(self) -> bool:
        requests, replicator = self._requests, self._replicator
        if requests is None or replicator is None or not requests.session_id:
            return False
        if self._poisoned or self._session_lost:
            return False
        status = replicator.status()
        # Without a quorum the close cannot commit; the leader will expire
        # the session after its timeout instead.
        return status.leader is not None and status.has_quorum

    def _check_port_free(self) -> None:
        host, port = split_address(self.address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise NotReadyError(f"cannot bind member address {self.address}: {exc.strerror}") from None

    def _wait_until_ready(self, deadline: float) -> None:
        assert self._replicator is not None
        while time.monotonic() < deadline:
            status = self._replicator.status()
            if status.leader is not None and status.ready:
                return
            time.sleep(0.02)
        raise NotReadyError(
            f"member {self.address} found no leader within the start timeout "
            f"(peers: {', '.join(self.peers) or 'none'}); is a majority of the members running?"
        )

    def _begin_session(self) -> concurrent.futures.Future[Any]:
        """Open a fresh session through the log (never blocks)."""
        assert self._requests is not None
        session_id = secrets.randbits(63) or 1
        with self._lock:
            self._session_lost = False
            self._opening_session = True
        self._requests.begin_session(session_id)
        timeout_ms = int(self.session_timeout * 1000)
        future = self._requests.submit(
            ("open_session", timeout_ms), functools.partial(raise_for_result, path="/"), self.request_timeout
        )
        future.add_done_callback(self._session_opened)
        for scheme, ident in self._auth_ids:  # FIFO: applied before any later request of the session
            self._requests.submit(ops.add_auth_op(scheme, ident), lambda applied: None, self.request_timeout)
        return future

    def _session_opened(self, future: concurrent.futures.Future[Any]) -> None:
        """Done-callback of the open_session request (idempotent)."""
        with self._lock:
            if not self._opening_session:
                return
            self._opening_session = False
            error = future.exception()
            if error is not None:
                logger.warning("member %s could not open a session: %r; retrying", self.address, error)
                self._session_lost = True
                return
            state = self._liveness.connected()
            self._last_keepalive = time.monotonic()
        logger.info("member %s has session 0x%x", self.address, self.session_id)
        self._notify(state)

    # ------------------------------------------------------------------ replication hooks (tick thread)

    def _apply_entry(self, entry: object) -> None:
        with self._lock:
            if self._poisoned:
                return
            try:
                applied = self._tree.apply(entry)
            except Exception:
                self._poisoned = True
                logger.critical("the tree raised while applying an entry; this replica stops serving", exc_info=True)
                return
            self._metrics.commits += 1
            if applied.result[1] is True and isinstance(entry, tuple) and len(entry) > 5:
                self._note_expiry(entry[5], applied)  # (OK, True): an expiry or a reap did something
            if applied.events and self._dispatcher is not None:
                self._dispatcher.submit_all(self._watches.trigger(applied.events))
                self._persistent.publish(applied.events)
            for hook in self._apply_hooks:
                try:
                    hook.on_applied(entry, applied, self._tree)
                except Exception:
                    logger.exception("apply hook %r raised on %s", hook, self.address)
            requests = self._requests
            if requests is None or not isinstance(entry, tuple) or len(entry) < 6:
                return
            session_id = entry[1]
            if session_id and session_id == requests.session_id:
                state = self._liveness.committed()
                requests.on_applied(entry[2], applied)
                self._notify(state)
            op = entry[5]
            if isinstance(op, tuple) and op and op[0] in ("expire_session", "close_session"):
                self._check_session_gone()
            elif isinstance(op, tuple) and len(op) > 1 and op[0] == ops.REAP:
                self._reaping.discard(op[1])  # settled: a later node at this path may be reaped too
            if isinstance(op, tuple) and len(op) > 1 and op[0] == ops.MULTI and isinstance(op[1], tuple):
                self._ops_since_snapshot += len(op[1])
                if self._ops_since_snapshot >= self._snapshot_entries and self._replicator is not None:
                    self._ops_since_snapshot = 0
                    self._replicator.force_compaction()

    def _check_session_gone(self) -> None:
        requests = self._requests
        # While its open_session is pending, a session is not in the tree yet:
        # a replayed close/expire of an older session must not count as losing it.
        if requests is None or self._session_lost or self._stopping or self._opening_session:
            return
        if requests.session_id and not self._tree.has_session(requests.session_id):
            self._session_lost = True
            logger.warning("member %s lost its session 0x%x", self.address, requests.session_id)
            self._notify(self._liveness.lost())

    def _snapshot(self) -> bytes:
        with self._lock:
            started = time.monotonic()
            self._ops_since_snapshot = 0
            data = self._tree.snapshot()
            zxid, nodes = self._tree.zxid, self._tree.node_count()
        seconds = time.monotonic() - started
        metrics = self._metrics
        metrics.snapshots += 1
        metrics.last_snapshot_bytes = len(data)
        metrics.last_snapshot_seconds = seconds
        self._events.event(
            logging.INFO,
            "snapshot",
            "snapshot",
            "snapshot taken",
            member=self.address,
            zxid=zxid,
            znodes=nodes,
            bytes=len(data),
            seconds=seconds,
        )
        return data

    def _restore(self, data: bytes) -> None:
        started = time.monotonic()
        tree = Tree.restore(data, max_data_bytes=ops.HARD_MAX_DATA_BYTES)
        with self._lock:
            old, self._tree = self._tree, tree
            events = self._watches.changes_between(old, tree)
            if events and self._dispatcher is not None:
                self._dispatcher.submit_all(self._watches.trigger(events))
            self._persistent.publish(self._persistent.changes_between(old, tree))
            for hook in self._apply_hooks:
                try:
                    hook.on_restored(old, tree)
                except Exception:
                    logger.exception("apply hook %r raised on restore on %s", hook, self.address)
            self._expiry.restart_all(self._session_activities())
            requests = self._requests
            if requests is not None and requests.session_id:
                for request_id in requests.pending_ids():
                    result = tree.request_result(requests.session_id, request_id)
                    if result is not None:
                        requests.on_applied(request_id, Applied(tree.zxid, result, (), True))
                self._check_session_gone()
        self._metrics.snapshot_installs += 1
        self._events.event(
            logging.INFO,
            "snapshot-install",
            "snapshot_install",
            f"member {self.address} installed a snapshot",
            member=self.address,
            zxid=tree.zxid,
            znodes=tree.node_count(),
            bytes=len(data),
            seconds=time.monotonic() - started,
        )

    def _note_expiry(self, op: object, applied: Applied) -> None:
        """Count and log a session the leader expired (raft thread, under the lock)."""
        if not (isinstance(op, tuple) and len(op) > 1 and op[0] == "expire_session"):
            return
        self._metrics.session_expirations += 1
        deleted = sum(1 for kind, _path in applied.events if kind == "deleted")
        self._events.event(
            logging.INFO,
            "session-expired",
            "session_expired",
            "session expired",
            member=self.address,
            session=f"0x{op[1]:x}",
            ephemerals_deleted=deleted,
            zxid=applied.zxid,
        )

    def _role_changed(self, role: str) -> None:
        if role == ROLE_LEADER:
            with self._lock:
                self._became_leader = True
        elif role == ROLE_CANDIDATE:
            self._metrics.elections += 1
            # pysyncobj reports the candidacy just before it raises its term.
            term = self._term()
            self._events.event(
                logging.INFO,
                "election",
                "election_start",
                "election started",
                member=self.address,
                term=term + 1 if term >= 0 else term,
            )

    def _term(self) -> int:
        """The Raft term this member knows (-1 if it cannot say right now)."""
        replicator = self._replicator
        if replicator is None:
            return -1
        try:
            return replicator.status().term
        except Exception:  # read from another thread mid-change: the log line goes without it
            return -1

    def _watch_leader(self) -> None:
        """Count and log changes of the leader this member knows (housekeeping thread)."""
        assert self._replicator is not None
        leader = self._replicator.leader_address()
        previous = self._known_leader
        if leader == previous:
            return
        self._known_leader = leader
        if leader is None:
            self._events.event(
                logging.WARNING,
                "leader",
                "leader_lost",
                "no leader",
                member=self.address,
                previous=previous or "",
                term=self._term(),
            )
            return
        self._metrics.leader_changes += 1
        self._events.event(
            logging.INFO,
            "leader",
            "leader_change",
            "leader changed",
            member=self.address,
            leader=leader,
            previous=previous or "",
            term=self._term(),
        )

    # ------------------------------------------------------------------ housekeeping thread

    def _housekeeping_loop(self) -> None:
        while not self._stop_event.wait(_HOUSEKEEPING_PERIOD_S):
            try:
                self._housekeeping_step()
            except Exception:
                logger.exception("housekeeping step failed on %s", self.address)

    def _housekeeping_step(self) -> None:
        assert self._requests is not None and self._replicator is not None
        self._requests.tick()
        self._watch_leader()
        with self._lock:
            state = self._liveness.check()
            reopen = self._session_lost and not self._opening_session and not self._stopping
            idle = self._opening_session or self._session_lost
        self._notify(state)
        if reopen:
            self._begin_session()
        now = time.monotonic()
        if not idle and now - self._last_keepalive >= self.session_timeout / 3.0:
            self._last_keepalive = now
            # When every slot is busy with writes, those keep the session alive themselves.
            with contextlib.suppress(CoordError):
                self._requests.submit(("keepalive",), lambda a: None, self.session_timeout / 3.0, wait_for_slot=False)
        self._propose_expiries()
        self._propose_reaps()

    def _session_activities(self) -> list[tuple[int, int]]:
        return [(sid, activity) for sid, _timeout_ms, activity in self._tree.session_liveness()]

    def _propose_expiries(self) -> None:
        assert self._replicator is not None
        if not self._replicator.is_leader():
            with self._lock:
                self._became_leader = False
            return
        with self._lock:
            if self._became_leader:
                self._became_leader = False
                self._expiry.restart_all(self._session_activities())
                return
            due = self._expiry.due(self._tree.session_liveness())
        for session_id, activity in due:
            logger.info("leader %s expires session 0x%x (silent for its timeout)", self.address, session_id)
            entry = ops.make_entry(0, 0, 0, time.time_ns() // 1_000_000, ("expire_session", session_id, activity))
            self._replicator.propose(entry, lambda kind, reason: None)

    def _propose_reaps(self) -> None:
        """Leader only: propose deleting the containers that lost their
        last child and the TTL nodes this leader has seen unmodified for
        longer than their ttl.

        TTL time is measured on this leader's monotonic clock from when it
        first saw the node's current version, never by comparing wall
        clocks of different machines: a TTL node (and so a lease) can
        outlive its ttl by up to ``reap_interval`` and a leader change (a
        new leader starts timing afresh), but never ends early. Apply
        re-checks the version, so a node modified meanwhile stays.
        """
        assert self._replicator is not None
        now = time.monotonic()
        if not self._replicator.is_leader():
            self._reaping.clear()
            self._ttl_seen.clear()
            return
        if now < self._next_reap:
            return
        self._next_reap = now + self.reap_interval
        due: list[tuple[str, int]] = []
        with self._lock:
            seen, self._ttl_seen = self._ttl_seen, {}
            for path, mzxid, ttl_ms, reapable in self._tree.reap_candidates():
                first = seen.get(path)
                since = first[1] if first is not None and first[0] == mzxid else now
                self._ttl_seen[path] = (mzxid, since)
                expired = ttl_ms == 0 or (now - since) * 1000.0 > ttl_ms
                if reapable and expired and path not in self._reaping:
                    due.append((path, mzxid))
            self._reaping.update(path for path, _ in due)
        now_ms = time.time_ns() // 1_000_000
        for path, mzxid in due:
            logger.debug("leader %s reaps %s", self.address, path)

            def failed(kind: object, reason: object, path: str = path) -> None:
                with self._lock:
                    self._reaping.discard(path)

            self._replicator.propose(ops.make_entry(0, 0, 0, now_ms, ops.reap_op(path, mzxid)), failed)

    # ------------------------------------------------------------------ helpers

    def new_future(self) -> CoordFuture:
        future = CoordFuture()
        future._dispatcher = self._dispatcher
        return future

    def _notify(self, state: str | None) -> None:
        if state is None or self._dispatcher is None:
            return
        for listener in list(self._listeners):
            self._dispatcher.submit(listener, state)

    def check_usable(self) -> None:
        if not self._serving:
            raise NotReadyError(f"member {self.address} is not started (or still starting)")
        if self._poisoned:
            raise PoisonedError(f"member {self.address} stopped serving after an internal apply error")

    def submit(self, op: tuple[Any, ...], convert: Callable[[Applied], Any], timeout: float | None) -> CoordFuture:
        check_timeout(timeout)
        self.check_usable()
        ops.check_size(op, self.max_data_bytes)
        assert self._requests is not None
        future = self._requests.submit(
            op, convert, self.request_timeout if timeout is None else timeout, wait_for_slot=self.wait_for_slot
        )
        return future  # type: ignore[return-value]

    def wait(self, future: concurrent.futures.Future[Any], timeout: float | None) -> Any:
        check_timeout(timeout)
        # The tracker always settles a request (result, cancel or unknown);
        # this outer bound only guards against a dead housekeeping thread.
        limit = (self.request_timeout if timeout is None else timeout) + 10.0
        try:
            return future.result(timeout=limit)
        except concurrent.futures.TimeoutError:
            raise UnknownOutcomeError("no outcome was reported for the request") from None

    # ------------------------------------------------------------------ properties

    @property
    def session_id(self) -> int:
        """This member's current session id (0 before start)."""
        return self._requests.session_id if self._requests is not None else 0

    @property
    def state(self) -> str:
        """``SessionState`` of this member's session."""
        return self._liveness.state

    @property
    def connected(self) -> bool:
        return self._serving and self._liveness.state == SessionState.CONNECTED

    def add_listener(self, listener: Callable[[str], Any]) -> None:
        """Call ``listener(state)`` on CONNECTED / SUSPENDED / LOST changes
        (on the callback thread)."""
        if not callable(listener):
            raise TypeError("listener must be callable")
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[str], Any]) -> None:
        self._listeners.remove(listener)

    def metrics(self) -> dict[str, MetricValue]:
        """ZooKeeper ``mntr``-style metrics of this member (see ``coord.metrics``
        and the README's metrics reference): gauges read now, counters since
        this member object was built. Works while starting and when poisoned.

        :raises NotReadyError: the member is not started.
        """
        replicator, requests = self._replicator, self._requests
        if not self._started or replicator is None or requests is None:
            raise NotReadyError(f"member {self.address} is not started")
        raft = replicator.status()
        with self._lock:
            tree = self._tree
            values: dict[str, MetricValue] = {
                "znode_count": tree.node_count(),
                "ephemerals_count": tree.ephemeral_count(),
                "approximate_data_size": tree.approximate_data_size(),
                "num_sessions": len(tree.session_liveness()),
                "applied_zxid": tree.zxid,
                "watch_count": self._watches.count(),
            }
        queued, queued_max = self._persistent.queue_depths()
        write_seconds, write_bytes = replicator.snapshot_write_stats()
        followers = [peer for peer in raft.peers_connected if peer != self.address]
        lag = raft.peer_lag
        is_leader = raft.role == ROLE_LEADER
        dispatcher = self._dispatcher
        values.update(
            {
                "server_state": raft.role,
                "leader": raft.leader or "",
                "term": raft.term,
                "commit_index": raft.commit_index,
                "last_applied": raft.last_applied,
                "has_quorum": int(raft.has_quorum),
                "voters": len(raft.voters),
                "observers": len(raft.observers),
                "peers_connected": sum(1 for up in raft.peers_connected.values() if up),
                "followers": len(followers) if is_leader else 0,
                "synced_followers": (
                    sum(1 for peer in followers if raft.peers_connected[peer] and lag.get(peer, 1) == 0)
                    if is_leader
                    else 0
                ),
                "peer_lag_max": max(lag.values(), default=0) if is_leader else 0,
                "persistent_watch_count": self._persistent.count(),
                "watch_queue_depth": queued,
                "watch_queue_depth_max": queued_max,
                "callback_queue_depth": dispatcher.depth() if dispatcher is not None else 0,
                "outstanding_requests": requests.in_flight(),
                "refused_connections_total": replicator.refused_connections(),
                "last_snapshot_write_seconds": round(write_seconds, 6),
                "last_snapshot_write_bytes": write_bytes,
                "uptime_seconds": round(time.monotonic() - self._started_at, 3),
            }
        )
        values.update(self._metrics.counters())
        return dict(sorted(values.items()))

    @property
    def metrics_address(self) -> str | None:
        """``host:port`` the Prometheus endpoint listens on (the bound port
        when 0 was asked for), or None when it is not running."""
        server = self._metrics_server
        return server.address if server is not None else None

    def _start_metrics_server(self, address: str) -> None:
        host, port = parse_metrics_address(address, allow_remote=self._metrics_allow_remote)
        self._metrics_server = MetricsServer(host, port, self.metrics, lambda: self._metrics.write_latency)

    def status(self) -> MemberStatus:
        """This member's role, leader, term, applied zxid and session."""
        self.check_usable()
        assert self._replicator is not None and self._requests is not None
        raft: ReplicaStatus = self._replicator.status()
        with self._lock:
            zxid, count = self._tree.zxid, self._tree.node_count()
            sessions = len(self._tree.session_ids())
        return MemberStatus(
            address=self.address,
            role=raft.role,
            leader=raft.leader,
            term=raft.term,
            zxid=zxid,
            session_id=self.session_id,
            session_state=self._liveness.state,
            commit_index=raft.commit_index,
            last_applied=raft.last_applied,
            has_quorum=raft.has_quorum,
            peers_connected=raft.peers_connected,
            znode_count=count,
            requests_in_flight=self._requests.in_flight(),
            sessions=sessions,
            voters=raft.voters,
            observers=raft.observers,
            peer_lag=raft.peer_lag,
        )

    def change_membership(self, kind: str, address: str, timeout: float | None) -> None:
        """Add (``"add"``) or remove (``"rem"``) the voter ``address``
        through the Raft log; returns once the change is committed and
        applied on this member. See ``Coordinator.add_member``."""
        split_address(address)
        check_timeout(timeout)
        self.check_usable()
        assert self._replicator is not None
        self._replicator.change_membership(kind, address, self.request_timeout if timeout is None else timeout)

    # ------------------------------------------------------------------ local reads (under the lock)

    # Each read returns (result, zxid of the replica it was read from).

    def read_stat(self, path: str, watch: WatchCallback | None) -> tuple[ZnodeStat | None, int]:
        """The node's Stat or None, arming a data/exists watch if given."""
        self.check_usable()
        with self._lock:
            stat = self._tree.stat(path)
            if watch is not None:
                self._watches.add_data_watch(path, watch)
            return stat, self._tree.zxid

    def read_data(
        self, path: str, watch: WatchCallback | None, session_id: int | None = None
    ) -> tuple[tuple[bytes, ZnodeStat] | None, int]:
        """The node's value and Stat or None; a watch is armed only on an
        existing node the session may READ.

        :raises NoAuthError: ``session_id`` (default: this member's session)
            lacks READ on the node (no watch is armed).
        """
        self.check_usable()
        with self._lock:
            found = self._tree.get(path)
            if found is not None:
                self._require(path, Permissions.READ, session_id)
                if watch is not None:
                    self._watches.add_data_watch(path, watch)
            return found, self._tree.zxid

    def read_children(
        self, path: str, watch: WatchCallback | None, session_id: int | None = None
    ) -> tuple[tuple[list[str], ZnodeStat] | None, int]:
        """The node's sorted child names and Stat or None; a child watch is
        armed only on an existing node the session may READ.

        :raises NoAuthError: as ``read_data``.
        """
        self.check_usable()
        with self._lock:
            children = self._tree.children(path)
            if children is None:
                return None, self._tree.zxid
            self._require(path, Permissions.READ, session_id)
            stat = self._tree.stat(path)
            if watch is not None:
                self._watches.add_child_watch(path, watch)
            assert stat is not None
            return (children, stat), self._tree.zxid

    # ------------------------------------------------------------------ ACLs (reads are checked here, writes in apply)

    def _require(self, path: str, perm: int, session_id: int | None) -> None:
        """Raise NoAuthError unless the session holds ``perm`` on the
        existing node at ``path`` (call under the lock)."""
        sid = self.session_id if session_id is None else session_id
        if not self._tree.permitted(path, perm, sid):
            raise NoAuthError(path)

    def check_access(self, path: str, perm: int, session_id: int | None = None) -> None:
        """Check that session ``session_id`` (default: this member's) holds
        any bit of ``perm`` (``coord.acl.Permissions``) on the node at
        ``path``, against the local replica, as ZooKeeper checks reads.

        :raises NoNodeError: there is no such node.
        :raises NoAuthError: the session's ids do not grant ``perm``.
        """
        self.check_usable()
        with self._lock:
            permitted = self._tree.permitted(path, perm, self.session_id if session_id is None else session_id)
        if permitted is None:
            raise NoNodeError(path)
        if not permitted:
            raise NoAuthError(path)

    def read_acl(
        self, path: str, session_id: int | None = None
    ) -> tuple[tuple[tuple[int, str, str], ...], ZnodeStat] | None:
        """``(canonical ACL, Stat)`` of the node, or None if it is missing.

        As ZooKeeper's getACL: the session needs READ or ADMIN on the node
        (else NoAuthError), and without ADMIN the digest hashes are shown as
        ``user:x``.
        """
        self.check_usable()
        sid = self.session_id if session_id is None else session_id
        with self._lock:
            found = self._tree.get_acl(path)
            if found is None:
                return None
            self._require(path, Permissions.READ | Permissions.ADMIN, sid)
            acl, stat = found
            if not self._tree.permitted(path, Permissions.ADMIN, sid):
                acl = redact_digests(acl)
            return acl, stat

    def session_auth(self, session_id: int | None = None) -> tuple[tuple[str, str], ...]:
        """The sorted ``(scheme, id)`` pairs the session (default: this
        member's) has authenticated, as the local replica knows them."""
        self.check_usable()
        with self._lock:
            return self._tree.session_auth(self.session_id if session_id is None else session_id)

    def add_auth(self, scheme: str, credential: str | bytes, timeout: float | None) -> CoordFuture:
        """Authenticate this member's session (``coord.acl.resolve_auth``):
        the resolved ids go through the log (never the password), and every
        later session of this member gets them again. The Future's result is True.

        :raises AuthFailedError: an unknown scheme or a malformed credential.
        """
        ids = resolve_auth(scheme, credential, self.super_digest)
        check_timeout(timeout)
        self.check_usable()
        future: CoordFuture | None = None
        for index, (id_scheme, ident) in enumerate(ids):
            last = index == len(ids) - 1

            def convert(applied: Applied, last: bool = last) -> bool:
                raise_for_result(applied, "")
                if last:  # FIFO: the earlier ids of this call were applied before
                    self._auth_ids = tuple(sorted(set(self._auth_ids) | set(ids)))
                return True

            future = self.submit(ops.add_auth_op(id_scheme, ident), convert, timeout)
        assert future is not None
        return future

    # ------------------------------------------------------------------ ZooKeeper endpoint support

    def _start_zk_server(self) -> None:
        from .zk.server import ZkServer  # the endpoint is optional; import it only when used

        server = ZkServer(self, self.zk_address or "", password_key=self._secret, **self._zk_options)
        server.start()
        self._zk_server = server

    @property
    def zk_server(self) -> Any:
        """The running ``coord.zk.server.ZkServer`` (None without ``zk_address``)."""
        return self._zk_server

    def add_apply_hook(self, hook: Any) -> None:
        """Call ``hook.on_applied(entry, applied, tree)`` for every applied entry and
        ``hook.on_restored(old_tree, new_tree)`` after a snapshot install, on
        the Raft thread under the member lock (after this member's watches
        are triggered): a hook must only record or enqueue, never block."""
        with self._lock:
            self._apply_hooks = [*self._apply_hooks, hook]

    def remove_apply_hook(self, hook: Any) -> None:
        """Stop calling ``hook`` (no-op if it was not added)."""
        with self._lock:
            self._apply_hooks = [h for h in self._apply_hooks if h is not hook]

    def read_tree(self, fn: Callable[[Tree], Any]) -> Any:
        """``fn(tree)`` under the member lock: atomic with respect to apply
        (and so to apply hooks). ``fn`` must not block or call the member."""
        self.check_usable()
        with self._lock:
            return fn(self._tree)

    def propose_entry(self, entry: tuple[Any, ...], on_failure: Callable[[str, str], None]) -> None:
        """Propose a prepared log entry (the ``RequestTracker`` propose function)."""
        replicator = self._replicator
        if replicator is None:
            on_failure("not_appended", "the member is not started")
            return
        replicator.propose(entry, on_failure)

    def raft_status(self) -> ReplicaStatus:
        """The replication layer's view (role, leader, quorum), without the session checks of ``status``."""
        self.check_usable()
        assert self._replicator is not None
        return self._replicator.status()

    def add_persistent_watch(self, path: str, fn: WatchCallback, recursive: bool) -> None:
        self.check_usable()
        with self._lock:  # ordered with apply: every later entry is delivered
            self._persistent.add(path, fn, recursive)

    def remove_persistent_watch(self, path: str, fn: WatchCallback) -> bool:
        with self._lock:
            return self._persistent.remove(path, fn)

    def session_ephemerals(self, prefix: str) -> list[str]:
        self.check_usable()
        with self._lock:
            info = self._tree.session_info(self.session_id)
            return [path for path in info.ephemerals if path.startswith(prefix)] if info else []

    def descendant_count(self, path: str, session_id: int | None = None) -> int | None:
        """Nodes below ``path`` (None if it is missing); needs READ on it, as
        ZooKeeper's getAllChildrenNumber (else NoAuthError)."""
        self.check_usable()
        with self._lock:
            count = self._tree.descendant_count(path)
            if count is not None:
                self._require(path, Permissions.READ, session_id)
            return count

    def subtree(self, path: str) -> list[str]:
        """``path`` and every node below it, parents before children ([] if missing)."""
        self.check_usable()
        with self._lock:
            return self._tree.walk(path)
