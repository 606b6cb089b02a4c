"""What the client commands (``status``, ``shell``, ``dump``, ``load``)
share: finding the voters and the secret, joining as an observer, and
printing errors as one line."""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from collections.abc import Mapping
from typing import Any

from coord.errors import ConfigurationError
from coord.security import is_loopback_host, split_address

from .config import load_run_config

PEERS_HELP = "the voters, comma-separated host:port (default: $COORD_PEERS, or the --config file's address and peers)"


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--peers``, ``--secret-file``, ``--timeout``."""
    parser.add_argument(
        "--config",
        default=None,
        help="a member's TOML config (as for `coord run`): its address and peers name the voters, "
        "its secret_file holds the secret (default: $COORD_CONFIG)",
    )
    parser.add_argument("--peers", "--members", dest="peers", default=None, help=PEERS_HELP)
    parser.add_argument(
        "--secret-file",
        default=None,
        help="file holding the cluster secret (default: $COORD_SECRET_FILE, $COORD_SECRET)",
    )
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the cluster (default 15)")
    parser.add_argument(
        "--zk",
        default=None,
        metavar="HOST:PORT[,...]",
        help="talk to members' ZooKeeper endpoints (their zk_address) with kazoo instead of joining as an observer "
        "(no secret needed; needs `pip install kazoo`)",
    )
    parser.add_argument(
        "--zk-auth",
        default=None,
        metavar="SCHEME:CREDENTIAL",
        help="with --zk: add this auth to the session, e.g. digest:user:password",
    )


def one_line(exc: BaseException) -> str:
    """An exception as one line: ``NoNodeError: /a``."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def resolve_cluster(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> tuple[list[str], bytes | None]:
    """The voters' addresses and the secret from ``--peers``/``--config``/
    ``--secret-file`` and the ``COORD_*`` environment.

    ``--peers`` (or ``$COORD_PEERS`` without ``--config``) is the whole
    voter list; a config file contributes its ``address`` (unless it is an
    observer's) and its ``peers``.

    :raises ConfigurationError: no voters, a bad address, a bad secret.
    """
    environ = os.environ if environ is None else environ
    config = load_run_config(args.config, environ=environ, args={"peers": args.peers, "secret_file": args.secret_file})
    peers = list(config.get("peers") or [])
    if args.peers is None and config.config_path is not None and not config.get("observer"):
        address = config.get("address")
        if address is not None and address not in peers:
            peers.insert(0, address)
    if not peers:
        raise ConfigurationError("no members given: use --peers host:port,... , $COORD_PEERS or --config FILE")
    for address in peers:
        split_address(address)
    from .config import read_secret

    return peers, read_secret(config.get("secret_file"), environ)


def observer_name(voters: list[str], name: str | None = None) -> str:
    """A name for a CLI observer: ``name``, else this host and a random port
    (an observer listens on nothing; the port only keeps names unique)."""
    if name:
        split_address(name)
        return name
    port = 20000 + secrets.randbelow(40000)
    loopback = all(is_loopback_host(split_address(v)[0]) for v in voters)
    return f"127.0.0.1:{port}" if loopback else f"{socket.gethostname()}:{port}"


def join_observer(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Any:
    """A started ``Coordinator`` observer of the cluster ``args`` names.

    :raises CoordError: no leader within ``--timeout`` or a bad configuration.
    """
    from coord import Coordinator

    voters, secret = resolve_cluster(args, environ)
    member = Coordinator(observer_name(voters, getattr(args, "name", None)), peers=voters, observer=True, secret=secret)
    try:
        member.start(timeout=args.timeout)
    except BaseException:
        member.stop()
        raise
    return member


def connect(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Any:
    """A started client for the shell, dump and load: a kazoo client on
    ``--zk`` endpoints, else an observer member (``join_observer``). Both
    have kazoo's API and ``stop()``.

    :raises CoordError: cannot connect or join within ``--timeout``.
    """
    if getattr(args, "zk", None):
        from ._kazoo import KazooBackend

        try:
            return KazooBackend(args.zk, args.timeout, getattr(args, "zk_auth", None))
        except Exception as exc:
            if isinstance(exc, ConfigurationError):
                raise
            raise ConfigurationError(f"cannot connect to {args.zk}: {one_line(exc)}") from None
    return join_observer(args, environ)


def error(message: str) -> None:
    """Print ``coord: message`` to stderr."""
    print(f"coord: {message}", file=sys.stderr, flush=True)
