"""Random, truncated and oversized frames against a live ZooKeeper endpoint:
each bad connection is closed (or left waiting for bytes that never come),
the member keeps serving its other clients, and the znode tree is unchanged.

The frames come from a seeded generator, so a failure names a reproducible
case; the seed is printed in the assertion message.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import uuid
from collections.abc import Callable

import pytest
from kazoo.client import KazooClient

from coord.zk import jute
from coord.zk.jute import OpCode

from .conftest import ZkCluster
from .rawclient import Closed, RawClient, create_record, four_letter

pytestmark = pytest.mark.cluster

Factory = Callable[..., KazooClient]
SEED = 20261122
WORKERS = 6


def _valid_connect(timeout_ms: int = 500) -> bytes:
    return jute.connect_request(jute.ConnectRequest(0, 0, timeout_ms, 0, bytes(16), False))


def _valid_requests(base: str) -> list[bytes]:
    """Well-formed request payloads the fuzzer mutates (they only touch
    paths under a directory that does not exist, so even an intact one
    cannot change the tree)."""
    missing = f"{base}/no-such-dir/x"
    return [
        jute.request_header(1, OpCode.CREATE) + create_record(missing, b"data"),
        jute.request_header(2, OpCode.SET_DATA) + jute.string_(missing) + jute.buffer_(b"v") + jute.int_(-1),
        jute.request_header(3, OpCode.DELETE) + jute.string_(missing) + jute.int_(-1),
        jute.request_header(4, OpCode.GET_DATA) + jute.string_(base) + jute.bool_(True),
        jute.request_header(5, OpCode.MULTI)
        + jute.multi_header(OpCode.CREATE, False, -1)
        + create_record(missing)
        + jute.multi_header(-1, True, -1),
        jute.request_header(-8, OpCode.SET_WATCHES) + jute.long_(0) + jute.strings_([base]) * 3,
        jute.request_header(6, OpCode.SET_ACL)
        + jute.string_(missing)
        + jute.acls_([jute.Acl(31, "world", "anyone")])
        + jute.int_(-1),
    ]


def _mutations(rng: random.Random, payload: bytes) -> list[bytes]:
    """Truncations, bit flips, huge counts and random tails of ``payload``."""
    cut = rng.randrange(0, max(1, len(payload)))
    flipped = bytearray(payload)
    for _ in range(rng.randint(1, 4)):
        index = rng.randrange(len(flipped))
        flipped[index] ^= 1 << rng.randrange(8)
    huge = bytearray(payload)
    if len(huge) >= 12:
        offset = rng.randrange(8, len(huge) - 3)
        huge[offset : offset + 4] = struct.pack(">i", rng.choice([0x7FFFFFFF, -2, 0x10000000, -0x80000000]))
    header_only = payload[:8] + rng.randbytes(rng.randint(0, 64))
    return [payload[:cut], bytes(flipped), bytes(huge), header_only]


def _frames(rng: random.Random, base: str, rounds: int) -> list[tuple[str, bool, bytes]]:
    """(name, after_connect, raw bytes to send) for every case (~44 per round)."""
    cases: list[tuple[str, bool, bytes]] = []
    for index in range(rounds):
        noise = rng.randbytes(rng.randint(0, 300))
        cases.append((f"random bytes #{index}", False, noise))
        cases.append((f"random bytes after connect #{index}", True, noise))
        size = rng.choice([-1, -(2**31), 2**31 - 1, 50 << 20, 1 << 24])
        cases.append((f"oversized length {size}", rng.random() < 0.5, struct.pack(">i", size) + rng.randbytes(16)))
        connect = _valid_connect()
        for variant in _mutations(rng, connect):
            cases.append((f"mutated ConnectRequest #{index}", False, jute.frame(variant)))
        truncated = jute.frame(connect)[: rng.randrange(1, len(connect) + 4)]
        cases.append((f"truncated ConnectRequest frame #{index}", False, truncated))
        for request in _valid_requests(base):
            for variant in _mutations(rng, request):
                cases.append((f"mutated request #{index}", True, jute.frame(variant)))
            whole = jute.frame(request)
            cases.append((f"truncated request frame #{index}", True, whole[: rng.randrange(1, len(whole))]))
        op = rng.choice([*map(int, OpCode), rng.randint(-(2**31), 2**31 - 1)])
        garbage = struct.pack(">ii", rng.randint(1, 1000), op) + rng.randbytes(rng.randint(0, 200))
        cases.append((f"header op {op} + garbage body", True, jute.frame(garbage)))
    return cases


def _znodes(zk_cluster: ZkCluster, index: int) -> list[tuple[str, bytes, tuple[int, ...]]]:
    def dump(tree: object) -> list[tuple[str, bytes, tuple[int, ...]]]:
        result = []
        for path in tree.walk("/"):  # type: ignore[attr-defined]
            data, stat = tree.get(path)  # type: ignore[attr-defined]
            result.append((path, data, tuple(stat)))
        return result

    nodes: list[tuple[str, bytes, tuple[int, ...]]] = zk_cluster.members[index]._member.read_tree(dump)
    return nodes


def _run_case(address: str, after_connect: bool, data: bytes) -> None:
    with RawClient(address, timeout=3.0) as client:
        if after_connect:
            client.connect(500)
        try:
            client.send_raw(data)
        except OSError:
            return  # already closed by the server
        # Either the server answers/closes, or it waits for the rest of a
        # frame; both are fine. It must never take the member down.
        client.closed_by_server(timeout=0.1)


@pytest.mark.parametrize("rounds", [3, pytest.param(60, marks=pytest.mark.slow)])
def test_fuzzed_frames_leave_the_tree_and_other_clients_alone(
    zk_cluster: ZkCluster, kazoo_factory: Factory, rounds: int
) -> None:
    rng = random.Random(SEED)
    address = zk_cluster.zk_addresses[0]
    base = f"/fuzz-{uuid.uuid4().hex[:8]}"
    bystander = kazoo_factory(0)
    bystander.create(base, b"keep")
    bystander.create(base + "/child", b"")
    fired = threading.Event()
    fired_events: list[object] = []

    def on_event(event: object) -> None:
        fired_events.append(event)
        fired.set()

    bystander.get(base, watch=on_event)
    bystander.sync("/")
    before = _znodes(zk_cluster, 0)
    cases = _frames(rng, base, rounds)
    failures: list[str] = []

    def worker(share: list[tuple[str, bool, bytes]]) -> None:
        for name, after_connect, data in share:
            try:
                _run_case(address, after_connect, data)
            except (OSError, Closed, jute.JuteError) as exc:  # only the valid handshake may raise
                failures.append(f"{name}: the session handshake failed: {exc!r}")

    threads = [threading.Thread(target=worker, args=(cases[i::WORKERS],)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        assert bystander.get(base)[0] == b"keep"  # the bystander keeps working meanwhile
        for thread in threads:
            thread.join(timeout=0.2)
    assert not failures, f"seed {SEED}: {failures[:5]}"
    assert four_letter(address, "ruok") == "imok"
    bystander.sync("/")
    assert bystander.get_children(base) == ["child"]
    after = _znodes(zk_cluster, 0)
    assert after == before, f"seed {SEED}: the tree changed under fuzzing"
    assert not fired.is_set(), fired_events
    bystander.set(base, b"changed")  # the bystander's watch survived the fuzzing
    deadline_ok = fired.wait(5)
    assert deadline_ok, "the bystander's watch did not fire"
    bystander.delete(base, recursive=True)


def test_a_frame_one_byte_over_the_limit_closes_only_that_connection(zk_cluster: ZkCluster) -> None:
    server = zk_cluster.server(1)
    address = zk_cluster.zk_addresses[1]
    with RawClient(address) as ok, RawClient(address) as bad:
        ok.connect(4000)
        bad.connect(4000)
        bad.send_raw(struct.pack(">i", server.max_frame_bytes + 1))
        assert bad.closed_by_server()
        assert ok.ping() == 0
        # A frame exactly at the limit is read (and answered: a bad request).
        big = jute.request_header(9, OpCode.GET_DATA) + jute.string_("/x" * 10) + jute.bool_(False)
        big += b"\0" * (server.max_frame_bytes - len(big))
        ok.send_raw(jute.frame(big))
        reader = jute.Reader(ok.read_frame())
        assert jute.read_reply_header(reader)[0] == 9
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as plain:
        plain.sendall(b"ruok")
        assert plain.recv(16) == b"imok"
