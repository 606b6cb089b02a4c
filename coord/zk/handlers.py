"""What each ZooKeeper request means in coord terms.

Two kinds of request, as in ZooKeeper's pipeline:

* writes (create*, delete, setData, setACL, check, multi, sync,
  closeSession; auth packets, whose ids are ``add_auth`` entries) become coord ops that go through the session's request
  pipeline and the Raft log; ``write_op`` builds the op and the function
  that encodes its applied result into the reply body;
* reads (exists, getData, getChildren*, getACL, getEphemerals,
  getAllChildrenNumber, whoAmI, multiRead, the watch-management requests,
  ping, setWatches) are answered from the member's replica by
  ``read_reply`` while the member lock is held, so a watch registered by a
  read is atomic with it.

Bad arguments never reach the log: they are answered with ZooKeeper's error
code (``ZkError``), exactly where ZooKeeper's PrepRequestProcessor would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import acl as coord_acl
from .. import ops
from ..errors import BadArgumentsError, InvalidACLError
from ..paths import validate_path
from . import jute
from .jute import Acl, CreateMode, Err, OpCode
from .watches import ADD_WATCH_PERSISTENT, ADD_WATCH_PERSISTENT_RECURSIVE, ZkWatches

if TYPE_CHECKING:
    from ..tree import Tree

Encode = Callable[[Any], bytes]

#: Requests that go through the log.
WRITE_OPS = frozenset(
    {
        OpCode.CREATE,
        OpCode.CREATE2,
        OpCode.CREATE_CONTAINER,
        OpCode.CREATE_TTL,
        OpCode.DELETE,
        OpCode.SET_DATA,
        OpCode.SET_ACL,
        OpCode.CHECK,
        OpCode.AUTH,
        OpCode.MULTI,
        OpCode.SYNC,
        OpCode.CLOSE_SESSION,
    }
)


class ZkError(Exception):
    """A request answered with an error code and no body."""

    def __init__(self, err: int, message: str = "") -> None:
        super().__init__(message or f"error {err}")
        self.err = int(err)


def _check_path(path: str) -> None:
    try:
        validate_path(path)
    except (BadArgumentsError, ValueError, TypeError) as exc:
        raise ZkError(Err.BAD_ARGUMENTS, str(exc)) from None


def _canonical_acl(acl: list[Acl]) -> tuple[Any, ...]:
    """The request's ACL in coord's canonical form (``coord.acl``)."""
    try:
        return coord_acl.canonical_acl([(entry.perms, entry.scheme, entry.id) for entry in acl])
    except InvalidACLError as exc:
        raise ZkError(Err.INVALID_ACL, str(exc)) from None


# ---------------------------------------------------------------- writes


ParentExists = Callable[[str], bool]
"""``exists(path)`` on the member's replica (for ZooKeeper's check order)."""


def _bad_create_path(path: str, exc: Exception, parent_exists: ParentExists | None) -> ZkError:
    """ZooKeeper looks the parent up before it validates the whole path:
    an invalid path whose parent (everything before the last ``/``) does
    not exist is answered NO_NODE, not BAD_ARGUMENTS."""
    slash = path.rfind("/")
    if slash > 0 and "\0" not in path and parent_exists is not None and not parent_exists(path[:slash]):
        return ZkError(Err.NO_NODE, str(exc))
    return ZkError(Err.BAD_ARGUMENTS, str(exc))


def _create_op(
    op: int, args: tuple[Any, ...], parent_exists: ParentExists | None = None
) -> tuple[tuple[Any, ...], Encode]:
    path, data, acl, flags, ttl = args
    try:
        mode = CreateMode(flags)
    except ValueError:
        raise ZkError(Err.BAD_ARGUMENTS, f"invalid create flags {flags}") from None
    is_ttl = mode in (CreateMode.PERSISTENT_WITH_TTL, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL)
    if op == OpCode.CREATE_CONTAINER and mode != CreateMode.CONTAINER:
        raise ZkError(Err.BAD_ARGUMENTS, "createContainer needs the CONTAINER create mode")
    if is_ttl != (op == OpCode.CREATE_TTL):
        raise ZkError(Err.BAD_ARGUMENTS, "TTL nodes are created with createTTL only")
    if is_ttl and not 0 < ttl <= ops.MAX_TTL_MS:
        raise ZkError(Err.BAD_ARGUMENTS, f"ttl {ttl} out of range")
    canonical = _canonical_acl(acl)
    sequence = mode in (
        CreateMode.PERSISTENT_SEQUENTIAL,
        CreateMode.EPHEMERAL_SEQUENTIAL,
        CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL,
    )
    ephemeral = mode in (CreateMode.EPHEMERAL, CreateMode.EPHEMERAL_SEQUENTIAL)
    try:
        coord_op = ops.create_op(
            path,
            data,
            ephemeral=ephemeral,
            sequence=sequence,
            container=mode == CreateMode.CONTAINER,
            ttl=ttl if is_ttl else None,
            acl=canonical,
        )
    except InvalidACLError as exc:
        raise ZkError(Err.INVALID_ACL, str(exc)) from None
    except (BadArgumentsError, ValueError, TypeError) as exc:
        raise _bad_create_path(path, exc, parent_exists) from None
    if op == OpCode.CREATE:
        return coord_op, lambda value: jute.string_(value[0])
    return coord_op, lambda value: jute.string_(value[0]) + jute.stat_(value[1])


def _simple_op(
    op: int, args: tuple[Any, ...], parent_exists: ParentExists | None = None
) -> tuple[tuple[Any, ...], Encode]:
    try:
        if op in (OpCode.CREATE, OpCode.CREATE2, OpCode.CREATE_CONTAINER, OpCode.CREATE_TTL):
            return _create_op(op, args, parent_exists)
        if op == OpCode.DELETE:
            return ops.delete_op(args[0], args[1]), lambda value: b""
        if op == OpCode.SET_DATA:
            return ops.set_op(args[0], args[1], args[2]), jute.stat_
        if op == OpCode.CHECK:
            return ops.check_op(args[0], args[1]), lambda value: b""
    except (BadArgumentsError, ValueError, TypeError) as exc:
        raise ZkError(Err.BAD_ARGUMENTS, str(exc)) from None
    raise ZkError(Err.UNIMPLEMENTED, f"opcode {op} is not supported here")


def _multi_op(subops: tuple[jute.SubOp, ...], parent_exists: ParentExists | None) -> tuple[tuple[Any, ...], Encode]:
    coord_ops = []
    encoders: list[tuple[int, Encode]] = []
    for index, sub in enumerate(subops):
        try:
            coord_op, encode = _simple_op(sub.op, sub.args, parent_exists)
        except ZkError as exc:
            # ZooKeeper's PrepRequestProcessor: the bad op gets its error,
            # those before are rolled back (0), those after never ran.
            failed = [0] * index + [exc.err] + [int(Err.RUNTIME_INCONSISTENCY)] * (len(subops) - index - 1)
            raise MultiFailed(failed) from None
        coord_ops.append(coord_op)
        reply_type = int(OpCode.CREATE2) if sub.op in (OpCode.CREATE_CONTAINER, OpCode.CREATE_TTL) else int(sub.op)
        encoders.append((reply_type, encode))
    try:
        multi = ops.multi_op(coord_ops)
    except (BadArgumentsError, ValueError, TypeError) as exc:
        raise ZkError(Err.BAD_ARGUMENTS, str(exc)) from None

    def encode_results(value: Any) -> bytes:
        return encode_multi_success(encoders, value)

    return multi, encode_results


class MultiFailed(Exception):
    """A multi refused before the log: per-op error codes."""

    def __init__(self, codes: list[int]) -> None:
        super().__init__("multi refused")
        self.codes = codes


def encode_multi_success(encoders: list[tuple[int, Encode]], values: tuple[Any, ...]) -> bytes:
    out = []
    for (reply_type, encode), (_code, value) in zip(encoders, values, strict=True):
        out.append(jute.multi_header(reply_type, False, 0) + encode(value))
    out.append(jute.multi_header(-1, True, -1))
    return b"".join(out)


def encode_multi_failure(codes: list[int]) -> bytes:
    """ZooKeeper's failed multi: an ErrorResult per op (0 = rolled back)."""
    out = [jute.multi_header(-1, False, code) + jute.int_(code) for code in codes]
    out.append(jute.multi_header(-1, True, -1))
    return b"".join(out)


def write_op(request: jute.Request, parent_exists: ParentExists | None = None) -> tuple[tuple[Any, ...], Encode]:
    """The coord op of a write request and the encoder of its success value.

    Raises ``ZkError`` (answer with that code) or ``MultiFailed``.
    """
    op, args = request.op, request.args
    if op == OpCode.MULTI:
        return _multi_op(args, parent_exists)  # type: ignore[arg-type]
    if op == OpCode.SYNC:
        path = args[0]
        return ops.sync_op(), lambda value: jute.string_(path)  # type: ignore[arg-type]
    if op == OpCode.CLOSE_SESSION:
        return ops.close_session_op(), lambda value: b""
    if op == OpCode.AUTH:
        raise ZkError(Err.UNIMPLEMENTED, "auth packets are handled by the server")
    if op == OpCode.SET_ACL:
        path, acl, version = args
        _check_path(path)  # type: ignore[arg-type]
        canonical = _canonical_acl(acl)  # type: ignore[arg-type]
        try:
            return ops.set_acl_op(path, canonical, version), jute.stat_  # type: ignore[arg-type]
        except InvalidACLError as exc:
            raise ZkError(Err.INVALID_ACL, str(exc)) from None
        except (BadArgumentsError, ValueError, TypeError) as exc:
            raise ZkError(Err.BAD_ARGUMENTS, str(exc)) from None
    return _simple_op(op, args, parent_exists)


def result_code(code: int) -> int:
    """coord's result code as a ZooKeeper error code (they share values)."""
    return int(code) if code <= 0 else int(Err.SYSTEM_ERROR)


# ---------------------------------------------------------------- reads


class ReadContext:
    """What a read needs besides the tree: the connection and its session."""

    __slots__ = ("conn_id", "notify", "peer_host", "session_id", "watches")

    def __init__(
        self,
        conn_id: int,
        session_id: int,
        peer_host: str,
        watches: ZkWatches,
        notify: Callable[[int, int, str], None],
    ) -> None:
        self.conn_id = conn_id
        self.session_id = session_id
        self.peer_host = peer_host
        self.watches = watches
        self.notify = notify


def _exists(ctx: ReadContext, tree: Tree, args: tuple[Any, ...]) -> bytes:
    path, watch = args
    _check_path(path)
    stat = tree.stat(path)
    if watch:
        ctx.watches.add_data(ctx.conn_id, path)
    if stat is None:
        raise ZkError(Err.NO_NODE)
    return jute.stat_(stat)


def _require(ctx: ReadContext, tree: Tree, path: str, perm: int) -> None:
    """ZooKeeper's checkACL for a read: NO_NODE, or NO_AUTH before any watch is armed."""
    permitted = tree.permitted(path, perm, ctx.session_id)
    if permitted is None:
        raise ZkError(Err.NO_NODE)
    if not permitted:
        raise ZkError(Err.NO_AUTH)


def _get_data(ctx: ReadContext, tree: Tree, args: tuple[Any, ...]) -> bytes:
    path, watch = args
    _check_path(path)
    _require(ctx, tree, path, coord_acl.Permissions.READ)
    found = tree.get(path)
    if found is None:
        raise ZkError(Err.NO_NODE)
    if watch:
        ctx.watches.add_data(ctx.conn_id, path)
    return jute.buffer_(found[0]) + jute.stat_(found[1])


def _children(ctx: ReadContext, tree: Tree, path: str, watch: bool) -> tuple[list[str], Any]:
    _check_path(path)
    _require(ctx, tree, path, coord_acl.Permissions.READ)
    children = tree.children(path)
    if children is None:
        raise ZkError(Err.NO_NODE)
    if watch:
        ctx.watches.add_child(ctx.conn_id, path)
    return children, tree.stat(path)


def _get_children(ctx: ReadContext, tree: Tree, args: tuple[Any, ...]) -> bytes:
    children, _stat = _children(ctx, tree, args[0], args[1])
    return jute.strings_(children)


def _get_children2(ctx: ReadContext, tree: Tree, args: tuple[Any, ...]) -> bytes:
    children, stat = _children(ctx, tree, args[0], args[1])
    return jute.strings_(children) + jute.stat_(stat)


def _get_acl(ctx: ReadContext, tree: Tree, args: tuple[Any, ...]) -> bytes:
    # ZooKeeper 3.8: READ or ADMIN; without ADMIN digest hashes are redacted.
    path = args[0]
    _check_path(path)
    _require(ctx, tree, path, coord_acl.Permissions.READ | coord_acl.Permissions.ADMIN)
    found = tree.get_acl(path)
    if found is None:
        raise ZkError(Err.NO_NODE)
    acl, stat = found
    if not tree.permitted(path, coord_acl.Permissions.ADMIN, ctx.session_id):
        acl = coord_acl.redact_digests(acl)
    return jute.acls_([Acl(perms, scheme, ident) for perms, scheme, ident in acl]) + jute.stat_(stat)


def _get_ephemerals(ctx: ReadContext, tree: Tree, args: tuple[Any, ...]) -> bytes:
    prefix = args[0]
    info = tree.session_info(ctx.session_id)
    paths = [p for p in info.ephemerals if p.startswith(prefix)] if info is not None else []
    return jute.strings_(paths)


def _all_children_number(ctx: ReadContext, tree: Tree, args: tuple[Any, ...]) -> bytes:
    _check_path(args[0])
    _require(ctx, tree, args[0], coord_acl.Permissions.READ)
    count = tree.descendant_count(args[0])
    if count is None:
        raise ZkError(Err.NO_NODE)
    return jute.int_(count)


def _who_am_i(ctx: ReadContext, tree: Tree, args: tuple[Any, ...]) -> bytes:
    # ZooKeeper lists the connection's ip and each authenticated id (a
    # digest id as its user name).
    auth = tree.session_auth(ctx.session_id)
    infos = [("ip", ctx.peer_host)] + [
        (scheme, ident.split(":", 1)[0] if scheme == "digest" else ident) for scheme, ident in auth
    ]
    return jute.int_(len(infos)) + b"".join(jute.string_(s) + jute.string_(u) for s, u in infos)


def _check_watches(ctx: ReadContext, tree: Tree, args: tuple[Any, ...]) -> bytes:
    path, watcher_type = args
    _check_path(path)
    if not ctx.watches.has(ctx.conn_id, path, watcher_type):
        raise ZkError(Err.NO_WATCHER)
    return b""


def _remove_watches(ctx: ReadContext, tree: Tree, args: tuple[Any, ...]) -> bytes:
    path, watcher_type = args
    _check_path(path)
    if not ctx.watches.remove(ctx.conn_id, path, watcher_type):
        raise ZkError(Err.NO_WATCHER)
    return b""


def _add_watch(ctx: ReadContext, tree: Tree, args: tuple[Any, ...]) -> bytes:
    path, mode = args
    _check_path(path)
    if mode not in (ADD_WATCH_PERSISTENT, ADD_WATCH_PERSISTENT_RECURSIVE):
        raise ZkError(Err.BAD_ARGUMENTS, f"unknown addWatch mode {mode}")
    ctx.watches.add_persistent(ctx.conn_id, path, recursive=mode == ADD_WATCH_PERSISTENT_RECURSIVE)
    return b""


def _set_watches(ctx: ReadContext, tree: Tree, args: tuple[Any, ...]) -> bytes:
    relative_zxid, data, exist, child, *rest = args
    persistent, recursive = (rest[0], rest[1]) if rest else ([], [])
    ctx.watches.set_watches(
        ctx.conn_id,
        tree,
        relative_zxid,
        data,
        exist,
        child,
        persistent,
        recursive,
        ctx.notify,  # type: ignore[arg-type]
    )
    return b""


def _multi_read(ctx: ReadContext, tree: Tree, args: tuple[Any, ...]) -> bytes:
    out = []
    for sub in args:
        assert isinstance(sub, jute.SubOp)
        try:
            body = _get_data(ctx, tree, sub.args) if sub.op == OpCode.GET_DATA else _get_children(ctx, tree, sub.args)
            out.append(jute.multi_header(int(sub.op), False, 0) + body)
        except ZkError as exc:
            out.append(jute.multi_header(-1, False, exc.err) + jute.int_(exc.err))
    out.append(jute.multi_header(-1, True, -1))
    return b"".join(out)


def _nothing(ctx: ReadContext, tree: Tree, args: tuple[Any, ...]) -> bytes:
    return b""


READS: dict[int, Callable[[ReadContext, Any, tuple[Any, ...]], bytes]] = {
    OpCode.EXISTS: _exists,
    OpCode.GET_DATA: _get_data,
    OpCode.GET_CHILDREN: _get_children,
    OpCode.GET_CHILDREN2: _get_children2,
    OpCode.GET_ACL: _get_acl,
    OpCode.GET_EPHEMERALS: _get_ephemerals,
    OpCode.GET_ALL_CHILDREN_NUMBER: _all_children_number,
    OpCode.WHO_AM_I: _who_am_i,
    OpCode.CHECK_WATCHES: _check_watches,
    OpCode.REMOVE_WATCHES: _remove_watches,
    OpCode.ADD_WATCH: _add_watch,
    OpCode.SET_WATCHES: _set_watches,
    OpCode.SET_WATCHES2: _set_watches,
    OpCode.MULTI_READ: _multi_read,
    OpCode.PING: _nothing,
}


def read_reply(ctx: ReadContext, tree: Tree, request: jute.Request) -> bytes:
    """The whole reply payload (header and body) of a read request."""
    handler = READS.get(request.op)
    try:
        if request.op == OpCode.RECONFIG:
            raise ZkError(Err.RECONFIG_DISABLED, "membership changes go through coord, not reconfig")
        if handler is None:
            raise ZkError(Err.UNIMPLEMENTED, f"opcode {request.op} is not supported")
        body = handler(ctx, tree, request.args)
    except ZkError as exc:
        return jute.reply_header(request.xid, tree.zxid, exc.err)
    return jute.reply_header(request.xid, tree.zxid, 0) + body


def write_reply(request: jute.Request, encode: Encode, zxid: int, code: int, value: Any) -> bytes:
    """The reply payload of an applied write."""
    if request.op == OpCode.AUTH:
        return jute.reply_header(jute.Xid.AUTH, zxid, 0 if code == 0 else int(Err.AUTH_FAILED))
    if request.op == OpCode.MULTI:
        if code == 0:
            return jute.reply_header(request.xid, zxid, 0) + encode(value)
        codes = [result_code(c) for c, _ in value] if isinstance(value, tuple) else [result_code(code)]
        return jute.reply_header(request.xid, zxid, 0) + encode_multi_failure(codes)
    if code != 0:
        return jute.reply_header(request.xid, zxid, result_code(code))
    return jute.reply_header(request.xid, zxid, 0) + encode(value)


__all__ = [
    "WRITE_OPS",
    "MultiFailed",
    "ReadContext",
    "ZkError",
    "encode_multi_failure",
    "read_reply",
    "write_op",
    "write_reply",
]
