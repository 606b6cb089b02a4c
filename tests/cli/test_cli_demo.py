"""``coord demo`` (the README's one-command local cluster) and the command
list. The full demo run takes ~7 s, so it is behind --run-slow; the parser
check runs always."""

from __future__ import annotations

import pytest
from cli_support import coord_cli


def test_every_command_is_listed_and_demo_parses() -> None:
    listed = coord_cli("--help")
    assert listed.returncode == 0
    for command in ("demo", "run", "member", "status", "shell", "dump", "load"):
        assert command in listed.stdout
    demo = coord_cli("demo", "--help")
    assert demo.returncode == 0 and "--session-timeout" in demo.stdout
    bad = coord_cli("demo", "--members", "2")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


@pytest.mark.slow
@pytest.mark.multiprocess
def test_demo_runs_to_completion() -> None:
    done = coord_cli("demo", "--session-timeout", "2", timeout=180.0)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "new leader:" in done.stdout and "watch fired" in done.stdout
    assert "demo complete" in done.stdout
