"""ZooKeeper's client protocol on a coord member.

``Coordinator(..., zk_address="127.0.0.1:2181")`` starts a listener that
speaks ZooKeeper's jute protocol, so kazoo, the Java client and zkCli can
use a coord cluster as if it were a ZooKeeper ensemble: every protocol
session is a replicated coord session (it survives a reconnect to another
member), and writes go through the Raft log like the member's own.

Modules: ``jute`` (the wire codec), ``handlers`` (what each request means),
``sessions`` (protocol sessions as tree sessions), ``watches`` (server-side
watches per connection), ``four_letter`` (ruok, srvr, mntr, ...), ``server``
(the listener and per-connection state).
"""

from .server import ZkServer

__all__ = ["ZkServer"]
