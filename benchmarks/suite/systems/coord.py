"""coord: three ``coord.local_cluster`` member processes, each with a
``data_dir`` and the default durability (``process-crash``: journal kept,
not fsynced), secret on.  The caller is the member itself: a figure is the
in-process Coordinator call (no RPC in it)."""

from __future__ import annotations

import time
from typing import Any

from coord.local_cluster import LOOPBACK, LocalCluster, MemberProcess, RpcProcess, free_ports, wait_until

from . import System, stop_quietly


class CoordSystem(System):
    name = "coord"
    includes = (
        "in-process Coordinator call inside a member "
        "(Raft round trip, AES-GCM peer transport, group commit, apply, hand-offs)"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cluster: LocalCluster | None = None
        self.extra: list[MemberProcess] = []

    def start(self) -> None:
        self.cluster = LocalCluster(3, data_root=self.tmp / "data", secret=self.secret,
                                    log_dir=self.log_dir / "coord", start_timeout=60.0, log_level="WARNING")
        self.cluster.start()

    def stop(self) -> None:
        for m in self.extra:
            stop_quietly(m)
        if self.cluster is not None:
            self.cluster.stop()

    @property
    def c(self) -> LocalCluster:
        assert self.cluster is not None
        return self.cluster

    def leader_index(self, timeout: float = 30.0) -> int:
        return self.c.members.index(self.c.leader(timeout))

    def is_up(self, i: int) -> bool:
        return self.c.members[i].ready

    def caller(self, i: int) -> RpcProcess:
        return self.c.members[i]

    def server_pid(self, i: int) -> int | None:
        return self.c.members[i].pid

    def kill(self, i: int) -> float:
        return self.c.members[i].kill()

    def stop_member(self, i: int) -> None:
        self.c.members[i].stop()

    def restart(self, i: int, timeout: float = 120.0) -> float:
        t0 = time.monotonic()
        self.c.members[i].restart(timeout)
        return time.monotonic() - t0

    def snapshot(self) -> dict[str, Any] | None:
        lead = self.c.members[self.leader_index()]
        return dict(lead.call("bench_snapshot", timeout=600.0))

    def catch_up_new(self, timeout: float = 300.0) -> dict[str, Any] | None:
        """A fourth voter, empty, added with ``add_member``;
        time from the add until its replica holds the leader's zxid."""
        lead = self.c.members[self.leader_index()]
        address = f"{LOOPBACK}:{free_ports(1)[0]}"
        data_dir = self.tmp / "data" / "new-member"
        data_dir.mkdir(parents=True, exist_ok=True)
        m = MemberProcess(address, self.c.addresses, data_dir=data_dir, secret=self.secret, name="member-new",
                          log_path=self.log_dir / "coord" / "member-new.log", start_timeout=timeout,
                          log_level="WARNING", options={"join": True})
        self.extra.append(m)
        # The leader refuses a change unless it reaches a quorum of the new
        # configuration without the newcomer: wait until it sees every voter.
        wait_until(lambda: all(lead.status()["peers_connected"].values()), 60.0, what="all voters connected")
        target = int(lead.status()["zxid"])
        t0 = time.monotonic()
        m.spawn()
        lead.call("bench_add_member", address, timeout=120.0)
        m.wait_ready(timeout)

        def caught_up() -> bool:
            return int(m.status(timeout=10.0)["zxid"]) >= target

        wait_until(caught_up, timeout, interval=0.05, what="new member caught up")
        return {"seconds": time.monotonic() - t0, "how": "add_member of an empty 4th voter"}
