"""kazoo's parties: a group of participants, each an ephemeral child of the
party's path, so a participant whose session ends leaves by itself.

* ``Party`` names each child ``<hex>__party__`` and keeps the identifier in
  its data (iteration reads every child);
* ``ShallowParty`` puts the identifier in the name ``<hex>-<identifier>``
  (iteration is one ``get_children``; the identifier must be valid in a
  znode name).

Built only on the public client API.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import NodeExistsError, NoNodeError

if TYPE_CHECKING:
    from ..client import Coordinator


class BaseParty:
    """What both parties share: joining, leaving and counting."""

    create_path: str

    def __init__(self, client: Coordinator, path: str, identifier: str | None = None) -> None:
        if identifier is not None and not isinstance(identifier, str):
            raise TypeError(f"identifier must be a str or None, got {type(identifier).__name__}")
        self.client = client
        self.path = path
        self.data = (identifier or "").encode("utf-8")
        self.ensured_path = False
        self.participating = False

    def _ensure_parent(self) -> None:
        if not self.ensured_path:
            self.client.ensure_path(self.path)
            self.ensured_path = True

    def join(self) -> None:
        """Join the party (idempotent: joining twice is one participant)."""
        self._ensure_parent()
        with contextlib.suppress(NodeExistsError):  # already joined
            self.client.create(self.create_path, self.data, ephemeral=True)
        self.participating = True

    def leave(self) -> bool:
        """Leave the party; returns whether this participant was in it."""
        self.participating = False
        try:
            self.client.delete(self.create_path)
        except NoNodeError:
            return False
        return True

    def __len__(self) -> int:
        """The number of participants."""
        self._ensure_parent()
        return len(self._get_children())

    def _get_children(self) -> list[str]:
        children = self.client.get_children(self.path)
        assert isinstance(children, list)
        return children


class Party(BaseParty):
    """A party whose participants' identifiers live in their nodes' data."""

    _NODE_NAME = "__party__"

    def __init__(self, client: Coordinator, path: str, identifier: str | None = None) -> None:
        super().__init__(client, path, identifier=identifier)
        self.node = uuid.uuid4().hex + self._NODE_NAME
        self.create_path = f"{path}/{self.node}"

    def __iter__(self) -> Iterator[str]:
        """The participants' identifiers."""
        self._ensure_parent()
        for child in self._get_children():
            try:
                data, _ = self.client.get(f"{self.path}/{child}")
            except NoNodeError:
                continue  # left while we were listing
            yield data.decode("utf-8")

    def _get_children(self) -> list[str]:
        return [c for c in super()._get_children() if self._NODE_NAME in c]


class ShallowParty(BaseParty):
    """A party whose participants' identifiers are part of their node names."""

    def __init__(self, client: Coordinator, path: str, identifier: str | None = None) -> None:
        super().__init__(client, path, identifier=identifier)
        if "/" in self.data.decode("utf-8"):
            raise ValueError(f"a ShallowParty identifier must not contain '/', got {identifier!r}")
        self.node = "-".join([uuid.uuid4().hex, self.data.decode("utf-8")])
        self.create_path = f"{path}/{self.node}"

    def __iter__(self) -> Iterator[str]:
        """The participants' identifiers."""
        self._ensure_parent()
        for child in self._get_children():
            yield child[child.find("-") + 1 :]


__all__ = ["BaseParty", "Party", "ShallowParty"]
