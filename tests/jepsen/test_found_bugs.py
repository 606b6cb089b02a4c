"""Coord bugs the Jepsen harness found, each pinned by a test of the
contract it broke (they failed before the fix).

1. A write issued while ``Coordinator.start()`` is still running (here: a
   member restarting from its data_dir, replaying its journal) passes
   ``check_usable`` (``_started`` is already True), is proposed with session
   id 0 (no session open yet: the system identity, outside the at-most-once
   table) and, when ``start()`` then opens the session, ``begin_session``
   fails it with ``SessionExpiredError`` ("the session was lost before this
   request was applied") although the entry is in the log and gets applied.
   Found by the set workload (an ``add`` answered SessionExpiredError was in
   the final read) before the harness learned to wait for ``ready``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

from helpers import free_ports

from coord import Coordinator
from coord.errors import CoordError, SessionExpiredError


def test_a_write_during_start_is_never_reported_failed_but_applied(tmp_path: Path) -> None:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    members = [Coordinator(a, addrs, session_timeout=3.0, data_dir=str(tmp_path / str(i)))
               for i, a in enumerate(addrs)]
    try:
        starters = [threading.Thread(target=m.start, kwargs={"timeout": 20}) for m in members]
        for t in starters:
            t.start()
        for t in starters:
            t.join()
        pads = [members[0].create_async(f"/pad-{i}", b"x" * 200) for i in range(1000)]
        for f in pads:
            f.result(timeout=60)
        members[0].ensure_path("/early")
        late = members[2]
        late.stop()
        starter = threading.Thread(target=late.start, kwargs={"timeout": 30})
        starter.start()
        deadline = time.monotonic() + 10
        while not late._member._started and time.monotonic() < deadline:
            time.sleep(0.0002)
        early = []
        i = 0
        while starter.is_alive() and i < 5000:
            with contextlib.suppress(CoordError):
                early.append((f"e{i:05d}-", late.create_async(f"/early/e{i:05d}-", b"x", sequence=True)))
            i += 1
            time.sleep(0.001)
        starter.join()
        members[0].sync()
        applied = {c.rsplit("-", 1)[0] + "-" for c in members[0].get_children("/early")}
        wrong = []
        for prefix, future in early:
            exc = future.exception(timeout=15)
            if isinstance(exc, SessionExpiredError) and prefix in applied:
                wrong.append(prefix)
        assert not wrong, f"{len(wrong)} creates answered SessionExpiredError were applied: {wrong[:5]}"
    finally:
        for m in members:
            m.stop()
