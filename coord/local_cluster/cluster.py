"""Parent side, a whole cluster: :class:`MemberProcess` (one coord member)
and :class:`LocalCluster` (``n`` members as a context manager)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self, cast

from coord import errors as _errors
from coord.local_cluster.process import LOOPBACK, RpcProcess, child_env, free_ports, start_all, wait_until
from coord.local_cluster.protocol import RpcError, _bounded, _exception_from_remote
from coord.types import ZnodeStat

logger = logging.getLogger(__name__)


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
        options: Mapping[str, Any] | None = None,
        argv_prefix: Sequence[str] = (),
    ) -> None:
        """``argv_prefix`` goes before the Python command line (for example
        ``["ip", "netns", "exec", NS]`` to run the member inside a network
        namespace; the wrapper must ``exec`` so the pid is the member's)."""
        self.address = address
        self.peers = list(peers)
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.session_timeout = session_timeout
        argv = [*argv_prefix, python, "-m", "coord.local_cluster", "--address", address,
                "--peers", ",".join(self.peers), "--start-timeout", str(start_timeout),
                "--log-level", log_level]
        if self.data_dir is not None:
            argv += ["--data-dir", str(self.data_dir)]
        if session_timeout is not None:
            argv += ["--session-timeout", str(session_timeout)]
        if options:
            argv += ["--options-json", json.dumps(dict(options))]
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

    def traced(self, method: str, *args: Any, sync_first: bool = False, wait: float | None = None,
               rpc_timeout: float = 30.0, **kwargs: Any) -> dict[str, Any]:
        """Run ``method(*args, **kwargs)`` in the child through the
        ``*_async`` API and return its outcome with the zxid the future
        carried (see :meth:`~coord.local_cluster.agent.MemberAgent.traced`).

        A coord error is *returned* (``ok`` False, ``error`` with ``type``
        and ``message``, plus ``exception``: the rebuilt exception); harness
        failures (:class:`RpcTimeoutError`, :class:`ChildExitedError`) raise.
        """
        result = cast("dict[str, Any]", self.call(
            "traced", method, list(args), kwargs, sync_first=sync_first, wait=wait, timeout=rpc_timeout))
        if not result.get("ok"):
            result["exception"] = _exception_from_remote(result.get("error") or {})
        return result

    def watch_log_start(self, path: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """Start the child's re-arming data-watch log on ``path``."""
        return cast("dict[str, Any]", self.call("watch_log_start", path, timeout=timeout))

    def watch_log(self, path: str | None = None, *, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The child's watch-log entries so far."""
        return cast("list[dict[str, Any]]", self.call("watch_log", path, timeout=timeout))

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
        options: Mapping[str, Any] | None = None,
        hosts: Sequence[str] | None = None,
        ports: Sequence[int] | None = None,
        argv_prefix: Callable[[int], Sequence[str]] | None = None,
        event_handler: Callable[[RpcProcess, dict[str, Any]], None] | None = None,
    ) -> None:
        """``options``: further Coordinator keyword arguments for every
        member (JSON-able; ``raft_timing`` as a dict of RaftTiming fields).

        ``hosts``/``ports``: member ``i`` binds ``hosts[i]:ports[i]``
        (default: 127.0.0.1 and free ports); ``argv_prefix(i)``: a command
        prefix for member ``i`` (e.g. ``ip netns exec NS``, see
        :mod:`coord.testing.netns`)."""
        if hosts is not None and len(hosts) != n:
            raise ValueError(f"hosts must have {n} entries")
        if ports is not None and len(ports) != n:
            raise ValueError(f"ports must have {n} entries")
        self.hosts = list(hosts) if hosts is not None else None
        self.ports = list(ports) if ports is not None else None
        self.argv_prefix = argv_prefix
        #: Given to every member before it starts (see ``RpcProcess.event_handler``).
        self.event_handler = event_handler
        if not 1 <= n <= 15:
            raise ValueError(f"n must be in 1..15, got {n}")
        self.n = n
        self.data_root = Path(data_root) if data_root is not None else None
        self.session_timeout = session_timeout
        self.secret = secret
        self.start_timeout = start_timeout
        self.log_level = log_level
        self.options = dict(options or {})
        self._own_log_dir = log_dir is None
        self.keep_logs = keep_logs
        self.log_dir: Path | None = Path(log_dir) if log_dir is not None else None
        self.members: list[MemberProcess] = []

    @property
    def addresses(self) -> list[str]:
        return [m.address for m in self.members]

    def start(self) -> Self:
        """Spawn every member, then wait until all are ready (they need each
        other for a quorum, so they must start together)."""
        if self.members:
            raise RuntimeError("cluster already started")
        if self.log_dir is None:
            self.log_dir = Path(tempfile.mkdtemp(prefix="coord-cluster-logs-"))
        ports = self.ports if self.ports is not None else free_ports(self.n)
        hosts = self.hosts if self.hosts is not None else [LOOPBACK] * self.n
        addresses = [f"{h}:{p}" for h, p in zip(hosts, ports, strict=True)]
        for i, address in enumerate(addresses):
            data_dir = None
            if self.data_root is not None:
                data_dir = self.data_root / f"member-{i}"
                data_dir.mkdir(parents=True, exist_ok=True)
            self.members.append(MemberProcess(
                address, [a for a in addresses if a != address], data_dir=data_dir,
                session_timeout=self.session_timeout, secret=self.secret, name=f"member-{i}",
                log_path=self.log_dir / f"member-{i}.log", start_timeout=self.start_timeout,
                log_level=self.log_level, options=self.options,
                argv_prefix=list(self.argv_prefix(i)) if self.argv_prefix is not None else (),
            ))
            self.members[-1].event_handler = self.event_handler
        start_all(self.members, self.start_timeout + 5.0, on_failure=lambda: self.stop(timeout=5.0))
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

    def __enter__(self) -> Self:
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
