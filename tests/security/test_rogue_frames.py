"""Oversized and garbage frames from a peer WITHOUT the cluster secret.

Members run as separate processes (``LocalCluster``) so their memory can be
measured (/proc/<pid>/status). With a secret, members speak coord's own
authenticated transport (``coord.peer_crypto``), and these tests pin down
what it guarantees against a peer that does not hold the secret:

* the first bytes of a connection must be coord's handshake (a fixed-size
  hello behind a magic); anything else (pysyncobj's length-prefixed frames,
  a 2 GiB length claim, Fernet tokens, pickles, zlib bombs) is refused at
  the first differing byte and the connection closed: nothing is buffered,
  decompressed or unpickled;
* so a peer cannot stream a huge frame into a member and stall its Raft
  thread (pysyncobj 0.3.17 buffered it quadratically and forced
  elections);
* unauthenticated connections are capped and time out, and an accept()
  failure (EMFILE) never closes the Raft port (pysyncobj's did for good).

Without a secret pysyncobj's plain transport is used (loopback only, with a
warning): ``test_without_a_secret_a_zlib_bomb_is_inflated`` documents why.
"""

from __future__ import annotations

import base64
import contextlib
import os
import pickle
import random
import resource
import socket
import struct
import time
import zlib
from collections.abc import Iterator

import pytest

from coord.errors import CoordError
from coord.local_cluster import LocalCluster, MemberProcess
from security.rogue_peer import (
    MAX_FRAME_LENGTH,
    MIB,
    connect,
    frame,
    open_fds,
    peak_rss_bytes,
    pickle_frame,
    rss_bytes,
    send_and_wait_closed,
    wait_closed_by_peer,
)

pytestmark = pytest.mark.multiprocess

SECRET = "Zq8vN2kLr5tWb9xYc3mPd7fHg1jKs4aE"
SESSION_TIMEOUT = 10.0
#: RSS a member may keep after an attack (allocator slack, ordinary growth).
RSS_SLACK = 16 * MIB

wait_until = LocalCluster.wait_until  # ignores errors while an election runs


@pytest.fixture(scope="module")
def secured() -> Iterator[LocalCluster]:
    """A 3-process cluster WITH a secret, shared by this module's tests."""
    with LocalCluster(3, secret=SECRET, session_timeout=SESSION_TIMEOUT) as cluster:
        yield cluster


_writes = iter(range(1_000_000))


def _assert_serves(cluster: LocalCluster, through: MemberProcess, timeout: float = 30.0) -> None:
    """A write through ``through`` commits and every member reads it."""
    path = f"/served-{next(_writes)}"

    def write() -> bool:
        try:
            through.create(path, b"ok", timeout=5.0)
        except CoordError as exc:  # a retry after an unknown outcome
            if through.exists(path) is None:
                raise
            del exc
        return True

    wait_until(write, timeout, what=f"a write through {through.name}")
    for member in cluster.members:
        assert member.alive, f"{member.name} died"
        wait_until(lambda m=member: m.sync(timeout=5.0) and m.exists(path) is not None, timeout,
                   what=f"{member.name} to see {path}")


def _rss_settles(member: MemberProcess, limit: int, timeout: float = 10.0) -> int:
    assert member.pid is not None
    pid = member.pid
    return wait_until(lambda: (value := rss_bytes(pid)) <= limit and value, timeout,
                      what=f"{member.name}'s RSS to fall back under {limit // MIB} MiB")


def _report(message: str) -> None:
    print(f"[rogue-frames] {message}")


@pytest.mark.parametrize("role", ["leader", "follower"])
@pytest.mark.parametrize("payload_mib", [0, 1])
def test_a_2_gib_length_claim_then_close_costs_nothing(secured: LocalCluster, role: str, payload_mib: int) -> None:
    target = secured.leader() if role == "leader" else secured.followers()[0]
    assert target.pid is not None
    before = rss_bytes(target.pid)
    with connect(target.address) as sock:
        sock.sendall(frame(os.urandom(payload_mib * MIB), claimed_length=MAX_FRAME_LENGTH))
        time.sleep(0.3)  # let the member read it all
        held = rss_bytes(target.pid)
    after = _rss_settles(target, before + RSS_SLACK)
    _report(f"2 GiB claim + {payload_mib} MiB to the {role}: RSS {before / MIB:.1f} -> {held / MIB:.1f} "
            f"(connection open) -> {after / MIB:.1f} MiB (closed)")
    assert held <= before + payload_mib * MIB * 3 + RSS_SLACK
    _assert_serves(secured, target)


_rng = random.Random(20240611)

#: name -> (bytes, whether the member must drop the connection by itself)
GARBAGE: dict[str, tuple[bytes, bool]] = {
    "random bytes": (_rng.randbytes(4096), False),
    "valid length, not zlib": (frame(_rng.randbytes(512)), True),
    "zlib, not a pickle": (frame(zlib.compress(b"definitely not a pickle" * 10)), True),
    "zlib of a truncated pickle": (frame(zlib.compress(pickle.dumps(("x" * 100, 1))[:-5])), True),
    "unauthenticated well-formed message": (pickle_frame({"type": "append_entries", "term": 99}), True),
    "forged Fernet-looking token": (frame(b"gAAAAA" + base64.urlsafe_b64encode(_rng.randbytes(120))), True),
    "empty frame": (frame(b""), True),
    "negative length": (struct.pack("i", -1) + _rng.randbytes(64), True),
    "most negative length": (struct.pack("i", -(2**31)) + _rng.randbytes(64), True),
    "half a header": (b"\x10\x00", False),
}


def test_garbage_frames_are_dropped_and_every_member_keeps_serving(secured: LocalCluster) -> None:
    baseline = {m.name: (rss_bytes(m.pid), open_fds(m.pid)) for m in secured.members if m.pid is not None}
    for member in secured.members:
        for name, (data, dropped_by_member) in GARBAGE.items():
            with connect(member.address) as sock:
                sock.sendall(data)
                closed = wait_closed_by_peer(sock, 5.0 if dropped_by_member else 0.3)
            assert closed or not dropped_by_member, f"{member.name} kept the connection after {name!r}"
    for member in secured.members:
        assert member.pid is not None
        rss_before, fds_before = baseline[member.name]
        _rss_settles(member, rss_before + RSS_SLACK)
        pid = member.pid
        wait_until(lambda pid=pid, fds=fds_before: open_fds(pid) <= fds, 10.0,
                   what=f"{member.name} to close every rogue connection")
    for member in secured.members:
        _assert_serves(secured, member)


def _zlib_bomb(mebibytes: int) -> bytes:
    """zlib of ``mebibytes`` MiB of zeros (about 1000:1), built without
    holding the plaintext."""
    compressor = zlib.compressobj(9)
    zeros = bytes(MIB)
    body = b"".join(compressor.compress(zeros) for _ in range(mebibytes)) + compressor.flush()
    return frame(body)


BOMB_MIB = 256


def test_a_zlib_bomb_is_never_decompressed_with_a_secret(secured: LocalCluster) -> None:
    bomb = _zlib_bomb(BOMB_MIB)
    for member in secured.members:
        assert member.pid is not None
        peak = peak_rss_bytes(member.pid)
        assert send_and_wait_closed(member.address, bomb, timeout=5.0)
        grown = peak_rss_bytes(member.pid) - peak
        _report(f"{len(bomb) // 1024} KiB frame inflating to {BOMB_MIB} MiB, to {member.name} (secret): "
                f"peak RSS +{grown / MIB:.1f} MiB")
        assert grown < RSS_SLACK


def test_without_a_secret_a_zlib_bomb_is_inflated() -> None:
    """Documents why a secret is needed even on loopback: without one,
    pysyncobj decompresses any peer's frame with no output cap (R7)."""
    bomb = _zlib_bomb(BOMB_MIB)
    with LocalCluster(1) as open_cluster:
        member = open_cluster.members[0]
        assert member.pid is not None
        peak = peak_rss_bytes(member.pid)
        assert send_and_wait_closed(member.address, bomb, timeout=10.0)
        grown = peak_rss_bytes(member.pid) - peak
        _report(f"{len(bomb) // 1024} KiB frame inflating to {BOMB_MIB} MiB, no secret: "
                f"peak RSS +{grown / MIB:.1f} MiB")
        assert grown >= BOMB_MIB * MIB * 0.9, "the bomb was expected to inflate without a secret"
        _rss_settles(member, peak + RSS_SLACK)
        _assert_serves(open_cluster, member)


def _stream_into_one_frame(address: str, mebibytes: int) -> tuple[float, int]:
    """Open a connection, claim a 2 GiB frame (pysyncobj's header) and try
    to stream ``mebibytes`` MiB into it. Returns how long that took and how
    many MiB the member took before it closed the connection."""
    chunk = os.urandom(MIB)
    started = time.monotonic()
    sent = 0
    with contextlib.closing(connect(address, timeout=60.0)) as sock:
        try:
            sock.sendall(struct.pack("i", MAX_FRAME_LENGTH))
            for _ in range(mebibytes):
                sock.sendall(chunk)
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass
    return time.monotonic() - started, sent


def test_a_streamed_oversized_frame_is_refused_at_its_header(secured: LocalCluster) -> None:
    """16 MiB streamed into one unauthenticated frame: the member closes
    the connection at the first bytes (not coord's handshake), so the
    stream is cut short and nothing is buffered."""
    leader = secured.leader()
    assert leader.pid is not None
    term = leader.status()["term"]
    before = rss_bytes(leader.pid)
    took, sent = _stream_into_one_frame(leader.address, 16)
    held = rss_bytes(leader.pid)
    _assert_serves(secured, leader)
    _report(f"16 MiB streamed into one frame at the leader: cut off after {sent} MiB in {took:.2f}s, "
            f"RSS {before / MIB:.1f} -> {held / MIB:.1f} MiB, term {term} -> {secured.leader().status()['term']}")
    assert sent < 16, "the member kept reading an unauthenticated frame"
    assert held <= before + RSS_SLACK
    assert leader.alive


def test_a_peer_without_the_secret_cannot_force_an_election(secured: LocalCluster) -> None:
    leader = secured.leader()
    term = leader.status()["term"]
    for _ in range(4):  # pysyncobj's transport stalled seconds on one 32 MiB frame
        took, sent = _stream_into_one_frame(leader.address, 32)
    _report(f"32 MiB streamed into one frame at the leader: cut off after {sent} MiB in {took:.2f}s")
    time.sleep(2.0)  # longer than the election timeout: a stalled leader would be replaced
    assert secured.leader() is leader and leader.status()["term"] == term


def test_a_connection_flood_does_not_close_the_raft_port() -> None:
    with LocalCluster(1, secret=SECRET) as flooded:
        member = flooded.members[0]
        assert member.pid is not None
        _soft, hard = resource.prlimit(member.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(member.pid, resource.RLIMIT_NOFILE, (64, hard))
        sockets: list[socket.socket] = []
        try:
            for _ in range(200):  # idle connections: never authenticated
                try:
                    sockets.append(connect(member.address, timeout=2.0))
                except OSError:
                    break
            time.sleep(0.5)
            # While the flood is still open the port answers and the member
            # still completes a write (it closed the oldest idle connections).
            _assert_serves(flooded, member, timeout=10.0)
        finally:
            for sock in sockets:
                sock.close()
        _report(f"flood: {len(sockets)} idle connections opened")

        def port_answers() -> bool:
            with contextlib.suppress(OSError), connect(member.address, timeout=1.0):
                return True
            return False

        deadline = time.monotonic() + 3.0
        while not port_answers():
            assert time.monotonic() < deadline, "the member's Raft port never came back after the flood"
            time.sleep(0.2)
