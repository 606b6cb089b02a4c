"""``coord demo``: three member processes on loopback (free ports,
temporary data dirs) write, set watches and create an ephemeral node on the
leader; then the leader is SIGKILLed and the demo narrates, with timings,
how writes resume under a new leader and how the dead member's ephemeral
disappears (the watch fires) once its session times out; finally it
restarts the dead member and shows it catch up. Everything it starts is
stopped, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from coord import errors
from coord.local_cluster import LocalCluster, RpcError


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt for the duration, so ``kill`` is
    cleaned up exactly like Ctrl-C (children stopped, temp dirs removed)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _hex(session_id: Any) -> str:
    try:
        return f"0x{int(session_id):x}"
    except (TypeError, ValueError):
        return str(session_id)


class Narrator:
    """Prints the demo's story with a clock relative to its start."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.3f}s] {message}", flush=True)

    def step(self, title: str) -> None:
        print(f"\n== {title}", flush=True)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


# --------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t


def run_demo(args: argparse.Namespace) -> int:
    """The narrated failover demo; returns 0 when every step checked out."""
    say = Narrator()
    secret = None if args.no_secret else secrets.token_urlsafe(32)
    work = Path(tempfile.mkdtemp(prefix="coord-demo-"))
    failures: list[str] = []
    try:
        say.step(f"1. start {args.members} members on 127.0.0.1 (separate processes)")
        say.say(
            f"data and logs under {work}; secret {'on (random, per run)' if secret else 'OFF'}; "
            f"session_timeout {args.session_timeout:g}s"
        )
        cluster = LocalCluster(
            args.members,
            data_root=work / "data",
            session_timeout=args.session_timeout,
            secret=secret,
            log_dir=work / "logs",
            start_timeout=args.start_timeout,
        )
        t = time.monotonic()
        with cluster:
            for m in cluster:
                say.say(f"{m.name}: {m.address}, pid {m.pid}, session {_hex(m.ready_info.get('session_id'))}")
            say.say(f"all members ready in {_ms(time.monotonic() - t)}")

            t = time.monotonic()
            leader = cluster.leader(timeout=15.0)
            st = leader.status()
            say.say(f"leader: {leader.name} ({leader.address}), term {st.get('term')}")
            survivors = [m for m in cluster if m is not leader]
            writer, observer = survivors[0], survivors[-1]

            say.step("2. replicated writes")
            _, dt = _timed(writer.create, "/demo/config", b"v1", makepath=True)
            say.say(
                f"{writer.name} (follower) created /demo/config = b'v1' in {_ms(dt)} "
                "(forwarded to the leader, committed by a majority)"
            )
            observer.sync()
            value, stat_ = observer.get("/demo/config")
            say.say(
                f"{observer.name} reads /demo/config = {value!r} (version {stat_.version}, "
                f"mzxid {stat_.mzxid}): every member holds the whole tree"
            )

            say.step(f"3. an ephemeral node owned by the leader ({leader.name}), watched by {observer.name}")
            eph = f"/demo/workers/{leader.name}"
            leader.ensure_path("/demo/workers")
            leader.create(eph, str(leader.pid).encode(), ephemeral=True)
            observer.sync()
            owner = observer.exists(eph)
            say.say(
                f"{leader.name} created ephemeral {eph} (owner session {_hex(owner.ephemeralOwner if owner else None)})"
            )
            w_node = observer.watch("exists", eph)
            w_kids = observer.watch("children", "/demo/workers")
            say.say(
                f"{observer.name} watches {eph} (exists) and /demo/workers (children): "
                f"{observer.get_children('/demo/workers')}"
            )

            say.step(f"4. SIGKILL the leader {leader.name} (pid {leader.pid}): no goodbye, no session close")
            t_kill_wall = leader.kill()
            t_kill = time.monotonic()
            say.say(f"{leader.name} killed")

            say.step(f"5. {writer.name} keeps writing")
            ok, failed, first_ok, last_err = 0, 0, None, ""
            deadline = t_kill + args.failover_timeout
            i = 2
            while ok < 5 and time.monotonic() < deadline:
                try:
                    writer.set("/demo/config", f"v{i}".encode(), timeout=15.0)
                except (errors.CoordError, RpcError) as exc:
                    failed += 1
                    last_err = f"{type(exc).__name__}: {exc}"
                    time.sleep(0.05)
                    continue
                ok += 1
                i += 1
                if first_ok is None:
                    first_ok = time.monotonic() - t_kill
                    say.say(
                        f"first write accepted {_ms(first_ok)} after the kill "
                        f"({failed} attempt(s) refused meanwhile{': ' + last_err if last_err else ''})"
                    )
            if first_ok is None:
                failures.append("no write succeeded after the leader was killed")
                say.say(f"FAILED: no write accepted within {args.failover_timeout:g}s ({last_err})")
            else:
                new_leader = cluster.leader(timeout=10.0)
                st = new_leader.status()
                say.say(
                    f"new leader: {new_leader.name} ({new_leader.address}), term {st.get('term')}; "
                    f"{ok} writes done, /demo/config = {writer.get('/demo/config')[0]!r}"
                )

            say.step(
                f"6. the dead member's ephemeral goes once its session expires "
                f"(session_timeout {args.session_timeout:g}s)"
            )
            wait = args.session_timeout * 2 + args.failover_timeout
            event = observer.wait_watch_event(w_node, wait)
            if event is None:
                failures.append(f"the exists watch on {eph} did not fire within {wait:g}s")
                say.say(f"FAILED: no watch event within {wait:g}s")
            else:
                say.say(
                    f"watch fired on {observer.name}: {event['type']} {event['path']}, "
                    f"{_ms(event['time'] - t_kill_wall)} after the kill"
                )
                kids_event = observer.wait_watch_event(w_kids, 5.0)
                if kids_event:
                    say.say(f"children watch fired: {kids_event['type']} {kids_event['path']}")
                say.say(
                    f"{eph} exists on {observer.name}: {observer.exists(eph) is not None}; "
                    f"/demo/workers children: {observer.get_children('/demo/workers')}"
                )

            say.step(f"7. restart {leader.name} with the same data dir")
            t = time.monotonic()
            info = leader.restart(timeout=args.start_timeout)
            leader.sync()
            value, _ = leader.get("/demo/config")
            st = leader.status()
            say.say(
                f"{leader.name} back in {_ms(time.monotonic() - t)} (pid {leader.pid}, new session "
                f"{_hex(info.get('session_id'))}), role {st.get('role')}, reads /demo/config = {value!r}"
            )

            say.step("8. stop everything")
            t = time.monotonic()
        say.say(f"all members stopped in {_ms(time.monotonic() - t)}")
    except KeyboardInterrupt:
        say.say("interrupted: members stopped")
        return 130
    except (errors.CoordError, RpcError, TimeoutError) as exc:
        say.say(f"FAILED: {type(exc).__name__}: {exc}")
        logs = work / "logs"
        for log in sorted(logs.glob("*.log")) if logs.exists() else []:
            print(f"--- {log} (last lines) ---", file=sys.stderr)
            print("\n".join(log.read_text(errors="replace").splitlines()[-15:]), file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"data and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("\nDEMO FAILED:", *failures, sep="\n  ")
        return 1
    print("\ndemo complete: writes survived the leader's death and its ephemeral was cleaned up")
    return 0


def add_parser(sub: Any) -> None:
    """The ``demo`` subcommand's arguments."""
    demo = sub.add_parser("demo", help="3 local member processes: kill the leader, watch failover")
    demo.add_argument(
        "--members", type=int, default=3, choices=range(3, 8), metavar="N", help="number of members, 3..7 (default 3)"
    )
    demo.add_argument(
        "--session-timeout", type=float, default=4.0, help="session timeout of the members, seconds (default 4)"
    )
    demo.add_argument(
        "--failover-timeout", type=float, default=20.0, help="how long writes may take to resume, seconds (default 20)"
    )
    demo.add_argument("--start-timeout", type=float, default=30.0)
    demo.add_argument("--no-secret", action="store_true", help="run without a cluster secret")
    demo.add_argument("--keep", action="store_true", help="keep data and logs (path printed)")
    demo.set_defaults(handler=main, default_log_level="WARNING")


def main(args: argparse.Namespace) -> int:
    """Run the demo (SIGTERM behaves as Ctrl-C)."""
    with _sigterm_as_interrupt():
        return run_demo(args)
