"""Parent side, one child at a time: spawn, RPC, signals, no orphans.

:func:`free_ports`, :class:`RpcProcess` (a child speaking JSON lines on
stdin/stdout), :func:`child_env` (how the secret reaches a child),
:func:`start_all` (start processes that need each other) and
:func:`wait_until`.  The parent kills every child it still has at interpreter
exit (:func:`_kill_leftovers`).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from coord.local_cluster.protocol import (
    PARENT_PID_ENV,
    SECRET_ENV,
    ChildExitedError,
    ChildStartError,
    RpcTimeoutError,
    _bounded,
    _dumps,
    _encode_secret,
    _exception_from_remote,
    decode_value,
    encode_value,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

LOOPBACK = "127.0.0.1"


def free_ports(n: int, host: str = LOOPBACK) -> list[int]:
    """``n`` distinct TCP ports that are free on ``host`` right now.

    All sockets are held open together so the kernel cannot hand out the same
    port twice; there is still a small race with other processes between this
    call and the member binding the port, which is acceptable on a test box.
    """
    if not 0 < n <= 1024:
        raise ValueError(f"n must be in 1..1024, got {n}")
    sockets: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


_LIVE: weakref.WeakSet[RpcProcess] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _kill_leftovers() -> None:
    """Last line of defence: SIGKILL every child this process still has."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.kill()


def repo_root() -> Path:
    """The directory that holds the ``coord`` package (put on children's
    PYTHONPATH so they import the same coord as the parent)."""
    return Path(__file__).resolve().parents[2]


class RpcProcess:
    """A child process that speaks the JSON-lines RPC on stdin/stdout.

    ``argv`` is the full command line.  :meth:`spawn` starts it without
    waiting; :meth:`wait_ready` waits for its ``ready`` line; :meth:`start`
    does both.  :meth:`call` sends one request and waits (with a deadline)
    for its reply; it may be called from several threads at once.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        env: Mapping[str, str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.name = name
        self.env = dict(env) if env is not None else None
        self.log_path = Path(log_path) if log_path is not None else None
        self.cwd = cwd
        self.ready_info: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, concurrent.futures.Future[Any]] = {}
        self._ready: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        self._reader: threading.Thread | None = None
        self._paused = False
        #: How many times this child was spawned (a restarted member is a new
        #: incarnation: its in-memory state, watches and session are new).
        self.incarnation = 0
        #: Called as ``event_handler(self, message)`` (on the reader thread)
        #: for every unsolicited line other than ``ready``/``failed``: the
        #: member child streams session states and watch logs this way.
        self.event_handler: Callable[[RpcProcess, dict[str, Any]], None] | None = None

    # -- lifecycle ---------------------------------------------------------

    def spawn(self) -> None:
        """Start the child (without waiting for it to be ready)."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                raise RuntimeError(f"{self.name} is already running (pid {self._proc.pid})")
            env = dict(os.environ if self.env is None else self.env)
            env.pop(PARENT_PID_ENV, None)
            # Linux ties PR_SET_PDEATHSIG to the *thread* that forked the
            # child: ask for it only when that thread is the main thread
            # (which lives as long as the process); otherwise the child would
            # be killed when a helper thread that spawned it finishes.
            if threading.current_thread() is threading.main_thread():
                env[PARENT_PID_ENV] = str(os.getpid())
            root = str(repo_root())
            old_path = env.get("PYTHONPATH", "")
            env["PYTHONPATH"] = root + (os.pathsep + old_path if old_path else "")
            stderr: IO[bytes] | int
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                stderr = open(self.log_path, "ab")  # noqa: SIM115 - closed below
            else:
                stderr = subprocess.DEVNULL
            try:
                self._ready = concurrent.futures.Future()
                self._pending = {}
                self._paused = False
                self.incarnation += 1
                self._proc = subprocess.Popen(  # argv built by us
                    self.argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    env=env,
                    cwd=self.cwd,
                    start_new_session=True,
                    close_fds=True,
                )
            finally:
                if not isinstance(stderr, int):
                    stderr.close()
            with _LIVE_LOCK:
                _LIVE.add(self)
            proc = self._proc
            self._reader = threading.Thread(
                target=self._read_loop, args=(proc, self._ready, self._pending, self.incarnation),
                name=f"rpc-reader-{self.name}", daemon=True,
            )
            self._reader.start()
            logger.debug("%s: spawned pid %d: %s", self.name, proc.pid, " ".join(self.argv))

    def wait_ready(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the child printed its ``ready`` line; return its info.

        Raises :class:`ChildStartError` (with the tail of the child's log)
        when the child reports a failure, exits, or is not ready in time.
        """
        try:
            info = self._ready.result(timeout=_bounded(timeout))
        except concurrent.futures.TimeoutError:
            raise ChildStartError(
                f"{self.name} not ready after {timeout:.1f}s{self._log_excerpt()}"
            ) from None
        except ChildStartError as exc:
            raise ChildStartError(f"{exc}{self._log_excerpt()}") from None
        self.ready_info = info
        return info

    def start(self, timeout: float = 30.0) -> dict[str, Any]:
        """:meth:`spawn` then :meth:`wait_ready`; kills the child on failure."""
        self.spawn()
        try:
            return self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    @property
    def pid(self) -> int | None:
        """The child's pid (None before the first spawn)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        """True while the child process exists (paused children count)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def ready(self) -> bool:
        """True once the running child printed its ``ready`` line (a member
        that is still starting or replaying its journal is not ready)."""
        fut = self._ready
        return self.alive and fut.done() and fut.exception() is None

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return self._paused and self.alive

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def _signal(self, sig: int) -> bool:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return False
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def kill(self, timeout: float = 10.0) -> float:
        """SIGKILL the child (no goodbye: its session stays until it expires)
        and reap it.  Returns the wall-clock time of the kill."""
        t = time.time()
        if self._signal(signal.SIGKILL):
            logger.debug("%s: SIGKILL pid %s", self.name, self.pid)
        self._reap(timeout)
        return t

    def pause(self) -> None:
        """SIGSTOP the child: it stops answering peers and RPCs (a frozen VM
        or a long GC pause, as the cluster sees it)."""
        if self._signal(signal.SIGSTOP):
            self._paused = True
            logger.debug("%s: SIGSTOP pid %s", self.name, self.pid)

    def resume(self) -> None:
        """SIGCONT a paused child."""
        if self._signal(signal.SIGCONT):
            logger.debug("%s: SIGCONT pid %s", self.name, self.pid)
        self._paused = False

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (the child stops gracefully), SIGKILL after ``timeout``."""
        self.resume()
        self._signal(signal.SIGTERM)
        return self._reap(timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Graceful stop: close the child's stdin (it stops its member and
        exits); escalate to SIGTERM then SIGKILL if it overruns ``timeout``."""
        self.close_stdin()
        return self._reap(timeout)

    def close_stdin(self) -> None:
        """Tell the child to exit (it treats EOF on stdin as 'stop').  Used by
        :meth:`stop`; call it on many children first to stop them in parallel."""
        self.resume()
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            with self._write_lock, contextlib.suppress(OSError):
                proc.stdin.close()

    def _reap(self, timeout: float) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        deadline = time.monotonic() + _bounded(timeout)
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("%s: pid %d did not exit in %.1fs; SIGTERM", self.name, proc.pid, timeout)
            self._signal(signal.SIGCONT)
            self._signal(signal.SIGTERM)
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                logger.warning("%s: pid %d ignored SIGTERM; SIGKILL", self.name, proc.pid)
                self._signal(signal.SIGKILL)
                proc.wait(timeout=10.0)
        self._paused = False
        if self._reader is not None:
            self._reader.join(timeout=2.0)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        with _LIVE_LOCK:
            _LIVE.discard(self)
        return proc.returncode

    # -- RPC ---------------------------------------------------------------

    def call(self, method: str, *args: Any, timeout: float = 30.0, **kwargs: Any) -> Any:
        """Call ``method(*args, **kwargs)`` in the child and return its result.

        Coord exceptions raised in the child are re-raised here as the same
        class; :class:`RpcTimeoutError` when there is no answer within
        ``timeout`` seconds; :class:`ChildExitedError` if the child is gone.
        (To pass a keyword argument literally named ``timeout`` to the remote
        method, use :meth:`call_with`.)
        """
        return self.call_with(method, args, kwargs, timeout=timeout)

    def call_with(
        self,
        method: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        timeout: float = 30.0,
    ) -> Any:
        """Like :meth:`call`, with the arguments given as a list and a dict."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            raise ChildExitedError(f"{self.name} is not running")
        req_id = next(self._ids)
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        pending = self._pending
        pending[req_id] = fut
        line = _dumps({
            "id": req_id,
            "method": method,
            "args": [encode_value(a) for a in args],
            "kwargs": {k: encode_value(v) for k, v in (kwargs or {}).items()},
        })
        try:
            with self._write_lock:
                proc.stdin.write(line)
                proc.stdin.flush()
        except (OSError, ValueError) as exc:
            pending.pop(req_id, None)
            raise ChildExitedError(f"{self.name}: cannot send {method}: {exc}") from None
        try:
            return fut.result(timeout=_bounded(timeout))
        except concurrent.futures.TimeoutError:
            raise RpcTimeoutError(
                f"{self.name}: no answer to {method} within {timeout:.1f}s"
                + (" (process is paused)" if self._paused else "")
            ) from None
        finally:
            pending.pop(req_id, None)

    def _read_loop(
        self,
        proc: subprocess.Popen[bytes],
        ready: concurrent.futures.Future[dict[str, Any]],
        pending: dict[int, concurrent.futures.Future[Any]],
        incarnation: int = 0,
    ) -> None:
        """Reader thread: route reply lines to their callers until EOF."""
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    logger.warning("%s: unparsable line from child: %r", self.name, raw[:200])
                    continue
                if "event" in msg:
                    msg["incarnation"] = incarnation
                    self._on_event(msg, ready)
                    continue
                fut = pending.get(msg.get("id", -1))
                if fut is None or fut.done():
                    continue  # the caller gave up (timeout) already
                if msg.get("ok"):
                    fut.set_result(decode_value(msg.get("result")))
                else:
                    fut.set_exception(_exception_from_remote(msg.get("error", {})))
        except (OSError, ValueError):
            pass  # stdout closed under us: treated as EOF below
        finally:
            rc: int | None
            try:
                rc = proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                rc = None
            what = f"{self.name} (pid {proc.pid}) exited" + (f" with code {rc}" if rc is not None else "")
            if not ready.done():
                ready.set_exception(ChildStartError(what + " before it was ready"))
            for fut in list(pending.values()):
                if not fut.done():
                    fut.set_exception(ChildExitedError(what))

    def _on_event(self, msg: Mapping[str, Any], ready: concurrent.futures.Future[dict[str, Any]]) -> None:
        kind = msg.get("event")
        if kind == "ready" and not ready.done():
            ready.set_result(decode_value(dict(msg)))
        elif kind == "failed" and not ready.done():
            err = msg.get("error", {})
            ready.set_exception(ChildStartError(
                f"{self.name} failed to start: {err.get('type')}: {err.get('message')}"
            ))
        else:
            handler = self.event_handler
            if handler is None:
                logger.debug("%s: event %s", self.name, msg)
                return
            try:
                handler(self, decode_value(dict(msg)))
            except Exception:  # a handler bug must not kill the reader thread
                logger.exception("%s: event handler failed on %s", self.name, kind)

    # -- diagnostics -------------------------------------------------------

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the child's log ("" without a log)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
        return "\n".join(data.splitlines()[-lines:])

    def _log_excerpt(self) -> str:
        tail = self.log_tail()
        return f"\n--- last lines of {self.log_path} ---\n{tail}" if tail else ""

    def __repr__(self) -> str:
        state = "paused" if self.paused else ("running" if self.alive else "stopped")
        return f"<{type(self).__name__} {self.name} pid={self.pid} {state}>"


def child_env(secret: str | bytes | None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a member child: ``base`` (default ``os.environ``)
    with the secret in :data:`SECRET_ENV` and any inherited ``COORD_SECRET``
    removed, so ``secret=None`` really means "no secret" whatever the
    developer's shell exports."""
    env = dict(os.environ if base is None else base)
    env.pop("COORD_SECRET", None)
    env.pop(SECRET_ENV, None)
    if secret is not None:
        env[SECRET_ENV] = _encode_secret(secret)
    return env



def start_all(procs: Sequence[RpcProcess], timeout: float, on_failure: Callable[[], object]) -> None:
    """Spawn every process, then wait until each is ready, all against one
    deadline ``timeout`` seconds away (members of one cluster need each other
    for a quorum, so they must start together, not one after the other).

    On any failure (a child that fails or is late, Ctrl-C) ``on_failure()``
    runs, and should stop them all, before the error propagates.
    """
    try:
        for p in procs:
            p.spawn()
        deadline = time.monotonic() + timeout
        for p in procs:
            p.wait_ready(max(0.1, deadline - time.monotonic()))
    except BaseException:
        on_failure()
        raise


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 15.0,
    *,
    interval: float = 0.05,
    what: str = "condition",
    ignore: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """Poll ``predicate`` until it returns something truthy; return that.

    Exceptions in ``ignore`` count as "not yet" (a member may be mid
    election); the last one is reported in the :class:`TimeoutError` raised
    when ``timeout`` passes.
    """
    deadline = time.monotonic() + _bounded(timeout)
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except ignore as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {type(last_exc).__name__}: {last_exc})" if last_exc else ""
            raise TimeoutError(f"{what} not reached within {timeout:.1f}s{detail}")
        time.sleep(interval)
