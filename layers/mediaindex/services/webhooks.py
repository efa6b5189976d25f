"""Webhooks: subscriptions (`WebhookService`, what the API calls), the sink that turns settled
tasks into deliveries (`WebhookNotifier`), and the attempts (`Deliverer`): signed, retried on a
schedule for `retry_window_s`, the webhook disabled once its attempts have failed that long."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from mediaindex.domain.errors import ConflictError, NotFoundError, ValidationError
from mediaindex.domain.models import Asset, Task, utcnow
from mediaindex.domain.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    Delivery,
    DeliveryState,
    Webhook,
    WebhookEvent,
    delivery_id,
    payload,
    retry_delay_s,
    settled_events,
    sign,
)
from mediaindex.net.url_guard import Resolver, system_resolver
from mediaindex.net.webhook_target import PostResult, check_webhook_url
from mediaindex.ports.webhooks import DeliveryQueue, DueDeliveries, EventSink, SecretBox, WebhookRepository

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Poster = Callable[..., PostResult]


def post_signed(*args: Any, **kw: Any) -> PostResult:
    """net.webhook_post.post_signed, imported on the first delivery: the API's cold start never
    loads an HTTP client (httpx) it only needs to send."""
    from mediaindex.net.webhook_post import post_signed as post

    return post(*args, **kw)


MAX_URL_LEN = 2048
MAX_DESCRIPTION_LEN = 500


class WebhookSettings(BaseSettings):
    """`MEDIAINDEX_WEBHOOK_*`. Targets follow `MEDIAINDEX_ALLOW_PRIVATE_URLS` like asset_url."""

    model_config = SettingsConfigDict(env_prefix="MEDIAINDEX_WEBHOOK_", extra="ignore")

    # Waits after the 1st, 2nd, ... failed attempt; the last one repeats until retry_window_s.
    retry_delays_s: list[float] = Field(default=[30.0, 120.0, 600.0, 3600.0], min_length=1)
    retry_window_s: float = Field(24 * 3600.0, gt=0)
    retry_jitter: float = Field(0.1, ge=0, le=0.5)
    timeout_s: float = Field(5.0, gt=0, le=30)
    max_response_bytes: int = Field(4096, ge=0)
    max_per_tenant: int = Field(20, ge=1)
    # Local runtime: how often the delivery loop looks for due rows when nothing wakes it.
    poll_interval_s: float = Field(5.0, gt=0)
    # Local runtime: the AES-256 key (hex) sealing the secrets; else a key file in data_dir.
    secret_key: SecretStr | None = None
    # AWS runtime: the delivery queue (SQS) and the KMS key sealing the secrets.
    queue_url: str | None = None
    kms_key_id: str | None = None

    def max_attempts(self) -> int:
        """Attempts that fit in the window when each waits its scheduled delay (1 + the retries)."""
        waited, n = 0.0, 1
        while True:
            delay = self.retry_delays_s[min(n, len(self.retry_delays_s)) - 1]
            if waited + delay > self.retry_window_s:
                return n
            waited += delay
            n += 1


@dataclass(frozen=True)
class WebhookConfig:
    settings: WebhookSettings
    allow_private: bool
    clock: Clock = utcnow
    resolver: Resolver = system_resolver
    poster: Poster = post_signed


def _new_webhook_id() -> str:
    # Sortable by creation like the other ids: milliseconds, then randomness.
    return f"whk_{int(time.time() * 1000):012x}{secrets.token_hex(7)}"


def _secret_context(tenant_id: str, webhook_id: str) -> str:
    return f"{tenant_id}/{webhook_id}"


def parse_events(values: list[str]) -> list[WebhookEvent]:
    if not values:
        raise ValidationError(
            "events must name at least one event", code="webhook_events_invalid", field="events"
        )
    out: list[WebhookEvent] = []
    for v in values:
        try:
            event = WebhookEvent(v)
        except ValueError:
            allowed = ", ".join(e.value for e in WebhookEvent)
            raise ValidationError(
                f"unknown event {v!r}; expected one of {allowed}",
                code="webhook_events_invalid",
                field="events",
            ) from None
        if event not in out:
            out.append(event)
    return out


class WebhookService:
    def __init__(
        self, repo: WebhookRepository, box: SecretBox, queue: DeliveryQueue, config: WebhookConfig
    ) -> None:
        self._repo = repo
        self._box = box
        self._queue = queue
        self._config = config

    def create(
        self, tenant_id: str, url: str, events: list[str], description: str | None = None
    ) -> tuple[Webhook, str]:
        """The webhook and its signing secret: the one time the secret is ever returned."""
        wanted = parse_events(events)
        if len(url) > MAX_URL_LEN:
            raise ValidationError(
                f"url is over {MAX_URL_LEN} characters", code="webhook_url_invalid", field="url"
            )
        if description is not None and len(description) > MAX_DESCRIPTION_LEN:
            raise ValidationError(
                f"description is over {MAX_DESCRIPTION_LEN} characters", field="description"
            )
        check_webhook_url(url, allow_private=self._config.allow_private, resolver=self._config.resolver)
        if len(self._repo.list_webhooks(tenant_id)) >= self._config.settings.max_per_tenant:
            raise ConflictError(
                f"a tenant has at most {self._config.settings.max_per_tenant} webhooks",
                code="webhook_limit_reached",
            )
        webhook_id = _new_webhook_id()
        secret = "whsec_" + secrets.token_urlsafe(32)
        webhook = Webhook(
            id=webhook_id,
            tenant_id=tenant_id,
            url=url,
            events=wanted,
            description=description,
            secret_sealed=self._box.seal(secret, context=_secret_context(tenant_id, webhook_id)),
        )
        self._repo.add(webhook)
        return webhook, secret

    def get(self, tenant_id: str, webhook_id: str) -> Webhook:
        webhook = self._repo.get(tenant_id, webhook_id)
        if webhook is None:
            raise NotFoundError(f"webhook {webhook_id} not found", code="webhook_not_found")
        return webhook

    def list_webhooks(self, tenant_id: str) -> list[Webhook]:
        return self._repo.list_webhooks(tenant_id)

    def delete(self, tenant_id: str, webhook_id: str) -> None:
        if not self._repo.delete(tenant_id, webhook_id):
            raise NotFoundError(f"webhook {webhook_id} not found", code="webhook_not_found")

    def enable(self, tenant_id: str, webhook_id: str) -> Webhook:
        """Turns a disabled webhook back on with a clean record; earlier deliveries stay as they
        ended (redeliver them one by one)."""
        webhook = self.get(tenant_id, webhook_id)
        webhook = webhook.model_copy(
            update={"enabled": True, "disabled_reason": None, "failing_since": None, "updated_at": utcnow()}
        )
        if not self._repo.update(webhook):
            raise NotFoundError(f"webhook {webhook_id} not found", code="webhook_not_found")
        return webhook

    def deliveries(self, tenant_id: str, webhook_id: str, *, limit: int) -> list[Delivery]:
        self.get(tenant_id, webhook_id)
        return self._repo.list_deliveries(tenant_id, webhook_id, limit=limit)

    def redeliver(self, tenant_id: str, webhook_id: str, delivery_id_: str) -> Delivery:
        """Sends the delivery again now, with a fresh retry schedule (same id and body)."""
        webhook = self.get(tenant_id, webhook_id)
        if not webhook.enabled:
            raise ConflictError(
                "the webhook is disabled; enable it first (POST /v1/webhooks/{id}/enable)",
                code="webhook_disabled",
            )
        delivery = self._repo.get_delivery(tenant_id, webhook_id, delivery_id_)
        if delivery is None:
            raise NotFoundError(f"delivery {delivery_id_} not found", code="delivery_not_found")
        now = self._config.clock()
        delivery = delivery.model_copy(
            update={"state": DeliveryState.PENDING, "attempts": 0, "next_attempt_at": now, "updated_at": now}
        )
        self._repo.save_delivery(delivery)
        self._queue.schedule(delivery)
        return delivery


class WebhookNotifier(EventSink):
    """Writes one delivery per subscribed webhook, under an id made of the webhook, the event and
    the subject: a second report of the same settlement adds nothing."""

    def __init__(self, repo: WebhookRepository, queue: DeliveryQueue, clock: Clock = utcnow) -> None:
        self._repo = repo
        self._queue = queue
        self._clock = clock

    def task_settled(self, task: Task, asset: Asset) -> None:
        for event, subject, data in settled_events(task, asset):
            self.emit(task.tenant_id, event, subject, data)

    def emit(self, tenant_id: str, event: str, subject: str, data: dict[str, Any]) -> None:
        kind = WebhookEvent(event)
        for webhook in self._repo.list_webhooks(tenant_id):
            if not webhook.enabled or kind not in webhook.events:
                continue
            did = delivery_id(webhook.id, kind, subject)
            now = self._clock()
            delivery = Delivery(
                id=did,
                tenant_id=tenant_id,
                webhook_id=webhook.id,
                event=kind,
                body=payload(did, kind, tenant_id, data),
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            if not self._repo.add_delivery(delivery):
                existing = self._repo.get_delivery(tenant_id, webhook.id, did)
                # Written before but perhaps never queued (a crash in between): queue it again.
                if existing is None or existing.state != DeliveryState.PENDING or existing.attempts:
                    continue
                delivery = existing
            self._queue.schedule(delivery)


class Deliverer:
    """Makes the attempts. The row changes only after the POST: a process killed mid-attempt
    leaves the delivery due, and the next start sends it again (receivers dedupe on
    `Mediaindex-Delivery`)."""

    def __init__(
        self,
        repo: WebhookRepository,
        box: SecretBox,
        queue: DeliveryQueue,
        config: WebhookConfig,
        due: DueDeliveries | None = None,
    ) -> None:
        self._repo = repo
        self._box = box
        self._queue = queue
        self._config = config
        self._due = due
        self._max_attempts = config.settings.max_attempts()

    def run_due(self, *, limit: int = 100) -> int:
        """Attempts every delivery due now (the local loop); returns how many were attempted. One
        that cannot be attempted (its secret does not open) stays due and blocks no other."""
        if self._due is None:
            raise RuntimeError("this runtime queues deliveries elsewhere")
        done = 0
        for d in self._due.due(self._config.clock(), limit=limit):
            try:
                attempted = self.attempt(d.tenant_id, d.webhook_id, d.id)
            except Exception:
                log.exception("webhook delivery could not be attempted", extra={"delivery_id": d.id})
                continue
            done += attempted is not None
        return done

    def attempt(self, tenant_id: str, webhook_id: str, delivery_id_: str) -> Delivery | None:
        """One attempt if the delivery is due; a delivery not due yet is scheduled again (a queue
        delays a message 15 minutes at most). Returns the delivery as it is now."""
        delivery = self._repo.get_delivery(tenant_id, webhook_id, delivery_id_)
        webhook = self._repo.get(tenant_id, webhook_id)
        if delivery is None or webhook is None or delivery.state != DeliveryState.PENDING:
            return delivery
        now = self._config.clock()
        if not webhook.enabled:
            reason = f"webhook disabled: {webhook.disabled_reason or 'by request'}"
            self._save(delivery, now, state=DeliveryState.FAILED, next_at=None, error=reason)
            return None
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + timedelta(seconds=1):
            self._queue.schedule(delivery)
            return None
        result = self._post(webhook, delivery, now)
        attempts = delivery.attempts + 1
        if result.ok:
            delivery = self._save(
                delivery, now, state=DeliveryState.SUCCEEDED, next_at=None, result=result, attempts=attempts
            )
            if webhook.failing_since is not None:
                self._repo.update(webhook.model_copy(update={"failing_since": None, "updated_at": now}))
            return delivery
        settings = self._config.settings
        if attempts >= self._max_attempts:
            state, next_at = DeliveryState.FAILED, None
        else:
            wait = retry_delay_s(attempts, settings.retry_delays_s, jitter=settings.retry_jitter)
            state, next_at = DeliveryState.PENDING, now + timedelta(seconds=wait)
        delivery = self._save(delivery, now, state=state, next_at=next_at, result=result, attempts=attempts)
        self._record_failure(webhook, now, result, exhausted=state == DeliveryState.FAILED)
        if state == DeliveryState.PENDING:
            self._queue.schedule(delivery)
        log.info(
            "webhook delivery failed",
            extra={"delivery_id": delivery.id, "attempts": attempts, "error": result.error},
        )
        return delivery

    def _post(self, webhook: Webhook, delivery: Delivery, now: datetime) -> PostResult:
        secret = self._box.open(webhook.secret_sealed, context=_secret_context(webhook.tenant_id, webhook.id))
        body = delivery.body.encode()
        headers = {
            SIGNATURE_HEADER: sign(secret, int(now.timestamp()), body),
            EVENT_HEADER: str(delivery.event),
            DELIVERY_HEADER: delivery.id,
            "user-agent": "mediaindex-webhooks/1",
        }
        s = self._config.settings
        return self._config.poster(
            webhook.url,
            body,
            headers,
            allow_private=self._config.allow_private,
            timeout_s=s.timeout_s,
            max_response_bytes=s.max_response_bytes,
            resolver=self._config.resolver,
        )

    def _record_failure(
        self, webhook: Webhook, now: datetime, result: PostResult, *, exhausted: bool
    ) -> None:
        """Starts (or continues) the webhook's run of failures. It is disabled when a delivery has
        used up its retries (about retry_window_s of failing attempts), or when the run itself has
        lasted retry_window_s (deliveries that keep failing, each still within its schedule)."""
        since = webhook.failing_since or now
        update: dict[str, Any] = {"failing_since": since, "updated_at": now}
        failing_s = (now - since).total_seconds()
        if exhausted or failing_s >= self._config.settings.retry_window_s:
            update["enabled"] = False
            update["disabled_reason"] = (
                f"deliveries failed for {failing_s / 3600:.1f} h without a success "
                f"(since {since.isoformat()}; last: {result.error})"
            )
            log.warning("webhook disabled", extra={"webhook_id": webhook.id})
        self._repo.update(webhook.model_copy(update=update))

    def _save(
        self,
        delivery: Delivery,
        now: datetime,
        *,
        state: DeliveryState,
        next_at: datetime | None,
        error: str | None = None,
        result: PostResult | None = None,
        attempts: int | None = None,
    ) -> Delivery:
        update: dict[str, Any] = {"state": state, "next_attempt_at": next_at, "updated_at": now}
        if result is not None:
            update["last_status_code"] = result.status_code
            update["last_error"] = result.error
        if error is not None:
            update["last_error"] = error
        if attempts is not None:
            update["attempts"] = attempts
        saved = delivery.model_copy(update=update)
        self._repo.save_delivery(saved)
        return saved


@dataclass(frozen=True)
class Webhooks:
    """What a runtime wires for webhooks: the API's service, the sink, the attempts."""

    service: WebhookService
    notifier: WebhookNotifier
    deliverer: Deliverer


def build_webhooks(
    repo: WebhookRepository,
    box: SecretBox,
    queue: DeliveryQueue,
    config: WebhookConfig,
    due: DueDeliveries | None = None,
) -> Webhooks:
    return Webhooks(
        service=WebhookService(repo, box, queue, config),
        notifier=WebhookNotifier(repo, queue, config.clock),
        deliverer=Deliverer(repo, box, queue, config, due),
    )
