"""kazoo's ``Counter``: a shared int or float changed atomically.

The value lives in one node, as ``repr(value)`` in ASCII (or, with
``support_curator``, as Curator's SharedCount: a 4-byte big-endian int).
A change reads the value and its version and writes the new value with a
version check; a concurrent change makes the write fail with
``BadVersionError`` and the change is retried from a fresh read
(optimistic concurrency, as kazoo's retry policy does).

A change whose outcome the cluster could not report
(``UnknownOutcomeError``) is NOT retried: it may have been applied, and a
retry would count twice. Such errors reach the caller.
"""

from __future__ import annotations

import logging
import random
import struct
import time
from typing import TYPE_CHECKING, Any

from ..errors import BadVersionError, CancelledRequestError, OperationTimeoutError
from .lock import _check_recipe_path

if TYPE_CHECKING:
    from ..client import Coordinator

logger = logging.getLogger(__name__)

#: How often a change is retried after losing a race (BadVersionError)
#: before giving up with BadVersionError.
MAX_ATTEMPTS = 100


class Counter:
    """kazoo-compatible shared counter.

    ::

        counter = member.Counter("/stats/jobs")
        counter += 2
        counter -= 1
        counter.value        # 1
        counter.pre_value, counter.post_value   # (2, 1): around the last change

    :param default: the value of a counter whose node is empty; its type
        (int, float, ...) is the counter's type.
    :param support_curator: store Curator's SharedCount format (int only).
    """

    def __init__(self, client: Coordinator, path: str, default: Any = 0, support_curator: bool = False) -> None:
        self.client = client
        self.path = _check_recipe_path(path)
        self.default = default
        self.default_type = type(default)
        self.support_curator = support_curator
        self._ensured_path = False
        self.pre_value: Any = None
        self.post_value: Any = None
        if self.support_curator and not isinstance(self.default, int):
            raise TypeError("when support_curator is enabled the default type must be an int")

    def _ensure_node(self) -> None:
        if not self._ensured_path:
            self.client.ensure_path(self.path)
            self._ensured_path = True

    def _decode(self, raw: bytes) -> Any:
        if raw == b"":
            return self.default
        if self.support_curator:
            return struct.unpack(">i", raw)[0]
        return self.default_type(raw.decode("ascii"))

    def _encode(self, value: Any) -> bytes:
        if self.support_curator:
            try:
                return struct.pack(">i", value)
            except struct.error as exc:
                raise ValueError(f"counter value {value!r} does not fit Curator's 32-bit format") from exc
        return repr(value).encode("ascii")

    def _value(self) -> tuple[Any, int]:
        self._ensure_node()
        raw, stat = self.client.get(self.path)
        return self._decode(raw), stat.version

    @property
    def value(self) -> Any:
        """The counter's value as this member's replica has it (call
        ``client.sync()`` first to see every change committed before)."""
        return self._value()[0]

    def _change(self, value: Any) -> Counter:
        if not isinstance(value, self.default_type):
            raise TypeError("invalid type for value change")
        delay = 0.001
        for _attempt in range(MAX_ATTEMPTS):
            pre_value, version = self._value()
            post_value = pre_value + value
            data = self._encode(post_value)
            try:
                self.client.set(self.path, data, version=version)
            except (BadVersionError, CancelledRequestError, OperationTimeoutError) as exc:
                # Lost a race, or definitely not applied: read again and retry.
                logger.debug("counter %s change retried after %r", self.path, exc)
                self.post_value = None
                time.sleep(random.uniform(0, delay))
                delay = min(delay * 2, 0.1)
                continue
            self.pre_value, self.post_value = pre_value, post_value
            return self
        raise BadVersionError(f"counter {self.path}: gave up after {MAX_ATTEMPTS} concurrent changes")

    def __add__(self, value: Any) -> Counter:
        """Add ``value`` to the counter (``counter += value``)."""
        return self._change(value)

    def __sub__(self, value: Any) -> Counter:
        """Subtract ``value`` from the counter (``counter -= value``)."""
        return self._change(-value)

    def __repr__(self) -> str:
        return f"<Counter {self.path}>"


__all__ = ["Counter"]
