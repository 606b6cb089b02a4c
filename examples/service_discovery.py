#!/usr/bin/env python3
"""Service discovery that survives session expiry: PersistentEphemeralNode.

Three "web" service processes each embed a coord member (a three-member
cluster on 127.0.0.1) and register themselves under ``/services/web`` with
a ``PersistentEphemeralNode``. Process ``web-0`` also runs the discovery
side: a ``ChildrenWatch`` that prints the live view whenever it changes.

Then ``web-2`` is frozen with SIGSTOP for longer than the session timeout
(as a long GC pause or a suspended VM would). The other two members expire
its session and its registration disappears from the view. After SIGCONT,
``web-2``'s member learns that its session was LOST, opens a new one, and
the PersistentEphemeralNode registers it again, with the data it was last
given (``set_data``), under the new session. A plain ephemeral node would
have stayed gone.

Run from a checkout::

    python examples/service_discovery.py

It finishes by itself in about 15 seconds and stops every process it starts.
"""

from __future__ import annotations

import json
import queue
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.append(str(Path(__file__).resolve().parent))  # _demo_support, next to this file (if imported as a module)

from _demo_support import Child, Relay, entry_point, starts_with, stop_all  # the child processes and their output

SESSION_TIMEOUT = 3.0
SERVICES = "/services/web"
NAMES = ["web-0", "web-1", "web-2"]
FROZEN = 2  # the process that gets SIGSTOPped (not the discovery watcher)


# ---------------------------------------------------------------------- one service process


def run_service(index: int, addresses: list[str]) -> int:
    """A service process: embed a member, register, (web-0) watch the view.

    Prints one line per thing that happens; exits when stdin closes. A line
    ``set <json>`` on stdin updates the registered data.
    """
    from coord import Coordinator, NoNodeError
    from coord.recipes import PersistentEphemeralNode

    name = NAMES[index]
    print_lock = threading.Lock()  # the listener, the watch and main() all print

    def say(text: str) -> None:
        with print_lock:
            print(f"{name}: {text}", flush=True)

    member = Coordinator(addresses[index], peers=addresses, session_timeout=SESSION_TIMEOUT)
    member.add_listener(lambda state: say(f"session {state} (session 0x{member.session_id:x})"))
    member.start(timeout=30)
    say(f"member up, session 0x{member.session_id:x}")

    data = json.dumps({"host": "127.0.0.1", "port": 8000 + index, "status": "starting"}).encode()
    node = PersistentEphemeralNode(member, f"{SERVICES}/{name}", data)
    node.start()
    if not node.wait_for_initial_create(15):
        say("could not register")
        return 1
    say(f"registered {node.actual_path} = {node.data.decode()}")

    if index == 0:
        member.ensure_path(SERVICES)

        @member.ChildrenWatch(SERVICES)
        def show(children: list[str]) -> None:
            entries = []
            for child in sorted(children):
                try:
                    value, stat = member.get(f"{SERVICES}/{child}")
                except NoNodeError:
                    continue
                entries.append(f"{child}={value.decode()} (session 0x{stat.ephemeralOwner:x})")
            say(f"VIEW {len(entries)} services: " + "; ".join(entries))

    commands: queue.Queue[str | None] = queue.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put(None)  # EOF: the parent wants us to stop

    threading.Thread(target=read_stdin, daemon=True).start()
    creations = node.creations
    try:
        while True:
            try:
                command = commands.get(timeout=0.1)
            except queue.Empty:
                command = ""
            if command is None:
                break
            if command.startswith("set "):
                node.set_data(command[4:].encode())
                say(f"set_data {command[4:]}")
            if node.creations != creations:
                creations = node.creations
                say(
                    f"HEALED: registration re-created at {node.actual_path} with {node.data.decode()} "
                    f"under new session 0x{member.session_id:x}"
                )
    finally:
        node.close(timeout=2.0)  # unregister (the session's end would remove it too)
        member.stop()
        say("stopped")
    return 0


# ---------------------------------------------------------------------- the parent


def main() -> int:
    from coord.local_cluster import free_ports

    relay = Relay()  # the services' lines, printed as we wait for them
    log, wait_for = relay.log, relay.wait_for

    # Every member of one cluster shares a secret; a random one is enough here.
    secret = secrets.token_urlsafe(32)
    addresses = [f"127.0.0.1:{port}" for port in free_ports(3)]
    services: list[Child] = []
    try:
        log(f"starting 3 service processes, each embedding a coord member ({', '.join(addresses)})")
        services = [Child(name, __file__, i, addresses, secret, relay) for i, name in enumerate(NAMES)]
        for name in NAMES:
            wait_for(starts_with(f"{name}: registered"), 40, f"{name} to register")
        wait_for(lambda line: "VIEW 3 services" in line, 15, "the discovery view to show all three")

        busy = json.dumps({"host": "127.0.0.1", "port": 8000 + FROZEN, "status": "serving"})
        services[FROZEN].send(f"set {busy}")
        wait_for(lambda line: line.startswith(f"{NAMES[FROZEN]}: set_data"), 10, "the data update")

        frozen = services[FROZEN]
        mark = relay.mark()  # from here on, only newer lines count
        frozen.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        log(f"SIGSTOP {frozen.name} (pid {frozen.proc.pid}) for longer than the session timeout ({SESSION_TIMEOUT:g}s)")
        try:
            wait_for(
                lambda line: line.startswith("web-0: VIEW 2 services") and f"{frozen.name}=" not in line,
                SESSION_TIMEOUT + 10,
                f"{frozen.name}'s session to expire",
                mark,
            )
            log(
                f"{frozen.name}'s session expired after {time.monotonic() - stopped_at:.1f}s; "
                "its registration is gone from the view"
            )
        finally:
            frozen.signal(signal.SIGCONT)
            log(f"SIGCONT {frozen.name}")
        wait_for(lambda line: line.startswith(f"{frozen.name}: session LOST"), 15, f"{frozen.name} to hear LOST", mark)
        healed = wait_for(lambda line: line.startswith(f"{frozen.name}: HEALED"), 15, "the registration to heal", mark)
        view = wait_for(lambda line: "VIEW 3 services" in line and '"serving"' in line, 15, "the healed view", mark)
        if busy not in healed or busy not in view:
            log("the healed registration does not carry the updated data")
            return 1
        log("healed: the registration is back with the data given to set_data, under the new session")
    except TimeoutError as exc:
        log(f"FAILED: {exc}")
        return 1
    finally:
        stop_all(services, timeout=15)  # each unregisters, stops its member and exits
        relay.drain()  # whatever the services said while stopping
        log("all service processes stopped")
    return 0


if __name__ == "__main__":
    sys.exit(entry_point(__doc__, main, child=run_service))
