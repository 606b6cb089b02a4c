"""Smoke test of the benchmark suite: ``python -m benchmarks.suite --quick``
against coord and the bare-pysyncobj floor (and ZooKeeper 3.8 when it is
installed, as in CI; etcd when installed), every workload.

No timing assertions (the host is noisy): only that every figure the suite
promises is produced, and is a finite positive number, in the JSON it
writes; and that the table and the targets scoreboard are printed.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from zk_server import zookeeper_unavailable_reason  # noqa: E402

DEADLINE_S = 240


def _positive(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _systems() -> list[str]:
    systems = ["coord", "floor"]
    if zookeeper_unavailable_reason() is None:
        systems.append("zookeeper")
    if shutil.which("etcd") is not None:
        systems.append("etcd")
    return systems


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, list[str]]:
    out = tmp_path_factory.mktemp("bench")
    systems = _systems()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.suite", "--quick", "--only", ",".join(systems), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True,
        timeout=DEADLINE_S,  # kills the suite; its members exit on stdin EOF / parent death
        check=False,
    )
    detail = f"\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, detail
    data = json.loads((out / "results.json").read_text())
    return data, proc.stdout + detail, systems


def _latency_ok(summary: dict[str, Any], where: str) -> None:
    for key in ("p50", "p90", "p99", "p999", "max"):
        assert _positive(summary.get(key)), f"{where}: {key} = {summary.get(key)!r}"


def test_every_write_figure_is_produced(quick_run: tuple[dict[str, Any], str, list[str]]) -> None:
    data, detail, systems = quick_run
    results = data["results"]
    for s in systems:
        r = results[s]
        for row in ("create/leader", "create/follower", "set/leader", "set/follower"):
            _latency_ok(r["commit"][row], f"{s} commit {row}{detail}")
        for k in ("1", "8", "64"):
            point = r["curve"][k]
            assert _positive(point["ops_per_sec"]), f"{s} curve {k}{detail}"
            _latency_ok(point["latency"], f"{s} curve {k}{detail}")
        assert _positive(r["overload"]["ops_per_sec"]), f"{s} overload{detail}"
        assert all(_positive(x) for x in r["failover"]["seconds"]) and r["failover"]["seconds"], detail


def test_reads_watches_and_scale_where_they_map(quick_run: tuple[dict[str, Any], str, list[str]]) -> None:
    data, detail, systems = quick_run
    results = data["results"]
    assert "n/a" in results["floor"]["reads"] and "n/a" in results["floor"]["watch"], detail
    for s in (x for x in systems if x != "floor"):
        r = results[s]
        for op in ("get", "exists", "get_children"):
            _latency_ok(r["reads"][op], f"{s} {op}{detail}")
            assert _positive(r["reads"][op]["reads_per_sec"]), detail
        _latency_ok(r["watch"]["from_issue"], f"{s} watch{detail}")
        assert r["watch"]["missed"] < r["watch"]["writes"], detail
        size = r["scale"]["sizes"]["1000"]
        assert size["znodes"] == 1000 and _positive(size["rss"]), f"{s} scale{detail}"
        assert _positive(r["scale"]["restart_seconds"]), detail
    coord = results["coord"]["scale"]
    assert _positive(coord["snapshot"]["seconds"]) and _positive(coord["catch_up"]["seconds"]), detail


def test_tables_and_scoreboard_are_printed(quick_run: tuple[dict[str, Any], str, list[str]]) -> None:
    data, out, systems = quick_run
    for title in ("COMMIT LATENCY", "ASYNC CREATE THROUGHPUT", "OVERLOAD", "LOCAL READS", "WATCH NOTIFICATION",
                  "FAILOVER", "SCALE", "TARGETS"):
        assert title in out, f"{title} missing{out}"
    verdicts = {t["target"]: t["verdict"] for t in data["targets"]}
    assert any(k.startswith("write p99") for k in verdicts), out
    assert all(v in ("met", "not met", "not measured") for v in verdicts.values()), verdicts
    # every system's rows are in the commit table, next to coord's
    commit_block = out.split("COMMIT LATENCY", 1)[1].split("\n\n", 1)[0]
    for s in systems:
        assert f" {s} " in f" {commit_block} ".replace("\n", " "), f"{s} not in the commit table{out}"
