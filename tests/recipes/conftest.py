"""Fixtures of the recipe tests: one real in-process 3-member cluster per
test module, and a fresh path per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from helpers import InProcessCluster

import coord

from ._support import running_cluster


@pytest.fixture(scope="module")
def shared_cluster() -> Iterator[InProcessCluster]:
    """One started 3-member cluster shared by a test module (each test uses
    its own fresh path); stopped after the module."""
    with running_cluster(3, session_timeout=5.0) as running:
        yield running


@pytest.fixture(scope="module")
def shared(shared_cluster: InProcessCluster) -> list[coord.Coordinator]:
    """The members of ``shared_cluster``."""
    return shared_cluster.members


@pytest.fixture
def path() -> str:
    """A fresh znode path no other test uses."""
    return "/recipes-test/" + uuid.uuid4().hex
