"""ZooKeeper 3.8 (the Debian ``zookeeper`` package): a 3-server ensemble on
127.0.0.1 (distinct client/quorum/election ports, a data dir each, default
``forceSync=yes``: the txn log is fdatasync'd, group commit).  The caller is
a separate Python process running kazoo connected to exactly one server
(``benchmarks/suite/clients/zk_child.py``), so a figure includes kazoo and
the loopback round trip, as a ZooKeeper application would see it."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from coord.local_cluster import LOOPBACK, RpcProcess, free_ports, wait_until

from . import ServerEnsemble, stop_quietly

_DEBIAN_JAR = "/usr/share/java/zookeeper.jar"
_JUTE = "/usr/share/java/zookeeper-jute.jar"
MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


def _classpath() -> str | None:
    if os.environ.get("ZOOKEEPER_CLASSPATH"):
        return os.environ["ZOOKEEPER_CLASSPATH"]
    if os.path.isfile(_DEBIAN_JAR):
        return os.pathsep.join(j for j in (_DEBIAN_JAR, _JUTE) if os.path.isfile(j))
    return None


def four_letter(port: int, word: str, timeout: float = 2.0) -> str | None:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            sock.sendall(word.encode())
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return None


class ZooKeeperSystem(ServerEnsemble):
    name = "zookeeper"
    includes = "kazoo in a separate client process -> one ZooKeeper server over loopback TCP (forceSync=yes)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_ports: list[int] = []
        self.cfgs: list[Path] = []
        self.data_dirs: list[Path] = []

    @classmethod
    def unavailable(cls) -> str | None:
        if shutil.which("java") is None:
            return "java not found (apt-get install -y default-jre-headless)"
        if _classpath() is None:
            return "ZooKeeper not installed (apt-get install -y zookeeper)"
        try:
            import kazoo  # noqa: F401
        except ImportError:
            return "kazoo not installed (pip install kazoo)"
        return None

    def start(self) -> None:
        ports = free_ports(9)
        self.client_ports = ports[0:3]
        servers = [f"server.{i + 1}={LOOPBACK}:{ports[3 + i]}:{ports[6 + i]}" for i in range(3)]
        for i in range(3):
            d = self.tmp / f"zk{i + 1}"
            d.mkdir(parents=True, exist_ok=True)
            (d / "myid").write_text(f"{i + 1}\n")
            cfg = self.tmp / f"zoo{i + 1}.cfg"
            cfg.write_text("\n".join([
                "tickTime=2000", "initLimit=10", "syncLimit=5", f"dataDir={d}",
                f"clientPort={self.client_ports[i]}", f"clientPortAddress={LOOPBACK}",
                "maxClientCnxns=0", "admin.enableServer=false", "4lw.commands.whitelist=*",
                *servers,
            ]) + "\n")
            self.cfgs.append(cfg)
            self.data_dirs.append(d)
        for i in range(3):
            self._spawn(i)
        for i in range(3):
            self._wait_serving(i, 90.0)

    def _spawn(self, i: int) -> None:
        log_path = self.log_dir / "zookeeper" / f"zk{i + 1}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.logs[i] = open(log_path, "ab")  # noqa: SIM115 - closed in stop
        cmd = ["java", "-Xmx1g", "-Djava.net.preferIPv4Stack=true", "-Dzookeeper.jmx.log4j.disable=true",
               "-cp", _classpath() or "", MAIN, str(self.cfgs[i])]
        self.procs[i] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logs[i],
                                         stderr=subprocess.STDOUT, cwd=self.tmp, start_new_session=True)

    def _mode(self, i: int) -> str | None:
        out = four_letter(self.client_ports[i], "srvr")
        if not out:
            return None
        m = re.search(r"Mode: (\w+)", out)
        return m.group(1) if m else None

    def _zxid(self, i: int) -> int | None:
        out = four_letter(self.client_ports[i], "srvr")
        m = re.search(r"Zxid: (0x[0-9a-f]+)", out or "")
        return int(m.group(1), 16) if m else None

    def _wait_serving(self, i: int, timeout: float) -> None:
        def ok() -> bool:
            p = self.procs[i]
            if p is None or p.poll() is not None:
                raise RuntimeError(f"zk{i + 1} exited")
            return self._mode(i) in ("leader", "follower")

        wait_until(ok, timeout, interval=0.1, what=f"zk{i + 1} serving", ignore=())

    def leader_index(self, timeout: float = 30.0) -> int:
        def find() -> int | None:
            for i in range(3):
                if self.procs[i] is not None and self._mode(i) == "leader":
                    return i + 1
            return None

        return wait_until(find, timeout, interval=0.1, what="a ZooKeeper leader") - 1

    def is_up(self, i: int) -> bool:
        return self.procs[i] is not None and self._mode(i) in ("leader", "follower")

    def caller(self, i: int) -> RpcProcess:
        c = self.callers.get(i)
        if c is None or not c.alive:
            c = RpcProcess([sys.executable, "-m", "benchmarks.suite.clients.zk_child",
                            "--hosts", f"{LOOPBACK}:{self.client_ports[i]}"],
                           name=f"kazoo@zk{i + 1}", log_path=self.log_dir / "zookeeper" / f"kazoo-{i + 1}.log")
            c.start(60.0)
            self.callers[i] = c
        return c

    def server_pid(self, i: int) -> int | None:
        p = self.procs[i]
        return p.pid if p is not None else None

    def kill(self, i: int) -> float:
        t = time.time()
        self._terminate(i, signal.SIGKILL)
        stop_quietly(self.callers.pop(i, None))
        return t

    def stop_member(self, i: int) -> None:
        self._terminate(i)
        stop_quietly(self.callers.pop(i, None))

    def restart(self, i: int, timeout: float = 120.0) -> float:
        others = [j for j in range(3) if j != i and self.procs[j] is not None]
        target = max((self._zxid(j) or 0) for j in others) if others else 0
        t0 = time.monotonic()
        self._spawn(i)
        self._wait_serving(i, timeout)
        wait_until(lambda: (self._zxid(i) or 0) >= target, timeout, interval=0.05, what=f"zk{i + 1} caught up")
        return time.monotonic() - t0

    def catch_up_new(self, timeout: float = 300.0) -> dict[str, Any] | None:
        """A wiped follower rejoining (an empty server must fetch the whole
        state; ZooKeeper adds genuinely new servers only via reconfig)."""
        i = self.follower_index()
        stale = self.callers.pop(i, None)
        stop_quietly(stale)
        self._terminate(i)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.data_dirs[i] / "version-2")
        seconds = self.restart(i, timeout)
        return {"seconds": seconds, "how": "follower restarted with an empty dataDir"}
