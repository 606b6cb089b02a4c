"""coord's authenticated, encrypted peer protocol, without any I/O.

This module is the pure part of the member-to-member transport used when a
cluster secret is set: the handshake, the key schedule, the nonce counters
and the frame format. It never touches a socket and never unpickles
anything; ``coord.replication`` moves the bytes and unpickles only the
plaintexts this module hands back, which are authenticated by then.

**Handshake** (initiator = the member that opened the TCP connection)::

    initiator -> responder   MAGIC | client_random (32 bytes)
    responder -> initiator   MAGIC | server_random (32) | server_confirm (32)
    initiator -> responder   client_confirm (32)

Both randoms are fresh per connection. From them and the cluster secret
both sides derive, with HKDF-SHA256 (salt = client_random | server_random),
four independent 32-byte keys: one AES-256-GCM key per direction and one
HMAC-SHA256 confirmation key per direction. ``server_confirm`` is the
responder's MAC over the transcript (MAGIC and both randoms) under its
confirmation key, ``client_confirm`` the initiator's under the other one;
each side checks the other's in constant time. Only a party holding the
secret can produce either, so after the exchange each side knows the other
holds the secret (mutual authentication), and the fresh randoms make every
connection's keys different (an old handshake or frame replayed into a new
connection does not verify). The responder accepts no application frame
before the initiator's confirmation has verified.

**Frames** (after the handshake, both directions)::

    length (u32, big-endian) | AES-256-GCM(key_dir, nonce, plaintext, aad=length)

``length`` counts the ciphertext including its 16-byte tag and is the
associated data, so it is authenticated too. The nonce is never sent: it
is the 96-bit big-endian frame counter of that direction (0, 1, 2, ...),
kept by both ends, so a replayed, reordered, dropped or truncated frame
fails authentication. A direction is exhausted (``NonceExhausted``) after
``MAX_FRAMES_PER_KEY`` frames or ``MAX_BYTES_PER_KEY`` bytes, long before
any nonce could repeat or GCM's per-key limits matter; the connection is
then closed and a new one gets new keys. A length above the receiver's cap
is refused as soon as its 4 bytes arrive, before the body is buffered.

Nothing is compressed: frames are mostly small Raft messages, where zlib
cost more time than it saved bytes (measured, see the README), and
compression before encryption leaks plaintext length patterns.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: Protocol identifier and version; a member of another wire version fails
#: the handshake at once (different coord versions cannot talk).
MAGIC = b"COORDP\x00\x01"
RANDOM_BYTES = 32
CONFIRM_BYTES = 32
CLIENT_HELLO_BYTES = len(MAGIC) + RANDOM_BYTES
SERVER_HELLO_BYTES = len(MAGIC) + RANDOM_BYTES + CONFIRM_BYTES
TAG_BYTES = 16
NONCE_BYTES = 12
MIN_SECRET_BYTES = 32
_HEADER = struct.Struct(">I")
HEADER_BYTES = _HEADER.size
#: The largest ciphertext length the 4-byte header can express.
MAX_FRAME_CAP = (1 << 32) - 1
#: Frames per direction and key before the connection must be replaced.
MAX_FRAMES_PER_KEY = 1 << 40
#: Plaintext bytes per direction and key before the connection must be
#: replaced (TLS 1.3's AES-GCM margin, about 2**24.5 records of 16 KiB).
MAX_BYTES_PER_KEY = 1 << 38

_KEY_SCHEDULE_INFO = b"coord peer v1: c2s aead | s2c aead | c2s confirm | s2c confirm"
_SERVER_CONFIRM_LABEL = b"coord peer v1 responder confirm"
_CLIENT_CONFIRM_LABEL = b"coord peer v1 initiator confirm"


class PeerProtocolError(Exception):
    """A peer broke the protocol: the connection must be closed."""


class HandshakeError(PeerProtocolError):
    """The handshake failed: wrong magic/version, or the peer does not hold
    the cluster secret."""


class FrameError(PeerProtocolError):
    """A frame was oversized, malformed or failed authentication."""


class NonceExhausted(PeerProtocolError):
    """This direction's key has sealed its limit; open a new connection."""


def derive_keys(secret: bytes, client_random: bytes, server_random: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """The per-connection keys: (initiator->responder AEAD key,
    responder->initiator AEAD key, initiator confirm key, responder confirm key).

    HKDF-SHA256 with both randoms as salt; the four keys are independent
    32-byte slices of one expansion under a fixed protocol label.
    """
    _check_secret(secret)
    if len(client_random) != RANDOM_BYTES or len(server_random) != RANDOM_BYTES:
        raise ValueError(f"each random must be {RANDOM_BYTES} bytes")
    material = HKDF(
        algorithm=hashes.SHA256(), length=4 * 32, salt=client_random + server_random, info=_KEY_SCHEDULE_INFO
    ).derive(secret)
    return material[0:32], material[32:64], material[64:96], material[96:128]


def _check_secret(secret: object) -> None:
    if not isinstance(secret, bytes):
        raise TypeError(f"the cluster secret must be bytes, got {type(secret).__name__}")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the cluster secret must be at least {MIN_SECRET_BYTES} bytes, got {len(secret)}")


def _confirm(key: bytes, label: bytes, client_random: bytes, server_random: bytes) -> bytes:
    return hmac.new(key, label + MAGIC + client_random + server_random, hashlib.sha256).digest()


def _nonce(counter: int) -> bytes:
    return counter.to_bytes(NONCE_BYTES, "big")


def check_frame_cap(max_frame_bytes: int) -> int:
    """Validate a plaintext cap; returns the matching ciphertext cap."""
    if isinstance(max_frame_bytes, bool) or not isinstance(max_frame_bytes, int):
        raise TypeError(f"max_frame_bytes must be an int, got {type(max_frame_bytes).__name__}")
    if not 0 < max_frame_bytes <= MAX_FRAME_CAP - TAG_BYTES:
        raise ValueError(f"max_frame_bytes must be in 1..{MAX_FRAME_CAP - TAG_BYTES}, got {max_frame_bytes}")
    return max_frame_bytes + TAG_BYTES


class FrameSealer:
    """Encrypts one direction's frames with a counter nonce."""

    def __init__(self, key: bytes, max_frame_bytes: int) -> None:
        self._aead = AESGCM(key)
        self._max_plaintext = max_frame_bytes
        check_frame_cap(max_frame_bytes)
        self._counter = 0
        self._sealed_bytes = 0

    @property
    def frames_sealed(self) -> int:
        return self._counter

    def seal(self, plaintext: bytes) -> bytes:
        """The wire bytes of one frame carrying ``plaintext``.

        :raises FrameError: ``plaintext`` is above the cap (the peer would
            refuse it); nothing was consumed.
        :raises NonceExhausted: this key's limit is reached.
        """
        size = len(plaintext)
        if size > self._max_plaintext:
            raise FrameError(f"a {size}-byte frame exceeds the {self._max_plaintext}-byte cap")
        if self._counter >= MAX_FRAMES_PER_KEY or self._sealed_bytes + size > MAX_BYTES_PER_KEY:
            raise NonceExhausted("this connection's send key reached its limit")
        header = _HEADER.pack(size + TAG_BYTES)
        nonce = _nonce(self._counter)
        self._counter += 1
        self._sealed_bytes += size
        return header + self._aead.encrypt(nonce, plaintext, header)


class FrameReader:
    """Incremental, linear-time parser and authenticator of one direction's
    frames.

    ``feed`` appends received bytes (amortised O(1) per byte); ``frames``
    returns the plaintexts of every complete frame, authenticated in order.
    A header claiming more than the cap raises as soon as it arrives.
    """

    def __init__(self, key: bytes, max_frame_bytes: int) -> None:
        self._aead = AESGCM(key)
        self._max_ciphertext = check_frame_cap(max_frame_bytes)
        self._buffer = bytearray()
        self._start = 0
        self._counter = 0
        self._opened_bytes = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed as complete frames."""
        return len(self._buffer) - self._start

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data

    def frames(self) -> list[bytes]:
        """Authenticate and return every complete frame buffered so far.

        :raises FrameError: an oversized or undersized length, or a frame
            that fails authentication (tampered, replayed, reordered,
            truncated or from a different key). The reader is then unusable.
        :raises NonceExhausted: the peer sent more than a key may carry.
        """
        out: list[bytes] = []
        buffer, start = self._buffer, self._start
        end = len(buffer)
        while end - start >= HEADER_BYTES:
            (length,) = _HEADER.unpack_from(buffer, start)
            if length > self._max_ciphertext:
                raise FrameError(f"a frame claims {length} bytes, above the {self._max_ciphertext}-byte cap")
            if length < TAG_BYTES:
                raise FrameError(f"a frame claims {length} bytes, shorter than its tag")
            if end - start - HEADER_BYTES < length:
                break
            if self._counter >= MAX_FRAMES_PER_KEY or self._opened_bytes + length > MAX_BYTES_PER_KEY:
                raise NonceExhausted("this connection's receive key reached its limit")
            header = bytes(buffer[start : start + HEADER_BYTES])
            body = memoryview(buffer)[start + HEADER_BYTES : start + HEADER_BYTES + length]
            try:
                plaintext = self._aead.decrypt(_nonce(self._counter), body, header)
            except InvalidTag:
                raise FrameError("a frame failed authentication (tampered, replayed, reordered or wrong key)") from None
            finally:
                body.release()
            self._counter += 1
            self._opened_bytes += length - TAG_BYTES
            out.append(plaintext)
            start += HEADER_BYTES + length
        # Drop consumed bytes once they are at least half the buffer, so each
        # byte is moved O(1) times on average (linear, not quadratic).
        if start and start * 2 >= len(buffer):
            del buffer[:start]
            start = 0
        self._start = start
        return out


class PeerSession:
    """The protocol state of one connection, sans I/O.

    ``start()`` gives the first bytes to send (the initiator's hello; empty
    for the responder). ``receive(data)`` consumes received bytes and
    returns ``(bytes to send, authenticated application plaintexts)``.
    ``seal(plaintext)`` frames one outgoing message; it is allowed once
    ``established`` (the initiator after it verified the responder, the
    responder after it verified the initiator's confirmation).

    Any ``PeerProtocolError`` leaves the session unusable: close the
    connection. Handshake input is never buffered beyond the message being
    waited for plus one receive.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        initiator: bool,
        max_frame_bytes: int,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        _check_secret(secret)
        check_frame_cap(max_frame_bytes)
        self._secret = secret
        self._initiator = initiator
        self._max_frame_bytes = max_frame_bytes
        self._random = random_bytes(RANDOM_BYTES)
        if len(self._random) != RANDOM_BYTES:
            raise ValueError(f"random_bytes returned {len(self._random)} bytes, expected {RANDOM_BYTES}")
        self._pending = bytearray()
        self._sealer: FrameSealer | None = None
        self._reader: FrameReader | None = None
        self._expected_confirm = b""
        self._failed = False
        # initiator: "hello" (before start) -> "server_hello" -> "open"
        # responder: "client_hello" -> "client_confirm" -> "open"
        self._stage = "hello" if initiator else "client_hello"

    @property
    def established(self) -> bool:
        return self._stage == "open"

    @property
    def initiator(self) -> bool:
        return self._initiator

    @property
    def frames_sealed(self) -> int:
        return 0 if self._sealer is None else self._sealer.frames_sealed

    def start(self) -> bytes:
        if not self._initiator:
            return b""
        if self._stage != "hello":
            raise PeerProtocolError("start() was already called")
        self._stage = "server_hello"
        return MAGIC + self._random

    def seal(self, plaintext: bytes) -> bytes:
        if self._sealer is None or self._stage != "open":
            raise PeerProtocolError("the handshake is not complete")
        return self._sealer.seal(plaintext)

    def receive(self, data: bytes | bytearray | memoryview) -> tuple[bytes, list[bytes]]:
        if self._failed:
            raise PeerProtocolError("the session already failed")
        try:
            return self._receive(data)
        except PeerProtocolError:
            self._failed = True
            raise

    def _receive(self, data: bytes | bytearray | memoryview) -> tuple[bytes, list[bytes]]:
        if self._stage == "open":
            assert self._reader is not None
            self._reader.feed(data)
            return b"", self._reader.frames()
        if self._stage == "hello":
            raise PeerProtocolError("the initiator must call start() before receiving")
        self._pending += data
        reply = b""
        if self._stage == "client_hello":
            self._check_magic()
            if len(self._pending) < CLIENT_HELLO_BYTES:
                return b"", []
            client_random = bytes(self._pending[len(MAGIC) : CLIENT_HELLO_BYTES])
            del self._pending[:CLIENT_HELLO_BYTES]
            c2s, s2c, c_confirm, s_confirm = derive_keys(self._secret, client_random, self._random)
            self._sealer = FrameSealer(s2c, self._max_frame_bytes)
            self._reader = FrameReader(c2s, self._max_frame_bytes)
            self._expected_confirm = _confirm(c_confirm, _CLIENT_CONFIRM_LABEL, client_random, self._random)
            reply = MAGIC + self._random + _confirm(s_confirm, _SERVER_CONFIRM_LABEL, client_random, self._random)
            self._stage = "client_confirm"
        if self._stage == "client_confirm":
            if len(self._pending) < CONFIRM_BYTES:
                return reply, []
            if not hmac.compare_digest(bytes(self._pending[:CONFIRM_BYTES]), self._expected_confirm):
                raise HandshakeError("the initiator's confirmation is wrong: it does not hold the cluster secret")
            del self._pending[:CONFIRM_BYTES]
            return reply, self._open()
        # initiator waiting for the responder's hello and confirmation
        self._check_magic()
        if len(self._pending) < SERVER_HELLO_BYTES:
            return b"", []
        server_random = bytes(self._pending[len(MAGIC) : len(MAGIC) + RANDOM_BYTES])
        confirm = bytes(self._pending[len(MAGIC) + RANDOM_BYTES : SERVER_HELLO_BYTES])
        del self._pending[:SERVER_HELLO_BYTES]
        c2s, s2c, c_confirm, s_confirm = derive_keys(self._secret, self._random, server_random)
        if not hmac.compare_digest(confirm, _confirm(s_confirm, _SERVER_CONFIRM_LABEL, self._random, server_random)):
            raise HandshakeError("the responder's confirmation is wrong: it does not hold the cluster secret")
        self._sealer = FrameSealer(c2s, self._max_frame_bytes)
        self._reader = FrameReader(s2c, self._max_frame_bytes)
        reply = _confirm(c_confirm, _CLIENT_CONFIRM_LABEL, self._random, server_random)
        return reply, self._open()

    def _check_magic(self) -> None:
        seen = bytes(self._pending[: len(MAGIC)])
        if seen != MAGIC[: len(seen)]:
            raise HandshakeError("the peer does not speak coord's peer protocol v1 (bad magic)")

    def _open(self) -> list[bytes]:
        assert self._reader is not None
        self._stage = "open"
        self._expected_confirm = b""
        rest = bytes(self._pending)
        self._pending = bytearray()
        if not rest:
            return []
        self._reader.feed(rest)
        return self._reader.frames()
