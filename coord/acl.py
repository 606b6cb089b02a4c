"""ZooKeeper's ACL model: permissions, ids, ACLs, digest credentials and the
permission check, as pure functions every layer shares.

Shapes follow ``kazoo.security``: ``Id(scheme, id)`` and ``ACL(perms, id)``
are named tuples with kazoo's field names, so kazoo's objects and these are
interchangeable (and compare equal). Any object with ``.perms``,
``.id.scheme`` and ``.id.id`` is accepted as an ACL entry, and so is a
plain ``(perms, scheme, id)`` triple.

Inside coord (the log, the tree, snapshots) an ACL is its *canonical* form:
a tuple of ``(perms, scheme, id)`` tuples of exact ``int``/``str``, in the
caller's order. ``OPEN_ACL`` is the canonical ``world:anyone`` ACL every
node gets by default; the tree shares one such tuple among all nodes.

The rules are ZooKeeper 3.8's:

* schemes in ACLs: ``world`` (id ``anyone`` only), ``digest``
  (``user:base64(sha1("user:password"))``), ``ip`` (an address or a CIDR
  block), and ``auth``, which stands for every id the session has
  authenticated with a scheme that authenticates (``digest``): it is
  expanded when the node is created or its ACL set (``fixup_acl``, as
  ZooKeeper's ``fixupACL``), and is invalid for a session with no such id;
* duplicate entries are dropped, an empty list is invalid;
* a check passes when some entry grants any of the wanted permission bits
  to ``world:anyone`` or to one of the session's ids (``digest`` by equality,
  ``ip`` by address within the block); a session that authenticated as the
  configured super user (id ``("super", "")``) passes every check.

Sessions hold *resolved* ids only (``resolve_auth``): a digest credential is
hashed before it is proposed, so the replicated log never holds a password.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable
from typing import Any, NamedTuple

from .errors import AuthFailedError, InvalidACLError, NoAuthError


class Permissions:
    """ZooKeeper's permission bits (``kazoo.security.Permissions``)."""

    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


class Id(NamedTuple):
    """An identity: ``scheme`` (world, digest, ip, auth) and its ``id``."""

    scheme: str
    id: str


class ACL(NamedTuple):
    """One ACL entry: ``perms`` (``Permissions`` bits) granted to ``id``."""

    perms: int
    id: Id

    @property
    def acl_list(self) -> list[str]:
        """The permission names, as kazoo's ``ACL.acl_list``."""
        if self.perms & Permissions.ALL == Permissions.ALL:
            return ["ALL"]
        names = ("READ", "WRITE", "CREATE", "DELETE", "ADMIN")
        return [name for name in names if self.perms & getattr(Permissions, name)]

    def __repr__(self) -> str:
        return f"ACL(perms={self.perms!r}, acl_list={self.acl_list}, id={self.id!r})"  # kazoo's


ANYONE_ID_UNSAFE = Id("world", "anyone")
AUTH_IDS = Id("auth", "")
OPEN_ACL_UNSAFE = [ACL(Permissions.ALL, ANYONE_ID_UNSAFE)]
CREATOR_ALL_ACL = [ACL(Permissions.ALL, AUTH_IDS)]
READ_ACL_UNSAFE = [ACL(Permissions.READ, ANYONE_ID_UNSAFE)]

CanonicalACL = tuple[tuple[int, str, str], ...]
"""An ACL as coord stores and logs it: ``((perms, scheme, id), ...)``."""
AuthIds = tuple[tuple[str, str], ...]
"""A session's authenticated ids: sorted ``((scheme, id), ...)``."""

#: The default ACL (``world:anyone`` with every permission), canonical.
OPEN_ACL: CanonicalACL = ((Permissions.ALL, "world", "anyone"),)
#: The id a session gets when it authenticates as the super user.
SUPER_ID = ("super", "")
#: Schemes an ACL entry may name.
ACL_SCHEMES = frozenset({"world", "auth", "digest", "ip"})
#: Schemes of resolved ids a session may hold (``add_auth`` ops).
AUTH_ID_SCHEMES = frozenset({"digest", "ip", "super"})
#: Schemes ``add_auth`` accepts from a caller (with a credential).
AUTH_SCHEMES = frozenset({"digest"})
#: Schemes whose ids the ``auth`` ACL scheme expands to (ZooKeeper's
#: ``isAuthenticated`` providers: ip is not one of them).
_EXPANDABLE_SCHEMES = frozenset({"digest"})
#: Most entries one ACL may have (ZooKeeper bounds it by jute.maxbuffer).
MAX_ACL_ENTRIES = 1024
_MAX_ID_CHARS = 4096


# --------------------------------------------------------------------------
# constructors (kazoo.security's)


def make_digest_acl_credential(username: str, password: str) -> str:
    """``"user:<base64(sha1("user:password"))>"``: the id of a digest ACL."""
    credential = username.encode("utf-8") + b":" + password.encode("utf-8")
    return username + ":" + base64.b64encode(hashlib.sha1(credential).digest()).decode("ascii")  # noqa: S324 - ZooKeeper's


def make_acl(
    scheme: str,
    credential: str,
    read: bool = False,
    write: bool = False,
    create: bool = False,
    delete: bool = False,
    admin: bool = False,
    all: bool = False,  # noqa: A002 - kazoo's name
) -> ACL:
    """An ``ACL`` granting the chosen permissions to ``scheme:credential``."""
    if all:
        perms = Permissions.ALL
    else:
        perms = (
            (Permissions.READ if read else 0)
            | (Permissions.WRITE if write else 0)
            | (Permissions.CREATE if create else 0)
            | (Permissions.DELETE if delete else 0)
            | (Permissions.ADMIN if admin else 0)
        )
    return ACL(perms, Id(scheme, credential))


def make_digest_acl(
    username: str,
    password: str,
    read: bool = False,
    write: bool = False,
    create: bool = False,
    delete: bool = False,
    admin: bool = False,
    all: bool = False,  # noqa: A002 - kazoo's name
) -> ACL:
    """A digest ``ACL`` for ``username``/``password`` (the password is hashed)."""
    return make_acl(
        "digest",
        make_digest_acl_credential(username, password),
        read=read,
        write=write,
        create=create,
        delete=delete,
        admin=admin,
        all=all,
    )


# --------------------------------------------------------------------------
# validation


def _java_split_colon(text: str) -> list[str]:
    """Java's ``text.split(":")``: trailing empty strings are dropped."""
    parts = text.split(":")
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


def _valid_digest_id(ident: str) -> bool:
    # ZooKeeper's DigestAuthenticationProvider.isValid.
    return len(_java_split_colon(ident)) == 2


def _ip_block(expr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The block an ip ACL id names (``addr`` or ``addr/bits``), or None."""
    address, _, bits = expr.partition("/")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    if not bits and "/" not in expr:
        return ipaddress.ip_network(parsed)
    if not bits.isdigit() or not bits.isascii() or int(bits) > parsed.max_prefixlen:
        return None
    return ipaddress.ip_network(f"{address}/{int(bits)}", strict=False)


def entry_problem(perms: object, scheme: object, ident: object) -> str | None:
    """Why one canonical entry is not a valid ACL entry, or None."""
    if type(perms) is not int or not 0 <= perms <= Permissions.ALL:
        return f"perms must be an int in 0..{Permissions.ALL} (Permissions bits), got {perms!r}"
    if type(scheme) is not str or type(ident) is not str:
        return "an ACL id's scheme and id must be str"
    if len(ident) > _MAX_ID_CHARS:
        return f"ACL id is {len(ident)} characters, above the limit of {_MAX_ID_CHARS}"
    if scheme == "world":
        return None if ident == "anyone" else f"the world scheme only has the id 'anyone', got {ident!r}"
    if scheme == "auth":
        return None
    if scheme == "digest":
        return None if _valid_digest_id(ident) else f"a digest id must be 'user:base64digest', got {ident!r}"
    if scheme == "ip":
        return None if _ip_block(ident) is not None else f"an ip id must be an address or address/bits, got {ident!r}"
    return f"unknown ACL scheme {scheme!r} (world, auth, digest or ip)"


def acl_problem(acl: object) -> str | None:
    """Why ``acl`` is not a valid canonical ACL, or None. Never raises."""
    if type(acl) is not tuple:
        return f"an ACL must be a tuple of (perms, scheme, id), got {type(acl).__name__}"
    if not acl:
        return "an ACL must not be empty"
    if len(acl) > MAX_ACL_ENTRIES:
        return f"an ACL has at most {MAX_ACL_ENTRIES} entries, got {len(acl)}"
    for entry in acl:
        if type(entry) is not tuple or len(entry) != 3:
            return "each ACL entry must be a (perms, scheme, id) tuple"
        problem = entry_problem(*entry)
        if problem is not None:
            return problem
    return None


def _entry_of(item: Any) -> tuple[Any, Any, Any]:
    perms, ident = getattr(item, "perms", None), getattr(item, "id", None)
    if ident is not None and hasattr(ident, "scheme") and hasattr(ident, "id"):
        scheme, name = ident.scheme, ident.id
    elif type(item) is tuple and len(item) == 3:
        perms, scheme, name = item
    else:
        raise InvalidACLError(f"an ACL entry must be an ACL(perms, Id(scheme, id)), got {type(item).__name__}")
    # Plain values of harmless subclasses (IntEnum perms, str subclasses).
    if isinstance(perms, int) and not isinstance(perms, bool):
        perms = int(perms)
    scheme = str(scheme) if isinstance(scheme, str) else scheme
    name = str(name) if isinstance(name, str) else name
    return perms, scheme, name


class ACLTypeError(InvalidACLError, TypeError):
    """``acl`` is not a list/tuple of ACLs: an ``InvalidACLError`` that is
    also the ``TypeError`` kazoo raises for it."""


def canonical_acl(acls: Iterable[Any]) -> CanonicalACL:
    """The canonical, validated form of a list of ACLs (kazoo ``ACL``
    objects, ours, or ``(perms, scheme, id)`` triples).

    :raises InvalidACLError: not a list/tuple, empty, or an entry with bad
        perms, an unknown scheme or a malformed id (the message says which).
    """
    if not isinstance(acls, (list, tuple)) or isinstance(acls, ACL) or hasattr(acls, "perms"):
        raise ACLTypeError(f"acl must be a list or tuple of ACLs, got {type(acls).__name__}")
    canonical = tuple(_entry_of(item) for item in acls)
    problem = acl_problem(canonical)
    if problem is not None:
        raise InvalidACLError(problem)
    return canonical


def fixup_acl(acl: CanonicalACL, auth_ids: AuthIds) -> CanonicalACL | None:
    """ZooKeeper's ``fixupACL`` on a valid canonical ACL: duplicates dropped,
    each ``auth`` entry replaced by one entry per authenticated id of the
    session (same perms). None if an ``auth`` entry finds no such id."""
    if len(acl) == 1 and acl[0][1] != "auth":
        return acl
    unique = tuple(dict.fromkeys(acl))  # first occurrence wins, order kept
    fixed: list[tuple[int, str, str]] = []
    for perms, scheme, ident in unique:
        if scheme != "auth":
            fixed.append((perms, scheme, ident))
            continue
        expanded = [(perms, s, i) for s, i in auth_ids if s in _EXPANDABLE_SCHEMES]
        if not expanded:
            return None
        fixed.extend(expanded)
    return tuple(fixed)


def to_acl_list(acl: CanonicalACL) -> list[ACL]:
    """A canonical ACL as a list of ``ACL`` objects (kazoo's getACL shape)."""
    return [ACL(perms, Id(scheme, ident)) for perms, scheme, ident in acl]


def redact_digests(acl: CanonicalACL) -> CanonicalACL:
    """Digest ids with the hash replaced by ``x``, as ZooKeeper's getACL
    answers a session without ADMIN on the node (ZOOKEEPER-1392)."""
    return tuple(
        (perms, scheme, ident.split(":", 1)[0] + ":x" if scheme == "digest" and ":" in ident else ident)
        for perms, scheme, ident in acl
    )


# --------------------------------------------------------------------------
# authentication


def digest_of(credential: str) -> str:
    """ZooKeeper's ``DigestAuthenticationProvider.generateDigest``:
    ``"user:password"`` -> ``"user:<base64(sha1("user:password"))>"``."""
    user = credential.split(":", 1)[0]
    digest = hashlib.sha1(credential.encode("utf-8")).digest()  # noqa: S324 - ZooKeeper's
    return user + ":" + base64.b64encode(digest).decode("ascii")


def resolve_auth(scheme: object, credential: object, super_digest: str | None = None) -> AuthIds:
    """The ids a session gains from ``add_auth(scheme, credential)``.

    ``digest`` with ``"user:password"`` gives ``("digest", "user:<hash>")``,
    and also ``SUPER_ID`` when that id equals ``super_digest`` (ZooKeeper's
    ``zookeeper.DigestAuthenticationProvider.superDigest``, same format).

    :raises AuthFailedError: an unknown scheme or a credential that is not
        ``user:password``.
    :raises TypeError: a scheme that is not a str, a credential that is not
        a str or bytes (kazoo raises TypeError too).
    """
    if not isinstance(scheme, str) or not isinstance(credential, (str, bytes, bytearray)):
        raise TypeError("add_auth takes a str scheme and a str (or bytes) credential")  # as kazoo
    if isinstance(credential, (bytes, bytearray)):
        try:
            credential = bytes(credential).decode("utf-8")
        except UnicodeDecodeError:
            raise AuthFailedError("the credential is not UTF-8") from None
    if scheme not in AUTH_SCHEMES:
        raise AuthFailedError(f"unknown authentication scheme {scheme!r} (coord supports: digest)")
    if not isinstance(credential, str) or ":" not in credential:
        raise AuthFailedError("a digest credential must be 'user:password'")
    ident = digest_of(str(credential))
    if len(ident) > _MAX_ID_CHARS:
        raise AuthFailedError(f"credential too long (at most {_MAX_ID_CHARS} characters)")
    ids = [("digest", ident)]
    if super_digest is not None and ident == super_digest:
        ids.append(SUPER_ID)
    return tuple(sorted(ids))


def auth_id_problem(scheme: object, ident: object) -> str | None:
    """Why ``(scheme, ident)`` is not a resolved id a session may hold, or None."""
    if type(scheme) is not str or type(ident) is not str:
        return "an authenticated id's scheme and id must be str"
    if scheme not in AUTH_ID_SCHEMES:
        return f"unknown authenticated id scheme {scheme!r} (digest, ip or super)"
    if len(ident) > _MAX_ID_CHARS:
        return f"authenticated id is {len(ident)} characters, above the limit of {_MAX_ID_CHARS}"
    if scheme == "digest" and not _valid_digest_id(ident):
        return f"a digest id must be 'user:base64digest', got {ident!r}"
    if scheme == "ip":
        try:
            ipaddress.ip_address(ident)
        except ValueError:
            return f"an ip id must be an address, got {ident!r}"
    if scheme == "super" and ident:
        return "the super id is ('super', '')"
    return None


def with_id(auth_ids: AuthIds, scheme: str, ident: str) -> AuthIds:
    """``auth_ids`` plus one id, sorted, without duplicates."""
    if (scheme, ident) in auth_ids:
        return auth_ids
    return tuple(sorted((*auth_ids, (scheme, ident))))


# --------------------------------------------------------------------------
# the check


def _ip_matches(address: str, expr: str) -> bool:
    block = _ip_block(expr)
    if block is None:
        return False
    try:
        return ipaddress.ip_address(address) in block
    except ValueError:
        return False


def allowed(acl: CanonicalACL, auth_ids: AuthIds, perm: int) -> bool:
    """Whether a session with ``auth_ids`` holds any bit of ``perm`` on a
    node with ``acl`` (ZooKeeper's ``checkACL``). Deterministic, never raises."""
    if acl is OPEN_ACL or not acl:
        return True
    if SUPER_ID in auth_ids:
        return True
    for perms, scheme, ident in acl:
        if not perms & perm:
            continue
        if scheme == "world":
            if ident == "anyone":
                return True
            continue
        for id_scheme, id_value in auth_ids:
            if id_scheme != scheme:
                continue
            if scheme == "digest" and id_value == ident:
                return True
            if scheme == "ip" and _ip_matches(id_value, ident):
                return True
    return False


def check(acl: CanonicalACL, auth_ids: AuthIds, perm: int, path: str = "") -> None:
    """``allowed`` that raises ``NoAuthError`` (naming ``path``) instead of False."""
    if not allowed(acl, auth_ids, perm):
        raise NoAuthError(path)


__all__ = [
    "ACL",
    "ACL_SCHEMES",
    "ACLTypeError",
    "ANYONE_ID_UNSAFE",
    "AUTH_IDS",
    "AUTH_ID_SCHEMES",
    "AUTH_SCHEMES",
    "CREATOR_ALL_ACL",
    "OPEN_ACL",
    "OPEN_ACL_UNSAFE",
    "READ_ACL_UNSAFE",
    "SUPER_ID",
    "AuthFailedError",
    "AuthIds",
    "CanonicalACL",
    "Id",
    "InvalidACLError",
    "NoAuthError",
    "Permissions",
    "acl_problem",
    "allowed",
    "auth_id_problem",
    "canonical_acl",
    "check",
    "digest_of",
    "entry_problem",
    "fixup_acl",
    "make_acl",
    "make_digest_acl",
    "make_digest_acl_credential",
    "redact_digests",
    "resolve_auth",
    "to_acl_list",
    "with_id",
]
