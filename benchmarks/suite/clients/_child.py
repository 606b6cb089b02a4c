"""Shared main loop of the client children: serve a BenchOps over RPC."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable

from coord.local_cluster import PARENT_PID_ENV, RpcServer, configure_child_logging, take_stdout
from coord.local_cluster import _set_parent_death_signal as set_parent_death_signal
from coord.local_cluster.bench_agent import BenchOps


def serve(make: Callable[[], BenchOps], close: Callable[[BenchOps], None], log_level: str = "WARNING") -> int:
    """Build the ops object, print ``ready``, serve until stdin closes."""
    configure_child_logging(log_level)
    parent = os.environ.get(PARENT_PID_ENV)
    set_parent_death_signal(int(parent) if parent else None)
    out_fd = take_stdout()
    ops: BenchOps | None = None
    server: RpcServer | None = None
    try:
        ops = make()
        handlers = ops.handlers()
        handlers["bench_ack_first"] = ops.bench_ack_first
        server = RpcServer(handlers, out_fd)
        signal.signal(signal.SIGTERM, lambda *_: server.request_stop() if server else None)
        server.start_reading()
        server.send({"event": "ready", "pid": os.getpid()})
        server.serve()
        return 0
    except BaseException as exc:  # reported to the parent
        logging.getLogger(__name__).exception("client child failed")
        msg = {"event": "failed", "error": {"type": type(exc).__name__, "message": str(exc)}}
        if server is not None:
            server.send(msg)
        else:
            import json

            os.write(out_fd, (json.dumps(msg) + "\n").encode())
        return 1
    finally:
        if server is not None:
            server.close()
        if ops is not None:
            with contextlib.suppress(Exception):  # exiting anyway
                close(ops)
