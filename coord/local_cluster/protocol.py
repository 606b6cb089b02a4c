"""The parent <-> child contract: wire format, errors, limits, secret passing.

Both sides import this module; nothing here starts a process or a thread.

Wire format: one JSON object per line.  Request ``{"id", "method", "args",
"kwargs"}``; reply ``{"id", "ok": true, "result"}`` or ``{"id", "ok": false,
"error": {"type", "message", "traceback"}}``; unsolicited lines carry an
``"event"`` key (``ready`` / ``failed``).  Values that JSON lacks are tagged:
``{"$bytes": base64}``, ``{"$tuple": [...]}``, ``{"$stat": [...]}`` (a
:class:`~coord.types.ZnodeStat`), ``{"$event": [...]}`` (a
:class:`~coord.types.WatchedEvent`).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import traceback
from collections.abc import Mapping
from typing import Any

from coord import errors as _errors
from coord.types import WatchedEvent, ZnodeStat

#: Environment variable carrying the cluster secret from parent to child (the
#: secret never appears on a command line, where ``ps`` would show it).
SECRET_ENV = "_COORD_LOCAL_SECRET"
#: Environment variable with the parent's pid, for the parent-death signal.
PARENT_PID_ENV = "_COORD_LOCAL_PARENT_PID"

#: Hard cap that keeps every wait bounded whatever the caller asks for.
MAX_WAIT = 600.0


# --------------------------------------------------------------------------
# errors of the harness itself (remote coord errors are re-raised as is)
# --------------------------------------------------------------------------


class RpcError(Exception):
    """A problem talking to a child process (not an error of coord itself)."""


class ChildExitedError(RpcError):
    """The child process exited (or closed its stdout) before answering."""


class RpcTimeoutError(RpcError, TimeoutError):
    """The child did not answer before the call's deadline.

    The call may still be running (or have run) in the child.
    """


class RemoteError(RpcError):
    """The child raised an exception that is not a coord exception.

    ``remote_type`` is the class name, ``remote_traceback`` the child's
    formatted traceback.
    """

    def __init__(self, remote_type: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{remote_type}: {message}")
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback


class ChildStartError(RpcError):
    """The child failed to start (it said so, exited, or never became ready)."""


#: Builtin exceptions re-raised by name (in addition to coord.errors).
_BUILTIN_ERRORS: dict[str, type[BaseException]] = {
    cls.__name__: cls
    for cls in (ValueError, TypeError, KeyError, TimeoutError, RuntimeError, AttributeError)
}


def _exception_from_remote(error: Mapping[str, Any]) -> BaseException:
    """Rebuild the exception described by a child's error reply.

    Coord exceptions come back as their own class (looked up by name in
    :mod:`coord.errors`), so ``except NoNodeError`` works across the process
    boundary; a few builtins too; anything else becomes :class:`RemoteError`.
    """
    name = str(error.get("type", "Exception"))
    message = str(error.get("message", ""))
    tb = str(error.get("traceback", ""))
    cls = getattr(_errors, name, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        exc: BaseException = cls(message) if message else cls()
    elif name in _BUILTIN_ERRORS:
        exc = _BUILTIN_ERRORS[name](message)
    else:
        return RemoteError(name, message, tb)
    exc.remote_traceback = tb  # type: ignore[attr-defined]
    return exc


def _error_reply(exc: BaseException) -> dict[str, str]:
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:],
    }



# --------------------------------------------------------------------------
# JSON codec
# --------------------------------------------------------------------------


def encode_value(obj: Any) -> Any:
    """Turn a result/argument into JSON-compatible data (see module doc)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, ZnodeStat):
        return {"$stat": list(obj)}
    if isinstance(obj, WatchedEvent):
        return {"$event": list(obj)}
    if isinstance(obj, tuple):
        return {"$tuple": [encode_value(v) for v in obj]}
    if isinstance(obj, (list, set, frozenset)):
        return [encode_value(v) for v in obj]
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: encode_value(v) for k, v in obj.items()}
        return {"$dict": [[encode_value(k), encode_value(v)] for k, v in obj.items()]}
    # Record-like results (``status()`` returns a dataclass with to_dict())
    # travel as plain dicts.
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return encode_value(to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return encode_value(dataclasses.asdict(obj))
    # Anything else (an address object, say) travels as text:
    # a harness should degrade, not crash, on an unexpected result type.
    return {"$repr": str(obj)}


def decode_value(obj: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if isinstance(obj, list):
        return [decode_value(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        ((key, val),) = obj.items()
        if key == "$bytes":
            return base64.b64decode(val)
        if key == "$stat":
            return ZnodeStat(*val)
        if key == "$event":
            return WatchedEvent(*val)
        if key == "$tuple":
            return tuple(decode_value(v) for v in val)
        if key == "$dict":
            return {decode_value(k): decode_value(v) for k, v in val}
        if key == "$repr":
            return str(val)
    return {k: decode_value(v) for k, v in obj.items()}


def _dumps(message: Mapping[str, Any]) -> bytes:
    return (json.dumps(message, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")



# --------------------------------------------------------------------------
# limits and the secret (shared by both sides)
# --------------------------------------------------------------------------


def _bounded(timeout: float | None) -> float:
    """Clamp a caller's timeout to (0, MAX_WAIT]: no wait in here is endless."""
    if timeout is None or timeout > MAX_WAIT or math.isnan(timeout):
        return MAX_WAIT
    return max(0.0, timeout)


def _encode_secret(secret: str | bytes) -> str:
    kind = "b" if isinstance(secret, bytes) else "s"
    raw = secret if isinstance(secret, bytes) else secret.encode("utf-8")
    return kind + base64.b64encode(raw).decode("ascii")


def _decode_secret(text: str) -> str | bytes:
    raw = base64.b64decode(text[1:])
    return raw if text[0] == "b" else raw.decode("utf-8")
