"""``coord status``: every voter's role, term, Raft commit and applied
index, applied zxid, lag behind the leader, open sessions and znode count,
as a table (or ``--json``).

Each voter is asked directly over its Raft port
(``coord.replication.member_status``): with the cluster secret through
coord's authenticated peer protocol, so only secret holders can ask and
nothing is decoded before it is verified. Observers listen on nothing; the
leader's view of them (their lag) is shown below the voters. With
``--zk`` it asks members' ZooKeeper endpoints (``mntr``/``srvr``) instead:
no secret needed, but only role, zxid, sessions and znodes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import socket
from collections.abc import Mapping
from typing import Any

from coord import errors
from coord.security import split_address

from ._common import add_cluster_arguments, error, one_line, resolve_cluster

COLUMNS = ("MEMBER", "ROLE", "TERM", "COMMIT", "APPLIED", "ZXID", "LAG", "SESSIONS", "ZNODES")


def add_parser(sub: Any) -> None:
    """The ``status`` subcommand's arguments."""
    parser = sub.add_parser(
        "status",
        help="every member's role, term, zxid, lag, sessions, znodes",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    add_cluster_arguments(parser)
    parser.set_defaults(timeout=3.0)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=main, default_log_level="ERROR")


def _ask(address: str, secret: bytes | None, timeout: float) -> dict[str, Any]:
    from coord.replication import member_status

    try:
        reply = member_status(address, secret, timeout)
    except OSError as exc:
        return {"address": address, "reachable": False, "error": one_line(exc)}
    if "error" in reply:
        return {"address": address, "reachable": True, "error": str(reply["error"])}
    reply["reachable"] = True
    return reply


def collect(voters: list[str], secret: bytes | None, timeout: float) -> dict[str, Any]:
    """Ask every voter at once; the report ``--json`` prints.

    ``leader`` is the address the reachable leader with the highest term
    reports (None if none answered as leader); each member's ``lag`` is the
    leader's count of log entries it is behind (0 for the leader, None when
    unknown)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(voters))) as pool:
        replies = list(pool.map(lambda a: _ask(a, secret, timeout), voters))
    leaders = [r for r in replies if r.get("role") == "leader"]
    leader = max(leaders, key=lambda r: int(r.get("term", 0)), default=None)
    lag: dict[str, int] = dict(leader.get("peer_lag") or {}) if leader else {}
    members = []
    for reply in replies:
        address = reply["address"]
        row = {
            "address": address,
            "reachable": reply["reachable"],
            "role": reply.get("role"),
            "leader": reply.get("leader"),
            "term": reply.get("term"),
            "commit_index": reply.get("commit_index"),
            "last_applied": reply.get("last_applied"),
            "zxid": reply.get("zxid"),
            "lag": 0 if leader is not None and address == leader["address"] else lag.get(address),
            "sessions": reply.get("sessions"),
            "znode_count": reply.get("znode_count"),
            "has_quorum": reply.get("has_quorum"),
        }
        if "error" in reply:
            row["error"] = reply["error"]
        members.append(row)
    observers = sorted(set(leader.get("observers") or ())) if leader else []
    return {
        "leader": leader["address"] if leader else None,
        "term": leader.get("term") if leader else None,
        "members": members,
        "observers": [{"address": name, "lag": lag.get(name)} for name in observers],
    }


def _four_letter(address: str, word: str, timeout: float) -> str:
    host, port = split_address(address)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(word.encode("ascii"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if sum(map(len, chunks)) > 1 << 20:
                break
    return b"".join(chunks).decode("utf-8", errors="replace")


def _ask_zk(address: str, timeout: float) -> dict[str, Any]:
    try:
        mntr = dict(line.split("\t", 1) for line in _four_letter(address, "mntr", timeout).splitlines() if "\t" in line)
        srvr = dict(line.split(": ", 1) for line in _four_letter(address, "srvr", timeout).splitlines() if ": " in line)
    except OSError as exc:
        return {"address": address, "reachable": False, "error": one_line(exc)}
    if "zk_server_state" not in mntr:
        return {"address": address, "reachable": True, "error": "no mntr answer (is mntr whitelisted?)"}

    def number(text: str | None, base: int = 10) -> int | None:
        try:
            return int(text, base) if text is not None else None
        except ValueError:
            return None

    return {
        "address": address,
        "reachable": True,
        "role": mntr["zk_server_state"],
        "zxid": number(srvr.get("Zxid"), 16),
        "sessions": number(mntr.get("zk_global_sessions")),
        "znode_count": number(mntr.get("zk_znode_count")),
    }


def collect_zk(addresses: list[str], timeout: float) -> dict[str, Any]:
    """Like ``collect``, from members' ZooKeeper endpoints (``mntr`` and
    ``srvr``, unauthenticated like ZooKeeper's): role, zxid, sessions and
    znodes only (the Raft term and indexes are not part of ZooKeeper's
    four-letter words)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(addresses))) as pool:
        replies = list(pool.map(lambda a: _ask_zk(a, timeout), addresses))
    leader = next((r for r in replies if r.get("role") == "leader"), None)
    members = []
    for reply in replies:
        row = {key: reply.get(key) for key in ("address", "reachable", "role", "zxid", "sessions", "znode_count")}
        row.update(term=None, commit_index=None, last_applied=None, lag=None, leader=None, has_quorum=None)
        if "error" in reply:
            row["error"] = reply["error"]
        members.append(row)
    return {"leader": leader["address"] if leader else None, "term": None, "members": members, "observers": []}


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def render(report: dict[str, Any]) -> str:
    """The report as an aligned text table."""
    rows = []
    for m in report["members"]:
        role = m["role"] if m["reachable"] and "error" not in m else ("unreachable" if not m["reachable"] else "error")
        zxid = f"0x{m['zxid']:x}" if isinstance(m["zxid"], int) else None
        rows.append(
            [
                m["address"],
                role,
                m["term"],
                m["commit_index"],
                m["last_applied"],
                zxid,
                m["lag"],
                m["sessions"],
                m["znode_count"],
            ]
        )
    for o in report["observers"]:
        rows.append([o["address"], "observer", None, None, None, None, o["lag"], None, None])
    table = [list(COLUMNS), *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in table
    ]
    leader = report["leader"]
    term = f" (term {report['term']})" if report["term"] is not None else ""
    lines.append(f"leader: {leader}{term}" if leader else "leader: none (no member answered as leader)")
    lines.extend(f"{m['address']}: {m['error']}" for m in report["members"] if "error" in m)
    return "\n".join(lines)


def main(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Print the status; 0 if a leader answered, 1 if not, 2 for bad options."""
    if args.zk:
        try:
            addresses = [a.strip() for a in args.zk.split(",") if a.strip()]
            for address in addresses:
                split_address(address)
        except errors.ConfigurationError as exc:
            error(str(exc))
            return 2
        report = collect_zk(addresses, args.timeout)
    else:
        try:
            voters, secret = resolve_cluster(args, environ)
        except errors.ConfigurationError as exc:
            error(str(exc))
            return 2
        report = collect(voters, secret, args.timeout)
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else render(report), flush=True)
    return 0 if report["leader"] else 1
