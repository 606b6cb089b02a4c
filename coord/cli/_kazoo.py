"""The CLI's other way in: a kazoo client on members' ZooKeeper endpoints
(``zk_address``), for hosts that should not hold the cluster secret.

kazoo is not a dependency of coord (``pip install kazoo``). The adapter
gives the client the few ``Coordinator`` methods the shell uses that
kazoo 2.11 lacks or spells differently.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from coord import errors
from coord.errors import ConfigurationError
from coord.types import WatchedEvent

try:
    from kazoo.exceptions import KazooException  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - without kazoo, --zk says so when used

    class KazooException(Exception):  # type: ignore[no-redef]
        """Stand-in: kazoo is not installed."""


def _coord_error(exc: Exception, args: tuple[Any, ...]) -> Exception:
    """coord's exception of the same name (NoNodeError, ...) for a kazoo
    one, with the path as its message (kazoo's messages are empty)."""
    cls = getattr(errors, type(exc).__name__, None)
    detail = next((a for a in args if isinstance(a, str)), "")
    if isinstance(cls, type) and issubclass(cls, errors.CoordError):
        return cls(detail)
    return errors.CoordError(f"{type(exc).__name__}: {detail}".rstrip(": "))


class KazooBackend:
    """A started ``KazooClient`` with coord's ``add_watch``/``remove_watch``
    (re-armed one-shot watches; kazoo 2.11 has no persistent watches) and
    a ``fencing_token`` for its locks (the lock node's czxid, as coord's)."""

    def __init__(self, hosts: str, timeout: float, auth: str | None = None) -> None:
        try:
            from kazoo.client import KazooClient  # type: ignore[import-untyped, import-not-found, unused-ignore]
        except ImportError:  # pragma: no cover - kazoo is in the test extra
            raise ConfigurationError("--zk needs kazoo: pip install kazoo") from None
        self._client = KazooClient(hosts=hosts, timeout=max(timeout, 1.0))
        try:
            self._client.start(timeout=timeout)
        except BaseException:
            self._client.stop()
            self._client.close()
            raise
        self._watches: dict[tuple[str, Callable[[Any], None]], threading.Event] = {}
        if auth:
            scheme, _, credential = auth.partition(":")
            if not credential:
                self._client.stop()
                raise ConfigurationError("--zk-auth must be SCHEME:CREDENTIAL, e.g. digest:user:password")
            self._client.add_auth(scheme, credential)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attribute(*args, **kwargs)
            except KazooException as exc:
                raise _coord_error(exc, args) from None

        return call

    def add_watch(self, path: str, func: Callable[[Any], None], recursive: bool = False) -> None:
        """Call ``func`` on every change of ``path`` (its data, existence or
        children) until ``remove_watch``; changes between two events may be
        coalesced, as with any re-armed one-shot watch."""
        if recursive:
            raise ConfigurationError("watch -r needs a member's own API (kazoo 2.11 has no persistent watches)")
        stopped = threading.Event()
        self._watches[(path, func)] = stopped

        def on_event(event: Any) -> None:
            if stopped.is_set():
                return
            func(WatchedEvent(str(event.type), str(event.state), event.path))
            arm()

        def arm() -> None:
            if stopped.is_set():
                return
            if self._client.exists(path, watch=on_event) is not None:
                with contextlib.suppress(KazooException):  # deleted meanwhile: the exists watch covers it
                    self._client.get_children(path, watch=on_event)

        arm()

    def remove_watch(self, path: str, func: Callable[[Any], None]) -> bool:
        """Stop calling ``func`` for ``path``; False if it was not watching."""
        stopped = self._watches.pop((path, func), None)
        if stopped is None:
            return False
        stopped.set()
        func(WatchedEvent("PERSISTENT_WATCH_REMOVED", "CONNECTED", path))
        return True

    def Lock(self, path: str, identifier: str = "") -> Any:  # noqa: N802 - kazoo's name
        """kazoo's Lock, with ``fencing_token`` (the lock node's czxid) added."""
        lock = self._client.Lock(path, identifier)
        client = self._client

        class _Fenced(type(lock)):  # type: ignore[misc]
            @property
            def fencing_token(self) -> int | None:
                if not self.is_acquired or not self.node:
                    return None
                stat = client.exists(f"{self.path}/{self.node}")
                return stat.czxid if stat is not None else None

        lock.__class__ = _Fenced
        return lock

    def stop(self) -> None:
        """Close the session (its ephemerals go) and the connection."""
        self._client.stop()
        self._client.close()
