"""Real TCP partitions between network namespaces (root only).

Topology (everything lives in namespaces created here; the host's own
network namespace, routes and firewall are never touched)::

    <prefix>-n1 (eth0 10.77.0.1/24) --veth-- p1 \\
    <prefix>-n2 (eth0 10.77.0.2/24) --veth-- p2  }-- br0 in namespace <prefix>-hub
    <prefix>-nN (eth0 10.77.0.N/24) --veth-- pN /    (the bridge has no address)

Faults:

* :meth:`NetnsTopology.isolate` takes node i's hub port down: TCP just
  stalls (no RST) and resumes on :meth:`heal` - a partition, not a crash;
* :meth:`cut_oneway` / :meth:`cut_pair` add nft ``bridge`` rules in the hub
  (``nft`` must be installed: ``apt-get install -y nftables``; a one-way TCP
  cut fails both ways for new connections, since the handshake needs both);
* :meth:`heal_all` brings every port up and drops the nft table.

``tc netem`` (latency, loss) is not available on the reference kernel, so
there is no latency fault here. Members run inside node namespaces through
:meth:`exec_prefix` (``ip netns exec`` execs, so the pid stays the member's
and SIGKILL/SIGSTOP reach it). :func:`probe` tells whether this machine can
do it at all; callers skip with its reason when it cannot.

Checked on Debian 12, kernel 6.18, iproute2 6.1, nftables 1.0.6 (see
docs/reliability notes, section 4).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from typing import Self

logger = logging.getLogger(__name__)

SUBNET = "10.77.0"
NFT_TABLE = "coordpart"
NFT_CHAIN = "part"  # NB: 'fwd' is an nft keyword


class NetnsUnavailable(RuntimeError):
    """This machine (or user) cannot build the namespaces; ``str()`` says why."""


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    logger.debug("netns: %s", " ".join(argv))
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, list(argv), proc.stdout, proc.stderr)
    return proc


def probe(need_nft: bool = False) -> str | None:
    """None if namespaces can be used here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    if need_nft and shutil.which("nft") is None:
        return "nft is not installed (apt-get install -y nftables)"
    name = f"coordprobe-{uuid.uuid4().hex[:8]}"
    try:
        proc = _run(["ip", "netns", "add", name], check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"'ip netns add' failed: {exc}"
    if proc.returncode != 0:
        return f"'ip netns add' failed: {proc.stderr.strip() or proc.returncode}"
    _run(["ip", "netns", "del", name], check=False)
    return None


class NetnsTopology:
    """``n`` node namespaces on one bridge; node indexes are 1-based."""

    def __init__(self, n: int, prefix: str | None = None, subnet: str = SUBNET) -> None:
        if not 1 <= n <= 50:
            raise ValueError(f"n must be in 1..50, got {n}")
        self.n = n
        self.prefix = prefix or f"coordj{os.getpid() % 100000}"
        self.subnet = subnet
        self.hub = f"{self.prefix}-hub"
        self._up = False
        self._nft = False

    # -- names -------------------------------------------------------------

    def ns(self, i: int) -> str:
        self._check(i)
        return f"{self.prefix}-n{i}"

    def host(self, i: int) -> str:
        """Node i's address (10.77.0.i)."""
        self._check(i)
        return f"{self.subnet}.{i}"

    def exec_prefix(self, i: int) -> list[str]:
        """Command prefix that runs a program inside node i's namespace."""
        return ["ip", "netns", "exec", self.ns(i)]

    def _check(self, i: int) -> None:
        if not 1 <= i <= self.n:
            raise ValueError(f"node index {i} outside 1..{self.n}")

    # -- lifecycle ---------------------------------------------------------

    def up(self) -> Self:
        """Create the hub and the node namespaces (raises NetnsUnavailable)."""
        reason = probe()
        if reason is not None:
            raise NetnsUnavailable(reason)
        if self._existing():
            raise NetnsUnavailable(f"namespaces with prefix {self.prefix}- already exist; remove them first")
        try:
            _run(["ip", "netns", "add", self.hub])
            self._up = True
            _run(["ip", "-n", self.hub, "link", "set", "lo", "up"])
            _run(["ip", "-n", self.hub, "link", "add", "br0", "type", "bridge"])
            _run(["ip", "-n", self.hub, "link", "set", "br0", "up"])
            for i in range(1, self.n + 1):
                ns = self.ns(i)
                _run(["ip", "netns", "add", ns])
                _run(["ip", "-n", ns, "link", "set", "lo", "up"])
                _run(["ip", "-n", self.hub, "link", "add", f"p{i}", "type", "veth", "peer", "name", "eth0",
                      "netns", ns])
                _run(["ip", "-n", self.hub, "link", "set", f"p{i}", "master", "br0"])
                _run(["ip", "-n", self.hub, "link", "set", f"p{i}", "up"])
                _run(["ip", "-n", ns, "addr", "add", f"{self.host(i)}/24", "dev", "eth0"])
                _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as exc:
            self.down()
            detail = getattr(exc, "stderr", "") or str(exc)
            raise NetnsUnavailable(f"building the namespaces failed: {detail.strip()}") from None
        logger.info("netns: %d nodes %s.1-%s.%d (hub %s)", self.n, self.subnet, self.subnet, self.n, self.hub)
        return self

    def _existing(self) -> list[str]:
        proc = _run(["ip", "netns", "list"], check=False)
        names = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
        mine = {self.hub} | {f"{self.prefix}-n{i}" for i in range(1, 51)}
        return [name for name in names if name in mine]

    def down(self) -> None:
        """Delete every namespace of this topology (stop the processes
        inside first: ``ip netns pids`` lists them)."""
        for name in self._existing():
            pids = _run(["ip", "netns", "pids", name], check=False).stdout.split()
            if pids:
                logger.warning("netns: processes still in %s: %s", name, " ".join(pids))
            _run(["ip", "netns", "del", name], check=False)
        self._up = False
        self._nft = False

    def __enter__(self) -> Self:
        return self.up()

    def __exit__(self, *exc_info: object) -> None:
        self.down()

    # -- faults ------------------------------------------------------------

    def isolate(self, i: int) -> None:
        """Cut node i off from everyone (its hub port goes down)."""
        _run(["ip", "-n", self.hub, "link", "set", f"p{i}", "down"])

    def heal(self, i: int) -> None:
        """Undo :meth:`isolate` for node i."""
        _run(["ip", "-n", self.hub, "link", "set", f"p{i}", "up"])

    def _nft_hub(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["ip", "netns", "exec", self.hub, "nft", *args], check=check)

    def _ensure_table(self) -> None:
        if shutil.which("nft") is None:
            raise NetnsUnavailable("nft is not installed (apt-get install -y nftables)")
        if self._nft_hub("list", "table", "bridge", NFT_TABLE, check=False).returncode != 0:
            self._nft_hub("add", "table", "bridge", NFT_TABLE)
            self._nft_hub("add", "chain", "bridge", NFT_TABLE, NFT_CHAIN,
                          "{ type filter hook forward priority 0; policy accept; }")
        self._nft = True

    def cut_oneway(self, src: int, dst: int) -> None:
        """Drop packets from node ``src`` to node ``dst`` only."""
        self._ensure_table()
        self._nft_hub("add", "rule", "bridge", NFT_TABLE, NFT_CHAIN, "ip", "saddr", self.host(src),
                      "ip", "daddr", self.host(dst), "drop")

    def cut_pair(self, i: int, j: int) -> None:
        """Drop traffic between nodes i and j, both ways."""
        self.cut_oneway(i, j)
        self.cut_oneway(j, i)

    def heal_all(self) -> None:
        """Every hub port up, every nft rule gone."""
        for i in range(1, self.n + 1):
            _run(["ip", "-n", self.hub, "link", "set", f"p{i}", "up"], check=False)
        if shutil.which("nft") is not None and \
                self._nft_hub("list", "table", "bridge", NFT_TABLE, check=False).returncode == 0:
            self._nft_hub("delete", "table", "bridge", NFT_TABLE, check=False)
        self._nft = False

    def can_cut_pairs(self) -> bool:
        return shutil.which("nft") is not None


__all__ = ["SUBNET", "NetnsTopology", "NetnsUnavailable", "probe"]
