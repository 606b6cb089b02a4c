"""Async adapters over coord's sync recipes (``coord.recipes``).

The recipes' logic lives once, in the sync classes; an adapter drives a
sync recipe object and moves every call that can block (a write, a wait)
onto a worker thread, so the event loop never blocks. There is one adapter
per recipe *shape*, not one per recipe:

* ``AsyncLock`` -- ``Lock``, ``ReadLock``, ``WriteLock``, ``Semaphore``:
  ``async with``, ``await acquire(...)``, ``await release()``,
  ``fencing_token``. Cancelling a task that waits in ``acquire`` (or in
  ``async with``) calls the recipe's ``cancel()``, waits for the worker to
  settle, and releases the lock if it was acquired in the meantime: a
  cancelled waiter never leaves a held lock behind.
* ``AsyncElection`` -- ``Election``: ``await election.run(coro_fn, ...)``
  runs the leader coroutine on the loop while the sync recipe holds the
  leadership on a worker thread; cancelling the awaiting task cancels the
  candidacy or the running leader coroutine, and leadership is given up.
* ``AsyncRecipe`` -- every other recipe: each method becomes awaitable
  (run on a worker thread), ``async with`` maps to the recipe's own
  ``with``, plain attributes are read directly. ``await adapter`` returns
  the adapter once the recipe exists (recipes whose constructor already
  talks to the cluster, like ``NonBlockingLease``, are built on a worker
  thread: ``lease = await member.NonBlockingLease(path, duration)``).
  Cancelling a task awaiting a method call abandons the wait; the call
  runs to completion on its thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from .. import recipes as _recipes
from . import _bridge

if TYPE_CHECKING:
    from ..client import Coordinator

logger = logging.getLogger(__name__)

#: Seconds between repeated ``cancel()`` calls while a cancelled wait settles
#: (a cancel that lands before the worker entered the wait is re-issued).
_CANCEL_REPEAT_S = 0.05

#: Recipes whose constructor already reads or writes the cluster: built on
#: a worker thread when the adapter is first awaited or used.
_BLOCKING_CONSTRUCTORS = frozenset({"NonBlockingLease", "MultiNonBlockingLease", "SetPartitioner"})

#: Attributes (properties) that may write, read as ``await adapter.name``.
_AWAITABLE_ATTRIBUTES: dict[str, frozenset[str]] = {"Counter": frozenset({"value"})}


class AsyncRecipe:
    """A sync recipe driven from asyncio (see the module docstring)."""

    #: Methods whose wait the recipe's ``cancel()`` interrupts.
    _cancellable: frozenset[str] = frozenset()

    def __init__(self, name: str, factory: Callable[[], Any], *, lazy: bool = False) -> None:
        self._name = name
        self._factory = factory
        self._recipe: Any = None if lazy else factory()
        self._awaitable_attributes = _AWAITABLE_ATTRIBUTES.get(name, frozenset())

    # ------------------------------------------------------------------ construction

    @property
    def recipe(self) -> Any:
        """The sync recipe object this adapter drives."""
        if self._recipe is None:
            raise RuntimeError(f"{self._name} is not built yet: await it first")
        return self._recipe

    async def _ensure(self) -> Any:
        if self._recipe is None:
            built = await _bridge.run_blocking(self._factory, name=f"coord-aio-{self._name}")
            if self._recipe is None:
                self._recipe = built
        return self._recipe

    def __await__(self) -> Generator[Any, None, Any]:
        async def ready() -> AsyncRecipe:
            await self._ensure()
            return self

        return ready().__await__()

    # ------------------------------------------------------------------ calls

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        recipe = await self._ensure()
        func = getattr(recipe, method)
        worker = _bridge.run_blocking(
            functools.partial(func, *args, **kwargs), name=f"coord-aio-{self._name}.{method}"
        )
        try:
            return await asyncio.shield(worker)
        except asyncio.CancelledError:
            if method in self._cancellable and not worker.done():
                await self._cancel_and_settle(recipe, worker)
            if worker.done() and not worker.cancelled() and worker.exception() is None:
                await self._undo(method, worker.result())
            raise

    async def _cancel_and_settle(self, recipe: Any, worker: asyncio.Future[Any]) -> None:
        """Interrupt the recipe's wait and let the worker finish, so the
        recipe is in a settled state before the cancellation propagates."""
        while not worker.done():
            recipe.cancel()
            await asyncio.wait({worker}, timeout=_CANCEL_REPEAT_S)
        reset = getattr(recipe, "cancelled", None)
        if isinstance(reset, bool):
            recipe.cancelled = False  # the cancel was ours; the next acquire starts clean

    async def _undo(self, method: str, result: Any) -> None:
        """Compensate for a call that completed after its caller was
        cancelled (the caller will never see, and so never undo, it)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_recipe", "_factory", "_name", "_awaitable_attributes"):
            raise AttributeError(name)
        if name in self._awaitable_attributes:
            return self._read_blocking(name)
        value = getattr(self.recipe, name)
        if callable(value):
            return functools.partial(self._call, name)
        return value

    async def _read_blocking(self, name: str) -> Any:
        recipe = await self._ensure()
        return await _bridge.run_blocking(getattr, recipe, name, name=f"coord-aio-{self._name}.{name}")

    # ------------------------------------------------------------------ protocols of the sync recipe

    async def __aenter__(self) -> AsyncRecipe:
        recipe = await self._ensure()
        if not hasattr(recipe, "__enter__"):
            raise TypeError(f"{self._name} is not a context manager")
        await self._call("__enter__")
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        await asyncio.shield(
            _bridge.run_blocking(self.recipe.__exit__, exc_type, exc, tb, name=f"coord-aio-{self._name}.exit")
        )

    def __len__(self) -> int:  # a local read in every recipe that has it (Party, Queue)
        return len(self.recipe)

    def __iter__(self) -> Any:
        return iter(self.recipe)

    def __bool__(self) -> bool:  # NonBlockingLease: whether it was obtained
        return bool(self.recipe) if self._recipe is not None else True

    def __add__(self, value: Any) -> Any:
        """``await (counter + n)``: the sync recipe's ``+`` on a worker thread."""
        return self._call("__add__", value)

    def __sub__(self, value: Any) -> Any:
        return self._call("__sub__", value)

    def __repr__(self) -> str:
        return f"<async {self._recipe!r}>" if self._recipe is not None else f"<async {self._name} (not built)>"


class AsyncLock(AsyncRecipe):
    """``Lock`` / ``ReadLock`` / ``WriteLock`` / ``Semaphore`` for asyncio."""

    _cancellable = frozenset({"acquire", "__enter__"})

    async def acquire(self, blocking: bool = True, timeout: float | None = None, **kwargs: Any) -> bool:
        """Acquire (see the sync recipe); cancelling the awaiting task cancels the wait."""
        return await self._call("acquire", blocking, timeout, **kwargs)  # type: ignore[no-any-return]

    async def release(self) -> bool:
        """Release the lock (on a worker thread; a cancelled caller's release still completes)."""
        return await self._call("release")  # type: ignore[no-any-return]

    def cancel(self) -> None:
        """Cancel a pending ``acquire`` (it raises ``coord.errors.CancelledError``)."""
        self.recipe.cancel()

    async def contenders(self) -> list[str]:
        """The contenders' identifiers, the current holder first (kazoo's ``contenders()``)."""
        return await self._call("contenders")  # type: ignore[no-any-return]

    @property
    def is_acquired(self) -> bool:
        """Whether this lock is held (stays True while the session is only SUSPENDED)."""
        return bool(self.recipe.is_acquired)

    @property
    def fencing_token(self) -> int | None:
        """The recipe's fencing token while held (see ``coord.recipes.Lock``)."""
        return self.recipe.fencing_token  # type: ignore[no-any-return]

    async def __aenter__(self) -> AsyncLock:
        await self._call("acquire")
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        await asyncio.shield(_bridge.run_blocking(self.recipe.release, name=f"coord-aio-{self._name}.release"))

    async def _undo(self, method: str, result: Any) -> None:
        if method == "acquire" and result is True or method == "__enter__":
            logger.debug("%s acquired after its waiter was cancelled: releasing", self._name)
            await asyncio.shield(_bridge.run_blocking(self.recipe.release, name=f"coord-aio-{self._name}.undo"))


class AsyncElection(AsyncRecipe):
    """``Election`` for asyncio: ``await election.run(coro_fn, *args)``."""

    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Contend; once elected, run ``func(*args, **kwargs)`` -- awaited on
        this loop if it is a coroutine function, else on the worker thread --
        and give up leadership when it returns or raises. Cancelling the
        awaiting task withdraws the candidacy or cancels the running leader
        coroutine; either way leadership is released before the
        cancellation propagates.
        """
        if not callable(func):
            raise ValueError("leader function is not callable")
        recipe = await self._ensure()
        loop = asyncio.get_running_loop()
        running: list[Any] = []

        def leader() -> None:
            if not _bridge.is_coroutine_function(func):
                func(*args, **kwargs)
                return
            future = asyncio.run_coroutine_threadsafe(func(*args, **kwargs), loop)
            running.append(future)
            future.result()

        worker = _bridge.run_blocking(recipe.run, leader, name=f"coord-aio-{self._name}.run")
        try:
            await asyncio.shield(worker)
        except asyncio.CancelledError:
            while not worker.done():
                recipe.cancel()
                for future in running:
                    future.cancel()
                await asyncio.wait({worker}, timeout=_CANCEL_REPEAT_S)
            raise
        finally:
            if worker.done() and not worker.cancelled():
                worker.exception()  # retrieved: an error after cancellation is not reported twice

    def cancel(self) -> None:
        """Stop contending (does not interrupt a running leader function)."""
        self.recipe.cancel()

    async def contenders(self) -> list[str]:
        """The contenders' identifiers, the current holder first (kazoo's ``contenders()``)."""
        return await self._call("contenders")  # type: ignore[no-any-return]


_LOCK_SHAPED = frozenset({"Lock", "ReadLock", "WriteLock", "Semaphore"})
_ADAPTERS: dict[str, type[AsyncRecipe]] = {
    **{name: AsyncLock for name in _LOCK_SHAPED},
    "Election": AsyncElection,
}


def make_adapter(name: str, client: Coordinator, *args: Any, **kwargs: Any) -> AsyncRecipe:
    """The async adapter of recipe ``name`` over the sync ``client``."""
    recipe_class = getattr(_recipes, name)
    factory = functools.partial(recipe_class, client, *args, **kwargs)
    adapter_class = _ADAPTERS.get(name, AsyncRecipe)
    return adapter_class(name, factory, lazy=name in _BLOCKING_CONSTRUCTORS)


class AsyncRecipeBinding:
    """``member.Lock(path)`` on an ``AsyncCoordinator``: the adapter of the
    sync recipe bound to the wrapped member (kazoo's ``client.Lock`` style)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return functools.partial(make_adapter, self._name, instance.coordinator)


__all__ = ["AsyncElection", "AsyncLock", "AsyncRecipe", "AsyncRecipeBinding", "make_adapter"]
