"""``coord run`` and ``coord status`` against a real 3-member cluster whose
members are ``coord run`` processes: one configured by a TOML file, one by
COORD_* environment variables (secret included), one by arguments.
``coord status`` names the leader, then the new leader after the old one is
SIGKILLed; SIGTERM stops a member cleanly (exit 0)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import cli_env, coord_cli, write_secret
from helpers import free_ports, wait_until

from coord.cli.status import collect

pytestmark = pytest.mark.multiprocess


class RunCluster:
    """Three ``python -m coord run`` processes and how to reach them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.secret, self.secret_file = write_secret(root)
        ports = free_ports(3)
        self.addresses = [f"127.0.0.1:{p}" for p in ports]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.config = root / "member-0.toml"

    def others(self, address: str) -> list[str]:
        return [a for a in self.addresses if a != address]

    def start(self) -> None:
        a0, a1, a2 = self.addresses
        self.config.write_text(
            f'address = "{a0}"\npeers = {json.dumps(self.others(a0))}\ndata_dir = "{self.root / "data-0"}"\n'
            f'secret_file = "{self.secret_file}"\nsession_timeout = 3.0\nstatus_interval = 0.5\n'
        )
        self._spawn(a0, ["--config", str(self.config)], {})
        self._spawn(
            a1,
            [],
            {
                "COORD_ADDRESS": a1,
                "COORD_PEERS": ",".join(self.others(a1)),
                "COORD_SECRET": self.secret,
                "COORD_DATA_DIR": str(self.root / "data-1"),
                "COORD_SESSION_TIMEOUT": "3",
            },
        )
        self._spawn(
            a2,
            [
                "--address",
                a2,
                "--peers",
                ",".join(self.others(a2)),
                "--secret-file",
                str(self.secret_file),
                "--session-timeout",
                "3",
            ],
            {},
        )

    def _spawn(self, address: str, args: list[str], env: dict[str, str]) -> None:
        log = self.root / f"{address.replace(':', '_')}.log"
        self.logs[address] = log
        with open(log, "wb") as out:
            self.procs[address] = subprocess.Popen(
                [sys.executable, "-m", "coord", "run", *args],
                env=cli_env(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def report(self) -> dict[str, Any]:
        return collect(self.addresses, self.secret.encode(), 2.0)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15.0
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)


@pytest.fixture(scope="module")
def run_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunCluster]:
    cluster = RunCluster(tmp_path_factory.mktemp("coord-run"))
    try:
        cluster.start()
        wait_until(
            lambda: cluster.report()["leader"] and all(m["reachable"] for m in cluster.report()["members"]),
            timeout=45.0,
            interval=0.2,
            what="the coord run members to elect a leader",
        )
        yield cluster
    except BaseException:
        for address, log in cluster.logs.items():
            sys.stderr.write(f"--- {address}\n{log.read_text(errors='replace')[-3000:]}\n")
        raise
    finally:
        cluster.stop()


def _table(stdout: str) -> tuple[dict[str, list[str]], str]:
    """Rows of `coord status`'s table by member address, and its leader line."""
    lines = stdout.strip().splitlines()
    assert lines[0].split() == ["MEMBER", "ROLE", "TERM", "COMMIT", "APPLIED", "ZXID", "LAG", "SESSIONS", "ZNODES"]
    end = next(i for i, line in enumerate(lines) if line.startswith("leader:"))
    rows = {line.split()[0]: line.split() for line in lines[1:end]}
    leader_line = lines[end]
    return rows, leader_line


def test_members_from_toml_env_and_args_form_a_cluster_and_status_names_the_leader(run_cluster: RunCluster) -> None:
    done = coord_cli("status", "--config", str(run_cluster.config))
    assert done.returncode == 0, done.stderr
    rows, leader_line = _table(done.stdout)
    assert set(rows) == set(run_cluster.addresses)
    leaders = [address for address, row in rows.items() if row[1] == "leader"]
    assert len(leaders) == 1 and leader_line.startswith(f"leader: {leaders[0]} (term ")
    assert sorted(row[1] for row in rows.values()) == ["follower", "follower", "leader"]
    for row in rows.values():
        term, commit, applied, zxid, lag, sessions, znodes = row[2:]
        assert int(term) >= 1 and int(commit) >= int(applied) - 0 >= 1 and zxid.startswith("0x")
        assert lag.isdigit() and int(sessions) >= 3 and int(znodes) >= 1

    as_json = coord_cli(
        "status", "--peers", ",".join(run_cluster.addresses), "--json", env={"COORD_SECRET": run_cluster.secret}
    )
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["leader"] == leaders[0]
    assert {m["address"]: m["role"] for m in report["members"]} == {a: r[1] for a, r in rows.items()}


def test_status_without_the_secret_reports_members_unreachable(run_cluster: RunCluster) -> None:
    done = coord_cli("status", "--peers", ",".join(run_cluster.addresses), "--timeout", "2")
    assert done.returncode == 1
    rows, leader_line = _table(done.stdout)
    assert all(row[1] == "unreachable" for row in rows.values()) and leader_line.startswith("leader: none")
    assert "same secret" in done.stdout  # the reason is printed below the table
    assert "Traceback" not in done.stdout + done.stderr


def test_status_shows_the_new_leader_after_the_leader_is_sigkilled(run_cluster: RunCluster) -> None:
    old = run_cluster.report()["leader"]
    assert old is not None
    run_cluster.procs[old].send_signal(signal.SIGKILL)
    run_cluster.procs[old].wait(timeout=10.0)

    def new_leader() -> str | None:
        leader = run_cluster.report()["leader"]
        return leader if leader not in (None, old) else None

    elected = wait_until(new_leader, timeout=20.0, interval=0.2, what="a new leader after the SIGKILL")
    done = coord_cli("status", "--config", str(run_cluster.config))
    assert done.returncode == 0, done.stderr + done.stdout
    rows, leader_line = _table(done.stdout)
    assert rows[old][1] == "unreachable"
    assert rows[elected][1] == "leader" and leader_line.startswith(f"leader: {elected} (term ")
    assert int(rows[elected][2]) >= 2  # a new term


def test_sigterm_stops_a_member_cleanly(run_cluster: RunCluster) -> None:
    report = run_cluster.report()
    follower = next(m["address"] for m in report["members"] if m["role"] == "follower")
    proc = run_cluster.procs[follower]
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=20.0) == 0
    log = run_cluster.logs[follower].read_text(errors="replace")
    assert "stopping member" in log and "stopped" in log and "Traceback" not in log
