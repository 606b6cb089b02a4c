"""Znode path rules and helpers.

The rules are ZooKeeper's (``org.apache.zookeeper.common.PathUtils``), so a
path accepted here is accepted by a real ZooKeeper and vice versa, plus one
coord limit: at most ``PATH_MAX_CHARS`` characters.

ZooKeeper checks UTF-16 code units; Java encodes every character above
U+FFFF as a surrogate pair (U+D800-U+DFFF), which its forbidden range
U+D800-U+F8FF covers. So ZooKeeper refuses every non-BMP character (emoji,
...), and so does coord.

``parent_of``, ``basename`` and ``join`` expect paths that already passed
validation; they do no checking of their own so the apply path stays cheap.
"""

from __future__ import annotations

import re

from .errors import InvalidPathError

#: coord's maximum path length in characters (ZooKeeper itself has none; its
#: request size limit bounds it). Sequential suffixes count too.
PATH_MAX_CHARS = 4096

#: Width of the counter ZooKeeper appends to a sequential node's name.
SEQUENCE_DIGITS = 10

# ZooKeeper's forbidden characters, plus everything above U+FFFF (surrogate
# pairs in Java, see the module docstring). U+0000 is reported separately.
_FORBIDDEN = re.compile("[\x01-\x1f\x7f-\x9f\ud800-\uf8ff\ufff0-\U0010ffff]")


def _fail(path: str, rule: str) -> InvalidPathError:
    return InvalidPathError(f"invalid path {path!r}: {rule}")


def _check(path: object, shown: str | None = None) -> str:
    """Validate ``path``; on failure, name ``shown`` (default: ``path``).

    ``shown`` differs from ``path`` only for sequential prefixes, whose
    checked form carries a placeholder suffix the caller never wrote.
    """
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, got {type(path).__name__}")
    if shown is None:
        shown = path
    if not path:
        raise _fail(path, "a path must not be empty")
    if path[0] != "/":
        raise _fail(shown, 'a path must start with "/"')
    if len(path) > PATH_MAX_CHARS:
        raise _fail(shown, f"longer than coord's limit of {PATH_MAX_CHARS} characters ({len(path)})")
    if len(path) == 1:
        return path
    if path[-1] == "/":
        raise _fail(shown, 'a path must not end with "/"')
    if "\x00" in path:
        raise _fail(shown, f"null character not allowed at index {path.index(chr(0))}")
    bad = _FORBIDDEN.search(path)
    if bad is not None:
        raise _fail(shown, f"forbidden character U+{ord(bad.group()):04X} at index {bad.start()}")
    for name in path[1:].split("/"):
        if not name:
            raise _fail(shown, "empty node name (two consecutive '/')")
        if name in (".", ".."):
            raise _fail(shown, f"relative paths not allowed ({name!r} component)")
    return path


def validate_path(path: object) -> str:
    """Return ``path`` if it is a valid znode path, else raise.

    Raises ``TypeError`` when ``path`` is not a ``str`` and
    ``InvalidPathError`` (a ``BadArgumentsError`` and ``ValueError``) naming
    the path and the broken rule otherwise.
    """
    return _check(path)


def validate_sequential_prefix(path: object) -> str:
    """Return ``path`` if it is a valid prefix for a sequential create.

    ZooKeeper appends a 10-digit counter to the requested path, so the
    prefix may end with "/" (``"/a/"`` becomes ``"/a/0000000003"``). What
    must be valid is the final path; it is checked with a placeholder
    counter of full width so the length limit holds for the real name too.
    """
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, got {type(path).__name__}")
    if not path:
        raise _fail(path, "a path must not be empty")
    _check(path + "0" * SEQUENCE_DIGITS, path)
    return path


def parent_of(path: str) -> str:
    """The parent of a valid path (``"/a/b"`` -> ``"/a"``, ``"/a"`` -> ``"/"``).

    Also right for a sequential prefix (``"/a/"`` -> ``"/a"``). The root has
    no parent: ``InvalidPathError``.
    """
    if path == "/":
        raise InvalidPathError("invalid path '/': the root has no parent")
    return path[: path.rfind("/")] or "/"


def basename(path: str) -> str:
    """The last component of a valid path (``""`` for the root)."""
    return path[path.rfind("/") + 1 :]


def join(parent: str, name: str) -> str:
    """The path of child ``name`` under the valid path ``parent``."""
    return parent + name if parent == "/" else f"{parent}/{name}"


__all__ = [
    "PATH_MAX_CHARS",
    "SEQUENCE_DIGITS",
    "basename",
    "join",
    "parent_of",
    "validate_path",
    "validate_sequential_prefix",
]
