"""coord.ops: constructors reject bad input clearly; validate_entry is total."""

from __future__ import annotations

import enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coord import ops
from coord.errors import BadArgumentsError, DataTooLargeError, InvalidPathError
from coord.ops import (
    DEFAULT_MAX_DATA_BYTES,
    ENTRY_FORMAT,
    MAX_ENTRY_OVERHEAD_BYTES,
    MULTI_MAX_OPS,
    check_op,
    check_size,
    create_op,
    delete_op,
    make_entry,
    multi_op,
    op_payload_bytes,
    set_op,
    validate_entry,
)


class Version(enum.IntEnum):
    THREE = 3


class PathStr(str):
    pass


# --------------------------------------------------------------- constructors


def test_constructors_build_plain_tuples() -> None:
    assert create_op("/a") == ("create", "/a", b"", 0)
    assert create_op("/a", b"v", ephemeral=True) == ("create", "/a", b"v", ops.FLAG_EPHEMERAL)
    assert create_op("/a/", sequence=True) == ("create", "/a/", b"", ops.FLAG_SEQUENCE)
    assert create_op("/a-", ephemeral=True, sequence=True)[3] == 3
    assert delete_op("/a") == ("delete", "/a", -1)
    assert set_op("/a", b"x", 4) == ("set", "/a", b"x", 4)
    assert check_op("/a", 0) == ("check", "/a", 0)
    assert multi_op([check_op("/a", 1)]) == ("multi", (("check", "/a", 1),))
    assert ops.sync_op() == ("sync",)
    assert ops.open_session_op(5000) == ("open_session", 5000)
    assert ops.keepalive_op() == ("keepalive",)
    assert ops.close_session_op() == ("close_session",)
    assert ops.expire_session_op(7, 3) == ("expire_session", 7, 3)
    assert ops.cancel_op(9) == ("cancel", 9)
    assert make_entry(3, 1, 0, 1000, ops.sync_op()) == (ENTRY_FORMAT, 3, 1, 0, 1000, ("sync",))


def test_constructors_normalise_harmless_subclasses() -> None:
    op = set_op(PathStr("/a"), b"x", Version.THREE)
    assert type(op[1]) is str and type(op[3]) is int
    assert validate_entry(make_entry(0, 0, 0, 1, op)) is None


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: create_op("/a", "text"), TypeError, "value must be bytes, got str"),
        (lambda: create_op("/a", bytearray(b"x")), TypeError, "value must be bytes, got bytearray"),
        (lambda: set_op("/a", None), TypeError, "value must be bytes, got NoneType"),
        (lambda: create_op(b"/a"), TypeError, "path must be a str, got bytes"),
        (lambda: create_op("/a", ephemeral=1), TypeError, "ephemeral must be a bool, got int"),
        (lambda: create_op("/a", sequence="yes"), TypeError, "sequence must be a bool, got str"),
        (lambda: create_op("/a/"), InvalidPathError, 'must not end with "/"'),
        (lambda: create_op("a"), InvalidPathError, 'must start with "/"'),
        (lambda: create_op("/a//", sequence=True), InvalidPathError, "empty node name"),
        (lambda: delete_op("/a", True), TypeError, "version must be an int, got bool"),
        (lambda: delete_op("/a", "1"), TypeError, "version must be an int, got str"),
        (lambda: delete_op("/a", -(2**31) - 1), BadArgumentsError, "version must fit in 32 bits"),
        (lambda: set_op("/a", b"", 1 << 31), BadArgumentsError, "got 2147483648"),
        (lambda: check_op("/a", 1.0), TypeError, "version must be an int, got float"),
        (lambda: multi_op(None), TypeError, "ops must be a list or tuple of ops, got NoneType"),
        (lambda: multi_op(check_op("/a", 1)), BadArgumentsError, "multi op #0: an op must be a non-empty tuple"),
        (lambda: multi_op([ops.sync_op()]), BadArgumentsError, "multi op #0: 'sync' is not allowed in a multi"),
        (lambda: multi_op([check_op("/a", 1), ("delete", "/a")]), BadArgumentsError, "#1: 'delete' op takes 2"),
        (lambda: multi_op([multi_op([])]), BadArgumentsError, "'multi' is not allowed in a multi"),
        (lambda: multi_op([("set", "/a", "x", -1)]), TypeError, "multi op #0: value must be bytes, got str"),
        (lambda: multi_op([("create", "/a/", b"", 0)]), InvalidPathError, "multi op #0: invalid path"),
        (lambda: multi_op([["check", "/a", 1]]), BadArgumentsError, "an op must be a non-empty tuple, got list"),
        (lambda: multi_op([check_op("/a", 1)] * (MULTI_MAX_OPS + 1)), BadArgumentsError, "above the limit of 1000"),
        (lambda: ops.open_session_op(0), BadArgumentsError, "session timeout_ms must be between 1"),
        (lambda: ops.expire_session_op(0, 1), BadArgumentsError, "expired session_id must be between 1"),
        (lambda: ops.expire_session_op(1, -1), BadArgumentsError, "seen_activity"),
        (lambda: ops.cancel_op(0), BadArgumentsError, "cancelled request_id"),
        (lambda: make_entry(-1, 0, 0, 0, ops.sync_op()), BadArgumentsError, "session_id must be between 0"),
        (lambda: make_entry(4, 0, 0, 0, ops.sync_op()), BadArgumentsError, "request_id must be between 1"),
        (lambda: make_entry(4, 1, -1, 0, ops.sync_op()), BadArgumentsError, "ack_below"),
        (lambda: make_entry(4, 1, 0, True, ops.sync_op()), BadArgumentsError, "time_ms must be an int, got bool"),
        (lambda: make_entry(0, 0, 0, 0, ops.keepalive_op()), BadArgumentsError, "keepalive needs a session"),
        (lambda: make_entry(0, 0, 0, 0, ops.cancel_op(3)), BadArgumentsError, "cancel needs a session"),
        (lambda: make_entry(2, 1, 0, 0, ops.expire_session_op(3, 0)), BadArgumentsError, "system only"),
        (lambda: make_entry(0, 0, 0, 0, ("create", "/a", b"", 16)), BadArgumentsError, "flags must combine"),
        (lambda: make_entry(0, 0, 0, 0, ("create", "/a", b"", 4 | 1)), BadArgumentsError, "container node cannot"),
        (lambda: make_entry(0, 0, 0, 0, ("create", "/a", b"", 4 | 2)), BadArgumentsError, "container node cannot"),
        (lambda: make_entry(0, 0, 0, 0, ("create", "/a", b"", 8 | 1, 10)), BadArgumentsError, "cannot be ephemeral"),
        (lambda: make_entry(0, 0, 0, 0, ("create", "/a", b"", 8)), BadArgumentsError, "takes 4 argument"),
        (lambda: make_entry(0, 0, 0, 0, ("create", "/a", b"", 0, 5)), BadArgumentsError, "takes 3 argument"),
        (lambda: make_entry(0, 0, 0, 0, ("create", "/a", b"", 8, 0)), BadArgumentsError, "ttl must be between"),
        (lambda: make_entry(0, 0, 0, 0, ("create", "/a", b"", 8, 1 << 40)), BadArgumentsError, "ttl must be between"),
        (lambda: make_entry(0, 0, 0, 0, ("create", "/a", b"", 8, True)), BadArgumentsError, "ttl must be an int"),
        (lambda: ops.create_op("/a", container=True, ephemeral=True), BadArgumentsError, "container node cannot"),
        (lambda: ops.create_op("/a", ttl=-5), BadArgumentsError, "ttl must be between"),
        (lambda: make_entry(3, 1, 0, 0, ops.reap_op("/a", 1)), BadArgumentsError, "system only"),
        (lambda: make_entry(0, 0, 0, 0, ("reap", "/a", 0)), BadArgumentsError, "mzxid must be between"),
        (lambda: make_entry(0, 0, 0, 0, ("create", "/a", b"", -1)), BadArgumentsError, "flags must combine"),
        (lambda: make_entry(0, 0, 0, 0, ("frobnicate", "/a")), BadArgumentsError, "unknown op 'frobnicate'"),
        (lambda: make_entry(0, 0, 0, 0, ()), BadArgumentsError, "non-empty tuple"),
        (lambda: make_entry(0, 0, 0, 0, (1, 2)), BadArgumentsError, "op name must be a str, got int"),
    ],
)
def test_bad_input_raises_the_right_class_and_message(call, error: type, message: str) -> None:
    with pytest.raises(error) as caught:
        call()
    assert message in str(caught.value)


def test_multi_limits_and_empty_multi() -> None:
    assert multi_op([]) == ("multi", ())  # ZooKeeper accepts an empty multi
    assert len(multi_op([check_op("/a", 1)] * MULTI_MAX_OPS)[1]) == MULTI_MAX_OPS
    assert multi_op((create_op("/a"), delete_op("/a"))) == ("multi", (create_op("/a"), delete_op("/a")))


# ---------------------------------------------------------------------- sizes


def test_single_value_limit_is_inclusive() -> None:
    create_op("/a", b"x" * DEFAULT_MAX_DATA_BYTES, max_data_bytes=DEFAULT_MAX_DATA_BYTES)
    with pytest.raises(DataTooLargeError) as caught:
        create_op("/a", b"x" * (DEFAULT_MAX_DATA_BYTES + 1), max_data_bytes=DEFAULT_MAX_DATA_BYTES)
    message = str(caught.value)
    assert str(DEFAULT_MAX_DATA_BYTES + 1) in message and str(DEFAULT_MAX_DATA_BYTES) in message
    assert isinstance(caught.value, BadArgumentsError) and isinstance(caught.value, ValueError)


def test_constructors_check_sizes_only_against_a_given_limit() -> None:
    """The member's configured limit decides (check_size / the tree)."""
    with pytest.raises(DataTooLargeError, match="above the limit of 10 bytes"):
        set_op("/a", b"x" * 11, max_data_bytes=10)
    big = b"x" * (DEFAULT_MAX_DATA_BYTES * 2)
    assert set_op("/a", big)[2] is big
    entry = make_entry(0, 0, 0, 0, create_op("/a", big))
    assert "above the limit" in (validate_entry(entry) or "")
    with pytest.raises(DataTooLargeError):
        make_entry(0, 0, 0, 0, create_op("/a", big), max_data_bytes=DEFAULT_MAX_DATA_BYTES)
    assert validate_entry(entry, 3 * DEFAULT_MAX_DATA_BYTES) is None


def test_whole_op_limit_counts_paths_and_values_across_a_multi() -> None:
    value = b"x" * (DEFAULT_MAX_DATA_BYTES // 2)
    subops = [create_op(f"/n{i}", value) for i in range(2)]
    op = multi_op(subops, max_data_bytes=DEFAULT_MAX_DATA_BYTES)  # 2 halves + paths: within the overhead
    assert op_payload_bytes(op) == 2 * len(value) + len("/n0") + len("/n1")
    bigger = subops + [set_op("/x", b"y" * (MAX_ENTRY_OVERHEAD_BYTES + 1))]
    with pytest.raises(DataTooLargeError, match=f"max_data_bytes \\+ {MAX_ENTRY_OVERHEAD_BYTES}"):
        multi_op(bigger, max_data_bytes=DEFAULT_MAX_DATA_BYTES)
    with pytest.raises(DataTooLargeError):
        check_size(multi_op(bigger), DEFAULT_MAX_DATA_BYTES)


def test_payload_counts_utf8_bytes_of_paths() -> None:
    assert op_payload_bytes(check_op("/\u00fc", 1)) == 3
    assert op_payload_bytes(ops.sync_op()) == 0
    check_size(create_op("/a", b"12345"), 5)
    with pytest.raises(DataTooLargeError):
        check_size(create_op("/a", b"123456"), 5)


def test_validate_entry_applies_the_size_limit_it_is_given() -> None:
    entry = make_entry(0, 0, 0, 0, create_op("/a", b"x" * 100))
    assert validate_entry(entry, 100) is None
    assert "above the limit of 99 bytes" in (validate_entry(entry, 99) or "")


# ------------------------------------------------------------- validate_entry


def _valid_entries() -> list[tuple]:
    return [
        make_entry(0, 0, 0, 0, create_op("/a", b"v")),
        make_entry(1, 5, 2, 10, create_op("/a/", ephemeral=True, sequence=True)),
        make_entry(1, 5, 0, 10, multi_op([create_op("/a"), set_op("/a", b"x"), delete_op("/a"), check_op("/", 0)])),
        make_entry(1, 1, 0, 0, ops.open_session_op(1000)),
        make_entry(0, 0, 0, 0, ops.expire_session_op(1, 0)),
        make_entry(1, 2, 1, 0, ops.cancel_op(1)),
    ]


def test_valid_entries_validate() -> None:
    for entry in _valid_entries():
        assert validate_entry(entry) is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (None, "6-tuple"),
        ([1, 0, 0, 0, 0, ("sync",)], "got list"),
        ((1, 0, 0, 0, ("sync",)), "of length 5"),
        ((2, 0, 0, 0, 0, ("sync",)), "unsupported entry format 2"),
        ((True, 0, 0, 0, 0, ("sync",)), "unsupported entry format bool"),
        ((1, 0, 0, 0, 0, ("create", PathStr("/a"), b"", 0)), "path must be a str, got PathStr"),
        ((1, 0, 0, 0, 0, ("set", "/a", b"", True)), "version must be an int, got bool"),
        ((1, 0, 0, 0, 0, ("multi", [("check", "/a", 1)])), "tuple of ops, got list"),
        ((1, 0, 0, 0, 0, ("multi", (("sync",),))), "not allowed in a multi"),
        ((1, 0, 0, 0, 0, ("create", "/a", b"", 0, 0)), "takes 3 argument(s), got 4"),
        ((1, 0, 0, 1 << 63, 0, ("sync",)), "ack_below must be between"),
    ],
)
def test_invalid_entries_get_a_reason(entry: object, message: str) -> None:
    reason = validate_entry(entry)
    assert reason is not None and message in reason


class Explosive:
    """Any method call on it fails: validation must not call any."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("__eq__ called")

    def __hash__(self) -> int:
        raise RuntimeError("__hash__ called")

    def __len__(self) -> int:
        raise RuntimeError("__len__ called")

    def __repr__(self) -> str:
        raise RuntimeError("__repr__ called")


class ExplosiveStr(str):
    def __getitem__(self, item: object) -> str:
        raise RuntimeError("__getitem__ called")


class ExplosiveTuple(tuple):
    def __len__(self) -> int:
        raise RuntimeError("__len__ called")


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-2, max_value=3)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["/", "/a", "/a/", "create", "delete", "set", "check", "multi", "sync", "cancel"])
    | st.binary(max_size=6)
    | st.builds(Explosive)
    | st.builds(ExplosiveStr, st.sampled_from(["/a", "create"]))
)
_garbage = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=7).map(tuple)
        | st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(ExplosiveTuple)
        | st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ),
    max_leaves=20,
)


@settings(max_examples=300, database=None, deadline=None)
@given(_garbage)
def test_validate_entry_never_raises_on_garbage(entry: object) -> None:
    result = validate_entry(entry)
    assert result is None or isinstance(result, str)


@settings(max_examples=300, database=None, deadline=None)
@given(st.sampled_from(_valid_entries()), st.data())
def test_validate_entry_never_raises_on_corrupted_valid_entries(entry: tuple, data: st.DataObject) -> None:
    """Replace one field, or one field of the op or of a sub-op, by garbage."""
    mutable = list(entry)
    position = data.draw(st.integers(0, 5))
    if position == 5 and len(entry[5]) > 1 and data.draw(st.booleans()):
        op = list(entry[5])
        index = data.draw(st.integers(0, len(op) - 1))
        if entry[5][0] == "multi" and op[1] and data.draw(st.booleans()):
            sub = list(op[1][0])
            sub[data.draw(st.integers(0, len(sub) - 1))] = data.draw(_garbage)
            op[1] = (tuple(sub),) + op[1][1:]
        else:
            op[index] = data.draw(_garbage)
        mutable[5] = tuple(op)
    else:
        mutable[position] = data.draw(_garbage)
    result = validate_entry(tuple(mutable))
    assert result is None or isinstance(result, str)
