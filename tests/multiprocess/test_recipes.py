"""Recipes with their contenders in separate member processes.

Modelled on kazoo's recipe tests (kazoo/tests/test_lock.py, test_election.py,
test_lease.py), but every contender lives in its own OS process (a coord
member run by ``coord.local_cluster``), so SIGKILL and SIGSTOP of a holder
behave exactly as they would in production. The recipe objects are driven
through the member's ``recipe_*`` RPC (``coord.local_cluster.recipe_host``):
each holder records ``acquired`` / ``work`` / ``releasing`` events with the
child's ``CLOCK_MONOTONIC`` (system-wide on Linux, so intervals of different
processes compare) and its fencing token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from coord.local_cluster import LocalCluster, MemberProcess, wait_until
from coord.local_cluster.recipe_remote import RecipeEvents, RemoteRecipe, hold_intervals, overlapping

pytestmark = pytest.mark.multiprocess

SESSION_TIMEOUT = 3.0
#: A dead or frozen holder's successor must hold within this many seconds
#: of the signal (session expiry plus an election / the handover).
TAKEOVER_BOUND = SESSION_TIMEOUT + 3.0


@pytest.fixture
def cluster_events() -> Iterator[tuple[LocalCluster, RecipeEvents]]:
    """A 3-process cluster whose recipe events are collected, stopped after the test."""
    events = RecipeEvents()
    cluster = LocalCluster(3, session_timeout=SESSION_TIMEOUT, event_handler=events)
    cluster.start()
    try:
        yield cluster, events
    finally:
        for member in cluster:  # a frozen member must not outlive the test
            if member.paused:
                member.resume()
        cluster.stop()


def _new(member: MemberProcess, kind: str, path: str, **kwargs: Any) -> RemoteRecipe:
    if kind == "Semaphore":
        return RemoteRecipe(member, kind, path, member.name, max_leases=kwargs.get("max_leases", 1))
    return RemoteRecipe(member, kind, path, member.name)


def _is(what: str, member: str | None = None, *, not_member: str | None = None) -> Any:
    def predicate(e: dict[str, Any]) -> bool:
        return (e.get("what") == what and (member is None or e.get("member") == member)
                and (not_member is None or e.get("member") != not_member))
    return predicate


def test_lock_contention_across_processes_is_exclusive_and_fenced(
        cluster_events: tuple[LocalCluster, RecipeEvents]) -> None:
    """Six contenders (two Lock objects in each of three processes) take one
    lock in turn: hold intervals never overlap, fencing tokens strictly
    increase in holding order, and the holders' writes, ordered by zxid,
    carry non-decreasing tokens (each its holder's own)."""
    cluster, events = cluster_events
    path, data_path = "/recipes/lock", "/recipes/lock-data"
    locks = [_new(m, "Lock", path) for m in cluster for _ in range(2)]
    runs = {(lock.member.name, lock.run(hold=0.3, work={"interval": 0.1, "path": data_path})): lock
            for lock in locks}

    # while the contenders queue up, another process sees all of them
    first = events.wait_for(_is("acquired"), timeout=15.0, what="a first holder")
    # member 0 reads its own replica, which may trail the holder's by a moment
    contenders = wait_until(lambda: locks[0].call("contenders"), 10.0, what="contenders seen from member 0")
    assert first["member"] in [m.name for m in cluster]
    assert 1 <= len(contenders) <= 6 and set(contenders) <= {m.name for m in cluster}

    for (name, run_id), lock in runs.items():
        assert lock.wait_run(run_id, wait=30.0) == {"done": True, "outcome": "held"}, name
    released = events.of("released")
    assert len(released) == 6 and all(e["ok"] for e in released), released

    intervals = hold_intervals(events.all())
    assert len(intervals) == 6
    assert not overlapping(intervals), overlapping(intervals)
    by_start = sorted(intervals, key=lambda i: i["start"])
    tokens = [i["token"] for i in by_start]
    assert all(isinstance(t, int) for t in tokens), tokens
    assert tokens == sorted(tokens) and len(set(tokens)) == 6, tokens

    writes = sorted(events.of("work"), key=lambda e: e["zxid"])
    assert len(writes) >= 6 and all(w["ok"] for w in writes)
    write_tokens = [w["fencing_token"] for w in writes]
    assert write_tokens == sorted(write_tokens), write_tokens
    assert set(write_tokens) == set(tokens)
    for write in writes:  # a write happened inside its holder's interval
        holder = next(i for i in intervals if i["token"] == write["fencing_token"])
        assert holder["member"] == write["member"] and holder["start"] <= write["mono"] <= holder["end"]
    reader = cluster[0]
    reader.sync()
    last = json.loads(reader.get(data_path)[0])
    assert last["token"] == writes[-1]["fencing_token"] == tokens[-1]
    for lock in locks:
        state = lock.state()
        assert state["is_acquired"] is False and state["fencing_token"] is None, state


@pytest.mark.parametrize("signal_name", ["kill", "stop"])
@pytest.mark.parametrize("kind", ["Lock", "Semaphore", "Election"])
def test_holder_killed_or_frozen_next_process_takes_over_within_bound(
        cluster_events: tuple[LocalCluster, RecipeEvents], kind: str, signal_name: str) -> None:
    """The holder (on the Raft leader's process, the hardest case) is
    SIGKILLed or SIGSTOPped while the others wait: a contender in another
    process holds within session_timeout + 3 s of the signal, with a higher
    fencing token. A Semaphore has two leases (two holders, one waiter).
    A frozen holder, once resumed, is told it lost (session LOST)."""
    cluster, events = cluster_events
    path = f"/recipes/{kind.lower()}"
    victim = cluster.leader()
    others = [m for m in cluster if m is not victim]
    leases = 2 if kind == "Semaphore" else 1

    recipes = {victim.name: _new(victim, kind, path, max_leases=leases)}
    runs = {victim.name: recipes[victim.name].run(max_seconds=60.0)}
    held = events.wait_for(_is("acquired", victim.name), timeout=15.0, what=f"{victim.name} to hold")
    for member in others:
        recipes[member.name] = _new(member, kind, path, max_leases=leases)
        runs[member.name] = recipes[member.name].run(max_seconds=60.0)
    if kind == "Semaphore":  # one of the others takes the second lease, the last one waits
        events.wait_for(_is("acquired", not_member=victim.name), timeout=15.0, what="the second lease")
    for member in others:
        events.wait_for(_is("contending", member.name), timeout=15.0, what=f"{member.name} contending")
    # everyone is queued (Semaphore: both leases are taken) before the signal
    listing, expect = ("lease_holders", 2) if kind == "Semaphore" else ("contenders", 3)
    wait_until(lambda: len(recipes[victim.name].call(listing)) == expect, timeout=10.0,
               what=f"{expect} {listing}")
    holders_before = {e["member"] for e in events.of("acquired")}
    assert len(holders_before) == leases, holders_before
    mark = len(events)

    signalled_at = time.monotonic()
    if signal_name == "kill":
        victim.kill()
    else:
        victim.pause()
    takeover = events.wait_for(
        lambda e: e["what"] == "acquired" and e["member"] not in holders_before,
        timeout=TAKEOVER_BOUND + 5.0, after=mark, what="the takeover")
    took = takeover["mono"] - signalled_at
    assert took <= TAKEOVER_BOUND, f"{kind} taken over {took:.2f}s after the {signal_name}"
    assert isinstance(takeover["fencing_token"], int)
    assert all(takeover["fencing_token"] > e["fencing_token"] for e in events.of("acquired")
               if e is not takeover and e["member"] in holders_before), events.of("acquired")
    assert takeover["fencing_token"] > held["fencing_token"]
    state = recipes[takeover["member"]].state()
    assert state["fencing_token"] == takeover["fencing_token"]

    if signal_name == "stop":
        victim.resume()  # the frozen holder wakes up, learns it lost, lets go
        lost = events.wait_for(lambda e: e["member"] == victim.name and e["what"] == "lost",
                               timeout=SESSION_TIMEOUT + 10.0, what="the frozen holder to see LOST")
        assert lost["fencing_token"] == held["fencing_token"]
        assert recipes[victim.name].wait_run(runs[victim.name], wait=15.0)["outcome"] == "lost"
        state = recipes[victim.name].state()
        assert not state.get("is_acquired") and state.get("fencing_token") is None, state
    # the survivors' view: the victim's contender node is gone
    survivor = recipes[takeover["member"]]
    listing = survivor.call("lease_holders" if kind == "Semaphore" else "contenders")
    assert victim.name not in listing, listing
    for name, run_id in runs.items():
        if name != victim.name:
            recipes[name].stop(run_id, wait=15.0)


def test_non_blocking_lease_taken_over_after_its_holder_dies(
        cluster_events: tuple[LocalCluster, RecipeEvents]) -> None:
    """kazoo's NonBlockingLease across processes: while the lease runs,
    another process cannot take it (even after the holder is SIGKILLed);
    once the lease duration passed, it can."""
    cluster, _events = cluster_events
    duration = 3.0
    path = "/recipes/lease"
    holder, taker = cluster[0], cluster[1]
    first = RemoteRecipe(holder, "NonBlockingLease", path, duration, identifier="holder")
    assert first.initial_state["held"] is True
    # the holder may renew its own lease; the other process is refused
    renew_sent = time.monotonic()
    renewed = RemoteRecipe(holder, "NonBlockingLease", path, duration, identifier="holder")
    renewed_at = time.monotonic()
    assert renewed.initial_state["held"] is True
    assert renewed.initial_state["fencing_token"] > first.initial_state["fencing_token"]
    refused = RemoteRecipe(taker, "NonBlockingLease", path, duration, identifier="taker")
    assert refused.initial_state["held"] is False and refused.initial_state["fencing_token"] is None

    holder.kill()
    attempts = 0
    while True:
        lease = RemoteRecipe(taker, "NonBlockingLease", path, duration, identifier="taker")
        done_at = time.monotonic()
        attempts += 1
        if lease.initial_state["held"]:
            break
        assert done_at - renewed_at < duration + 3.0, "the lease was not taken over after its duration"
        time.sleep(0.2)
    # not before the lease ran out (the cluster times it from the renewal) ...
    assert done_at >= renew_sent + duration - 0.1, done_at - renew_sent
    # ... and soon after
    assert done_at - renewed_at <= duration + 3.0, done_at - renewed_at
    assert attempts > 1
    assert lease.initial_state["fencing_token"] > renewed.initial_state["fencing_token"]
    # the dead holder's identity is now refused, from any process
    stale = RemoteRecipe(cluster[2], "NonBlockingLease", path, duration, identifier="holder")
    assert stale.initial_state["held"] is False


def test_remote_recipes_are_whitelisted_and_block_off_the_rpc_thread(
        cluster_events: tuple[LocalCluster, RecipeEvents]) -> None:
    """The harness itself: unknown recipe kinds and methods are refused with
    a clear error; a blocking call (DoubleBarrier.enter, across the three
    processes) runs on a worker thread and is collected later; a Counter
    incremented from three processes at once loses no increment."""
    cluster, events = cluster_events
    with pytest.raises(ValueError, match="recipe kind 'Nope' is not served"):
        RemoteRecipe(cluster[0], "Nope", "/x")
    counter = RemoteRecipe(cluster[0], "Counter", "/recipes/counter")
    with pytest.raises(ValueError, match=r"Counter\.__init__ is not served"):
        counter.call("__init__")
    with pytest.raises(TypeError, match="wait must be a number"):
        cluster[0].call("recipe_call", counter.recipe_id, "add", [1], {}, wait="soon")
    with pytest.raises(KeyError):
        cluster[0].call("recipe_state", 999_999)

    barriers = [RemoteRecipe(m, "DoubleBarrier", "/recipes/dbar", 3, m.name) for m in cluster]
    pending = [b.start("enter", wait=0.0) for b in barriers[:2]]
    time.sleep(0.5)  # give the two a chance to (wrongly) pass alone
    assert not any(b.result(p["call_id"], wait=0.0)["done"] for b, p in zip(barriers, pending, strict=False))
    assert barriers[2].call("enter", wait=15.0) is None
    for barrier, record in zip(barriers, pending, strict=False):
        assert RemoteRecipe.value_of(barrier.result(record["call_id"], wait=15.0)) is None
    leaving = [b.start("leave", wait=0.0) for b in barriers]
    for barrier, record in zip(barriers, leaving, strict=True):
        RemoteRecipe.value_of(barrier.result(record["call_id"], wait=15.0))

    counters = [RemoteRecipe(m, "Counter", "/recipes/counter") for m in cluster]
    adds = [(c, c.start("add", 1, wait=0.0)) for c in counters for _ in range(5)]
    for c, record in adds:
        RemoteRecipe.value_of(c.result(record["call_id"], wait=15.0))
    cluster[1].sync()
    assert counters[1].state()["value"] == 15
    assert len(events.of("call_done")) >= 15
