"""``PersistentEphemeralNode``: an ephemeral registration that heals itself,
like Apache Curator's ``PersistentNode`` in EPHEMERAL mode.

A plain ephemeral node disappears for good when its member's session
expires (a long GC pause, a SIGSTOP, a network cut longer than the session
timeout) or when someone deletes it. A coord member opens a fresh session
by itself after LOST; this recipe notices and creates the node again, with
the data most recently given to ``set_data``, so a service registration
outlives the session that first made it.

How it heals, all on one background thread of its own (never on the
member's callback thread, so neither watches nor replication wait on it):

* a session listener wakes it on LOST and CONNECTED (after LOST the old
  session's ephemerals are already gone on this replica);
* an exists-watch on the node wakes it when the node is deleted or changed
  from outside;
* a periodic local re-check (cheap: a replica read) catches anything else.

On each wake-up it compares the replica with what should be there: the
node exists, is owned by this member's current session and holds the
registered data. If not, it creates (or sets) it, retrying a bounded
number of times with capped exponential backoff; failures are logged and
the next wake-up tries again. If another session owns the path, it waits
for that node to go instead of stealing it.

Built only on the public client API.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from ..errors import ConnectionLoss, CoordError, NodeExistsError, NoNodeError
from ..types import EventType, SessionState, WatchedEvent

if TYPE_CHECKING:
    from ..client import Coordinator

logger = logging.getLogger(__name__)

#: Attempts per healing round before waiting for the next wake-up.
_MAX_ATTEMPTS = 6
_BACKOFF_START_S = 0.05
_BACKOFF_MAX_S = 2.0
#: The periodic re-check, for anything no event reported.
_RECHECK_INTERVAL_S = 1.0


class PersistentEphemeralNode:
    """An ephemeral node that is re-created after session loss or deletion.

    :param client: the member whose session owns the node.
    :param path: the node's path (its parents are created as needed).
    :param value: the node's data.
    :param sequence: create a sequential node; its name is ``actual_path``
        and changes with every re-creation.

    ``start()`` begins (non-blocking), ``wait_for_initial_create()`` waits
    for the first creation, ``close()`` deletes the node and stops healing.
    Usable as a context manager (start on enter, close on exit).
    """

    def __init__(self, client: Coordinator, path: str, value: bytes = b"", sequence: bool = False) -> None:
        if not isinstance(path, str) or not path.startswith("/") or path == "/":
            raise ValueError(f"path must be an absolute znode path other than '/', got {path!r}")
        if not isinstance(value, bytes):
            raise TypeError(f"value must be bytes, got {type(value).__name__}")
        if not isinstance(sequence, bool):
            raise TypeError(f"sequence must be a bool, got {type(sequence).__name__}")
        self.client = client
        self.path = path
        self.sequence = sequence
        self._value = value
        self._actual_path: str | None = None
        self._lock = threading.Lock()  # guards _value, _actual_path and the flags
        self._wakeup = threading.Event()
        self._created = threading.Event()
        self._started = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._creations = 0
        self._warned_owner: int | None = None

    # ------------------------------------------------------------------ public API

    @property
    def actual_path(self) -> str | None:
        """The node's current path (for sequential nodes, with its suffix);
        None before the first creation."""
        with self._lock:
            return self._actual_path

    @property
    def data(self) -> bytes:
        """The registered data (what the node holds, or will hold once re-created)."""
        with self._lock:
            return self._value

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called: healing has stopped and the node was deleted (or goes with the session)."""
        return self._closed

    @property
    def creations(self) -> int:
        """How many times this recipe has created the node (1 + re-creations)."""
        with self._lock:
            return self._creations

    def start(self) -> None:
        """Begin keeping the node registered; returns at once (see
        ``wait_for_initial_create``).

        :raises RuntimeError: the node was already started or closed.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError(f"PersistentEphemeralNode {self.path} is closed; create a new one")
            if self._started:
                raise RuntimeError(f"PersistentEphemeralNode {self.path} was already started")
            self._started = True
        self.client.add_listener(self._on_session_state)
        self._thread = threading.Thread(
            target=self._run, name=f"coord-persistent-node-{self.path}", daemon=True
        )
        self._thread.start()

    def wait_for_initial_create(self, timeout: float | None = None) -> bool:
        """Block until the node was created the first time; False on timeout."""
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise TypeError(f"timeout must be a number of seconds or None, got {type(timeout).__name__}")
            if timeout < 0:
                raise ValueError(f"timeout must not be negative, got {timeout!r}")
        return self._created.wait(timeout)

    def set_data(self, value: bytes) -> None:
        """Replace the registered data: the live node is updated now (when
        it exists) and every later re-creation uses ``value``.

        :raises TypeError: ``value`` is not bytes (nothing changes).
        """
        if not isinstance(value, bytes):
            raise TypeError(f"value must be bytes, got {type(value).__name__}")
        with self._lock:
            if self._closed:
                raise RuntimeError(f"PersistentEphemeralNode {self.path} is closed")
            self._value = value
            current = self._actual_path
        if current is not None and self._owned(current):
            try:
                self.client.set(current, value)
            except NoNodeError:
                pass  # deleted meanwhile: the healer re-creates it with the new value
            except CoordError:
                logger.warning("updating %s failed; the healer will retry", current, exc_info=True)
        self._wakeup.set()

    def close(self, timeout: float = 10.0) -> None:
        """Stop healing and delete the node, waiting at most about
        ``timeout`` seconds for each step (best effort: a node that cannot be
        deleted now goes with the session anyway). Idempotent."""
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a number of seconds above 0, got {timeout!r}")
        with self._lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        self._wakeup.set()
        if not started:
            return
        with contextlib.suppress(ValueError):
            self.client.remove_listener(self._on_session_state)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._lock:
            current = self._actual_path
        if current is not None and self._owned(current):
            try:
                self.client.delete(current, timeout=timeout)
            except NoNodeError:
                pass
            except CoordError:
                logger.warning("could not delete %s on close; it goes with the session", current, exc_info=True)

    def __enter__(self) -> PersistentEphemeralNode:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ events (callback thread)

    def _on_session_state(self, state: str) -> None:
        if state in (SessionState.LOST, SessionState.CONNECTED):
            self._wakeup.set()

    def _on_node_event(self, event: WatchedEvent) -> None:
        if event.type in (EventType.DELETED, EventType.CHANGED, EventType.CREATED):
            self._wakeup.set()

    # ------------------------------------------------------------------ healer thread

    def _owned(self, path: str) -> bool:
        try:
            stat = self.client.exists(path)
        except CoordError:
            return False
        return stat is not None and stat.ephemeralOwner == self.client.session_id

    def _run(self) -> None:
        while not self._closed:
            self._wakeup.clear()
            self._heal_round()
            self._wakeup.wait(_RECHECK_INTERVAL_S)

    def _heal_round(self) -> None:
        backoff = _BACKOFF_START_S
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            if self._closed:
                return
            if not self.client.connected:
                return  # the CONNECTED listener (or the re-check) wakes us
            try:
                self._reconcile()
                return
            except CoordError as exc:
                level = logging.ERROR if attempt == _MAX_ATTEMPTS else logging.WARNING
                logger.log(
                    level, "keeping %s registered failed (attempt %d/%d): %r", self.path, attempt, _MAX_ATTEMPTS, exc
                )
            # Sleep the backoff, but let close() cut it short.
            if self._wakeup.wait(backoff) and self._closed:
                return
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    def _reconcile(self) -> None:
        """One comparison of the replica with what should be registered,
        and the write that fixes a difference. Raises CoordError on failure."""
        with self._lock:
            current, value = self._actual_path, self._value
        session = self.client.session_id
        if current is not None:
            # The watch wakes us when the node is deleted or changed.
            stat = self.client.exists(current, watch=self._on_node_event)
            if stat is not None and stat.ephemeralOwner == session:
                data, stat = self.client.get(current)
                if data != value:
                    self.client.set(current, value, version=stat.version)
                return
            if stat is not None and not self.sequence:
                self._held_by_other(current, stat.ephemeralOwner)
                return
        self._create(value, session, replacing=current)

    def _create(self, value: bytes, session: int, replacing: str | None) -> None:
        try:
            created = self.client.create(self.path, value, ephemeral=True, sequence=self.sequence, makepath=True)
        except NodeExistsError:
            # Non-sequential only: someone (maybe our own uncertain earlier
            # attempt) holds it. Adopt it if it is ours, else wait for it.
            stat = self.client.exists(self.path, watch=self._on_node_event)
            if stat is None:
                raise  # gone again: the next attempt creates it
            with self._lock:
                self._actual_path = self.path
            if stat.ephemeralOwner != session:
                self._held_by_other(self.path, stat.ephemeralOwner)
                return
            self._recorded(self.path, replacing)
            return
        except ConnectionLoss:
            if self.sequence:
                adopted = self._find_own_sequential(session)
                if adopted is not None:
                    self._recorded(adopted, replacing)
                    self.client.exists(adopted, watch=self._on_node_event)
                    return
            raise
        self._recorded(created, replacing)
        # Arm the watch on the new node (a deletion right after creation
        # fires it or is seen by this read).
        if self.client.exists(created, watch=self._on_node_event) is None:
            self._wakeup.set()

    def _find_own_sequential(self, session: int) -> str | None:
        """After an uncertain sequential create: a child this session
        created under our prefix, if the create did happen."""
        parent, _, prefix = self.path.rpartition("/")
        parent = parent or "/"
        try:
            children = self.client.get_children(parent)
        except NoNodeError:
            return None
        assert isinstance(children, list)
        for name in sorted(children, reverse=True):
            if not name.startswith(prefix) or not name[len(prefix) :].isdigit():
                continue
            child = f"{parent.rstrip('/')}/{name}"
            stat = self.client.exists(child)
            if stat is not None and stat.ephemeralOwner == session:
                return child
        return None

    def _held_by_other(self, path: str, owner: int) -> None:
        if owner != self._warned_owner:  # once per holder, not on every re-check
            self._warned_owner = owner
            logger.warning("%s is held by another session (0x%x); waiting for it to go", path, owner)

    def _recorded(self, path: str, replacing: str | None) -> None:
        with self._lock:
            self._actual_path = path
            self._creations += 1
            count = self._creations
        if count == 1:
            logger.info("registered %s", path)
        else:
            logger.info("re-created %s (was %s) for session 0x%x", path, replacing, self.client.session_id)
        self._created.set()


__all__ = ["PersistentEphemeralNode"]
