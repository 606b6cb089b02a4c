"""Tree vs a naive model, driven by hypothesis' stateful testing.

The model is written independently of the tree and as plainly as possible:
a dict of path -> fields, children found by scanning every path, the
visible cversion counted directly (+1 per child create or delete) next to a
separate sequence counter (+1 per child create), and a multi applied to a
deep copy that is thrown away on failure (the tree uses an undo log).
"""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from coord.errors import ErrorCode
from coord.tree import ENDED_SESSION_MEMORY_MS, MAX_ENDED_SESSIONS, Tree
from coord.types import ZnodeStat

OK = int(ErrorCode.OK)
T0 = 1_000_000


def parent(path: str) -> str:
    return path[: path.rfind("/")] or "/"


class Model:
    """ZooKeeper semantics, the slow and obvious way."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict] = {"/": self._node(b"", 0, 0, 0)}
        self.sessions: dict[int, dict] = {}
        self.ended: dict[int, int] = {}  # sid -> time it ended, oldest first; never reopened
        self.zxid = 0
        self.time = 0

    @staticmethod
    def _node(data: bytes, zxid: int, time: int, owner: int) -> dict:
        return {
            "data": data,
            "czxid": zxid,
            "mzxid": zxid,
            "pzxid": zxid,
            "ctime": time,
            "mtime": time,
            "version": 0,
            "cversion": 0,
            "seq": 0,
            "owner": owner,
        }

    def children(self, path: str) -> list[str]:
        return sorted(p[len(path.rstrip("/")) + 1 :] for p in self.nodes if p != "/" and parent(p) == path)

    def stat(self, path: str) -> ZnodeStat:
        n = self.nodes[path]
        return ZnodeStat(
            n["czxid"],
            n["mzxid"],
            n["ctime"],
            n["mtime"],
            n["version"],
            n["cversion"],
            0,
            n["owner"],
            len(n["data"]),
            len(self.children(path)),
            n["pzxid"],
        )

    # -- one entry ------------------------------------------------------

    def apply(self, entry: tuple) -> tuple:
        """Returns (result, events, duplicate)."""
        _, sid, rid, ack, time_ms, op = entry
        session = self.sessions.get(sid)
        if sid and session is None and (op[0] != "open_session" or sid in self.ended):
            return (int(ErrorCode.SESSION_EXPIRED), None), [], False
        if session is not None:
            session["ack"] = max(session["ack"], ack)
            session["results"] = {k: v for k, v in session["results"].items() if k >= session["ack"]}
            if rid < session["ack"]:
                return (int(ErrorCode.STALE_REQUEST), None), [], True
            if rid in session["results"]:
                return session["results"][rid], [], True
            # FIFO per session: only the lowest undecided id applies (a cancel may overtake)
            expected = max(1, session["ack"])
            while expected in session["results"]:
                expected += 1
            if op[0] != "cancel" and rid != expected:
                return (int(ErrorCode.OUT_OF_ORDER), None), [], True
        opening = sid and session is None
        self.time = max(self.time, time_ms)
        if op[0] not in ("keepalive", "sync"):
            self.zxid += 1
        events: list = []
        result = getattr(self, "op_" + op[0])(sid, op, events)
        session = self.sessions.get(sid) if sid else None
        if session is not None and opening:
            session["ack"] = max(session["ack"], rid)  # a session's ids start at its opening request
        if session is not None:
            session["activity"] += 1
            session["ack"] = max(session["ack"], ack)
            session["results"] = {k: v for k, v in session["results"].items() if k >= session["ack"]}
            if rid >= session["ack"]:
                session["results"][rid] = result
        return result, events, False

    # -- data ops -------------------------------------------------------

    def op_create(self, sid: int, op: tuple, events: list) -> tuple:
        _, path, data, flags = op
        if flags & 1 and sid not in self.sessions:
            return (int(ErrorCode.SESSION_EXPIRED), None)
        par = parent(path)
        if par not in self.nodes:
            return (int(ErrorCode.NO_NODE), None)
        if flags & 2:
            path = f"{path}{self.nodes[par]['seq']:010d}"
        if path in self.nodes:
            return (int(ErrorCode.NODE_EXISTS), None)
        if self.nodes[par]["owner"]:
            return (int(ErrorCode.NO_CHILDREN_FOR_EPHEMERALS), None)
        self.nodes[path] = self._node(data, self.zxid, self.time, sid if flags & 1 else 0)
        self.nodes[par].update(
            cversion=self.nodes[par]["cversion"] + 1, seq=self.nodes[par]["seq"] + 1, pzxid=self.zxid
        )
        events += [("created", path), ("child", par)]
        return (OK, (path, self.stat(path)))

    def _remove(self, path: str, events: list) -> None:
        del self.nodes[path]
        par = self.nodes[parent(path)]
        par.update(cversion=par["cversion"] + 1, pzxid=self.zxid)
        events += [("deleted", path), ("child", parent(path))]

    def op_delete(self, sid: int, op: tuple, events: list) -> tuple:
        _, path, version = op
        if path == "/":
            return (int(ErrorCode.BAD_ARGUMENTS), None)
        if path not in self.nodes:
            return (int(ErrorCode.NO_NODE), None)
        if version not in (-1, self.nodes[path]["version"]):
            return (int(ErrorCode.BAD_VERSION), None)
        if self.children(path):
            return (int(ErrorCode.NOT_EMPTY), None)
        self._remove(path, events)
        return (OK, None)

    def op_set(self, sid: int, op: tuple, events: list) -> tuple:
        _, path, data, version = op
        if path not in self.nodes:
            return (int(ErrorCode.NO_NODE), None)
        node = self.nodes[path]
        if version not in (-1, node["version"]):
            return (int(ErrorCode.BAD_VERSION), None)
        node.update(data=data, version=node["version"] + 1, mzxid=self.zxid, mtime=self.time)
        events.append(("changed", path))
        return (OK, self.stat(path))

    def op_check(self, sid: int, op: tuple, events: list) -> tuple:
        _, path, version = op
        if path not in self.nodes:
            return (int(ErrorCode.NO_NODE), None)
        if version not in (-1, self.nodes[path]["version"]):
            return (int(ErrorCode.BAD_VERSION), None)
        return (OK, None)

    def op_multi(self, sid: int, op: tuple, events: list) -> tuple:
        saved = copy.deepcopy((self.nodes, self.sessions))
        results, scratch = [], []
        for index, sub in enumerate(op[1]):
            result = getattr(self, "op_" + sub[0])(sid, sub, scratch)
            if result[0] != OK:
                self.nodes, self.sessions = saved
                rest = len(op[1]) - index - 1
                return (
                    result[0],
                    ((OK, None),) * index
                    + ((result[0], None),)
                    + ((int(ErrorCode.RUNTIME_INCONSISTENCY), None),) * rest,
                )
            results.append(result)
        events += scratch
        return (OK, tuple(results))

    # -- session ops ------------------------------------------------------

    def op_sync(self, sid: int, op: tuple, events: list) -> tuple:
        return (OK, None)

    op_keepalive = op_sync

    def op_open_session(self, sid: int, op: tuple, events: list) -> tuple:
        self.sessions.setdefault(sid, {"timeout": op[1], "activity": 0, "ack": 0, "results": {}})
        return (OK, None)

    def _end(self, sid: int, events: list) -> None:
        for path in sorted(p for p, n in self.nodes.items() if n["owner"] == sid):
            self._remove(path, events)
        del self.sessions[sid]
        self.ended[sid] = self.time
        while len(self.ended) > MAX_ENDED_SESSIONS or min(self.ended.values()) < self.time - ENDED_SESSION_MEMORY_MS:
            del self.ended[next(iter(self.ended))]

    def op_close_session(self, sid: int, op: tuple, events: list) -> tuple:
        self._end(sid, events)
        return (OK, None)

    def op_expire_session(self, sid: int, op: tuple, events: list) -> tuple:
        target = self.sessions.get(op[1])
        if target is None or target["activity"] != op[2]:
            return (OK, False)
        self._end(op[1], events)
        return (OK, True)

    def op_cancel(self, sid: int, op: tuple, events: list) -> tuple:
        session = self.sessions[sid]
        if op[1] >= session["ack"] and op[1] not in session["results"]:
            session["results"][op[1]] = (int(ErrorCode.CANCELLED), None)
        return (OK, None)


# ------------------------------------------------------------------ strategies

names = st.sampled_from(["a", "b", "c"])
paths = st.lists(names, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
prefixes = paths.map(lambda p: p + "/") | paths.map(lambda p: p + "-") | st.just("/")
values = st.sampled_from([b"", b"x", b"yy"])
versions = st.integers(-1, 2)
times = st.integers(T0 - 5, T0 + 50)


def creates(draw_prefix: bool) -> st.SearchStrategy:
    return st.tuples(st.just("create"), prefixes if draw_prefix else paths, values, st.sampled_from([2, 3]))


subops = st.one_of(
    st.tuples(st.just("create"), paths, values, st.sampled_from([0, 1])),
    creates(True),
    st.tuples(st.just("delete"), paths, versions),
    st.tuples(st.just("set"), paths, values, versions),
    st.tuples(st.just("check"), paths, versions),
)


def _system_entry(op: st.SearchStrategy, session: int = 0) -> st.SearchStrategy:
    return op.map(lambda o: (1, session, session, 0, T0, o))


garbage = st.one_of(
    st.none(),
    _system_entry(st.tuples(st.just("create"), st.just("a"), values, st.just(0))),  # relative path
    _system_entry(st.tuples(st.just("set"), paths, st.text(max_size=2), versions)),  # str value
    _system_entry(st.just(("multi", (("sync",),)))),  # not allowed in a multi
    _system_entry(st.just(("expire_session", 1, 0)), session=1),  # only the system expires
    _system_entry(st.tuples(st.just("create"), paths, values, st.just(16))),  # unsupported flag
    st.lists(st.integers(), max_size=6).map(tuple),
)


class TreeVsModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tree = Tree()
        self.model = Model()
        self.next_rid = {1: 1, 2: 1, 3: 1}
        self.next_fresh_sid = 4
        self.sent: list[tuple] = []

    def send(self, sid: int, op: tuple, time_ms: int, ack_back: int = 0) -> None:
        rid = 0
        ack = 0
        if sid:
            rid = self.next_rid[sid]
            self.next_rid[sid] += 1
            ack = max(0, rid - ack_back) if ack_back else 0
        self.deliver((1, sid, rid, ack, time_ms, op))

    def deliver(self, entry: tuple) -> None:
        self.sent.append(entry)
        applied = self.tree.apply(entry)
        result, events, duplicate = self.model.apply(entry)
        assert applied.result == result, (entry, applied.result, result)
        assert list(applied.events) == events
        assert applied.duplicate == duplicate
        assert applied.zxid == self.model.zxid

    def sender(self, data: st.DataObject) -> int:
        """Mostly the system or an open session; sometimes any session."""
        live = [0] + sorted(self.model.sessions)
        return data.draw(st.sampled_from(live * 4 + [1, 2, 3]))

    def existing(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(self.model.nodes, reverse=True)))  # the root last

    def new_child(self, data: st.DataObject) -> str:
        base = self.existing(data)
        return ("" if base == "/" else base) + "/" + data.draw(names)

    @rule(data=st.data(), value=values, flags=st.sampled_from([0, 0, 1, 2, 3]), time_ms=times)
    def create_child(self, data: st.DataObject, value: bytes, flags: int, time_ms: int) -> None:
        path = self.new_child(data)
        if flags & 2 and data.draw(st.booleans()):
            path = path[: path.rfind("/") + 1]  # a prefix ending in "/"
        self.send(self.sender(data), ("create", path, value, flags), time_ms)

    @rule(data=st.data(), version=versions, time_ms=times, ack_back=st.sampled_from([0, 0, 1, 3]))
    def delete_existing(self, data: st.DataObject, version: int, time_ms: int, ack_back: int) -> None:
        self.send(self.sender(data), ("delete", self.existing(data), version), time_ms, ack_back)

    @rule(data=st.data(), value=values, version=versions, time_ms=times)
    def set_existing(self, data: st.DataObject, value: bytes, version: int, time_ms: int) -> None:
        self.send(self.sender(data), ("set", self.existing(data), value, version), time_ms)

    @rule(data=st.data(), op=subops, time_ms=times, ack_back=st.sampled_from([0, 0, 1, 3]))
    def any_data_op(self, data: st.DataObject, op: tuple, time_ms: int, ack_back: int) -> None:
        self.send(self.sender(data), op, time_ms, ack_back)

    @rule(data=st.data(), ops=st.lists(subops, max_size=4), time_ms=times)
    def multi(self, data: st.DataObject, ops: list, time_ms: int) -> None:
        self.send(self.sender(data), ("multi", tuple(ops)), time_ms)

    def known_sid(self, data: st.DataObject) -> int:
        return data.draw(st.sampled_from(sorted(self.next_rid)))

    @rule(
        sid=st.sampled_from([1, 2, 3, 0]),
        timeout=st.sampled_from([1000, 2000]),
        time_ms=times,
        then=st.sampled_from([(), ("keepalive",), ("sync",)]),
    )
    def open_session(self, sid: int, timeout: int, time_ms: int, then: tuple) -> None:
        """sid 0: a fresh id (1-3 are reused, so ended ones are tried again)."""
        if sid == 0:
            sid = self.next_fresh_sid
            self.next_fresh_sid += 1
            self.next_rid[sid] = 1
        self.send(sid, ("open_session", timeout), time_ms)
        if then:
            self.send(sid, then, time_ms)

    @rule(data=st.data(), op=st.sampled_from([("keepalive",), ("sync",), ("sync",), ("close_session",)]))
    def session_op(self, data: st.DataObject, op: tuple) -> None:
        self.send(self.known_sid(data), op, T0)

    @rule(data=st.data(), stale=st.sampled_from([True, True, False]))
    def expire(self, data: st.DataObject, stale: bool) -> None:
        sid = self.known_sid(data)
        info = self.tree.session_info(sid)
        seen = (info.activity if info else 0) - (1 if stale else 0)
        self.send(0, ("expire_session", sid, max(seen, 0)), T0)

    @rule(data=st.data(), ahead=st.integers(-2, 2))
    def cancel(self, data: st.DataObject, ahead: int) -> None:
        sid = data.draw(st.sampled_from(sorted(self.model.sessions) * 3 + [1, 2, 3]))
        self.send(sid, ("cancel", max(1, self.next_rid[sid] + ahead)), T0)

    @precondition(lambda self: self.sent)
    @rule(pick=st.integers(0, 10**6))
    def retransmit(self, pick: int) -> None:
        self.deliver(self.sent[pick % len(self.sent)])

    @rule(entry=garbage)
    def bad_input(self, entry: object) -> None:
        before = self.tree.snapshot()
        applied = self.tree.apply(entry)
        assert applied.result[0] == int(ErrorCode.BAD_ARGUMENTS)
        assert self.tree.snapshot() == before

    @rule()
    def snapshot_round_trip(self) -> None:
        data = self.tree.snapshot()
        self.tree = Tree.restore(data)
        assert self.tree.snapshot() == data

    @invariant()
    def same_state(self) -> None:
        self.tree.check_invariants()
        model = self.model
        assert self.tree.zxid == model.zxid and self.tree.last_time_ms == model.time
        assert self.tree.node_count() == len(model.nodes)
        for path in model.nodes:
            assert self.tree.get(path) == (model.nodes[path]["data"], model.stat(path)), path
            assert self.tree.children(path) == model.children(path), path
        assert self.tree.session_ids() == sorted(model.sessions)
        for sid, session in model.sessions.items():
            info = self.tree.session_info(sid)
            owned = tuple(sorted(p for p, n in model.nodes.items() if n["owner"] == sid))
            assert info == (session["timeout"], session["activity"], owned)
            for rid in range(self.next_rid[sid] + 3):
                assert self.tree.request_result(sid, rid) == session["results"].get(rid), (sid, rid)


TreeVsModel.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_tree_matches_model = TreeVsModel.TestCase
