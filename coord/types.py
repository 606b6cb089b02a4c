"""Value types shared by every layer: Stat, watch events and states.

Names and string values follow kazoo (``kazoo.protocol.states``), so code
that compares ``event.type == "CREATED"`` or ``state == "LOST"`` ports as is.
"""

from __future__ import annotations

from typing import NamedTuple


class ZnodeStat(NamedTuple):
    """ZooKeeper's Stat structure (times in ms since the epoch)."""

    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeralOwner: int  # noqa: N815 - ZooKeeper's field name
    dataLength: int  # noqa: N815
    numChildren: int  # noqa: N815
    pzxid: int

    @property
    def acl_version(self) -> int:
        """kazoo's alias of ``aversion``: changes of the node's ACL."""
        return self.aversion

    @property
    def children_version(self) -> int:
        """kazoo's alias of ``cversion``: changes of the child list."""
        return self.cversion

    @property
    def created(self) -> float:
        """kazoo's alias: ``ctime`` in seconds since the epoch (the proposer's clock)."""
        return self.ctime / 1000.0

    @property
    def last_modified(self) -> float:
        """kazoo's alias: ``mtime`` in seconds since the epoch (the proposer's clock)."""
        return self.mtime / 1000.0

    @property
    def owner_session_id(self) -> int | None:
        """kazoo's alias of ``ephemeralOwner``: the owning session, None for a non-ephemeral node."""
        return self.ephemeralOwner or None

    @property
    def data_length(self) -> int:
        """kazoo's alias of ``dataLength``: the value's size in bytes."""
        return self.dataLength

    @property
    def children_count(self) -> int:
        """kazoo's alias of ``numChildren``."""
        return self.numChildren

    @property
    def creation_transaction_id(self) -> int:
        """kazoo's alias of ``czxid``: the zxid of the create."""
        return self.czxid

    @property
    def last_modified_transaction_id(self) -> int:
        """kazoo's alias of ``mzxid``: the zxid of the last create or set."""
        return self.mzxid


class EventType:
    """What happened to a watched node."""

    CREATED = "CREATED"
    DELETED = "DELETED"
    CHANGED = "CHANGED"
    CHILD = "CHILD"
    NONE = "NONE"
    #: Final event of a persistent watch ended by ``remove_watch``
    #: (ZooKeeper's PersistentWatchRemoved).
    PERSISTENT_WATCH_REMOVED = "PERSISTENT_WATCH_REMOVED"
    #: Final event of a persistent watch cancelled because its callback fell
    #: too far behind (coord's overflow policy; see ``add_watch``).
    WATCH_OVERFLOW = "WATCH_OVERFLOW"


class KeeperState:
    """The connection state carried in a WatchedEvent."""

    CONNECTED = "CONNECTED"
    CONNECTED_RO = "CONNECTED_RO"
    EXPIRED_SESSION = "EXPIRED_SESSION"
    CLOSED = "CLOSED"


class SessionState:
    """A member's session state as told to ``add_listener`` callbacks
    (kazoo's ``KazooState``).

    SUSPENDED: the member cannot reach a quorum; its session may or may not
    still be alive, so locks it holds must be treated as uncertain.
    LOST: the session expired (its ephemerals are gone); a new one follows.
    """

    CONNECTED = "CONNECTED"
    SUSPENDED = "SUSPENDED"
    LOST = "LOST"


class WatchedEvent(NamedTuple):
    """A change delivered to a watch callback."""

    type: str
    state: str
    path: str


__all__ = ["EventType", "KeeperState", "SessionState", "WatchedEvent", "ZnodeStat"]
