"""Shared fixtures and options of coord's test suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers import InProcessCluster


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False, help="run long soak/fault tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow test: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def cluster() -> Iterator[InProcessCluster]:
    """A started 3-member in-process cluster, stopped after the test."""
    running = InProcessCluster(3).start()
    try:
        yield running
    finally:
        running.stop()
