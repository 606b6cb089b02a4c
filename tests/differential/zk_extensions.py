"""ZooKeeper 3.6+ features kazoo 2.11 has no API for, for the differential
suite: container and TTL nodes, persistent and persistent-recursive watches.

kazoo sends any request object that has ``type`` (the opcode), ``serialize()``
and ``deserialize(buffer, offset)`` through ``KazooClient._call``; the classes
below are those requests, laid out as in ZooKeeper 3.8's ``zookeeper.jute``
(checked with ``javap`` against the installed ``zookeeper-jute.jar``;
opcodes from ``ZooDefs.OpCode``).

Persistent-watch notifications arrive as ordinary watch notifications (xid
-1), which kazoo drops unless a one-shot watcher was registered for them.
:func:`extensions` patches ONE client's connection (instance attribute, not
the class) for the duration of a ``with`` block so every notification is
also offered to the persistent watches registered through the adapter, the
way ZooKeeper's Java client materializes them (``ZKWatchManager``): a
persistent watch gets every event of exactly its path, a recursive one every
event of its path and descendants except CHILD; a callable registered on
several matching watches is called once.

Scenarios call ``extend(client)``: for kazoo the adapter below, for coord a
thin adapter over ``Coordinator.create(container=/ttl=)`` and
``add_watch``/``remove_watch`` that only remembers what to clean up.
"""

from __future__ import annotations

import contextlib
from collections import namedtuple
from collections.abc import Callable, Iterator
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import BadArgumentsError, NoNodeError, NoWatcherError
from kazoo.protocol.serialization import (
    Watch,
    int_struct,
    long_struct,
    read_string,
    stat_struct,
    write_buffer,
    write_string,
)
from kazoo.protocol.states import EVENT_TYPE_MAP, Callback, EventType, WatchedEvent, ZnodeStat
from kazoo.security import OPEN_ACL_UNSAFE

# ZooDefs.OpCode
OP_REMOVE_WATCHES = 18
OP_CREATE_CONTAINER = 19
OP_CREATE_TTL = 21
OP_ADD_WATCH = 106

# CreateMode flags
PERSISTENT, EPHEMERAL, PERSISTENT_SEQUENTIAL, EPHEMERAL_SEQUENTIAL = 0, 1, 2, 3
CONTAINER, PERSISTENT_WITH_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL = 4, 5, 6

# ZooDefs.AddWatchModes
ADD_WATCH_PERSISTENT, ADD_WATCH_PERSISTENT_RECURSIVE = 0, 1

# Watcher.Event.EventType.PersistentWatchRemoved (7), named the kazoo way;
# the Java client raises it locally, the server never sends it
PERSISTENT_WATCH_REMOVED = "PERSISTENT_WATCH_REMOVED"

# Watcher.WatcherType (3.8 has Children=1, Data=2, Any=3; the server's
# removeWatch(Any) drops the connection's watch on the path whatever its mode)
WATCHER_TYPE_ANY = 3


def _write_create_body(path: str, data: bytes, acl: Any, flags: int) -> bytearray:
    b = bytearray()
    b.extend(write_string(path))
    b.extend(write_buffer(data))
    b.extend(int_struct.pack(len(acl)))
    for entry in acl:
        b.extend(int_struct.pack(entry.perms) + write_string(entry.id.scheme) + write_string(entry.id.id))
    b.extend(int_struct.pack(flags))
    return b


def _read_path_and_stat(buffer: bytes, offset: int) -> tuple[str, ZnodeStat]:
    path, offset = read_string(buffer, offset)
    return path, ZnodeStat._make(stat_struct.unpack_from(buffer, offset))


class CreateContainerRequest(namedtuple("CreateContainerRequest", "path data acl flags")):
    """createContainer: a CreateRequest (path, data, acl, flags=CONTAINER);
    the answer is a Create2Response (path, stat)."""

    type = OP_CREATE_CONTAINER

    def serialize(self) -> bytearray:
        return _write_create_body(self.path, self.data, self.acl, self.flags)

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> tuple[str, ZnodeStat]:
        return _read_path_and_stat(buffer, offset)


class CreateTTLRequest(namedtuple("CreateTTLRequest", "path data acl flags ttl")):
    """createTTL: CreateTTLRequest (path, data, acl, flags, long ttl); the
    answer is a Create2Response (path, stat)."""

    type = OP_CREATE_TTL

    def serialize(self) -> bytearray:
        b = _write_create_body(self.path, self.data, self.acl, self.flags)
        b.extend(long_struct.pack(self.ttl))
        return b

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> tuple[str, ZnodeStat]:
        return _read_path_and_stat(buffer, offset)


class AddWatchRequest(namedtuple("AddWatchRequest", "path mode")):
    """addWatch: AddWatchRequest (path, int mode); empty answer."""

    type = OP_ADD_WATCH

    def serialize(self) -> bytearray:
        return bytearray(write_string(self.path) + int_struct.pack(self.mode))

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> None:
        return None


class RemoveWatchesRequest(namedtuple("RemoveWatchesRequest", "path watcher_type")):
    """removeWatches: RemoveWatchesRequest (path, int type); empty answer,
    NoWatcherError when the connection has no such watch."""

    type = OP_REMOVE_WATCHES

    def serialize(self) -> bytearray:
        return bytearray(write_string(self.path) + int_struct.pack(self.watcher_type))

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> None:
        return None


def _send(client: KazooClient, request: Any) -> Any:
    async_result = client.handler.async_result()
    client._call(request, async_result)
    return async_result.get(timeout=client._session_timeout / 1000.0 * 2)


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class KazooExtensions:
    """coord's container/TTL create and persistent watches, on a kazoo client."""

    def __init__(self, client: KazooClient) -> None:
        self.client = client
        self._extends = client  # Transcript labels calls on it like the client's own
        # (path, recursive) -> callables, in registration order
        self.watches: dict[tuple[str, bool], list[Callable[[WatchedEvent], Any]]] = {}

    # -- creates -------------------------------------------------------------

    def create(
        self,
        path: str,
        value: bytes = b"",
        acl: Any = None,
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
        include_data: bool = False,
        container: bool = False,
        ttl: int | None = None,
    ) -> Any:
        """``Coordinator.create`` with ``container``/``ttl`` on ZooKeeper.

        ``container`` combined with ``ephemeral`` or ``sequence`` has no
        CreateMode at all (the Java client cannot express it), so it is
        refused here with ZooKeeper's answer to an unknown mode flag,
        BadArgumentsError. Every other combination is sent to the server,
        which judges it (TTL with an ephemeral mode, a TTL out of range, ...).
        """
        if not container and ttl is None:
            return self.client.create(
                path,
                value,
                acl=acl,
                ephemeral=ephemeral,
                sequence=sequence,
                makepath=makepath,
                include_data=include_data,
            )
        if not isinstance(path, str):
            raise TypeError("path must be a string")
        if value is not None and not isinstance(value, bytes):
            raise TypeError("value must be a byte string")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int)):
            raise TypeError("ttl must be an int (milliseconds)")
        acl = acl or OPEN_ACL_UNSAFE
        if ttl is not None:
            if container:
                flags = CONTAINER
            elif ephemeral:
                flags = EPHEMERAL_SEQUENTIAL if sequence else EPHEMERAL
            else:
                flags = PERSISTENT_SEQUENTIAL_WITH_TTL if sequence else PERSISTENT_WITH_TTL
            request: Any = CreateTTLRequest(path, value, acl, flags, ttl)
        else:
            if ephemeral or sequence:
                raise BadArgumentsError("a container cannot be ephemeral or sequential (no such CreateMode)")
            request = CreateContainerRequest(path, value, acl, CONTAINER)
        try:
            created, stat = _send(self.client, request)
        except NoNodeError:
            if not makepath:
                raise
            parent = path.rsplit("/", 1)[0]
            if parent:
                self.client.ensure_path(parent)
            created, stat = _send(self.client, request)
        return (created, stat) if include_data else created

    # -- persistent watches -------------------------------------------------

    def add_watch(self, path: str, func: Callable[[WatchedEvent], Any], recursive: bool = False) -> None:
        """ZooKeeper's addWatch(path, mode): the callable is registered
        locally first (so no event can slip past), then the server is told."""
        if not callable(func):
            raise TypeError("watch must be callable")
        key = (path, bool(recursive))
        funcs = self.watches.setdefault(key, [])
        added = func not in funcs
        if added:
            funcs.append(func)
        mode = ADD_WATCH_PERSISTENT_RECURSIVE if recursive else ADD_WATCH_PERSISTENT
        try:
            return _send(self.client, AddWatchRequest(path, mode))  # type: ignore[no-any-return]
        except Exception:
            if added:
                funcs.remove(func)
                if not funcs:
                    del self.watches[key]
            raise

    def remove_watch(self, path: str, func: Callable[[WatchedEvent], Any]) -> None:
        """The Java client's removeWatches(path, watcher, Any, local=false):
        NoWatcherError if the callable watches nothing at ``path``; the
        server is told once no callable is left on the path; the callable
        then gets a last event, PERSISTENT_WATCH_REMOVED (the Java client's
        ``EventType.PersistentWatchRemoved``, which kazoo has no name for)."""
        found = False
        for recursive in (False, True):
            funcs = self.watches.get((path, recursive))
            if funcs and func in funcs:
                funcs.remove(func)
                found = True
                if not funcs:
                    del self.watches[(path, recursive)]
        if not found:
            raise NoWatcherError(path)
        if (path, False) not in self.watches and (path, True) not in self.watches:
            _send(self.client, RemoveWatchesRequest(path, WATCHER_TYPE_ANY))
        event = WatchedEvent(PERSISTENT_WATCH_REMOVED, self.client._state, path)
        self.client.handler.dispatch_callback(Callback("watch", func, (event,)))

    def matching(self, event_type: str, path: str) -> list[Callable[[WatchedEvent], Any]]:
        """The persistent callables an event of ``path`` goes to (each once)."""
        out: list[Callable[[WatchedEvent], Any]] = []
        for (root, recursive), funcs in list(self.watches.items()):
            hit = (event_type != EventType.CHILD and _is_under(path, root)) if recursive else path == root
            if hit:
                out.extend(f for f in funcs if f not in out)
        return out

    def close(self) -> None:
        """Remove every persistent watch still registered (server side too)."""
        paths = sorted({path for path, _ in self.watches})
        self.watches.clear()
        for path in paths:
            with contextlib.suppress(Exception):
                _send(self.client, RemoveWatchesRequest(path, WATCHER_TYPE_ANY))


class CoordExtensions:
    """The same calls on a coord member (straight through), remembering the
    persistent watches so they can be removed when the scenario ends."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._extends = client
        self._added: list[tuple[str, Callable[[Any], Any]]] = []

    def create(self, path: str, value: bytes = b"", **kwargs: Any) -> Any:
        return self.client.create(path, value, **kwargs)

    def add_watch(self, path: str, func: Callable[[Any], Any], recursive: bool = False) -> Any:
        result = self.client.add_watch(path, func, recursive=recursive)
        self._added.append((path, func))
        return result

    def remove_watch(self, path: str, func: Callable[[Any], Any]) -> Any:
        return self.client.remove_watch(path, func)

    def close(self) -> None:
        for path, func in reversed(self._added):
            with contextlib.suppress(Exception):
                self.client.remove_watch(path, func)
        self._added.clear()


_ACTIVE: dict[int, KazooExtensions | CoordExtensions] = {}
"""The adapter of each client inside :func:`extensions`, by ``id(client)``."""


@contextlib.contextmanager
def extensions(client: Any) -> Iterator[KazooExtensions | CoordExtensions]:
    """The adapter for ``client`` for the duration of the block (what
    :func:`extend` returns inside it). For kazoo, the client's connection
    delivers every watch notification to the adapter's persistent watches
    too; the patch and the watches are removed on exit."""
    if isinstance(client, KazooClient):
        ext: KazooExtensions | CoordExtensions = KazooExtensions(client)
        connection = client._connection
        original = connection._read_watch_event  # the bound method of the class

        def read_watch_event(buffer: bytes, offset: int) -> Any:
            watch, _ = Watch.deserialize(buffer, offset)
            result = original(buffer, offset)
            event_type = EVENT_TYPE_MAP.get(watch.type)
            if event_type is None or event_type == EventType.NONE or client._stopped.is_set():
                return result
            path = client.unchroot(watch.path)
            event = WatchedEvent(event_type, client._state, path)
            for func in ext.matching(event_type, path):  # type: ignore[union-attr]
                client.handler.dispatch_callback(Callback("watch", func, (event,)))
            return result

        connection._read_watch_event = read_watch_event
        _ACTIVE[id(client)] = ext
        try:
            yield ext
        finally:
            try:
                ext.close()
            finally:
                del connection._read_watch_event  # back to the class's method
                _ACTIVE.pop(id(client), None)
    else:
        ext = CoordExtensions(client)
        _ACTIVE[id(client)] = ext
        try:
            yield ext
        finally:
            try:
                ext.close()
            finally:
                _ACTIVE.pop(id(client), None)


def extend(client: Any) -> Any:
    """The adapter installed by :func:`extensions` for ``client``."""
    ext = _ACTIVE.get(id(client))
    if ext is None:
        raise RuntimeError("extend(client) outside `with extensions(client)`")
    return ext
