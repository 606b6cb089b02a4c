"""``coord run``'s configuration: TOML file, COORD_* environment and
arguments, merged with arguments > environment > file; bad input is refused
with a message that names the problem. No cluster needed."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from cli_support import coord_cli, write_secret

from coord import Coordinator
from coord.cli import main
from coord.cli.config import KEYS, load_run_config
from coord.errors import ConfigurationError
from coord.replication import RaftTiming


def _toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "member.toml"
    path.write_text(text)
    return str(path)


def test_file_env_and_args_merge_with_args_winning(tmp_path: Path) -> None:
    _, secret_file = write_secret(tmp_path)
    path = _toml(
        tmp_path,
        f"""
address = "127.0.0.1:7001"
peers = ["127.0.0.1:7002", "127.0.0.1:7003"]
data_dir = "{tmp_path / "data"}"
secret_file = "{secret_file}"
session_timeout = 4
durability = "fsync"
observer = false
[[default_acl]]
perms = 31
scheme = "world"
id = "anyone"
[raft_timing]
heartbeat_s = 0.05
election_timeout_min_s = 0.5
election_timeout_max_s = 1.0
leader_fallback_s = 0.4
""",
    )
    env = {"COORD_SESSION_TIMEOUT": "6.5", "COORD_MAX_IN_FLIGHT": "77", "COORD_PEERS": "127.0.0.1:8002,127.0.0.1:8003"}
    config = load_run_config(path, args={"session_timeout": "8", "peers": None}, environ=env)
    kwargs = config.coordinator_kwargs(environ={})
    assert kwargs["address"] == "127.0.0.1:7001"
    assert kwargs["peers"] == ["127.0.0.1:8002", "127.0.0.1:8003"]  # env beats file
    assert kwargs["session_timeout"] == 8.0  # args beat env and file
    assert kwargs["max_in_flight"] == 77
    assert kwargs["durability"] == "fsync"
    assert kwargs["raft_timing"] == RaftTiming(
        heartbeat_s=0.05, election_timeout_min_s=0.5, election_timeout_max_s=1.0, leader_fallback_s=0.4
    )
    assert kwargs["secret"] == secret_file.read_text().strip().encode()
    assert kwargs["default_acl"] == [(31, "world", "anyone")]
    assert "secret_file" not in kwargs
    assert config.sources == {
        "address": "file",
        "peers": "env",
        "data_dir": "file",
        "secret_file": "file",
        "session_timeout": "args",
        "durability": "file",
        "observer": "file",
        "raft_timing": "file",
        "max_in_flight": "env",
        "default_acl": "file",
    }
    Coordinator(**kwargs)  # every key is a real constructor parameter (not started)


def test_env_only_config_with_secret_from_environment() -> None:
    secret = "k" * 8 + "0123456789abcdefghijklmnopqrstuvwxyz"
    env = {
        "COORD_ADDRESS": "127.0.0.1:7001",
        "COORD_PEERS": "127.0.0.1:7002",
        "COORD_OBSERVER": "yes",
        "COORD_SECRET": secret,
        "COORD_STATUS_INTERVAL": "0",
    }
    config = load_run_config(environ=env)
    kwargs = config.coordinator_kwargs(environ=env)
    assert kwargs["observer"] is True and kwargs["secret"] == secret.encode()
    assert config.get("status_interval") == 0.0 and config.get("stop_timeout") == 15.0


@pytest.mark.parametrize(
    ("text", "env", "args", "message"),
    [
        ('address = "127.0.0.1:7001"\nsesion_timeout = 3\n', {}, {}, "unknown key(s) sesion_timeout"),
        ('address = "127.0.0.1:7001"\nsecret = "abc"\n', {}, {}, "does not belong in a config file"),
        ('address = "127.0.0.1:7001"\nsession_timeout = "soon"\n', {}, {}, "session_timeout"),
        ('address = "127.0.0.1:7001"\npeers = "127.0.0.1:7002"\n', {}, {}, None),  # a string list is fine
        ('address = "127.0.0.1:7001"\n', {"COORD_OBSERVER": "perhaps"}, {}, "COORD_OBSERVER"),
        ('address = "127.0.0.1:7001"\n', {"COORD_MAX_IN_FLIGHT": "1.5"}, {}, "integer"),
        ('address = "nowhere"\n', {}, {}, "host:port"),
        ('address = "127.0.0.1:7001"\n[raft_timing]\nheartbeat = 1\n', {}, {}, "unknown raft_timing key(s) heartbeat"),
        ('address = "127.0.0.1:7001"\n', {}, {"secret": "x" * 40}, "never given on the command line"),
        ("address = [\n", {}, {}, "not valid TOML"),
        ('address = "127.0.0.1:7001"\nlog_level = "LOUD"\n', {}, {}, "log_level"),
        (
            'address = "127.0.0.1:7001"\n[[default_acl]]\nperms = 99\nscheme = "world"\nid = "anyone"\n',
            {},
            {},
            "default_acl",
        ),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_message(
    tmp_path: Path, text: str, env: dict[str, str], args: dict[str, str], message: str | None
) -> None:
    path = _toml(tmp_path, text)
    if message is None:
        assert load_run_config(path, environ=env, args=args).get("peers") == ["127.0.0.1:7002"]
        return
    with pytest.raises(ConfigurationError) as info:
        load_run_config(path, environ=env, args=args).coordinator_kwargs(environ={})
    assert message in str(info.value)


def test_missing_address_and_unreadable_secret_file_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no address"):
        load_run_config(environ={}).coordinator_kwargs(environ={})
    config = load_run_config(environ={"COORD_ADDRESS": "127.0.0.1:7001", "COORD_SECRET_FILE": str(tmp_path / "x")})
    with pytest.raises(ConfigurationError, match="cannot read secret_file"):
        config.coordinator_kwargs(environ={"COORD_SECRET_FILE": str(tmp_path / "x")})


def test_every_coordinator_parameter_is_configurable() -> None:
    """A new Coordinator parameter must be added to coord.cli.config.KEYS
    (or deliberately excluded here) so `coord run` can set it."""
    excluded = {"self", "secret", "network_faults"}
    params = set(inspect.signature(Coordinator.__init__).parameters) - excluded
    assert params <= {key.name for key in KEYS}, sorted(params - {key.name for key in KEYS})


def test_secret_on_the_command_line_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "--address", "127.0.0.1:7001", "--secret", "s3cret"])
    assert info.value.code == 2
    assert "never given on the command line" in capsys.readouterr().err


def test_run_check_prints_the_resolved_configuration(tmp_path: Path) -> None:
    _, secret_file = write_secret(tmp_path)
    path = _toml(tmp_path, f'address = "127.0.0.1:7001"\npeers = ["127.0.0.1:7002"]\nsecret_file = "{secret_file}"\n')
    done = coord_cli(
        "run", "--config", path, "--check", "--session-timeout", "3", env={"COORD_DURABILITY": "process-crash"}
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["values"]["session_timeout"] == 3.0 and report["sources"]["session_timeout"] == "args"
    assert report["sources"]["durability"] == "env" and report["values"]["address"] == "127.0.0.1:7001"
    assert secret_file.read_text().strip() not in done.stdout  # the secret itself is never printed
    bad = coord_cli("run", "--config", path, "--check", env={"COORD_SESSION_TIMEOUT": "x"})
    assert bad.returncode == 2 and "COORD_SESSION_TIMEOUT" in bad.stderr and "Traceback" not in bad.stderr
