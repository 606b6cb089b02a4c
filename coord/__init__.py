"""coord: embedded ZooKeeper for Python applications.

Every process of an application cluster embeds a ``Coordinator``: a Raft
member (through pysyncobj) holding a full replica of one znode tree, with
ZooKeeper's semantics and kazoo's API. No servers to run.
"""

from .client import CoordFuture, Coordinator, MemberStatus
from .errors import (
    AuthFailedError,
    BadArgumentsError,
    BadVersionError,
    CancelledError,
    CancelledRequestError,
    ConfigurationError,
    ConnectionLoss,
    CoordError,
    DataTooLargeError,
    InvalidACLError,
    InvalidPathError,
    LockTimeout,
    MembershipChangeError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    NotReadyError,
    OperationTimeoutError,
    PoisonedError,
    RolledBackError,
    RuntimeInconsistency,
    SessionExpiredError,
    SystemZookeeperError,
    UnimplementedError,
    UnknownOutcomeError,
    ZookeeperError,
)
from .replication import RaftTiming
from .transaction import Transaction
from .types import EventType, KeeperState, SessionState, WatchedEvent, ZnodeStat

__version__ = "0.1.0"

__all__ = [
    "AuthFailedError",
    "BadArgumentsError",
    "BadVersionError",
    "CancelledError",
    "CancelledRequestError",
    "ConfigurationError",
    "ConnectionLoss",
    "CoordError",
    "CoordFuture",
    "Coordinator",
    "DataTooLargeError",
    "EventType",
    "InvalidACLError",
    "InvalidPathError",
    "KeeperState",
    "LockTimeout",
    "MemberStatus",
    "MembershipChangeError",
    "NoAuthError",
    "NoChildrenForEphemeralsError",
    "NoNodeError",
    "NodeExistsError",
    "NotEmptyError",
    "NotReadyError",
    "OperationTimeoutError",
    "PoisonedError",
    "RaftTiming",
    "RolledBackError",
    "RuntimeInconsistency",
    "SessionExpiredError",
    "SessionState",
    "SystemZookeeperError",
    "Transaction",
    "UnimplementedError",
    "UnknownOutcomeError",
    "WatchedEvent",
    "ZnodeStat",
    "ZookeeperError",
    "__version__",
]
