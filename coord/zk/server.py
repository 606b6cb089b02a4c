"""The ZooKeeper client-protocol listener of one member.

One thread (``coord-zk-<address>``) runs a ``selectors`` loop over the
listening socket, every client connection and a wake-up socket pair. It
reads frames, decodes them (``jute``), answers reads from the replica and
hands writes to the session's request pipeline; it never waits for Raft.

Reply order. ZooKeeper answers a connection's requests in the order they
were sent, and queues a watch notification before any reply that shows the
change. Each connection keeps a *pipeline* of requests in arrival order; a
write's slot is settled when its entry applies (on the Raft thread, under
the member lock, right after the apply hook queued that entry's
notifications), a read is executed only once every request before it is
settled, under the member lock, and its reply is queued at once. Settled
replies move from the head of the pipeline to the connection's outbox, which
the I/O thread writes out. A read that waited behind the session's own
writes runs on the Raft thread right after the last of them applies (before
any later entry), so it sees exactly the state its position in the session
implies, as in ZooKeeper; that is the only work the endpoint does on the
Raft thread besides queueing notifications and settling requests.

Threads and locks: the I/O thread; the Raft thread (the apply hook); the
member's callback thread (a resumed session's sync barrier); lock order is
member lock, then a connection's lock, never the reverse.

Bounds. A frame longer than ``max_frame_bytes`` (ZooKeeper's
jute.maxbuffer), an undecodable frame, or an outbox above
``max_outbox_bytes`` (a client that does not read) closes that connection
with a log line; nothing else is affected. A connection stops being read
while ``max_pipeline`` of its requests are outstanding.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import selectors
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from .. import ops
from ..acl import resolve_auth
from ..errors import CoordError, ErrorCode, NotReadyError, OperationTimeoutError
from ..security import split_address
from ..tree import Applied
from . import four_letter, handlers, jute
from .jute import Err, OpCode, Xid
from .sessions import (
    PASSWORD_BYTES,
    ZkSession,
    epoch_of,
    make_tracker,
    new_session_id,
    password_ok,
    resume_request_id,
    session_password,
)
from .watches import ZkWatches

if TYPE_CHECKING:
    from ..member import Member
    from ..tree import Tree

logger = logging.getLogger(__name__)

_TICK_S = 0.05
_RECV_BYTES = 256 * 1024
_SEND_BATCH_BYTES = 256 * 1024
_NEW, _CONNECTING, _OPEN = "new", "connecting", "open"


class _Slot:
    """One request in a connection's pipeline."""

    __slots__ = ("close_after", "reply", "request", "write")

    def __init__(self, request: jute.Request | None, write: bool, reply: bytes | None = None) -> None:
        self.request = request
        self.write = write
        self.reply = reply
        self.close_after = False


class Connection:
    """One client connection (state shared by the I/O, Raft and callback threads)."""

    def __init__(self, conn_id: int, sock: socket.socket, peer: tuple[Any, ...]) -> None:
        self.id = conn_id
        self.sock = sock
        self.peer = f"{peer[0]}:{peer[1]}"
        self.peer_host = str(peer[0])
        self.lock = threading.RLock()
        self.inbuf = bytearray()
        self.outbox: collections.deque[bytes] = collections.deque()
        self.out_bytes = 0
        self.pipeline: collections.deque[_Slot] = collections.deque()
        self.state = _NEW
        self.session: ZkSession | None = None
        self.close_reason: str | None = None  # set: close now
        self.close_after_flush = False
        self.closed = False
        self.received = 0
        self.sent = 0
        self.connected_at = time.time()
        self.interest = 0


#: The keyword options ``ZkServer`` takes (``Coordinator(zk_options=...)``).
OPTION_NAMES = frozenset(
    {
        "tick_ms",
        "min_session_timeout_ms",
        "max_session_timeout_ms",
        "max_frame_bytes",
        "max_outbox_bytes",
        "max_pipeline",
        "max_connections",
    }
)


class ZkServer:
    """Serves ZooKeeper's client protocol for ``member`` on ``address``.

    :param tick_ms: ZooKeeper's tickTime: session timeouts are negotiated
        into ``[min_session_timeout_ms, max_session_timeout_ms]``, by
        default 2 and 20 ticks, as ZooKeeper does.
    :param max_frame_bytes: largest request frame (jute.maxbuffer); by
        default the member's value limit plus 64 KiB of room.
    :param max_outbox_bytes: unsent reply bytes a connection may queue
        before it is dropped as a slow reader.
    :param max_pipeline: outstanding requests per connection before the
        server stops reading it (back-pressure, not an error).
    :param max_connections: connections beyond this are closed at once.
    :param password_key: key of the session passwords (the cluster secret).
    """

    def __init__(
        self,
        member: Member,
        address: str,
        *,
        tick_ms: int = 2000,
        min_session_timeout_ms: int | None = None,
        max_session_timeout_ms: int | None = None,
        max_frame_bytes: int | None = None,
        max_outbox_bytes: int | None = None,
        max_pipeline: int = 1000,
        max_connections: int = 1000,
        password_key: bytes | None = None,
    ) -> None:
        self.host, self.port = split_address(address)
        self.member = member
        if type(tick_ms) is not int or tick_ms <= 0:
            raise ValueError(f"tick_ms must be a positive int, got {tick_ms!r}")
        self.tick_ms = tick_ms
        self.min_session_timeout_ms = min_session_timeout_ms or 2 * tick_ms
        self.max_session_timeout_ms = max_session_timeout_ms or 20 * tick_ms
        if not 0 < self.min_session_timeout_ms <= self.max_session_timeout_ms:
            raise ValueError("need 0 < min_session_timeout_ms <= max_session_timeout_ms")
        self.max_frame_bytes = max_frame_bytes or member.max_data_bytes + ops.MAX_ENTRY_OVERHEAD_BYTES
        self.max_outbox_bytes = max_outbox_bytes or max(16 << 20, 4 * self.max_frame_bytes)
        self.max_pipeline = max_pipeline
        self.max_connections = max_connections
        self.password_key = password_key
        self.watches = ZkWatches()  # guarded by the member lock
        self.started_at = time.time()
        self.packets_received = 0
        self.packets_sent = 0
        self._conns: dict[int, Connection] = {}
        self._by_session: dict[int, Connection] = {}
        self._next_conn_id = 1
        self._dirty: set[int] = set()
        self._dirty_lock = threading.Lock()
        self._stop = threading.Event()
        self._selector: selectors.BaseSelector | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def address(self) -> str:
        """``host:port`` actually bound (the port may have been 0)."""
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Bind, register the apply hook and start the I/O thread."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
        except OSError as exc:
            listener.close()
            raise NotReadyError(f"cannot bind the ZooKeeper endpoint {self.address}: {exc.strerror}") from None
        listener.listen(128)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, "listen")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self.member.add_apply_hook(self)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"coord-zk-{self.address}", daemon=True)
        self._thread.start()
        logger.info("ZooKeeper endpoint of %s listening on %s", self.member.address, self.address)

    def stop(self) -> None:
        """Close every connection (sessions stay in the tree and expire or
        move, as when a ZooKeeper server stops) and the listener."""
        if self._thread is None or self._stop.is_set():
            return
        self.member.remove_apply_hook(self)
        self._stop.set()
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        for conn in list(self._conns.values()):
            self._close_now(conn, "the member is stopping", lock_member=False)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        if self._selector is not None:
            self._selector.close()
        logger.info("ZooKeeper endpoint %s stopped", self.address)

    # ------------------------------------------------------------ stats (four-letter words)

    def connections(self) -> list[Connection]:
        """The open client connections (a snapshot of the list)."""
        return list(self._conns.values())

    def outstanding(self) -> int:
        """Requests received and not yet answered, over all connections."""
        return sum(len(c.pipeline) for c in list(self._conns.values()))

    # ------------------------------------------------------------ I/O thread

    def _wake(self, conn: Connection | None = None) -> None:
        if conn is not None:
            with self._dirty_lock:
                self._dirty.add(conn.id)
        wake = self._wake_w
        if wake is not None:
            with contextlib.suppress(OSError):
                wake.send(b"\0")

    def _run(self) -> None:
        assert self._selector is not None
        next_tick = time.monotonic() + _TICK_S
        while not self._stop.is_set():
            try:
                events = self._selector.select(timeout=max(0.0, next_tick - time.monotonic()))
            except OSError:
                if self._stop.is_set():
                    return
                raise
            for key, mask in events:
                try:
                    self._on_event(key, mask)
                except Exception:
                    logger.exception("ZooKeeper endpoint %s: unexpected error", self.address)
                    if isinstance(key.data, Connection):
                        self._close_now(key.data, "internal error")
            self._process_dirty()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + _TICK_S
                self._tick()

    def _on_event(self, key: selectors.SelectorKey, mask: int) -> None:
        if key.data == "listen":
            self._accept()
        elif key.data == "wake":
            with contextlib.suppress(OSError):
                while self._wake_r is not None and self._wake_r.recv(4096):
                    pass
        else:
            conn: Connection = key.data
            if mask & selectors.EVENT_READ:
                self._read(conn)
            if mask & selectors.EVENT_WRITE and not conn.closed:
                self._write(conn)
            self._mark(conn)

    def _mark(self, conn: Connection) -> None:
        with self._dirty_lock:
            self._dirty.add(conn.id)

    def _accept(self) -> None:
        assert self._listener is not None and self._selector is not None
        for _ in range(64):
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.warning("ZooKeeper endpoint %s: accept failed: %s", self.address, exc)
                return
            if len(self._conns) >= self.max_connections:
                logger.warning(
                    "ZooKeeper endpoint %s: refusing %s: %d connections", self.address, peer, len(self._conns)
                )
                sock.close()
                continue
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(self._next_conn_id, sock, peer)
            self._next_conn_id += 1
            self._conns[conn.id] = conn
            conn.interest = selectors.EVENT_READ
            self._selector.register(sock, conn.interest, conn)

    def _read(self, conn: Connection) -> None:
        try:
            chunk = conn.sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close_now(conn, f"read failed: {exc}")
            return
        if not chunk:
            self._close_now(conn, "closed by the client", quiet=True)
            return
        conn.inbuf += chunk
        self._parse(conn)

    def _parse(self, conn: Connection) -> None:
        while not conn.closed and conn.close_reason is None and not conn.close_after_flush:
            if conn.state == _CONNECTING:
                return  # the rest waits for the session
            if len(conn.pipeline) >= self.max_pipeline:
                return  # back-pressure: the rest waits until replies drain
            if len(conn.inbuf) < 4:
                return
            if conn.state == _NEW and conn.received == 0:
                word = bytes(conn.inbuf[:4])
                if word.isascii() and word.decode("ascii") in jute.FOUR_LETTER_WORDS:
                    del conn.inbuf[:4]
                    conn.received += 1
                    self._four_letter(conn, word.decode("ascii"))
                    return
            length = int.from_bytes(conn.inbuf[:4], "big", signed=True)
            if length < 0 or length > self.max_frame_bytes:
                self._close_now(conn, f"frame length {length} outside 0..{self.max_frame_bytes} (jute.maxbuffer)")
                return
            if len(conn.inbuf) < 4 + length:
                return
            payload = bytes(conn.inbuf[4 : 4 + length])
            del conn.inbuf[: 4 + length]
            conn.received += 1
            self.packets_received += 1
            if conn.state == _NEW:
                self._on_connect_frame(conn, payload)
            else:
                self._on_request_frame(conn, payload)

    def _write(self, conn: Connection) -> None:
        """Send what the socket takes, many small frames per system call."""
        with conn.lock:
            while conn.outbox:
                if len(conn.outbox) > 1 and len(conn.outbox[0]) < _SEND_BATCH_BYTES:
                    batch, size, count = [], 0, 0
                    while conn.outbox and size < _SEND_BATCH_BYTES:
                        item = conn.outbox.popleft()
                        batch.append(item)
                        size += len(item)
                        count += 1
                    conn.outbox.appendleft(b"".join(batch))
                    conn.sent += count - 1
                    self.packets_sent += count - 1
                head = conn.outbox[0]
                try:
                    sent = conn.sock.send(head)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:
                    conn.close_reason = f"write failed: {exc}"
                    return
                conn.out_bytes -= sent
                if sent < len(head):
                    conn.outbox[0] = head[sent:]
                    return
                conn.outbox.popleft()
                conn.sent += 1
                self.packets_sent += 1

    def _process_dirty(self) -> None:
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        for conn_id in sorted(dirty):
            conn = self._conns.get(conn_id)
            if conn is None or conn.closed:
                continue
            if conn.close_reason is not None:
                self._close_now(conn, conn.close_reason)
                continue
            if conn.state == _OPEN:
                self._pump(conn)
                if conn.inbuf and len(conn.pipeline) < self.max_pipeline:
                    self._parse(conn)
            if conn.closed:
                continue
            if conn.outbox:
                self._write(conn)
            with conn.lock:
                if conn.out_bytes > self.max_outbox_bytes:
                    conn.close_reason = f"slow reader: {conn.out_bytes} reply bytes unsent"
                drained = not conn.outbox
            if conn.close_reason is not None:
                self._close_now(conn, conn.close_reason)
                continue
            if conn.close_after_flush and drained:
                self._close_now(conn, "closed after its last reply", quiet=True)
                continue
            self._update_interest(conn)

    def _update_interest(self, conn: Connection) -> None:
        assert self._selector is not None
        want = 0
        if conn.state != _CONNECTING and len(conn.pipeline) < self.max_pipeline and not conn.close_after_flush:
            want |= selectors.EVENT_READ
        if conn.outbox:
            want |= selectors.EVENT_WRITE
        if want != conn.interest:
            conn.interest = want
            if want:
                self._selector.modify(conn.sock, want, conn) if self._registered(conn) else self._selector.register(
                    conn.sock, want, conn
                )
            elif self._registered(conn):
                self._selector.unregister(conn.sock)

    def _registered(self, conn: Connection) -> bool:
        assert self._selector is not None
        try:
            self._selector.get_key(conn.sock)
        except (KeyError, ValueError):
            return False
        return True

    def writable(self) -> bool:
        """Whether this member is part of a working cluster (a leader and a
        quorum): else it serves only read-only clients (ZooKeeper's
        read-only mode) and ``isro`` answers ``ro``."""
        try:
            status = self.member.raft_status()
        except CoordError:
            return False
        return status.leader is not None and status.has_quorum

    def _tick(self) -> None:
        now = time.monotonic()
        conns = list(self._conns.values())
        writable = self.writable() if any(c.session is not None and c.session.read_only for c in conns) else False
        for conn in conns:
            session = conn.session
            if session is None or conn.closed:
                continue
            if session.read_only:
                if writable:  # as a read-only ZooKeeper server restarts when it rejoins a quorum
                    self._close_now(conn, "the member has a quorum again: read-only session ends")
                continue
            try:
                session.tracker.tick()
            except Exception:
                logger.exception("ZooKeeper session 0x%x: request pipeline tick failed", session.session_id)
            if conn.state == _OPEN and session.stale(now):
                self._close_now(
                    conn,
                    f"session 0x{session.session_id:x} got no commit for 2/3 of its timeout (no quorum?)",
                )

    # ------------------------------------------------------------ closing

    def _close_now(self, conn: Connection, reason: str, *, quiet: bool = False, lock_member: bool = True) -> None:
        """Close ``conn`` (I/O thread, or stop()): its session stays open in
        the tree, as ZooKeeper's does when a connection drops."""
        if conn.closed:
            return
        conn.closed = True
        log = logger.debug if quiet else logger.warning
        sid = conn.session.session_id if conn.session is not None else 0
        log(
            "ZooKeeper endpoint %s: closing connection from %s (session 0x%x): %s", self.address, conn.peer, sid, reason
        )
        if self._selector is not None and self._registered(conn):
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.close()
        self._conns.pop(conn.id, None)
        session = conn.session
        if session is not None and self._by_session.get(session.session_id) is conn:
            del self._by_session[session.session_id]

        def forget(tree: Tree) -> None:
            self.watches.drop_connection(conn.id)

        if lock_member:
            with contextlib.suppress(CoordError):
                self.member.read_tree(forget)
        else:
            forget(None)  # type: ignore[arg-type]
        if session is not None:
            session.tracker.fail_all(OperationTimeoutError("the ZooKeeper connection closed"))

    def _request_close(self, conn: Connection, reason: str) -> None:
        """Any thread: close ``conn`` as soon as the I/O thread gets to it."""
        with conn.lock:
            if conn.close_reason is None:
                conn.close_reason = reason
        self._wake(conn)

    def _close_after_flush(self, conn: Connection) -> None:
        conn.close_after_flush = True
        self._wake(conn)

    # ------------------------------------------------------------ output

    def _push(self, conn: Connection, payload: bytes) -> None:
        """Queue one reply/notification frame (caller holds conn.lock)."""
        data = jute.frame(payload)
        conn.outbox.append(data)
        conn.out_bytes += len(data)

    def _notify(self, conn_id: int, event_type: int, path: str) -> None:
        """Queue a WatcherEvent (under the member lock)."""
        conn = self._conns.get(conn_id)
        if conn is None or conn.closed:
            return
        with conn.lock:
            self._push(conn, jute.watcher_event(event_type, path))
        self._wake(conn)

    # ------------------------------------------------------------ four-letter words

    def _four_letter(self, conn: Connection, word: str) -> None:
        try:
            text = four_letter.respond(word, self)
        except Exception:
            logger.exception("four-letter word %r failed", word)
            text = ""
        with conn.lock:
            conn.outbox.append(text.encode("utf-8"))
            conn.out_bytes += len(text)
        conn.close_after_flush = True
        self._mark(conn)

    # ------------------------------------------------------------ session handshake

    def _negotiate(self, requested_ms: int) -> int:
        return max(self.min_session_timeout_ms, min(self.max_session_timeout_ms, requested_ms))

    def _refuse_expired(self, conn: Connection, why: str) -> None:
        logger.info("ZooKeeper endpoint %s: session refused for %s: %s", self.address, conn.peer, why)
        with conn.lock:
            self._push(conn, jute.connect_response(0, 0, bytes(PASSWORD_BYTES)))
        self._close_after_flush(conn)

    def _on_connect_frame(self, conn: Connection, payload: bytes) -> None:
        try:
            request = jute.read_connect_request(payload)
        except jute.JuteError as exc:
            self._close_now(conn, f"malformed ConnectRequest: {exc}")
            return
        try:
            zxid = self.member.read_tree(lambda tree: tree.zxid)
        except CoordError as exc:
            self._close_now(conn, f"member not serving: {exc}")
            return
        if request.last_zxid_seen > zxid:
            self._close_now(
                conn,
                f"client has seen zxid 0x{request.last_zxid_seen:x}, this replica is at 0x{zxid:x}: "
                "it must try another member (as ZooKeeper refuses it)",
            )
            return
        if request.timeout_ms <= 0:
            self._close_now(conn, f"bad session timeout {request.timeout_ms}")
            return
        if not self.writable():
            if request.read_only:
                self._open_read_only(conn, self._negotiate(request.timeout_ms))
            else:
                self._close_now(conn, "this member has no quorum: the client must try another member")
            return
        conn.state = _CONNECTING
        if request.session_id == 0:
            self._open_session(conn, self._negotiate(request.timeout_ms))
        elif not password_ok(request.session_id, request.password, self.password_key):
            self._refuse_expired(conn, f"wrong password for session 0x{request.session_id:x}")
        else:
            self._resume_session(conn, request.session_id)

    def _open_read_only(self, conn: Connection, timeout_ms: int) -> None:
        """ZooKeeper's read-only mode: a member cut off from the quorum
        serves reads from its replica to clients that allow it, under a
        local session that is not in the tree (writes get NOT_READ_ONLY)."""
        session = ZkSession(new_session_id(), timeout_ms, make_tracker(self.member), 1)
        session.read_only = True
        session.password = session_password(session.session_id, self.password_key)
        conn.session = session
        with conn.lock:
            self._push(conn, jute.connect_response(timeout_ms, session.session_id, session.password, read_only=True))
            conn.state = _OPEN
        logger.info("ZooKeeper endpoint %s: read-only session for %s (no quorum)", self.address, conn.peer)
        self._mark(conn)

    def _open_session(self, conn: Connection, timeout_ms: int) -> None:
        session_id = new_session_id()
        tracker = make_tracker(self.member, max_in_flight=self.max_pipeline + 16)
        tracker.begin_session(session_id, 1)
        session = ZkSession(session_id, timeout_ms, tracker, 1)
        conn.session = session
        self._by_session[session_id] = conn
        try:
            future = tracker.submit(
                ops.open_session_op(timeout_ms), _applied, self.member.request_timeout, wait_for_slot=False
            )
        except CoordError as exc:
            self._close_now(conn, f"cannot open a session: {exc}")
            return
        future.add_done_callback(lambda f: self._session_ready(conn, session, f))

    def _resume_session(self, conn: Connection, session_id: int) -> None:
        # A sync through this member's own session first: afterwards the
        # replica holds every entry committed before this reconnect, so the
        # session's request horizon read below covers the previous member's.
        try:
            barrier = self.member.submit(ops.sync_op(), lambda applied: None, self.member.request_timeout)
        except CoordError as exc:
            self._close_now(conn, f"cannot resume session 0x{session_id:x}: {exc}")
            return
        barrier.add_done_callback(lambda f: self._resume_after_sync(conn, session_id, f))

    def _resume_after_sync(self, conn: Connection, session_id: int, barrier: Any) -> None:
        if conn.closed:
            return
        if barrier.exception() is not None:
            self._request_close(conn, f"cannot resume session 0x{session_id:x}: {barrier.exception()!r}")
            return
        try:
            found = self.member.read_tree(
                lambda tree: (tree.session_request_horizon(session_id), tree.session_info(session_id))
            )
        except CoordError as exc:
            self._request_close(conn, f"member not serving: {exc}")
            return
        horizon, info = found
        if horizon is None or info is None:
            self._refuse_expired(conn, f"session 0x{session_id:x} has expired")
            return
        previous = self._by_session.get(session_id)
        if previous is not None and previous is not conn:
            self._request_close(previous, f"session 0x{session_id:x} reconnected on {conn.peer}")
        first = resume_request_id(horizon)
        tracker = make_tracker(self.member, max_in_flight=self.max_pipeline + 16)
        tracker.begin_session(session_id, first)
        session = ZkSession(session_id, info.timeout_ms, tracker, first)
        conn.session = session
        self._by_session[session_id] = conn
        try:
            future = tracker.submit(ops.keepalive_op(), _applied, self.member.request_timeout, wait_for_slot=False)
        except CoordError as exc:
            self._request_close(conn, f"cannot resume session 0x{session_id:x}: {exc}")
            return
        future.add_done_callback(lambda f: self._session_ready(conn, session, f))

    def _session_ready(self, conn: Connection, session: ZkSession, future: Any) -> None:
        """open_session / resume keepalive settled (any thread)."""
        if conn.closed:
            return
        error = future.exception()
        if error is not None:
            self._request_close(conn, f"session 0x{session.session_id:x} not established: {error!r}")
            return
        applied: Applied = future.result()
        code = applied.result[0]
        if code == ErrorCode.SESSION_EXPIRED:
            self._refuse_expired(conn, f"session 0x{session.session_id:x} has expired")
            return
        if code != 0 or (applied.duplicate and session.epoch > 0):
            # STALE_REQUEST or a duplicate answer: another member resumed the
            # session at the same or a later epoch meanwhile. The session
            # lives on; this connection must not use it (the client retries).
            self._request_close(conn, f"session 0x{session.session_id:x} not established: code {code}")
            return
        session.password = session_password(session.session_id, self.password_key)
        with conn.lock:
            self._push(conn, jute.connect_response(session.timeout_ms, session.session_id, session.password))
            conn.state = _OPEN
        session.last_commit = session.last_keepalive = time.monotonic()
        logger.debug("ZooKeeper session 0x%x established for %s", session.session_id, conn.peer)
        self._wake(conn)

    # ------------------------------------------------------------ requests

    def _on_request_frame(self, conn: Connection, payload: bytes) -> None:
        try:
            request = jute.read_request(payload)
        except jute.JuteError as exc:
            self._close_now(conn, f"malformed request: {exc}")
            return
        session = conn.session
        assert session is not None
        if session.read_only and request.op in handlers.WRITE_OPS:
            if request.op == OpCode.CLOSE_SESSION:
                slot = _Slot(request, False, jute.reply_header(request.xid, self._zxid(), 0))
                slot.close_after = True
            else:
                err = 0 if request.op == OpCode.AUTH else Err.NOT_READ_ONLY  # auth: accepted, not recorded
                slot = _Slot(request, False, jute.reply_header(request.xid, self._zxid(), err))
            self._queue(conn, slot)
            return
        now = time.monotonic()
        if session.read_only:
            pass  # a local session: nothing to keep alive
        elif request.op in handlers.WRITE_OPS or request.op == OpCode.AUTH:
            session.last_keepalive = now  # a write is activity of the session itself
        elif session.keepalive_due(now):
            # Any request keeps a ZooKeeper session alive (touchSession), so
            # a client busy with reads never pings: reads cause keepalives.
            self._keepalive(session)
        if request.op == OpCode.AUTH:
            self._submit_auth(conn, session, request)
            return
        if request.op in handlers.WRITE_OPS:
            self._submit_write(conn, session, request)
            return
        self._queue(conn, _Slot(request, False))
        self._pump(conn)

    def _submit_auth(self, conn: Connection, session: ZkSession, request: jute.Request) -> None:
        """An auth packet (xid -4): the resolved ids go through the log as
        ``add_auth`` entries of the session (never the password), so they
        stay with the session when it moves; the reply follows the last one."""
        _auth_type, scheme, credential = request.args
        try:
            ids = resolve_auth(scheme, credential, getattr(self.member, "super_digest", None))
        except CoordError as exc:
            logger.info("ZooKeeper endpoint %s: auth refused for %s: %s", self.address, conn.peer, exc)
            slot = _Slot(request, False, jute.reply_header(Xid.AUTH, -1, Err.AUTH_FAILED))
            slot.close_after = True  # as ZooKeeper does after a failed auth
            self._queue(conn, slot)
            return
        slot = _Slot(request, True)
        self._queue(conn, slot)
        future = None
        try:
            for id_scheme, ident in ids:
                future = session.tracker.submit(
                    ops.add_auth_op(id_scheme, ident), _applied, session.timeout_s, wait_for_slot=False
                )
        except CoordError as exc:
            self._close_now(conn, f"auth not sent: {exc}")
            return
        assert future is not None
        future.add_done_callback(lambda f: self._write_done(conn, session, slot, lambda value: b"", f))

    def _keepalive(self, session: ZkSession) -> None:
        session.last_keepalive = time.monotonic()
        with contextlib.suppress(CoordError):
            session.tracker.submit(ops.keepalive_op(), _applied, session.timeout_s / 3.0, wait_for_slot=False)

    def _queue(self, conn: Connection, slot: _Slot) -> None:
        with conn.lock:
            conn.pipeline.append(slot)
        self._mark(conn)

    def _submit_write(self, conn: Connection, session: ZkSession, request: jute.Request) -> None:
        try:
            op, encode = handlers.write_op(request, self._exists)
            ops.check_size(op, self.member.max_data_bytes)
        except handlers.ZkError as exc:
            self._queue(conn, _Slot(request, False, jute.reply_header(request.xid, self._zxid(), exc.err)))
            return
        except handlers.MultiFailed as exc:
            reply = jute.reply_header(request.xid, self._zxid(), 0) + handlers.encode_multi_failure(exc.codes)
            self._queue(conn, _Slot(request, False, reply))
            return
        except CoordError as exc:  # too large: ZooKeeper drops such a client
            self._close_now(conn, f"request refused: {exc}")
            return
        slot = _Slot(request, True)
        self._queue(conn, slot)
        try:
            future = session.tracker.submit(op, _applied, session.timeout_s, wait_for_slot=False)
        except CoordError as exc:
            self._close_now(conn, f"request not sent: {exc}")
            return
        future.add_done_callback(lambda f: self._write_done(conn, session, slot, encode, f))

    def _write_done(self, conn: Connection, session: ZkSession, slot: _Slot, encode: Any, future: Any) -> None:
        """A write settled (usually on the Raft thread under the member lock)."""
        if conn.closed:
            return
        error = future.exception()
        if error is not None:
            self._request_close(conn, f"request outcome not delivered: {error!r}")
            return
        applied: Applied = future.result()
        code, value = applied.result
        request = slot.request
        assert request is not None
        if code > 0 or code == ErrorCode.SESSION_EXPIRED:
            # CANCELLED / STALE_REQUEST / OUT_OF_ORDER never reach a client:
            # the session moved or ended under this connection.
            self._request_close(conn, f"session 0x{session.session_id:x} moved or expired (result code {code})")
            return
        zxid = applied.zxid
        try:
            reply = handlers.write_reply(request, encode, zxid, code, value)
        except Exception:
            logger.exception("cannot encode the reply to %r", request.op)
            self._request_close(conn, "internal error encoding a reply")
            return
        with conn.lock:
            slot.reply = reply
            if request.op == OpCode.CLOSE_SESSION:
                slot.close_after = True
            self._flush_settled(conn)
        self._wake(conn)

    def _flush_settled(self, conn: Connection) -> None:
        """Move settled replies from the pipeline head to the outbox (conn.lock held)."""
        while conn.pipeline and conn.pipeline[0].reply is not None:
            slot = conn.pipeline.popleft()
            self._push(conn, slot.reply)  # type: ignore[arg-type]
            if slot.close_after:
                conn.close_after_flush = True

    def _pump(self, conn: Connection) -> None:
        """Answer the reads at the head of the pipeline (I/O thread)."""
        with conn.lock:
            self._flush_settled(conn)
            if not conn.pipeline or conn.pipeline[0].write:
                return
        try:
            self.member.read_tree(lambda tree: self._run_reads(conn, tree))
        except CoordError as exc:
            self._close_now(conn, f"member not serving: {exc}")

    def _run_reads(self, conn: Connection, tree: Tree) -> None:
        """Flush settled replies and execute the reads now at the head of
        the pipeline, up to the first unsettled write (member lock held).

        Called on the I/O thread, and on the Raft thread right after one of
        the connection's writes applied: a read queued behind a write then
        sees exactly the state after that write and before the session's
        next one, as in ZooKeeper's per-session request order.
        """
        session = conn.session
        if session is None or conn.closed:
            return
        with conn.lock:
            self._flush_settled(conn)
            if not conn.pipeline or conn.pipeline[0].write:
                return
            ctx = handlers.ReadContext(conn.id, session.session_id, conn.peer_host, self.watches, self._notify)
            while conn.pipeline:
                slot = conn.pipeline[0]
                if slot.reply is None:
                    if slot.write:
                        return
                    assert slot.request is not None
                    slot.reply = handlers.read_reply(ctx, tree, slot.request)
                self._flush_settled(conn)

    def _exists(self, path: str) -> bool:
        """Whether a node exists on this replica (a bad create's check order)."""
        try:
            found: bool = self.member.read_tree(lambda tree: tree.stat(path) is not None)
        except CoordError:
            return True
        return found

    def _zxid(self) -> int:
        try:
            zxid: int = self.member.read_tree(lambda tree: tree.zxid)
        except CoordError:
            return 0
        return zxid

    # ------------------------------------------------------------ apply hook (Raft thread, member lock held)

    def on_applied(self, entry: object, applied: Applied, tree: Tree) -> None:
        """Queue this entry's watch notifications, settle its request if one
        of our sessions sent it, and drop connections whose session ended."""
        if applied.events:
            self.watches.trigger(applied.events, self._notify)
        if type(entry) is not tuple or len(entry) != 6:
            return
        session_id, request_id, op = entry[1], entry[2], entry[5]
        conn = self._by_session.get(session_id) if session_id else None
        if conn is not None and conn.session is not None and not conn.closed:
            session = conn.session
            if epoch_of(request_id) > session.epoch:
                self._request_close(conn, f"session 0x{session_id:x} moved to another connection or member")
            else:
                session.last_commit = time.monotonic()
                session.tracker.on_applied(request_id, applied)
                if conn.pipeline:
                    self._run_reads(conn, tree)
                    self._wake(conn)
        if type(op) is tuple and len(op) == 3 and op[0] == ops.EXPIRE_SESSION and applied.result == (0, True):
            expired = self._by_session.get(op[1])
            if expired is not None:
                self._request_close(expired, f"session 0x{op[1]:x} expired")

    def on_restored(self, old: Tree, new: Tree) -> None:
        """A snapshot replaced the replica: fire the watches the skipped
        entries would have fired and settle requests it already answers."""
        self.watches.trigger(self.watches.changes_between(old, new), self._notify)
        for session_id, conn in list(self._by_session.items()):
            session = conn.session
            if session is None:
                continue
            if not new.has_session(session_id):
                self._request_close(conn, f"session 0x{session_id:x} is gone after a snapshot install")
                continue
            for request_id in session.tracker.pending_ids():
                result = new.request_result(session_id, request_id)
                if result is not None:
                    session.tracker.on_applied(request_id, Applied(new.zxid, result, (), True))
            self._run_reads(conn, new)
            self._wake(conn)


def _applied(applied: Applied) -> Applied:
    return applied


__all__ = ["OPTION_NAMES", "Connection", "ZkServer"]
