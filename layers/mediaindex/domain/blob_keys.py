"""Where each object lives in blob storage. Originals sit under `originals/` (the prefix the AWS
upload rule listens on and IAM scopes to); everything the pipeline makes sits under `derived/`.
Both are per asset, so deleting an asset is two prefix deletes.

Two layouts, recorded per asset (`Asset.key_layout`), so what an earlier release wrote still opens:
  1 (tenant first, assets of the previous release): originals/<tenant>/<asset>/original.<ext>
  2 (hashed, every new asset):                       originals/<hh>/<tenant>/<asset>/original.<ext>
`<hh>` is two hex characters of sha256(asset id). S3 scales per key range (about 3,500 PUT-class and
5,500 GET-class requests a second each) and splits a range that stays hot. Ids are time-ordered, so
under layout 1 one busy tenant's writes all land at the tail of `originals/<tenant>/`; the hash
spreads them evenly over 256 ranges that S3 can split apart (docs/scale.md, "S3 key layout")."""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

ORIGINALS_PREFIX = "originals/"
DERIVED_PREFIX = "derived/"

LAYOUT_TENANT_FIRST = 1
LAYOUT_HASHED = 2
NEW_KEY_LAYOUT = LAYOUT_HASHED  # what a new asset is created with

# 2 hex characters: 256 ranges, 256 x 3,500 = 896,000 PUTs a second for one tenant, far past any
# other quota of a deployment; one more character would only lengthen every key.
HASH_CHARS = 2

_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_ORIGINAL_NAME = re.compile(r"original(?:\.[A-Za-z0-9_-]+)?")


class KeyOwner(Protocol):
    """What the keys of an asset's objects depend on; an `Asset` is one."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def id(self) -> str: ...

    @property
    def key_layout(self) -> int: ...


def key_hash(asset_id: str) -> str:
    return hashlib.sha256(asset_id.encode()).hexdigest()[:HASH_CHARS]


def _asset_path(tenant_id: str, asset_id: str, layout: int) -> str:
    """`<tenant>/<asset>/` or `<hh>/<tenant>/<asset>/`: what follows the top-level folder."""
    if layout == LAYOUT_TENANT_FIRST:
        return f"{tenant_id}/{asset_id}/"
    if layout == LAYOUT_HASHED:
        return f"{key_hash(asset_id)}/{tenant_id}/{asset_id}/"
    raise ValueError(f"unknown key layout {layout!r}")


def original_key(tenant_id: str, asset_id: str, ext: str, layout: int) -> str:
    """Chosen once, when the asset is created (then kept in `asset.upload.key`)."""
    # The user's file name is never part of a key: it cannot traverse or collide.
    suffix = f".{ext}" if ext else ""
    return f"{ORIGINALS_PREFIX}{_asset_path(tenant_id, asset_id, layout)}original{suffix}"


def asset_prefixes(owner: KeyOwner) -> tuple[str, str]:
    """The asset's originals and derived prefixes: deleting both removes every object it has."""
    path = _asset_path(owner.tenant_id, owner.id, owner.key_layout)
    return f"{ORIGINALS_PREFIX}{path}", f"{DERIVED_PREFIX}{path}"


def derived_key(owner: KeyOwner, name: str) -> str:
    return f"{asset_prefixes(owner)[1]}{name}"


def parse_original_key(key: str) -> tuple[str, str] | None:
    """(tenant_id, asset_id) of an original's key in either layout, or None for any other key:
    another folder, extra or empty segments, `.` or `..`, another file name, or (layout 2) a hash
    that is not the asset id's."""
    if not key.startswith(ORIGINALS_PREFIX):
        return None
    *folders, name = key[len(ORIGINALS_PREFIX) :].split("/")
    if not _ORIGINAL_NAME.fullmatch(name) or not all(
        _SEGMENT.fullmatch(f) and f not in (".", "..") for f in folders
    ):
        return None
    if len(folders) == 2:  # layout 1
        return folders[0], folders[1]
    if len(folders) == 3 and folders[0] == key_hash(folders[2]):  # layout 2
        return folders[1], folders[2]
    return None
