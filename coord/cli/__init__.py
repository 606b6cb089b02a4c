"""The ``coord`` command line (``python -m coord`` or the ``coord`` script).

``demo``
    The README's one-command local cluster: three member processes, a
    narrated leader kill and failover (:mod:`coord.cli.demo`).
``run`` (alias ``member``)
    One member in the foreground from arguments, ``COORD_*`` environment
    variables or a TOML file; SIGTERM stops it cleanly (:mod:`coord.cli.run`,
    :mod:`coord.cli.config`).
``status``
    Every member's role, term, commit/applied index, zxid, lag, sessions and
    znode count, as a table or ``--json`` (:mod:`coord.cli.status`).
``shell``
    An interactive shell (ls, tree, get, stat, create, set, delete, watch,
    lock, sync) with history and completion; joins as an observer
    (:mod:`coord.cli.shell`).
``dump`` / ``load``
    A subtree to JSON and back (:mod:`coord.cli.dump`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import demo, dump, run, shell, status

# The demo's entry points, kept importable from here as before the split.
from .demo import run_demo

__all__ = ["build_parser", "main", "run_demo"]


def build_parser() -> argparse.ArgumentParser:
    """The ``coord`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="coord", description="coord: embeddable ZooKeeper-like coordination.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_parser(sub)
    run.add_parser(sub)
    status.add_parser(sub)
    shell.add_parser(sub)
    dump.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``coord`` / ``python -m coord`` entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    level_name = "DEBUG" if args.verbose else (args.default_log_level or "INFO")
    logging.basicConfig(
        level=getattr(logging, level_name), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
