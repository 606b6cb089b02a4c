"""Fixtures of the differential suite: a real ZooKeeper (through kazoo) and
an in-process 3-member coord cluster."""

from __future__ import annotations

import socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from zk_server import zookeeper_server  # noqa: E402, F401 - session fixture; needs the path above

START_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "differential: same scenario on ZooKeeper and coord")


# The kazoo client and the coord cluster are package-scoped, not session-
# scoped: their background threads call the global ``random`` (kazoo's retry
# jitter, pysyncobj's election timeouts) and must be gone before the hypothesis
# tests of tests/unit run, or hypothesis reports "Do not use the random module
# inside strategies" against strategies that never touch it.


@pytest.fixture(scope="package")
def zk_client(zookeeper_server):  # type: ignore[no-untyped-def]  # noqa: F811 - the fixture imported above
    """A kazoo client connected to the session's ZooKeeper server."""
    from kazoo.client import KazooClient

    client = KazooClient(hosts=zookeeper_server.hosts, timeout=10.0)
    client.start(timeout=15.0)
    try:
        yield client
    finally:
        client.stop()
        client.close()


@pytest.fixture(scope="session")
def differential_root() -> str:
    """A fresh top-level path for this session's scenario runs."""
    return f"/differential-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def zk_transcripts() -> dict[str, list]:
    """ZooKeeper transcripts by scenario name, filled by the ZooKeeper tests."""
    return {}


def _free_loopback_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _in_parallel(fns: list[Any], timeout: float, what: str) -> None:
    errors: list[BaseException] = []

    def run(fn: Any) -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(fn,), daemon=True) for fn in fns]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout)
    stuck = sum(th.is_alive() for th in threads)
    if stuck:
        raise RuntimeError(f"{what}: {stuck} member(s) still busy after {timeout}s")
    if errors:
        raise RuntimeError(f"{what} failed: {errors!r}") from errors[0]


@pytest.fixture(scope="package")
def coord_cluster():  # type: ignore[no-untyped-def]
    """Three coord members in this process, on free loopback ports."""
    try:
        from coord import Coordinator
    except ImportError as exc:
        pytest.skip(f"coord.Coordinator not importable ({exc})")
    addrs = [f"127.0.0.1:{p}" for p in _free_loopback_ports(3)]
    # reap_interval matches the ZooKeeper server's container check period
    # (zk_server.CONTAINER_CHECK_INTERVAL_MS) so container/TTL scenarios are quick.
    members = [
        Coordinator(addr, peers=[a for a in addrs if a != addr], session_timeout=10.0, reap_interval=0.1)
        for addr in addrs
    ]
    try:
        _in_parallel([lambda m=m: m.start(timeout=START_TIMEOUT) for m in members], START_TIMEOUT + 25, "start")
        yield members
    finally:
        _in_parallel([m.stop for m in members], STOP_TIMEOUT, "stop")


def _role(member: Any) -> str:
    status = member.status()
    role = status.get("role") if isinstance(status, dict) else getattr(status, "role", None)
    return str(getattr(role, "value", role) or "").lower()


@pytest.fixture(params=["leader", "follower"])
def coord_client(request, coord_cluster):  # type: ignore[no-untyped-def]
    """A member of the coord cluster acting as the client: the leader, then
    a follower (whose writes go through the leader and whose reads are
    served locally)."""
    roles = [_role(m) for m in coord_cluster]
    if request.param == "leader":
        chosen = [m for m, r in zip(coord_cluster, roles, strict=True) if "leader" in r]
    else:
        chosen = [m for m, r in zip(coord_cluster, roles, strict=True) if r and "leader" not in r]
    assert chosen, f"no {request.param} among members with roles {roles}"
    return chosen[0]
