"""``coord dump`` / ``coord load``: a subtree to JSON and back.

The document (format ``coord-dump/1``)::

    {"format": "coord-dump/1", "root": "/app",
     "nodes": [{"path": "/app", "data": "v1", "encoding": "utf-8"},
               {"path": "/app/blob", "data": "AAEC", "encoding": "base64",
                "stat": {...}}, ...]}

Nodes are listed parents first. ``data`` is the value as text when it is
UTF-8 (``"encoding": "utf-8"``), else base64 (``"encoding": "base64"``).
Only persistent nodes are dumped (ephemerals belong to a live session);
``--stat`` adds each node's Stat (ignored by ``load``).

``load`` creates the missing nodes in transactions of ``--batch`` nodes,
parents first, so each batch is all or nothing. It refuses (and changes
nothing) if a node exists already, unless ``--overwrite``, which sets
existing nodes' values instead. ``--root`` loads under another path.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from coord import errors
from coord.paths import validate_path

from ._common import add_cluster_arguments, connect, error, one_line

FORMAT = "coord-dump/1"


def add_parser(sub: Any) -> None:
    """The ``dump`` and ``load`` subcommands' arguments."""
    dump = sub.add_parser("dump", help="write a subtree to JSON (persistent nodes)")
    add_cluster_arguments(dump)
    dump.add_argument("path", nargs="?", default="/", help="root of the subtree (default /)")
    dump.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    dump.add_argument("--stat", action="store_true", help="include each node's Stat")
    dump.set_defaults(handler=main_dump, default_log_level="ERROR")

    load = sub.add_parser("load", help="create a dumped subtree (refuses to overwrite without --overwrite)")
    add_cluster_arguments(load)
    load.add_argument("input", help="the JSON file written by `coord dump` ('-' for stdin)")
    load.add_argument("--root", default=None, help="load under this path instead of the dump's root")
    load.add_argument("--overwrite", action="store_true", help="set the value of nodes that exist")
    load.add_argument("--batch", type=int, default=500, help="nodes per transaction (default 500)")
    load.set_defaults(handler=main_load, default_log_level="ERROR")


def encode_value(value: bytes) -> dict[str, str]:
    """``{"data": ..., "encoding": "utf-8" | "base64"}`` for a value."""
    try:
        return {"data": value.decode("utf-8"), "encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"data": base64.b64encode(value).decode("ascii"), "encoding": "base64"}


def decode_value(node: Mapping[str, Any]) -> bytes:
    """A node's value from its ``data`` and ``encoding``."""
    data, encoding = node.get("data", ""), node.get("encoding", "utf-8")
    if not isinstance(data, str):
        raise ValueError(f"node {node.get('path')!r}: data must be a string")
    if encoding == "utf-8":
        return data.encode("utf-8")
    if encoding == "base64":
        return base64.b64decode(data, validate=True)
    raise ValueError(f"node {node.get('path')!r}: unknown encoding {encoding!r} (utf-8 or base64)")


def _walk(client: Any, root: str) -> Iterator[str]:
    stack = [root]
    while stack:
        path = stack.pop()
        yield path
        try:
            children = client.get_children(path)
        except errors.NoNodeError:
            continue
        stack.extend(f"{path.rstrip('/')}/{c}" for c in reversed(children))


def dump_tree(client: Any, root: str, include_stat: bool = False) -> dict[str, Any]:
    """The persistent nodes of the subtree at ``root`` as a dump document.

    :raises NoNodeError: ``root`` does not exist.
    """
    root = validate_path(root)
    if client.exists(root) is None:
        raise errors.NoNodeError(root)
    nodes = []
    for path in _walk(client, root):
        try:
            value, stat = client.get(path)
        except errors.NoNodeError:  # deleted meanwhile
            continue
        if stat.ephemeralOwner:
            continue
        node: dict[str, Any] = {"path": path, **encode_value(value or b"")}
        if include_stat:
            node["stat"] = stat._asdict()
        nodes.append(node)
    return {"format": FORMAT, "root": root, "nodes": nodes}


def _relocate(path: str, old_root: str, new_root: str) -> str:
    if old_root == new_root:
        return path
    rest = path[len(old_root) :] if old_root != "/" else path
    return validate_path((new_root.rstrip("/") + rest) if rest else new_root)


def load_tree(
    client: Any, document: Mapping[str, Any], root: str | None = None, overwrite: bool = False, batch: int = 500
) -> tuple[int, int]:
    """Create the document's nodes (under ``root`` if given); returns
    ``(created, overwritten)``.

    :raises NodeExistsError: a node exists and not ``overwrite`` (nothing
        was changed).
    :raises ValueError: a malformed document (nothing was changed).
    """
    if document.get("format") != FORMAT:
        raise ValueError(f"not a coord dump (format {document.get('format')!r}, expected {FORMAT!r})")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError("batch must be a positive integer")
    old_root = validate_path(document.get("root", "/"))
    new_root = validate_path(root) if root is not None else old_root
    raw_nodes = document.get("nodes")
    if not isinstance(raw_nodes, list):
        raise ValueError("the dump has no node list")
    nodes: list[tuple[str, bytes]] = []
    for node in raw_nodes:
        if not isinstance(node, dict) or not isinstance(node.get("path"), str):
            raise ValueError(f"malformed node entry {node!r}")
        path = validate_path(node["path"])
        if path != old_root and not path.startswith(old_root.rstrip("/") + "/"):
            raise ValueError(f"node {path} is not under the dump's root {old_root}")
        nodes.append((_relocate(path, old_root, new_root), decode_value(node)))
    nodes.sort(key=lambda item: item[0].count("/") if item[0] != "/" else 0)
    client.sync("/")
    # The root node always exists: it is never created, only set with --overwrite.
    existing = [path for path, _ in nodes if path != "/" and client.exists(path) is not None]
    if existing and not overwrite:
        shown = ", ".join(existing[:5]) + (" ..." if len(existing) > 5 else "")
        raise errors.NodeExistsError(f"{len(existing)} node(s) exist already ({shown}); use --overwrite to set them")
    existing_set = set(existing) | ({"/"} if overwrite else set())
    parent = new_root.rsplit("/", 1)[0] or "/"
    if new_root != "/" and client.exists(parent) is None:
        client.ensure_path(parent)
    created = overwritten = 0
    for start in range(0, len(nodes), batch):
        txn = client.transaction()
        for path, value in nodes[start : start + batch]:
            if path in existing_set:
                txn.set_data(path, value)
                overwritten += 1
            elif path != "/":
                txn.create(path, value)
                created += 1
        results = txn.commit()
        failures = [r for r in results if isinstance(r, Exception)]
        if failures:
            raise failures[0]
    return created, overwritten


def main_dump(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """``coord dump``: 0 on success, 1 on failure."""
    try:
        client = connect(args, environ)
    except (errors.CoordError, ValueError) as exc:
        error(f"cannot join the cluster: {one_line(exc)}")
        return 1
    try:
        client.sync("/")
        document = dump_tree(client, args.path, include_stat=args.stat)
        text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
        if args.output == "-":
            sys.stdout.write(text)
        else:
            tmp = f"{args.output}.tmp{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, args.output)
        print(f"dumped {len(document['nodes'])} node(s) under {document['root']}", file=sys.stderr)
        return 0
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        error(one_line(exc))
        return 1
    finally:
        client.stop()


def main_load(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """``coord load``: 0 on success, 1 on failure (nothing changed if the
    document was bad or a node existed without --overwrite)."""
    try:
        if args.input == "-":
            document = json.load(sys.stdin)
        else:
            with open(args.input, encoding="utf-8") as handle:
                document = json.load(handle)
    except (OSError, ValueError) as exc:
        error(f"cannot read {args.input}: {one_line(exc)}")
        return 1
    if not isinstance(document, dict):
        error(f"{args.input} is not a coord dump")
        return 1
    try:
        client = connect(args, environ)
    except (errors.CoordError, ValueError) as exc:
        error(f"cannot join the cluster: {one_line(exc)}")
        return 1
    try:
        created, overwritten = load_tree(client, document, root=args.root, overwrite=args.overwrite, batch=args.batch)
        print(f"loaded: {created} created, {overwritten} overwritten", file=sys.stderr)
        return 0
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        error(one_line(exc))
        return 1
    finally:
        client.stop()
