"""The data directory, end to end through ``Coordinator.start()``.

The journal and dump are pickles: whoever can write the data directory runs
code in the member at its next start (reliability.md R7). The unit tests
(tests/unit/test_security.py) cover ``prepare_data_dir`` itself; these check
what a user of ``Coordinator`` sees: a missing directory is created 0700
whatever the umask, and a start in a group- or world-writable one is
refused before anything is bound, written or left running, after which the
same Coordinator can start once the directory is fixed.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_ports

import coord


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _member_threads(address: str) -> list[str]:
    return [thread.name for thread in threading.enumerate() if address in thread.name]


def _port_is_free(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("process_umask", [0o000, 0o022, 0o077])
def test_start_creates_a_missing_data_dir_private(tmp_path: Path, umask: None, process_umask: int) -> None:
    os.umask(process_umask)
    data_dir = tmp_path / "nested" / "data"
    member = coord.Coordinator(f"127.0.0.1:{free_ports(1)[0]}", peers=[], data_dir=str(data_dir))
    member.start(timeout=10)
    try:
        member.create("/x", b"1")
        assert data_dir.stat().st_mode & 0o777 == 0o700
        assert (data_dir / "raft.journal").exists()
    finally:
        member.stop()


@pytest.mark.parametrize(
    ("mode", "via_symlink"), [(0o770, False), (0o720, False), (0o702, False), (0o1777, False), (0o777, True)]
)
def test_start_in_a_writable_data_dir_is_refused_and_leaves_nothing_behind(
    tmp_path: Path, mode: int, via_symlink: bool
) -> None:
    real_dir = tmp_path / "data"
    real_dir.mkdir()
    real_dir.chmod(mode)
    data_dir = real_dir
    if via_symlink:  # the mode that counts is the directory's, not the link's
        data_dir = tmp_path / "link"
        data_dir.symlink_to(real_dir, target_is_directory=True)
    address = f"127.0.0.1:{free_ports(1)[0]}"
    member = coord.Coordinator(address, peers=[], data_dir=str(data_dir))

    with pytest.raises(coord.ConfigurationError) as info:
        member.start(timeout=10)
    message = str(info.value)
    assert str(data_dir) in message and f"mode {mode & 0o777:o}" in message and "0700" in message
    assert list(real_dir.iterdir()) == [], "nothing may be written into a refused data_dir"
    assert _port_is_free(address), "a refused member must not keep its Raft port"
    assert _member_threads(address) == [], "a refused start must not leave threads running"
    with pytest.raises(coord.NotReadyError):
        member.get("/")

    # Fixed by the operator: the same Coordinator starts and works.
    real_dir.chmod(0o700)
    member.start(timeout=10)
    try:
        member.create("/after-fix", b"ok")
        assert member.get("/after-fix")[0] == b"ok"
    finally:
        member.stop()
    assert _member_threads(address) == []
