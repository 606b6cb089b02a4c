"""coord.peer_crypto: the handshake, key schedule and frames of the
authenticated peer transport, driven byte by byte without sockets."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coord import peer_crypto
from coord.peer_crypto import (
    CLIENT_HELLO_BYTES,
    CONFIRM_BYTES,
    HEADER_BYTES,
    MAGIC,
    SERVER_HELLO_BYTES,
    TAG_BYTES,
    FrameError,
    FrameReader,
    FrameSealer,
    HandshakeError,
    NonceExhausted,
    PeerProtocolError,
    PeerSession,
    derive_keys,
)

SECRET = b"Zq8vN2kLr5tWb9xYc3mPd7fHg1jKs4aE"
OTHER_SECRET = b"Yp7uM1jKq4sVa8wXb2lOc6eGf0iJr3zD"
CAP = 1 << 16


def _pair(
    client_secret: bytes = SECRET, server_secret: bytes = SECRET, cap: int = CAP
) -> tuple[PeerSession, PeerSession]:
    """An initiator and a responder with the handshake completed."""
    client = PeerSession(client_secret, initiator=True, max_frame_bytes=cap)
    server = PeerSession(server_secret, initiator=False, max_frame_bytes=cap)
    server_hello, got = server.receive(client.start())
    assert got == [] and len(server_hello) == SERVER_HELLO_BYTES and not server.established
    confirm, got = client.receive(server_hello)
    assert got == [] and len(confirm) == CONFIRM_BYTES and client.established
    reply, got = server.receive(confirm)
    assert reply == b"" and got == [] and server.established
    return client, server


def test_a_round_trip_in_both_directions() -> None:
    client, server = _pair()
    for index in range(5):
        assert server.receive(client.seal(b"c%d" % index)) == (b"", [b"c%d" % index])
        assert client.receive(server.seal(b"s%d" % index)) == (b"", [b"s%d" % index])
    assert server.receive(client.seal(b"")) == (b"", [b""])  # an empty message is a valid frame


def test_the_initiator_may_pipeline_frames_right_after_its_confirmation() -> None:
    client = PeerSession(SECRET, initiator=True, max_frame_bytes=CAP)
    server = PeerSession(SECRET, initiator=False, max_frame_bytes=CAP)
    server_hello, _ = server.receive(client.start())
    confirm, _ = client.receive(server_hello)
    wire = confirm + client.seal(b"first") + client.seal(b"second")
    assert server.receive(wire) == (b"", [b"first", b"second"])


def test_handshake_and_frames_survive_being_split_at_every_byte() -> None:
    client = PeerSession(SECRET, initiator=True, max_frame_bytes=CAP)
    server = PeerSession(SECRET, initiator=False, max_frame_bytes=CAP)
    replies = b""
    for byte in client.start():
        reply, _ = server.receive(bytes([byte]))
        replies += reply
    assert len(replies) == SERVER_HELLO_BYTES
    confirm = b""
    for byte in replies:
        reply, _ = client.receive(bytes([byte]))
        confirm += reply
    wire = confirm + client.seal(b"hello") + client.seal(b"world")
    received = []
    for byte in wire:
        received += server.receive(bytes([byte]))[1]
    assert received == [b"hello", b"world"] and server.established


@pytest.mark.parametrize(
    ("client_secret", "server_secret", "who_fails"),
    [(SECRET, OTHER_SECRET, "client"), (OTHER_SECRET, SECRET, "client")],
)
def test_a_wrong_secret_fails_the_handshake_at_the_initiator(
    client_secret: bytes, server_secret: bytes, who_fails: str
) -> None:
    client = PeerSession(client_secret, initiator=True, max_frame_bytes=CAP)
    server = PeerSession(server_secret, initiator=False, max_frame_bytes=CAP)
    server_hello, _ = server.receive(client.start())
    with pytest.raises(HandshakeError, match="does not hold the cluster secret"):
        client.receive(server_hello)
    assert not client.established and not server.established


def test_a_responder_refuses_a_forged_confirmation_and_anything_after_it() -> None:
    client = PeerSession(SECRET, initiator=True, max_frame_bytes=CAP)
    server = PeerSession(SECRET, initiator=False, max_frame_bytes=CAP)
    server.receive(client.start())
    with pytest.raises(HandshakeError, match="initiator's confirmation"):
        server.receive(bytes(CONFIRM_BYTES) + b"anything")
    with pytest.raises(PeerProtocolError):  # a failed session stays failed
        server.receive(b"more")
    with pytest.raises(PeerProtocolError):
        server.seal(b"x")


def test_an_initiator_without_the_secret_never_gets_a_frame_accepted() -> None:
    """An attacker who knows the protocol but not the secret: its
    confirmation and frames come from keys derived from a guessed secret."""
    attacker = PeerSession(OTHER_SECRET, initiator=True, max_frame_bytes=CAP)
    server = PeerSession(SECRET, initiator=False, max_frame_bytes=CAP)
    server_hello, _ = server.receive(attacker.start())
    # The attacker cannot verify the server, but sends a confirmation and a
    # frame from its own key schedule anyway.
    c2s, _s2c, c_confirm, _ = derive_keys(OTHER_SECRET, attacker._random, server_hello[len(MAGIC) : len(MAGIC) + 32])
    forged = peer_crypto._confirm(c_confirm, peer_crypto._CLIENT_CONFIRM_LABEL, attacker._random,
                                  server_hello[len(MAGIC) : len(MAGIC) + 32])
    with pytest.raises(HandshakeError):
        server.receive(forged + FrameSealer(c2s, CAP).seal(b"payload"))
    assert not server.established


@pytest.mark.parametrize(
    "garbage",
    [
        struct.pack("i", 2**31 - 1) + b"x" * 60,  # pysyncobj's length-prefixed frame
        b"gAAAAA" + b"A" * 100,  # a Fernet-looking token
        b"\x80\x04\x95" + b"\x00" * 50,  # a pickle
        b"COORDP\x00\x02" + bytes(32),  # another protocol version
    ],
)
def test_a_responder_rejects_a_wrong_magic_from_the_first_differing_byte(garbage: bytes) -> None:
    server = PeerSession(SECRET, initiator=False, max_frame_bytes=CAP)
    with pytest.raises(HandshakeError, match="bad magic"):
        server.receive(garbage)
    server = PeerSession(SECRET, initiator=False, max_frame_bytes=CAP)
    differing = next(i for i, (a, b) in enumerate(zip(garbage, MAGIC, strict=False)) if a != b)
    server.receive(garbage[:differing])  # a prefix of the magic is still fine
    with pytest.raises(HandshakeError):
        server.receive(garbage[differing : differing + 1])


def test_an_initiator_rejects_a_responder_of_another_protocol() -> None:
    client = PeerSession(SECRET, initiator=True, max_frame_bytes=CAP)
    client.start()
    with pytest.raises(HandshakeError, match="bad magic"):
        client.receive(struct.pack("i", 40) + b"x" * 100)


def test_keys_differ_per_direction_and_per_connection() -> None:
    first = _pair()
    second = _pair()
    # The same plaintext as frame 0 differs per direction and per connection,
    # and no frame opens on another stream.
    frames = [first[0].seal(b"same"), first[1].seal(b"same"), second[0].seal(b"same"), second[1].seal(b"same")]
    assert len(set(frames)) == 4
    with pytest.raises(FrameError):  # client->server frame of connection 1 into connection 2
        second[1].receive(frames[0])
    client, _server = _pair()
    with pytest.raises(FrameError):  # a frame reflected back to its sender
        client.receive(client.seal(b"reflected"))


def test_derive_keys_gives_four_distinct_keys_bound_to_both_randoms() -> None:
    a, b = bytes(range(32)), bytes(range(1, 33))
    keys = derive_keys(SECRET, a, b)
    assert len(set(keys)) == 4 and all(len(k) == 32 for k in keys)
    assert derive_keys(SECRET, a, b) == keys
    assert set(derive_keys(SECRET, b, a)).isdisjoint(keys)
    assert set(derive_keys(OTHER_SECRET, a, b)).isdisjoint(keys)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        derive_keys(b"short", a, b)
    with pytest.raises(TypeError, match="bytes"):
        derive_keys("a str secret of enough length 1234567890", a, b)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="32 bytes"):
        derive_keys(SECRET, a[:16], b)


def test_tampering_with_any_byte_of_a_frame_is_detected() -> None:
    size = len(_pair()[0].seal(b"some Raft message"))
    for position in range(size):
        client, server = _pair()
        frame = bytearray(client.seal(b"some Raft message"))
        frame[position] ^= 0x01
        with pytest.raises(FrameError):
            server.receive(bytes(frame) + bytes(CAP + 64))  # padding so a lengthened header still completes


def test_replayed_reordered_and_dropped_frames_are_rejected() -> None:
    client, server = _pair()
    f0, f1, f2 = (client.seal(b"%d" % i) for i in range(3))
    assert server.receive(f0)[1] == [b"0"]
    with pytest.raises(FrameError):  # replay of frame 0
        server.receive(f0)
    client, server = _pair()
    f0, f1, f2 = (client.seal(b"%d" % i) for i in range(3))
    with pytest.raises(FrameError):  # reordered: frame 1 first
        server.receive(f1)
    client, server = _pair()
    f0, f1, f2 = (client.seal(b"%d" % i) for i in range(3))
    server.receive(f0)
    with pytest.raises(FrameError):  # frame 1 dropped
        server.receive(f2)


def test_a_truncated_frame_is_never_delivered() -> None:
    client, server = _pair()
    wire = client.seal(b"x" * 100)
    assert server.receive(wire[:-1]) == (b"", [])  # waits for the rest, delivers nothing
    # a frame whose header was shortened to cut the body fails authentication
    client, server = _pair()
    body = client.seal(b"x" * 100)[HEADER_BYTES:]
    with pytest.raises(FrameError):
        server.receive(struct.pack(">I", 50) + body[:50])


def test_an_oversized_length_is_refused_before_its_body_arrives() -> None:
    client, server = _pair(cap=1000)
    with pytest.raises(FrameError, match="above the 1016-byte cap"):
        server.receive(struct.pack(">I", 1000 + TAG_BYTES + 1))  # the header alone
    client, server = _pair(cap=1000)
    with pytest.raises(FrameError, match="above"):
        server.receive(struct.pack(">I", 2**32 - 1))
    client, server = _pair(cap=1000)
    with pytest.raises(FrameError, match="shorter than its tag"):
        server.receive(struct.pack(">I", TAG_BYTES - 1) + bytes(64))
    client, server = _pair(cap=1000)
    assert server.receive(client.seal(b"x" * 1000))[1] == [b"x" * 1000]  # exactly the cap is fine
    with pytest.raises(FrameError, match="exceeds the 1000-byte cap"):
        client.seal(b"x" * 1001)


def test_sealing_before_the_handshake_completes_is_refused() -> None:
    client = PeerSession(SECRET, initiator=True, max_frame_bytes=CAP)
    server = PeerSession(SECRET, initiator=False, max_frame_bytes=CAP)
    with pytest.raises(PeerProtocolError, match="not complete"):
        client.seal(b"x")
    server.receive(client.start())
    with pytest.raises(PeerProtocolError, match="not complete"):
        server.seal(b"x")  # the responder must first verify the initiator


def test_a_responder_buffers_at_most_one_receive_before_authentication() -> None:
    """Bytes after a wrong confirmation are never parsed as frames."""
    client = PeerSession(SECRET, initiator=True, max_frame_bytes=CAP)
    server = PeerSession(SECRET, initiator=False, max_frame_bytes=CAP)
    hello = client.start()
    server.receive(hello[: CLIENT_HELLO_BYTES - 1])
    server.receive(b"\x00")  # completes the hello with a random last byte
    with pytest.raises(HandshakeError):
        server.receive(bytes(CONFIRM_BYTES - 1) + b"\x01" + bytes(1 << 20))


def test_counters_exhaust_before_a_nonce_could_repeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peer_crypto, "MAX_FRAMES_PER_KEY", 3)
    client, server = _pair()
    frames = [client.seal(b"%d" % i) for i in range(3)]
    with pytest.raises(NonceExhausted):
        client.seal(b"one too many")
    assert server.receive(b"".join(frames))[1] == [b"0", b"1", b"2"]
    monkeypatch.setattr(peer_crypto, "MAX_BYTES_PER_KEY", 10)
    client, _ = _pair()
    client.seal(b"x" * 10)
    with pytest.raises(NonceExhausted):
        client.seal(b"y")


def test_bad_arguments_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        PeerSession(b"short", initiator=True, max_frame_bytes=CAP)
    with pytest.raises(TypeError, match="max_frame_bytes must be an int"):
        PeerSession(SECRET, initiator=True, max_frame_bytes=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_frame_bytes must be in"):
        PeerSession(SECRET, initiator=True, max_frame_bytes=0)
    with pytest.raises(ValueError, match="random_bytes returned"):
        PeerSession(SECRET, initiator=True, max_frame_bytes=CAP, random_bytes=lambda n: b"x")


def test_frame_reader_is_linear_in_a_large_frame_fed_in_small_pieces() -> None:
    """16 MiB in 4 KiB pieces: with quadratic buffering (pysyncobj's
    ``bytes +=``) this moves ~32 TiB; here it takes well under a second."""
    key = bytes(range(32))
    size = 16 << 20
    frame = FrameSealer(key, size).seal(bytes(size))
    reader = FrameReader(key, size)
    view = memoryview(frame)
    got: list[bytes] = []
    for start in range(0, len(frame), 4096):
        reader.feed(view[start : start + 4096])
        got += reader.frames()
    assert len(got) == 1 and len(got[0]) == size and reader.buffered == 0


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(st.binary(max_size=300), max_size=12),
    cuts=st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=8),
)
def test_any_messages_cut_anywhere_arrive_intact_and_in_order(messages: list[bytes], cuts: list[int]) -> None:
    client, server = _pair()
    wire = b"".join(client.seal(m) for m in messages)
    received: list[bytes] = []
    position = 0
    for size in itertools.cycle(cuts):
        if position >= len(wire):
            break
        received += server.receive(wire[position : position + size])[1]
        position += size
    assert received == messages


@settings(max_examples=60, deadline=None)
@given(
    message=st.binary(min_size=1, max_size=200),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_any_single_byte_change_is_rejected(message: bytes, position: int, flip: int) -> None:
    client, server = _pair()
    frame = bytearray(client.seal(message))
    frame[position % len(frame)] ^= flip
    with pytest.raises(FrameError):
        server.receive(bytes(frame) + bytes(CAP + 64))  # enough bytes for any lengthened header


@settings(max_examples=40, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=200))
def test_a_responder_never_accepts_arbitrary_bytes(garbage: bytes) -> None:
    server = PeerSession(SECRET, initiator=False, max_frame_bytes=CAP)
    try:
        reply, frames = server.receive(garbage)
    except HandshakeError:
        return
    assert frames == [] and not server.established
