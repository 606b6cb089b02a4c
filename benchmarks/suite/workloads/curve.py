"""Async write throughput at 1, 8, 64, 256 outstanding creates (caller on
the leader), with the latency of each write from submission to completion
at each point: the latency/throughput curve.  Each point stops at
``cfg.curve_n`` writes or ``cfg.curve_seconds``."""

from __future__ import annotations

from typing import Any

from ..common import Config, Progress
from ..systems import System


def run(system: System, cfg: Config, progress: Progress) -> dict[str, Any]:
    caller = system.caller(system.leader_index())
    out: dict[str, Any] = {}
    for k in cfg.curve_points:
        progress.note(f"{system.name}: async creates, {k} outstanding")
        res = caller.call("bench_write_load", "create", cfg.curve_n, k, f"/bench/curve/{k}",
                          value_size=cfg.value_size, deadline=cfg.curve_seconds, timeout=cfg.curve_seconds + 60)
        out[str(k)] = res
    return out
