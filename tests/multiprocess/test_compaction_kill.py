"""Log compaction interrupted by SIGKILL loses no acknowledged write.

pysyncobj compacts in two steps: it writes a snapshot (``raft.dump``,
atomically renamed) and, a tick later, drops the journal entries the
snapshot covers. pysyncobj's own journal did the second step by rewriting
itself in place (``clear()`` and re-adding the kept entries), so a kill
inside it left a prefix of the kept entries (reliability.md R3); and a
member restarted with a new snapshot but an uncompacted journal has
pysyncobj keep only the snapshot's two entries. Either way the member
forgot entries it had acknowledged, and two such members could elect a
leader without them. coord's journal (``replication._CoordJournal``)
compacts by renaming a rewritten file over the journal and, on open,
finishes a compaction a kill interrupted.

With ``snapshot_entries=50`` every member compacts several times a second
under the writers below, and the nemesis SIGKILLs members (one, two or all
three at once) at seeded random moments, half of them timed a few
milliseconds after it sees a victim's ``raft.dump`` replaced, i.e. around
its journal compaction. Killed members restart from their data_dir. At the
end every write that was acknowledged to a client must be on every member,
with its value.

The compaction itself takes microseconds, so random kills rarely land in
it. The second test makes sure they do: a ``sitecustomize`` hook, loaded
only by that test's member processes, holds every journal rewrite open for
50 ms right before its commit point (the new snapshot is in place, the
journal on disk is the old, uncompacted one, the rewritten journal lies
next to it) and flags it in a file meanwhile. Its nemesis SIGKILLs either
two members inside their rewrites at once plus the third, or one member
inside its rewrite plus the leader, and restarts the members killed inside
a rewrite first: they form a majority on their own, so an entry they forgot
would be lost for good. A flag left behind by a dead process proves the
kill landed inside the rewrite.

Seed: ``$COORD_TEST_SEED`` (printed on failure).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coord.errors import CoordError
from coord.local_cluster import LocalCluster, MemberProcess, RpcError

# Fault runs (about 30 s each): behind --run-slow, run by CI's fault-run job.
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.timeout(240)]

SEED = int(os.environ.get("COORD_TEST_SEED", "20240611"))
SNAPSHOT_ENTRIES = 50
SESSION_TIMEOUT = 3.0
ROUNDS = 10
REWRITE_ROUNDS = 8
READY_TIMEOUT = 40.0
RPC_TIMEOUT = 5.0

wait_until = LocalCluster.wait_until


@dataclass
class Ledger:
    """What the writers know: acknowledged writes and unknown outcomes."""

    acknowledged: dict[str, bytes] = field(default_factory=dict)
    uncertain: dict[str, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _writer(member: MemberProcess, ledger: Ledger, stop: threading.Event) -> None:
    """Create fresh keys through ``member`` until stopped; a create that
    fails in any way (the member was killed mid-call, no quorum, ...) has an
    unknown outcome and never counts as acknowledged."""
    for i in range(1_000_000):
        if stop.is_set():
            return
        path, value = f"/acked/{member.name}/k{i:06d}", f"{member.name}:{i}".encode()
        try:
            member.create(path, value, timeout=RPC_TIMEOUT)
        except (CoordError, RpcError):
            with ledger.lock:
                ledger.uncertain[path] = value
            stop.wait(0.1)  # killed or electing: try again shortly
            continue
        with ledger.lock:
            ledger.acknowledged[path] = value


def _dump_mtime(member: MemberProcess) -> int:
    assert member.data_dir is not None
    try:
        return (member.data_dir / "raft.dump").stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def _wait_for_compaction(member: MemberProcess, timeout: float) -> bool:
    """Poll until ``member`` replaces its snapshot (its journal rewrite
    follows within a tick); False if it does not within ``timeout``."""
    start = _dump_mtime(member)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _dump_mtime(member) != start:
            return True
        time.sleep(0.001)
    return False


def _restart(members: list[MemberProcess]) -> None:
    for member in members:
        member.spawn()
    for member in members:
        member.wait_ready(READY_TIMEOUT)


def _run_with_nemesis(cluster: LocalCluster, nemesis: Callable[[Ledger], list[str]]) -> tuple[Ledger, list[str]]:
    """Writers on every member while ``nemesis`` kills and restarts
    members; then every member is brought back and checked."""
    ledger = Ledger()
    stop = threading.Event()
    log: list[str] = []
    for member in cluster.members:
        member.ensure_path(f"/acked/{member.name}")
    writers = [threading.Thread(target=_writer, args=(m, ledger, stop), name=f"writer-{m.name}")
               for m in cluster.members]
    for thread in writers:
        thread.start()
    try:
        wait_until(lambda: len(ledger.acknowledged) >= 200, 30.0, what="200 acknowledged writes")
        log = nemesis(ledger)
        settled = len(ledger.acknowledged)
        wait_until(lambda: len(ledger.acknowledged) >= settled + 100, 30.0,
                   what="writes to resume after the last restart")
    finally:
        stop.set()
        for thread in writers:
            thread.join(RPC_TIMEOUT + 10.0)
        dead = [m for m in cluster.members if not m.alive]
        if dead:  # a failure above may leave members down: bring them back to check what is there
            _restart(dead)
    assert not any(thread.is_alive() for thread in writers), "a writer did not stop"
    _check_every_member(cluster, ledger, "; ".join(log))
    return ledger, log


def _check_every_member(cluster: LocalCluster, ledger: Ledger, context: str) -> None:
    """Every acknowledged write on every member with its value; nothing
    nobody attempted; an unknown-outcome write either absent or intact."""
    with ledger.lock:
        acknowledged = dict(ledger.acknowledged)
        uncertain = dict(ledger.uncertain)
    views: dict[str, dict[str, bytes]] = {}
    for member in cluster.members:
        member.sync(timeout=30.0)
        present = views[member.name] = {}
        for writer in cluster.members:
            base = f"/acked/{writer.name}"
            for name in member.get_children(base, timeout=30.0):
                present[f"{base}/{name}"] = member.get(f"{base}/{name}", timeout=30.0)[0]
    lost = {name: sorted(p for p in acknowledged if p not in present) for name, present in views.items()}
    assert not any(lost.values()), (
        "acknowledged writes missing: "
        + ", ".join(f"{name} lacks {len(lost_here)} of {len(acknowledged)} (e.g. {lost_here[:3]})"
                    for name, lost_here in lost.items())
        + f" (seed {SEED}; {context})"
    )
    for name, present in views.items():
        wrong = sorted(p for p, v in acknowledged.items() if present[p] != v)
        assert not wrong, f"{name} has wrong values for {wrong[:5]} (seed {SEED}; {context})"
        unexpected = sorted(p for p in present if p not in acknowledged and p not in uncertain)
        assert not unexpected, f"{name} has writes nobody attempted: {unexpected[:5]} (seed {SEED})"
        assert all(present[p] == v for p, v in uncertain.items() if p in present), context


def test_random_sigkills_under_constant_compaction_lose_no_acknowledged_write(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    options = {"snapshot_entries": SNAPSHOT_ENTRIES}
    aligned_kills = 0

    def nemesis(ledger: Ledger) -> list[str]:
        nonlocal aligned_kills
        log = []
        for round_no in range(ROUNDS):
            time.sleep(rng.uniform(0.3, 1.5))
            victims = rng.sample(cluster.members, rng.choices([1, 2, 3], weights=[5, 3, 2])[0])
            aligned = rng.random() < 0.5 and _wait_for_compaction(victims[0], 5.0)
            if aligned:  # a few ms after a victim replaced its snapshot: around its journal rewrite
                aligned_kills += 1
                time.sleep(rng.uniform(0.0, 0.02))
            for victim in victims:
                victim.kill()
            log.append(f"round {round_no}: killed {[v.name for v in victims]}"
                       f"{' at a compaction' if aligned else ''}, acked so far {len(ledger.acknowledged)}")
            time.sleep(rng.uniform(0.0, 1.0))
            _restart(victims)
        return log

    with LocalCluster(3, data_root=tmp_path, session_timeout=SESSION_TIMEOUT, options=options) as cluster:
        ledger, log = _run_with_nemesis(cluster, nemesis)
        assert all(_dump_mtime(m) for m in cluster.members), "some member never took a snapshot"
    print(f"[compaction-kill] seed {SEED}: {len(ledger.acknowledged)} acknowledged, {len(ledger.uncertain)} "
          f"uncertain, {aligned_kills} kills right after a compaction; " + "; ".join(log))


REWRITE_HOOK = """\
# Loaded by coord's compaction-kill test in its member processes only.
# Holds every journal rewrite (compaction) open for a while right before its
# commit point, the rename of the rewritten journal over the old one, and
# flags it in $COORD_TEST_REWRITE_FLAGS/<pid> meanwhile. The snapshot
# covering the compaction is already in place then; the old journal is not
# compacted yet.
import os
import time

from coord import replication

_FLAGS = os.environ["COORD_TEST_REWRITE_FLAGS"]
_PAUSE = float(os.environ.get("COORD_TEST_REWRITE_PAUSE", "0.05"))
_install = replication._CoordJournal._install_compacted


def _slow_install(self):
    flag = os.path.join(_FLAGS, str(os.getpid()))
    with open(flag + ".tmp", "w") as handle:
        handle.write("rewriting")
    os.rename(flag + ".tmp", flag)
    time.sleep(_PAUSE)  # the snapshot is new, the journal on disk still the old one
    _install(self)
    os.unlink(flag)


replication._CoordJournal._install_compacted = _slow_install
"""


def _leader_address(member: MemberProcess) -> str | None:
    try:
        return member.status(timeout=2.0).get("leader")  # type: ignore[no-any-return]
    except (CoordError, RpcError):
        return None


def test_sigkill_inside_the_journal_rewrite_loses_no_acknowledged_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(SEED + 1)
    hook_dir, flags = tmp_path / "hook", tmp_path / "flags"
    hook_dir.mkdir()
    flags.mkdir()
    (hook_dir / "sitecustomize.py").write_text(REWRITE_HOOK)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(hook_dir), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("COORD_TEST_REWRITE_FLAGS", str(flags))
    options = {"snapshot_entries": SNAPSHOT_ENTRIES}
    inside = 0

    def in_rewrite() -> list[MemberProcess]:
        return [m for m in cluster.members if m.alive and m.pid is not None and (flags / str(m.pid)).exists()]

    def nemesis(ledger: Ledger) -> list[str]:
        """Kill members inside their rewrites together with the member(s)
        that still hold the entries they forget, and bring the forgetful
        ones back first: they form a majority on their own."""
        nonlocal inside
        log = []
        for round_no in range(REWRITE_ROUNDS):
            time.sleep(rng.uniform(0.2, 1.0))
            plan = rng.choice(["two inside, then the third", "one inside and the leader"])
            wanted = 2 if plan.startswith("two") else 1
            deadline = time.monotonic() + 10.0
            while len(caught := in_rewrite()) < wanted and time.monotonic() < deadline:
                time.sleep(0.001)
            if not caught:
                log.append(f"round {round_no}: no member compacted within 10 s")
                continue
            forgetful = caught[:wanted]
            if wanted == 2:
                others = [m for m in cluster.members if m not in forgetful]
            else:
                leader = next((m for m in cluster.members if m.address == _leader_address(forgetful[0])), None)
                others = [leader] if leader is not None and leader not in forgetful else []
            pids = {v.name: v.pid for v in forgetful + others}
            for victim in forgetful + others:
                victim.kill()
            proven = sorted(name for name, pid in pids.items() if (flags / str(pid)).exists())
            inside += len(proven)
            log.append(f"round {round_no} ({plan}): killed {sorted(pids)}, inside a rewrite: {proven}, "
                       f"acked so far {len(ledger.acknowledged)}")
            # The forgetful ones first; with the third still up (one-inside plan) they are a majority too.
            _restart(forgetful)
            _restart(others)
        if inside < REWRITE_ROUNDS // 2:  # a broken hook must not pass for a safe compaction
            raise RuntimeError(f"too few kills landed inside a journal rewrite: {log}")
        return log

    with LocalCluster(3, data_root=tmp_path / "data", session_timeout=SESSION_TIMEOUT, options=options) as cluster:
        ledger, log = _run_with_nemesis(cluster, nemesis)
    print(f"[compaction-kill] seed {SEED + 1}: {len(ledger.acknowledged)} acknowledged, "
          f"{inside} kills inside a journal rewrite; " + "; ".join(log))
