"""Run coord members as separate OS processes on loopback.

Used by the demo (``python -m coord demo``), the examples, the benchmarks and
the multi-process tests.  A real deployment embeds :class:`coord.Coordinator`
in its own processes; this package only exists so that one parent process can
drive a whole cluster of *real* processes (so that ``SIGKILL``, ``SIGSTOP``
and restarts behave exactly as they would in production).

Contract (:mod:`~coord.local_cluster.protocol`)
    The JSON-lines wire format and its value encoding, the harness's own
    errors (:class:`RpcError` and subclasses), the mapping of a child's
    exceptions back to their classes, the limits, and how the secret travels.

Parent side
    :mod:`~coord.local_cluster.process`: :func:`free_ports`,
    :class:`RpcProcess` (a child speaking JSON lines on stdin/stdout),
    :func:`start_all`, :func:`wait_until`;
    :mod:`~coord.local_cluster.cluster`: :class:`MemberProcess` (one coord
    member), and :class:`LocalCluster` (``n`` members as a context manager).

Child side
    :mod:`~coord.local_cluster.agent`: :func:`main` (``python -m
    coord.local_cluster --address A --peers B,C``) builds a Coordinator,
    starts it, prints one ``ready`` line and then serves RPC calls: a
    whitelist of Coordinator methods plus helpers that must run *inside* the
    member (watch logs, timed write loops, async throughput).
    :mod:`~coord.local_cluster.server`: :class:`RpcServer` is the reusable
    serving loop (the pysyncobj benchmark child uses it too), with the
    process plumbing every child needs.

Lifetime rules (no orphans): every child runs in its own session (a Ctrl-C on
the terminal reaches only the parent, which then stops the children in
order), exits when its stdin closes (so a dead parent never leaves it
running), asks the kernel for ``SIGKILL`` when the parent dies (this also
covers a child that is ``SIGSTOP``-ed at that moment), and the parent kills
every child it still has at interpreter exit.

Everything callers use is re-exported here (``from coord.local_cluster import
LocalCluster``).
"""

from coord.local_cluster.agent import COORDINATOR_METHODS, MemberAgent, main
from coord.local_cluster.cluster import LocalCluster, MemberProcess
from coord.local_cluster.process import (
    LOOPBACK,
    RpcProcess,
    child_env,
    free_ports,
    repo_root,
    start_all,
    wait_until,
)
from coord.local_cluster.protocol import (
    MAX_WAIT,
    PARENT_PID_ENV,
    SECRET_ENV,
    ChildExitedError,
    ChildStartError,
    RemoteError,
    RpcError,
    RpcTimeoutError,
    decode_value,
    encode_value,
)
from coord.local_cluster.protocol import _decode_secret as _decode_secret  # benchmarks/_pysyncobj_floor.py
from coord.local_cluster.server import (
    MAX_IN_FLIGHT,
    MAX_OPS,
    RpcServer,
    configure_child_logging,
    percentile,
    run_throughput,
    take_stdout,
)
from coord.local_cluster.server import _set_parent_death_signal as _set_parent_death_signal  # the floor child too

__all__ = [
    "COORDINATOR_METHODS",
    "LOOPBACK",
    "MAX_IN_FLIGHT",
    "MAX_OPS",
    "MAX_WAIT",
    "PARENT_PID_ENV",
    "SECRET_ENV",
    "ChildExitedError",
    "ChildStartError",
    "LocalCluster",
    "MemberAgent",
    "MemberProcess",
    "RemoteError",
    "RpcError",
    "RpcProcess",
    "RpcServer",
    "RpcTimeoutError",
    "child_env",
    "configure_child_logging",
    "decode_value",
    "encode_value",
    "free_ports",
    "main",
    "percentile",
    "repo_root",
    "run_throughput",
    "start_all",
    "take_stdout",
    "wait_until",
]
