"""The CLI through members' ZooKeeper endpoints (``--zk``): ``status`` from
the four-letter words, ``shell`` and ``dump``/``load`` through kazoo, with
no cluster secret on the CLI's side."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import coord_cli
from helpers import free_ports, start_members

import coord

pytest.importorskip("kazoo")


@pytest.fixture(scope="module")
def zk_members() -> Iterator[tuple[list[coord.Coordinator], list[str]]]:
    ports = free_ports(6)
    addresses = [f"127.0.0.1:{p}" for p in ports[:3]]
    zk_addresses = [f"127.0.0.1:{p}" for p in ports[3:]]
    members = [
        coord.Coordinator(address, peers=addresses, zk_address=zk_address, session_timeout=5.0)
        for address, zk_address in zip(addresses, zk_addresses, strict=True)
    ]
    start_members(members)
    try:
        yield members, zk_addresses
    finally:
        for member in members:
            member.stop()


def test_status_from_the_zookeeper_endpoints(zk_members: tuple[list[coord.Coordinator], list[str]]) -> None:
    members, zk_addresses = zk_members
    leader_index = next(i for i, m in enumerate(members) if m.status().role == "leader")
    done = coord_cli("status", "--zk", ",".join(zk_addresses), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["leader"] == zk_addresses[leader_index]
    assert sorted(m["role"] for m in report["members"]) == ["follower", "follower", "leader"]
    assert all(m["znode_count"] >= 1 and m["sessions"] >= 3 for m in report["members"])
    table = coord_cli("status", "--zk", ",".join(zk_addresses))
    assert table.returncode == 0 and f"leader: {zk_addresses[leader_index]}" in table.stdout


def test_shell_and_dump_load_through_kazoo(
    zk_members: tuple[list[coord.Coordinator], list[str]], tmp_path: Path
) -> None:
    members, zk_addresses = zk_members
    zk = ["--zk", zk_addresses[1]]
    created = coord_cli("shell", *zk, "create", "-p", "/zkcli/a", "v1")
    assert (created.returncode, created.stdout.strip()) == (0, "Created /zkcli/a"), created.stderr
    missing = coord_cli("shell", *zk, "get", "/zkcli/none")
    assert (missing.returncode, missing.stdout.strip()) == (1, "Error: NoNodeError: /zkcli/none")
    members[0].sync()
    assert members[0].get("/zkcli/a")[0] == b"v1"

    dump_file = tmp_path / "zk.json"
    assert coord_cli("dump", *zk, "/zkcli", "-o", str(dump_file)).returncode == 0
    assert [n["path"] for n in json.loads(dump_file.read_text())["nodes"]] == ["/zkcli", "/zkcli/a"]
    loaded = coord_cli("load", *zk, str(dump_file), "--root", "/zkcopy")
    assert loaded.returncode == 0, loaded.stderr
    members[2].sync()
    assert members[2].get("/zkcopy/a")[0] == b"v1"


def test_status_over_the_raft_port_of_a_cluster_without_secret(
    zk_members: tuple[list[coord.Coordinator], list[str]],
) -> None:
    """Loopback members without a secret answer over pysyncobj's plain framing."""
    members, _ = zk_members
    done = coord_cli("status", "--peers", ",".join(m.address for m in members), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    leader = next(m.address for m in members if m.status().role == "leader")
    assert report["leader"] == leader and all(m["reachable"] for m in report["members"])
