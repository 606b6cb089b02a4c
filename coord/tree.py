"""The pure, deterministic state machine every replica runs.

``Tree.apply(entry)`` applies one log entry (see ``coord.ops``) and returns
an ``Applied``: the zxid, the result ``(code, value)`` and the watch events.
It never raises for any input: an invalid entry is answered with
``BAD_ARGUMENTS`` and changes nothing. It reads no clock, no randomness and
no hash order, so replicas that apply the same entries in the same order
hold byte-identical ``snapshot()``s.

ZooKeeper 3.8 semantics, kept exactly because a differential suite compares
against a real ZooKeeper:

* Check order in create: ephemeral without a live session
  (SESSION_EXPIRED), parent missing (NO_NODE), node exists (NODE_EXISTS),
  parent ephemeral (NO_CHILDREN_FOR_EPHEMERALS) - PrepRequestProcessor's
  order. Delete: root (BAD_ARGUMENTS), missing (NO_NODE), version
  (BAD_VERSION), then children (NOT_EMPTY).
* Like ZooKeeper's ``DataNode``, a node stores the number of child
  *creates* (``ccount``), not ``cversion``. A sequential name takes the
  parent's ``ccount`` before the increment, and the ``cversion`` clients see
  is ``2 * ccount - numChildren`` (creates + deletes). So a delete bumps the
  visible cversion, yet sequence numbers never skip because of deletes.
  Both are Java ints: they wrap at 2**31, and the sequence suffix is then
  negative (``"%010d"``), exactly like ZooKeeper.
* A data version after 2**31 - 1 wraps to -2**31 and skips -1
  (ZOOKEEPER-4743), so a conditional set can always name it.
* Failed writes consume a zxid (ZooKeeper logs them as error txns); a multi
  consumes one zxid; keepalive and sync consume none.
* Container and TTL nodes show ``ephemeralOwner`` 0 to clients, as
  ZooKeeper's ``DataNode.getClientEphemeralOwner`` does; snapshots store
  ZooKeeper's internal encoding (``Long.MIN_VALUE``; ``0xFF00000000000000 |
  ttl`` as a signed long) in the owner field. The tree only keeps them;
  deciding *when* a TTL node has gone unmodified long enough is the
  leader's, on its own clock (see ``Member``). Its ``reap`` entry names the
  node's mzxid, and apply deletes only if the node is still that version
  and childless (and, for a container, has had a child), so a node
  modified, re-created or given a child meanwhile stays.
* A session that has ended (closed or expired) never opens again, as in
  ZooKeeper: a late copy of its ``open_session`` entry (a retransmission
  that reaches the log after the expiry) gets SESSION_EXPIRED instead of
  reviving the session, and with it the late copies of its writes. The
  tree remembers an ended session id for ``ENDED_SESSION_MEMORY_MS`` of
  entry time (an hour; the ``MAX_ENDED_SESSIONS`` most recent at most), far
  longer than a proposer keeps re-sending (until its request deadline).
"""

from __future__ import annotations

import logging
import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple, cast

from sortedcontainers import SortedDict, SortedList, SortedSet

from .acl import OPEN_ACL, Permissions, acl_problem, allowed, auth_id_problem, fixup_acl, with_id
from .errors import ErrorCode
from .ops import (
    ADD_AUTH,
    CANCEL,
    CHECK,
    CLOSE_SESSION,
    CREATE,
    DEFAULT_MAX_DATA_BYTES,
    DELETE,
    EXPIRE_SESSION,
    FLAG_CONTAINER,
    FLAG_EPHEMERAL,
    FLAG_SEQUENCE,
    FLAG_TTL,
    KEEPALIVE,
    MULTI,
    OPEN_SESSION,
    REAP,
    SET,
    SET_ACL,
    SYNC,
    Op,
    validate_entry,
)
from .paths import validate_path
from .types import ZnodeStat

logger = logging.getLogger(__name__)

OK = int(ErrorCode.OK)
BAD_ARGUMENTS = int(ErrorCode.BAD_ARGUMENTS)
NO_NODE = int(ErrorCode.NO_NODE)
NODE_EXISTS = int(ErrorCode.NODE_EXISTS)
BAD_VERSION = int(ErrorCode.BAD_VERSION)
NOT_EMPTY = int(ErrorCode.NOT_EMPTY)
NO_CHILDREN_FOR_EPHEMERALS = int(ErrorCode.NO_CHILDREN_FOR_EPHEMERALS)
SESSION_EXPIRED = int(ErrorCode.SESSION_EXPIRED)
RUNTIME_INCONSISTENCY = int(ErrorCode.RUNTIME_INCONSISTENCY)
CANCELLED = int(ErrorCode.CANCELLED)
STALE_REQUEST = int(ErrorCode.STALE_REQUEST)
OUT_OF_ORDER = int(ErrorCode.OUT_OF_ORDER)
NO_AUTH = int(ErrorCode.NO_AUTH)
INVALID_ACL = int(ErrorCode.INVALID_ACL)

_READ_PERM = Permissions.READ
_WRITE_PERM = Permissions.WRITE
_CREATE_PERM = Permissions.CREATE
_DELETE_PERM = Permissions.DELETE
_ADMIN_PERM = Permissions.ADMIN

EVENT_CREATED = "created"
EVENT_DELETED = "deleted"
EVENT_CHANGED = "changed"
EVENT_CHILD = "child"

# add_auth changes only the session (ZooKeeper's auth packets are no txns).
_NO_ZXID_OPS = frozenset({KEEPALIVE, SYNC, ADD_AUTH})
#: How long (in entry time) and how many ended session ids are remembered.
ENDED_SESSION_MEMORY_MS = 3_600_000
MAX_ENDED_SESSIONS = 16_384
#: Distinct non-default ACLs the tree shares by reference before it starts
#: sharing afresh (sharing only saves memory; it never changes behaviour).
_ACL_INTERN_LIMIT = 65536

Result = tuple[int, Any]  # (code, value)
Event = tuple[str, str]  # (kind, path)


class Applied(NamedTuple):
    """What applying one entry did."""

    zxid: int
    """``Tree.zxid`` after the entry (unchanged if the entry did not bump it)."""
    result: Result
    """``(code, value)``; ``code`` is an ``int(ErrorCode)``."""
    events: tuple[Event, ...]
    """``((kind, path), ...)`` in the order the changes happened."""
    duplicate: bool
    """True when the result came from the dedup table (nothing applied now)."""


class SessionInfo(NamedTuple):
    """A session as the tree knows it (a read-only copy)."""

    timeout_ms: int
    activity: int
    ephemerals: tuple[str, ...]


def _i32(value: int) -> int:
    """``value`` wrapped like a Java int."""
    return ((value + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def _next_version(version: int) -> int:
    following = _i32(version + 1)
    return 0 if following == -1 else following


def _parent_path(path: str) -> str:
    return path[: path.rfind("/")] or "/"


def _name(path: str) -> str:
    return path[path.rfind("/") + 1 :]


#: ``_Node.ttl`` of a container node (a TTL node holds its ttl, > 0).
CONTAINER = -1
_CONTAINER_OWNER = -(1 << 63)  # ZooKeeper's Long.MIN_VALUE
_TTL_OWNER_MASK = 0xFF00000000000000
_TTL_OWNER_VALUE = (1 << 40) - 1


def extended_owner(ttl: int) -> int:
    """ZooKeeper's internal ``ephemeralOwner`` of a container (``ttl``
    CONTAINER) or TTL node: a negative long that is never a session id."""
    if ttl == CONTAINER:
        return _CONTAINER_OWNER
    return (_TTL_OWNER_MASK | ttl) - (1 << 64)


def _ttl_of_owner(owner: int) -> int:
    """Inverse of ``extended_owner`` for a snapshot's negative owner field."""
    if owner == _CONTAINER_OWNER:
        return CONTAINER
    ttl = (owner + (1 << 64)) & _TTL_OWNER_VALUE
    if ttl == 0 or extended_owner(ttl) != owner:
        raise ValueError(f"bad container/TTL owner field {owner}")
    return ttl


class _Node:
    """One znode. Derived fields (dataLength, numChildren, cversion) are
    computed on read; ``children`` is None while there are none, so the
    (usually many) leaves carry no container."""

    __slots__ = (
        "acl",
        "aversion",
        "ccount",
        "children",
        "ctime",
        "czxid",
        "data",
        "mtime",
        "mzxid",
        "owner",
        "pzxid",
        "ttl",
        "version",
    )

    def __init__(
        self, data: bytes, zxid: int, time_ms: int, owner: int, ttl: int = 0, acl: tuple[Any, ...] = OPEN_ACL
    ) -> None:
        self.data = data
        # The canonical ACL, shared with every node that has an equal one
        # (Tree._intern_acl): the default costs one pointer per node.
        self.acl = acl
        self.aversion = 0
        self.czxid = self.mzxid = self.pzxid = zxid
        self.ctime = self.mtime = time_ms
        self.version = 0
        self.ccount = 0
        self.owner = owner  # the session of an ephemeral, else 0
        self.ttl = ttl  # 0, CONTAINER, or a TTL node's ttl in ms
        self.children: SortedList | None = None

    def reapable(self) -> bool:
        """Whether this container or TTL node may be reaped now, time
        aside (ZooKeeper's ContainerManager: a container that had a child
        and has none; a TTL node without children)."""
        if self.children or not self.ttl:
            return False
        return self.ttl != CONTAINER or self.ccount != 0

    def stat(self) -> ZnodeStat:
        count = len(self.children) if self.children else 0
        return ZnodeStat(
            self.czxid,
            self.mzxid,
            self.ctime,
            self.mtime,
            self.version,
            _i32(2 * self.ccount - count),
            self.aversion,
            self.owner,
            len(self.data),
            count,
            self.pzxid,
        )


class _Session:
    """An open session: liveness counter, ephemerals and dedup table.

    A session's requests apply in request-id order (ZooKeeper's FIFO client
    order): every id below ``next_request()`` is decided, i.e. below
    ``ack_below`` or answered in ``results``.
    """

    __slots__ = ("_next_request", "ack_below", "activity", "auth", "ephemerals", "results", "timeout_ms")

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self.auth: tuple[tuple[str, str], ...] = ()  # authenticated ids, sorted
        self.activity = 0
        self.ack_below = 0
        self.ephemerals: SortedSet = SortedSet()
        self.results: SortedDict = SortedDict()
        # Derived from ack_below and results (so never in a snapshot); a cache.
        # Request ids start at 1.
        self._next_request = 1

    def raise_ack(self, ack_below: int) -> None:
        """Forget the results the proposer says it already has."""
        if ack_below > self.ack_below:
            self.ack_below = ack_below
            for request_id in list(self.results.irange(maximum=ack_below, inclusive=(True, False))):
                del self.results[request_id]

    def next_request(self) -> int:
        """The lowest request id of this session not yet decided."""
        candidate = max(self._next_request, self.ack_below)
        while candidate in self.results:
            candidate += 1
        self._next_request = candidate
        return candidate


class _Txn:
    """Per-entry context: who, which zxid and time, and what happened."""

    __slots__ = ("events", "now", "session_id", "undo", "zxid")

    def __init__(self, session_id: int, zxid: int, now: int) -> None:
        self.session_id = session_id
        self.zxid = zxid
        self.now = now
        self.events: list[Event] = []
        self.undo: list[Callable[[], None]] = []


class Tree:
    """The znode tree, sessions table and zxid counter of one replica."""

    __slots__ = (
        "_acls",
        "_data_bytes",
        "_ended_sessions",
        "_last_time_ms",
        "_max_data_bytes",
        "_nodes",
        "_reapable",
        "_sessions",
        "_zxid",
    )

    def __init__(self, max_data_bytes: int = DEFAULT_MAX_DATA_BYTES) -> None:
        self._nodes: dict[str, _Node] = {"/": _Node(b"", 0, 0, 0)}
        # Interning table of non-default ACLs (derived; never in a snapshot).
        self._acls: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        # Derived (never in a snapshot): sum of len(path) + len(data) over all nodes.
        self._data_bytes = 1
        self._reapable: SortedSet = SortedSet()  # paths of container and TTL nodes
        self._sessions: dict[int, _Session] = {}
        # Ended session id -> entry time it ended, oldest first (see the module doc).
        self._ended_sessions: OrderedDict[int, int] = OrderedDict()
        self._zxid = 0
        self._last_time_ms = 0
        self._max_data_bytes = max_data_bytes

    # ------------------------------------------------------------------ reads

    @property
    def zxid(self) -> int:
        """The id of the last transaction applied (0 for a new tree)."""
        return self._zxid

    @property
    def last_time_ms(self) -> int:
        """The latest entry time seen; ctime/mtime never go below it."""
        return self._last_time_ms

    @property
    def max_data_bytes(self) -> int:
        """The value size limit apply enforces (must match cluster-wide)."""
        return self._max_data_bytes

    def get(self, path: str) -> tuple[bytes, ZnodeStat] | None:
        """``(data, stat)`` of the node at the valid ``path``, or None."""
        node = self._nodes.get(path)
        return None if node is None else (node.data, node.stat())

    def stat(self, path: str) -> ZnodeStat | None:
        """The stat of the node at the valid ``path``, or None."""
        node = self._nodes.get(path)
        return None if node is None else node.stat()

    def children(self, path: str) -> list[str] | None:
        """Sorted child names of the node at the valid ``path``, or None."""
        node = self._nodes.get(path)
        if node is None:
            return None
        return list(node.children) if node.children else []

    def get_acl(self, path: str) -> tuple[tuple[tuple[int, str, str], ...], ZnodeStat] | None:
        """``(canonical ACL, stat)`` of the node at the valid ``path``, or None."""
        node = self._nodes.get(path)
        return None if node is None else (node.acl, node.stat())

    def session_auth(self, session_id: int) -> tuple[tuple[str, str], ...]:
        """The sorted ``(scheme, id)`` pairs session ``session_id`` has
        authenticated (``()`` for the system session 0 or an unknown one)."""
        session = self._sessions.get(session_id)
        return session.auth if session is not None else ()

    def permitted(self, path: str, perm: int, session_id: int) -> bool | None:
        """Whether session ``session_id`` holds any bit of ``perm`` on the
        node at ``path`` (None if there is no such node). The system
        session 0 holds every permission, as in apply."""
        node = self._nodes.get(path)
        if node is None:
            return None
        acl = node.acl
        if acl is OPEN_ACL or not session_id:
            return True
        return allowed(acl, self.session_auth(session_id), perm)

    def session_ids(self) -> list[int]:
        """Ids of the open sessions, ascending."""
        return sorted(self._sessions)

    def session_info(self, session_id: int) -> SessionInfo | None:
        """The open session ``session_id``, or None."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        return SessionInfo(session.timeout_ms, session.activity, tuple(session.ephemerals))

    def session_liveness(self) -> list[tuple[int, int, int]]:
        """(session_id, timeout_ms, activity) of every open session, sorted:
        what the leader's expiry check needs, without copying ephemerals."""
        return [(sid, self._sessions[sid].timeout_ms, self._sessions[sid].activity) for sid in sorted(self._sessions)]

    def has_session(self, session_id: int) -> bool:
        return session_id in self._sessions

    def request_result(self, session_id: int, request_id: int) -> Result | None:
        """The stored result of a session's request, if still remembered."""
        session = self._sessions.get(session_id)
        result: Result | None = None if session is None else session.results.get(request_id)
        return result

    def session_request_horizon(self, session_id: int) -> int | None:
        """One above the highest request id the open session ``session_id``
        has had decided (applied, cancelled or acknowledged), or None: a
        member resuming the session elsewhere starts above it."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        highest = session.results.peekitem(-1)[0] + 1 if session.results else 0
        return max(session.next_request(), highest)

    def node_count(self) -> int:
        """Number of znodes, the root included."""
        return len(self._nodes)

    def approximate_data_size(self) -> int:
        """ZooKeeper's approximate_data_size: the sum over all nodes of the
        path's length (characters) and the value's length (bytes); O(1)."""
        return self._data_bytes

    def ephemeral_count(self) -> int:
        """Number of ephemeral nodes (O(open sessions))."""
        return sum(len(session.ephemerals) for session in self._sessions.values())

    def descendant_count(self, path: str) -> int | None:
        """Number of nodes below ``path`` (ZooKeeper's getAllChildrenNumber),
        or None if it does not exist."""
        node = self._nodes.get(path)
        if node is None:
            return None
        count, stack = 0, [(path, node)]
        while stack:
            parent_path, parent = stack.pop()
            prefix = "/" if parent_path == "/" else parent_path + "/"
            for name in parent.children or ():
                count += 1
                child_path = prefix + name
                stack.append((child_path, self._nodes[child_path]))
        return count

    def walk(self, path: str) -> list[str]:
        """``path`` and every node below it, parents before children, in
        path order among siblings ([] if ``path`` does not exist)."""
        if path not in self._nodes:
            return []
        order: list[str] = []
        stack = [path]
        while stack:
            current = stack.pop()
            order.append(current)
            children = self._nodes[current].children
            if children:
                prefix = "/" if current == "/" else current + "/"
                stack.extend(prefix + name for name in reversed(children))
        return order

    def reap_candidates(self) -> list[tuple[str, int, int, bool]]:
        """``(path, mzxid, ttl_ms, reapable)`` of every container and TTL
        node, in path order; ``ttl_ms`` is 0 for a container (reap at once).
        A leader reaps a TTL node once it is reapable and has kept the same
        mzxid for longer than ``ttl_ms`` (children do not stop that clock,
        as in ZooKeeper, they only keep the node)."""
        nodes = self._nodes
        return [
            (path, node.mzxid, max(node.ttl, 0), node.reapable())
            for path in self._reapable
            if (node := nodes[path]).ttl > 0 or node.reapable()
        ]

    # ------------------------------------------------------------------ apply

    def apply(self, entry: object) -> Applied:
        """Apply one log entry. Total: never raises for any input."""
        problem = validate_entry(entry, self._max_data_bytes)
        if problem is not None:  # proposers validate, so this is a bug or a bad peer
            logger.warning("refused an invalid log entry: %s", problem)
            return Applied(self._zxid, (BAD_ARGUMENTS, None), (), False)
        _, session_id, request_id, ack_below, time_ms, op = cast("tuple[int, int, int, int, int, Op]", entry)
        session = self._sessions.get(session_id) if session_id else None
        if session_id and session is None and (op[0] != OPEN_SESSION or session_id in self._ended_sessions):
            return Applied(self._zxid, (SESSION_EXPIRED, None), (), False)
        if session is not None:
            earlier = self._earlier_result(session, request_id, ack_below)
            if earlier is not None:
                return Applied(self._zxid, earlier, (), True)
            # A cancel settles an earlier request, so it may not wait behind it.
            if op[0] != CANCEL and request_id != session.next_request():
                return Applied(self._zxid, (OUT_OF_ORDER, None), (), True)
        self._last_time_ms = max(self._last_time_ms, time_ms)
        if op[0] not in _NO_ZXID_OPS:
            self._zxid += 1
        txn = _Txn(session_id, self._zxid, self._last_time_ms)
        result = _HANDLERS[op[0]](self, txn, op)
        if session is None and op[0] == OPEN_SESSION and session_id in self._sessions:
            # A session's request ids start at the request that opened it.
            self._sessions[session_id].raise_ack(request_id)
        self._remember(session_id, request_id, ack_below, result)
        return Applied(self._zxid, result, tuple(txn.events), False)

    @staticmethod
    def _earlier_result(session: _Session, request_id: int, ack_below: int) -> Result | None:
        """The answer to a retransmission, or None for a new request."""
        session.raise_ack(ack_below)
        if request_id < session.ack_below:
            return (STALE_REQUEST, None)
        earlier: Result | None = session.results.get(request_id)
        return earlier

    def _remember(self, session_id: int, request_id: int, ack_below: int, result: Result) -> None:
        """Count the entry as the session's activity and store its result."""
        session = self._sessions.get(session_id) if session_id else None
        if session is None:  # the system, or the session just ended
            return
        session.activity += 1
        session.raise_ack(ack_below)
        if request_id >= session.ack_below:
            session.results[request_id] = result

    # ---------------------------------------------------------- data ops

    def _create(self, txn: _Txn, op: Op) -> Result:
        """Create a node; checks in PrepRequestProcessor's order (the ACL
        is fixed up before the parent is looked up, CREATE on the parent is
        checked before the name)."""
        path, data, flags = op[1], op[2], op[3]
        ttl = CONTAINER if flags & FLAG_CONTAINER else (op[4] if flags & FLAG_TTL else 0)
        owner = 0
        if flags & FLAG_EPHEMERAL:
            if txn.session_id not in self._sessions:  # also the system, 0
                return (SESSION_EXPIRED, None)
            owner = txn.session_id
        acl = OPEN_ACL
        if len(op) > 4 and (len(op) > 5 or not flags & FLAG_TTL):  # an ACL rides along (see create_acl)
            fixed = self._fixed_acl(txn, op[-1])
            if fixed is None:
                return (INVALID_ACL, None)
            acl = fixed
        parent_path = _parent_path(path)
        parent = self._nodes.get(parent_path)
        if parent is None:
            return (NO_NODE, None)
        if parent.acl is not OPEN_ACL and self._denied(txn, parent, _CREATE_PERM):  # hot path: one identity test
            return (NO_AUTH, None)
        if flags & FLAG_SEQUENCE:
            path = f"{path}{parent.ccount:010d}"  # Java's "%010d": "-000000001" below zero
        if path in self._nodes:
            return (NODE_EXISTS, None)
        if parent.owner:
            return (NO_CHILDREN_FOR_EPHEMERALS, None)
        node = _Node(data, txn.zxid, txn.now, owner, ttl, acl)
        self._link(txn, path, parent_path, parent, node)
        return (OK, (path, node.stat()))

    def _delete(self, txn: _Txn, op: Op) -> Result:
        """Delete a childless node; the version is checked before children."""
        _, path, version = op
        if path == "/":
            return (BAD_ARGUMENTS, None)  # ZooKeeper refuses to delete the root
        parent = self._nodes.get(_parent_path(path))
        if parent is None:
            return (NO_NODE, None)
        if self._denied(txn, parent, _DELETE_PERM):  # before the node itself, as ZooKeeper
            return (NO_AUTH, None)
        node = self._nodes.get(path)
        if node is None:
            return (NO_NODE, None)
        if version != -1 and version != node.version:
            return (BAD_VERSION, None)
        if node.children:
            return (NOT_EMPTY, None)
        self._unlink(txn, path, node)
        return (OK, None)

    def _set(self, txn: _Txn, op: Op) -> Result:
        """Replace a node's data; returns the new stat."""
        _, path, data, version = op
        node = self._nodes.get(path)
        if node is None:
            return (NO_NODE, None)
        if self._denied(txn, node, _WRITE_PERM):
            return (NO_AUTH, None)
        if version != -1 and version != node.version:
            return (BAD_VERSION, None)
        before = (node.data, node.version, node.mzxid, node.mtime)
        growth = len(data) - len(node.data)

        def undo() -> None:
            node.data, node.version, node.mzxid, node.mtime = before
            self._data_bytes -= growth

        self._data_bytes += growth
        node.data = data
        node.version = _next_version(node.version)
        node.mzxid = txn.zxid
        node.mtime = txn.now
        txn.undo.append(undo)
        txn.events.append((EVENT_CHANGED, path))
        return (OK, node.stat())

    def _check(self, txn: _Txn, op: Op) -> Result:
        """Succeed iff the node exists with the expected version (and the
        session may READ it, as ZooKeeper checks)."""
        _, path, version = op
        node = self._nodes.get(path)
        if node is None:
            return (NO_NODE, None)
        if self._denied(txn, node, _READ_PERM):
            return (NO_AUTH, None)
        if version != -1 and version != node.version:
            return (BAD_VERSION, None)
        return (OK, None)

    def _set_acl(self, txn: _Txn, op: Op) -> Result:
        """Replace a node's ACL (ZooKeeper's setACL: the ACL is fixed up
        first, then NO_NODE, ADMIN, and the ``aversion`` check). Only the
        aversion changes in the stat, and no watch fires."""
        _, path, given, version = op
        acl = self._fixed_acl(txn, given)
        if acl is None:
            return (INVALID_ACL, None)
        node = self._nodes.get(path)
        if node is None:
            return (NO_NODE, None)
        if self._denied(txn, node, _ADMIN_PERM):
            return (NO_AUTH, None)
        if version != -1 and version != node.aversion:
            return (BAD_VERSION, None)
        before = (node.acl, node.aversion)

        def undo() -> None:
            node.acl, node.aversion = before

        node.acl = acl
        node.aversion = _next_version(node.aversion)
        txn.undo.append(undo)
        return (OK, node.stat())

    # ------------------------------------------------------------ ACL helpers

    def _denied(self, txn: _Txn, node: _Node, perm: int) -> bool:
        """Whether the entry's session lacks ``perm`` on ``node`` (the
        system session 0 never does). The default ACL costs one identity test."""
        acl = node.acl
        if acl is OPEN_ACL or not txn.session_id:
            return False
        return not allowed(acl, self.session_auth(txn.session_id), perm)

    def _fixed_acl(self, txn: _Txn, given: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """The ACL a create/setACL stores (validated, ``auth`` expanded to
        the session's ids, shared), or None if it is invalid."""
        if acl_problem(given) is not None:
            return None
        fixed = fixup_acl(given, self.session_auth(txn.session_id))
        return None if fixed is None else self._intern_acl(fixed)

    def _intern_acl(self, acl: tuple[Any, ...]) -> tuple[Any, ...]:
        """One shared tuple per distinct ACL value."""
        if acl == OPEN_ACL:
            return OPEN_ACL
        shared = self._acls.get(acl)
        if shared is None:
            if len(self._acls) >= _ACL_INTERN_LIMIT:
                self._acls.clear()  # bounded memory; equal values stay equal
            shared = self._acls[acl] = acl
        return shared

    def _multi(self, txn: _Txn, op: Op) -> Result:
        """All or nothing: on the first failure, undo the earlier sub-ops
        and report ZooKeeper's per-op results (OK = rolled back for those
        before, the error, RUNTIME_INCONSISTENCY for those after)."""
        subops = op[1]
        results = []
        for index, sub in enumerate(subops):
            result = _HANDLERS[sub[0]](self, txn, sub)
            if result[0] != OK:
                while txn.undo:
                    txn.undo.pop()()
                txn.events.clear()
                after = len(subops) - index - 1
                failed = ((OK, None),) * index + ((result[0], None),) + ((RUNTIME_INCONSISTENCY, None),) * after
                return (result[0], failed)
            results.append(result)
        return (OK, tuple(results))

    # ------------------------------------------------------ tree surgery

    def _link(self, txn: _Txn, path: str, parent_path: str, parent: _Node, node: _Node) -> None:
        """Insert a new node under ``parent`` (both stat updates included)."""
        name = _name(path)
        before = (parent.ccount, parent.pzxid)

        def undo() -> None:
            del self._nodes[path]
            self._data_bytes -= len(path) + len(node.data)
            self._drop_child(parent, name)
            parent.ccount, parent.pzxid = before
            if node.owner:
                self._sessions[node.owner].ephemerals.discard(path)
            if node.ttl:
                self._reapable.discard(path)

        self._nodes[path] = node
        self._data_bytes += len(path) + len(node.data)
        if parent.children is None:
            parent.children = SortedList()
        parent.children.add(name)
        parent.ccount = _i32(parent.ccount + 1)
        parent.pzxid = txn.zxid
        if node.owner:
            self._sessions[node.owner].ephemerals.add(path)
        if node.ttl:
            self._reapable.add(path)
        txn.undo.append(undo)
        txn.events.append((EVENT_CREATED, path))
        txn.events.append((EVENT_CHILD, parent_path))

    def _unlink(self, txn: _Txn, path: str, node: _Node) -> None:
        """Remove a childless node (parent's pzxid and numChildren change)."""
        parent_path = _parent_path(path)
        parent = self._nodes[parent_path]
        name = _name(path)
        before = parent.pzxid

        def undo() -> None:
            self._nodes[path] = node
            self._data_bytes += len(path) + len(node.data)
            if parent.children is None:
                parent.children = SortedList()
            parent.children.add(name)
            parent.pzxid = before
            if node.owner:
                self._sessions[node.owner].ephemerals.add(path)
            if node.ttl:
                self._reapable.add(path)

        del self._nodes[path]
        self._data_bytes -= len(path) + len(node.data)
        self._drop_child(parent, name)
        parent.pzxid = txn.zxid
        if node.owner:
            self._sessions[node.owner].ephemerals.discard(path)
        if node.ttl:
            self._reapable.discard(path)
        txn.undo.append(undo)
        txn.events.append((EVENT_DELETED, path))
        txn.events.append((EVENT_CHILD, parent_path))

    @staticmethod
    def _drop_child(parent: _Node, name: str) -> None:
        children = parent.children
        children.remove(name)  # type: ignore[union-attr]
        if not children:
            parent.children = None  # leaves carry no container

    # ------------------------------------------------------- session ops

    def _sync(self, txn: _Txn, op: Op) -> Result:
        return (OK, None)

    def _open_session(self, txn: _Txn, op: Op) -> Result:
        if txn.session_id not in self._sessions:
            self._sessions[txn.session_id] = _Session(op[1])
        return (OK, None)

    def _close_session(self, txn: _Txn, op: Op) -> Result:
        self._end_session(txn, txn.session_id)
        return (OK, None)

    def _expire_session(self, txn: _Txn, op: Op) -> Result:
        _, session_id, seen_activity = op
        session = self._sessions.get(session_id)
        if session is None or session.activity != seen_activity:
            return (OK, False)
        self._end_session(txn, session_id)
        return (OK, True)

    def _reap(self, txn: _Txn, op: Op) -> Result:
        """Delete a container or TTL node if it is still the version the
        leader timed (``mzxid``) and still reapable; ``(OK, False)`` and no
        change otherwise."""
        _, path, mzxid = op
        node = self._nodes.get(path)
        if node is None or node.mzxid != mzxid or not node.reapable():
            return (OK, False)
        self._unlink(txn, path, node)
        txn.undo.clear()  # never inside a multi
        return (OK, True)

    def _add_auth(self, txn: _Txn, op: Op) -> Result:
        """The entry's session gains a resolved id (idempotent). Consumes
        no zxid: ZooKeeper's auth packets are not transactions."""
        session = self._sessions[txn.session_id]
        session.auth = with_id(session.auth, op[1], op[2])
        return (OK, None)

    def _cancel(self, txn: _Txn, op: Op) -> Result:
        session = self._sessions[txn.session_id]
        request_id = op[1]
        if request_id >= session.ack_below and request_id not in session.results:
            session.results[request_id] = (CANCELLED, None)
        return (OK, None)

    def _end_session(self, txn: _Txn, session_id: int) -> None:
        """Delete the session's ephemerals in path order, then forget it."""
        session = self._sessions[session_id]
        for path in list(session.ephemerals):
            self._unlink(txn, path, self._nodes[path])
        del self._sessions[session_id]
        txn.undo.clear()  # never inside a multi; drop the references now
        ended = self._ended_sessions
        ended[session_id] = txn.now
        while len(ended) > MAX_ENDED_SESSIONS or next(iter(ended.values())) < txn.now - ENDED_SESSION_MEMORY_MS:
            ended.popitem(last=False)

    # ------------------------------------------------------- snapshots

    def snapshot(self) -> bytes:
        """Canonical bytes of the whole state: equal trees, equal bytes."""
        return _encode_tree(self)

    @classmethod
    def restore(cls, data: bytes, max_data_bytes: int = DEFAULT_MAX_DATA_BYTES) -> Tree:
        """The tree ``data`` (from ``snapshot()``) describes.

        Raises ``ValueError`` if ``data`` is not a well-formed snapshot.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"a snapshot must be bytes, got {type(data).__name__}")  # noqa: TRY004 - contract
        tree = cls(max_data_bytes)
        try:
            _decode_tree(tree, bytes(data))
        except (ValueError, struct.error, RecursionError) as exc:
            raise ValueError(f"corrupt coord snapshot: {exc}") from None
        return tree

    # ------------------------------------------------------- invariants

    def check_invariants(self) -> None:
        """Raise ``AssertionError`` if the state is inconsistent (tests)."""
        _require("/" in self._nodes, "the root is missing")
        _require(self._nodes["/"].owner == 0, "the root is ephemeral")
        linked = 0
        for path in sorted(self._nodes):
            node = self._nodes[path]
            self._check_node(path, node)
            linked += len(node.children) if node.children else 0
        _require(linked == len(self._nodes) - 1, f"{len(self._nodes) - 1} nodes but {linked} child links")
        size = sum(len(path) + len(node.data) for path, node in self._nodes.items())
        _require(self._data_bytes == size, f"approximate data size {self._data_bytes}, actually {size}")
        for session_id in sorted(self._sessions):
            self._check_session(session_id, self._sessions[session_id])
        ended = self._ended_sessions
        _require(len(ended) <= MAX_ENDED_SESSIONS, f"{len(ended)} ended sessions remembered")
        _require(not any(session_id in self._sessions for session_id in ended), "an ended session is open")
        _require(all(session_id > 0 for session_id in ended), "ended session id 0")
        times = list(ended.values())
        _require(times == sorted(times), "ended sessions out of order")
        _require(not times or times[-1] <= self._last_time_ms, "a session ended after the last entry time")

    def _check_node(self, path: str, node: _Node) -> None:
        _require(type(node.data) is bytes, f"{path}: data is not bytes")
        _require(node.czxid <= node.mzxid <= self._zxid, f"{path}: bad czxid/mzxid")
        _require(node.czxid <= node.pzxid <= self._zxid, f"{path}: bad pzxid")
        _require(node.ctime <= node.mtime <= self._last_time_ms, f"{path}: bad ctime/mtime")
        _require(_i32(node.version) == node.version, f"{path}: version out of int32")
        if node.children is not None:
            _require(len(node.children) > 0, f"{path}: empty children container")
            _require(node.owner == 0, f"{path}: ephemeral with children")
            _require(node.ccount < 0 or node.ccount >= len(node.children), f"{path}: ccount < children")
            for name in node.children:
                child = path + name if path == "/" else f"{path}/{name}"
                _require(child in self._nodes, f"{path}: child {name!r} missing")
        if path != "/":
            siblings = getattr(self._nodes.get(_parent_path(path)), "children", None) or ()
            _require(_name(path) in siblings, f"{path}: not linked in its parent")
        if node.owner:
            session = self._sessions.get(node.owner)
            owned = session.ephemerals if session is not None else ()
            _require(path in owned, f"{path}: owner session {node.owner} is not open or does not list it")
        _require((path in self._reapable) == bool(node.ttl), f"{path}: reapable set out of step")
        _require(acl_problem(node.acl) is None, f"{path}: invalid ACL {node.acl!r}")
        _require(not any(entry[1] == "auth" for entry in node.acl), f"{path}: unexpanded auth ACL entry")
        _require(_i32(node.aversion) == node.aversion, f"{path}: aversion out of int32")
        _require(not (node.ttl and node.owner), f"{path}: ephemeral container/TTL node")

    def _check_session(self, session_id: int, session: _Session) -> None:
        _require(session_id > 0, "session id 0 in the sessions table")
        _require(list(session.auth) == sorted(set(session.auth)), f"session {session_id}: auth ids not sorted/unique")
        for scheme, ident in session.auth:
            _require(auth_id_problem(scheme, ident) is None, f"session {session_id}: bad auth id {scheme}:{ident}")
        for path in session.ephemerals:
            node = self._nodes.get(path)
            _require(node is not None and node.owner == session_id, f"session {session_id}: stray ephemeral {path}")
        _require(
            all(request_id >= session.ack_below for request_id in session.results),
            f"session {session_id}: results kept below ack_below",
        )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


_HANDLERS: dict[str, Callable[[Tree, _Txn, Op], Result]] = {
    CREATE: Tree._create,
    DELETE: Tree._delete,
    SET: Tree._set,
    CHECK: Tree._check,
    MULTI: Tree._multi,
    SYNC: Tree._sync,
    KEEPALIVE: Tree._sync,
    OPEN_SESSION: Tree._open_session,
    CLOSE_SESSION: Tree._close_session,
    EXPIRE_SESSION: Tree._expire_session,
    CANCEL: Tree._cancel,
    REAP: Tree._reap,
    SET_ACL: Tree._set_acl,
    ADD_AUTH: Tree._add_auth,
}


# ---------------------------------------------------------------------------
# Snapshot codec. Layout (all little-endian, no padding):
#   header   magic "COORDTRE", u16 version, q zxid, q last_time_ms,
#            u32 session count, u32 node count
#   session  q id, q timeout_ms, q activity, q ack_below, u32 result count,
#            then per result: q request_id, value (tagged, see _encode_value)
#   node     u32 path length, q czxid, q mzxid, q ctime, q mtime, i version,
#            i ccount, q pzxid, q owner, u32 data length, path (UTF-8), data
#            (owner: the session of an ephemeral, or the negative
#            ZooKeeper encoding of a container/TTL node, see extended_owner)
# Sessions ascend by id and nodes by path (so a parent precedes its
# children); ephemeral sets and child lists are rebuilt, not stored.
#
# Format 2 (ACLs) adds, and format 1 snapshots still restore (every node
# then has the open ACL and aversion 0, no session has auth ids):
#   session  ... results, then u32 auth id count, per id: str scheme, str id
#   ACLs     after the sessions: u32 ACL count, per ACL: u32 entry count,
#            per entry: u32 perms, str scheme, str id (str: u32 length +
#            UTF-8); ACL 0 is always the open ACL, the others in order of
#            first use by the nodes in path order (so equal trees, equal bytes)
#   node     ... u32 data length, i aversion, u32 ACL index, path, data
#
# Format 3 adds, and formats 1 and 2 still restore (no ended sessions):
#   ended    after the sessions, before the ACLs: u32 count, then per ended
#            session, oldest first: q session id, q entry time it ended

SNAPSHOT_MAGIC = b"COORDTRE"
SNAPSHOT_VERSION = 3
_READABLE_VERSIONS = (1, 2, 3)
_HEADER = struct.Struct("<8sHqqII")
_SESSION = struct.Struct("<qqqqI")
_ENDED = struct.Struct("<qq")
_NODE_V1 = struct.Struct("<IqqqqiiqqI")
_NODE = struct.Struct("<IqqqqiiqqIiI")
_Q = struct.Struct("<q")
_U32 = struct.Struct("<I")
_STAT = struct.Struct("<11q")
_MAX_VALUE_DEPTH = 8


def _encode_tree(tree: Tree) -> bytes:
    sessions, nodes = tree._sessions, tree._nodes
    out = [_HEADER.pack(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, tree._zxid, tree._last_time_ms, len(sessions), len(nodes))]
    for session_id in sorted(sessions):
        session = sessions[session_id]
        out.append(
            _SESSION.pack(session_id, session.timeout_ms, session.activity, session.ack_below, len(session.results))
        )
        for request_id, result in session.results.items():
            out.append(_Q.pack(request_id))
            _encode_value(result, out)
        out.append(_U32.pack(len(session.auth)))
        for scheme, ident in session.auth:
            _encode_str(scheme, out)
            _encode_str(ident, out)
    out.append(_U32.pack(len(tree._ended_sessions)))
    out.extend(_ENDED.pack(session_id, ended_ms) for session_id, ended_ms in tree._ended_sessions.items())
    acl_table: list[tuple[Any, ...]] = [OPEN_ACL]
    acl_index: dict[tuple[Any, ...], int] = {OPEN_ACL: 0}
    node_out: list[bytes] = []
    pack, append = _NODE.pack, node_out.append
    for path in sorted(nodes):
        node = nodes[path]
        raw = path.encode("utf-8")
        acl = node.acl
        if acl is OPEN_ACL:
            index = 0
        else:  # by value: equal trees give equal bytes whatever is shared
            index = acl_index.setdefault(acl, len(acl_table))
            if index == len(acl_table):
                acl_table.append(acl)
        append(
            pack(
                len(raw),
                node.czxid,
                node.mzxid,
                node.ctime,
                node.mtime,
                node.version,
                node.ccount,
                node.pzxid,
                extended_owner(node.ttl) if node.ttl else node.owner,
                len(node.data),
                node.aversion,
                index,
            )
        )
        append(raw)
        append(node.data)
    out.append(_U32.pack(len(acl_table)))
    for acl in acl_table:
        out.append(_U32.pack(len(acl)))
        for perms, scheme, ident in acl:
            out.append(_U32.pack(perms))
            _encode_str(scheme, out)
            _encode_str(ident, out)
    out.extend(node_out)
    return b"".join(out)


def _encode_str(text: str, out: list[bytes]) -> None:
    raw = text.encode("utf-8")
    out.append(_U32.pack(len(raw)))
    out.append(raw)


def _encode_value(value: object, out: list[bytes]) -> None:
    """Tagged encoding of the plain data in results."""
    if value is None:
        out.append(b"N")
    elif value is True:
        out.append(b"T")
    elif value is False:
        out.append(b"F")
    elif type(value) is int:
        out.append(b"i" + _Q.pack(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out.append(b"s" + _U32.pack(len(raw)) + raw)
    elif isinstance(value, bytes):
        out.append(b"b" + _U32.pack(len(value)) + value)
    elif type(value) is ZnodeStat:
        out.append(b"z" + _STAT.pack(*value))
    elif type(value) is tuple:
        out.append(b"t" + _U32.pack(len(value)))
        for item in value:
            _encode_value(item, out)
    else:
        raise TypeError(f"cannot snapshot a {type(value).__name__} result value")


class _Reader:
    """Bounds-checked sequential reads over snapshot bytes."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def unpack(self, layout: struct.Struct) -> tuple[Any, ...]:
        values = layout.unpack_from(self.buf, self.pos)
        self.pos += layout.size
        return values

    def text(self) -> str:
        """A u32-length-prefixed UTF-8 string."""
        return self.take(self.unpack(_U32)[0]).decode("utf-8")

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.buf):
            raise ValueError("truncated")
        chunk = self.buf[self.pos : end]
        self.pos = end
        return chunk

    def value(self, depth: int = 0) -> object:
        if depth > _MAX_VALUE_DEPTH:
            raise ValueError("result value nested too deeply")
        tag = self.take(1)
        simple = {b"N": None, b"T": True, b"F": False}
        if tag in simple:
            return simple[tag]
        if tag == b"i":
            return self.unpack(_Q)[0]
        if tag in (b"s", b"b"):
            raw = self.take(self.unpack(_U32)[0])
            return raw.decode("utf-8") if tag == b"s" else raw
        if tag == b"z":
            return ZnodeStat(*self.unpack(_STAT))
        if tag == b"t":
            return tuple(self.value(depth + 1) for _ in range(self.unpack(_U32)[0]))
        raise ValueError(f"unknown value tag {tag!r}")


def _decode_tree(tree: Tree, buf: bytes) -> None:
    reader = _Reader(buf)
    magic, version, tree._zxid, tree._last_time_ms, session_count, node_count = reader.unpack(_HEADER)
    if magic != SNAPSHOT_MAGIC:
        raise ValueError("not a coord tree snapshot (bad magic)")
    if version not in _READABLE_VERSIONS:
        raise ValueError(f"snapshot format {version} is not supported (this version reads {_READABLE_VERSIONS})")
    _decode_sessions(tree, reader, session_count, with_auth=version >= 2)
    if version >= 3:
        _decode_ended_sessions(tree, reader)
    acls = _decode_acls(tree, reader) if version >= 2 else None
    _decode_nodes(tree, reader, node_count, acls)
    if reader.pos != len(buf):
        raise ValueError(f"{len(buf) - reader.pos} trailing bytes")


def _decode_sessions(tree: Tree, reader: _Reader, count: int, *, with_auth: bool = True) -> None:
    previous = 0
    for _ in range(count):
        session_id, timeout_ms, activity, ack_below, result_count = reader.unpack(_SESSION)
        if session_id <= previous:
            raise ValueError("sessions out of order")
        previous = session_id
        session = tree._sessions[session_id] = _Session(timeout_ms)
        session.activity, session.ack_below = activity, ack_below
        for _ in range(result_count):
            request_id = reader.unpack(_Q)[0]
            if request_id < ack_below or request_id in session.results:
                raise ValueError(f"session {session_id}: bad stored request id {request_id}")
            session.results[request_id] = reader.value()
        if with_auth:
            auth = tuple((reader.text(), reader.text()) for _ in range(reader.unpack(_U32)[0]))
            for scheme, ident in auth:
                problem = auth_id_problem(scheme, ident)
                if problem is not None:
                    raise ValueError(f"session {session_id}: {problem}")
            if list(auth) != sorted(set(auth)):
                raise ValueError(f"session {session_id}: auth ids not sorted")
            session.auth = auth


def _decode_ended_sessions(tree: Tree, reader: _Reader) -> None:
    count = reader.unpack(_U32)[0]
    if count > MAX_ENDED_SESSIONS:
        raise ValueError(f"{count} ended sessions (at most {MAX_ENDED_SESSIONS} are kept)")
    ended, previous_ms = tree._ended_sessions, 0
    for _ in range(count):
        session_id, ended_ms = reader.unpack(_ENDED)
        if session_id <= 0 or session_id in ended or session_id in tree._sessions:
            raise ValueError(f"bad ended session id {session_id}")
        if ended_ms < previous_ms or ended_ms > tree._last_time_ms:
            raise ValueError(f"ended session {session_id}: end time {ended_ms} out of order")
        ended[session_id] = previous_ms = ended_ms


def _decode_acls(tree: Tree, reader: _Reader) -> list[tuple[Any, ...]]:
    """The snapshot's ACL table, each entry validated and shared."""
    acls: list[tuple[Any, ...]] = []
    for _ in range(reader.unpack(_U32)[0]):
        acl = tuple((reader.unpack(_U32)[0], reader.text(), reader.text()) for _ in range(reader.unpack(_U32)[0]))
        problem = acl_problem(acl)
        if problem is not None or any(entry[1] == "auth" for entry in acl):
            raise ValueError(f"bad ACL in the ACL table: {problem or 'unexpanded auth entry'}")
        acls.append(tree._intern_acl(acl))
    if not acls or acls[0] is not OPEN_ACL:
        raise ValueError("the ACL table does not start with the open ACL")
    return acls


def _decode_nodes(tree: Tree, reader: _Reader, count: int, acls: list[tuple[Any, ...]] | None = None) -> None:
    nodes: dict[str, _Node] = {}
    children: dict[str, list[str]] = {}
    ephemerals: dict[int, list[str]] = {}
    reapable: list[str] = []
    previous = ""
    data_bytes = 0
    layout = _NODE_V1 if acls is None else _NODE
    buf, pos, unpack_from, fixed = reader.buf, reader.pos, layout.unpack_from, layout.size
    acl_count = len(acls) if acls is not None else 0
    acl, aversion = OPEN_ACL, 0
    for _ in range(count):  # hot loop: locals only
        if acls is None:  # format 1
            (path_len, czxid, mzxid, ctime, mtime, version, ccount, pzxid, owner, data_len) = unpack_from(buf, pos)
        else:
            (path_len, czxid, mzxid, ctime, mtime, version, ccount, pzxid, owner, data_len, aversion, acl_index) = (
                unpack_from(buf, pos)
            )
            if acl_index >= acl_count:
                raise ValueError(f"ACL index {acl_index} is not in the ACL table")
            acl = acls[acl_index]
        start = pos + fixed
        middle = start + path_len
        pos = middle + data_len
        if pos > len(buf):
            raise ValueError("truncated")
        path = buf[start:middle].decode("utf-8")
        data_bytes += len(path) + data_len
        ttl = 0
        if owner < 0:
            ttl, owner = _ttl_of_owner(owner), 0
            reapable.append(path)
        node = _Node(buf[middle:pos], czxid, ctime, owner, ttl, acl)
        node.mzxid, node.mtime, node.version, node.ccount, node.pzxid = mzxid, mtime, version, ccount, pzxid
        node.aversion = aversion
        _link_restored(path, previous, node, nodes, children)
        if owner:
            if owner not in tree._sessions:
                raise ValueError(f"{path!r} is owned by session {owner}, which is not open")
            ephemerals.setdefault(owner, []).append(path)
        nodes[path] = node
        previous = path
    reader.pos = pos
    if "/" not in nodes:
        raise ValueError("the root node is missing")
    for path, names in children.items():
        nodes[path].children = SortedList(names)
    for session_id, paths in ephemerals.items():
        tree._sessions[session_id].ephemerals = SortedSet(paths)
    tree._nodes = nodes
    tree._data_bytes = data_bytes
    tree._reapable = SortedSet(reapable)


def _link_restored(
    path: str, previous: str, node: _Node, nodes: dict[str, _Node], children: dict[str, list[str]]
) -> None:
    """Check one restored node's place in the tree and record the link."""
    if path <= previous:
        raise ValueError(f"nodes out of order at {path!r}")
    if path == "/":
        if node.owner:
            raise ValueError("the root node is ephemeral")
        return
    validate_path(path)
    parent_path = _parent_path(path)
    parent = nodes.get(parent_path)
    if parent is None:
        raise ValueError(f"{path!r} has no parent")
    if parent.owner:
        raise ValueError(f"{path!r} is the child of an ephemeral node")
    children.setdefault(parent_path, []).append(_name(path))


__all__ = [
    "ENDED_SESSION_MEMORY_MS",
    "EVENT_CHANGED",
    "EVENT_CHILD",
    "EVENT_CREATED",
    "EVENT_DELETED",
    "MAX_ENDED_SESSIONS",
    "SNAPSHOT_MAGIC",
    "SNAPSHOT_VERSION",
    "CONTAINER",
    "Applied",
    "SessionInfo",
    "Tree",
    "extended_owner",
]
