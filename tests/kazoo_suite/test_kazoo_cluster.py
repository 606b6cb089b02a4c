"""The harness that runs kazoo's own test suite against coord
(``coord.testing.kazoo_cluster``).

The full run is its own CI step (``python -m pytest --pyargs kazoo.tests -p
coord.testing.kazoo_cluster``, about 5 minutes).  These tests keep the
harness honest in the default suite, quickly: the cluster object behaves as
kazoo's tests expect (members stop and run again, terminate leaves nothing
behind), and the plugin turns listed failures into strict xfails and enforces
the pass rate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("kazoo.testing", reason="kazoo.testing needs pyopenssl and pyjks (the test extra)")

from kazoo.client import KazooClient  # noqa: E402

from coord.testing import kazoo_cluster  # noqa: E402

pytestmark = pytest.mark.multiprocess

REPO = Path(__file__).resolve().parents[2]
NULL_DATA_TEST = "test_client.py::TestClient::test_create_null_data"


def _client(hosts: str) -> KazooClient:
    client = KazooClient(hosts=hosts, timeout=10.0)
    client.start(timeout=30)
    return client


def test_cluster_members_stop_run_and_terminate() -> None:
    cluster = kazoo_cluster.CoordZooKeeperCluster(3)
    clients: list[KazooClient] = []
    try:
        cluster.start()
        assert len({s.address for s in cluster}) == 3
        assert all(s.running for s in cluster)
        root = cluster._root
        assert root is not None and root.is_dir()

        # kazoo's harness connects to all members at once
        everyone = _client(",".join(s.address for s in cluster))
        clients.append(everyone)
        everyone.create("/kz", b"before")

        # a member stops (test_client's TestConnection does this) ...
        cluster[0].stop()
        assert not cluster[0].running
        everyone.set("/kz", b"while-0-down")  # two of three still commit
        # ... and runs again with its data, catching up
        cluster[0].run()
        assert cluster[0].running
        cluster[0].wait_ready(kazoo_cluster.START_TIMEOUT)
        only0 = _client(cluster[0].address)
        clients.append(only0)
        only0.sync("/kz")
        assert only0.get("/kz")[0] == b"while-0-down"
        assert cluster.get_logs()  # the members' log tails, for kazoo's failure hook
    finally:
        for client in clients:
            client.stop()
            client.close()
        pids = [s.process.pid for s in cluster]
        cluster.terminate()
    assert not any(Path(f"/proc/{pid}").exists() and _not_zombie(pid) for pid in pids if pid)
    assert not root.exists()


def _not_zombie(pid: int) -> bool:
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except OSError:
        return False


def _run_kazoo(tmp_path: Path, *targets: str, extra: tuple[str, ...] = ()) -> tuple[int, dict, str]:
    report = tmp_path / f"report-{len(list(tmp_path.iterdir()))}.json"
    cmd = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
        "-p", "coord.testing.kazoo_cluster", f"--kazoo-report={report}", "--timeout=120",
        "--pyargs", *targets, *extra,
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    output = proc.stdout + proc.stderr
    assert report.exists(), output
    return proc.returncode, json.loads(report.read_text()), output


def test_plugin_runs_kazoo_tests_and_marks_listed_failures(tmp_path: Path) -> None:
    assert NULL_DATA_TEST in kazoo_cluster.EXPECTED_FAILURES
    code, report, output = _run_kazoo(
        tmp_path,
        "kazoo.tests.test_counter",
        "kazoo.tests.test_client::TestClient::test_create_null_data",
        extra=("--kazoo-min-pass-rate=0.8",),  # 5 of these 6 pass
    )
    assert code == 0, output
    assert report["backend"] == "coord"
    assert report["outcomes"][NULL_DATA_TEST] == "xfailed"
    counter = {k: v for k, v in report["outcomes"].items() if k.startswith("test_counter.py::")}
    assert len(counter) == 5 and set(counter.values()) == {"passed"}, counter
    assert report["per_file"]["test_counter.py"]["passed"] == 5
    assert report["totals"] == {"passed": 5, "failed": 0, "xfailed": 1, "skipped": 0}
    assert "kazoo.tests server-backed tests against coord" in output

    # the pass-rate gate: a run whose only test is an (expected) failure is below 95%
    code, report, output = _run_kazoo(tmp_path, "kazoo.tests.test_client::TestClient::test_create_null_data")
    assert report["pass_rate"] == 0.0
    assert code == 1, output
    assert "BELOW the required 95%" in output
