"""Fixtures of the asyncio facade's tests: one 3-member cluster per module
(started once: each test works under its own paths)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import InProcessCluster

from coord.aio import AsyncCoordinator


@pytest.fixture(scope="module")
def shared_cluster() -> Iterator[InProcessCluster]:
    running = InProcessCluster(3).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def amembers(shared_cluster: InProcessCluster) -> list[AsyncCoordinator]:
    """Async facades over the shared cluster's three members."""
    return [AsyncCoordinator.from_sync(member) for member in shared_cluster.members]
