"""``coord shell`` in a real terminal (pexpect) and ``coord dump``/``load``
against a live 3-member multi-process cluster with a secret. The shell
joins as an observer; what it prints is checked for every command,
including a watch firing on a change made by another member, Tab
completion of a znode path, and one-line errors."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from cli_support import cli_env, coord_cli, write_secret
from helpers import wait_until

from coord.local_cluster import LocalCluster

pytestmark = pytest.mark.multiprocess

PROMPT = "coord> "


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, list[str], Path]]:
    root = tmp_path_factory.mktemp("coord-shell")
    secret, secret_file = write_secret(root)
    with LocalCluster(3, secret=secret, session_timeout=3.0) as cluster:
        cluster.leader()
        yield cluster, ["--peers", ",".join(cluster.addresses), "--secret-file", str(secret_file)], root


def _run(child: pexpect.spawn, line: str, *expected: str) -> str:
    """Send one command line, expect each pattern in order, then the prompt;
    returns everything printed up to the prompt."""
    child.sendline(line)
    seen = []
    for pattern in expected:
        child.expect(pattern)
        seen += [str(child.before), str(child.after)]
    child.expect_exact(PROMPT)
    return "".join([*seen, str(child.before)])


def test_shell_session_in_a_terminal(secured: tuple[LocalCluster, list[str], Path]) -> None:
    cluster, options, root = secured
    history = root / "history"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "coord", "shell", *options, "--history-file", str(history)],
        env=cli_env({"TERM": "dumb"}),
        encoding="utf-8",
        timeout=20,
        dimensions=(40, 200),
    )
    try:
        child.expect_exact('"help" lists the commands')
        child.expect_exact(PROMPT)
        _run(child, "create -p /cli/app/config v1", re.escape("Created /cli/app/config"))
        _run(child, 'create /cli/app/motd "hello world"', re.escape("Created /cli/app/motd"))
        _run(child, "ls /cli/app", "config  motd")
        _run(child, "get /cli/app/motd", "hello world")
        _run(
            child,
            "stat /cli/app/config",
            r"cZxid = 0x[0-9a-f]+",
            "dataVersion = 0",
            "ephemeralOwner = 0x0",
            "dataLength = 2",
            "numChildren = 0",
        )
        _run(child, "set /cli/app/config v2", re.escape("Set /cli/app/config (version 1)"))
        _run(child, "set -v 0 /cli/app/config stale", "Error: BadVersionError")

        # A watch fires on a change made by another member, printed as it arrives.
        _run(child, "watch /cli/app/config", "Watching /cli/app/config")
        cluster[0].set("/cli/app/config", b"v3")
        child.expect_exact("WATCH CHANGED /cli/app/config")
        _run(child, "unwatch /cli/app/config", "Stopped watching /cli/app/config", "WATCH PERSISTENT_WATCH_REMOVED")

        # Tab completes a znode path from the local replica.
        child.send("get /cli/app/con")
        child.send("\t")
        child.expect_exact("fig")
        child.sendline("")
        child.expect_exact("v3")
        child.expect_exact(PROMPT)

        out = _run(child, "create -e -s /cli/app/worker- w", r"Created /cli/app/worker-\d{10}")
        worker = re.search(r"/cli/app/worker-\d{10}", out)
        assert worker is not None
        _run(child, "lock acquire /cli/lock", r"Acquired /cli/lock \(fencing token \d+\)")
        _run(child, "lock list", r"/cli/lock \(fencing token \d+\)")
        _run(child, "lock release /cli/lock", "Released /cli/lock")
        _run(child, "sync", "Synced /")
        # The shell is an observer: `coord status` lists it under the voters.
        status = coord_cli("status", *options)
        assert status.returncode == 0 and re.search(r"\n127\.0\.0\.1:\d+ +observer ", status.stdout), status.stdout
        tree = _run(child, "tree /cli", r"/cli\r\n  app\r\n    config\r\n    motd\r\n    worker-\d{10}")
        assert "lock" in tree
        _run(child, "get /cli/missing", "Error: NoNodeError: /cli/missing")
        _run(child, "delete /cli/app", "Error: NotEmptyError")
        _run(child, "create /cli/bad/child", "Error: NoNodeError")
        _run(child, "frobnicate", "Error: unknown command 'frobnicate'")
        _run(child, "create", "Error: the following arguments are required: path")
        listed = _run(child, "help", "commands").split()
        for command in ("ls", "tree", "get", "stat", "create", "set", "delete", "watch", "lock", "sync", "quit"):
            assert command in listed
        cluster[1].sync()
        assert cluster[1].exists(worker.group(0)) is not None
        _run(child, "delete -r /cli/app", "Deleted /cli/app")
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    assert "Traceback" not in str(child.before)
    assert "create -p /cli/app/config v1" in history.read_text()  # history was saved
    cluster[1].sync()
    assert cluster[1].exists("/cli/app") is None
    wait_until(lambda: cluster[1].get_children("/cli") == ["lock"], timeout=10.0, what="the shell's lock node to go")


def test_one_shot_command_and_join_failure_exit_codes(secured: tuple[LocalCluster, list[str], Path]) -> None:
    cluster, options, _ = secured
    cluster[0].ensure_path("/oneshot/a")
    done = coord_cli("shell", *options, "ls", "/oneshot")
    assert (done.returncode, done.stdout.strip()) == (0, "a")
    missing = coord_cli("shell", *options, "get", "/oneshot/none")
    assert missing.returncode == 1 and missing.stdout.strip() == "Error: NoNodeError: /oneshot/none"
    no_secret = coord_cli("shell", "--peers", ",".join(cluster.addresses), "--timeout", "2", "ls", "/")
    assert no_secret.returncode == 1 and "cannot join the cluster" in no_secret.stderr
    assert "Traceback" not in no_secret.stderr


def test_dump_and_load_round_trip(secured: tuple[LocalCluster, list[str], Path]) -> None:
    cluster, options, root = secured
    member = cluster[0]
    member.create("/rt/config", b"text \xc3\xa9", makepath=True)
    member.create("/rt/config/blob", bytes(range(256)))
    member.create("/rt/empty", b"")
    member.create("/rt/live", b"ephemeral", ephemeral=True)
    dump_file = root / "rt.json"
    done = coord_cli("dump", *options, "/rt", "-o", str(dump_file))
    assert done.returncode == 0, done.stderr
    document = json.loads(dump_file.read_text())
    nodes = {n["path"]: n for n in document["nodes"]}
    assert document["format"] == "coord-dump/1" and document["root"] == "/rt"
    assert set(nodes) == {"/rt", "/rt/config", "/rt/config/blob", "/rt/empty"}  # no ephemeral
    assert nodes["/rt/config"] == {"path": "/rt/config", "data": "text é", "encoding": "utf-8"}
    assert nodes["/rt/config/blob"]["encoding"] == "base64"

    loaded = coord_cli("load", *options, str(dump_file), "--root", "/copy/rt")
    assert loaded.returncode == 0, loaded.stderr
    member.sync()
    assert member.get("/copy/rt/config")[0] == b"text \xc3\xa9"
    assert member.get("/copy/rt/config/blob")[0] == bytes(range(256))
    assert member.get_children("/copy/rt") == ["config", "empty"]

    # Loading over existing nodes is refused and changes nothing ...
    member.set("/rt/config", b"changed")
    refused = coord_cli("load", *options, str(dump_file))
    assert refused.returncode == 1 and "exist already" in refused.stderr and "--overwrite" in refused.stderr
    member.sync()
    assert member.get("/rt/config")[0] == b"changed"
    # ... unless --overwrite, which restores the dumped values.
    restored = coord_cli("load", *options, str(dump_file), "--overwrite")
    assert restored.returncode == 0, restored.stderr
    member.sync()
    assert member.get("/rt/config")[0] == b"text \xc3\xa9"

    bad = root / "bad.json"
    bad.write_text(json.dumps({"format": "coord-dump/1", "root": "/x", "nodes": [{"path": "/y", "data": ""}]}))
    rejected = coord_cli("load", *options, str(bad))
    assert rejected.returncode == 1 and "not under the dump's root" in rejected.stderr
