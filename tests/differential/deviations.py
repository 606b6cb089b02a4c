"""Where coord deliberately differs from ZooKeeper + kazoo.

Each reason is one item of README.md's list "Where coord deliberately differs
from ZooKeeper + kazoo". Everything not listed here must match exactly.

* ``SUBSTITUTIONS``: by scenario, ZooKeeper's formatted transcript line (an
  exact string, or a regex that must match the whole line) -> the line coord
  must produce instead (for a regex, a ``re.Match.expand`` template).
  ``test_coord_matches_zookeeper`` rewrites the ZooKeeper reference with them,
  then requires exact equality; a substitution that matches no line fails
  the run, so a stale one cannot linger.
* ``ZOOKEEPER_ONLY``: scenarios whose coord side differs throughout; they run
  on ZooKeeper only (stability test, reference) and a dedicated test asserts
  coord's behaviour.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Deviation(NamedTuple):
    zookeeper: str | re.Pattern[str]
    coord: str
    reason: str


STRICT_PATHS = "strict paths: InvalidPathError for any path ZooKeeper rejects, on reads too; never rewritten like kazoo"
RECURSIVE_DELETE = "delete(path, recursive=True) returns True (kazoo returns None)"
NONE_VALUE = "None as a value is stored as b'' (ZooKeeper keeps null data, which kazoo reads back as None)"
BAD_TX_OP = "a bad op added to a transaction raises when it is added, not at commit"
REMOVE_WATCH_BOOL = (
    "remove_watch returns True, or False when the callable had no persistent watch on the path "
    "(ZooKeeper's Java client returns nothing and raises NoWatcherException)"
)


def _invalid_path(*zookeeper_lines: str) -> list[Deviation]:
    """ZooKeeper answers these calls; coord refuses their path."""
    return [Deviation(line, line.split(" -> ")[0] + " -> !InvalidPathError", STRICT_PATHS) for line in zookeeper_lines]


_RECURSIVE_DELETE_TRUE = Deviation(
    re.compile(r"(delete\(.*, recursive=True\)) -> None"), r"\1 -> True", RECURSIVE_DELETE
)

_REMOVE_WATCH = [
    Deviation(re.compile(r"(remove_watch\(.*\)) -> None"), r"\1 -> True", REMOVE_WATCH_BOOL),
    Deviation(re.compile(r"(remove_watch\(.*\)) -> !NoWatcherError"), r"\1 -> False", REMOVE_WATCH_BOOL),
]

SUBSTITUTIONS: dict[str, list[Deviation]] = {
    "bad_paths_server_side": _invalid_path(
        # reads of a name the server would refuse to create
        "get(~/a\\x01b) -> !NoNodeError",
        "exists(~/a\\x01b) -> None",
        "get_children(~/a\\x01b) -> !NoNodeError",
        "delete(~/a\\x01b) -> !NoNodeError",
        "get(~/a\\x00b) -> !NoNodeError",
        # kazoo reads '' as '/'
        "create('') -> !NodeExistsError",
        "exists('') is not None -> True",
        "ensure_path('') -> True",
    ),
    "recursive_delete": [_RECURSIVE_DELETE_TRUE],
    "watch_children": [_RECURSIVE_DELETE_TRUE],
    "persistent_watch": [_RECURSIVE_DELETE_TRUE],
    "persistent_watch_recursive": [_RECURSIVE_DELETE_TRUE],
    "persistent_watch_remove": [_RECURSIVE_DELETE_TRUE, *_REMOVE_WATCH],
    "container": [_RECURSIVE_DELETE_TRUE],
    "values_and_types": [
        Deviation(re.compile(r"(get\('~/(?:none|empty)'\) -> \()None(, .*)"), r"\1b''\2", NONE_VALUE),
    ],
    "sequential_empty_prefix": [
        # kazoo's transaction drops the trailing '/' that its create() keeps
        Deviation(
            "commit: create('~/b/', sequence=True) -> ['~/b0000000002']",
            "commit: create('~/b/', sequence=True) -> ['~/b/0000000004']",
            STRICT_PATHS,
        ),
    ],
}

ZOOKEEPER_ONLY: dict[str, str] = {
    "paths_kazoo_normalizes": STRICT_PATHS,
    "transactions_bad_char": BAD_TX_OP,
}


def apply(scenario: str, zookeeper_lines: list[str]) -> tuple[list[str], list[Deviation]]:
    """ZooKeeper's formatted transcript with the scenario's substitutions
    applied, and the substitutions that matched no line."""
    unused = list(SUBSTITUTIONS.get(scenario, []))
    out = []
    for line in zookeeper_lines:
        for dev in SUBSTITUTIONS.get(scenario, []):
            if isinstance(dev.zookeeper, re.Pattern):
                match = dev.zookeeper.fullmatch(line)
                replacement = match.expand(dev.coord) if match else None
            else:
                replacement = dev.coord if line == dev.zookeeper else None
            if replacement is not None:
                line = replacement
                if dev in unused:
                    unused.remove(dev)
                break
        out.append(line)
    return out, unused
