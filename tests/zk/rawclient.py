"""A minimal blocking ZooKeeper protocol client for tests: sends frames built
with ``coord.zk.jute`` and returns decoded reply headers and bodies, so tests
can exercise what kazoo never sends (SetWatches, addWatch, multiRead,
whoAmI, ...) and throw malformed frames at a server."""

from __future__ import annotations

import socket
import time
from typing import Any

from coord.zk import jute
from coord.zk.jute import OpCode


class Closed(Exception):
    """The server closed the connection."""


class RawClient:
    def __init__(self, address: str, timeout: float = 5.0) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buf = b""
        self.xid = 0
        self.session_id = 0
        self.password = b""
        self.timeout_ms = 0
        self.events: list[tuple[int, str]] = []
        self.last_zxid = 0
        self.read_only = False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ framing

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, payload: bytes) -> None:
        self.send_raw(jute.frame(payload))

    def _recv_exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed(f"connection closed with {len(self.buf)} bytes buffered")
            self.buf += chunk
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def read_frame(self) -> bytes:
        size = int.from_bytes(self._recv_exact(4), "big", signed=True)
        return self._recv_exact(size)

    def read_all(self) -> bytes:
        """Everything until the server closes (four-letter words)."""
        out = self.buf
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return out
            out += chunk

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    # ------------------------------------------------------------ session

    def connect(
        self,
        timeout_ms: int = 4000,
        session_id: int = 0,
        password: bytes = b"",
        last_zxid: int = 0,
        read_only: bool = False,
    ) -> tuple[int, int, bytes]:
        """Send a ConnectRequest; returns (timeout_ms, session_id, password)."""
        request = jute.ConnectRequest(0, last_zxid, timeout_ms, session_id, password or bytes(16), read_only)
        self.send_frame(jute.connect_request(request))
        reader = jute.Reader(self.read_frame())
        reader.int32()
        self.timeout_ms = reader.int32()
        self.session_id = reader.int64()
        self.password = reader.buffer() or b""
        self.read_only = reader.boolean() if reader.remaining() else False
        return self.timeout_ms, self.session_id, self.password

    def call(self, op: int, body: bytes = b"", xid: int | None = None) -> tuple[int, int, jute.Reader]:
        """Send one request and return (err, zxid, body reader) of its reply,
        collecting watch notifications that arrive first."""
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.send_frame(jute.request_header(xid, op) + body)
        while True:
            reader = jute.Reader(self.read_frame())
            reply_xid, zxid, err = jute.read_reply_header(reader)
            if reply_xid == jute.Xid.NOTIFICATION:
                event_type, _state = reader.int32(), reader.int32()
                self.events.append((event_type, reader.path()))
                continue
            if reply_xid != xid:
                raise AssertionError(f"reply xid {reply_xid} for request xid {xid}")
            if zxid > 0:
                self.last_zxid = zxid
            return err, zxid, reader

    def wait_event(self, timeout: float = 5.0) -> tuple[int, str]:
        deadline = time.monotonic() + timeout
        while not self.events:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            reader = jute.Reader(self.read_frame())
            reply_xid, _zxid, _err = jute.read_reply_header(reader)
            assert reply_xid == jute.Xid.NOTIFICATION, f"unexpected reply xid {reply_xid}"
            event_type, _state = reader.int32(), reader.int32()
            self.events.append((event_type, reader.path()))
        self.sock.settimeout(5.0)
        return self.events.pop(0)

    # ------------------------------------------------------------ requests

    def create(self, path: str, data: bytes = b"", flags: int = 0) -> tuple[int, str | None]:
        body = (
            jute.string_(path) + jute.buffer_(data) + jute.acls_([jute.Acl(31, "world", "anyone")]) + jute.int_(flags)
        )
        err, _zxid, reader = self.call(OpCode.CREATE, body)
        return err, reader.string() if err == 0 else None

    def get_data(self, path: str, watch: bool = False) -> tuple[int, Any]:
        err, _zxid, reader = self.call(OpCode.GET_DATA, jute.string_(path) + jute.bool_(watch))
        return err, (reader.buffer(), jute.read_stat(reader)) if err == 0 else None

    def set_data(self, path: str, data: bytes, version: int = -1) -> int:
        err, _zxid, _reader = self.call(OpCode.SET_DATA, jute.string_(path) + jute.buffer_(data) + jute.int_(version))
        return err

    def exists(self, path: str, watch: bool = False) -> int:
        err, _zxid, _reader = self.call(OpCode.EXISTS, jute.string_(path) + jute.bool_(watch))
        return err

    def get_children(self, path: str, watch: bool = False) -> tuple[int, list[str] | None]:
        err, _zxid, reader = self.call(OpCode.GET_CHILDREN, jute.string_(path) + jute.bool_(watch))
        return err, reader.strings() if err == 0 else None

    def delete(self, path: str, version: int = -1) -> int:
        err, _zxid, _reader = self.call(OpCode.DELETE, jute.string_(path) + jute.int_(version))
        return err

    def add_watch(self, path: str, mode: int) -> int:
        err, _zxid, _reader = self.call(OpCode.ADD_WATCH, jute.string_(path) + jute.int_(mode))
        return err

    def set_watches(self, relative_zxid: int, data: list[str], exist: list[str], child: list[str]) -> int:
        body = jute.long_(relative_zxid) + jute.strings_(data) + jute.strings_(exist) + jute.strings_(child)
        err, _zxid, _reader = self.call(OpCode.SET_WATCHES, body, xid=jute.Xid.SET_WATCHES)
        return err

    def ping(self) -> int:
        err, _zxid, _reader = self.call(OpCode.PING, xid=jute.Xid.PING)
        return err

    def multi(self, ops: list[tuple[int, bytes]]) -> tuple[int, list[tuple[int, int]]]:
        """Send a multi; returns (header err, [(result type, result err)])."""
        body = b"".join(jute.multi_header(op, False, -1) + record for op, record in ops)
        body += jute.multi_header(-1, True, -1)
        err, _zxid, reader = self.call(OpCode.MULTI, body)
        results = []
        while reader.remaining():
            op_type, done, op_err = jute.read_multi_header(reader)
            if done:
                break
            if op_type == -1:
                op_err = reader.int32()
            elif op_type == OpCode.CREATE:
                reader.string()
            elif op_type == OpCode.CREATE2:
                reader.string()
                jute.read_stat(reader)
            elif op_type == OpCode.SET_DATA:
                jute.read_stat(reader)
            results.append((op_type, op_err))
        return err, results

    def close_session(self) -> int:
        err, _zxid, _reader = self.call(OpCode.CLOSE_SESSION)
        return err


def create_record(path: str, data: bytes = b"", flags: int = 0) -> bytes:
    return jute.string_(path) + jute.buffer_(data) + jute.acls_([jute.Acl(31, "world", "anyone")]) + jute.int_(flags)


def four_letter(address: str, word: str, timeout: float = 5.0) -> str:
    with RawClient(address, timeout) as client:
        client.send_raw(word.encode("ascii"))
        return client.read_all().decode("utf-8")
