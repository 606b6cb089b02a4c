"""The pure parts of fault injection: the seeded ``NetworkFaults`` policy and
the adapter's AppendEntries screening (R1/R2), without any network."""

from __future__ import annotations

from typing import Any

import pytest

from coord.replication import _RaftLog, message_kind, screen_append_entries
from coord.testing.faults import NetworkFaults
from coord.testing.history import NEMESIS, History

A, B, C = "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"


# ---------------------------------------------------------------------- the policy


def test_each_link_draws_from_its_own_seeded_stream() -> None:
    def configured(seed: int) -> NetworkFaults:
        faults = NetworkFaults(seed)
        faults.set_loss(0.3)
        faults.set_delay(0.0, 0.05)
        faults.set_duplicate(0.3)
        return faults

    one, two, other_seed = configured(7), configured(7), configured(8)
    # Interleave a second link differently: A->B's decisions must not change.
    first = [one.decide(A, B, "append_entries") for _ in range(200)]
    second = []
    for _ in range(200):
        two.decide(B, C, "request_vote")
        second.append(two.decide(A, B, "append_entries"))
        two.decide(C, A, "next_node_idx")
    assert first == second
    assert first != [other_seed.decide(A, B, "append_entries") for _ in range(200)]
    dropped = sum(1 for delays in first if not delays)
    assert 30 <= dropped <= 90, f"loss 0.3 dropped {dropped} of 200"
    assert any(len(delays) == 2 for delays in first), "duplication never happened"
    assert all(0.0 <= d <= 0.05 + 0.2 for delays in first for d in delays)


def test_cuts_are_directional_scoped_and_healed_one_by_one() -> None:
    faults = NetworkFaults(1)
    assert faults.decide(A, B, "append_entries") == [0.0]
    oneway = faults.cut_oneway(A, B)
    assert faults.decide(A, B, "append_entries") == []
    assert faults.decide(B, A, "next_node_idx") == [0.0]
    votes = faults.isolate(C, message_types=["request_vote"])
    assert faults.decide(C, A, "request_vote") == [] and faults.decide(A, C, "request_vote") == []
    assert faults.decide(C, A, "append_entries") == [0.0]
    faults.heal(oneway)
    assert faults.decide(A, B, "append_entries") == [0.0]
    assert faults.decide(C, B, "request_vote") == [], "healing one cut must leave the others"
    faults.heal(votes)
    assert faults.decide(C, B, "request_vote") == [0.0]

    split = faults.partition([[A], [B, C]])
    assert faults.decide(A, B, "append_entries") == [] and faults.decide(C, A, "response_vote") == []
    assert faults.decide(B, C, "append_entries") == [0.0]
    faults.heal(split)
    both = faults.cut(A, C)
    assert faults.decide(A, C, "append_entries") == [] and faults.decide(C, A, "append_entries") == []
    faults.heal()
    assert faults.decide(A, C, "append_entries") == [0.0]
    assert both.kind == "cut"
    assert faults.fate_count("drop_cut") == 8
    assert faults.sent_count(src=A) == 3 and faults.sent_count(dst=B, message_type="request_vote") == 1


def test_stale_redelivery_and_duplicates_are_extra_delayed_copies_counted_in_flight() -> None:
    faults = NetworkFaults(3)
    faults.set_stale_redelivery(1.0, min_delay_s=1.0, max_delay_s=2.0, src=A, message_types=["append_entries"])
    delays = faults.decide(A, B, "append_entries")
    assert delays[0] == 0.0 and len(delays) == 2 and 1.0 <= delays[1] <= 2.0
    assert faults.decide(A, B, "next_node_idx") == [0.0], "the stale fault is scoped to append_entries"
    assert faults.decide(B, A, "append_entries") == [0.0], "the stale fault is scoped to src A"
    assert faults.in_flight() == 1
    faults.released()
    assert faults.in_flight() == 0
    faults.set_stale_redelivery(0.0)
    faults.set_duplicate(1.0, max_delay_s=0.1)
    first, copy = faults.decide(A, B, "append_entries")
    assert first == 0.0 and 0.0 <= copy <= 0.1
    faults.clear()
    assert faults.decide(A, B, "append_entries") == [0.0]
    assert faults.fate_count("stale", "append_entries") == 1 and faults.fate_count("duplicate") == 1


def test_the_fault_log_and_the_history_record_every_fault() -> None:
    history = History()
    faults = NetworkFaults(5, history=history)
    cut = faults.isolate(A)
    faults.decide(A, B, "append_entries")
    faults.set_loss(1.0)
    faults.decide(B, C, "append_entries")
    faults.heal(cut)
    kinds = [event.kind for event in faults.events]
    assert kinds == ["isolate", "drop_cut", "set_loss", "drop_loss", "heal"]
    dropped = faults.events[1]
    assert (dropped.src, dropped.dst, dropped.message_type, dropped.delays) == (A, B, "append_entries", ())
    nemesis = [(event.process, event.f) for event in history.events]
    assert nemesis == [(NEMESIS, "isolate"), (NEMESIS, "set_loss"), (NEMESIS, "heal")]


def test_bad_fault_settings_are_rejected() -> None:
    faults = NetworkFaults()
    with pytest.raises(ValueError, match="probability"):
        faults.set_loss(1.5)
    with pytest.raises(ValueError, match="min <= max"):
        faults.set_delay(0.2, 0.1)
    with pytest.raises(ValueError, match="unknown message types"):
        faults.cut(A, B, message_types=["append_entry"])
    with pytest.raises(ValueError, match="two partition groups"):
        faults.partition([[A, B], [B, C]])


# ---------------------------------------------------------------------- AppendEntries screening


def _log(*terms: int) -> _RaftLog:
    """A follower log whose entry i+1 has term terms[i]."""
    log = _RaftLog()
    log.journal = [(b"cmd%d" % (i + 1), i + 1, term) for i, term in enumerate(terms)]
    return log


def _append(prev: int, prev_term: int, entries: list[tuple[int, int]], commit: int, term: int = 2) -> dict[str, Any]:
    return {
        "type": "append_entries",
        "term": term,
        "commit_index": commit,
        "prevLogIdx": prev,
        "prevLogTerm": prev_term,
        "entries": [(b"cmd%d" % idx, idx, t) for idx, t in entries],
    }


def test_a_stale_append_whose_entries_are_all_here_deletes_nothing() -> None:
    # R1: the follower holds 1..8; a replayed message covers 3..4 only.
    log = _log(0, 1, 1, 1, 2, 2, 2, 2)
    message = _append(2, 1, [(3, 1), (4, 1)], commit=7)
    screened, ack = screen_append_entries(message, log, current_term=2, commit_index=6)
    assert "prevLogIdx" not in screened and "entries" not in screened, "pysyncobj must not truncate"
    assert screened["commit_index"] == 4, "commit only over the verified prefix"
    assert ack == 5
    # A stale heartbeat (no entries) behaves the same way.
    screened, ack = screen_append_entries(_append(5, 2, [], commit=8), log, 2, 6)
    assert "prevLogIdx" not in screened and screened["commit_index"] == 5 and ack == 6


def test_matching_entries_are_trimmed_and_only_the_conflict_is_left_to_pysyncobj() -> None:
    log = _log(0, 1, 1, 1, 1)  # entries 4..5 of term 1 were never committed
    message = _append(1, 0, [(2, 1), (3, 1), (4, 2), (5, 2), (6, 2)], commit=6)
    screened, ack = screen_append_entries(message, log, 2, 3)
    assert ack is None
    assert (screened["prevLogIdx"], screened["prevLogTerm"]) == (3, 1)
    assert [e[1] for e in screened["entries"]] == [4, 5, 6], "truncation starts at the first conflict"
    # A duplicate whose tail is new: only the new tail is appended.
    log = _log(0, 1, 2)
    screened, ack = screen_append_entries(_append(1, 0, [(2, 1), (3, 2), (4, 2)], commit=3), log, 2, 3)
    assert (screened["prevLogIdx"], [e[1] for e in screened["entries"]], ack) == (3, [4], None)
    # An exact duplicate of what the follower has: a plain heartbeat at its end.
    screened, ack = screen_append_entries(_append(1, 0, [(2, 1), (3, 2)], commit=3), log, 2, 3)
    assert (screened["prevLogIdx"], screened["entries"], ack) == (3, [], None)


def test_messages_pysyncobj_handles_correctly_pass_unchanged() -> None:
    log = _log(0, 1, 1)
    fresh = _append(3, 1, [(4, 2)], commit=4)
    assert screen_append_entries(fresh, log, 2, 3) == (fresh, None)
    mismatch = _append(3, 2, [(4, 2)], commit=4)  # pysyncobj rejects it before touching the log
    assert screen_append_entries(mismatch, log, 2, 3) == (mismatch, None)
    old_term = _append(1, 0, [(2, 1)], commit=2, term=1)  # pysyncobj ignores it
    assert screen_append_entries(old_term, log, 2, 3) == (old_term, None)
    vote = {"type": "request_vote", "term": 3, "last_log_index": 3, "last_log_term": 1}
    assert screen_append_entries(vote, log, 2, 3) == (vote, None)


def test_snapshot_path_messages_cannot_commit_unverified_entries() -> None:
    # R2: an ex-leader holds uncommitted entries 4..6 of its old term.
    log = _log(0, 1, 1, 1, 1, 1)
    pending = {"type": "append_entries", "term": 3, "commit_index": 50, "serialized": None}
    screened, ack = screen_append_entries(pending, log, 3, 3)
    assert screened["commit_index"] == 3 and ack is None
    assert message_kind(pending) == "snapshot_pending"
    chunk = {**pending, "serialized": (b"gz", True, False)}
    assert screen_append_entries(chunk, log, 3, 3)[0]["commit_index"] == 3
    assert message_kind(chunk) == "install_snapshot"
    # A fresh member with nothing uncommitted is left alone (its readiness
    # tracking still learns the leader's commit index).
    assert screen_append_entries(pending, _log(0), 3, 1) == (pending, None)
