"""coord's exceptions, with kazoo's names so kazoo code ports unchanged.

The tree returns integer ``ErrorCode`` values (ZooKeeper's own numbers); only
the client turns them into exceptions, through one table built here.

::

    CoordError                          (kazoo: KazooException)
    ├── ZookeeperError                  errors with a ZooKeeper error code
    │   ├── NoNodeError  NodeExistsError  BadVersionError  NotEmptyError
    │   ├── NoChildrenForEphemeralsError  RolledBackError  RuntimeInconsistency
    │   ├── BadArgumentsError ── InvalidPathError (also ValueError)
    │   │                     └─ DataTooLargeError (also ValueError)
    │   ├── NoAuthError  AuthFailedError  InvalidACLError (also ValueError)
    │   ├── SessionExpiredError  UnimplementedError  SystemZookeeperError
    │   ├── ConnectionLoss ── UnknownOutcomeError
    │   └── OperationTimeoutError (also TimeoutError) ── TooManyRequestsError
    ├── NotReadyError                   not started, stopped, or no quorum/leader
    ├── ConfigurationError (also ValueError)
    ├── LockTimeout  CancelledError     recipes: acquire timed out / was cancelled
    └── PoisonedError                   this replica stopped after an internal bug
"""

from __future__ import annotations

import enum


class ErrorCode(enum.IntEnum):
    """ZooKeeper's error codes, as carried in apply results."""

    OK = 0
    SYSTEM_ERROR = -1
    RUNTIME_INCONSISTENCY = -2
    CONNECTION_LOSS = -4
    UNIMPLEMENTED = -6
    OPERATION_TIMEOUT = -7
    BAD_ARGUMENTS = -8
    NO_NODE = -101
    NO_AUTH = -102
    BAD_VERSION = -103
    NO_CHILDREN_FOR_EPHEMERALS = -108
    NODE_EXISTS = -110
    NOT_EMPTY = -111
    SESSION_EXPIRED = -112
    INVALID_ACL = -114
    AUTH_FAILED = -115
    # coord-only codes (positive, so they never collide with ZooKeeper's):
    CANCELLED = 1
    """The request was cancelled through the log before it was applied."""
    STALE_REQUEST = 2
    """A retransmission of a request whose answer the caller already has."""
    OUT_OF_ORDER = 3
    """A session's request arrived before an earlier one of the same session
    was decided; it was not applied (the proposer re-sends the gap first)."""


class CoordError(Exception):
    """Base of every exception coord raises (kazoo's ``KazooException``)."""


class ConfigurationError(CoordError, ValueError):
    """A Coordinator was given settings it cannot run with."""


class MembershipChangeError(CoordError):
    """A voter add/remove was refused; nothing changed. The message says
    why (another change is still uncommitted, the change would cost the
    cluster its quorum, the address already is / is not a voter, ...)."""


class NotReadyError(CoordError):
    """The member is not started, is stopped, or has no leader/quorum."""


class PoisonedError(CoordError):
    """This replica hit an internal error while applying and stopped serving."""


_CODE_TO_CLASS: dict[int, type[ZookeeperError]] = {}


def _with_code(code: ErrorCode):  # type: ignore[no-untyped-def]
    def register(cls: type[ZookeeperError]) -> type[ZookeeperError]:
        cls.code = code
        _CODE_TO_CLASS[int(code)] = cls
        return cls

    return register


class ZookeeperError(CoordError):
    """An error with a ZooKeeper error code."""

    code: ErrorCode = ErrorCode.SYSTEM_ERROR


@_with_code(ErrorCode.OK)
class RolledBackError(ZookeeperError):
    """In a failed transaction: this op was fine but was rolled back."""


@_with_code(ErrorCode.SYSTEM_ERROR)
class SystemZookeeperError(ZookeeperError):
    """An unexpected internal error."""


@_with_code(ErrorCode.RUNTIME_INCONSISTENCY)
class RuntimeInconsistency(ZookeeperError):
    """In a failed transaction: this op came after the failing one."""


@_with_code(ErrorCode.CONNECTION_LOSS)
class ConnectionLoss(ZookeeperError):
    """The request could not be completed because the member lost the cluster."""


@_with_code(ErrorCode.UNIMPLEMENTED)
class UnimplementedError(ZookeeperError):
    """The operation is not implemented."""


@_with_code(ErrorCode.OPERATION_TIMEOUT)
class OperationTimeoutError(ZookeeperError, TimeoutError):
    """The request did not complete before its deadline and was not applied."""


class TooManyRequestsError(OperationTimeoutError):
    """Every in-flight slot of the member (``max_in_flight``) was busy and
    the caller asked not to wait (``block=False``): the request was not
    sent. Back off and retry; an ``OperationTimeoutError`` handler catches it."""


@_with_code(ErrorCode.BAD_ARGUMENTS)
class BadArgumentsError(ZookeeperError):
    """An argument was invalid."""


@_with_code(ErrorCode.NO_NODE)
class NoNodeError(ZookeeperError):
    """The node does not exist."""


@_with_code(ErrorCode.BAD_VERSION)
class BadVersionError(ZookeeperError):
    """The expected version does not match the node's version."""


@_with_code(ErrorCode.NO_CHILDREN_FOR_EPHEMERALS)
class NoChildrenForEphemeralsError(ZookeeperError):
    """Ephemeral nodes cannot have children."""


@_with_code(ErrorCode.NODE_EXISTS)
class NodeExistsError(ZookeeperError):
    """The node already exists."""


@_with_code(ErrorCode.NOT_EMPTY)
class NotEmptyError(ZookeeperError):
    """The node has children."""


@_with_code(ErrorCode.SESSION_EXPIRED)
class SessionExpiredError(ZookeeperError):
    """The session this request belongs to has expired or was closed."""


@_with_code(ErrorCode.NO_AUTH)
class NoAuthError(ZookeeperError):
    """The session's authenticated ids do not grant the permission the
    operation needs on the node (ZooKeeper's NOAUTH)."""


@_with_code(ErrorCode.INVALID_ACL)
class InvalidACLError(ZookeeperError, ValueError):
    """An ACL is malformed: an empty list, an unknown scheme, bad
    permissions, a malformed digest or ip id, or the ``auth`` scheme for a
    session with no authenticated ids (ZooKeeper's INVALIDACL)."""


@_with_code(ErrorCode.AUTH_FAILED)
class AuthFailedError(ZookeeperError):
    """``add_auth`` was given an unknown scheme or a malformed credential
    (ZooKeeper's AUTHFAILED)."""


@_with_code(ErrorCode.CANCELLED)
class CancelledRequestError(ConnectionLoss):
    """The request was cancelled through the log before it was applied: it
    will never take effect (a definite 'not applied')."""


class UnknownOutcomeError(ConnectionLoss):
    """The request may or may not have been applied, and the member could not
    find out before the deadline (no quorum to commit a cancellation)."""


class LockTimeout(CoordError):
    """A recipe (lock, semaphore) was not acquired within its timeout
    (kazoo's ``LockTimeout``)."""


class CancelledError(CoordError):
    """A pending recipe operation (lock acquire, election) was cancelled
    (kazoo's ``CancelledError``)."""


class InvalidPathError(BadArgumentsError, ValueError):
    """A path breaks ZooKeeper's path rules."""


class DataTooLargeError(BadArgumentsError, ValueError):
    """A value (or a transaction's total) is above the configured size limit."""


def error_for_code(code: int, message: str = "") -> ZookeeperError:
    """The exception instance for a ZooKeeper/coord error code."""
    cls = _CODE_TO_CLASS.get(int(code), SystemZookeeperError)
    return cls(message) if message else cls()


__all__ = [
    "AuthFailedError",
    "BadArgumentsError",
    "BadVersionError",
    "CancelledError",
    "CancelledRequestError",
    "ConfigurationError",
    "ConnectionLoss",
    "CoordError",
    "DataTooLargeError",
    "ErrorCode",
    "InvalidACLError",
    "InvalidPathError",
    "LockTimeout",
    "NoAuthError",
    "NoChildrenForEphemeralsError",
    "NoNodeError",
    "NodeExistsError",
    "NotEmptyError",
    "MembershipChangeError",
    "NotReadyError",
    "OperationTimeoutError",
    "PoisonedError",
    "RolledBackError",
    "RuntimeInconsistency",
    "SessionExpiredError",
    "SystemZookeeperError",
    "TooManyRequestsError",
    "UnimplementedError",
    "UnknownOutcomeError",
    "ZookeeperError",
    "error_for_code",
]
