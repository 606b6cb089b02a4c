"""Sequential models for the linearizability checker.

Each model reads operations in the shapes below (``f``, the invocation
``value``, the completion ``result`` and ``error``), decides which ones the
search must place (``disposition``) and steps a hashable, canonical state.

Which completions count
-----------------------
* ``ok``: the operation took effect with that result; always checked.
* ``info`` or no completion: outcome unknown. A mutation may take effect at
  any point after its invocation or never; a read told us nothing and is
  dropped.
* ``fail``: by default the operation certainly did not happen and is
  dropped (a timeout that was cancelled through the log, SessionExpired, a
  client-side refusal...). Some failures are *definite negative results*:
  the request was evaluated against the replicated state at some point and
  the error says what that state was. These are checked like ``ok``
  operations (linearized inside their interval, where the state must
  justify the error):

  ============  ===============  ==============================================
  model         f                definite failures (every other fail: dropped)
  ============  ===============  ==============================================
  CasRegister   read, sync-read  NoNode: the node was absent
  CasRegister   write            NoNode: absent (legal only with
                                 ``write_creates=False``)
  CasRegister   cas              BadVersion (or Mismatch): the expected
                                 version/value did not match; NoNode: absent
  CasRegister   create           NodeExists: present
  CasRegister   delete           NoNode: absent; BadVersion: another version
  QueueModel    dequeue          Empty, only with ``empty_failures=True``
                                 (an ``ok`` dequeue whose result is None or
                                 ``"empty"`` is always definite)
  TreeModel     every op         NoNode, NodeExists, BadVersion, NotEmpty,
                                 NoChildrenForEphemerals (ZooKeeper's order)
  ============  ===============  ==============================================

  Error names are found anywhere in the error text, ignoring case and
  punctuation: ``"BadVersionError"``, ``"BAD_VERSION"``, ``"read:
  coord.errors.BadVersionError: /k"`` all mean BadVersion (``error_kind``).

Names listed in a model's ``ignore`` are dropped before the search (e.g.
CasRegister ignores ``local-read``: plain ZooKeeper reads may be stale, so
only the revision checks apply to them); any other unknown name is an error.
Values are compared after ``freeze`` (lists -> tuples, ...), so a history
reloaded from JSON checks the same as the recorded one.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal

from .history import FAIL, OK
from .linearizability import Disposition, Op, freeze

__all__ = [
    "BAD_VERSION",
    "EMPTY",
    "MISMATCH",
    "NODE_EXISTS",
    "NOT_EMPTY",
    "NO_CHILDREN_FOR_EPHEMERALS",
    "NO_NODE",
    "BaseModel",
    "CasRegister",
    "QueueModel",
    "SetModel",
    "TreeModel",
    "error_kind",
]

NO_NODE = "nonode"
NODE_EXISTS = "nodeexists"
BAD_VERSION = "badversion"
NOT_EMPTY = "notempty"
NO_CHILDREN_FOR_EPHEMERALS = "nochildrenforephemerals"
MISMATCH = "mismatch"
EMPTY = "empty"

# (text to look for in the lowercased, letters-only error, kind); more
# specific first ("notempty" before "empty").
_KNOWN_ERRORS = (
    ("nochildrenforephemerals", NO_CHILDREN_FOR_EPHEMERALS),
    ("nodeexists", NODE_EXISTS),
    ("nonode", NO_NODE),
    ("badversion", BAD_VERSION),
    ("notempty", NOT_EMPTY),
    ("mismatch", MISMATCH),
    ("valueis", MISMATCH),  # a client-side compare: "value is 3"
    ("empty", EMPTY),
)


def error_kind(error: str | None) -> str | None:
    """A normalized error kind.

    A known ZooKeeper answer anywhere in the text wins (``"read:
    coord.errors.NoNodeError: /k"`` -> ``"nonode"``; ``"value is 3"`` ->
    ``"mismatch"``); otherwise the first word, lowercased, without module
    path, punctuation or an Error/Exception suffix (``"ConnectionLoss()"`` ->
    ``"connectionloss"``).
    """
    if not error:
        return None
    letters = re.sub(r"[^a-z]", "", error.lower())
    for text, kind in _KNOWN_ERRORS:
        if text in letters:
            return kind
    head = re.split(r"[:(\s]", error.strip(), maxsplit=1)[0].rsplit(".", 1)[-1]
    name = re.sub(r"[^a-z0-9]", "", head.lower())
    for suffix in ("error", "exception"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


class BaseModel:
    """Shared disposition rules: names in ``ignore`` are dropped; ``ok`` is
    checked; an unknown outcome is possible for mutations and dropped for
    reads; ``fail`` is dropped unless ``informative_failure`` says the error
    is a definite observation. Subclasses set ``name``, ``reads``,
    ``mutations`` and ``ignore``, and implement ``init`` and ``step``."""

    name: str = "model"
    reads: frozenset[str] = frozenset()
    mutations: frozenset[str] = frozenset()
    ignore: frozenset[str] = frozenset()

    def disposition(self, op: Op) -> Disposition:
        if op.f in self.ignore:
            return Disposition.DROP
        if op.f not in self.reads and op.f not in self.mutations:
            raise ValueError(
                f"{self.name} cannot interpret operation {op.f!r} (event {op.operation.invoke.index}); "
                "filter it out of the history or list it in the model's ignore"
            )
        if op.type == OK:
            return Disposition.CHECK
        if op.type == FAIL:
            return Disposition.CHECK if self.informative_failure(op) else Disposition.DROP
        return Disposition.DROP if op.f in self.reads else Disposition.UNKNOWN

    def informative_failure(self, op: Op) -> bool:
        """True when this ``fail`` is a definite observation (checked, not dropped)."""
        return False

    def parse(self, op: Op) -> Any:
        """Decode ``op`` once for ``step`` (available there as ``op.parsed``)."""
        return None

    def prepare(self, ops: Sequence[Op]) -> tuple[Any, Sequence[Op]]:
        """The model and operations to search one partition with (by default
        this model and every operation)."""
        return self, ops

    def describe_state(self, state: Any) -> str:
        return repr(state)


def _names(
    reads: Iterable[str], mutations: frozenset[str], ignore: Iterable[str]
) -> tuple[frozenset[str], frozenset[str]]:
    read_set, ignore_set = frozenset(reads), frozenset(ignore)
    overlap = (read_set & mutations) | (ignore_set & (read_set | mutations))
    if overlap:
        raise ValueError(f"operation names used twice: {sorted(overlap)}")
    return read_set, ignore_set


def _int_result(op: Op) -> int:
    """An ``ok`` operation's result when it is an int (a reported version), else -1."""
    result = op.result
    if op.type != OK or isinstance(result, bool) or not isinstance(result, int):
        return -1
    return result


def _collection(result: Any, kind: Callable[[Iterable[Any]], Any]) -> Any:
    """``kind`` of the frozen items of a collection result; None for anything else."""
    if result is None or not isinstance(result, Iterable) or isinstance(result, str | bytes | dict):
        return None
    return kind(freeze(v) for v in result)


# --------------------------------------------------------------------------- register

RegisterState = tuple[Hashable, int] | None
_READ, _WRITE, _CAS, _CREATE, _DELETE = range(5)


class CasRegister(BaseModel):
    """One znode's data as a register with versions.

    State: None when the node is absent, else ``(value, version)``; a create
    makes version 0 and every successful set adds one. Operations (``key``:
    the register's name or path):

    * ``read`` / ``sync-read`` (names: ``reads``): result is the value, or
      None when absent (or a ``fail`` with NoNode). With
      ``versioned_reads=True`` the result is ``[value, version]`` or None.
    * ``write`` value: an unconditional set (version -1). When the node is
      absent it creates it if ``write_creates`` (a register workload's
      "put"), else the write must fail with NoNode.
    * ``cas`` ``[expected, new_value]``, where ``expected`` is
      - with ``cas="version"`` (default): the version, as in ``set(path,
        value, version)``: fails with BadVersion when the version differs,
        NoNode when absent;
      - with ``cas="value"``: the value (Knossos' cas register; coord's
        register workload, which reads, compares, then sets with the version
        it read): fails with BadVersion or Mismatch when the value differs
        (written values must be unique, so no ABA), NoNode when absent.
    * ``create`` value: fails with NodeExists when present.
    * ``delete`` version (None or -1: any): fails with NoNode or BadVersion.

    Results of writes are ignored unless ``check_versions``: then an int
    result of an ``ok`` write or cas is its new version and is checked.
    Names in ``ignore`` (default ``local-read``: plain ZooKeeper reads may be
    stale by design) are dropped.
    """

    mutations = frozenset({"write", "cas", "create", "delete"})

    def __init__(
        self,
        *,
        initial: tuple[Any, int] | None = None,
        reads: Iterable[str] = ("read", "sync-read"),
        ignore: Iterable[str] = ("local-read",),
        cas: Literal["version", "value"] = "version",
        versioned_reads: bool = False,
        write_creates: bool = True,
        check_versions: bool = False,
    ) -> None:
        if cas not in ("version", "value"):
            raise ValueError("cas must be 'version' or 'value'")
        self.name = "CasRegister" if cas == "version" else "CasRegister(cas=value)"
        self.reads, self.ignore = _names(reads, self.mutations, ignore)
        self._initial: RegisterState = None if initial is None else (freeze(initial[0]), int(initial[1]))
        self._cas_by_value = cas == "value"
        self._cas_index = 0 if self._cas_by_value else 1  # compare the state's value or its version
        self._versioned_reads = versioned_reads
        self._write_creates = write_creates
        self._check_versions = check_versions

    def init(self) -> RegisterState:
        return self._initial

    def informative_failure(self, op: Op) -> bool:
        kind = error_kind(op.error)
        if op.f in self.reads or op.f == "write":
            return kind == NO_NODE
        if op.f == "cas":
            return kind in (NO_NODE, BAD_VERSION, MISMATCH)
        if op.f == "delete":
            return kind in (NO_NODE, BAD_VERSION)
        if op.f == "create":
            return kind == NODE_EXISTS
        return False

    def parse(self, op: Op) -> tuple[int, str | None, Any, Any, int]:
        """``(code, error kind or None, argument, expected, reported version)``:
        the frozen value read or written, the version (or value) a cas or
        delete expects (-1: any), the new version an ``ok`` write reported
        (-1: none or not checked)."""
        failure = error_kind(op.error) if op.type == FAIL else None
        reported = _int_result(op) if self._check_versions else -1
        f = op.f
        if f in self.reads:
            return _READ, failure, freeze(op.result), -1, -1
        if f == "write":
            return _WRITE, failure, freeze(op.value), -1, reported
        if f == "cas":
            value = op.value
            if not isinstance(value, list | tuple) or len(value) != 2:
                event = op.operation.invoke.index
                raise ValueError(f"cas expects [expected, new_value], got {value!r} (event {event})")
            expected = freeze(value[0]) if self._cas_by_value else int(value[0])
            return _CAS, failure, freeze(value[1]), expected, reported
        if f == "create":
            return _CREATE, failure, freeze(op.value), -1, -1
        if f == "delete":
            return _DELETE, failure, None, -1 if op.value is None else int(op.value), -1
        raise ValueError(f"{self.name} cannot interpret operation {f!r}")

    def step(self, state: RegisterState, op: Op) -> tuple[bool, RegisterState]:
        code, failure, argument, expected, reported = op.parsed
        if code == _READ:
            if failure is not None:
                return state is None, state
            if self._versioned_reads:
                return argument == state, state
            return argument == (None if state is None else state[0]), state
        if code == _WRITE:
            if failure is not None:
                return state is None, state
            if state is None:
                if not self._write_creates:
                    return False, state
                version = 0
            else:
                version = state[1] + 1
            return reported in (-1, version), (argument, version)
        if code == _CAS:
            matches = state is not None and state[self._cas_index] == expected
            if failure is not None:
                if failure == NO_NODE:
                    return state is None, state
                return not matches, state
            if not matches:
                return False, state
            assert state is not None
            return reported in (-1, state[1] + 1), (argument, state[1] + 1)
        if code == _CREATE:
            if failure is not None:
                return state is not None, state
            return state is None, (argument, 0)
        # _DELETE
        if failure is not None:
            if failure == BAD_VERSION:
                return state is not None and expected != -1 and state[1] != expected, state
            return state is None, state
        if state is None or (expected != -1 and state[1] != expected):
            return False, state
        return True, None

    def describe_state(self, state: RegisterState) -> str:
        return "absent" if state is None else f"value={state[0]!r} version={state[1]}"


# --------------------------------------------------------------------------- set


class SetModel(BaseModel):
    """A grow-only set: ``add`` element (result ignored) and reads (``read``,
    ``final-read``) whose result is the whole set (any collection; compared
    as a set). A failed add did not happen; an unknown one may have. Usually
    one partition per set, with a final read after healing (Jepsen's set)."""

    mutations = frozenset({"add"})

    def __init__(
        self, *, initial: Iterable[Any] = (), reads: Iterable[str] = ("read", "final-read"), ignore: Iterable[str] = ()
    ) -> None:
        self.name = "SetModel"
        self.reads, self.ignore = _names(reads, self.mutations, ignore)
        self._initial = frozenset(freeze(v) for v in initial)

    def init(self) -> frozenset[Any]:
        return self._initial

    def parse(self, op: Op) -> Any:
        """The frozen element of an add; the observed set of a read (None if
        the result is not a collection)."""
        if op.f == "add":
            return freeze(op.value)
        return _collection(op.result, frozenset)

    def prepare(self, ops: Sequence[Op]) -> tuple[SetModel, Sequence[Op]]:
        """Drop unknown adds of elements no read ever saw: in any
        linearization no read follows such an add, so leaving it out
        changes nothing."""
        seen: set[Any] = set()
        for op in ops:
            if op.f != "add" and op.parsed is not None:
                seen.update(op.parsed)
        return self, [op for op in ops if not (op.f == "add" and op.unknown and op.parsed not in seen)]

    def step(self, state: frozenset[Any], op: Op) -> tuple[bool, frozenset[Any]]:
        if op.f == "add":
            element = op.parsed
            if element in state:
                return not op.unknown, state  # an unknown add here would change nothing
            return True, state | {element}
        return op.parsed == state, state

    def describe_state(self, state: frozenset[Any]) -> str:
        return "{" + ", ".join(sorted(map(repr, state))) + "}"


# --------------------------------------------------------------------------- queue


class QueueModel(BaseModel):
    """A queue of unique values: ``enqueue`` value; ``dequeue`` whose result
    is the value taken, or None / ``"empty"`` when the queue was empty;
    reads (``read``, ``final-read``) of all queued values in order.

    ``order="fifo"`` (default): dequeue takes the earliest *linearized*
    enqueue, which is what "take the lowest sequential child" means for a
    ZooKeeper queue, since sequence numbers are assigned when the create is
    applied. ``order="lowest"``: dequeue takes the smallest value (a priority
    queue; values must be mutually comparable).

    A ``fail`` dequeue did not happen, even with error "empty", unless
    ``empty_failures=True``: a client that lists children without a sync, or
    gives up after a few races, may say "empty" while items remain.
    """

    mutations = frozenset({"enqueue", "dequeue"})

    def __init__(
        self,
        *,
        order: Literal["fifo", "lowest"] = "fifo",
        reads: Iterable[str] = ("read", "final-read"),
        ignore: Iterable[str] = (),
        empty_failures: bool = False,
    ) -> None:
        if order not in ("fifo", "lowest"):
            raise ValueError("order must be 'fifo' or 'lowest'")
        self.name = f"QueueModel({order})"
        self.reads, self.ignore = _names(reads, self.mutations, ignore)
        self._fifo = order == "fifo"
        self._empty_failures = empty_failures

    def init(self) -> tuple[Any, ...]:
        return ()

    def informative_failure(self, op: Op) -> bool:
        return self._empty_failures and op.f == "dequeue" and error_kind(op.error) == EMPTY

    def parse(self, op: Op) -> Any:
        """The frozen value enqueued; the value dequeued (``EMPTY`` for an
        empty answer, None when unknown); the observed contents of a read."""
        if op.f == "enqueue":
            return freeze(op.value)
        if op.f == "dequeue":
            if op.unknown:
                return None
            if op.type == FAIL or op.result is None or op.result == EMPTY:
                return EMPTY
            return freeze(op.result)
        observed = _collection(op.result, tuple)
        if observed is not None and not self._fifo:
            observed = tuple(sorted(observed))
        return observed

    def prepare(self, ops: Sequence[Op]) -> tuple[BaseModel, Sequence[Op]]:
        """Prune and learn the enqueue order, both soundly.

        * Drop unknown enqueues of values no dequeue or read ever saw: in
          any linearization such a value is never dequeued, so it blocks
          everything behind it and no read or "empty" answer follows it;
          leaving it out changes nothing.
        * FIFO only: values keep their relative order from enqueue to
          dequeue, so a read listing ``[a, b, ...]``, or an ``ok`` dequeue
          of ``a`` that returned before an ``ok`` dequeue of ``b`` was
          invoked, proves that ``a`` was enqueued before ``b`` in every
          linearization. These facts become counters in the state (see
          ``_OrderedQueue``), and an enqueue that would break one is refused
          at once instead of failing much later, when the values come out.
        """
        seen: set[Any] = set()
        for op in ops:
            if op.f == "dequeue" and op.parsed is not None and op.parsed != EMPTY:
                seen.add(op.parsed)
            elif op.f in self.reads and op.parsed is not None:
                seen.update(op.parsed)
        kept = [op for op in ops if not (op.f == "enqueue" and op.unknown and op.parsed not in seen)]
        if not self._fifo:
            return self, kept
        ordered = _OrderedQueue.learn(self, kept)
        return (self, kept) if ordered is None else (ordered, kept)

    def step(self, state: tuple[Any, ...], op: Op) -> tuple[bool, tuple[Any, ...]]:
        f = op.f
        if f == "enqueue":
            element = op.parsed
            if element in state:
                return False, state  # values are unique: enqueued twice is an anomaly
            if self._fifo:
                return True, (*state, element)
            return True, tuple(sorted((*state, element)))
        if f == "dequeue":
            taken = op.parsed
            if taken is None:  # unknown outcome: it may have taken the head
                return bool(state), state[1:]
            if taken == EMPTY:
                return not state, state
            return bool(state) and state[0] == taken, state[1:]
        return op.parsed == state, state

    def describe_state(self, state: tuple[Any, ...]) -> str:
        return "[" + ", ".join(map(repr, state)) + "]"


_OrderedState = tuple[tuple[Any, ...], tuple[int, ...]]


class _OrderedQueue(BaseModel):
    """A FIFO ``QueueModel`` for one partition, plus what its results say
    about the enqueue order.

    Chains are sequences of values known to be enqueued in that order: each
    read's listing, and the ``ok`` dequeues split into chains of dequeues
    that follow each other in real time (first fit by invocation time, so
    about as many chains as overlapping dequeues). The state is ``(queue,
    progress)`` where ``progress[c]`` counts the values of chain ``c``
    enqueued so far. Enqueueing ``y`` is legal only when

    * for each chain holding ``y`` at position ``k``: exactly ``k`` of its
      values were enqueued (no jumping ahead, no repeats);
    * for each dequeue chain ``c``: at least ``p`` of its values were
      enqueued, where ``p`` counts the dequeues in ``c`` that returned
      before ``y``'s dequeue was invoked (they all precede ``y``).
    """

    def __init__(
        self,
        base: QueueModel,
        chains: int,
        positions: dict[Any, tuple[tuple[int, int], ...]],
        needs: dict[Any, tuple[tuple[int, int], ...]],
    ) -> None:
        self.name = base.name
        self.reads, self.mutations, self.ignore = base.reads, base.mutations, base.ignore
        self._base = base
        self._chains = chains
        self._positions = positions
        self._needs = needs

    @staticmethod
    def learn(base: QueueModel, ops: Sequence[Op]) -> _OrderedQueue | None:
        """The constraints ``ops`` imply, or None when there are none."""
        chains: list[list[Any]] = [list(op.parsed) for op in ops if op.f in base.reads and op.parsed]
        taken = sorted(
            (op for op in ops if op.f == "dequeue" and not op.unknown and op.parsed not in (None, EMPTY)),
            key=lambda op: op.start_ns,
        )
        first_dequeue_chain = len(chains)
        ends: list[list[int]] = []  # per dequeue chain, its completion times (increasing)
        placed: list[tuple[Op, int]] = []
        for op in taken:
            assert op.end_ns is not None
            n = next((n for n, chain_ends in enumerate(ends) if chain_ends[-1] < op.start_ns), len(ends))
            if n == len(ends):
                ends.append([])
                chains.append([])
            chains[first_dequeue_chain + n].append(op.parsed)
            ends[n].append(op.end_ns)
            placed.append((op, n))
        positions: dict[Any, tuple[tuple[int, int], ...]] = {}
        for c, chain in enumerate(chains):
            if len(chain) > 1 or c >= first_dequeue_chain:  # ``needs`` count dequeue chains' progress
                for k, value in enumerate(chain):
                    positions[value] = (*positions.get(value, ()), (c, k))
        needs: dict[Any, tuple[tuple[int, int], ...]] = {}
        for op, own in placed:
            required = []
            for n, chain_ends in enumerate(ends):
                if n != own:
                    before = bisect.bisect_left(chain_ends, op.start_ns)
                    if before:
                        required.append((first_dequeue_chain + n, before))
            if required:
                needs[op.parsed] = tuple(required)
        if not positions and not needs:
            return None
        return _OrderedQueue(base, len(chains), positions, needs)

    def init(self) -> _OrderedState:
        return (), (0,) * self._chains

    def step(self, state: _OrderedState, op: Op) -> tuple[bool, _OrderedState]:
        queue, progress = state
        ok, new_queue = self._base.step(queue, op)
        if not ok:
            return False, state
        if op.f != "enqueue":
            return True, (new_queue, progress)
        value = op.parsed
        for c, count in self._needs.get(value, ()):
            if progress[c] < count:
                return False, state  # a value dequeued before this one's dequeue is not in yet
        positions = self._positions.get(value)
        if not positions:
            return True, (new_queue, progress)
        advanced = list(progress)
        for c, k in positions:
            if advanced[c] != k:
                return False, state  # it would jump ahead of (or repeat) an observed order
            advanced[c] = k + 1
        return True, (new_queue, tuple(advanced))

    def describe_state(self, state: _OrderedState) -> str:
        return self._base.describe_state(state[0])


# --------------------------------------------------------------------------- znode tree

# A node: (path, data, version, ccount, owner); the state is a tuple of nodes
# sorted by path (canonical, hashable).
_Node = tuple[str, Hashable, int, int, int]
TreeState = tuple[_Node, ...]


def _parent(path: str) -> str:
    parent = path.rsplit("/", 1)[0]
    return parent or "/"


class TreeModel(BaseModel):
    """A znode (sub)tree with ZooKeeper's check order, for one partition.

    State: every node as ``(path, data, version, ccount, owner)`` sorted by
    path, where ``ccount`` counts creates under it (ZooKeeper's sequence
    source) and ``owner`` is the session of an ephemeral node (0 if
    persistent). Operations (``key`` = the path):

    * ``create`` value: data, or ``{"data": d, "sequence": bool,
      "ephemeral": session_id}``; result: the created path (checked for
      sequential nodes, whose suffix is the parent's ``ccount`` as ``%010d``).
      Fails: NoNode (no parent), NodeExists, NoChildrenForEphemerals.
    * ``set`` ``[data, version]`` (version -1: any); result: new version or
      None. Fails: NoNode, BadVersion.
    * ``delete`` version (None or -1: any). Fails: NoNode, BadVersion, NotEmpty.
    * ``get``: result ``[data, version]``; fails NoNode.
    * ``exists``: result the version, or None when absent (True/False accepted).
    * ``children``: result the child names (compared sorted); fails NoNode.
    * ``close_session`` value: session id; removes its ephemerals in this
      partition (log it once per partition the session touched).

    ``initial`` maps paths that exist before the history (with their parents)
    to their data; they start at version 0 and ccount 0. Partition with
    ``subtree_key``: sequential creates and ``children`` must stay inside one
    partition, and the partition's root must exist in ``initial``.
    """

    reads = frozenset({"get", "exists", "children"})
    mutations = frozenset({"create", "set", "delete", "close_session"})

    def __init__(self, *, initial: Mapping[str, Any] | None = None) -> None:
        self.name = "TreeModel"
        nodes: dict[str, _Node] = {"/": ("/", b"", 0, 0, 0)}
        for path, data in (initial or {}).items():
            nodes[path] = (path, freeze(data), 0, 0, 0)
        for path in nodes:
            if path != "/" and _parent(path) not in nodes:
                raise ValueError(f"initial node {path!r} has no parent in initial")
        self._initial: TreeState = tuple(sorted(nodes.values()))

    def init(self) -> TreeState:
        return self._initial

    def informative_failure(self, op: Op) -> bool:
        return error_kind(op.error) in (NO_NODE, NODE_EXISTS, BAD_VERSION, NOT_EMPTY, NO_CHILDREN_FOR_EPHEMERALS)

    def step(self, state: TreeState, op: Op) -> tuple[bool, TreeState]:
        nodes = {node[0]: node for node in state}
        path = op.key
        if not isinstance(path, str):
            raise ValueError(f"{self.name} needs a path as the key (event {op.operation.invoke.index})")
        failed = op.type == FAIL
        expected_error = error_kind(op.error) if failed else None
        node = nodes.get(path)
        f = op.f
        if f == "get":
            if node is None:
                return expected_error == NO_NODE, state
            return not failed and freeze(op.result) == (node[1], node[2]), state
        if f == "exists":
            result = op.result
            if isinstance(result, bool):
                return result == (node is not None), state
            return result == (None if node is None else node[2]), state
        if f == "children":
            if node is None:
                return expected_error == NO_NODE, state
            if failed or not isinstance(op.result, list | tuple):
                return False, state
            prefix = path.rstrip("/") + "/"
            names = sorted(p[len(prefix) :] for p in nodes if p.startswith(prefix) and "/" not in p[len(prefix) :])
            return sorted(op.result) == names, state
        if f == "close_session":
            session = int(op.value)
            survivors = tuple(n for n in state if n[4] != session)
            changed = len(survivors) != len(state)
            return (changed or not op.unknown), survivors
        error, new_nodes = self._mutate(nodes, path, op)
        if failed:
            return error is not None and error == expected_error, state
        if error is not None or new_nodes is None:
            return False, state
        return True, tuple(sorted(new_nodes.values()))

    def _mutate(self, nodes: dict[str, _Node], path: str, op: Op) -> tuple[str | None, dict[str, _Node] | None]:
        """Apply a create/set/delete; (error kind, None) when ZooKeeper would refuse it."""
        node = nodes.get(path)
        if op.f == "create":
            data, sequence, owner = _create_arguments(op)
            parent = nodes.get(_parent(path))
            if parent is None:
                return NO_NODE, None
            target = f"{path}{parent[3]:010d}" if sequence else path
            if target in nodes:
                return NODE_EXISTS, None
            if parent[4]:
                return NO_CHILDREN_FOR_EPHEMERALS, None
            if op.type == OK and sequence and op.result is not None and op.result != target:
                return "result", None
            updated = dict(nodes)
            updated[parent[0]] = (parent[0], parent[1], parent[2], parent[3] + 1, parent[4])
            updated[target] = (target, data, 0, 0, owner)
            return None, updated
        if op.f == "set":
            value = op.value
            if not isinstance(value, list | tuple) or len(value) != 2:
                raise ValueError(f"set expects [data, version], got {value!r}")
            if node is None:
                return NO_NODE, None
            version = int(value[1])
            if version != -1 and version != node[2]:
                return BAD_VERSION, None
            if _int_result(op) not in (-1, node[2] + 1):
                return "result", None
            updated = dict(nodes)
            updated[path] = (path, freeze(value[0]), node[2] + 1, node[3], node[4])
            return None, updated
        if op.f == "delete":
            version = -1 if op.value is None else int(op.value)
            if node is None:
                return NO_NODE, None
            if version != -1 and version != node[2]:
                return BAD_VERSION, None
            prefix = path.rstrip("/") + "/"
            if any(p.startswith(prefix) for p in nodes):
                return NOT_EMPTY, None
            updated = dict(nodes)
            del updated[path]
            return None, updated
        raise ValueError(f"{self.name} cannot interpret operation {op.f!r}")

    def describe_state(self, state: TreeState) -> str:
        parts = []
        for path, data, version, _ccount, owner in state:
            parts.append(f"{path}={data!r}@v{version}" + (f"(eph {owner})" if owner else ""))
        return "{" + ", ".join(parts) + "}"


def _create_arguments(op: Op) -> tuple[Hashable, bool, int]:
    value = op.value
    if isinstance(value, dict):
        return freeze(value.get("data", b"")), bool(value.get("sequence", False)), int(value.get("ephemeral") or 0)
    return freeze(value), False, 0
