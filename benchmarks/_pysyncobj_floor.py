"""Bare-pysyncobj child for ``commit_latency.py``: the floor coord is held to.

One process of a 3-process pysyncobj cluster that embeds a ``SyncObj`` with a
single ``@replicated`` method: bump a counter and chain a blake2b hash over
the command (so replicas can be checked for identical state afterwards).  It
uses the settings that matter for latency the way coord does
(``appendEntriesUseBatch=False``, explicit ``bindAddress``, ``useFork=False``,
the same secret on/off), plus any overrides the parent passes with
``--conf-json``, and serves the same JSON-lines RPC as a coord member
(``coord.local_cluster.RpcServer``), so the timed loops run inside this
process exactly as they do inside a coord member.

Run by the benchmark, not by hand::

    python benchmarks/_pysyncobj_floor.py --address 127.0.0.1:7001 --peers 127.0.0.1:7002,127.0.0.1:7003
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjException, replicated

from coord.local_cluster import (
    MAX_OPS,
    PARENT_PID_ENV,
    SECRET_ENV,
    RpcServer,
    _decode_secret,
    _set_parent_death_signal,
    configure_child_logging,
    run_throughput,
    take_stdout,
)
from coord.local_cluster.bench_agent import BenchOps

logger = logging.getLogger("coord.benchmarks.pysyncobj_floor")

_ROLES = {0: "follower", 1: "candidate", 2: "leader"}

#: The rest of the SyncObjConf that coord's replication adapter uses
#: (coord/replication.py, RaftTiming defaults), so the two clusters differ only
#: by what coord adds on top.  None of these timers is on the path of a
#: steady-state unbatched commit; they are mirrored to keep elections and
#: queueing identical.  ``--conf-json`` overrides any of them.
COORD_LIKE_CONF: dict[str, Any] = {
    "autoTickPeriod": 0.05,
    "appendEntriesPeriod": 0.1,
    "raftMinTimeout": 0.8,
    "raftMaxTimeout": 1.6,
    "leaderFallbackTimeout": 0.7,
    "connectionTimeout": 3.5,
    "connectionRetryTime": 1.0,
    "appendEntriesBatchSizeBytes": 2 * (1 << 21),
    "commandsQueueSize": 100_000,
    "commandsWaitLeader": False,
    "dynamicMembershipChange": False,
}


class Counter(SyncObj):  # type: ignore[misc]  # pysyncobj is untyped
    """The whole replicated state: a counter and a hash chain."""

    def __init__(self, address: str, peers: Sequence[str], conf: SyncObjConf) -> None:
        super().__init__(address, list(peers), conf)
        self._count = 0
        self._digest = b"\0" * 16

    @replicated  # type: ignore[untyped-decorator]
    def bump(self, command: bytes) -> int:
        """Apply one command: count it and fold it into the hash chain."""
        self._count += 1
        self._digest = hashlib.blake2b(self._digest + command, digest_size=16).digest()
        return self._count

    def state(self) -> dict[str, Any]:
        return {"count": self._count, "digest": self._digest.hex()}


def _command(kind: str, path: str, value: bytes) -> bytes:
    """A ~100 B command shaped like a coord write (op, path, 64 B value)."""
    return kind.encode() + b"\0" + path.encode() + b"\0" + value


class FloorAgent:
    """RPC handlers around the Counter (same names/semantics as the coord
    member's ``time_writes`` / ``throughput``)."""

    def __init__(self, obj: Counter, op_timeout: float) -> None:
        self.obj = obj
        self.op_timeout = op_timeout

    def handlers(self) -> dict[str, Callable[..., Any]]:
        return {
            "status": self.status,
            "state": self.obj.state,
            "time_writes": self.time_writes,
            "throughput": self.throughput,
        }

    def status(self) -> dict[str, Any]:
        st = self.obj.getStatus()
        leader = st.get("leader")
        return {
            "role": _ROLES.get(int(st.get("state", 0)), str(st.get("state"))),
            "leader": str(leader) if leader is not None else None,
            "term": st.get("raft_term"),
            "commit_idx": st.get("commit_idx"),
            "last_applied": st.get("last_applied"),
            "ready": self.obj.isReady(),
        }

    def _sync_bump(self, command: bytes) -> None:
        try:
            self.obj.bump(command, sync=True, timeout=self.op_timeout)
        except SyncObjException as exc:
            raise RuntimeError(f"pysyncobj write failed: {exc.errorCode}") from None

    def time_writes(self, kind: str, n: int, prefix: str, value_size: int = 64,
                    warmup: int = 0) -> list[float]:
        """``n`` sequential synchronous commands from this process, µs each."""
        n = max(0, min(int(n), MAX_OPS))
        value = b"v" * max(0, int(value_size))
        for i in range(max(0, min(int(warmup), MAX_OPS))):
            self._sync_bump(_command(kind, f"{prefix}/w{i:08d}", value))
        out: list[float] = []
        for i in range(n):
            cmd = _command(kind, f"{prefix}/n{i:08d}" if kind == "create" else prefix, value)
            t0 = time.perf_counter_ns()
            self._sync_bump(cmd)
            out.append((time.perf_counter_ns() - t0) / 1000.0)
        return out

    def throughput(self, kind: str, n: int, in_flight: int, prefix: str,
                   value_size: int = 64, deadline: float = 120.0) -> dict[str, Any]:
        """``n`` commands with callbacks, at most ``in_flight`` outstanding."""
        value = b"v" * max(0, int(value_size))

        def submit(i: int, done: Callable[[BaseException | None], None]) -> None:
            def callback(result: Any, error: int) -> None:
                done(None if error == FAIL_REASON.SUCCESS else RuntimeError(f"fail reason {error}"))

            path = f"{prefix}/a{i:08d}" if kind == "create" else prefix
            self.obj.bump(_command(kind, path, value), callback=callback)

        return run_throughput(submit, n, in_flight, deadline)


class FloorBench(BenchOps):
    """The suite's workloads (``bench_*``) over the bare counter: writes
    only; reads, watches and bulk loads have no equivalent here (n/a)."""

    def __init__(self, obj: Counter, op_timeout: float) -> None:
        super().__init__()
        self.obj = obj
        self.op_timeout = op_timeout

    def handlers(self) -> dict[str, Callable[..., Any]]:
        table = super().handlers()
        table["bench_ack_first"] = self.bench_ack_first
        return table

    def prepare(self, kind: str, prefix: str, value: bytes) -> None:
        return None

    def write(self, kind: str, path: str, value: bytes) -> None:
        self.write_timeout(kind, path, value, self.op_timeout)

    def write_timeout(self, kind: str, path: str, value: bytes, timeout: float) -> None:
        try:
            self.obj.bump(_command(kind, path, value), sync=True, timeout=timeout)
        except SyncObjException as exc:
            raise RuntimeError(f"pysyncobj write failed: {exc.errorCode}") from None

    def write_async(self, kind: str, path: str, value: bytes, done: Callable[[BaseException | None], None]) -> None:
        def callback(result: Any, error: int) -> None:
            done(None if error == FAIL_REASON.SUCCESS else RuntimeError(f"fail reason {error}"))

        self.obj.bump(_command(kind, path, value), callback=callback)

    def status(self) -> dict[str, Any]:
        return {"count": self.obj.state()["count"]}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", required=True)
    p.add_argument("--peers", required=True)
    p.add_argument("--conf-json", default="{}", help="extra SyncObjConf settings (JSON object)")
    p.add_argument("--start-timeout", type=float, default=20.0)
    p.add_argument("--op-timeout", type=float, default=10.0)
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)

    configure_child_logging(args.log_level)
    parent = os.environ.get(PARENT_PID_ENV)
    _set_parent_death_signal(int(parent) if parent else None)
    out_fd = take_stdout()

    secret_text = os.environ.pop(SECRET_ENV, None)
    conf_kwargs: dict[str, Any] = {
        "appendEntriesUseBatch": False,
        "bindAddress": args.address,
        "useFork": False,
        "password": _decode_secret(secret_text) if secret_text else None,
        **COORD_LIKE_CONF,
    }
    conf_kwargs.update(json.loads(args.conf_json))
    obj = Counter(args.address, [x for x in args.peers.split(",") if x], SyncObjConf(**conf_kwargs))
    agent = FloorAgent(obj, args.op_timeout)
    handlers = agent.handlers()
    handlers.update(FloorBench(obj, args.op_timeout).handlers())  # the benchmark suite's loops
    server = RpcServer(handlers, out_fd)
    signal.signal(signal.SIGTERM, lambda *_: server.request_stop())
    server.start_reading()
    code = 0
    try:
        t0 = time.monotonic()
        end = t0 + args.start_timeout
        while not obj.isReady() and time.monotonic() < end and not server.stopping.is_set():
            time.sleep(0.01)
        if not obj.isReady():
            server.send({"event": "failed", "error": {
                "type": "TimeoutError", "message": f"not ready after {args.start_timeout}s"}})
            code = 1
        else:
            server.send({"event": "ready", "pid": os.getpid(), "address": args.address,
                         "start_seconds": round(time.monotonic() - t0, 3)})
            server.serve()
    finally:
        server.close()
        done = threading.Event()

        def destroy() -> None:
            obj.destroy()
            done.set()

        threading.Thread(target=destroy, daemon=True).start()
        done.wait(5.0)
    return code


if __name__ == "__main__":
    _code = main()
    logging.shutdown()
    sys.stderr.flush()
    os._exit(_code)
