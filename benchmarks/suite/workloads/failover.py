"""Failover: a follower writes in a loop (each write abandoned after
0.25 s, so a stuck write cannot hide the recovery by more than that); the
leader is SIGKILLed; the figure is the time from the kill to the first
acknowledged write that was issued after it.  The killed member is then
restarted and the cluster settles before the next trial."""

from __future__ import annotations

import time
from typing import Any

from coord.local_cluster import wait_until

from ..common import Config, Progress, median
from ..systems import System


def run(system: System, cfg: Config, progress: Progress) -> dict[str, Any]:
    trials: list[float] = []
    restarts: list[float] = []
    for t in range(cfg.failover_trials):
        lead = system.leader_index(60.0)
        fol = next(i for i in range(system.n) if i != lead and system.is_up(i))
        caller = system.caller(fol)
        caller.call("bench_ack_loop_start", "set", f"/bench/failover-{t}", cfg.value_size, None, 120.0,
                    timeout=60.0)
        try:
            since = time.time()
            wait_until(lambda c=caller, t0=since: c.call("bench_ack_first", t0, timeout=10.0), 30.0,
                       what="writes flowing before the kill")
            progress.note(f"{system.name}: trial {t + 1}/{cfg.failover_trials}: SIGKILL leader #{lead}")
            t_kill = system.kill(lead)
            first = wait_until(lambda c=caller, tk=t_kill: c.call("bench_ack_first", tk, timeout=10.0), 90.0,
                               interval=0.01, what="a write acknowledged after the kill")
            trials.append(first[1] - t_kill)
        finally:
            caller.call("bench_ack_loop_stop", timeout=30.0)
        restarts.append(system.restart(lead, 120.0))
        system.leader_index(60.0)
    return {"seconds": trials, "median": median(trials), "max": max(trials) if trials else float("nan"),
            "restart_seconds": restarts}
