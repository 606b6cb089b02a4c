"""A member that catches up by installing a snapshot (it missed entries the
leader already compacted away) still fires the watches of its ZooKeeper
clients: the skipped entries' events are derived from the old and new
replicas (``ZkServer.on_restored``). Its own cluster, with fault injection."""

from __future__ import annotations

import pytest
from helpers import free_ports, start_members, wait_until

import coord
from coord.replication import ROLE_LEADER
from coord.testing.faults import NetworkFaults
from coord.zk.jute import EventType

from .rawclient import RawClient

pytestmark = pytest.mark.cluster


class _RestoreCounter:
    def __init__(self) -> None:
        self.restores = 0

    def on_applied(self, entry: object, applied: object, tree: object) -> None:
        pass

    def on_restored(self, old: object, new: object) -> None:
        self.restores += 1


def test_watches_fire_across_a_snapshot_install() -> None:
    ports = free_ports(6)
    addresses = [f"127.0.0.1:{port}" for port in ports[:3]]
    zk_addresses = [f"127.0.0.1:{port}" for port in ports[3:]]
    faults = NetworkFaults(seed=7)
    members = [
        coord.Coordinator(
            address,
            peers=addresses,
            snapshot_entries=20,
            network_faults=faults,
            zk_address=zk,
            zk_options={"tick_ms": 1000},
        )
        for address, zk in zip(addresses, zk_addresses, strict=True)
    ]
    start_members(members)
    try:
        writer = next(m for m in members if m.status().role == ROLE_LEADER)
        lagging = next(i for i, m in enumerate(members) if m is not writer)
        counter = _RestoreCounter()
        members[lagging]._member.add_apply_hook(counter)
        writer.create("/snap-watched", b"0")
        members[lagging].sync()
        with RawClient(zk_addresses[lagging]) as client:
            client.connect(10_000)
            assert client.get_data("/snap-watched", watch=True)[0] == 0
            assert client.exists("/snap-born", watch=True) != 0
            cut = faults.isolate(addresses[lagging])
            writer.set("/snap-watched", b"1")
            for index in range(120):  # several compactions while the member is cut off
                writer.create(f"/snap-{index:03d}", b"")
            writer.create("/snap-born", b"")
            faults.heal(cut)
            events = {client.wait_event(timeout=15) for _ in range(2)}
            assert events == {(EventType.NODE_DATA_CHANGED, "/snap-watched"), (EventType.NODE_CREATED, "/snap-born")}
            assert client.get_data("/snap-watched")[1][0] == b"1"
        wait_until(lambda: counter.restores > 0, 10, what="a snapshot install on the lagging member")
    finally:
        for member in members:
            member.stop()
