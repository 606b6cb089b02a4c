"""examples/service_discovery.py runs by itself, in time, stops what it
starts, and shows what it claims: a registration that disappears when its
process's session expires comes back, with the data last given to
set_data, under a new session."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.multiprocess

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0


def test_service_discovery_example_heals_the_expired_registration() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "service_discovery.py")],
        capture_output=True, text=True, timeout=DEADLINE, cwd=ROOT,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"exited {proc.returncode}\n{out}\n{proc.stderr[-3000:]}"
    for name in ("web-0", "web-1", "web-2"):
        assert f"{name}: registered /services/web/{name}" in out, out
    stop = re.search(r"SIGSTOP web-2 \(pid \d+\)", out)
    assert stop, out
    # After the SIGSTOP, the expired registration leaves the view.
    assert re.search(r"web-0: VIEW 2 services: web-0=.*; web-1=[^;]*$", out[stop.end() :], re.MULTILINE), out
    assert "SIGCONT web-2" in out
    old = re.search(r"web-2: member up, session (0x[0-9a-f]+)", out)
    lost = re.search(r"web-2: session LOST", out)
    healed = re.search(r'web-2: HEALED: .*"status": "serving".* under new session (0x[0-9a-f]+)', out)
    assert old and lost and healed, out
    assert healed.group(1) != old.group(1)
    assert lost.start() < healed.start()
    # The discovery view shows web-2 back, with the updated data and its new session.
    assert re.search(r'web-2=\{[^}]*"serving"\} \(session ' + healed.group(1) + r"\)", out), out
    assert "healed: the registration is back" in out
    # Every service process unregistered and stopped.
    for name in ("web-0", "web-1", "web-2"):
        assert f"{name}: stopped" in out, out
    assert out.rstrip().endswith("all service processes stopped"), out
