"""Fuzz coord's public API (``Coordinator``) with hypothesis.

One started single-member cluster serves the whole module. A stateful
machine drives the kazoo-style API with a mix of valid and invalid
arguments: paths (valid, malformed, unicode, forbidden characters, at and
past the length limit, wrong types), values (bytes, str, None, oversized,
wrong types), versions (ints incl. negative and out of 32 bits, bools,
floats, None), flags, per-call timeouts, and transactions mixing valid and
invalid ops. For every call:

* a bad argument raises at once a ``CoordError`` subclass, ``TypeError`` or
  ``ValueError`` whose message is non-empty and names the argument or shows
  the value, and changes nothing: the member's zxid and snapshot are
  byte-identical before and after, and no request is left in flight;
* a valid call gives exactly what a naive model of the znode tree says
  (results, kazoo-named errors, all-or-nothing transactions, sequence
  numbers, cversions);
* after every step the tree's invariants hold and its subtree equals the
  model's.

Tests may read the member's tree through private attributes
(``member._member._tree``).
"""

from __future__ import annotations

import copy
import enum
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import free_ports
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import coord
from coord import errors
from coord.paths import PATH_MAX_CHARS

MAX_DATA = 4096  # a small max_data_bytes keeps "huge" values cheap
SEQ_DIGITS = 10


class Version(enum.IntEnum):  # int subclasses are converted, hence valid
    ZERO = 0


class PathStr(str):  # so are str subclasses
    pass


def _never_called(*_args: object) -> None:
    raise AssertionError("a fuzz watch fired")


@dataclass
class Arg:
    """A drawn argument and whether coord must accept it."""

    value: Any
    ok: bool = True


@dataclass
class Node:
    data: bytes = b""
    version: int = 0
    ephemeral: bool = False
    ccount: int = 0  # child creates, as ZooKeeper's DataNode counts them
    children: set[str] = field(default_factory=set)


class ModelError(Exception):
    """The model's verdict for a valid call that ZooKeeper refuses."""

    def __init__(self, kind: type[errors.ZookeeperError]) -> None:
        super().__init__(kind.__name__)
        self.kind = kind


def parent_of(path: str) -> str:
    return path[: path.rfind("/")] or "/"


def basename(path: str) -> str:
    return path[path.rfind("/") + 1 :]


class Model:
    """A naive znode tree: a dict of paths."""

    def __init__(self, root: str) -> None:
        self.root = root
        # "/" stands for the rest of the tree: it exists, it is never compared.
        self.nodes: dict[str, Node] = {"/": Node(children={root[1:]}), root: Node()}

    def subtree(self) -> list[str]:
        return sorted(p for p in self.nodes if p == self.root or p.startswith(self.root + "/"))

    def clone(self) -> Model:
        return copy.deepcopy(self)

    def _add(self, path: str, data: bytes, ephemeral: bool) -> None:
        parent = self.nodes[parent_of(path)]
        parent.children.add(basename(path))
        parent.ccount += 1
        self.nodes[path] = Node(data=data, ephemeral=ephemeral)

    def _ensure(self, path: str) -> bool:
        """What ``Coordinator.ensure_path`` does: create every missing node
        along ``path`` (persistent, empty), top-down; True if ``path`` itself
        was created."""
        current, created = "", False
        for name in path.strip("/").split("/") if path != "/" else []:
            current = f"{current}/{name}"
            created = False
            if current in self.nodes:
                continue
            if self.nodes[parent_of(current)].ephemeral:
                raise ModelError(errors.NoChildrenForEphemeralsError)
            self._add(current, b"", False)
            created = True
        return created

    def create(self, path: str, data: bytes, ephemeral: bool, sequence: bool, makepath: bool = False) -> str:
        parent_path = parent_of(path)
        if parent_path not in self.nodes:
            if not makepath:
                raise ModelError(errors.NoNodeError)
            self._ensure(parent_path)
        parent = self.nodes[parent_path]
        final = f"{path}{parent.ccount:0{SEQ_DIGITS}d}" if sequence else path
        if final in self.nodes:
            raise ModelError(errors.NodeExistsError)
        if parent.ephemeral:
            raise ModelError(errors.NoChildrenForEphemeralsError)
        self._add(final, data, ephemeral)
        return final

    def ensure_path(self, path: str) -> str | bool:
        return path if self._ensure(path) else True

    def _node(self, path: str, version: int) -> Node:
        node = self.nodes.get(path)
        if node is None:
            raise ModelError(errors.NoNodeError)
        if version != -1 and version != node.version:
            raise ModelError(errors.BadVersionError)
        return node

    def set(self, path: str, data: bytes, version: int) -> Node:
        node = self._node(path, version)
        node.data = data
        node.version += 1
        return node

    def check(self, path: str, version: int) -> bool:
        self._node(path, version)
        return True

    def delete(self, path: str, version: int) -> bool:
        if path == "/":
            raise ModelError(errors.BadArgumentsError)
        node = self._node(path, version)
        if node.children:
            raise ModelError(errors.NotEmptyError)
        del self.nodes[path]
        self.nodes[parent_of(path)].children.discard(basename(path))
        return True

    def delete_recursive(self, path: str) -> bool:
        if path == "/":
            raise ModelError(errors.BadArgumentsError)
        if path not in self.nodes:
            return True
        for gone in [p for p in self.nodes if p == path or p.startswith(path + "/")]:
            del self.nodes[gone]
        self.nodes[parent_of(path)].children.discard(basename(path))
        return True


NAMES = ["a", "b", "c", "é", "日本", "x y", "a-", "zookeeper", "0000000000", "\u00a0"]

BAD_PATH_TYPES: list[Any] = [None, 1, 1.5, b"/x", ["/x"], ("/x",)]
BAD_VALUES: list[Any] = ["text", 1, 1.5, bytearray(b"x"), memoryview(b"x"), [1], True]
BAD_VERSIONS: list[Any] = [True, False, 1.0, None, "1", 2**31, -(2**31) - 1, 10**30, -(10**30), math.nan]
GOOD_VERSIONS: list[Any] = [-1, -1, -1, 0, 0, 1, 2, 3, -2, 2**31 - 1, -(2**31), Version.ZERO]
BAD_FLAGS: list[Any] = [0, 1, None, "yes", 1.0]
BAD_TIMEOUTS: list[Any] = [0, -1, -0.5, math.nan, math.inf, -math.inf, "1", True, [1]]
BAD_WATCHES: list[Any] = [1, "callback", object()]


def bad_paths(root: str, sequential: bool) -> list[Any]:
    """Strings that break ZooKeeper's path rules (or coord's length limit);
    for a sequential create, the prefix plus its 10-digit suffix must."""
    paths = [
        "",
        "a",
        "a/b",
        root[1:],
        root + "//",
        root + "//a",
        root + "/./a",
        root + "/../a",
        root + "/a\x00b",
        root + "/\x01",
        root + "/\x1f",
        root + "/\x7f",
        root + "/\u0085",
        root + "/\ud800",
        root + "/\uf8ff",
        root + "/\ufff0",
        root + "/\U0001f600",
        root + "/" + "x" * (PATH_MAX_CHARS - len(root)),  # one past the limit
        "/" + "a/" * 3000 + "a",
    ]
    if sequential:  # one past the limit once the suffix is appended
        paths.append(root + "/" + "x" * (PATH_MAX_CHARS - len(root) - SEQ_DIGITS))
    else:  # these become valid names with a suffix ("/a/" -> "/a/0000000000")
        paths += [root + "/", root + "/a/", root + "/..", root + "/a/."]
    return paths


_roots = itertools.count()


class ApiMachine(RuleBasedStateMachine):
    member: coord.Coordinator

    def __init__(self) -> None:
        super().__init__()
        self.root = f"/fuzz{next(_roots)}"
        self.member.create(self.root, b"")
        self.model = Model(self.root)
        self.session_id = self.member.session_id

    # ------------------------------------------------------------ drawing arguments

    def draw_path(self, data: st.DataObject, *, sequential: bool = False) -> Arg:
        if data.draw(st.integers(0, 5), label="path kind") == 0:
            if data.draw(st.booleans()):
                return Arg(data.draw(st.sampled_from(BAD_PATH_TYPES), label="bad path type"), ok=False)
            return Arg(data.draw(st.sampled_from(bad_paths(self.root, sequential)), label="bad path"), ok=False)
        bases = [p for p in self.model.subtree()] or [self.root]
        base = data.draw(st.sampled_from(bases), label="base node")
        choice = data.draw(st.sampled_from(["existing", "child", "child", "grandchild", "long", "subclass"]))
        if choice == "existing":
            path = base
        elif choice == "grandchild":
            path = f"{base}/{data.draw(st.sampled_from(NAMES))}/{data.draw(st.sampled_from(NAMES))}"
        elif choice == "long":  # exactly at the limit (with the suffix, for a sequential create)
            limit = PATH_MAX_CHARS - (SEQ_DIGITS if sequential else 0)
            path = self.root + "/" + "L" * (limit - len(self.root) - 1)
        else:
            path = f"{base}/{data.draw(st.sampled_from(NAMES))}"
        if sequential and (path == self.root or data.draw(st.booleans(), label="prefix ends with /")):
            path = base + "/"  # never a sequential child of "/": it would land outside this subtree
        # Children of a node at the length limit are past it: bad input.
        ok = len(path) + (SEQ_DIGITS if sequential else 0) <= PATH_MAX_CHARS
        return Arg(PathStr(path) if choice == "subclass" else path, ok=ok)

    def draw_value(self, data: st.DataObject, *, none_ok: bool = True) -> Arg:
        kind = data.draw(st.integers(0, 7), label="value kind")
        if kind == 0:
            return Arg(data.draw(st.sampled_from(BAD_VALUES), label="bad value"), ok=False)
        if kind == 1:
            return Arg(b"v" * data.draw(st.sampled_from([MAX_DATA + 1, 4 * MAX_DATA, (1 << 20) + 1])), ok=False)
        if kind == 2:
            return Arg(None, ok=none_ok)
        if kind == 3:
            return Arg(b"m" * MAX_DATA)  # exactly at the limit
        return Arg(data.draw(st.binary(max_size=32), label="value"))

    def draw_version(self, data: st.DataObject) -> Arg:
        if data.draw(st.integers(0, 4), label="version kind") == 0:
            return Arg(data.draw(st.sampled_from(BAD_VERSIONS), label="bad version"), ok=False)
        path_version = data.draw(st.sampled_from(GOOD_VERSIONS), label="version")
        return Arg(path_version)

    def draw_flag(self, data: st.DataObject, name: str) -> Arg:
        if data.draw(st.integers(0, 9), label=f"{name} kind") == 0:
            return Arg(data.draw(st.sampled_from(BAD_FLAGS), label=f"bad {name}"), ok=False)
        return Arg(data.draw(st.booleans(), label=name))

    def draw_timeout(self, data: st.DataObject) -> Arg:
        kind = data.draw(st.integers(0, 9), label="timeout kind")
        if kind == 0:
            return Arg(data.draw(st.sampled_from(BAD_TIMEOUTS), label="bad timeout"), ok=False)
        return Arg(None if kind < 6 else data.draw(st.sampled_from([5, 5.0, 30.0])))

    def draw_watch(self, data: st.DataObject) -> Arg:
        kind = data.draw(st.integers(0, 9), label="watch kind")
        if kind == 0:
            return Arg(data.draw(st.sampled_from(BAD_WATCHES), label="bad watch"), ok=False)
        return Arg(None)

    # ------------------------------------------------------------ checking calls

    def _state(self) -> tuple[int, bytes, int]:
        member = self.member._member
        in_flight = member.status().requests_in_flight
        with member._lock:
            return member._tree.zxid, member._tree.snapshot(), in_flight

    def call(self, args: dict[str, Arg], action: Callable[[], Any], expect: Callable[[], Any]) -> None:
        """Run ``action``; with a bad argument it must raise and change
        nothing, else it must match ``expect()`` (run on the model)."""
        bad = {name: arg.value for name, arg in args.items() if not arg.ok}
        if bad:
            before = self._state()
            with pytest.raises((coord.CoordError, TypeError, ValueError)) as info:
                action()
            assert_names_problem(info.value, bad)
            assert self._state() == before, f"a call with bad {sorted(bad)} changed the tree"
            return
        try:
            expected: Any = ("ok", expect())
        except ModelError as verdict:  # the model changed only as coord must (makepath's ancestors)
            expected = ("error", verdict.kind)
        try:
            actual: Any = ("ok", action())
        except errors.ZookeeperError as exc:
            assert str(exc).strip(), f"{type(exc).__name__} raised with an empty message"
            actual = ("error", type(exc))
        if expected[0] == "error":
            assert actual == expected, f"expected {expected[1].__name__}, got {repr(actual)[:300]}"
        else:
            assert actual[0] == "ok", f"expected success {repr(expected[1])[:300]}, got {actual[1].__name__}"
            compare_result(actual[1], expected[1])

    # ------------------------------------------------------------ rules

    @rule(data=st.data())
    def create(self, data: st.DataObject) -> None:
        sequence = self.draw_flag(data, "sequence")
        sequential = sequence.value is True
        args = {
            "path": self.draw_path(data, sequential=sequential),
            "value": self.draw_value(data),
            "ephemeral": self.draw_flag(data, "ephemeral"),
            "sequence": sequence,
            "makepath": self.draw_flag(data, "makepath"),
            "timeout": self.draw_timeout(data),
        }
        use_async = data.draw(st.booleans(), label="async") and args["makepath"].value is False
        v = {name: arg.value for name, arg in args.items()}

        def action() -> Any:
            if use_async:
                return self.member.create_async(
                    v["path"], v["value"], ephemeral=v["ephemeral"], sequence=v["sequence"], timeout=v["timeout"]
                ).result(timeout=30)
            return self.member.create(
                v["path"], v["value"], ephemeral=v["ephemeral"], sequence=v["sequence"],
                makepath=v["makepath"], timeout=v["timeout"],
            )

        def expect() -> Any:
            value = b"" if v["value"] is None else v["value"]
            return self.model.create(str(v["path"]), value, v["ephemeral"], v["sequence"], v["makepath"])

        self.call(args, action, expect)

    @rule(data=st.data())
    def set_data(self, data: st.DataObject) -> None:
        args = {
            "path": self.draw_path(data),
            "value": self.draw_value(data),
            "version": self.draw_version(data),
            "timeout": self.draw_timeout(data),
        }
        use_async = data.draw(st.booleans(), label="async")
        v = {name: arg.value for name, arg in args.items()}

        def action() -> Any:
            if use_async:
                return self.member.set_async(v["path"], v["value"], v["version"], timeout=v["timeout"]).result(30)
            return self.member.set(v["path"], v["value"], v["version"], timeout=v["timeout"])

        def expect() -> Any:
            value = b"" if v["value"] is None else v["value"]
            return self.model.set(str(v["path"]), value, int(v["version"]))

        self.call(args, action, expect)

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        args = {
            "path": self.draw_path(data),
            "version": self.draw_version(data),
            "recursive": self.draw_flag(data, "recursive"),
            "timeout": self.draw_timeout(data),
        }
        if data.draw(st.integers(0, 19), label="delete the root") == 0:
            args["path"] = Arg("/")
        v = {name: arg.value for name, arg in args.items()}

        def action() -> Any:
            return self.member.delete(v["path"], v["version"], recursive=v["recursive"], timeout=v["timeout"])

        def expect() -> Any:
            if v["recursive"]:
                return self.model.delete_recursive(str(v["path"]))
            return self.model.delete(str(v["path"]), int(v["version"]))

        self.call(args, action, expect)

    @rule(data=st.data())
    def ensure_path(self, data: st.DataObject) -> None:
        args = {"path": self.draw_path(data)}
        path = args["path"].value
        self.call(args, lambda: self.member.ensure_path(path), lambda: self.model.ensure_path(str(path)))

    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        args = {"path": self.draw_path(data), "watch": self.draw_watch(data)}
        kind = data.draw(st.sampled_from(["get", "exists", "get_children", "get_children_data", "sync"]))
        use_async = data.draw(st.booleans(), label="async")
        if kind == "get_children_data":
            args["include_data"] = self.draw_flag(data, "include_data")
        if kind == "sync":
            args = {"path": args["path"], "timeout": self.draw_timeout(data)}
        v = {name: arg.value for name, arg in args.items()}
        m = self.member

        def action() -> Any:
            if kind == "get":
                return (m.get_async(v["path"], v["watch"]).result(1) if use_async else m.get(v["path"], v["watch"]))
            if kind == "exists":
                return m.exists_async(v["path"], v["watch"]).result(1) if use_async else m.exists(v["path"], v["watch"])
            if kind == "get_children":
                call = m.get_children_async if use_async else m.get_children
                result = call(v["path"], v["watch"])
                return result.result(1) if use_async else result
            if kind == "get_children_data":
                call = m.get_children_async if use_async else m.get_children
                result = call(v["path"], v["watch"], include_data=v["include_data"])
                return result.result(1) if use_async else result
            return m.sync_async(v["path"], v["timeout"]).result(30) if use_async else m.sync(v["path"], v["timeout"])

        def expect() -> Any:
            path = str(v["path"])
            if kind == "sync":
                return path
            node = self.model.nodes.get(path)
            if kind == "exists":
                return None if node is None else node
            if node is None:
                raise ModelError(errors.NoNodeError)
            if kind == "get":
                return (node.data, node)
            if kind == "get_children_data" and v["include_data"]:
                return (sorted(node.children), node)
            return sorted(node.children)

        self.call(args, action, expect)

    @rule(data=st.data())
    def transaction(self, data: st.DataObject) -> None:
        """Ops added one by one (a bad one raises at once and is not added),
        then an all-or-nothing commit."""
        txn = self.member.transaction()
        added: list[tuple[str, dict[str, Any]]] = []
        for _ in range(data.draw(st.integers(0, 5), label="ops")):
            kind = data.draw(st.sampled_from(["create", "delete", "set_data", "check"]))
            if kind == "create":
                sequence = self.draw_flag(data, "sequence")
                args = {
                    "path": self.draw_path(data, sequential=sequence.value is True),
                    "value": self.draw_value(data, none_ok=False),  # kazoo's transactions refuse None
                    "ephemeral": self.draw_flag(data, "ephemeral"),
                    "sequence": sequence,
                }
            elif kind == "set_data":
                args = {"path": self.draw_path(data), "value": self.draw_value(data, none_ok=False),
                        "version": self.draw_version(data)}
            else:
                args = {"path": self.draw_path(data), "version": self.draw_version(data)}
            v = {name: arg.value for name, arg in args.items()}
            oversized = kind in ("create", "set_data") and type(v["value"]) is bytes and len(v["value"]) > MAX_DATA
            if oversized:  # refused when added, against the member's limit (README: a bad op raises when added)
                args["value"] = Arg(v["value"], ok=False)
            bad = {name: arg.value for name, arg in args.items() if not arg.ok}
            method = getattr(txn, kind)
            if bad:
                before = self._state()
                with pytest.raises((coord.CoordError, TypeError, ValueError)) as info:
                    method(**v)
                assert_names_problem(info.value, bad)
                assert self._state() == before
                continue
            method(**v)
            added.append((kind, v))

        timeout = self.draw_timeout(data)
        too_big = any(k in ("create", "set_data") and len(a["value"]) > MAX_DATA for k, a in added)
        if not timeout.ok or too_big:
            before = self._state()
            with pytest.raises((coord.CoordError, TypeError, ValueError)) as info:
                txn.commit(timeout=timeout.value)
            assert_names_problem(info.value, {"timeout": timeout.value} if not timeout.ok else {"value": None})
            assert self._state() == before
            return

        trial = self.model.clone()
        expected: list[Any] = []
        failed_at = None
        for index, (kind, a) in enumerate(added):
            try:
                if kind == "create":
                    expected.append(trial.create(str(a["path"]), a["value"], a["ephemeral"], a["sequence"]))
                elif kind == "delete":
                    expected.append(trial.delete(str(a["path"]), int(a["version"])))
                elif kind == "set_data":
                    expected.append(copy.deepcopy(trial.set(str(a["path"]), a["value"], int(a["version"]))))
                else:
                    expected.append(trial.check(str(a["path"]), int(a["version"])))
            except ModelError as verdict:
                failed_at = (index, verdict.kind)
                break
        results = txn.commit(timeout=timeout.value)
        assert len(results) == len(added)
        if failed_at is None:
            for got, want in zip(results, expected, strict=True):
                compare_result(got, copy.deepcopy(want))
            self.model = trial
            return
        index, kind = failed_at
        assert [type(r) for r in results[:index]] == [errors.RolledBackError] * index, results
        assert type(results[index]) is kind, (results, kind)
        assert all(type(r) is errors.RuntimeInconsistency for r in results[index + 1 :]), results

    # ------------------------------------------------------------ invariants

    @invariant()
    def tree_matches_model(self) -> None:
        member = self.member._member
        with member._lock:
            tree = member._tree
            tree.check_invariants()
            actual = {p: tree.get(p) for p in list(tree._nodes) if p == self.root or p.startswith(self.root + "/")}
            children = {p: tree.children(p) for p in actual}
        assert sorted(actual) == self.model.subtree()
        for path in self.model.subtree():
            node = self.model.nodes[path]
            data, stat = actual[path]
            assert data == node.data, path
            assert stat.version == node.version, path
            assert stat.ephemeralOwner == (self.session_id if node.ephemeral else 0), path
            assert stat.numChildren == len(node.children), path
            assert stat.cversion == 2 * node.ccount - len(node.children), path
            assert children[path] == sorted(node.children), path

    def teardown(self) -> None:
        self.member.delete(self.root, recursive=True)
        assert self.member.exists(self.root) is None


def compare_result(actual: Any, expected: Any) -> None:
    """A coord result against the model's (Stats as far as the model knows)."""
    if isinstance(expected, Node):
        assert isinstance(actual, coord.ZnodeStat), actual
        assert actual.version == expected.version
        assert actual.dataLength == len(expected.data)
        assert actual.numChildren == len(expected.children)
        return
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), (actual, expected)
        for got, want in zip(actual, expected, strict=True):
            compare_result(got, want)
        return
    assert actual == expected, (actual, expected)


def assert_names_problem(exc: BaseException, bad: dict[str, Any]) -> None:
    """A clear error: non-empty, naming a bad argument or showing its value."""
    message = str(exc)
    assert message.strip(), f"{type(exc).__name__} with an empty message for bad {sorted(bad)}"
    shown = [repr(value)[:40] for value in bad.values()] + [str(value)[:40] for value in bad.values()]
    assert any(name in message for name in bad) or any(s and s in message for s in shown), (
        f"{type(exc).__name__}({message!r}) names none of the bad arguments {bad!r}"
    )


@pytest.fixture(scope="module")
def member() -> Iterator[coord.Coordinator]:
    """One started single-member cluster for the whole module."""
    running = coord.Coordinator(
        f"127.0.0.1:{free_ports(1)[0]}",
        peers=[],
        session_timeout=600.0,  # no keepalive (every timeout/3) may change the snapshot mid-test
        max_data_bytes=MAX_DATA,
        request_timeout=10.0,
    )
    running.start(timeout=15)
    try:
        yield running
    finally:
        running.stop()


def test_public_api_fuzz(member: coord.Coordinator) -> None:
    ApiMachine.member = member
    run_state_machine_as_test(
        ApiMachine,
        settings=settings(
            max_examples=120,
            stateful_step_count=40,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            # Shrinking a 40-step run against a live member can take minutes;
            # the printed steps of the first failure are the reproduction.
            phases=[Phase.explicit, Phase.generate],
            report_multiple_bugs=False,
        ),
    )
    member.sync()
    assert member.get_children("/") == []
