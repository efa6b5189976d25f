"""An original landed in the bucket: an S3 "object created" event, however it arrives (EventBridge to
the upload-event Lambda in a deployment, S3 -> SQS to the queue watcher of `serve --runtime aws`).
One place decides what such an event starts, so both paths drop, decode and deduplicate alike.

Exactly once: IngestService starts a task only for an asset still awaiting its upload (a versioned
write), so a duplicate or replayed event starts nothing. An original whose asset is gone, or ended
before its upload completed (a PUT to a deleted asset's still-valid URL), is deleted here when the
caller passes the blob store, so no orphan stays in the bucket."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_plus

from mediaindex.domain.blob_keys import parse_original_key
from mediaindex.ports.blobs import BlobStore
from mediaindex.services.ingest import IngestService, Landing

_log = logging.getLogger(__name__)


def object_created(
    ingest: IngestService,
    *,
    bucket: str | None,
    key: str,
    size: int | str | None,
    etag: str | None,
    expected_bucket: str | None = None,
    log: Any = None,
    blobs: BlobStore | None = None,
) -> dict[str, Any]:
    """Handles one object-created event. `key` as S3 events carry it (URL-encoded); `log` is the
    caller's logger (a Lambda's structured one), the module's by default; `blobs` the store that
    deletes an unwanted original (without it one is only logged). Returns the outcome:
    {"status": "started", "asset_id", "task_id"}, {"status": "duplicate", "asset_id"},
    {"status": "deleted" | "unwanted", "asset_id"} or {"status": "ignored", "reason": "bucket" |
    "key"}. Errors reaching the stores are raised, for the caller's retry (EventBridge's, or the
    message's next SQS delivery); deleting twice is harmless."""
    log = log or _log
    key = unquote_plus(key)
    if expected_bucket and bucket != expected_bucket:
        log.warning("event for another bucket dropped", extra={"bucket": bucket, "key": key})
        return {"status": "ignored", "reason": "bucket"}
    parsed = parse_original_key(key)
    if parsed is None:
        log.warning("event for a key that is no original dropped", extra={"key": key})
        return {"status": "ignored", "reason": "key"}
    tenant_id, asset_id = parsed
    landing, task = ingest.original_landed(
        tenant_id,
        asset_id,
        size=int(size) if size is not None else None,
        etag=etag.strip('"') if etag else None,  # S3 quotes ETags in some places, not in events
        key=key,
    )
    if landing == Landing.UNWANTED:
        if blobs is None:
            log.warning("unwanted original left in place (no blob store given)", extra={"key": key})
            return {"status": "unwanted", "asset_id": asset_id}
        blobs.delete(key)
        log.warning("original of a deleted or ended asset deleted", extra={"key": key})
        return {"status": "deleted", "asset_id": asset_id}
    if task is None:
        log.info("no task started (duplicate event or unknown asset)", extra={"asset_id": asset_id})
        return {"status": "duplicate", "asset_id": asset_id}
    log.info("ingest started", extra={"asset_id": asset_id, "task_id": task.id})
    return {"status": "started", "asset_id": asset_id, "task_id": task.id}
