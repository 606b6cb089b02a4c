"""Fencing tokens: FenceGuard, and a property test that tokens strictly
increase across holders of every recipe (and that stale holders are
refused) on a real 3-member cluster shared across examples."""

from __future__ import annotations

import inspect
import random
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import coord
from coord.recipes import FenceGuard, Lock, NonBlockingLease, Semaphore, StaleFencingTokenError, WriteLock

from ._support import Worker

TTL_SUPPORTED = "ttl" in inspect.signature(coord.Coordinator.create).parameters


# ---------------------------------------------------------------------- FenceGuard


def test_guard_accepts_equal_and_higher_and_refuses_lower():
    guard = FenceGuard()
    assert guard.highest() is None
    assert guard.check(5) == 5
    assert guard.check(5) == 5  # the same holder may repeat its token
    assert guard.check(9) == 9
    with pytest.raises(StaleFencingTokenError) as info:
        guard.check(7)
    assert info.value.token == 7 and info.value.highest == 9
    assert "7" in str(info.value) and "9" in str(info.value)
    assert isinstance(info.value, coord.CoordError)
    assert guard.highest() == 9


def test_guard_keys_are_independent():
    guard = FenceGuard()
    guard.check(100, key="a")
    guard.check(3, key="b")
    with pytest.raises(StaleFencingTokenError, match="'b'"):
        guard.check(2, key="b")
    assert guard.highest("a") == 100 and guard.highest("b") == 3 and guard.highest() is None


def test_guard_bad_tokens_change_nothing():
    guard = FenceGuard()
    guard.check(4)
    for bad, error in ((None, TypeError), ("5", TypeError), (5.0, TypeError), (True, TypeError), (-1, ValueError)):
        with pytest.raises(error):
            guard.check(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        guard.check(6, key=["unhashable"])  # type: ignore[arg-type]
    assert guard.highest() == 4 and guard.highest(("unhashable",)) is None


def test_guard_is_thread_safe():
    guard = FenceGuard()
    accepted: list[list[int]] = [[] for _ in range(8)]

    def hammer(index: int) -> None:
        tokens = list(range(2000))
        random.Random(index).shuffle(tokens)
        for token in tokens:
            try:
                guard.check(token)
            except StaleFencingTokenError as exc:
                assert exc.highest > token
            else:
                accepted[index].append(token)

    for worker in [Worker(hammer, i) for i in range(8)]:
        worker.join(60)
    assert guard.highest() == 1999
    # Per thread, accepted tokens never go down (a lower one would be stale).
    for tokens in accepted:
        assert tokens == sorted(tokens)


# ---------------------------------------------------------------------- property test

RECIPES = ["lock", "write_lock", "semaphore"] + (["lease"] if TTL_SUPPORTED else [])
ACTIONS = ["acquire", "acquire", "release", "kill", "use", "use"]


@dataclass
class Holder:
    recipe: Any
    token: int
    node: str


def _acquire(kind: str, member: coord.Coordinator, path: str, name: str) -> tuple[Any, bool]:
    if kind == "lock":
        lock: Any = Lock(member, path, name)
    elif kind == "write_lock":
        lock = WriteLock(member, path, name)
    elif kind == "semaphore":
        lock = Semaphore(member, path, name)
    else:
        lease = NonBlockingLease(member, path, 60.0, identifier=name)
        return lease, bool(lease)
    return lock, lock.acquire(blocking=False)


def _node_of(kind: str, recipe: Any) -> str:
    if kind in ("lock", "write_lock"):
        return f"{recipe.path}/{recipe.node}"
    if kind == "semaphore":
        return recipe.create_path  # type: ignore[no-any-return]
    return recipe.holder_path  # type: ignore[no-any-return]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(RECIPES),
    steps=st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 2), st.integers(0, 5)), min_size=1, max_size=14),
)
def test_tokens_strictly_increase_and_stale_holders_are_refused(shared, kind, steps):
    """Random acquire / release / holder-death / use sequences on random
    members. A holder's death is its node vanishing (what a session
    expiry does) while the holder object still believes it holds.

    Checked: a free recipe is always acquired, a held one never (mutual
    exclusion); every new holder's token is larger than all earlier ones;
    the guard accepts the live holder and refuses a dead holder exactly
    when a newer token was seen; a dead holder's fenced transaction fails
    and a live holder's succeeds."""
    members = shared
    path = "/fencing-prop/" + uuid.uuid4().hex
    data_path = path + "-data"
    members[0].create(data_path, b"", makepath=True)
    guard = FenceGuard()
    issued: list[int] = []
    live: Holder | None = None
    dead: list[Holder] = []
    for number, (action, m, pick) in enumerate(steps):
        member = members[m]
        if action == "acquire":
            recipe, got = _acquire(kind, member, path, f"h{number}")
            if live is None:
                assert got, f"{kind} was free but not acquired"
                token = recipe.fencing_token
                assert isinstance(token, int)
                assert not issued or token > max(issued), (token, issued)
                issued.append(token)
                live = Holder(recipe, token, _node_of(kind, recipe))
            else:
                assert not got, f"{kind} acquired while {live.node} holds it"
        elif action == "release" and live is not None:
            if kind == "lease":
                member.delete(live.node)  # leases have no release: the node goes
            else:
                assert live.recipe.release() is True
                assert live.recipe.fencing_token is None
            live = None
        elif action == "kill" and live is not None:
            member.delete(live.node)
            dead.append(live)
            live = None
        elif action == "use":
            candidates = ([live] if live is not None else []) + dead
            if not candidates:
                continue
            holder = candidates[pick % len(candidates)]
            highest = guard.highest()
            if highest is not None and holder.token < highest:
                with pytest.raises(StaleFencingTokenError):
                    guard.check(holder.token)
            else:
                guard.check(holder.token)
            if holder is live:
                assert guard.highest() == holder.token  # the live holder is never refused
            if kind != "lease":
                txn = holder.recipe.client.transaction()
                txn.check(holder.node, 0)
                txn.set_data(data_path, f"{holder.token}".encode())
                results = txn.commit()
                assert any(isinstance(r, Exception) for r in results) == (holder is not live)
    if live is not None and kind != "lease":
        live.recipe.release()


def test_property_holder_threads_contend_from_every_member(shared):
    """Blocking contention: under one guard, every holder's use succeeds
    and tokens come out strictly increasing in holding order."""
    path = "/fencing-threads/" + uuid.uuid4().hex
    guard = FenceGuard()
    order: list[int] = []
    mutex = threading.Lock()

    def work(index: int) -> None:
        for _ in range(4):
            lock = Lock(shared[index % 3], path, f"t{index}")
            with lock:
                token = lock.fencing_token
                assert token is not None
                guard.check(token, key=path)
                with mutex:
                    order.append(token)

    for worker in [Worker(work, i) for i in range(6)]:
        worker.join(60)
    assert len(order) == 24 and order == sorted(order) and len(set(order)) == 24
