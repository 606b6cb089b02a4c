"""Client child processes of the suite: the caller for a system that is a
server (ZooKeeper through kazoo, etcd through its JSON gateway), serving the
same ``bench_*`` RPC as a coord member (see ``coord.local_cluster.bench_agent``)."""
