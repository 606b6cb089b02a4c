"""kazoo-style transactions: ops collected client-side, committed as one
all-or-nothing ``multi`` entry (one zxid for the whole transaction)."""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING, Any

from . import ops
from .errors import ErrorCode, RolledBackError, RuntimeInconsistency, error_for_code
from .member import check_timeout
from .tree import Applied

if TYPE_CHECKING:
    from .client import Coordinator


def _sub_result(op: tuple[Any, ...], result: tuple[int, Any]) -> Any:
    kind = op[0]
    if kind == "create":
        return result[1][0]
    if kind == "set":
        return result[1]
    return True


def convert_multi(applied: Applied, raise_first: bool = False, op_list: tuple[Any, ...] = ()) -> list[Any]:
    """A multi's result as kazoo reports it from ZooKeeper.

    On success: per op, the created path, True (delete/check) or the new
    ZnodeStat (set_data). On failure: ``RolledBackError`` for the ops before
    the failing one, its own error, ``RuntimeInconsistency`` for the rest.
    With ``raise_first`` a failure raises the failing op's error instead.
    """
    code, sub_results = applied.result
    if sub_results is None:  # the whole entry was refused (bad arguments, expired session)
        raise error_for_code(code)
    if code == ErrorCode.OK:
        return (
            [_sub_result(op, result) for op, result in zip(op_list, sub_results, strict=False)]
            if op_list
            else [result[1] for result in sub_results]
        )
    results: list[Any] = []
    for sub_code, _ in sub_results:
        if sub_code == ErrorCode.OK:
            results.append(RolledBackError())
        elif sub_code == ErrorCode.RUNTIME_INCONSISTENCY:
            results.append(RuntimeInconsistency())
        else:
            error = error_for_code(sub_code)
            if raise_first:
                raise error
            results.append(error)
    return results


class Transaction:
    """Collects create/delete/set_data/check ops and commits them atomically.

    Usable as a context manager (commits on a clean exit), like kazoo's
    ``TransactionRequest``.
    """

    def __init__(self, client: Coordinator) -> None:
        self._client = client
        self._ops: list[tuple[Any, ...]] = []
        self.committed = False

    def create(
        self, path: str, value: bytes = b"", acl: object = None, ephemeral: bool = False, sequence: bool = False
    ) -> None:
        """Add a create (kazoo's arguments, as ``Coordinator.create``).

        Validated now: a bad path or value raises here, not at commit.
        """
        if acl is None:
            acl = self._client.default_acl
        self._add(ops.create_op(path, value, ephemeral=ephemeral, sequence=sequence, acl=acl))  # type: ignore[arg-type]

    def delete(self, path: str, version: int = -1) -> None:
        """Add a delete of ``path`` (only at ``version`` unless it is -1)."""
        self._add(ops.delete_op(path, version))

    def set_data(self, path: str, value: bytes, version: int = -1) -> None:
        """Add a set of ``path``'s value (only at ``version`` unless it is -1)."""
        self._add(ops.set_op(path, value, version))

    def check(self, path: str, version: int) -> None:
        """Add a check that ``path`` exists at ``version`` (any version if
        -1). Otherwise the whole transaction fails: nothing is applied and
        this op's result is ``BadVersionError`` or ``NoNodeError``."""
        self._add(ops.check_op(path, version))

    def _add(self, op: tuple[Any, ...]) -> None:
        if self.committed:
            raise ValueError("Transaction already committed")
        ops.check_size(op, self._client.max_data_bytes)  # a bad op raises when added
        self._ops.append(op)

    def commit_async(self, timeout: float | None = None) -> concurrent.futures.Future[list[Any]]:
        """Commit; the Future's result is the per-op result list."""
        if self.committed:
            raise ValueError("Transaction already committed")
        check_timeout(timeout)  # before the transaction counts as committed
        self.committed = True
        if not self._ops:  # ZooKeeper accepts an empty multi and returns no results
            empty: concurrent.futures.Future[list[Any]] = concurrent.futures.Future()
            empty.set_result([])
            return empty
        op_tuple = tuple(self._ops)
        return self._client._commit_transaction_async(op_tuple, timeout)

    def commit(self, timeout: float | None = None) -> list[Any]:
        """Commit and return the per-op results (exceptions in place of
        failed ops; nothing is applied unless everything is)."""
        return self._client._wait(self.commit_async(timeout), timeout)  # type: ignore[no-any-return]

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
