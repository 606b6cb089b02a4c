"""Scale: RSS per znode after bulk-loading ``cfg.scale`` znodes (64 B each,
batched in transactions / multi / txn, caller on the leader), then at the
largest size: one snapshot (coord: serialising the tree in-process), the
restart of a follower (stop, start, until it serves and has caught up), and
the catch-up of a new, empty member.  RSS per znode = (mean RSS of the three
members after - before) / znodes; for the JVM this includes heap not yet
collected, so read ZooKeeper's as an upper bound."""

from __future__ import annotations

import time
from typing import Any

from ..common import Config, Progress, rss_bytes
from ..systems import System
from . import NotApplicable, not_supported


def _mean_rss(system: System) -> float:
    vals = [rss_bytes(system.server_pid(i)) for i in range(system.n)]
    got = [v for v in vals if v]
    return sum(got) / len(got) if got else float("nan")


def run(system: System, cfg: Config, progress: Progress) -> dict[str, Any]:
    caller = system.caller(system.leader_index())
    before = _mean_rss(system)
    out: dict[str, Any] = {"rss_before": before, "sizes": {}}
    total = 0
    for k, n in enumerate(sorted(cfg.scale)):
        progress.note(f"{system.name}: loading znodes up to {n:,}")
        try:
            res = caller.call("bench_populate", f"/scale/s{k}", n - total, cfg.value_size, 1800.0, timeout=1900.0)
        except Exception as exc:
            if not_supported(exc):
                raise NotApplicable("no bulk load in this system") from None
            raise
        total += int(res["created"])
        time.sleep(1.0)  # followers apply the tail
        rss = _mean_rss(system)
        out["sizes"][str(n)] = {"znodes": total, "load_seconds": res["seconds"], "rss": rss,
                                "rss_per_znode": (rss - before) / total if total else float("nan")}
    progress.note(f"{system.name}: snapshot, restart and catch-up at {total:,} znodes")
    out["znodes"] = total
    out["snapshot"] = system.snapshot()
    fol = system.follower_index()
    system.stop_member(fol)
    out["restart_seconds"] = system.restart(fol, 600.0)
    out["catch_up"] = system.catch_up_new(600.0)
    return out
