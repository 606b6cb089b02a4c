"""One adapter per system.  Each runs a 3-member cluster on 127.0.0.1 and
hands out *callers*: processes serving the ``bench_*`` RPC (see
``coord.local_cluster.bench_agent``), co-located with member ``i`` (coord and
the floor: the member itself; ZooKeeper and etcd: a client process
connected to server ``i`` only)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Any

from coord.local_cluster import RpcProcess


class System:
    """Base adapter: subclasses implement start/stop and the member hooks."""

    name = "?"
    #: What a figure of this system includes (printed under the tables).
    includes = ""
    n = 3

    def __init__(self, work: Path, secret: str | None, log_dir: Path) -> None:
        self.work = work
        self.secret = secret
        self.log_dir = log_dir
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-", dir=work))

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this system cannot run here (None if it can)."""
        return None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> System:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def leader_index(self, timeout: float = 30.0) -> int:
        raise NotImplementedError

    def follower_index(self, timeout: float = 30.0) -> int:
        lead = self.leader_index(timeout)
        return next(i for i in range(self.n) if i != lead and self.is_up(i))

    def is_up(self, i: int) -> bool:
        return True

    def caller(self, i: int) -> RpcProcess:
        raise NotImplementedError

    def server_pid(self, i: int) -> int | None:
        raise NotImplementedError

    def kill(self, i: int) -> float:
        """SIGKILL member/server ``i``; returns the wall time of the kill."""
        raise NotImplementedError

    def restart(self, i: int, timeout: float = 120.0) -> float:
        """Start the killed/stopped member ``i`` again (same data); seconds
        until it serves and has caught up."""
        raise NotImplementedError

    def stop_member(self, i: int) -> None:
        raise NotImplementedError

    def catch_up_new(self, timeout: float = 300.0) -> dict[str, Any] | None:
        """Seconds for a new, empty member to hold the whole state (None: n/a)."""
        return None

    def snapshot(self) -> dict[str, Any] | None:
        """Cost of one snapshot of the whole state (None: n/a)."""
        return None


def stop_quietly(proc: RpcProcess | None, timeout: float = 10.0) -> None:
    if proc is not None:
        with contextlib.suppress(Exception):
            proc.stop(timeout=timeout)


class ServerEnsemble(System):
    """A system of three external server processes (ZooKeeper, etcd) and
    the client processes that drive them: the process bookkeeping both
    share."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * 3
        self.logs: list[IO[bytes] | None] = [None] * 3
        self.callers: dict[int, RpcProcess] = {}

    def stop(self) -> None:
        for c in self.callers.values():
            stop_quietly(c)
        self.callers.clear()
        for i in range(3):
            self._terminate(i)

    def _terminate(self, i: int, sig: int = signal.SIGTERM) -> None:
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(10.0)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10.0)
        self.procs[i] = None
        f = self.logs[i]
        if f is not None:
            f.close()
            self.logs[i] = None
