"""The zxid-based checks: each rule caught, and legal histories left alone."""

from __future__ import annotations

from coord.testing.history import Operation
from coord.testing.revision import (
    DUPLICATE_ZXID,
    LINEARIZABLE_READ,
    PROCESS_ORDER,
    READ,
    READ_MISMATCH,
    REALTIME_WRITE_ORDER,
    STALE_LINEARIZABLE_READ,
    WRITE,
    WRITE_NOT_IN_LOG,
    check_revisions,
)

from .builder import Script


def kinds(script: Script, **options: object) -> list[str]:
    return [v.kind for v in check_revisions(script.events, **options).violations]  # type: ignore[arg-type]


def test_a_clean_history_passes() -> None:
    s = (
        Script()
        .call(1, "write", 1, zxid=5)
        .call(2, "read", result=1, zxid=5)
        .invoke(1, "write", 2)
        .invoke(2, "write", 3)
        .ok(2, zxid=7)
        .ok(1, zxid=6)  # concurrent writes may be ordered either way
        .call(3, "sync-read", result=3, zxid=7)
        .call(1, "cas", [7, 4], zxid=8)
        .invoke(2, "cas", [0, 5])
        .fail(2, "BadVersionError", zxid=9)
        .invoke(3, "write", 6)
        .info(3)
    )
    result = check_revisions(s.events)
    assert result.valid and bool(result), result.format()
    assert result.responses == 7 and result.without_zxid == 0


def test_per_process_zxids_never_decrease() -> None:
    s = Script().call(1, "write", 1, zxid=9).call(1, "read", result=1, zxid=4)
    result = check_revisions(s.events)
    assert [v.kind for v in result.violations] == [PROCESS_ORDER]
    assert [e.zxid for e in result.violations[0].events] == [9, 4]
    assert not result


def test_stale_plain_reads_are_allowed_but_not_backwards() -> None:
    # p2's plain read lags p1's completed write: ZooKeeper allows it ...
    s = Script().call(1, "write", 1, zxid=9).call(2, "read", result=0, zxid=3)
    assert kinds(s) == []
    # ... but a linearizable read may not, and neither may p2 go backwards.
    s = Script().call(1, "write", 1, zxid=9).call(2, "sync-read", result=0, zxid=3)
    assert kinds(s) == [STALE_LINEARIZABLE_READ]
    s = Script().call(2, "read", result=1, zxid=9).call(2, "read", result=0, zxid=3)
    assert kinds(s) == [PROCESS_ORDER]


def test_real_time_inversion_of_writes() -> None:
    s = Script().call(1, "write", 1, zxid=5).call(2, "write", 2, zxid=3)
    result = check_revisions(s.events)
    assert [v.kind for v in result.violations] == [REALTIME_WRITE_ORDER]
    assert "zxid 5" in str(result.violations[0]) and "zxid 3" in str(result.violations[0])
    # Equal is an inversion too for a new write (it needs a fresh zxid) ...
    s = Script().call(1, "write", 1, zxid=5).call(2, "write", 2, zxid=5)
    assert REALTIME_WRITE_ORDER in kinds(s)
    # ... and a read that completed first bounds the write as well.
    s = Script().call(1, "read", result=1, zxid=5).call(2, "write", 2, zxid=4)
    assert kinds(s) == [REALTIME_WRITE_ORDER]


def test_failed_writes_are_not_real_time_targets() -> None:
    # A composite op may fail with the zxid of a stale local listing.
    s = Script().call(1, "enqueue", "a", zxid=8).invoke(2, "dequeue").fail(2, "empty", zxid=3)
    assert kinds(s) == []


def test_duplicate_zxids_of_acknowledged_writes() -> None:
    s = Script().invoke(1, "write", 1).invoke(2, "write", 2).ok(1, zxid=4).ok(2, zxid=4)
    result = check_revisions(s.events)
    assert [v.kind for v in result.violations] == [DUPLICATE_ZXID]
    assert len(result.violations[0].events) == 4
    # Different keys share the zxid counter: still a duplicate.
    s = Script().invoke(1, "write", 1, key="a").invoke(2, "write", 2, key="b").ok(1, zxid=4).ok(2, zxid=4)
    assert kinds(s) == [DUPLICATE_ZXID]


def test_classify_overrides_names() -> None:
    s = Script(key="register/k0").call(1, "write", 1, zxid=9).call(2, "read", result=0, zxid=3)
    assert kinds(s) == []

    def register_reads_are_linearizable(op: Operation) -> str | None:
        if op.f == "read":
            return LINEARIZABLE_READ if str(op.key).startswith("register/") else READ
        return WRITE if op.f == "write" else None

    assert kinds(s, classify=register_reads_are_linearizable) == [STALE_LINEARIZABLE_READ]


def test_reads_against_the_log() -> None:
    log = [(3, "x", 1), (4, "y", "a"), (6, "x", 2), (8, "x", None)]
    s = (
        Script()
        .call(1, "write", 1, zxid=3)
        .call(2, "read", result=1, zxid=5)  # x is 1 from zxid 3 to 5
        .call(2, "read", result=None, key="x", zxid=2)  # before its first write: initial (absent)
        .call(1, "write", 2, zxid=6)
        .call(1, "delete", -1, zxid=8)
        .invoke(3, "read")
        .fail(3, "NoNodeError", zxid=8)
    )
    result = check_revisions(s.events, log=log)
    # Every read matches the log; only p2 going back from zxid 5 to 2 is wrong.
    assert [v.kind for v in result.violations] == [PROCESS_ORDER]

    stale = Script().call(1, "write", 1, zxid=3).call(1, "write", 2, zxid=6).call(2, "read", result=1, zxid=7)
    assert kinds(stale, log=log) == [READ_MISMATCH]
    never = Script().call(2, "read", result=5, zxid=3)
    assert kinds(never, log=log) == [READ_MISMATCH]


def test_acknowledged_writes_must_be_in_the_log() -> None:
    log = [(3, "x", 1), (4, "y", "a")]
    lost = Script().call(1, "write", 1, zxid=3).call(1, "write", 2, zxid=5)
    assert kinds(lost, log=log) == [WRITE_NOT_IN_LOG]
    wrong_key = Script().call(1, "write", 9, zxid=4)
    assert kinds(wrong_key, log=log) == [WRITE_NOT_IN_LOG]
    wrong_value = Script().call(1, "cas", [0, 7], zxid=3)
    assert kinds(wrong_value, log=log) == [WRITE_NOT_IN_LOG]
    # Keys the log never mentions are not judged against it.
    elsewhere = Script(key="sessions").call(1, "heartbeat", None, zxid=10)
    assert kinds(elsewhere, log=log) == []


def test_result_formatting() -> None:
    s = Script().call(1, "write", 1, zxid=9).call(1, "read", result=1, zxid=4)
    text = check_revisions(s.events).format()
    assert "1 zxid violations" in text and "process-order" in text and "#1" in text
