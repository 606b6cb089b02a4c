"""The op codec: what goes through the Raft log, and its validation.

An *entry* is the unit of the log::

    (ENTRY_FORMAT, session_id, request_id, ack_below, time_ms, op)

and an *op* is a tuple whose first item names it (see the ``*_op``
constructors below). Entries hold plain data only (tuples of str, bytes,
int), so they pickle compactly and compare by value.

Validation has one implementation with two faces:

* the constructors (``create_op``, ``make_entry``, ...) and
  ``ensure_valid_entry`` raise a clear exception *before* anything is
  proposed: ``TypeError`` for a wrong Python type of a path or value (as
  kazoo does), ``InvalidPathError`` / ``DataTooLargeError`` /
  ``BadArgumentsError`` otherwise;
* sizes depend on the member's configured limit, so the constructors check
  them only when given ``max_data_bytes``; the client calls
  ``check_size(op, its_limit)`` and the tree re-checks with its own;
* ``validate_entry`` runs the very same checks on every replica inside
  apply and returns the message instead of raising, for any input at all,
  so a malformed log entry can never corrupt the tree.

Types are checked exactly (``type(x) is int``, not ``isinstance``): ``bool``
is not a version, and no user-defined subclass method ever runs inside apply.
The constructors convert harmless subclasses (an ``IntEnum``, a ``str``
subclass) to the exact base type first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from . import acl as _acl
from .errors import BadArgumentsError, DataTooLargeError
from .paths import validate_path, validate_sequential_prefix

#: Version of the entry layout; bump it when the layout changes.
ENTRY_FORMAT = 1

FLAG_EPHEMERAL = 1
FLAG_SEQUENCE = 2
#: A container node: the leader reaps it once it has had a child and has none.
FLAG_CONTAINER = 4
#: A TTL node: the create op carries a fifth item, the ttl in milliseconds;
#: the leader reaps the node once it is childless and unmodified for ttl.
FLAG_TTL = 8
SUPPORTED_FLAGS = FLAG_EPHEMERAL | FLAG_SEQUENCE | FLAG_CONTAINER | FLAG_TTL
#: Largest TTL, ZooKeeper's (40 bits of milliseconds, about 34 years).
MAX_TTL_MS = (1 << 40) - 1

#: Most sub-ops one multi may carry.
MULTI_MAX_OPS = 1000
#: Largest znode value by default, like ZooKeeper's jute.maxbuffer (1 MiB).
DEFAULT_MAX_DATA_BYTES = 1 << 20
#: The largest value any member may be configured to accept. Apply enforces
#: this cluster-wide constant, never a member's own setting, so members with
#: different ``max_data_bytes`` can never reach different trees.
HARD_MAX_DATA_BYTES = 8 << 20
#: Room a whole op may take beyond ``max_data_bytes`` (paths, a multi's
#: other values): jute.maxbuffer bounds a whole request in ZooKeeper.
MAX_ENTRY_OVERHEAD_BYTES = 64 * 1024

CREATE = "create"
DELETE = "delete"
SET = "set"
CHECK = "check"
MULTI = "multi"
SYNC = "sync"
OPEN_SESSION = "open_session"
KEEPALIVE = "keepalive"
CLOSE_SESSION = "close_session"
EXPIRE_SESSION = "expire_session"
CANCEL = "cancel"
REAP = "reap"
SET_ACL = "set_acl"
ADD_AUTH = "add_auth"

#: Ops allowed inside a multi.
MULTI_SUB_OPS = frozenset({CREATE, DELETE, SET, CHECK})
#: Ops that only a session (session_id != 0) may send.
SESSION_ONLY_OPS = frozenset({OPEN_SESSION, KEEPALIVE, CLOSE_SESSION, CANCEL, ADD_AUTH})
#: Ops that only the system (session_id 0, the leader) may send.
SYSTEM_ONLY_OPS = frozenset({EXPIRE_SESSION, REAP})

INT32_MAX = (1 << 31) - 1
INT64_MAX = (1 << 63) - 1

Op = tuple[Any, ...]
"""An op: ``(name, *arguments)``, plain data only."""
Entry = tuple[Any, ...]
"""A log entry: ``(ENTRY_FORMAT, session_id, request_id, ack_below, time_ms, op)``."""


# --------------------------------------------------------------------------
# field checks (raise; shared by constructors and validate_entry)


def _type_name(value: object) -> str:
    return type(value).__name__


def _short(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:60]) + "..."


def _check_int(value: object, what: str, low: int, high: int) -> int:
    if type(value) is not int:
        raise BadArgumentsError(f"{what} must be an int, got {_type_name(value)}")
    if not low <= value <= high:
        raise BadArgumentsError(f"{what} must be between {low} and {high}, got {value}")
    return value


def _check_version(value: object) -> None:
    # kazoo raises TypeError for a non-int version; ZooKeeper answers any
    # other 32-bit int that is not the node's version with BadVersion.
    if type(value) is not int:
        raise TypeError(f"version must be an int, got {_type_name(value)}")
    if not -INT32_MAX - 1 <= value <= INT32_MAX:
        raise BadArgumentsError(f"version must fit in 32 bits (-1 = any version), got {value}")


def _check_data(value: object) -> None:
    if type(value) is not bytes:
        raise TypeError(f"value must be bytes, got {_type_name(value)}")


def _check_flags(value: object) -> None:
    if type(value) is not int:
        raise BadArgumentsError(f"flags must be an int, got {_type_name(value)}")
    if value < 0 or value & ~SUPPORTED_FLAGS:
        raise BadArgumentsError(
            f"flags must combine FLAG_EPHEMERAL ({FLAG_EPHEMERAL}), FLAG_SEQUENCE ({FLAG_SEQUENCE}), "
            f"FLAG_CONTAINER ({FLAG_CONTAINER}) and FLAG_TTL ({FLAG_TTL}) only, got {value}"
        )
    # ZooKeeper's CreateMode has no other combinations.
    if value & FLAG_CONTAINER and value & ~FLAG_CONTAINER:
        raise BadArgumentsError("a container node cannot also be ephemeral, sequential or have a ttl")
    if value & FLAG_TTL and value & FLAG_EPHEMERAL:
        raise BadArgumentsError("a TTL node cannot be ephemeral")


def _check_ttl(value: object) -> None:
    if type(value) is not int:
        raise BadArgumentsError(f"ttl must be an int (milliseconds), got {_type_name(value)}")
    if not 0 < value <= MAX_TTL_MS:
        raise BadArgumentsError(f"ttl must be between 1 and {MAX_TTL_MS} milliseconds, got {value}")


def _check_path(value: object, *, sequential: bool = False) -> None:
    if type(value) is not str:  # exact: no str-subclass method runs in apply
        raise TypeError(f"path must be a str, got {_type_name(value)}")
    if sequential:
        validate_sequential_prefix(value)
    else:
        validate_path(value)


def _check_arity(op: Op, count: int) -> None:
    if len(op) != count:
        raise BadArgumentsError(f"{op[0]!r} op takes {count - 1} argument(s), got {len(op) - 1}")


# --------------------------------------------------------------------------
# per-op structure checks


def _check_acl_shape(value: object) -> None:
    """The structure of a canonical ACL (what apply can read safely); its
    meaning (schemes, perms, ids) is checked in apply, which answers
    INVALID_ACL as ZooKeeper does, also per op inside a multi."""
    if type(value) is not tuple:
        raise BadArgumentsError(f"an acl must be a tuple of (perms, scheme, id) tuples, got {_type_name(value)}")
    if len(value) > _acl.MAX_ACL_ENTRIES:
        raise BadArgumentsError(f"an acl has at most {_acl.MAX_ACL_ENTRIES} entries, got {len(value)}")
    for entry in value:
        if type(entry) is not tuple or len(entry) != 3:
            raise BadArgumentsError("each acl entry must be a (perms, scheme, id) tuple")
        if type(entry[0]) is not int or type(entry[1]) is not str or type(entry[2]) is not str:
            raise BadArgumentsError("an acl entry must be (int perms, str scheme, str id)")


def create_acl(op: Op) -> tuple[Any, ...] | None:
    """The ACL a (valid) create op carries, or None for the default."""
    base = 5 if op[3] & FLAG_TTL else 4
    return op[base] if len(op) > base else None  # type: ignore[no-any-return]


def _check_create(op: Op) -> None:
    if len(op) > 3:
        _check_flags(op[3])
    base = 5 if len(op) > 3 and op[3] & FLAG_TTL else 4
    if len(op) == base + 1 and type(op[base]) is tuple:  # the optional trailing acl
        _check_acl_shape(op[base])
    else:
        _check_arity(op, base)
    if op[3] & FLAG_TTL:
        _check_ttl(op[4])
    _check_path(op[1], sequential=bool(op[3] & FLAG_SEQUENCE))
    _check_data(op[2])


def _check_delete(op: Op) -> None:
    _check_arity(op, 3)
    _check_path(op[1])
    _check_version(op[2])


def _check_set(op: Op) -> None:
    _check_arity(op, 4)
    _check_path(op[1])
    _check_data(op[2])
    _check_version(op[3])


def _check_check(op: Op) -> None:
    _check_arity(op, 3)
    _check_path(op[1])
    _check_version(op[2])


def _check_multi(op: Op) -> None:
    _check_arity(op, 2)
    subops = op[1]
    if type(subops) is not tuple:
        raise BadArgumentsError(f"multi takes a tuple of ops, got {_type_name(subops)}")
    if len(subops) > MULTI_MAX_OPS:
        raise BadArgumentsError(f"multi has {len(subops)} ops, above the limit of {MULTI_MAX_OPS}")
    for index, sub in enumerate(subops):
        try:
            _check_structure(sub, sub_op=True)
        except BadArgumentsError as exc:
            raise type(exc)(f"multi op #{index}: {exc}") from None
        except TypeError as exc:
            raise TypeError(f"multi op #{index}: {exc}") from None


def _check_set_acl(op: Op) -> None:
    _check_arity(op, 4)
    _check_path(op[1])
    _check_acl_shape(op[2])
    _check_version(op[3])


def _check_add_auth(op: Op) -> None:
    _check_arity(op, 3)
    problem = _acl.auth_id_problem(op[1], op[2])
    if problem is not None:
        raise BadArgumentsError(problem)


def _check_no_args(op: Op) -> None:
    _check_arity(op, 1)


def _check_open_session(op: Op) -> None:
    _check_arity(op, 2)
    _check_int(op[1], "session timeout_ms", 1, INT32_MAX)


def _check_expire_session(op: Op) -> None:
    _check_arity(op, 3)
    _check_int(op[1], "expired session_id", 1, INT64_MAX)
    _check_int(op[2], "seen_activity", 0, INT64_MAX)


def _check_cancel(op: Op) -> None:
    _check_arity(op, 2)
    _check_int(op[1], "cancelled request_id", 1, INT64_MAX)


def _check_reap(op: Op) -> None:
    _check_arity(op, 3)
    _check_path(op[1])
    _check_int(op[2], "reaped node's mzxid", 1, INT64_MAX)


_CHECKERS: dict[str, Callable[[Op], None]] = {
    CREATE: _check_create,
    DELETE: _check_delete,
    SET: _check_set,
    CHECK: _check_check,
    MULTI: _check_multi,
    SYNC: _check_no_args,
    OPEN_SESSION: _check_open_session,
    KEEPALIVE: _check_no_args,
    CLOSE_SESSION: _check_no_args,
    EXPIRE_SESSION: _check_expire_session,
    CANCEL: _check_cancel,
    REAP: _check_reap,
    SET_ACL: _check_set_acl,
    ADD_AUTH: _check_add_auth,
}


def _check_structure(op: object, *, sub_op: bool = False) -> None:
    if type(op) is not tuple or not op:
        raise BadArgumentsError(f"an op must be a non-empty tuple, got {_type_name(op)}")
    name = op[0]
    if type(name) is not str:
        raise BadArgumentsError(f"an op name must be a str, got {_type_name(name)}")
    checker = _CHECKERS.get(name)
    if checker is None:
        raise BadArgumentsError(f"unknown op {_short(name)}")
    if sub_op and name not in MULTI_SUB_OPS:
        raise BadArgumentsError(f"{name!r} is not allowed in a multi (only create/delete/set/check)")
    checker(op)


# --------------------------------------------------------------------------
# sizes


def _leaf_ops(op: Op) -> Op:
    return op[1] if op[0] == MULTI else (op,)


def op_payload_bytes(op: Op) -> int:
    """Bytes of paths (UTF-8) and values an op carries, over its sub-ops."""
    total = 0
    for sub in _leaf_ops(op):
        if sub[0] in MULTI_SUB_OPS or sub[0] == SET_ACL:
            total += len(sub[1].encode("utf-8", "surrogatepass"))
        if sub[0] in (CREATE, SET):
            total += len(sub[2])
        acl = create_acl(sub) if sub[0] == CREATE else sub[2] if sub[0] == SET_ACL else None
        if acl:
            total += sum(8 + len(scheme) + len(ident) for _perms, scheme, ident in acl)
    return total


def check_size(op: Op, max_data_bytes: int) -> None:
    """Raise ``DataTooLargeError`` if a value of ``op`` exceeds
    ``max_data_bytes`` or the whole op exceeds it by more than
    ``MAX_ENTRY_OVERHEAD_BYTES``. ``op`` must be structurally valid."""
    for sub in _leaf_ops(op):
        if sub[0] in (CREATE, SET) and len(sub[2]) > max_data_bytes:
            raise DataTooLargeError(
                f"value for {sub[0]} {_short(sub[1])} is {len(sub[2])} bytes, "
                f"above the limit of {max_data_bytes} bytes (max_data_bytes)"
            )
    total = op_payload_bytes(op)
    if total > max_data_bytes + MAX_ENTRY_OVERHEAD_BYTES:
        raise DataTooLargeError(
            f"{op[0]} op carries {total} bytes of paths and values, above the limit of "
            f"{max_data_bytes + MAX_ENTRY_OVERHEAD_BYTES} bytes "
            f"(max_data_bytes + {MAX_ENTRY_OVERHEAD_BYTES})"
        )


# --------------------------------------------------------------------------
# whole ops and entries


def ensure_valid_op(op: object, max_data_bytes: int | None = DEFAULT_MAX_DATA_BYTES) -> None:
    """Raise a clear exception if ``op`` is not a valid op.

    ``max_data_bytes=None`` skips the size limits (for callers that check
    them later, against the configured limit).
    """
    _check_structure(op)
    if max_data_bytes is not None:
        check_size(op, max_data_bytes)  # type: ignore[arg-type]


def _check_sender(session_id: int, op: Op) -> None:
    name = op[0]
    if session_id == 0 and name in SESSION_ONLY_OPS:
        raise BadArgumentsError(f"{name} needs a session (session_id != 0)")
    if session_id != 0 and name in SYSTEM_ONLY_OPS:
        raise BadArgumentsError(f"{name} is proposed by the system only (session_id 0), got session {session_id}")


def ensure_valid_entry(entry: object, max_data_bytes: int | None = DEFAULT_MAX_DATA_BYTES) -> None:
    """Raise a clear exception if ``entry`` is not a valid log entry."""
    if type(entry) is not tuple or len(entry) != 6:
        raise BadArgumentsError(
            "an entry must be a 6-tuple (format, session_id, request_id, ack_below, "
            f"time_ms, op), got {_type_name(entry)}" + (f" of length {len(entry)}" if type(entry) is tuple else "")
        )
    fmt, session_id, request_id, ack_below, time_ms, op = entry
    if type(fmt) is not int or fmt != ENTRY_FORMAT:
        shown = fmt if type(fmt) is int else _type_name(fmt)
        raise BadArgumentsError(f"unsupported entry format {shown} (this version reads {ENTRY_FORMAT})")
    _check_int(session_id, "session_id", 0, INT64_MAX)
    _check_int(request_id, "request_id", 1 if session_id else 0, INT64_MAX)
    _check_int(ack_below, "ack_below", 0, INT64_MAX)
    _check_int(time_ms, "time_ms", 0, INT64_MAX)
    ensure_valid_op(op, max_data_bytes)
    _check_sender(session_id, op)


def validate_entry(entry: object, max_data_bytes: int = DEFAULT_MAX_DATA_BYTES) -> str | None:
    """``None`` if ``entry`` is valid, else the reason. Never raises."""
    try:
        ensure_valid_entry(entry, max_data_bytes)
    except (TypeError, BadArgumentsError) as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------
# constructors


def _plain_str(value: object) -> object:
    return str(value) if isinstance(value, str) and type(value) is not str else value


def _plain_bytes(value: object) -> object:
    return bytes(value) if isinstance(value, bytes) and type(value) is not bytes else value


def _plain_int(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool) and type(value) is not int:
        return int(value)
    return value


def _require_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, got {_type_name(value)}")
    return value


def _made(op: Op, max_data_bytes: int | None) -> Op:
    ensure_valid_op(op, max_data_bytes)
    return op


def create_op(
    path: str,
    data: bytes = b"",
    ephemeral: bool = False,
    sequence: bool = False,
    *,
    container: bool = False,
    ttl: int | None = None,
    acl: Iterable[Any] | None = None,
    max_data_bytes: int | None = None,
) -> Op:
    """``("create", path, data, flags)``, or ``("create", path, data, flags,
    ttl)`` for a TTL node; ``path`` is a prefix when ``sequence``. A given
    ``acl`` (kazoo ``ACL`` objects or canonical triples, validated here:
    ``InvalidACLError``) rides as a trailing canonical item; None means the
    default ``world:anyone`` ACL and costs nothing."""
    flags = (
        (FLAG_EPHEMERAL if _require_bool(ephemeral, "ephemeral") else 0)
        | (FLAG_SEQUENCE if _require_bool(sequence, "sequence") else 0)
        | (FLAG_CONTAINER if _require_bool(container, "container") else 0)
    )
    extra: tuple[Any, ...] = () if acl is None else (_acl.canonical_acl(acl),)
    if ttl is None:
        return _made((CREATE, _plain_str(path), _plain_bytes(data), flags, *extra), max_data_bytes)
    return _made(
        (CREATE, _plain_str(path), _plain_bytes(data), flags | FLAG_TTL, _plain_int(ttl), *extra), max_data_bytes
    )


def delete_op(path: str, version: int = -1) -> Op:
    """``("delete", path, version)``; version -1 matches any."""
    return _made((DELETE, _plain_str(path), _plain_int(version)), None)


def set_op(
    path: str,
    data: bytes,
    version: int = -1,
    *,
    max_data_bytes: int | None = None,
) -> Op:
    """``("set", path, data, version)``; version -1 matches any."""
    return _made((SET, _plain_str(path), _plain_bytes(data), _plain_int(version)), max_data_bytes)


def check_op(path: str, version: int) -> Op:
    """``("check", path, version)``: fails unless the node has ``version``."""
    return _made((CHECK, _plain_str(path), _plain_int(version)), None)


def multi_op(ops: Iterable[Op], *, max_data_bytes: int | None = None) -> Op:
    """``("multi", (subop, ...))``: all-or-nothing create/delete/set/check.

    An empty multi is valid, as in ZooKeeper (it commits and returns ``()``).
    """
    if not isinstance(ops, (list, tuple)):
        raise TypeError(f"ops must be a list or tuple of ops, got {_type_name(ops)}")
    return _made((MULTI, tuple(ops)), max_data_bytes)


def set_acl_op(path: str, acl: Iterable[Any], version: int = -1) -> Op:
    """``("set_acl", path, acl, version)``: replace the node's ACL if its
    ``aversion`` matches (-1: any). ``acl`` is validated and made canonical
    (``InvalidACLError``)."""
    return _made((SET_ACL, _plain_str(path), _acl.canonical_acl(acl), _plain_int(version)), None)


def add_auth_op(scheme: str, ident: str) -> Op:
    """``("add_auth", scheme, id)``: the entry's session gains the resolved
    id (see ``coord.acl.resolve_auth``; a digest id, never a password)."""
    return _made((ADD_AUTH, _plain_str(scheme), _plain_str(ident)), None)


def sync_op() -> Op:
    """``("sync",)``: a no-op that passes through the log (a read barrier)."""
    return (SYNC,)


def open_session_op(timeout_ms: int) -> Op:
    """``("open_session", timeout_ms)``: opens the entry's session."""
    return _made((OPEN_SESSION, _plain_int(timeout_ms)), None)


def keepalive_op() -> Op:
    """``("keepalive",)``: marks the entry's session as active."""
    return (KEEPALIVE,)


def close_session_op() -> Op:
    """``("close_session",)``: closes the entry's session and its ephemerals."""
    return (CLOSE_SESSION,)


def expire_session_op(session_id: int, seen_activity: int) -> Op:
    """``("expire_session", session_id, seen_activity)``, from the leader:
    expires the session only if its activity counter still equals
    ``seen_activity``."""
    return _made((EXPIRE_SESSION, _plain_int(session_id), _plain_int(seen_activity)), None)


def cancel_op(request_id: int) -> Op:
    """``("cancel", request_id)``: makes sure ``request_id`` of the entry's
    session is never applied if it has not been applied yet."""
    return _made((CANCEL, _plain_int(request_id)), None)


def reap_op(path: str, mzxid: int) -> Op:
    """``("reap", path, mzxid)``, from the leader: deletes the container or
    TTL node at ``path`` if it is still unmodified since ``mzxid`` and still
    reapable (childless; a container must have had a child). Whether a TTL
    node has been unmodified for long enough is the leader's decision."""
    return _made((REAP, _plain_str(path), _plain_int(mzxid)), None)


def make_entry(
    session_id: int,
    request_id: int,
    ack_below: int,
    time_ms: int,
    op: Op,
    *,
    max_data_bytes: int | None = None,
) -> Entry:
    """A validated log entry (see the module docstring); sizes are checked
    only when ``max_data_bytes`` is given."""
    entry = (
        ENTRY_FORMAT,
        _plain_int(session_id),
        _plain_int(request_id),
        _plain_int(ack_below),
        _plain_int(time_ms),
        op,
    )
    ensure_valid_entry(entry, max_data_bytes)
    return entry


__all__ = [
    "ADD_AUTH",
    "CANCEL",
    "CHECK",
    "CLOSE_SESSION",
    "CREATE",
    "DEFAULT_MAX_DATA_BYTES",
    "DELETE",
    "ENTRY_FORMAT",
    "EXPIRE_SESSION",
    "FLAG_CONTAINER",
    "FLAG_EPHEMERAL",
    "FLAG_SEQUENCE",
    "FLAG_TTL",
    "KEEPALIVE",
    "MAX_TTL_MS",
    "MAX_ENTRY_OVERHEAD_BYTES",
    "MULTI",
    "MULTI_MAX_OPS",
    "MULTI_SUB_OPS",
    "OPEN_SESSION",
    "REAP",
    "SET",
    "SET_ACL",
    "SUPPORTED_FLAGS",
    "SYNC",
    "add_auth_op",
    "cancel_op",
    "check_op",
    "check_size",
    "close_session_op",
    "create_acl",
    "create_op",
    "delete_op",
    "ensure_valid_entry",
    "ensure_valid_op",
    "expire_session_op",
    "keepalive_op",
    "make_entry",
    "multi_op",
    "op_payload_bytes",
    "open_session_op",
    "reap_op",
    "set_acl_op",
    "set_op",
    "sync_op",
]
