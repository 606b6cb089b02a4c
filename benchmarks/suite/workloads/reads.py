"""Local read latency of ``get``, ``exists`` and ``get_children`` (a node
with 64 B data and 10 children), caller on a follower, and sequential
reads/s from that one process (a second, untimed pass of the same count)."""

from __future__ import annotations

from typing import Any

from ..common import Config, Progress, median_summary
from ..systems import System
from . import NotApplicable, not_supported

OPS = ("get", "exists", "get_children")


def run(system: System, cfg: Config, progress: Progress) -> dict[str, Any]:
    caller = system.caller(system.follower_index())
    try:
        caller.call("bench_prepare_reads", "/bench/reads", 10, cfg.value_size, timeout=60.0)
    except Exception as exc:
        if not_supported(exc):
            raise NotApplicable("no reads in this system") from None
        raise
    out: dict[str, Any] = {}
    for op in OPS:
        progress.note(f"{system.name}: {cfg.read_n} sequential {op}")
        reps = [caller.call("bench_read_latency", op, cfg.read_n, "/bench/reads", deadline=4.0, timeout=120.0)
                for _ in range(cfg.repeats)]
        out[op] = median_summary([r["latency"] for r in reps])
        out[op]["reads_per_sec"] = median_summary([{"v": r["reads_per_sec"]} for r in reps])["v"]
    return out
