"""Upload-event Lambda: an original landed in S3 (EventBridge "Object Created") -> the ingest task.

Exactly once: IngestService starts a task only for an asset still awaiting its upload (a versioned
write), and the execution is named after the task, so a duplicate or replayed event starts nothing.
A key that is not an original, or of another bucket, is logged and dropped (returning normally, so
EventBridge does not retry it). Errors reaching AWS are raised: EventBridge retries, then the DLQ.
The decisions live in mediaindex.services.upload_events, shared with the SQS watcher of
`serve --runtime aws`; this handler only unpacks the EventBridge envelope."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths

logger = Logger(service="mediaindex-upload-event")
tracer = Tracer(service="mediaindex-upload-event", patch_modules=["botocore"])

_state: dict[str, Any] = {}


def configure(ingest: Any = None, bucket: str | None = None, blobs: Any = None) -> None:
    """Sets the IngestService, bucket name and blob store (which deletes an original that landed
    for an asset no longer awaiting it); the first invoke builds them from settings."""
    if ingest is None:
        from mediaindex.bootstrap.aws import build_aws_ingest, lambda_settings

        settings = lambda_settings()
        ingest, blobs = build_aws_ingest(settings)
        bucket = settings.bucket_name
    _state.update(ingest=ingest, bucket=bucket, blobs=blobs)


def process(event: dict[str, Any]) -> dict[str, Any]:
    from mediaindex.services.upload_events import object_created

    detail = event.get("detail") or {}
    obj = detail.get("object") or {}
    return object_created(
        _state["ingest"],
        bucket=(detail.get("bucket") or {}).get("name"),
        key=str(obj.get("key", "")),
        size=obj.get("size"),
        etag=obj.get("etag"),
        expected_bucket=_state.get("bucket"),
        log=logger,
        blobs=_state.get("blobs"),
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "ingest" not in _state:
        configure()
    return process(event)
