"""A peer that does not hold the cluster secret, speaking pysyncobj's wire
format at a member's Raft port: helpers for the security tests.

pysyncobj 0.3.17 frames every message as a signed 4-byte native-endian
length (``struct 'i'``) followed by ``zlib(pickle(message))``; with a
password the zlib bytes are wrapped in a Fernet token first. That is what
a member WITHOUT a secret still speaks (reliability.md R7). A member WITH a
secret expects coord's own handshake (``coord.peer_crypto``) as the first
bytes of every connection and closes one that starts with anything else,
before it buffers, decompresses or unpickles anything (R8).
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
import time
import zlib
from pathlib import Path

from coord.security import split_address

#: The largest length a frame header can claim (struct 'i').
MAX_FRAME_LENGTH = 2**31 - 1


class MarkerPayload:
    """Unpickling this creates the directory ``marker``: a harmless stand-in
    for arbitrary code (``os.system``, ...). Tests point it inside tmp_path."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.marker,))


def frame(body: bytes, claimed_length: int | None = None) -> bytes:
    """``body`` behind a length header (by default its real length)."""
    return struct.pack("i", len(body) if claimed_length is None else claimed_length) + body


def pickle_frame(message: object) -> bytes:
    """``message`` exactly as an unauthenticated pysyncobj peer sends it."""
    return frame(zlib.compress(pickle.dumps(message), 3))


def fernet_frame(message: object, password: bytes) -> bytes:
    """``message`` as a peer holding ``password`` sends it (a Fernet token)."""
    from pysyncobj.encryptor import getEncryptor

    token = getEncryptor(password).encrypt_at_time(zlib.compress(pickle.dumps(message), 3), int(time.monotonic()))
    return frame(token)


def connect(address: str, timeout: float = 5.0) -> socket.socket:
    host, port = split_address(address)
    return socket.create_connection((host, port), timeout=timeout)


def wait_closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True once the member closes (or resets) the connection, False if it
    is still open after ``timeout`` seconds. Discards anything received."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        sock.settimeout(min(remaining, 0.5))
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True


def send_and_wait_closed(address: str, data: bytes, timeout: float = 10.0) -> bool:
    """Send ``data`` on a fresh connection; True if the member then drops it."""
    with connect(address) as sock:
        try:
            sock.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            return True
        return wait_closed_by_peer(sock, timeout)


def _status_field(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` now."""
    return _status_field(pid, "VmRSS")


def peak_rss_bytes(pid: int) -> int:
    """The highest resident set size process ``pid`` ever had."""
    return _status_field(pid, "VmHWM")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


MIB = 1 << 20
