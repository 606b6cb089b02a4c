"""Commit latency of synchronous ``create`` and ``set``, caller on the
leader and on a follower: ``cfg.n`` sequential writes after ``cfg.warmup``
untimed ones, ``cfg.repeats`` times; the median of each percentile over the
repeats."""

from __future__ import annotations

from typing import Any

from coord.local_cluster.bench_agent import summarize_us

from ..common import Config, Progress, median_summary
from ..systems import System

ROWS = (("create", "leader"), ("create", "follower"), ("set", "leader"), ("set", "follower"))


def run(system: System, cfg: Config, progress: Progress) -> dict[str, Any]:
    lead = system.leader_index()
    fol = next(i for i in range(system.n) if i != lead)
    out: dict[str, Any] = {}
    for kind, where in ROWS:
        caller = system.caller(lead if where == "leader" else fol)
        reps = []
        for r in range(cfg.repeats):
            progress.note(f"{system.name}: {cfg.n} sequential {kind} on the {where} (repeat {r + 1}/{cfg.repeats})")
            lat = caller.call("bench_write_latency", kind, cfg.n, f"/bench/commit/{kind}-{where}-{r}",
                              value_size=cfg.value_size, warmup=cfg.warmup, deadline=120.0, timeout=200.0)
            reps.append(summarize_us(lat))
        out[f"{kind}/{where}"] = median_summary(reps)
        out[f"{kind}/{where}"]["per_repeat_p50"] = [s["p50"] for s in reps]
    return out
