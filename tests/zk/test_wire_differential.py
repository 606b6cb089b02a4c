"""The same raw request sequence against a real ZooKeeper 3.8 and against
coord's endpoint: error codes, multi result encodings and reply bodies must
match (zxids and times aside). This is where ZooKeeper's multi error
encoding, its create-mode checks and its watch-management answers are
pinned down."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from zk_server import zookeeper_server  # noqa: F401 - session fixture (skips without ZooKeeper)

from coord.zk import jute
from coord.zk.jute import OpCode as O  # noqa: N814 - short, as in a transcript

from .conftest import ZkCluster
from .rawclient import RawClient, create_record

pytestmark = [pytest.mark.cluster]


def _transcript(address: str, base: str) -> list[tuple[Any, ...]]:  # noqa: PLR0915 - one linear scenario
    out: list[tuple[Any, ...]] = []
    d = base + "/d"
    with RawClient(address) as c:
        c.connect(4000)
        out.append(("create base", c.create(base)))
        out.append(("create", c.create(d, b"x")))
        out.append(("create dup", c.create(d, b"x")))
        out.append(("create noparent", c.create(base + "/q/r", b"x")))
        out.append(("create badpath", c.create("d", b"x")))
        out.append(("create trailing slash", c.create(base + "/t/", b"x")))
        out.append(("create trailing slash, parent exists", c.create(base + "/", b"x")))
        out.append(("create NUL", c.create(base + "/a\0b", b"x")))
        out.append(("create double slash", c.create(base + "//b", b"x")))
        empty_acl = jute.string_(base + "/ea") + jute.buffer_(b"") + jute.acls_([]) + jute.int_(0)
        out.append(("create empty ACL", c.call(O.CREATE, empty_acl)[0]))
        out.append(("create badflags", c.create(base + "/f", b"x", 99)))
        out.append(("create container via create", c.create(base + "/cc", b"x", 4)))
        out.append(("create ttl via create", c.create(base + "/tt", b"x", 5)))
        out.append(("exists missing", c.exists(base + "/nope")))
        out.append(("get missing", c.get_data(base + "/nope")[0]))
        out.append(("create child", c.create(d + "/c", b"")))
        out.append(("create seq", c.create(d + "/s-", b"", 2)))
        out.append(("delete nonempty", c.delete(d)))
        out.append(("delete badversion", c.delete(d + "/c", 5)))
        out.append(("set badversion", c.set_data(d, b"y", 9)))
        out.append(("delete root", c.delete("/")))
        create = (O.CREATE, create_record(base + "/m1"))
        out.append(
            (
                "multi fail",
                c.multi([create, (O.CREATE, create_record(d)), (O.DELETE, jute.string_(base + "/x") + jute.int_(-1))]),
            )
        )
        out.append(
            (
                "multi badpath",
                c.multi([create, (O.CREATE, create_record("bad")), (O.CHECK, jute.string_(d) + jute.int_(0))]),
            )
        )
        out.append(("multi trailing slash", c.multi([create, (O.CREATE, create_record(base + "/t/x/"))])))
        ok_ops = [
            (O.CREATE, create_record(base + "/m2")),
            (O.CHECK, jute.string_(d) + jute.int_(0)),
            (O.SET_DATA, jute.string_(d) + jute.buffer_(b"y") + jute.int_(0)),
            (O.DELETE, jute.string_(base + "/m2") + jute.int_(-1)),
        ]
        out.append(("multi ok", c.multi(ok_ops)))
        out.append(("multi empty", c.multi([])))
        out.append(("multi check fail", c.multi([(O.CHECK, jute.string_(d) + jute.int_(7))])))
        err, _z, r = c.call(O.SYNC, jute.string_(d))
        out.append(("sync", err, r.string()))
        for label, watcher_type in (("none any", 3), ("none data", 2)):
            out.append((f"checkWatches {label}", c.call(O.CHECK_WATCHES, jute.string_(d) + jute.int_(watcher_type))[0]))
        out.append(("removeWatches none", c.call(O.REMOVE_WATCHES, jute.string_(d) + jute.int_(2))[0]))
        c.get_data(d, watch=True)
        out.append(("checkWatches data", c.call(O.CHECK_WATCHES, jute.string_(d) + jute.int_(2))[0]))
        out.append(("checkWatches child", c.call(O.CHECK_WATCHES, jute.string_(d) + jute.int_(1))[0]))
        out.append(("removeWatches any", c.call(O.REMOVE_WATCHES, jute.string_(d) + jute.int_(3))[0]))
        out.append(("ephemeral", c.create(base + "/e", b"", 1)))
        out.append(("child of ephemeral", c.create(base + "/e/x", b"")))
        err, _z, r = c.call(O.GET_EPHEMERALS, jute.string_(base))
        out.append(("getEphemerals", err, r.strings()))
        err, _z, r = c.call(O.GET_ALL_CHILDREN_NUMBER, jute.string_(base))
        out.append(("getAllChildrenNumber", err, r.int32() if err == 0 else None))
        out.append(("getAllChildrenNumber missing", c.call(O.GET_ALL_CHILDREN_NUMBER, jute.string_(base + "/n"))[0]))
        err, _z, r = c.call(O.WHO_AM_I)
        out.append(("whoAmI", err, [(r.string(), r.string()) for _ in range(r.int32())]))
        err, _z, r = c.call(O.GET_ACL, jute.string_(d))
        out.append(("getACL", err, r.acls()))
        world = jute.acls_([jute.Acl(31, "world", "anyone")])
        out.append(("setACL empty", c.call(O.SET_ACL, jute.string_(d) + jute.acls_([]) + jute.int_(-1))[0]))
        out.append(("setACL badversion", c.call(O.SET_ACL, jute.string_(d) + world + jute.int_(3))[0]))
        err, _z, r = c.call(O.SET_ACL, jute.string_(d) + world + jute.int_(0))
        out.append(("setACL ok", err, jute.read_stat(r).aversion))
        bad_scheme = jute.acls_([jute.Acl(31, "nosuch", "x")])
        out.append(("setACL bad scheme", c.call(O.SET_ACL, jute.string_(d) + bad_scheme + jute.int_(-1))[0]))
        out.append(("addWatch", c.call(O.ADD_WATCH, jute.string_(d) + jute.int_(1))[0]))
        body = (
            jute.multi_header(O.GET_DATA, False, -1)
            + jute.string_(d)
            + jute.bool_(False)
            + jute.multi_header(O.GET_CHILDREN, False, -1)
            + jute.string_(base + "/nope")
            + jute.bool_(False)
            + jute.multi_header(-1, True, -1)
        )
        err, _z, r = c.call(O.MULTI_READ, body)
        header1, data = jute.read_multi_header(r), r.buffer()
        jute.read_stat(r)
        header2, code2, header3 = jute.read_multi_header(r), r.int32(), jute.read_multi_header(r)
        out.append(("multiRead", err, header1, data, header2, code2, header3))
        out.append(("closeSession", c.close_session()))
    return out


#: Where coord knowingly answers differently (see the README's list).
KNOWN_DIFFERENCES: dict[str, str] = {}


def test_wire_transcripts_match_zookeeper(zk_cluster: ZkCluster, zookeeper_server: Any) -> None:  # noqa: F811
    base = f"/wd-{uuid.uuid4().hex[:8]}"
    real = _transcript(zookeeper_server.hosts.split(",")[0], base)
    mine = _transcript(zk_cluster.zk_addresses[0], base)
    mismatches = [(a, b) for a, b in zip(real, mine, strict=True) if a != b and a[0] not in KNOWN_DIFFERENCES]
    assert not mismatches, "\n".join(f"ZooKeeper {a}\ncoord     {b}" for a, b in mismatches)
