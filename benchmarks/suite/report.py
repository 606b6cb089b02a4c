"""Tables (stdout), the targets scoreboard, JSON and PNG plots.

Every figure of a system is printed next to coord's with the ratio
``coord / this`` (latencies: < 1 means coord is faster; rates: > 1 means
coord does more)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .common import Config

GIB = 1 << 30
TARGET_WRITES_PER_SEC = 20_000
ZK_JAVA_256 = 9_400  # performance-anchors.md: ZkLoad.java, 256 in flight


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def _f(v: Any, width: int = 9, digits: int = 3) -> str:
    x = _num(v)
    return f"{'-':>{width}}" if math.isnan(x) else f"{x:>{width}.{digits}f}"


def _ratio(a: Any, b: Any) -> float:
    x, y = _num(a), _num(b)
    return x / y if y and not math.isnan(x) and not math.isnan(y) else math.nan


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


class Report:
    def __init__(self, results: dict[str, dict[str, Any]], cfg: Config, notes: dict[str, str]) -> None:
        self.r = results
        self.cfg = cfg
        self.notes = notes  # system -> why skipped / what a figure includes
        self.systems = [s for s in cfg.systems if s in results]
        self.lines: list[str] = []

    def p(self, text: str = "") -> None:
        self.lines.append(text)

    def w(self, system: str, workload: str) -> Any:
        v = self.r.get(system, {}).get(workload)
        return v if isinstance(v, dict) and "error" not in v and "n/a" not in v else None

    def status_of(self, system: str, workload: str) -> str:
        v = self.r.get(system, {}).get(workload)
        if v is None:
            return "not run"
        if isinstance(v, dict) and "n/a" in v:
            return "n/a"
        if isinstance(v, dict) and "error" in v:
            return "error"
        return ""

    # -- tables ------------------------------------------------------------

    def render(self) -> str:
        cfg = self.cfg
        self.p(f"coord benchmark suite: 3 members per system on 127.0.0.1; coord secret "
               f"{'on' if cfg.secret else 'off'}, data_dir + default durability (process-crash); "
               f"{cfg.repeats} repeat(s), medians shown")
        self.p("ratio = coord / this system (latency < 1: coord faster; throughput > 1: coord more)")
        for s, why in self.notes.items():
            self.p(f"  {s}: {why}")
        self.p()
        self.commit()
        self.curve()
        self.overload()
        self.reads()
        self.watch()
        self.failover()
        self.scale()
        self.targets_table()
        return "\n".join(self.lines)

    def _skipped(self, workload: str) -> None:
        for s in self.systems:
            st = self.status_of(s, workload)
            if st:
                detail = self.r.get(s, {}).get(workload)
                extra = f": {detail.get('error') or detail.get('n/a')}" if isinstance(detail, dict) else ""
                self.p(f"  ({s}: {st}{extra})")

    def commit(self) -> None:
        if not any(self.w(s, "commit") for s in self.systems):
            return
        self.p(f"COMMIT LATENCY, ms: {self.cfg.n} sequential synchronous writes after {self.cfg.warmup} warm-up, "
               f"{self.cfg.value_size} B values")
        self.p(f"{'op/caller':<17}{'system':<11}{'p50':>9}{'p90':>9}{'p99':>9}{'p99.9':>9}{'max':>9}"
               f"{'ratio p50':>11}{'p99':>7}")
        for row in ("create/leader", "create/follower", "set/leader", "set/follower"):
            c = _get(self.w("coord", "commit"), row)
            label = row
            for s in self.systems:
                v = _get(self.w(s, "commit"), row)
                if v is None:
                    continue
                rp50 = "" if s == "coord" else _f(_ratio(_get(c, "p50"), v.get("p50")), 11, 2)
                rp99 = "" if s == "coord" else _f(_ratio(_get(c, "p99"), v.get("p99")), 7, 2)
                self.p(f"{label:<17}{s:<11}{_f(v.get('p50'))}{_f(v.get('p90'))}{_f(v.get('p99'))}"
                       f"{_f(v.get('p999'))}{_f(v.get('max'))}{rp50}{rp99}")
                label = ""
        self._skipped("commit")
        self.p()

    def curve(self) -> None:
        if not any(self.w(s, "curve") for s in self.systems):
            return
        self.p(f"ASYNC CREATE THROUGHPUT and latency per write, caller on the leader "
               f"(<= {self.cfg.curve_n} writes or {self.cfg.curve_seconds:.0f} s per point)")
        self.p(f"{'outstanding':<13}{'system':<11}{'ops/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
               f"{'ratio ops/s':>13}")
        for k in self.cfg.curve_points:
            c = _get(self.w("coord", "curve"), str(k))
            label = str(k)
            for s in self.systems:
                v = _get(self.w(s, "curve"), str(k))
                if v is None:
                    continue
                ratio = "" if s == "coord" else _f(_ratio(_get(c, "ops_per_sec"), v["ops_per_sec"]), 13, 2)
                self.p(f"{label:<13}{s:<11}{_f(v['ops_per_sec'], 9, 0)}{_f(_get(v, 'latency', 'p50'))}"
                       f"{_f(_get(v, 'latency', 'p99'))}{v['errors'] + v['incomplete']:>8}{ratio}")
                label = ""
        self._skipped("curve")
        self.p()

    def peak(self, s: str) -> float:
        cv = self.w(s, "curve") or {}
        vals = [_num(v.get("ops_per_sec")) for v in cv.values() if isinstance(v, dict)]
        vals = [v for v in vals if not math.isnan(v)]
        return max(vals) if vals else math.nan

    def overload(self) -> None:
        if not any(self.w(s, "overload") for s in self.systems):
            return
        self.p(f"OVERLOAD: {self.cfg.overload_factor} x {max(self.cfg.curve_points)} outstanding creates for "
               f"{self.cfg.overload_seconds:.0f} s (peak = best point of the curve; "
               "incompl. = submitted, no outcome by the deadline)")
        self.p(f"{'system':<11}{'window':>8}{'ops/s':>9}{'peak':>9}{'/peak':>7}{'errors':>8}{'incompl.':>9}"
               f"{'p50 ms':>9}{'p99 ms':>9}{'drain s':>9}  error types")
        for s in self.systems:
            v = self.w(s, "overload")
            if v is None:
                continue
            pk = self.peak(s)
            self.p(f"{s:<11}{v['window']:>8}{_f(v['ops_per_sec'], 9, 0)}{_f(pk, 9, 0)}"
                   f"{_f(_ratio(v['ops_per_sec'], pk), 7, 2)}{v['errors']:>8}{v['incomplete']:>9}"
                   f"{_f(_get(v, 'latency', 'p50'))}{_f(_get(v, 'latency', 'p99'))}{_f(v.get('drain_seconds'), 9, 2)}"
                   f"  {v.get('error_types') or ''}")
        self._skipped("overload")
        self.p()

    def reads(self) -> None:
        if not any(self.w(s, "reads") for s in self.systems):
            return
        self.p("LOCAL READS on a follower: latency in microseconds, sequential reads/s from one process")
        self.p(f"{'op':<14}{'system':<11}{'p50 us':>9}{'p99 us':>9}{'max us':>10}{'reads/s':>10}"
               f"{'ratio p50':>11}{'reads/s':>9}")
        for op in ("get", "exists", "get_children"):
            c = _get(self.w("coord", "reads"), op)
            label = op
            for s in self.systems:
                v = _get(self.w(s, "reads"), op)
                if v is None:
                    continue
                r1 = "" if s == "coord" else _f(_ratio(_get(c, "p50"), v["p50"]), 11, 3)
                r2 = "" if s == "coord" else _f(_ratio(_get(c, "reads_per_sec"), v["reads_per_sec"]), 9, 1)
                self.p(f"{label:<14}{s:<11}{_f(v['p50'] * 1000, 9, 1)}{_f(v['p99'] * 1000, 9, 1)}"
                       f"{_f(v['max'] * 1000, 10, 0)}{_f(v['reads_per_sec'], 10, 0)}{r1}{r2}")
                label = ""
        self._skipped("reads")
        self.p()

    def watch(self) -> None:
        if not any(self.w(s, "watch") for s in self.systems):
            return
        self.p(f"WATCH NOTIFICATION: set on the leader -> data-watch callback on a follower, ms "
               f"({self.cfg.watch_n} sets, {self.cfg.watch_gap * 1000:.0f} ms apart)")
        self.p(f"{'system':<11}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}{'ack->cb p50':>13}{'missed':>8}"
               f"{'ratio p50':>11}")
        c = _get(self.w("coord", "watch"), "from_issue")
        for s in self.systems:
            v = self.w(s, "watch")
            if v is None:
                continue
            fi = v["from_issue"]
            r = "" if s == "coord" else _f(_ratio(_get(c, "p50"), fi.get("p50")), 11, 2)
            self.p(f"{s:<11}{_f(fi.get('p50'))}{_f(fi.get('p90'))}{_f(fi.get('p99'))}{_f(fi.get('max'))}"
                   f"{_f(_get(v, 'from_ack', 'p50'), 13)}{v['missed']:>8}{r}")
        self._skipped("watch")
        self.p()

    def failover(self) -> None:
        if not any(self.w(s, "failover") for s in self.systems):
            return
        self.p("FAILOVER: SIGKILL of the leader -> first acknowledged write issued after it, on a follower, s")
        self.p(f"{'system':<11}{'median':>9}{'max':>9}{'ratio':>8}  trials")
        c = self.w("coord", "failover")
        for s in self.systems:
            v = self.w(s, "failover")
            if v is None:
                continue
            r = "" if s == "coord" else _f(_ratio(_get(c, "median"), v["median"]), 8, 2)
            r = r or " " * 8
            self.p(f"{s:<11}{_f(v['median'])}{_f(v['max'])}{r}  {', '.join(f'{x:.2f}' for x in v['seconds'])}")
        self._skipped("failover")
        self.p()

    def scale(self) -> None:
        if not any(self.w(s, "scale") for s in self.systems):
            return
        self.p("SCALE: mean RSS of the 3 members, RSS per znode, and at the largest size: snapshot, "
               "restart of a follower, catch-up of a new member")
        self.p(f"{'znodes':<10}{'system':<11}{'RSS MiB':>9}{'B/znode':>9}{'load s':>8}{'ratio B/zn':>12}")
        for n in sorted(self.cfg.scale):
            c = _get(self.w("coord", "scale"), "sizes", str(n))
            label = f"{n:,}"
            for s in self.systems:
                v = _get(self.w(s, "scale"), "sizes", str(n))
                if v is None:
                    continue
                r = "" if s == "coord" else _f(_ratio(_get(c, "rss_per_znode"), v["rss_per_znode"]), 12, 2)
                self.p(f"{label:<10}{s:<11}{_f(v['rss'] / (1 << 20), 9, 0)}{_f(v['rss_per_znode'], 9, 0)}"
                       f"{_f(v['load_seconds'], 8, 1)}{r}")
                label = ""
        self.p(f"{'system':<11}{'znodes':>10}{'snapshot s':>12}{'snap MiB':>10}{'restart s':>11}"
               f"{'catch-up s':>12}  how")
        for s in self.systems:
            v = self.w(s, "scale")
            if v is None:
                continue
            snap = v.get("snapshot") or {}
            cu = v.get("catch_up") or {}
            self.p(f"{s:<11}{v['znodes']:>10,}{_f(snap.get('seconds'), 12, 2)}"
                   f"{_f(_num(snap.get('bytes')) / (1 << 20), 10, 1)}{_f(v['restart_seconds'], 11, 2)}"
                   f"{_f(cu.get('seconds'), 12, 2)}  {cu.get('how', 'n/a')}")
        self._skipped("scale")
        self.p()

    # -- targets -------------------------------------------------------------

    def targets(self) -> list[dict[str, Any]]:
        """The optimisation targets, each with the measured value and met/not met."""
        out: list[dict[str, Any]] = []

        def add(name: str, measured: str, ok: bool | None) -> None:
            out.append({"target": name, "measured": measured,
                        "verdict": "not measured" if ok is None else ("met" if ok else "not met")})

        cc, zc, fc = self.w("coord", "commit"), self.w("zookeeper", "commit"), self.w("floor", "commit")
        rows = ("create/leader", "create/follower", "set/leader", "set/follower")
        if cc and zc:
            pairs = [(r, _get(cc, r, "p50"), _get(zc, r, "p50")) for r in rows]
            add("write p50 <= ZooKeeper's (kazoo)",
                "; ".join(f"{r} {_num(a):.3f} vs {_num(b):.3f} ms" for r, a, b in pairs),
                all(_num(a) <= _num(b) for _, a, b in pairs))
        else:
            add("write p50 <= ZooKeeper's (kazoo)", "ZooKeeper not measured", None)
        if cc:
            p99s = [(r, _num(_get(cc, r, "p99"))) for r in rows]
            add("write p99 <= 2 ms", "; ".join(f"{r} {v:.2f} ms" for r, v in p99s), all(v <= 2.0 for _, v in p99s))
        if cc and fc:
            ratios = [(r, _ratio(_get(cc, r, "p50"), _get(fc, r, "p50"))) for r in rows]
            top = str(max(self.cfg.curve_points))
            tput = _ratio(_get(self.w("floor", "curve"), top, "ops_per_sec"),
                          _get(self.w("coord", "curve"), top, "ops_per_sec"))
            text = "; ".join(f"{r} p50 x{v:.2f}" for r, v in ratios)
            if not math.isnan(tput):
                text += f"; throughput@{top} floor/coord x{tput:.2f}"
            add("coord overhead <= 1.3x the pysyncobj floor", text,
                all(v <= 1.3 for _, v in ratios) and (math.isnan(tput) or tput <= 1.3))
        top = str(max(self.cfg.curve_points))
        ct = _num(_get(self.w("coord", "curve"), top, "ops_per_sec"))
        zt = _num(_get(self.w("zookeeper", "curve"), top, "ops_per_sec"))
        if not math.isnan(ct):
            ref = zt if not math.isnan(zt) else math.nan
            add(f"async writes/s @{top} >= ZooKeeper (kazoo here; Java ~9,400 @256)",
                f"coord {ct:,.0f}/s; ZooKeeper via kazoo {zt:,.0f}/s; Java anchor {ZK_JAVA_256:,}/s",
                None if math.isnan(ref) else ct >= max(ref, ZK_JAVA_256))
            add(f"aim: {TARGET_WRITES_PER_SEC:,} writes/s", f"coord {ct:,.0f}/s", ct >= TARGET_WRITES_PER_SEC)
        cr = self.w("coord", "reads")
        if cr:
            vals = [(op, _num(_get(cr, op, "p50")) * 1000) for op in ("get", "exists", "get_children")]
            add("local read p50 <= 5 us", "; ".join(f"{op} {v:.1f} us" for op, v in vals),
                all(v <= 5.0 for _, v in vals))
        co = self.w("coord", "overload")
        if co:
            pk = self.peak("coord")
            rt = _ratio(co["ops_per_sec"], pk)
            add("no collapse under 10x overload (>= 0.8 x peak, excess errors or waits)",
                f"{co['ops_per_sec']:,.0f}/s vs peak {pk:,.0f}/s (x{rt:.2f}), {co['errors']} errors, "
                f"{co['incomplete']} incomplete at the deadline", None if math.isnan(rt) else rt >= 0.8)
        cs = self.w("coord", "scale")
        if cs:
            sizes = cs.get("sizes", {})
            big = max((int(k) for k in sizes), default=0)
            v = sizes.get(str(big), {})
            per = _num(v.get("rss_per_znode"))
            proj = cs.get("rss_before", 0) + per * 1_000_000
            measured_1m = big >= 1_000_000
            add("1M znodes in <= 1 GiB RSS (per member)",
                (f"{_num(v.get('rss')) / GIB:.2f} GiB at {big:,}" if measured_1m else
                 f"projected {proj / GIB:.2f} GiB from {per:.0f} B/znode at {big:,} (run --scale 1000000)"),
                (_num(v.get("rss")) <= GIB) if measured_1m else None)
            rs = _num(cs.get("restart_seconds"))
            add("restart with 1M znodes <= 10 s",
                f"{rs:.2f} s at {cs.get('znodes', 0):,} znodes" + ("" if measured_1m else " (not 1M)"),
                (rs <= 10.0) if measured_1m else None)
        return out

    def targets_table(self) -> None:
        t = self.targets()
        if not t:
            return
        self.p("TARGETS (the optimisation scoreboard)")
        for row in t:
            self.p(f"  [{row['verdict']:^12}] {row['target']}: {row['measured']}")
        self.p()


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=1, default=str))


def plot(results: dict[str, dict[str, Any]], cfg: Config, out: Path) -> list[Path]:
    """PNG plots in ``out`` (small: 7x4 in, 80 dpi); [] without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rep = Report(results, cfg, {})
    systems = rep.systems
    files: list[Path] = []

    def save(fig: Any, name: str) -> None:
        p = out / name
        fig.tight_layout()
        fig.savefig(p, dpi=80)
        plt.close(fig)
        files.append(p)

    rows = ("create/leader", "create/follower", "set/leader", "set/follower")
    have = [s for s in systems if rep.w(s, "commit")]
    if have:
        fig, ax = plt.subplots(figsize=(7, 4))
        width = 0.8 / len(have)
        for k, s in enumerate(have):
            xs = [i + k * width for i in range(len(rows))]
            p50 = [_num(_get(rep.w(s, "commit"), r, "p50")) for r in rows]
            p99 = [_num(_get(rep.w(s, "commit"), r, "p99")) for r in rows]
            ax.bar(xs, p99, width, alpha=0.35, color=f"C{k}")
            ax.bar(xs, p50, width, label=s, color=f"C{k}")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], rows)
        ax.set_yscale("log")
        ax.set_ylabel("ms (solid p50, light p99)")
        ax.set_title("commit latency")
        ax.legend(fontsize=8)
        save(fig, "commit_latency.png")
    have = [s for s in systems if rep.w(s, "curve")]
    if have:
        fig, ax = plt.subplots(figsize=(7, 4))
        for k, s in enumerate(have):
            cv = rep.w(s, "curve")
            pts = [cv[str(w)] for w in cfg.curve_points if str(w) in cv]
            ax.plot([p["ops_per_sec"] for p in pts], [_num(_get(p, "latency", "p50")) for p in pts], "o-",
                    label=s, color=f"C{k}")
            for w, p in zip(cfg.curve_points, pts, strict=False):
                ax.annotate(str(w), (p["ops_per_sec"], _num(_get(p, "latency", "p50"))), fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("creates/s")
        ax.set_ylabel("p50 latency, ms")
        ax.set_title("latency vs throughput (labels: outstanding)")
        ax.legend(fontsize=8)
        save(fig, "latency_throughput.png")
    have = [s for s in systems if rep.w(s, "reads")]
    if have:
        fig, ax = plt.subplots(figsize=(7, 4))
        ops = ("get", "exists", "get_children")
        width = 0.8 / len(have)
        for k, s in enumerate(have):
            vals = [_num(_get(rep.w(s, "reads"), op, "p50")) * 1000 for op in ops]
            ax.bar([i + k * width for i in range(3)], vals, width, label=s, color=f"C{k}")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(3)], ops)
        ax.set_yscale("log")
        ax.set_ylabel("p50, microseconds")
        ax.set_title("local read latency")
        ax.legend(fontsize=8)
        save(fig, "reads.png")
    have = [s for s in systems if rep.w(s, "failover") or rep.w(s, "watch")]
    if have:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(7, 3.5))
        for k, s in enumerate(have):
            fo = rep.w(s, "failover")
            if fo:
                a1.scatter([k] * len(fo["seconds"]), fo["seconds"], color=f"C{k}")
            wa = rep.w(s, "watch")
            if wa:
                a2.bar(k, _num(_get(wa, "from_issue", "p50")), color=f"C{k}")
        for a in (a1, a2):
            a.set_xticks(range(len(have)), have, fontsize=8)
        a1.set_title("failover, s (each trial)")
        a2.set_title("watch notify p50, ms")
        save(fig, "failover_watch.png")
    return files
