"""Helpers of the asyncio facade's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

#: No test coroutine may run longer than this (seconds).
TEST_DEADLINE_S = 30.0


def run(coro_fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run ``coro_fn(*args)`` on a fresh event loop, failing at the deadline."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro_fn(*args), TEST_DEADLINE_S)

    return asyncio.run(bounded())


async def eventually(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` on the loop until truthy; fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)
