"""Plumbing shared by the multi-process examples (not an example itself).

``work_queue.py``, ``service_discovery.py`` and ``config_management.py``
each start a few copies of themselves as child processes (each child embeds
a coord member) and narrate what the children print. The narration code is
the same in all three, so it lives here and the examples keep only their
story:

* ``Child``: child ``N`` of the demo, ``sys.executable <example> --child N
  --addresses A,B,...`` (the example's ``entry_point`` runs its child
  function for that), in its own session (a Ctrl-C reaches only the parent,
  which stops the children); every line it prints is relayed, with the time
  it arrived, to a ``Relay``.
  The parent talks to it on its stdin (``send``) and asks it to stop by
  closing its stdin (``ask_to_stop``, ``close`` with a SIGKILL fallback).
* ``Relay``: the parent's view of all children's lines; ``wait_for`` prints
  them as they come until one matches, and raises ``TimeoutError`` at the
  deadline, so every wait in a demo is bounded. ``log`` prints the parent's
  own lines with the time since the demo started.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path


class Relay:
    """Lines from the children, timestamped, printed as the demo consumes them.

    ``seen`` holds every line printed so far, in order; ``mark()`` is its
    length, to pass as ``since`` when only newer lines should count.
    """

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.seen: list[str] = []

    def log(self, msg: str) -> None:
        """Print one of the parent's own lines, with the time since the start."""
        print(f"[{time.monotonic() - self.t0:6.2f}s] {msg}", flush=True)

    def mark(self) -> int:
        """Where the next line will go in ``seen`` (a ``since`` for ``wait_for``)."""
        return len(self.seen)

    def _show(self, at: float, line: str) -> None:
        print(f"[{at - self.t0:6.2f}s]   {line}", flush=True)
        self.seen.append(line)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float, what: str, since: int = 0) -> str:
        """Relay the children's lines until one (from ``seen[since]`` on, a line
        seen already included) matches; ``TimeoutError`` naming ``what`` at the deadline."""
        deadline = time.monotonic() + timeout
        for line in self.seen[since:]:
            if predicate(line):
                return line
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
            try:
                at, line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self._show(at, line)
            if predicate(line):
                return line

    def drain(self) -> None:
        """Print whatever the children said that nobody waited for (e.g. while they stopped)."""
        while True:
            try:
                at, line = self.lines.get_nowait()
            except queue.Empty:
                return
            self._show(at, line)


def starts_with(prefix: str) -> Callable[[str], bool]:
    """A predicate on relayed lines."""
    return lambda line: line.startswith(prefix)


def entry_point(doc: str | None, main: Callable[[], int], child: Callable[[int, list[str]], int]) -> int:
    """An example's command line: without arguments it runs the demo (``main()``);
    ``--child N --addresses A,B,...`` (how ``Child`` starts it) runs ``child(N, addresses)``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--addresses", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child, args.addresses.split(","))
    return main()


class Child:
    """Child ``index`` of the demo in ``script`` (whose ``entry_point`` calls its child
    function with ``index`` and ``addresses``), its stdout relayed to ``relay``.

    ``secret`` is the cluster's shared secret, passed as ``COORD_SECRET``.
    """

    def __init__(self, name: str, script: str, index: int, addresses: list[str], secret: str, relay: Relay) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(script).resolve()), "--child", str(index), "--addresses", ",".join(addresses)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=dict(os.environ, COORD_SECRET=secret, PYTHONUNBUFFERED="1"),
            start_new_session=True,  # a Ctrl-C reaches only us; we stop the children
        )
        self._relay = threading.Thread(target=self._relay_lines, args=(relay.lines,), daemon=True)
        self._relay.start()

    def _relay_lines(self, lines: queue.Queue[tuple[float, str]]) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            lines.put((time.monotonic(), line.rstrip("\n")))

    def send(self, line: str) -> None:
        """Write one line to its stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def signal(self, sig: int) -> None:
        """Send it ``sig`` if it is still running."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL it and reap it."""
        self.proc.kill()
        self.proc.wait(10)

    def ask_to_stop(self) -> None:
        """Close its stdin: the child stops its member and exits. (A SIGSTOPped
        child is continued first, or it could not.)"""
        self.signal(signal.SIGCONT)
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def close(self, timeout: float) -> None:
        """Ask it to stop and wait; SIGKILL if it does not in time."""
        self.ask_to_stop()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._relay.join(2)  # its last lines


def stop_all(children: list[Child], timeout: float) -> None:
    """Ask every child to stop at once (so each can still reach a quorum while
    stopping), then wait for each; SIGKILL any that does not stop in time."""
    for child in children:
        child.ask_to_stop()
    for child in children:
        child.close(timeout)
