"""Child side, whatever the child runs: the RPC serving loop and the
process plumbing every child needs.

:class:`RpcServer` is the reusable serving loop; :func:`take_stdout`,
:func:`configure_child_logging` and :func:`_set_parent_death_signal` set a
child up; :func:`run_throughput` and :func:`percentile` are the measurement
helpers.  The coord member child (:mod:`coord.local_cluster.agent`) and the
pysyncobj benchmark child (``benchmarks/_pysyncobj_floor.py``) are both
built on this module, so both are driven the same way.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from coord.local_cluster.protocol import _bounded, _dumps, _error_reply, decode_value, encode_value

logger = logging.getLogger(__name__)

#: Hard caps that keep every helper bounded whatever the caller asks for
#: (waits are capped by :data:`~coord.local_cluster.protocol.MAX_WAIT`).
MAX_OPS = 1_000_000
MAX_IN_FLIGHT = 100_000


class RpcServer:
    """Child side of the RPC: reads requests from stdin, runs each handler on
    a small thread pool (so a blocking call such as ``wait_watch_event`` does
    not hold up the others) and writes replies to ``out_fd``.

    :meth:`serve` returns when stdin reaches EOF (the parent closed it or
    died), when :meth:`request_stop` is called (SIGTERM), or never blocks
    longer than the caller's checks in between.
    """

    def __init__(self, handlers: Mapping[str, Callable[..., Any]], out_fd: int, *,
                 max_workers: int = 16) -> None:
        self.handlers = dict(handlers)
        self._out_fd = out_fd
        self._out_lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_workers,
                                                           thread_name_prefix="rpc")
        self._reader = threading.Thread(target=self._read_stdin, name="rpc-stdin", daemon=True)

    def send(self, message: Mapping[str, Any]) -> None:
        """Write one JSON line to the parent (thread-safe; errors ignored if
        the parent is gone)."""
        data = _dumps(message)
        with self._out_lock:
            try:
                view = memoryview(data)
                while view:
                    written = os.write(self._out_fd, view)
                    view = view[written:]
            except OSError:
                self._stop.set()

    def start_reading(self) -> None:
        """Start the stdin reader (before the member starts, so a parent that
        dies during a slow start is noticed)."""
        self._reader.start()

    @property
    def stopping(self) -> threading.Event:
        """Set once the server should exit (EOF, SIGTERM, or a stop call)."""
        return self._stop

    def request_stop(self) -> None:
        self._stop.set()

    def serve(self) -> None:
        """Block until :attr:`stopping` is set."""
        if not self._reader.is_alive() and not self._stop.is_set():
            with contextlib.suppress(RuntimeError):
                self._reader.start()
        while not self._stop.wait(0.5):
            pass

    def close(self) -> None:
        """Stop taking requests and cancel queued ones (running handlers are
        abandoned: the process exits right after)."""
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _read_stdin(self) -> None:
        stdin = sys.stdin.buffer
        try:
            for raw in stdin:
                if self._stop.is_set():
                    break
                try:
                    req = json.loads(raw)
                except ValueError:
                    logger.warning("ignoring unparsable request line: %r", raw[:200])
                    continue
                try:
                    self._pool.submit(self._handle, req)
                except RuntimeError:  # pool shut down
                    break
        except (OSError, ValueError):
            pass
        logger.info("stdin closed: stopping")
        self._stop.set()

    def _handle(self, req: Mapping[str, Any]) -> None:
        req_id = req.get("id")
        method = str(req.get("method", ""))
        try:
            fn = self.handlers.get(method)
            if fn is None:
                raise AttributeError(f"method {method!r} is not served (allowed: {sorted(self.handlers)})")
            args = [decode_value(a) for a in req.get("args", [])]
            kwargs = {k: decode_value(v) for k, v in req.get("kwargs", {}).items()}
            result = fn(*args, **kwargs)
            self.send({"id": req_id, "ok": True, "result": encode_value(result)})
        except BaseException as exc:  # noqa: BLE001 - every error goes back to the caller
            logger.debug("%s failed: %r", method, exc)
            self.send({"id": req_id, "ok": False, "error": _error_reply(exc)})


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (p in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def run_throughput(
    submit: Callable[[int, Callable[[BaseException | None], None]], None],
    n: int,
    in_flight: int,
    deadline: float,
) -> dict[str, Any]:
    """Drive ``n`` asynchronous operations with at most ``in_flight``
    outstanding and report what completed within ``deadline`` seconds.

    ``submit(i, done)`` must start operation ``i`` and arrange for
    ``done(error_or_None)`` to be called exactly once when it finishes.
    Shared by the coord member and the bare-pysyncobj benchmark child so both
    are driven the same way.
    """
    n = max(0, min(int(n), MAX_OPS))
    in_flight = max(1, min(int(in_flight), MAX_IN_FLIGHT))
    window = threading.BoundedSemaphore(in_flight)
    lock = threading.Lock()
    all_done = threading.Event()
    counts = {"completed": 0, "errors": 0, "submitted": 0}
    error_types: dict[str, int] = {}
    if n == 0:
        all_done.set()

    def done(error: BaseException | None) -> None:
        with lock:
            counts["completed"] += 1
            if error is not None:
                counts["errors"] += 1
                name = type(error).__name__
                error_types[name] = error_types.get(name, 0) + 1
            finished = counts["completed"] == n
        window.release()
        if finished:
            all_done.set()

    start = time.perf_counter()
    end = time.monotonic() + _bounded(deadline)
    for i in range(n):
        if not window.acquire(timeout=max(0.0, end - time.monotonic())):
            break
        counts["submitted"] += 1
        try:
            submit(i, done)
        except Exception as exc:  # noqa: BLE001 - counted, reported
            done(exc)
    all_done.wait(max(0.0, end - time.monotonic()))
    elapsed = time.perf_counter() - start
    with lock:
        completed, errors = counts["completed"], counts["errors"]
    ok = completed - errors
    return {
        "n": n,
        "in_flight": in_flight,
        "submitted": counts["submitted"],
        "completed": completed,
        "errors": errors,
        "error_types": dict(error_types),
        "incomplete": n - completed,
        "seconds": elapsed,
        "ops_per_sec": ok / elapsed if elapsed > 0 else 0.0,
    }


def _set_parent_death_signal(expected_parent: int | None) -> None:
    """Linux: have the kernel SIGKILL us when the parent dies (best effort).

    Covers the case stdin-EOF cannot: a child that is SIGSTOP-ed when its
    parent dies would otherwise stay frozen forever.  ``expected_parent`` is
    None when the parent did not ask for it (it spawned us from a helper
    thread, whose exit would trigger the signal).
    """
    if expected_parent is None or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        logger.debug("prctl(PR_SET_PDEATHSIG) unavailable")
        return
    if os.getppid() != expected_parent:
        logger.error("parent %d already gone: exiting", expected_parent)
        os._exit(3)


def configure_child_logging(level: str, log_file: str | None = None) -> None:
    """Child processes log to stderr (or a file); stdout is the RPC channel."""
    handler: logging.Handler = (logging.FileHandler(log_file) if log_file
                                else logging.StreamHandler(sys.stderr))
    handler.setFormatter(logging.Formatter(
        "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def take_stdout() -> int:
    """Reserve the real stdout for the RPC channel and point fd 1 (and
    ``sys.stdout``) at stderr, so a stray print anywhere cannot corrupt the
    protocol.  Returns the fd to write replies to."""
    sys.stdout.flush()
    out_fd = os.dup(1)
    os.dup2(2, 1)
    return out_fd


def _run_with_deadline(fn: Callable[[], Any], timeout: float, what: str) -> BaseException | None:
    """Run ``fn`` in a daemon thread; return its exception, or a TimeoutError
    if it is still running after ``timeout`` (it is then abandoned)."""
    box: list[BaseException | None] = [None]

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box[0] = exc

    t = threading.Thread(target=target, name=what, daemon=True)
    t.start()
    t.join(_bounded(timeout))
    if t.is_alive():
        return TimeoutError(f"{what} still running after {timeout:.1f}s")
    return box[0]
