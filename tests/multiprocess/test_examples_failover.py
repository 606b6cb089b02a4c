"""examples/failover.py runs by itself, in time, stops what it starts, and
shows what it claims: writes resume on a survivor after the leader is
SIGKILLed, and the dead leader's ephemeral goes (its watch fires)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.multiprocess

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0


def test_failover_example_resumes_writes_and_drops_the_dead_leaders_ephemeral() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "failover.py")],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        cwd=ROOT,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"exited {proc.returncode}\n{out}\n{proc.stderr[-3000:]}"
    leader = re.search(r"3 members up; leader is (member-\d)", out)
    assert leader, out
    assert f"SIGKILL {leader.group(1)}" in out
    new_leader = re.search(r"write accepted again \d+ ms after the kill; new leader (member-\d)", out)
    assert new_leader and new_leader.group(1) != leader.group(1), out
    assert f"watch fired: DELETED /workers/{leader.group(1)}" in out, out
    assert "/workers now: []" in out, out
    assert out.rstrip().endswith("cluster stopped"), out
