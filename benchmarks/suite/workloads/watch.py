"""Watch notification latency: a data watch (re-armed by a read in its
callback) on a follower; ``cfg.watch_n`` sets of the node from the leader,
``cfg.watch_gap`` s apart, each value tagged.  Latency = wall time the
watcher's callback ran minus wall time the writer issued the set (both
processes read the same system clock); also reported from the writer's
acknowledgement.  Writes with no matching callback (coalesced) are counted."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from coord.local_cluster import wait_until
from coord.local_cluster.bench_agent import summarize_us

from ..common import Config, Progress
from ..systems import System
from . import NotApplicable, not_supported


def run(system: System, cfg: Config, progress: Progress) -> dict[str, Any]:
    lead = system.leader_index()
    fol = next(i for i in range(system.n) if i != lead)
    writer, watcher = system.caller(lead), system.caller(fol)
    path = "/bench/watch"
    try:
        writer.call("bench_write_latency", "set", 1, path, timeout=60.0)
        watcher.call("bench_watch_arm", path, cfg.value_size, timeout=60.0)
    except Exception as exc:
        if not_supported(exc):
            raise NotApplicable("no watches in this system") from None
        raise
    time.sleep(0.2)
    progress.note(f"{system.name}: {cfg.watch_n} watched sets, leader -> follower")
    writes = writer.call("bench_watch_writes", path, cfg.watch_n, cfg.watch_gap, cfg.value_size,
                         deadline=120.0, timeout=200.0)
    last = writes[-1][0] if writes else None

    def seen_last() -> bool:
        return any(tag == last for tag, _ in watcher.call("bench_watch_events", timeout=10.0))

    if last is not None:
        with contextlib.suppress(TimeoutError):
            wait_until(seen_last, 10.0, what="the last watch event")
    events: dict[str, float] = {}
    for tag, t in watcher.call("bench_watch_events", timeout=10.0):
        events.setdefault(tag, t)
    from_issue, from_ack = [], []
    for tag, t_issue, t_ack in writes:
        if tag in events:
            from_issue.append((events[tag] - t_issue) * 1e6)
            from_ack.append((events[tag] - t_ack) * 1e6)
    return {"from_issue": summarize_us(from_issue), "from_ack": summarize_us(from_ack),
            "writes": len(writes), "missed": len(writes) - len(from_issue)}
