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
  (``add``, ``remove``, ``set_version``, ``transfer``) are refused; coord
  changes membership only through ``Replicator.change_membership``, whose
  command travels in the Raft log (forwarded to the leader as an ordinary
  ``apply_command`` over the authenticated peer connection), and the leader
  accepts it only from a voter, one change at a time, and only while the
  voters it reaches form a quorum of the new configuration
  (``_CoordSyncObj``: pysyncobj 0.3.17's own one-at-a-time check never
  engages, its ``__changeClusterIDx`` is never set);
* observers are pysyncobj read-only nodes (no listening socket, never vote,
  not counted for quorum); they introduce themselves by name so the leader
  can report their lag;
* a follower deletes only *conflicting* log entries (R1): the transport
  trims the entries of an incoming AppendEntries that the follower already
  holds with the same index and term before pysyncobj sees the message, and
  accepts a message whose entries it all holds without truncating anything;
* a follower advances its commit index only over entries verified to match
  the leader's log (R2): snapshot-path messages (no ``prevLogIdx``) cannot
  commit a follower's own unverified entries;
* the journal is coord's own (``_CoordJournal``, R3): append-only and
  checksummed, compacted by an atomic rename instead of pysyncobj's
  in-place rewrite, finishing on restart a compaction a crash interrupted,
  and refusing to start from an unreadable term/vote file;
* with ``durability="fsync"`` the journal and the term/vote are on stable
  storage before any message leaves the member and before any entry is
  applied (and so acknowledged) locally;
* with a cluster secret, peer connections are coord's own
  (``_SecureConnection``/``_SecureServer`` behind pysyncobj's transport
  interface, protocol in ``coord.peer_crypto``): a mutual handshake from the
  secret, per-connection per-direction AES-GCM keys, counter nonces, frame
  caps checked at the header, linear buffering, and nothing unpickled before
  it is authenticated; pysyncobj's Fernet ``password`` is not used.

``network_faults`` (a ``coord.testing.faults.NetworkFaults``) is a testing
hook: every outgoing Raft message is dropped, delayed, duplicated or
re-delivered stale as that policy decides, on the Raft tick thread.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import functools
import gzip
import heapq
import io
import ipaddress
import itertools
import json
import logging
import os
import pickle
import queue
import random
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pysyncobj.pickle as raft_pickle
import pysyncobj.syncobj as raft_syncobj
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjConsumer, replicated
from pysyncobj.atomic_replace import atomicReplace
from pysyncobj.journal import Journal, createJournal
from pysyncobj.poller import POLL_EVENT_TYPE
from pysyncobj.serializer import Serializer
from pysyncobj.tcp_connection import CONNECTION_STATE, set_keepalive
from pysyncobj.transport import TCPTransport
from pysyncobj.version import VERSION as PYSYNCOBJ_VERSION

from . import peer_crypto
from .errors import ConfigurationError, MembershipChangeError, NotReadyError, UnknownOutcomeError
from .logs import RateLimitedLog, route_logger
from .security import split_address as security_split_address

if TYPE_CHECKING:
    from .testing.faults import NetworkFaults

logger = logging.getLogger(__name__)
# pysyncobj logs to "pysyncobj.<module>" loggers: route them to "coord.pysyncobj.<module>".
route_logger("pysyncobj", "coord.pysyncobj")

#: The pysyncobj release this adapter was written and tested against.
SUPPORTED_PYSYNCOBJ_VERSION = "0.3.17"

JOURNAL_FILE = "raft.journal"
DUMP_FILE = "raft.dump"

#: Durability modes. ``process-crash``: coord's journal without fsync, which
#: survives the member's own crash (kill -9: completed writes sit in the page
#: cache) but not an OS crash or power loss. ``fsync``: the journal, the term/vote file and the snapshot are
#: fsynced before the member sends any message or applies any entry.
DURABILITY_PROCESS_CRASH = "process-crash"
DURABILITY_FSYNC = "fsync"
DURABILITY_MODES = (DURABILITY_PROCESS_CRASH, DURABILITY_FSYNC)

#: Raft roles as reported by ``status()``.
ROLE_FOLLOWER = "follower"
ROLE_CANDIDATE = "candidate"
ROLE_LEADER = "leader"
ROLE_OBSERVER = "observer"
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


#: pysyncobj's command-type byte of a membership change / code-version entry.
_MEMBERSHIP_COMMAND = bytes([raft_syncobj._COMMAND_TYPE.MEMBERSHIP])
_VERSION_COMMAND = bytes([raft_syncobj._COMMAND_TYPE.VERSION])
#: The message an observer sends right after pysyncobj's ``'readonly'``
#: greeting, so the voters can name it in their status.
_OBSERVER_HELLO = "coord_observer_hello"
#: The utility command a member answers with its status (``member_status``).
STATUS_COMMAND = "coord_status"
MEMBERSHIP_ADD = "add"
MEMBERSHIP_REMOVE = "rem"


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
    #: Index of the last entry in this member's log (committed or not).
    last_log_index: int = 0
    #: The voters as this member knows them (its own address included when
    #: it is a voter), sorted.
    voters: tuple[str, ...] = ()
    #: Names of the observers connected to this member (voters only; the
    #: leader's list is the one that matters), sorted.
    observers: tuple[str, ...] = ()
    #: On the leader: each peer's lag in log entries (the leader's last log
    #: index minus the peer's match index); observers are included under
    #: their names. Empty on every other member.
    peer_lag: dict[str, int] = dataclasses.field(default_factory=dict)


def replicated_command_bytes(entry: object) -> int:
    """The length of the command pysyncobj replicates for ``entry``: the
    size it compares with ``appendEntriesBatchSizeBytes`` (R6). The entry
    point is the only replicated method, so its id is 0."""
    return 1 + len(raft_pickle.dumps((0, (entry,))))


def message_kind(message: object) -> str:
    """The kind of a pysyncobj peer message, as the fault policy names it.

    AppendEntries has three shapes in pysyncobj: log replication and
    heartbeats (with ``prevLogIdx``), a snapshot chunk (``serialized``
    data) and the keep-alive sent while the leader is still serialising a
    snapshot (``serialized`` None: the message behind R2).
    """
    if not isinstance(message, dict):
        return "unknown"
    kind = message.get("type")
    if kind == "append_entries" and "prevLogIdx" not in message:
        return "install_snapshot" if message.get("serialized") else "snapshot_pending"
    return str(kind)


class _RaftLog:
    """Read access to a member's pysyncobj journal, by Raft index.

    The journal object is captured when pysyncobj creates it (see
    ``_journal_factory``); the transport reads it on the tick thread only,
    the thread that also writes it.
    """

    def __init__(self) -> None:
        self.journal: Any = None

    def last_index(self) -> int:
        return int(self.journal[-1][1])

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index``, or None if this log lacks it
        (beyond its end, or compacted into the snapshot)."""
        journal = self.journal
        offset = index - journal[0][1]
        if offset < 0 or offset >= len(journal):
            return None
        return int(journal[offset][2])

    def membership_change_after(self, index: int) -> int | None:
        """The index of a membership-change entry after ``index`` in this
        log (the newest one), or None. Scans only the tail past ``index``."""
        journal = self.journal
        first = journal[0][1]
        for offset in range(len(journal) - 1, max(index - first, -1), -1):
            command, entry_index = journal[offset][0], journal[offset][1]
            if entry_index <= index:
                break
            if command[:1] == _MEMBERSHIP_COMMAND:
                return int(entry_index)
        return None

    def sync(self) -> None:
        """Make the journal durable (a no-op unless it is a fsync journal)."""
        sync = getattr(self.journal, "sync", None)
        if sync is not None:
            sync()


def screen_append_entries(
    message: dict[str, Any], log: _RaftLog, current_term: int, commit_index: int
) -> tuple[dict[str, Any], int | None]:
    """Rewrite an incoming AppendEntries so pysyncobj keeps Raft's rules.

    Returns the message to hand to pysyncobj and, when this function
    accepted the message itself, the ``next_node_idx`` to acknowledge to the
    leader (else None; pysyncobj replies).

    * R1: pysyncobj deletes every entry after ``prevLogIdx`` before it
      appends, even entries that match; a stale or duplicated message then
      drops entries this member already acknowledged. Raft deletes only from
      the first *conflicting* entry. So the leading entries this log already
      holds with the same index and term are trimmed off (``prevLogIdx``
      moves up to the last of them). If the message carries nothing new and
      this log continues past it, pysyncobj would still truncate: the
      message is then accepted here (entries kept, commit index advanced only
      over the verified prefix) and pysyncobj only sees its term and commit
      index.
    * R2: a message without ``prevLogIdx`` (snapshot chunk or keep-alive)
      verifies nothing, yet pysyncobj raises the commit index over this
      member's own log; the leader's commit index is clamped so no
      unverified entry is committed by it.
    """
    if message.get("type") != "append_entries" or message.get("term", -1) < current_term:
        return message, None  # pysyncobj ignores stale-term messages itself
    if "prevLogIdx" not in message:
        if message["commit_index"] > commit_index and log.last_index() > commit_index:
            return {**message, "commit_index": commit_index}, None
        return message, None
    if "transmission" in message:
        return message, None  # chunked oversized entry: never sent by coord (R6)
    prev_index, prev_term = message["prevLogIdx"], message["prevLogTerm"]
    if log.term_at(prev_index) != prev_term:
        return message, None  # pysyncobj rejects it without touching the log
    entries = list(message.get("entries") or ())
    last = log.last_index()
    matched = 0
    for entry in entries:
        index, term = entry[1], entry[2]
        if index > last or log.term_at(index) != term:
            break
        prev_index, prev_term = index, term
        matched += 1
    remaining = entries[matched:]
    if remaining or prev_index == last:
        if not matched:
            return message, None
        return {**message, "prevLogIdx": prev_index, "prevLogTerm": prev_term, "entries": remaining}, None
    # Everything the message carries is already here and this log goes on
    # past it: nothing conflicts, so nothing may be deleted.
    accepted = {k: v for k, v in message.items() if k not in ("prevLogIdx", "prevLogTerm", "entries")}
    accepted["commit_index"] = min(message["commit_index"], prev_index)
    return accepted, prev_index + 1


class ReplicationBackoff:
    """Keeps a leader's back-off over a follower's log monotonic.

    pysyncobj's leader moves ``nextIndex`` past every batch it sends, before
    any reply, and takes each ``reset`` reply's index as the new
    ``nextIndex``. A follower holding uncommitted entries of an old term
    (a deposed leader) answers a newer probe with "mismatch at 84" and an
    older, still in-flight heartbeat with "I only have up to 85": the second
    reply undoes the first, and the leader bounced between the two forever
    (found by the Jepsen runs: an ex-leader never caught up after healing).
    A failed probe proves the follower does not match at that index until
    its log changes, which only a successful append (or snapshot install)
    does, so until a success arrives a reset may only lower the index.
    """

    def __init__(self) -> None:
        self._floor: dict[str, int] = {}
        self._term: int | None = None

    def screen(self, peer: str, message: dict[str, Any], term: int) -> dict[str, Any]:
        """The ``next_node_idx`` reply to hand to pysyncobj's leader logic."""
        if term != self._term:  # a new leadership starts a fresh back-off
            self._floor.clear()
            self._term = term
        if message.get("success"):
            self._floor.pop(peer, None)
            return message
        if not message.get("reset"):
            return message
        index = message.get("next_node_idx")
        if not isinstance(index, int):
            return message
        floor = self._floor.get(peer)
        if floor is not None and index > floor:
            return {**message, "next_node_idx": floor}
        self._floor[peer] = index
        return message


#: How long a peer may take to complete coord's handshake, and how many
#: unauthenticated inbound connections a member holds at once (the oldest is
#: closed to make room): a flood of idle connections cannot exhaust the
#: member's file descriptors or keep its Raft port closed.
_MAX_PENDING_HANDSHAKES = 32
#: Bytes read per recv, and recvs per poll event (so one fast peer cannot
#: monopolise the tick thread; the poller is level-triggered and comes back).
_RECV_CHUNK = 1 << 18
_RECVS_PER_EVENT = 32
#: How long accepting pauses after the process ran out of file descriptors
#: with no unauthenticated connection left to close.
_ACCEPT_PAUSE_S = 0.2
_FD_EXHAUSTION = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_WOULD_BLOCK = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINPROGRESS})


def peer_frame_cap(batch_bytes: int, max_entry_bytes: int) -> int:
    """The largest plaintext frame (a pickled Raft message) a member accepts
    from an authenticated peer.

    coord's largest legitimate message is an AppendEntries batch: pysyncobj
    adds entries until their commands reach ``batch_bytes``, so a batch holds
    less than ``batch_bytes + max_entry_bytes`` of commands. Pickling adds
    under 30 bytes per entry, less than the smallest command pysyncobj can
    replicate, so three times that plus 1 MiB for the message's other
    fields bounds it with room. (Snapshot chunks are 64 KiB; a forwarded
    command is one entry.) With coord's defaults (8 MiB values): about 74 MiB.
    """
    return 3 * (batch_bytes + max_entry_bytes) + (1 << 20)


#: At most one peer-transport warning per kind per 10 s (coord.logs).
_RateLimitedLog = functools.partial(RateLimitedLog, logger, 10.0, 1)
_peer_log = _RateLimitedLog()
#: Member address -> peer connections it refused (failed coord's handshake or
#: framing, or never finished the handshake); each key has one writer, its Raft thread.
_refused_connections: collections.Counter[str] = collections.Counter()


class _SendBatch:
    """Coalesces the frames sent on each connection while the tick thread
    works (one tick's Raft processing, or one poll event's messages) into
    one ``sendmsg`` per connection. The owner flushes at the end of each
    event and of each tick, right before pysyncobj polls again, so no
    frame waits longer than the work already under way."""

    def __init__(self) -> None:
        self._dirty: dict[_SecureConnection, None] = {}

    def add(self, conn: _SecureConnection) -> bool:
        """Enrol ``conn`` in this round; True if it was not enrolled yet
        (its first frame of the round then goes out at once, so a lone
        message is never delayed: only a burst's followers wait)."""
        if conn in self._dirty:
            return False
        self._dirty[conn] = None
        return True

    def flush(self) -> None:
        while self._dirty:
            conn = next(iter(self._dirty))
            del self._dirty[conn]
            conn.flush()


class _SecureConnection:
    """One peer connection speaking coord's authenticated protocol
    (``coord.peer_crypto``), with the interface pysyncobj's ``TCPTransport``
    uses of its ``TcpConnection`` (connect/send/disconnect/state, the three
    callbacks). Written from scratch rather than by subclassing, because
    every part of ``TcpConnection`` that matters here (framing, buffering,
    encryption, the order of handshake and delivery) changes.

    * The handshake runs inside the connection: ``state`` is CONNECTING
      until the peer proved it holds the secret, so the transport sees an
      outgoing connection as connected (``onConnected``), and receives the
      first message of an incoming one, only after authentication.
    * Messages are pickled (protocol 5, no compression), sealed as one
      AES-GCM frame each, and unpickled only after their frame verified.
    * Buffers are linear: a bytearray with a read offset for input, a deque
      of frames sent with ``sendmsg`` for output.
    * A protocol error closes this connection only, with a rate-limited
      warning. A connection that has not finished its handshake within
      ``timeout`` is closed by ``check_handshake_deadline`` (called every
      tick); like pysyncobj's, an established connection that has read
      nothing for ``timeout`` is closed at its next event or send.

    Everything runs on the member's Raft tick thread.
    """

    def __init__(
        self,
        poller: Any,
        *,
        secret: bytes,
        max_frame_bytes: int,
        timeout: float,
        send_buffer_size: int,
        recv_buffer_size: int,
        keepalive: Any = None,
        sock: socket.socket | None = None,
        local: str = "?",
        batch: _SendBatch | None = None,
    ) -> None:
        self._poller = poller
        self._batch = batch
        self._secret = secret
        self._max_frame_bytes = max_frame_bytes
        self._timeout = timeout
        self._send_buffer_size = send_buffer_size
        self._recv_buffer_size = recv_buffer_size
        self._keepalive = keepalive
        self._local = local
        self._on_message: Callable[[Any], None] | None = None
        self._on_connected: Callable[[], None] | None = None
        self._on_disconnected: Callable[[], None] | None = None
        self._mask = 0
        self._socket: socket.socket | None = None
        self._fileno: int | None = None
        self._session: peer_crypto.PeerSession | None = None
        self._out: collections.deque[bytes] = collections.deque()
        self._out_offset = 0
        self._out_bytes = 0
        self._tcp_connected = False
        self._state = CONNECTION_STATE.DISCONNECTED
        self._peer = "?"
        self._last_read = time.monotonic()
        self._handshake_deadline = 0.0
        # pysyncobj's transport assigns these; they stay unused (no Fernet).
        self.encryptor: Any = None
        self.sendRandKey: Any = None
        self.recvRandKey: Any = None
        if sock is not None:
            self._adopt(sock, initiator=False, tcp_connected=True)
            with contextlib.suppress(OSError):
                host, port = sock.getpeername()[:2]
                self._peer = f"{host}:{port}"

    # -- the TcpConnection interface pysyncobj's transport uses -------------

    def setOnConnectedCallback(self, callback: Callable[[], None] | None) -> None:  # noqa: N802
        self._on_connected = callback

    def setOnMessageReceivedCallback(self, callback: Callable[[Any], None] | None) -> None:  # noqa: N802
        self._on_message = callback

    def setOnDisconnectedCallback(self, callback: Callable[[], None] | None) -> None:  # noqa: N802
        self._on_disconnected = callback

    @property
    def state(self) -> int:
        return int(self._state)

    @property
    def handshaking(self) -> bool:
        return self._state == CONNECTION_STATE.CONNECTING

    def fileno(self) -> int | None:
        return self._fileno

    def getSendBufferSize(self) -> int:  # noqa: N802 - pysyncobj's name
        return self._out_bytes

    def connect(self, host: str | None, port: int) -> bool:
        if host is None:
            return False
        self._close_socket()
        self._state = CONNECTION_STATE.DISCONNECTED
        self._peer = f"{host}:{port}"
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            _peer_log.warning("socket", "member %s cannot open a socket to %s: %s", self._local, self._peer, exc)
            return False
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            sock.connect((host, port))
        except OSError as exc:
            if exc.errno not in _WOULD_BLOCK:
                sock.close()
                return False
        self._adopt(sock, initiator=True, tcp_connected=False)
        return True

    def send(self, message: Any) -> None:
        if self._state != CONNECTION_STATE.CONNECTED or self._session is None:
            return
        if time.monotonic() - self._last_read > self._timeout:  # as pysyncobj: a silent peer is dead
            self.disconnect()
            return
        try:
            frame = self._session.seal(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except peer_crypto.PeerProtocolError as exc:
            # Oversized (a bug: the cap is above coord's largest message) or
            # the key is used up: a fresh connection gets fresh keys.
            _peer_log.warning("send", "member %s closes its connection to %s: %s", self._local, self._peer, exc)
            self.disconnect()
            return
        self._queue(frame)
        if self._batch is None or self._batch.add(self):
            self._flush()

    def flush(self) -> None:
        """Send what ``send`` queued (see ``_SendBatch``)."""
        if self._out:
            self._flush()

    def disconnect(self) -> None:
        notify = self._on_disconnected is not None and self._state != CONNECTION_STATE.DISCONNECTED
        self._close_socket()
        self._state = CONNECTION_STATE.DISCONNECTED
        if notify and self._on_disconnected is not None:
            self._on_disconnected()

    # -- coord's additions ----------------------------------------------------

    def check_handshake_deadline(self, now: float) -> None:
        """Close this connection if its handshake is overdue (every tick)."""
        if self._state == CONNECTION_STATE.CONNECTING and now > self._handshake_deadline:
            if self._tcp_connected:
                _refused_connections[self._local] += 1
                _peer_log.event(
                    logging.WARNING,
                    "handshake-timeout",
                    "refused_connection",
                    "peer did not complete coord's handshake in time; closing",
                    member=self._local,
                    peer=self._peer,
                    timeout_s=self._timeout,
                )
            self.disconnect()

    # -- internals ------------------------------------------------------------

    def _adopt(self, sock: socket.socket, *, initiator: bool, tcp_connected: bool) -> None:
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._send_buffer_size)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._recv_buffer_size)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._keepalive is not None:
                set_keepalive(sock, *self._keepalive)
        self._socket = sock
        self._fileno = sock.fileno()
        self._session = peer_crypto.PeerSession(
            self._secret, initiator=initiator, max_frame_bytes=self._max_frame_bytes
        )
        self._tcp_connected = tcp_connected
        self._state = CONNECTION_STATE.CONNECTING
        now = time.monotonic()
        self._last_read = now
        self._handshake_deadline = now + self._timeout
        self._mask = self._event_mask()
        self._poller.subscribe(self._fileno, self._on_event, self._mask)

    def _event_mask(self) -> int:
        mask = POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.ERROR
        if self._out or not self._tcp_connected:
            mask |= POLL_EVENT_TYPE.WRITE
        return mask

    def _close_socket(self) -> None:
        if self._fileno is not None:
            self._poller.unsubscribe(self._fileno)
            self._fileno = None
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None
        self._session = None
        self._out.clear()
        self._out_offset = 0
        self._out_bytes = 0
        self._tcp_connected = False
        self._mask = 0

    def _fail(self, exc: Exception) -> None:
        _refused_connections[self._local] += 1
        _peer_log.event(
            logging.WARNING,
            "protocol",
            "refused_connection",
            "member closes the connection with a peer",
            member=self._local,
            peer=self._peer,
            reason=str(exc),
        )
        self.disconnect()

    def _queue(self, data: bytes) -> None:
        if data:
            self._out.append(data)
            self._out_bytes += len(data)

    def _flush(self) -> None:
        sock = self._socket
        if sock is None or not self._tcp_connected:
            return
        out = self._out
        while out:
            buffers: list[bytes | memoryview] = [memoryview(out[0])[self._out_offset :]]
            buffers.extend(itertools.islice(out, 1, 64))
            try:
                sent = sock.sendmsg(buffers)
            except OSError as exc:
                if exc.errno not in _WOULD_BLOCK:
                    self.disconnect()
                    return
                break
            if sent <= 0:
                break
            self._out_bytes -= sent
            sent += self._out_offset
            while out and sent >= len(out[0]):
                sent -= len(out.popleft())
            self._out_offset = sent
        self._update_mask()

    def _update_mask(self) -> None:
        """Ask for WRITE events only while something waits to be sent."""
        mask = self._event_mask()
        if self._fileno is not None and mask != self._mask:
            self._mask = mask
            self._poller.subscribe(self._fileno, self._on_event, mask)

    def _on_event(self, descr: int, event: int) -> None:
        if descr != self._fileno:
            self._poller.unsubscribe(descr)
            return
        if event & POLL_EVENT_TYPE.ERROR:
            self.disconnect()
            return
        if time.monotonic() - self._last_read > self._timeout:
            self.disconnect()
            return
        if not self._tcp_connected:
            if self._socket is None or self._socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.disconnect()
                return
            self._tcp_connected = True
            assert self._session is not None
            self._queue(self._session.start())
            self._flush()
            return
        if event & POLL_EVENT_TYPE.WRITE:
            self._flush()
            if self._state == CONNECTION_STATE.DISCONNECTED:
                return
        if event & POLL_EVENT_TYPE.READ:
            self._read()
            if self._batch is not None:
                self._batch.flush()  # the replies this event's messages caused

    def _read(self) -> None:
        for _ in range(_RECVS_PER_EVENT):
            sock, session = self._socket, self._session
            if sock is None or session is None:
                return
            try:
                data = sock.recv(_RECV_CHUNK)
            except OSError as exc:
                if exc.errno not in _WOULD_BLOCK:
                    self.disconnect()
                return
            if not data:
                self.disconnect()
                return
            self._last_read = time.monotonic()
            was_established = session.established
            try:
                reply, plaintexts = session.receive(data)
            except peer_crypto.PeerProtocolError as exc:
                self._fail(exc)
                return
            self._queue(reply)
            if reply:
                self._flush()
            if not was_established and session.established:
                self._state = CONNECTION_STATE.CONNECTED
                if session.initiator and self._on_connected is not None:
                    self._on_connected()
            for plaintext in plaintexts:
                if self._state != CONNECTION_STATE.CONNECTED:
                    return
                try:
                    message = pickle.loads(plaintext)
                except Exception as exc:  # authenticated but unreadable: a peer bug, not an attack
                    self._fail(exc)
                    return
                if self._on_message is not None:
                    self._on_message(message)
            if len(data) < _RECV_CHUNK:
                return


class _SecureServer:
    """The listening socket for coord's authenticated transport.

    Unlike pysyncobj's ``TcpServer`` it never gives up its port: a failed
    accept (out of file descriptors) closes the oldest connection that has
    not authenticated yet, or pauses accepting briefly, and at most
    ``_MAX_PENDING_HANDSHAKES`` unauthenticated connections are held.
    """

    def __init__(
        self,
        poller: Any,
        host: str,
        port: int,
        *,
        on_new_connection: Callable[[_SecureConnection], None],
        make_connection: Callable[[socket.socket], _SecureConnection],
        local: str,
    ) -> None:
        self._poller = poller
        self._host = host
        self._port = port
        self._on_new_connection = on_new_connection
        self._make_connection = make_connection
        self._local = local
        self._socket: socket.socket | None = None
        self._fileno: int | None = None
        self._pending: collections.deque[_SecureConnection] = collections.deque()
        self._paused_until = 0.0

    def bind(self) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setblocking(False)
            sock.bind((self._host, self._port))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._fileno = sock.fileno()
        self._subscribe()

    def unbind(self) -> None:
        if self._fileno is not None:
            self._poller.unsubscribe(self._fileno)
            self._fileno = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        while self._pending:
            self._pending.popleft().disconnect()

    def _subscribe(self) -> None:
        if self._fileno is not None:
            self._poller.subscribe(self._fileno, self._on_event, POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.ERROR)

    def on_tick(self, now: float) -> None:
        """Expire overdue handshakes; resume accepting after a pause."""
        for conn in list(self._pending):
            conn.check_handshake_deadline(now)
        self._prune()
        if self._paused_until and now >= self._paused_until:
            self._paused_until = 0.0
            self._subscribe()

    def _prune(self) -> None:
        while self._pending and not self._pending[0].handshaking:
            self._pending.popleft()
        if len(self._pending) > _MAX_PENDING_HANDSHAKES // 2:
            self._pending = collections.deque(c for c in self._pending if c.handshaking)

    def _evict_oldest(self) -> bool:
        self._prune()
        if not self._pending:
            return False
        self._pending.popleft().disconnect()
        return True

    def _on_event(self, descr: int, event: int) -> None:
        if descr != self._fileno or self._socket is None:
            return
        if event & POLL_EVENT_TYPE.ERROR:
            _peer_log.warning("accept", "member %s: error event on its Raft port; still listening", self._local)
        if not event & POLL_EVENT_TYPE.READ:
            return
        for _ in range(16):
            try:
                sock, _address = self._socket.accept()
            except OSError as exc:
                if exc.errno in _WOULD_BLOCK:
                    return
                if exc.errno in _FD_EXHAUSTION:
                    _peer_log.warning(
                        "accept", "member %s cannot accept a peer connection: %s; closing an unauthenticated one",
                        self._local, exc,
                    )
                    if not self._evict_oldest() and self._fileno is not None:
                        self._poller.unsubscribe(self._fileno)
                        self._paused_until = time.monotonic() + _ACCEPT_PAUSE_S
                        return
                    continue
                return  # ECONNABORTED and the like: that connection is gone, the port stays
            self._prune()
            while len(self._pending) >= _MAX_PENDING_HANDSHAKES:
                _refused_connections[self._local] += 1
                _peer_log.event(
                    logging.WARNING,
                    "pending",
                    "refused_connection",
                    "too many unauthenticated connections; closing the oldest",
                    member=self._local,
                    pending=len(self._pending),
                )
                self._evict_oldest()
            try:
                conn = self._make_connection(sock)
            except OSError:
                sock.close()
                continue
            self._pending.append(conn)
            self._on_new_connection(conn)


class _GuardedTransport(TCPTransport):  # type: ignore[misc]
    """pysyncobj's TCP transport, hardened for coord.

    * The remote cluster-changing commands are refused: pysyncobj accepts
      ``add``/``remove``/``set_version``/``transfer`` utility messages from
      any connection; coord changes membership only through its own API, so
      those handlers are never installed. ``status`` stays.
    * Incoming AppendEntries are screened (``screen_append_entries``: R1, R2),
      and a leader's back-off replies are kept monotonic (``ReplicationBackoff``).
    * Forwarded commands (``apply_command``) are screened by type: a
      code-version switch is refused from anyone (coord never issues one), a
      membership change is refused from observers (read-only connections);
      only voters, which coord's ``change_membership`` runs on, may forward
      one. With a secret every peer connection is authenticated before any
      message gets here: the connections are coord's own
      (``_SecureConnection``, ``_SecureServer``: ``coord.peer_crypto``'s
      handshake and AES-GCM frames; pysyncobj's Fernet is never used).
      Without a secret (loopback only) pysyncobj's plain connections stay.
    * An observer names itself (``observer_name``) right after pysyncobj's
      ``'readonly'`` greeting; voters keep the names for their status.
    * Every outgoing message first passes the durability barrier (fsync
      mode), so nothing that reflects a journal write leaves this member
      before that write is on stable storage.
    * While a snapshot is being serialised, pysyncobj's leader resends the
      ``serialized: None`` keep-alive to a lagging follower in a tight loop
      for a whole heartbeat period (hundreds of thousands of messages per
      minute of compactions in the R2 test); at most one per
      ``keepalive_interval_s`` per follower is sent (the message only
      carries the term and commit index; dropping copies is always safe).

    Everything here runs on the member's Raft tick thread.
    """

    _REFUSED = frozenset({"add", "remove", "set_version", "transfer"})

    def __init__(
        self,
        sync_obj: Any,
        self_node: Any,
        other_nodes: Any,
        *,
        raft_log: _RaftLog,
        durability_barrier: Callable[[], None] | None = None,
        keepalive_interval_s: float = 0.05,
        observer_name: str | None = None,
        secret: bytes | None = None,
        max_frame_bytes: int = 1 << 26,
    ) -> None:
        self._peer_secret = secret
        self._max_frame_bytes = max_frame_bytes
        self._send_batch = _SendBatch()
        self._raft_log = raft_log
        self._observer_name = observer_name
        #: read-only node id -> the name that observer gave (tick thread writes).
        self.observer_names: dict[str, str] = {}
        self._durability_barrier = durability_barrier
        self._keepalive_interval_s = keepalive_interval_s
        self._last_keepalive: dict[Any, float] = {}
        self._backoff = ReplicationBackoff()
        super().__init__(sync_obj, self_node, other_nodes)

    # -- coord's authenticated connections (with a secret) ------------------

    def _make_secure_connection(self, sock: socket.socket | None = None) -> _SecureConnection:
        assert self._peer_secret is not None
        conf = self._syncObj.conf
        return _SecureConnection(
            self._syncObj._poller,
            secret=self._peer_secret,
            max_frame_bytes=self._max_frame_bytes,
            timeout=conf.connectionTimeout,
            send_buffer_size=conf.sendBufferSize,
            recv_buffer_size=conf.recvBufferSize,
            keepalive=conf.tcp_keepalive,
            sock=sock,
            local=str(getattr(self._selfNode, "address", None) or self._observer_name or "observer"),
            batch=self._send_batch,
        )

    def _createServer(self) -> None:  # noqa: N802 - pysyncobj's name
        if self._peer_secret is None:
            super()._createServer()
            return
        # coord always passes bindAddress (the member's own address, R7).
        host, port = self._syncObj.conf.bindAddress.rsplit(":", 1)
        host = host.strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:  # a host name: IPv4, as pysyncobj resolves peers' names
            host = socket.gethostbyname(host)
        self._server = self._new_server(host, int(port))

    def _new_server(self, host: str, port: int) -> _SecureServer:
        return _SecureServer(
            self._syncObj._poller,
            host,
            port,
            on_new_connection=self._onNewIncomingConnection,
            make_connection=self._make_secure_connection,
            local=str(getattr(self._selfNode, "address", "?")),
        )

    def addNode(self, node: Any) -> None:  # noqa: N802 - pysyncobj's name
        super().addNode(node)
        conn = self._connections.get(node)
        if self._peer_secret is None or conn is None or isinstance(conn, _SecureConnection):
            return
        # pysyncobj just made a plain, never-connected TcpConnection for an
        # outgoing link: use coord's authenticated one instead, with the
        # same callbacks pysyncobj's transport gives its own.
        secure = self._make_secure_connection()
        secure.setOnConnectedCallback(functools.partial(self._onOutgoingConnected, secure))
        secure.setOnMessageReceivedCallback(functools.partial(self._onMessageReceived, node))
        secure.setOnDisconnectedCallback(functools.partial(self._onDisconnected, secure))
        self._connections[node] = secure

    def _onTick(self) -> None:  # noqa: N802 - pysyncobj's name
        super()._onTick()
        if self._peer_secret is None:
            return
        now = time.monotonic()
        if isinstance(self._server, _SecureServer):
            self._server.on_tick(now)
        for conn in list(self._connections.values()):
            if isinstance(conn, _SecureConnection):
                conn.check_handshake_deadline(now)
        # pysyncobj runs tick callbacks right before it polls: this tick's
        # messages leave now, one sendmsg per connection.
        self._send_batch.flush()

    def flush_sends(self) -> None:
        """Send every frame still batched (see ``_SendBatch``)."""
        self._send_batch.flush()

    def setOnUtilityMessageCallback(self, message: str, callback: Any) -> None:  # noqa: N802 - pysyncobj's name
        if message in self._REFUSED:
            callback = None
        super().setOnUtilityMessageCallback(message, callback)

    def send(self, node: Any, message: Any) -> bool:
        if isinstance(message, dict) and message.get("serialized", True) is None:  # a snapshot_pending keep-alive
            now = time.monotonic()
            if now - self._last_keepalive.get(node, -1e9) < self._keepalive_interval_s:
                return True
            self._last_keepalive[node] = now
        if self._durability_barrier is not None:
            self._durability_barrier()
        return self._transmit(node, message)

    def _transmit(self, node: Any, message: Any) -> bool:
        """Hand ``message`` to pysyncobj's TCP connection to ``node``."""
        return bool(TCPTransport.send(self, node, message))

    def _sendSelfAddress(self, conn: Any) -> None:  # noqa: N802 - pysyncobj's name
        super()._sendSelfAddress(conn)
        if self._selfIsReadonlyNode and self._observer_name is not None:
            conn.send({"type": _OBSERVER_HELLO, "name": self._observer_name})

    def _screen_forwarded_command(self, node: Any, message: dict[str, Any]) -> bool:
        """Whether a forwarded ``apply_command`` may reach pysyncobj; a
        refused one is answered with REQUEST_DENIED."""
        command = message.get("command")
        kind = command[:1] if isinstance(command, bytes) else b""
        refused = None
        if kind == _VERSION_COMMAND:
            refused = "a code-version switch"
        elif kind == _MEMBERSHIP_COMMAND and node not in self._nodes:
            refused = "a membership change from an observer"
        if refused is None:
            return True
        logger.warning("refusing %s forwarded by %s", refused, node)
        if "request_id" in message:
            self.send(
                node,
                {
                    "type": "apply_command_response",
                    "request_id": message["request_id"],
                    "error": FAIL_REASON.REQUEST_DENIED,
                },
            )
        return False

    def _onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802 - pysyncobj's name
        ack = None
        if isinstance(message, dict) and message.get("type") == _OBSERVER_HELLO:
            name = message.get("name")
            if node in self._readonlyNodes and isinstance(name, str) and len(name) <= 300:
                self.observer_names[node.id] = name
            return
        if (
            isinstance(message, dict)
            and message.get("type") == "apply_command"
            and not self._screen_forwarded_command(node, message)
        ):
            return
        if isinstance(message, dict) and message.get("type") == "next_node_idx":
            peer = getattr(node, "address", str(node))
            message = self._backoff.screen(peer, message, self._syncObj.raftCurrentTerm)
        if isinstance(message, dict) and message.get("type") == "append_entries" and self._raft_log.journal is not None:
            sync_obj = self._syncObj
            try:
                message, ack = screen_append_entries(
                    message, self._raft_log, sync_obj.raftCurrentTerm, sync_obj.raftCommitIndex
                )
            except Exception:  # a malformed message: dropping it is always safe in Raft
                logger.exception("dropping an AppendEntries from %s that could not be screened", node)
                return
        super()._onMessageReceived(node, message)
        if ack is not None:
            self.send(node, {"type": "next_node_idx", "next_node_idx": ack, "reset": False, "success": True})


class _FaultInjectingTransport(_GuardedTransport):
    """The guarded transport with a ``NetworkFaults`` policy on the send path.

    Each outgoing message is delivered as many times, and after such delays,
    as the policy decides. Delayed copies wait in a heap and are released
    by this member's own Raft tick (never from a foreign thread), so the
    delay resolution is one tick. A copy whose connection is down when it
    is due is lost, as on a real network.
    """

    def __init__(
        self,
        sync_obj: Any,
        self_node: Any,
        other_nodes: Any,
        *,
        network_faults: NetworkFaults,
        **kwargs: Any,
    ) -> None:
        self._faults = network_faults
        self._held: list[tuple[float, int, Any, Any]] = []  # (due, sequence, node, message)
        self._sequence = itertools.count()
        self._link_due: dict[str, float] = {}  # last first-copy due time per destination
        self._self_address = getattr(self_node, "address", "?")
        super().__init__(sync_obj, self_node, other_nodes, **kwargs)

    def _transmit(self, node: Any, message: Any) -> bool:
        address = getattr(node, "address", str(node))
        delays = self._faults.decide(self._self_address, address, message_kind(message))
        connected = True
        now = time.monotonic()
        for copy, delay in enumerate(delays):
            due = now + delay
            if copy == 0:
                # Like TCP (pysyncobj keeps one connection per pair), a delayed
                # message never overtakes an earlier one on its link; only the
                # policy's duplicates and stale copies arrive out of order.
                due = max(due, self._link_due.get(address, 0.0))
                self._link_due[address] = due
            if due <= now:
                connected = super()._transmit(node, message)
            else:
                heapq.heappush(self._held, (due, next(self._sequence), node, message))
        return connected

    def _onTick(self) -> None:  # noqa: N802 - pysyncobj's name
        super()._onTick()
        now = time.monotonic()
        while self._held and self._held[0][0] <= now:
            _, _, node, message = heapq.heappop(self._held)
            self._faults.released()
            super()._transmit(node, message)
        self.flush_sends()

    def destroy(self) -> None:
        self._faults.released(len(self._held))
        self._held.clear()
        super().destroy()


def _fsync_directory(path: str) -> None:
    """fsync a directory, so a file created or renamed in it stays."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    """``pwrite`` all of ``data`` at ``offset`` (a short write is retried)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


#: Journal file layout (all integers little-endian)::
#:
#:     magic (8 bytes)
#:     record*: payload length (u32) | CRC32 of length bytes + payload (u32)
#:              | payload = idx (u64) | term (u64) | command bytes
_JOURNAL_MAGIC = b"COORDJ\x00\x01"
_RECORD_HEAD = struct.Struct("<II")
_ENTRY_HEAD = struct.Struct("<QQ")
#: Meta file layout: magic (8 bytes) | payload length (u32) | CRC32 (u32) | JSON payload.
_META_MAGIC = b"COORDM\x00\x01"
_META_HEAD = struct.Struct("<II")
#: How much of a rewritten journal is buffered before each ``os.write``.
_WRITE_CHUNK = 1 << 20

RaftEntry = tuple[bytes, int, int]  # (command, index, term), pysyncobj's journal entry


def _encode_record(entry: RaftEntry) -> bytes:
    command, idx, term = entry
    payload = _ENTRY_HEAD.pack(idx, term) + command
    length = struct.pack("<I", len(payload))
    return length + struct.pack("<I", zlib.crc32(payload, zlib.crc32(length))) + payload


def _read_journal(path: str) -> tuple[list[RaftEntry], list[int], int, int]:
    """Parse the journal at ``path``.

    Returns the entries, the file offset of each record, the end of the
    last good record and the file size. Reading stops at the first record
    that is incomplete (a crash mid-append) or fails its CRC (a torn or
    damaged write); nothing after it is trusted.
    """
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        magic = file.read(len(_JOURNAL_MAGIC))
        if magic != _JOURNAL_MAGIC:
            hint = (
                " (it is in pysyncobj's own FileJournal format, written by an older coord: "
                "start this member from an empty data_dir so it catches up from its peers)"
                if magic == b"PYSYNCOBJ"[: len(_JOURNAL_MAGIC)]
                else ""
            )
            raise ConfigurationError(f"{path} is not a coord Raft journal{hint}; refusing to start")
        entries: list[RaftEntry] = []
        offsets: list[int] = []
        good = len(_JOURNAL_MAGIC)
        while True:
            head = file.read(_RECORD_HEAD.size)
            if len(head) < _RECORD_HEAD.size:
                break
            length, crc = _RECORD_HEAD.unpack(head)
            if length < _ENTRY_HEAD.size or length > size - good - _RECORD_HEAD.size:
                break
            payload = file.read(length)
            if len(payload) < length or zlib.crc32(payload, zlib.crc32(head[:4])) != crc:
                break
            idx, term = _ENTRY_HEAD.unpack_from(payload)
            entries.append((payload[_ENTRY_HEAD.size :], idx, term))
            offsets.append(good)
            good += _RECORD_HEAD.size + length
    return entries, offsets, good, size


def _read_meta(path: str) -> dict[str, Any]:
    """The term, vote and commit index stored at ``path`` ({} if there is no file).

    A file that exists but cannot be read back intact raises: silently
    forgetting the vote would let this member vote twice in one term (R3).
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return {}
    head_end = len(_META_MAGIC) + _META_HEAD.size
    problem = None
    if not data.startswith(_META_MAGIC) or len(data) < head_end:
        problem = "it is not in coord's format"
    else:
        length, crc = _META_HEAD.unpack_from(data, len(_META_MAGIC))
        payload = data[head_end:]
        if len(payload) != length or zlib.crc32(payload) != crc:
            problem = "its checksum does not match (damaged or torn)"
        else:
            try:
                meta = json.loads(payload)
            except ValueError:
                problem = "its content is not valid"
            else:
                if (
                    isinstance(meta, dict)
                    and isinstance(meta.get("term"), int)
                    and isinstance(meta.get("commit_index"), int)
                    and (meta.get("voted_for") is None or isinstance(meta.get("voted_for"), str))
                ):
                    return meta
                problem = "its content is not valid"
    raise ConfigurationError(
        f"the Raft term/vote file {path} cannot be read: {problem}. Refusing to start, because "
        "forgetting this member's vote could let it vote twice in one term; restore the file, or "
        "wipe this member's data_dir so it rejoins as a new, empty member"
    )


class _CoordJournal(Journal):  # type: ignore[misc]
    """coord's Raft journal: pysyncobj's ``Journal`` interface over an
    append-only, checksummed file (replaces pysyncobj's ``FileJournal``, R3).

    **Format.** A magic header, then one record per entry: length, CRC32,
    index, term, command (``_encode_record``). Appends are plain
    ``os.pwrite`` calls at the end (no mmap). On open, records are read up
    to the first incomplete or corrupt one and the file is truncated there:
    a torn tail is a crash in the middle of an append. In ``fsync`` mode
    such an entry was never acknowledged (nothing leaves the member before
    ``sync``); in the default mode a SIGKILL cannot tear a completed
    ``os.write`` (the page cache keeps it), so nothing acknowledged is torn.

    **Raft truncation** (``deleteEntriesFrom``, a conflicting tail) is one
    ``ftruncate`` at the first removed record.

    **Compaction** (``deleteEntriesTo``) never rewrites the journal in
    place: the kept entries are written to ``<journal>.compact`` (fsynced in
    fsync mode), which ``os.replace`` puts over the journal (directory
    fsynced in fsync mode), then the new file is reopened. A kill at any
    point leaves either the old complete journal or the new complete one.

    **The snapshot interplay.** pysyncobj (``useFork=False``) compacts in
    two ticks: ``__tryLogCompaction`` writes ``raft.dump`` (tmp file +
    rename) holding the state up to entry ``A`` and the entries ``A-1`` and
    ``A``; on a later tick it calls ``deleteEntriesTo`` so the journal
    starts at ``A-1``. On restart, ``__loadDumpFile`` checks that the
    journal's first two entries equal the dump's two, and if not it
    *clears the journal and keeps only those two*. A kill after the dump
    replaced the old one but before the journal was compacted (a whole
    tick, or the compaction itself) therefore used to throw away every
    entry after ``A``, entries this member may have acknowledged. So on
    open this journal reads the dump's two entries and, if it holds them
    at the same position (same index, term and command), it finishes the
    interrupted compaction (the same crash-safe ``deleteEntriesTo``) before
    pysyncobj looks: the check passes and every entry after ``A`` stays.
    Where the journal does not hold them (its entries conflict with, or
    all precede, the snapshot) pysyncobj's clear is right and is left
    alone. This costs one extra read of the dump per start.

    ``clear()`` (only ever followed at once by adding the dump's two
    entries, in ``__loadDumpFile``) touches no disk: the file keeps its
    old content until the next write, which rewrites the journal whole,
    the same crash-safe way. A kill between the clear and the adds thus
    leaves the old journal, never an empty one.

    **Meta** (term, vote, commit index) is a CRC-checked JSON file written
    to ``.meta.tmp`` and renamed over ``.meta`` (fsync of the file and the
    directory in fsync mode). The term and vote are stored before
    ``setCurrentTerm`` returns (Raft needs them stored before any vote
    request or grant is sent); the commit index, which is only a restart
    hint, once a second. An unreadable meta file raises at open instead of
    resetting the vote.

    **fsync mode** (``durable=True``). Appends and truncations mark the
    journal unsynced; ``sync`` fsyncs it and runs at the durability
    barrier: before this member sends any message and before it applies
    (and so acknowledges) an entry; one fsync covers a batch of appends.
    Before the journal forgets entries (compaction, snapshot install), the
    snapshot that covers them is fsynced. Without it nothing is fsynced:
    the default mode survives the member's own crash (SIGKILL), not an OS
    crash or power loss.
    """

    def __init__(self, path: str, dump_path: str | None, *, durable: bool) -> None:
        self._path = path
        self._compact_path = path + ".compact"
        self._meta_path = path + ".meta"
        self._dump_path = dump_path
        self._durable = durable
        self._directory = os.path.dirname(path) or "."
        self._meta = _read_meta(self._meta_path)
        self._meta_dirty = False
        self._unsynced = False
        self._pending_clear = False
        self._fd: int | None = None
        for leftover in (self._compact_path, self._meta_path + ".tmp"):  # an interrupted rewrite
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
        if not os.path.exists(path):
            self._replace_with([])
        else:
            self._entries, self._offsets, self._size, file_size = _read_journal(path)
            self._fd = os.open(path, os.O_RDWR)
            if self._size < file_size:
                logger.warning(
                    "journal %s: dropping %d bytes after the last intact record (a write cut short by a crash)",
                    path,
                    file_size - self._size,
                )
                os.ftruncate(self._fd, self._size)
                self._unsynced = durable
                self.sync()
        self._finish_interrupted_compaction()

    # -- pysyncobj's Journal interface -------------------------------------

    def add(self, command: bytes, idx: int, term: int) -> None:
        entry = (raft_pickle.to_bytes(command), idx, term)
        if self._pending_clear:
            self._replace_with([entry])
            return
        record = _encode_record(entry)
        assert self._fd is not None, "the journal is closed"
        try:
            _write_all(self._fd, record, self._size)
        except OSError:
            with contextlib.suppress(OSError):  # leave no partial record behind
                os.ftruncate(self._fd, self._size)
            raise
        self._offsets.append(self._size)
        self._size += len(record)
        self._entries.append(entry)
        self._unsynced = self._durable

    def clear(self) -> None:
        # Deferred: see the class docstring. Readers see an empty journal now.
        self._entries, self._offsets = [], []
        self._pending_clear = True

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802, N803 - pysyncobj's names
        kept = len(self._entries[:entryFrom])
        if self._pending_clear:
            self._replace_with(self._entries[:kept])
            return
        if kept == len(self._entries):
            return
        assert self._fd is not None, "the journal is closed"
        end = self._offsets[kept]
        os.ftruncate(self._fd, end)
        self._size = end
        self._entries, self._offsets = self._entries[:kept], self._offsets[:kept]
        self._unsynced = self._durable

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802, N803 - pysyncobj's names
        self._replace_with(self._entries[entryTo:])

    def __getitem__(self, item: int | slice) -> Any:
        return self._entries[item]

    def __len__(self) -> int:
        return len(self._entries)

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:  # noqa: N802, N803 - pysyncobj's names
        if self._meta.get("commit_index") != raftCommitIndex:
            self._meta["commit_index"] = raftCommitIndex
            self._meta_dirty = True

    def getRaftCommitIndex(self) -> int:  # noqa: N802 - pysyncobj's name
        return int(self._meta.get("commit_index", 1))

    def setCurrentTerm(self, term: int, votedForNodeId: str | None) -> None:  # noqa: N802, N803
        self._meta["term"] = term
        self._meta["voted_for"] = votedForNodeId
        self._store_meta()

    def getCurrentTerm(self) -> int:  # noqa: N802 - pysyncobj's name
        return int(self._meta.get("term", 0))

    def getVotedForNodeId(self) -> str | None:  # noqa: N802 - pysyncobj's name
        voted_for = self._meta.get("voted_for")
        return None if voted_for is None else str(voted_for)

    def onOneSecondTimer(self) -> None:  # noqa: N802 - pysyncobj's name
        if self._meta_dirty:
            self._store_meta()

    def flush(self) -> None:
        self.sync()

    def _destroy(self) -> None:
        if self._fd is None:
            return
        try:
            if self._meta_dirty:
                self._store_meta()
            self.sync()
        finally:
            os.close(self._fd)
            self._fd = None

    # -- durability --------------------------------------------------------

    @property
    def unsynced(self) -> bool:
        """Whether journal writes are waiting for ``sync`` (fsync mode only)."""
        return self._unsynced or self._pending_clear

    def sync(self) -> None:
        """Make every journal change so far durable (a no-op in the default
        mode, and cheap when nothing changed)."""
        if self._pending_clear:
            self._replace_with(self._entries)
        if self._unsynced and self._fd is not None:
            os.fsync(self._fd)
            self._unsynced = False

    # -- internals ---------------------------------------------------------

    def _store_meta(self) -> None:
        voted_for = self._meta.get("voted_for")
        if voted_for is not None and not isinstance(voted_for, str):
            # Fail now, not at the next start, where the file would be refused.
            raise TypeError(f"coord stores node ids as addresses (str), got {voted_for!r}")
        meta = {
            "term": int(self._meta.get("term", 0)),
            "voted_for": voted_for,
            "commit_index": int(self._meta.get("commit_index", 1)),
        }
        payload = json.dumps(meta, sort_keys=True).encode()
        tmp = self._meta_path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, _META_MAGIC + _META_HEAD.pack(len(payload), zlib.crc32(payload)) + payload, 0)
            if self._durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._meta_path)
        if self._durable:
            _fsync_directory(self._directory)
        self._meta_dirty = False

    def _replace_with(self, entries: list[RaftEntry]) -> None:
        """Make ``entries`` the whole journal, crash-atomically: write them to
        ``.compact``, then rename that over the journal and reopen it."""
        if self._durable and self._dump_path is not None and os.path.exists(self._dump_path):
            # The journal may forget entries now: the snapshot covering them first.
            _fsync_file(self._dump_path)
            _fsync_directory(os.path.dirname(self._dump_path) or ".")
        offsets: list[int] = []
        fd = os.open(self._compact_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            chunk, position, size = [_JOURNAL_MAGIC], 0, len(_JOURNAL_MAGIC)
            buffered = size
            for entry in entries:
                record = _encode_record(entry)
                offsets.append(size)
                size += len(record)
                chunk.append(record)
                buffered += len(record)
                if buffered >= _WRITE_CHUNK:
                    data = b"".join(chunk)
                    _write_all(fd, data, position)
                    position += len(data)
                    chunk, buffered = [], 0
            _write_all(fd, b"".join(chunk), position)
            if self._durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        self._install_compacted()
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self._path, os.O_RDWR)
        self._entries, self._offsets, self._size = list(entries), offsets, size
        self._pending_clear = False
        self._unsynced = False  # the new file is already synced in fsync mode

    def _install_compacted(self) -> None:
        """The commit point of a rewrite: ``.compact`` becomes the journal.
        (A separate method so a test can hold a member right before it.)"""
        os.replace(self._compact_path, self._path)
        if self._durable:
            _fsync_directory(self._directory)

    def _finish_interrupted_compaction(self) -> None:
        """If the snapshot's two entries sit inside this journal (a crash
        after the snapshot was written and before the journal was compacted
        to it), compact now, so pysyncobj's restart check keeps every entry
        after the snapshot (see the class docstring)."""
        if self._dump_path is None or not os.path.exists(self._dump_path) or len(self._entries) < 3:
            return
        try:
            dump = Serializer(self._dump_path, 0, False, None, None, None).deserialize()
            before_last, last = tuple(dump[2]), tuple(dump[1])
        except Exception:  # pysyncobj will report the unreadable snapshot itself
            logger.warning("journal %s: could not read the snapshot %s", self._path, self._dump_path, exc_info=True)
            return
        position = before_last[1] - self._entries[0][1]
        if 0 < position < len(self._entries) - 1 and self._entries[position : position + 2] == [before_last, last]:
            logger.info(
                "journal %s: finishing a compaction interrupted by a crash (%d entries now in the snapshot)",
                self._path,
                position,
            )
            self.deleteEntriesTo(position)


_JOURNAL_FACTORY_LOCK = threading.Lock()


@contextlib.contextmanager
def _journal_factory(make: Callable[[str | None], Any]) -> Iterator[None]:
    """Let ``make`` build the journal of a SyncObj constructed in this block.

    pysyncobj has no option for the journal class: ``SyncObj.__init__``
    calls the module-level ``createJournal(journalFile)``. This override is
    narrowly scoped: it lasts only while this thread constructs one SyncObj
    (constructions are serialised by a lock), and a call from any other
    thread gets pysyncobj's own factory.
    """
    with _JOURNAL_FACTORY_LOCK:
        original = raft_syncobj.createJournal
        owner = threading.get_ident()

        def factory(journal_file: str | None = None) -> Any:
            if threading.get_ident() != owner:
                return original(journal_file)
            return make(journal_file)

        raft_syncobj.createJournal = factory
        try:
            yield
        finally:
            raft_syncobj.createJournal = original


#: Longest a leader holds back the AppendEntries that only announces a new
#: commit index, waiting for a next write to carry it (see _CoordSyncObj).
COMMIT_NOTICE_GRACE_S = 0.00025
#: A local write this soon after an unheld commit notice resumes holding them.
_RESUME_HOLDING_S = 4 * COMMIT_NOTICE_GRACE_S

#: gzip level of the Raft snapshot (``raft.dump``). pysyncobj uses gzip's
#: default, 9, which on a tree snapshot costs ~20x level 1 for ~6 % less size
#: (100k znodes: 2.3 s vs 0.04 s, 1.13 vs 1.21 MB) -- and it runs on the Raft
#: thread of every member at about the same log index, stalling all writes.
SNAPSHOT_GZIP_LEVEL = 1


class _FastSerializer(Serializer):  # type: ignore[misc]
    """pysyncobj's snapshot writer with a fast gzip level.

    Same file format (gzip of the pickle), so pysyncobj's reader, older
    dumps and ``_finish_interrupted_compaction`` are unaffected; only the
    compression level differs. coord never forks (``useFork=False``) and
    has no custom serializer, so only the in-process paths are kept.
    """

    def serialize(self, data: Any, id: Any) -> None:  # noqa: A002 - pysyncobj's signature
        if getattr(self, "_Serializer__pid") != 0:  # noqa: B009 - a mangled name mypy cannot see
            return
        self._Serializer__currentID = id
        file_name = self._Serializer__fileName
        if file_name is None:
            with io.BytesIO() as buffer:
                with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=SNAPSHOT_GZIP_LEVEL) as out:
                    raft_pickle.dump(data, out)
                self._Serializer__inMemorySerializedData = buffer.getvalue()
            self._Serializer__pid = -1
            return
        try:
            tmp_file = file_name + ".tmp"
            with (
                open(tmp_file, "wb") as f,
                gzip.GzipFile(fileobj=f, mode="wb", compresslevel=SNAPSHOT_GZIP_LEVEL) as out,
            ):
                raft_pickle.dump(data, out)
            atomicReplace(tmp_file, file_name)
            self._Serializer__pid = -1
        except Exception:
            logger.warning("writing the Raft snapshot %s failed", file_name, exc_info=True)
            self._Serializer__pid = -2


class _TimedSerializer(_FastSerializer):
    """``_FastSerializer`` that keeps the duration and size of its last
    completed write (pickle + gzip + file), for ``metrics()``."""

    last_seconds = 0.0
    last_bytes = 0

    def serialize(self, data: Any, id: Any) -> None:  # noqa: A002 - pysyncobj's signature
        if getattr(self, "_Serializer__pid") != 0:  # noqa: B009 - busy: nothing will be written
            return
        started = time.monotonic()
        super().serialize(data, id)
        if getattr(self, "_Serializer__pid") == -1:  # noqa: B009 - written
            file_name = self._Serializer__fileName
            with contextlib.suppress(OSError):
                self.last_bytes = (
                    len(self._Serializer__inMemorySerializedData) if file_name is None else os.path.getsize(file_name)
                )
            self.last_seconds = time.monotonic() - started


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
        before_apply: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self._apply_hook = apply_hook
        self._snapshot_hook = snapshot_hook
        self._restore_hook = restore_hook
        self._before_apply = before_apply

    @replicated
    def apply_entry(self, entry: object) -> object:
        if self._before_apply is not None:
            # The durability barrier: if it fails nothing was applied, so
            # pysyncobj's retry of this tick applies the entry only once.
            self._before_apply()
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


def membership_problem(
    kind: object,
    address: object,
    *,
    voters: Sequence[str],
    connected: Sequence[str],
    leader: str | None,
) -> str | None:
    """Why a voter change would be unsafe, or None.

    coord's rule for one change ``kind`` ("add"/"rem") of ``address``,
    judged with the leader's view (``voters``: the current configuration,
    ``connected``: the voters the leader currently reaches, itself
    included): the voters reached must form a quorum of the configuration
    *after* the change without counting the member being added or removed,
    so the cluster never comes to depend on a newcomer that may not be up
    (or on the member being taken out). Growing a one-voter cluster is the
    one exception: its second voter is necessarily needed for a quorum.
    """
    if kind not in (MEMBERSHIP_ADD, MEMBERSHIP_REMOVE) or not isinstance(address, str) or ":" not in address:
        return f"malformed membership change {kind!r} {address!r}"
    current = set(voters)
    reached = set(connected) & current
    if kind == MEMBERSHIP_ADD:
        if address in current:
            return f"{address} already is a voter"
        after = len(current) + 1
        if len(current) > 1 and 2 * len(reached) <= after:
            return (
                f"adding {address} would leave {len(reached)} reachable voter(s) of {after}, not a quorum "
                "without the newcomer; bring the missing voters back first"
            )
        if 2 * len(reached) <= len(current):
            return "the cluster has no quorum"
        return None
    if address not in current:
        return f"{address} is not a voter"
    if address == leader:
        return (
            f"{address} is the leader and cannot remove itself; stop it (another voter takes over) "
            "and remove it from the new leader"
        )
    if len(current) == 1:
        return "cannot remove the last voter"
    after = len(current) - 1
    remaining_reached = len(reached - {address})
    if 2 * remaining_reached <= after:
        return f"removing {address} would leave {remaining_reached} reachable voter(s) of {after}, not a quorum"
    return None


_ELECTION_JITTER = random.SystemRandom()


class _CoordSyncObj(SyncObj):  # type: ignore[misc]
    """pysyncobj's SyncObj with narrowly scoped overrides (membership rules,
    the joining gate, and group commit, each explained where it is).

    * ``__changeCluster`` (the leader's decision on a membership command,
      local or forwarded, on the tick thread right before it is appended)
      first applies coord's rules: no second change while one is in the log
      past the applied index (pysyncobj 0.3.17 means to check this but never
      sets ``__changeClusterIDx``), and ``membership_problem``. A refusal
      reaches the proposer as REQUEST_DENIED; the reason is logged and kept
      in ``coord_membership_refusal``.
    * ``__connectedToAnyone`` (the gate of standing for election) is False
      for a *joining* voter until it has heard from a leader: a new voter
      started before it is added sees brief connections to the members that
      then drop it, and would otherwise stand for election in vain, raising
      its term, and depose the leader once it is added.
    * ``__generateRaftTimeout`` draws the election timeout from coord's own
      OS-seeded generator instead of the ``random`` module's shared one: a
      host application that seeds ``random`` the same way in every process
      (for reproducible runs) would otherwise give its members correlated
      timeouts, and correlated timeouts mean split votes.
    """

    def __init__(self, *args: Any, raft_log: _RaftLog, joining: bool, **kwargs: Any) -> None:
        self._coord_raft_log = raft_log
        self._coord_joining = joining
        self.coord_membership_refusal: str | None = None
        super().__init__(*args, **kwargs)

    def _SyncObj__changeCluster(self, request: Any) -> bool:  # noqa: N802 - pysyncobj's (mangled) name
        problem = self.coord_check_membership(request)
        if problem is not None:
            logger.warning("leader %s refuses membership change %r: %s", self.selfNode, request[:2], problem)
            self.coord_membership_refusal = problem
            return False
        return bool(SyncObj._SyncObj__changeCluster(self, request))

    def coord_check_membership(self, request: Any) -> str | None:
        """coord's rules for a membership request, on the leader's view."""
        if not isinstance(request, (list, tuple)) or len(request) < 2:
            return f"malformed membership change {request!r}"
        pending = self._coord_raft_log.membership_change_after(self.raftLastApplied)
        if pending is not None:
            return f"another membership change (log index {pending}) is not yet committed"
        others = [node.id for node in self.otherNodes]
        me = self.selfNode.id
        return membership_problem(
            request[0],
            request[1],
            voters=[me, *others],
            connected=[me, *(node.id for node in self.otherNodes if self.isNodeConnected(node))],
            leader=me,
        )

    def _SyncObj__generateRaftTimeout(self) -> float:  # noqa: N802 - pysyncobj's (mangled) name
        conf = self._SyncObj__conf
        return _ELECTION_JITTER.uniform(conf.raftMinTimeout, conf.raftMaxTimeout)

    def _SyncObj__connectedToAnyone(self) -> bool:  # noqa: N802 - pysyncobj's (mangled) name
        if self._coord_joining:
            if self._getLeader() is None:
                return False
            self._coord_joining = False  # a leader reached this member: it has joined
        return bool(SyncObj._SyncObj__connectedToAnyone(self))

    # Group commit. Without batching, pysyncobj sends an AppendEntries to
    # every follower after *each* command it appends; under load that is one
    # message (pickle, seal, syscall) per write per follower. Here the leader
    # appends every command queued at this tick first and then sends once: a
    # write alone still goes out at once, a burst goes out as one batch per
    # follower (adaptive batching, with no timer to wait for).
    #
    # Commit notices. After applying, pysyncobj sends every follower an
    # AppendEntries that only carries the new commit index. The leader holds
    # that one back for up to COMMIT_NOTICE_GRACE_S (the Raft thread polls
    # meanwhile, so the caller whose write just applied gets the interpreter
    # at once instead of after two sends): a caller writing in sequence
    # proposes its next write within the grace, and one AppendEntries per
    # follower carries both the entry and the commit index -- half the
    # messages. Followers learn a commit at most the grace later. Only a
    # commit of a command proposed on this member is held (a follower's
    # caller is not going to write here next), and only while holding pays:
    # a hold that expires without a write stops the holding, a write that
    # comes within the grace of an unheld notice resumes it (so a caller
    # writing every few ms, e.g. a watch's setter, is not delayed).
    _coord_deferring_append = False
    _coord_append_deferred = False
    _coord_local_commit = False
    _coord_hold_notices = True  # holding pays off here (the last hold met a write, or one came just after a notice)
    _coord_sent_notice_at = 0.0  # when a local commit's notice last went out unheld
    #: Monotonic time by which a held commit notice must go out (None: none held).
    coord_notice_due: float | None = None
    #: True while the Raft thread waits in poll (see ``_applyCommand``).
    coord_polling = False

    def _applyCommand(self, command: bytes, callback: Any, commandType: int | None = None) -> None:  # noqa: N802, N803
        # pysyncobj writes to its wake-up pipe for every proposal. A syscall
        # that lets the woken Raft thread take the interpreter, so under load
        # each proposal costs the proposer a round trip for the GIL. The Raft
        # thread drains the queue every tick, so only a thread waiting in
        # poll needs waking (_NoticePoller: it sets coord_polling, then checks
        # the queue; a proposer appends, then reads coord_polling).
        if commandType is not None:
            command = bytes((commandType,)) + command
        try:
            self._SyncObj__commandsQueue.put_nowait((command, callback))
        except queue.Full:
            self._SyncObj__callErrCallback(FAIL_REASON.QUEUE_FULL, callback)
            return
        if self.coord_polling:
            self._SyncObj__pipeNotifier.notify()

    def _coord_snapshot_taken(self) -> bool:
        """A snapshot was written and pysyncobj has not yet compacted to it."""
        return getattr(self._SyncObj__serializer, "_Serializer__pid", 0) != 0

    def coord_commands_queued(self) -> bool:
        """Whether proposals wait in pysyncobj's queue (read without its lock)."""
        return bool(self._SyncObj__commandsQueue._FastQueue__queue)

    def _SyncObj__sendAppendEntries(self) -> None:  # noqa: N802 - pysyncobj's (mangled) name
        if self._coord_deferring_append:
            self._coord_append_deferred = True
            return
        self.coord_notice_due = None  # this send carries the commit index too
        SyncObj._SyncObj__sendAppendEntries(self)

    def _SyncObj__applyLogEntries(self) -> bool:  # noqa: N802 - pysyncobj's (mangled) name
        # The tick's send right after this is the commit notice: deferred
        # until _checkCommandsToApply decides (same tick).
        waiting = self._SyncObj__commandsWaitingCommit  # log index -> local proposers' callbacks
        before = len(waiting)
        self._coord_deferring_append, self._coord_append_deferred = True, False
        need_send = bool(SyncObj._SyncObj__applyLogEntries(self))
        self._coord_local_commit = len(waiting) < before
        return need_send

    def _checkCommandsToApply(self) -> None:  # noqa: N802 - pysyncobj's name
        notice = self._coord_deferring_append and self._coord_append_deferred
        self._coord_deferring_append, self._coord_append_deferred = True, False
        try:
            SyncObj._checkCommandsToApply(self)
        finally:
            self._coord_deferring_append = False
        if self._coord_append_deferred:  # new entries: they go out now, with the commit index
            recent = time.monotonic() - self._coord_sent_notice_at <= _RESUME_HOLDING_S
            if self.coord_notice_due is None and recent:
                self._coord_hold_notices = True  # a held notice would have carried these
            self._SyncObj__sendAppendEntries()
        elif notice and (not self._coord_local_commit or not self._coord_hold_notices):
            self._coord_sent_notice_at = time.monotonic()
            self._SyncObj__sendAppendEntries()  # nothing (likely) to wait for
        elif (notice or self.coord_notice_due is not None) and self._coord_snapshot_taken():
            # A snapshot was just written: followers that need it hear at once,
            # as without the hold (pysyncobj paces its transfer by these sends).
            self._SyncObj__sendAppendEntries()
        elif notice or self.coord_notice_due is not None:
            now = time.monotonic()
            if self.coord_notice_due is None:
                self.coord_notice_due = now + COMMIT_NOTICE_GRACE_S
            elif now >= self.coord_notice_due:
                self._coord_hold_notices = False  # no write came: stop holding until one would have
                self._SyncObj__sendAppendEntries()


class _NoticePoller:
    """pysyncobj's poller, waiting no longer than a held commit notice may
    wait (see ``_CoordSyncObj``); everything else is delegated."""

    def __init__(self, inner: Any, owner: _CoordSyncObj) -> None:
        self._inner = inner
        self._owner = owner
        # The pipe a local proposal writes to: waited on alone, with
        # microsecond resolution (poll() would round the grace up to 1 ms).
        notifier = getattr(owner, "_SyncObj__pipeNotifier", None)
        self._wake_fd: int | None = getattr(notifier, "_PipeNotifier__pipeR", None)

    def subscribe(self, descr: int, callback: Callable[[int, int], None], event_mask: int) -> None:
        self._inner.subscribe(descr, callback, event_mask)

    def unsubscribe(self, descr: int) -> None:
        self._inner.unsubscribe(descr)

    def poll(self, timeout: float) -> None:
        owner = self._owner
        owner.coord_polling = True  # before looking at the queue: see _CoordSyncObj._applyCommand
        try:
            if owner.coord_commands_queued():
                timeout = 0.0
            due = owner.coord_notice_due
            if due is not None and timeout > 0:
                remaining = due - time.monotonic()
                if remaining > 0 and self._wake_fd is not None:
                    select.select([self._wake_fd], [], [], remaining)  # a new proposal ends the wait
                    remaining = 0.0
                timeout = max(0.0, min(timeout, remaining))
            self._inner.poll(timeout)
        finally:
            owner.coord_polling = False


def _batch_size_bytes(max_entry_bytes: int) -> int:
    """AppendEntries batch size for entries of at most ``max_entry_bytes``.

    pysyncobj splits an entry whose command is at least the batch size into
    chunks and miscounts the last one (R6); twice the largest entry keeps
    every entry whole."""
    return max(2 * max_entry_bytes, 1 << 16)


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
        durability: str = DURABILITY_PROCESS_CRASH,
        network_faults: NetworkFaults | None = None,
        observer: bool = False,
        joining: bool = False,
    ) -> None:
        check_pysyncobj_version()
        if durability not in DURABILITY_MODES:
            raise ConfigurationError(f"durability must be one of {', '.join(DURABILITY_MODES)}, got {durability!r}")
        if durability == DURABILITY_FSYNC and not data_dir:
            raise ConfigurationError('durability="fsync" needs a data_dir to sync to')
        timing = timing or RaftTiming()
        self.address = address
        self.observer = observer
        self.durability = durability
        self._on_role_change = on_role_change
        self._raft_log = _RaftLog()
        barrier = self._raft_log.sync if durability == DURABILITY_FSYNC else None
        self._consumer = _TreeConsumer(apply_hook, snapshot_hook, restore_hook, before_apply=barrier)
        files = prepare_data_dir(data_dir) if data_dir else {"journal": None, "dump": None}
        conf = SyncObjConf(
            bindAddress=address,
            # No password: with a secret the transport's own authenticated
            # connections replace pysyncobj's Fernet (see _SecureConnection).
            password=None,
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
            # for oversized entries (R6), which wedges on entries just below a
            # multiple of the batch size, is never taken.
            appendEntriesBatchSizeBytes=_batch_size_bytes(max_entry_bytes),
            commandsQueueSize=queue_size,
            commandsWaitLeader=False,
            logCompactionMinEntries=snapshot_entries,
            journalFile=files["journal"],
            fullDumpFile=files["dump"],
            useFork=False,
            # Membership changes go through the log (coord's own API only:
            # the transport refuses the remote admin commands). This also
            # makes a member restored from a snapshot take the snapshot's
            # configuration instead of its constructor's peers.
            dynamicMembershipChange=True,
            onStateChanged=self._state_changed,
        )
        others = [p for p in peers if p != address]
        if observer and not others:
            raise ConfigurationError("an observer needs the voters' addresses in peers")
        self._tick_s = timing.tick_s
        # pysyncobj decides commits before it appends queued commands within a
        # tick; with peers their replies wake the next tick at once, but a lone
        # member would wait a whole tick_s per write, so it ticks again at once.
        self._lone_member = not others
        self._stopping = threading.Event()
        transport_class: Callable[..., Any]
        transport_options: dict[str, Any] = {
            "raft_log": self._raft_log,
            "durability_barrier": barrier,
            "keepalive_interval_s": timing.heartbeat_s / 2,
            "observer_name": address if observer else None,
            "secret": secret,
            "max_frame_bytes": peer_frame_cap(_batch_size_bytes(max_entry_bytes), max_entry_bytes),
        }
        if network_faults is None:
            transport_class = functools.partial(_GuardedTransport, **transport_options)
        else:
            transport_class = functools.partial(
                _FaultInjectingTransport, network_faults=network_faults, **transport_options
            )
        dump_file = files["dump"]

        def make_journal(journal_file: str | None) -> Any:
            if journal_file is None:
                journal = createJournal(None)  # no data_dir: pysyncobj's in-memory journal
            else:
                journal = _CoordJournal(journal_file, dump_file, durable=durability == DURABILITY_FSYNC)
            self._raft_log.journal = journal
            return journal

        # With autoTick off the constructor binds the server synchronously,
        # so a busy port fails here, in the caller's thread.
        with _journal_factory(make_journal):
            self._sync_obj = _CoordSyncObj(
                None if observer else address,
                others,
                conf=conf,
                consumers=[self._consumer],
                transportClass=transport_class,
                raft_log=self._raft_log,
                joining=joining and not observer,
            )
        if self._raft_log.journal is None:
            raise ConfigurationError("pysyncobj did not build its journal through createJournal")
        self._sync_obj._poller = _NoticePoller(self._sync_obj._poller, self._sync_obj)
        # Nothing is being serialised yet (no tick has run): swap in the fast writer.
        self._sync_obj._SyncObj__serializer = _TimedSerializer(
            conf.fullDumpFile, conf.logCompactionBatchSize, False, None, None, None
        )
        if joining and (len(self._raft_log.journal) > 1 or (dump_file is not None and os.path.exists(dump_file))):
            # A restart of a member that joined earlier: it is a voter already.
            self._sync_obj._coord_joining = False
        #: Called on the Raft thread to answer ``member_status`` (the member
        #: sets it; must be quick and return JSON-able data). None: the Raft
        #: status only.
        self.status_provider: Callable[[], dict[str, Any]] | None = None
        self._sync_obj._SyncObj__transport.setOnUtilityMessageCallback(STATUS_COMMAND, self._answer_status)
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
        role = ROLE_OBSERVER if self.observer else _ROLE_BY_STATE.get(raw["state"], ROLE_FOLLOWER)
        last_log_index = self._last_log_index(int(raw["commit_idx"]))
        names = dict(self._transport_observer_names())
        observer_ids = sorted(
            key[len("readonly_node_status_server_") :] for key in raw if key.startswith("readonly_node_status_server_")
        )
        observers = {node_id: names.get(node_id, f"observer#{node_id}") for node_id in observer_ids}
        peer_lag: dict[str, int] = {}
        if role == ROLE_LEADER:
            for key, value in raw.items():
                if key.startswith("match_idx_server_"):
                    node_id = key[len("match_idx_server_") :]
                    name = observers.get(node_id, node_id)
                    if node_id in peers or node_id in observers:
                        peer_lag[name] = max(0, last_log_index - int(value))
        voters = sorted(peers) if self.observer else sorted([self.address, *peers])
        return ReplicaStatus(
            role=role,
            leader=getattr(leader, "address", None) if leader is not None else None,
            term=int(raw["raft_term"]),
            commit_index=int(raw["commit_idx"]),
            last_applied=int(raw["last_applied"]),
            has_quorum=bool(raw["has_quorum"]),
            ready=bool(self._sync_obj.isReady()),
            peers_connected=peers,
            last_log_index=last_log_index,
            voters=tuple(voters),
            observers=tuple(sorted(observers.values())),
            peer_lag=dict(sorted(peer_lag.items())),
        )

    def _answer_status(self, _args: Any, callback: Callable[[Any, Any], None]) -> None:
        """The ``STATUS_COMMAND`` utility handler (Raft thread): this
        member's status as a JSON text (a str pickles without globals)."""
        try:
            provider = self.status_provider
            payload = provider() if provider is not None else dataclasses.asdict(self.status())
            text = json.dumps(payload, default=str)
        except Exception as exc:  # reported to the asker, never raised into pysyncobj
            text = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        callback(text, None)

    def _transport_observer_names(self) -> list[tuple[str, str]]:
        transport = getattr(self._sync_obj, "_SyncObj__transport", None)
        names = getattr(transport, "observer_names", None) or {}
        for _ in range(5):  # written by the tick thread; retry a copy torn by a resize
            try:
                return list(names.items())
            except RuntimeError:
                continue
        return []

    def change_membership(self, kind: str, address: str, timeout: float) -> None:
        """Add (``"add"``) or remove (``"rem"``) the voter ``address``; wait
        up to ``timeout`` s until the change is committed and applied here.

        Must run on a voter; pysyncobj forwards the change to the leader,
        which decides (``_CoordSyncObj``). The same rules are first checked
        on this member's own view, for a precise message.

        :raises MembershipChangeError: refused; nothing changed.
        :raises NotReadyError: no leader to take the change.
        :raises UnknownOutcomeError: no outcome within ``timeout`` or the
            leader changed meanwhile: the change may still commit.
        """
        if self.observer:
            raise MembershipChangeError("an observer cannot change the membership; call this on a voter")
        if kind not in (MEMBERSHIP_ADD, MEMBERSHIP_REMOVE):
            raise ValueError(f"kind must be {MEMBERSHIP_ADD!r} or {MEMBERSHIP_REMOVE!r}, got {kind!r}")
        problem = self._local_membership_problem(kind, address)
        if problem is not None:
            raise MembershipChangeError(problem)
        done = threading.Event()
        outcome: list[int] = []

        def callback(_result: object, error: int) -> None:
            outcome.append(error)
            done.set()

        self._sync_obj.coord_membership_refusal = None
        if kind == MEMBERSHIP_ADD:
            self._sync_obj.addNodeToCluster(address, callback=callback)
        else:
            self._sync_obj.removeNodeFromCluster(address, callback=callback)
        verb = "adding" if kind == MEMBERSHIP_ADD else "removing"
        if not done.wait(timeout):
            raise UnknownOutcomeError(
                f"{verb} {address} did not commit within {timeout} s; it may still commit: check status().voters"
            )
        error = outcome[0]
        if error == FAIL_REASON.SUCCESS:
            logger.info("member %s: %s voter %s committed", self.address, verb, address)
            return
        if error == FAIL_REASON.REQUEST_DENIED:
            reason = self._sync_obj.coord_membership_refusal or (
                "another membership change is still uncommitted, the voters it reaches would not form a "
                "quorum of the new configuration, or the address already is (or is not) a voter"
            )
            raise MembershipChangeError(f"the leader refused {verb} {address}: {reason}")
        kind_of_failure, reason = _FAILURES.get(error, _UNKNOWN_FAILURE)
        if kind_of_failure == FailureKind.NOT_APPENDED:
            raise NotReadyError(f"{verb} {address} failed: {reason}")
        raise UnknownOutcomeError(f"{verb} {address}: {reason}; it may still commit: check status().voters")

    def _local_membership_problem(self, kind: str, address: str) -> str | None:
        """``membership_problem`` on this member's own view (read from the
        caller's thread, so possibly one tick stale: the leader re-checks)."""
        sync_obj = self._sync_obj
        for _ in range(5):
            try:
                others = list(sync_obj.otherNodes)
                break
            except RuntimeError:  # the set was resized by the tick thread mid-copy
                continue
        else:
            return "the configuration is changing; retry"
        try:
            pending = self._raft_log.membership_change_after(sync_obj.raftLastApplied)
        except (IndexError, TypeError):  # a snapshot is being installed right now
            pending = None
        if pending is not None:
            return f"another membership change (log index {pending}) is not yet committed"
        leader = self.leader_address()
        if leader is None:
            return "there is no leader"
        voters = [self.address, *(node.id for node in others)]
        if self.is_leader():
            connected = [self.address, *(node.id for node in others if sync_obj.isNodeConnected(node))]
        else:
            # A follower cannot see the leader's connections: only the
            # structural rules are checked here, the quorum ones on the leader.
            connected = voters
        return membership_problem(kind, address, voters=voters, connected=connected, leader=leader)

    def _last_log_index(self, fallback: int) -> int:
        # Read from the caller's thread: loading a snapshot briefly empties
        # the journal, so a miss falls back to the commit index.
        try:
            return self._raft_log.last_index()
        except (IndexError, TypeError):
            return fallback

    def is_leader(self) -> bool:
        """Whether pysyncobj believes this member leads (a deposed leader may
        still say yes for up to ``leader_fallback_s``: never base safety on it)."""
        return bool(self._sync_obj._isLeader())

    def leader_address(self) -> str | None:
        leader = self._sync_obj._getLeader()
        return getattr(leader, "address", None) if leader is not None else None

    @property
    def append_entries_batch_bytes(self) -> int:
        """pysyncobj's AppendEntries batch size: above the largest entry, so
        an entry is never split into chunks (R6)."""
        return int(self._sync_obj.conf.appendEntriesBatchSizeBytes)

    def refused_connections(self) -> int:
        """Peer connections this member refused since the process started."""
        return _refused_connections[self.address]

    def snapshot_write_stats(self) -> tuple[float, int]:
        """(seconds, bytes) of the last snapshot write on the Raft thread:
        pickle + gzip (+ file, with a data_dir); (0.0, 0) before the first."""
        serializer = getattr(self._sync_obj, "_SyncObj__serializer", None)
        return float(getattr(serializer, "last_seconds", 0.0)), int(getattr(serializer, "last_bytes", 0))

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


class _NoGlobalsUnpickler(pickle.Unpickler):
    """Loads only pickles of builtin values (str, dict, list, numbers):
    any class or function reference is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a status reply")


#: The largest status reply ``member_status`` accepts.
_STATUS_REPLY_MAX_BYTES = 1 << 22


def _decode_status_reply(plaintext: bytes) -> dict[str, Any]:
    reply = _NoGlobalsUnpickler(io.BytesIO(plaintext)).load()
    if not isinstance(reply, str):
        raise ConnectionError(f"unexpected status reply of type {type(reply).__name__}")
    try:
        decoded = json.loads(reply)
    except ValueError:  # pysyncobj answers a failed utility command with a plain text
        raise ConnectionError(f"the member answered: {reply[:200]}") from None
    if not isinstance(decoded, dict):
        raise ConnectionError("unexpected status reply")
    return decoded


def _recv_some(sock: socket.socket, deadline: float, address: str) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"{address} did not answer in time")
    sock.settimeout(remaining)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        raise TimeoutError(f"{address} did not answer in time") from None
    if not data:
        raise ConnectionError(
            f"{address} closed the connection (is it a coord member, and does it use the same secret, or none?)"
        )
    return data


def member_status(address: str, secret: bytes | None, timeout: float = 5.0) -> dict[str, Any]:
    """Ask the member listening on ``address`` (its Raft address) for its
    status, as ``coord status`` does: ``MemberStatus.to_dict()`` of that
    member, or ``{"error": ...}`` if it could not build one.

    With ``secret`` the question travels over coord's authenticated peer
    protocol (mutual handshake, AES-GCM frames: ``coord.peer_crypto``), so
    only a holder of the cluster secret can ask and the reply is verified
    before it is decoded; without one (a loopback cluster without secret)
    over pysyncobj's plain framing. Either way the reply is a JSON text
    loaded by an unpickler that refuses every class, so even an
    unauthenticated reply cannot run code. Observers listen on nothing and
    cannot be asked.

    :raises OSError: the member is unreachable, closed the connection, did
        not answer within ``timeout`` (``TimeoutError``), or failed the
        handshake (``PermissionError``: not the same secret).
    """
    host, port = security_split_address(address)
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        if secret is None:
            body = zlib.compress(pickle.dumps([STATUS_COMMAND]), 3)
            sock.sendall(struct.pack("i", len(body)) + body)
            buffer = b""
            while len(buffer) < 4 or len(buffer) < 4 + struct.unpack("i", buffer[:4])[0]:
                if len(buffer) >= 4 and not 0 < struct.unpack("i", buffer[:4])[0] <= _STATUS_REPLY_MAX_BYTES:
                    raise ConnectionError(f"{address} sent a malformed status reply")
                buffer += _recv_some(sock, deadline, address)
            size = struct.unpack("i", buffer[:4])[0]
            return _decode_status_reply(zlib.decompress(buffer[4 : 4 + size]))
        session = peer_crypto.PeerSession(secret, initiator=True, max_frame_bytes=_STATUS_REPLY_MAX_BYTES)
        sock.sendall(session.start())
        asked = False
        while True:
            try:
                reply, plaintexts = session.receive(_recv_some(sock, deadline, address))
            except peer_crypto.HandshakeError as exc:
                raise PermissionError(f"{address}: {exc}") from None
            except peer_crypto.PeerProtocolError as exc:
                raise ConnectionError(f"{address}: {exc}") from None
            out = reply
            if session.established and not asked:
                out += session.seal(pickle.dumps([STATUS_COMMAND], protocol=pickle.HIGHEST_PROTOCOL))
                asked = True
            if out:
                sock.sendall(out)
            if plaintexts:
                return _decode_status_reply(plaintexts[0])
