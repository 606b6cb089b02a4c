"""A peer WITHOUT the cluster secret sends malicious pickle frames to members.

pysyncobj unpickles what peers send. With a secret, every connection must
first complete coord's authenticated handshake and every frame is verified
(AES-GCM) before anything is unpickled (reliability.md R8), so the frames
below must be inert. Without a secret the
very same bytes run code in the member: that is why coord refuses to start
off loopback without a secret (tests/unit/test_security.py,
``test_non_loopback_member_without_secret_refuses_to_start``) and warns
loudly on loopback (asserted below).

The payload only creates a directory inside ``tmp_path``; when it does run
(the no-secret test), it runs in this test process, on purpose: nothing is
ever created outside ``tmp_path``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from helpers import InProcessCluster, wait_until

import coord
from security.rogue_peer import MarkerPayload, connect, fernet_frame, pickle_frame, send_and_wait_closed

pytestmark = pytest.mark.cluster

SECRET = "Zq8vN2kLr5tWb9xYc3mPd7fHg1jKs4aE"
WRONG_SECRET = "Yp7uM1jKq4sVa8wXb2lOc6eGf0iJr3zDx"
# Long enough that no keepalive (every session_timeout / 3) changes a
# session's activity counter, and so the snapshot, during a test.
QUIET_SESSION_TIMEOUT = 120.0


def _settled_snapshots(cluster: InProcessCluster) -> list[bytes]:
    """Each member's snapshot once every replica applied everything (tests
    may read the tree through private attributes)."""
    for member in cluster.members:
        member.sync()

    def identical() -> list[bytes] | None:
        snapshots = [member._member._snapshot() for member in cluster.members]
        return snapshots if len(set(snapshots)) == 1 else None

    return wait_until(identical, 10.0, what="identical replicas")  # type: ignore[no-any-return]


def _attacks(cluster: InProcessCluster, marker: Path) -> dict[str, bytes]:
    """What a peer without the secret can send as its first frame."""
    exploit = MarkerPayload(marker)
    return {
        "malicious pickle": pickle_frame(exploit),
        "malicious pickle, Fernet under a guessed key": fernet_frame(exploit, WRONG_SECRET.encode()),
        "impersonating a member": pickle_frame(cluster.addresses[0]),
        "asking for the replication stream (readonly)": pickle_frame("readonly"),
        "utility command 'status'": pickle_frame(["status"]),
    }


def test_peer_without_the_secret_executes_nothing_and_changes_nothing(tmp_path: Path) -> None:
    cluster = InProcessCluster(3, session_timeout=QUIET_SESSION_TIMEOUT, secret=SECRET).start()
    try:
        cluster.leader().create("/config", b"v1")
        before = _settled_snapshots(cluster)
        zxids = [member.status().zxid for member in cluster.members]
        marker = tmp_path / "pwned"

        for member in cluster.members:
            for name, data in _attacks(cluster, marker).items():
                # The member drops the connection at the first frame it cannot authenticate.
                assert send_and_wait_closed(member.address, data), f"{member.address} kept a connection after {name}"

        assert not marker.exists(), "a frame from a peer without the secret ran code"
        assert [member._member._snapshot() for member in cluster.members] == before
        assert [member.status().zxid for member in cluster.members] == zxids
        for member in cluster.members:
            member._member._tree.check_invariants()

        # ... and the cluster still serves writes, on every member.
        for index, member in enumerate(cluster.members):
            member.create(f"/after-{index}", b"ok")
        for member in cluster.members:
            member.sync()
            assert member.get_children("/") == ["after-0", "after-1", "after-2", "config"]
            assert member.get("/config")[0] == b"v1"
    finally:
        cluster.stop()


def test_without_a_secret_the_same_frame_runs_code_in_the_member(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Documents pysyncobj's behaviour (R7) that coord's rules exist for:
    on a cluster without a secret, the first frame of ANY connection is
    unpickled before any identity check, so whoever reaches the port runs
    code in the member (here: in this test process, creating a directory in
    tmp_path). Also shown: such a peer can pose as a member and dictate the
    Raft term. coord therefore refuses a non-loopback member without a
    secret, and on loopback (any local user can connect) warns loudly.

    If this test fails because the marker is NOT created, coord has gained a
    defence (e.g. a restricted unpickler): update this test and the README.
    """
    with caplog.at_level(logging.WARNING, logger="coord"):
        cluster = InProcessCluster(3, session_timeout=QUIET_SESSION_TIMEOUT)
    assert "WITHOUT a cluster secret" in caplog.text
    assert all(address in caplog.text for address in cluster.addresses)
    cluster.start()
    try:
        victim = cluster.members[0]
        marker = tmp_path / "pwned"
        with connect(victim.address) as sock:
            sock.sendall(pickle_frame(MarkerPayload(marker)))
            wait_until(marker.is_dir, 5.0, what="the pickled payload to run (pysyncobj R7)")

            # Without code execution too: on the same connection (the payload
            # returned None, which pysyncobj's parser mistakes for "no message
            # yet", so the connection is still unidentified), claim to be
            # another member, then ask for a vote with an absurd term. The
            # victim adopts the term: a rogue peer can depose any leader.
            impostor = next(address for address in cluster.addresses if address != victim.address)
            rogue_term = 1_000_000
            vote_request = {"type": "request_vote", "term": rogue_term, "last_log_index": 0, "last_log_term": 0}
            sock.sendall(pickle_frame(impostor) + pickle_frame(vote_request))
            wait_until(lambda: victim.status().term >= rogue_term, 5.0, what="the victim to adopt the rogue term")
    finally:
        cluster.stop()


def test_a_non_loopback_member_without_a_secret_never_binds(tmp_path: Path) -> None:
    """The refusal happens in the constructor, before any socket exists:
    the unit tests cover the message; here, that nothing was created."""
    data_dir = tmp_path / "data"
    with pytest.raises(coord.ConfigurationError, match="not a loopback address"):
        coord.Coordinator("127.0.0.1:7001", peers=["192.0.2.10:7002"], data_dir=str(data_dir))
    assert not data_dir.exists()
