"""One module per workload; each exposes ``run(system, cfg, progress) ->
dict`` (figures only: numbers, lists of numbers, short strings).  A
workload a system cannot do raises :class:`NotApplicable` (reported as n/a).
Every loop is bounded in count and time by the child that runs it."""

from __future__ import annotations

from coord.local_cluster import RemoteError


class NotApplicable(Exception):
    """This system has no equivalent of the workload."""


def not_supported(exc: BaseException) -> bool:
    """True if a child said the workload does not map (``NotSupported``)."""
    return isinstance(exc, RemoteError) and "NotSupported" in str(exc) or "NotSupported" in type(exc).__name__
