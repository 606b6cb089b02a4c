"""Helpers shared by the test layers: free loopback ports, deadline waits,
in-process clusters of real members."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import coord


def free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out on 127.0.0.1 (bound together, so distinct)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.02, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def start_members(members: list[coord.Coordinator], timeout: float = 20.0) -> None:
    """Start members concurrently (they need each other to elect a leader)."""
    errors: list[BaseException] = []

    def run(member: coord.Coordinator) -> None:
        try:
            member.start(timeout=timeout)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 10)
    if errors:
        for member in members:
            member.stop()
        raise errors[0]


class InProcessCluster:
    """N real members in this process, on loopback, with fast timers."""

    def __init__(
        self, size: int = 3, *, session_timeout: float = 5.0, data_root: str | None = None, **kwargs: Any
    ) -> None:
        self.addresses = [f"127.0.0.1:{p}" for p in free_ports(size)]
        self.members = [
            coord.Coordinator(
                address,
                peers=self.addresses,
                session_timeout=session_timeout,
                data_dir=f"{data_root}/m{index}" if data_root else None,
                **kwargs,
            )
            for index, address in enumerate(self.addresses)
        ]

    def start(self) -> InProcessCluster:
        start_members(self.members)
        return self

    def stop(self) -> None:
        """Stop every member concurrently, so each can still close its session."""
        threads = [threading.Thread(target=member.stop) for member in self.members]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

    def leader(self, timeout: float = 10.0) -> coord.Coordinator:
        def find() -> coord.Coordinator | None:
            for member in self.members:
                with contextlib.suppress(coord.NotReadyError):  # stopped members are skipped
                    if member.status().role == "leader":
                        return member
            return None

        return wait_until(find, timeout, what="a leader")  # type: ignore[no-any-return]

    def followers(self) -> list[coord.Coordinator]:
        leader = self.leader()
        return [m for m in self.members if m is not leader]
