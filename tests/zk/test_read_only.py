"""ZooKeeper's read-only mode: a member cut off from its quorum serves
reads to clients that ask for read-only sessions, refuses writes with
NOT_READ_ONLY, answers ``isro`` with ``ro``, and refuses ordinary clients.
Its own cluster: two of its three members are stopped."""

from __future__ import annotations

import pytest
from helpers import free_ports, start_members, wait_until

import coord
from coord.zk import jute
from coord.zk.jute import Err, OpCode

from .rawclient import Closed, RawClient, create_record, four_letter

pytestmark = pytest.mark.cluster


def test_a_member_without_quorum_serves_read_only_clients() -> None:
    ports = free_ports(6)
    addresses = [f"127.0.0.1:{port}" for port in ports[:3]]
    zk_addresses = [f"127.0.0.1:{port}" for port in ports[3:]]
    members = [
        coord.Coordinator(address, peers=addresses, zk_address=zk, zk_options={"tick_ms": 250})
        for address, zk in zip(addresses, zk_addresses, strict=True)
    ]
    start_members(members)
    try:
        with RawClient(zk_addresses[0]) as client:
            client.connect(2000)
            assert client.create("/ro", b"before")[0] == 0
            last_zxid = client.last_zxid
        wait_until(lambda: members[2]._member.read_tree(lambda tree: tree.zxid) >= last_zxid, 10, what="catch-up")
        assert four_letter(zk_addresses[2], "isro") == "rw"
        members[0].stop()
        members[1].stop()
        wait_until(lambda: four_letter(zk_addresses[2], "isro") == "ro", 10, what="the survivor to notice")
        with RawClient(zk_addresses[2]) as ordinary, pytest.raises(Closed):
            ordinary.connect(2000)
        with RawClient(zk_addresses[2]) as reader:
            timeout_ms, session_id, _password = reader.connect(2000, read_only=True)
            assert reader.read_only and timeout_ms == 2000 and session_id != 0
            err, data = reader.get_data("/ro")
            assert err == 0 and data[0] == b"before"
            assert reader.call(OpCode.CREATE, create_record("/ro/x"))[0] == Err.NOT_READ_ONLY
            assert reader.call(OpCode.SET_DATA, jute.string_("/ro") + jute.buffer_(b"x") + jute.int_(-1))[0] == (
                Err.NOT_READ_ONLY
            )
            assert reader.ping() == 0
        assert "Mode: read-only" in four_letter(zk_addresses[2], "srvr")
    finally:
        for member in members:
            member.stop()
