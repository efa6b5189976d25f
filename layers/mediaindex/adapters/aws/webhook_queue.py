"""DeliveryQueue on AWS: one SQS message per scheduled attempt, delayed until the attempt is due
(at most SQS's 15 minutes: the consumer puts a message that arrives early back with the rest of
the wait). The message names the delivery; its state lives in DynamoDB."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mediaindex.domain.models import utcnow
from mediaindex.domain.webhooks import Delivery
from mediaindex.ports.webhooks import DeliveryQueue

MAX_DELAY_S = 900


def delivery_message(delivery: Delivery) -> str:
    return json.dumps(
        {"tenant_id": delivery.tenant_id, "webhook_id": delivery.webhook_id, "delivery_id": delivery.id}
    )


def parse_delivery_message(body: str) -> tuple[str, str, str]:
    """(tenant_id, webhook_id, delivery_id); ValueError for a body that names no delivery."""
    msg = json.loads(body)
    if not isinstance(msg, dict):
        raise ValueError("a delivery message is a JSON object")
    fields = (msg.get("tenant_id"), msg.get("webhook_id"), msg.get("delivery_id"))
    if not all(isinstance(f, str) and f for f in fields):
        raise ValueError("a delivery message names tenant_id, webhook_id and delivery_id")
    return str(fields[0]), str(fields[1]), str(fields[2])


class SqsDeliveryQueue(DeliveryQueue):
    def __init__(self, queue_url: str, sqs: Any, clock: Callable[[], datetime] = utcnow) -> None:
        self._url = queue_url
        self._sqs = sqs
        self._clock = clock

    def schedule(self, delivery: Delivery) -> None:
        wait = 0.0
        if delivery.next_attempt_at is not None:
            wait = (delivery.next_attempt_at - self._clock()).total_seconds()
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=delivery_message(delivery),
            DelaySeconds=int(min(MAX_DELAY_S, max(0.0, wait))),
        )
