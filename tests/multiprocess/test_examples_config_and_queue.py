"""examples/config_management.py and examples/work_queue.py run by
themselves, in time, stop what they start, and show what they claim: every
application reloads a changed configuration and refuses an invalid one,
compare-and-set loses no concurrent edit; every queued job is finished
exactly once although a worker is SIGKILLed in the middle of one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.multiprocess

ROOT = Path(__file__).resolve().parents[2]
#: Each example finishes in about 3 (config) and 8 (queue) seconds on an idle machine.
DEADLINE = 60.0


def _run(script: str) -> str:
    """Run one example as a subprocess with a deadline; its stdout (exit status 0 asserted)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script)], capture_output=True, text=True, timeout=DEADLINE, cwd=ROOT
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert "all processes stopped" in proc.stdout
    return proc.stdout


def test_config_management_example_reloads_everywhere_and_loses_no_edit() -> None:
    out = _run("config_management.py")
    apps = ("app-0", "app-1", "app-2")
    assert "operator joined as an observer (observer)" in out, out
    assert re.search(r"alice: set\(version=1\) REFUSED with BadVersionError", out), out
    final = {"feature_search": True, "max_connections": 50, "rate_limit": 250}
    for app in apps:
        assert f"{app}: no /app/config yet" in out, out
        reloads = re.findall(rf"^.*{app}: RELOADED config version (\d+): (.*)$", out, re.MULTILINE)
        versions = [int(v) for v, _ in reloads]
        assert versions == sorted(versions) and versions[0] == 0, reloads  # never back to an older version
        assert reloads[-1] == ("3", json.dumps(final, sort_keys=True)), reloads
        assert re.search(
            rf"{app}: REJECTED config version 4: max_connections must be a positive int, got -5; "
            r"keeping version 3",
            out,
        ), out
        assert f"{app}: stopped" in out, out
    assert "OK: every application runs config version 3 with both editors' changes" in out


def test_work_queue_example_finishes_every_job_exactly_once_despite_a_sigkill() -> None:
    out = _run("work_queue.py")
    killed = re.search(r"SIGKILL (worker-\d) in the middle of job-05", out)
    assert killed, out
    victim = killed.group(1)
    assert re.search(rf"{victim}: START job-05", out), out
    done = Counter(re.findall(r": DONE (job-\d\d)$", out, re.MULTILINE))
    assert sorted(done) == [f"job-{i:02d}" for i in range(12)] and set(done.values()) == {1}, done
    assert f"{victim}: DONE job-05" not in out
    results = dict(re.findall(r"producer: RESULT (job-\d\d) (.*)$", out, re.MULTILINE))
    assert len(results) == 12, out
    finisher = json.loads(results["job-05"])["by"]
    assert finisher != victim and re.search(rf"{finisher}: DONE job-05", out), out
    # the taker of job-05 after the kill started it only once the victim's session had expired
    assert out.index(f"{finisher}: START job-05") > killed.end()
    assert "ALL DONE: queue entries left 0, locks left 0" in out
    for name in ("producer", "worker-1", "worker-2", "worker-3"):
        assert (f"{name}: stopped" in out) == (name != victim), out
    assert "OK: 12 jobs, each finished exactly once" in out
