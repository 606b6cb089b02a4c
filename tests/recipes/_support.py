"""Support for the recipe tests (their fixtures are in conftest.py): a
blocking recipe call on a daemon thread joined with a deadline (a stuck
call fails the test instead of hanging it), and a cluster context manager
that always stops what it started."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from helpers import InProcessCluster


class Worker:
    """``func(*args, **kwargs)`` running on a daemon thread; keeps its result
    or exception."""

    def __init__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()

        def run() -> None:
            try:
                self.result = func(*args, **kwargs)
            except BaseException as exc:  # handed to the test by join()
                self.error = exc
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, name="recipe-test", daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> Any:
        """The result; re-raises the thread's exception; AssertionError if it
        did not finish within ``timeout`` seconds."""
        if not self.done.wait(timeout):
            raise AssertionError(f"worker did not finish within {timeout}s")
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.result


@contextlib.contextmanager
def running_cluster(size: int = 3, **kwargs: Any) -> Iterator[InProcessCluster]:
    """A started in-process cluster (``kwargs`` go to InProcessCluster),
    always stopped afterwards; its ``network_faults``, if any, are healed
    first."""
    cluster = InProcessCluster(size, **kwargs).start()
    try:
        yield cluster
    finally:
        faults = kwargs.get("network_faults")
        if faults is not None:
            faults.clear()
        cluster.stop()
