#!/usr/bin/env python3
"""Commit latency and write throughput: coord vs bare pysyncobj, same run.

Two 3-process clusters on 127.0.0.1, measured alternately in one run:

* **coord**: three ``coord.local_cluster`` member processes (a Coordinator
  each); the timed loop runs *inside* one member (leader, then a follower),
  so the figures are the in-process ``create``/``set`` call, not the RPC.
* **floor**: three ``_pysyncobj_floor.py`` processes, each embedding a bare
  ``SyncObj`` with one ``@replicated`` counter-bump method and the settings
  coord uses (``appendEntriesUseBatch=False``, explicit ``bindAddress``,
  ``useFork=False``, same secret on/off); the same loops, same command size.

Sequential latency: ``--n`` synchronous writes after ``--warmup`` untimed ones
(p50/p90/p99/max, nearest rank).  Throughput: ``--tput-n`` async writes
(``create_async``/``set_async``; pysyncobj callbacks) with at most
``--in-flight`` outstanding.  The ratio column is coord / floor: what the
znode layer, sessions and the client API cost on top of raw Raft.

Reference figures for this machine and how they were measured:
``/work/shared/reference/performance-anchors.md`` (sections 1-3).  The host
is noisy (CPU steal): use ``--repeats 3`` or more before quoting numbers.

Examples::

    python benchmarks/commit_latency.py --quick            # smoke run, ~20 s
    python benchmarks/commit_latency.py --only floor       # pysyncobj alone
    python benchmarks/commit_latency.py --repeats 3 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

if __package__ in (None, ""):  # run as a script from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coord.local_cluster import (
    LOOPBACK,
    LocalCluster,
    RpcProcess,
    child_env,
    free_ports,
    percentile,
    start_all,
    wait_until,
)

logger = logging.getLogger("coord.benchmarks.commit_latency")

FLOOR_SCRIPT = Path(__file__).resolve().parent / "_pysyncobj_floor.py"
SYSTEMS = ("coord", "floor")
LATENCY_ROWS = (("create", "leader"), ("create", "follower"), ("set", "leader"), ("set", "follower"))


@dataclass
class Config:
    """What to run (from the command line)."""

    n: int = 1000
    warmup: int = 100
    tput_n: int = 10_000
    in_flight: int = 1000
    tput_kinds: tuple[str, ...] = ("create", "set")
    secret: bool = True
    repeats: int = 1
    only: str = "both"
    value_size: int = 64
    durable: bool = False
    fsync: bool = False
    floor_conf: dict[str, Any] = field(default_factory=dict)
    start_timeout: float = 30.0
    keep_logs: bool = False
    json_path: str | None = None


def progress(msg: str) -> None:
    """Progress goes to stderr so stdout holds only the result table."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def summarize_latency(us: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean in milliseconds of a list of µs latencies."""
    s = sorted(us)
    if not s:
        return {"n": 0}
    return {
        "n": len(s),
        "p50": percentile(s, 50) / 1000.0,
        "p90": percentile(s, 90) / 1000.0,
        "p99": percentile(s, 99) / 1000.0,
        "max": s[-1] / 1000.0,
        "mean": statistics.fmean(s) / 1000.0,
    }


# --------------------------------------------------------------------------
# the bare pysyncobj cluster
# --------------------------------------------------------------------------


class FloorCluster:
    """Three bare-pysyncobj processes (see ``_pysyncobj_floor.py``)."""

    def __init__(self, secret: str | None, log_dir: Path, conf: dict[str, Any],
                 data_root: Path | None, start_timeout: float) -> None:
        self.secret = secret
        self.log_dir = log_dir
        self.conf = conf
        self.data_root = data_root
        self.start_timeout = start_timeout
        self.members: list[RpcProcess] = []

    def __enter__(self) -> Self:
        addresses = [f"{LOOPBACK}:{p}" for p in free_ports(3)]
        for i, address in enumerate(addresses):
            conf = dict(self.conf)
            if self.data_root is not None:
                d = self.data_root / f"floor-{i}"
                d.mkdir(parents=True, exist_ok=True)
                conf.setdefault("journalFile", str(d / "journal"))
                conf.setdefault("fullDumpFile", str(d / "dump"))
            argv = [sys.executable, str(FLOOR_SCRIPT), "--address", address,
                    "--peers", ",".join(a for a in addresses if a != address),
                    "--start-timeout", str(self.start_timeout), "--conf-json", json.dumps(conf)]
            self.members.append(RpcProcess(argv, name=f"floor-{i}", env=child_env(self.secret),
                                           log_path=self.log_dir / f"floor-{i}.log"))
        start_all(self.members, self.start_timeout + 5.0, on_failure=self.__exit__)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for m in self.members:
            m.close_stdin()
        for m in self.members:
            with contextlib.suppress(Exception):
                m.stop(timeout=5.0)

    def leader(self, timeout: float = 15.0) -> RpcProcess:
        def find() -> RpcProcess | None:
            for m in self.members:
                if m.call("status", timeout=2.0).get("role") == "leader":
                    return m
            return None

        return wait_until(find, timeout, what="a pysyncobj leader")

    def check_replicas(self, timeout: float = 15.0) -> dict[str, Any]:
        """Wait until all replicas hold the same (count, digest)."""
        def same() -> dict[str, Any] | None:
            states = [m.call("state", timeout=2.0) for m in self.members]
            return states[0] if all(s == states[0] for s in states) else None

        return wait_until(same, timeout, what="identical pysyncobj replicas")


# --------------------------------------------------------------------------
# one measurement pass (same for both systems)
# --------------------------------------------------------------------------


def measure(name: str, leader: RpcProcess, follower: RpcProcess, cfg: Config, tag: str) -> dict[str, Any]:
    """Latency rows and throughput rows for one cluster; callers in-process."""
    out: dict[str, Any] = {"latency": {}, "throughput": {}}
    callers = {"leader": leader, "follower": follower}
    for kind, where in LATENCY_ROWS:
        proc = callers[where]
        progress(f"{name}: {cfg.n} sequential {kind}s on the {where} ({proc.name})")
        lat = proc.call("time_writes", kind, cfg.n, f"/bench/{tag}/{kind}-{where}",
                        value_size=cfg.value_size, warmup=cfg.warmup, timeout=600.0)
        out["latency"][f"{kind}/{where}"] = summarize_latency(lat)
    for kind in cfg.tput_kinds:
        for where in ("leader", "follower"):
            proc = callers[where]
            progress(f"{name}: {cfg.tput_n} async {kind}s on the {where}, {cfg.in_flight} in flight")
            res = proc.call("throughput", kind, cfg.tput_n, cfg.in_flight,
                            f"/bench/{tag}/tput-{kind}-{where}", value_size=cfg.value_size,
                            deadline=300.0, timeout=340.0)
            out["throughput"][f"{kind}/{where}"] = res
            if res["errors"] or res["incomplete"]:
                progress(f"{name}: WARNING {res['errors']} errors {res['error_types']}, "
                         f"{res['incomplete']} incomplete")
    return out


def run_floor(cfg: Config, secret: str | None, work: Path, tag: str) -> dict[str, Any]:
    progress("floor: starting 3 bare pysyncobj processes")
    data_root = work / f"data-{tag}" if cfg.durable else None
    with FloorCluster(secret, work / "logs", cfg.floor_conf, data_root, cfg.start_timeout) as fc:
        lead = fc.leader()
        follower = next(m for m in fc.members if m is not lead)
        res = measure("floor", lead, follower, cfg, tag)
        res["replicas"] = fc.check_replicas()
        progress(f"floor: replicas identical: {res['replicas']}")
    return res


def run_coord(cfg: Config, secret: str | None, work: Path, tag: str) -> dict[str, Any]:
    progress("coord: starting 3 member processes")
    data_root = work / f"data-{tag}" if cfg.durable else None
    options = {"durability": "fsync"} if cfg.fsync else {}
    with LocalCluster(3, data_root=data_root, secret=secret, log_dir=work / "logs" / tag,
                      start_timeout=cfg.start_timeout, log_level="WARNING", options=options) as cluster:
        lead = cluster.leader()
        follower = next(m for m in cluster.live_members() if m is not lead)
        res = measure("coord", lead, follower, cfg, tag)

        def zxids_equal() -> int | None:
            for m in cluster.members:
                m.sync(timeout=10.0)
            zx = {m.status().get("zxid") for m in cluster.members}
            return zx.pop() if len(zx) == 1 else None

        res["replicas"] = {"zxid": wait_until(zxids_equal, 15.0, what="equal zxids")}
        progress(f"coord: replicas at the same zxid: {res['replicas']}")
    return res


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return statistics.median(vals) if vals else float("nan")


def combine(runs: list[dict[str, Any]], section: str, key: str, metric: str) -> float:
    """Median over repeats of one metric (NaN if missing)."""
    vals = [r[section][key][metric] for r in runs if key in r.get(section, {}) and metric in r[section][key]]
    return _median(vals)


def _fmt(v: float, width: int = 7, digits: int = 2) -> str:
    return f"{'-':>{width}}" if math.isnan(v) else f"{v:>{width}.{digits}f}"


def print_table(results: dict[str, list[dict[str, Any]]], cfg: Config) -> None:
    """Side-by-side latency and throughput tables with coord/floor ratios."""
    secret = "on (coord: AES-GCM transport; floor: pysyncobj Fernet)" if cfg.secret else "off"
    storage = "memory only"
    if cfg.durable:
        storage = "data_dir, coord journal fsynced before every ack" if cfg.fsync else "data_dir / journal"
    print()
    print(f"coord vs bare pysyncobj: 3 processes on {LOOPBACK}, secret {secret}, {storage}, "
          f"{cfg.repeats} repeat(s) (median shown)")
    print(f"sequential synchronous writes: n={cfg.n} after {cfg.warmup} warm-up, "
          f"{cfg.value_size} B values, timed inside the calling process; milliseconds")
    print()
    head = ("op", "caller", "coord p50", "p90", "p99", "max", "floor p50", "p90", "p99", "max",
            "ratio p50", "p99")
    print(f"{head[0]:<7}{head[1]:<9} | {head[2]:>9}{head[3]:>7}{head[4]:>7}{head[5]:>7} | "
          f"{head[6]:>9}{head[7]:>7}{head[8]:>7}{head[9]:>7} | {head[10]:>9}{head[11]:>6}")
    print("-" * 100)
    coord_runs, floor_runs = results.get("coord", []), results.get("floor", [])
    for kind, where in LATENCY_ROWS:
        key = f"{kind}/{where}"
        c = {m: combine(coord_runs, "latency", key, m) for m in ("p50", "p90", "p99", "max")}
        fl = {m: combine(floor_runs, "latency", key, m) for m in ("p50", "p90", "p99", "max")}
        r50 = c["p50"] / fl["p50"] if not math.isnan(fl["p50"]) and fl["p50"] else float("nan")
        r99 = c["p99"] / fl["p99"] if not math.isnan(fl["p99"]) and fl["p99"] else float("nan")
        print(f"{kind:<7}{where:<9} | {_fmt(c['p50'], 9, 3)}{_fmt(c['p90'], 7)}{_fmt(c['p99'], 7)}"
              f"{_fmt(c['max'], 7)} | {_fmt(fl['p50'], 9, 3)}{_fmt(fl['p90'], 7)}{_fmt(fl['p99'], 7)}"
              f"{_fmt(fl['max'], 7)} | {_fmt(r50, 9, 1)}{_fmt(r99, 6, 1)}")
    print()
    print(f"async writes: {cfg.tput_n} per run, at most {cfg.in_flight} in flight; ops/s")
    print()
    print(f"{'op':<7}{'caller':<9} | {'coord':>9} | {'floor':>9} | {'coord/floor':>11} | notes")
    print("-" * 70)
    for kind in cfg.tput_kinds:
        for where in ("leader", "follower"):
            key = f"{kind}/{where}"
            ct = combine(coord_runs, "throughput", key, "ops_per_sec")
            ft = combine(floor_runs, "throughput", key, "ops_per_sec")
            ratio = ct / ft if not math.isnan(ft) and ft else float("nan")
            notes = []
            for name, runs in (("coord", coord_runs), ("floor", floor_runs)):
                errs = sum(r["throughput"][key]["errors"] for r in runs if key in r["throughput"])
                inc = sum(r["throughput"][key]["incomplete"] for r in runs if key in r["throughput"])
                if errs or inc:
                    notes.append(f"{name}: {errs} errors, {inc} incomplete")
            print(f"{kind:<7}{where:<9} | {_fmt(ct, 9, 0)} | {_fmt(ft, 9, 0)} | {_fmt(ratio, 11, 2)} | "
                  f"{'; '.join(notes)}")
    print()
    if cfg.repeats > 1:
        print_spread(results)


def print_spread(results: dict[str, list[dict[str, Any]]]) -> None:
    """Per-repeat values behind the medians (the host is noisy: read these
    before trusting a ratio)."""
    print("per repeat: latency p50 / p99 in ms, throughput in ops/s")
    for system, runs in results.items():
        for key in [f"{k}/{w}" for k, w in LATENCY_ROWS]:
            vals = [r["latency"][key] for r in runs if key in r["latency"]]
            cells = ", ".join(f"{v['p50']:.2f}/{v['p99']:.2f}" for v in vals)
            print(f"  {system:<6}{key:<22} {cells}")
        keys = sorted({k for r in runs for k in r["throughput"]})
        for key in keys:
            cells = ", ".join(f"{r['throughput'][key]['ops_per_sec']:.0f}" for r in runs if key in r["throughput"])
            print(f"  {system:<6}{key + ' ops/s':<22} {cells}")
    print()


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--n", type=int, default=None, help="sequential writes per row (default 1000)")
    p.add_argument("--warmup", type=int, default=None, help="untimed writes first (default 100)")
    p.add_argument("--tput-n", type=int, default=None, help="async writes per throughput row (10000)")
    p.add_argument("--in-flight", type=int, default=None, help="async window (default 1000)")
    p.add_argument("--tput-kinds", default="create,set", help="throughput rows: create,set")
    sec = p.add_mutually_exclusive_group()
    sec.add_argument("--secret", dest="secret", action="store_true", default=True,
                     help="encrypt peer traffic in both systems (default)")
    sec.add_argument("--no-secret", dest="secret", action="store_false",
                     help="plaintext peer traffic in both systems")
    p.add_argument("--repeats", type=int, default=1, help="fresh clusters per system (median shown)")
    p.add_argument("--only", choices=("both", "coord", "floor"), default="both")
    p.add_argument("--value-size", type=int, default=64)
    p.add_argument("--durable", action="store_true",
                   help="coord with a data_dir, pysyncobj with journalFile+fullDumpFile")
    p.add_argument("--fsync", action="store_true",
                   help="coord with durability='fsync' (implies --durable); the floor cannot fsync")
    p.add_argument("--floor-conf", default="{}", help="extra SyncObjConf settings for the floor (JSON)")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny n, one repeat")
    p.add_argument("--json", dest="json_path", default=None, help="also write raw results here")
    p.add_argument("--keep-logs", action="store_true", help="keep the child logs (path printed)")
    args = p.parse_args(argv)
    quick = args.quick
    cfg = Config(
        n=args.n if args.n is not None else (50 if quick else 1000),
        warmup=args.warmup if args.warmup is not None else (10 if quick else 100),
        tput_n=args.tput_n if args.tput_n is not None else (500 if quick else 10_000),
        in_flight=args.in_flight if args.in_flight is not None else (50 if quick else 1000),
        tput_kinds=tuple(k for k in args.tput_kinds.split(",") if k),
        secret=args.secret,
        repeats=1 if quick else max(1, min(args.repeats, 20)),
        only=args.only,
        value_size=args.value_size,
        durable=args.durable or args.fsync,
        fsync=args.fsync,
        floor_conf=json.loads(args.floor_conf),
        keep_logs=args.keep_logs,
        json_path=args.json_path,
    )
    for kind in cfg.tput_kinds:
        if kind not in ("create", "set"):
            p.error(f"--tput-kinds: unknown kind {kind!r}")
    if cfg.n < 1 or cfg.tput_n < 0 or cfg.in_flight < 1:
        p.error("--n and --in-flight must be >= 1, --tput-n >= 0")
    return cfg


def _cpu_times() -> list[int] | None:
    """Aggregate CPU jiffies from /proc/stat (Linux), or None."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    return [int(x) for x in fields[1:]] if fields and fields[0] == "cpu" else None


def _steal_percent(before: list[int] | None, after: list[int] | None) -> float | None:
    """Share of CPU time stolen by the hypervisor between two samples: on a
    noisy VM this explains outliers better than anything in the code."""
    if not before or not after or len(before) < 8 or len(after) < 8:
        return None
    total = sum(after[:8]) - sum(before[:8])
    return 100.0 * (after[7] - before[7]) / total if total > 0 else None


def _coord_available() -> str | None:
    """None if coord.Coordinator can be imported, else the reason."""
    try:
        import coord

        coord.Coordinator  # noqa: B018 - the check itself
    except Exception as exc:  # noqa: BLE001 - reported to the user
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="coord-bench-"))
    try:
        yield path
    finally:
        if keep:
            progress(f"logs kept in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    systems = SYSTEMS if cfg.only == "both" else (cfg.only,)
    if "coord" in systems:
        why = _coord_available()
        if why is not None:
            print(f"coord.Coordinator is not importable ({why}); use --only floor", file=sys.stderr)
            return 2
    secret = secrets.token_urlsafe(32) if cfg.secret else None
    runners: dict[str, Callable[[Config, str | None, Path, str], dict[str, Any]]] = {
        "coord": run_coord, "floor": run_floor,
    }
    results: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    errors: list[str] = []
    t0 = time.monotonic()
    cpu0 = _cpu_times()
    with _workdir(cfg.keep_logs) as work:
        try:
            for rep in range(cfg.repeats):
                # Alternate the order each repeat so slow drifts of the host
                # (CPU steal) do not always penalise the same system.
                order = systems if rep % 2 == 0 else tuple(reversed(systems))
                for system in order:
                    tag = f"{system}{rep}"
                    try:
                        results[system].append(runners[system](cfg, secret, work, tag))
                    except Exception as exc:  # reported, run continues
                        logger.debug("run failed", exc_info=True)
                        errors.append(f"{system} repeat {rep}: {type(exc).__name__}: {exc}")
                        progress(f"{system}: FAILED: {type(exc).__name__}: {exc}")
        except KeyboardInterrupt:
            progress("interrupted: stopping (clusters already torn down)")
            return 130
    print_table(results, cfg)
    steal = _steal_percent(cpu0, _cpu_times())
    steal_text = f", host CPU steal {steal:.1f}%" if steal is not None else ""
    print(f"total {time.monotonic() - t0:.1f}s on {os.cpu_count()} CPUs{steal_text}")
    if cfg.json_path:
        with open(cfg.json_path, "w") as f:
            json.dump({"config": vars(cfg), "results": results,
                       "errors": errors}, f, indent=1, default=str)
    if errors:
        print("errors:", *errors, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
