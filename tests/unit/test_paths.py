"""coord.paths: ZooKeeper's path rules, one table row per rule."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coord.errors import BadArgumentsError, InvalidPathError
from coord.paths import (
    PATH_MAX_CHARS,
    basename,
    join,
    parent_of,
    validate_path,
    validate_sequential_prefix,
)

VALID = [
    "/",
    "/a",
    "/a/b/c",
    "/zookeeper",
    "/a.b",
    "/.a",
    "/a.",
    "/...",
    "/a/..b",
    "/a b",
    "/\u00fcber/\u65e5\u672c",
    "/\x20\x7e\xa0",  # just outside the forbidden ranges
    "/\uf900\uffef",
    "/" + "x" * (PATH_MAX_CHARS - 1),
]

INVALID = [  # (path, words the message must contain)
    ("", "must not be empty"),
    ("a", 'must start with "/"'),
    ("a/b", 'must start with "/"'),
    ("/a/", 'must not end with "/"'),
    ("//", 'must not end with "/"'),
    ("/a//b", "empty node name"),
    ("//a", "empty node name"),
    ("/.", "relative paths not allowed"),
    ("/..", "relative paths not allowed"),
    ("/a/./b", "relative paths not allowed"),
    ("/a/../b", "relative paths not allowed"),
    ("/a/..", "relative paths not allowed"),
    ("/a\x00b", "null character not allowed at index 2"),
    ("/a\x01", "forbidden character U+0001 at index 2"),
    ("/\x1f", "forbidden character U+001F"),
    ("/\x7f", "forbidden character U+007F"),
    ("/\x9f", "forbidden character U+009F"),
    ("/\ud800", "forbidden character U+D800"),
    ("/\ue000", "forbidden character U+E000"),
    ("/\uf8ff", "forbidden character U+F8FF"),
    ("/\ufff0", "forbidden character U+FFF0"),
    ("/\uffff", "forbidden character U+FFFF"),
    ("/smile\U0001f600", "forbidden character U+1F600"),  # a surrogate pair in Java
    ("/" + "x" * PATH_MAX_CHARS, f"limit of {PATH_MAX_CHARS} characters"),
]


@pytest.mark.parametrize("path", VALID)
def test_valid_paths_are_returned_unchanged(path: str) -> None:
    assert validate_path(path) is path


@pytest.mark.parametrize(("path", "rule"), INVALID)
def test_invalid_paths_name_the_path_and_the_rule(path: str, rule: str) -> None:
    with pytest.raises(InvalidPathError) as caught:
        validate_path(path)
    assert rule in str(caught.value)
    assert repr(path)[:40] in str(caught.value)


def test_invalid_path_error_is_bad_arguments_and_value_error() -> None:
    with pytest.raises(InvalidPathError) as caught:
        validate_path("nope")
    assert isinstance(caught.value, BadArgumentsError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("path", [None, b"/a", 1, ["/a"], 1.5])
def test_non_str_path_is_a_type_error_naming_the_type(path: object) -> None:
    with pytest.raises(TypeError, match=f"got {type(path).__name__}"):
        validate_path(path)
    with pytest.raises(TypeError, match=f"got {type(path).__name__}"):
        validate_sequential_prefix(path)


@pytest.mark.parametrize("prefix", ["/", "/a/", "/a/b-", "/lock-", "/" + "x" * (PATH_MAX_CHARS - 11)])
def test_sequential_prefixes_may_end_with_slash(prefix: str) -> None:
    assert validate_sequential_prefix(prefix) is prefix


@pytest.mark.parametrize(
    ("prefix", "rule"),
    [
        ("", "must not be empty"),
        ("a/", 'must start with "/"'),
        ("/a//", "empty node name"),
        ("/./", "relative paths not allowed"),
        ("/a\x00", "null character"),
        # the 10-digit counter must fit too
        ("/" + "x" * (PATH_MAX_CHARS - 10), f"limit of {PATH_MAX_CHARS} characters"),
    ],
)
def test_bad_sequential_prefixes_name_the_prefix_not_the_placeholder(prefix: str, rule: str) -> None:
    with pytest.raises(InvalidPathError) as caught:
        validate_sequential_prefix(prefix)
    message = str(caught.value)
    assert rule in message
    assert "0000000000" not in message


@pytest.mark.parametrize(
    ("path", "parent", "name"),
    [("/a", "/", "a"), ("/a/b", "/a", "b"), ("/a/b/c", "/a/b", "c"), ("/a/", "/a", "")],
)
def test_parent_of_basename_join(path: str, parent: str, name: str) -> None:
    assert parent_of(path) == parent
    assert basename(path) == name
    if name:
        assert join(parent, name) == path


def test_root_has_no_parent_and_an_empty_basename() -> None:
    with pytest.raises(InvalidPathError, match="root has no parent"):
        parent_of("/")
    assert basename("/") == ""


# --- differential check against a literal port of ZooKeeper's Java loop ----


def _zookeeper_accepts(path: str) -> bool:
    """PathUtils.validatePath, ported over UTF-16 code units, plus coord's
    length limit."""
    units = [
        int.from_bytes(path.encode("utf-16-le", "surrogatepass")[i : i + 2], "little")
        for i in range(0, len(path.encode("utf-16-le", "surrogatepass")), 2)
    ]
    if not units or units[0] != ord("/"):
        return False
    if len(units) > PATH_MAX_CHARS:
        return False
    if len(units) == 1:
        return True
    if units[-1] == ord("/"):
        return False
    last = ord("/")
    for i in range(1, len(units)):
        c = units[i]
        nxt_is_end_or_slash = i + 1 == len(units) or units[i + 1] == ord("/")
        if c == 0:
            return False
        if c == ord("/") and last == ord("/"):
            return False
        if c == ord(".") and last == ord("."):
            if units[i - 2] == ord("/") and nxt_is_end_or_slash:
                return False
        elif c == ord("."):
            if units[i - 1] == ord("/") and nxt_is_end_or_slash:
                return False
        elif 0 < c <= 0x1F or 0x7F <= c <= 0x9F or 0xD800 <= c <= 0xF8FF or 0xFFF0 <= c <= 0xFFFF:
            return False
        last = c
    return True


_path_chars = st.sampled_from(
    ["/", "/", "/", ".", ".", "a", "b", "\x00", "\x1f", "\x7f", "\xa0", "\ue000", "\U0001f600"]
)


@settings(max_examples=400, database=None, deadline=None)
@given(st.lists(_path_chars, max_size=8).map("".join) | st.text(max_size=12))
def test_agrees_with_zookeepers_algorithm(path: str) -> None:
    try:
        validate_path(path)
        accepted = True
    except InvalidPathError:
        accepted = False
    assert accepted == _zookeeper_accepts(path)
