"""Overload: ``cfg.overload_factor`` x the curve's largest window (10 x 256
= 2,560 outstanding creates) for ``cfg.overload_seconds``.  No collapse
means throughput stays near the peak of the curve while the excess waits or
gets errors; the figures are ops/s, errors (by type), writes still
incomplete at the deadline, and the latency of the successful ones."""

from __future__ import annotations

import time
from typing import Any

from ..common import Config, Progress
from ..systems import System


def run(system: System, cfg: Config, progress: Progress) -> dict[str, Any]:
    lead = system.leader_index()
    caller = system.caller(lead)
    window = cfg.overload_factor * max(cfg.curve_points)
    progress.note(f"{system.name}: {window} outstanding creates for {cfg.overload_seconds:.0f}s")
    res: dict[str, Any] = caller.call("bench_write_load", "create", 10_000_000, window, "/bench/overload",
                                      value_size=cfg.value_size, deadline=cfg.overload_seconds,
                                      timeout=cfg.overload_seconds + 120)
    # Let the backlog drain before the next workload: one write must pass.
    t0 = time.monotonic()
    caller.call("bench_write_latency", "set", 1, "/bench/overload-drain", deadline=60.0, timeout=90.0)
    res["drain_seconds"] = time.monotonic() - t0
    res["window"] = window
    return res
