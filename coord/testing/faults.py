"""A seeded, in-process network fault policy for coord's Raft traffic.

``NetworkFaults`` decides the fate of every message one member sends to
another: deliver it now, later, several times, or never. It is pure policy:
it keeps no sockets and no messages, it only answers
``decide(src, dst, message_type) -> delays`` (one delay in seconds per copy
to deliver; an empty list drops the message). The replication adapter's
fault-injecting transport asks it on every send and carries out the answer
on the Raft tick thread (``Coordinator(..., network_faults=faults)``), so
the default test suite can cut, delay, duplicate and reorder Raft traffic
without root or network namespaces.

Faults and where they bite:

* ``isolate``, ``cut``, ``cut_oneway``, ``partition``: deterministic link
  cuts, optionally limited to some message types; ``heal`` removes them;
* ``set_loss``: drop each message with probability p;
* ``set_delay``: delay each message by a uniform random time (reorders);
* ``set_duplicate``: deliver a second copy a little later;
* ``set_stale_redelivery``: deliver a second copy much later, after newer
  messages on the same link: a stale AppendEntries (reliability.md R1).

A copy's fate is decided when it is sent, like a packet already on the wire:
healing does not recall delayed copies, and cutting a link does not drop
copies already in flight.

Determinism: every directed link draws from its own random stream seeded
from ``(seed, src, dst)``, so a link's decisions depend only on the seed,
the configured faults and the messages sent on that link, not on how the
members' threads interleave.

Message types are the adapter's names (``coord.replication.message_kind``):
``append_entries`` (log replication and heartbeats), ``snapshot_pending``
(the leader is still serialising a snapshot for this follower),
``install_snapshot``, ``next_node_idx`` (the follower's reply),
``request_vote``, ``response_vote``, ``apply_command``,
``apply_command_response``, ``timeout_now``.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import random
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .history import History

#: Every message type a coord member sends (see ``coord.replication.message_kind``).
MESSAGE_TYPES = frozenset(
    {
        "append_entries",
        "snapshot_pending",
        "install_snapshot",
        "next_node_idx",
        "request_vote",
        "response_vote",
        "apply_command",
        "apply_command_response",
        "timeout_now",
    }
)


@dataclasses.dataclass(frozen=True)
class FaultEvent:
    """One entry of the fault log.

    ``kind`` is either an administrative action (``isolate``, ``cut``,
    ``cut_oneway``, ``partition``, ``heal``, ``set_loss``, ``set_delay``,
    ``set_duplicate``, ``set_stale_redelivery``, ``clear``) or the fate of
    one message (``drop_cut``, ``drop_loss``, ``delay``, ``duplicate``,
    ``stale``); ``delays`` are the delivery delays decided for the message.
    """

    time_ns: int
    kind: str
    src: str | None = None
    dst: str | None = None
    message_type: str | None = None
    delays: tuple[float, ...] = ()
    detail: Any = None


@dataclasses.dataclass(frozen=True)
class _Scope:
    """Which messages a fault applies to (None: any)."""

    src: str | None = None
    dst: str | None = None
    message_types: frozenset[str] | None = None

    def matches(self, src: str, dst: str, message_type: str) -> bool:
        return (
            (self.src is None or self.src == src)
            and (self.dst is None or self.dst == dst)
            and (self.message_types is None or message_type in self.message_types)
        )

    def describe(self) -> dict[str, Any]:
        types = sorted(self.message_types) if self.message_types is not None else None
        return {"src": self.src, "dst": self.dst, "message_types": types}


@dataclasses.dataclass(frozen=True)
class Cut:
    """A handle on one cut (``isolate``, ``cut``, ...), to heal it alone."""

    number: int
    kind: str
    detail: Any = dataclasses.field(compare=False, default=None)


@dataclasses.dataclass(frozen=True)
class _Chance:
    """A probabilistic fault: probability ``p``, extra delay in [lo, hi]."""

    p: float
    lo: float
    hi: float
    scope: _Scope


def _check_probability(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a probability must lie in [0, 1], got {p!r}")
    return float(p)


def _check_range(lo: float, hi: float) -> tuple[float, float]:
    if not 0.0 <= lo <= hi:
        raise ValueError(f"need 0 <= min <= max, got {lo!r}, {hi!r}")
    return float(lo), float(hi)


def _names(types: frozenset[str] | None) -> list[str] | None:
    return sorted(types) if types is not None else None


def _types(message_types: Collection[str] | None) -> frozenset[str] | None:
    if message_types is None:
        return None
    if isinstance(message_types, str):
        message_types = (message_types,)
    types = frozenset(message_types)
    unknown = types - MESSAGE_TYPES
    if unknown:
        raise ValueError(f"unknown message types {sorted(unknown)}; known: {sorted(MESSAGE_TYPES)}")
    return types


class NetworkFaults:
    """A seeded policy deciding, message by message, what the network does.

    Thread-safe: every member's Raft thread calls ``decide`` concurrently.

    :param seed: seeds every link's random stream.
    :param history: if given, administrative actions (isolate, heal, ...) are
        also recorded there as nemesis events, on the history's clock.
    :param clock: timestamps of the fault log (nanoseconds).
    :param max_events: the fault log keeps only this many newest events.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        history: History | None = None,
        clock: Callable[[], int] = time.monotonic_ns,
        max_events: int = 200_000,
    ) -> None:
        self.seed = seed
        self._history = history
        self._clock = clock
        self._lock = threading.Lock()
        self._rngs: dict[tuple[str, str], random.Random] = {}
        self._cuts: dict[Cut, list[_Scope]] = {}
        self._cut_numbers = itertools.count(1)
        self._loss: _Chance | None = None
        self._delay: _Chance | None = None
        self._duplicate: _Chance | None = None
        self._stale: _Chance | None = None
        self._events: collections.deque[FaultEvent] = collections.deque(maxlen=max_events)
        self._sent: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self._fates: collections.Counter[tuple[str, str]] = collections.Counter()
        self._in_flight = 0

    # ------------------------------------------------------------------ link cuts

    def isolate(self, address: str, *, message_types: Collection[str] | None = None) -> Cut:
        """Cut every link to and from ``address``."""
        types = _types(message_types)
        scopes = [_Scope(src=address, message_types=types), _Scope(dst=address, message_types=types)]
        return self._add_cut("isolate", {"address": address, "message_types": _names(types)}, scopes)

    def cut(self, a: str, b: str, *, message_types: Collection[str] | None = None) -> Cut:
        """Cut the link between ``a`` and ``b`` in both directions."""
        types = _types(message_types)
        return self._add_cut(
            "cut", {"a": a, "b": b, "message_types": _names(types)}, [_Scope(a, b, types), _Scope(b, a, types)]
        )

    def cut_oneway(self, src: str, dst: str, *, message_types: Collection[str] | None = None) -> Cut:
        """Drop messages from ``src`` to ``dst``; the other direction still works."""
        types = _types(message_types)
        return self._add_cut(
            "cut_oneway", {"src": src, "dst": dst, "message_types": _names(types)}, [_Scope(src, dst, types)]
        )

    def partition(self, groups: Sequence[Iterable[str]]) -> Cut:
        """Split the listed members into ``groups`` that cannot talk to each
        other (members inside a group still can; unlisted members are not
        affected)."""
        members = [sorted(set(group)) for group in groups]
        seen: set[str] = set()
        for group in members:
            if seen & set(group):
                raise ValueError("a member appears in two partition groups")
            seen |= set(group)
        scopes = []
        for i, group in enumerate(members):
            for other in members[i + 1 :]:
                for a in group:
                    for b in other:
                        scopes += [_Scope(a, b), _Scope(b, a)]
        return self._add_cut("partition", {"groups": members}, scopes)

    def heal(self, *cuts: Cut) -> None:
        """Remove the given cuts, or every cut if none is given
        (probabilistic faults stay; see ``clear``)."""
        with self._lock:
            if cuts:
                for cut in cuts:
                    self._cuts.pop(cut, None)
            else:
                self._cuts.clear()
            self._admin("heal", [dataclasses.asdict(cut) for cut in cuts] or "all")

    def _add_cut(self, kind: str, detail: dict[str, Any], scopes: list[_Scope]) -> Cut:
        with self._lock:
            cut = Cut(next(self._cut_numbers), kind, detail)
            self._cuts[cut] = scopes
            self._admin(kind, {"cut": cut.number, **detail})
            return cut

    # ------------------------------------------------------------------ probabilistic faults

    def set_loss(
        self,
        p: float,
        *,
        src: str | None = None,
        dst: str | None = None,
        message_types: Collection[str] | None = None,
    ) -> None:
        """Drop each matching message with probability ``p`` (0 turns loss off)."""
        chance = _Chance(_check_probability(p), 0.0, 0.0, _Scope(src, dst, _types(message_types)))
        with self._lock:
            self._loss = chance if p > 0 else None
            self._admin("set_loss", {"p": p, **chance.scope.describe()})

    def set_delay(
        self,
        min_s: float,
        max_s: float,
        *,
        src: str | None = None,
        dst: str | None = None,
        message_types: Collection[str] | None = None,
    ) -> None:
        """Delay each matching message by a uniform time in [min_s, max_s]
        (messages on one link may then overtake each other); 0, 0 turns it off."""
        lo, hi = _check_range(min_s, max_s)
        chance = _Chance(1.0, lo, hi, _Scope(src, dst, _types(message_types)))
        with self._lock:
            self._delay = chance if hi > 0 else None
            self._admin("set_delay", {"min_s": lo, "max_s": hi, **chance.scope.describe()})

    def set_duplicate(
        self,
        p: float,
        *,
        max_delay_s: float = 0.2,
        src: str | None = None,
        dst: str | None = None,
        message_types: Collection[str] | None = None,
    ) -> None:
        """With probability ``p``, deliver a second copy up to ``max_delay_s``
        after the first (0 turns duplication off)."""
        lo, hi = _check_range(0.0, max_delay_s)
        chance = _Chance(_check_probability(p), lo, hi, _Scope(src, dst, _types(message_types)))
        with self._lock:
            self._duplicate = chance if p > 0 else None
            self._admin("set_duplicate", {"p": p, "max_delay_s": hi, **chance.scope.describe()})

    def set_stale_redelivery(
        self,
        p: float,
        *,
        min_delay_s: float = 0.5,
        max_delay_s: float = 1.5,
        src: str | None = None,
        dst: str | None = None,
        message_types: Collection[str] | None = None,
    ) -> None:
        """With probability ``p``, re-deliver a copy of the message between
        ``min_delay_s`` and ``max_delay_s`` later, after newer messages on the
        same link (a stale, replayed message; 0 turns it off)."""
        lo, hi = _check_range(min_delay_s, max_delay_s)
        chance = _Chance(_check_probability(p), lo, hi, _Scope(src, dst, _types(message_types)))
        with self._lock:
            self._stale = chance if p > 0 else None
            detail = {"p": p, "min_delay_s": lo, "max_delay_s": hi, **chance.scope.describe()}
            self._admin("set_stale_redelivery", detail)

    def clear(self) -> None:
        """Heal every cut and turn every probabilistic fault off."""
        with self._lock:
            self._cuts.clear()
            self._loss = self._delay = self._duplicate = self._stale = None
            self._admin("clear", None)

    # ------------------------------------------------------------------ the decision

    def decide(self, src: str, dst: str, message_type: str) -> list[float]:
        """The delays (seconds) after which to deliver each copy of one
        message from ``src`` to ``dst``; an empty list drops it."""
        with self._lock:
            rng = self._rngs.get((src, dst))
            if rng is None:
                rng = self._rngs[(src, dst)] = random.Random(f"{self.seed}|{src}|{dst}")
            loss = self._matching(self._loss, src, dst, message_type)
            delay = self._matching(self._delay, src, dst, message_type)
            duplicate = self._matching(self._duplicate, src, dst, message_type)
            stale = self._matching(self._stale, src, dst, message_type)
            kind = ""
            delays: list[float] = []
            if any(scope.matches(src, dst, message_type) for scopes in self._cuts.values() for scope in scopes):
                kind = "drop_cut"
            elif loss is not None and rng.random() < loss.p:
                kind = "drop_loss"
            else:
                first = 0.0
                if delay is not None:
                    first = rng.uniform(delay.lo, delay.hi)
                    kind = "delay"
                delays.append(first)
                if duplicate is not None and rng.random() < duplicate.p:
                    delays.append(first + rng.uniform(duplicate.lo, duplicate.hi))
                    kind = "duplicate"
                if stale is not None and rng.random() < stale.p:
                    delays.append(rng.uniform(stale.lo, stale.hi))
                    kind = "stale"
                self._sent[(src, dst, message_type)] += 1
                self._in_flight += sum(1 for d in delays if d > 0)
            if kind:
                self._fates[(kind, message_type)] += 1
                self._events.append(FaultEvent(self._clock(), kind, src, dst, message_type, tuple(delays)))
            return delays

    @staticmethod
    def _matching(chance: _Chance | None, src: str, dst: str, message_type: str) -> _Chance | None:
        return chance if chance is not None and chance.scope.matches(src, dst, message_type) else None

    # ------------------------------------------------------------------ bookkeeping for the transport and tests

    def released(self, copies: int = 1) -> None:
        """The transport delivered (or discarded) ``copies`` delayed copies."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - copies)

    def in_flight(self) -> int:
        """Delayed copies decided but not yet delivered or discarded."""
        with self._lock:
            return self._in_flight

    def sent_count(self, src: str | None = None, dst: str | None = None, message_type: str | None = None) -> int:
        """How many matching messages were let through (not dropped)."""
        with self._lock:
            return sum(
                count
                for (s, d, t), count in self._sent.items()
                if src in (None, s) and dst in (None, d) and message_type in (None, t)
            )

    def fate_count(self, kind: str, message_type: str | None = None) -> int:
        """How many messages met fate ``kind`` (``drop_cut``, ``stale``, ...)."""
        with self._lock:
            return sum(c for (k, t), c in self._fates.items() if k == kind and message_type in (None, t))

    @property
    def events(self) -> list[FaultEvent]:
        """The fault log, oldest first (administrative actions and message fates)."""
        with self._lock:
            return list(self._events)

    def _admin(self, kind: str, detail: Any) -> None:
        """Log an administrative action (the caller holds the lock)."""
        self._events.append(FaultEvent(self._clock(), kind, detail=detail))
        if self._history is not None:
            self._history.nemesis(kind, detail)


__all__ = ["MESSAGE_TYPES", "Cut", "FaultEvent", "NetworkFaults"]
