#!/usr/bin/env python3
"""Failover in a nutshell: kill the leader, writes resume, its ephemeral goes.

Three coord members run as separate processes on 127.0.0.1 (via
``coord.local_cluster``).  The leader registers itself with an ephemeral
node, a follower watches that node, and then the leader is SIGKILLed.
The survivors elect a new leader within about a second, so writes resume;
the dead member's session expires after ``session_timeout`` and its
ephemeral is deleted, which fires the watch.

Run from a checkout::

    python examples/failover.py

For the longer narrated version see ``python -m coord demo``.
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coord.errors import CoordError
from coord.local_cluster import LocalCluster, RpcError

SESSION_TIMEOUT = 3.0


def main() -> int:
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.2f}s] {msg}", flush=True)

    # Every member of one cluster shares a secret (it encrypts and
    # authenticates peer traffic); a random one is enough for a local run.
    secret = secrets.token_urlsafe(32)
    with LocalCluster(3, session_timeout=SESSION_TIMEOUT, secret=secret) as cluster:
        leader = cluster.leader()
        writer, watcher = [m for m in cluster if m is not leader]
        log(f"3 members up; leader is {leader.name} (pid {leader.pid})")

        # The leader announces itself the ZooKeeper way: an ephemeral node.
        leader.create(f"/workers/{leader.name}", b"alive", ephemeral=True, makepath=True)
        watcher.sync()
        watch_id = watcher.watch("exists", f"/workers/{leader.name}")
        writer.create("/counter", b"0")
        log(f"{leader.name} registered /workers/{leader.name}; {watcher.name} watches it")

        killed_at = leader.kill()
        log(f"SIGKILL {leader.name}")

        # Writes on a survivor fail (or wait) only while a new leader is elected.
        deadline = time.monotonic() + 20.0
        while True:
            try:
                writer.set("/counter", b"1", timeout=10.0)
                break
            except (CoordError, RpcError) as exc:
                if time.monotonic() > deadline:
                    raise
                log(f"write refused during the election: {type(exc).__name__}")
                time.sleep(0.1)
        log(f"write accepted again {1000 * (time.time() - killed_at):.0f} ms after the kill; "
            f"new leader {cluster.leader().name}")

        event = watcher.wait_watch_event(watch_id, wait=2 * SESSION_TIMEOUT + 15.0)
        if event is None:
            log("the watch did not fire")
            return 1
        log(f"watch fired: {event['type']} {event['path']}, "
            f"{event['time'] - killed_at:.2f} s after the kill (session_timeout {SESSION_TIMEOUT:g} s)")
        log(f"/workers now: {watcher.get_children('/workers')}")
    log("cluster stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
