"""Fixtures of the ZooKeeper-endpoint tests: one 3-member coord cluster with
a ZooKeeper listener on every member, shared by the whole package, and
kazoo clients that are always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers import free_ports, start_members
from kazoo.client import KazooClient

import coord

#: tickTime of the test endpoints: session timeouts 0.5 s .. 5 s.
TICK_MS = 250


class ZkCluster:
    """The coord cluster and its ZooKeeper addresses (index = member)."""

    def __init__(self) -> None:
        ports = free_ports(6)
        self.addresses = [f"127.0.0.1:{port}" for port in ports[:3]]
        self.zk_addresses = [f"127.0.0.1:{port}" for port in ports[3:]]
        self.members = [
            coord.Coordinator(
                address,
                peers=self.addresses,
                session_timeout=5.0,
                zk_address=zk_address,
                zk_options={"tick_ms": TICK_MS},
            )
            for address, zk_address in zip(self.addresses, self.zk_addresses, strict=True)
        ]
        start_members(self.members)

    def server(self, index: int) -> Any:
        return self.members[index]._member.zk_server

    def snapshot(self, index: int = 0) -> bytes:
        return bytes(self.members[index]._member.read_tree(lambda tree: tree.snapshot()))

    def stop(self) -> None:
        for member in self.members:
            member.stop()


@pytest.fixture(scope="package")
def zk_cluster() -> Iterator[ZkCluster]:
    running = ZkCluster()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def kazoo_factory(zk_cluster: ZkCluster) -> Iterator[Callable[..., KazooClient]]:
    """``make(*member_indexes, **kazoo_kwargs)``: a started KazooClient
    connected to those members (default: member 0), stopped after the test."""
    clients: list[KazooClient] = []

    def make(*indexes: int, timeout: float = 4.0, **kwargs: Any) -> KazooClient:
        hosts = ",".join(zk_cluster.zk_addresses[i] for i in (indexes or (0,)))
        client = KazooClient(hosts=hosts, timeout=timeout, **kwargs)
        clients.append(client)
        client.start(timeout=10)
        return client

    yield make
    for client in clients:
        client.stop()
        client.close()
