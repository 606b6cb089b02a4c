"""``coord run``: one long-lived member in the foreground, configured by
arguments, ``COORD_*`` environment variables and/or a TOML file (see
:mod:`coord.cli.config`), the way a service manager (systemd) runs it.

It logs to stderr, logs a status line every ``status_interval`` seconds,
and stops cleanly on SIGTERM or Ctrl-C: its session is closed (so its
ephemerals go at once) before the process exits 0. ``coord member`` is the
older name of the same command.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Mapping
from types import FrameType
from typing import Any

from coord import errors

from ._common import error, one_line
from .config import KEYS, load_run_config

logger = logging.getLogger("coord.cli.run")


class _RefuseSecret(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            "the secret is never given on the command line (other users can read it in the process "
            "list): use --secret-file FILE or $COORD_SECRET"
        )


def add_parser(sub: Any) -> None:
    """The ``run`` subcommand (and its older alias ``member``)."""
    for name in ("run", "member"):
        parser = sub.add_parser(
            name,
            help="run one member in the foreground (config from args, $COORD_*, a TOML file)"
            if name == "run"
            else "alias of `run`",
            description="Run one coord member in the foreground. Settings come from --config FILE (TOML), "
            "COORD_* environment variables and these arguments; arguments win over the environment, "
            "which wins over the file.",
        )
        parser.add_argument("--config", default=None, help="TOML config file (default: $COORD_CONFIG)")
        parser.add_argument(
            "--check",
            action="store_true",
            help="validate the configuration, print it as JSON (secret omitted) and exit",
        )
        for key in KEYS:
            if not key.flat:
                continue
            help_text = f"{key.help} [{key.env}]"
            if key.kind == "bool":
                parser.add_argument(
                    key.flag, dest=key.name, action=argparse.BooleanOptionalAction, default=None, help=help_text
                )
            else:
                parser.add_argument(key.flag, dest=key.name, default=None, metavar=key.name.upper(), help=help_text)
        parser.add_argument("--secret", nargs="?", action=_RefuseSecret, help=argparse.SUPPRESS)
        parser.set_defaults(handler=main, default_log_level=None)


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {key.name: getattr(args, key.name, None) for key in KEYS if key.flat}


def main(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Run the member until SIGTERM/SIGINT; 0 after a clean stop, 1 if it
    failed, 2 for a bad configuration."""
    try:
        config = load_run_config(args.config, args=_settings(args), environ=environ)
        kwargs = config.coordinator_kwargs(environ)
    except errors.ConfigurationError as exc:
        error(str(exc))
        return 2
    if args.check:
        print(json.dumps(config.describe(), indent=2, sort_keys=True))
        return 0
    if not args.verbose:
        logging.getLogger().setLevel(config.get("log_level"))
    from coord import Coordinator

    start_timeout = float(config.get("start_timeout"))
    stop_timeout = float(config.get("stop_timeout"))
    status_interval = float(config.get("status_interval"))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        member = Coordinator(**kwargs)
    except (errors.CoordError, ValueError, TypeError) as exc:
        error(one_line(exc))
        return 2
    member.add_listener(lambda state: logger.info("session state: %s", state))
    code = 0
    try:
        logger.info(
            "starting member %s (peers %s, data_dir %s%s)",
            kwargs["address"],
            kwargs["peers"],
            kwargs.get("data_dir"),
            ", observer" if kwargs.get("observer") else "",
        )
        # Start in a helper thread so a signal during a long start still stops it.
        started = threading.Event()
        failure: list[BaseException] = []

        def start() -> None:
            try:
                member.start(timeout=start_timeout)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failure.append(exc)
            finally:
                started.set()

        threading.Thread(target=start, name="member-start", daemon=True).start()
        deadline = time.monotonic() + start_timeout + 5.0
        while not started.wait(0.2) and not stop.is_set() and time.monotonic() < deadline:
            pass
        if failure:
            raise failure[0]
        if not started.is_set():
            if not stop.is_set():
                logger.error("member did not start within %.1fs", start_timeout)
                code = 1
            return code
        logger.info("member %s ready (session 0x%x); SIGTERM or Ctrl-C stops it", kwargs["address"], member.session_id)
        print(f"coord member {kwargs['address']} ready", file=sys.stderr, flush=True)
        while not stop.wait(status_interval if status_interval > 0 else 3600.0):
            if status_interval <= 0:
                continue
            try:
                logger.info("status: %s", _status_line(member.status().to_dict()))
            except errors.CoordError as exc:
                logger.warning("status unavailable: %s", exc)
    except errors.CoordError as exc:
        logger.error("member failed: %s", one_line(exc))
        code = 1
    finally:
        code = _stop_member(member, stop_timeout, code)
    return code


def _stop_member(member: Any, stop_timeout: float, code: int) -> int:
    logger.info("stopping member %s", member.address)
    done = threading.Event()

    def stop_member() -> None:
        try:
            member.stop()
        except Exception:  # noqa: BLE001 - logged, exiting anyway
            logger.exception("error while stopping")
        finally:
            done.set()

    threading.Thread(target=stop_member, name="member-stop", daemon=True).start()
    if not done.wait(stop_timeout):
        logger.warning("stop did not finish within %.1fs; exiting anyway", stop_timeout)
        return code or 3
    logger.info("stopped")
    return code


def _status_line(status: dict[str, Any]) -> str:
    """One compact log line from ``MemberStatus.to_dict()``."""
    fields = (
        "role",
        "leader",
        "term",
        "zxid",
        "commit_index",
        "last_applied",
        "session_state",
        "has_quorum",
        "znode_count",
        "sessions",
        "requests_in_flight",
    )
    parts = [f"{k}={status[k]}" for k in fields if k in status]
    peers = status.get("peers_connected")
    if isinstance(peers, dict):
        parts.append(f"peers_connected={sum(1 for v in peers.values() if v)}/{len(peers)}")
    return " ".join(parts)
