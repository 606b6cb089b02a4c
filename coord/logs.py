"""coord's logging conventions: one logger tree, structured lines, rate limits.

Everything coord logs goes to loggers named ``coord.<module>`` (and
pysyncobj's own lines to ``coord.pysyncobj.<module>``, see
``route_logger``), so one ``logging.getLogger("coord")`` setting governs all
of it. Operational events (leader changes, session expiry, snapshots,
refused peer connections) are logged as *structured* lines: a short human
message followed by ``event=<name>`` and ``key=value`` fields, and the same
fields on the ``LogRecord`` (``extra=``) for JSON formatters::

    leader changed event=leader_change member=127.0.0.1:7001 leader=127.0.0.1:7002 previous=127.0.0.1:7003 term=4

Lines that a misbehaving peer or a flapping network can produce in floods
go through a ``RateLimitedLog``: at most ``burst`` lines per key per
``interval_s``, the suppressed ones counted and reported on the next line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

#: LogRecord attributes an ``extra=`` key must not overwrite (logging raises).
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def format_fields(fields: Mapping[str, object]) -> str:
    """``key=value`` pairs in the given order; a value with spaces, quotes or
    ``=`` (or an empty string) is written as its ``repr``."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, str) and (not value or any(c in value for c in " \t\n\"'=")):
            text = repr(value)
        elif isinstance(value, float):
            text = f"{value:.6g}"
        else:
            text = str(value)
        parts.append(f"{key}={text}")
    return " ".join(parts)


def event_extra(event: str, fields: Mapping[str, object]) -> dict[str, object]:
    """The ``extra=`` mapping of a structured line: ``event`` plus every
    field, a field whose name a LogRecord already uses prefixed ``coord_``."""
    extra: dict[str, object] = {"event": event}
    for key, value in fields.items():
        extra[f"coord_{key}" if key in _RESERVED else key] = value
    return extra


def log_event(logger: logging.Logger, level: int, event: str, message: str, **fields: object) -> None:
    """Log one structured line (see the module docstring); nothing is
    formatted when ``level`` is disabled for ``logger``."""
    if logger.isEnabledFor(level):
        logger.log(level, "%s event=%s %s", message, event, format_fields(fields), extra=event_extra(event, fields))


class RateLimitedLog:
    """At most ``burst`` lines per key in any window of ``interval_s``
    seconds (the window opens at the first line after a quiet one); the
    lines in between are counted and the count is reported with the next
    line that gets through (``suppressed=N``)."""

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0, burst: int = 1) -> None:
        if not interval_s > 0 or type(burst) is not int or burst < 1:
            raise ValueError(f"need interval_s > 0 and an int burst >= 1, got {interval_s!r}, {burst!r}")
        self.logger = logger
        self._interval_s = interval_s
        self._burst = burst
        # key -> [window start, lines let through in it, lines suppressed since the last one]
        self._state: dict[str, list[Any]] = {}
        self._lock = threading.Lock()

    def _admit(self, key: str) -> int | None:
        """None if the line is suppressed, else how many were suppressed before it."""
        now = time.monotonic()
        with self._lock:
            state = self._state.get(key)
            if state is None or now - state[0] >= self._interval_s:
                suppressed = state[2] if state is not None else 0
                self._state[key] = [now, 1, 0]
                return suppressed
            if state[1] < self._burst:
                state[1] += 1
                suppressed, state[2] = state[2], 0
                return int(suppressed)
            state[2] += 1
            return None

    def log(self, level: int, key: str, message: str, *args: object) -> None:
        """A plain %-style line, limited per ``key``."""
        if not self.logger.isEnabledFor(level):
            return
        suppressed = self._admit(key)
        if suppressed is None:
            return
        if suppressed:
            message += f" ({suppressed} similar lines suppressed)"
        self.logger.log(level, message, *args)

    def warning(self, key: str, message: str, *args: object) -> None:
        self.log(logging.WARNING, key, message, *args)

    def event(self, level: int, key: str, event: str, message: str, **fields: object) -> None:
        """A structured line (``log_event``), limited per ``key``; a
        ``suppressed=N`` field is added when lines were held back."""
        if not self.logger.isEnabledFor(level):
            return
        suppressed = self._admit(key)
        if suppressed is None:
            return
        if suppressed:
            fields = {**fields, "suppressed": suppressed}
        log_event(self.logger, level, event, message, **fields)


class _Forward(logging.Handler):
    """Re-emits a record of ``source[.x]`` as one of ``target[.x]``."""

    def __init__(self, source: str, target: str) -> None:
        super().__init__(logging.NOTSET)
        self.source = source
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        suffix = record.name[len(self.source) :] if record.name.startswith(self.source) else ""
        target = logging.getLogger(self.target + suffix)
        if not target.isEnabledFor(record.levelno):
            return
        copy = logging.makeLogRecord(record.__dict__)
        copy.name = target.name
        target.handle(copy)


def route_logger(source: str, target: str) -> None:
    """Send everything logged under the ``source`` logger (and its children)
    to the ``target`` logger tree instead: ``source.x`` becomes
    ``target.x``, and ``target``'s levels, filters and handlers decide.

    ``source`` stops propagating to the root (so a line is not handled
    twice) and lets every record through to the forwarder, which applies
    the target's effective level. Handlers attached directly to ``source``
    keep working. Idempotent.
    """
    logger = logging.getLogger(source)
    if any(isinstance(h, _Forward) and h.target == target for h in logger.handlers):
        return
    logger.addHandler(_Forward(source, target))
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
