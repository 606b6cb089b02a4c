"""Helpers (not tests) of the ``coord`` command-line tests: run ``python -m coord``
as a real subprocess (as a user would), with a cluster secret in a 0600 file."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a ``coord`` subprocess: this checkout first on
    the path, no COORD_* settings inherited from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra or {})
    return env


def coord_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m coord ARGS`` to completion (bounded by ``timeout``)."""
    return subprocess.run(
        [sys.executable, "-m", "coord", *args],
        capture_output=True,
        text=True,
        env=cli_env(env),
        timeout=timeout,
        input=stdin,
        cwd=REPO,
    )


def write_secret(directory: Path) -> tuple[str, Path]:
    """A fresh random cluster secret and the 0600 file holding it."""
    secret = secrets.token_urlsafe(32)
    path = directory / "coord.secret"
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret, path
