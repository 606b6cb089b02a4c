"""The nemesis: a seeded schedule of faults against member processes.

:class:`Nemesis` alternates heal windows and fault windows (lengths drawn
from ``random.Random(seed)``); in each fault window it injects one fault:

``kill``
    SIGKILL one member (the leader half of the time); at the end of the
    window it restarts from its data_dir (a new incarnation).
``pause``
    SIGSTOP one member for longer than the election timeout, and half of
    the time for longer than the session timeout (its session must expire),
    then SIGCONT.
``network``
    (fault transport only) message loss, random delays (reordering),
    duplicates and stale re-deliveries of Raft messages on every link for
    the window (reliability notes R1: a stale AppendEntries must not make a
    follower drop acknowledged entries);
``partition``
    through a :class:`Partitioner`: isolate one member, cut a pair, or cut
    one direction; healed at the end of the window. Two implementations:
    :class:`TransportPartitioner` (the in-process fault transport inside
    every member process, no root) and :class:`NetnsPartitioner` (real TCP
    cuts between network namespaces, root only).

Every fault and every heal is recorded in the history (``process`` =
NEMESIS) *before* it is injected / *after* it is healed, with the member's
name and incarnation. :meth:`Nemesis.heal_all` (resume, restart, heal
partitions) ends every run.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from coord.local_cluster import MemberProcess
from coord.testing.netns import NetnsTopology
from coord.testing.workloads import RunContext

logger = logging.getLogger(__name__)

FAULTS = ("kill", "pause", "partition", "network")

#: Partition shapes (a 3-member cluster keeps a majority in each).
PARTITION_MODES = ("isolate", "pair", "oneway")


class Partitioner(Protocol):
    """Cuts between members, by member index (0-based)."""

    name: str

    def modes(self) -> Sequence[str]: ...

    def isolate(self, i: int) -> None: ...

    def cut_pair(self, i: int, j: int) -> None: ...

    def cut_oneway(self, src: int, dst: int) -> None: ...

    def heal_all(self) -> None: ...


class NetnsPartitioner:
    """Real TCP cuts between namespaces (member i lives in node i+1)."""

    name = "netns"

    def __init__(self, topology: NetnsTopology) -> None:
        self.topology = topology

    def modes(self) -> Sequence[str]:
        return PARTITION_MODES if self.topology.can_cut_pairs() else ("isolate",)

    def isolate(self, i: int) -> None:
        self.topology.isolate(i + 1)

    def cut_pair(self, i: int, j: int) -> None:
        self.topology.cut_pair(i + 1, j + 1)

    def cut_oneway(self, src: int, dst: int) -> None:
        self.topology.cut_oneway(src + 1, dst + 1)

    def heal_all(self) -> None:
        self.topology.heal_all()


class TransportPartitioner:
    """Message-level cuts through the fault transport inside each member
    process (``Coordinator(network_faults=...)``, driven by the
    ``network_faults`` RPC of the member agent).

    A cut is a set of blocked directed links ``(src, dst)``; each member is
    told which peers it may not send to (its policy decides the fate of
    its own outgoing messages), so a one-way cut really is one-way. A member that restarts during a cut
    comes back healed (its fault state is in memory): the nemesis never
    overlaps kills and cuts.
    """

    name = "transport"

    def __init__(self, members: Sequence[MemberProcess], rpc_timeout: float = 10.0) -> None:
        self.members = list(members)
        self.rpc_timeout = rpc_timeout
        self.blocked: set[tuple[int, int]] = set()

    def modes(self) -> Sequence[str]:
        return PARTITION_MODES

    def _apply(self) -> None:
        # the policy in member s decides the fate of what s sends: a directed
        # link (s, d) is cut in s's process
        for i, m in enumerate(self.members):
            if not m.alive:
                continue
            send_to = sorted(self.members[d].address for s, d in self.blocked if s == i)
            try:
                m.call("network_faults", "cut_to", send_to, timeout=self.rpc_timeout)
            except Exception as exc:  # noqa: BLE001 - a paused/dead member: logged
                logger.warning("transport partition on %s: %r", m.name, exc)

    def chaos(self, **params: Any) -> None:
        """Message loss, delays (reordering), duplicates and stale
        re-deliveries on every link (``clear`` turns them off)."""
        for m in self.members:
            if m.alive:
                try:
                    m.call("network_faults", "chaos", timeout=self.rpc_timeout, **params)
                except Exception as exc:  # noqa: BLE001
                    logger.warning("transport chaos on %s: %r", m.name, exc)

    def clear(self) -> None:
        self.blocked.clear()
        for m in self.members:
            if m.alive:
                try:
                    m.call("network_faults", "clear", timeout=self.rpc_timeout)
                except Exception as exc:  # noqa: BLE001
                    logger.warning("transport clear on %s: %r", m.name, exc)

    def isolate(self, i: int) -> None:
        others = [j for j in range(len(self.members)) if j != i]
        self.blocked |= {(i, j) for j in others} | {(j, i) for j in others}
        self._apply()

    def cut_pair(self, i: int, j: int) -> None:
        self.blocked |= {(i, j), (j, i)}
        self._apply()

    def cut_oneway(self, src: int, dst: int) -> None:
        self.blocked.add((src, dst))
        self._apply()

    def heal_all(self) -> None:
        self.blocked.clear()
        self._apply()


class Nemesis:
    """A seeded fault schedule against ``ctx.cluster``.

    ``on_member_started(member)`` runs after every restart (workloads
    re-arm what lived in the dead process). ``run(duration)`` blocks; run it
    on the main thread (children it spawns then get the parent-death signal,
    and Ctrl-C interrupts it).
    """

    def __init__(
        self,
        ctx: RunContext,
        rng: random.Random,
        faults: Sequence[str],
        *,
        partitioner: Partitioner | None = None,
        fault_window: tuple[float, float] = (3.0, 6.0),
        heal_window: tuple[float, float] = (3.0, 6.0),
        election_timeout_s: float = 1.6,
        on_member_started: Callable[[MemberProcess], None] | None = None,
    ) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)} (known: {', '.join(FAULTS)})")
        self.ctx = ctx
        self.rng = rng
        self.faults = [f for f in FAULTS if f in faults]
        if "partition" in self.faults and partitioner is None:
            raise ValueError("the partition fault needs a partitioner (fault transport or netns)")
        if "network" in self.faults and not isinstance(partitioner, TransportPartitioner):
            raise ValueError("the network fault needs the in-process fault transport")
        self.partitioner = partitioner
        self.fault_window = fault_window
        self.heal_window = heal_window
        self.election_timeout_s = election_timeout_s
        self.on_member_started = on_member_started
        self.injected: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- recording ---------------------------------------------------------

    def _record(self, f: str, value: dict[str, Any]) -> None:
        self.ctx.history.nemesis(f, value)
        logger.info("nemesis: %s %s", f, value)

    def _count(self, fault: str) -> None:
        self.injected[fault] = self.injected.get(fault, 0) + 1

    def _who(self, m: MemberProcess) -> dict[str, Any]:
        return {"member": m.name, "incarnation": m.incarnation}

    # -- the schedule ------------------------------------------------------

    def run(self, duration: float, stop: threading.Event | None = None) -> None:
        """Alternate heal and fault windows for ``duration`` seconds."""
        stop = stop or threading.Event()
        end = time.monotonic() + duration
        while not stop.is_set():
            if stop.wait(min(self.rng.uniform(*self.heal_window), max(0.0, end - time.monotonic()))):
                break
            if time.monotonic() >= end or not self.faults:
                break
            fault = self.rng.choice(self.faults)
            window = min(self.rng.uniform(*self.fault_window), max(0.5, end - time.monotonic()))
            try:
                if fault == "kill":
                    self._kill(window, stop)
                elif fault == "pause":
                    self._pause(stop)
                elif fault == "network":
                    self._network(window, stop)
                else:
                    self._partition(window, stop)
            except Exception:
                logger.exception("nemesis: %s failed", fault)
                self._record("nemesis-error", {"fault": fault})
                self.heal_all()

    def _target(self) -> tuple[int, MemberProcess]:
        members = self.ctx.members
        if self.rng.random() < 0.5:
            with contextlib.suppress(Exception):
                leader = self.ctx.cluster.leader(timeout=2.0)
                return members.index(leader), leader
        i = self.rng.randrange(len(members))
        return i, members[i]

    def _kill(self, window: float, stop: threading.Event) -> None:
        _, m = self._target()
        self._record("kill", {**self._who(m), "pid": m.pid})
        m.kill()
        self._count("kill")
        stop.wait(window)
        self._restart(m)

    def _restart(self, m: MemberProcess) -> bool:
        for attempt in range(3):
            try:
                m.restart(timeout=40.0)
            except Exception as exc:  # noqa: BLE001 - recorded, retried
                logger.warning("nemesis: restart of %s failed (attempt %d): %r", m.name, attempt + 1, exc)
                self._record("restart-failed", {**self._who(m), "error": repr(exc)[:300]})
                with contextlib.suppress(Exception):
                    m.kill()
                time.sleep(1.0)
                continue
            self._record("restart", {**self._who(m), "pid": m.pid})
            if self.on_member_started is not None:
                try:
                    self.on_member_started(m)
                except Exception:
                    logger.exception("nemesis: on_member_started(%s) failed", m.name)
            return True
        self.ctx.alarm(f"{m.name} could not be restarted from its data_dir (3 attempts; see restart-failed "
                       "in the history and its log)")
        return False

    def _pause(self, stop: threading.Event) -> None:
        _, m = self._target()
        session_timeout = self.ctx.session_timeout
        if self.rng.random() < 0.5:
            # longer than an election, shorter than the session timeout
            low = self.election_timeout_s + 0.4
            duration = self.rng.uniform(low, max(low, session_timeout - 0.5))
            kind = "election"
        else:
            duration = session_timeout + self.rng.uniform(1.0, 2.0)
            kind = "session"
        self._record("pause", {**self._who(m), "seconds": round(duration, 3), "longer_than": kind})
        m.pause()
        self._count("pause")
        try:
            stop.wait(duration)
        finally:
            m.resume()
            self._record("resume", self._who(m))

    def _partition(self, window: float, stop: threading.Event) -> None:
        assert self.partitioner is not None
        n = len(self.ctx.members)
        mode = self.rng.choice(list(self.partitioner.modes()))
        i = self.rng.randrange(n)
        j = self.rng.choice([x for x in range(n) if x != i])
        names = [m.name for m in self.ctx.members]
        value: dict[str, Any]
        if mode == "isolate":
            value = {"mode": mode, "isolated": names[i]}
        elif mode == "pair":
            value = {"mode": mode, "between": [names[i], names[j]]}
        else:
            value = {"mode": mode, "from": names[i], "to": names[j]}
        value["via"] = self.partitioner.name
        self._record("partition", value)
        if mode == "isolate":
            self.partitioner.isolate(i)
        elif mode == "pair":
            self.partitioner.cut_pair(i, j)
        else:
            self.partitioner.cut_oneway(i, j)
        self._count("partition")
        try:
            stop.wait(window)
        finally:
            self.partitioner.heal_all()
            self._record("heal", {"via": self.partitioner.name})

    def _network(self, window: float, stop: threading.Event) -> None:
        assert isinstance(self.partitioner, TransportPartitioner)
        rng = self.rng
        params = {
            "loss": round(rng.uniform(0.0, 0.15), 3),
            "delay": (0.0, round(rng.uniform(0.02, 0.2), 3)),
            "duplicate": round(rng.uniform(0.0, 0.2), 3),
            "stale": round(rng.uniform(0.0, 0.1), 3),
        }
        self._record("network", {**params, "via": "transport"})
        self.partitioner.chaos(**params)
        self._count("network")
        try:
            stop.wait(window)
        finally:
            self.partitioner.clear()
            self._record("heal", {"via": "transport"})

    # -- the end of a run --------------------------------------------------

    def heal_all(self) -> None:
        """Resume paused members, restart dead ones, heal every partition."""
        for m in self.ctx.members:
            if m.paused:
                m.resume()
                self._record("resume", self._who(m))
        for m in self.ctx.members:
            if not m.alive:
                self._restart(m)
        if self.partitioner is not None:
            with contextlib.suppress(Exception):
                if isinstance(self.partitioner, TransportPartitioner):
                    self.partitioner.clear()
                else:
                    self.partitioner.heal_all()
        self._record("heal-all", {})

    def abort(self) -> None:
        """On an interrupted run: resume paused members and heal partitions
        (no restarts; the caller stops everything next)."""
        for m in self.ctx.members:
            if m.paused:
                m.resume()
        if self.partitioner is not None:
            with contextlib.suppress(Exception):
                if isinstance(self.partitioner, TransportPartitioner):
                    self.partitioner.clear()
                else:
                    self.partitioner.heal_all()

    @property
    def total(self) -> int:
        return sum(self.injected.values())


__all__ = ["FAULTS", "PARTITION_MODES", "Nemesis", "NetnsPartitioner", "Partitioner", "TransportPartitioner"]
