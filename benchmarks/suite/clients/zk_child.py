"""Caller process for ZooKeeper: kazoo connected to exactly one server.

``python -m benchmarks.suite.clients.zk_child --hosts 127.0.0.1:PORT``;
run by the suite, never by hand.  Each figure measured here includes kazoo
(pure Python: request encoding, its connection thread, the hand-off to the
caller) plus the loopback round trip to the server and the server's work.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient

from benchmarks.suite.clients._child import serve
from coord.local_cluster.bench_agent import BenchOps, Done


class KazooBench(BenchOps):
    def __init__(self, hosts: str) -> None:
        super().__init__()
        self.client = KazooClient(hosts=hosts, timeout=10.0)
        self.client.start(timeout=20.0)

    def prepare(self, kind: str, prefix: str, value: bytes) -> None:
        self.client.ensure_path(prefix)
        if kind == "set":
            self.client.set(prefix, value)

    def write(self, kind: str, path: str, value: bytes) -> None:
        if kind == "create":
            self.client.create(path, value)
        else:
            self.client.set(path, value)

    def write_async(self, kind: str, path: str, value: bytes, done: Done) -> None:
        c = self.client
        res = c.create_async(path, value) if kind == "create" else c.set_async(path, value)

        def finished(r: Any) -> None:
            done(r.exception)

        res.rawlink(finished)

    def write_timeout(self, kind: str, path: str, value: bytes, timeout: float) -> None:
        c = self.client
        res = c.create_async(path, value) if kind == "create" else c.set_async(path, value)
        res.get(timeout=timeout)

    def read(self, op: str, path: str) -> Any:
        c = self.client
        if op == "get":
            return c.get(path)
        if op == "exists":
            return c.exists(path)
        if op == "get_children":
            return c.get_children(path)
        raise ValueError(f"unknown read {op!r}")

    def watch_data(self, path: str, on_event: Callable[[bytes | None, float], None]) -> None:
        c = self.client

        def callback(event: Any) -> None:
            t = time.time()
            # kazoo runs watchers on its callback thread; re-arm from there.
            try:
                data, _ = c.get(path, watch=callback)
            except Exception:  # noqa: BLE001 - the log just ends
                data = None
            on_event(data, t)

        c.get(path, watch=callback)

    def populate(self, prefix: str, n: int, value: bytes, deadline: float) -> int:
        # multi() of up to 500 creates, at most 8 outstanding.
        batch, window = 500, threading.BoundedSemaphore(8)
        end = time.monotonic() + deadline
        results: list[tuple[int, Any]] = []
        for start in range(0, n, batch):
            if not window.acquire(timeout=max(0.0, end - time.monotonic())):
                break
            txn = self.client.transaction()
            count = min(batch, n - start)
            for i in range(start, start + count):
                txn.create(f"{prefix}/p{i:08d}", value)
            res = txn.commit_async()
            res.rawlink(lambda _r: window.release())
            results.append((count, res))
        created = 0
        for count, res in results:  # counted here, not in the callbacks (no race with them)
            left = end - time.monotonic()
            if left <= 0 or not res.wait(left):
                break
            if res.exception is None and not any(isinstance(x, Exception) for x in (res.value or [])):
                created += count
        return created

    def status(self) -> dict[str, Any]:
        return {"state": self.client.state, "pid": os.getpid()}


def _close(ops: BenchOps) -> None:
    assert isinstance(ops, KazooBench)
    ops.client.stop()
    ops.client.close()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--hosts", required=True)
    args = p.parse_args()
    return serve(lambda: KazooBench(args.hosts), _close)


if __name__ == "__main__":
    _code = main()
    sys.stderr.flush()
    os._exit(_code)
