"""The cluster secret and the network rules a member checks before it binds.

pysyncobj unpickles whatever a peer sends; only the cluster secret stops an
unauthenticated peer from running code in every member: with a secret,
members talk over coord's authenticated transport (``coord.peer_crypto``:
a mutual handshake, then AES-GCM frames verified before anything is
unpickled). So coord fails closed: a member whose address or any peer is
not on loopback refuses to start without a secret, and a loopback-only
cluster without one runs with a loud warning (any local user could still
connect). The secret is a key, not a password: it is used directly as the
HKDF input key material, so it must be long and random to resist offline
guessing.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterable

from .errors import ConfigurationError

logger = logging.getLogger(__name__)

SECRET_ENV_VAR = "COORD_SECRET"
SECRET_MIN_BYTES = 32
_SECRET_MIN_DISTINCT_BYTES = 12
_GENERATE_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def split_address(address: object) -> tuple[str, int]:
    """``"host:port"`` -> (host, port), with a clear error for anything else."""
    if not isinstance(address, str) or ":" not in address:
        raise ConfigurationError(f"member address must be 'host:port', got {address!r}")
    host, _, port_text = address.rpartition(":")
    host = host.strip("[]")
    if not host:
        raise ConfigurationError(f"member address {address!r} has no host")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigurationError(f"member address {address!r} has a non-numeric port") from None
    if not 0 < port < 65536:
        raise ConfigurationError(f"member address {address!r} has port {port} outside 1-65535")
    return host, port


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; hostnames other than
    'localhost' count as non-loopback (what they resolve to can change)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_secret(secret: str | bytes | None = None, secret_file: str | None = None) -> bytes | None:
    """The cluster secret from the argument, else the file, else $COORD_SECRET.

    Raises ``ConfigurationError`` if it is too short or too uniform to be a
    random key. The value is never logged.
    """
    source = "argument"
    if secret is None and secret_file is not None:
        source = f"secret_file {secret_file!r}"
        try:
            with open(secret_file, "rb") as handle:
                secret = handle.read().strip()
        except OSError as exc:
            raise ConfigurationError(f"cannot read {source}: {exc.strerror}") from None
    if secret is None and os.environ.get(SECRET_ENV_VAR):
        source = f"${SECRET_ENV_VAR}"
        secret = os.environ[SECRET_ENV_VAR]
    if secret is None:
        return None
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not isinstance(secret, bytes):
        raise ConfigurationError(f"secret must be str or bytes, got {type(secret).__name__}")
    if len(secret) < SECRET_MIN_BYTES:
        raise ConfigurationError(
            f"the cluster secret from the {source} is {len(secret)} bytes; "
            f"at least {SECRET_MIN_BYTES} random bytes are required ({_GENERATE_HINT})"
        )
    if len(set(secret)) < _SECRET_MIN_DISTINCT_BYTES:
        raise ConfigurationError(
            f"the cluster secret from the {source} is too uniform to be a random key ({_GENERATE_HINT})"
        )
    return secret


def check_network_exposure(
    address: str, peers: Iterable[str], secret: bytes | None, zk_address: str | None = None
) -> None:
    """Refuse a non-loopback cluster without a secret; warn on a loopback one.

    A ZooKeeper endpoint counts too: its session passwords are keyed by the
    secret, so without one anybody who can reach the port could take over
    any session."""
    exposed = [a for a in [address, *peers] if not is_loopback_host(split_address(a)[0])]
    if secret is not None:
        return
    if zk_address is not None and not is_loopback_host(split_address(zk_address)[0]):
        raise ConfigurationError(
            f"refusing to start: the ZooKeeper endpoint {zk_address} is not a loopback address and no "
            f"cluster secret is set. Its session passwords are keyed by the secret; without one any "
            f"client that can reach the port could take over another client's session. Pass "
            f"secret=..., secret_file=... or set ${SECRET_ENV_VAR} ({_GENERATE_HINT})."
        )
    if exposed:
        raise ConfigurationError(
            f"refusing to start: {', '.join(exposed)} is not a loopback address and no cluster "
            f"secret is set. Without a secret any host that can reach the Raft port can run code "
            f"in this process. Pass secret=..., secret_file=... or set ${SECRET_ENV_VAR} "
            f"({_GENERATE_HINT})."
        )
    logger.warning(
        "coord member %s runs WITHOUT a cluster secret: peer traffic is neither encrypted nor "
        "authenticated, and any local user can connect to its Raft port. Set a secret for "
        "anything but a local experiment.",
        address,
    )
