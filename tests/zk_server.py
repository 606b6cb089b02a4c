"""Start and stop a throwaway standalone ZooKeeper server for tests.

Uses the ZooKeeper jars of the Debian ``zookeeper`` package (3.8): the
server runs as ``java -cp ... org.apache.zookeeper.server.ZooKeeperServerMain
<zoo.cfg>`` with a generated config in a temporary directory, listening on a
free loopback port only. Every server started here is stopped (terminate,
then kill after a deadline) by :meth:`ZooKeeperServer.stop`, by the context
manager, or at interpreter exit as a last resort.

::

    from zk_server import ZooKeeperServer, zookeeper_unavailable_reason

    with ZooKeeperServer() as zk:
        client = kazoo.client.KazooClient(hosts=zk.hosts); client.start()

Pytest helpers live in ``tests/differential/conftest.py``: they skip when
ZooKeeper is missing, except when the ``CI`` environment variable is set,
where a missing ZooKeeper is a failure.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path

MAIN_CLASS = "org.apache.zookeeper.server.ZooKeeperServerMain"

CONTAINER_CHECK_INTERVAL_MS = 100
"""How often ZooKeeper's ContainerManager looks for containers and TTL nodes to reap."""

# Where ZooKeeper's jars may live. The Debian package puts zookeeper.jar in
# /usr/share/java; its manifest's Class-Path names every dependency, so that
# one jar is a complete classpath. An upstream tarball (ZOOKEEPER_HOME) has
# lib/*.jar instead.
_DEBIAN_JAR = "/usr/share/java/zookeeper.jar"
_TARBALL_GLOBS = ("lib/*.jar", "*.jar")


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_java() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = os.path.join(java_home, "bin", "java")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("java")


def find_classpath() -> str | None:
    """The classpath to run ZooKeeper's server, or None when not installed.

    ``ZOOKEEPER_CLASSPATH`` overrides; then ``ZOOKEEPER_HOME`` (tarball
    layout); then the Debian package's jars.
    """
    override = os.environ.get("ZOOKEEPER_CLASSPATH")
    if override:
        return override
    home = os.environ.get("ZOOKEEPER_HOME")
    if home:
        jars: list[str] = []
        for pattern in _TARBALL_GLOBS:
            jars.extend(sorted(glob.glob(os.path.join(home, pattern))))
        if any("zookeeper" in os.path.basename(j) for j in jars):
            return os.pathsep.join(jars)
    if os.path.isfile(_DEBIAN_JAR):
        jars = [_DEBIAN_JAR]
        jute = "/usr/share/java/zookeeper-jute.jar"
        if os.path.isfile(jute):
            jars.append(jute)  # also named by the manifest; harmless twice
        return os.pathsep.join(jars)
    return None


def zookeeper_unavailable_reason() -> str | None:
    """Why a ZooKeeper server cannot be started here, or None if it can."""
    if find_java() is None:
        return "java not found (install a JRE, e.g. apt-get install -y default-jre-headless)"
    if find_classpath() is None:
        return (
            "ZooKeeper not installed: no /usr/share/java/zookeeper.jar "
            "(apt-get install -y zookeeper), ZOOKEEPER_HOME or ZOOKEEPER_CLASSPATH"
        )
    return None


class ZooKeeperStartError(RuntimeError):
    """The server process did not come up before its deadline."""


_LIVE: weakref.WeakSet[ZooKeeperServer] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:  # pragma: no cover - last resort only
    for server in list(_LIVE):
        server.stop()


class ZooKeeperServer:
    """One standalone ZooKeeper server on 127.0.0.1:<free port>."""

    def __init__(self, *, tick_time_ms: int = 2000, start_timeout: float = 60.0) -> None:
        self.tick_time_ms = tick_time_ms
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.tmpdir: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file = None
        self._lock = threading.Lock()

    @property
    def hosts(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"127.0.0.1:{self.port}"

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> ZooKeeperServer:
        reason = zookeeper_unavailable_reason()
        if reason is not None:
            raise ZooKeeperStartError(reason)
        deadline = time.monotonic() + self.start_timeout
        self.tmpdir = tempfile.mkdtemp(prefix="coord-zk-")
        _LIVE.add(self)
        last_error: Exception | None = None
        # The free port is found by binding port 0 and closing it; another
        # process may grab it before Java binds it, so retry a few times.
        for _attempt in range(3):
            try:
                self._start_once(deadline)
                return self
            except ZooKeeperStartError as exc:
                last_error = exc
                self._stop_process()
                if time.monotonic() >= deadline:
                    break
        self.stop()
        raise ZooKeeperStartError(str(last_error))

    def _start_once(self, deadline: float) -> None:
        assert self.tmpdir is not None
        self.port = _free_loopback_port()
        data_dir = os.path.join(self.tmpdir, f"data-{self.port}")
        os.makedirs(data_dir, exist_ok=True)
        cfg = os.path.join(self.tmpdir, f"zoo-{self.port}.cfg")
        Path(cfg).write_text(
            "\n".join(
                [
                    f"tickTime={self.tick_time_ms}",
                    f"dataDir={data_dir}",
                    f"clientPort={self.port}",
                    "clientPortAddress=127.0.0.1",
                    "maxClientCnxns=0",
                    "admin.enableServer=false",
                    "4lw.commands.whitelist=*",
                    # Speed: no fsync per txn, small log preallocation. Both
                    # become zookeeper.* system properties.
                    "forceSync=no",
                    "preAllocSize=1024",
                    "snapCount=100000",
                ]
            )
            + "\n"
        )
        log_path = os.path.join(self.tmpdir, f"zookeeper-{self.port}.log")
        self._log_file = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        cmd = [
            find_java() or "java",
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.net.preferIPv4Stack=true",
            "-Dzookeeper.jmx.log4j.disable=true",
            # TTL nodes need the extended ephemeral types; a short container
            # manager period lets container/TTL reaping finish in well under
            # a second (the default checks once a minute).
            "-Dzookeeper.extendedTypesEnabled=true",
            f"-Dznode.container.checkIntervalMs={CONTAINER_CHECK_INTERVAL_MS}",
            "-cp",
            find_classpath() or "",
            MAIN_CLASS,
            cfg,
        ]
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.tmpdir,
            start_new_session=True,
        )
        self._wait_ready(deadline, log_path)

    def _wait_ready(self, deadline: float, log_path: str) -> None:
        assert self.process is not None and self.port is not None
        while True:
            if self.process.poll() is not None:
                raise ZooKeeperStartError(
                    f"ZooKeeper exited with {self.process.returncode}:\n{self._log_tail(log_path)}"
                )
            if self._four_letter("ruok", timeout=0.5) == "imok":
                break
            if time.monotonic() >= deadline:
                raise ZooKeeperStartError(
                    f"ZooKeeper not answering on {self.hosts} before the deadline:\n"
                    f"{self._log_tail(log_path)}"
                )
            time.sleep(0.05)
        # The 4lw port answering is not enough: wait for a real session.
        from kazoo.client import KazooClient

        client = KazooClient(hosts=self.hosts, timeout=10.0)
        try:
            client.start(timeout=max(1.0, deadline - time.monotonic()))
        except Exception as exc:
            raise ZooKeeperStartError(
                f"ZooKeeper on {self.hosts} did not accept a kazoo session: {exc!r}\n"
                f"{self._log_tail(log_path)}"
            ) from exc
        finally:
            client.stop()
            client.close()

    def _four_letter(self, word: str, timeout: float) -> str | None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
                sock.sendall(word.encode())
                chunks = []
                while True:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    chunks.append(chunk)
                return b"".join(chunks).decode(errors="replace")
        except OSError:
            return None

    def four_letter(self, word: str, timeout: float = 5.0) -> str | None:
        """Send a four-letter command (all are whitelisted) and return the answer."""
        return self._four_letter(word, timeout)

    @staticmethod
    def _log_tail(log_path: str, lines: int = 40) -> str:
        try:
            with open(log_path, "rb") as fh:
                return b"".join(fh.readlines()[-lines:]).decode(errors="replace")
        except OSError:
            return "(no log)"

    def _stop_process(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def stop(self) -> None:
        """Stop the server (terminate, kill after a deadline) and remove its files."""
        with self._lock:
            self._stop_process()
            if self.tmpdir is not None:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = None
            _LIVE.discard(self)

    def __enter__(self) -> ZooKeeperServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------
# pytest integration (import these names into a conftest to use them)


def skip_or_fail_without_zookeeper() -> None:
    """In a test: skip when ZooKeeper cannot run here, or fail when the
    ``CI`` environment variable is set (CI must run the ZooKeeper tests)."""
    import pytest

    reason = zookeeper_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but ZooKeeper cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


try:
    import pytest as _pytest
except ImportError:  # pragma: no cover - the helper also works without pytest
    _pytest = None

if _pytest is not None:

    @_pytest.fixture(scope="session")
    def zookeeper_server():  # type: ignore[no-untyped-def]
        """One standalone ZooKeeper server for the whole test session."""
        skip_or_fail_without_zookeeper()
        server = ZooKeeperServer().start()
        try:
            yield server
        finally:
            server.stop()
