"""Child side, one coord member: ``python -m coord.local_cluster --address A
--peers B,C``.

:func:`main` builds a Coordinator, starts it, prints one ``ready`` line and
then serves RPC calls (:class:`~coord.local_cluster.server.RpcServer`): a
whitelist of Coordinator methods plus helpers that must run *inside* the
member (:class:`MemberAgent`: watch logs, timed write loops, async
throughput, and recipe objects driven by the parent through
:class:`~coord.local_cluster.recipe_host.RecipeHost`).
"""

from __future__ import annotations

import argparse
import concurrent.futures
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

from coord.local_cluster.bench_agent import CoordBench
from coord.local_cluster.protocol import PARENT_PID_ENV, SECRET_ENV, _bounded, _decode_secret, _dumps, _error_reply
from coord.local_cluster.recipe_host import RecipeHost
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

#: Operations :meth:`MemberAgent.traced` runs through the ``*_async`` API
#: (so that the answer carries ``future.zxid``).
TRACED_METHODS = {
    "create": "create_async",
    "get": "get_async",
    "exists": "exists_async",
    "get_children": "get_children_async",
    "set": "set_async",
    "delete": "delete_async",
    "sync": "sync_async",
}


class MemberAgent:
    """The child-side handlers around one Coordinator."""

    def __init__(self, member: Coordinator, network_faults: Any = None) -> None:
        self.member = member
        #: The member's ``coord.testing.faults.NetworkFaults`` (None without
        #: ``network_faults`` in the options).
        self.faults = network_faults
        self._cond = threading.Condition()
        self._watch_ids = itertools.count(1)
        self._watch_events: list[dict[str, Any]] = []
        self._states: list[dict[str, Any]] = []
        self._watch_logs: dict[str, list[dict[str, Any]]] = {}
        #: Recipe objects living in this member, driven over RPC (``recipe_*``).
        self.recipes = RecipeHost(member, emit=self._emit)
        #: Set by :func:`main` to the RPC server's ``send``: session states
        #: and watch-log entries are also streamed to the parent as events.
        self.emit: Callable[[dict[str, Any]], None] | None = None

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
            "traced": self.traced,
            "watch_log_start": self.watch_log_start,
            "watch_log": self.watch_log,
            "network_faults": self.network_faults,
        })
        table.update(self.recipes.handlers())
        # the benchmark suite's in-member loops (``bench_*``)
        table.update(CoordBench(self.member).handlers())
        return table

    # -- the in-process fault transport (testing) --------------------------

    def network_faults(self, action: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Drive this member's fault policy, which decides the fate of the
        messages *this* member sends (so a directed link ``a -> b`` is cut
        in ``a``'s process):

        * ``cut_to(addresses)``: replace every cut by cuts of the links
          from this member to ``addresses`` ([] heals);
        * ``chaos(loss=, delay=(lo, hi), duplicate=, stale=)``: message
          loss / random delay (reordering) / duplicates / stale
          re-deliveries on every outgoing link;
        * ``clear()``: no cuts, no chaos;
        * ``stats()``: the policy's counters.
        """
        faults = self.faults
        if faults is None:
            raise RuntimeError("this member runs without network_faults")
        me = self.member.address
        if action == "cut_to":
            faults.heal()
            for dst in (args[0] if args else kwargs.get("addresses", [])):
                faults.cut_oneway(me, dst)
        elif action == "chaos":
            faults.set_loss(float(kwargs.get("loss", 0.0)))
            lo, hi = kwargs.get("delay", (0.0, 0.0))
            faults.set_delay(float(lo), float(hi))
            faults.set_duplicate(float(kwargs.get("duplicate", 0.0)))
            faults.set_stale_redelivery(float(kwargs.get("stale", 0.0)))
        elif action == "clear":
            faults.clear()
        elif action != "stats":
            raise ValueError(f"unknown network_faults action {action!r}")
        return {"in_flight": faults.in_flight(), "sent": faults.sent_count(),
                "dropped": faults.fate_count("drop_cut") + faults.fate_count("drop_loss"),
                "delayed": faults.fate_count("delay"), "duplicated": faults.fate_count("duplicate"),
                "stale": faults.fate_count("stale")}

    def _emit(self, message: dict[str, Any]) -> None:
        emit = self.emit
        if emit is not None:
            with contextlib.suppress(Exception):
                emit(message)

    # -- traced operations (Jepsen histories) ------------------------------

    def traced(self, method: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None,
               sync_first: bool = False, wait: float | None = None) -> dict[str, Any]:
        """Run one operation through the ``*_async`` API and report its
        outcome *with* the zxid its future carried, as plain data:

        ``{"ok": True, "value", "zxid", "session_id", "session_id_after"}`` or
        ``{"ok": False, "error": {"type", "message"}, "zxid", ...}``.

        Coord errors are answers here, not RPC failures (a BadVersionError
        carries the zxid of the failed write, too). ``sync_first`` runs
        ``sync()`` before the operation (a linearizable read: its zxid is
        then in ``sync_zxid``). ``wait`` bounds the wait for the future
        (default: the member's request timeout + 10 s, as the sync API).
        """
        from coord.errors import CoordError, UnknownOutcomeError

        if method not in TRACED_METHODS:
            raise ValueError(f"traced: unsupported method {method!r} (allowed: {sorted(TRACED_METHODS)})")
        m = self.member
        limit = _bounded(wait if wait is not None else getattr(m, "request_timeout", 10.0) + 10.0)
        out: dict[str, Any] = {"session_id": m.session_id}
        future: Any = None

        def settle(fut: Any) -> Any:
            try:
                return fut.result(timeout=limit)
            except concurrent.futures.TimeoutError:
                raise UnknownOutcomeError("no outcome was reported for the request") from None

        try:
            if sync_first:
                future = m.sync_async()
                settle(future)
                out["sync_zxid"] = future.zxid
            future = getattr(m, TRACED_METHODS[method])(*args, **(kwargs or {}))
            value = settle(future)
            out.update(ok=True, value=value)
        except CoordError as exc:
            out.update(ok=False, error={"type": type(exc).__name__, "message": str(exc)})
        out["zxid"] = getattr(future, "zxid", None)
        out["session_id_after"] = m.session_id
        return out

    # -- re-arming data-watch logs (the watches workload) ------------------

    def watch_log_start(self, path: str) -> dict[str, Any]:
        """Keep a data watch on ``path`` for the rest of this process's life:
        read it now, and after every event re-arm the watch with a read and
        log ``(event type, exists, mzxid, version, data, read zxid)``.
        Each entry is also streamed to the parent (``event: watch_log``)."""
        from coord.errors import CoordError, NoNodeError

        m = self.member
        with self._cond:
            if path in self._watch_logs:
                return {"started": False, "entries": len(self._watch_logs[path])}
            self._watch_logs[path] = []
        seq = itertools.count()

        def record(event_type: str, event_path: str) -> None:
            entry: dict[str, Any] = {"path": path, "event_path": event_path, "type": event_type,
                                     "seq": next(seq), "session_id": m.session_id, "time": time.time()}
            try:
                try:
                    future = m.get_async(path, watch=callback)
                    data, stat = future.result(timeout=0)
                    entry.update(exists=True, mzxid=stat.mzxid, version=stat.version,
                                 data=data.decode("utf-8", "replace"), zxid=future.zxid)
                except NoNodeError:
                    future = m.exists_async(path, watch=callback)
                    stat = future.result(timeout=0)
                    if stat is None:
                        entry.update(exists=False, mzxid=None, version=None, data=None, zxid=future.zxid)
                    else:  # created in between: the exists read armed the watch, data read again
                        data, stat2 = m.get(path)
                        entry.update(exists=True, mzxid=stat2.mzxid, version=stat2.version,
                                     data=data.decode("utf-8", "replace"), zxid=None)
            except CoordError as exc:  # the watch is NOT re-armed: the log says so
                entry.update(error=f"{type(exc).__name__}: {exc}", armed=False)
            with self._cond:
                self._watch_logs[path].append(entry)
                self._cond.notify_all()
            self._emit({"event": "watch_log", **entry})

        def callback(event: WatchedEvent) -> None:
            record(str(getattr(event, "type", event)), str(getattr(event, "path", path)))

        record("INIT", path)
        return {"started": True, "entries": 1}

    def watch_log(self, path: str | None = None) -> list[dict[str, Any]]:
        """The watch-log entries recorded so far (all paths, or one)."""
        with self._cond:
            if path is not None:
                return [dict(e) for e in self._watch_logs.get(path, [])]
            return [dict(e) for entries in self._watch_logs.values() for e in entries]

    # -- listener and watch logs -------------------------------------------

    def on_state(self, state: str) -> None:
        """Listener registered on the member: records every session state."""
        session_id = self.member.session_id
        with self._cond:
            self._states.append({"state": str(state), "time": time.time(), "session_id": session_id})
            self._cond.notify_all()
        logger.info("session state: %s (session 0x%x)", state, session_id)
        self._emit({"event": "session_state", "state": str(state), "session_id": session_id,
                    "time": time.time()})

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
    faults = options.get("network_faults")
    if faults is not None and not isinstance(faults, bool | int):
        raise SystemExit("--options-json: network_faults must be true or an int seed")
    if faults is False:
        del options["network_faults"]
    elif faults is not None:
        # the in-process fault transport (testing only), driven over RPC
        # through MemberAgent.network_faults
        from coord.testing.faults import NetworkFaults

        options["network_faults"] = NetworkFaults(seed=0 if faults is True else int(faults))
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
        agent = MemberAgent(member, network_faults=kwargs.get("network_faults"))
        member.add_listener(agent.on_state)
        server = RpcServer(agent.handlers(), out_fd)
        agent.emit = server.send
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
