"""kazoo's barriers: ``Barrier`` (block until a node is deleted) and
``DoubleBarrier`` (enter together, leave together).

Built only on the public client API. Watch callbacks run on the member's
callback thread and only set events; the blocking happens on the caller's
thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from typing import TYPE_CHECKING

from ..errors import CoordError, NodeExistsError, NoNodeError
from ..types import EventType, WatchedEvent

if TYPE_CHECKING:
    from ..client import Coordinator

logger = logging.getLogger(__name__)


def _default_identifier() -> str:
    return f"{socket.getfqdn()}-{os.getpid()}"


def _check_timeout(timeout: float | None) -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, got {type(timeout).__name__}")
    if timeout < 0:
        raise ValueError(f"timeout must not be negative, got {timeout!r}")


class Barrier:
    """A barrier that is up while its node exists (kazoo's ``Barrier``).

    One process ``create()``s it, others ``wait()`` until someone
    ``remove()``s it.
    """

    def __init__(self, client: Coordinator, path: str) -> None:
        self.client = client
        self.path = path

    def create(self) -> None:
        """Put the barrier up (creates the node and its parents if missing)."""
        self.client.ensure_path(self.path)

    def remove(self) -> bool:
        """Take the barrier down; returns whether it was up."""
        try:
            self.client.delete(self.path)
        except NoNodeError:
            return False
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the barrier is removed (or ``timeout`` seconds pass).

        :returns: True if the barrier is down, False on timeout.
        """
        _check_timeout(timeout)
        cleared = threading.Event()

        def on_event(event: WatchedEvent) -> None:
            if event.type == EventType.DELETED:
                cleared.set()

        if self.client.exists(self.path, watch=on_event) is None:
            return True
        cleared.wait(timeout)
        return cleared.is_set()


class DoubleBarrier:
    """kazoo's double barrier: ``enter()`` blocks until ``num_clients``
    participants have entered, ``leave()`` blocks until all have left.

    Each participant is an ephemeral child of ``path`` named by a random
    hex id, holding ``identifier``. A ``ready`` child signals that the
    quorum was reached. As in kazoo, a participant whose session expires is
    no longer part of the barrier.
    """

    def __init__(self, client: Coordinator, path: str, num_clients: int, identifier: str | None = None) -> None:
        if isinstance(num_clients, bool) or not isinstance(num_clients, int):
            raise TypeError(f"num_clients must be an int, got {type(num_clients).__name__}")
        if num_clients < 1:
            raise ValueError(f"num_clients must be at least 1, got {num_clients}")
        if identifier is not None and not isinstance(identifier, str):
            raise TypeError(f"identifier must be a str or None, got {type(identifier).__name__}")
        self.client = client
        self.path = path
        self.num_clients = num_clients
        self._identifier = identifier or _default_identifier()
        self.participating = False
        self.assured_path = False
        self.node_name = uuid.uuid4().hex
        self.create_path = f"{path}/{self.node_name}"
        self._ready_path = f"{path}/ready"

    def enter(self) -> None:
        """Enter the barrier; blocks until ``num_clients`` have entered.

        Like kazoo, a coord error while entering removes this participant
        again and leaves ``participating`` False instead of raising.
        """
        try:
            self._inner_enter()
            self.participating = True
        except CoordError:
            logger.warning("entering double barrier %s failed", self.path, exc_info=True)
            self._best_effort_cleanup()
            self.participating = False

    def _inner_enter(self) -> None:
        if not self.assured_path:
            self.client.ensure_path(self.path)
            self.assured_path = True
        ready = threading.Event()
        with contextlib.suppress(NodeExistsError):
            self.client.create(self.create_path, self._identifier.encode("utf-8"), ephemeral=True)

        def on_ready(event: WatchedEvent) -> None:
            if event.type == EventType.CREATED:
                ready.set()

        if self.client.exists(self._ready_path, watch=on_ready) is not None:
            return  # the others already got there
        children = self.client.get_children(self.path)
        assert isinstance(children, list)
        if len(children) < self.num_clients:
            ready.wait()
        else:
            self.client.ensure_path(self._ready_path)

    def leave(self) -> None:
        """Leave the barrier; blocks until every participant has left."""
        try:
            self._inner_leave()
        except CoordError:
            logger.warning("leaving double barrier %s failed", self.path, exc_info=True)
            self._best_effort_cleanup()
        self.participating = False

    def _inner_leave(self) -> None:
        with contextlib.suppress(NoNodeError):
            self.client.delete(self._ready_path)
        while True:
            children = self.client.get_children(self.path)
            assert isinstance(children, list)
            if not children:
                return
            if children == [self.node_name]:
                with contextlib.suppress(NoNodeError):
                    self.client.delete(self.create_path)
                return
            children.sort()
            gone = threading.Event()

            def on_deleted(event: WatchedEvent, gone: threading.Event = gone) -> None:
                if event.type == EventType.DELETED:
                    gone.set()

            if children[0] == self.node_name:
                # The lowest participant leaves last: wait for the highest to go.
                if self.client.exists(f"{self.path}/{children[-1]}", watch=on_deleted) is not None:
                    gone.wait()
                continue
            with contextlib.suppress(NoNodeError):
                self.client.delete(self.create_path)
            if self.client.exists(f"{self.path}/{children[0]}", watch=on_deleted) is not None:
                gone.wait()

    def _best_effort_cleanup(self) -> None:
        with contextlib.suppress(CoordError):
            self.client.delete(self.create_path)


__all__ = ["Barrier", "DoubleBarrier"]
