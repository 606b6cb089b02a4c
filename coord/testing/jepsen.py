"""Seeded Jepsen-style runs against a local coord cluster.

::

    python -m coord.testing.jepsen --runs 20 --seed 1 --duration 30 \\
        --faults kill,pause,partition [--netns] \\
        --workloads register,set,queue,sessions,lock,watches --out DIR

Each run (seed ``S + i``) starts 3 member processes (with data dirs, so a
killed member restarts from its journal), sets the workloads up, runs their
logical clients while the nemesis injects faults for ``--duration``
seconds, then heals everything, waits a quiet period, does the final reads,
stops every process and checks the history:

* every workload's direct checker (:mod:`coord.testing.workloads`);
* the linearizability checker (:mod:`coord.testing.linearizability`, WGL)
  on the register keys and the revision checker
  (:mod:`coord.testing.revision`), when those modules are present.

Partitions go through the in-process fault transport by default, or real
TCP cuts between network namespaces with ``--netns`` (root; skipped with a
reason when ``ip netns add`` fails). The run directory keeps
``history.jsonl``, ``observations.jsonl`` (watch logs, session states),
``check.json`` and the members' logs; ``summary.json`` sums all runs up.
``--check DIR`` re-checks saved runs offline. The exit status is non-zero
on any anomaly, lost acknowledged write, or checker result that is not a
clean pass (unknown counts as failure). Everything is bounded: each run
has a hard budget, and every process is stopped at the end (on Ctrl-C too).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import importlib
import json
import logging
import os
import random
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from coord.local_cluster import LocalCluster, MemberProcess
from coord.testing.history import NEMESIS, Event, History
from coord.testing.nemesis import FAULTS, Nemesis, NetnsPartitioner, Partitioner, TransportPartitioner
from coord.testing.netns import NetnsTopology, NetnsUnavailable, probe
from coord.testing.workloads import WORKLOADS, Client, Observations, RunContext, Workload, check_all

logger = logging.getLogger("coord.jepsen")

DEFAULT_WORKLOADS = ("register", "set", "queue", "sessions", "lock", "watches")
NETNS_PORT = 29500


@dataclasses.dataclass
class RunConfig:
    seed: int = 1
    duration: float = 30.0
    faults: tuple[str, ...] = ("kill", "pause", "partition", "network")
    workloads: tuple[str, ...] = DEFAULT_WORKLOADS
    netns: bool = False
    members: int = 3
    session_timeout: float = 3.0
    request_timeout: float = 3.0
    quiet: float = 3.0
    fault_window: tuple[float, float] = (3.0, 6.0)
    heal_window: tuple[float, float] = (3.0, 6.0)
    keep_data: bool = False
    #: Coordinator options for every member (JSON-able).
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def rpc_timeout(self) -> float:
        # the member settles every request within request_timeout + cancel
        # grace; the traced RPC's own guard is request_timeout + 10 s
        return self.request_timeout + 12.0


# --------------------------------------------------------------------------
# the external checkers (other modules; used when present)
# --------------------------------------------------------------------------


def _load_checker(module: str) -> Any | None:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name == module:
            return None
        raise


def external_checks(events: Sequence[Event], workloads: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Run the linearizability and revision checkers when they exist.

    Each result is ``{"status": "pass" | "fail" | "unknown" | "absent",
    "detail": ...}``; only "pass" and "absent" are clean.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, module in (("linearizability", "coord.testing.linearizability"),
                         ("revision", "coord.testing.revision")):
        try:
            mod = _load_checker(module)
        except Exception as exc:  # noqa: BLE001 - a broken checker is an unknown
            out[name] = {"status": "unknown", "detail": f"import failed: {exc!r}"}
            continue
        if mod is None:
            out[name] = {"status": "absent", "detail": f"{module} is not there yet"}
            continue
        try:
            out[name] = _ADAPTERS[name](mod, events, workloads)
        except Exception as exc:  # noqa: BLE001
            logger.exception("%s checker crashed", name)
            out[name] = {"status": "unknown", "detail": f"crashed: {exc!r}"}
    return out


#: Per-partition time limit of the linearizability search (unknown beyond it).
LINEARIZABILITY_TIME_LIMIT_S = 60.0


def _keep(events: Sequence[Event], keep: Callable[[Event], bool]) -> list[Event]:
    return [e for e in events if e.process != NEMESIS and keep(e)]


def _linearizability_adapter(mod: Any, events: Sequence[Event], workloads: Sequence[str]) -> dict[str, Any]:
    """WGL per register key (sync reads only: plain reads may be stale by
    design), and on the whole set and the whole queue."""
    from coord.testing.models import CasRegister, QueueModel, SetModel

    checks: list[tuple[str, list[Event], Any]] = []
    if "register" in workloads:
        checks.append(("register", _keep(events, lambda e: (e.key or "").startswith("register/") and e.f != "read"),
                       CasRegister(reads=("sync-read",), versioned_reads=True, write_creates=False)))
    if "set" in workloads:
        checks.append(("set", _keep(events, lambda e: e.key == "set"),
                       SetModel(reads=("sync-read", "final-read"))))
    if "queue" in workloads:
        checks.append(("queue", _keep(events, lambda e: e.key == "queue"),
                       QueueModel(order="fifo", reads=("final-read",))))
    statuses = []
    detail: dict[str, Any] = {}
    for name, subset, model in checks:
        result = mod.check(subset, model, time_limit_s=LINEARIZABILITY_TIME_LIMIT_S)
        status = "pass" if result.valid is True else "fail" if result.valid is False else "unknown"
        statuses.append(status)
        detail[name] = {
            "status": status,
            "partitions": [p.summary() for p in result.partitions],
            "report": result.format(context=8) if status != "pass" else "",
        }
    status = "fail" if "fail" in statuses else "unknown" if "unknown" in statuses else "pass"
    return {"status": status, "detail": detail}


#: History ``f`` names the revision checks treat as writes / plain reads /
#: linearizable reads (see coord.testing.revision).
REVISION_WRITES = frozenset({"write", "cas", "create", "delete", "add", "enqueue", "dequeue",
                             "create-eph", "heartbeat", "guard-write", "release"})
REVISION_READS = frozenset({"read"})
REVISION_LINEARIZABLE_READS = frozenset({"sync-read", "final-read"})


def _revision_adapter(mod: Any, events: Sequence[Event], workloads: Sequence[str]) -> dict[str, Any]:
    result = mod.check_revisions(events, writes=REVISION_WRITES, reads=REVISION_READS,
                                 linearizable_reads=REVISION_LINEARIZABLE_READS)
    status = "pass" if result.valid else "fail"
    return {"status": status, "detail": result.format(limit=20)}


_ADAPTERS: dict[str, Callable[[Any, Sequence[Event], Sequence[str]], dict[str, Any]]] = {
    "linearizability": _linearizability_adapter,
    "revision": _revision_adapter,
}


# --------------------------------------------------------------------------
# checking one run
# --------------------------------------------------------------------------


def check_run(events: Sequence[Event], observations: Sequence[dict[str, Any]], workloads: Sequence[str],
              alarms: Sequence[str] = ()) -> dict[str, Any]:
    """Every check of one run, as JSON-able data."""
    direct = check_all(workloads, events, observations)
    external = external_checks(events, workloads)
    client = [e for e in events if e.process != NEMESIS and e.type != "invoke"]
    counts = collections.Counter(e.type for e in client)
    faults = collections.Counter(e.f for e in events if e.process == NEMESIS and e.f in FAULTS)
    anomalies = [f"{r.workload}: {a}" for r in direct for a in r.anomalies]
    anomalies += [f"alarm: {a}" for a in alarms]
    anomalies += [f"{name}: {res.get('detail')!s:.500}" for name, res in external.items()
                  if res["status"] == "fail"]
    unknown = [f"{name}: {res.get('detail')!s:.300}" for name, res in external.items()
               if res["status"] == "unknown"]
    return {
        "ops": {"ok": counts.get("ok", 0), "fail": counts.get("fail", 0), "info": counts.get("info", 0)},
        "faults": dict(faults),
        "direct": [r.to_dict() for r in direct],
        "external": external,
        "anomalies": anomalies,
        "unknown": unknown,
        "lost": sum(r.lost for r in direct),
        "valid": not anomalies and not unknown and sum(r.lost for r in direct) == 0,
    }


# --------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------


class _Cleanup:
    """Stops what a run started, in reverse order, whatever happens."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], object]]] = []

    def push(self, what: str, fn: Callable[[], object]) -> None:
        self._steps.append((what, fn))

    def run(self) -> None:
        interrupted: BaseException | None = None
        while self._steps:
            what, fn = self._steps.pop()
            try:
                fn()
            except KeyboardInterrupt as exc:  # a second Ctrl-C: finish cleaning up first
                interrupted = exc
            except Exception:
                logger.exception("cleanup: %s failed", what)
        if interrupted is not None:
            raise interrupted


def _transport_available() -> bool:
    """Whether coord has the in-process fault transport yet."""
    try:
        import inspect

        from coord import Coordinator

        return "network_faults" in inspect.signature(Coordinator.__init__).parameters and \
            _load_checker("coord.testing.faults") is not None
    except Exception:  # noqa: BLE001
        return False


def _wait_healthy(cluster: LocalCluster, timeout: float) -> bool:
    """All members answer, agree on a leader, and have a connected session."""
    def healthy() -> bool:
        leaders = set()
        for m in cluster.members:
            st = m.status(timeout=3.0)
            if st.get("session_state") != "CONNECTED" or not st.get("leader"):
                return False
            leaders.add(st["leader"])
        return len(leaders) == 1

    try:
        cluster.wait_until(healthy, timeout, what="a healthy cluster", interval=0.2)
        return True
    except TimeoutError:
        return False


def run_once(cfg: RunConfig, index: int, out_dir: Path, *, print_fn: Callable[[str], None] = print) -> dict[str, Any]:
    """One seeded run; returns its summary (also saved under ``out_dir``)."""
    seed = cfg.seed + index
    rng = random.Random(seed)
    run_dir = out_dir / f"run-{index:03d}-seed{seed}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    history = History()
    observations = Observations()
    started = time.monotonic()
    cleanup = _Cleanup()
    stop = threading.Event()
    notes: list[str] = []
    nemesis: Nemesis | None = None
    ctx: RunContext | None = None
    try:
        options: dict[str, Any] = {"request_timeout": cfg.request_timeout, **cfg.options}
        partitioner: Partitioner | None = None
        faults = list(cfg.faults)
        cluster_kwargs: dict[str, Any] = {}
        secret: str | None = None
        topology: NetnsTopology | None = None
        if cfg.netns:
            topology = NetnsTopology(cfg.members, prefix=f"cj{os.getpid() % 10000}r{index}")
            topology.up()
            cleanup.push("netns down", topology.down)
            cluster_kwargs.update(hosts=[topology.host(i + 1) for i in range(cfg.members)],
                                  ports=[NETNS_PORT] * cfg.members,
                                  argv_prefix=lambda i: topology.exec_prefix(i + 1))
            secret = secrets.token_urlsafe(32)
        if not cfg.netns and ("partition" in faults or "network" in faults):
            if _transport_available():
                options["network_faults"] = seed
            else:
                for f in ("partition", "network"):
                    if f in faults:
                        faults.remove(f)
                        notes.append(f"{f} skipped: the in-process fault transport is not available")
        if cfg.netns and "network" in faults:
            faults.remove("network")
            notes.append("network skipped: message-level chaos needs the fault transport (netem is unavailable)")
        cluster = LocalCluster(
            cfg.members, data_root=run_dir / "data", session_timeout=cfg.session_timeout, secret=secret,
            log_dir=run_dir / "logs", keep_logs=True, start_timeout=30.0, options=options,
            event_handler=observations.on_member_event, **cluster_kwargs,
        )
        cluster.start()
        cleanup.push("cluster stop", lambda: cluster.stop(timeout=15.0))
        if topology is not None:
            partitioner = NetnsPartitioner(topology)
        elif "partition" in faults or "network" in faults:
            partitioner = TransportPartitioner(cluster.members, rpc_timeout=10.0)
        ctx = RunContext(history, observations, cluster, stop, seed, cfg.session_timeout,
                         cfg.request_timeout, cfg.rpc_timeout)
        workloads: list[Workload] = [WORKLOADS[name](ctx) for name in cfg.workloads]
        setup_client = Client(ctx, cluster.members[0], "setup", random.Random(seed))
        cluster.members[0].ensure_path("/jepsen", timeout=cfg.rpc_timeout)
        for w in workloads:
            w.setup(setup_client)
        for w in workloads:
            for m in cluster.members:
                w.member_started(m)

        def member_started(m: MemberProcess) -> None:
            for w in workloads:
                w.member_started(m)

        threads: list[threading.Thread] = []
        for w in workloads:
            for m in cluster.members:
                for c in range(w.clients_per_member):
                    name = f"{w.name}-{m.name}-{c}"
                    client = Client(ctx, m, name, random.Random(f"{seed}/{name}"))
                    t = threading.Thread(target=w.run_client, args=(client,), name=f"jepsen-{name}", daemon=True)
                    threads.append(t)
        for t in threads:
            t.start()
        cleanup.push("stop clients", stop.set)
        nemesis = Nemesis(ctx, rng, faults, partitioner=partitioner, fault_window=cfg.fault_window,
                          heal_window=cfg.heal_window, on_member_started=member_started)
        healed = threading.Event()
        cleanup.push("abort nemesis", lambda: None if healed.is_set() else nemesis.abort())
        nemesis.run(cfg.duration)
        # the end: stop clients, heal, quiet period, final reads
        stop.set()
        join_deadline = time.monotonic() + cfg.rpc_timeout + 10.0
        nemesis.heal_all()
        healed.set()
        for t in threads:
            t.join(max(0.1, join_deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            notes.append(f"clients still running after the join deadline: {stuck}")
        if not _wait_healthy(cluster, 60.0):
            ctx.alarm(f"the cluster did not become healthy within 60 s after healing: {cluster.statuses()}")
        time.sleep(cfg.quiet)
        finals = [Client(ctx, m, f"final-{m.name}", random.Random(seed)) for m in cluster.members]
        for w in workloads:
            try:
                w.final(finals)
            except Exception as exc:  # recorded as an unknown below
                logger.exception("final reads of %s failed", w.name)
                ctx.alarm(f"final reads of {w.name} failed: {exc!r}")
    except NetnsUnavailable as exc:
        cleanup.run()
        return {"index": index, "seed": seed, "skipped": f"netns unavailable: {exc}"}
    finally:
        stop.set()
        cleanup.run()
        history.save(run_dir / "history.jsonl")
        observations.save(run_dir / "observations.jsonl")
        if not cfg.keep_data:
            shutil.rmtree(run_dir / "data", ignore_errors=True)
    events = history.events
    result = check_run(events, observations.items, cfg.workloads, ctx.alarms if ctx else ())
    result.update(index=index, seed=seed, seconds=round(time.monotonic() - started, 1), notes=notes,
                  config={k: v for k, v in dataclasses.asdict(cfg).items()})
    (run_dir / "check.json").write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
    print_fn(format_run(result))
    return result


def format_run(r: dict[str, Any]) -> str:
    if r.get("skipped"):
        return f"run {r['index']:3d} seed {r['seed']}: SKIPPED ({r['skipped']})"
    ops = r["ops"]
    faults = " ".join(f"{k} {v}" for k, v in sorted(r["faults"].items())) or "none"
    ext = " ".join(f"{k}={v['status']}" for k, v in sorted(r["external"].items()))
    verdict = "ok" if r["valid"] else "INVALID"
    line = (f"run {r['index']:3d} seed {r['seed']}: {verdict}  ops {sum(ops.values())} "
            f"(ok {ops['ok']} fail {ops['fail']} info {ops['info']})  faults {sum(r['faults'].values())} "
            f"({faults})  anomalies {len(r['anomalies'])}  unknown {len(r['unknown'])}  "
            f"lost-acked {r['lost']}  [{ext}]  {r['seconds']}s")
    for a in r["anomalies"][:10]:
        line += f"\n    anomaly: {a}"
    for u in r["unknown"][:5]:
        line += f"\n    unknown: {u}"
    for n in r.get("notes", []):
        line += f"\n    note: {n}"
    return line


def summarize(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in results if not r.get("skipped")]
    ops: collections.Counter[str] = collections.Counter()
    faults: collections.Counter[str] = collections.Counter()
    for r in done:
        ops.update(r["ops"])
        faults.update(r["faults"])
    return {
        "runs": len(done),
        "skipped": len(results) - len(done),
        "ops": {"ok": ops.get("ok", 0), "fail": ops.get("fail", 0), "info": ops.get("info", 0),
                "total": sum(ops.values())},
        "faults": dict(faults),
        "faults_total": sum(faults.values()),
        "anomalies": sum(len(r["anomalies"]) for r in done),
        "unknown": sum(len(r["unknown"]) for r in done),
        "lost_acknowledged": sum(r["lost"] for r in done),
        "invalid_runs": [r["index"] for r in done if not r["valid"]],
        "external": {name: dict(collections.Counter(r["external"][name]["status"] for r in done
                                                    if name in r["external"]))
                     for name in sorted({k for r in done for k in r["external"]})},
        "valid": bool(done) and all(r["valid"] for r in done),
    }


def format_summary(s: dict[str, Any]) -> str:
    faults = " ".join(f"{k} {v}" for k, v in sorted(s["faults"].items())) or "none"
    checkers = "; ".join(f"{name}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
                         for name, counts in s["external"].items())
    return (f"TOTAL: {s['runs']} runs ({s['skipped']} skipped)  ops {s['ops']['total']} (ok {s['ops']['ok']} "
            f"fail {s['ops']['fail']} info {s['ops']['info']})  faults {s['faults_total']} ({faults})  "
            f"anomalies {s['anomalies']}  unknown {s['unknown']}  lost-acked {s['lost_acknowledged']}  "
            f"checkers {checkers}  => {'PASS' if s['valid'] else 'FAIL'}")


def run_many(cfg: RunConfig, runs: int, out_dir: Path, *, print_fn: Callable[[str], None] = print,
             budget_s: float | None = None) -> dict[str, Any]:
    """``runs`` seeded runs; stops early (after a run) when ``budget_s`` is spent."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    started = time.monotonic()
    for i in range(runs):
        if budget_s is not None and time.monotonic() - started > budget_s:
            print_fn(f"time budget of {budget_s:.0f}s spent after {i} runs")
            break
        results.append(run_once(cfg, i, out_dir, print_fn=print_fn))
        if results[-1].get("skipped") and cfg.netns:
            break  # the reason will not change
    summary = summarize(results)
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["config"] = dataclasses.asdict(cfg)
    (out_dir / "summary.json").write_text(json.dumps({"summary": summary, "runs": [
        {k: r.get(k) for k in ("index", "seed", "valid", "ops", "faults", "lost", "anomalies", "unknown",
                               "skipped", "seconds")} for r in results]}, indent=2, default=str))
    print_fn(format_summary(summary))
    return summary


def recheck(out_dir: Path, workloads: Sequence[str], *, print_fn: Callable[[str], None] = print) -> dict[str, Any]:
    """Check saved runs again (``--check DIR``)."""
    results = []
    for i, run_dir in enumerate(sorted(p for p in out_dir.glob("run-*") if p.is_dir())):
        events = History.load(run_dir / "history.jsonl")
        observations = Observations.load(run_dir / "observations.jsonl")
        alarms: list[str] = []
        with contextlib.suppress(OSError, ValueError):  # harness alarms are not in the history
            saved = json.loads((run_dir / "check.json").read_text())
            alarms = [a[len("alarm: "):] for a in saved.get("anomalies", []) if a.startswith("alarm: ")]
        result = check_run(events, observations, workloads, alarms)
        seed = int(run_dir.name.rsplit("seed", 1)[1]) if "seed" in run_dir.name else 0
        result.update(index=i, seed=seed, seconds=0.0, notes=[f"re-checked {run_dir.name}"])
        print_fn(format_run(result))
        results.append(result)
    summary = summarize(results)
    print_fn(format_summary(summary))
    return summary


def _csv(text: str, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [x for x in items if x not in allowed]
    if bad:
        raise SystemExit(f"unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return items


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m coord.testing.jepsen", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, default=30.0, help="seconds of faults per run")
    p.add_argument("--faults", default="kill,pause,partition",
                   help=f"comma-separated, of: {', '.join(FAULTS)} (network: message loss/delay/duplicate/"
                        "stale re-delivery through the fault transport)")
    p.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS))
    p.add_argument("--netns", action="store_true", help="partitions as real TCP cuts between network namespaces")
    p.add_argument("--out", default="jepsen-out")
    p.add_argument("--session-timeout", type=float, default=3.0)
    p.add_argument("--request-timeout", type=float, default=3.0)
    p.add_argument("--quiet", type=float, default=3.0, help="quiet period after healing, seconds")
    p.add_argument("--keep-data", action="store_true", help="keep the members' data dirs")
    p.add_argument("--budget", type=float, default=None, help="stop starting runs after this many seconds")
    p.add_argument("--check", metavar="DIR", default=None, help="re-check the runs saved in DIR and exit")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workloads = _csv(args.workloads, list(WORKLOADS), "workloads")
    if args.check:
        return 0 if recheck(Path(args.check), workloads)["valid"] else 1
    if not 1 <= args.runs <= 1000:
        raise SystemExit("--runs must be in 1..1000")
    if not 1.0 <= args.duration <= 3600:
        raise SystemExit("--duration must be in 1..3600 seconds")
    faults = _csv(args.faults, FAULTS, "faults") if args.faults else ()
    if args.netns:
        reason = probe()
        if reason is not None:
            print(f"--netns: skipped: {reason}")
            return 0
    cfg = RunConfig(seed=args.seed, duration=args.duration, faults=faults, workloads=workloads,
                    netns=args.netns, session_timeout=args.session_timeout, request_timeout=args.request_timeout,
                    quiet=args.quiet, keep_data=args.keep_data)
    # SIGTERM behaves like Ctrl-C: the finally blocks stop every process
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)  # even when started with SIGINT ignored (a background job)
    try:
        summary = run_many(cfg, args.runs, Path(args.out), budget_s=args.budget)
    except KeyboardInterrupt:
        print("interrupted: every member process was stopped", file=sys.stderr)
        return 130
    return 0 if summary["valid"] else 1


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
