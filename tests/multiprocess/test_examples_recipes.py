"""The recipe demos in examples/ run to completion, by themselves, in time,
and report what they claim to show (each checks its own invariant and exits
non-zero when it broke)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.multiprocess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: Each demo is designed to finish well within a minute.
DEADLINE = 90.0


def _run(script: str) -> str:
    """Run one example as a subprocess with a deadline; its stdout."""
    proc = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True,
                          timeout=DEADLINE, cwd=EXAMPLES.parent)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert "cluster stopped" in proc.stdout
    return proc.stdout


def test_leader_election_demo_fails_over_without_two_leaders() -> None:
    out = _run("leader_election.py")
    assert re.search(r"SIGKILL member-\d \(the current leader\)", out), out
    assert re.search(r"member-\d is leader [\d.]+ s after the kill", out), out
    assert re.search(r"member-\d is leader \d+ ms after the handover", out), out
    assert "INVARIANT BROKEN" not in out
    match = re.search(r"OK: never two leaders at once; fencing tokens strictly increased \((\d+) < (\d+) < (\d+)\)",
                      out)
    assert match, out
    tokens = [int(t) for t in match.groups()]
    assert tokens == sorted(tokens) and len(set(tokens)) == 3


def test_lock_fencing_demo_rejects_the_paused_holders_late_write() -> None:
    out = _run("lock_fencing.py")
    assert "SIGSTOP A" in out and "SIGCONT A" in out, out
    rejected = re.findall(r"storage: write from (member-\d) with token (\d+) REJECTED", out)
    accepted = re.findall(r"storage: write from (member-\d) with token (\d+) accepted", out)
    assert len(rejected) == 1 and len(accepted) == 2, out
    assert int(rejected[0][1]) < min(int(token) for _, token in accepted)
    assert "OK: the paused holder's late write was REJECTED" in out
