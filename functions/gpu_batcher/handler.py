"""GPU batcher Lambda (mediaindex.adapters.aws.gpu_batches): two kinds of events.

- The GPU work queue's messages, in groups (an SQS event source mapping gathering up to a count or
  an age): each group is cut into batches of one tenant each, and each batch is submitted as one
  AWS Batch job. A batch whose manifest or submission fails has its messages reported failed
  (a partial batch response): SQS delivers them again, and after maxReceiveCount moves them to its
  dead-letter queue (their states then time out on their heartbeat, and those features fail). A
  body that is not GPU work is logged and dropped: delivering it again cannot make it readable.
- Batch "Job State Change" to FAILED on the GPU queue (EventBridge): a batch job that died as a
  whole (Spot reclaim, out of memory, cancelled while RUNNABLE) fails every token of its manifest,
  so each state retries its step into a later batch. A job of another kind is ignored.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from botocore.exceptions import ClientError

from mediaindex.adapters.aws import gpu_batches
from mediaindex.pipeline.spec import STEP_BY_NAME

logger = Logger(service="mediaindex-gpu-batcher")
tracer = Tracer(service="mediaindex-gpu-batcher", patch_modules=["botocore"])

GPU_STEPS = frozenset(name for name, step in STEP_BY_NAME.items() if step.compute == "gpu")

_state: dict[str, Any] = {}


def configure(batching: Any = None, max_items: int | None = None) -> None:
    """Sets the batcher's parts (mediaindex.bootstrap.gpu_batches.BatcherParts) and the most items a
    batch holds; the first invoke builds them from settings (MEDIAINDEX_GPU_BATCH_MAX_ITEMS)."""
    if batching is None or max_items is None:
        from mediaindex.bootstrap.aws import lambda_settings

        settings = lambda_settings()
        if batching is None:
            from mediaindex.bootstrap.gpu_batches import build_gpu_batching

            batching = build_gpu_batching(settings)
        if max_items is None:
            max_items = settings.gpu_batch_max_items
    if max_items < 1:
        raise ValueError("a GPU batch holds at least 1 item")
    _state.update(batching=batching, max_items=max_items)


def submit_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Submits the records' work in batches; returns the partial batch response."""
    work: dict[str, gpu_batches.GpuWork] = {}  # by token: a message delivered twice runs once
    message_ids: dict[str, list[str]] = {}
    dropped = 0
    for record in records:
        parsed = gpu_batches.parse_work(str(record.get("body", "")), GPU_STEPS)
        if parsed is None:
            dropped += 1
            logger.error(
                "dropped a message that is not GPU work",
                extra={"message_id": record.get("messageId"), "body": str(record.get("body", ""))[:200]},
            )
            continue
        work.setdefault(parsed.token, parsed)
        message_ids.setdefault(parsed.token, []).append(str(record["messageId"]))
    failures: list[str] = []
    submitted = 0
    for batch in gpu_batches.plan_batches(list(work.values()), _state["max_items"]):
        try:
            job_id = _state["batching"].batcher.submit(batch)
        except Exception:  # this batch's messages come back; the other batches stand
            logger.exception("GPU batch not submitted", extra={"tenant_id": batch[0].tenant_id})
            failures.extend(i for w in batch for i in message_ids[w.token])
            continue
        submitted += 1
        logger.info(
            "GPU batch submitted",
            extra={"job_id": job_id, "tenant_id": batch[0].tenant_id, "items": len(batch)},
        )
    logger.info(
        "GPU work received", extra={"records": len(records), "batches": submitted, "dropped": dropped}
    )
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failures]}


def job_failed(detail: dict[str, Any]) -> dict[str, Any]:
    """Fails the tokens of a batch job that failed as a whole."""
    command = (detail.get("container") or {}).get("command") or []
    key = gpu_batches.manifest_key_of([str(c) for c in command])
    if key is None:
        return {"status": "ignored"}  # not a GPU batch job
    batching = _state["batching"]
    try:
        items = batching.manifest(key, GPU_STEPS)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise  # EventBridge retries the event
        # Expired (a day under tmp/): its states have long timed out and retried on their own.
        logger.warning("GPU batch manifest gone", extra={"manifest": key, "job_id": detail.get("jobId")})
        return {"status": "manifest_missing"}
    reason = str(detail.get("statusReason") or "")
    failed = gpu_batches.fail_batch(items, batching.reporter, reason)
    logger.warning(
        "GPU batch job failed: its tokens failed",
        extra={"manifest": key, "job_id": detail.get("jobId"), "items": failed, "reason": reason},
    )
    return {"status": "failed", "tokens": failed}


def process(event: dict[str, Any]) -> dict[str, Any]:
    records = event.get("Records")
    if isinstance(records, list):
        if any(r.get("eventSource") != "aws:sqs" for r in records):
            raise ValueError("the GPU batcher reads SQS records only")
        return submit_records(records)
    detail = event.get("detail") or {}
    if event.get("source") == "aws.batch" and detail.get("status") == "FAILED":
        return job_failed(detail)
    logger.warning("ignored an event of another kind", extra={"detail_type": event.get("detail-type")})
    return {"status": "ignored"}


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "batching" not in _state:
        configure()
    return process(event)
