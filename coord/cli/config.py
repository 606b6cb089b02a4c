"""``coord run``'s configuration: a TOML file, ``COORD_*`` environment
variables and command-line arguments, merged in that order (arguments win
over the environment, which wins over the file).

Every key is a ``Coordinator`` parameter (same name, same meaning) or one
of the few process options below; an unknown key in the file is an error
that names it. The cluster secret never comes from the command line or the
file itself: ``secret_file`` (a 0600 file holding it) or ``$COORD_SECRET``.

>>> cfg = load_run_config("member.toml", environ={"COORD_SESSION_TIMEOUT": "5"})   # doctest: +SKIP
>>> Coordinator(**cfg.coordinator_kwargs())                                        # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from typing import Any

from coord.errors import ConfigurationError
from coord.security import SECRET_ENV_VAR, load_secret, split_address

#: Environment variable naming the TOML file (instead of ``--config``).
CONFIG_ENV_VAR = "COORD_CONFIG"
SECRET_FILE_ENV_VAR = "COORD_SECRET_FILE"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclasses.dataclass(frozen=True)
class Key:
    """One configuration key: its type and where it may come from."""

    name: str
    kind: str  # "str" | "float" | "int" | "bool" | "addresses" | "table" | "acl"
    help: str
    #: A ``Coordinator`` keyword (else a process option of ``coord run``).
    coordinator: bool = True
    #: Settable from the environment and the command line (tables: file only).
    flat: bool = True

    @property
    def env(self) -> str:
        return f"COORD_{self.name.upper()}"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


KEYS: tuple[Key, ...] = (
    Key("address", "str", "this member's Raft address, host:port (required)"),
    Key("peers", "addresses", "the other voters, host:port (TOML: a list; env/args: comma-separated)"),
    Key("data_dir", "str", "directory for the Raft journal and snapshots (mode 0700; omit: in memory)"),
    Key("secret_file", "str", "file holding the cluster secret (else $COORD_SECRET)"),
    Key("durability", "str", '"process-crash" (default) or "fsync"'),
    Key("session_timeout", "float", "seconds before the leader expires a silent member's session"),
    Key("request_timeout", "float", "default deadline of every write, seconds"),
    Key("max_data_bytes", "int", "largest znode value in bytes"),
    Key("max_in_flight", "int", "writes this member may have outstanding"),
    Key("wait_for_slot", "bool", "wait for a free in-flight slot (default) or fail fast with TooManyRequestsError"),
    Key("snapshot_entries", "int", "snapshot and truncate the Raft log after this many entries"),
    Key("reap_interval", "float", "seconds between the leader's container/TTL reaping scans"),
    Key("max_watch_queue", "int", "undelivered events a persistent watch may queue"),
    Key("observer", "bool", "join as a non-voting observer (peers = the voters)"),
    Key("join", "bool", "a NEW voter being added to a running cluster with add_member"),
    Key("zk_address", "str", "host:port to serve ZooKeeper's client protocol on (omit: none)"),
    Key("metrics_address", "str", "host:port to serve Prometheus /metrics on (omit: none)"),
    Key("metrics_allow_remote", "bool", "allow a non-loopback metrics_address"),
    Key("super_digest", "str", "ZooKeeper-style super user digest, 'super:<base64 sha1>'"),
    Key(
        "default_acl", "acl", "ACL of nodes created without one: [[default_acl]] perms/scheme/id, TOML only", flat=False
    ),
    Key("raft_timing", "table", "Raft timers (RaftTiming fields), TOML table only", flat=False),
    Key("zk_options", "table", "options of the ZooKeeper endpoint, TOML table only", flat=False),
    Key("start_timeout", "float", "seconds to wait for a leader and the session at start", coordinator=False),
    Key("stop_timeout", "float", "seconds to wait for a clean stop", coordinator=False),
    Key("status_interval", "float", "seconds between status log lines (0: none)", coordinator=False),
    Key("log_level", "str", "DEBUG, INFO, WARNING or ERROR", coordinator=False),
)
KEYS_BY_NAME = {key.name: key for key in KEYS}

#: Values ``coord run`` uses when nothing sets a process option.
PROCESS_DEFAULTS: dict[str, Any] = {
    "start_timeout": 60.0,
    "stop_timeout": 15.0,
    "status_interval": 60.0,
    "log_level": "INFO",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def supported_keys() -> list[Key]:
    """The keys this ``coord`` accepts: every process option and the
    ``Coordinator`` parameters this installation's ``Coordinator`` has."""
    import inspect

    from coord import Coordinator

    params = set(inspect.signature(Coordinator.__init__).parameters)
    return [key for key in KEYS if not key.coordinator or key.name in params]


def _parse(key: Key, value: Any, source: str) -> Any:
    """``value`` (a TOML value, or a string from env/args) as ``key``'s type."""
    where = f"{key.name} (from {source})"
    if key.kind == "table":
        if not isinstance(value, dict):
            raise ConfigurationError(f"{where} must be a TOML table, got {type(value).__name__}")
        return dict(value)
    if key.kind == "acl":
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigurationError(f"{where} must be an array of tables ([[default_acl]] perms, scheme, id)")
        from coord.acl import canonical_acl

        triples = []
        for entry in value:
            if set(entry) != {"perms", "scheme", "id"}:
                raise ConfigurationError(f"{where}: each entry needs exactly perms, scheme and id, got {sorted(entry)}")
            triples.append((entry["perms"], entry["scheme"], entry["id"]))
        try:
            return list(canonical_acl(triples))
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
    if key.kind == "addresses":
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigurationError(f"{where} must be a list of 'host:port' strings")
        for address in value:
            split_address(address)
        return value
    if key.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigurationError(f"{where} must be a boolean (true/false, 1/0), got {value!r}")
    if key.kind in ("int", "float"):
        if isinstance(value, bool):
            raise ConfigurationError(f"{where} must be a number, got {value!r}")
        convert: Callable[[Any], Any] = int if key.kind == "int" else float
        if isinstance(value, str) or (key.kind == "float" and isinstance(value, int)):
            try:
                value = convert(value)
            except ValueError:
                raise ConfigurationError(
                    f"{where} must be a{'n integer' if key.kind == 'int' else ' number'}, got {value!r}"
                ) from None
        if not isinstance(value, int if key.kind == "int" else float):
            raise ConfigurationError(
                f"{where} must be a{'n integer' if key.kind == 'int' else ' number'}, got {value!r}"
            )
        return value
    if not isinstance(value, str):
        raise ConfigurationError(f"{where} must be a string, got {value!r}")
    if key.name == "log_level":
        value = value.upper()
        if value not in LOG_LEVELS:
            raise ConfigurationError(f"{where} must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    if key.name == "address":
        split_address(value)
    return value


@dataclasses.dataclass
class RunConfig:
    """The merged configuration of one ``coord run`` member.

    ``values`` holds every key that some source set (parsed), ``sources``
    where each came from (``"file"``, ``"env"``, ``"args"``).
    """

    values: dict[str, Any]
    sources: dict[str, str]
    config_path: str | None = None

    def get(self, name: str) -> Any:
        """The value of ``name``, else its process default, else None."""
        return self.values.get(name, PROCESS_DEFAULTS.get(name))

    def coordinator_kwargs(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Keyword arguments for ``Coordinator(**kwargs)`` (``address``
        included). The secret is read here (``secret_file``, else
        ``$COORD_SECRET`` of ``environ``) and passed as ``secret``, so a bad
        or missing file fails now with a clear message.

        :raises ConfigurationError: no address, a bad secret or raft_timing.
        """
        environ = os.environ if environ is None else environ
        if "address" not in self.values:
            raise ConfigurationError(
                "no address: set `address` in the config file, $COORD_ADDRESS or --address (host:port)"
            )
        kwargs: dict[str, Any] = {}
        for name, value in self.values.items():
            key = KEYS_BY_NAME[name]
            if key.coordinator and name != "secret_file":
                kwargs[name] = value
        kwargs.setdefault("peers", [])
        if "raft_timing" in kwargs:
            from coord.replication import RaftTiming

            fields = {f.name for f in dataclasses.fields(RaftTiming)}
            unknown = sorted(set(kwargs["raft_timing"]) - fields)
            if unknown:
                raise ConfigurationError(
                    f"unknown raft_timing key(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}"
                )
            try:
                kwargs["raft_timing"] = RaftTiming(**{k: float(v) for k, v in kwargs["raft_timing"].items()})
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"raft_timing: {exc}") from None
        kwargs["secret"] = read_secret(self.values.get("secret_file"), environ)
        return kwargs

    def describe(self) -> dict[str, Any]:
        """The resolved configuration as JSON-able data (no secret), with
        each value's source: what ``coord run --check`` prints."""
        return {
            "config_file": self.config_path,
            "values": {name: self.get(name) for name in sorted({*self.values, *PROCESS_DEFAULTS})},
            "sources": dict(sorted(self.sources.items())),
        }


def read_secret(secret_file: str | None, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The cluster secret: ``secret_file``, else ``$COORD_SECRET_FILE``,
    else ``$COORD_SECRET`` (None if none is set). Warns when the file is
    readable by others; raises ``ConfigurationError`` for an unreadable,
    short or uniform secret."""
    import logging
    import stat

    environ = os.environ if environ is None else environ
    secret_file = secret_file or environ.get(SECRET_FILE_ENV_VAR) or None
    if secret_file is not None:
        try:
            mode = os.stat(secret_file).st_mode
        except OSError as exc:
            raise ConfigurationError(f"cannot read secret_file {secret_file!r}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logging.getLogger(__name__).warning(
                "secret file %s is accessible by group/others (mode %o); use chmod 600", secret_file, stat.S_IMODE(mode)
            )
        return load_secret(None, secret_file)
    value = environ.get(SECRET_ENV_VAR)
    return load_secret(value) if value else None


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path!r} is not valid TOML: {exc}") from None
    return data


def load_run_config(
    config_path: str | None = None,
    *,
    args: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunConfig:
    """Merge the TOML file (``config_path``, else ``$COORD_CONFIG``), the
    ``COORD_*`` variables of ``environ`` (default ``os.environ``) and
    ``args`` (key -> value; None values are ignored), later sources winning.

    :raises ConfigurationError: an unreadable or invalid file, an unknown
        key, a ``secret`` in the file or the args, or a badly typed value.
    """
    environ = os.environ if environ is None else environ
    keys = {key.name: key for key in supported_keys()}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    config_path = config_path or environ.get(CONFIG_ENV_VAR) or None
    if config_path is not None:
        data = _read_file(config_path)
        if "secret" in data:
            raise ConfigurationError(
                f"config file {config_path!r} holds `secret`: a secret does not belong in a config file; "
                f"put it in a file readable only by this service (chmod 600) and set secret_file, "
                f"or use ${SECRET_ENV_VAR}"
            )
        unknown = sorted(set(data) - set(keys))
        if unknown:
            raise ConfigurationError(
                f"config file {config_path!r}: unknown key(s) {', '.join(unknown)}; "
                f"valid keys: {', '.join(sorted(keys))}"
            )
        for name, value in data.items():
            values[name] = _parse(keys[name], value, f"{config_path}")
            sources[name] = "file"
    for key in keys.values():
        if key.flat and environ.get(key.env) not in (None, ""):
            values[key.name] = _parse(key, environ[key.env], f"${key.env}")
            sources[key.name] = "env"
    for name, value in (args or {}).items():
        if value is None:
            continue
        if name == "secret":
            raise ConfigurationError(
                "the secret is never given on the command line (other users can read it in the process "
                f"list): use --secret-file or ${SECRET_ENV_VAR}"
            )
        if name not in keys:
            raise ConfigurationError(f"unknown setting {name!r}")
        values[name] = _parse(keys[name], value, "args")
        sources[name] = "args"
    return RunConfig(values, sources, config_path)
