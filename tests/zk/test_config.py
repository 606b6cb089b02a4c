"""Configuration of the ZooKeeper endpoint: bad options are refused up
front, and a taken port fails the member's start cleanly."""

from __future__ import annotations

import socket

import pytest
from helpers import free_ports

import coord
from coord.errors import NotReadyError


def test_unknown_zk_options_and_bad_addresses_are_refused_at_construction() -> None:
    raft, zk = (f"127.0.0.1:{port}" for port in free_ports(2))
    with pytest.raises(ValueError, match="unknown zk_options"):
        coord.Coordinator(raft, zk_address=zk, zk_options={"tick": 5})
    with pytest.raises(ValueError, match="host:port"):
        coord.Coordinator(raft, zk_address="no-port")


@pytest.mark.cluster
def test_a_taken_zk_port_fails_start_and_leaves_nothing_running() -> None:
    raft_port, zk_port = free_ports(2)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", zk_port))
        squatter.listen(1)
        member = coord.Coordinator(f"127.0.0.1:{raft_port}", zk_address=f"127.0.0.1:{zk_port}")
        with pytest.raises(NotReadyError, match="ZooKeeper endpoint"):
            member.start(timeout=10)
    with socket.socket() as probe:  # the member released its Raft port
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", raft_port))
