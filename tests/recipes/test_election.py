"""Election against a real 3-member cluster, one contender per member
(modelled on kazoo's test_election.py)."""

from __future__ import annotations

import threading

import pytest
from helpers import wait_until

from coord.recipes import Election

from ._support import Worker, running_cluster

WAIT = 10.0


class Leaders:
    """Records who leads, checks there is one at a time, and lets the test
    end each term."""

    def __init__(self) -> None:
        self.guard = threading.Condition()
        self.active: list[str] = []
        self.terms: list[tuple[str, int | None]] = []
        self.end = {}

    def lead(self, name: str, election: Election) -> None:
        with self.guard:
            assert not self.active, f"{name} elected while {self.active} lead"
            self.active.append(name)
            assert election.is_leader
            self.terms.append((name, election.fencing_token))
            self.end[name] = threading.Event()
            self.guard.notify_all()
        assert self.end[name].wait(WAIT)
        with self.guard:
            self.active.remove(name)

    def wait_leader(self, count: int) -> str:
        with self.guard:
            assert self.guard.wait_for(lambda: len(self.terms) >= count and self.active, WAIT)
            return self.active[0]


def test_one_leader_at_a_time_in_queue_order(shared, path):
    leaders = Leaders()
    names = ["e0", "e1", "e2"]
    elections = {name: Election(shared[i], path, name) for i, name in enumerate(names)}
    workers = []
    for name in names:
        workers.append(Worker(elections[name].run, leaders.lead, name, elections[name]))
        wait_until(lambda name=name: name in elections["e0"].contenders(), WAIT, what=f"{name} contends")
    assert leaders.wait_leader(1) == "e0"
    wait_until(lambda: elections["e2"].contenders() == names, WAIT, what="contenders replicated")
    for index, name in enumerate(names):
        assert leaders.wait_leader(index + 1) == name
        leaders.end[name].set()
    for worker in workers:
        worker.join(WAIT)
    tokens = [token for _, token in leaders.terms]
    assert [name for name, _ in leaders.terms] == names
    assert all(isinstance(t, int) for t in tokens)
    assert all(b > a for a, b in zip(tokens, tokens[1:], strict=False)), tokens
    assert all(not e.is_leader and e.fencing_token is None for e in elections.values())


def test_cancel_a_waiting_contender(shared, path):
    leaders = Leaders()
    first = Election(shared[0], path, "first")
    second = Election(shared[1], path, "second")
    called = []
    lead_worker = Worker(first.run, leaders.lead, "first", first)
    leaders.wait_leader(1)
    waiting = Worker(second.run, called.append, "second")
    wait_until(lambda: second.contenders() == ["first", "second"], WAIT, what="second contends")
    second.cancel()
    assert waiting.join(WAIT) is None  # run returns quietly when cancelled
    assert called == []
    wait_until(lambda: first.contenders() == ["first"], WAIT, what="cancelled contender gone")
    leaders.end["first"].set()
    lead_worker.join(WAIT)


def test_leader_function_error_ends_the_term(shared, path):
    def boom() -> None:
        raise RuntimeError("leader failed")

    election = Election(shared[0], path, "x")
    with pytest.raises(RuntimeError):
        election.run(boom)
    assert election.contenders() == []
    ran = []
    Election(shared[1], path, "y").run(ran.append, 1)
    assert ran == [1]


def test_bad_func(shared, path):
    with pytest.raises(ValueError):
        Election(shared[0], path).run(None)  # type: ignore[arg-type]
    assert shared[0].exists(path) is None


def test_next_leader_when_leader_member_stops(path):
    with running_cluster(session_timeout=2.5) as cluster:
        old_member, new_member = cluster.followers()
        old = Election(old_member, path, "old")
        new = Election(new_member, path, "new")
        elected = {"old": threading.Event(), "new": threading.Event()}
        finish = threading.Event()
        tokens = {}

        def lead(name: str, election: Election) -> None:
            tokens[name] = election.fencing_token
            elected[name].set()
            assert finish.wait(WAIT)

        old_worker = Worker(old.run, lead, "old", old)
        assert elected["old"].wait(WAIT)
        new_worker = Worker(new.run, lead, "new", new)
        wait_until(lambda: new.contenders() == ["old", "new"], WAIT, what="second contender")
        assert not elected["new"].is_set()
        old_member.stop()
        # The old leader's function still runs (it cannot be interrupted),
        # but it is no longer the leader, and the other member takes over.
        assert elected["new"].wait(old_member.session_timeout + 3.0)
        assert not old.is_leader and new.is_leader
        assert tokens["new"] > tokens["old"]
        finish.set()
        old_worker.join(WAIT)
        new_worker.join(WAIT)
