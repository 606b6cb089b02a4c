"""asyncio twin of coord's client API (as httpx's ``AsyncClient`` mirrors ``Client``).

``AsyncCoordinator`` has the sync ``Coordinator``'s names, arguments,
results and exceptions, each awaitable; watches are also async iterators
(``member.watch_data(path)``, ``member.watch_children(path)``, and every
committed change through a persistent watch: ``member.watch(path)``); recipes are
usable with ``async with`` (``async with member.Lock(path):``).

    async with AsyncCoordinator("127.0.0.1:7001", peers=[...]) as member:
        await member.create("/app/config", b"v1", makepath=True)
        async for data, stat, event in member.watch_data("/app/config"):
            ...
"""

from .client import AsyncCoordinator, AsyncTransaction
from .recipes import AsyncElection, AsyncLock, AsyncRecipe
from .watches import ChildrenWatchIterator, DataWatchIterator, PersistentWatchIterator

__all__ = [
    "AsyncCoordinator",
    "AsyncElection",
    "AsyncLock",
    "AsyncRecipe",
    "AsyncTransaction",
    "ChildrenWatchIterator",
    "DataWatchIterator",
    "PersistentWatchIterator",
]
