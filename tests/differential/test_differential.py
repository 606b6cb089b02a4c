"""Differential tests: every scenario gives the same transcript on a real
ZooKeeper 3.8 (through kazoo) and on coord.

Run:  /tmp/venv/bin/python -m pytest tests/differential -q

* ``test_zookeeper_transcript_is_stable``: each scenario twice on ZooKeeper
  under different base paths; the transcripts must be identical (proves the
  normalization removed every run-dependent value) and free of timeouts and
  connection errors. The transcript is kept as the reference.
* ``test_zookeeper_facts``: pins the ZooKeeper behaviours coord must copy.
* ``test_coord_matches_zookeeper``: each scenario on coord (via the leader
  and via a follower) against the ZooKeeper reference, exceptions compared
  with the rule in ``scenarios.py`` (coord's exception must be an instance
  of a class with the kazoo/ZooKeeper name), after rewriting the reference
  with coord's deliberate deviations (``deviations.py``; each must be used).
* ``test_coord_refuses_what_kazoo_normalizes`` and
  ``test_coord_transaction_refuses_bad_op_when_added``: coord's side of the
  ZooKeeper-only scenarios, asserted explicitly.
"""

from __future__ import annotations

import difflib
import uuid
from typing import Any

import pytest

from . import deviations, scenarios
from .scenarios import SCENARIOS, Err, format_transcript, reconcile_transcripts, run_scenario

pytestmark = pytest.mark.differential

_UNEXPECTED_ZK_ERRORS = {
    "ConnectionLoss",
    "ConnectionClosedError",
    "SessionExpiredError",
    "OperationTimeoutError",
    "SystemZookeeperError",
}


def _assert_same(expected: list[str], actual: list[str], expected_name: str, actual_name: str) -> None:
    """Compare formatted transcripts (``format_transcript``)."""
    if expected == actual:
        return
    diff = "\n".join(
        difflib.unified_diff(
            expected,
            actual,
            fromfile=expected_name,
            tofile=actual_name,
            lineterm="",
            n=3,
        )
    )
    pytest.fail(f"transcripts differ ({expected_name} vs {actual_name}):\n{diff}", pytrace=False)


def _walk(value: Any):  # type: ignore[no-untyped-def]
    yield value
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _walk(v)


def _zk_reference(name: str, zk_client: Any, root: str, cache: dict[str, list]) -> list:
    if name not in cache:
        cache[name] = run_scenario(name, zk_client, root, "zk-ref")
    return cache[name]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_zookeeper_transcript_is_stable(
    name: str, zk_client: Any, differential_root: str, zk_transcripts: dict[str, list]
) -> None:
    first = run_scenario(name, zk_client, differential_root, "zk1")
    second = run_scenario(name, zk_client, differential_root, "zk2")
    _assert_same(format_transcript(first), format_transcript(second), "ZooKeeper run 1", "ZooKeeper run 2")
    problems = []
    for label, value in first:
        for v in _walk(value):
            if isinstance(v, Err) and v.name in _UNEXPECTED_ZK_ERRORS:
                problems.append(f"{label} -> {v!r}")
            if isinstance(v, str) and v.startswith("TIMEOUT"):
                problems.append(f"{label} -> {v}")
    assert not problems, "ZooKeeper run hit timeouts or connection errors:\n" + "\n".join(problems)
    zk_transcripts[name] = first


def _entries(transcript: list, label: str) -> tuple:
    values = tuple(v for lbl, v in transcript if lbl == label)
    assert values, f"no entry {label!r}; labels: {[lbl for lbl, _ in transcript]}"
    return values


NodeExists, NoNode, BadArguments = (Err.named(n) for n in ("NodeExistsError", "NoNodeError", "BadArgumentsError"))

# (scenario, label, values of every entry with that label) as ZooKeeper 3.8 +
# kazoo 2.11 produce them: the behaviours a port must copy. The full
# transcripts cover them too; this list documents them and catches a
# drifting server or normalizer.
ZOOKEEPER_FACTS: list[tuple[str, str, tuple]] = [
    # The sequential suffix is the number of child creations the parent has
    # seen (sequential or not); deletes and failed creates do not advance it.
    ("sequential", "create('~/q/n-', sequence=True)", ("~/q/n-0000000000", "~/q/n-0000000004", "~/q/n-0000000005")),
    ("sequential", "create('~/q/m-', sequence=True)", ("~/q/m-0000000002",)),
    ("sequential", "create('~/q/e-', ephemeral=True, sequence=True)", ("~/q/e-0000000006",)),
    ("sequential", "create('~/q/x-', sequence=True)", ("~/q/x-0000000009", NodeExists, "~/q/x-0000000010")),
    ("sequential", "create('~/r/s', sequence=True)", ("~/r/s0000000003",)),
    ("sequential", "create('~/new/deep/s-', sequence=True, makepath=True)", ("~/new/deep/s-0000000000",)),
    ("transactions_fail", "create('~/s-', sequence=True)", ("~/s-0000000002",)),
    # kazoo return values
    ("ensure_path_makepath", "ensure_path('~/a/b/c')", ("~/a/b/c", True)),
    ("ensure_path_makepath", "ensure_path('/')", (True,)),
    ("recursive_delete", "delete('~/r', recursive=True)", (None, True)),
    ("recursive_delete", "delete('~/v', version=0, recursive=True)", (None,)),
    ("transactions_ok", "tx.commit()", (
        ["~/b", "Stat(v=1 cv=0 av=0 len=1 kids=0 eph=0 cz=z1 mz=z2 pz=z1 t=ok)", True, "~/b/c", True,
         "~/s-0000000002", "~/e", "Stat(v=2 cv=0 av=0 len=2 kids=0 eph=0 cz=z1 mz=z2 pz=z1 t=ok)", True],
        ["~/d", True, "~/d"], [True, True], [True], [], [True], Err.named("ValueError"),
    )),
    ("transactions_fail", "commit: create('~/n'); set_data('~/a', b'x', version=5); create('~/n2')", (
        [Err.named("RolledBackError"), Err.named("BadVersionError"), Err.named("RuntimeInconsistency")],
    )),
    # the root node
    ("bad_paths_server_side", "create('/')", (NodeExists,)),
    ("bad_paths_server_side", "create('')", (NodeExists,)),
    ("bad_paths_server_side", "delete('/')", (BadArguments,)),
    ("bad_paths_server_side", "delete('')", (BadArguments,)),
    # reads of a name the server would refuse to create: no validation
    # except for NUL, which exists() and delete() reject
    ("bad_paths_server_side", "get(~/a\\x01b)", (NoNode,)),
    ("bad_paths_server_side", "exists(~/a\\x01b)", (None,)),
    ("bad_paths_server_side", "delete(~/a\\x01b)", (NoNode,)),
    ("bad_paths_server_side", "set(~/a\\x01b)", (BadArguments,)),
    ("bad_paths_server_side", "exists(~/a\\x00b)", (BadArguments,)),
    ("bad_paths_server_side", "get(~/a\\x00b)", (NoNode,)),
    # kazoo's client-side path handling
    ("bad_paths_client_side", "get('~/./x')", (Err.named("ValueError"),)),
    ("paths_kazoo_normalizes", "create('rel:~/a', b'rel')", ("~/a",)),
    ("sequential_empty_prefix", "create('~/b/', sequence=True)", ("~/b/0000000000",)),
    ("sequential_empty_prefix", "commit: create('~/b/', sequence=True)", (["~/b0000000002"],)),
    ("paths_kazoo_normalizes", "create('~/b//', sequence=True)", ("~/b/0000000000",)),
    ("paths_kazoo_normalizes", "ensure_path('~/g/h/')", (NoNode, NoNode)),
    # persistent watches (ZooKeeper 3.6+, through zk_extensions)
    ("persistent_watch", "child created", ([("pw-a", "CHILD ~/a CONNECTED")],)),
    ("persistent_watch", "recreated: still armed", ([("pw-a", "CREATED ~/a CONNECTED")],)),
    ("persistent_watch_recursive", "child created: CREATED, no CHILD", ([("rw", "CREATED ~/r/x CONNECTED")],)),
    ("persistent_watch_recursive", "sibling / parent / failed create: nothing", ([],)),
    ("persistent_watch_remove", "remove_watch('~/never', <watch w1>)", (Err.named("NoWatcherError"),)),
    # containers: reaped once childless after having had a child, never before
    ("container", "c once childless", ("reaped",)),
    ("container", "c recreated, once childless", ("reaped",)),
    ("container", "create('~/cs', container=True, sequence=True)", (BadArguments,)),
    ("container", "create('~/ct', container=True, ttl=1000)", (BadArguments,)),
    # TTL nodes: 0 < ttl < 2**40; sets keep them; children hold them
    ("ttl", "m kept alive by sets", (True,)),
    ("ttl", "probe created after p", ("reaped",)),
    ("ttl", "create('~/max', ttl=1099511627775)", ("~/max",)),
    ("ttl", "create('~/bad', ttl=1099511627776)", (BadArguments,)),
    ("ttl", "create('~/bad', ttl=1000, ephemeral=True)", (BadArguments,)),
    # kazoo calls a callable registered as data AND child watch twice on delete
    ("watch_many", "same callable as data+child watch", (
        [("both", "DELETED ~/b CONNECTED"), ("both", "DELETED ~/b CONNECTED")],
    )),
]


def test_zookeeper_facts(zk_client: Any, differential_root: str, zk_transcripts: dict[str, list]) -> None:
    def ref(scenario: str) -> list:
        return _zk_reference(scenario, zk_client, differential_root, zk_transcripts)

    wrong = []
    for scenario, label, expected in ZOOKEEPER_FACTS:
        got = _entries(ref(scenario), label)
        if got != expected:
            wrong.append(f"{scenario}: {label} -> {got!r}, expected {expected!r}")
    # Stat.cversion counts child creations AND deletions; numChildren the live ones.
    q_stat = _entries(ref("sequential"), "stat ~/q")[0]
    if "cv=7 " not in q_stat or "kids=5 " not in q_stat:
        wrong.append(f"sequential: stat ~/q -> {q_stat}, expected cv=7 kids=5")
    # A node created with value None reads back as None, not b"".
    none_get = _entries(ref("values_and_types"), "get('~/none')")[0]
    if none_get[0] is not None:
        wrong.append(f"values_and_types: get('~/none') data {none_get[0]!r}, expected None")
    # Clients see ephemeralOwner 0 on container and TTL nodes: the server
    # keeps the Long.MIN_VALUE / 0xFF00..|ttl encoding in its StatPersisted
    # but DataNode.getClientEphemeralOwner answers 0 for any non-session owner.
    for scenario, label in (("container", "stat ~/never"), ("container", "stat ~/keep"), ("ttl", "stat ~/max")):
        stat = _entries(ref(scenario), label)[0]
        if " eph=0 " not in stat:
            wrong.append(f"{scenario}: {label} -> {stat}, expected eph=0")
    assert not wrong, "\n".join(wrong)


def test_missing_zookeeper_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    import zk_server

    monkeypatch.setattr(zk_server, "find_classpath", lambda: None)
    assert "ZooKeeper not installed" in (zk_server.zookeeper_unavailable_reason() or "")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        zk_server.skip_or_fail_without_zookeeper()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        zk_server.skip_or_fail_without_zookeeper()


def test_reconcile_rule() -> None:
    """The exception rule: coord's exception must be an instance of a class
    with the ZooKeeper-side name."""

    class BadArgumentsError(Exception):
        pass

    class InvalidPathError(BadArgumentsError, ValueError):
        pass

    zk = [("op", Err(ValueError())), ("op2", [Err(BadArgumentsError())])]
    coord_ok = [("op", Err(InvalidPathError())), ("op2", [Err(InvalidPathError())])]
    coord_bad = [("op", Err(TypeError())), ("op2", [Err(ValueError())])]
    assert scenarios.reconcile_transcripts(zk, coord_ok) == zk
    assert scenarios.reconcile_transcripts(zk, coord_bad) != zk


def test_deviations_name_scenarios() -> None:
    named = set(deviations.SUBSTITUTIONS) | set(deviations.ZOOKEEPER_ONLY)
    assert named <= set(SCENARIOS), f"deviations for unknown scenarios: {sorted(named - set(SCENARIOS))}"
    assert not set(deviations.SUBSTITUTIONS) & set(deviations.ZOOKEEPER_ONLY)


@pytest.mark.parametrize("name", [n for n in SCENARIOS if n not in deviations.ZOOKEEPER_ONLY])
def test_coord_matches_zookeeper(
    name: str, coord_client: Any, zk_client: Any, differential_root: str, zk_transcripts: dict[str, list]
) -> None:
    reference = _zk_reference(name, zk_client, differential_root, zk_transcripts)
    expected, unused = deviations.apply(name, format_transcript(reference))
    assert not unused, f"stale deviations (no ZooKeeper line matched): {unused}"
    actual = run_scenario(name, coord_client, differential_root, f"coord-{uuid.uuid4().hex[:8]}")
    reconciled = format_transcript(reconcile_transcripts(reference, actual))
    _assert_same(expected, reconciled, "ZooKeeper (+deviations)", "coord")


INVALID_PATH = Err.named("InvalidPathError")


def test_coord_refuses_what_kazoo_normalizes(coord_client: Any, differential_root: str) -> None:
    """Every path kazoo rewrites raises InvalidPathError on coord (a
    transaction's bad ops when they are added) and nothing is created."""
    run_id = f"coord-{uuid.uuid4().hex[:8]}"
    transcript = run_scenario("paths_kazoo_normalizes", coord_client, differential_root, run_id)
    *calls, last = transcript
    assert last == ("get_children('~')", [])
    commits = [(label, v) for label, v in calls if label.startswith("commit ")]
    assert [v for _, v in commits] == [[]], "the transaction's ops were all refused when added"
    not_refused = [f"{label} -> {v!r}" for label, v in calls if v != INVALID_PATH and (label, v) not in commits]
    assert not not_refused, "expected InvalidPathError:\n" + "\n".join(not_refused)
    assert sum(label.startswith("tx.") for label, _ in calls) == 2


def test_coord_transaction_refuses_bad_op_when_added(coord_client: Any, differential_root: str) -> None:
    """A bad op raises when added; the transaction without it commits."""
    transcript = run_scenario("transactions_bad_char", coord_client, differential_root, f"coord-{uuid.uuid4().hex[:8]}")
    assert format_transcript(transcript) == [
        "tx.create('~/bad\\x01') -> !InvalidPathError",
        "commit: create('~/bad\\x01') -> []",
        "tx.create('~/bad\\x01') -> !InvalidPathError",
        "commit: create('~/n'); create('~/bad\\x01') -> ['~/n']",
        "get_children('~') -> ['n']",
    ]
