"""ZooKeeper's own command-line client against coord's ZooKeeper endpoint.

The Debian ``zookeeper`` package's ``zkCli.sh`` (a JVM running
``org.apache.zookeeper.ZooKeeperMain``) connects to member 0's endpoint and
runs ``ls``, ``create``, ``get``, ``set``, ``stat``, ``delete``,
``deleteall`` and a data watch (``get -w``) that another member's write
fires.  Results are checked against coord's own API.

One zkCli session serves the module (a JVM start-up is slow).  Debian's
zkCli runs without JLine, so it prints no prompt: each command is followed by
``printwatches``, a local command whose fixed answer ("printwatches is on")
marks where the command's output ends.  Asynchronous watch notifications are
collected separately, whenever they arrive.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import wait_until
from zk_server import skip_or_fail_without_zookeeper

pexpect = pytest.importorskip("pexpect")

ZKCLI = os.environ.get("ZKCLI", "/usr/share/zookeeper/bin/zkCli.sh")
COMMAND_TIMEOUT = 20.0
"""Deadline for one zkCli command (a busy 2-core machine, a JVM)."""

_END = "printwatches is on"
_EVENT = re.compile(r"WatchedEvent state:(\w+) type:(\w+) path:(\S+)")


class ZkCli:
    """A running ``zkCli.sh -server ADDRESS`` session driven through a pty."""

    def __init__(self, address: str) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.child = pexpect.spawn(ZKCLI, ["-server", address], encoding="utf-8", echo=False, timeout=COMMAND_TIMEOUT)
        self.child.expect(r"WatchedEvent state:SyncConnected type:None path:null", timeout=60)

    def run(self, command: str) -> list[str]:
        """Run one command; return the lines it printed (watch notifications
        that arrived meanwhile go to :attr:`events` instead)."""
        self.child.sendline(command)
        self.child.sendline("printwatches")
        self.child.expect_exact(_END)
        return self._lines(self.child.before)

    def _lines(self, text: str) -> list[str]:
        lines = []
        for raw in text.replace("\r", "").split("\n"):
            line = raw.strip()
            event = _EVENT.search(line)
            if event:
                self.events.append((event.group(1), event.group(2), event.group(3)))
            elif line and line != "WATCHER::" and not line.startswith("SLF4J:"):
                lines.append(line)
        return lines

    def wait_event(self, event_type: str, path: str, timeout: float = COMMAND_TIMEOUT) -> None:
        """Wait until zkCli printed a ``WatchedEvent`` of this type on ``path``."""
        if any(e[1] == event_type and e[2] == path for e in self.events):
            return
        self.child.expect(
            rf"WatchedEvent state:SyncConnected type:{event_type} path:{re.escape(path)}\s", timeout=timeout
        )
        self._lines(self.child.before)
        self.events.append(("SyncConnected", event_type, path))

    def close(self) -> None:
        """``quit``, then make sure the JVM is gone."""
        try:
            if self.child.isalive():
                self.child.sendline("quit")
                self.child.expect(pexpect.EOF, timeout=COMMAND_TIMEOUT)
        except (pexpect.TIMEOUT, pexpect.EOF, OSError):
            pass
        finally:
            self.child.close(force=True)


@pytest.fixture(scope="module")
def zkcli(zk_cluster: Any) -> Iterator[ZkCli]:
    skip_or_fail_without_zookeeper()
    if not os.access(ZKCLI, os.X_OK) or shutil.which("java") is None:
        reason = f"{ZKCLI} or java not available"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but zkCli cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    cli = ZkCli(zk_cluster.zk_addresses[0])
    try:
        yield cli
    finally:
        cli.close()
    assert not cli.child.isalive()


def _stat(lines: list[str]) -> dict[str, str]:
    stat = dict(line.split(" = ", 1) for line in lines if " = " in line)
    assert set(stat) >= {
        "cZxid",
        "mZxid",
        "pZxid",
        "cversion",
        "dataVersion",
        "aclVersion",
        "ephemeralOwner",
        "dataLength",
        "numChildren",
        "ctime",
        "mtime",
    }, lines
    return stat


def _children(lines: list[str]) -> list[str]:
    assert len(lines) == 1 and lines[0].startswith("[") and lines[0].endswith("]"), lines
    inner = lines[0][1:-1]
    return [name.strip() for name in inner.split(",")] if inner else []


def test_create_ls_get_set_stat(zkcli: ZkCli, zk_cluster: Any) -> None:
    path = f"/zkcli-{uuid.uuid4().hex[:8]}"
    other = zk_cluster.members[1]

    assert zkcli.run(f"create {path} hello") == [f"Created {path}"]
    assert path[1:] in _children(zkcli.run("ls /"))
    assert zkcli.run(f"get {path}") == ["hello"]
    other.sync()
    assert other.get(path)[0] == b"hello"

    assert zkcli.run(f"set {path} world") == []
    assert zkcli.run(f"get {path}") == ["world"]
    other.sync()
    value, coord_stat = other.get(path)
    assert value == b"world"

    stat = _stat(zkcli.run(f"stat {path}"))
    assert int(stat["cZxid"], 16) == coord_stat.czxid
    assert int(stat["mZxid"], 16) == coord_stat.mzxid
    assert int(stat["mZxid"], 16) > int(stat["cZxid"], 16)
    assert stat["dataVersion"] == "1"
    assert stat["dataLength"] == "5"
    assert stat["numChildren"] == "0"
    assert stat["ephemeralOwner"] == "0x0"

    # get -s prints the data, then the same Stat
    lines = zkcli.run(f"get -s {path}")
    assert lines[0] == "world"
    assert _stat(lines[1:]) == stat

    assert zkcli.run(f"create {path}/child c") == [f"Created {path}/child"]
    assert _children(zkcli.run(f"ls {path}")) == ["child"]
    assert _stat(zkcli.run(f"stat {path}"))["numChildren"] == "1"


def test_delete_and_deleteall(zkcli: ZkCli, zk_cluster: Any) -> None:
    root = f"/zkcli-{uuid.uuid4().hex[:8]}"
    other = zk_cluster.members[2]

    assert zkcli.run(f"create {root} r") == [f"Created {root}"]
    for sub in ("/a", "/a/b", "/a/b/c", "/leaf"):
        assert zkcli.run(f"create {root}{sub} x") == [f"Created {root}{sub}"]
    assert sorted(_children(zkcli.run(f"ls {root}"))) == ["a", "leaf"]

    assert zkcli.run(f"delete {root}/leaf") == []
    assert _children(zkcli.run(f"ls {root}")) == ["a"]
    assert zkcli.run(f"delete {root}/a") == [f"Node not empty: {root}/a"]
    assert zkcli.run(f"delete {root}/missing") == [f"Node does not exist: {root}/missing"]
    assert zkcli.run(f"get {root}/missing") == [f"Node does not exist: {root}/missing"]

    assert zkcli.run(f"deleteall {root}") == []
    assert path_gone(zkcli, root)
    other.sync()
    assert other.exists(root) is None
    assert root[1:] not in _children(zkcli.run("ls /"))


def path_gone(zkcli: ZkCli, path: str) -> bool:
    return zkcli.run(f"stat {path}") == [f"Node does not exist: {path}"]


def test_watches(zkcli: ZkCli, zk_cluster: Any) -> None:
    path = f"/zkcli-{uuid.uuid4().hex[:8]}"
    other = zk_cluster.members[1]

    assert zkcli.run(f"create {path} v1") == [f"Created {path}"]
    # a data watch, fired by a write through another member (coord's own API)
    assert zkcli.run(f"get -w {path}") == ["v1"]
    other.set(path, b"v2")
    zkcli.wait_event("NodeDataChanged", path)
    assert zkcli.run(f"get {path}") == ["v2"]

    # a child watch, fired by a create through the same other member
    assert _children(zkcli.run(f"ls -w {path}")) == []
    other.create(f"{path}/kid", b"")
    zkcli.wait_event("NodeChildrenChanged", path)

    # an exists watch on a missing node, fired by its creation
    assert zkcli.run(f"stat -w {path}/later") == [f"Node does not exist: {path}/later"]
    other.create(f"{path}/later", b"")
    zkcli.wait_event("NodeCreated", f"{path}/later")

    # a one-shot watch fires once: the second write prints nothing more
    other.set(path, b"v3")
    wait_until(lambda: zkcli.run(f"get {path}") == ["v3"], timeout=COMMAND_TIMEOUT, what="v3 visible through zkCli")
    zkcli.run("ls /")  # give a (wrong) second notification time to be printed
    assert [e for e in zkcli.events if e[1] == "NodeDataChanged" and e[2] == path] == [
        ("SyncConnected", "NodeDataChanged", path)
    ]
