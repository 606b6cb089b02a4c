"""ZooKeeper's four-letter words, answered in ZooKeeper's text formats.

A connection whose first four bytes spell one of these words gets a plain
text answer and is closed (``echo ruok | nc host port``). Monitoring tools
parse these outputs, so the layouts follow ZooKeeper 3.8's: ``srvr``/``stat``
"Key: value" lines, ``mntr`` "zk_key<TAB>value" lines, ``envi``/``conf``
"key=value" lines.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from ..replication import ROLE_LEADER

if TYPE_CHECKING:
    from .server import ZkServer

VERSION = "3.8.0-coord, built on coord"


def _mode(server: ZkServer) -> str:
    member = server.member
    if getattr(member, "observer", False):
        return "observer"
    try:
        role = member.raft_status().role
    except Exception:  # not serving
        return "standalone"
    if not server.writable():
        return "read-only"
    return "leader" if role == ROLE_LEADER else "follower"


def _tree_facts(server: ZkServer) -> dict[str, Any]:
    def read(tree: Any) -> dict[str, Any]:
        sessions = tree.session_ids()
        ephemerals = sum(len(info.ephemerals) for sid in sessions if (info := tree.session_info(sid)) is not None)
        return {
            "zxid": tree.zxid,
            "nodes": tree.node_count(),
            "sessions": len(sessions),
            "ephemerals": ephemerals,
            "watches": server.watches.count(),
            "watch_paths": server.watches.paths(),
        }

    try:
        facts: dict[str, Any] = server.member.read_tree(read)
    except Exception:
        facts = {"zxid": 0, "nodes": 0, "sessions": 0, "ephemerals": 0, "watches": 0, "watch_paths": 0}
    return facts


def _srvr(server: ZkServer, with_clients: bool) -> str:
    facts = _tree_facts(server)
    lines = [f"Zookeeper version: {VERSION}"]
    if with_clients:
        lines.append("Clients:")
        for conn in server.connections():
            lines.append(f" /{conn.peer}[1](queued={len(conn.pipeline)},recved={conn.received},sent={conn.sent})")
        lines.append("")
    lines += [
        "Latency min/avg/max: 0/0.0/0",
        f"Received: {server.packets_received}",
        f"Sent: {server.packets_sent}",
        f"Connections: {len(server.connections())}",
        f"Outstanding: {server.outstanding()}",
        f"Zxid: 0x{facts['zxid']:x}",
        f"Mode: {_mode(server)}",
        f"Node count: {facts['nodes']}",
    ]
    return "\n".join(lines) + "\n"


def _mntr(server: ZkServer) -> str:
    facts = _tree_facts(server)
    metrics: dict[str, Any] = {}
    metrics_fn = getattr(server.member, "metrics", None)
    if callable(metrics_fn):
        try:
            metrics = metrics_fn()
        except Exception:
            metrics = {}
    values: list[tuple[str, Any]] = [
        ("zk_version", VERSION),
        ("zk_server_state", _mode(server)),
        ("zk_avg_latency", metrics.get("write_latency_avg_ms", 0.0)),
        ("zk_min_latency", metrics.get("write_latency_min_ms", 0.0)),
        ("zk_max_latency", metrics.get("write_latency_max_ms", 0.0)),
        ("zk_packets_received", server.packets_received),
        ("zk_packets_sent", server.packets_sent),
        ("zk_num_alive_connections", len(server.connections())),
        ("zk_outstanding_requests", server.outstanding()),
        ("zk_znode_count", facts["nodes"]),
        ("zk_watch_count", facts["watches"]),
        ("zk_ephemerals_count", facts["ephemerals"]),
        ("zk_approximate_data_size", metrics.get("approximate_data_size", 0)),
        ("zk_open_file_descriptor_count", _open_fds()),
        ("zk_global_sessions", facts["sessions"]),
        ("zk_uptime", int((time.time() - server.started_at) * 1000)),
    ]
    if _mode(server) == "leader":
        values += [
            ("zk_followers", metrics.get("followers", 0)),
            ("zk_synced_followers", metrics.get("synced_followers", 0)),
        ]
    return "".join(f"{key}\t{value}\n" for key, value in values)


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def _envi(server: ZkServer) -> str:
    values = [
        ("zookeeper.version", VERSION),
        ("host.name", socket.gethostname()),
        ("java.version", f"n/a (Python {platform.python_version()})"),
        ("os.name", platform.system()),
        ("os.arch", platform.machine()),
        ("os.version", platform.release()),
        ("user.dir", os.getcwd()),
        ("python.executable", sys.executable),
    ]
    return "Environment:\n" + "".join(f"{key}={value}\n" for key, value in values)


def _conf(server: ZkServer) -> str:
    member = server.member
    values = [
        ("clientPort", server.port),
        ("clientPortAddress", server.address),
        ("dataDir", member.data_dir or ""),
        ("tickTime", server.tick_ms),
        ("maxClientCnxns", server.max_connections),
        ("minSessionTimeout", server.min_session_timeout_ms),
        ("maxSessionTimeout", server.max_session_timeout_ms),
        ("jute.maxbuffer", server.max_frame_bytes),
        ("peerType", "observer" if getattr(member, "observer", False) else "participant"),
        ("raftAddress", member.address),
        ("peers", ",".join(member.peers)),
    ]
    return "".join(f"{key}={value}\n" for key, value in values)


def respond(word: str, server: ZkServer) -> str:
    """The text answer to ``word``."""
    if word == "ruok":
        return "imok"
    if word == "srvr":
        return _srvr(server, with_clients=False)
    if word == "stat":
        return _srvr(server, with_clients=True)
    if word == "mntr":
        return _mntr(server)
    if word == "envi":
        return _envi(server)
    if word == "conf":
        return _conf(server)
    if word == "isro":
        return "rw" if server.writable() else "ro"
    return f"{word} is not executed because it is not in the whitelist.\n"
