"""kazoo's ``Election``: run a function while this contender is the leader.

An election is a fair ``Lock`` on ``path``: contenders queue in creation
order and the first one runs ``func``; when it returns (or raises, or the
leader's member dies and its session goes) the next contender wins.
The leader's ``fencing_token`` (the czxid of its contender node, see
``coord.recipes.fencing``) strictly increases from one leader to the next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import CancelledError
from .lock import Lock

if TYPE_CHECKING:
    from ..client import Coordinator
    from ..transaction import Transaction


class Election:
    """kazoo-compatible leader election.

    ::

        election = member.Election("/election/scheduler", "host-a")
        election.run(lead)   # blocks until elected, then calls lead()

    Inside ``lead``, ``election.fencing_token`` identifies this term of
    leadership and ``election.is_leader`` says whether it is still held
    (False once the session is lost).
    """

    def __init__(self, client: Coordinator, path: str, identifier: object = None) -> None:
        self.lock = Lock(client, path, identifier)

    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Contend; once elected, call ``func(*args, **kwargs)`` and give up
        leadership when it returns or raises. Returns without calling
        ``func`` if ``cancel()`` is called first.

        :raises ValueError: ``func`` is not callable.
        """
        if not callable(func):
            raise ValueError("leader function is not callable")
        try:
            with self.lock:
                func(*args, **kwargs)
        except CancelledError:
            pass

    def cancel(self) -> None:
        """Stop contending. Does not interrupt a running leader function."""
        self.lock.cancel()

    def contenders(self) -> list[str]:
        """Identifiers of the contenders, the leader first."""
        return self.lock.contenders()

    @property
    def is_leader(self) -> bool:
        """True while this contender is the leader (session not lost)."""
        return self.lock.is_acquired

    @property
    def fencing_token(self) -> int | None:
        """This leader's fencing token while leader, else None."""
        return self.lock.fencing_token

    def fenced_check(self) -> tuple[str, int]:
        """See ``Lock.fenced_check``."""
        return self.lock.fenced_check()

    def fenced_transaction(self) -> Transaction:
        """See ``Lock.fenced_transaction``."""
        return self.lock.fenced_transaction()


__all__ = ["Election"]
