"""The Jepsen harness without processes: outcome mapping, every workload's
direct checker on small hand-made histories (each invariant caught, clean
histories pass), the runner's combination with the linearizability and
revision checkers, the nemesis schedule against fake members, and the
netns command lines."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from coord.testing import netns
from coord.testing.history import FAIL, INFO, OK, History
from coord.testing.jepsen import check_run
from coord.testing.nemesis import Nemesis
from coord.testing.workloads import (
    LockWorkload,
    Observations,
    QueueWorkload,
    RegisterWorkload,
    RunContext,
    SessionsWorkload,
    SetWorkload,
    WatchesWorkload,
    completion_type,
)


class H:
    """A tiny history builder: sequential ops, one process each unless told."""

    def __init__(self) -> None:
        self.h = History()

    def op(self, f: str, key: str, value: Any = None, typ: str = OK, result: Any = None, *,
           zxid: int | None = None, error: str | None = None, process: int = 0) -> None:
        inv = self.h.invoke(process, f, key, value)
        self.h.complete(inv, typ, result, zxid=zxid, error=error)

    def nemesis(self, f: str, value: Any) -> None:
        self.h.nemesis(f, value)

    @property
    def events(self) -> list[Any]:
        return self.h.events


def test_outcome_mapping() -> None:
    for answer in ("NoNodeError", "NodeExistsError", "BadVersionError", "OperationTimeoutError",
                   "CancelledRequestError", "SessionExpiredError"):
        assert completion_type(answer) == FAIL
    for unknown in ("UnknownOutcomeError", "ConnectionLoss", "NotReadyError", "RpcTimeoutError",
                    "ChildExitedError", "SystemZookeeperError"):
        assert completion_type(unknown) == INFO


# ---------------------------------------------------------------- register


def test_register_direct_check() -> None:
    h = H()
    h.op("create", "register/k0", 0, zxid=1)
    h.op("write", "register/k0", 1, result=1, zxid=2)
    h.op("sync-read", "register/k0", None, result=[1, 1], zxid=2)
    h.op("read", "register/k0", None, result=[0, 0], zxid=1)  # stale, but at its zxid: fine
    assert RegisterWorkload.check(h.events, []).valid
    h.op("write", "register/k0", 2, result=2, zxid=3)
    h.op("read", "register/k0", None, result=[1, 1], zxid=4)  # at zxid 4 the value is 2
    h.op("sync-read", "register/k0", None, result=[9, 3], zxid=4)  # nobody wrote 9
    result = RegisterWorkload.check(h.events, [])
    assert not result.valid
    assert any("stale or lost" in a for a in result.anomalies)
    assert any("no write wrote" in a for a in result.anomalies)


def test_lost_write_fails_every_checker() -> None:
    h = H()
    h.op("create", "register/k0", 0, zxid=1, process=0)
    h.op("write", "register/k0", 5, result=1, zxid=2, process=0)
    h.op("sync-read", "register/k0", None, result=[0, 0], zxid=3, process=1)  # the acked write is gone
    result = check_run(h.events, [], ["register"])
    assert not result["valid"]
    assert result["external"]["linearizability"]["status"] == "fail"
    assert result["external"]["revision"]["status"] in ("pass", "fail")  # zxids alone look fine here
    assert any(a.startswith("register:") for a in result["anomalies"])


def test_clean_register_history_passes_every_checker() -> None:
    h = H()
    h.op("create", "register/k0", 0, zxid=1, process=0)
    h.op("write", "register/k0", 5, result=1, zxid=2, process=0)
    h.op("cas", "register/k0", [0, 6], FAIL, zxid=3, error="BadVersionError", process=1)
    h.op("cas", "register/k0", [1, 7], result=2, zxid=4, process=1)
    h.op("sync-read", "register/k0", None, result=[7, 2], zxid=4, process=2)
    result = check_run(h.events, [], ["register"])
    assert result["valid"], result
    assert result["external"]["linearizability"]["status"] == "pass"
    assert result["external"]["revision"]["status"] == "pass"


# ---------------------------------------------------------------- set


def test_set_check_reports_lost_unexpected_recovered_and_duplicates() -> None:
    h = H()
    h.op("add", "set", 1, zxid=1)
    h.op("add", "set", 2, zxid=2)
    h.op("add", "set", 3, INFO, 3)
    h.op("add", "set", 4, FAIL, 4, error="OperationTimeoutError")
    h.op("add", "set", 5, INFO, 5)
    h.op("final-read", "set", None, result=[1, 3, 4, 7, 7], zxid=9)
    result = SetWorkload.check(h.events, [])
    assert not result.valid
    assert result.lost == 1
    assert result.stats["recovered"] == 1 and result.stats["unknown_absent"] == 1
    text = " | ".join(result.anomalies)
    assert "lost 1 acknowledged adds: [2]" in text
    assert "unexpected elements: [7]" in text
    assert "failed definitely are present: [4]" in text
    assert "added twice: [7]" in text


def test_set_check_stale_sync_read_and_clean_run() -> None:
    h = H()
    h.op("add", "set", 1, zxid=1)
    h.op("sync-read", "set", None, result=[], zxid=2)  # misses an add acknowledged before it
    h.op("final-read", "set", None, result=[1], zxid=3)
    result = SetWorkload.check(h.events, [])
    assert any("misses adds acknowledged before it" in a for a in result.anomalies)
    clean = H()
    clean.op("add", "set", 1, zxid=1)
    clean.op("sync-read", "set", None, result=[1], zxid=2)
    clean.op("final-read", "set", None, result=[1], zxid=3)
    assert SetWorkload.check(clean.events, []).valid


# ---------------------------------------------------------------- queue


def test_queue_check() -> None:
    h = H()
    for x in range(5):
        h.op("enqueue", "queue", x, zxid=x + 1)
    h.op("dequeue", "queue", None, result=0, zxid=10)
    h.op("dequeue", "queue", None, result=0, zxid=11)  # twice
    h.op("dequeue", "queue", None, INFO, result=2)  # maybe took 2
    h.op("final-read", "queue", None, result=[3], zxid=12)  # 1 and 4 are gone
    result = QueueWorkload.check(h.events, [])
    assert not result.valid
    text = " | ".join(result.anomalies)
    assert "dequeued more than once: [0]" in text
    assert "lost 2 acknowledged items: [1, 4]" in text
    assert result.lost == 2
    clean = H()
    clean.op("enqueue", "queue", 1, zxid=1)
    clean.op("enqueue", "queue", 2, zxid=2)
    clean.op("dequeue", "queue", None, result=1, zxid=3)
    clean.op("final-read", "queue", None, result=[2], zxid=4)
    assert QueueWorkload.check(clean.events, []).valid
    assert check_run(clean.events, [], ["queue"])["valid"]


# ---------------------------------------------------------------- sessions


def _eph(h: H, name: str, owner: int, czxid: int, member: str = "member-0", inc: int = 1) -> None:
    path = f"/jepsen/sessions/{name}"
    h.op("create-eph", "sessions", {"path": path, "member": member, "incarnation": inc},
         result={"path": path, "owner": owner, "czxid": czxid}, zxid=czxid)


def test_sessions_check_clean() -> None:
    h = H()
    _eph(h, "member-0-0", 11, 5)
    h.op("read", "sessions", None, result=["member-0-0"], zxid=6)
    h.op("heartbeat", "sessions", None, result={"session": 11}, zxid=7)
    h.op("read", "sessions", None, result=[], zxid=9)  # expired at 8
    _eph(h, "member-0-1", 12, 10)
    h.op("final-read", "sessions", None, result={"children": ["member-0-1"], "owners": {"member-0-1": 12}}, zxid=11)
    obs = [
        {"kind": "session_state", "member": "member-0", "incarnation": 1, "state": "CONNECTED", "session_id": 11},
        {"kind": "session_state", "member": "member-0", "incarnation": 1, "state": "LOST", "session_id": 11},
        {"kind": "session_state", "member": "member-0", "incarnation": 1, "state": "CONNECTED", "session_id": 12},
        {"kind": "final_session", "member": "member-0", "incarnation": 1, "session_id": 12},
    ]
    result = SessionsWorkload.check(h.events, obs)
    assert result.valid, result.anomalies


def test_sessions_check_catches_early_deletion_reappearance_leaks_and_silent_loss() -> None:
    h = H()
    _eph(h, "member-0-0", 11, 5)
    h.op("read", "sessions", None, result=[], zxid=6)  # gone at 6 ...
    h.op("heartbeat", "sessions", None, result={"session": 11}, zxid=7)  # ... but its session writes at 7
    h.op("read", "sessions", None, result=["member-0-0"], zxid=8)  # and it comes back
    _eph(h, "member-1-1", 21, 9, member="member-1")
    h.op("final-read", "sessions", None, result={"children": ["member-1-1"], "owners": {"member-1-1": 21}}, zxid=10)
    obs = [
        {"kind": "session_state", "member": "member-0", "incarnation": 1, "state": "CONNECTED", "session_id": 11},
        {"kind": "final_session", "member": "member-0", "incarnation": 1, "session_id": 13},
        {"kind": "final_session", "member": "member-1", "incarnation": 1, "session_id": 22},
    ]
    result = SessionsWorkload.check(h.events, obs)
    text = " | ".join(result.anomalies)
    assert "reappeared" in text
    assert "wrote at zxid 7 but its ephemeral was already gone at zxid 6" in text
    assert "ended sessions still present" in text  # 21 is nobody's current session
    assert "listener heard LOST 0 times" in text


def test_sessions_check_connected_after_lost() -> None:
    h = H()
    h.op("final-read", "sessions", None, result={"children": [], "owners": {}}, zxid=1)
    obs = [
        {"kind": "session_state", "member": "m", "incarnation": 1, "state": "CONNECTED", "session_id": 5},
        {"kind": "session_state", "member": "m", "incarnation": 1, "state": "LOST", "session_id": 5},
        {"kind": "session_state", "member": "m", "incarnation": 1, "state": "CONNECTED", "session_id": 5},
    ]
    assert any("CONNECTED again after LOST" in a for a in SessionsWorkload.check(h.events, obs).anomalies)


# ---------------------------------------------------------------- lock


def test_lock_check() -> None:
    h = H()
    h.op("guard-write", "lock/guard", 0, zxid=1)
    h.op("acquire", "lock", None, result={"token": 5, "path": "/l-1"}, zxid=5)
    h.op("guard-write", "lock/guard", 5, result=5, zxid=6)
    h.op("release", "lock", {"token": 5}, zxid=7)
    h.op("guard-write", "lock/guard", 9, result=9, zxid=10, process=1)
    h.op("guard-write", "lock/guard", 3, FAIL, 3, error="refused: 3 < 9", process=2)
    h.op("final-read", "lock/guard", None, result=[5, 9], zxid=11)
    result = LockWorkload.check(h.events, [])
    assert result.valid, result.anomalies
    assert result.stats["refused"] == 1
    bad = H()
    bad.op("guard-write", "lock/guard", 0, zxid=1)
    bad.op("guard-write", "lock/guard", 9, result=9, zxid=2)
    bad.op("guard-write", "lock/guard", 5, result=5, zxid=3)
    bad.op("guard-write", "lock/guard", 11, result=11, zxid=4)
    bad.op("final-read", "lock/guard", None, result=[9, 5, 7], zxid=5)
    result = LockWorkload.check(bad.events, [])
    text = " | ".join(result.anomalies)
    assert "accepted token 5 after 9" in text
    assert "not in token order by zxid" in text
    assert "missing from the register: [(11, 1)]" in text or "missing from the register" in text
    assert "no (ok/info) write put there: [7]" in text
    assert result.lost == 1


# ---------------------------------------------------------------- watches


def _wlog(member: str, inc: int, seq: int, typ: str, mzxid: int, version: int, data: int) -> dict[str, Any]:
    return {"kind": "watch_log", "member": member, "incarnation": inc, "path": "/jepsen/watch/w0",
            "seq": seq, "type": typ, "mzxid": mzxid, "version": version, "data": str(data)}


def test_watches_check() -> None:
    h = H()
    h.op("write", "watch/w0", 0, zxid=1)
    h.op("write", "watch/w0", 1, zxid=2)
    h.op("write", "watch/w0", 2, zxid=3)
    h.op("final-read", "watch/w0", None, result={"value": 2, "mzxid": 3}, zxid=3)
    clean = [_wlog("a", 1, 0, "INIT", 1, 0, 0), _wlog("a", 1, 1, "CHANGED", 2, 1, 1),
             _wlog("a", 1, 2, "CHANGED", 3, 2, 2),
             _wlog("b", 1, 0, "INIT", 1, 0, 0), _wlog("b", 1, 1, "CHANGED", 3, 2, 2)]  # coalesced: fine
    result = WatchesWorkload.check(h.events, clean)
    assert result.valid, result.anomalies
    gap = [_wlog("a", 1, 0, "INIT", 1, 0, 0), _wlog("a", 1, 1, "CHANGED", 2, 1, 1)]
    assert any("(gap)" in a for a in WatchesWorkload.check(h.events, gap).anomalies)
    disorder = clean + [_wlog("c", 1, 0, "INIT", 2, 1, 1), _wlog("c", 1, 1, "CHANGED", 1, 0, 0),
                        _wlog("c", 1, 2, "CHANGED", 3, 2, 2)]
    assert any("order/spurious" in a for a in WatchesWorkload.check(h.events, disorder).anomalies)
    phantom = clean + [_wlog("d", 1, 0, "INIT", 3, 2, 7)]
    text = " | ".join(WatchesWorkload.check(h.events, phantom).anomalies)
    assert "nobody wrote" in text and "seen as" in text


# ---------------------------------------------------------------- nemesis (fake members)


class FakeMember:
    def __init__(self, name: str) -> None:
        self.name = name
        self.incarnation = 1
        self.alive = True
        self.paused = False
        self.pid = 100
        self.log: list[str] = []

    def kill(self) -> None:
        self.alive = False
        self.log.append("kill")

    def restart(self, timeout: float = 0) -> None:
        self.alive = True
        self.incarnation += 1
        self.log.append("restart")

    def pause(self) -> None:
        self.paused = True
        self.log.append("pause")

    def resume(self) -> None:
        self.paused = False
        self.log.append("resume")


class FakeCluster:
    def __init__(self) -> None:
        self.members = [FakeMember(f"member-{i}") for i in range(3)]

    def leader(self, timeout: float = 0) -> FakeMember:
        return self.members[0]


class FakePartitioner:
    name = "fake"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def modes(self) -> tuple[str, ...]:
        return ("isolate", "pair", "oneway")

    def isolate(self, i: int) -> None:
        self.calls.append(("isolate", i))

    def cut_pair(self, i: int, j: int) -> None:
        self.calls.append(("pair", i, j))

    def cut_oneway(self, i: int, j: int) -> None:
        self.calls.append(("oneway", i, j))

    def heal_all(self) -> None:
        self.calls.append(("heal",))


def _nemesis_schedule(seed: int) -> list[tuple[str, Any]]:
    history = History()
    cluster = FakeCluster()
    ctx = RunContext(history, Observations(), cluster, threading.Event(), seed, 0.06, 0.05, 1.0)  # type: ignore[arg-type]
    partitioner = FakePartitioner()
    nemesis = Nemesis(ctx, random.Random(seed), ["kill", "pause", "partition"], partitioner=partitioner,
                      fault_window=(0.01, 0.02), heal_window=(0.01, 0.02), election_timeout_s=0.01)
    nemesis.run(0.6)
    nemesis.heal_all()
    assert all(m.alive and not m.paused for m in cluster.members)
    return [(e.f, {k: v for k, v in (e.value or {}).items() if k not in ("pid", "seconds")})
            for e in history.events]


def test_nemesis_records_every_fault_and_heal_and_is_seeded() -> None:
    schedule = _nemesis_schedule(3)
    kinds = [f for f, _ in schedule]
    assert kinds[-1] == "heal-all"
    assert {"kill", "pause", "partition"} & set(kinds)
    # every fault is healed before the next one starts
    pairs = {"kill": "restart", "pause": "resume", "partition": "heal"}
    open_fault = None
    for f, _ in schedule[:-1]:
        if f in pairs:
            assert open_fault is None, schedule
            open_fault = f
        else:
            assert open_fault is not None and pairs[open_fault] == f, schedule
            open_fault = None
    # the same seed picks the same faults and targets (window lengths are timing)
    again = _nemesis_schedule(3)
    n = min(len(schedule), len(again)) - 1
    assert n >= 2 and again[:n] == schedule[:n]


# ---------------------------------------------------------------- netns command lines


def test_netns_probe_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert netns.probe() == "network namespaces need root"


def test_netns_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    class Done:
        def __init__(self, rc: int = 0, out: str = "") -> None:
            self.returncode, self.stdout, self.stderr = rc, out, ""

    def fake_run(argv: list[str], *, check: bool = True, timeout: float = 20.0) -> Done:
        calls.append(list(argv))
        if argv[:3] == ["ip", "netns", "list"]:
            return Done(out="")
        if "list" in argv and "table" in argv:
            return Done(rc=1)  # no nft table yet
        return Done()

    monkeypatch.setattr(netns, "_run", fake_run)
    monkeypatch.setattr(netns, "probe", lambda need_nft=False: None)
    monkeypatch.setattr(netns.shutil, "which", lambda name: f"/usr/sbin/{name}")
    topo = netns.NetnsTopology(3, prefix="t")
    topo.up()
    assert ["ip", "netns", "add", "t-hub"] in calls
    assert ["ip", "-n", "t-n2", "addr", "add", "10.77.0.2/24", "dev", "eth0"] in calls
    assert topo.exec_prefix(3) == ["ip", "netns", "exec", "t-n3"]
    calls.clear()
    topo.isolate(1)
    assert calls == [["ip", "-n", "t-hub", "link", "set", "p1", "down"]]
    calls.clear()
    topo.cut_oneway(2, 1)
    assert calls[-1] == ["ip", "netns", "exec", "t-hub", "nft", "add", "rule", "bridge", "coordpart", "part",
                         "ip", "saddr", "10.77.0.2", "ip", "daddr", "10.77.0.1", "drop"]
    with pytest.raises(ValueError):
        topo.host(4)
