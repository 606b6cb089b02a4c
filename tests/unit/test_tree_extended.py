"""Container and TTL nodes in the pure tree: creation, ephemeralOwner 0
for clients (ZooKeeper's encoding only inside snapshots), when a node is due, and the leader's reap entry
being re-checked at apply time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from coord import ops
from coord.errors import ErrorCode
from coord.tree import Tree

OK = int(ErrorCode.OK)
SYSTEM = 0


def apply(tree: Tree, op: tuple, time_ms: int = 1000, session_id: int = SYSTEM, request_id: int = 0):
    return tree.apply(ops.make_entry(session_id, request_id, 0, time_ms, op))


def test_container_stat_and_reaping_after_its_last_child_goes() -> None:
    tree = Tree()
    applied = apply(tree, ops.create_op("/c", b"x", container=True))
    assert applied.result[0] == OK
    path, stat = applied.result[1]
    assert stat.ephemeralOwner == 0  # ZooKeeper shows clients 0, not its Long.MIN_VALUE marker
    # never had a child: not a candidate (ZooKeeper keeps unused containers)
    assert tree.reap_candidates() == []
    apply(tree, ops.create_op("/c/child"))
    assert tree.reap_candidates() == []  # has a child
    assert apply(tree, ops.reap_op("/c", tree.stat("/c").mzxid)).result == (OK, False)
    apply(tree, ops.delete_op("/c/child"))
    mzxid = tree.stat("/c").mzxid
    assert tree.reap_candidates() == [("/c", mzxid, 0, True)]
    reaped = apply(tree, ops.reap_op("/c", mzxid))
    assert reaped.result == (OK, True)
    assert tree.stat("/c") is None
    assert reaped.events == (("deleted", "/c"), ("child", "/"))
    tree.check_invariants()


def test_ttl_node_candidates_carry_version_ttl_and_whether_childless() -> None:
    tree = Tree()
    apply(tree, ops.create_op("/t", b"v", ttl=500), time_ms=1000)
    stat = tree.stat("/t")
    assert stat.ephemeralOwner == 0
    assert tree.reap_candidates() == [("/t", stat.mzxid, 500, True)]
    apply(tree, ops.create_op("/t/kid"), time_ms=1401)
    # children keep it, but do not touch its version (the leader's clock runs on)
    assert tree.reap_candidates() == [("/t", stat.mzxid, 500, False)]
    assert apply(tree, ops.reap_op("/t", stat.mzxid)).result == (OK, False)
    apply(tree, ops.delete_op("/t/kid"), time_ms=1402)
    assert tree.reap_candidates() == [("/t", stat.mzxid, 500, True)]
    apply(tree, ops.set_op("/t", b"w"), time_ms=1400)  # a modification is a new version
    assert tree.reap_candidates() == [("/t", tree.stat("/t").mzxid, 500, True)]
    tree.check_invariants()


def test_reap_is_rechecked_at_apply_time() -> None:
    tree = Tree()
    apply(tree, ops.create_op("/t", b"v", ttl=100), time_ms=1000)
    timed = tree.stat("/t").mzxid
    # The leader timed this version, but a set committed before its reap entry.
    apply(tree, ops.set_op("/t", b"w"), time_ms=1150)
    before = tree.get("/t")
    assert apply(tree, ops.reap_op("/t", timed), time_ms=1200).result == (OK, False)
    assert tree.get("/t")[0] == before[0] and tree.get("/t")[1].version == before[1].version
    # a node re-created under the same path is not reaped by an old entry
    current = tree.stat("/t").mzxid
    apply(tree, ops.delete_op("/t"), time_ms=1300)
    apply(tree, ops.create_op("/t", b"again", ttl=100), time_ms=1300)
    assert apply(tree, ops.reap_op("/t", current), time_ms=5000).result == (OK, False)
    assert tree.get("/t")[0] == b"again"
    assert apply(tree, ops.reap_op("/t", tree.stat("/t").mzxid), time_ms=5000).result == (OK, True)
    tree.check_invariants()


def test_plain_nodes_are_never_reaped() -> None:
    tree = Tree()
    apply(tree, ops.create_op("/p"))
    assert tree.reap_candidates() == []
    assert apply(tree, ops.reap_op("/p", tree.stat("/p").mzxid), time_ms=10**12).result == (OK, False)
    assert tree.stat("/p") is not None


def test_sequential_ttl_and_container_in_a_multi() -> None:
    tree = Tree()
    apply(tree, ops.create_op("/q"))
    applied = apply(
        tree,
        ops.multi_op([ops.create_op("/q/t-", ttl=50, sequence=True), ops.create_op("/q/c", container=True)]),
    )
    assert applied.result[0] == OK
    (_, (seq_path, seq_stat)), (_, (_, c_stat)) = applied.result[1]
    assert seq_path == "/q/t-0000000000"
    assert seq_stat.ephemeralOwner == 0 and c_stat.ephemeralOwner == 0
    # a failed multi leaves no reapable node behind
    failed = apply(tree, ops.multi_op([ops.create_op("/q/c2", container=True), ops.delete_op("/missing")]))
    assert failed.result[0] == int(ErrorCode.NO_NODE)
    assert tree.stat("/q/c2") is None
    tree.check_invariants()


def test_snapshot_round_trip_keeps_node_kinds() -> None:
    tree = Tree()
    apply(tree, ops.create_op("/c", container=True))
    apply(tree, ops.create_op("/t", ttl=12345))
    apply(tree, ops.create_op("/c/k"))
    data = tree.snapshot()
    assert (-(1 << 63)).to_bytes(8, "little", signed=True) in data  # the container marker
    assert ((0xFF00000000000000 | 12345) - (1 << 64)).to_bytes(8, "little", signed=True) in data
    restored = Tree.restore(data)
    assert restored.snapshot() == data
    restored.check_invariants()
    apply(restored, ops.delete_op("/c/k"), time_ms=2000)
    assert [(p, ttl, ok) for p, _, ttl, ok in restored.reap_candidates()] == [("/c", 0, True), ("/t", 12345, True)]


def test_descendant_count_and_walk() -> None:
    tree = Tree()
    for path in ["/a", "/a/b", "/a/b/c", "/a/d", "/e"]:
        apply(tree, ops.create_op(path))
    assert tree.descendant_count("/") == 5
    assert tree.descendant_count("/a") == 3
    assert tree.descendant_count("/a/b/c") == 0
    assert tree.descendant_count("/missing") is None
    assert tree.walk("/a") == ["/a", "/a/b", "/a/b/c", "/a/d"]
    assert tree.walk("/missing") == []


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["create_c", "create_t", "child", "unchild", "set", "reap", "reap_stale"]),
            st.sampled_from(["/n0", "/n1", "/n2"]),
        ),
        max_size=40,
    )
)
def test_reap_decisions_match_zookeepers_rule(steps: list[tuple[str, str]]) -> None:
    """Random container/TTL histories: a reap entry deletes exactly when the
    node is still the version named and ZooKeeper's ContainerManager rule
    holds (childless; a container must have had a child), and the
    candidates and the reapable set always match the node kinds."""
    tree = Tree()
    kinds: dict[str, str] = {}
    for action, path in steps:
        stat = tree.stat(path)
        if action == "create_c":
            apply(tree, ops.create_op(path, container=True))
            kinds.setdefault(path, "c") if stat is None else None
        elif action == "create_t":
            apply(tree, ops.create_op(path, ttl=200))
            kinds.setdefault(path, "t") if stat is None else None
        elif action == "child":
            apply(tree, ops.create_op(path + "/k"))
        elif action == "unchild":
            apply(tree, ops.delete_op(path + "/k"))
        elif action == "set":
            apply(tree, ops.set_op(path, b"x"))
        elif action.startswith("reap") and stat is not None:
            stale = action == "reap_stale"
            childless = stat.numChildren == 0
            expected = not stale and childless and (kinds[path] == "t" or stat.cversion > 0)
            mzxid = stat.mzxid - 1 if stale else stat.mzxid
            if mzxid < 1:
                continue
            assert apply(tree, ops.reap_op(path, mzxid)).result == (OK, expected)
            if expected:
                kinds.pop(path)
        candidates = {p: ok for p, _, _, ok in tree.reap_candidates()}
        for p, kind in kinds.items():
            node = tree.stat(p)
            reapable = node.numChildren == 0 and (kind == "t" or node.cversion > 0)
            assert candidates.get(p, False) == reapable
        tree.check_invariants()
