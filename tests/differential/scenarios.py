"""Differential scenarios: the same operations against ZooKeeper and coord.

A scenario is ``def scenario_<name>(client, base, waiter) -> list``. It runs
operations on a kazoo-compatible ``client`` (a ``kazoo.client.KazooClient``
or a ``coord.Coordinator``) under ``base`` -- an existing, empty node that
belongs to this scenario run alone -- and returns a *normalized transcript*:
a list of ``(label, value)`` pairs that must be identical for ZooKeeper and
coord. ``waiter`` (:class:`Waiter`) collects watch events with deadlines.

Normalization rules (what a transcript contains)
------------------------------------------------
* Paths: every ``str`` equal to ``base`` or under ``base + "/"`` is rewritten
  to ``~`` / ``~/rest``. Child names and sequential names are kept as is
  (they are deterministic: the suffix is the parent's cversion).
* ``get_children`` results are sorted: ZooKeeper returns children in an
  unspecified (hash) order.
* Bytes are kept; values longer than 64 bytes become ``<N bytes sha1=...>``.
* Stats become ``Stat(v= cv= av= len= kids= eph= cz= mz= pz= t=)``:
  version, cversion, aversion, dataLength, numChildren as is; ``eph`` is
  ``0`` / ``self`` (== this client's session id) / ``other``; czxid, mzxid
  and pzxid are replaced by their dense rank among *all* zxids seen in the
  whole transcript (``z0`` < ``z1`` < ...), so equalities (``parent.pzxid ==
  child.czxid``, all ops of a transaction share one zxid) and ordering are
  compared, never absolute values or gaps (ZooKeeper also spends zxids on
  failed writes and on other sessions). ``t`` checks times: ctime > 0,
  mtime >= ctime, version == 0 implies mtime == ctime, ctime within an hour
  of the wall clock.
* Watch events become ``"<TYPE> <path> <state>"``; a batch returned by
  :meth:`Waiter.wait_for` is sorted by watch label (ZooKeeper orders the
  events of ONE operation by an implementation detail; the order of events
  of different operations is compared, since each wait covers one op).
* Exceptions become :class:`Err`: the class name the caller saw.

Exception comparison rule
-------------------------
The ZooKeeper side's transcript is the reference: its entry is the
kazoo/ZooKeeper class name the caller saw (``ValueError`` for kazoo's
client-side path checks, ``BadArgumentsError`` from the server, ...). A coord
exception matches it when the coord exception *is an instance of a class with
that name* (any class in its MRO), because that is what decides whether
kazoo-written ``except`` clauses still catch it. So coord's
``InvalidPathError`` (a ``BadArgumentsError`` and a ``ValueError``) matches
both ``ValueError`` and ``BadArgumentsError`` entries, while a plain
``ValueError`` would not match a ``BadArgumentsError`` entry. See
:func:`reconcile`. ``Err.__eq__`` compares the recorded name only, so
ZooKeeper-vs-ZooKeeper comparison is plain equality.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from .zk_extensions import extend, extensions

EVENT_TIMEOUT = 5.0
"""Deadline for an expected watch event (ZooKeeper delivers in milliseconds)."""

QUIET_GRACE = 0.05
"""Extra bounded wait after the barrier event before declaring "no event"."""


# --------------------------------------------------------------------------
# transcript values


class Err:
    """An exception the caller saw: its class name plus all names in its MRO."""

    __slots__ = ("name", "names")

    def __init__(self, exc: BaseException) -> None:
        self.name = type(exc).__name__
        self.names = frozenset(c.__name__ for c in type(exc).__mro__)

    @classmethod
    def named(cls, name: str) -> Err:
        """An expected entry, by class name."""
        err = cls.__new__(cls)
        err.name = name
        err.names = frozenset({name})
        return err

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Err) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"!{self.name}"


CONTAINER_OWNER = -(2**63)
"""ZooKeeper's ephemeralOwner of a container node (Long.MIN_VALUE)."""

_EXTENDED_MASK = 0xFF00000000000000
_TTL_VALUE_MASK = 0x000000FFFFFFFFFF
# A TTL node's ephemeralOwner is 0xFF00000000000000 | ttl as a signed long;
# such stats render as ``eph=ttl<ms>:<raw signed value>`` (the raw value is
# what is compared; the decoded ttl is for the reader).


class _StatRef:
    """A stat waiting for the transcript-wide zxid ranking."""

    __slots__ = ("stat", "session_id", "now_ms")

    def __init__(self, stat: Any, session_id: int | None, now_ms: int) -> None:
        self.stat = stat
        self.session_id = session_id
        self.now_ms = now_ms

    def zxids(self) -> tuple[int, int, int]:
        return (self.stat.czxid, self.stat.mzxid, self.stat.pzxid)

    def render(self, rank: dict[int, int]) -> str:
        s = self.stat
        owner = s.ephemeralOwner
        if owner == 0:
            eph = "0"
        elif self.session_id is not None and owner == self.session_id:
            eph = "self"
        elif owner == CONTAINER_OWNER:
            eph = f"container:{owner}"
        elif owner < 0 and (owner & _EXTENDED_MASK) == _EXTENDED_MASK:
            eph = f"ttl{owner & _TTL_VALUE_MASK}:{owner}"
        else:
            eph = "other"
        problems = []
        if s.ctime <= 0:
            problems.append("ctime<=0")
        if s.mtime < s.ctime:
            problems.append("mtime<ctime")
        if s.version == 0 and s.mtime != s.ctime:
            problems.append("v0:mtime!=ctime")
        if abs(s.ctime - self.now_ms) > 3_600_000:
            problems.append("ctime-not-wallclock-ms")
        times = "ok" if not problems else ",".join(problems)
        return (
            f"Stat(v={s.version} cv={s.cversion} av={s.aversion} len={s.dataLength} "
            f"kids={s.numChildren} eph={eph} cz=z{rank[s.czxid]} mz=z{rank[s.mzxid]} "
            f"pz=z{rank[s.pzxid]} t={times})"
        )


def _is_stat(value: Any) -> bool:
    return all(hasattr(value, f) for f in ("czxid", "mzxid", "pzxid", "cversion", "ephemeralOwner"))


def _is_event(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and hasattr(value, "type")
        and hasattr(value, "state")
        and hasattr(value, "path")
        and not _is_stat(value)
    )


def session_id_of(client: Any) -> int | None:
    """The client's session id, used to tell ``eph=self`` from ``eph=other``.

    kazoo: ``client.client_id == (session_id, password)``. coord: the session
    id from ``status()`` (a mapping or an object with ``session_id``).
    """
    cid = getattr(client, "client_id", None)
    if isinstance(cid, tuple) and cid and isinstance(cid[0], int):
        return cid[0]
    status = getattr(client, "status", None)
    if callable(status):
        try:
            st = status()
        except Exception:  # noqa: BLE001 - best effort only
            return None
        sid = st.get("session_id") if isinstance(st, dict) else getattr(st, "session_id", None)
        if isinstance(sid, int):
            return sid
    return None


def _short_bytes(value: bytes) -> Any:
    if len(value) > 64:
        return f"<{len(value)} bytes sha1={hashlib.sha1(value).hexdigest()[:12]}>"  # noqa: S324
    return value


class Transcript:
    """Records calls and values of one scenario run, normalized."""

    def __init__(self, client: Any, base: str) -> None:
        self.client = client
        self.base = base
        self.session_id = session_id_of(client)
        self._entries: list[tuple[str, Any]] = []

    # -- normalization ------------------------------------------------------

    def rel(self, path: str) -> str:
        if path == self.base:
            return "~"
        if path.startswith(self.base + "/"):
            return "~" + path[len(self.base) :]
        unrooted = self.base.lstrip("/")  # base without its leading slash
        if path == unrooted or path.startswith(unrooted + "/"):
            return "rel:~" + path[len(unrooted) :]
        return path

    def norm(self, value: Any) -> Any:
        if isinstance(value, BaseException):
            return Err(value)
        if _is_stat(value):
            return _StatRef(value, self.session_id, int(time.time() * 1000))
        if _is_event(value):
            return f"{value.type} {self.rel(value.path)} {value.state}"
        if isinstance(value, str):
            return self.rel(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return _short_bytes(bytes(value))
        if isinstance(value, list):
            return [self.norm(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.norm(v) for v in value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, _Callback):
            return repr(value)
        return f"<{type(value).__name__}>"

    def _label(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        owner = getattr(fn, "__self__", None)
        # zk_extensions' adapters stand for the client they extend
        own = owner is self.client or owner is None or getattr(owner, "_extends", None) is self.client
        prefix = "" if own else "tx."
        parts = [self.arg_repr(a) for a in args]
        parts += [f"{k}={self.arg_repr(v)}" for k, v in kwargs.items()]
        return f"{prefix}{getattr(fn, '__name__', repr(fn))}({', '.join(parts)})"

    def arg_repr(self, value: Any) -> str:
        if isinstance(value, str):
            return repr(self.rel(value))
        if isinstance(value, bytes):
            return repr(_short_bytes(value))
        text = repr(value)
        if " at 0x" in text:  # default reprs carry addresses: not comparable
            return f"<{type(value).__name__}>"
        return text

    # -- recording ----------------------------------------------------------

    def call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        _label: str | None = None,
        _map: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call ``fn`` and record its result (``_map(result)`` if given) or
        the exception it raised. Returns the raw result (None when it raised).
        """
        label = _label or self._label(fn, args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - recording is the point
            self._entries.append((label, Err(exc)))
            return None
        if _map is not None:
            self._entries.append((label, self.norm(_map(result))))
            return result
        recorded = result
        if getattr(fn, "__name__", "") == "get_children":
            if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], list):
                recorded = (sorted(result[0]), result[1])
            elif isinstance(result, list):
                recorded = sorted(result)
        self._entries.append((label, self.norm(recorded)))
        return result

    def step(self, fn: Callable[..., Any], *args: Any, _label: str | None = None, **kwargs: Any) -> Any:
        """Call ``fn`` for its effect (adding an op to a transaction,
        registering a recipe); record an entry only if it raises, so a
        backend that rejects the step shows up in the diff, not as a crash."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - recording is the point
            self._entries.append((_label or self._label(fn, args, kwargs), Err(exc)))
            return None

    def stat(self, path: str) -> Any:
        """Record ``exists(path)`` (the node's stat, or None)."""
        return self.call(self.client.exists, path, _label=f"stat {self.rel(path)}")

    def note(self, label: str, value: Any) -> None:
        self._entries.append((label, self.norm(value)))

    def finish(self) -> list[tuple[str, Any]]:
        """The normalized transcript, zxids replaced by their dense rank."""
        zxids: set[int] = set()

        def collect(v: Any) -> None:
            if isinstance(v, _StatRef):
                zxids.update(v.zxids())
            elif isinstance(v, (list, tuple)):
                for x in v:
                    collect(x)

        for _, v in self._entries:
            collect(v)
        rank = {z: i for i, z in enumerate(sorted(zxids))}

        def render(v: Any) -> Any:
            if isinstance(v, _StatRef):
                return v.render(rank)
            if isinstance(v, list):
                return [render(x) for x in v]
            if isinstance(v, tuple):
                return tuple(render(x) for x in v)
            return v

        return [(label, render(v)) for label, v in self._entries]


def reconcile(expected: Any, actual: Any) -> Any:
    """``actual`` with every :class:`Err` that satisfies the exception rule
    (the actual exception is an instance of a class named like the expected
    one) replaced by the expected entry, so ``reconcile(zk, other) == zk``
    holds exactly when the transcripts match under the rule."""
    if isinstance(expected, Err) and isinstance(actual, Err):
        return expected if expected.name in actual.names else actual
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [reconcile(e, a) for e, a in zip(expected, actual, strict=True)]
    if isinstance(expected, tuple) and isinstance(actual, tuple) and len(expected) == len(actual):
        return tuple(reconcile(e, a) for e, a in zip(expected, actual, strict=True))
    return actual


def reconcile_transcripts(
    expected: list[tuple[str, Any]], actual: list[tuple[str, Any]]
) -> list[tuple[str, Any]]:
    out = []
    for i, entry in enumerate(actual):
        if i < len(expected) and expected[i][0] == entry[0]:
            out.append((entry[0], reconcile(expected[i][1], entry[1])))
        else:
            out.append(entry)
    return out


def format_transcript(transcript: list[tuple[str, Any]]) -> list[str]:
    return [f"{label} -> {value!r}" for label, value in transcript]


# --------------------------------------------------------------------------
# watch events


class _Callback:
    """A watch callback (or recipe function) that records into a Waiter."""

    def __init__(self, waiter: Waiter, label: str, *, sort_lists: bool = False, result: Any = None) -> None:
        self.waiter = waiter
        self.label = label
        self.sort_lists = sort_lists
        self.result = result

    def __call__(self, *args: Any) -> Any:
        if self.sort_lists:
            args = tuple(sorted(a) if isinstance(a, list) else a for a in args)
        self.waiter._record((self.label, *args))
        return self.result

    def __repr__(self) -> str:
        return f"<watch {self.label}>"


class Waiter:
    """Collects watch events of one scenario run, with deadlines.

    * :meth:`watch` / :meth:`recorder` make callbacks that record
      ``(label, *args)``.
    * :meth:`wait_for` waits until at least ``n`` unconsumed events arrived
      (or the deadline passed) and returns them all, sorted by label.
    * :meth:`quiet` proves that nothing (more) arrived: it sets an exists
      watch on a barrier node (a sibling of base, so base's stats are not
      touched), creates the node, waits for that CREATED event, then waits a
      short bounded grace period. Watch events of one session are delivered
      in order, so any event caused by an earlier operation arrives before
      the barrier's; it returns whatever arrived (expected: ``[]``).
    """

    def __init__(self, client: Any, base: str, *, timeout: float = EVENT_TIMEOUT, grace: float = QUIET_GRACE) -> None:
        self.client = client
        self.base = base
        self.barrier_path = base + ".barrier"
        self.timeout = timeout
        self.grace = grace
        self._cond = threading.Condition()
        self._pending: list[tuple[Any, ...]] = []

    def watch(self, label: str) -> _Callback:
        return _Callback(self, label)

    def recorder(self, label: str, *, sort_lists: bool = False, result: Any = None) -> _Callback:
        """A function for DataWatch/ChildrenWatch; returns ``result`` when called."""
        return _Callback(self, label, sort_lists=sort_lists, result=result)

    def _record(self, item: tuple[Any, ...]) -> None:
        with self._cond:
            self._pending.append(item)
            self._cond.notify_all()

    def _take(self) -> list[tuple[Any, ...]]:
        items, self._pending = self._pending, []
        return sorted(items, key=lambda item: item[0])

    def wait_for(self, n: int) -> list[tuple[Any, ...]]:
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while len(self._pending) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            got = self._take()
        if len(got) < n:
            got.append((f"TIMEOUT: expected {n} events within {self.timeout}s, got {len(got)}",))
        return got

    def quiet(self) -> list[tuple[Any, ...]]:
        arrived = threading.Event()
        self.client.exists(self.barrier_path, watch=lambda event: arrived.set())
        self.client.create(self.barrier_path)
        self.client.exists(self.barrier_path)
        got_barrier = arrived.wait(self.timeout)
        self.client.delete(self.barrier_path)
        deadline = time.monotonic() + self.grace
        with self._cond:
            while (remaining := deadline - time.monotonic()) > 0:
                self._cond.wait(remaining)
            items = self._take()
        if not got_barrier:
            items.append((f"TIMEOUT: barrier event missing after {self.timeout}s",))
        return items


# --------------------------------------------------------------------------
# scenarios


def scenario_crud(client: Any, base: str, waiter: Waiter) -> list:
    t = Transcript(client, base)
    a = base + "/a"
    t.call(client.create, a, b"hello")
    t.call(client.get, a)
    t.call(client.exists, a)
    t.call(client.get_children, base)
    t.call(client.set, a, b"world!")
    t.call(client.get, a)
    t.call(client.create, a, b"dup")
    t.call(client.create, a + "/b/c")
    t.call(client.create, a + "/b", b"xyz", include_data=True)
    t.call(client.create, a + "/c", b"")
    t.call(client.get_children, a)
    t.call(client.get_children, a, include_data=True)
    t.call(client.delete, a)
    t.call(client.delete, a + "/b")
    t.call(client.delete, a + "/c")
    t.call(client.delete, a)
    t.call(client.get, a)
    t.call(client.exists, a)
    t.call(client.get_children, base)
    t.call(client.create, a, b"again")
    t.call(client.get, a)
    t.stat(base)
    return t.finish()


def scenario_missing_nodes(client: Any, base: str, waiter: Waiter) -> list:
    t = Transcript(client, base)
    m = base + "/missing"
    deep = base + "/no/such/node"
    for p in (m, deep):
        t.call(client.get, p)
        t.call(client.exists, p)
        t.call(client.get_children, p)
        t.call(client.set, p, b"x")
        t.call(client.set, p, b"x", version=3)
        t.call(client.delete, p)
        t.call(client.delete, p, version=3)
        t.call(client.create, p + "/child")
    t.stat(base)
    return t.finish()


def scenario_versions_cas(client: Any, base: str, waiter: Waiter) -> list:
    t = Transcript(client, base)
    a = base + "/a"
    t.call(client.create, a, b"v0")
    t.call(client.set, a, b"v1", version=0)
    t.call(client.set, a, b"bad", version=0)
    t.call(client.get, a)
    t.call(client.set, a, b"v2", version=1)
    t.call(client.set, a, b"v3", version=-1)
    t.call(client.set, a, b"bad", version=-2)
    t.call(client.set, a, b"bad", version=99)
    t.call(client.get, a)
    t.call(client.set, a, b"v3")  # same data still bumps the version
    t.call(client.delete, a, version=0)
    t.call(client.delete, a, version=-2)
    t.call(client.get, a)
    t.call(client.delete, a, version=4)
    t.call(client.exists, a)
    b = base + "/b"
    t.call(client.create, b)
    t.call(client.delete, b, version=-1)
    t.call(client.create, b, b"new")
    t.call(client.get, b)  # recreated: version starts at 0 again
    t.stat(base)
    return t.finish()


def scenario_stats_parent_child(client: Any, base: str, waiter: Waiter) -> list:
    t = Transcript(client, base)
    p = base + "/p"
    t.call(client.create, p, b"parent")
    t.stat(p)
    t.call(client.create, p + "/c1", b"1")
    t.stat(p)
    t.stat(p + "/c1")
    t.call(client.create, p + "/c2", b"22")
    t.stat(p)
    t.call(client.set, p + "/c1", b"111")  # child data change: parent untouched
    t.stat(p)
    t.stat(p + "/c1")
    t.call(client.set, p, b"parent2")  # parent data: mzxid moves, pzxid not
    t.stat(p)
    t.call(client.create, p + "/c1/g", b"")  # grandchild: p untouched
    t.stat(p)
    t.stat(p + "/c1")
    t.call(client.delete, p + "/c2")
    t.stat(p)
    t.call(client.delete, p + "/c1/g")
    t.call(client.delete, p + "/c1")
    t.stat(p)
    t.call(client.create, p + "/c1", b"again")
    t.stat(p)
    t.stat(p + "/c1")
    t.stat(base)
    return t.finish()


def scenario_sequential(client: Any, base: str, waiter: Waiter) -> list:
    t = Transcript(client, base)
    q = base + "/q"
    t.call(client.create, q)
    t.call(client.create, q + "/n-", sequence=True)
    t.call(client.create, q + "/n-", b"data", sequence=True)
    t.call(client.create, q + "/m-", sequence=True)  # one counter per parent
    t.call(client.create, q + "/plain")  # plain children count too
    first = t.call(client.create, q + "/n-", sequence=True)
    t.call(client.delete, q + "/n-0000000000")
    t.call(client.create, q + "/n-", sequence=True)  # deletes do NOT count
    t.call(client.get_children, q)
    t.stat(q)
    t.call(client.create, q + "/e-", ephemeral=True, sequence=True)
    t.call(client.get, q + "/e-0000000006")
    t.call(client.create, q + "/n-", sequence=True, include_data=True)
    # A plain node squatting on a future sequential name: 8 creations so
    # far, the squatter is the 9th, so x-...09 works and x-...10 collides.
    t.call(client.create, q + "/x-0000000010")
    t.call(client.create, q + "/x-", sequence=True)
    t.call(client.create, q + "/x-", sequence=True)  # NodeExistsError, counter stays
    t.call(client.delete, q + "/x-0000000010")
    t.call(client.create, q + "/x-", sequence=True)
    t.call(client.get_children, q)
    t.stat(q)
    # A parent whose children were all created and deleted before.
    r = base + "/r"
    t.call(client.create, r)
    for name in ("a", "b", "c"):
        t.call(client.create, f"{r}/{name}")
    for name in ("a", "b", "c"):
        t.call(client.delete, f"{r}/{name}")
    t.call(client.create, r + "/s", sequence=True)
    t.call(client.create, r + "/s", sequence=True, makepath=True)
    t.call(client.create, base + "/new/deep/s-", sequence=True, makepath=True)
    t.call(client.create, r + "/no/such/s-", sequence=True)
    t.call(client.get_children, r)
    t.stat(r)
    t.note("first-was-str", isinstance(first, str))
    return t.finish()


def scenario_ephemerals(client: Any, base: str, waiter: Waiter) -> list:
    t = Transcript(client, base)
    e = base + "/e"
    t.call(client.create, e, b"eph", ephemeral=True)
    t.stat(e)
    t.call(client.get, e)
    t.call(client.get_children, e)
    t.call(client.create, e + "/c")
    t.call(client.create, e + "/c", sequence=True)
    t.call(client.create, e + "/c", ephemeral=True)
    t.call(client.create, e + "/c/d", makepath=True)
    t.call(client.ensure_path, e + "/c")
    t.call(client.set, e, b"changed")
    t.stat(e)
    t.stat(base)
    # makepath: intermediate nodes are persistent, only the leaf is ephemeral
    t.call(client.create, base + "/m/n/o", b"leaf", ephemeral=True, makepath=True)
    t.stat(base + "/m")
    t.stat(base + "/m/n")
    t.stat(base + "/m/n/o")
    t.call(client.create, base + "/es-", ephemeral=True, sequence=True)
    t.call(client.create, base + "/es-", b"x", ephemeral=True, sequence=True, include_data=True)
    tx = client.transaction()
    t.step(tx.create, base + "/te", b"", ephemeral=True)
    t.step(tx.create, base + "/te/child")
    t.call(tx.commit)
    t.call(client.exists, base + "/te")
    t.call(client.delete, e)
    t.call(client.exists, e)
    t.call(client.create, e, b"persistent now")
    t.stat(e)
    t.call(client.get_children, base)
    return t.finish()


def scenario_watch_data(client: Any, base: str, waiter: Waiter) -> list:
    """get() watches: CHANGED on set, DELETED on delete, at most once."""
    t = Transcript(client, base)
    a = base + "/a"
    t.call(client.create, a, b"1")
    t.call(client.get, a, watch=waiter.watch("get1"))
    t.call(client.set, a, b"2")
    t.note("events after set", waiter.wait_for(1))
    t.call(client.set, a, b"3")
    t.note("second set: no event (one-shot)", waiter.quiet())
    t.call(client.get, a, watch=waiter.watch("get2"))
    t.call(client.create, a + "/child")
    t.call(client.set, a + "/child", b"c")
    t.note("child create/set: no data event", waiter.quiet())
    t.call(client.set, a, b"x", version=99)
    t.note("failed set: no event", waiter.quiet())
    t.call(client.set, a, b"4")
    t.note("events after set", waiter.wait_for(1))
    t.call(client.delete, a + "/child")
    t.call(client.get, a, watch=waiter.watch("get3"))
    t.call(client.delete, a)
    t.note("events after delete", waiter.wait_for(1))
    t.call(client.create, a)
    t.note("recreate: no event", waiter.quiet())
    # get() on a missing node leaves no watch on the server.
    t.call(client.get, base + "/nope", watch=waiter.watch("get-missing"))
    t.call(client.create, base + "/nope")
    t.note("create after failed get: no event", waiter.quiet())
    return t.finish()


def scenario_watch_exists(client: Any, base: str, waiter: Waiter) -> list:
    """exists() watches: CREATED on a missing node, CHANGED, DELETED."""
    t = Transcript(client, base)
    x = base + "/x"
    t.call(client.exists, x, watch=waiter.watch("ex1"))
    t.call(client.create, x, b"")
    t.note("events after create", waiter.wait_for(1))
    t.call(client.set, x, b"1")
    t.note("set: no event (one-shot)", waiter.quiet())
    t.call(client.exists, x, watch=waiter.watch("ex2"))
    t.call(client.set, x, b"2")
    t.note("events after set", waiter.wait_for(1))
    t.call(client.exists, x, watch=waiter.watch("ex3"))
    t.call(client.delete, x)
    t.note("events after delete", waiter.wait_for(1))
    t.call(client.create, x)
    t.note("recreate: no event", waiter.quiet())
    # A failed create (parent missing) does not fire an exists watch.
    y = base + "/y/z"
    t.call(client.exists, y, watch=waiter.watch("ex4"))
    t.call(client.create, y)
    t.note("failed create: no event", waiter.quiet())
    t.call(client.create, y, makepath=True)
    t.note("events after makepath create", waiter.wait_for(1))
    # create then delete: exactly one CREATED
    w = base + "/w"
    t.call(client.exists, w, watch=waiter.watch("ex5"))
    t.call(client.create, w)
    t.call(client.delete, w)
    t.note("events after create+delete", waiter.wait_for(1))
    t.note("then nothing", waiter.quiet())
    return t.finish()


def scenario_watch_children(client: Any, base: str, waiter: Waiter) -> list:
    """get_children() watches: CHILD on child create/delete, DELETED on delete."""
    t = Transcript(client, base)
    p = base + "/p"
    t.call(client.create, p)
    t.call(client.get_children, p, watch=waiter.watch("ch1"))
    t.call(client.create, p + "/c1")
    t.note("events after child create", waiter.wait_for(1))
    t.call(client.create, p + "/c2")
    t.note("second child: no event (one-shot)", waiter.quiet())
    t.call(client.get_children, p, watch=waiter.watch("ch2"))
    t.call(client.set, p + "/c1", b"data")
    t.call(client.set, p, b"data")
    t.call(client.create, p + "/c1/grandchild")
    t.call(client.delete, p + "/c1/grandchild")
    t.call(client.create, p + "/c2", b"exists already")
    t.note("child set / own set / grandchild / failed create: no event", waiter.quiet())
    t.call(client.delete, p + "/c2")
    t.note("events after child delete", waiter.wait_for(1))
    t.call(client.get_children, p, watch=waiter.watch("ch3"))
    t.call(client.create, p + "/s-", ephemeral=True, sequence=True)
    t.note("events after ephemeral sequential child", waiter.wait_for(1))
    t.call(client.get_children, p, watch=waiter.watch("ch4"))
    t.call(client.delete, p, recursive=True)
    t.note("events after recursive delete (first child delete fires it)", waiter.wait_for(1))
    t.note("then nothing", waiter.quiet())
    # A child watch on a node that is deleted fires DELETED.
    leaf = base + "/leaf"
    t.call(client.create, leaf)
    t.call(client.get_children, leaf, watch=waiter.watch("ch5"))
    t.call(client.delete, leaf)
    t.note("events after delete of watched node", waiter.wait_for(1))
    t.note("then nothing", waiter.quiet())
    # get_children() on a missing node leaves no watch.
    t.call(client.get_children, base + "/nope", watch=waiter.watch("ch-missing"))
    t.call(client.create, base + "/nope")
    t.call(client.create, base + "/nope/kid")
    t.note("after failed get_children: no event", waiter.quiet())
    return t.finish()


def scenario_watch_many(client: Any, base: str, waiter: Waiter) -> list:
    """Several watches at once: one op firing many, dedup, transactions."""
    t = Transcript(client, base)
    a = base + "/a"
    t.call(client.create, a)
    same = waiter.watch("same")
    t.call(client.get, a, watch=same)
    t.call(client.exists, a, watch=same)
    t.call(client.set, a, b"1")
    t.note("same callable via get+exists", waiter.wait_for(1))
    t.note("same callable fires once", waiter.quiet())
    t.call(client.get, a, watch=waiter.watch("w1"))
    t.call(client.exists, a, watch=waiter.watch("w2"))
    t.call(client.set, a, b"2")
    t.note("two callables", waiter.wait_for(2))
    c = a + "/c"
    t.call(client.create, c)
    t.call(client.get, c, watch=waiter.watch("data-c"))
    t.call(client.exists, c, watch=waiter.watch("exists-c"))
    t.call(client.get_children, c, watch=waiter.watch("kids-c"))
    t.call(client.get_children, a, watch=waiter.watch("kids-a"))
    t.call(client.get, a, watch=waiter.watch("data-a"))
    t.call(client.delete, c)
    t.note("one delete, four watches", waiter.wait_for(4))
    t.note("data-a untouched by child delete", waiter.quiet())
    t.call(client.set, a, b"3")
    t.note("data-a fires on set", waiter.wait_for(1))
    # Transactions fire each watch once.
    t.call(client.get_children, a, watch=waiter.watch("kids-a2"))
    t.call(client.exists, base + "/tx", watch=waiter.watch("exists-tx"))
    tx = client.transaction()
    t.step(tx.create, a + "/k1")
    t.step(tx.create, a + "/k2")
    t.step(tx.create, base + "/tx")
    t.step(tx.set_data, base + "/tx", b"x")
    t.call(tx.commit)
    t.note("txn events", waiter.wait_for(2))
    t.note("then nothing", waiter.quiet())
    # A failed transaction fires nothing.
    t.call(client.get_children, a, watch=waiter.watch("kids-a3"))
    tx = client.transaction()
    t.step(tx.create, a + "/k3")
    t.step(tx.create, a + "/k1")
    t.call(tx.commit)
    t.note("failed txn: no event", waiter.quiet())
    t.call(client.delete, a + "/k2")
    t.note("kids-a3 still armed", waiter.wait_for(1))
    # Same callable as data and child watch, node deleted.
    both = waiter.watch("both")
    t.call(client.create, base + "/b")
    t.call(client.get, base + "/b", watch=both)
    t.call(client.get_children, base + "/b", watch=both)
    t.call(client.delete, base + "/b")
    t.note("same callable as data+child watch", waiter.wait_for(1))
    t.note("then", waiter.quiet())
    return t.finish()


def scenario_transactions_ok(client: Any, base: str, waiter: Waiter) -> list:
    t = Transcript(client, base)
    a = base + "/a"
    t.call(client.create, a, b"a")
    tx = client.transaction()
    t.step(tx.create, base + "/b", b"b")
    t.step(tx.set_data, a, b"A", version=0)
    t.step(tx.check, a, 1)
    t.step(tx.create, base + "/b/c", b"c")
    t.step(tx.delete, base + "/b/c")
    t.step(tx.create, base + "/s-", b"s", sequence=True)
    t.step(tx.create, base + "/e", b"e", ephemeral=True)
    t.step(tx.set_data, a, b"AA")
    t.step(tx.check, base + "/b", 0)
    t.call(tx.commit)
    t.call(client.get, a)
    t.stat(base + "/b")
    t.stat(base + "/s-0000000002")
    t.stat(base + "/e")
    t.stat(base)
    t.call(client.get_children, base)
    # create / delete / create the same path in one transaction
    tx = client.transaction()
    t.step(tx.create, base + "/d", b"1")
    t.step(tx.delete, base + "/d")
    t.step(tx.create, base + "/d", b"2")
    t.call(tx.commit)
    t.call(client.get, base + "/d")
    # delete a child, then its parent, in one transaction
    t.call(client.create, base + "/p/c", makepath=True)
    tx = client.transaction()
    t.step(tx.delete, base + "/p/c")
    t.step(tx.delete, base + "/p", version=0)
    t.call(tx.commit)
    t.call(client.exists, base + "/p")
    # check only
    tx = client.transaction()
    t.step(tx.check, a, 2)
    t.call(tx.commit)
    # empty transaction
    t.call(client.transaction().commit)
    # context manager commits
    def use_context_manager() -> None:
        with client.transaction() as tx:
            tx.create(base + "/cm", b"cm")

    t.step(use_context_manager, _label="with transaction(): create('~/cm')")
    t.call(client.get, base + "/cm")
    # commit twice
    tx = client.transaction()
    t.step(tx.check, a, 2)
    t.call(tx.commit)
    t.call(tx.commit)
    t.call(tx.create, base + "/late")
    t.stat(base)
    return t.finish()


def scenario_transactions_fail(client: Any, base: str, waiter: Waiter) -> list:
    t = Transcript(client, base)
    a = base + "/a"
    t.call(client.create, a, b"a")
    t.call(client.create, base + "/p/c", makepath=True)
    t.stat(base)

    def run(*ops: tuple[str, tuple[Any, ...], dict[str, Any]]) -> None:
        tx = client.transaction()
        for name, args, kwargs in ops:
            t.step(getattr(tx, name), *args, **kwargs)
        described = [
            f"{name}({', '.join([t.arg_repr(a) for a in args] + [f'{k}={t.arg_repr(v)}' for k, v in kwargs.items()])})"
            for name, args, kwargs in ops
        ]
        t.call(tx.commit, _label="commit: " + "; ".join(described))

    n = base + "/n"
    run(("create", (n,), {}), ("set_data", (a, b"x"), {"version": 5}), ("create", (base + "/n2",), {}))
    run(("create", (a,), {}))
    run(("check", (a, 3), {}))
    run(("check", (base + "/missing", 0), {}))
    run(("set_data", (base + "/missing", b""), {}))
    run(("delete", (base + "/missing",), {}))
    run(("delete", (base + "/p",), {}))
    run(("delete", (a,), {"version": 9}))
    run(("create", (n,), {}), ("create", (n,), {}))
    run(("delete", (base + "/p/c",), {}), ("create", (base + "/p/c/d/e",), {}))
    run(("create", (base + "/eph",), {"ephemeral": True}), ("create", (base + "/eph/c",), {}))
    run(
        ("create", (base + "/s-",), {"sequence": True}),
        ("check", (a, 7), {}),
        ("set_data", (a, b"y"), {}),
        ("delete", (a,), {}),
    )
    run(("delete", ("/",), {}))
    run(("create", ("/",), {}))
    # nothing above was applied
    t.call(client.exists, n)
    t.call(client.exists, base + "/n2")
    t.call(client.exists, base + "/eph")
    t.call(client.get, a)
    t.call(client.get_children, base)
    t.call(client.get_children, base + "/p")
    t.stat(base)
    # the sequence counter was not consumed by the failed transactions
    t.call(client.create, base + "/s-", sequence=True)
    # client-side rejection while building the transaction
    tx = client.transaction()
    t.call(tx.create, base + "/./x")
    t.call(tx.create, base + "/x", "not bytes")
    t.call(tx.set_data, a, None)
    t.call(tx.check, a, "1")
    t.call(tx.commit)
    return t.finish()


def scenario_recursive_delete(client: Any, base: str, waiter: Waiter) -> list:
    t = Transcript(client, base)
    r = base + "/r"
    for p in ("a/x", "a/y", "b", "c/d/e"):
        t.call(client.create, f"{r}/{p}", p.encode(), makepath=True)
    t.call(client.create, r + "/eph", ephemeral=True)
    t.call(client.delete, r)
    t.call(client.get, r + "/a/x", watch=waiter.watch("data-a/x"))
    t.call(client.get_children, base, watch=waiter.watch("kids-base"))
    t.call(client.delete, r, recursive=True)
    t.note("events", waiter.wait_for(2))
    t.call(client.exists, r)
    t.call(client.exists, r + "/c/d/e")
    t.stat(base)
    t.call(client.delete, r, recursive=True)  # missing node
    t.call(client.create, base + "/leaf")
    t.call(client.delete, base + "/leaf", recursive=True)
    t.call(client.create, base + "/v", b"0")
    t.call(client.set, base + "/v", b"1")
    t.call(client.delete, base + "/v", version=0, recursive=True)  # version ignored
    t.call(client.exists, base + "/v")
    t.call(client.delete, base + "/v", version=0)
    t.stat(base)
    t.note("then", waiter.quiet())
    return t.finish()


def scenario_transactions_bad_char(client: Any, base: str, waiter: Waiter) -> list:
    """A name the server rejects inside a transaction: ZooKeeper fails the
    whole transaction at commit. (coord refuses the op when it is added:
    a deviation, asserted by test_coord_transaction_refuses_bad_op_when_added.)"""
    t = Transcript(client, base)
    bad = base + "/bad\x01"
    tx = client.transaction()
    t.step(tx.create, bad)
    t.call(tx.commit, _label="commit: create('~/bad\\x01')")
    tx = client.transaction()
    t.step(tx.create, base + "/n")
    t.step(tx.create, bad)
    t.call(tx.commit, _label="commit: create('~/n'); create('~/bad\\x01')")
    t.call(client.get_children, base)
    return t.finish()


def scenario_ensure_path_makepath(client: Any, base: str, waiter: Waiter) -> list:
    t = Transcript(client, base)
    t.call(client.ensure_path, base + "/a/b/c")
    t.call(client.ensure_path, base + "/a/b/c")
    t.call(client.ensure_path, base + "/a/b/d")
    t.call(client.ensure_path, base)
    t.call(client.ensure_path, "/")
    t.stat(base + "/a")
    t.stat(base + "/a/b")
    t.call(client.get, base + "/a/b/c")
    t.call(client.create, base + "/m/n/o", b"value", makepath=True)
    t.call(client.get, base + "/m")
    t.call(client.get, base + "/m/n/o")
    t.call(client.create, base + "/m/n/o", makepath=True)
    t.call(client.create, base + "/m/n/p", b"pp", makepath=True, include_data=True)
    t.call(client.create, base + "/m", makepath=True)
    t.call(client.create, base + "/k/l")
    t.call(client.create, base + "/k", makepath=True)
    t.stat(base + "/m/n")
    t.stat(base)
    return t.finish()


def scenario_bad_paths_client_side(client: Any, base: str, waiter: Waiter) -> list:
    """Paths kazoo rejects before sending: '.'/'..' components (ValueError),
    non-str paths (TypeError)."""
    t = Transcript(client, base)
    bad = ["/.", "/..", base + "/.", base + "/..", base + "/./x", base + "/x/../y", ".", "..", "./x"]
    for p in bad:
        t.call(client.create, p)
        t.call(client.create, p, makepath=True)
        t.call(client.get, p)
        t.call(client.exists, p)
        t.call(client.get_children, p)
        t.call(client.set, p, b"")
        t.call(client.delete, p)
        t.call(client.ensure_path, p)
    for p in (b"/bytes", None, 7):
        t.call(client.create, p)
        t.call(client.get, p)
        t.call(client.exists, p)
        t.call(client.get_children, p)
        t.call(client.set, p, b"")
        t.call(client.delete, p)
    t.call(client.get_children, base)
    return t.finish()


def scenario_paths_kazoo_normalizes(client: Any, base: str, waiter: Waiter) -> list:
    """What kazoo accepts and rewrites: a missing leading slash, trailing
    slashes, '//' runs ('~/b//' with sequence=True keeps one trailing slash,
    except in a transaction). Run on ZooKeeper only: coord refuses every one
    of these paths (test_coord_refuses_what_kazoo_normalizes)."""
    t = Transcript(client, base)
    rel = base.lstrip("/")
    t.call(client.create, rel + "/a", b"rel")
    t.call(client.create, base + "/b/", b"trailing")
    t.call(client.create, base + "//c", b"double")
    t.call(client.create, base + "/c//d/", b"both")
    t.call(client.get, base + "/a/")
    t.call(client.get, rel + "/a")
    t.call(client.exists, base + "//a")
    t.call(client.get_children, base + "/")
    t.call(client.get_children, rel)
    t.call(client.set, base + "//a/", b"x")
    t.call(client.create, base + "/b//", sequence=True)
    t.call(client.create, rel + "/b/", sequence=True)
    t.call(client.get_children, base + "/b/")
    tx = client.transaction()
    t.step(tx.create, base + "/b//", sequence=True)
    t.step(tx.create, rel + "//txnode/", b"")
    t.call(tx.commit, _label="commit create('~/b//', sequence=True); create('rel:~//txnode/')")
    t.call(client.ensure_path, rel + "/e/f")
    t.call(client.ensure_path, base + "/g/h/")
    t.call(client.ensure_path, base + "/g/h/")
    t.call(client.delete, base + "/a/")
    t.call(client.delete, rel + "/e", recursive=True)
    t.call(client.get_children, base)
    return t.finish()


def scenario_sequential_empty_prefix(client: Any, base: str, waiter: Waiter) -> list:
    """A sequential create of 'parent/' (a trailing slash): a valid ZooKeeper
    path with an empty name prefix, so the node is named by the counter alone.
    kazoo's transaction drops that slash (a deviation, see deviations.py)."""
    t = Transcript(client, base)
    b = base + "/b"
    t.call(client.create, b)
    t.call(client.create, b + "/", sequence=True)
    t.call(client.create, b + "/", b"data", sequence=True)
    t.call(client.create, b + "/", ephemeral=True, sequence=True)
    t.call(client.create, b + "/", sequence=True, include_data=True)
    t.call(client.get, b + "/0000000001")
    t.call(client.get_children, b)
    t.stat(b)
    t.call(client.create, base + "/missing/", sequence=True)
    t.call(client.create, base + "/new/", sequence=True, makepath=True)
    t.call(client.get_children, base + "/new")
    tx = client.transaction()
    t.step(tx.create, b + "/", sequence=True)
    t.call(tx.commit, _label="commit: create('~/b/', sequence=True)")
    return t.finish()


_REJECTED_CHARS = ["\x00", "\x01", "\x1f", "\x7f", "\x9f", "\ue000", "\uf8ff", "\ufff0", "\uffff"]
_ACCEPTED_NAMES = ["a\uf900b", "...", ".x", "x.", "a b", "\u00fc", "-", "0000000000", "a:b@c"]


def scenario_bad_paths_server_side(client: Any, base: str, waiter: Waiter) -> list:
    """Names ZooKeeper's server rejects (BadArgumentsError) and accepts; the
    root node."""
    t = Transcript(client, base)
    for ch in _REJECTED_CHARS:
        t.call(client.create, f"{base}/a{ch}b", _label=f"create(~/a{ch!r}b)")
        t.call(client.create, f"{base}/s{ch}", sequence=True, _label=f"create(~/s{ch!r}, sequence=True)")
    p = base + "/a\x01b"
    t.call(client.create, p + "/c", makepath=True, _label="create(~/a\\x01b/c, makepath=True)")
    t.call(client.set, p, b"", _label="set(~/a\\x01b)")
    t.call(client.get, p, _label="get(~/a\\x01b)")
    t.call(client.exists, p, _label="exists(~/a\\x01b)")
    t.call(client.get_children, p, _label="get_children(~/a\\x01b)")
    t.call(client.delete, p, _label="delete(~/a\\x01b)")
    z = base + "/a\x00b"
    t.call(client.set, z, b"", _label="set(~/a\\x00b)")
    t.call(client.get, z, _label="get(~/a\\x00b)")
    t.call(client.exists, z, _label="exists(~/a\\x00b)")
    t.call(client.delete, z, _label="delete(~/a\\x00b)")
    for name in _ACCEPTED_NAMES:
        t.call(client.create, f"{base}/{name}", name.encode())
    t.call(client.get_children, base)
    # The root node.
    t.call(client.create, "/")
    t.call(client.create, "")
    t.call(client.delete, "/")
    t.call(client.delete, "")
    t.call(client.delete, "/", version=0)
    t.call(client.exists, "/", _label="exists('/') is not None", _map=lambda st: st is not None)
    t.call(client.exists, "", _label="exists('') is not None", _map=lambda st: st is not None)
    t.call(client.get, "/", _label="get('/') data", _map=lambda r: r[0])
    t.call(client.ensure_path, "")
    return t.finish()


def scenario_values_and_types(client: Any, base: str, waiter: Waiter) -> list:
    t = Transcript(client, base)
    t.call(client.create, base + "/none", None)
    t.call(client.get, base + "/none")
    t.call(client.create, base + "/empty", b"")
    t.call(client.get, base + "/empty")
    t.call(client.set, base + "/empty", None)
    t.call(client.get, base + "/empty")
    allbytes = bytes(range(256)) * 4
    t.call(client.create, base + "/bin", allbytes)
    t.call(client.get, base + "/bin")
    big = bytes(i % 251 for i in range(1_000_000))
    t.call(client.create, base + "/big", big)
    t.call(client.get, base + "/big")
    t.call(client.set, base + "/big", big[::-1])
    t.call(client.get, base + "/big")
    for bad in ("text", bytearray(b"x"), 5, memoryview(b"x")):
        t.call(client.create, base + "/bad", bad)
        t.call(client.set, base + "/empty", bad)
    t.call(client.create, base + "/flags", ephemeral="yes")
    t.call(client.create, base + "/flags", sequence=1)
    t.call(client.create, base + "/flags", makepath=None)
    t.call(client.create, base + "/flags", include_data="no")
    t.call(client.set, base + "/empty", b"", version="1")
    t.call(client.set, base + "/empty", b"", version=None)
    t.call(client.delete, base + "/empty", version="1")
    t.call(client.delete, base + "/empty", recursive="yes")
    t.call(client.get, base + "/empty", watch="not callable")
    t.call(client.exists, base + "/empty", watch=5)
    t.call(client.get_children, base + "/empty", watch=object())
    t.call(client.get_children, base + "/empty", include_data="no")
    t.call(client.get_children, base)
    return t.finish()


def scenario_watch_recipes(client: Any, base: str, waiter: Waiter) -> list:
    """kazoo's DataWatch / ChildrenWatch decorators, step by step."""
    t = Transcript(client, base)
    d = base + "/d"
    t.step(lambda: client.DataWatch(d)(waiter.recorder("dw")), _label="DataWatch(~/d)")
    t.note("initial (missing node)", waiter.wait_for(1))
    t.call(client.create, d, b"1")
    t.note("created", waiter.wait_for(1))
    t.call(client.set, d, b"2")
    t.note("changed", waiter.wait_for(1))
    t.call(client.delete, d)
    t.note("deleted", waiter.wait_for(1))
    t.call(client.create, d, b"3")
    t.note("recreated", waiter.wait_for(1))
    # A function returning False stops the DataWatch.
    t.step(lambda: client.DataWatch(d)(waiter.recorder("dw-once", result=False)), _label="DataWatch(~/d) once")
    t.note("initial (existing node)", waiter.wait_for(1))
    t.call(client.set, d, b"4")
    t.note("dw fires, dw-once stopped", waiter.wait_for(1))
    t.note("then", waiter.quiet())
    p = base + "/p"
    t.call(client.create, p)
    t.step(lambda: client.ChildrenWatch(p)(waiter.recorder("cw", sort_lists=True)), _label="ChildrenWatch(~/p)")
    t.note("initial children", waiter.wait_for(1))
    t.call(client.create, p + "/b")
    t.note("child b", waiter.wait_for(1))
    t.call(client.create, p + "/a")
    t.note("child a", waiter.wait_for(1))
    t.call(client.set, p + "/a", b"data")
    t.note("child data set: nothing", waiter.quiet())
    t.call(client.delete, p + "/b")
    t.note("child b deleted", waiter.wait_for(1))
    t.call(client.delete, p + "/a")
    t.note("child a deleted", waiter.wait_for(1))
    t.call(client.delete, p)
    t.note("watched node deleted: no call, the ChildrenWatch stops", waiter.quiet())
    t.call(client.create, p + "/z", makepath=True)
    t.note("recreated: ChildrenWatch stopped", waiter.quiet())
    return t.finish()


# --------------------------------------------------------------------------
# persistent watches, container and TTL nodes (ZooKeeper 3.6+; the kazoo side
# goes through zk_extensions)

REAP_TIMEOUT = 15.0
"""Deadline for a container / TTL node to be reaped (ZooKeeper's check runs
every zk_server.CONTAINER_CHECK_INTERVAL_MS)."""

REAP_POLL = 0.02


def wait_until_gone(client: Any, path: str, timeout: float = REAP_TIMEOUT) -> str:
    """Poll ``exists(path)`` until the node is gone or the deadline passes;
    the outcome only ("reaped" / "not reaped"), never a timing."""
    deadline = time.monotonic() + timeout
    while client.exists(path) is not None:
        if time.monotonic() >= deadline:
            return "not reaped"
        time.sleep(REAP_POLL)
    return "reaped"


def _event_batch_sorted(batch: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """A batch whose order within one label is not specified (kazoo's
    recursive delete visits children in the server's hash order)."""
    return sorted(batch, key=lambda item: (str(item[0]), repr(item[1:])))


def scenario_persistent_watch(client: Any, base: str, waiter: Waiter) -> list:
    """add_watch(path, fn): every CREATED/DELETED/CHANGED/CHILD event of
    exactly that path, until removed; on an existing and a missing path."""
    t = Transcript(client, base)
    ext = extend(client)
    a = base + "/a"
    t.call(client.create, a, b"1")
    pa = waiter.watch("pw-a")
    t.call(ext.add_watch, a, pa)
    t.call(client.set, a, b"2")
    t.note("set", waiter.wait_for(1))
    t.call(client.create, a + "/c")
    t.note("child created", waiter.wait_for(1))
    t.call(client.set, a + "/c", b"x")
    t.call(client.create, a + "/c/g")
    t.call(client.delete, a + "/c/g")
    t.call(client.set, a, b"bad", version=99)
    t.note("child set / grandchild / failed set: nothing", waiter.quiet())
    t.call(client.delete, a + "/c")
    t.note("child deleted", waiter.wait_for(1))
    t.call(client.set, a, b"3")
    t.call(client.set, a, b"4")
    t.note("two sets: two events (not one-shot)", waiter.wait_for(2))
    t.call(client.delete, a)
    t.note("deleted", waiter.wait_for(1))
    t.call(client.create, a, b"again")
    t.note("recreated: still armed", waiter.wait_for(1))
    t.call(client.set, a, b"5")
    t.note("set after recreate", waiter.wait_for(1))
    # A missing path.
    m = base + "/m"
    pm = waiter.watch("pw-m")
    t.call(ext.add_watch, m, pm)
    t.call(client.exists, m)
    t.call(client.create, m + "/x")
    t.note("failed create below: nothing", waiter.quiet())
    t.call(client.create, m, b"")
    t.note("created", waiter.wait_for(1))
    t.call(client.create, m + "/k-", ephemeral=True, sequence=True)
    t.note("ephemeral sequential child", waiter.wait_for(1))
    t.call(client.set, m, b"v", version=5)
    t.note("failed set: nothing", waiter.quiet())
    t.call(client.delete, m, recursive=True)
    t.note("recursive delete: child, then node", waiter.wait_for(2))
    # A transaction: one event per op, in op order.
    tx = client.transaction()
    t.step(tx.create, m, b"m")
    t.step(tx.set_data, m, b"mm")
    t.step(tx.create, m + "/z")
    t.step(tx.create, base + "/other")
    t.call(tx.commit)
    t.note("transaction", waiter.wait_for(3))
    t.note("then nothing", waiter.quiet())
    t.stat(m)
    return t.finish()


def scenario_persistent_watch_recursive(client: Any, base: str, waiter: Waiter) -> list:
    """add_watch(path, fn, recursive=True): CREATED/DELETED/CHANGED of the
    path and every descendant, never CHILD; not a sibling sharing a prefix."""
    t = Transcript(client, base)
    ext = extend(client)
    r = base + "/r"
    t.call(client.create, r)
    t.call(client.create, base + "/r-sibling")
    rw = waiter.watch("rw")
    t.call(ext.add_watch, r, rw, recursive=True)
    t.call(client.create, r + "/x", b"1")
    t.note("child created: CREATED, no CHILD", waiter.wait_for(1))
    t.call(client.create, r + "/x/y")
    t.call(client.create, r + "/x/y/z")
    t.note("nested creates", waiter.wait_for(2))
    t.call(client.set, r + "/x/y/z", b"2")
    t.note("deep set", waiter.wait_for(1))
    t.call(client.set, r, b"root")
    t.note("own set", waiter.wait_for(1))
    t.call(client.create, base + "/r-sibling/k")
    t.call(client.set, base + "/r-sibling", b"s")
    t.call(client.set, base, b"b")
    t.call(client.create, r + "/x", b"dup")
    t.note("sibling / parent / failed create: nothing", waiter.quiet())
    t.call(client.create, r + "/e-", ephemeral=True, sequence=True)
    t.note("ephemeral sequential", waiter.wait_for(1))
    t.call(client.delete, r + "/x/y/z")
    t.note("deep delete: DELETED only", waiter.wait_for(1))
    # A second recursive watch inside the first, on a missing path.
    rm = waiter.watch("rw-m")
    t.call(ext.add_watch, r + "/m", rm, recursive=True)
    tx = client.transaction()
    t.step(tx.create, r + "/m", b"m")
    t.step(tx.set_data, r + "/m", b"mm")
    t.step(tx.create, r + "/m/n")
    t.step(tx.delete, r + "/x/y")
    t.step(tx.check, r + "/x", 0)
    t.call(tx.commit)
    t.note("transaction: rw 4 events, rw-m 3", waiter.wait_for(7))
    tx = client.transaction()
    t.step(tx.create, r + "/q")
    t.step(tx.create, r + "/m")
    t.call(tx.commit)
    t.note("failed transaction: nothing", waiter.quiet())
    t.call(client.delete, r, recursive=True)
    t.note("recursive delete of the root", _event_batch_sorted(waiter.wait_for(7)))
    t.call(client.create, r + "/m/n", makepath=True)
    t.note("recreated with makepath", waiter.wait_for(5))
    t.note("then nothing", waiter.quiet())
    return t.finish()


def scenario_persistent_watch_remove(client: Any, base: str, waiter: Waiter) -> list:
    """remove_watch(path, fn): the callable gets a last PERSISTENT_WATCH_REMOVED
    event (as from ZooKeeper's Java client) and nothing after; other
    callables keep theirs; removing what is not there."""
    t = Transcript(client, base)
    ext = extend(client)
    a = base + "/a"
    t.call(client.create, a)
    w1, w2 = waiter.watch("w1"), waiter.watch("w2")
    t.call(ext.add_watch, a, w1)
    t.call(ext.add_watch, a, w2)
    t.call(client.set, a, b"1")
    t.note("two callables", waiter.wait_for(2))
    t.call(ext.remove_watch, a, w1)
    t.note("removal event", waiter.wait_for(1))
    t.call(client.set, a, b"2")
    t.note("w1 removed: w2 only", waiter.wait_for(1))
    t.note("then nothing", waiter.quiet())
    t.call(ext.remove_watch, a, w1)
    t.call(ext.remove_watch, a, w2)
    t.note("removal event", waiter.wait_for(1))
    t.call(client.set, a, b"3")
    t.call(client.create, a + "/c")
    t.call(client.delete, a + "/c")
    t.call(client.delete, a)
    t.call(client.create, a)
    t.note("all removed: nothing", waiter.quiet())
    t.call(ext.remove_watch, a, w2)
    t.call(ext.remove_watch, base + "/never", w1)
    t.note("failed removals: nothing", waiter.quiet())
    # recursive
    wr = waiter.watch("wr")
    t.call(ext.add_watch, base + "/t", wr, recursive=True)
    t.call(client.create, base + "/t/x", makepath=True)
    t.note("recursive armed", waiter.wait_for(2))
    t.call(ext.remove_watch, base + "/t", wr)
    t.note("removal event", waiter.wait_for(1))
    t.call(client.create, base + "/t/y")
    t.call(client.delete, base + "/t", recursive=True)
    t.note("recursive removed: nothing", waiter.quiet())
    # re-adding after removal works again
    t.call(ext.add_watch, a, w1)
    t.call(client.set, a, b"4")
    t.note("re-added", waiter.wait_for(1))
    t.call(ext.remove_watch, a, w1)
    t.note("removal event", waiter.wait_for(1))
    t.call(client.set, a, b"5")
    t.note("removed again", waiter.quiet())
    return t.finish()


def scenario_container(client: Any, base: str, waiter: Waiter) -> list:
    """Container nodes: reaped once they had a child and have none; a
    container never given a child stays; stats; refused flag combinations."""
    t = Transcript(client, base)
    ext = extend(client)
    c = base + "/c"
    never = base + "/never"
    t.call(ext.create, never, container=True)
    t.call(ext.create, c, b"box", container=True)
    t.stat(c)
    t.call(client.get, c)
    t.call(client.get_children, c)
    t.call(ext.create, c, container=True)
    t.call(ext.create, c + "/kid", b"k")
    t.call(client.create, c + "/e", ephemeral=True)
    t.stat(c)
    t.call(client.delete, c + "/kid")
    t.note("one child left: not reaped yet", client.exists(c) is not None)
    # Watches go on while c still has a child: once the last one goes, the
    # reaping pass (every 100 ms on ZooKeeper) may delete c at any moment.
    t.call(client.exists, c, watch=waiter.watch("exists-c"))
    t.call(client.get_children, base, watch=waiter.watch("kids-base"))
    t.call(client.delete, c + "/e")
    t.note("c once childless", wait_until_gone(client, c))
    t.note("reaping fires watches", waiter.wait_for(2))
    # c's reaping pass looked at `never` too (it existed already): still there
    t.stat(never)
    t.call(client.create, c + "/late")
    # a container recreated at a reaped path is reaped again
    t.call(ext.create, c, container=True)
    t.call(client.create, c + "/kid")
    t.call(client.delete, c + "/kid")
    t.note("c recreated, once childless", wait_until_gone(client, c))
    # a container that keeps a child survives the pass that reaps another
    keep = base + "/keep"
    probe = base + "/probe"
    t.call(ext.create, keep, container=True)
    t.call(ext.create, keep + "/child", b"")
    t.call(ext.create, probe, container=True)
    t.call(ext.create, probe + "/x", container=True)
    t.stat(probe + "/x")
    t.call(client.delete, probe + "/x")
    t.note("probe", wait_until_gone(client, probe))
    t.stat(keep)
    t.call(client.delete, keep + "/child")
    t.note("keep once childless", wait_until_gone(client, keep))
    # an explicit delete and a sequential child work as for any node
    d = base + "/d"
    t.call(ext.create, d, container=True)
    t.call(client.create, d + "/s-", sequence=True)
    # The second child comes before the first goes: a childless d that had a
    # child could be reaped between the two calls.
    t.call(client.create, d + "/s-", sequence=True)
    t.call(client.delete, d + "/s-0000000000")
    t.stat(d)
    t.call(client.delete, d, recursive=True)
    t.call(client.exists, d)
    # refused combinations and missing parents
    t.call(ext.create, base + "/cs", container=True, sequence=True)
    t.call(ext.create, base + "/ce", container=True, ephemeral=True)
    t.call(ext.create, base + "/ces", container=True, ephemeral=True, sequence=True)
    t.call(ext.create, base + "/ct", container=True, ttl=1000)
    t.call(ext.create, base + "/nope/c", container=True)
    t.call(ext.create, base + "/mk/deep", b"d", container=True, makepath=True)
    t.stat(base + "/mk")
    t.stat(base + "/mk/deep")
    t.call(ext.create, never + "/inner", container=True, include_data=True)
    t.call(client.get_children, base)
    t.stat(base)
    return t.finish()


TTL_SHORT = 500
"""A TTL (ms) that expires while the scenario waits for it."""

TTL_KEPT = 1200
"""A TTL (ms) far longer than the gap between the scenario's sets."""

KEEP_ALIVE_FOR = 1.5
"""How long (s) the scenario keeps a TTL_KEPT node modified: past its TTL."""


def scenario_ttl(client: Any, base: str, waiter: Waiter) -> list:
    """TTL nodes: reaped when unmodified for ttl ms and childless; a set
    resets the clock; children hold it; sequential; refused arguments."""
    t = Transcript(client, base)
    ext = extend(client)
    n = base + "/t"
    t.call(ext.create, n, b"v", ttl=TTL_SHORT)
    t.stat(n)
    t.call(client.get, n)
    t.call(client.exists, n, watch=waiter.watch("exists-t"))
    t.note("unmodified", wait_until_gone(client, n))
    t.note("reaping fires the watch", waiter.wait_for(1))
    # modified more often than its TTL: kept, while a short-lived probe
    # created at the same time is reaped; then left alone: reaped
    m = base + "/m"
    probe = base + "/probe"
    t.call(ext.create, m, b"0", ttl=TTL_KEPT)
    t.call(ext.create, probe, ttl=TTL_SHORT)
    started = time.monotonic()
    probe_gone = False
    deadline = started + REAP_TIMEOUT
    while time.monotonic() < deadline:
        client.set(m, b"tick")
        probe_gone = probe_gone or client.exists(probe) is None
        if probe_gone and time.monotonic() - started >= KEEP_ALIVE_FOR:
            break
        time.sleep(0.1)
    t.note("probe reaped while m was kept modified", probe_gone)
    t.note("m kept alive by sets", client.exists(m) is not None)
    t.note("m once left alone", wait_until_gone(client, m))
    # children hold an expired TTL node
    p = base + "/p"
    t.call(ext.create, p, ttl=TTL_SHORT)
    t.call(client.create, p + "/kid")
    t.call(ext.create, probe, ttl=TTL_SHORT)
    t.note("probe created after p", wait_until_gone(client, probe))
    t.stat(p)
    t.call(client.delete, p + "/kid")
    t.note("p once childless", wait_until_gone(client, p))
    # sequential, and the largest TTL
    t.call(ext.create, base + "/s-", b"s", ttl=600_000, sequence=True)
    t.call(ext.create, base + "/s-", ttl=600_000, sequence=True, include_data=True)
    t.call(ext.create, base + "/max", ttl=2**40 - 1)
    t.stat(base + "/max")
    # refused arguments
    for bad in (0, -1, -1000, 2**40):
        t.call(ext.create, base + "/bad", ttl=bad)
    t.call(ext.create, base + "/bad", ttl=1000, ephemeral=True)
    t.call(ext.create, base + "/bad", ttl=1000, ephemeral=True, sequence=True)
    t.call(ext.create, base + "/nope/x", ttl=1000)
    t.call(ext.create, base + "/s-0000000006", ttl=1000)
    t.call(client.get_children, base)
    t.stat(base)
    return t.finish()


# --------------------------------------------------------------------------
# ACLs and digest authentication


def scenario_acl(client: Any, base: str, waiter: Waiter) -> list:
    """ZooKeeper's ACL checks, order of checks and getACL answers.

    A session's authentication cannot be undone and the ZooKeeper client is
    shared by every run, so each run uses a user of its own (derived from
    ``base``) and the transcript shows it as ``USER`` (its digest as
    ``USER:HASH``). Nothing here depends on ids other runs added: ``auth``
    ACLs (which expand to all of them) and ip ACLs (a kazoo session is
    ``ip:127.0.0.1``, a member's session has no address) are left to
    tests/unit/test_acl.py and tests/cluster/test_acl.py.
    """
    from kazoo.security import ACL, OPEN_ACL_UNSAFE, Id, Permissions, make_acl, make_digest_acl_credential

    t = Transcript(client, base)
    user = "u" + hashlib.sha1(base.encode()).hexdigest()[:12]  # noqa: S324 - a name, not security
    credential = make_digest_acl_credential(user, "pw")

    def hide(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(credential, "USER:HASH").replace(user, "USER")
        if isinstance(value, (list, tuple)) and not _is_stat(value):
            return type(value)(hide(v) for v in value)
        return value

    def acls(result: Any) -> Any:
        entries, stat = result
        return ([(a.perms, a.id.scheme, hide(a.id.id)) for a in entries], stat)

    def digest(**perms: bool) -> Any:
        return make_acl("digest", credential, **perms)

    world_read = ACL(Permissions.READ, Id("world", "anyone"))
    n = base + "/n"
    t.call(client.create, n, b"v", acl=[digest(all=True)], _label="create(n, digest ALL)")
    # No id of this session matches: reads and writes are refused; exists is not checked.
    t.call(client.exists, n)
    t.call(client.get, n)
    t.call(client.get_children, n)
    t.call(client.get_acls, n, _map=acls)
    t.call(client.set, n, b"x")
    t.call(client.set, n, b"x", version=99)  # NoAuth comes before the version check
    t.call(client.create, n + "/kid")
    t.call(client.delete, n + "/ghost")  # DELETE on the parent is checked before the node
    t.call(client.set_acls, n, OPEN_ACL_UNSAFE, _label="set_acls(n, open)")
    txn = client.transaction()
    t.step(txn.create, base + "/m1")
    t.step(txn.set_data, n, b"m")
    t.call(txn.commit, _label="commit[create m1, set_data n]")
    txn = client.transaction()
    t.step(txn.check, n, 0)
    t.step(txn.create, base + "/m2")
    t.call(txn.commit, _label="commit[check n, create m2]")
    t.call(client.exists, base + "/m1")
    t.stat(n)
    # Invalid ACLs (kazoo sends them; ZooKeeper answers InvalidACL).
    for label, bad in [
        ("unknown scheme", [make_acl("foo", "bar", all=True)]),
        ("world:someone", [make_acl("world", "someone", read=True)]),
        ("digest without hash", [make_acl("digest", "nocolon", read=True)]),
        ("ip /40", [make_acl("ip", "10.0.0.1/40", read=True)]),
    ]:
        t.call(client.create, base + "/bad", acl=bad, _label=f"create(bad, {label})")
        t.call(client.set_acls, base, bad, _label=f"set_acls(~, {label})")
    t.call(client.create, base + "/missing/x", acl=[make_acl("foo", "bar", all=True)], _label="create(missing/x, foo)")
    t.call(client.set_acls, base, [], _label="set_acls(~, [])")
    t.call(client.create, base + "/empty", acl=[], _label="create(empty, acl=[])")  # [] means the default
    t.call(client.get_acls, base + "/empty", _map=acls)
    t.call(client.create, base + "/none", acl=[ACL(0, Id("world", "anyone"))], _label="create(none, perms 0)")
    t.call(client.get, base + "/none")
    # getACL needs READ or ADMIN; without ADMIN a digest shows as user:x.
    nobody = make_acl("digest", make_digest_acl_credential("nobody", "pw"), admin=True)
    t.call(client.create, base + "/r", acl=[world_read, nobody], _label="create(r, world READ + nobody ADMIN)")
    t.call(client.get_acls, base + "/r", _map=acls)
    # Authenticated: the same session now passes.
    t.call(client.add_auth, "digest", f"{user}:pw", _label="add_auth(digest, USER:pw)")
    t.call(client.get, n)
    t.call(client.get_acls, n, _map=acls)
    t.call(client.set, n, b"w")
    t.call(client.set_acls, n, OPEN_ACL_UNSAFE, version=3, _label="set_acls(n, open, version=3)")
    t.call(
        client.set_acls,
        n,
        [world_read, digest(admin=True, create=True)],
        version=0,
        _label="set_acls(n, world READ + USER ADMIN|CREATE, version=0)",
    )
    t.call(client.get_acls, n, _map=acls)
    t.call(client.set, n, b"z")  # WRITE was taken away
    t.call(client.create, n + "/kid", b"k")
    t.call(client.get_acls, n + "/kid", _map=acls)
    t.call(client.delete, n + "/kid")  # no DELETE on n
    t.call(client.set_acls, n, [world_read, digest(all=True)], version=1, _label="set_acls(n, USER ALL, version=1)")
    t.call(client.delete, n + "/kid")
    t.stat(n)
    for leftover in ("/n", "/r", "/none", "/empty"):
        t.call(client.delete, base + leftover)
    t.stat(base)
    return t.finish()


SCENARIOS: dict[str, Callable[[Any, str, Waiter], list]] = {
    name[len("scenario_") :]: fn
    for name, fn in sorted(globals().items())
    if name.startswith("scenario_") and callable(fn)
}


def run_scenario(name: str, client: Any, root: str, run_id: str) -> list:
    """Run one scenario under a fresh base ``{root}/{name}-{run_id}`` and
    remove everything it left behind."""
    base = f"{root}/{name}-{run_id}"
    client.create(base, makepath=True)
    waiter = Waiter(client, base)
    with extensions(client):
        try:
            transcript = SCENARIOS[name](client, base, waiter)
        finally:
            for path in (base, waiter.barrier_path):
                # cleanup must not hide the result
                with contextlib.suppress(Exception):
                    client.delete(path, recursive=True)
    return transcript
