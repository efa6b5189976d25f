"""API key scopes and lifetimes: what each scope may call, how long a rotated key stays valid,
and how often its `last_used_at` is written. Rules only; KeyService applies them."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from mediaindex.domain.errors import ForbiddenError

# A rotated key stays valid this long by default, and at most this long (docs/tenants.md).
DEFAULT_OVERLAP_S = 24 * 3600
MAX_OVERLAP_S = 7 * 24 * 3600
# `last_used_at` is written at most once a minute per key, so reads do not become writes.
LAST_USED_EVERY_S = 60
MAX_KEYS_PER_TENANT = 100

_READS = frozenset({"GET", "HEAD"})
_SEARCH = ("POST", "/v1/search")
# POSTs that only read: a read_only key may send them.
_READ_POSTS = frozenset({_SEARCH, ("POST", "/v1/assets/batch-get")})


class KeyScope(StrEnum):
    ADMIN = "admin"
    READ_WRITE = "read_write"
    READ_ONLY = "read_only"
    SEARCH_ONLY = "search_only"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def scope_allows(scope: KeyScope, method: str, path: str) -> bool:
    """Whether a key of `scope` may call `method path` (path without a trailing slash)."""
    if scope is KeyScope.ADMIN:
        return True
    if _under(path, "/v1/keys"):  # managing keys is the admin scope's alone
        return False
    if scope is KeyScope.SEARCH_ONLY:  # browser-safe: finds things, changes nothing, lists nothing
        return (method, path) == _SEARCH or (method in _READS and path == "/v1/capabilities")
    if scope is KeyScope.READ_ONLY:
        return method in _READS or (method, path) in _READ_POSTS
    return not (_under(path, "/v1/quotas") and method not in _READS)  # read_write: quotas are admin's


def check_scope(scope: KeyScope, method: str, path: str) -> None:
    if not scope_allows(scope, method, path):
        raise ForbiddenError(
            f"this API key's scope ({scope.value}) does not allow {method} {path}", code="scope_insufficient"
        )


def overlap_end(now: datetime, overlap_s: int) -> datetime:
    """When the old key of a rotation stops working."""
    return now + timedelta(seconds=overlap_s)


def is_expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


def needs_touch(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or (now - last_used_at).total_seconds() >= LAST_USED_EVERY_S
