"""Recipes built only on coord's public client API, as kazoo's are.

Each recipe is also bound on the client, kazoo style: ``member.Lock(path)``
is ``coord.recipes.Lock(member, path)``. Modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

#: recipe name -> module under ``coord.recipes`` that defines it.
RECIPE_MODULES: dict[str, str] = {
    "DataWatch": "watchers",
    "ChildrenWatch": "watchers",
    "Lock": "lock",
    "ReadLock": "lock",
    "WriteLock": "lock",
    "Semaphore": "lock",
    "Election": "election",
    "Barrier": "barrier",
    "DoubleBarrier": "barrier",
    "Queue": "queue",
    "LockingQueue": "queue",
    "Counter": "counter",
    "Party": "party",
    "ShallowParty": "party",
    "SetPartitioner": "partitioner",
    "NonBlockingLease": "lease",
    "MultiNonBlockingLease": "lease",
    "PersistentEphemeralNode": "persistent_node",
}

#: Names that are not bound on the client (helpers used with recipes).
HELPER_MODULES: dict[str, str] = {
    "FenceGuard": "fencing",
    "NotHeldError": "fencing",
    "StaleFencingTokenError": "fencing",
    "PartitionState": "partitioner",
}

__all__ = sorted([*RECIPE_MODULES, *HELPER_MODULES])


def __getattr__(name: str) -> Any:
    module = RECIPE_MODULES.get(name) or HELPER_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'coord.recipes' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
