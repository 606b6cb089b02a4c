#!/usr/bin/env python3
"""A work queue where every job is done exactly once, even when a worker is
SIGKILLed in the middle of one.

Four processes each embed a coord member: a ``producer`` and ``worker-1``,
``worker-2`` (the three voters) and ``worker-3`` (an observer: many worker
processes can join a cluster without adding voters). The producer puts 12
jobs on a ``LockingQueue`` (kazoo's recipe) in one transaction; the workers
take them.

``LockingQueue.get()`` *locks* an entry with an ephemeral ``taken`` node
instead of removing it. A worker finishes a job with one transaction that
removes the entry and its lock **and records the job's result**: the
result and the removal happen together or not at all, and since an entry
can be removed only once, a result can be recorded only once.

``job-05`` is slow. The demo SIGKILLs whichever worker takes it, in the
middle of it. Nobody tells the cluster: the dead worker's session expires
after ``session_timeout``, its ephemeral lock goes with it, and another
worker takes ``job-05`` and finishes it. The producer, watching the results
with a ``ChildrenWatch``, sees all 12 results, each exactly once, and the
queue ends empty.

Run from a checkout::

    python examples/work_queue.py

It finishes by itself in about 10 seconds, stops every process it starts,
and exits non-zero if a job was lost or done twice.
"""

from __future__ import annotations

import json
import queue
import re
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.append(str(Path(__file__).resolve().parent))  # _demo_support, next to this file (if imported as a module)

from _demo_support import Child, Relay, entry_point, starts_with, stop_all  # the child processes and their output

SESSION_TIMEOUT = 3.0
QUEUE_PATH = "/demo/jobs"
RESULTS_PATH = "/demo/results"
JOBS = [f"job-{i:02d}" for i in range(12)]
SLOW_JOB = "job-05"
NAMES = ["producer", "worker-1", "worker-2", "worker-3"]
OBSERVER = 3  # worker-3 joins as a non-voting observer


# ---------------------------------------------------------------------- the member processes


def run_process(index: int, addresses: list[str]) -> int:
    """One member process: the producer (index 0) or a worker.

    Reads commands on stdin (``produce``); stops its member when stdin closes.
    """
    from coord import Coordinator

    name = NAMES[index]
    voters = [address for i, address in enumerate(addresses) if i != OBSERVER]
    print_lock = threading.Lock()

    def say(text: str) -> None:
        with print_lock:
            print(f"{name}: {text}", flush=True)

    member = Coordinator(addresses[index], peers=voters, observer=index == OBSERVER, session_timeout=SESSION_TIMEOUT)
    member.start(timeout=30)
    member.ensure_path(RESULTS_PATH)
    say(f"ready ({member.status().role}, session 0x{member.session_id:x})")

    stopping = threading.Event()
    commands: queue.Queue[str] = queue.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            commands.put(line.strip())
        stopping.set()  # EOF: the parent wants us to stop

    threading.Thread(target=read_stdin, daemon=True).start()
    try:
        if index == 0:
            produce(member, commands, stopping, say)
        else:
            work(member, name, stopping, say)
    finally:
        member.stop()
        say("stopped")
    return 0


def produce(member: object, commands: queue.Queue[str], stopping: threading.Event, say: Callable[[str], None]) -> None:
    """Put the jobs (all or nothing), then report the results as they come."""
    from coord import Coordinator

    assert isinstance(member, Coordinator)
    while commands.get() != "produce":
        pass
    jobs = member.LockingQueue(QUEUE_PATH)
    jobs.put_all([json.dumps({"job": job, "seconds": 2.5 if job == SLOW_JOB else 0.2}).encode() for job in JOBS])
    say(f"put {len(JOBS)} jobs in one transaction")

    done = threading.Event()

    @member.ChildrenWatch(RESULTS_PATH)
    def results(children: list[str]) -> None:
        say(f"results: {len(children)}/{len(JOBS)}")
        if len(children) == len(JOBS):
            done.set()

    while not done.wait(0.1):
        if stopping.is_set():
            return
    member.sync()
    for job in sorted(member.get_children(RESULTS_PATH)):  # type: ignore[union-attr]
        data, _ = member.get(f"{RESULTS_PATH}/{job}")
        say(f"RESULT {job} {data.decode()}")
    entries = member.get_children(f"{QUEUE_PATH}/entries")
    taken = member.get_children(f"{QUEUE_PATH}/taken")
    say(f"ALL DONE: queue entries left {len(entries)}, locks left {len(taken)}")
    stopping.wait()


def work(member: object, name: str, stopping: threading.Event, say: Callable[[str], None]) -> None:
    """Take jobs until told to stop; finish each one atomically."""
    from coord import CoordError, Coordinator

    assert isinstance(member, Coordinator)
    jobs = member.LockingQueue(QUEUE_PATH)
    while not stopping.is_set():
        raw = jobs.get(timeout=0.5)  # locks the entry (ephemeral taken/<entry>); None on timeout
        if raw is None:
            continue
        job = json.loads(raw)
        say(f"START {job['job']} ({job['seconds']:g} s of work)")
        time.sleep(job["seconds"])  # the work; its result is not visible until the commit below
        assert jobs.processing_element is not None
        entry = jobs.processing_element[0]
        # consume() would delete the entry and its lock; we also record the
        # result in the same transaction, so the job is done exactly once.
        # If this worker lost its lock meanwhile (paused past its session
        # timeout) and another worker took the job, whichever commits first
        # records the result; the other's transaction fails as a whole (the
        # entry is gone) and changes nothing.
        txn = member.transaction()
        txn.delete(f"{QUEUE_PATH}/entries/{entry}")
        txn.delete(f"{QUEUE_PATH}/taken/{entry}")
        txn.create(f"{RESULTS_PATH}/{job['job']}", json.dumps({"by": name}).encode())
        try:
            results = txn.commit()
        except CoordError as exc:  # the outcome is unknown (no quorum, timeout)
            say(f"could not finish {job['job']}: {exc!r}; it will be taken again")
            jobs.processing_element = None
            continue
        jobs.processing_element = None
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:  # our lock was lost and someone else finished it: nothing was applied
            say(f"DROPPED {job['job']}: {type(failed[0]).__name__} (someone else finished it)")
        else:
            say(f"DONE {job['job']}")


# ---------------------------------------------------------------------- the parent


def main() -> int:
    from coord.local_cluster import free_ports

    relay = Relay()  # the processes' lines, printed as we wait for them
    log, wait_for = relay.log, relay.wait_for

    secret = secrets.token_urlsafe(32)  # every member of one cluster shares it
    addresses = [f"127.0.0.1:{port}" for port in free_ports(len(NAMES))]
    processes: list[Child] = []
    killed = None
    try:
        log(f"starting {len(NAMES)} member processes: {', '.join(NAMES)} ({NAMES[OBSERVER]} as an observer)")
        processes = [Child(name, __file__, i, addresses, secret, relay) for i, name in enumerate(NAMES)]
        for name in NAMES:
            wait_for(starts_with(f"{name}: ready"), 40, f"{name} to start")
        processes[0].send("produce")

        start = wait_for(lambda line: f"START {SLOW_JOB}" in line, 20, f"a worker to take {SLOW_JOB}")
        victim = next(p for p in processes if start.startswith(f"{p.name}:"))
        victim.kill()
        killed = victim.name
        log(
            f"SIGKILL {killed} in the middle of {SLOW_JOB}; its lock goes when its session expires "
            f"({SESSION_TIMEOUT:g} s)"
        )
        wait_for(lambda line: "ALL DONE" in line, SESSION_TIMEOUT + 25, "all results")
    except TimeoutError as exc:
        log(f"FAILED: {exc}")
        return 1
    finally:
        stop_all(processes, timeout=15)
        relay.drain()  # what they said while we stopped them (a DONE may come after ALL DONE)
        log("all processes stopped")

    # -- the invariant: every job done exactly once --------------------------
    seen = relay.seen
    done = Counter(m.group(1) for line in seen if (m := re.search(r": DONE (job-\d+)$", line)))
    results = {m.group(1): m.group(2) for line in seen if (m := re.search(r"RESULT (job-\d+) (.*)$", line))}
    problems = []
    for job in JOBS:
        if done[job] != 1:
            problems.append(f"{job} was finished {done[job]} times")
        if job not in results:
            problems.append(f"{job} has no result")
    if f"{killed}: DONE {SLOW_JOB}" in seen:
        problems.append(f"the killed worker {killed} finished {SLOW_JOB}")
    finisher = json.loads(results.get(SLOW_JOB, "{}")).get("by")
    if not any("ALL DONE: queue entries left 0, locks left 0" in line for line in seen):
        problems.append("the queue did not end empty")
    for problem in problems:
        log(f"PROBLEM: {problem}")
    if problems:
        return 1
    log(
        f"OK: {len(JOBS)} jobs, each finished exactly once; {SLOW_JOB} was taken over by {finisher} "
        f"after {killed} was killed in the middle of it"
    )
    return 0


if __name__ == "__main__":
    sys.exit(entry_point(__doc__, main, child=run_process))
