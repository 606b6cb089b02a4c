"""Shared pieces of the suite: configuration, progress display, helpers."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

SYSTEMS = ("coord", "floor", "zookeeper", "etcd")
WORKLOADS = ("commit", "curve", "overload", "reads", "watch", "failover", "scale")


@dataclass
class Config:
    """What to run and how big (``--quick`` shrinks every count)."""

    quick: bool = False
    systems: tuple[str, ...] = SYSTEMS
    workloads: tuple[str, ...] = WORKLOADS
    out: str | None = None
    repeats: int = 3
    n: int = 1000  # sequential writes per latency row
    warmup: int = 100
    curve_points: tuple[int, ...] = (1, 8, 64, 256)
    curve_n: int = 10_000
    curve_seconds: float = 15.0
    overload_factor: int = 10
    overload_seconds: float = 10.0
    read_n: int = 20_000
    watch_n: int = 300
    watch_gap: float = 0.01
    failover_trials: int = 3
    scale: tuple[int, ...] = (100_000,)
    value_size: int = 64
    secret: bool = True
    keep_logs: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def quick_config(cls) -> Config:
        return cls(quick=True, repeats=1, n=50, warmup=10, curve_points=(1, 8, 64), curve_n=300,
                   curve_seconds=3.0, overload_seconds=1.0, read_n=500, watch_n=20, failover_trials=1,
                   scale=(1000,))


class Progress:
    """Line-based progress on stderr: elapsed time, step k of n, and an
    ETA from the average step time so far (stdout keeps only the tables)."""

    def __init__(self, total_steps: int, stream: Any = None) -> None:
        self.total = max(1, total_steps)
        self.done = 0
        self.t0 = time.monotonic()
        self.stream = stream if stream is not None else sys.stderr

    def step(self, what: str) -> None:
        """A new step starts (counted when the next one starts)."""
        elapsed = time.monotonic() - self.t0
        eta = ""
        if self.done:
            left = elapsed / self.done * max(0, self.total - self.done)
            eta = f" ETA ~{_hms(left)}"
        self.done += 1
        print(f"[{_hms(elapsed)} {min(self.done, self.total)}/{self.total}{eta}] {what}",
              file=self.stream, flush=True)

    def note(self, what: str) -> None:
        print(f"[{_hms(time.monotonic() - self.t0)}]   {what}", file=self.stream, flush=True)


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60:d}:{s % 60:02d}"


def rss_bytes(pid: int | None) -> int | None:
    """Resident set size of ``pid`` (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def median(values: list[float]) -> float:
    vals = sorted(v for v in values if isinstance(v, int | float) and math.isfinite(v))
    if not vals:
        return math.nan
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def median_summary(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-key median over repeats of latency summaries / result dicts."""
    out: dict[str, Any] = {}
    if not summaries:
        return out
    keys = [k for k, v in summaries[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
    for k in keys:
        out[k] = median([s[k] for s in summaries if k in s])
    out["repeats"] = len(summaries)
    return out
