"""Webhook-delivery Lambda, the consumer of the delivery SQS queue (infra/webhooks.py). Each
message names one delivery; the Deliverer (services.webhooks) makes the attempt if it is due, or
puts the message back with the rest of the wait (SQS delays at most 15 minutes), and schedules
the next attempt after a failure. A message whose handling raises is reported in
`batchItemFailures`: SQS delivers it again, and after maxReceiveCount it goes to the DLQ."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from mediaindex.adapters.aws.webhook_queue import parse_delivery_message
from mediaindex.services.webhooks import Deliverer

logger = Logger(service="mediaindex-webhook-delivery")

_state: dict[str, Deliverer] = {}


def configure(deliverer: Deliverer | None = None) -> None:
    """Sets the deliverer to use; the first invoke builds it from settings."""
    if deliverer is None:
        from mediaindex.bootstrap.aws import lambda_settings
        from mediaindex.bootstrap.webhooks import build_aws_webhooks

        webhooks = build_aws_webhooks(lambda_settings())
        if webhooks is None:
            raise RuntimeError("MEDIAINDEX_WEBHOOK_QUEUE_URL and MEDIAINDEX_WEBHOOK_KMS_KEY_ID are required")
        deliverer = webhooks.deliverer
    _state["deliverer"] = deliverer


def process(event: dict[str, Any]) -> dict[str, Any]:
    """SQS batch -> the partial-batch response (ReportBatchItemFailures)."""
    deliverer = _state["deliverer"]
    failures: list[dict[str, str]] = []
    for record in event.get("Records") or []:
        message_id = str(record.get("messageId") or "")
        try:
            tenant_id, webhook_id, delivery_id = parse_delivery_message(str(record.get("body") or ""))
        except ValueError:
            logger.error("not a delivery message: dropped", extra={"message_id": message_id})
            continue  # retrying cannot make it one
        try:
            deliverer.attempt(tenant_id, webhook_id, delivery_id)
        except Exception:
            logger.exception("delivery attempt failed to run", extra={"delivery_id": delivery_id})
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "deliverer" not in _state:
        configure()
    return process(event)
