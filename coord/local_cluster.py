"""Run coord members as separate OS processes on loopback.

Used by the demo (``python -m coord demo``), the examples, the benchmarks and
the multi-process tests.  A real deployment embeds :class:`coord.Coordinator`
in its own processes; this module only exists so that one parent process can
drive a whole cluster of *real* processes (so that ``SIGKILL``, ``SIGSTOP``
and restarts behave exactly as they would in production).

Parent side
    :func:`free_ports`, :class:`RpcProcess` (a child speaking JSON lines on
    stdin/stdout), :class:`MemberProcess` (one coord member), and
    :class:`LocalCluster` (``n`` members as a context manager).

Child side
    :func:`main` (``python -m coord.local_cluster --address A --peers B,C``)
    builds a Coordinator, starts it, prints one ``ready`` line and then serves
    RPC calls: a whitelist of Coordinator methods plus helpers that must run
    *inside* the member (watch logs, timed write loops, async throughput).
    :class:`RpcServer` is the reusable serving loop (the pysyncobj benchmark
    child uses it too).

Wire format: one JSON object per line.  Request ``{"id", "method", "args",
"kwargs"}``; reply ``{"id", "ok": true, "result"}`` or ``{"id", "ok": false,
"error": {"type", "message", "traceback"}}``; unsolicited lines carry an
``"event"`` key (``ready`` / ``failed``).  Values that JSON lacks are tagged:
``{"$bytes": base64}``, ``{"$tuple": [...]}``, ``{"$stat": [...]}`` (a
:class:`~coord.types.ZnodeStat`), ``{"$event": [...]}`` (a
:class:`~coord.types.WatchedEvent`).

Lifetime rules (no orphans): every child runs in its own session (a Ctrl-C on
the terminal reaches only the parent, which then stops the children in
order), exits when its stdin closes (so a dead parent never leaves it
running), asks the kernel for ``SIGKILL`` when the parent dies (this also
covers a child that is ``SIGSTOP``-ed at that moment), and the parent kills
every child it still has at interpreter exit.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import concurrent.futures
import contextlib
import ctypes
import dataclasses
import itertools
import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

from coord import errors as _errors
from coord.types import WatchedEvent, ZnodeStat

if TYPE_CHECKING:  # pragma: no cover - typing only
    from coord import Coordinator

logger = logging.getLogger(__name__)

T = TypeVar("T")

LOOPBACK = "127.0.0.1"

#: Environment variable carrying the cluster secret from parent to child (the
#: secret never appears on a command line, where ``ps`` would show it).
SECRET_ENV = "_COORD_LOCAL_SECRET"
#: Environment variable with the parent's pid, for the parent-death signal.
PARENT_PID_ENV = "_COORD_LOCAL_PARENT_PID"

#: Hard caps that keep every helper bounded whatever the caller asks for.
MAX_OPS = 1_000_000
MAX_WAIT = 600.0
MAX_IN_FLIGHT = 100_000


# --------------------------------------------------------------------------
# errors of the harness itself (remote coord errors are re-raised as is)
# --------------------------------------------------------------------------


class RpcError(Exception):
    """A problem talking to a child process (not an error of coord itself)."""


class ChildExitedError(RpcError):
    """The child process exited (or closed its stdout) before answering."""


class RpcTimeoutError(RpcError, TimeoutError):
    """The child did not answer before the call's deadline.

    The call may still be running (or have run) in the child.
    """


class RemoteError(RpcError):
    """The child raised an exception that is not a coord exception.

    ``remote_type`` is the class name, ``remote_traceback`` the child's
    formatted traceback.
    """

    def __init__(self, remote_type: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{remote_type}: {message}")
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback


class ChildStartError(RpcError):
    """The child failed to start (it said so, exited, or never became ready)."""


#: Builtin exceptions re-raised by name (in addition to coord.errors).
_BUILTIN_ERRORS: dict[str, type[BaseException]] = {
    cls.__name__: cls
    for cls in (ValueError, TypeError, KeyError, TimeoutError, RuntimeError, AttributeError)
}


def _exception_from_remote(error: Mapping[str, Any]) -> BaseException:
    """Rebuild the exception described by a child's error reply.

    Coord exceptions come back as their own class (looked up by name in
    :mod:`coord.errors`), so ``except NoNodeError`` works across the process
    boundary; a few builtins too; anything else becomes :class:`RemoteError`.
    """
    name = str(error.get("type", "Exception"))
    message = str(error.get("message", ""))
    tb = str(error.get("traceback", ""))
    cls = getattr(_errors, name, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        exc: BaseException = cls(message) if message else cls()
    elif name in _BUILTIN_ERRORS:
        exc = _BUILTIN_ERRORS[name](message)
    else:
        return RemoteError(name, message, tb)
    exc.remote_traceback = tb  # type: ignore[attr-defined]
    return exc


# --------------------------------------------------------------------------
# JSON codec
# --------------------------------------------------------------------------


def encode_value(obj: Any) -> Any:
    """Turn a result/argument into JSON-compatible data (see module doc)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, ZnodeStat):
        return {"$stat": list(obj)}
    if isinstance(obj, WatchedEvent):
        return {"$event": list(obj)}
    if isinstance(obj, tuple):
        return {"$tuple": [encode_value(v) for v in obj]}
    if isinstance(obj, (list, set, frozenset)):
        return [encode_value(v) for v in obj]
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: encode_value(v) for k, v in obj.items()}
        return {"$dict": [[encode_value(k), encode_value(v)] for k, v in obj.items()]}
    # Record-like results (``status()`` returns a dataclass with to_dict())
    # travel as plain dicts.
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return encode_value(to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return encode_value(dataclasses.asdict(obj))
    # Anything else (an address object, say) travels as text:
    # a harness should degrade, not crash, on an unexpected result type.
    return {"$repr": str(obj)}


def decode_value(obj: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if isinstance(obj, list):
        return [decode_value(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        ((key, val),) = obj.items()
        if key == "$bytes":
            return base64.b64decode(val)
        if key == "$stat":
            return ZnodeStat(*val)
        if key == "$event":
            return WatchedEvent(*val)
        if key == "$tuple":
            return tuple(decode_value(v) for v in val)
        if key == "$dict":
            return {decode_value(k): decode_value(v) for k, v in val}
        if key == "$repr":
            return str(val)
    return {k: decode_value(v) for k, v in obj.items()}


def _dumps(message: Mapping[str, Any]) -> bytes:
    return (json.dumps(message, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


# --------------------------------------------------------------------------
# parent side
# --------------------------------------------------------------------------


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
    return Path(__file__).resolve().parent.parent


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
                self._proc = subprocess.Popen(  # noqa: S603 - argv built by us
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
                target=self._read_loop, args=(proc, self._ready, self._pending),
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
            logger.debug("%s: event %s", self.name, msg)

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


def _bounded(timeout: float | None) -> float:
    """Clamp a caller's timeout to (0, MAX_WAIT]: no wait in here is endless."""
    if timeout is None or timeout > MAX_WAIT or math.isnan(timeout):
        return MAX_WAIT
    return max(0.0, timeout)


def _encode_secret(secret: str | bytes) -> str:
    kind = "b" if isinstance(secret, bytes) else "s"
    raw = secret if isinstance(secret, bytes) else secret.encode("utf-8")
    return kind + base64.b64encode(raw).decode("ascii")


def _decode_secret(text: str) -> str | bytes:
    raw = base64.b64decode(text[1:])
    return raw if text[0] == "b" else raw.decode("utf-8")


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


class MemberProcess(RpcProcess):
    """One coord member running as ``python -m coord.local_cluster``.

    Thin typed wrappers (:meth:`create`, :meth:`get`, ...) forward to the
    child's Coordinator; coord exceptions come back as the same classes.
    """

    def __init__(
        self,
        address: str,
        peers: Sequence[str],
        *,
        data_dir: str | os.PathLike[str] | None = None,
        session_timeout: float | None = None,
        secret: str | bytes | None = None,
        name: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
        start_timeout: float = 20.0,
        log_level: str = "INFO",
        python: str = sys.executable,
    ) -> None:
        self.address = address
        self.peers = list(peers)
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.session_timeout = session_timeout
        argv = [python, "-m", "coord.local_cluster", "--address", address,
                "--peers", ",".join(self.peers), "--start-timeout", str(start_timeout),
                "--log-level", log_level]
        if self.data_dir is not None:
            argv += ["--data-dir", str(self.data_dir)]
        if session_timeout is not None:
            argv += ["--session-timeout", str(session_timeout)]
        super().__init__(argv, name=name or f"member@{address}", env=child_env(secret),
                         log_path=log_path)

    def restart(self, timeout: float = 30.0) -> dict[str, Any]:
        """Stop the member if it runs, then start it again with the same
        address, peers and data_dir (a crashed process coming back)."""
        if self.alive:
            self.stop()
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.start(timeout)

    # -- typed wrappers over the child's Coordinator ------------------------
    # Same names and arguments as Coordinator (kazoo); ``timeout`` here is the
    # RPC deadline, not an argument of the remote call.

    def create(self, path: str, value: bytes = b"", *, ephemeral: bool = False,
               sequence: bool = False, makepath: bool = False, timeout: float = 30.0) -> str:
        result = self.call("create", path, value, ephemeral=ephemeral, sequence=sequence,
                           makepath=makepath, timeout=timeout)
        return cast(str, result)

    def get(self, path: str, *, timeout: float = 30.0) -> tuple[bytes, ZnodeStat]:
        value, stat = self.call("get", path, timeout=timeout)
        return value, stat

    def exists(self, path: str, *, timeout: float = 30.0) -> ZnodeStat | None:
        return cast("ZnodeStat | None", self.call("exists", path, timeout=timeout))

    def get_children(self, path: str, *, timeout: float = 30.0) -> list[str]:
        return cast("list[str]", self.call("get_children", path, timeout=timeout))

    def set(self, path: str, value: bytes, version: int = -1, *, timeout: float = 30.0) -> ZnodeStat:
        return cast(ZnodeStat, self.call("set", path, value, version=version, timeout=timeout))

    def delete(self, path: str, version: int = -1, recursive: bool = False, *,
               timeout: float = 30.0) -> bool:
        return bool(self.call("delete", path, version=version, recursive=recursive, timeout=timeout))

    def ensure_path(self, path: str, *, timeout: float = 30.0) -> bool:
        return bool(self.call("ensure_path", path, timeout=timeout))

    def sync(self, path: str = "/", *, timeout: float = 30.0) -> Any:
        return self.call("sync", path, timeout=timeout)

    def status(self, *, timeout: float = 5.0) -> dict[str, Any]:
        """The member's status() as a dict (role, leader, term, zxid, session_id, ...)."""
        return cast("dict[str, Any]", self.call("status", timeout=timeout))

    def session_id(self, *, timeout: float = 5.0) -> int:
        return int(self.call("session_id", timeout=timeout))

    def watch(self, kind: str, path: str, *, timeout: float = 30.0) -> int:
        """Register a watch in the child (``kind``: data, exists, children,
        persistent, persistent_recursive); its events are logged there.
        Returns the watch id for :meth:`watch_events` / :meth:`wait_watch_event`."""
        return int(self.call("watch", kind, path, timeout=timeout)["watch_id"])

    def watch_events(self, watch_id: int | None = None, *, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Events recorded so far (each: watch_id, kind, type, state, path, time)."""
        return cast("list[dict[str, Any]]", self.call("watch_events", watch_id, timeout=timeout))

    def wait_watch_event(self, watch_id: int, wait: float) -> dict[str, Any] | None:
        """The first event of ``watch_id``, waiting up to ``wait`` seconds in
        the child; None if it did not fire."""
        result = self.call("wait_watch_event", watch_id, wait, timeout=wait + 10.0)
        return cast("dict[str, Any] | None", result)

    def listener_states(self, *, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Session states told to the child's listener (state, time)."""
        return cast("list[dict[str, Any]]", self.call("listener_states", timeout=timeout))

    def time_writes(self, kind: str, n: int, prefix: str, *, value_size: int = 64,
                    warmup: int = 0, timeout: float = 300.0) -> list[float]:
        """Run ``n`` sequential writes in the child; per-op latency in µs."""
        result = self.call("time_writes", kind, n, prefix, value_size=value_size,
                           warmup=warmup, timeout=timeout)
        return cast("list[float]", result)

    def throughput(self, kind: str, n: int, in_flight: int, prefix: str, *,
                   value_size: int = 64, deadline: float = 120.0) -> dict[str, Any]:
        """Run ``n`` async writes in the child with at most ``in_flight``
        outstanding; returns counts and ops/s."""
        result = self.call("throughput", kind, n, in_flight, prefix, value_size=value_size,
                           deadline=deadline, timeout=deadline + 30.0)
        return cast("dict[str, Any]", result)


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


class LocalCluster:
    """``n`` coord members as separate processes on 127.0.0.1.

    ``data_root`` None runs the members in memory; otherwise member ``i``
    keeps its data in ``data_root/member-i`` (kept after exit, so a test can
    inspect it; the caller owns ``data_root``).  Child logs go to
    ``log_dir`` (default: a temporary directory removed at exit unless
    ``keep_logs``).  ``secret`` None runs without encryption (loopback only,
    the members warn loudly).

    >>> with LocalCluster(3) as cluster:           # doctest: +SKIP
    ...     cluster.leader().create("/x", b"1")
    """

    def __init__(
        self,
        n: int = 3,
        data_root: str | os.PathLike[str] | None = None,
        session_timeout: float | None = None,
        secret: str | bytes | None = None,
        *,
        log_dir: str | os.PathLike[str] | None = None,
        keep_logs: bool = False,
        start_timeout: float = 30.0,
        log_level: str = "INFO",
    ) -> None:
        if not 1 <= n <= 15:
            raise ValueError(f"n must be in 1..15, got {n}")
        self.n = n
        self.data_root = Path(data_root) if data_root is not None else None
        self.session_timeout = session_timeout
        self.secret = secret
        self.start_timeout = start_timeout
        self.log_level = log_level
        self._own_log_dir = log_dir is None
        self.keep_logs = keep_logs
        self.log_dir: Path | None = Path(log_dir) if log_dir is not None else None
        self.members: list[MemberProcess] = []

    @property
    def addresses(self) -> list[str]:
        return [m.address for m in self.members]

    def start(self) -> LocalCluster:
        """Spawn every member, then wait until all are ready (they need each
        other for a quorum, so they must start together)."""
        if self.members:
            raise RuntimeError("cluster already started")
        if self.log_dir is None:
            self.log_dir = Path(tempfile.mkdtemp(prefix="coord-cluster-logs-"))
        ports = free_ports(self.n)
        addresses = [f"{LOOPBACK}:{p}" for p in ports]
        for i, address in enumerate(addresses):
            data_dir = None
            if self.data_root is not None:
                data_dir = self.data_root / f"member-{i}"
                data_dir.mkdir(parents=True, exist_ok=True)
            self.members.append(MemberProcess(
                address, [a for a in addresses if a != address], data_dir=data_dir,
                session_timeout=self.session_timeout, secret=self.secret, name=f"member-{i}",
                log_path=self.log_dir / f"member-{i}.log", start_timeout=self.start_timeout,
                log_level=self.log_level,
            ))
        try:
            for m in self.members:
                m.spawn()
            deadline = time.monotonic() + self.start_timeout + 5.0
            for m in self.members:
                m.wait_ready(max(0.1, deadline - time.monotonic()))
        except BaseException:
            self.stop(timeout=5.0)
            raise
        logger.info("local cluster up: %s (logs in %s)", ", ".join(addresses), self.log_dir)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every member: all are told at once (closing stdin), so none
        waits for a quorum that the others already took away; stragglers are
        killed after ``timeout``."""
        for m in self.members:
            m.close_stdin()
        deadline = time.monotonic() + _bounded(timeout)
        for m in self.members:
            with contextlib.suppress(Exception):
                m.stop(timeout=max(0.5, deadline - time.monotonic()))
        if self._own_log_dir and not self.keep_logs and self.log_dir is not None:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __getitem__(self, i: int) -> MemberProcess:
        return self.members[i]

    def __iter__(self) -> Iterator[MemberProcess]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def live_members(self) -> list[MemberProcess]:
        """Members whose process runs and is not paused."""
        return [m for m in self.members if m.alive and not m.paused]

    def member_for(self, address: str) -> MemberProcess | None:
        """The member with this Raft address, if any."""
        return next((m for m in self.members if m.address == address), None)

    def statuses(self, timeout: float = 2.0) -> dict[str, dict[str, Any] | str]:
        """Every live member's status (or the error text), by member name."""
        out: dict[str, dict[str, Any] | str] = {}
        for m in self.live_members():
            try:
                out[m.name] = m.status(timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - diagnostics only
                out[m.name] = f"{type(exc).__name__}: {exc}"
        return out

    def leader(self, timeout: float = 15.0) -> MemberProcess:
        """The live member that reports itself leader (highest term wins if
        a stale one still thinks so), waiting up to ``timeout`` seconds."""

        def find() -> MemberProcess | None:
            best: tuple[int, MemberProcess] | None = None
            for m in self.live_members():
                try:
                    st = m.status(timeout=2.0)
                except (RpcError, _errors.CoordError):
                    continue
                if st.get("role") == "leader":
                    term = int(st.get("term") or 0)
                    if best is None or term > best[0]:
                        best = (term, m)
            return best[1] if best else None

        try:
            return wait_until(find, timeout, what="a leader")
        except TimeoutError:
            raise TimeoutError(f"no leader within {timeout:.1f}s; statuses: {self.statuses()}") from None

    def followers(self, timeout: float = 15.0) -> list[MemberProcess]:
        """Live members other than the current leader."""
        lead = self.leader(timeout)
        return [m for m in self.live_members() if m is not lead]

    wait_until = staticmethod(wait_until)


# --------------------------------------------------------------------------
# child side
# --------------------------------------------------------------------------


def _error_reply(exc: BaseException) -> dict[str, str]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:],
    }


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


#: Coordinator methods a parent may call directly.
COORDINATOR_METHODS = (
    "create", "get", "exists", "get_children", "set", "delete", "ensure_path",
    "sync", "status", "transaction",
)


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


class MemberAgent:
    """The child-side handlers around one Coordinator."""

    def __init__(self, member: Coordinator) -> None:
        self.member = member
        self._cond = threading.Condition()
        self._watch_ids = itertools.count(1)
        self._watch_events: list[dict[str, Any]] = []
        self._states: list[dict[str, Any]] = []

    def handlers(self) -> dict[str, Callable[..., Any]]:
        """Method name -> callable, as served to the parent."""
        table: dict[str, Callable[..., Any]] = {
            name: getattr(self.member, name)
            for name in COORDINATOR_METHODS if callable(getattr(self.member, name, None))
        }
        table.update({
            "ping": lambda: {"pid": os.getpid(), "time": time.time()},
            "session_id": lambda: self.member.session_id,
            "watch": self.watch,
            "watch_events": self.watch_events,
            "wait_watch_event": self.wait_watch_event,
            "listener_states": self.listener_states,
            "wait_listener_state": self.wait_listener_state,
            "time_writes": self.time_writes,
            "throughput": self.throughput,
        })
        return table

    # -- listener and watch logs -------------------------------------------

    def on_state(self, state: str) -> None:
        """Listener registered on the member: records every session state."""
        with self._cond:
            self._states.append({"state": str(state), "time": time.time()})
            self._cond.notify_all()
        logger.info("session state: %s", state)

    def listener_states(self) -> list[dict[str, Any]]:
        with self._cond:
            return list(self._states)

    def wait_listener_state(self, state: str, wait: float, after: int = 0) -> dict[str, Any] | None:
        """The first recorded state ``state`` at index >= ``after``, waiting
        up to ``wait`` seconds; None if none came."""
        end = time.monotonic() + _bounded(wait)
        with self._cond:
            while True:
                for entry in self._states[after:]:
                    if entry["state"] == state:
                        return dict(entry)
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def watch(self, kind: str, path: str) -> dict[str, Any]:
        """Register a watch whose events are logged here.  Returns
        ``{"watch_id", "result"}`` (the result of the read that set it)."""
        wid = next(self._watch_ids)

        def callback(event: WatchedEvent) -> None:
            with self._cond:
                self._watch_events.append({
                    "watch_id": wid, "kind": kind, "type": getattr(event, "type", str(event)),
                    "state": getattr(event, "state", ""), "path": getattr(event, "path", path),
                    "time": time.time(),
                })
                self._cond.notify_all()
            logger.info("watch %d (%s %s) fired: %s", wid, kind, path, event)

        m = self.member
        result: Any = None
        if kind == "data":
            result = m.get(path, watch=callback)
        elif kind == "exists":
            result = m.exists(path, watch=callback)
        elif kind == "children":
            result = m.get_children(path, watch=callback)
        elif kind in ("persistent", "persistent_recursive"):
            m.add_watch(path, callback, recursive=(kind == "persistent_recursive"))  # type: ignore[attr-defined]
        else:
            raise ValueError(f"unknown watch kind {kind!r}")
        return {"watch_id": wid, "result": result}

    def watch_events(self, watch_id: int | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(e) for e in self._watch_events if watch_id is None or e["watch_id"] == watch_id]

    def wait_watch_event(self, watch_id: int, wait: float) -> dict[str, Any] | None:
        """The first event of ``watch_id``, waiting up to ``wait`` seconds."""
        end = time.monotonic() + _bounded(wait)
        with self._cond:
            while True:
                for e in self._watch_events:
                    if e["watch_id"] == watch_id:
                        return dict(e)
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    # -- measurements ------------------------------------------------------

    def _prepare(self, kind: str, prefix: str, value: bytes) -> None:
        if kind == "create":
            self.member.ensure_path(prefix)
        elif kind == "set":
            if self.member.exists(prefix) is None:
                self.member.create(prefix, value, makepath=True)
        else:
            raise ValueError(f"kind must be 'create' or 'set', got {kind!r}")

    def time_writes(self, kind: str, n: int, prefix: str, value_size: int = 64,
                    warmup: int = 0) -> list[float]:
        """``n`` sequential synchronous writes from this process; per-op
        latency in µs.  ``create`` makes ``prefix/nNNNNNNNN`` nodes, ``set``
        rewrites the node ``prefix``.  ``warmup`` untimed ops go first."""
        n = max(0, min(int(n), MAX_OPS))
        warmup = max(0, min(int(warmup), MAX_OPS))
        value = b"v" * max(0, int(value_size))
        self._prepare(kind, prefix, value)
        m = self.member
        if kind == "create":
            for i in range(warmup):
                m.create(f"{prefix}/w{i:08d}", value)
            out = []
            for i in range(n):
                path = f"{prefix}/n{i:08d}"
                t0 = time.perf_counter_ns()
                m.create(path, value)
                out.append((time.perf_counter_ns() - t0) / 1000.0)
            return out
        for _ in range(warmup):
            m.set(prefix, value)
        out = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            m.set(prefix, value)
            out.append((time.perf_counter_ns() - t0) / 1000.0)
        return out

    def throughput(self, kind: str, n: int, in_flight: int, prefix: str,
                   value_size: int = 64, deadline: float = 120.0) -> dict[str, Any]:
        """``n`` writes through ``create_async``/``set_async`` with at most
        ``in_flight`` outstanding (see :func:`run_throughput`)."""
        value = b"v" * max(0, int(value_size))
        self._prepare(kind, prefix, value)
        m = self.member

        def submit(i: int, done: Callable[[BaseException | None], None]) -> None:
            fut = (m.create_async(f"{prefix}/a{i:08d}", value) if kind == "create"
                   else m.set_async(prefix, value))
            fut.add_done_callback(lambda f: done(f.exception()))

        return run_throughput(submit, n, in_flight, deadline)


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


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m coord.local_cluster",
                                description="One coord member serving JSON-lines RPC on stdin/stdout.")
    p.add_argument("--address", required=True, help="this member's Raft address, host:port")
    p.add_argument("--peers", default="", help="comma-separated addresses of the other members")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--session-timeout", type=float, default=None)
    p.add_argument("--start-timeout", type=float, default=20.0)
    p.add_argument("--stop-timeout", type=float, default=10.0)
    p.add_argument("--log-file", default=None, help="log here instead of stderr")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


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


def main(argv: Sequence[str] | None = None) -> int:
    """Child entry point: start one member and serve RPC until told to stop."""
    args = _parse_args(argv)
    configure_child_logging(args.log_level, args.log_file)
    parent = os.environ.get(PARENT_PID_ENV)
    _set_parent_death_signal(int(parent) if parent else None)
    out_fd = take_stdout()

    from coord import Coordinator  # noqa: PLC0415 - the parent side must not need it

    secret_text = os.environ.pop(SECRET_ENV, None)
    secret = _decode_secret(secret_text) if secret_text else None
    peers = [p for p in args.peers.split(",") if p]
    kwargs: dict[str, Any] = {"peers": peers, "data_dir": args.data_dir, "secret": secret}
    if args.session_timeout is not None:
        kwargs["session_timeout"] = args.session_timeout

    server: RpcServer | None = None
    member: Coordinator | None = None
    try:
        member = Coordinator(args.address, **kwargs)
        agent = MemberAgent(member)
        member.add_listener(agent.on_state)
        server = RpcServer(agent.handlers(), out_fd)
        signal.signal(signal.SIGTERM, lambda *_: server.request_stop() if server else None)
        server.start_reading()
        t0 = time.monotonic()
        started = member
        error = _run_with_deadline(lambda: started.start(timeout=args.start_timeout),
                                   args.start_timeout + 5.0, "member-start")
        if error is not None:
            raise error
        if server.stopping.is_set():
            logger.info("asked to stop while starting")
        else:
            server.send({"event": "ready", "pid": os.getpid(), "address": args.address,
                         "session_id": member.session_id,
                         "start_seconds": round(time.monotonic() - t0, 3)})
            logger.info("member %s ready in %.2fs", args.address, time.monotonic() - t0)
            server.serve()
        code = 0
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, then exit
        logger.exception("member %s failed", args.address)
        msg = {"event": "failed", "error": _error_reply(exc)}
        if server is not None:
            server.send(msg)
        else:
            with contextlib.suppress(OSError):
                os.write(out_fd, _dumps(msg))
        code = 1
    finally:
        if server is not None:
            server.close()
        if member is not None:
            stopping = member
            err = _run_with_deadline(stopping.stop, args.stop_timeout, "member-stop")
            if err is not None:
                logger.warning("stop did not finish cleanly: %s", err)
                code = code or 2
    logger.info("exiting with code %d", code)
    return code


if __name__ == "__main__":
    _code = main()
    logging.shutdown()
    # Hard exit: a handler thread still blocked inside the member (say a
    # long wait_watch_event) must not keep the process alive.
    os._exit(_code)
