"""Nemesis runs against real member processes.

Default CI: one short run with every in-process fault (SIGKILL + restart
from data_dir, SIGSTOP pauses, message-level partitions and chaos through
the fault transport) and every workload; its history must pass the direct
checks, the linearizability checker and the revision checker, with no
acknowledged write lost. When root can build network namespaces, one short
run with real TCP cuts too (skipped with the reason otherwise).

``--run-slow``: the long version, the documented runner command
(``python -m coord.testing.jepsen --runs 20 --seed 1 --duration 30 ...``)
at a smaller count.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from coord.local_cluster import process as _process
from coord.testing import jepsen
from coord.testing.jepsen import RunConfig, run_many, run_once
from coord.testing.netns import probe

pytestmark = pytest.mark.multiprocess


def _assert_clean(result: dict[str, Any]) -> None:
    assert not result.get("skipped"), result
    report = jepsen.format_run(result)
    assert result["anomalies"] == [], report
    assert result["unknown"] == [], report
    assert result["lost"] == 0, report
    for name in ("linearizability", "revision"):
        assert result["external"][name]["status"] == "pass", report
    assert result["valid"], report
    assert result["ops"]["ok"] > 300, report


def _no_children_left() -> None:
    with _process._LIVE_LOCK:
        alive = [p for p in _process._LIVE if p.alive]
    assert not alive, alive


def test_short_nemesis_run_in_process_faults(tmp_path: Path) -> None:
    cfg = RunConfig(seed=7, duration=13.0, faults=("kill", "pause", "partition", "network"),
                    fault_window=(1.5, 2.5), heal_window=(1.0, 1.5), quiet=2.0)
    result = run_once(cfg, 0, tmp_path, print_fn=lambda line: None)
    _assert_clean(result)
    assert sum(result["faults"].values()) >= 3, result["faults"]
    run_dir = next(tmp_path.glob("run-000-*"))
    assert (run_dir / "history.jsonl").stat().st_size > 0
    assert (run_dir / "check.json").exists()
    # the saved run checks the same offline
    assert jepsen.recheck(tmp_path, cfg.workloads, print_fn=lambda line: None)["valid"]
    _no_children_left()


_NETNS_UNAVAILABLE = probe(need_nft=True)


@pytest.mark.slow
@pytest.mark.skipif(_NETNS_UNAVAILABLE is not None, reason=f"netns: {_NETNS_UNAVAILABLE}")
def test_short_nemesis_run_netns_partitions(tmp_path: Path) -> None:
    cfg = RunConfig(seed=5, duration=14.0, faults=("partition", "pause"), netns=True,
                    fault_window=(2.0, 3.5), heal_window=(1.0, 2.0), quiet=2.0)
    result = run_once(cfg, 0, tmp_path, print_fn=lambda line: None)
    _assert_clean(result)
    _no_children_left()
    assert not [line for line in os.popen("ip netns list").read().splitlines() if "cj" in line]


@pytest.mark.slow
def test_long_runner(tmp_path: Path) -> None:
    cfg = RunConfig(seed=100, duration=30.0, faults=("kill", "pause", "partition", "network"))
    summary = run_many(cfg, 5, tmp_path, print_fn=print)
    assert summary["valid"], summary
    assert summary["lost_acknowledged"] == 0 and summary["anomalies"] == 0 and summary["unknown"] == 0
    _no_children_left()
