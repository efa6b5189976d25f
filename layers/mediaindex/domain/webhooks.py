"""Webhooks: subscriptions, deliveries, the event names, the payload of a settled task, the
signature (`Mediaindex-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`) and the
retry schedule. Pure: the HTTP, the storage and the secret's encryption live in adapters."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from mediaindex.domain.models import Asset, AssetStatus, Entity, Task, TaskState, utcnow

SIGNATURE_HEADER = "Mediaindex-Signature"
EVENT_HEADER = "Mediaindex-Event"
DELIVERY_HEADER = "Mediaindex-Delivery"
# A receiver refuses a signature older than this (replays of a captured delivery).
REPLAY_WINDOW_S = 300


class WebhookEvent(StrEnum):
    ASSET_READY = "asset.ready"
    ASSET_FAILED = "asset.failed"
    TASK_COMPLETED = "task.completed"
    TASK_FAILED = "task.failed"
    INDEX_REINDEXED = "index.reindexed"  # a re-index ended: swapped and finished (services/reindex)


class DeliveryState(StrEnum):
    PENDING = "pending"  # due at next_attempt_at
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # retries exhausted, or its webhook was disabled or deleted


class Webhook(Entity):
    id: str
    tenant_id: str
    url: str
    events: list[WebhookEvent]
    description: str | None = None
    # The signing secret, encrypted by the runtime's SecretBox (never the plain secret).
    secret_sealed: str
    enabled: bool = True
    disabled_reason: str | None = None
    # When the current run of failed attempts began (None after any success).
    failing_since: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Delivery(Entity):
    id: str
    tenant_id: str
    webhook_id: str
    event: WebhookEvent
    body: str  # the exact JSON that is signed and sent, the same on every attempt
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


def delivery_id(webhook_id: str, event: WebhookEvent, subject: str) -> str:
    """The same webhook, event and subject always give the same id: a duplicate event (a retried
    `task_finished`, a crash between the write and the enqueue) finds its delivery already there."""
    digest = hashlib.sha256(f"{webhook_id}\n{event}\n{subject}".encode()).hexdigest()
    return f"dlv_{digest[:32]}"


def settled_events(task: Task, asset: Asset) -> list[tuple[WebhookEvent, str, dict[str, Any]]]:
    """(event, subject, data) for a task that has ended: `task.completed|failed`, and the asset's
    `asset.ready|failed` when it has settled too. The subject names the task, so a re-run that ends
    the asset ready again is a new event. Cancelled tasks notify nothing."""
    out: list[tuple[WebhookEvent, str, dict[str, Any]]] = []
    task_event = {
        TaskState.COMPLETED: WebhookEvent.TASK_COMPLETED,
        TaskState.FAILED: WebhookEvent.TASK_FAILED,
    }
    if task.state not in task_event:
        return out
    features = {str(f): str(fs.state) for f, fs in task.features.items()}
    error = task.error.model_dump() if task.error else None
    task_data = {
        "task_id": task.id,
        "asset_id": task.asset_id,
        "index_id": task.index_id,
        "kind": str(task.kind),
        "state": str(task.state),
        "features": features,
        "error": error,
    }
    out.append((task_event[task.state], task.id, task_data))
    asset_event = {AssetStatus.READY: WebhookEvent.ASSET_READY, AssetStatus.FAILED: WebhookEvent.ASSET_FAILED}
    if asset.status in asset_event:
        asset_data = {
            "asset_id": asset.id,
            "index_id": asset.index_id,
            "task_id": task.id,
            "status": str(asset.status),
            "features": {str(f): str(fs.state) for f, fs in asset.features.items()},
            "error": asset.error.model_dump() if asset.error else None,
        }
        out.append((asset_event[asset.status], f"{asset.id}/{task.id}", asset_data))
    return out


def payload(delivery_id_: str, event: WebhookEvent, tenant_id: str, data: dict[str, Any]) -> str:
    """The body of a delivery: compact JSON, fixed once (the signature covers these exact bytes)."""
    body = {
        "id": delivery_id_,
        "type": str(event),
        "created_at": utcnow().isoformat(),
        "tenant_id": tenant_id,
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Mediaindex-Signature` header value for `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance_s: int = REPLAY_WINDOW_S) -> bool:
    """What a receiver does (docs/webhooks.md has it standalone): the timestamp is recent and one
    `v1` matches in constant time. Several `v1` may appear while a secret rotates."""
    fields = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in fields if k.strip() == "t"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit():
        return False
    t = int(stamps[0])
    if abs(now - t) > tolerance_s:
        return False
    expected = sign(secret, t, body).split("v1=", 1)[1]
    return any(k.strip() == "v1" and hmac.compare_digest(v.strip(), expected) for k, v in fields)


def retry_delay_s(
    attempts: int, delays_s: list[float], *, jitter: float, rng: random.Random | None = None
) -> float:
    """The wait after the `attempts`-th failed attempt: delays_s in turn, then its last value
    (hourly) again, each spread by +-jitter so receivers that failed together do not retry together."""
    base = delays_s[min(attempts, len(delays_s)) - 1] if attempts >= 1 else delays_s[0]
    spread = (rng or random).uniform(-jitter, jitter) if jitter else 0.0
    return max(0.0, base * (1 + spread))
