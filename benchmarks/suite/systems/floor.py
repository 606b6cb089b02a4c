"""The floor: three bare-pysyncobj processes (``benchmarks/_pysyncobj_floor.py``)
with coord's Raft settings and the same secret; one ``@replicated`` counter
bump per write, no znode tree, no sessions.  In memory only (pysyncobj's
journal is never fsynced either).  The caller is the member itself."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from coord.local_cluster import LOOPBACK, RpcProcess, child_env, free_ports, start_all, wait_until

from . import System, stop_quietly

FLOOR_SCRIPT = Path(__file__).resolve().parents[2] / "_pysyncobj_floor.py"


class FloorSystem(System):
    name = "floor"
    includes = "in-process pysyncobj call inside a member (Raft round trip, Fernet, apply, hand-offs)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.members: list[RpcProcess] = []

    def start(self) -> None:
        addresses = [f"{LOOPBACK}:{p}" for p in free_ports(3)]
        for i, address in enumerate(addresses):
            argv = [sys.executable, str(FLOOR_SCRIPT), "--address", address,
                    "--peers", ",".join(a for a in addresses if a != address),
                    "--start-timeout", "60", "--conf-json", json.dumps({})]
            self.members.append(RpcProcess(argv, name=f"floor-{i}", env=child_env(self.secret),
                                           log_path=self.log_dir / "floor" / f"floor-{i}.log"))
        start_all(self.members, 65.0, on_failure=self.stop)

    def stop(self) -> None:
        for m in self.members:
            m.close_stdin()
        for m in self.members:
            stop_quietly(m, 5.0)

    def leader_index(self, timeout: float = 30.0) -> int:
        def find() -> int | None:
            for i, m in enumerate(self.members):
                if m.ready and m.call("status", timeout=2.0).get("role") == "leader":
                    return i + 1
            return None

        return wait_until(find, timeout, what="a pysyncobj leader") - 1

    def is_up(self, i: int) -> bool:
        return self.members[i].ready

    def caller(self, i: int) -> RpcProcess:
        return self.members[i]

    def server_pid(self, i: int) -> int | None:
        return self.members[i].pid

    def kill(self, i: int) -> float:
        return self.members[i].kill()

    def stop_member(self, i: int) -> None:
        self.members[i].stop()

    def restart(self, i: int, timeout: float = 120.0) -> float:
        t0 = time.monotonic()
        self.members[i].start(timeout)
        return time.monotonic() - t0
