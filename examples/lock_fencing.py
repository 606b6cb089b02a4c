#!/usr/bin/env python3
"""Why a lock needs fencing tokens: a paused holder's late write is rejected.

The classic scenario (Martin Kleppmann, "How to do distributed locking"):

1. worker A takes the lock and decides to write to the storage;
2. A is paused before the write (a long GC pause, a frozen VM: here,
   SIGSTOP) for longer than its session timeout;
3. the cluster expires A's session, deletes its lock node, and worker B
   takes the lock and writes;
4. A wakes up, still believing it holds the lock, and sends its write.

Without fencing the storage would accept A's stale write over B's. With
coord every acquisition carries a ``fencing_token`` (an int from the
replicated log that strictly increases from holder to holder); the storage
keeps a ``FenceGuard`` and refuses a token lower than one it has seen, so
A's write is REJECTED.

Three coord members run as separate processes; each worker is a ``Lock``
living inside one of them (``member.Lock(path, identifier)``). The storage
lives here, in the demo process: the workers send it their writes, tagged
with their token. The demo exits non-zero unless exactly the stale write
was rejected.

Run from a checkout::

    python examples/lock_fencing.py
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coord.local_cluster import LocalCluster, RpcProcess
from coord.local_cluster.recipe_remote import RecipeEvents, RemoteRecipe
from coord.recipes.fencing import FenceGuard, StaleFencingTokenError

SESSION_TIMEOUT = 3.0
LOCK_PATH = "/demo/lock"


class Storage:
    """The protected resource: accepts a write only with a fencing token at
    least as high as any it has seen (``FenceGuard``)."""

    def __init__(self, log: Any) -> None:
        self.guard = FenceGuard()
        self.log = log
        self.value: str | None = None
        self.accepted: list[tuple[str, int]] = []
        self.rejected: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def write(self, writer: str, token: int) -> None:
        with self._lock:
            try:
                self.guard.check(token, key="storage")
            except StaleFencingTokenError as exc:
                self.rejected.append((writer, token))
                self.log(f"storage: write from {writer} with token {token} REJECTED ({exc})")
                return
            self.value = f"written by {writer}"
            self.accepted.append((writer, token))
            self.log(f"storage: write from {writer} with token {token} accepted")


def main() -> int:
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.2f}s] {msg}", flush=True)

    storage = Storage(log)
    events = RecipeEvents()

    def on_event(process: RpcProcess, message: dict[str, Any]) -> None:
        # a worker's write reaches the storage, with the token it holds
        if message.get("event") == "recipe" and message.get("what") == "work":
            storage.write(process.name, int(message["fencing_token"]))
        events(process, message)  # after the storage answered: waiters see the outcome

    def acquired(name: str) -> dict[str, Any]:
        return events.wait_for(
            lambda e: e["what"] == "acquired" and e["member"] == name,
            timeout=SESSION_TIMEOUT + 15.0,
            what=f"{name} to take the lock",
        )

    secret = secrets.token_urlsafe(32)
    with LocalCluster(3, session_timeout=SESSION_TIMEOUT, secret=secret, event_handler=on_event) as cluster:
        # A on a follower, so the two others keep their quorum leader while A is frozen
        a = cluster.followers()[0]
        b, c = [m for m in cluster if m is not a]
        log(f"3 workers up: A={a.name} (pid {a.pid}), B={b.name}, C={c.name}")
        locks = {m.name: RemoteRecipe(m, "Lock", LOCK_PATH, m.name) for m in cluster}

        # A: take the lock, "prepare" for 1.5 s, then write once -- without
        # looking at the lock again (it decided to write before the pause)
        run_a = locks[a.name].run(work={"delay": 1.5, "count": 1}, stop_on_lost=False, max_seconds=40.0)
        token_a = acquired(a.name)["fencing_token"]
        log(f"A took the lock with fencing token {token_a}; it will write in 1.5 s")
        a.pause()
        paused_at = time.monotonic()
        log(f"SIGSTOP A (a long GC pause) -- its session expires after {SESSION_TIMEOUT:g} s")

        # B: waits for the lock, writes right away, holds on a bit
        run_b = locks[b.name].run(hold=2.0, work={"delay": 0.1, "count": 1}, max_seconds=40.0)
        token_b = acquired(b.name)["fencing_token"]
        log(f"B took the lock {time.monotonic() - paused_at:.2f} s after A froze, fencing token {token_b}")
        events.wait_for(lambda e: e["what"] == "work" and e["member"] == b.name, timeout=10.0, what="B's write")

        log("SIGCONT A: it wakes up still believing it holds the lock, and writes")
        a.resume()
        stale = events.wait_for(
            lambda e: e["what"] == "work" and e["member"] == a.name, timeout=15.0, what="A's late write"
        )
        state_a = locks[a.name].state(timeout=15.0)
        log(f"A's Lock now says is_acquired={state_a.get('is_acquired')} (its session was LOST while it was frozen)")
        locks[a.name].stop(run_a, wait=10.0)
        locks[b.name].wait_run(run_b, wait=15.0)

        # C takes the lock next, with a still higher token, and writes
        run_c = locks[c.name].run(hold=0.5, work={"delay": 0.1, "count": 1}, max_seconds=30.0)
        token_c = acquired(c.name)["fencing_token"]
        events.wait_for(lambda e: e["what"] == "work" and e["member"] == c.name, timeout=10.0, what="C's write")
        locks[c.name].wait_run(run_c, wait=15.0)
    log("cluster stopped")

    print()
    print(f"tokens: A={token_a} B={token_b} C={token_c}")
    print(f"accepted: {storage.accepted}")
    print(f"rejected: {storage.rejected}")
    print(f"storage value: {storage.value!r}")
    ok = (
        token_a < token_b < token_c
        and storage.rejected == [(a.name, stale["fencing_token"])]
        and storage.accepted == [(b.name, token_b), (c.name, token_c)]
    )
    if not ok:
        print("UNEXPECTED: the stale write was not (only) what the storage rejected")
        return 1
    print(
        "OK: the paused holder's late write was REJECTED by its fencing token; "
        "the storage never went back to a stale holder's data"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
