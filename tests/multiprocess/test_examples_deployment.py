"""The multi-host deployment guide in examples/deployment/ holds up: every
TOML file loads with ``coord run``'s own loader into a valid Coordinator
configuration, the files agree with each other and with the systemd unit,
the unit's ExecStart is a real ``coord run`` command line (and passes
``systemd-analyze verify`` where that tool exists), and the three voter
files plus the observer file, run as written by ``coord run`` with only the
host-specific settings overridden for loopback, form a working cluster that
stops cleanly on SIGTERM."""

from __future__ import annotations

import configparser
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coord import Coordinator
from coord.cli import build_parser
from coord.cli.config import load_run_config
from coord.local_cluster import free_ports

pytestmark = pytest.mark.multiprocess

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = ROOT / "examples" / "deployment"
UNIT = DEPLOYMENT / "coord@.service"
VOTER_FILES = sorted(DEPLOYMENT.glob("coord-*.toml"))
OBSERVER_FILE = DEPLOYMENT / "observer.toml"
DEADLINE = 60.0


def _secret_file(directory: Path) -> Path:
    path = directory / "secret"
    path.write_text(secrets.token_urlsafe(48) + "\n")
    path.chmod(0o400)
    return path


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read(UNIT)
    return unit


def _exec_start(instance: str) -> list[str]:
    return shlex.split(_unit()["Service"]["ExecStart"].replace("%i", instance))


def test_the_guide_names_its_files() -> None:
    assert [p.name for p in VOTER_FILES] == ["coord-1.toml", "coord-2.toml", "coord-3.toml"]
    guide = (DEPLOYMENT / "README.md").read_text()
    for path in (UNIT, *VOTER_FILES, OBSERVER_FILE):
        assert path.is_file() and f"`{path.name}`" in guide, path.name


def test_every_config_file_loads_with_the_coord_run_loader(tmp_path: Path) -> None:
    secret_file = _secret_file(tmp_path)
    voters: set[str] = set()
    for path in (*VOTER_FILES, OBSERVER_FILE):
        config = load_run_config(str(path), environ={}, args={"secret_file": str(secret_file)})
        assert config.sources.get("address") == "file", path.name
        kwargs = config.coordinator_kwargs(environ={})
        assert kwargs["secret"] is not None
        if kwargs.get("data_dir") is not None:  # a systemd StateDirectory, named after the instance
            assert kwargs["data_dir"] == f"/var/lib/coord/{path.stem}", path.name
            kwargs["data_dir"] = str(tmp_path / path.stem)  # never touch /var/lib in a test
        Coordinator(**kwargs)  # every value is one the Coordinator accepts (nothing starts)
        if path in VOTER_FILES:
            assert not config.get("observer") and config.get("durability") == "fsync", path.name
            cluster = {kwargs["address"], *kwargs["peers"]}
            assert len(cluster) == 3, (path.name, cluster)
            assert not voters or cluster == voters, f"{path.name} disagrees about the voters: {cluster} vs {voters}"
            voters = cluster
        else:
            assert config.get("observer") is True and kwargs.get("data_dir") is None
            assert set(kwargs["peers"]) == voters, "the observer must list exactly the voters"


def test_the_unit_runs_coord_run_with_the_instance_config() -> None:
    unit = _unit()
    service = unit["Service"]
    argv = _exec_start("coord-1")
    assert Path(argv[0]).name == "coord", argv
    args = build_parser().parse_args(argv[1:])  # SystemExit here = an option `coord run` does not have
    assert args.command == "run" and args.config == "/etc/coord/coord-1.toml", argv
    assert service["StateDirectory"] == "coord/%i" and service["StateDirectoryMode"] == "0700"
    assert service["KillSignal"] == "SIGTERM" and service["Restart"] == "on-failure"
    assert service["User"] == "coord"
    # the config file each instance reads exists in the guide's set, and its data_dir is the StateDirectory
    for path in VOTER_FILES:
        assert shlex.split(service["ExecStart"].replace("%i", path.stem))[3] == f"/etc/coord/{path.name}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at this environment's coord.
    script = Path(sys.executable).parent / "coord"
    program = str(script) if script.exists() else f"{sys.executable} -m coord"
    text = UNIT.read_text().replace("/opt/coord/bin/coord", program)
    instance = tmp_path / "coord@coord-1.service"
    instance.write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(instance)], capture_output=True, text=True, timeout=60
    )
    ours = [line for line in (proc.stdout + proc.stderr).splitlines() if "coord@" in line]
    assert proc.returncode == 0 and not ours, proc.stdout + proc.stderr


def _wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        assert proc.poll() is None, f"exited {proc.returncode} before {text!r}:\n{log.read_text()[-3000:]}"
        time.sleep(0.05)
    raise AssertionError(f"no {text!r} within {timeout:g}s:\n{log.read_text()[-3000:]}")


def test_the_config_files_run_a_cluster_as_written(tmp_path: Path) -> None:
    """`coord run --config FILE` for the 3 voters and the observer; only
    what is host-specific (addresses, data_dir, secret file, metrics port)
    is overridden on the command line, as an operator would on loopback."""
    secret_file = _secret_file(tmp_path)
    ports = free_ports(8)
    voters = [f"127.0.0.1:{port}" for port in ports[:3]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for i, path in enumerate([*VOTER_FILES, OBSERVER_FILE]):
            address = voters[i] if i < 3 else f"127.0.0.1:{ports[3]}"
            peers = [v for v in voters if v != address]
            args = ["--config", str(path), "--address", address, "--peers", ",".join(peers)]
            args += ["--secret-file", str(secret_file), "--metrics-address", f"127.0.0.1:{ports[4 + i]}"]
            if i < 3:
                args += ["--data-dir", str(tmp_path / path.stem)]
            log = tmp_path / f"{path.stem}.log"
            with log.open("wb") as handle:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "coord", "run", *args],
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=ROOT,
                )
            procs.append((proc, log))
        for proc, log in procs:
            _wait_for_line(log, "ready", proc, DEADLINE)
        status = subprocess.run(
            [sys.executable, "-m", "coord", "status", "--peers", ",".join(voters), "--secret-file", str(secret_file)]
            + ["--json"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=DEADLINE,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report.get("leader") in voters, report
        assert list((tmp_path / "coord-1").iterdir()), "the voter wrote nothing to its data_dir"
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = []
        for proc, log in procs:
            try:
                codes.append(proc.wait(timeout=30))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                codes.append(f"killed ({log.name})")
    assert codes == [0, 0, 0, 0], codes
