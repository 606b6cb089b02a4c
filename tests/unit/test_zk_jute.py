"""The jute codec on its own: round trips, kazoo's encodings, and hostile
bytes (only ``JuteError``, never anything else, and bounded work)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kazoo.protocol import serialization as kz
from kazoo.security import ACL, Id

from coord.types import ZnodeStat
from coord.zk import jute
from coord.zk.jute import JuteError, OpCode

paths = st.text(min_size=1, max_size=40).map(lambda text: "/" + text.replace("/", "_"))
int32s = st.integers(-(2**31), 2**31 - 1)
int64s = st.integers(-(2**63), 2**63 - 1)
acls = st.lists(st.builds(jute.Acl, st.integers(0, 31), st.sampled_from(["world", "digest", "ip"]), st.text()))


@given(st.binary(max_size=200) | st.none())
def test_buffer_round_trip(value: bytes | None) -> None:
    assert jute.Reader(jute.buffer_(value)).buffer() == value


@given(st.text(max_size=100))
def test_string_round_trip(value: str) -> None:
    assert jute.Reader(jute.string_(value)).string() == value


@given(st.lists(paths, max_size=20))
def test_string_vector_round_trip(values: list[str]) -> None:
    assert jute.Reader(jute.strings_(values)).strings() == values


@given(acls)
def test_acl_vector_round_trip(values: list[jute.Acl]) -> None:
    assert jute.Reader(jute.acls_(values)).acls() == values


@given(st.tuples(*[int64s] * 4, int32s, int32s, int32s, int64s, int32s, int32s, int64s))
def test_stat_round_trip(fields: tuple[int, ...]) -> None:
    stat = ZnodeStat(*fields)
    assert jute.read_stat(jute.Reader(jute.stat_(stat))) == stat


@given(int32s, int64s, int32s, int64s, st.binary(max_size=32), st.booleans())
def test_connect_request_round_trip_and_kazoo_encoding(
    version: int, zxid: int, timeout: int, session: int, password: bytes, read_only: bool
) -> None:
    request = jute.ConnectRequest(version, zxid, timeout, session, password, read_only)
    encoded = jute.connect_request(request)
    assert jute.read_connect_request(encoded) == request
    assert bytes(kz.Connect(version, zxid, timeout, session, password, read_only).serialize()) == encoded


def test_connect_request_without_read_only_flag() -> None:
    # Old clients omit the trailing bool.
    encoded = jute.connect_request(jute.ConnectRequest(0, 5, 4000, 7, b"p" * 16, False))[:-1]
    assert jute.read_connect_request(encoded).read_only is False


@given(st.integers(0, 2**31 - 1), st.integers(-(2**63), 2**63 - 1), st.binary(max_size=16), st.booleans())
def test_connect_response_decodes_in_kazoo(timeout: int, session: int, password: bytes, read_only: bool) -> None:
    decoded, _offset = kz.Connect.deserialize(jute.connect_response(timeout, session, password, read_only), 0)
    assert (decoded.time_out, decoded.session_id, decoded.passwd, decoded.read_only) == (
        timeout,
        session,
        password,
        read_only,
    )


_KAZOO_REQUESTS = [
    (kz.Create("/a", b"data", [ACL(31, Id("world", "anyone"))], 3), OpCode.CREATE),
    (kz.Create2("/a", b"", [ACL(1, Id("digest", "u:x"))], 0), OpCode.CREATE2),
    (kz.Delete("/a/b", 4), OpCode.DELETE),
    (kz.Exists("/a", True), OpCode.EXISTS),
    (kz.GetData("/a", False), OpCode.GET_DATA),
    (kz.SetData("/a", b"v", -1), OpCode.SET_DATA),
    (kz.GetACL("/a"), OpCode.GET_ACL),
    (kz.SetACL("/a", [ACL(31, Id("world", "anyone"))], 2), OpCode.SET_ACL),
    (kz.GetChildren("/a", True), OpCode.GET_CHILDREN),
    (kz.GetChildren2("/a", False), OpCode.GET_CHILDREN2),
    (kz.Sync("/a"), OpCode.SYNC),
    (kz.CheckVersion("/a", 3), OpCode.CHECK),
    (kz.Auth(0, "digest", "u:p"), OpCode.AUTH),
    (kz.Close(), OpCode.CLOSE_SESSION),
    (kz.Ping(), OpCode.PING),
]


@pytest.mark.parametrize(("request_", "op"), _KAZOO_REQUESTS, ids=lambda value: type(value).__name__)
def test_decodes_what_kazoo_sends(request_: object, op: OpCode) -> None:
    payload = struct.pack(">ii", 17, request_.type) + bytes(request_.serialize())  # type: ignore[attr-defined]
    decoded = jute.read_request(payload)
    assert (decoded.xid, decoded.op) == (17, op)
    if op == OpCode.CREATE:
        assert decoded.args == ("/a", b"data", [jute.Acl(31, "world", "anyone")], 3, -1)
    if op == OpCode.SET_DATA:
        assert decoded.args == ("/a", b"v", -1)


def test_decodes_a_kazoo_transaction() -> None:
    txn = kz.Transaction([kz.Create("/a", b"", [ACL(31, Id("world", "anyone"))], 0), kz.Delete("/b", -1)])
    decoded = jute.read_request(struct.pack(">ii", 1, txn.type) + bytes(txn.serialize()))
    assert [sub.op for sub in decoded.args] == [OpCode.CREATE, OpCode.DELETE]  # type: ignore[union-attr]


def test_multi_rejects_a_read_op() -> None:
    body = jute.multi_header(OpCode.GET_DATA, False, -1) + jute.string_("/a") + jute.bool_(False)
    with pytest.raises(JuteError, match="not allowed"):
        jute.read_request(struct.pack(">ii", 1, OpCode.MULTI) + body + jute.multi_header(-1, True, -1))


@pytest.mark.parametrize("count", [-2, 2**31 - 1, 1_000_000])
def test_vector_counts_are_bounded_by_the_frame(count: int) -> None:
    with pytest.raises(JuteError):
        jute.Reader(struct.pack(">i", count) + b"\0" * 16).strings()


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_jute_error(data: bytes) -> None:
    for decode in (jute.read_request, jute.read_connect_request):
        with contextlib.suppress(JuteError):  # anything else fails the test
            decode(data)


@settings(max_examples=200)
@given(st.sampled_from([r for r, _ in _KAZOO_REQUESTS]), st.data())
def test_truncated_requests_raise_jute_error(request_: object, data: st.DataObject) -> None:
    payload = struct.pack(">ii", 3, request_.type) + bytes(request_.serialize())  # type: ignore[attr-defined]
    cut = data.draw(st.integers(0, len(payload) - 1))
    if cut >= 8 and request_.type in (OpCode.PING, OpCode.CLOSE_SESSION):  # type: ignore[attr-defined]
        return  # no body to truncate
    with pytest.raises(JuteError):
        jute.read_request(payload[:cut])
