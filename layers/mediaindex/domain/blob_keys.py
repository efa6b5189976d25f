"""Where each object lives in blob storage. Originals sit under `originals/` (the prefix the AWS
upload rule listens on); everything the pipeline makes sits under `derived/`. Both are per tenant
and asset, so deleting an asset is two prefix deletes."""

from __future__ import annotations

ORIGINALS_PREFIX = "originals/"
DERIVED_PREFIX = "derived/"


def original_key(tenant_id: str, asset_id: str, ext: str) -> str:
    # The user's file name is never part of a key: it cannot traverse or collide.
    suffix = f".{ext}" if ext else ""
    return f"{ORIGINALS_PREFIX}{tenant_id}/{asset_id}/original{suffix}"


def asset_prefixes(tenant_id: str, asset_id: str) -> tuple[str, str]:
    return f"{ORIGINALS_PREFIX}{tenant_id}/{asset_id}/", f"{DERIVED_PREFIX}{tenant_id}/{asset_id}/"


def derived_key(tenant_id: str, asset_id: str, name: str) -> str:
    return f"{DERIVED_PREFIX}{tenant_id}/{asset_id}/{name}"


def parse_original_key(key: str) -> tuple[str, str] | None:
    """(tenant_id, asset_id) of an original's key, or None for any other key."""
    if not key.startswith(ORIGINALS_PREFIX):
        return None
    parts = key[len(ORIGINALS_PREFIX) :].split("/")
    if len(parts) != 3 or not parts[2].startswith("original"):
        return None
    return parts[0], parts[1]
