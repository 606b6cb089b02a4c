"""A fast, revision-aware history check (like etcd's robustness checks).

Every coord response carries a zxid: for a write the zxid of the log entry
that applied it, for a read the zxid of the replica state it was read from.
Trusting those numbers gives near-linear-time checks that complement the
black-box search in ``coord.testing.linearizability``:

(a) ``process-order``: per logical process, the zxids of successive
    responses (``ok`` or ``fail`` completions that carry one) never decrease
    (FIFO client order, "single system image").
(b) real time: a response only ever carries a committed zxid, and a new
    write's entry is appended after everything committed before it was
    invoked. So if an operation A (any response with a zxid) completed
    before B was invoked:
    ``realtime-write-order``: zxid(B) > zxid(A) for an ``ok`` write B;
    ``stale-linearizable-read``: zxid(B) >= zxid(A) for a linearizable read
    B (``sync-read`` by default). Plain reads may be stale (ZooKeeper
    semantics) and are only held to (a). Failed writes are not targets:
    one refused before it was applied consumes no zxid, and a composite
    operation's failure may carry the zxid of a plain (stale) read.
(c) ``duplicate-zxid``: no two acknowledged writes share a zxid.
(d) Optionally, against ``log``, the committed writes of a surviving replica
    as ``(zxid, key, value_after)`` (value None: absent/deleted), for the
    keys the log or ``initial`` mentions:
    ``read-mismatch``: every read with a zxid returns the key's value as of
    that zxid (the last log entry for the key at or below it, else
    ``initial``, else None); ``write-not-in-log``: every acknowledged
    write's zxid is in the log for its key, with its value when the value
    is known (``write``/``create``: the argument, ``cas``: the new value,
    ``delete``: None).

Which operations are writes, plain reads and linearizable reads is decided
by name (``writes``, ``reads``, ``linearizable_reads``; the defaults cover
the models in ``coord.testing.models`` and coord's Jepsen workloads) or by a
``classify`` function when names are ambiguous (coord's register workload
calls its sync+get ``read`` but its sessions workload calls a plain
``get_children`` ``read``). Every write must report the zxid of its own
entry: a composite operation whose ``ok`` carries a read's zxid (a lock
``acquire``) is not a write here. Outcome-unknown operations (``info``)
carry no response and are ignored.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from .history import FAIL, OK, Event, Operation, pair_operations
from .linearizability import freeze
from .models import NO_NODE, error_kind

__all__ = [
    "DEFAULT_LINEARIZABLE_READS",
    "DEFAULT_READS",
    "DEFAULT_WRITES",
    "DUPLICATE_ZXID",
    "LINEARIZABLE_READ",
    "PROCESS_ORDER",
    "READ",
    "READ_MISMATCH",
    "REALTIME_WRITE_ORDER",
    "STALE_LINEARIZABLE_READ",
    "UNKNOWN_VALUE",
    "WRITE",
    "WRITE_NOT_IN_LOG",
    "RevisionResult",
    "Violation",
    "by_name",
    "check_revisions",
    "default_read_value",
    "default_written_value",
]

PROCESS_ORDER = "process-order"
REALTIME_WRITE_ORDER = "realtime-write-order"
STALE_LINEARIZABLE_READ = "stale-linearizable-read"
DUPLICATE_ZXID = "duplicate-zxid"
READ_MISMATCH = "read-mismatch"
WRITE_NOT_IN_LOG = "write-not-in-log"

WRITE = "write"
READ = "read"
LINEARIZABLE_READ = "linearizable-read"

DEFAULT_WRITES = frozenset(
    {
        "write", "cas", "create", "delete", "set", "add", "enqueue", "dequeue", "multi", "close_session",
        "create-eph", "heartbeat", "guard-write", "release",
    }
)  # fmt: skip
DEFAULT_READS = frozenset({"read", "local-read", "final-read", "get", "exists", "children"})
DEFAULT_LINEARIZABLE_READS = frozenset({"sync-read"})

#: Returned by a ``written_value`` function when a write's resulting value is not known.
UNKNOWN_VALUE: Any = object()

LogEntry = tuple[int, Hashable, Any]


@dataclasses.dataclass(frozen=True)
class Violation:
    """One broken rule, with the events that show it (earlier first)."""

    kind: str
    message: str
    events: tuple[Event, ...]

    def __str__(self) -> str:
        cited = ", ".join(f"#{e.index} p{e.process} {e.type} {e.f}" for e in self.events)
        return f"{self.kind}: {self.message} [{cited}]"


@dataclasses.dataclass(frozen=True)
class RevisionResult:
    """All violations found. Truthy only when there are none."""

    violations: tuple[Violation, ...]
    responses: int
    """Completions that carried a zxid (the ones the checks could use)."""
    without_zxid: int
    """``ok`` completions that carried no zxid (unchecked)."""

    @property
    def valid(self) -> bool:
        return not self.violations

    def __bool__(self) -> bool:
        return self.valid

    def of_kind(self, kind: str) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.kind == kind)

    def format(self, limit: int = 20) -> str:
        head = "zxid checks passed" if self.valid else f"{len(self.violations)} zxid violations"
        lines = [f"{head} ({self.responses} responses with a zxid, {self.without_zxid} ok without one)"]
        lines.extend(f"  {v}" for v in self.violations[:limit])
        if len(self.violations) > limit:
            lines.append(f"  ... {len(self.violations) - limit} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def by_name(
    writes: Iterable[str] = DEFAULT_WRITES,
    reads: Iterable[str] = DEFAULT_READS,
    linearizable_reads: Iterable[str] = DEFAULT_LINEARIZABLE_READS,
) -> Callable[[Operation], str | None]:
    """A ``classify`` function from operation names (linearizable wins over plain)."""
    kinds: dict[str, str] = {}
    for names, kind in ((reads, READ), (writes, WRITE), (linearizable_reads, LINEARIZABLE_READ)):
        for name in names:
            kinds[name] = kind

    def classify(op: Operation) -> str | None:
        return kinds.get(op.f)

    return classify


def default_written_value(op: Operation) -> Any:
    """The key's value after an acknowledged write, when the history says it."""
    value = op.invoke.value
    if op.f in ("write", "create"):
        return freeze(value)
    if op.f == "cas" and isinstance(value, list | tuple) and len(value) == 2:
        return freeze(value[1])
    if op.f == "delete":
        return None
    return UNKNOWN_VALUE


def default_read_value(op: Operation) -> Any:
    """What a read observed: its result, or None for a NoNode failure
    (UNKNOWN_VALUE for any other failure)."""
    completion = op.completion
    assert completion is not None
    if completion.type == OK:
        return freeze(completion.value)
    if error_kind(completion.error) == NO_NODE:
        return None
    return UNKNOWN_VALUE


def check_revisions(
    events: Iterable[Event],
    *,
    writes: Iterable[str] = DEFAULT_WRITES,
    reads: Iterable[str] = DEFAULT_READS,
    linearizable_reads: Iterable[str] = DEFAULT_LINEARIZABLE_READS,
    classify: Callable[[Operation], str | None] | None = None,
    log: Iterable[LogEntry] | None = None,
    initial: Mapping[Hashable, Any] | None = None,
    read_value: Callable[[Operation], Any] = default_read_value,
    written_value: Callable[[Operation], Any] = default_written_value,
) -> RevisionResult:
    """Run checks (a)-(c), and (d) when ``log`` is given, over a history.

    ``classify(op)`` says what an operation is (``WRITE``, ``READ``,
    ``LINEARIZABLE_READ`` or None: not checked beyond (a)); by default it
    comes from the three name sets (``by_name``). ``read_value`` and
    ``written_value`` project operations onto the values the log records
    (return ``UNKNOWN_VALUE`` to skip one). Raises ValueError on a malformed
    history.
    """
    events = list(events)
    kind_of = classify or by_name(writes, reads, linearizable_reads)
    operations = list(pair_operations(events))
    kinds = {op.invoke.index: kind_of(op) for op in operations}
    violations: list[Violation] = []

    responses = 0
    without_zxid = 0
    for op in operations:
        completion = op.completion
        if completion is None or completion.type not in (OK, FAIL):
            continue
        if completion.zxid is not None:
            responses += 1
        elif completion.type == OK:
            without_zxid += 1

    violations.extend(_process_order(events))
    violations.extend(_real_time(operations, kinds))
    violations.extend(_duplicates(operations, kinds))
    if log is not None:
        violations.extend(_against_log(operations, kinds, list(log), initial or {}, read_value, written_value))
    return RevisionResult(tuple(violations), responses, without_zxid)


def _process_order(events: list[Event]) -> Iterable[Violation]:
    last: dict[int, Event] = {}
    for event in sorted(events, key=lambda e: e.index):
        if event.type not in (OK, FAIL) or event.zxid is None:
            continue
        previous = last.get(event.process)
        if previous is not None and previous.zxid is not None and event.zxid < previous.zxid:
            yield Violation(
                PROCESS_ORDER,
                f"process {event.process} saw zxid {event.zxid} after {previous.zxid}",
                (previous, event),
            )
            continue  # keep the highest seen, so one bad response is reported once
        last[event.process] = event


def _real_time(operations: list[Operation], kinds: Mapping[int, str | None]) -> Iterable[Violation]:
    done: list[tuple[int, int, Operation]] = []  # (end, zxid, op) of every response with a zxid
    targets: list[Operation] = []
    for op in operations:
        completion = op.completion
        if completion is None or completion.type not in (OK, FAIL) or completion.zxid is None:
            continue
        done.append((completion.time_ns, completion.zxid, op))
        kind = kinds[op.invoke.index]
        if (kind == WRITE and completion.type == OK) or kind == LINEARIZABLE_READ:
            targets.append(op)
    done.sort(key=lambda item: item[0])
    targets.sort(key=lambda op: op.start_ns)
    position = 0
    highest: tuple[int, Operation] | None = None  # max zxid over the ops completed so far
    for target in targets:
        while position < len(done) and done[position][0] < target.start_ns:
            _, zxid, op = done[position]
            if highest is None or zxid > highest[0]:
                highest = (zxid, op)
            position += 1
        if highest is None:
            continue
        completion = target.completion
        assert completion is not None and completion.zxid is not None
        zxid, before = highest
        before_completion = before.completion
        assert before_completion is not None
        cited = (before_completion, target.invoke, completion)
        if kinds[target.invoke.index] == WRITE:
            if completion.zxid <= zxid:
                yield Violation(
                    REALTIME_WRITE_ORDER,
                    f"{target.f} of {target.key!r} invoked after event {before_completion.index} completed with "
                    f"zxid {zxid} was acknowledged at zxid {completion.zxid}",
                    cited,
                )
        elif completion.zxid < zxid:
            yield Violation(
                STALE_LINEARIZABLE_READ,
                f"{target.f} of {target.key!r} invoked after event {before_completion.index} completed with "
                f"zxid {zxid} read at zxid {completion.zxid}",
                cited,
            )


def _duplicates(operations: list[Operation], kinds: Mapping[int, str | None]) -> Iterable[Violation]:
    seen: dict[int, Operation] = {}
    for op in operations:
        completion = op.completion
        if kinds[op.invoke.index] != WRITE or completion is None or completion.type != OK or completion.zxid is None:
            continue
        first = seen.setdefault(completion.zxid, op)
        if first is not op:
            first_completion = first.completion
            assert first_completion is not None
            yield Violation(
                DUPLICATE_ZXID,
                f"{first.f} of {first.key!r} and {op.f} of {op.key!r} were both acknowledged at zxid {completion.zxid}",
                (first.invoke, first_completion, op.invoke, completion),
            )


def _against_log(
    operations: list[Operation],
    kinds: Mapping[int, str | None],
    log: list[LogEntry],
    initial: Mapping[Hashable, Any],
    read_value: Callable[[Operation], Any],
    written_value: Callable[[Operation], Any],
) -> Iterable[Violation]:
    per_key: dict[Hashable, list[tuple[int, Any]]] = defaultdict(list)
    by_zxid: dict[int, list[tuple[Hashable, Any]]] = defaultdict(list)
    for zxid, key, value in sorted(log, key=lambda entry: entry[0]):
        per_key[key].append((zxid, freeze(value)))
        by_zxid[zxid].append((key, freeze(value)))
    zxids_of = {key: [z for z, _ in entries] for key, entries in per_key.items()}
    known = set(per_key) | set(initial)

    def value_at(key: Hashable, zxid: int) -> Any:
        entries = per_key.get(key)
        if entries:
            at = bisect.bisect_right(zxids_of[key], zxid)
            if at:
                return entries[at - 1][1]
        return freeze(initial.get(key))

    for op in operations:
        completion = op.completion
        if completion is None or completion.zxid is None or completion.type not in (OK, FAIL) or op.key not in known:
            continue
        kind = kinds[op.invoke.index]
        if kind in (READ, LINEARIZABLE_READ):
            observed = read_value(op)
            if observed is UNKNOWN_VALUE:
                continue
            expected = value_at(op.key, completion.zxid)
            if observed != expected:
                yield Violation(
                    READ_MISMATCH,
                    f"{op.f} of {op.key!r} at zxid {completion.zxid} returned {observed!r}; the log says {expected!r}",
                    (op.invoke, completion),
                )
        elif kind == WRITE and completion.type == OK:
            entries = by_zxid.get(completion.zxid, [])
            values = [value for key, value in entries if key == op.key]
            if not values:
                where = f"touches {[key for key, _ in entries]!r}" if entries else "is not in the log"
                yield Violation(
                    WRITE_NOT_IN_LOG,
                    f"acknowledged {op.f} of {op.key!r} at zxid {completion.zxid}: that zxid {where}",
                    (op.invoke, completion),
                )
                continue
            wrote = written_value(op)
            if wrote is not UNKNOWN_VALUE and wrote not in values:
                yield Violation(
                    WRITE_NOT_IN_LOG,
                    f"acknowledged {op.f} of {op.key!r} at zxid {completion.zxid} wrote {wrote!r}; "
                    f"the log has {values!r}",
                    (op.invoke, completion),
                )
