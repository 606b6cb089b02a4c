"""CasRegister: hand-written linearizable and non-linearizable histories."""

from __future__ import annotations

from pathlib import Path

from coord.testing.history import History
from coord.testing.linearizability import check
from coord.testing.models import CasRegister

from .builder import Script


def verdict(script: Script, **model_options: object) -> bool | None:
    return check(script.events, CasRegister(**model_options)).valid  # type: ignore[arg-type]


# ---------------------------------------------------------------- plain reads and writes


def test_sequential_write_then_read() -> None:
    s = Script().call(1, "read", result=None).call(1, "write", 1).call(2, "read", result=1)
    assert verdict(s) is True


def test_stale_read_after_a_completed_write_is_caught() -> None:
    s = Script().call(1, "write", 1).call(1, "write", 2).call(2, "read", result=1)
    assert verdict(s) is False


def test_read_concurrent_with_a_write_may_see_either_value() -> None:
    for seen in (1, 2):
        s = Script().call(1, "write", 1).invoke(1, "write", 2).invoke(2, "read").ok(2, seen).ok(1)
        assert verdict(s) is True


def test_read_of_a_value_never_written_is_caught() -> None:
    s = Script().call(1, "write", 1).invoke(1, "write", 2).invoke(2, "read").ok(2, 3).ok(1)
    assert verdict(s) is False


def test_two_readers_observing_both_orders_of_concurrent_writes() -> None:
    # w1 and w2 overlap each other and all four reads; reader 3 sees 1 then 2,
    # reader 4 sees 2 then 1: no single order of the writes explains both.
    s = (
        Script()
        .invoke(1, "write", 1)
        .invoke(2, "write", 2)
        .call(3, "read", result=1)
        .call(4, "read", result=2)
        .call(3, "read", result=2)
        .call(4, "read", result=1)
        .ok(1)
        .ok(2)
    )
    assert verdict(s) is False
    # One reader seeing both orders over time is fine: 1, 2, then 1 is not.
    ok = (
        Script()
        .invoke(1, "write", 1)
        .invoke(2, "write", 2)
        .call(3, "read", result=1)
        .call(4, "read", result=2)
        .call(3, "read", result=2)
        .ok(1)
        .ok(2)
    )
    assert verdict(ok) is True


def test_value_cannot_flip_back_without_a_write() -> None:
    s = Script().call(1, "write", 1).invoke(2, "write", 2).call(3, "read", result=2).call(3, "read", result=1).ok(2)
    assert verdict(s) is False


# ---------------------------------------------------------------- cas and versions


def test_lost_update_two_cas_from_the_same_version_both_succeed() -> None:
    s = Script().call(1, "create", 0).invoke(1, "cas", [0, "a"]).invoke(2, "cas", [0, "b"]).ok(1).ok(2)
    assert verdict(s) is False


def test_concurrent_cas_one_wins_one_gets_bad_version() -> None:
    s = (
        Script()
        .call(1, "create", 0)
        .invoke(1, "cas", [0, "a"])
        .invoke(2, "cas", [0, "b"])
        .ok(1)
        .fail(2, "BadVersionError")
        .call(3, "read", result="a")
    )
    assert verdict(s) is True


def test_bad_version_is_a_definite_answer_not_a_dropped_op() -> None:
    # Nothing else writes: the version is 0 throughout, so BadVersion for
    # expected version 0 is a lie. Dropping failures would miss this.
    s = Script().call(1, "create", "v").invoke(2, "cas", [0, "w"]).fail(2, "BadVersionError")
    assert verdict(s) is False
    # A BadVersion is legal when the version really had moved on.
    s = Script().call(1, "create", "v").call(1, "write", "v2").invoke(2, "cas", [0, "w"]).fail(2, "BAD_VERSION")
    assert verdict(s) is True


def test_no_node_answers_are_definite() -> None:
    s = Script().call(1, "create", "v").invoke(2, "cas", [0, "w"]).fail(2, "NoNodeError")
    assert verdict(s) is False
    s = Script().call(1, "create", "v").invoke(2, "read").fail(2, "coord.errors.NoNodeError: /x")
    assert verdict(s) is False
    s = Script().invoke(2, "read").fail(2, "NoNodeError").call(1, "create", "v").call(2, "read", result="v")
    assert verdict(s) is True


def test_uninformative_failure_means_it_did_not_happen() -> None:
    s = Script().call(1, "write", 1).invoke(1, "write", 7).fail(1, "ConnectionLoss").call(2, "read", result=7)
    assert verdict(s) is False
    s = Script().call(1, "write", 1).invoke(1, "write", 7).fail(1, "ConnectionLoss").call(2, "read", result=1)
    assert verdict(s) is True


def test_create_exists_and_delete_versions() -> None:
    s = Script().invoke(1, "create", "a").fail(1, "NodeExistsError")
    assert verdict(s) is False  # nothing existed
    s = (
        Script()
        .call(1, "create", "a")
        .call(1, "write", "b")  # version 1
        .invoke(2, "delete", 0)
        .fail(2, "BadVersionError")
        .call(2, "delete", 1)
        .call(3, "read", result=None)
        .call(3, "create", "c")
        .call(3, "cas", [0, "d"])  # a re-created node starts again at version 0
        .call(3, "read", result="d")
    )
    assert verdict(s) is True


def test_versioned_reads_and_reported_versions() -> None:
    s = Script().call(1, "create", "a").call(1, "write", "b", 1).call(2, "read", result=["b", 1])
    assert verdict(s, versioned_reads=True) is True
    s = Script().call(1, "create", "a").call(1, "write", "b", 1).call(2, "read", result=["b", 0])
    assert verdict(s, versioned_reads=True) is False
    s = Script().call(1, "create", "a").call(1, "write", "b", 5)  # set reported the wrong new version
    assert verdict(s, check_versions=True) is False
    assert verdict(s) is True  # write results are ignored by default (the workload records the value)


# ---------------------------------------------------------------- cas by value (the register workload's shape)


def test_cas_by_value() -> None:
    ok = (
        Script(key="register/k0")
        .call(1, "write", 0)
        .invoke(1, "cas", [0, 1])
        .invoke(2, "cas", [0, 2])
        .ok(1, [0, 1])
        .fail(2, "value is 1")  # its read saw 1: a definite mismatch
        .invoke(3, "cas", [1, 3])
        .call(4, "write", 4)  # got there between p3's read and its versioned set
        .fail(3, "BadVersionError")
        .call(5, "local-read", result=0)  # stale plain read: ignored by the model
        .call(5, "read", result=4)
    )
    assert verdict(ok, cas="value") is True
    lost_update = Script().call(1, "write", 0).invoke(1, "cas", [0, 1]).invoke(2, "cas", [0, 2]).ok(1).ok(2)
    assert verdict(lost_update, cas="value") is False
    false_mismatch = Script().call(1, "write", 0).invoke(2, "cas", [0, 2]).fail(2, "value is 7")
    assert verdict(false_mismatch, cas="value") is False
    not_applied = Script().call(1, "write", 0).invoke(2, "cas", [0, 2]).fail(2, "read: OperationTimeoutError")
    assert verdict(not_applied, cas="value") is True


def test_write_without_create_semantics() -> None:
    s = Script().invoke(1, "write", 1).fail(1, "NoNodeError").call(1, "create", 0).call(1, "write", 1)
    assert verdict(s, write_creates=False) is True
    s = Script().call(1, "write", 1)
    assert verdict(s, write_creates=False) is False


# ---------------------------------------------------------------- unknown outcomes


def test_unknown_write_that_takes_effect_later() -> None:
    s = Script().call(1, "write", 1).invoke(1, "write", 5).info(1).call(2, "read", result=1).call(2, "read", result=5)
    assert verdict(s) is True


def test_unknown_write_that_never_takes_effect() -> None:
    s = Script().call(1, "write", 1).invoke(1, "write", 5).info(1).call(2, "read", result=1).call(3, "read", result=1)
    assert verdict(s) is True
    # ... nor when the history ends with no completion at all.
    s = Script().call(1, "write", 1).invoke(1, "write", 5).call(2, "read", result=1)
    assert verdict(s) is True


def test_unknown_write_cannot_take_effect_before_it_was_invoked() -> None:
    s = Script().call(1, "write", 1).call(2, "read", result=5).invoke(1, "write", 5).info(1)
    assert verdict(s) is False


def test_unknown_write_cannot_be_undone() -> None:
    s = Script().call(1, "write", 1).invoke(1, "write", 5).info(1).call(2, "read", result=5).call(2, "read", result=1)
    assert verdict(s) is False


def test_unknown_cas_only_applies_when_its_version_matches() -> None:
    s = Script().call(1, "create", "a").call(1, "write", "b").invoke(2, "cas", [0, "z"]).info(2)
    s.call(3, "read", result="z")
    assert verdict(s) is False
    s = Script().call(1, "create", "a").invoke(2, "cas", [0, "z"]).info(2).call(3, "read", result="z")
    assert verdict(s) is True


def test_json_round_trip_checks_the_same(tmp_path: Path) -> None:
    s = Script().call(1, "create", 0).invoke(1, "cas", (0, ("a", 1))).invoke(2, "cas", (0, "b")).ok(1)
    s.fail(2, "BadVersionError").call(3, "read", result=("a", 1))
    path = tmp_path / "history.jsonl"
    recorder = History()
    recorder._events = list(s.events)  # reuse the recorder's JSON writer
    recorder.save(path)
    loaded = History.load(path)
    assert check(s.events, CasRegister()).valid is True
    assert check(loaded, CasRegister()).valid is True
