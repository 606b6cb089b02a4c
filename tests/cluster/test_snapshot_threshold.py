"""A log of large transactions is snapshotted by the number of changes it
carries, not only by its number of entries: otherwise a restart after a
bulk load would replay the whole load."""

from __future__ import annotations

import os

import pytest
from helpers import free_ports, wait_until

import coord

pytestmark = pytest.mark.cluster


def test_large_multis_count_toward_the_snapshot_threshold(tmp_path) -> None:
    data_dir = tmp_path / "m"
    data_dir.mkdir(mode=0o700)
    address = f"127.0.0.1:{free_ports(1)[0]}"
    member = coord.Coordinator(address, data_dir=str(data_dir), snapshot_entries=1000, session_timeout=5.0)
    member.start()
    try:
        member.create("/bulk")
        for batch in range(4):  # 2,000 changes in 4 log entries
            txn = member.transaction()
            for i in range(500):
                txn.create(f"/bulk/n{batch}-{i}")
            txn.commit()
        dump = data_dir / "raft.dump"
        wait_until(dump.exists, 10, what="a snapshot after 2,000 changes in 4 entries")
    finally:
        member.stop()
    restarted = coord.Coordinator(address, data_dir=str(data_dir), snapshot_entries=1000, session_timeout=5.0)
    restarted.start()
    try:
        assert restarted.get_all_children_number("/bulk") == 2000
        assert os.path.getsize(dump) > 0
    finally:
        restarted.stop()
