"""Moving a ZooKeeper-protocol session between members, at the tree level:
the new member's first entry (a keepalive whose request id and ack_below
open a new epoch) decides every lower request id, so the old member's
stragglers can never be applied after the move."""

from __future__ import annotations

from coord import ops
from coord.errors import ErrorCode
from coord.tree import Tree
from coord.zk.sessions import (
    EPOCH_BITS,
    epoch_of,
    password_ok,
    resume_request_id,
    session_password,
)

SID = 0x1234


def _entry(request_id: int, ack_below: int, op: tuple[object, ...]) -> tuple[object, ...]:
    return ops.make_entry(SID, request_id, ack_below, 1000 + request_id % 1000, op)


def test_resume_epoch_fences_the_old_members_stragglers() -> None:
    tree = Tree()
    assert tree.apply(_entry(1, 1, ops.open_session_op(4000))).result[0] == ErrorCode.OK
    assert tree.apply(_entry(2, 2, ops.create_op("/a", b""))).result[0] == ErrorCode.OK
    # The old member has ids 3 and 4 in flight when the client moves.
    straggler_3 = _entry(3, 2, ops.create_op("/old-3", b""))
    straggler_4 = _entry(4, 2, ops.create_op("/old-4", b""))
    horizon = tree.session_request_horizon(SID)
    assert horizon == 3
    first = resume_request_id(horizon)
    assert epoch_of(first) == 1 and first == 1 << EPOCH_BITS
    resumed = tree.apply(_entry(first, first, ops.keepalive_op()))
    assert resumed.result[0] == ErrorCode.OK and not resumed.duplicate
    for straggler in (straggler_3, straggler_4):
        assert tree.apply(straggler).result[0] == ErrorCode.STALE_REQUEST
    assert tree.stat("/old-3") is None and tree.stat("/old-4") is None
    # The new member's requests continue the new epoch.
    assert tree.apply(_entry(first + 1, first, ops.create_op("/new", b""))).result[0] == ErrorCode.OK
    assert tree.session_request_horizon(SID) == first + 2
    # A second move opens the next epoch above everything.
    assert resume_request_id(tree.session_request_horizon(SID) or 0) == 2 << EPOCH_BITS


def test_a_straggler_applied_before_the_resume_counts_and_the_horizon_covers_it() -> None:
    tree = Tree()
    tree.apply(_entry(1, 1, ops.open_session_op(4000)))
    tree.apply(_entry(2, 1, ops.create_op("/x", b"")))
    # A cancel of a future id (allowed out of order) also raises the horizon.
    tree.apply(_entry(9, 1, ops.cancel_op(9)))
    assert tree.session_request_horizon(SID) == 10
    assert tree.session_request_horizon(999) is None


def test_resume_of_an_expired_session_is_refused() -> None:
    tree = Tree()
    tree.apply(_entry(1, 1, ops.open_session_op(4000)))
    activity = tree.session_info(SID).activity  # type: ignore[union-attr]
    tree.apply(ops.make_entry(0, 0, 0, 5000, ops.expire_session_op(SID, activity)))
    first = resume_request_id(2)
    assert tree.apply(_entry(first, first, ops.keepalive_op())).result[0] == ErrorCode.SESSION_EXPIRED


def test_session_passwords_are_keyed_and_checked_in_constant_time() -> None:
    key = b"k" * 32
    password = session_password(SID, key)
    assert len(password) == 16
    assert password_ok(SID, password, key)
    assert not password_ok(SID + 1, password, key)
    assert not password_ok(SID, password, b"other key" * 4)
    assert not password_ok(SID, bytes(16), key)
    assert session_password(SID, None) != session_password(SID, key)
