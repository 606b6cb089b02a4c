"""coord's benchmark suite: ``python -m benchmarks.suite`` (from the repo root).

coord, the bare-pysyncobj floor, ZooKeeper 3.8 and etcd 3.4, each as a
3-member cluster on loopback, through the same workloads; tables with
ratios to coord, the optimisation targets, JSON and PNG plots.  See
``python -m benchmarks.suite --help`` and benchmarks/RESULTS.md.
"""
