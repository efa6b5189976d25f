"""The wire format of /v1/webhooks: the create body, a webhook as served (its secret only in the
answer to its creation), and its delivery log."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from mediaindex.api.schemas.base import Strict
from mediaindex.domain.webhooks import Delivery, Webhook, WebhookEvent

EVENTS_DOC = (
    "`asset.ready`, `asset.failed`, `task.completed`, `task.failed`, `index.reindexed` (a re-index ended)."
)


class WebhookCreate(Strict):
    url: str = Field(
        max_length=2048,
        description="Where deliveries are POSTed: http(s), public addresses only (docs/webhooks.md).",
        examples=["https://example.com/hooks/mediaindex"],
    )
    events: list[str] = Field(min_length=1, max_length=8, description="The events to send: " + EVENTS_DOC)
    description: str | None = Field(None, max_length=500, description="A note for people.")


class WebhookOut(BaseModel):
    id: str = Field(description="The webhook's id.", examples=["whk_0193a1b2c3d4e5f6a7b8c9d0e1"])
    url: str = Field(description="Where deliveries are POSTed.")
    events: list[WebhookEvent] = Field(description=EVENTS_DOC)
    description: str | None = Field(None, description="The note given at creation.")
    enabled: bool = Field(description="False once disabled after sustained failure (see disabled_reason).")
    disabled_reason: str | None = Field(None, description="Why deliveries stopped.")
    failing_since: datetime | None = Field(None, description="Start of the current run of failed attempts.")
    created_at: datetime = Field(description="When it was created (UTC).")
    updated_at: datetime = Field(description="When it last changed (UTC).")

    @classmethod
    def of(cls, w: Webhook) -> WebhookOut:
        return cls(
            id=w.id,
            url=w.url,
            events=w.events,
            description=w.description,
            enabled=w.enabled,
            disabled_reason=w.disabled_reason,
            failing_since=w.failing_since,
            created_at=w.created_at,
            updated_at=w.updated_at,
        )


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="The signing secret: shown this once, never again. Verify `Mediaindex-Signature` with it."
    )


class WebhookList(BaseModel):
    data: list[WebhookOut] = Field(description="The tenant's webhooks, without their secrets.")


class DeliveryOut(BaseModel):
    id: str = Field(description="The delivery's id, also sent as `Mediaindex-Delivery`.")
    webhook_id: str = Field(description="The webhook it was sent to.")
    event: WebhookEvent = Field(description="The event it reports (`Mediaindex-Event`).")
    state: str = Field(
        description="`pending`, `succeeded` or `failed` (retries exhausted or webhook disabled)."
    )
    attempts: int = Field(description="How many times it was sent.")
    status_code: int | None = Field(None, description="The HTTP status of the last attempt, if it got one.")
    last_error: str | None = Field(
        None, description="Why the last attempt failed (HTTP status or network error)."
    )
    next_attempt_at: datetime | None = Field(None, description="When it is retried, while `pending`.")
    created_at: datetime = Field(description="When the event happened (UTC).")
    updated_at: datetime = Field(description="When the delivery last changed (UTC).")

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            id=d.id,
            webhook_id=d.webhook_id,
            event=d.event,
            state=str(d.state),
            attempts=d.attempts,
            status_code=d.last_status_code,
            last_error=d.last_error,
            next_attempt_at=d.next_attempt_at,
            created_at=d.created_at,
            updated_at=d.updated_at,
        )


class DeliveryList(BaseModel):
    data: list[DeliveryOut] = Field(description="Deliveries, newest first.")
