"""ACLs and digest authentication on a real 3-member cluster (one cluster
for the module; each test works under its own path).

A node created with a digest ACL by one member's session is refused to
another member's unauthenticated session, for reads (checked locally) and
writes (checked in apply on every replica), and allowed once that session
has authenticated with the same credential.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from helpers import InProcessCluster, wait_until

import coord
from coord.acl import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Id,
    Permissions,
    make_acl,
    make_digest_acl,
    make_digest_acl_credential,
)
from coord.aio import AsyncCoordinator

pytestmark = pytest.mark.cluster

ROOT_DIGEST = make_digest_acl("root", "rootpw", all=True)
DEFAULT_ACL = [*READ_ACL_UNSAFE, ROOT_DIGEST]


@pytest.fixture(scope="module")
def acl_cluster() -> Iterator[InProcessCluster]:
    """Members 0 and 1 are plain; member 2 has a default ACL and a super user."""
    cluster = InProcessCluster(3)
    cluster.members[2] = coord.Coordinator(
        cluster.addresses[2],
        peers=cluster.addresses,
        session_timeout=5.0,
        default_acl=DEFAULT_ACL,
        super_digest=make_digest_acl_credential("super", "superpw"),
    )
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_digest_acl_refuses_other_sessions_until_they_authenticate(acl_cluster: InProcessCluster) -> None:
    owner, other = acl_cluster.members[0], acl_cluster.members[1]
    owner.create("/digest")
    owner.add_auth("digest", "alice:secret")
    alice_all = make_digest_acl("alice", "secret", all=True)
    owner.create("/digest/secret", b"s", acl=[alice_all])
    owner.create("/digest/secret/kid", b"k", acl=[alice_all])
    assert owner.get("/digest/secret")[0] == b"s"
    other.sync()
    # exists needs no permission; the parent's child list is open.
    assert other.exists("/digest/secret") is not None
    assert other.get_children("/digest") == ["secret"]
    with pytest.raises(coord.NoAuthError):
        other.get("/digest/secret")
    with pytest.raises(coord.NoAuthError):
        other.get_children("/digest/secret")
    with pytest.raises(coord.NoAuthError):
        other.get_acls("/digest/secret")
    with pytest.raises(coord.NoAuthError):  # ZooKeeper's getAllChildrenNumber needs READ too
        other.get_all_children_number("/digest/secret")
    assert isinstance(other.get_async("/digest/secret").exception(), coord.NoAuthError)
    assert isinstance(other.get_acls_async("/digest/secret").exception(), coord.NoAuthError)
    stat_before = owner.exists("/digest/secret")
    for write in (
        lambda: other.set("/digest/secret", b"x"),
        lambda: other.create("/digest/secret/new"),
        lambda: other.delete("/digest/secret/kid"),
        lambda: other.set_acls("/digest/secret", OPEN_ACL_UNSAFE),
    ):
        with pytest.raises(coord.NoAuthError):
            write()
    txn = other.transaction()
    txn.create("/digest/fine")
    txn.set_data("/digest/secret", b"x")
    results = txn.commit()
    assert isinstance(results[0], coord.RolledBackError) and isinstance(results[1], coord.NoAuthError)
    assert other.exists("/digest/fine") is None
    assert owner.exists("/digest/secret") == stat_before  # nothing changed anywhere
    assert owner.get_children("/digest/secret") == ["kid"]

    assert other.add_auth("digest", "alice:secret") is True
    assert other.get("/digest/secret")[0] == b"s"
    assert other.get_all_children_number("/digest/secret") == 1
    other.set("/digest/secret", b"by other")
    other.create("/digest/secret/new")
    acls, stat = other.get_acls("/digest/secret")
    assert acls == [alice_all] and isinstance(acls[0], ACL) and stat.version == 1
    owner.sync()
    assert owner.get("/digest/secret")[0] == b"by other"


def test_set_acls_versions_and_redaction(acl_cluster: InProcessCluster) -> None:
    admin, reader = acl_cluster.members[0], acl_cluster.members[1]
    admin.add_auth("digest", "bob:pw")
    bob_admin = make_digest_acl("bob", "pw", admin=True)
    admin.create("/versions", b"v")
    stat = admin.set_acls("/versions", [*READ_ACL_UNSAFE, bob_admin], version=0)
    assert stat.aversion == 1 and stat.version == 0
    with pytest.raises(coord.BadVersionError):
        admin.set_acls("/versions", OPEN_ACL_UNSAFE, version=0)
    with pytest.raises(coord.NoAuthError):  # bob may change the ACL, not the data
        admin.set("/versions", b"w")
    reader.sync()
    acls, seen = reader.get_acls("/versions")
    assert seen.aversion == 1
    # Without ADMIN the digest's hash is hidden, as ZooKeeper's getACL does.
    assert acls == [ACL(Permissions.READ, Id("world", "anyone")), ACL(Permissions.ADMIN, Id("digest", "bob:x"))]
    assert admin.get_acls("/versions")[0] == [*READ_ACL_UNSAFE, bob_admin]
    assert admin.set_acls("/versions", OPEN_ACL_UNSAFE).aversion == 2
    admin.set("/versions", b"w")


def test_bad_acls_and_auth_are_refused(acl_cluster: InProcessCluster) -> None:
    member = acl_cluster.members[0]
    member.create("/bad")
    with pytest.raises(coord.InvalidACLError, match="empty"):
        member.set_acls("/bad", [])
    with pytest.raises(coord.InvalidACLError, match="unknown ACL scheme"):
        member.create("/bad/x", acl=[make_acl("x509", "CN=me", all=True)])
    with pytest.raises(coord.AuthFailedError):
        member.add_auth("sasl", "whatever")
    # 'auth' needs an authenticated id; member 2's session has none yet
    # (test_default_acl_and_super_user, later in this module, adds one).
    fresh = acl_cluster.members[2]
    assert fresh._member.session_auth() == ()
    with pytest.raises(coord.InvalidACLError):  # decided in apply, from the session's ids
        fresh.create("/bad/mine", acl=CREATOR_ALL_ACL)
    assert member.exists("/bad/mine") is None and member.exists("/bad/x") is None


def test_default_acl_and_super_user(acl_cluster: InProcessCluster) -> None:
    special, plain = acl_cluster.members[2], acl_cluster.members[0]
    special.create("/defaults")
    with pytest.raises(coord.NoAuthError):  # /defaults got the default ACL: no CREATE for this session
        special.create("/defaults/a/b", b"d", makepath=True)
    special.add_auth("digest", "root:rootpw")
    created = special.create("/defaults/a/b", b"d", makepath=True)
    assert created == "/defaults/a/b"
    assert special.get_acls("/defaults/a")[0] == DEFAULT_ACL
    plain.sync()
    assert plain.get("/defaults/a/b")[0] == b"d"  # world READ
    with pytest.raises(coord.NoAuthError):
        plain.set("/defaults/a/b", b"no")
    special.create("/defaults/locked", acl=[make_digest_acl("nobody", "x", all=True)])
    with pytest.raises(coord.NoAuthError):
        special.get("/defaults/locked")
    special.add_auth("digest", "super:superpw")
    assert ("super", "") in special._member.session_auth()
    assert special.get("/defaults/locked")[0] == b""
    special.set("/defaults/a/b", b"super was here")


def test_asyncio_facade_mirrors_the_acl_calls(acl_cluster: InProcessCluster) -> None:
    async def scenario() -> None:
        amember = AsyncCoordinator.from_sync(acl_cluster.members[1])
        await amember.ensure_path("/aio-acl")
        await amember.create("/aio-acl/n", b"a", acl=[*READ_ACL_UNSAFE, make_digest_acl("carol", "c", all=True)])
        with pytest.raises(coord.NoAuthError):
            await amember.set("/aio-acl/n", b"x")
        assert await amember.add_auth("digest", "carol:c") is True
        stat = await amember.set_acls("/aio-acl/n", OPEN_ACL_UNSAFE)
        acls, seen = await amember.get_acls("/aio-acl/n")
        assert acls == OPEN_ACL_UNSAFE and seen == stat and stat.aversion == 1
        await amember.set("/aio-acl/n", b"x")

    asyncio.run(scenario())


def test_a_new_session_of_the_member_is_authenticated_again(acl_cluster: InProcessCluster) -> None:
    member = acl_cluster.members[0]
    member.add_auth("digest", "dave:d")
    dave = ("digest", make_digest_acl_credential("dave", "d"))
    old = member.session_id
    # What the member does after losing its session: open a new one.
    member._member._begin_session().result(timeout=10)
    wait_until(lambda: member.connected and member.session_id != old, 10, what="the new session")
    member.sync()  # the re-sent add_auth ops precede it in the session's FIFO order
    assert dave in member._member.session_auth()
    member.create("/again", acl=[make_digest_acl("dave", "d", all=True)])
    assert member.get("/again")[0] == b""


def test_members_check_any_sessions_access(acl_cluster: InProcessCluster) -> None:
    """The interface a ZooKeeper endpoint uses: checks for a given session id."""
    owner, other = acl_cluster.members[0], acl_cluster.members[1]
    owner.add_auth("digest", "erin:e")
    owner.create("/any", b"a", acl=[*READ_ACL_UNSAFE, make_digest_acl("erin", "e", all=True)])
    other.sync()
    member = other._member
    mine, theirs = owner.session_id, other.session_id
    member.check_access("/any", Permissions.WRITE, mine)  # erin's session, checked on another member
    member.check_access("/any", Permissions.READ, theirs)
    with pytest.raises(coord.NoAuthError):
        member.check_access("/any", Permissions.WRITE, theirs)
    with pytest.raises(coord.NoNodeError):
        member.check_access("/nowhere", Permissions.READ, mine)
    assert member.read_data("/any", None, session_id=mine)[0] is not None
    assert ("digest", make_digest_acl_credential("erin", "e")) in member.session_auth(mine)
    acl, _stat = member.read_acl("/any", session_id=theirs)  # type: ignore[misc]
    assert acl[1] == (Permissions.ALL, "digest", "erin:x")  # no ADMIN: the hash is hidden
