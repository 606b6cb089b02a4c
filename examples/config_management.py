#!/usr/bin/env python3
"""Configuration management: every process reloads when an operator changes it.

Three application processes each embed a coord member (a three-member
cluster on 127.0.0.1). Each one keeps its running configuration in sync
with the znode ``/app/config`` through a ``DataWatch``: the callback runs
once at start and again after every change, parses and validates the JSON,
and either applies it ("RELOADED") or keeps the configuration it has
("REJECTED") when the new one is invalid.

The operator (this process) joins the cluster as an *observer* (a
non-voting member: an admin tool should not count for quorum) and edits the
configuration with **versioned compare-and-set**: read the value and its
``stat.version``, change it, and ``set(path, value, version=stat.version)``.
If somebody else changed the node in between, the set raises
``BadVersionError`` and nothing is written; the editor re-reads and
re-applies its change. The demo stages exactly that race between two
editors, "alice" and "bob", and shows that neither edit is lost (a plain
``set`` without a version would have silently overwritten bob's change).

Watch semantics (ZooKeeper's): a ``DataWatch`` may skip intermediate
versions under a burst of changes, but it always ends with the latest one.

Run from a checkout::

    python examples/config_management.py

It finishes by itself in about 10 seconds, stops every process it starts,
and exits non-zero if an application did not end on the latest valid
configuration.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.append(str(Path(__file__).resolve().parent))  # _demo_support, next to this file (if imported as a module)

from _demo_support import Child, Relay, entry_point, starts_with, stop_all  # the child processes and their output

SESSION_TIMEOUT = 3.0
CONFIG_PATH = "/app/config"
NAMES = ["app-0", "app-1", "app-2"]
DEFAULTS: dict[str, Any] = {"max_connections": 10, "rate_limit": 100, "feature_search": False}


def parse_config(data: bytes) -> dict[str, Any]:
    """Decode and validate a configuration; ValueError says what is wrong."""
    try:
        config = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError("not a JSON object")
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown keys {unknown}")
    for key in ("max_connections", "rate_limit"):
        value = config.get(key, DEFAULTS[key])
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{key} must be a positive int, got {value!r}")
    return {**DEFAULTS, **config}


def encode(config: dict[str, Any]) -> bytes:
    return json.dumps(config, sort_keys=True).encode()


# ---------------------------------------------------------------------- one application process


def run_app(index: int, addresses: list[str]) -> int:
    """An application process: embed a member, follow /app/config.

    Prints one line per reload; exits (stopping its member) when stdin closes.
    """
    from coord import Coordinator

    name = NAMES[index]
    print_lock = threading.Lock()

    def say(text: str) -> None:
        with print_lock:
            print(f"{name}: {text}", flush=True)

    member = Coordinator(addresses[index], peers=addresses, session_timeout=SESSION_TIMEOUT)
    member.start(timeout=30)
    say(f"member up, session 0x{member.session_id:x}")

    running: dict[str, Any] = {"config": dict(DEFAULTS), "version": None}

    # Runs on the member's callback thread: now, and after every change.
    @member.DataWatch(CONFIG_PATH)
    def reload(data: bytes | None, stat: Any) -> None:
        if stat is None:
            say(f"no {CONFIG_PATH} yet: running with the defaults {encode(running['config']).decode()}")
            return
        try:
            config = parse_config(data or b"")
        except ValueError as exc:
            say(f"REJECTED config version {stat.version}: {exc}; keeping version {running['version']}")
            return
        running.update(config=config, version=stat.version)
        say(f"RELOADED config version {stat.version}: {encode(config).decode()}")

    sys.stdin.read()  # until the parent closes our stdin
    member.stop()
    say("stopped")
    return 0


# ---------------------------------------------------------------------- the operator (parent)


def update_config(member: Any, change: Callable[[dict[str, Any]], None], who: str, log: Any) -> Any:
    """Read-modify-write with compare-and-set: retry until no one raced us.

    ``sync()`` first, so the read sees every change committed anywhere
    (reads are local and may lag otherwise; the version check would still
    catch it, at the cost of one retry).
    """
    from coord import BadVersionError

    while True:
        member.sync(CONFIG_PATH)
        data, stat = member.get(CONFIG_PATH)
        config = json.loads(data)
        change(config)
        try:
            new_stat = member.set(CONFIG_PATH, encode(config), version=stat.version)
        except BadVersionError:
            log(f"{who}: version {stat.version} is no longer current; re-reading and re-applying the change")
            continue
        log(f"{who}: wrote config version {new_stat.version}: {encode(config).decode()}")
        return new_stat


def main() -> int:
    from coord import BadVersionError, Coordinator
    from coord.local_cluster import free_ports

    relay = Relay()  # the apps' lines, printed as we wait for them
    log, wait_for, seen = relay.log, relay.wait_for, relay.seen

    def all_apps(text: str, timeout: float, since: int = 0) -> None:
        for name in NAMES:
            wait_for(starts_with(f"{name}: {text}"), timeout, f"{name}: {text}", since)

    secret = secrets.token_urlsafe(32)  # every member of one cluster shares it
    ports = free_ports(4)
    addresses = [f"127.0.0.1:{port}" for port in ports[:3]]
    apps: list[Child] = []
    operator = None
    try:
        log(f"starting 3 application processes, each embedding a coord member ({', '.join(addresses)})")
        apps = [Child(name, __file__, i, addresses, secret, relay) for i, name in enumerate(NAMES)]
        all_apps("no /app/config yet", 40)

        # The operator tool joins as an observer: a full replica, no vote.
        operator = Coordinator(
            f"127.0.0.1:{ports[3]}", peers=addresses, observer=True, secret=secret, session_timeout=SESSION_TIMEOUT
        )
        operator.start(timeout=30)
        log(f"operator joined as an observer ({operator.status().role})")

        mark = relay.mark()
        operator.create(CONFIG_PATH, encode(DEFAULTS), makepath=True)
        log(f"operator: created {CONFIG_PATH} (version 0)")
        all_apps("RELOADED config version 0", 15, mark)

        # One plain update: more connections.
        mark = relay.mark()
        update_config(operator, lambda c: c.update(max_connections=50), "operator", log)
        all_apps("RELOADED config version 1", 15, mark)

        # Two editors race. alice reads version 1 and prepares her change ...
        data, stat = operator.get(CONFIG_PATH)
        alice = json.loads(data)
        alice["feature_search"] = True
        log(f"alice: read version {stat.version}, turning feature_search on")
        # ... meanwhile bob changes the rate limit (version 2) ...
        update_config(operator, lambda c: c.update(rate_limit=250), "bob", log)
        # ... so alice's compare-and-set is refused, and nothing is written.
        try:
            operator.set(CONFIG_PATH, encode(alice), version=stat.version)
            log("alice: UNEXPECTED: her stale write was accepted")
            return 1
        except BadVersionError:
            log(f"alice: set(version={stat.version}) REFUSED with BadVersionError: bob changed it first")
        mark = relay.mark()
        final = update_config(operator, lambda c: c.update(feature_search=True), "alice", log)
        final_config = json.loads(operator.get(CONFIG_PATH)[0])
        all_apps(f"RELOADED config version {final.version}", 15, mark)

        # An invalid configuration is refused by every application, which
        # keeps running with the last good one.
        mark = relay.mark()
        bad = operator.set(CONFIG_PATH, encode({**final_config, "max_connections": -5}))
        log(f"operator: wrote an invalid config (max_connections=-5) as version {bad.version}")
        all_apps(f"REJECTED config version {bad.version}", 15, mark)

        expected = encode({**DEFAULTS, "max_connections": 50, "rate_limit": 250, "feature_search": True}).decode()
        problems = []
        if encode(final_config).decode() != expected:
            problems.append(f"a change was lost: final config {final_config}")
        for name in NAMES:
            reloads = [line for line in seen if line.startswith(f"{name}: RELOADED")]
            if not reloads or not reloads[-1].endswith(f"version {final.version}: {expected}"):
                problems.append(f"{name} did not end on version {final.version}: {reloads[-1:]}")
        for problem in problems:
            log(f"PROBLEM: {problem}")
        if problems:
            return 1
        log(
            f"OK: every application runs config version {final.version} with both editors' changes "
            f"and refused the invalid version {bad.version}"
        )
    except TimeoutError as exc:
        log(f"FAILED: {exc}")
        return 1
    finally:
        if operator is not None:
            operator.stop()
        stop_all(apps, timeout=15)
        relay.drain()
        log("all processes stopped")
    return 0


if __name__ == "__main__":
    sys.exit(entry_point(__doc__, main, child=run_app))
