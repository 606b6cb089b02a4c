"""Smoke test: ``benchmarks/commit_latency.py --quick`` runs end to end.

It starts two 3-process clusters (coord members and bare pysyncobj) on
loopback, so it doubles as a multi-process check of ``coord.local_cluster``.
No timing assertions: the host is noisy; only the table's presence and shape
are checked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "commit_latency.py"
DEADLINE_S = 240


def test_commit_latency_quick_prints_table() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,  # kills the benchmark (and, through stdin EOF, its members)
        check=False,
    )
    detail = f"\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, detail
    out = proc.stdout
    assert "coord vs bare pysyncobj" in out, detail
    assert "coord p50" in out and "floor p50" in out and "ratio p50" in out, detail
    rows = [" ".join(line.split()) for line in out.splitlines() if line.startswith(("create ", "set "))]
    # 4 latency rows, then 4 throughput rows, each with a coord and a floor
    # figure (a "-" placeholder would mean a measurement is missing).
    expected = ["create leader", "create follower", "set leader", "set follower"] * 2
    assert [" ".join(r.split()[:2]) for r in rows] == expected, detail
    for row in rows:
        coord_cell, floor_cell = (c.strip() for c in row.split("|")[1:3])
        assert coord_cell and not coord_cell.startswith("-"), f"no coord figure in {row!r}{detail}"
        assert floor_cell and not floor_cell.startswith("-"), f"no floor figure in {row!r}{detail}"
