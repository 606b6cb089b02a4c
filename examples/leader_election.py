#!/usr/bin/env python3
"""Leader election failover: at most one leader at a time, tokens increase.

Three coord members run as separate processes on 127.0.0.1 (via
``coord.local_cluster``); each runs kazoo's ``Election`` recipe
(``member.Election(path, identifier)``) inside its own process. The leader
does its "work": every 0.25 s it writes a heartbeat znode carrying its
fencing token. Then:

1. the current leader is SIGKILLed: nobody tells the cluster, so its
   session has to expire (``session_timeout``) before the next contender
   in line becomes leader;
2. the new leader steps down cleanly (its leader function returns): the
   last contender takes over at once.

Every leader records when it became leader and when it stopped (with the
system-wide monotonic clock) and its fencing token. At the end the demo
checks that no two leadership intervals overlap, that fencing tokens
strictly increase from leader to leader, and that the heartbeats, in zxid
(log) order, never go back to an older token. It exits non-zero if any of
that broke.

Run from a checkout::

    python examples/leader_election.py
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coord.local_cluster import LocalCluster, wait_until
from coord.local_cluster.recipe_remote import RecipeEvents, RemoteRecipe, hold_intervals, overlapping

SESSION_TIMEOUT = 3.0
ELECTION_PATH = "/demo/election"
HEARTBEAT_PATH = "/demo/heartbeat"


def main() -> int:
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.2f}s] {msg}", flush=True)

    def is_(what: str, member: str | None = None, exclude: set[str] | None = None) -> Any:
        return lambda e: (
            e["what"] == what and (member is None or e["member"] == member) and e["member"] not in (exclude or set())
        )

    events = RecipeEvents()
    secret = secrets.token_urlsafe(32)
    killed_at: dict[str, float] = {}
    with LocalCluster(3, session_timeout=SESSION_TIMEOUT, secret=secret, event_handler=events) as cluster:
        log(f"3 members up: {', '.join(f'{m.name} (pid {m.pid})' for m in cluster)}")
        elections = {m.name: RemoteRecipe(m, "Election", ELECTION_PATH, m.name) for m in cluster}
        runs = {}
        for name, election in elections.items():
            # contend; once elected, heartbeat every 0.25 s until told to stop
            runs[name] = election.run(work={"interval": 0.25, "path": HEARTBEAT_PATH}, max_seconds=50.0)

        first = events.wait_for(is_("acquired"), timeout=20.0, what="a first leader")
        leader = cluster.member_for(first["address"])
        assert leader is not None
        in_line = wait_until(
            lambda: (lambda c: c if len(c) == 3 else None)(elections[leader.name].call("contenders")),
            timeout=10.0,
            what="3 contenders",
        )
        log(f"{leader.name} is leader (fencing token {first['fencing_token']}); contenders in line: {in_line}")
        events.wait_for(
            lambda e: e["what"] == "work" and e["member"] == leader.name and e["seq_no"] >= 3,
            timeout=10.0,
            what="three heartbeats",
        )
        log(f"{leader.name} wrote 3 heartbeats")

        signalled = time.monotonic()
        leader.kill()
        killed_at[leader.name] = time.monotonic()  # reaped: its leadership surely ended by now
        log(f"SIGKILL {leader.name} (the current leader); its session expires after {SESSION_TIMEOUT:g} s")
        second = events.wait_for(
            is_("acquired", exclude={leader.name}), timeout=SESSION_TIMEOUT + 15.0, what="a new leader"
        )
        log(
            f"{second['member']} is leader {second['mono'] - signalled:.2f} s after the kill "
            f"(fencing token {second['fencing_token']})"
        )
        events.wait_for(
            lambda e: e["what"] == "work" and e["member"] == second["member"] and e["seq_no"] >= 3,
            timeout=10.0,
            what="three heartbeats",
        )

        log(f"{second['member']} steps down (its leader function returns)")
        stepped = elections[second["member"]].stop(runs[second["member"]], wait=10.0)
        third = events.wait_for(
            is_("acquired", exclude={leader.name, second["member"]}), timeout=15.0, what="the last leader"
        )
        handover = third["mono"] - next(e["mono"] for e in events.of("releasing") if e["member"] == second["member"])
        log(
            f"{third['member']} is leader {1000 * handover:.0f} ms after the handover "
            f"(fencing token {third['fencing_token']}; step-down outcome: {stepped['outcome']})"
        )
        events.wait_for(
            lambda e: e["what"] == "work" and e["member"] == third["member"] and e["seq_no"] >= 2,
            timeout=10.0,
            what="two heartbeats",
        )
        elections[third["member"]].stop(runs[third["member"]], wait=10.0)
        survivor = cluster.member_for(third["address"])
        assert survivor is not None
        survivor.sync()
        last_heartbeat = json.loads(survivor.get(HEARTBEAT_PATH)[0])
    log("cluster stopped")

    # -- the invariant: at no time two leaders --------------------------------
    intervals = hold_intervals(events.all(), ends=killed_at)
    print()
    print("leadership intervals (monotonic seconds since the demo started):")
    for interval in intervals:
        end = interval["end"] - t0
        print(
            f"  token {interval['token']:>5}  {interval['member']:<9} "
            f"{interval['start'] - t0:6.2f}s .. {end:6.2f}s" + ("  (killed)" if interval["member"] in killed_at else "")
        )
    problems = []
    if len(intervals) != 3:
        problems.append(f"expected 3 leadership terms, saw {len(intervals)}")
    for a, b in overlapping(intervals):
        problems.append(
            f"{a['member']} (token {a['token']}) and {b['member']} (token {b['token']}) were leaders at the same time"
        )
    by_start = [i["token"] for i in sorted(intervals, key=lambda i: i["start"])]
    if by_start != sorted(by_start) or len(set(by_start)) != len(by_start):
        problems.append(f"fencing tokens do not strictly increase from leader to leader: {by_start}")
    heartbeats = sorted(events.of("work"), key=lambda e: e.get("zxid") or 0)
    hb_tokens = [e["fencing_token"] for e in heartbeats]
    if hb_tokens != sorted(hb_tokens):
        problems.append("a heartbeat with an older leader's token was written after a newer leader's")
    if last_heartbeat.get("token") != third["fencing_token"]:
        problems.append(f"the last heartbeat {last_heartbeat} is not the last leader's")
    print(
        f"{len(heartbeats)} heartbeats, tokens in log order: "
        + " ".join(f"{t}x{hb_tokens.count(t)}" for t in dict.fromkeys(hb_tokens))
    )
    if problems:
        for problem in problems:
            print(f"INVARIANT BROKEN: {problem}")
        return 1
    print(f"OK: never two leaders at once; fencing tokens strictly increased ({' < '.join(str(t) for t in by_start)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
