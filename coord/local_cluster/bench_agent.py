"""Child side of the benchmark suite (``python -m benchmarks.suite``): the
timed loops that run *inside* the process that makes the calls.

:class:`BenchOps` implements every workload once, on top of a handful of
primitives (a synchronous write, an asynchronous write with a completion
callback, a read, a re-arming data watch, a bulk load).  :class:`CoordBench`
supplies those primitives for a coord member; the suite's other children
(bare pysyncobj, kazoo against ZooKeeper, etcd's JSON gateway) subclass
:class:`BenchOps` the same way, so every system runs the very same loop and
only the calls under it differ.

All handlers are bounded in count (:data:`~coord.local_cluster.server.MAX_OPS`)
and time (a ``deadline`` in seconds), and are served as ``bench_*`` RPC
methods next to the member's own handlers.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from coord.local_cluster.protocol import _bounded
from coord.local_cluster.server import MAX_IN_FLIGHT, MAX_OPS, percentile

if TYPE_CHECKING:  # pragma: no cover - typing only
    from coord import Coordinator

Done = Callable[[BaseException | None], None]

#: The percentiles every latency summary carries (p99.9 as ``p999``).
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))


def summarize_us(values_us: Sequence[float]) -> dict[str, float]:
    """Nearest-rank p50/p90/p99/p99.9/max/mean, in milliseconds, of a list
    of latencies in microseconds (``{"n": 0}`` when empty)."""
    s = sorted(values_us)
    if not s:
        return {"n": 0}
    out: dict[str, float] = {"n": len(s)}
    for name, p in PERCENTILES:
        out[name] = percentile(s, p) / 1000.0
    out["max"] = s[-1] / 1000.0
    out["mean"] = statistics.fmean(s) / 1000.0
    return out


class NotSupported(NotImplementedError):
    """This system has no equivalent of the workload (reported as n/a)."""


class BenchOps:
    """The workloads, written once over primitives a subclass provides."""

    #: Seconds a single write may take in the failover loop before it is
    #: abandoned and the next one is issued (bounds the measurement error).
    ACK_LOOP_WRITE_TIMEOUT = 0.25

    def __init__(self) -> None:
        self._watch_lock = threading.Lock()
        self._watch_events: list[tuple[str, float]] = []
        self._ack_stop = threading.Event()
        self._ack_thread: threading.Thread | None = None
        self._ack_log: list[tuple[float, float]] = []
        self._ack_errors = 0

    # -- primitives (subclasses) --------------------------------------------

    def prepare(self, kind: str, prefix: str, value: bytes) -> None:
        """Make ``prefix`` usable: the parent of creates, or the node sets rewrite."""
        raise NotSupported

    def write(self, kind: str, path: str, value: bytes) -> None:
        """One synchronous write (``create`` a new node or ``set`` one)."""
        raise NotSupported

    def write_async(self, kind: str, path: str, value: bytes, done: Done) -> None:
        """Start one write; ``done(error_or_None)`` exactly once when it ends."""
        raise NotSupported

    def write_timeout(self, kind: str, path: str, value: bytes, timeout: float) -> None:
        """One write that raises if it has no outcome within ``timeout`` s."""
        raise NotSupported

    def read(self, op: str, path: str) -> Any:
        """One local read: ``get``, ``exists`` or ``get_children``."""
        raise NotSupported

    def watch_data(self, path: str, on_event: Callable[[bytes | None, float], None]) -> None:
        """Keep a data watch on ``path``: on each event call
        ``on_event(value read when re-arming, wall time the callback ran)``."""
        raise NotSupported

    def populate(self, prefix: str, n: int, value: bytes, deadline: float) -> int:
        """Create ``prefix/pNNNNNNNN`` for i < n as fast as the system takes
        them (batched); return how many were created."""
        raise NotSupported

    def status(self) -> dict[str, Any]:
        return {}

    # -- handlers --------------------------------------------------------------

    def handlers(self) -> dict[str, Callable[..., Any]]:
        return {
            "bench_write_latency": self.bench_write_latency,
            "bench_write_load": self.bench_write_load,
            "bench_read_latency": self.bench_read_latency,
            "bench_prepare_reads": self.bench_prepare_reads,
            "bench_watch_arm": self.bench_watch_arm,
            "bench_watch_events": self.bench_watch_events,
            "bench_watch_writes": self.bench_watch_writes,
            "bench_ack_loop_start": self.bench_ack_loop_start,
            "bench_ack_loop_stop": self.bench_ack_loop_stop,
            "bench_populate": self.bench_populate,
            "bench_status": self.status,
            "bench_clock": time.time,
        }

    def bench_write_latency(self, kind: str, n: int, prefix: str, value_size: int = 64,
                            warmup: int = 0, deadline: float = 120.0) -> list[float]:
        """``n`` sequential synchronous writes after ``warmup`` untimed ones;
        per-write latency in µs (fewer if ``deadline`` passes first)."""
        n, warmup = max(0, min(int(n), MAX_OPS)), max(0, min(int(warmup), MAX_OPS))
        value = b"v" * max(0, int(value_size))
        self.prepare(kind, prefix, value)
        end = time.monotonic() + _bounded(deadline)
        for i in range(warmup):
            self.write(kind, f"{prefix}/w{i:08d}" if kind == "create" else prefix, value)
        out: list[float] = []
        for i in range(n):
            if time.monotonic() > end:
                break
            path = f"{prefix}/n{i:08d}" if kind == "create" else prefix
            t0 = time.perf_counter_ns()
            self.write(kind, path, value)
            out.append((time.perf_counter_ns() - t0) / 1000.0)
        return out

    def bench_write_load(self, kind: str, n: int, in_flight: int, prefix: str, value_size: int = 64,
                         deadline: float = 60.0) -> dict[str, Any]:
        """``n`` asynchronous writes with at most ``in_flight`` outstanding,
        stopped at ``deadline`` seconds: ops/s of the successful ones, and
        the latency of each from submission to completion."""
        n = max(0, min(int(n), MAX_OPS))
        in_flight = max(1, min(int(in_flight), MAX_IN_FLIGHT))
        value = b"v" * max(0, int(value_size))
        self.prepare(kind, prefix, value)
        window = threading.BoundedSemaphore(in_flight)
        lock = threading.Lock()
        all_done = threading.Event()
        lat_us: list[float] = []
        counts = {"completed": 0, "errors": 0, "submitted": 0}
        error_types: dict[str, int] = {}
        if n == 0:
            all_done.set()

        def make_done(t0: int) -> Done:
            def done(error: BaseException | None) -> None:
                t1 = time.perf_counter_ns()
                with lock:
                    counts["completed"] += 1
                    if error is None:
                        lat_us.append((t1 - t0) / 1000.0)
                    else:
                        counts["errors"] += 1
                        name = type(error).__name__
                        error_types[name] = error_types.get(name, 0) + 1
                    finished = counts["completed"] == n
                window.release()
                if finished:
                    all_done.set()
            return done

        start = time.perf_counter()
        end = time.monotonic() + _bounded(deadline)
        for i in range(n):
            # The deadline is checked on every submission: a submit that
            # blocks (the system's own back-pressure) must not extend the run.
            if time.monotonic() >= end or not window.acquire(timeout=max(0.0, end - time.monotonic())):
                break
            counts["submitted"] += 1
            done = make_done(time.perf_counter_ns())
            try:
                self.write_async(kind, f"{prefix}/a{i:08d}" if kind == "create" else prefix, value, done)
            except Exception as exc:  # noqa: BLE001 - counted as an error
                done(exc)
        all_done.wait(max(0.0, end - time.monotonic()))
        elapsed = time.perf_counter() - start
        with lock:
            completed, errors, lats = counts["completed"], counts["errors"], list(lat_us)
        ok = completed - errors
        return {
            "n": n, "in_flight": in_flight, "submitted": counts["submitted"], "completed": completed,
            "errors": errors, "error_types": error_types, "incomplete": counts["submitted"] - completed,
            "seconds": elapsed, "ops_per_sec": ok / elapsed if elapsed > 0 else 0.0,
            "latency": summarize_us(lats),
        }

    def bench_prepare_reads(self, path: str, children: int = 10, value_size: int = 64) -> None:
        """A node with ``value_size`` bytes and ``children`` children to read."""
        value = b"v" * max(0, int(value_size))
        self.prepare("set", path, value)
        self.prepare("create", path, value)
        for i in range(max(0, min(int(children), 1000))):
            self.write("create", f"{path}/c{i:04d}", value)

    def bench_read_latency(self, op: str, n: int, path: str, warmup: int = 100,
                           deadline: float = 60.0) -> dict[str, Any]:
        """``n`` timed sequential reads (µs each), then the same number
        untimed for reads/s (so the timer's own cost is not in the rate)."""
        n = max(1, min(int(n), MAX_OPS))
        read = self.read
        for _ in range(max(0, min(int(warmup), MAX_OPS))):
            read(op, path)
        end = time.monotonic() + _bounded(deadline)
        lat: list[float] = []
        clock = time.perf_counter_ns
        for _ in range(n):
            t0 = clock()
            read(op, path)
            lat.append((clock() - t0) / 1000.0)
            if len(lat) % 1024 == 0 and time.monotonic() > end:
                break
        count = len(lat)
        t0 = clock()
        for _ in range(count):
            read(op, path)
        elapsed = (clock() - t0) / 1e9
        return {"latency": summarize_us(lat), "reads_per_sec": count / elapsed if elapsed > 0 else 0.0}

    def bench_watch_arm(self, path: str, value_size: int = 64) -> None:
        """Start logging data-watch events on ``path`` (value, wall time)."""
        self.prepare("set", path, b"v" * max(0, int(value_size)))

        def on_event(value: bytes | None, t: float) -> None:
            with self._watch_lock:
                self._watch_events.append(((value or b"").split(b":", 1)[0].decode("ascii", "replace"), t))

        self.watch_data(path, on_event)

    def bench_watch_events(self) -> list[tuple[str, float]]:
        with self._watch_lock:
            return list(self._watch_events)

    def bench_watch_writes(self, path: str, n: int, gap: float = 0.01, value_size: int = 64,
                           deadline: float = 60.0) -> list[tuple[str, float, float]]:
        """``n`` sets of ``path``, ``gap`` s apart, each value tagged
        ``wNNNN:``; returns ``(tag, wall time issued, wall time acked)``."""
        n = max(0, min(int(n), MAX_OPS))
        pad = b"v" * max(0, int(value_size) - 6)
        end = time.monotonic() + _bounded(deadline)
        out: list[tuple[str, float, float]] = []
        for i in range(n):
            if time.monotonic() > end:
                break
            tag = f"w{i:04d}"
            t0 = time.time()
            self.write("set", path, tag.encode() + b":" + pad)
            out.append((tag, t0, time.time()))
            time.sleep(max(0.0, float(gap)))
        return out

    def bench_ack_loop_start(self, kind: str, prefix: str, value_size: int = 64,
                             per_write_timeout: float | None = None, max_seconds: float = 120.0) -> None:
        """Write sequentially in a background thread until stopped (or
        ``max_seconds``), logging ``(issued, acked)`` wall times of every
        acknowledged write; failed or timed-out writes are counted and the
        next write is issued at once."""
        if self._ack_thread is not None and self._ack_thread.is_alive():
            raise RuntimeError("ack loop already running")
        value = b"v" * max(0, int(value_size))
        self.prepare(kind, prefix, value)
        timeout = self.ACK_LOOP_WRITE_TIMEOUT if per_write_timeout is None else float(per_write_timeout)
        self._ack_stop.clear()
        self._ack_log = []
        self._ack_errors = 0
        end = time.monotonic() + _bounded(max_seconds)

        def loop() -> None:
            i = 0
            while not self._ack_stop.is_set() and time.monotonic() < end:
                i += 1
                t0 = time.time()
                try:
                    self.write_timeout(kind, f"{prefix}/f{i:08d}" if kind == "create" else prefix, value, timeout)
                except Exception:  # noqa: BLE001 - counted; the loop goes on
                    self._ack_errors += 1
                    time.sleep(0.001)
                    continue
                self._ack_log.append((t0, time.time()))

        self._ack_thread = threading.Thread(target=loop, name="bench-ack-loop", daemon=True)
        self._ack_thread.start()

    def bench_ack_loop_stop(self, since: float = 0.0) -> dict[str, Any]:
        """Stop the loop; return the acks issued at or after wall time
        ``since`` (first few) and the error count."""
        self._ack_stop.set()
        if self._ack_thread is not None:
            self._ack_thread.join(5.0)
        acks = [a for a in self._ack_log if a[0] >= since]
        return {"acks": acks[:20], "total_acks": len(self._ack_log), "errors": self._ack_errors}

    def bench_ack_first(self, since: float) -> tuple[float, float] | None:
        return next((a for a in list(self._ack_log) if a[0] >= since), None)

    def bench_populate(self, prefix: str, n: int, value_size: int = 64, deadline: float = 600.0) -> dict[str, Any]:
        """Create ``n`` znodes under ``prefix`` (batched); seconds taken."""
        n = max(0, min(int(n), MAX_OPS))
        value = b"v" * max(0, int(value_size))
        self.prepare("create", prefix, value)
        t0 = time.perf_counter()
        created = self.populate(prefix, n, value, _bounded(deadline))
        return {"created": created, "seconds": time.perf_counter() - t0}


class CoordBench(BenchOps):
    """:class:`BenchOps` over one coord member's public API."""

    def __init__(self, member: Coordinator) -> None:
        super().__init__()
        self.member = member

    def handlers(self) -> dict[str, Callable[..., Any]]:
        table = super().handlers()
        table.update({
            "bench_ack_first": self.bench_ack_first,
            "bench_snapshot": self.bench_snapshot,
            "bench_add_member": self.bench_add_member,
        })
        return table

    def prepare(self, kind: str, prefix: str, value: bytes) -> None:
        if kind == "create":
            self.member.ensure_path(prefix)
        elif kind == "set":
            if self.member.exists(prefix) is None:
                self.member.create(prefix, value, makepath=True)
        else:
            raise ValueError(f"kind must be 'create' or 'set', got {kind!r}")

    def write(self, kind: str, path: str, value: bytes) -> None:
        if kind == "create":
            self.member.create(path, value)
        else:
            self.member.set(path, value)

    def write_async(self, kind: str, path: str, value: bytes, done: Done) -> None:
        m = self.member
        fut = m.create_async(path, value) if kind == "create" else m.set_async(path, value)
        fut.add_done_callback(lambda f: done(f.exception()))

    def write_timeout(self, kind: str, path: str, value: bytes, timeout: float) -> None:
        m = self.member
        fut = m.create_async(path, value) if kind == "create" else m.set_async(path, value)
        fut.result(timeout=timeout)

    def read(self, op: str, path: str) -> Any:
        m = self.member
        if op == "get":
            return m.get(path)
        if op == "exists":
            return m.exists(path)
        if op == "get_children":
            return m.get_children(path)
        raise ValueError(f"unknown read {op!r}")

    def watch_data(self, path: str, on_event: Callable[[bytes | None, float], None]) -> None:
        m = self.member

        def callback(event: object) -> None:
            t = time.time()
            try:
                data, _ = m.get(path, watch=callback)
            except Exception:  # noqa: BLE001 - a deleted node ends the log
                data = None
            on_event(data, t)

        m.get(path, watch=callback)

    def populate(self, prefix: str, n: int, value: bytes, deadline: float) -> int:
        # Transactions of up to 500 creates, at most 8 outstanding.
        batch, window = 500, threading.BoundedSemaphore(8)
        end = time.monotonic() + deadline
        futures: list[tuple[int, Any]] = []
        for start in range(0, n, batch):
            if not window.acquire(timeout=max(0.0, end - time.monotonic())):
                break
            txn = self.member.transaction()
            count = min(batch, n - start)
            for i in range(start, start + count):
                txn.create(f"{prefix}/p{i:08d}", value)
            fut = txn.commit_async()
            fut.add_done_callback(lambda _f: window.release())
            futures.append((count, fut))
        created = 0
        for count, fut in futures:  # counted here, not in the callbacks (no race with them)
            try:
                if fut.exception(timeout=max(0.0, end - time.monotonic())) is None:
                    created += count
            except Exception:  # noqa: BLE001 - no outcome by the deadline: not created
                break
        return created

    def status(self) -> dict[str, Any]:
        return self.member.status().to_dict()

    def bench_snapshot(self) -> dict[str, Any]:
        """Time one serialisation of this replica's tree (what a Raft
        snapshot costs before compression and disk), and its size."""
        inner = self.member._member  # the benchmark may look inside
        t0 = time.perf_counter()
        data = inner._snapshot()
        seconds = time.perf_counter() - t0
        return {"seconds": seconds, "bytes": len(data)}

    def bench_add_member(self, address: str, timeout: float = 60.0) -> None:
        """Add the voter ``address`` (benchmark of a new member's catch-up)."""
        self.member.add_member(address, timeout=timeout)


def finite_positive(value: Any) -> bool:
    """True for a finite number > 0 (the smoke test's only check)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
