"""Plumbing between coord's threads and an asyncio event loop.

Three directions are needed and each has one helper here:

* a ``concurrent.futures.Future`` settled on a coord thread -> awaited on
  the loop (``asyncio.wrap_future``; the member's ``CoordFuture`` runs the
  hand-off on its callback thread, so results reach the loop in the same
  order as the watch events that the same writes fired);
* a callback invoked on the member's callback thread -> a coroutine
  scheduled on the loop (``LoopCallback``);
* a blocking call (a recipe's wait, ``start``/``stop``) -> run on its own
  daemon thread and awaited (``run_blocking``). A fresh thread per call,
  not a bounded pool: a recipe wait may block indefinitely, and a pool of a
  few workers would let a handful of waiting locks starve every other
  blocking call of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def is_coroutine_function(func: object) -> bool:
    """Whether calling ``func`` returns a coroutine (async def, also through
    ``functools.partial`` and bound methods)."""
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(type(func), "__call__", None)  # noqa: B004 -- an object whose __call__ is async def
    return call is not None and inspect.iscoroutinefunction(call)


#: Callback tasks still running (strong references until they finish).
_RUNNING: set[asyncio.Task[Any]] = set()


def _task_done(task: asyncio.Task[Any]) -> None:
    _RUNNING.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        logger.error("coroutine callback raised", exc_info=exc)


class LoopCallback:
    """A plain callable that schedules ``func(*args)`` (a coroutine function)
    on ``loop`` each time it is called, from any thread.

    Equality follows the wrapped function and loop, so registering the same
    coroutine function twice as a watch is deduplicated exactly as the sync
    API deduplicates a plain function (kazoo keeps one per path).
    """

    __slots__ = ("func", "loop")

    def __init__(self, func: Callable[..., Any], loop: asyncio.AbstractEventLoop) -> None:
        self.func = func
        self.loop = loop

    def __call__(self, *args: Any) -> None:
        # The coroutine is created on the loop, so a call that arrives after
        # the loop closed leaves no never-awaited coroutine behind.
        if self.loop.is_closed():
            logger.debug("event loop closed; dropped callback %r", self.func)
            return
        call_soon_threadsafe(self.loop, self._start, args)

    def _start(self, args: tuple[Any, ...]) -> None:
        task = self.loop.create_task(self.func(*args))
        _RUNNING.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(_task_done)

    @property
    def __signature__(self) -> inspect.Signature:
        # Recipes that inspect their callback's arity (DataWatch) see the
        # wrapped coroutine function's parameters.
        return inspect.signature(self.func)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LoopCallback) and self.func == other.func and self.loop is other.loop

    def __hash__(self) -> int:
        return hash((self.func, id(self.loop)))

    def __repr__(self) -> str:
        return f"LoopCallback({self.func!r})"


def adapt_callback(func: Any) -> Any:
    """``func`` itself unless it is a coroutine function, which is wrapped to
    run on the running loop (call only from a coroutine)."""
    if func is not None and is_coroutine_function(func):
        return LoopCallback(func, asyncio.get_running_loop())
    return func


def call_soon_threadsafe(loop: asyncio.AbstractEventLoop, func: Callable[..., Any], *args: Any) -> None:
    """``loop.call_soon_threadsafe`` that does nothing once the loop is closed."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(func, *args)


def run_blocking(func: Callable[..., Any], *args: Any, name: str = "coord-aio") -> asyncio.Future[Any]:
    """Run ``func(*args)`` on a new daemon thread; an asyncio future (of the
    running loop) for its outcome. Cancelling the returned future does not
    stop the thread: callers that can interrupt the call do so themselves."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, exc: BaseException | None) -> None:
        if result.done():
            return
        if exc is not None:
            result.set_exception(exc)
        else:
            result.set_result(value)

    def body() -> None:
        try:
            value = func(*args)
        except BaseException as exc:  # handed to the awaiting task
            call_soon_threadsafe(loop, settle, None, exc)
        else:
            call_soon_threadsafe(loop, settle, value, None)

    # A caller that stopped waiting (cancelled, shielded) never retrieves
    # the outcome; note it at debug level instead of asyncio's warning.
    result.add_done_callback(_note_outcome)
    threading.Thread(target=body, name=name, daemon=True).start()
    return result


def _note_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.debug("blocking call ended with %r", future.exception())
