"""Upload-event Lambda: an original landed in S3 (EventBridge "Object Created") -> the ingest task.

Exactly once: IngestService starts a task only for an asset still awaiting its upload (a versioned
write), and the execution is named after the task, so a duplicate or replayed event starts nothing.
A key that is not an original, or of another bucket, is logged and dropped (returning normally, so
EventBridge does not retry it). Errors reaching AWS are raised: EventBridge retries, then the DLQ."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths

logger = Logger(service="mediaindex-upload-event")
tracer = Tracer(service="mediaindex-upload-event", patch_modules=["botocore"])

_state: dict[str, Any] = {}


def configure(ingest: Any = None, bucket: str | None = None) -> None:
    """Sets the IngestService (and bucket name) to use; the first invoke builds them from settings."""
    if ingest is None:
        from mediaindex.runtime_aws import build_aws_ingest, lambda_settings

        settings = lambda_settings()
        ingest, bucket = build_aws_ingest(settings), settings.bucket_name
    _state.update(ingest=ingest, bucket=bucket)


def process(event: dict[str, Any]) -> dict[str, Any]:
    from mediaindex.domain.blob_keys import parse_original_key

    detail = event.get("detail") or {}
    bucket = (detail.get("bucket") or {}).get("name")
    obj = detail.get("object") or {}
    key = unquote_plus(str(obj.get("key", "")))  # S3 event keys arrive URL-encoded
    if _state.get("bucket") and bucket != _state["bucket"]:
        logger.warning("event for another bucket dropped", extra={"bucket": bucket, "key": key})
        return {"status": "ignored", "reason": "bucket"}
    parsed = parse_original_key(key)
    if parsed is None:
        logger.warning("event for a key that is no original dropped", extra={"key": key})
        return {"status": "ignored", "reason": "key"}
    _, asset_id = parsed
    size = obj.get("size")
    task = _state["ingest"].original_uploaded(
        asset_id, size=int(size) if size is not None else None, etag=obj.get("etag")
    )
    if task is None:
        logger.info("no task started (duplicate event or unknown asset)", extra={"asset_id": asset_id})
        return {"status": "duplicate", "asset_id": asset_id}
    logger.info("ingest started", extra={"asset_id": asset_id, "task_id": task.id})
    return {"status": "started", "asset_id": asset_id, "task_id": task.id}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "ingest" not in _state:
        configure()
    return process(event)
