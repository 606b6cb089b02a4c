"""etcd 3.4 (Debian ``etcd-server``): 3 members on 127.0.0.1 (plain HTTP:
etcd's peer TLS is not set up, so unlike coord's AEAD transport there is no
encryption; WAL fdatasync'd always).  The caller is a separate Python
process driving the HTTP/JSON gateway of exactly one member over persistent
connections (``benchmarks/suite/clients/etcd_child.py``)."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from coord.local_cluster import LOOPBACK, RpcProcess, free_ports, wait_until

from . import ServerEnsemble, stop_quietly


def _status(port: int, timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
        conn.request("POST", "/v3/maintenance/status", "{}", {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return json.loads(data) if resp.status == 200 else None
    except (OSError, ValueError):
        return None


class EtcdSystem(ServerEnsemble):
    name = "etcd"
    includes = "Python http.client (keep-alive) in a separate process -> one etcd member's JSON gateway"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_ports: list[int] = []
        self.peer_ports: list[int] = []

    @classmethod
    def unavailable(cls) -> str | None:
        if shutil.which("etcd") is None:
            return "etcd not installed (apt-get install -y etcd-server)"
        return None

    def start(self) -> None:
        ports = free_ports(6)
        self.client_ports, self.peer_ports = ports[:3], ports[3:]
        for i in range(3):
            self._spawn(i)
        for i in range(3):
            self._wait_serving(i, 60.0)

    def _spawn(self, i: int) -> None:
        cluster = ",".join(f"m{j}=http://{LOOPBACK}:{self.peer_ports[j]}" for j in range(3))
        log_path = self.log_dir / "etcd" / f"etcd{i}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.logs[i] = open(log_path, "ab")  # noqa: SIM115 - closed in stop
        cmd = ["etcd", "--name", f"m{i}", "--data-dir", str(self.tmp / f"m{i}"),
               "--listen-client-urls", f"http://{LOOPBACK}:{self.client_ports[i]}",
               "--advertise-client-urls", f"http://{LOOPBACK}:{self.client_ports[i]}",
               "--listen-peer-urls", f"http://{LOOPBACK}:{self.peer_ports[i]}",
               "--initial-advertise-peer-urls", f"http://{LOOPBACK}:{self.peer_ports[i]}",
               "--initial-cluster", cluster, "--initial-cluster-state", "new",
               "--initial-cluster-token", "coord-bench", "--log-level", "warn", "--logger", "zap",
               "--quota-backend-bytes", str(8 << 30)]
        self.procs[i] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logs[i],
                                         stderr=subprocess.STDOUT, cwd=self.tmp, start_new_session=True)

    def _wait_serving(self, i: int, timeout: float) -> None:
        def ok() -> bool:
            p = self.procs[i]
            if p is None or p.poll() is not None:
                raise RuntimeError(f"etcd m{i} exited")
            st = _status(self.client_ports[i])
            return bool(st and st.get("leader") and st.get("leader") != "0")

        wait_until(ok, timeout, interval=0.1, what=f"etcd m{i} serving", ignore=())

    def leader_index(self, timeout: float = 30.0) -> int:
        def find() -> int | None:
            for i in range(3):
                if self.procs[i] is None:
                    continue
                st = _status(self.client_ports[i])
                if st and st.get("leader") == st.get("header", {}).get("member_id"):
                    return i + 1
            return None

        return wait_until(find, timeout, interval=0.1, what="an etcd leader") - 1

    def is_up(self, i: int) -> bool:
        return self.procs[i] is not None and _status(self.client_ports[i]) is not None

    def caller(self, i: int) -> RpcProcess:
        c = self.callers.get(i)
        if c is None or not c.alive:
            c = RpcProcess([sys.executable, "-m", "benchmarks.suite.clients.etcd_child",
                            "--endpoint", f"{LOOPBACK}:{self.client_ports[i]}"],
                           name=f"http@etcd{i}", log_path=self.log_dir / "etcd" / f"client-{i}.log")
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
        lead = next((j for j in range(3) if j != i and self.procs[j] is not None), None)
        st = _status(self.client_ports[lead]) if lead is not None else None
        target = int(st.get("raftIndex", 0)) if st else 0
        t0 = time.monotonic()
        self._spawn(i)
        self._wait_serving(i, timeout)

        def caught_up() -> bool:
            s = _status(self.client_ports[i])
            return bool(s) and int(s.get("raftIndex", 0)) >= target  # type: ignore[union-attr]

        wait_until(caught_up, timeout, interval=0.05, what=f"etcd m{i} caught up")
        return time.monotonic() - t0
