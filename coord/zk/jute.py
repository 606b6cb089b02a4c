"""ZooKeeper's wire format (jute), as a pure codec: no sockets, no state.

Everything is big-endian. A frame is a 4-byte length and that many bytes.
Primitives: ``int`` (4 bytes), ``long`` (8), ``bool`` (1), ``buffer`` and
``ustring`` (an int length, -1 for null, then the bytes / UTF-8), and
``vector`` (an int count, -1 for null, then the items). Records are
sequences of those, as in ZooKeeper's ``zookeeper.jute`` (the reference for
every layout here; kazoo's ``protocol/serialization.py`` is the client side).

Decoding never trusts a length: every read is bounds-checked against the
frame and a vector may not claim more items than bytes remain, so a hostile
frame raises ``JuteError`` (and only that) after a bounded amount of work.
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple

from ..types import ZnodeStat

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_STAT = struct.Struct(">qqqqiiiqiiq")
_REPLY_HEADER = struct.Struct(">iqi")
_MULTI_HEADER = struct.Struct(">i?i")


class JuteError(ValueError):
    """A frame that does not decode as the record it should hold."""


class OpCode(enum.IntEnum):
    """``ZooDefs.OpCode``."""

    NOTIFICATION = 0
    CREATE = 1
    DELETE = 2
    EXISTS = 3
    GET_DATA = 4
    SET_DATA = 5
    GET_ACL = 6
    SET_ACL = 7
    GET_CHILDREN = 8
    SYNC = 9
    PING = 11
    GET_CHILDREN2 = 12
    CHECK = 13
    MULTI = 14
    CREATE2 = 15
    RECONFIG = 16
    CHECK_WATCHES = 17
    REMOVE_WATCHES = 18
    CREATE_CONTAINER = 19
    DELETE_CONTAINER = 20
    CREATE_TTL = 21
    MULTI_READ = 22
    AUTH = 100
    SET_WATCHES = 101
    SASL = 102
    GET_EPHEMERALS = 103
    GET_ALL_CHILDREN_NUMBER = 104
    SET_WATCHES2 = 105
    ADD_WATCH = 106
    WHO_AM_I = 107
    CREATE_SESSION = -10
    CLOSE_SESSION = -11
    ERROR = -1


class Err(enum.IntEnum):
    """``KeeperException.Code``: the ``err`` of a reply header."""

    OK = 0
    SYSTEM_ERROR = -1
    RUNTIME_INCONSISTENCY = -2
    DATA_INCONSISTENCY = -3
    CONNECTION_LOSS = -4
    MARSHALLING_ERROR = -5
    UNIMPLEMENTED = -6
    OPERATION_TIMEOUT = -7
    BAD_ARGUMENTS = -8
    UNKNOWN_SESSION = -12
    API_ERROR = -100
    NO_NODE = -101
    NO_AUTH = -102
    BAD_VERSION = -103
    NO_CHILDREN_FOR_EPHEMERALS = -108
    NODE_EXISTS = -110
    NOT_EMPTY = -111
    SESSION_EXPIRED = -112
    INVALID_CALLBACK = -113
    INVALID_ACL = -114
    AUTH_FAILED = -115
    SESSION_MOVED = -118
    NOT_READ_ONLY = -119
    EPHEMERAL_ON_LOCAL_SESSION = -120
    NO_WATCHER = -121
    REQUEST_TIMEOUT = -122
    RECONFIG_DISABLED = -123
    QUOTA_EXCEEDED = -125
    THROTTLED_OP = -127


class Xid(enum.IntEnum):
    """Reserved xids of ``ClientCnxn``."""

    NOTIFICATION = -1
    PING = -2
    AUTH = -4
    SET_WATCHES = -8


class CreateMode(enum.IntEnum):
    """``CreateMode`` flag values of a create request."""

    PERSISTENT = 0
    EPHEMERAL = 1
    PERSISTENT_SEQUENTIAL = 2
    EPHEMERAL_SEQUENTIAL = 3
    CONTAINER = 4
    PERSISTENT_WITH_TTL = 5
    PERSISTENT_SEQUENTIAL_WITH_TTL = 6


class EventType(enum.IntEnum):
    """``Watcher.Event.EventType``."""

    NONE = -1
    NODE_CREATED = 1
    NODE_DELETED = 2
    NODE_DATA_CHANGED = 3
    NODE_CHILDREN_CHANGED = 4
    DATA_WATCH_REMOVED = 5
    CHILD_WATCH_REMOVED = 6
    PERSISTENT_WATCH_REMOVED = 7


#: ``Watcher.Event.KeeperState.SyncConnected``.
STATE_SYNC_CONNECTED = 3

#: ``Perms``.
PERM_READ, PERM_WRITE, PERM_CREATE, PERM_DELETE, PERM_ADMIN = 1, 2, 4, 8, 16
PERM_ALL = 31

#: The four-letter words are read as the int length of a first frame.
FOUR_LETTER_WORDS = frozenset({"ruok", "srvr", "stat", "mntr", "envi", "conf", "isro", "cons", "wchs", "dirs"})


class Acl(NamedTuple):
    perms: int
    scheme: str
    id: str


# ---------------------------------------------------------------- reading


class Reader:
    """Bounds-checked sequential reads over one frame."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def _take(self, size: int) -> bytes:
        end = self.pos + size
        if size < 0 or end > len(self.buf):
            raise JuteError(
                f"truncated record: need {size} bytes at offset {self.pos}, have {len(self.buf) - self.pos}"
            )
        chunk = self.buf[self.pos : end]
        self.pos = end
        return chunk

    def int32(self) -> int:
        value: int = _INT.unpack(self._take(4))[0]
        return value

    def int64(self) -> int:
        value: int = _LONG.unpack(self._take(8))[0]
        return value

    def boolean(self) -> bool:
        byte = self._take(1)[0]
        return byte != 0

    def buffer(self) -> bytes | None:
        size = self.int32()
        if size == -1:
            return None
        if size < -1:
            raise JuteError(f"negative buffer length {size}")
        return self._take(size)

    def string(self) -> str | None:
        raw = self.buffer()
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JuteError(f"string is not UTF-8: {exc}") from None

    def path(self) -> str:
        """A non-null string (paths are never null in requests)."""
        value = self.string()
        if value is None:
            raise JuteError("null path")
        return value

    def vector_count(self, min_item_bytes: int) -> int:
        count = self.int32()
        if count == -1:
            return 0
        if count < -1 or count * min_item_bytes > self.remaining():
            raise JuteError(f"vector claims {count} items but only {self.remaining()} bytes remain")
        return count

    def strings(self) -> list[str]:
        return [self.path() for _ in range(self.vector_count(4))]

    def acls(self) -> list[Acl]:
        result = []
        for _ in range(self.vector_count(12)):
            perms = self.int32()
            scheme = self.string() or ""
            ident = self.string() or ""
            result.append(Acl(perms, scheme, ident))
        return result

    def end(self) -> None:
        """ZooKeeper ignores trailing bytes of a request; so do we."""


# ---------------------------------------------------------------- writing


def int_(value: int) -> bytes:
    return _INT.pack(value)


def long_(value: int) -> bytes:
    return _LONG.pack(value)


def bool_(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def buffer_(value: bytes | None) -> bytes:
    if value is None:
        return _INT.pack(-1)
    return _INT.pack(len(value)) + value


def string_(value: str | None) -> bytes:
    return buffer_(None if value is None else value.encode("utf-8", "surrogatepass"))


def strings_(values: list[str] | tuple[str, ...]) -> bytes:
    return _INT.pack(len(values)) + b"".join(string_(v) for v in values)


def acls_(values: list[Acl] | tuple[Acl, ...]) -> bytes:
    return _INT.pack(len(values)) + b"".join(_INT.pack(a.perms) + string_(a.scheme) + string_(a.id) for a in values)


def stat_(stat: ZnodeStat) -> bytes:
    return _STAT.pack(*stat)


def read_stat(reader: Reader) -> ZnodeStat:
    return ZnodeStat(*_STAT.unpack(reader._take(_STAT.size)))


def frame(payload: bytes) -> bytes:
    """A length-prefixed frame."""
    return _INT.pack(len(payload)) + payload


def reply_header(xid: int, zxid: int, err: int) -> bytes:
    return _REPLY_HEADER.pack(xid, zxid, err)


def read_reply_header(reader: Reader) -> tuple[int, int, int]:
    xid, zxid, err = _REPLY_HEADER.unpack(reader._take(_REPLY_HEADER.size))
    return xid, zxid, err


def multi_header(op_type: int, done: bool, err: int) -> bytes:
    return _MULTI_HEADER.pack(op_type, done, err)


def read_multi_header(reader: Reader) -> tuple[int, bool, int]:
    op_type, done, err = _MULTI_HEADER.unpack(reader._take(_MULTI_HEADER.size))
    return op_type, done, err


def watcher_event(event_type: int, path: str, state: int = STATE_SYNC_CONNECTED) -> bytes:
    """A whole notification frame payload (header xid -1, zxid -1 as ZooKeeper 3.8 sends)."""
    return reply_header(Xid.NOTIFICATION, -1, 0) + int_(event_type) + int_(state) + string_(path)


# ---------------------------------------------------------------- connect


class ConnectRequest(NamedTuple):
    protocol_version: int
    last_zxid_seen: int
    timeout_ms: int
    session_id: int
    password: bytes
    read_only: bool


def read_connect_request(buf: bytes) -> ConnectRequest:
    reader = Reader(buf)
    protocol_version = reader.int32()
    last_zxid = reader.int64()
    timeout = reader.int32()
    session_id = reader.int64()
    password = reader.buffer() or b""
    read_only = reader.boolean() if reader.remaining() else False
    return ConnectRequest(protocol_version, last_zxid, timeout, session_id, password, read_only)


def connect_request(request: ConnectRequest) -> bytes:
    return (
        int_(request.protocol_version)
        + long_(request.last_zxid_seen)
        + int_(request.timeout_ms)
        + long_(request.session_id)
        + buffer_(request.password)
        + bool_(request.read_only)
    )


def connect_response(timeout_ms: int, session_id: int, password: bytes, read_only: bool = False) -> bytes:
    return int_(0) + int_(timeout_ms) + long_(session_id) + buffer_(password) + bool_(read_only)


# ---------------------------------------------------------------- requests


class Request(NamedTuple):
    """A decoded client request: header fields and the op's arguments."""

    xid: int
    op: int
    args: tuple[object, ...]


class SubOp(NamedTuple):
    """One op of a multi / multiRead."""

    op: int
    args: tuple[object, ...]


def _read_create(reader: Reader, with_ttl: bool) -> tuple[object, ...]:
    path = reader.path()
    data = reader.buffer()
    acl = reader.acls()
    flags = reader.int32()
    ttl = reader.int64() if with_ttl else -1
    return (path, data if data is not None else b"", acl, flags, ttl)


def _read_args(reader: Reader, op: int) -> tuple[object, ...]:  # noqa: PLR0911, C901 - one branch per record
    if op in (OpCode.CREATE, OpCode.CREATE2, OpCode.CREATE_CONTAINER):
        return _read_create(reader, with_ttl=False)
    if op == OpCode.CREATE_TTL:
        return _read_create(reader, with_ttl=True)
    if op in (OpCode.DELETE, OpCode.CHECK):
        return (reader.path(), reader.int32())
    if op in (OpCode.EXISTS, OpCode.GET_DATA, OpCode.GET_CHILDREN, OpCode.GET_CHILDREN2):
        return (reader.path(), reader.boolean())
    if op == OpCode.SET_DATA:
        path = reader.path()
        data = reader.buffer()
        return (path, data if data is not None else b"", reader.int32())
    if op in (OpCode.GET_ACL, OpCode.SYNC, OpCode.GET_ALL_CHILDREN_NUMBER, OpCode.DELETE_CONTAINER):
        return (reader.path(),)
    if op == OpCode.GET_EPHEMERALS:
        return (reader.string() or "/",)
    if op == OpCode.SET_ACL:
        return (reader.path(), reader.acls(), reader.int32())
    if op in (OpCode.PING, OpCode.CLOSE_SESSION, OpCode.WHO_AM_I):
        return ()
    if op in (OpCode.CHECK_WATCHES, OpCode.REMOVE_WATCHES):
        return (reader.path(), reader.int32())
    if op == OpCode.ADD_WATCH:
        return (reader.path(), reader.int32())
    if op == OpCode.AUTH:
        return (reader.int32(), reader.string() or "", reader.buffer() or b"")
    if op in (OpCode.SET_WATCHES, OpCode.SET_WATCHES2):
        relative_zxid = reader.int64()
        lists = [reader.strings() for _ in range(3 if op == OpCode.SET_WATCHES else 5)]
        return (relative_zxid, *lists)
    if op in (OpCode.MULTI, OpCode.MULTI_READ):
        return tuple(_read_multi(reader, read_only=op == OpCode.MULTI_READ))
    # Known opcodes this endpoint does not serve (reconfig, SASL, ...): the
    # body is not decoded and the request is answered with an error code.
    return ()


_MULTI_OPS = frozenset(
    {
        OpCode.CREATE,
        OpCode.CREATE2,
        OpCode.CREATE_CONTAINER,
        OpCode.CREATE_TTL,
        OpCode.DELETE,
        OpCode.SET_DATA,
        OpCode.CHECK,
    }
)
_MULTI_READ_OPS = frozenset({OpCode.GET_CHILDREN, OpCode.GET_DATA})


def _read_multi(reader: Reader, read_only: bool) -> list[SubOp]:
    subops: list[SubOp] = []
    allowed = _MULTI_READ_OPS if read_only else _MULTI_OPS
    while True:
        op, done, _err = read_multi_header(reader)
        if done:
            return subops
        if op not in allowed:
            raise JuteError(f"opcode {op} is not allowed in a {'multiRead' if read_only else 'multi'}")
        subops.append(SubOp(op, _read_args(reader, op)))


def read_request(buf: bytes) -> Request:
    """Decode a request frame (header and body); raises ``JuteError``."""
    reader = Reader(buf)
    xid = reader.int32()
    op = reader.int32()
    try:
        code = OpCode(op)
    except ValueError:
        raise JuteError(f"unknown opcode {op}") from None
    args = _read_args(reader, code)
    reader.end()
    return Request(xid, code, args)


def request_header(xid: int, op: int) -> bytes:
    return int_(xid) + int_(op)


__all__ = [
    "FOUR_LETTER_WORDS",
    "PERM_ALL",
    "Acl",
    "ConnectRequest",
    "CreateMode",
    "Err",
    "EventType",
    "JuteError",
    "OpCode",
    "Reader",
    "Request",
    "SubOp",
    "Xid",
    "connect_request",
    "connect_response",
    "frame",
    "read_connect_request",
    "read_request",
    "reply_header",
    "watcher_event",
]
