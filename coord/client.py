"""``Coordinator``: kazoo's client API over one embedded coord member.

Reads are served from the member's local replica (ZooKeeper's sequential
consistency: possibly stale, never out of order); writes go through the Raft
log and return once applied locally, so a member always reads its own
writes. ``sync()`` pushes a no-op through the log and waits for it: reads
after it see every write committed before the call. Names, arguments,
return values and exceptions are kazoo's, so code written for
``KazooClient`` ports by changing the constructor.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import ops, paths
from .acl import ACL, canonical_acl, to_acl_list
from .errors import BadArgumentsError, ConnectionLoss, NoAuthError, NodeExistsError, NoNodeError, NotEmptyError
from .member import CoordFuture, Member, MemberStatus, check_timeout, raise_for_result
from .persistent_watches import DEFAULT_MAX_QUEUED
from .replication import RaftTiming
from .transaction import Transaction, convert_multi
from .tree import Applied
from .types import WatchedEvent, ZnodeStat
from .watches import WatchCallback

if TYPE_CHECKING:
    from .testing.faults import NetworkFaults


def _check_watch(watch: object) -> None:
    if watch is not None and not callable(watch):
        raise TypeError(f"watch must be callable or None, got {type(watch).__name__}")


def _check_flags(**flags: object) -> None:
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


def _value_bytes(value: object) -> bytes:
    # kazoo accepts None and sends ZooKeeper null data; coord stores it as b"".
    return b"" if value is None else value  # type: ignore[return-value]


class _RecipeBinding:
    """A recipe class bound to the member it is read from, like kazoo's
    ``client.Lock``: ``member.Lock(path)`` is ``Lock(member, path)``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        from . import recipes

        recipe = getattr(recipes, self._name)
        return recipe if instance is None else functools.partial(recipe, instance)


class Coordinator:
    """One member of a coord cluster (kazoo's ``KazooClient``, embedded).

    :param address: this member's Raft address, ``"host:port"``; the member
        binds exactly this address.
    :param peers: the other members' addresses (this member's own address
        may be included; it is ignored).
    :param data_dir: directory for the Raft journal and snapshots (mode
        0700). ``None`` keeps nothing: a restarted member starts empty and
        catches up from the others. With a data_dir a member survives its
        own crash (``kill -9``); by default nothing is fsynced, so an OS
        crash or power loss can lose recent entries on that machine (see
        ``durability``).
    :param secret: the cluster secret (>= 32 random bytes) that encrypts and
        authenticates peer traffic; else ``secret_file``, else
        ``$COORD_SECRET``. Required unless every address is loopback.
    :param session_timeout: seconds after which the leader expires the
        session of a member it has not heard from (its ephemerals go).
    :param request_timeout: default deadline of every write, in seconds.
    :param max_data_bytes: the largest znode value (ZooKeeper's
        jute.maxbuffer, 1 MiB by default).
    :param max_in_flight: writes this member may have outstanding at once.
    :param wait_for_slot: what a write does when all ``max_in_flight`` are
        outstanding: wait for one to finish, up to its timeout (default), or
        with False raise ``coord.errors.TooManyRequestsError`` at once
        (also from ``*_async``; nothing was sent), so a caller that
        generates load can shed it instead of queueing.
    :param raft_timing: Raft timers; see ``RaftTiming`` for the defaults.
    :param snapshot_entries: take a snapshot and truncate the Raft log after
        this many entries (ZooKeeper's snapCount). pysyncobj snapshots on its
        Raft thread (pickle + gzip of the whole tree); at its own default of
        5,000 entries, half of a write-heavy run went to compression.
    :param durability: ``"process-crash"`` (default): the journal in
        ``data_dir`` survives this process's crash (``kill -9``) but not an
        OS crash or power loss. ``"fsync"``: log entries, the Raft term and
        vote, and snapshots are fsynced before this member sends any Raft
        message or applies any entry, so every write it acknowledges or
        votes for survives power loss (needs ``data_dir``; costs one fsync
        per batch of appended entries).
    :param reap_interval: how often, in seconds, the leader looks for
        container and TTL nodes to delete (ZooKeeper's
        ``znode.container.checkIntervalMs``, 60 s there; 1 s here because
        the scan only visits container and TTL nodes).
    :param max_watch_queue: undelivered events a persistent watch may
        have before it is cancelled with a ``WATCH_OVERFLOW`` event.
    :param network_faults: testing hook: a
        ``coord.testing.faults.NetworkFaults`` policy that drops, delays,
        duplicates or replays this member's outgoing Raft messages. Never
        set it in production.
    :param observer: join as a non-voting observer (a pysyncobj read-only
        node): a full local replica serving reads and watches, whose writes
        and session are forwarded to the leader; it never votes and never
        counts for quorum. ``peers`` must list the voters; the voters need
        not list observers. An observer listens on nothing: its ``address``
        only names it (in logs and in the voters' ``status().observers``);
        give its host and any port unique among the observers.
    :param join: start a NEW voter that is being added to a running
        cluster with ``add_member``: ``peers`` are the current voters. It
        stands for election only once a leader has reached it (after it was
        added), so starting it early cannot depose the leader. Ignored when
        ``data_dir`` already holds this member's log (a restart).
    :param default_acl: the ACL (a list of ``coord.acl.ACL`` or kazoo
        ``ACL``) of nodes created without one, as kazoo's; None gives
        ``world:anyone`` with all permissions (``OPEN_ACL_UNSAFE``).
    :param super_digest: ZooKeeper's ``superDigest``
        (``"super:<base64 sha1>"``, see ``coord.acl.make_digest_acl_credential``):
        a session that ``add_auth("digest", ...)``s to it passes every ACL check.
    :param zk_address: ``"host:port"`` to serve ZooKeeper's client protocol
        on (kazoo, the Java client, zkCli; see ``coord.zk``), or None.
    :param zk_options: keyword options of ``coord.zk.server.ZkServer``
        (``tick_ms``, ``max_frame_bytes``, ``max_outbox_bytes``, ...).
    :param metrics_address: ``"host:port"`` to serve Prometheus metrics on
        (``/metrics``, what ``metrics()`` returns; port 0 picks a free
        port, see ``metrics_address``), or None. Needs the ``coord[metrics]``
        extra (``prometheus_client``). The endpoint is unauthenticated, so a
        non-loopback host is refused unless ``metrics_allow_remote``.
    :param metrics_allow_remote: allow a non-loopback ``metrics_address``
        (logged as a warning).
    """

    def __init__(
        self,
        address: str,
        peers: Sequence[str] = (),
        *,
        data_dir: str | None = None,
        secret: str | bytes | None = None,
        secret_file: str | None = None,
        session_timeout: float = 10.0,
        request_timeout: float = 10.0,
        max_data_bytes: int = ops.DEFAULT_MAX_DATA_BYTES,
        max_in_flight: int = 1000,
        raft_timing: RaftTiming | None = None,
        snapshot_entries: int = 100_000,
        durability: str = "process-crash",
        network_faults: NetworkFaults | None = None,
        reap_interval: float = 1.0,
        max_watch_queue: int = DEFAULT_MAX_QUEUED,
        observer: bool = False,
        join: bool = False,
        default_acl: Sequence[Any] | None = None,
        super_digest: str | None = None,
        zk_address: str | None = None,
        zk_options: dict[str, Any] | None = None,
        metrics_address: str | None = None,
        metrics_allow_remote: bool = False,
        wait_for_slot: bool = True,
    ) -> None:
        self._member = Member(
            address,
            peers,
            data_dir=data_dir,
            secret=secret,
            secret_file=secret_file,
            session_timeout=session_timeout,
            request_timeout=request_timeout,
            max_data_bytes=max_data_bytes,
            max_in_flight=max_in_flight,
            raft_timing=raft_timing,
            snapshot_entries=snapshot_entries,
            durability=durability,
            network_faults=network_faults,
            reap_interval=reap_interval,
            max_watch_queue=max_watch_queue,
            observer=observer,
            join=join,
            super_digest=super_digest,
            zk_address=zk_address,
            zk_options=zk_options,
            metrics_address=metrics_address,
            metrics_allow_remote=metrics_allow_remote,
            wait_for_slot=wait_for_slot,
        )
        self.address = self._member.address
        self.peers = self._member.peers
        self.data_dir = data_dir
        self.session_timeout = self._member.session_timeout
        self.request_timeout = self._member.request_timeout
        self.max_data_bytes = max_data_bytes
        self.max_in_flight = max_in_flight
        self.wait_for_slot = wait_for_slot
        self.max_watch_queue = max_watch_queue
        #: ACL of nodes created without one (kazoo's ``default_acl``; None: world:anyone).
        self.default_acl = None if default_acl is None else to_acl_list(canonical_acl(default_acl))

    # ------------------------------------------------------------------ lifecycle and state

    def start(self, timeout: float = 15.0) -> None:
        """Join the cluster and open this member's session.

        Returns once a leader exists, this replica has caught up with the
        commit index it learned, and the session is open.

        :raises NotReadyError: no leader/quorum within ``timeout``.
        """
        self._member.start(timeout)

    def stop(self) -> None:
        """Close this member's session (its ephemerals go at once) and leave.

        The member stays a voter of the cluster configuration: stopping it
        is like a crash to the others, minus the session timeout.
        """
        self._member.stop()

    def __enter__(self) -> Coordinator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def session_id(self) -> int:
        """This member's current session id (0 before start)."""
        return self._member.session_id

    @property
    def state(self) -> str:
        """``SessionState`` of this member's session."""
        return self._member.state

    @property
    def connected(self) -> bool:
        """True while started and the session is CONNECTED (kazoo's ``connected``;
        False while SUSPENDED or LOST, and before ``start``/after ``stop``)."""
        return self._member.connected

    def add_listener(self, listener: Callable[[str], Any]) -> None:
        """Call ``listener(state)`` on CONNECTED / SUSPENDED / LOST changes
        (on the callback thread)."""
        self._member.add_listener(listener)

    def remove_listener(self, listener: Callable[[str], Any]) -> None:
        """Stop calling ``listener`` (one given to ``add_listener``)."""
        self._member.remove_listener(listener)

    def status(self) -> MemberStatus:
        """This member's role, leader, term, applied zxid and session."""
        return self._member.status()

    def metrics(self) -> dict[str, int | float | str]:
        """ZooKeeper ``mntr``-style metrics of this member, by name (sorted):
        Raft role and progress, znode/session/watch counts, queue depths,
        write latency percentiles, commit/retransmission/snapshot/election/
        session-expiry/refused-connection counters. Gauges are read now;
        counters are cumulative since this object was built. See the
        README's metrics reference for every key.

        :raises NotReadyError: the member is not started.
        """
        return self._member.metrics()

    @property
    def metrics_address(self) -> str | None:
        """``host:port`` of the running Prometheus endpoint (the port actually
        bound), or None when there is none."""
        return self._member.metrics_address

    def add_member(self, address: str, timeout: float | None = None) -> None:
        """Add the voter ``address`` to the cluster (call on any voter).

        One change at a time: refused while another change is uncommitted,
        and unless the voters the leader reaches form a quorum of the new
        configuration without the newcomer. Returns once the change is
        committed and applied on this member. Start the new member with
        ``peers`` = the current voters and ``join=True`` (before or after
        this call), then wait until the leader's ``status().peer_lag``
        shows it caught up before the next change.

        :raises MembershipChangeError: refused; nothing changed.
        :raises NotReadyError: no leader to take the change.
        :raises UnknownOutcomeError: no outcome within ``timeout``: the
            change may still commit (check ``status().voters``).
        """
        self._member.change_membership("add", address, timeout)

    def remove_member(self, address: str, timeout: float | None = None) -> None:
        """Remove the voter ``address`` from the cluster (call on any voter).

        Refused while another change is uncommitted, for the current leader
        (stop it first; a new leader is elected), and unless the remaining
        voters the leader reaches form a quorum of the new configuration.
        Stop the removed member afterwards (and wipe its ``data_dir`` before
        any reuse). Raises as ``add_member``.
        """
        self._member.change_membership("rem", address, timeout)

    # ------------------------------------------------------------------ reads (local replica)

    def exists(self, path: str, watch: WatchCallback | None = None) -> ZnodeStat | None:
        """The node's Stat, or None. ``watch`` fires on its creation, data
        change or deletion."""
        path = paths.validate_path(path)
        _check_watch(watch)
        return self._member.read_stat(path, watch)[0]

    def get(self, path: str, watch: WatchCallback | None = None) -> tuple[bytes, ZnodeStat]:
        """The node's value and Stat. ``watch`` fires on its next change or deletion.

        :raises NoNodeError: the node does not exist (no watch is left).
        """
        path = paths.validate_path(path)
        _check_watch(watch)
        found = self._member.read_data(path, watch)[0]
        if found is None:
            raise NoNodeError(path)
        return found

    def get_children(
        self, path: str, watch: WatchCallback | None = None, include_data: bool = False
    ) -> list[str] | tuple[list[str], ZnodeStat]:
        """The node's child names (sorted); with ``include_data``, also its Stat.

        :raises NoNodeError: the node does not exist.
        """
        path = paths.validate_path(path)
        _check_watch(watch)
        _check_flags(include_data=include_data)
        found = self._member.read_children(path, watch)[0]
        if found is None:
            raise NoNodeError(path)
        return found if include_data else found[0]

    def _settled(self, value: Any, zxid: int, missing: str | None = None) -> CoordFuture:
        """A local read's outcome as an already-settled Future carrying the
        replica's zxid; ``missing`` names the path when the node is absent."""
        future = self._member.new_future()
        future.zxid = zxid
        if missing is not None:
            future.set_exception(NoNodeError(missing))
        else:
            future.set_result(value)
        return future

    def _failed(self, error: BaseException) -> CoordFuture:
        """A local read refused (NoAuthError) as an already-failed Future."""
        future = self._member.new_future()
        future.set_exception(error)
        return future

    def exists_async(self, path: str, watch: WatchCallback | None = None) -> CoordFuture:
        """``exists`` as a settled Future (argument errors still raise at once)."""
        path = paths.validate_path(path)
        _check_watch(watch)
        stat, zxid = self._member.read_stat(path, watch)
        return self._settled(stat, zxid)

    def get_async(self, path: str, watch: WatchCallback | None = None) -> CoordFuture:
        """``get`` as a settled Future (NoNodeError is set on it)."""
        path = paths.validate_path(path)
        _check_watch(watch)
        try:
            found, zxid = self._member.read_data(path, watch)
        except NoAuthError as exc:
            return self._failed(exc)
        return self._settled(found, zxid, missing=path if found is None else None)

    def get_children_async(
        self, path: str, watch: WatchCallback | None = None, include_data: bool = False
    ) -> CoordFuture:
        """``get_children`` as a settled Future (NoNodeError is set on it)."""
        path = paths.validate_path(path)
        _check_watch(watch)
        _check_flags(include_data=include_data)
        try:
            found, zxid = self._member.read_children(path, watch)
        except NoAuthError as exc:
            return self._failed(exc)
        if found is None:
            return self._settled(None, zxid, missing=path)
        return self._settled(found if include_data else found[0], zxid)

    # ------------------------------------------------------------------ writes (through the log)

    def create_async(
        self,
        path: str,
        value: bytes = b"",
        acl: object = None,
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
        include_data: bool = False,
        timeout: float | None = None,
        *,
        container: bool = False,
        ttl: int | None = None,
    ) -> CoordFuture:
        """``create`` returning a Future. ``makepath`` is only honoured by
        the synchronous ``create`` (it needs several round trips)."""
        _check_flags(
            ephemeral=ephemeral, sequence=sequence, makepath=makepath, include_data=include_data, container=container
        )
        if ttl is not None and (type(ttl) is not int):
            raise TypeError(f"ttl must be an int number of milliseconds or None, got {type(ttl).__name__}")
        if acl is None:
            acl = self.default_acl  # None here: the default ACL, no ACL work at all
        op = ops.create_op(
            path,
            _value_bytes(value),
            ephemeral=ephemeral,
            sequence=sequence,
            container=container,
            ttl=ttl,
            acl=acl,  # type: ignore[arg-type]
        )

        def convert(applied: Applied) -> Any:
            raise_for_result(applied, path)
            created, stat = applied.result[1]
            return (created, stat) if include_data else created

        return self._member.submit(op, convert, timeout)

    def create(
        self,
        path: str,
        value: bytes = b"",
        acl: object = None,
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
        include_data: bool = False,
        timeout: float | None = None,
        *,
        container: bool = False,
        ttl: int | None = None,
    ) -> Any:
        """Create a node; returns its path (``(path, ZnodeStat)`` with
        ``include_data``). ``acl`` (a list of ``coord.acl.ACL``; default
        ``default_acl``, else world:anyone) is the node's ACL, enforced on
        every member as ZooKeeper does (``get_acls``/``set_acls``/``add_auth``).

        ``container=True`` makes a ZooKeeper container node: once it has had
        a child and has none left, the leader deletes it (within
        ``reap_interval``). ``ttl=<ms>`` makes a TTL node (persistent, may be
        sequential): the leader deletes it once it has no children and has
        not been modified for longer than ``ttl`` milliseconds. Both
        decisions are the leader's, carried through the log with its time;
        ``stat.ephemeralOwner`` shows ZooKeeper's encoding of the node type.

        :raises NodeExistsError, NoNodeError, NoChildrenForEphemeralsError:
            as ZooKeeper does.
        :raises NoAuthError: the session may not CREATE under the parent.
        :raises InvalidACLError: a malformed ``acl``, or ``auth`` ids in it
            while the session has authenticated none.
        :raises BadArgumentsError: a container that is also ephemeral,
            sequential or has a ttl; a TTL node that is ephemeral; a ttl
            outside 1..2**40-1 ms.
        """
        _check_flags(makepath=makepath)
        acl = acl or self.default_acl  # kazoo's rule: an empty list means the default too
        attempt = functools.partial(
            self.create_async,
            path,
            value,
            acl,
            ephemeral,
            sequence,
            include_data=include_data,
            timeout=timeout,
            container=container,
            ttl=ttl,
        )
        try:
            return self._member.wait(attempt(), timeout)
        except NoNodeError:
            if not makepath:
                raise
        self.ensure_path(paths.parent_of(path), acl)
        return self._member.wait(attempt(), timeout)

    def ensure_path(self, path: str, acl: object = None) -> str | bool:
        """Create ``path`` and any missing ancestors, as persistent empty
        nodes with ``acl`` (default ``default_acl``). Like kazoo, returns the
        path if this call created it, else True."""
        path = paths.validate_path(path)
        acl = acl or self.default_acl
        current = ""
        result: str | bool = True
        for name in path.strip("/").split("/") if path != "/" else []:
            current = f"{current}/{name}"
            result = True
            if self.exists(current) is not None:
                continue
            with contextlib.suppress(NodeExistsError):  # created concurrently: fine
                result = self.create(current, acl=acl)
        return result

    def set_async(self, path: str, value: bytes, version: int = -1, timeout: float | None = None) -> CoordFuture:
        """``set`` without waiting: a Future of the new Stat (argument errors raise at once)."""
        op = ops.set_op(path, _value_bytes(value), version)

        def convert(applied: Applied) -> ZnodeStat:
            raise_for_result(applied, path)
            return applied.result[1]  # type: ignore[no-any-return]

        return self._member.submit(op, convert, timeout)

    def set(self, path: str, value: bytes, version: int = -1, timeout: float | None = None) -> ZnodeStat:
        """Replace the node's value if ``version`` matches (-1: any); returns the new Stat.

        :raises NoNodeError, BadVersionError: as ZooKeeper does.
        """
        return self._member.wait(self.set_async(path, value, version, timeout), timeout)  # type: ignore[no-any-return]

    def delete_async(self, path: str, version: int = -1, timeout: float | None = None) -> CoordFuture:
        """Non-recursive ``delete`` without waiting: a Future of True (argument errors raise at once)."""
        op = ops.delete_op(path, version)

        def convert(applied: Applied) -> bool:
            raise_for_result(applied, path)
            return True

        return self._member.submit(op, convert, timeout)

    def delete(self, path: str, version: int = -1, recursive: bool = False, timeout: float | None = None) -> bool:
        """Delete the node if ``version`` matches; with ``recursive``, the
        node and everything under it (atomically when it fits in one
        transaction, like ZooKeeper's deleteall otherwise).

        :raises NoNodeError, BadVersionError, NotEmptyError: as ZooKeeper does
            (a recursive delete of a missing node returns True, as kazoo's).
        """
        _check_flags(recursive=recursive)
        if not recursive:
            return self._member.wait(self.delete_async(path, version, timeout), timeout)  # type: ignore[no-any-return]
        path = paths.validate_path(path)
        ops.delete_op(path, version)  # ignored, as kazoo does, but it must still be a version
        check_timeout(timeout)  # even when there turns out to be nothing to delete
        if path == "/":
            raise BadArgumentsError("invalid path '/': the root cannot be deleted")
        for _attempt in range(10):
            batches = self._recursive_delete_batches(path)
            if not batches:
                return True
            try:
                for batch in batches:
                    self._member.wait(
                        self._member.submit(
                            ("multi", tuple(batch)), functools.partial(convert_multi, raise_first=True), timeout
                        ),
                        timeout,
                    )
                return True
            except (NoNodeError, NotEmptyError):
                continue  # the subtree changed under us: look again
        raise ConnectionLoss(f"recursive delete of {path} kept racing with concurrent changes")

    def _recursive_delete_batches(self, path: str) -> list[list[tuple[Any, ...]]]:
        """Delete ops for the subtree, deepest first, cut into transactions
        that stay under the size and op-count limits."""
        order = self._member.subtree(path)
        order.reverse()
        batches: list[list[tuple[Any, ...]]] = []
        size = 0
        budget = max(1024, self.max_data_bytes // 2)
        for node in order:
            if not batches or len(batches[-1]) >= ops.MULTI_MAX_OPS or size + len(node) + 16 > budget:
                batches.append([])
                size = 0
            batches[-1].append(ops.delete_op(node, -1))
            size += len(node) + 16
        return batches

    # ------------------------------------------------------------------ ACLs and authentication

    def get_acls(self, path: str) -> tuple[list[ACL], ZnodeStat]:
        """The node's ACL and Stat, from the local replica (kazoo's ``get_acls``).

        Needs READ or ADMIN on the node; without ADMIN digest ids come back
        as ``user:x``, as ZooKeeper answers.

        :raises NoNodeError: the node does not exist.
        :raises NoAuthError: the session has neither READ nor ADMIN on it.
        """
        path = paths.validate_path(path)
        found = self._member.read_acl(path)
        if found is None:
            raise NoNodeError(path)
        return to_acl_list(found[0]), found[1]

    def get_acls_async(self, path: str) -> CoordFuture:
        """``get_acls`` as a settled Future."""
        try:
            return self._settled(self.get_acls(path), self._member.read_stat(path, None)[1])
        except (NoNodeError, NoAuthError) as exc:
            return self._failed(exc)

    def set_acls_async(
        self, path: str, acls: Sequence[Any], version: int = -1, timeout: float | None = None
    ) -> CoordFuture:
        """``set_acls`` without waiting: a Future of the new Stat."""
        op = ops.set_acl_op(path, acls, version)

        def convert(applied: Applied) -> ZnodeStat:
            raise_for_result(applied, path)
            return applied.result[1]  # type: ignore[no-any-return]

        return self._member.submit(op, convert, timeout)

    def set_acls(self, path: str, acls: Sequence[Any], version: int = -1, timeout: float | None = None) -> ZnodeStat:
        """Replace the node's ACL if its ``aversion`` is ``version`` (-1:
        any); returns the new Stat (only ``aversion`` changes; no watch fires).

        :raises NoNodeError, BadVersionError: as ZooKeeper does.
        :raises NoAuthError: the session lacks ADMIN on the node.
        :raises InvalidACLError: a malformed ``acls`` (empty, unknown scheme, ...).
        """
        return self._member.wait(self.set_acls_async(path, acls, version, timeout), timeout)  # type: ignore[no-any-return]

    def add_auth_async(self, scheme: str, credential: str, timeout: float | None = None) -> CoordFuture:
        """``add_auth`` without waiting: a Future of True."""
        return self._member.add_auth(scheme, credential, timeout)

    def add_auth(self, scheme: str, credential: str, timeout: float | None = None) -> bool:
        """Authenticate this member's session, as kazoo's ``add_auth``:
        ``add_auth("digest", "user:password")`` lets it pass the ACL entries
        of ``make_digest_acl("user", "password", ...)``. Only the digest
        (never the password) goes through the log; a later session of this
        member (after a session loss) is authenticated again.

        :raises AuthFailedError: an unknown scheme (coord supports
            ``digest``) or a credential that is not ``user:password``.
        """
        return self._member.wait(self.add_auth_async(scheme, credential, timeout), timeout)  # type: ignore[no-any-return]

    def sync_async(self, path: str = "/", timeout: float | None = None) -> CoordFuture:
        """``sync`` without waiting: a Future of ``path``, settled once the no-op is applied here."""
        path = paths.validate_path(path)
        return self._member.submit(("sync",), lambda applied: path, timeout)

    def sync(self, path: str = "/", timeout: float | None = None) -> str:
        """Wait until a no-op proposed now is applied here: local reads then
        see every write committed before this call."""
        return self._member.wait(self.sync_async(path, timeout), timeout)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ persistent watches and admin reads

    def add_watch(self, path: str, func: WatchCallback, recursive: bool = False) -> None:
        """Call ``func(WatchedEvent)`` for every committed change of
        ``path`` (ZooKeeper 3.6's persistent watch), or with
        ``recursive=True`` of ``path`` and every node below it (no CHILD
        events then), until ``remove_watch``. ``path`` need not exist.

        Every change applied after this call is delivered once, in commit
        order, with no gaps, across leader changes and session loss. Callbacks
        run on a small pool of ``coord-watch`` threads, never on the
        replication thread. A watcher that falls ``max_watch_queue`` events
        behind is cancelled with a final ``WATCH_OVERFLOW`` event (see
        ``coord.persistent_watches``).
        """
        path = paths.validate_path(path)
        if not callable(func):
            raise TypeError(f"func must be callable, got {type(func).__name__}")
        _check_flags(recursive=recursive)
        self._member.add_persistent_watch(path, func, recursive)

    def remove_watch(self, path: str, func: WatchCallback) -> bool:
        """End the persistent watches of ``func`` on ``path``: it receives
        what was queued, then a ``PERSISTENT_WATCH_REMOVED`` event. Returns
        False (ZooKeeper: NoWatcherException) if there was none."""
        path = paths.validate_path(path)
        return self._member.remove_persistent_watch(path, func)

    def get_ephemerals(self, prefix: str = "/") -> list[str]:
        """Paths of this member's session's ephemeral nodes that start with
        ``prefix`` (a plain string prefix, as ZooKeeper's getEphemerals), sorted."""
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        if not prefix.startswith("/"):
            raise BadArgumentsError(f"prefix must start with '/', got {prefix!r}")
        return self._member.session_ephemerals(prefix)

    def get_all_children_number(self, path: str) -> int:
        """How many nodes are below ``path``, at any depth (ZooKeeper's
        getAllChildrenNumber), from the local replica.

        :raises NoNodeError: ``path`` does not exist.
        """
        path = paths.validate_path(path)
        count = self._member.descendant_count(path)
        if count is None:
            raise NoNodeError(path)
        return count

    def transaction(self) -> Transaction:
        """A kazoo-style all-or-nothing transaction builder."""
        return Transaction(self)

    def _wait(self, future: concurrent.futures.Future[Any], timeout: float | None) -> Any:
        return self._member.wait(future, timeout)

    def _commit_transaction_async(self, op_list: tuple[tuple[Any, ...], ...], timeout: float | None) -> CoordFuture:
        return self._member.submit(ops.multi_op(op_list), functools.partial(convert_multi, op_list=op_list), timeout)

    # ------------------------------------------------------------------ recipes bound to this client

    # kazoo binds its recipes on the client (``client.Lock(path)``); so does
    # coord, each as the recipe class with this member as first argument.
    DataWatch = _RecipeBinding()
    ChildrenWatch = _RecipeBinding()
    Lock = _RecipeBinding()
    ReadLock = _RecipeBinding()
    WriteLock = _RecipeBinding()
    Semaphore = _RecipeBinding()
    Election = _RecipeBinding()
    Barrier = _RecipeBinding()
    DoubleBarrier = _RecipeBinding()
    Queue = _RecipeBinding()
    LockingQueue = _RecipeBinding()
    Counter = _RecipeBinding()
    Party = _RecipeBinding()
    ShallowParty = _RecipeBinding()
    SetPartitioner = _RecipeBinding()
    NonBlockingLease = _RecipeBinding()
    MultiNonBlockingLease = _RecipeBinding()
    PersistentEphemeralNode = _RecipeBinding()


__all__ = ["CoordFuture", "Coordinator", "MemberStatus", "WatchedEvent"]
