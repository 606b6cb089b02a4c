"""Child side, one coord member: ``python -m coord.local_cluster --address A
--peers B,C``.

:func:`main` builds a Coordinator, starts it, prints one ``ready`` line and
then serves RPC calls (:class:`~coord.local_cluster.server.RpcServer`): a
whitelist of Coordinator methods plus helpers that must run *inside* the
member (:class:`MemberAgent`: watch logs, timed write loops, async
throughput).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from coord.local_cluster.protocol import PARENT_PID_ENV, SECRET_ENV, _bounded, _decode_secret, _dumps, _error_reply
from coord.local_cluster.server import (
    MAX_OPS,
    RpcServer,
    _run_with_deadline,
    _set_parent_death_signal,
    configure_child_logging,
    run_throughput,
    take_stdout,
)
from coord.types import WatchedEvent

if TYPE_CHECKING:  # pragma: no cover - typing only
    from coord import Coordinator

logger = logging.getLogger(__name__)


#: Coordinator methods a parent may call directly.
COORDINATOR_METHODS = (
    "create", "get", "exists", "get_children", "set", "delete", "ensure_path",
    "sync", "status", "transaction",
)


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
    p.add_argument("--options-json", default="{}",
                   help="further Coordinator keyword arguments as a JSON object (e.g. snapshot_entries); "
                        "raft_timing may be given as an object of RaftTiming fields")
    return p.parse_args(argv)


def _coordinator_options(text: str) -> dict[str, Any]:
    from coord import RaftTiming

    options = json.loads(text)
    if not isinstance(options, dict):
        raise SystemExit("--options-json must be a JSON object")
    if isinstance(options.get("raft_timing"), dict):
        options["raft_timing"] = RaftTiming(**options["raft_timing"])
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Child entry point: start one member and serve RPC until told to stop."""
    args = _parse_args(argv)
    configure_child_logging(args.log_level, args.log_file)
    parent = os.environ.get(PARENT_PID_ENV)
    _set_parent_death_signal(int(parent) if parent else None)
    out_fd = take_stdout()

    from coord import Coordinator  # here: the parent side must not need it

    secret_text = os.environ.pop(SECRET_ENV, None)
    secret = _decode_secret(secret_text) if secret_text else None
    peers = [p for p in args.peers.split(",") if p]
    kwargs: dict[str, Any] = {"peers": peers, "data_dir": args.data_dir, "secret": secret}
    if args.session_timeout is not None:
        kwargs["session_timeout"] = args.session_timeout
    kwargs.update(_coordinator_options(args.options_json))

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
    except BaseException as exc:  # reported to the parent, then exit
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
