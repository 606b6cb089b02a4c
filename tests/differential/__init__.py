"""Differential suite: identical scenarios on ZooKeeper and coord."""
