"""kazoo's ``DataWatch`` and ``ChildrenWatch``: a function called with the
current state now and again after every change, until it returns False.

Built on one-shot watches only, re-armed on every event. A coord member's
watches belong to the member, not to its session, so unlike kazoo nothing
needs re-registering after a session loss.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import CoordError, NoNodeError, NotReadyError
from ..types import WatchedEvent, ZnodeStat

if TYPE_CHECKING:
    from ..client import Coordinator

logger = logging.getLogger(__name__)


def _accepts_event(func: Callable[..., Any], positional: int) -> bool:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return False
    params = list(signature.parameters.values())
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return True
    return len([p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]) > positional


class _Watcher:
    def __init__(self, client: Coordinator, path: str, func: Callable[..., Any] | None) -> None:
        self._client = client
        self._path = path
        self._func: Callable[..., Any] | None = None
        self._stopped = False
        self._lock = threading.RLock()
        if func is not None:
            self(func)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Associate ``func`` (decorator form) and make the first call."""
        if self._func is not None:
            raise CoordError(f"a function is already associated with this {type(self).__name__}")
        self._func = func
        self._refresh(None)
        return func

    def _on_event(self, event: WatchedEvent) -> None:
        self._refresh(event)

    def _deliver(self, *args: Any) -> None:
        assert self._func is not None
        try:
            result = self._func(*args)
        except Exception:
            logger.exception("%s function for %s raised", type(self).__name__, self._path)
            return
        if result is False:
            self._stopped = True

    def _refresh(self, event: WatchedEvent | None) -> None:
        raise NotImplementedError


class DataWatch(_Watcher):
    """Calls ``func(data, stat)`` (or ``func(data, stat, event)``) with the
    node's value now and after each change; ``(None, None)`` while it does
    not exist. Stops when ``func`` returns False."""

    def __init__(self, client: Coordinator, path: str, func: Callable[..., Any] | None = None) -> None:
        self._last_mzxid: int | None = None
        self._ever_called = False
        super().__init__(client, path, func)

    def _refresh(self, event: WatchedEvent | None) -> None:
        with self._lock:
            if self._stopped:
                return
            data: bytes | None
            stat: ZnodeStat | None
            try:
                data, stat = self._client.get(self._path, watch=self._on_event)
            except NoNodeError:
                data, stat = None, self._client.exists(self._path, watch=self._on_event)
                if stat is not None:  # created in between: read it (its watch is armed)
                    data, stat = self._client.get(self._path)
            except NotReadyError:
                return
            version = stat.mzxid if stat is not None else None
            if self._ever_called and version == self._last_mzxid:
                return
            self._ever_called = True
            self._last_mzxid = version
            assert self._func is not None
            if _accepts_event(self._func, 2):
                self._deliver(data, stat, event)
            else:
                self._deliver(data, stat)


class ChildrenWatch(_Watcher):
    """Calls ``func(children)`` (or ``func(children, event)`` with
    ``send_event``) now and after each change of the child list. The node
    must exist; the watch stops when it is deleted or ``func`` returns False."""

    def __init__(
        self,
        client: Coordinator,
        path: str,
        func: Callable[..., Any] | None = None,
        allow_session_lost: bool = True,
        send_event: bool = False,
    ) -> None:
        self._send_event = send_event
        self._prior: list[str] | None = None
        super().__init__(client, path, func)

    def _refresh(self, event: WatchedEvent | None) -> None:
        with self._lock:
            if self._stopped:
                return
            try:
                children = self._client.get_children(self._path, watch=self._on_event)
            except NoNodeError:
                self._stopped = True
                return
            except NotReadyError:
                return
            assert isinstance(children, list)
            if self._prior is not None and children == self._prior and event is None:
                return
            self._prior = children
            if self._send_event:
                self._deliver(children, event)
            else:
                self._deliver(children)
