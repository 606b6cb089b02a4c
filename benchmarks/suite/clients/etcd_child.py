"""Caller process for etcd 3.4: its HTTP/JSON gRPC gateway (``/v3/kv/put``,
``/v3/kv/range``, ``/v3/kv/txn``, ``/v3/watch``) on one member, with
persistent (keep-alive) ``http.client`` connections, one per thread.

No Python etcd client is used: the PyPI ones (``etcd3``, ``python-etcd3``)
are unmaintained and pin old grpc/protobuf releases; the gateway is part of
etcd itself.  Each figure includes JSON + base64 encoding, the HTTP round
trip, grpc-gateway's translation and etcd's own work.  ``create`` is a put of
a new key (etcd has no create-only put short of a txn); reads are
``serializable`` ranges (served by the member, no quorum: the equivalent of a
ZooKeeper read); ``get_children`` is a keys-only prefix range.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from benchmarks.suite.clients._child import serve
from coord.local_cluster.bench_agent import BenchOps, Done

#: etcd's default --max-txn-ops.
MAX_TXN_OPS = 128


def _b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


class EtcdBench(BenchOps):
    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.host, self.port = host, port
        self._local = threading.local()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._pool_lock = threading.Lock()
        self.call("/v3/maintenance/status", {})

    def _conn(self, timeout: float | None) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout or 30.0)
            self._local.conn = conn
        return conn

    def call(self, path: str, body: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        conn = self._conn(timeout)
        if timeout is not None and conn.sock is not None:
            conn.sock.settimeout(timeout)
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
        except Exception:
            conn.close()
            self._local.conn = None
            raise
        if resp.status != 200:
            raise RuntimeError(f"etcd {path}: HTTP {resp.status}: {data[:200]!r}")
        out = json.loads(data)
        if "error" in out:
            raise RuntimeError(f"etcd {path}: {out['error']}")
        return out  # type: ignore[no-any-return]

    def prepare(self, kind: str, prefix: str, value: bytes) -> None:
        if kind == "set":
            self.call("/v3/kv/put", {"key": _b64(prefix), "value": _b64(value)})

    def write(self, kind: str, path: str, value: bytes) -> None:
        self.call("/v3/kv/put", {"key": _b64(path), "value": _b64(value)})

    def write_timeout(self, kind: str, path: str, value: bytes, timeout: float) -> None:
        self.call("/v3/kv/put", {"key": _b64(path), "value": _b64(value)}, timeout=timeout)

    def _executor(self, size: int) -> concurrent.futures.ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None or self._pool_size < size:
                if self._pool is not None:
                    self._pool.shutdown(wait=False)
                self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=size, thread_name_prefix="etcd")
                self._pool_size = size
            return self._pool

    def bench_write_load(self, kind: str, n: int, in_flight: int, prefix: str, value_size: int = 64,
                         deadline: float = 60.0) -> dict[str, Any]:
        # One thread (and connection) per outstanding request, up to 256;
        # beyond that the excess waits in the executor's queue.
        self._executor(max(1, min(int(in_flight), 256)))
        return super().bench_write_load(kind, n, in_flight, prefix, value_size, deadline)

    def write_async(self, kind: str, path: str, value: bytes, done: Done) -> None:
        pool = self._executor(1)

        def run() -> None:
            try:
                self.write(kind, path, value)
            except Exception as exc:  # noqa: BLE001 - reported through done
                done(exc)
                return
            done(None)

        pool.submit(run)

    def read(self, op: str, path: str) -> Any:
        if op == "get":
            return self.call("/v3/kv/range", {"key": _b64(path), "serializable": True})
        if op == "exists":
            return self.call("/v3/kv/range", {"key": _b64(path), "serializable": True, "count_only": True})
        if op == "get_children":
            return self.call("/v3/kv/range", {"key": _b64(path + "/"), "range_end": _b64(path + "0"),
                                              "serializable": True, "keys_only": True})
        raise ValueError(f"unknown read {op!r}")

    def watch_data(self, path: str, on_event: Callable[[bytes | None, float], None]) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=None)
        conn.request("POST", "/v3/watch", json.dumps({"create_request": {"key": _b64(path)}}),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        started = threading.Event()

        def reader() -> None:
            try:
                while True:
                    line = resp.readline()
                    if not line:
                        return
                    t = time.time()
                    msg = json.loads(line)
                    result = msg.get("result", {})
                    if result.get("created"):
                        started.set()
                    for ev in result.get("events", []) or []:
                        value = base64.b64decode(ev.get("kv", {}).get("value", ""))
                        on_event(value, t)
            except Exception:  # noqa: BLE001 - stream closed at exit
                return

        threading.Thread(target=reader, name="etcd-watch", daemon=True).start()
        started.wait(10.0)

    def populate(self, prefix: str, n: int, value: bytes, deadline: float) -> int:
        pool = self._executor(8)
        created = [0]
        lock = threading.Lock()
        end = time.monotonic() + deadline
        v = _b64(value)

        def txn(start: int, count: int) -> None:
            if time.monotonic() > end:
                return
            ops = [{"request_put": {"key": _b64(f"{prefix}/p{i:08d}"), "value": v}}
                   for i in range(start, start + count)]
            self.call("/v3/kv/txn", {"success": ops})
            with lock:
                created[0] += count

        futures = [pool.submit(txn, s, min(MAX_TXN_OPS, n - s)) for s in range(0, n, MAX_TXN_OPS)]
        concurrent.futures.wait(futures, timeout=max(0.0, end - time.monotonic()))
        return created[0]

    def status(self) -> dict[str, Any]:
        return self.call("/v3/maintenance/status", {})


def _close(ops: BenchOps) -> None:
    assert isinstance(ops, EtcdBench)
    if ops._pool is not None:
        ops._pool.shutdown(wait=False, cancel_futures=True)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True, help="host:port of one member's client URL")
    args = p.parse_args()
    host, port = args.endpoint.rsplit(":", 1)
    return serve(lambda: EtcdBench(host, int(port)), _close)


if __name__ == "__main__":
    _code = main()
    sys.stderr.flush()
    os._exit(_code)
