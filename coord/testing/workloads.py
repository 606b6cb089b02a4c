"""Jepsen-style workloads: logical clients drive coord member processes and
every operation goes into a :class:`~coord.testing.history.History`.

Each workload owns one subtree under ``/jepsen`` and one or more history
keys, runs a few logical clients per member process (threads in the parent;
each one talks to one member through the harness' ``traced`` RPC, which runs
the call through the ``*_async`` API and returns ``future.zxid``), records
its final reads after the cluster healed, and has a *direct* checker for the
invariants that are not linearizability questions.

=========== ================================ ==============================================
workload    history keys / f                 direct check
=========== ================================ ==============================================
register    ``register/kN``: create, write,  values read were written (and not by a write
            cas [expected_version, v],       that failed definitely); every read at zxid z
            sync-read (sync + get), read     returns the value of the last acknowledged
            (plain get); reads return        write at or before z (linearizability: the
            [value, version]                 WGL checker, CasRegister on sync-reads)
set         ``set``: add x (sequential       lost (acked, absent at the end), unexpected,
            create), sync-read, final-read   recovered (info, present), failed-but-present,
                                             duplicates, stale sync reads, elements that
                                             vanish (WGL: SetModel)
queue       ``queue``: enqueue x, dequeue    each item dequeued at most once; every acked
            (delete lowest after a sync      item dequeued or still queued at the end
            listing), final-read             (WGL: QueueModel, FIFO)
sessions    ``sessions``: create-eph,        an ephemeral is listed exactly for
            heartbeat, read, final-read      czxid <= z < deletion (never back); its session
                                             never writes after it is gone; dead sessions'
                                             ephemerals disappear; LOST is final; LOST is
                                             told for every session that ended
lock        ``lock``: acquire (token =       tokens accepted by the guarded register only
            czxid), release; ``lock/guard``: increase; every accepted write is in the
            guard-write token, final-read    register's final list and nothing else is
watches     ``watch/wN``: write, final-read  per watcher mzxids strictly increase; all
            (+ watch logs streamed from      watchers agree on mzxid -> value; every value
            every member process)            seen was written, at its write's zxid; at the
                                             end every watcher has seen the final mzxid
=========== ================================ ==============================================

Outcome mapping (:func:`completion_type`): NoNode/NodeExists/BadVersion and
friends are answers (``fail``); ``OperationTimeoutError`` and
``CancelledRequestError`` are a definite "not applied" (coord cancels through
the log before raising them), as are ``SessionExpiredError`` (the tree never
applies a request of an ended session) and ``PoisonedError`` (refused before
proposing; also reported as an alarm); ``UnknownOutcomeError``,
``ConnectionLoss``, ``NotReadyError`` (a stopping member fails its pending
requests), an RPC timeout and a child that died are ``info``, and the logical
process is retired.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from coord.local_cluster import LocalCluster, MemberProcess, RpcError
from coord.testing.history import FAIL, INFO, INVOKE, NEMESIS, OK, Event, History, Operation, pair_operations

logger = logging.getLogger(__name__)

ROOT = "/jepsen"

#: Errors that are answers: the operation certainly did not take effect.
DEFINITE_FAILURES = frozenset({
    "NoNodeError", "NodeExistsError", "BadVersionError", "NotEmptyError",
    "NoChildrenForEphemeralsError", "BadArgumentsError", "InvalidPathError", "DataTooLargeError",
    "OperationTimeoutError", "CancelledRequestError", "SessionExpiredError", "PoisonedError",
    "RolledBackError", "RuntimeInconsistency",
})


def completion_type(error_type: str) -> str:
    """``fail`` for an error that proves the op did not happen, else ``info``."""
    return FAIL if error_type in DEFINITE_FAILURES else INFO


# --------------------------------------------------------------------------
# observations that are not client operations (watch logs, session states)
# --------------------------------------------------------------------------


class Observations:
    """A thread-safe log of things the member processes told us on their
    own (watch-log entries, listener states) or the harness looked up
    (final session ids), on the history's clock. Saved as JSON lines."""

    def __init__(self, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._items: list[dict[str, Any]] = []

    def add(self, kind: str, member: str, incarnation: int | None, **data: Any) -> None:
        item = {"time_ns": self._clock(), "kind": kind, "member": member, "incarnation": incarnation, **data}
        with self._lock:
            self._items.append(item)

    def on_member_event(self, process: Any, message: dict[str, Any]) -> None:
        """``RpcProcess.event_handler``: record streamed events."""
        data = {k: v for k, v in message.items() if k not in ("event", "incarnation")}
        self.add(str(message.get("event")), process.name, message.get("incarnation"), **data)

    @property
    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [i for i in self.items if i["kind"] == kind]

    def save(self, path: str | Path) -> None:
        Path(path).write_text("".join(json.dumps(i, sort_keys=True, default=str) + "\n" for i in self.items))

    @staticmethod
    def load(path: str | Path) -> list[dict[str, Any]]:
        p = Path(path)
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------
# run context and logical clients
# --------------------------------------------------------------------------


@dataclasses.dataclass
class RunContext:
    """What every workload, client and the nemesis of one run share."""

    history: History
    observations: Observations
    cluster: LocalCluster
    stop: threading.Event
    seed: int
    session_timeout: float
    request_timeout: float
    #: Harness-level deadline of one traced RPC (the member's own deadline
    #: plus the cancel grace, plus slack): beyond it the outcome is unknown.
    rpc_timeout: float
    alarms: list[str] = dataclasses.field(default_factory=list)
    _alarm_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def alarm(self, text: str) -> None:
        """Something that is an anomaly by itself (a poisoned replica, ...)."""
        with self._alarm_lock:
            if text not in self.alarms:
                logger.error("alarm: %s", text)
                self.alarms.append(text)

    @property
    def members(self) -> list[MemberProcess]:
        return list(self.cluster.members)


@dataclasses.dataclass
class Reply:
    """One traced call's answer (see ``MemberAgent.traced``)."""

    ok: bool
    value: Any = None
    zxid: int | None = None
    error: str | None = None
    session_id: int | None = None
    session_id_after: int | None = None
    sync_zxid: int | None = None

    @property
    def session(self) -> int | None:
        """The session the request ran under, if it did not change meanwhile."""
        if self.session_id and self.session_id == self.session_id_after:
            return self.session_id
        return None


@dataclasses.dataclass
class Completion:
    type: str
    value: Any = None
    zxid: int | None = None
    error: str | None = None


class Indeterminate(Exception):
    """The harness lost track of a call (RPC timeout, the child died)."""


class Client:
    """One logical client bound to one member process.

    Its process id changes after every ``info`` completion (Jepsen's
    convention) and whenever its member restarts (a new incarnation is a
    new client: its replica, session and watches are new).
    """

    def __init__(self, ctx: RunContext, member: MemberProcess, name: str, rng: random.Random) -> None:
        self.ctx = ctx
        self.member = member
        self.name = name
        self.rng = rng
        self.process = ctx.history.new_process()
        self.incarnation = member.incarnation
        self.state: dict[Any, Any] = {}

    def _refresh(self) -> None:
        if self.member.incarnation != self.incarnation:
            self.incarnation = self.member.incarnation
            self.process = self.ctx.history.new_process()
            self.state.clear()

    def call(self, method: str, *args: Any, sync_first: bool = False, **kwargs: Any) -> Reply:
        try:
            raw = self.member.traced(method, *args, sync_first=sync_first, wait=self.ctx.request_timeout + 10.0,
                                     rpc_timeout=self.ctx.rpc_timeout, **kwargs)
        except RpcError as exc:
            raise Indeterminate(f"{type(exc).__name__}: {exc}") from None
        error = (raw.get("error") or {}).get("type") if not raw.get("ok") else None
        if error == "PoisonedError":
            self.ctx.alarm(f"{self.member.name} is poisoned (internal apply error)")
        return Reply(bool(raw.get("ok")), raw.get("value"), raw.get("zxid"), error, raw.get("session_id"),
                     raw.get("session_id_after"), raw.get("sync_zxid"))

    def usable(self) -> bool:
        """False while the member is killed or still starting (no op is
        attempted then: a Coordinator serves calls only once start() returned)."""
        return self.member.ready

    def op(self, f: str, key: str | None, value: Any, body: Callable[[], Completion]) -> Event | None:
        """Record one operation: invoke, run ``body``, complete."""
        if not self.usable():
            return None
        self._refresh()
        invocation = self.ctx.history.invoke(self.process, f, key, value)
        try:
            done = body()
        except Indeterminate as exc:
            done = Completion(INFO, value, None, str(exc))
        except Exception as exc:  # a harness bug: the outcome is unknown
            logger.exception("client %s: %s on %s raised", self.name, f, key)
            done = Completion(INFO, value, None, f"harness: {exc!r}")
        event = self.ctx.history.complete(invocation, done.type, done.value, zxid=done.zxid, error=done.error)
        if done.type == INFO:
            self.process = self.ctx.history.new_process()
        return event

    def sleep(self, mean: float) -> None:
        self.ctx.stop.wait(self.rng.uniform(0.0, 2.0 * mean))


def from_reply(reply: Reply, ok_value: Any, fail_value: Any = None) -> Completion:
    """The completion of a single-call op."""
    if reply.ok:
        return Completion(OK, ok_value, reply.zxid)
    assert reply.error is not None
    return Completion(completion_type(reply.error), fail_value, reply.zxid, reply.error)


# --------------------------------------------------------------------------
# workload base
# --------------------------------------------------------------------------


@dataclasses.dataclass
class CheckResult:
    """The direct checker's verdict on one workload."""

    workload: str
    valid: bool
    anomalies: list[str] = dataclasses.field(default_factory=list)
    stats: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Acknowledged writes that are gone (must be 0).
    lost: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Workload:
    """Base class: a subtree, clients, final reads and a direct checker."""

    name = ""
    #: Logical clients per member process.
    clients_per_member = 1
    #: Mean think time between a client's operations, seconds.
    think = 0.15

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.base = f"{ROOT}/{self.name}"

    # -- lifecycle, called by the runner ------------------------------------

    def setup(self, client: Client) -> None:
        """Create the subtree (the cluster is healthy here)."""
        client.member.ensure_path(self.base, timeout=self.ctx.rpc_timeout)

    def member_started(self, member: MemberProcess) -> None:
        """A member process (re)started; called by the nemesis and before
        the first operation."""

    def step(self, client: Client) -> None:
        raise NotImplementedError

    def run_client(self, client: Client) -> None:
        while not self.ctx.stop.is_set():
            if not client.usable():
                self.ctx.stop.wait(0.2)
                continue
            try:
                self.step(client)
            except Exception:
                logger.exception("workload %s client %s: step failed", self.name, client.name)
                self.ctx.stop.wait(0.5)
            client.sleep(self.think)

    def final(self, clients: Sequence[Client]) -> None:
        """Final reads after heal-all and the quiet period (one client per member)."""

    # -- checking -------------------------------------------------------------

    @staticmethod
    def check(events: Sequence[Event], observations: Sequence[dict[str, Any]]) -> CheckResult:
        raise NotImplementedError


def _create_initial(client: Client, path: str) -> Completion:
    """The setup create of a node with data "0" (recorded as an op)."""
    return from_reply(client.call("create", path, b"0"), None)


def _ops(events: Iterable[Event], key_prefix: str) -> list[Operation]:
    return [op for op in pair_operations(events) if op.key is not None and op.key.startswith(key_prefix)]


def _values_by_outcome(ops: Iterable[Operation]) -> tuple[set[int], dict[str, set[int]]]:
    """The unique integer values a set of add-like operations tried to insert,
    and the same values split by completion type (ok / fail / info)."""
    attempted: set[int] = set()
    by_outcome: dict[str, set[int]] = {OK: set(), FAIL: set(), INFO: set()}
    for op in ops:
        value = int(op.invoke.value)
        attempted.add(value)
        by_outcome[op.type].add(value)
    return attempted, by_outcome


def _counts(ops: Iterable[Operation]) -> dict[str, int]:
    c = collections.Counter(op.type for op in ops)
    return {"ok": c.get(OK, 0), "fail": c.get(FAIL, 0), "info": c.get(INFO, 0)}


def _limit(items: Iterable[Any], n: int = 10) -> list[Any]:
    return sorted(items, key=str)[:n]


# --------------------------------------------------------------------------
# register: CAS register per key on znode data
# --------------------------------------------------------------------------


class RegisterWorkload(Workload):
    """Independent registers ``register/kN`` on znode data, in the shapes of
    ``coord.testing.models.CasRegister(versioned_reads=True)``:

    * ``create`` 0 (setup), ``write`` v (``set`` with version -1; result: the
      new version), ``cas`` ``[expected_version, v]`` (``set`` with that
      version: ``ok`` with the new version, or a ``BadVersionError`` fail,
      which is an answer the checker uses);
    * ``sync-read`` (``sync`` + ``get``, linearizable) and ``read`` (a plain
      local ``get``: sequentially consistent, may be stale; only the
      revision checks apply to it); both return ``[value, version]``.

    Every write and cas writes a value never written to that key before, so
    a value identifies its write.
    """

    name = "register"
    clients_per_member = 2
    keys = 3

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        self._values = {k: itertools.count(1) for k in range(self.keys)}
        self._lock = threading.Lock()

    def key(self, k: int) -> str:
        return f"register/k{k}"

    def path(self, k: int) -> str:
        return f"{self.base}/k{k}"

    def setup(self, client: Client) -> None:
        super().setup(client)
        for k in range(self.keys):
            path = self.path(k)
            client.op("create", self.key(k), 0,
                      functools.partial(_create_initial, client, path))

    def _next(self, k: int) -> int:
        with self._lock:
            return next(self._values[k])

    def _read(self, client: Client, k: int, sync: bool) -> Completion:
        reply = client.call("get", self.path(k), sync_first=sync)
        if not reply.ok:
            return from_reply(reply, None)
        data, stat = reply.value
        client.state[k] = stat.version
        return Completion(OK, [int(data), stat.version], reply.zxid)

    def _set(self, client: Client, k: int, v: int, version: int) -> Completion:
        reply = client.call("set", self.path(k), str(v).encode(), version=version)
        if reply.ok:
            client.state[k] = reply.value.version
            return Completion(OK, reply.value.version, reply.zxid)
        return from_reply(reply, None)

    def step(self, client: Client) -> None:
        k = client.rng.randrange(self.keys)
        key = self.key(k)
        r = client.rng.random()
        if r < 0.3:
            client.op("sync-read", key, None, lambda: self._read(client, k, True))
        elif r < 0.45:
            client.op("read", key, None, lambda: self._read(client, k, False))
        elif r < 0.65:
            v = self._next(k)
            client.op("write", key, v, lambda: self._set(client, k, v, -1))
        else:
            expected = client.state.get(k, client.rng.randrange(3))
            v = self._next(k)
            client.op("cas", key, [expected, v], lambda: self._set(client, k, v, expected))

    def final(self, clients: Sequence[Client]) -> None:
        for client in clients:
            for k in range(self.keys):
                client.op("sync-read", self.key(k), None, functools.partial(self._read, client, k, True))

    @staticmethod
    def written_value(op: Operation) -> int | None:
        if op.f in ("write", "create"):
            return int(op.invoke.value)
        if op.f == "cas":
            return int(op.invoke.value[1])
        return None

    @staticmethod
    def check(events: Sequence[Event], observations: Sequence[dict[str, Any]]) -> CheckResult:
        ops = _ops(events, "register/")
        result = CheckResult("register", True, stats=_counts(ops))
        by_key: dict[str, list[Operation]] = collections.defaultdict(list)
        for op in ops:
            by_key[str(op.key)].append(op)
        for key, key_ops in sorted(by_key.items()):
            written: dict[int, Operation] = {}  # value -> its write (values are unique per key)
            for op in key_ops:
                v = RegisterWorkload.written_value(op)
                if v is not None:
                    written[v] = op
            oks = sorted(
                ((op.completion.zxid, RegisterWorkload.written_value(op)) for op in key_ops
                 if RegisterWorkload.written_value(op) is not None and op.type == OK
                 and op.completion is not None and op.completion.zxid is not None),
                key=lambda t: t[0],
            )
            for op in key_ops:
                if op.f not in ("read", "sync-read") or op.type != OK or op.completion is None:
                    continue
                value, z = op.completion.value, op.completion.zxid
                if value is None:
                    continue
                v = int(value[0])
                writer = written.get(v)
                if writer is None:
                    result.anomalies.append(f"{key}: read {v} that no write wrote (event {op.completion.index})")
                    continue
                if writer.type == FAIL:
                    result.anomalies.append(
                        f"{key}: {op.f} (event {op.completion.index}) returned {v}, whose write failed "
                        f"definitely ({writer.completion.error if writer.completion else ''})")
                    continue
                if z is None or writer.type != OK or writer.completion is None or writer.completion.zxid is None:
                    continue
                wz = writer.completion.zxid
                last = None
                for oz, ov in oks:
                    if oz > z:
                        break
                    last = (oz, ov)
                if wz > z:
                    result.anomalies.append(
                        f"{key}: {op.f} at zxid {z} (event {op.completion.index}) returned {v}, "
                        f"written later at zxid {wz}")
                elif last is not None and last[0] > wz:
                    result.anomalies.append(
                        f"{key}: {op.f} at zxid {z} (event {op.completion.index}) returned {v} (zxid {wz}) "
                        f"but {last[1]} was acknowledged at zxid {last[0]} <= {z} (stale or lost)")
        result.valid = not result.anomalies
        return result


# --------------------------------------------------------------------------
# set: unique sequential children
# --------------------------------------------------------------------------


def _element_of(name: str) -> int:
    return int(name[1 : name.index("-")])


class SetWorkload(Workload):
    """``add x`` creates ``/jepsen/set/e<x>-<seq>`` (sequential);
    ``sync-read`` is ``sync`` + ``get_children``; ``final-read`` (the same,
    after healing) happens on every member. The shapes of
    ``coord.testing.models.SetModel(reads=("sync-read", "final-read"))``."""

    name = "set"

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        self._values = itertools.count()
        self._lock = threading.Lock()

    def _add(self, client: Client, x: int) -> Completion:
        reply = client.call("create", f"{self.base}/e{x:08d}-", str(x).encode(), sequence=True)
        return from_reply(reply, x, x)

    def _read(self, client: Client) -> Completion:
        reply = client.call("get_children", self.base, sync_first=True)
        if not reply.ok:
            return from_reply(reply, None)
        return Completion(OK, sorted(_element_of(n) for n in reply.value), reply.zxid)

    def step(self, client: Client) -> None:
        if client.rng.random() < 0.85:
            with self._lock:
                x = next(self._values)
            client.op("add", "set", x, lambda: self._add(client, x))
        else:
            client.op("sync-read", "set", None, lambda: self._read(client))

    def final(self, clients: Sequence[Client]) -> None:
        for client in clients:
            client.op("final-read", "set", None, functools.partial(self._read, client))

    @staticmethod
    def check(events: Sequence[Event], observations: Sequence[dict[str, Any]]) -> CheckResult:
        ops = _ops(events, "set")
        result = CheckResult("set", True, stats=_counts(ops))
        adds = [op for op in ops if op.f == "add"]
        attempted, outcome = _values_by_outcome(adds)
        ok_adds, info_adds, fail_adds = outcome[OK], outcome[INFO], outcome[FAIL]
        finals = [op for op in ops if op.f == "final-read" and op.type == OK]
        if not finals:
            result.anomalies.append("no final read succeeded")
            result.valid = False
            return result
        final_lists = [list(op.completion.value) for op in finals]  # type: ignore[union-attr]
        final = final_lists[0]
        if any(sorted(f) != sorted(final) for f in final_lists[1:]):
            result.anomalies.append("members disagree on the final set")
        final_set = set(final)
        counts = collections.Counter(final)
        lost = ok_adds - final_set
        unexpected = final_set - attempted
        recovered = info_adds & final_set
        failed_present = fail_adds & final_set
        duplicates = {x for x, n in counts.items() if n > 1}
        if lost:
            result.anomalies.append(f"lost {len(lost)} acknowledged adds: {_limit(lost)}")
        if unexpected:
            result.anomalies.append(f"unexpected elements: {_limit(unexpected)}")
        if failed_present:
            result.anomalies.append(f"adds that failed definitely are present: {_limit(failed_present)}")
        if duplicates:
            result.anomalies.append(f"elements added twice: {_limit(duplicates)}")
        # sync reads: linearizable for a grow-only set
        reads = [op for op in ops if op.f == "sync-read" and op.type == OK and op.completion is not None]
        acked = sorted((op.completion.time_ns, int(op.invoke.value)) for op in adds
                       if op.type == OK and op.completion is not None)
        ever_seen: set[int] = set()
        stale = 0
        for r in reads:
            seen = set(r.completion.value)  # type: ignore[union-attr]
            ever_seen |= seen
            missing = {x for t, x in acked if t < r.invoke.time_ns} - seen
            if missing:
                stale += 1
                result.anomalies.append(
                    f"sync read (event {r.invoke.index}) misses adds acknowledged before it: {_limit(missing, 5)}")
        ordered = sorted(reads, key=lambda op: op.invoke.time_ns)
        for i, r1 in enumerate(ordered):
            for r2 in ordered[i + 1 :]:
                if r2.invoke.time_ns > r1.completion.time_ns:  # type: ignore[union-attr]
                    gone = set(r1.completion.value) - set(r2.completion.value)  # type: ignore[union-attr]
                    if gone:
                        result.anomalies.append(
                            f"read {r2.completion.index} lost {_limit(gone, 5)} seen by earlier read "  # type: ignore[union-attr]
                            f"{r1.completion.index}")  # type: ignore[union-attr]
                        break
        vanished = ever_seen - final_set
        if vanished:
            result.anomalies.append(f"elements read during the run but absent at the end: {_limit(vanished)}")
        result.lost = len(lost) + len(vanished - lost)
        result.stats.update(attempted=len(attempted), acknowledged=len(ok_adds), lost=len(lost),
                            unexpected=len(unexpected), recovered=len(recovered),
                            unknown_absent=len(info_adds - final_set), final_size=len(final), reads=len(reads))
        result.valid = not result.anomalies
        return result


# --------------------------------------------------------------------------
# queue: sequential create, delete-lowest
# --------------------------------------------------------------------------


class QueueWorkload(Workload):
    """``enqueue x`` creates ``/jepsen/queue/q-<seq>`` with data x;
    ``dequeue`` lists the children after a ``sync`` and deletes the lowest
    it can (trying the next one when a competitor took it), returning its x
    (a ``fail`` with error ``empty`` when the listing was empty);
    ``final-read`` lists what is left in sequence order. The shapes of
    ``coord.testing.models.QueueModel(order="fifo", reads=("final-read",))``:
    sequence numbers are assigned when a create is applied, so "lowest
    child" is FIFO in linearization order."""

    name = "queue"
    max_attempts = 4

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        self._values = itertools.count()
        self._lock = threading.Lock()

    def _enqueue(self, client: Client, x: int) -> Completion:
        return from_reply(client.call("create", f"{self.base}/q-", str(x).encode(), sequence=True), x, x)

    def _dequeue(self, client: Client) -> Completion:
        # a linearizable listing: "empty" is then a definite answer
        listing = client.call("get_children", self.base, sync_first=True)
        if not listing.ok:
            return Completion(FAIL, None, None, f"list: {listing.error}")
        if not listing.value:
            return Completion(FAIL, None, listing.zxid, "empty")
        for name in sorted(listing.value)[: self.max_attempts]:
            path = f"{self.base}/{name}"
            got = client.call("get", path)
            if not got.ok:
                if got.error == "NoNodeError":
                    continue
                return Completion(FAIL, None, None, f"get: {got.error}")
            x = int(got.value[0])
            reply = client.call("delete", path, version=got.value[1].version)
            if reply.ok:
                return Completion(OK, x, reply.zxid)
            if reply.error == "NoNodeError":
                continue
            kind = completion_type(reply.error or "")
            # info: x may have been dequeued by this op
            return Completion(kind, x if kind == INFO else None, reply.zxid, reply.error)
        return Completion(FAIL, None, None, "exhausted: every item tried was taken by others")

    def _drain_read(self, client: Client) -> Completion:
        listing = client.call("get_children", self.base, sync_first=True)
        if not listing.ok:
            return from_reply(listing, None)
        items = []
        for name in sorted(listing.value):
            got = client.call("get", f"{self.base}/{name}")
            if not got.ok:
                return Completion(FAIL, None, got.zxid, f"get {name}: {got.error}")
            items.append(int(got.value[0]))
        return Completion(OK, items, listing.zxid)

    def step(self, client: Client) -> None:
        if client.rng.random() < 0.55:
            with self._lock:
                x = next(self._values)
            client.op("enqueue", "queue", x, lambda: self._enqueue(client, x))
        else:
            client.op("dequeue", "queue", None, lambda: self._dequeue(client))

    def final(self, clients: Sequence[Client]) -> None:
        for client in clients:
            client.op("final-read", "queue", None, functools.partial(self._drain_read, client))

    @staticmethod
    def check(events: Sequence[Event], observations: Sequence[dict[str, Any]]) -> CheckResult:
        ops = _ops(events, "queue")
        result = CheckResult("queue", True, stats=_counts(ops))
        enq = [op for op in ops if op.f == "enqueue"]
        attempted, outcome = _values_by_outcome(enq)
        ok_enq, fail_enq = outcome[OK], outcome[FAIL]
        deq = [op for op in ops if op.f == "dequeue" and op.completion is not None]
        dequeued = collections.Counter(int(op.completion.value) for op in deq  # type: ignore[union-attr]
                                       if op.type == OK)
        maybe_dequeued = {int(op.completion.value) for op in deq  # type: ignore[union-attr]
                          if op.type == INFO and op.completion.value is not None}  # type: ignore[union-attr]
        finals = [op for op in ops if op.f == "final-read" and op.type == OK]
        if not finals:
            result.anomalies.append("no final read succeeded")
            result.valid = False
            return result
        final_lists = [list(op.completion.value) for op in finals]  # type: ignore[union-attr]
        remaining = collections.Counter(final_lists[0])
        if any(sorted(f) != sorted(final_lists[0]) for f in final_lists[1:]):
            result.anomalies.append("members disagree on the final queue")
        twice = {x for x, n in dequeued.items() if n > 1}
        if twice:
            result.anomalies.append(f"items dequeued more than once: {_limit(twice)}")
        both = set(dequeued) & set(remaining)
        if both:
            result.anomalies.append(f"items dequeued but still queued: {_limit(both)}")
        dup_remaining = {x for x, n in remaining.items() if n > 1}
        if dup_remaining:
            result.anomalies.append(f"items queued twice: {_limit(dup_remaining)}")
        unexpected = (set(dequeued) | set(remaining)) - attempted
        if unexpected:
            result.anomalies.append(f"unexpected items: {_limit(unexpected)}")
        failed_seen = fail_enq & (set(dequeued) | set(remaining))
        if failed_seen:
            result.anomalies.append(f"enqueues that failed definitely were seen: {_limit(failed_seen)}")
        lost = ok_enq - set(dequeued) - set(remaining) - maybe_dequeued
        if lost:
            result.anomalies.append(f"lost {len(lost)} acknowledged items: {_limit(lost)}")
        result.lost = len(lost)
        result.stats.update(enqueued=len(ok_enq), dequeued=sum(dequeued.values()),
                            remaining=sum(remaining.values()), lost=len(lost),
                            maybe_dequeued=len(maybe_dequeued),
                            recovered=len((attempted - ok_enq - fail_enq) & (set(dequeued) | set(remaining))))
        result.valid = not result.anomalies
        return result


# --------------------------------------------------------------------------
# sessions: ephemerals of dead sessions disappear exactly once, never early
# --------------------------------------------------------------------------


class SessionsWorkload(Workload):
    """Each member keeps one ephemeral ``/jepsen/sessions/<member>-<n>``
    for its current session (a new one whenever its session changed) and
    heartbeats ``/jepsen/sessions-hb/<member>``; every member reads the
    children (a local read: its zxid pins the replica state).

    The ephemeral's czxid ``c`` and the first read at zxid ``z`` that no
    longer lists it bound its deletion ``d``: reads must list it exactly for
    ``c <= z < d``, and no write of its session may be applied at
    ``zxid >= d``. Session states streamed from every member process check
    that LOST is final and told for every session that ended.
    """

    name = "sessions"
    think = 0.2

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        self.hb_base = f"{ROOT}/sessions-hb"
        self._names = itertools.count()
        self._lock = threading.Lock()

    def setup(self, client: Client) -> None:
        super().setup(client)
        client.member.ensure_path(self.hb_base, timeout=self.ctx.rpc_timeout)
        for m in self.ctx.members:
            client.member.ensure_path(f"{self.hb_base}/{m.name}", timeout=self.ctx.rpc_timeout)

    def _create_eph(self, client: Client, path: str) -> Completion:
        reply = client.call("create", path, client.member.name.encode(), ephemeral=True, include_data=True)
        if not reply.ok:
            return from_reply(reply, None, {"path": path})
        _, stat = reply.value
        client.state["sessions"] = client.state.get("sessions", set()) | {stat.ephemeralOwner}
        return Completion(OK, {"path": path, "owner": stat.ephemeralOwner, "czxid": stat.czxid}, reply.zxid)

    def _ensure_eph(self, client: Client) -> None:
        with self._lock:
            n = next(self._names)
        path = f"{self.base}/{client.member.name}-{n}"
        client.op("create-eph", "sessions",
                  {"path": path, "member": client.member.name, "incarnation": client.member.incarnation},
                  lambda: self._create_eph(client, path))

    def _heartbeat(self, client: Client) -> Completion:
        reply = client.call("set", f"{self.hb_base}/{client.member.name}", str(time.time_ns()).encode())
        client.state["sid"] = reply.session_id_after
        return from_reply(reply, {"session": reply.session, "member": client.member.name,
                                  "incarnation": client.member.incarnation})

    def _read(self, client: Client) -> Completion:
        reply = client.call("get_children", self.base)
        return from_reply(reply, sorted(reply.value) if reply.ok else None)

    def step(self, client: Client) -> None:
        sid = client.state.get("sid")
        if sid and sid not in client.state.get("sessions", set()):
            self._ensure_eph(client)
        elif client.rng.random() < 0.5:
            client.op("heartbeat", "sessions", None, lambda: self._heartbeat(client))
        else:
            client.op("read", "sessions", None, lambda: self._read(client))

    def final(self, clients: Sequence[Client]) -> None:
        # every member's current session gets its ephemeral
        for client in clients:
            client.op("heartbeat", "sessions", None, functools.partial(self._heartbeat, client))
            sid = client.state.get("sid")
            if sid and sid not in client.state.get("sessions", set()):
                self._ensure_eph(client)
        # dead sessions must expire: wait (bounded) until only live sessions' ephemerals are left
        deadline = time.monotonic() + 2.5 * self.ctx.session_timeout + 5.0
        current: dict[str, int] = {}
        while True:
            current = {}
            for client in clients:
                try:
                    current[client.member.name] = int(client.member.session_id(timeout=5.0))
                except Exception as exc:  # noqa: BLE001 - recorded as missing
                    logger.warning("final session id of %s: %r", client.member.name, exc)
            owners = self._owners(clients[0]) if clients else {}
            if owners is not None and set(owners.values()) <= set(current.values()):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for name, sid in current.items():
            member = next(m for m in self.ctx.members if m.name == name)
            self.ctx.observations.add("final_session", name, member.incarnation, session_id=sid)
        for client in clients:
            client.op("final-read", "sessions", None, functools.partial(self._final_read, client))

    def _owners(self, client: Client) -> dict[str, int] | None:
        try:
            children = client.member.get_children(self.base, timeout=10.0)
            out = {}
            for name in children:
                stat = client.member.exists(f"{self.base}/{name}", timeout=10.0)
                if stat is not None:
                    out[name] = stat.ephemeralOwner
            return out
        except Exception:  # noqa: BLE001 - retried by the caller
            return None

    def _final_read(self, client: Client) -> Completion:
        reply = client.call("get_children", self.base, sync_first=True)
        if not reply.ok:
            return from_reply(reply, None)
        owners = {}
        for name in reply.value:
            got = client.call("exists", f"{self.base}/{name}")
            if got.ok and got.value is not None:
                owners[name] = got.value.ephemeralOwner
        return Completion(OK, {"children": sorted(reply.value), "owners": owners}, reply.zxid)

    @staticmethod
    def check(events: Sequence[Event], observations: Sequence[dict[str, Any]]) -> CheckResult:
        ops = _ops(events, "sessions")
        result = CheckResult("sessions", True, stats=_counts(ops))
        creates = {}  # path -> (owner, czxid, member, incarnation)
        attempted_paths = set()
        for op in ops:
            if op.f == "create-eph":
                attempted_paths.add(op.invoke.value["path"])
                if op.type == OK and op.completion is not None:
                    v = op.completion.value
                    creates[v["path"]] = (v["owner"], v["czxid"], op.invoke.value["member"],
                                          op.invoke.value["incarnation"])
        prefix_len = len(f"{ROOT}/sessions/")
        reads = sorted(
            ((op.completion.zxid, set(op.completion.value), op.completion.index) for op in ops
             if op.f == "read" and op.type == OK and op.completion is not None and op.completion.zxid is not None),
            key=lambda t: t[0],
        )
        finals = [op.completion.value for op in ops
                  if op.f == "final-read" and op.type == OK and op.completion is not None]
        final_zxids = [op.completion.zxid for op in ops
                       if op.f == "final-read" and op.type == OK and op.completion is not None]
        if finals:
            reads.append((max(z for z in final_zxids if z is not None), set(finals[0]["children"]), -1))
            if any(f["children"] != finals[0]["children"] for f in finals[1:]):
                result.anomalies.append("members disagree on the final ephemerals")
        # replicas agree at equal zxids
        by_zxid: dict[int, set[str]] = {}
        for z, seen, idx in reads:
            if z in by_zxid and by_zxid[z] != seen:
                result.anomalies.append(f"two reads at zxid {z} disagree (event {idx})")
            by_zxid.setdefault(z, seen)
        # every listed ephemeral was attempted
        listed = set().union(*(s for _, s, _ in reads)) if reads else set()
        strangers = {n for n in listed if f"{ROOT}/sessions/{n}" not in attempted_paths}
        if strangers:
            result.anomalies.append(f"ephemerals nobody created: {_limit(strangers)}")
        # presence = [czxid, deletion)
        gone_at: dict[str, int] = {}
        for path, (owner, czxid, _member, _inc) in creates.items():
            name = path[prefix_len:]
            state = "before"
            for z, seen, idx in reads:
                present = name in seen
                if z < czxid:
                    if present:
                        result.anomalies.append(f"{name} listed at zxid {z} before its creation at {czxid}")
                    continue
                if state == "before":
                    state = "present"
                if present and state == "gone":
                    result.anomalies.append(
                        f"{name} (session 0x{owner:x}) reappeared at zxid {z} after it was gone at {gone_at[path]}"
                        f" (event {idx})")
                    break
                if not present and state == "present":
                    state = "gone"
                    gone_at[path] = z
        # a session never writes after its ephemeral is gone
        first_gone_by_session: dict[int, int] = {}
        for path, z in gone_at.items():
            owner = creates[path][0]
            first_gone_by_session[owner] = min(z, first_gone_by_session.get(owner, z))
        early = 0
        for op in ops:
            if op.f != "heartbeat" or op.type != OK or op.completion is None:
                continue
            sid = (op.completion.value or {}).get("session")
            hz = op.completion.zxid
            if sid is None or hz is None:
                continue
            gone = first_gone_by_session.get(sid)
            if gone is not None and hz >= gone:
                early += 1
                if early <= 5:
                    result.anomalies.append(
                        f"session 0x{sid:x} wrote at zxid {hz} but its ephemeral was already gone at zxid {gone}"
                        " (deleted while the session was alive)")
        # the end: only live sessions' ephemerals are left, and each live session has its own
        current = {o["member"]: o["session_id"] for o in observations if o["kind"] == "final_session"}
        if finals:
            owners = finals[0]["owners"]
            live = set(current.values())
            leaked = {n: o for n, o in owners.items() if o not in live}
            if leaked:
                result.anomalies.append(
                    f"ephemerals of ended sessions still present after the quiet period: {_limit(leaked)}")
            for path, (owner, _c, member, _inc) in creates.items():
                if owner in live and path[prefix_len:] not in owners:
                    result.anomalies.append(
                        f"{path} of live session 0x{owner:x} ({member}) is gone at the end")
        # listener states: LOST is final, and told for every ended session of a surviving incarnation
        states: dict[tuple[str, int], list[tuple[str, int]]] = collections.defaultdict(list)
        for o in observations:
            if o["kind"] == "session_state":
                states[(o["member"], o["incarnation"])].append((o["state"], o.get("session_id") or 0))
        for (member, inc), seq in sorted(states.items()):
            segment = 0
            seen_in: dict[int, int] = {}
            for state, sid in seq:
                if state == "LOST":
                    segment += 1
                elif state == "CONNECTED":
                    if sid in seen_in and seen_in[sid] != segment:
                        result.anomalies.append(
                            f"{member}#{inc}: session 0x{sid:x} CONNECTED again after LOST")
                    seen_in.setdefault(sid, segment)
        killed = {f"{e.value.get('member')}#{e.value.get('incarnation')}"
                  for e in events if e.process == NEMESIS and e.f == "kill" and isinstance(e.value, dict)}
        ended_by_inc: dict[tuple[str, int], set[int]] = collections.defaultdict(set)
        for path, (owner, _c, member, inc) in creates.items():
            if path in gone_at:
                ended_by_inc[(member, inc)].add(owner)
        for (member, inc), ended in sorted(ended_by_inc.items()):
            if f"{member}#{inc}" in killed:
                continue
            losts = sum(1 for s, _ in states.get((member, inc), []) if s == "LOST")
            if losts < len(ended):
                result.anomalies.append(
                    f"{member}#{inc}: {len(ended)} of its sessions ended but its listener heard LOST {losts} times")
        result.stats.update(ephemerals=len(creates), deleted=len(gone_at), reads=len(reads),
                            lost_states=sum(1 for seq in states.values() for s, _ in seq if s == "LOST"))
        result.valid = not result.anomalies
        return result


# --------------------------------------------------------------------------
# lock with fencing tokens and a guarded register
# --------------------------------------------------------------------------


class LockWorkload(Workload):
    """A znode lock (sequential ephemeral children; the lowest holds it).

    The holder's token is the czxid of its lock znode. While holding, it
    writes its token into the guarded register ``/jepsen/lock-guard``, whose
    data is the list of accepted tokens: a write is a versioned set that
    appends the token, refused when the token is lower than the last one
    accepted. Mutual exclusion is *expected* to break under pauses (the
    holder does not know it lost the lock), so overlaps are counted, not
    flagged; what must hold is that accepted tokens only increase.
    """

    name = "lock"
    think = 0.1
    acquire_wait = 4.0

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        self.guard = f"{ROOT}/lock-guard"

    def setup(self, client: Client) -> None:
        super().setup(client)
        client.op("guard-write", "lock/guard", 0,
                  lambda: from_reply(client.call("create", self.guard, b"[]"), 0, 0))

    def _clean_orphans(self, client: Client) -> None:
        """Delete lock znodes this member created earlier and no longer
        waits on: a create whose outcome was unknown may have left one, and
        it would block everyone for as long as this member's session lives."""
        listing = client.call("get_children", self.base)
        for name in listing.value if listing.ok else []:
            got = client.call("get", f"{self.base}/{name}")
            if got.ok and got.value[0] == client.member.name.encode():
                client.call("delete", f"{self.base}/{name}")

    def _acquire(self, client: Client) -> Completion:
        self._clean_orphans(client)
        reply = client.call("create", f"{self.base}/l-", client.member.name.encode(), ephemeral=True,
                            sequence=True, include_data=True)
        if not reply.ok:
            return from_reply(reply, None)
        path, stat = reply.value
        token = stat.czxid
        client.state["lock_path"] = path
        name = path.rsplit("/", 1)[1]
        deadline = time.monotonic() + self.acquire_wait
        while True:
            children = client.call("get_children", self.base)
            if children.ok:
                if name not in children.value:
                    client.state.pop("lock_path", None)
                    return Completion(FAIL, {"token": token, "path": path}, children.zxid, "lock node gone")
                if sorted(children.value)[0] == name:
                    return Completion(OK, {"token": token, "path": path}, children.zxid)
            if time.monotonic() > deadline or self.ctx.stop.is_set():
                self._release_quietly(client, path)
                return Completion(FAIL, {"token": token, "path": path}, None, "timed out waiting")
            time.sleep(0.05)

    def _release_quietly(self, client: Client, path: str) -> None:
        with contextlib.suppress(Indeterminate):
            client.call("delete", path)
        client.state.pop("lock_path", None)

    def _guard_write(self, client: Client, token: int) -> Completion:
        read = client.call("get", self.guard, sync_first=True)
        if not read.ok:
            return Completion(FAIL, token, None, f"read: {read.error}")
        data, stat = read.value
        accepted = json.loads(data)
        if accepted and token < accepted[-1]:
            return Completion(FAIL, token, read.zxid, f"refused: {token} < {accepted[-1]}")
        reply = client.call("set", self.guard, json.dumps(accepted + [token]).encode(), version=stat.version)
        return from_reply(reply, token, token)

    def step(self, client: Client) -> None:
        done = client.op("acquire", "lock", None, lambda: self._acquire(client))
        if done is None or done.type != OK:
            return
        token, path = done.value["token"], done.value["path"]
        for _ in range(client.rng.randint(1, 3)):
            client.op("guard-write", "lock/guard", token, lambda: self._guard_write(client, token))
            client.sleep(0.05)
        client.op("release", "lock", {"token": token, "path": path},
                  lambda: from_reply(client.call("delete", path), {"token": token}, {"token": token}))
        client.state.pop("lock_path", None)

    def final(self, clients: Sequence[Client]) -> None:
        if not clients:
            return
        client = clients[0]

        def read() -> Completion:
            reply = client.call("get", self.guard, sync_first=True)
            return from_reply(reply, json.loads(reply.value[0]) if reply.ok else None)

        client.op("final-read", "lock/guard", None, read)

    @staticmethod
    def check(events: Sequence[Event], observations: Sequence[dict[str, Any]]) -> CheckResult:
        ops = _ops(events, "lock")
        result = CheckResult("lock", True, stats=_counts(ops))
        writes = [op for op in ops if op.f == "guard-write" and op.invoke.value != 0]
        finals = [op for op in ops if op.f == "final-read" and op.type == OK and op.completion is not None]
        if not finals:
            result.anomalies.append("no final read of the guarded register")
            result.valid = False
            return result
        accepted = list(finals[0].completion.value)  # type: ignore[union-attr]
        if any(b < a for a, b in itertools.pairwise(accepted)):
            bad = next((a, b) for a, b in itertools.pairwise(accepted) if b < a)
            result.anomalies.append(f"guarded register accepted token {bad[1]} after {bad[0]}")
        ok_by_zxid = sorted((op.completion.zxid, int(op.invoke.value)) for op in writes
                            if op.type == OK and op.completion is not None and op.completion.zxid is not None)
        if any(b[1] < a[1] for a, b in itertools.pairwise(ok_by_zxid)):
            result.anomalies.append("acknowledged guard writes are not in token order by zxid")
        in_final = collections.Counter(accepted)
        ok_count = collections.Counter(int(op.invoke.value) for op in writes if op.type == OK)
        maybe_count = collections.Counter(int(op.invoke.value) for op in writes if op.type in (OK, INFO))
        lost = {t: n - in_final[t] for t, n in ok_count.items() if in_final[t] < n}
        if lost:
            result.anomalies.append(f"acknowledged guard writes missing from the register: {_limit(lost)}")
        extra = {t for t, n in in_final.items() if n > maybe_count[t]}
        if extra:
            result.anomalies.append(f"tokens in the register that no (ok/info) write put there: {_limit(extra)}")
        # mutual exclusion as seen by clients (expected to break under faults: a statistic)
        holds = []
        holding: dict[int, Operation] = {}
        acquired = 0
        for op in ops:  # invocation order
            if op.f == "acquire" and op.type == OK:
                holding[op.process] = op
                acquired += 1
            elif op.f == "release" and op.completion is not None and op.process in holding:
                a = holding.pop(op.process)
                if a.completion is not None:
                    holds.append((a.completion.time_ns, op.completion.time_ns))
        holds.sort()
        overlaps = sum(1 for a, b in itertools.pairwise(holds) if b[0] < a[1])
        result.lost = sum(lost.values())
        refused = sum(1 for op in writes if op.type == FAIL and op.completion is not None
                      and (op.completion.error or "").startswith("refused"))
        result.stats.update(accepted=len(accepted), refused=refused, acquired=acquired, overlapping_holds=overlaps)
        result.valid = not result.anomalies
        return result


# --------------------------------------------------------------------------
# watches: every watcher sees the same order, no gaps
# --------------------------------------------------------------------------


class WatchesWorkload(Workload):
    """Writers set ``/jepsen/watch/wN`` to unique values; every member
    process keeps a re-arming data watch on each key and streams what it
    reads after each event (``watch_log`` observations)."""

    name = "watch"
    keys = 2
    think = 0.2

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        self._values = itertools.count(1)
        self._lock = threading.Lock()
        self._armed: set[tuple[str, int]] = set()
        self._arm_lock = threading.Lock()

    def path(self, k: int) -> str:
        return f"{self.base}/w{k}"

    def setup(self, client: Client) -> None:
        super().setup(client)
        for k in range(self.keys):
            path = self.path(k)
            client.op("write", f"watch/w{k}", 0, functools.partial(_create_initial, client, path))

    def member_started(self, member: MemberProcess) -> None:
        with self._arm_lock:
            if (member.name, member.incarnation) in self._armed:
                return
            try:
                member.sync(timeout=self.ctx.rpc_timeout)  # so that the first read sees the nodes
                for k in range(self.keys):
                    member.watch_log_start(self.path(k), timeout=self.ctx.rpc_timeout)
            except Exception as exc:  # noqa: BLE001 - retried by the client loop
                logger.info("arming watch logs on %s: %r", member.name, exc)
                return
            self._armed.add((member.name, member.incarnation))

    def step(self, client: Client) -> None:
        if not client.usable():
            return
        if (client.member.name, client.member.incarnation) not in self._armed:
            self.member_started(client.member)
        k = client.rng.randrange(self.keys)
        with self._lock:
            v = next(self._values)
        client.op("write", f"watch/w{k}", v,
                  lambda: from_reply(client.call("set", self.path(k), str(v).encode()), v, v))

    def final(self, clients: Sequence[Client]) -> None:
        for client in clients:
            if (client.member.name, client.member.incarnation) not in self._armed:
                self.member_started(client.member)
        finals: dict[int, int] = {}
        for client in clients:
            for k in range(self.keys):
                def read(client: Client = client, k: int = k) -> Completion:
                    reply = client.call("get", self.path(k), sync_first=True)
                    if not reply.ok:
                        return from_reply(reply, None)
                    finals[k] = reply.value[1].mzxid
                    return Completion(OK, {"value": int(reply.value[0]), "mzxid": reply.value[1].mzxid},
                                      reply.zxid)

                client.op("final-read", f"watch/w{k}", None, read)
        # let the streamed watch logs catch up (bounded)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            last: dict[tuple[str, int, str], int] = {}
            for o in self.ctx.observations.of("watch_log"):
                if o.get("mzxid") is not None:
                    last[(o["member"], o["incarnation"], o["path"])] = o["mzxid"]
            if all(last.get((c.member.name, c.member.incarnation, self.path(k))) == z
                   for c in clients for k, z in finals.items()):
                break
            time.sleep(0.1)

    @staticmethod
    def check(events: Sequence[Event], observations: Sequence[dict[str, Any]]) -> CheckResult:
        ops = _ops(events, "watch/")
        result = CheckResult("watch", True, stats=_counts(ops))
        logs: dict[tuple[str, int, str], list[dict[str, Any]]] = collections.defaultdict(list)
        for o in observations:
            if o["kind"] == "watch_log":
                logs[(o["member"], o["incarnation"], o["path"])].append(o)
        # writes by key: value -> op
        writes: dict[str, dict[int, Operation]] = collections.defaultdict(dict)
        for op in ops:
            if op.f == "write":
                writes[str(op.key)][int(op.invoke.value)] = op
        finals: dict[str, int] = {}
        for op in ops:
            if op.f == "final-read" and op.type == OK and op.completion is not None:
                mz = op.completion.value["mzxid"]
                if str(op.key) in finals and finals[str(op.key)] != mz:
                    result.anomalies.append(f"{op.key}: members disagree on the final mzxid")
                finals[str(op.key)] = max(mz, finals.get(str(op.key), mz))
        seen_at: dict[tuple[str, int], tuple[int | None, str | None]] = {}
        events_seen = 0
        for (member, inc, path), entries in sorted(logs.items()):
            key = "watch/" + path.rsplit("/", 1)[1]
            entries.sort(key=lambda e: e["seq"])
            prev = None
            existed = None
            for e in entries:
                if e.get("error"):
                    result.anomalies.append(f"{member}#{inc} {path}: watch not re-armed: {e['error']}")
                    continue
                if e["type"] != "INIT":
                    events_seen += 1
                    # the nodes are never deleted: only CHANGED, or CREATED when this
                    # replica had not applied the create yet when the log started
                    if e["type"] != "CHANGED" and not (e["type"] == "CREATED" and existed is False):
                        result.anomalies.append(f"{member}#{inc} {path}: unexpected {e['type']} event")
                existed = e.get("exists", True)
                mz = e.get("mzxid")
                if mz is None:
                    continue
                if prev is not None and e["type"] != "INIT" and mz <= prev:
                    result.anomalies.append(
                        f"{member}#{inc} {path}: event {e['seq']} read mzxid {mz} after {prev} (order/spurious)")
                prev = mz if prev is None else max(prev, mz)
                # all watchers agree on mzxid -> (version, data)
                record = (e.get("version"), e.get("data"))
                if (key, mz) in seen_at and seen_at[(key, mz)] != record:
                    result.anomalies.append(f"{path}: mzxid {mz} seen as {record} and {seen_at[(key, mz)]}")
                seen_at.setdefault((key, mz), record)
                # the value was written
                value = int(e["data"])
                w = writes[key].get(value)
                if w is None:
                    result.anomalies.append(f"{member}#{inc} {path}: saw value {value} nobody wrote")
                elif w.type == FAIL:
                    result.anomalies.append(
                        f"{member}#{inc} {path}: saw value {value} whose write failed definitely")
                elif w.type == OK and w.completion is not None and w.completion.zxid not in (None, mz):
                    result.anomalies.append(
                        f"{member}#{inc} {path}: value {value} at mzxid {mz}, but its write was acked at "
                        f"zxid {w.completion.zxid}")
        # version order consistent with zxid order
        for key in {k for k, _ in seen_at}:
            chain = sorted((mz, v) for (k, mz), (v, _) in seen_at.items() if k == key and v is not None)
            if any(b[1] <= a[1] for a, b in itertools.pairwise(chain)):
                result.anomalies.append(f"{key}: versions do not increase with mzxid")
        # no gaps: the last incarnation of every member that was not killed after it started saw the final state
        last_inc: dict[str, int] = {}
        for (member, inc, _path) in logs:
            last_inc[member] = max(inc, last_inc.get(member, inc))
        killed = {(e.value.get("member"), e.value.get("incarnation"))
                  for e in events if e.process == NEMESIS and e.f == "kill" and isinstance(e.value, dict)}
        for (member, inc, path), entries in sorted(logs.items()):
            key = "watch/" + path.rsplit("/", 1)[1]
            if inc != last_inc[member] or key not in finals or (member, inc) in killed:
                continue
            last = max((e["mzxid"] for e in entries if e.get("mzxid") is not None), default=None)
            if last != finals[key]:
                result.anomalies.append(
                    f"{member}#{inc} {path}: last watched mzxid {last} but the final mzxid is {finals[key]} (gap)")
        result.stats.update(watchers=len(logs), events=events_seen, writes=sum(len(w) for w in writes.values()))
        result.valid = not result.anomalies
        return result


WORKLOADS: dict[str, type[Workload]] = {
    "register": RegisterWorkload,
    "set": SetWorkload,
    "queue": QueueWorkload,
    "sessions": SessionsWorkload,
    "lock": LockWorkload,
    "watches": WatchesWorkload,
}


def check_all(names: Iterable[str], events: Sequence[Event],
              observations: Sequence[dict[str, Any]]) -> list[CheckResult]:
    """Run the direct checker of every named workload."""
    out = []
    for name in names:
        try:
            out.append(WORKLOADS[name].check(events, observations))
        except Exception as exc:  # a checker crash is an unknown, never a pass
            logger.exception("checker %s crashed", name)
            out.append(CheckResult(name, False, [f"checker crashed: {exc!r}"]))
    return out


__all__ = [
    "DEFINITE_FAILURES",
    "INVOKE",
    "WORKLOADS",
    "CheckResult",
    "Client",
    "Completion",
    "Indeterminate",
    "LockWorkload",
    "Observations",
    "QueueWorkload",
    "RegisterWorkload",
    "Reply",
    "RunContext",
    "SessionsWorkload",
    "SetWorkload",
    "WatchesWorkload",
    "Workload",
    "check_all",
    "completion_type",
]
