"""coord.tree: ZooKeeper 3.8 semantics, op by op, plus sessions and snapshots."""

from __future__ import annotations

import ast
import pathlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coord.errors import ErrorCode
from coord.ops import (
    cancel_op,
    check_op,
    close_session_op,
    create_op,
    delete_op,
    expire_session_op,
    keepalive_op,
    multi_op,
    open_session_op,
    set_op,
    sync_op,
)
from coord.tree import ENDED_SESSION_MEMORY_MS, MAX_ENDED_SESSIONS, Applied, SessionInfo, Tree
from coord.types import ZnodeStat

OK = ErrorCode.OK
NO_NODE = ErrorCode.NO_NODE
NODE_EXISTS = ErrorCode.NODE_EXISTS
BAD_VERSION = ErrorCode.BAD_VERSION
NOT_EMPTY = ErrorCode.NOT_EMPTY
NO_KIDS = ErrorCode.NO_CHILDREN_FOR_EPHEMERALS
EXPIRED = ErrorCode.SESSION_EXPIRED
BAD_ARGS = ErrorCode.BAD_ARGUMENTS
RI = ErrorCode.RUNTIME_INCONSISTENCY
T0 = 1_700_000_000_000


class Driver:
    """Feeds entries to a tree, numbering each session's requests."""

    def __init__(self, tree: Tree | None = None) -> None:
        self.tree = tree or Tree()
        self.last_rid: dict[int, int] = {}
        self.time_ms = T0

    def run(self, op: tuple, session: int = 0, *, time_ms: int | None = None, ack: int = 0) -> Applied:
        rid = 0
        if session:
            rid = self.last_rid[session] = self.last_rid.get(session, 0) + 1
        return self.send(session, rid, op, time_ms=time_ms, ack=ack)

    def send(self, session: int, rid: int, op: tuple, *, time_ms: int | None = None, ack: int = 0) -> Applied:
        time_ms = self.time_ms if time_ms is None else time_ms
        applied = self.tree.apply((1, session, rid, ack, time_ms, op))
        self.tree.check_invariants()
        return applied

    def ok(self, op: tuple, session: int = 0, **kw: int) -> object:
        applied = self.run(op, session, **kw)
        assert applied.result[0] == OK, applied
        return applied.result[1]

    def code(self, op: tuple, session: int = 0) -> int:
        return self.run(op, session).result[0]


@pytest.fixture
def d() -> Driver:
    return Driver()


def state(tree: Tree) -> dict:
    """Everything observable through reads, for before/after comparisons."""
    out: dict = {"sessions": {s: tree.session_info(s) for s in tree.session_ids()}}
    pending = ["/"]
    while pending:
        path = pending.pop()
        out[path] = (tree.get(path), tree.children(path))
        pending += [("" if path == "/" else path) + "/" + name for name in tree.children(path) or []]
    return out


# ----------------------------------------------------------------- new tree


def test_new_tree_has_only_the_root() -> None:
    tree = Tree()
    assert tree.zxid == 0 and tree.last_time_ms == 0 and tree.node_count() == 1
    assert tree.get("/") == (b"", ZnodeStat(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
    assert tree.children("/") == [] and tree.session_ids() == []
    assert tree.get("/a") is None and tree.stat("/a") is None and tree.children("/a") is None
    tree.check_invariants()


# -------------------------------------------------------------------- create


def test_create_sets_zookeepers_stat_and_touches_the_parent(d: Driver) -> None:
    d.ok(create_op("/p", b"pp"))
    parent_before = d.tree.stat("/p")
    applied = d.run(create_op("/p/c", b"hello"), time_ms=T0 + 5)
    assert applied.zxid == 2 and d.tree.zxid == 2
    path, stat = applied.result[1]
    assert path == "/p/c"
    assert stat == ZnodeStat(2, 2, T0 + 5, T0 + 5, 0, 0, 0, 0, 5, 0, 2)
    assert d.tree.get("/p/c") == (b"hello", stat)
    parent = d.tree.stat("/p")
    assert parent.cversion == parent_before.cversion + 1
    assert parent.pzxid == 2 and parent.numChildren == 1
    assert (parent.mzxid, parent.version, parent.mtime) == (1, 0, T0)  # data untouched
    assert applied.events == (("created", "/p/c"), ("child", "/p"))
    assert d.tree.children("/p") == ["c"]


@pytest.mark.parametrize(
    ("setup", "op", "session", "code"),
    [
        ([], create_op("/a/b"), 0, NO_NODE),
        ([create_op("/a")], create_op("/a"), 0, NODE_EXISTS),
        ([], create_op("/"), 0, NODE_EXISTS),
        ([create_op("/e", ephemeral=True)], create_op("/e/x"), 1, NO_KIDS),
        ([create_op("/e", ephemeral=True)], create_op("/e/", sequence=True), 1, NO_KIDS),
        ([], create_op("/x", ephemeral=True), 0, EXPIRED),  # the system has no session
        # ZooKeeper's order: session, parent, exists, ephemeral parent
        ([], create_op("/missing/x", ephemeral=True), 0, EXPIRED),
        ([create_op("/e", ephemeral=True)], create_op("/e/x/y"), 1, NO_NODE),
    ],
)
def test_create_errors(d: Driver, setup: list, op: tuple, session: int, code: int) -> None:
    d.ok(open_session_op(1000), 1)
    for step in setup:
        d.ok(step, 1)
    before, zxid = state(d.tree), d.tree.zxid
    applied = d.run(op, session)
    assert applied.result == (code, None)
    assert applied.events == ()
    assert applied.zxid == zxid + 1  # a failed write still takes a zxid, like ZK's error txn
    before["sessions"][1] = before["sessions"][1]._replace(activity=before["sessions"][1].activity + (session == 1))
    assert state(d.tree) == before


# ------------------------------------------------------------------- delete


def test_delete_updates_parent_like_zookeeper(d: Driver) -> None:
    d.ok(create_op("/p"))
    d.ok(create_op("/p/a"))
    d.ok(create_op("/p/b"))
    before = d.tree.stat("/p")
    applied = d.run(delete_op("/p/a", 0))
    assert applied.result == (OK, None)
    assert applied.events == (("deleted", "/p/a"), ("child", "/p"))
    after = d.tree.stat("/p")
    assert after.cversion == before.cversion + 1  # what clients see: creates + deletes
    assert after.pzxid == applied.zxid and after.numChildren == 1
    assert after.mzxid == before.mzxid and after.version == before.version
    assert d.tree.get("/p/a") is None and d.tree.children("/p") == ["b"]


@pytest.mark.parametrize(
    ("op", "code"),
    [
        (delete_op("/"), BAD_ARGS),  # ZooKeeper refuses to delete the root
        (delete_op("/nope"), NO_NODE),
        (delete_op("/nope/deeper"), NO_NODE),
        (delete_op("/p/leaf", 3), BAD_VERSION),
        (delete_op("/p"), NOT_EMPTY),
        (delete_op("/p", 7), BAD_VERSION),  # version is checked before children
    ],
)
def test_delete_errors(d: Driver, op: tuple, code: int) -> None:
    d.ok(create_op("/p"))
    d.ok(create_op("/p/leaf"))
    before = state(d.tree)
    applied = d.run(op)
    assert applied.result == (code, None) and applied.events == ()
    assert state(d.tree) == before


# ---------------------------------------------------------------- set, check


def test_set_bumps_version_mzxid_mtime(d: Driver) -> None:
    d.ok(create_op("/a", b"1"), time_ms=T0)
    stat = d.ok(set_op("/a", b"22"), time_ms=T0 + 9)
    assert stat == ZnodeStat(1, 2, T0, T0 + 9, 1, 0, 0, 0, 2, 0, 1)
    assert d.tree.get("/a") == (b"22", stat)
    assert d.ok(set_op("/a", b"3", 1)).version == 2
    assert d.run(set_op("/a", b"x")).events == (("changed", "/a"),)
    assert d.tree.stat("/").cversion == 1  # set never touches the parent


@pytest.mark.parametrize(
    ("op", "code"),
    [
        (set_op("/nope", b""), NO_NODE),
        (set_op("/a", b"", 1), BAD_VERSION),
        (check_op("/nope", 0), NO_NODE),
        (check_op("/a", 1), BAD_VERSION),
    ],
)
def test_set_and_check_errors(d: Driver, op: tuple, code: int) -> None:
    d.ok(create_op("/a"))
    before = state(d.tree)
    assert d.run(op).result == (code, None)
    assert state(d.tree) == before


def test_check_and_root_set(d: Driver) -> None:
    assert d.run(check_op("/", 0)).result == (OK, None)
    assert d.run(check_op("/", -1)).result == (OK, None)
    assert d.ok(set_op("/", b"root")).version == 1  # ZooKeeper allows data on "/"


def test_version_wraps_like_a_java_int_and_skips_minus_one(d: Driver) -> None:
    d.ok(create_op("/a"))
    d.tree._nodes["/a"].version = (1 << 31) - 1
    assert d.ok(set_op("/a", b"", (1 << 31) - 1)).version == -(1 << 31)
    d.tree._nodes["/a"].version = -2
    assert d.ok(set_op("/a", b"")).version == 0  # ZOOKEEPER-4743


# --------------------------------------------------------------- sequential


def test_sequence_numbers_count_creates_not_deletes(d: Driver) -> None:
    d.ok(create_op("/q"))
    names = [d.ok(create_op("/q/lock-", sequence=True))[0] for _ in range(3)]
    assert names == ["/q/lock-0000000000", "/q/lock-0000000001", "/q/lock-0000000002"]
    for name in names:
        d.ok(delete_op(name))
    # ZooKeeper derives the suffix from the parent's create counter: deletes
    # bump the visible cversion (now 6) but not the sequence.
    assert d.tree.stat("/q").cversion == 6
    assert d.ok(create_op("/q/lock-", sequence=True))[0] == "/q/lock-0000000003"
    d.ok(create_op("/q/plain"))  # any child create advances the counter
    assert d.ok(create_op("/q/", sequence=True))[0] == "/q/0000000005"
    assert d.tree.stat("/q").cversion == 9 and d.tree.stat("/q").numChildren == 3


def test_sequence_under_root_and_sequential_ephemeral(d: Driver) -> None:
    d.ok(open_session_op(1000), 7)
    path, stat = d.ok(create_op("/", sequence=True))
    assert path == "/0000000000"
    path, stat = d.ok(create_op("/e-", ephemeral=True, sequence=True), 7)
    assert path == "/e-0000000001" and stat.ephemeralOwner == 7
    assert d.tree.session_info(7).ephemerals == ("/e-0000000001",)


def test_sequence_counter_wraps_negative_like_zookeeper(d: Driver) -> None:
    d.ok(create_op("/q"))
    d.tree._nodes["/q"].ccount = (1 << 31) - 1
    assert d.ok(create_op("/q/s", sequence=True))[0] == "/q/s2147483647"
    assert d.ok(create_op("/q/s", sequence=True))[0] == "/q/s-2147483648"
    # 2 * C - N in Java int arithmetic: 2 * (-2**31 + 1) - 2 wraps to 0
    assert d.tree.stat("/q").cversion == 0


# --------------------------------------------------------- time and zxid


def test_time_never_goes_backwards(d: Driver) -> None:
    d.ok(create_op("/a"), time_ms=T0 + 100)
    stat = d.ok(set_op("/a", b"x"), time_ms=T0)  # proposer clock went back
    assert stat.mtime == T0 + 100 and d.tree.last_time_ms == T0 + 100
    _, stat = d.ok(create_op("/b"), time_ms=T0 + 200)
    assert stat.ctime == T0 + 200 and d.tree.last_time_ms == T0 + 200


def test_which_entries_take_a_zxid(d: Driver) -> None:
    assert d.run(open_session_op(1000), 1).zxid == 1
    assert d.run(keepalive_op(), 1).zxid == 1
    assert d.run(sync_op()).zxid == 1
    assert d.run(sync_op(), 1).zxid == 1
    assert d.run(check_op("/nope", 0)).zxid == 2  # failed: still a txn
    assert d.run(multi_op([create_op("/a"), create_op("/b")])).zxid == 3  # one per multi
    assert d.tree.stat("/a").czxid == d.tree.stat("/b").czxid == 3
    assert d.run(cancel_op(99), 1).zxid == 4
    assert d.tree.apply(("garbage",)).zxid == 4  # invalid: nothing applied
    assert d.send(2, 1, sync_op()).zxid == 4  # session not open: nothing applied
    assert d.send(1, 1, open_session_op(1000)).zxid == 4  # duplicate
    assert d.run(close_session_op(), 1).zxid == 5
    assert d.tree.zxid == 5


# -------------------------------------------------------------------- multi


def test_multi_success_results_events_and_one_zxid(d: Driver) -> None:
    d.ok(create_op("/x", b"old"))
    applied = d.run(
        multi_op(
            [
                create_op("/m"),
                create_op("/m/", sequence=True),
                create_op("/m/", sequence=True),
                set_op("/x", b"new", 0),
                check_op("/x", 1),
                delete_op("/m/0000000000"),
            ]
        )
    )
    code, results = applied.result
    assert code == OK and applied.zxid == 2
    assert [r[0] for r in results] == [OK] * 6
    assert results[0][1][0] == "/m"
    assert results[1][1][0] == "/m/0000000000" and results[2][1][0] == "/m/0000000001"
    assert results[3][1].version == 1 and results[3][1].mzxid == 2
    assert results[4] == (OK, None) and results[5] == (OK, None)
    assert applied.events == (
        ("created", "/m"),
        ("child", "/"),
        ("created", "/m/0000000000"),
        ("child", "/m"),
        ("created", "/m/0000000001"),
        ("child", "/m"),
        ("changed", "/x"),
        ("deleted", "/m/0000000000"),
        ("child", "/m"),
    )
    assert d.tree.children("/m") == ["0000000001"]
    assert d.tree.stat("/m").cversion == 3


def _history(driver: Driver) -> None:
    driver.ok(open_session_op(5000), 1)
    driver.ok(create_op("/a", b"a"))
    driver.ok(create_op("/a/s-", sequence=True))
    driver.ok(create_op("/e", ephemeral=True), 1)
    driver.ok(set_op("/a", b"aa"))


FAILING_MULTIS = [
    # (sub-ops, index of the failing one, its code)
    ([create_op("/n"), create_op("/n")], 1, NODE_EXISTS),
    ([create_op("/a/s-", sequence=True), set_op("/a", b"", 0), delete_op("/a")], 1, BAD_VERSION),
    ([delete_op("/e"), create_op("/e/child")], 1, NO_NODE),
    ([delete_op("/e"), create_op("/e", ephemeral=True), create_op("/e/x")], 2, NO_KIDS),
    ([set_op("/a", b"x"), delete_op("/a/s-0000000000"), delete_op("/a"), check_op("/a", 0)], 3, NO_NODE),
    ([create_op("/z"), delete_op("/"), create_op("/y")], 1, BAD_ARGS),
    ([create_op("/z", ephemeral=True)], 0, EXPIRED),
    ([check_op("/a", 5), create_op("/z")], 0, BAD_VERSION),
]


@pytest.mark.parametrize(("subops", "failing", "code"), FAILING_MULTIS)
def test_failed_multi_reports_per_op_results_and_changes_nothing(subops: list, failing: int, code: int) -> None:
    session = 0 if code == EXPIRED else 1
    tried, reference = Driver(), Driver()
    _history(tried)
    _history(reference)
    applied = tried.run(multi_op(subops), session)
    expected = ((OK, None),) * failing + ((code, None),) + ((RI, None),) * (len(subops) - failing - 1)
    assert applied.result == (code, expected)
    assert applied.events == ()
    # byte-identical to a tree where a plain failed op took the same zxid
    # (then session 1 acknowledges everything, so stored results match too)
    reference.run(check_op("/nope", 0), session)
    for driver in (tried, reference):
        driver.send(1, 10, sync_op(), ack=10)
    assert tried.tree.snapshot() == reference.tree.snapshot()


def test_empty_multi_commits_like_zookeeper(d: Driver) -> None:
    applied = d.run(multi_op([]))
    assert applied.result == (OK, ()) and applied.zxid == 1 and applied.events == ()


def test_multi_sees_its_own_earlier_changes(d: Driver) -> None:
    d.ok(open_session_op(1000), 1)
    results = d.ok(
        multi_op([create_op("/p"), create_op("/p/e", ephemeral=True), delete_op("/p/e"), delete_op("/p")]), 1
    )
    assert len(results) == 4
    assert d.tree.children("/") == [] and d.tree.session_info(1).ephemerals == ()
    assert d.tree.stat("/").cversion == 2


# ----------------------------------------------------------------- sessions


def test_open_session_is_idempotent_and_counts_activity(d: Driver) -> None:
    assert d.run(open_session_op(4000), 5).result == (OK, None)
    assert d.tree.session_info(5) == SessionInfo(4000, 1, ())
    assert d.run(open_session_op(9999), 5).result == (OK, None)  # already open
    assert d.tree.session_info(5) == SessionInfo(4000, 2, ())
    d.run(keepalive_op(), 5)
    d.run(check_op("/nope", 0), 5)  # failed ops are activity too
    assert d.tree.session_info(5).activity == 4
    d.run(sync_op())  # the system's entries are nobody's activity
    assert d.tree.session_info(5).activity == 4
    assert d.tree.session_ids() == [5]


@pytest.mark.parametrize("op", [sync_op(), keepalive_op(), create_op("/a"), close_session_op(), cancel_op(1)])
def test_entries_from_unknown_sessions_are_refused(d: Driver, op: tuple) -> None:
    before = d.tree.snapshot()
    assert d.run(op, 42) == Applied(0, (EXPIRED, None), (), False)
    assert d.tree.snapshot() == before


def test_close_session_deletes_ephemerals_in_path_order(d: Driver) -> None:
    d.ok(open_session_op(1000), 1)
    d.ok(open_session_op(1000), 2)
    d.ok(create_op("/p"))
    for path in ["/p/b", "/z", "/p/a", "/a"]:
        d.ok(create_op(path, ephemeral=True), 1)
    d.ok(create_op("/keep", ephemeral=True), 2)
    assert d.tree.session_info(1).ephemerals == ("/a", "/p/a", "/p/b", "/z")
    applied = d.run(close_session_op(), 1)
    assert applied.result == (OK, None)
    assert applied.events == (
        ("deleted", "/a"),
        ("child", "/"),
        ("deleted", "/p/a"),
        ("child", "/p"),
        ("deleted", "/p/b"),
        ("child", "/p"),
        ("deleted", "/z"),
        ("child", "/"),
    )
    assert d.tree.stat("/p").pzxid == applied.zxid
    assert d.tree.children("/") == ["keep", "p"] and d.tree.session_ids() == [2]
    assert d.run(sync_op(), 1).result == (EXPIRED, None)  # a retransmitted close, too


def test_expire_is_compare_and_expire(d: Driver) -> None:
    d.ok(open_session_op(1000), 3)
    d.ok(create_op("/e", ephemeral=True), 3)
    seen = d.tree.session_info(3).activity
    d.run(keepalive_op(), 3)  # committed between the leader's look and its proposal
    assert d.run(expire_session_op(3, seen)).result == (OK, False)
    assert d.tree.get("/e") is not None
    applied = d.run(expire_session_op(3, seen + 1))
    assert applied.result == (OK, True)
    assert applied.events == (("deleted", "/e"), ("child", "/"))
    assert d.tree.session_ids() == [] and d.tree.get("/e") is None
    assert d.run(expire_session_op(3, seen + 1)).result == (OK, False)  # already gone
    assert d.run(expire_session_op(77, 0)).result == (OK, False)


# -------------------------------------------------------- dedup and cancel


def test_retransmission_returns_the_stored_result(d: Driver) -> None:
    d.ok(open_session_op(1000), 1)
    first = d.send(1, 2, create_op("/", sequence=True))
    info = d.tree.session_info(1)
    again = d.send(1, 2, create_op("/", sequence=True))
    assert again == Applied(first.zxid, first.result, (), True)
    assert d.tree.children("/") == ["0000000000"]
    assert d.tree.session_info(1) == info  # duplicates are not activity
    assert d.tree.request_result(1, 2) == first.result


def test_ack_below_forgets_results_and_makes_old_ids_stale(d: Driver) -> None:
    d.ok(open_session_op(1000), 1)
    for rid in (2, 3, 4):
        d.send(1, rid, create_op(f"/n{rid}"))
    d.send(1, 5, sync_op(), ack=4)
    assert [d.tree.request_result(1, rid) is None for rid in (1, 2, 3, 4, 5)] == [True, True, True, False, False]
    stale = d.send(1, 3, create_op("/n3"))
    assert stale == Applied(d.tree.zxid, (ErrorCode.STALE_REQUEST, None), (), True)
    # ack_below never moves back
    d.send(1, 6, sync_op(), ack=1)
    assert d.tree.request_result(1, 4) is not None
    assert d.send(1, 3, sync_op()).result[0] == ErrorCode.STALE_REQUEST


def test_cancel_before_arrival_prevents_the_request(d: Driver) -> None:
    d.ok(open_session_op(1000), 1)
    assert d.send(1, 3, cancel_op(2)).result == (OK, None)
    assert d.tree.request_result(1, 2) == (ErrorCode.CANCELLED, None)
    late = d.send(1, 2, create_op("/late"))
    assert late.duplicate and late.result == (ErrorCode.CANCELLED, None)
    assert d.tree.get("/late") is None


def test_cancel_after_apply_keeps_the_real_result(d: Driver) -> None:
    d.ok(open_session_op(1000), 1)
    created = d.send(1, 2, create_op("/done"))
    d.send(1, 3, cancel_op(2))
    assert d.tree.request_result(1, 2) == created.result
    d.send(1, 4, cancel_op(1), ack=2)  # below ack_below: nothing to cancel
    assert d.tree.request_result(1, 1) is None


# ------------------------------------------------------------ invalid input


@pytest.mark.parametrize(
    "entry",
    [
        None,
        (),
        (1, 0, 0, 0, T0, ("create", "no-slash", b"", 0)),
        (1, 0, 0, 0, T0, ("create", "/a", "str", 0)),
        (1, 0, 0, 0, T0, ("multi", (("sync",),))),
        (1, 0, 0, 0, T0, ("set", "/a", b"x" * ((1 << 20) + 1), -1)),
        (1, 1, 1, 0, T0, ("expire_session", 1, 0)),
        (1, 0, 0, 0, T0, ("open_session", 1000)),
    ],
)
def test_invalid_entries_are_bad_arguments_and_change_nothing(d: Driver, entry: object) -> None:
    d.ok(open_session_op(1000), 1)
    d.ok(create_op("/a"))
    before = d.tree.snapshot()
    applied = d.tree.apply(entry)
    assert applied == Applied(d.tree.zxid, (BAD_ARGS, None), (), False)
    assert d.tree.snapshot() == before


def test_tree_enforces_its_own_size_limit() -> None:
    driver = Driver(Tree(max_data_bytes=4))
    assert driver.run(create_op("/a", b"1234")).result[0] == OK
    assert driver.run(set_op("/a", b"12345")).result[0] == BAD_ARGS


# ----------------------------------------------------------------- snapshot


def _busy_driver() -> Driver:
    d = Driver()
    _history(d)
    d.ok(open_session_op(3000), 2)
    d.send(2, 2, multi_op([create_op("/m"), set_op("/a", b"z")]))
    d.send(2, 3, multi_op([create_op("/m"), set_op("/a", b"z")]))  # failed multi, stored
    d.send(2, 5, cancel_op(4))
    d.send(2, 6, create_op("/m/\u00fc", b"\x00\xff", ephemeral=True), ack=2)
    d.run(delete_op("/a/s-0000000000"))
    return d


def test_snapshot_round_trip_is_exact() -> None:
    d = _busy_driver()
    data = d.tree.snapshot()
    restored = Tree.restore(data)
    restored.check_invariants()
    assert restored.snapshot() == data
    assert state(restored) == state(d.tree)
    assert restored.zxid == d.tree.zxid and restored.last_time_ms == d.tree.last_time_ms
    for session in d.tree.session_ids():
        for rid in range(10):
            assert restored.request_result(session, rid) == d.tree.request_result(session, rid)
    stat = restored.request_result(2, 2)[1][1][1]
    assert type(stat) is ZnodeStat  # results keep their types
    # both continue identically
    for tree in (d.tree, restored):
        tree.apply((1, 0, 0, 0, T0, ("create", "/m/", b"", 2)))
        tree.apply((1, 2, 8, 0, T0, ("close_session",)))
    assert restored.snapshot() == d.tree.snapshot()


def test_snapshot_does_not_depend_on_dict_order() -> None:
    d = _busy_driver()
    before = d.tree.snapshot()
    d.tree._nodes = dict(reversed(list(d.tree._nodes.items())))
    d.tree._sessions = dict(reversed(list(d.tree._sessions.items())))
    assert d.tree.snapshot() == before


def test_restore_rejects_garbage_with_value_error() -> None:
    good = _busy_driver().tree.snapshot()
    bad_inputs = [b"", b"garbage", good[:-1], good + b"\x00", b"X" + good[1:], "text", None, 5]
    bad_inputs.append(good[:8] + b"\x09\x00" + good[10:])  # unknown format version
    for data in bad_inputs:
        with pytest.raises(ValueError):
            Tree.restore(data)  # type: ignore[arg-type]
    for cut in range(len(good)):
        with pytest.raises(ValueError):
            Tree.restore(good[:cut])


def test_restore_rejects_structurally_broken_trees() -> None:
    d = Driver()
    d.ok(create_op("/a"))
    d.ok(create_op("/a/b"))
    good = d.tree.snapshot()
    orphan = good.replace(b"/a/b", b"/x/b")
    bad_name = good.replace(b"/a/b", b"/a/.")
    out_of_order = good.replace(b"/a/b", b"/\x00\x00\x00")
    for data in (orphan, bad_name, out_of_order):
        with pytest.raises(ValueError):
            Tree.restore(data)


_SMALL_SNAPSHOT = _busy_driver().tree.snapshot()


@settings(max_examples=200, database=None, deadline=None)
@given(st.data())
def test_restore_of_corrupted_bytes_raises_only_value_error(data: st.DataObject) -> None:
    good = _SMALL_SNAPSHOT
    index = data.draw(st.integers(0, len(good) - 1))
    byte = data.draw(st.integers(0, 255))
    corrupted = good[:index] + bytes([byte]) + good[index + 1 :]
    try:
        tree = Tree.restore(corrupted)
    except ValueError:
        return
    tree.snapshot()  # whatever was accepted must still encode


# --------------------------------------------------------------- invariants


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda t: t._nodes.pop("/a"),
        lambda t: setattr(t._nodes["/a"], "czxid", 999),
        lambda t: t._nodes["/"].children.add("ghost"),
        lambda t: setattr(t._nodes["/e"], "owner", 0),
        lambda t: t._sessions[1].ephemerals.clear(),
        lambda t: t._sessions[1].results.__setitem__(0, (0, None)),
    ],
)
def test_check_invariants_detects_corruption(corrupt) -> None:
    d = Driver()
    _history(d)
    d.tree._sessions[1].ack_below = 1
    d.tree.check_invariants()
    corrupt(d.tree)
    with pytest.raises(AssertionError):
        d.tree.check_invariants()


# ------------------------------------------------------------------ imports


@pytest.mark.parametrize("module", ["tree.py", "ops.py", "paths.py"])
def test_pure_modules_import_nothing_impure(module: str) -> None:
    source = (pathlib.Path(__file__).resolve().parents[2] / "coord" / module).read_text()
    allowed = {
        "__future__",
        "collections",
        "collections.abc",
        "enum",
        "logging",
        "re",
        "struct",
        "typing",
        "sortedcontainers",
    }
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        else:
            continue
        assert set(names) <= allowed, f"{module} imports {names}"


# ----------------------------------------------------------------- FIFO per session


def test_a_sessions_requests_apply_in_request_order(d: Driver) -> None:
    d.send(1, 1, open_session_op(5000))
    before = d.tree.snapshot()
    early = d.send(1, 3, create_op("/second"))  # request 2 has not arrived
    assert early.result == (ErrorCode.OUT_OF_ORDER, None) and early.duplicate
    assert d.tree.snapshot() == before, "an out-of-order request must change nothing"
    assert d.send(1, 2, create_op("/first")).result[0] == OK
    assert d.send(1, 3, create_op("/second")).result[0] == OK
    assert d.tree.stat("/first").czxid < d.tree.stat("/second").czxid


def test_a_cancel_overtakes_and_settles_the_gap(d: Driver) -> None:
    d.send(1, 1, open_session_op(5000))
    assert d.send(1, 4, ("cancel", 2)).result == (OK, None)  # the cancel itself is not held back
    assert d.send(1, 2, create_op("/lost")).result == (ErrorCode.CANCELLED, None)
    assert d.send(1, 3, create_op("/next")).result[0] == OK
    assert d.tree.stat("/lost") is None


def test_acknowledging_past_a_gap_unblocks_the_session(d: Driver) -> None:
    d.send(1, 1, open_session_op(5000))
    # the proposer gave up on request 2 (unknown outcome) and moved on
    assert d.send(1, 3, create_op("/after"), ack=3).result[0] == OK
    assert d.send(1, 2, create_op("/abandoned")).result == (ErrorCode.STALE_REQUEST, None)
    assert d.tree.stat("/abandoned") is None


def test_session_ids_start_at_the_opening_request_and_survive_a_restore(d: Driver) -> None:
    d.send(1, 7, create_op("/x"))  # before the session exists: refused, id 7 consumed
    d.send(1, 8, open_session_op(5000))
    restored = Tree.restore(d.tree.snapshot())
    assert restored.apply((1, 1, 9, 0, T0, create_op("/y"))).result[0] == OK


# ----------------------------------------------------------------- ended sessions stay ended


@pytest.mark.parametrize("end", ["expire", "close"])
def test_a_late_copy_of_open_session_never_revives_an_ended_session(d: Driver, end: str) -> None:
    d.send(5, 1, open_session_op(4000))
    d.send(5, 2, create_op("/lock", ephemeral=True))
    if end == "expire":
        assert d.run(expire_session_op(5, d.tree.session_info(5).activity)).result == (OK, True)
    else:
        assert d.send(5, 3, close_session_op()).result == (OK, None)
    before = d.tree.snapshot()
    # Re-sent copies that reach the log after the end: the opening and the ephemeral create.
    assert d.send(5, 1, open_session_op(4000)) == Applied(d.tree.zxid, (EXPIRED, None), (), False)
    assert d.send(5, 2, create_op("/lock", ephemeral=True)).result == (EXPIRED, None)
    assert d.tree.snapshot() == before
    assert not d.tree.has_session(5) and d.tree.stat("/lock") is None


def test_ended_sessions_are_remembered_across_a_restore(d: Driver) -> None:
    d.send(5, 1, open_session_op(4000))
    d.send(5, 2, close_session_op())
    restored = Tree.restore(d.tree.snapshot())
    restored.check_invariants()
    assert restored.snapshot() == d.tree.snapshot()
    assert restored.apply((1, 5, 1, 0, T0, open_session_op(4000))).result == (EXPIRED, None)


def test_an_ended_session_is_forgotten_after_an_hour_of_entry_time(d: Driver) -> None:
    d.send(5, 1, open_session_op(4000))
    d.send(5, 2, close_session_op())
    later = T0 + ENDED_SESSION_MEMORY_MS + 1
    d.send(6, 1, open_session_op(4000), time_ms=later)
    assert d.send(5, 1, open_session_op(4000), time_ms=later).result == (EXPIRED, None)  # still within the hour
    d.send(6, 2, close_session_op(), time_ms=later)  # an end prunes what is older than an hour
    assert d.send(5, 1, open_session_op(4000), time_ms=later).result == (OK, None)
    assert d.send(6, 1, open_session_op(4000), time_ms=later).result == (EXPIRED, None)


def test_at_most_max_ended_sessions_are_remembered(d: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("coord.tree.MAX_ENDED_SESSIONS", 3)
    for session in range(1, 6):
        d.send(session, 1, open_session_op(4000))
        d.send(session, 2, close_session_op())
    reopened = [d.send(s, 1, open_session_op(4000)).result[0] for s in (1, 2, 3, 4, 5)]
    assert reopened == [OK, OK, EXPIRED, EXPIRED, EXPIRED]


def test_a_snapshot_with_too_many_or_disordered_ended_sessions_is_refused(d: Driver) -> None:
    d.send(5, 1, open_session_op(4000), time_ms=T0 + 10)
    d.send(5, 2, close_session_op(), time_ms=T0 + 10)
    d.send(6, 1, open_session_op(4000), time_ms=T0 + 20)
    d.send(6, 2, close_session_op(), time_ms=T0 + 20)
    good = d.tree.snapshot()
    ended = struct.pack("<Iqqqq", 2, 5, T0 + 10, 6, T0 + 20)
    assert good.count(ended) == 1
    for bad in (
        struct.pack("<Iqqqq", 2, 6, T0 + 20, 5, T0 + 10),  # out of order
        struct.pack("<Iqqqq", 2, 5, T0 + 10, 5, T0 + 20),  # twice
        struct.pack("<Iqqqq", 2, 5, T0 + 10, 6, T0 + 99),  # after the last entry time
        struct.pack("<Iqqqq", 2, 0, T0 + 10, 6, T0 + 20),  # id 0
        struct.pack("<I", MAX_ENDED_SESSIONS + 1) + ended[4:],  # more than are ever kept
    ):
        with pytest.raises(ValueError, match="ended session"):
            Tree.restore(good.replace(ended, bad))
