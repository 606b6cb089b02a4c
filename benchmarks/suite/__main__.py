"""``python -m benchmarks.suite``: run the suite (see ``--help``)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .common import SYSTEMS, WORKLOADS, Config, Progress
from .report import Report, plot, write_json
from .systems import System
from .workloads import NotApplicable, not_supported

EPILOG = """\
workloads: commit (sync create/set latency, leader and follower caller),
curve (async creates at 1/8/64/256 outstanding), overload (10x256
outstanding, bounded in time), reads (get/exists/get_children on a
follower), watch (set on the leader -> callback on a follower), failover
(SIGKILL the leader -> next acknowledged write), scale (RSS per znode,
snapshot, restart, new-member catch-up; sizes from --scale).

examples:
  python -m benchmarks.suite --quick                      # smoke size, ~1-2 min
  python -m benchmarks.suite --out benchmarks/results     # full run, ~15 min
  python -m benchmarks.suite --scale 100000,1000000 --out /tmp/r   # + 1M znodes
  python -m benchmarks.suite --only coord,zookeeper --workloads commit,reads
"""


def _system_classes() -> dict[str, type[System]]:
    from .systems.coord import CoordSystem
    from .systems.etcd import EtcdSystem
    from .systems.floor import FloorSystem
    from .systems.zookeeper import ZooKeeperSystem

    return {"coord": CoordSystem, "floor": FloorSystem, "zookeeper": ZooKeeperSystem, "etcd": EtcdSystem}


def _workload_runners() -> dict[str, Any]:
    from .workloads import commit, curve, failover, overload, reads, scale, watch

    return {"commit": commit.run, "curve": curve.run, "overload": overload.run, "reads": reads.run,
            "watch": watch.run, "failover": failover.run, "scale": scale.run}


def _csv(value: str, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    items = tuple(x.strip() for x in value.split(",") if x.strip())
    bad = [x for x in items if x not in allowed]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return items


def _size(text: str) -> int:
    t = text.strip().lower().replace("_", "")
    mult = 1
    if t.endswith("k"):
        t, mult = t[:-1], 1000
    elif t.endswith("m"):
        t, mult = t[:-1], 1_000_000
    n = int(float(t) * mult)
    if not 1 <= n <= 1_000_000:
        raise argparse.ArgumentTypeError(f"scale sizes must be in 1..1000000, got {text!r}")
    return n


def parse_args(argv: Sequence[str] | None) -> Config:
    p = argparse.ArgumentParser(prog="python -m benchmarks.suite",
                                description="coord vs the pysyncobj floor, ZooKeeper 3.8 and etcd 3.4, side by side.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke size: a few hundred ops per figure (the test suite's)")
    p.add_argument("--only", default=",".join(SYSTEMS), help=f"systems to run (default all: {','.join(SYSTEMS)})")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help=f"workloads (default all: {','.join(WORKLOADS)})")
    p.add_argument("--out", default=None, help="directory for results.json and the PNG plots")
    p.add_argument("--scale", default=None,
                   help="znode counts for the scale workload, e.g. 100k,1m (default 100k; 1k with --quick); "
                        "1m takes several minutes per system")
    p.add_argument("--repeats", type=int, default=None, help="repeats of the latency/read figures (default 3)")
    p.add_argument("--no-secret", action="store_true", help="run coord and the floor without the secret")
    p.add_argument("--keep-logs", action="store_true", help="keep the members' logs (path printed)")
    a = p.parse_args(argv)
    cfg = Config.quick_config() if a.quick else Config()
    try:
        cfg.systems = _csv(a.only, SYSTEMS, "system")
        cfg.workloads = _csv(a.workloads, WORKLOADS, "workload")
        if a.scale:
            cfg.scale = tuple(sorted({_size(x) for x in a.scale.split(",") if x.strip()}))
    except (argparse.ArgumentTypeError, ValueError) as exc:
        p.error(str(exc))
    if a.repeats is not None:
        if not 1 <= a.repeats <= 20:
            p.error("--repeats must be in 1..20")
        cfg.repeats = a.repeats
    cfg.out = a.out
    cfg.secret = not a.no_secret
    cfg.keep_logs = a.keep_logs
    return cfg


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith(("Model name", "Hypervisor vendor")):
                k, v = line.split(":", 1)
                info[k.strip()] = v.strip()
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                info["mem_gib"] = round(int(line.split()[1]) / (1 << 20), 1)
    return info


def _cpu_times() -> list[int] | None:
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return [int(x) for x in fields[1:9]]
    except (OSError, ValueError):
        return None


def run(cfg: Config) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    classes = _system_classes()
    runners = _workload_runners()
    notes: dict[str, str] = {}
    chosen: list[str] = []
    for name in cfg.systems:
        why = classes[name].unavailable()
        if why is not None:
            print(f"{name}: not run: {why}", file=sys.stderr, flush=True)
            notes[name] = f"NOT RUN: {why}"
        else:
            chosen.append(name)
            notes[name] = classes[name].includes
    progress = Progress(len(chosen) * (len(cfg.workloads) + 1))
    results: dict[str, dict[str, Any]] = {}
    secret = secrets.token_urlsafe(32) if cfg.secret else None
    work = Path(tempfile.mkdtemp(prefix="coord-bench-suite-"))
    log_dir = work / "logs"
    try:
        for name in chosen:
            progress.step(f"{name}: starting 3 members")
            res: dict[str, Any] = {}
            results[name] = res
            t0 = time.monotonic()
            try:
                system = classes[name](work, secret, log_dir)
                with system:
                    res["start_seconds"] = time.monotonic() - t0
                    for wl in cfg.workloads:
                        progress.step(f"{name}: {wl}")
                        try:
                            res[wl] = runners[wl](system, cfg, progress)
                        except NotApplicable as exc:
                            res[wl] = {"n/a": str(exc)}
                        except KeyboardInterrupt:
                            raise
                        except Exception as exc:  # reported; the rest runs
                            if not_supported(exc):
                                res[wl] = {"n/a": "does not map to this system"}
                            else:
                                logging.getLogger("benchmarks.suite").debug("failed", exc_info=True)
                                res[wl] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                                progress.note(f"{name}: {wl} FAILED: {res[wl]['error']}")
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # the cluster did not start
                res["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                progress.note(f"{name}: FAILED: {res['error']}")
    finally:
        if cfg.keep_logs:
            print(f"logs kept in {log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return results, notes


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.monotonic()
    cpu0 = _cpu_times()
    try:
        results, notes = run(cfg)
    except KeyboardInterrupt:
        print("interrupted: every cluster was stopped", file=sys.stderr)
        return 130
    cpu1 = _cpu_times()
    steal = None
    if cpu0 and cpu1:
        total = sum(cpu1) - sum(cpu0)
        steal = 100.0 * (cpu1[7] - cpu0[7]) / total if total > 0 else None
    report = Report(results, cfg, notes)
    print(report.render())
    elapsed = time.monotonic() - t0
    print(f"total {elapsed:.0f} s on {os.cpu_count()} CPUs"
          + (f", host CPU steal {steal:.1f}%" if steal is not None else ""))
    if cfg.out:
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        payload = {"config": {k: v for k, v in vars(cfg).items()}, "machine": machine(),
                   "seconds": elapsed, "steal_percent": steal, "notes": notes, "results": results,
                   "targets": report.targets()}
        write_json(out / "results.json", payload)
        print(f"wrote {out / 'results.json'}", file=sys.stderr)
        try:
            files = plot(results, cfg, out)
            print("plots: " + ", ".join(str(f) for f in files), file=sys.stderr)
        except ImportError:
            print("plots skipped: matplotlib is not installed (pip install -e '.[bench]')", file=sys.stderr)
    failed = [f"{s}/{w}" for s, r in results.items() for w, v in r.items()
              if w == "error" or (isinstance(v, dict) and "error" in v)]
    if failed:
        print("errors in: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

