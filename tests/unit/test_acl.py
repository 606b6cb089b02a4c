"""coord.acl and ACL enforcement in coord.tree: ZooKeeper 3.8's ACL rules.

Every refused write is checked to change no node (data, Stat, ACL,
children): like ZooKeeper's error txns it only consumes a zxid.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kazoo import security as kazoo_security

from coord import acl as acl_mod
from coord import tree as tree_mod
from coord.acl import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    SUPER_ID,
    Id,
    Permissions,
    allowed,
    canonical_acl,
    fixup_acl,
    make_acl,
    make_digest_acl,
    make_digest_acl_credential,
    redact_digests,
    resolve_auth,
    to_acl_list,
)
from coord.errors import AuthFailedError, BadArgumentsError, ErrorCode, InvalidACLError, NoAuthError
from coord.ops import (
    add_auth_op,
    check_op,
    create_acl,
    create_op,
    delete_op,
    ensure_valid_op,
    multi_op,
    open_session_op,
    set_acl_op,
    set_op,
    validate_entry,
)
from coord.tree import Tree

OK = ErrorCode.OK
NO_AUTH = ErrorCode.NO_AUTH
INVALID_ACL = ErrorCode.INVALID_ACL
NO_NODE = ErrorCode.NO_NODE
BAD_VERSION = ErrorCode.BAD_VERSION
BAD_ARGS = ErrorCode.BAD_ARGUMENTS
RI = ErrorCode.RUNTIME_INCONSISTENCY
T0 = 1_700_000_000_000

ALICE = make_digest_acl_credential("alice", "secret")
BOB = make_digest_acl_credential("bob", "hunter2")
R, W, C, D, A = Permissions.READ, Permissions.WRITE, Permissions.CREATE, Permissions.DELETE, Permissions.ADMIN


# ------------------------------------------------------------------ pure: shapes and constructors


def test_digest_credential_is_zookeepers_and_kazoos() -> None:
    # ZooKeeper's DigestAuthenticationProvider.generateDigest("super:test"), a documented value.
    assert make_digest_acl_credential("super", "test") == "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
    assert make_digest_acl_credential("alice", "secret") == kazoo_security.make_digest_acl_credential("alice", "secret")
    assert acl_mod.digest_of("alice:secret") == ALICE


def test_our_acls_and_kazoos_are_interchangeable() -> None:
    ours = make_digest_acl("alice", "secret", read=True, admin=True)
    theirs = kazoo_security.make_digest_acl("alice", "secret", read=True, admin=True)
    assert ours == theirs and ours.perms == R | A and ours.id == Id("digest", ALICE)
    assert canonical_acl([ours]) == canonical_acl([theirs]) == ((R | A, "digest", ALICE),)
    assert OPEN_ACL_UNSAFE == kazoo_security.OPEN_ACL_UNSAFE
    assert CREATOR_ALL_ACL == kazoo_security.CREATOR_ALL_ACL
    assert READ_ACL_UNSAFE == kazoo_security.READ_ACL_UNSAFE
    assert canonical_acl(OPEN_ACL_UNSAFE) == OPEN_ACL
    assert to_acl_list(canonical_acl([theirs])) == [theirs]
    assert repr(ours) == repr(theirs)
    assert make_acl("ip", "10.0.0.0/8", all=True).acl_list == ["ALL"]
    assert make_acl("world", "anyone", read=True, delete=True).acl_list == ["READ", "DELETE"]
    assert canonical_acl([(R, "world", "anyone")]) == ((R, "world", "anyone"),)


@pytest.mark.parametrize(
    ("acls", "message"),
    [
        ([], "must not be empty"),
        ((), "must not be empty"),
        (ACL(31, Id("world", "anyone")), "must be a list or tuple"),
        ("world:anyone", "must be a list or tuple"),
        ([ACL(31, Id("sasl", "x"))], "unknown ACL scheme 'sasl'"),
        ([ACL(31, Id("super", ""))], "unknown ACL scheme 'super'"),
        ([ACL(32, Id("world", "anyone"))], "perms must be an int in 0..31"),
        ([ACL(-1, Id("world", "anyone"))], "perms must be an int in 0..31"),
        ([ACL(True, Id("world", "anyone"))], "perms must be an int"),
        ([ACL("31", Id("world", "anyone"))], "perms must be an int"),
        ([ACL(31, Id("world", "everyone"))], "only has the id 'anyone'"),
        ([ACL(31, Id("digest", "alice"))], "digest id must be 'user:base64digest'"),
        ([ACL(31, Id("digest", "alice:"))], "digest id must be"),
        ([ACL(31, Id("digest", "a:b:c"))], "digest id must be"),
        ([ACL(31, Id("ip", "10.0.0.1/33"))], "an ip id must be"),
        ([ACL(31, Id("ip", "300.0.0.1"))], "an ip id must be"),
        ([ACL(31, Id("ip", "10.0.0.0/"))], "an ip id must be"),
        ([ACL(31, Id("world", 7))], "must be str"),
        ([object()], "an ACL entry must be"),
    ],
)
def test_invalid_acls_raise_naming_the_problem(acls: object, message: str) -> None:
    with pytest.raises(InvalidACLError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        canonical_acl(acls)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert acl_mod.acl_problem(()) is not None


def test_valid_odd_ids_are_accepted_as_zookeeper_does() -> None:
    for entry in [(0, "world", "anyone"), (R, "digest", ":abc"), (R, "ip", "::1"), (R, "ip", "fe80::/10")]:
        assert canonical_acl([entry]) == (entry,)
    assert canonical_acl([(R, "auth", "whatever")]) == ((R, "auth", "whatever"),)


# ------------------------------------------------------------------ pure: the check


@pytest.mark.parametrize(
    ("acl", "ids", "perm", "expected"),
    [
        (OPEN_ACL, (), R, True),
        (((R, "world", "anyone"),), (), W, False),
        (((R, "world", "anyone"),), (), R | W, True),  # any bit, as ZooKeeper's checkACL
        (((R | W, "digest", ALICE),), (), R, False),
        (((R | W, "digest", ALICE),), (("digest", ALICE),), W, True),
        (((R | W, "digest", ALICE),), (("digest", BOB),), W, False),
        (((R | W, "digest", ALICE),), (("digest", ALICE),), A, False),
        (((R, "digest", ALICE), (A, "digest", BOB)), (("digest", BOB),), A, True),
        (((R, "ip", "10.1.2.3"),), (("ip", "10.1.2.3"),), R, True),
        (((R, "ip", "10.1.2.3"),), (("ip", "10.1.2.4"),), R, False),
        (((R, "ip", "10.1.0.0/16"),), (("ip", "10.1.200.7"),), R, True),
        (((R, "ip", "10.1.0.0/16"),), (("ip", "10.2.0.1"),), R, False),
        (((R, "ip", "fd00::/8"),), (("ip", "fd12::1"),), R, True),
        (((R, "ip", "fd00::/8"),), (("ip", "10.0.0.1"),), R, False),
        (((R, "ip", "10.1.2.3"),), (("digest", "10.1.2.3"),), R, False),  # schemes must match
        (((R, "digest", ALICE),), (SUPER_ID,), A, True),  # super passes everything
        ((), (), A, True),  # ZooKeeper: an empty ACL checks nothing
    ],
)
def test_allowed_follows_zookeepers_check(acl: tuple, ids: tuple, perm: int, expected: bool) -> None:
    assert allowed(acl, ids, perm) is expected
    if not expected:
        with pytest.raises(NoAuthError):
            acl_mod.check(acl, ids, perm, "/x")


_schemes = st.sampled_from(["digest", "ip", "world"])
_digests = st.sampled_from([ALICE, BOB, "carol:xyz"])
_ips = st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.0/8", "192.168.1.0/24", "192.168.1.9"])


@st.composite
def _entries(draw: st.DrawFn) -> tuple[int, str, str]:
    scheme = draw(_schemes)
    ident = {"digest": draw(_digests), "ip": draw(_ips), "world": "anyone"}[scheme]
    return (draw(st.integers(0, 31)), scheme, ident)


_ids = st.lists(
    st.one_of(
        st.tuples(st.just("digest"), _digests),
        st.tuples(st.just("ip"), st.sampled_from(["10.0.0.1", "10.0.0.2", "192.168.1.9", "172.16.0.1"])),
    ),
    max_size=3,
).map(lambda ids: tuple(sorted(set(ids))))


@settings(max_examples=300, deadline=None)
@given(acl=st.lists(_entries(), min_size=1, max_size=4).map(tuple), ids=_ids, perm=st.sampled_from([R, W, C, D, A]))
def test_allowed_matches_a_reference_model(acl: tuple, ids: tuple, perm: int) -> None:
    import ipaddress

    def grants(entry: tuple[int, str, str], auth: tuple[str, str]) -> bool:
        perms, scheme, ident = entry
        if not perms & perm or scheme != auth[0]:
            return False
        if scheme == "ip":
            return ipaddress.ip_address(auth[1]) in ipaddress.ip_network(ident, strict=False)
        return ident == auth[1]

    expected = any(e[0] & perm and e[1] == "world" for e in acl) or any(grants(e, i) for e in acl for i in ids)
    assert allowed(acl, ids, perm) is expected
    # More ids never take a permission away; the super id grants everything.
    assert allowed(acl, tuple(sorted({*ids, ("digest", "zed:q")})), perm) >= expected
    assert allowed(acl, tuple(sorted({*ids, SUPER_ID})), perm)


def test_fixup_expands_auth_to_authenticated_ids_and_drops_duplicates() -> None:
    ids = (("digest", ALICE), ("digest", BOB), ("ip", "10.0.0.1"))
    assert fixup_acl(((31, "auth", ""),), ids) == ((31, "digest", ALICE), (31, "digest", BOB))
    assert fixup_acl(((31, "auth", ""),), (("ip", "10.0.0.1"),)) is None  # ip does not authenticate
    assert fixup_acl(((31, "auth", ""),), ()) is None
    acl = ((R, "world", "anyone"), (R, "world", "anyone"), (A, "auth", ""))
    assert fixup_acl(acl, (("digest", ALICE),)) == ((R, "world", "anyone"), (A, "digest", ALICE))
    assert fixup_acl(OPEN_ACL, ()) is OPEN_ACL


def test_resolve_auth_hashes_the_password_and_knows_only_digest() -> None:
    assert resolve_auth("digest", "alice:secret") == (("digest", ALICE),)
    assert resolve_auth("digest", b"alice:secret") == (("digest", ALICE),)
    superuser = make_digest_acl_credential("super", "pw")
    assert resolve_auth("digest", "super:pw", super_digest=superuser) == (("digest", superuser), SUPER_ID)
    wrong = make_digest_acl_credential("super", "nope")
    assert resolve_auth("digest", "super:nope", super_digest=superuser) == (("digest", wrong),)
    for scheme, credential in [("sasl", "x"), ("ip", "10.0.0.1"), ("world", "anyone"), ("digest", "nocolon")]:
        with pytest.raises(AuthFailedError):
            resolve_auth(scheme, credential)


def test_redaction_hides_digest_hashes_only() -> None:
    acl = ((R, "digest", ALICE), (R, "world", "anyone"), (R, "ip", "10.0.0.1"))
    assert redact_digests(acl) == ((R, "digest", "alice:x"), (R, "world", "anyone"), (R, "ip", "10.0.0.1"))


# ------------------------------------------------------------------ ops


def test_create_op_carries_a_canonical_acl_only_when_given() -> None:
    assert create_op("/a") == ("create", "/a", b"", 0) and create_acl(create_op("/a")) is None
    op = create_op("/a", acl=[make_digest_acl("alice", "secret", all=True)])
    assert op == ("create", "/a", b"", 0, ((31, "digest", ALICE),))
    assert create_acl(op) == ((31, "digest", ALICE),)
    ttl = create_op("/t", ttl=5000, acl=OPEN_ACL_UNSAFE)
    assert ttl == ("create", "/t", b"", 8, 5000, OPEN_ACL) and create_acl(ttl) == OPEN_ACL
    assert create_acl(create_op("/t", ttl=5000)) is None
    with pytest.raises(InvalidACLError, match="empty"):
        create_op("/a", acl=[])
    with pytest.raises(InvalidACLError, match="unknown ACL scheme"):
        set_acl_op("/a", [(31, "x509", "CN=me")])
    assert set_acl_op("/a", OPEN_ACL_UNSAFE, 3) == ("set_acl", "/a", OPEN_ACL, 3)
    assert add_auth_op("digest", ALICE) == ("add_auth", "digest", ALICE)


@pytest.mark.parametrize(
    ("op", "message"),
    [
        (("create", "/a", b"", 0, "acl"), "takes 3 argument(s), got 4"),
        (("create", "/a", b"", 0, ((31, "world"),)), "(perms, scheme, id) tuple"),
        (("create", "/a", b"", 0, ((True, "world", "anyone"),)), "int perms"),
        (("set_acl", "/a", [], -1), "must be a tuple"),
        (("set_acl", "/a", (), "1"), "version must be an int"),
        (("add_auth", "digest", "nocolon"), "digest id must be"),
        (("add_auth", "world", "anyone"), "unknown authenticated id scheme"),
        (("add_auth", "super", "x"), "super id"),
        (("multi", (("set_acl", "/a", OPEN_ACL, -1),)), "not allowed in a multi"),
    ],
)
def test_malformed_acl_ops_are_refused_structurally(op: tuple, message: str) -> None:
    with pytest.raises((BadArgumentsError, TypeError), match=message.replace("(", r"\(").replace(")", r"\)")):
        ensure_valid_op(op)


def test_add_auth_needs_a_session() -> None:
    assert validate_entry((1, 0, 0, 0, T0, ("add_auth", "digest", ALICE))) is not None
    assert validate_entry((1, 5, 1, 0, T0, ("add_auth", "digest", ALICE))) is None


# ------------------------------------------------------------------ tree enforcement


class Driver:
    """Feeds entries to a tree, numbering each session's requests."""

    def __init__(self) -> None:
        self.tree = Tree()
        self.rid: dict[int, int] = {}

    def run(self, op: tuple, session: int = 0) -> tuple[int, object]:
        rid = 0
        if session:
            rid = self.rid[session] = self.rid.get(session, 0) + 1
        applied = self.tree.apply((1, session, rid, 0, T0, op))
        self.tree.check_invariants()
        return applied.result

    def ok(self, op: tuple, session: int = 0) -> object:
        code, value = self.run(op, session)
        assert code == OK, (op, code)
        return value


def nodes_view(tree: Tree) -> dict[str, object]:
    """Every node's data, Stat, ACL and children: what a refused op must not change."""
    return {path: (tree.get(path), tree.get_acl(path), tree.children(path)) for path in tree.walk("/")}


ALICE_S, BOB_S, EVE_S = 11, 22, 33


@pytest.fixture
def d() -> Driver:
    """/locked: alice has ALL, bob READ|CREATE; /locked/kid exists. Eve has no ids."""
    driver = Driver()
    for session in (ALICE_S, BOB_S, EVE_S):
        driver.ok(open_session_op(30_000), session)
    driver.ok(add_auth_op("digest", ALICE), ALICE_S)
    driver.ok(add_auth_op("digest", BOB), BOB_S)
    locked = ((31, "digest", ALICE), (R | C, "digest", BOB))
    driver.ok(create_op("/locked", b"v", acl=locked), ALICE_S)
    driver.ok(create_op("/locked/kid", b"k", acl=locked), ALICE_S)
    driver.ok(create_op("/open", b"o"), EVE_S)
    return driver


@pytest.mark.parametrize(
    ("op", "session", "code"),
    [
        (create_op("/locked/new"), EVE_S, NO_AUTH),
        (delete_op("/locked/kid"), EVE_S, NO_AUTH),
        (delete_op("/locked/kid"), BOB_S, NO_AUTH),  # bob lacks DELETE on the parent
        (delete_op("/locked/missing"), BOB_S, NO_AUTH),  # ZooKeeper checks the parent before the node
        (set_op("/locked", b"x"), EVE_S, NO_AUTH),
        (set_op("/locked", b"x"), BOB_S, NO_AUTH),
        (set_op("/locked", b"x", version=7), BOB_S, NO_AUTH),  # auth before version
        (set_acl_op("/locked", OPEN_ACL_UNSAFE), BOB_S, NO_AUTH),
        (set_acl_op("/locked", OPEN_ACL_UNSAFE, 5), ALICE_S, BAD_VERSION),  # aversion is 0
        (set_acl_op("/missing", OPEN_ACL_UNSAFE), ALICE_S, NO_NODE),
        (("set_acl", "/locked", (), -1), ALICE_S, INVALID_ACL),
        (("set_acl", "/missing", ((31, "auth", ""),), -1), EVE_S, INVALID_ACL),  # fixupACL comes first
        (("create", "/missing/x", b"", 0, ((31, "auth", ""),)), EVE_S, INVALID_ACL),
        (("create", "/open/x", b"", 0, ((31, "world", "nobody"),)), EVE_S, INVALID_ACL),
        (("create", "/open/x", b"", 0, ((99, "world", "anyone"),)), EVE_S, INVALID_ACL),
        (multi_op([set_op("/open", b"1"), check_op("/locked", -1)]), EVE_S, NO_AUTH),
        (multi_op([create_op("/open/m"), set_op("/locked/kid", b"m")]), BOB_S, NO_AUTH),
        (multi_op([create_op("/open/m"), create_op("/open/m2", acl=CREATOR_ALL_ACL)]), EVE_S, INVALID_ACL),
    ],
)
def test_a_refused_op_changes_no_node(d: Driver, op: tuple, session: int, code: int) -> None:
    before, zxid = nodes_view(d.tree), d.tree.zxid
    result = d.run(op, session)
    assert result[0] == code
    assert nodes_view(d.tree) == before
    assert d.tree.zxid == zxid + 1  # a failed write is an error txn, as in ZooKeeper
    if op[0] == "multi":
        codes = [sub[0] for sub in result[1]]  # type: ignore[union-attr]
        assert codes == [OK, code], "ZooKeeper's per-op encoding"


def test_permitted_ops_succeed_with_the_right_ids(d: Driver) -> None:
    assert d.run(create_op("/locked/bobs"), BOB_S)[0] == OK  # CREATE
    assert d.run(check_op("/locked", 0), BOB_S)[0] == OK  # READ
    d.ok(set_op("/locked", b"new"), ALICE_S)
    d.ok(delete_op("/locked/bobs"), ALICE_S)
    assert d.tree.permitted("/locked", R, BOB_S) is True
    assert d.tree.permitted("/locked", W, BOB_S) is False
    assert d.tree.permitted("/locked", R, EVE_S) is False
    assert d.tree.permitted("/missing", R, EVE_S) is None
    # After authenticating as alice, eve may do anything alice may.
    before = d.tree.zxid
    d.ok(add_auth_op("digest", ALICE), EVE_S)
    assert d.tree.zxid == before  # auth is not a txn
    assert d.tree.session_auth(EVE_S) == (("digest", ALICE),)
    d.ok(set_op("/locked/kid", b"eve"), EVE_S)
    d.ok(delete_op("/locked/kid"), EVE_S)


def test_the_system_session_is_exempt(d: Driver) -> None:
    d.ok(set_op("/locked", b"sys"))
    d.ok(create_op("/locked/sys"))
    d.ok(set_acl_op("/locked/sys", READ_ACL_UNSAFE))
    d.ok(delete_op("/locked/sys"))
    assert d.tree.permitted("/locked", A, 0) is True


def test_set_acl_bumps_only_aversion_and_fires_nothing(d: Driver) -> None:
    _, before = d.tree.get_acl("/locked")  # type: ignore[misc]
    rid = d.rid[ALICE_S] = d.rid[ALICE_S] + 1
    applied = d.tree.apply((1, ALICE_S, rid, 0, T0 + 7, set_acl_op("/locked", READ_ACL_UNSAFE, 0)))
    assert applied.result[0] == OK and applied.events == ()
    stat = applied.result[1]
    assert stat.aversion == 1 and stat.acl_version == 1
    assert stat._replace(aversion=0) == before  # mzxid, mtime, version untouched
    assert d.tree.get_acl("/locked") == (((R, "world", "anyone"),), stat)
    d.tree.check_invariants()


def test_auth_acl_expands_to_the_creators_ids(d: Driver) -> None:
    d.ok(add_auth_op("ip", "10.0.0.9"), ALICE_S)
    d.ok(create_op("/open/mine", acl=CREATOR_ALL_ACL), ALICE_S)
    assert d.tree.get_acl("/open/mine")[0] == ((31, "digest", ALICE),)  # type: ignore[index]
    assert d.run(create_op("/open/eves", acl=CREATOR_ALL_ACL), EVE_S)[0] == INVALID_ACL
    # A tuple of both at once: ZooKeeper dedups the list it was given, then expands.
    d.ok(set_acl_op("/open/mine", [(R, "auth", ""), (R, "auth", ""), (A, "world", "anyone")]), ALICE_S)
    assert d.tree.get_acl("/open/mine")[0] == ((R, "digest", ALICE), (A, "world", "anyone"))  # type: ignore[index]


def test_default_and_equal_acls_are_shared(d: Driver) -> None:
    for i in range(50):
        d.ok(create_op(f"/open/d{i}"))
        d.ok(create_op(f"/open/c{i}", acl=[make_digest_acl("alice", "secret", all=True)]), ALICE_S)
    nodes = d.tree._nodes
    assert all(nodes[f"/open/d{i}"].acl is OPEN_ACL for i in range(50))
    first = nodes["/open/c0"].acl
    assert all(nodes[f"/open/c{i}"].acl is first for i in range(50))
    assert "acl" in tree_mod._Node.__slots__ and not hasattr(nodes["/"], "__dict__")


def test_snapshots_carry_acls_aversion_and_auth(d: Driver) -> None:
    d.ok(set_acl_op("/locked/kid", OPEN_ACL_UNSAFE), ALICE_S)
    data = d.tree.snapshot()
    restored = Tree.restore(data)
    restored.check_invariants()
    assert restored.snapshot() == data
    assert nodes_view(restored) == nodes_view(d.tree)
    assert restored.session_auth(ALICE_S) == (("digest", ALICE),)
    assert restored._nodes["/locked/kid"].acl is OPEN_ACL
    # Equal trees give equal bytes however ACL tuples are shared.
    for node in restored._nodes.values():
        node.acl = tuple(list(node.acl))
    assert restored.snapshot() == data


def test_the_intern_table_is_bounded(d: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree_mod, "_ACL_INTERN_LIMIT", 3)
    for i in range(10):
        d.ok(create_op(f"/open/u{i}", acl=[(R, "ip", f"10.0.0.{i}")]), EVE_S)
    assert len(d.tree._acls) <= 3
    assert [d.tree.get_acl(f"/open/u{i}")[0] for i in range(10)] == [((R, "ip", f"10.0.0.{i}"),) for i in range(10)]  # type: ignore[index]


def test_format_1_snapshots_still_restore() -> None:
    # A format-1 snapshot: no sessions, the root and /a (8 bytes of data), no ACLs.
    header = struct.pack("<8sHqqII", b"COORDTRE", 1, 5, T0, 0, 2)
    node = struct.Struct("<IqqqqiiqqI")
    root = node.pack(1, 0, 0, 0, 0, 0, 1, 5, 0, 0) + b"/"
    child = node.pack(2, 5, 5, T0, T0, 0, 0, 5, 0, 8) + b"/a" + b"contents"
    tree = Tree.restore(header + root + child)
    tree.check_invariants()
    assert tree.get("/a")[0] == b"contents"  # type: ignore[index]
    assert tree.get_acl("/a") == (OPEN_ACL, tree.stat("/a"))
    assert Tree.restore(tree.snapshot()).snapshot() == tree.snapshot()


def test_corrupt_acl_tables_are_refused(d: Driver) -> None:
    data = d.tree.snapshot()
    entry = struct.pack("<I", 31) + struct.pack("<I", 6) + b"digest"
    bad_perm = data.replace(entry, struct.pack("<I", 99) + entry[4:], 1)
    assert bad_perm != data
    with pytest.raises(ValueError, match="corrupt coord snapshot"):
        Tree.restore(bad_perm)
