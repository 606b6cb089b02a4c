"""Recipes built only on coord's public client API, as kazoo's are."""

from .watchers import ChildrenWatch, DataWatch

__all__ = ["ChildrenWatch", "DataWatch"]
