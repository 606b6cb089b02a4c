"""Bad inputs the API fuzzer (test_api_fuzz.py) found accepted or unclear,
pinned as plain regression tests. Each must raise a clear exception before
anything is proposed, and change nothing."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import free_ports

import coord


@pytest.fixture(scope="module")
def member() -> Iterator[coord.Coordinator]:
    running = coord.Coordinator(f"127.0.0.1:{free_ports(1)[0]}", peers=[], session_timeout=600.0)
    running.start(timeout=15)
    running.create("/base", b"")
    try:
        yield running
    finally:
        running.stop()


def _state(member: coord.Coordinator) -> tuple[int, bytes, int]:
    inner = member._member
    in_flight = inner.status().requests_in_flight
    with inner._lock:
        return inner._tree.zxid, inner._tree.snapshot(), in_flight


BAD_TIMEOUTS = [0, -1, -0.5, math.nan, math.inf, "1", True]

WRITES: dict[str, Any] = {
    "create": lambda m, t: m.create("/base/new", b"x", timeout=t),
    "create makepath": lambda m, t: m.create("/base/p/q", b"x", makepath=True, timeout=t),
    "create_async": lambda m, t: m.create_async("/base/new", b"x", timeout=t),
    "set": lambda m, t: m.set("/base", b"x", timeout=t),
    "delete": lambda m, t: m.delete("/base", timeout=t),
    "delete recursive": lambda m, t: m.delete("/base", recursive=True, timeout=t),
    "delete recursive of a missing node": lambda m, t: m.delete("/missing", recursive=True, timeout=t),
    "sync": lambda m, t: m.sync("/", timeout=t),
    "transaction": lambda m, t: _transaction(m, t, ops=True),
    "empty transaction": lambda m, t: _transaction(m, t, ops=False),
}


def _transaction(member: coord.Coordinator, timeout: Any, ops: bool) -> Any:
    txn = member.transaction()
    if ops:
        txn.create("/base/in-txn", b"x")
    return txn.commit(timeout=timeout)


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS, ids=repr)
@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_bad_per_call_timeout_is_refused_before_anything_is_proposed(
    member: coord.Coordinator, write: str, timeout: Any
) -> None:
    """Before the fix: timeout=0/-1/True wrote anyway, nan answered
    UnknownOutcomeError, inf an OverflowError, "1" a TypeError about
    float + str; an empty transaction accepted any of them."""
    before = _state(member)
    with pytest.raises((TypeError, ValueError)) as info:
        WRITES[write](member, timeout)
    assert "timeout" in str(info.value)
    assert _state(member) == before


@pytest.mark.parametrize("version", [None, "1", 1.0, True, 2**31, math.nan])
def test_recursive_delete_still_checks_the_version_argument(member: coord.Coordinator, version: Any) -> None:
    """kazoo ignores ``version`` when ``recursive``; coord too, for its value,
    but a non-version used to be silently accepted (and the subtree deleted)."""
    member.ensure_path("/base/doomed/child")
    before = _state(member)
    with pytest.raises((TypeError, coord.BadArgumentsError)) as info:
        member.delete("/base/doomed", version=version, recursive=True)
    assert "version" in str(info.value)
    assert _state(member) == before
    assert member.delete("/base/doomed", version=7, recursive=True) is True  # a wrong version is ignored
    assert member.exists("/base/doomed") is None


def test_recursive_delete_of_the_root_is_refused_with_a_message(member: coord.Coordinator) -> None:
    """Used to raise BadArgumentsError with an EMPTY message (after
    proposing a transaction that the root's delete made fail)."""
    before = _state(member)
    with pytest.raises(coord.BadArgumentsError) as info:
        member.delete("/", recursive=True)
    assert "root" in str(info.value) and "'/'" in str(info.value)
    assert _state(member) == before
    assert member.exists("/base") is not None
