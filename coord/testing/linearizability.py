"""A black-box linearizability checker (Wing & Gong's search with Lowe's cache).

Given a history (``coord.testing.history``) and a sequential ``Model``, decide
whether some total order of the operations (1) respects real time: an
operation that returned before another was invoked comes first; and (2) is a
legal sequential run of the model that produces every observed result.

The algorithm is the one Porcupine's ``checkSingle`` implements (Lowe,
"Testing for Linearizability", 2017; Horn & Kroening, "Faster
linearizability checking via P-compositionality", 2015), reimplemented here:

* Each operation with a known outcome becomes a *call* and a *return*
  entry. The entries are sorted by time (calls before returns on equal
  timestamps, so ties count as concurrent and never cause a false alarm)
  into a doubly linked list.
* A depth-first search walks the list from its head. At a call it asks the
  model to apply the operation; if that is legal it *lifts* the call and its
  return out of the list, pushes the choice and restarts from the head. At a
  return R (an operation whose deadline has come) it has tried every call
  before R; it then tries the outcome-unknown operations invoked before R
  and, if none fits either, backtracks: pops the last choice, relinks it and
  tries the next candidate after it.
* Lowe's cache: the set of ``(linearized-set, model state)`` configurations
  already explored. A configuration seen before is a known dead end, so
  interleavings that reach the same state with the same operations are
  explored once. The linearized set is a Python ``int`` used as a bitset;
  model states must therefore be hashable (and canonical: equal states equal).
* Linearizability is local (P-compositionality): the history is split by
  ``partition_key`` (per key for registers, per independent subtree for tree
  operations) and every partition is searched on its own.

Outcome-unknown operations (an ``info`` completion, or none at all because the
history ended) have no return entry: they may take effect at any point after
their invocation or not at all. The search succeeds as soon as every
operation with a known outcome is linearized, so unknown ones may simply be
left out. They are kept in a list of their own and tried only after the
definite candidates of a configuration (Porcupine puts them in the entry
list at their invocation, so they are tried first at every step of the rest
of the history; most never took effect). A model's ``step`` for an unknown
operation should accept it only where it would *change* the state (applying
it as a no-op is the same as leaving it out, and only grows the search), and
``Model.prepare`` may drop unknown operations that provably cannot matter and
add constraints the results imply (see ``QueueModel``).

What each completion means is the model's decision (``Model.disposition``):
``ok`` operations are checked; ``fail`` operations normally did not happen
and are dropped, but some failures are definite observations (a BadVersion
answer to a conditional set says the version did not match at its
linearization point) and are checked like ``ok`` ones; reads whose result is
unknown carry no information and are dropped. See ``coord.testing.models``.

Each partition gets a time limit. A partition whose search runs out of time
is reported ``valid=None`` ("unknown"), never as a pass; the whole result is
``False`` if any partition failed, else ``None`` if any is unknown, else
``True``. ``CheckResult`` is truthy only when ``valid is True``.

Cost: the search is exponential in the worst case. It stays fast when the
number of operations in flight per partition is small (say at most 10) and
few operations have unknown outcomes (each stays "in flight" until the end of
the history). Keep partitions small: use independent keys. Partitions are
searched one after the other in this process.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from .history import FAIL, OK, Event, Operation, pair_operations

__all__ = [
    "DEFAULT_MAX_CONFIGURATIONS",
    "CheckResult",
    "Counterexample",
    "Disposition",
    "Model",
    "Op",
    "PartitionResult",
    "check",
    "check_operations",
    "freeze",
    "subtree_key",
]

S = TypeVar("S", bound=Hashable)

#: Default cap on Lowe's cache per partition (about 1 GB of Python objects).
DEFAULT_MAX_CONFIGURATIONS = 3_000_000


class Disposition(enum.Enum):
    """How the checker treats one operation (the model decides)."""

    CHECK = "check"
    """A definite outcome: the operation took effect (``ok``) or definitely
    observed something (a failure that is information). It must be linearized
    between its invocation and its completion."""
    UNKNOWN = "unknown"
    """The outcome is unknown: it may take effect at any point after its
    invocation, or never."""
    DROP = "drop"
    """Irrelevant to the check: it certainly did not happen (an
    uninformative ``fail``) or observed nothing we know (a read whose result
    never came back)."""


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Op:
    """One operation as the models see it (an ``Operation`` flattened).

    ``value`` is the invocation's argument; ``result``, ``error`` and
    ``zxid`` come from the completion (None when there was none). ``type``
    is ``ok``, ``fail`` or ``info``; ``end_ns`` is None when the outcome is
    unknown (``info`` or no completion, or the model's ``disposition`` said
    ``UNKNOWN``). ``parsed`` holds what ``Model.parse`` made of the
    operation (computed once, before the search).
    """

    f: str
    key: Any
    process: int
    value: Any
    type: str
    result: Any
    error: str | None
    zxid: int | None
    start_ns: int
    end_ns: int | None
    operation: Operation
    parsed: Any = None

    @property
    def unknown(self) -> bool:
        """True when the outcome is unknown (``info`` or never completed)."""
        return self.end_ns is None

    @staticmethod
    def from_operation(operation: Operation) -> Op:
        completion = operation.completion
        return Op(
            f=operation.f,
            key=operation.key,
            process=operation.process,
            value=operation.invoke.value,
            type=operation.type,
            result=None if completion is None else completion.value,
            error=None if completion is None else completion.error,
            zxid=None if completion is None else completion.zxid,
            start_ns=operation.start_ns,
            end_ns=operation.end_ns,
            operation=operation,
        )

    def describe(self, origin_ns: int = 0) -> str:
        """One line for humans: event index, process, call, outcome, times (ms from ``origin_ns``)."""
        start = (self.start_ns - origin_ns) / 1e6
        if self.end_ns is None:
            when = f"[{start:.3f} ms, ...)"
        else:
            when = f"[{start:.3f}, {(self.end_ns - origin_ns) / 1e6:.3f}] ms"
        if self.type == OK:
            outcome = "ok" if self.result is None else f"ok {self.result!r}"
        elif self.type == FAIL:
            outcome = f"fail {self.error or ''}".rstrip() + ("" if self.result is None else f" {self.result!r}")
        elif self.operation.completion is None:
            outcome = "unknown (never completed)"
        else:
            outcome = f"info {self.error or ''}".rstrip()
        call = f"{self.f}()" if self.value is None else f"{self.f}({self.value!r})"
        return f"event {self.operation.invoke.index:>5} p{self.process:<3} {call} -> {outcome}  {when}"


class Model(Protocol[S]):
    """A sequential specification.

    ``step`` is called for checked operations and for outcome-unknown ones
    (``op.unknown``). For a checked one it answers "is this observed outcome
    legal in ``state``?" and the state after it. For an unknown one it
    answers "could it take effect here?" (return False where it would be a
    no-op: leaving it out entirely is always allowed) and the state after it.
    ``step`` must be a pure function and states must be hashable and
    canonical (equal states compare and hash equal).

    ``parse`` runs once per kept operation before the search; its result is
    available to ``step`` as ``op.parsed`` (decode arguments there, not in
    ``step``, which runs once per explored configuration). ``prepare`` then
    sees a partition's kept operations and returns the model and operations
    to search with. It may remove outcome-unknown operations that provably
    cannot matter (an unknown enqueue whose value nothing ever observed) and
    specialize the model with facts the partition's results imply (the
    enqueue order a read reveals), so that doomed orders die early. Both
    must be sound: they may only rule out orders that could never be
    completed. ``BaseModel`` in ``coord.testing.models`` supplies defaults
    for everything but ``init`` and ``step``.
    """

    @property
    def name(self) -> str: ...

    def init(self) -> S: ...

    def disposition(self, op: Op) -> Disposition: ...

    def parse(self, op: Op) -> Any: ...

    def prepare(self, ops: Sequence[Op]) -> tuple[Model[S], Sequence[Op]]: ...

    def step(self, state: S, op: Op) -> tuple[bool, S]: ...

    def describe_state(self, state: S) -> str: ...


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class Counterexample:
    """Why one partition is not linearizable.

    ``prefix`` is the longest linearizable prefix the search found (a legal
    order of some operations, respecting real time), ``states`` the model
    state after each of its operations, ``blocked`` the operation whose
    completion came before any legal continuation could place it, and
    ``candidates`` the operations that could have come next at that point
    (invoked before ``blocked`` returned), each with whether the model accepts
    it in the state after the prefix (an accepted one leads to a dead end
    later).
    """

    partition: Hashable
    model: str
    prefix: tuple[Op, ...]
    states: tuple[str, ...]
    initial_state: str
    blocked: Op
    candidates: tuple[tuple[Op, bool], ...]
    origin_ns: int

    @property
    def state(self) -> str:
        """The model state after the prefix (described)."""
        return self.states[-1] if self.states else self.initial_state

    def format(self, context: int = 10) -> str:
        """A human-readable explanation (the last ``context`` prefix operations)."""
        lines = [
            f"partition {self.partition!r} is not linearizable ({self.model}):",
            f"  longest linearizable prefix: {len(self.prefix)} operations",
        ]
        shown = self.prefix[-context:] if context > 0 else ()
        if len(shown) < len(self.prefix):
            lines.append(f"    ... {len(self.prefix) - len(shown)} earlier operations ...")
        else:
            lines.append(f"    initial state: {self.initial_state}")
        first = len(self.prefix) - len(shown)
        for offset, op in enumerate(shown):
            lines.append(f"    {op.describe(self.origin_ns)}")
            lines.append(f"        => {self.states[first + offset]}")
        lines.append(f"  state after the prefix: {self.state}")
        lines.append("  could not linearize (it returned before any legal continuation placed it):")
        lines.append(f"    {self.blocked.describe(self.origin_ns)}")
        lines.append("  candidates for the next step, invoked before that return:")
        for op, accepted in self.candidates:
            if op.unknown:
                verdict = "outcome unknown; " + (
                    "could take effect here, but every continuation dead-ends"
                    if accepted
                    else "cannot take effect here"
                )
            else:
                verdict = (
                    "accepted here, but every continuation dead-ends" if accepted else "rejected by the model here"
                )
            lines.append(f"    {op.describe(self.origin_ns)}")
            lines.append(f"        {verdict}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


@dataclasses.dataclass(frozen=True)
class PartitionResult:
    """The verdict on one partition.

    ``valid`` is True (linearizable; ``linearization`` is a witness order),
    False (``counterexample`` explains why) or None (the time or memory
    limit ran out; never a pass). ``checked`` counts operations with a known outcome that
    were searched, ``unknown`` the outcome-unknown ones, ``dropped`` the
    ones the model ignored (``disposition``) or removed (``prepare``).
    """

    partition: Hashable
    valid: bool | None
    checked: int
    unknown: int
    dropped: int
    elapsed_s: float
    explored: int
    linearization: tuple[Op, ...] | None = None
    counterexample: Counterexample | None = None

    def summary(self) -> str:
        verdict = {True: "linearizable", False: "NOT linearizable", None: "UNKNOWN (search limit)"}[self.valid]
        return (
            f"partition {self.partition!r}: {verdict}; {self.checked} checked, {self.unknown} unknown-outcome, "
            f"{self.dropped} dropped; {self.explored} configurations in {self.elapsed_s:.3f} s"
        )


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The verdict on a whole history: ``valid`` is False if any partition
    failed, None if none failed but some ran out of time, True otherwise.
    Truthy only when ``valid is True``: an unknown result never passes."""

    valid: bool | None
    model: str
    partitions: tuple[PartitionResult, ...]

    def __bool__(self) -> bool:
        return self.valid is True

    @property
    def failures(self) -> tuple[PartitionResult, ...]:
        return tuple(p for p in self.partitions if p.valid is False)

    @property
    def unknowns(self) -> tuple[PartitionResult, ...]:
        return tuple(p for p in self.partitions if p.valid is None)

    def partition(self, key: Hashable) -> PartitionResult:
        """The result of the partition named ``key``."""
        for result in self.partitions:
            if result.partition == key:
                return result
        raise KeyError(key)

    def format(self, context: int = 10) -> str:
        """A report for humans: the verdict, then each failed or unknown partition."""
        verdict = {True: "linearizable", False: "NOT linearizable", None: "UNKNOWN (not a pass)"}[self.valid]
        lines = [
            f"{verdict}: {len(self.partitions)} partitions checked against {self.model}; "
            f"{len(self.failures)} failed, {len(self.unknowns)} unknown"
        ]
        for result in self.failures + self.unknowns:
            lines.append(result.summary())
            if result.counterexample is not None:
                lines.append(result.counterexample.format(context))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


# --------------------------------------------------------------------------- partitioning


def subtree_key(depth: int = 2) -> Callable[[Operation], Hashable]:
    """A partition key for znode-tree operations: the first ``depth`` path
    components of ``op.key`` (``/t/k1/a/b`` -> ``/t/k1`` for depth 2).

    Only sound when the workload never crosses those subtrees (no operation
    reads or writes two of them); ``children`` of a node above that depth
    would, so keep such reads out of the history or partition more coarsely.
    """
    if depth < 1:
        raise ValueError("depth must be at least 1")

    def key(op: Operation) -> Hashable:
        path = op.key
        if not isinstance(path, str):
            return path
        parts = [part for part in path.split("/") if part]
        return "/" + "/".join(parts[:depth])

    return key


def _default_partition(op: Operation) -> Hashable:
    return op.key


# --------------------------------------------------------------------------- the search


def check(
    events: Iterable[Event],
    model: Model[Any],
    *,
    partition_key: Callable[[Operation], Hashable] = _default_partition,
    time_limit_s: float | None = 10.0,
    max_configurations: int | None = DEFAULT_MAX_CONFIGURATIONS,
) -> CheckResult:
    """Check a history of events for linearizability against ``model``.

    The history is paired into operations (nemesis events are ignored), split
    by ``partition_key`` and each partition searched independently with its
    own ``time_limit_s`` and ``max_configurations`` (the size of Lowe's
    cache, about 300 bytes each; None: no limit). A partition that hits
    either limit is unknown. Raises ValueError on a malformed history (see
    ``pair_operations``) or an operation the model cannot interpret.
    """
    return check_operations(
        pair_operations(events),
        model,
        partition_key=partition_key,
        time_limit_s=time_limit_s,
        max_configurations=max_configurations,
    )


def check_operations(
    operations: Iterable[Operation],
    model: Model[Any],
    *,
    partition_key: Callable[[Operation], Hashable] = _default_partition,
    time_limit_s: float | None = 10.0,
    max_configurations: int | None = DEFAULT_MAX_CONFIGURATIONS,
) -> CheckResult:
    """``check`` for operations already paired (``pair_operations``)."""
    groups: dict[Hashable, list[Operation]] = defaultdict(list)
    origin: int | None = None
    for operation in operations:
        groups[partition_key(operation)].append(operation)
        if origin is None or operation.start_ns < origin:
            origin = operation.start_ns
    results = tuple(
        _check_partition(key, ops, model, time_limit_s, max_configurations, origin or 0)
        for key, ops in _sorted_groups(groups)
    )
    if any(r.valid is False for r in results):
        valid: bool | None = False
    elif any(r.valid is None for r in results):
        valid = None
    else:
        valid = True
    return CheckResult(valid, model.name, results)


def _sorted_groups(groups: dict[Hashable, list[Operation]]) -> list[tuple[Hashable, list[Operation]]]:
    items = list(groups.items())
    try:
        items.sort(key=lambda item: item[0])  # type: ignore[arg-type,return-value]
    except TypeError:
        items.sort(key=lambda item: repr(item[0]))
    return items


def _check_partition(
    partition: Hashable,
    operations: Sequence[Operation],
    model: Model[Any],
    time_limit_s: float | None,
    max_configurations: int | None,
    origin_ns: int,
) -> PartitionResult:
    started = time.monotonic()
    ops: list[Op] = []
    dropped = 0
    for operation in operations:
        op = Op.from_operation(operation)
        disposition = model.disposition(op)
        if disposition is Disposition.DROP:
            dropped += 1
            continue
        if disposition is Disposition.CHECK and op.end_ns is None:
            raise ValueError(f"{model.name} asked to check an operation with an unknown outcome: {op.describe()}")
        # From here on ``end_ns is None`` means "treated as outcome-unknown".
        end_ns = op.end_ns if disposition is Disposition.CHECK else None
        ops.append(dataclasses.replace(op, end_ns=end_ns, parsed=model.parse(op)))
    kept = len(ops)
    model, prepared = model.prepare(ops)
    ops = list(prepared)
    dropped += kept - len(ops)
    definite = [op.end_ns is not None for op in ops]
    deadline = None if time_limit_s is None else started + time_limit_s
    outcome, order, explored, dead_end = _search(ops, definite, model, deadline, max_configurations)
    elapsed = time.monotonic() - started
    checked = sum(definite)
    unknown = len(ops) - checked
    if outcome is True:
        assert order is not None
        return PartitionResult(
            partition, True, checked, unknown, dropped, elapsed, explored, linearization=tuple(ops[i] for i in order)
        )
    if outcome is None:
        return PartitionResult(partition, None, checked, unknown, dropped, elapsed, explored)
    assert dead_end is not None
    counterexample = _counterexample(partition, ops, model, dead_end, origin_ns)
    return PartitionResult(
        partition, False, checked, unknown, dropped, elapsed, explored, counterexample=counterexample
    )


@dataclasses.dataclass(frozen=True)
class _DeadEnd:
    prefix: tuple[int, ...]  # op indexes in linearization order
    blocked: int  # op index whose return entry stopped the search


# How often (in loop iterations) the search looks at its limits.
_CLOCK_EVERY = 1024


def _search(
    ops: Sequence[Op],
    definite: Sequence[bool],
    model: Model[Any],
    deadline: float | None,
    max_configurations: int | None,
) -> tuple[bool | None, list[int] | None, int, _DeadEnd | None]:
    """Porcupine's checkSingle, over arrays instead of pointer nodes, with
    outcome-unknown operations kept out of the entry list.

    Returns (verdict, linearization as op indexes, configurations explored,
    deepest dead end). The verdict is None when ``deadline`` passed or the
    cache outgrew ``max_configurations``.

    Candidates in a configuration are the calls before the first return
    entry R. Definite calls are tried first, in list order; only then the
    outcome-unknown operations invoked before R, in invocation order. The
    set of candidates is WGL's, so the search is just as complete; but an
    unknown operation that never took effect (the common case) no longer
    sits at the front of every scan, where plain WGL tries it first.
    """
    n = len(ops)
    remaining = sum(definite)
    if remaining == 0:
        return True, [], 0, None

    # Entries of definite ops: (time, kind, op index); kind 0 = call, 1 =
    # return, so calls sort before returns at equal times (ties count as
    # concurrent).
    raw: list[tuple[int, int, int]] = []
    unknown: list[tuple[int, int]] = []  # (start, op index) of outcome-unknown ops
    for i, op in enumerate(ops):
        if not definite[i]:
            unknown.append((op.start_ns, i))
            continue
        assert op.end_ns is not None
        if op.end_ns < op.start_ns:
            raise ValueError(f"operation completes before it is invoked: {op.describe()}")
        raw.append((op.start_ns, 0, i))
        raw.append((op.end_ns, 1, i))
    raw.sort()
    unknown.sort()
    unknown_start = [start for start, _ in unknown]
    unknown_op = [i for _, i in unknown]
    unknown_count = len(unknown)
    unknown_done = bytearray(unknown_count)

    # Linked list over entry numbers 1..m; 0 is the head sentinel, m+1 the tail.
    m = len(raw)
    head, tail = 0, m + 1
    nxt = [*range(1, m + 2), tail]
    prv = [0, *range(m + 1)]
    call_op = [-1] * (m + 2)  # op index for call entries, -1 otherwise
    return_op = [-1] * (m + 2)  # op index for return entries, -1 otherwise
    entry_time = [0] * (m + 2)
    return_entry = [0] * n
    for position, (when, kind, i) in enumerate(raw, start=1):
        entry_time[position] = when
        if kind == 0:
            call_op[position] = i
        else:
            return_op[position] = i
            return_entry[i] = position
    bits = [1 << i for i in range(n)]

    step = model.step
    state: Any = model.init()
    linearized = 0
    # (entry, state before, cursor): a definite call entry with cursor -1, or
    # the return entry R and the position in ``unknown`` of the op applied there.
    stack: list[tuple[int, Any, int]] = []
    cache: set[tuple[int, Any]] = set()
    best: _DeadEnd | None = None
    iterations = 0
    entry = nxt[head]
    cursor = 0  # next unknown op to try at a return entry
    clock = time.monotonic

    def applied(frames: list[tuple[int, Any, int]]) -> list[int]:
        return [call_op[e] if c < 0 else unknown_op[c] for e, _, c in frames]

    while remaining:
        iterations += 1
        if iterations % _CLOCK_EVERY == 1 and (
            (deadline is not None and clock() > deadline)
            or (max_configurations is not None and len(cache) > max_configurations)
        ):
            return None, None, len(cache), best
        i = call_op[entry]
        if i >= 0:
            ok, new_state = step(state, ops[i])
            if ok:
                configuration = (linearized | bits[i], new_state)
                if configuration not in cache:
                    cache.add(configuration)
                    stack.append((entry, state, -1))
                    state = new_state
                    linearized = configuration[0]
                    # Lift the call and its return out of the list.
                    before, after = prv[entry], nxt[entry]
                    nxt[before] = after
                    prv[after] = before
                    ret = return_entry[i]
                    before, after = prv[ret], nxt[ret]
                    nxt[before] = after
                    prv[after] = before
                    remaining -= 1
                    entry = nxt[head]
                    cursor = 0
                    continue
            entry = nxt[entry]
            continue
        if entry == tail:  # cannot happen while a definite op remains; defensive
            raise AssertionError("linearizability search ran off the end of the entry list")
        # A return entry: every definite candidate was tried. Try the unknown
        # ops invoked before it, then give up on this configuration.
        deadline_ns = entry_time[entry]
        lifted = False
        while cursor < unknown_count and unknown_start[cursor] <= deadline_ns:
            if not unknown_done[cursor]:
                j = unknown_op[cursor]
                ok, new_state = step(state, ops[j])
                if ok:
                    configuration = (linearized | bits[j], new_state)
                    if configuration not in cache:
                        cache.add(configuration)
                        stack.append((entry, state, cursor))
                        state = new_state
                        linearized = configuration[0]
                        unknown_done[cursor] = 1
                        lifted = True
                        break
            cursor += 1
        if lifted:
            entry = nxt[head]
            cursor = 0
            continue
        if best is None or len(stack) > len(best.prefix):
            best = _DeadEnd(tuple(applied(stack)), return_op[entry])
        if not stack:
            return False, None, len(cache), best
        entry, state, popped = stack.pop()
        if popped >= 0:  # an unknown op: resume at the same return, after it
            unknown_done[popped] = 0
            linearized ^= bits[unknown_op[popped]]
            cursor = popped + 1
            continue
        i = call_op[entry]
        linearized ^= bits[i]
        # Unlift: relink the return first, then the call (reverse of lift).
        ret = return_entry[i]
        nxt[prv[ret]] = ret
        prv[nxt[ret]] = ret
        remaining += 1
        nxt[prv[entry]] = entry
        prv[nxt[entry]] = entry
        entry = nxt[entry]
        cursor = 0

    return True, applied(stack), len(cache), None


def _counterexample(
    partition: Hashable,
    ops: Sequence[Op],
    model: Model[Any],
    dead_end: _DeadEnd,
    origin_ns: int,
) -> Counterexample:
    state = model.init()
    initial = model.describe_state(state)
    states: list[str] = []
    for i in dead_end.prefix:
        ok, state = model.step(state, ops[i])
        assert ok, "a linearized prefix must replay"
        states.append(model.describe_state(state))
    blocked = ops[dead_end.blocked]
    assert blocked.end_ns is not None
    linearized = set(dead_end.prefix)
    candidates: list[tuple[Op, bool]] = []
    for i, op in enumerate(ops):
        if i in linearized or op.start_ns > blocked.end_ns:
            continue
        candidates.append((op, model.step(state, op)[0]))
    return Counterexample(
        partition=partition,
        model=model.name,
        prefix=tuple(ops[i] for i in dead_end.prefix),
        states=tuple(states),
        initial_state=initial,
        blocked=blocked,
        candidates=tuple(candidates),
        origin_ns=origin_ns,
    )


def freeze(value: Any) -> Any:
    """A hashable, canonical copy of a JSON-ish value: lists become tuples,
    dicts sorted tuples of items, sets frozensets (recursively). Histories
    reloaded from JSON turn tuples into lists; models compare frozen values."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((freeze(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, set | frozenset):
        return frozenset(freeze(v) for v in value)
    return value
