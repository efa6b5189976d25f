"""Webhooks: where subscriptions and deliveries are kept, how a signing secret is sealed at rest,
how a delivery reaches whoever sends it, and the sink services emit events into (so no service
knows about HTTP)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from mediaindex.domain.models import Asset, Task
from mediaindex.domain.webhooks import Delivery, Webhook


class WebhookRepository(ABC):
    @abstractmethod
    def add(self, webhook: Webhook) -> None:
        """Inserts a new webhook."""

    @abstractmethod
    def update(self, webhook: Webhook) -> bool:
        """Replaces the webhook if it still exists (False once deleted: never brought back)."""

    @abstractmethod
    def get(self, tenant_id: str, webhook_id: str) -> Webhook | None: ...

    @abstractmethod
    def list_webhooks(self, tenant_id: str) -> list[Webhook]:
        """Every webhook of the tenant, oldest first (a tenant has a handful)."""

    @abstractmethod
    def delete(self, tenant_id: str, webhook_id: str) -> bool:
        """Removes the webhook and its deliveries; False when there was none."""

    @abstractmethod
    def add_delivery(self, delivery: Delivery) -> bool:
        """Inserts the delivery unless one with its id exists (False then: a duplicate event)."""

    @abstractmethod
    def get_delivery(self, tenant_id: str, webhook_id: str, delivery_id: str) -> Delivery | None: ...

    @abstractmethod
    def save_delivery(self, delivery: Delivery) -> None:
        """Replaces a delivery's state (attempts, next attempt, last result)."""

    @abstractmethod
    def list_deliveries(self, tenant_id: str, webhook_id: str, *, limit: int) -> list[Delivery]:
        """The newest `limit` deliveries of the webhook, newest first."""


class DueDeliveries(ABC):
    """Where deliveries wait for their next attempt as rows (the local runtime): its loop asks."""

    @abstractmethod
    def due(self, now: datetime, *, limit: int) -> list[Delivery]:
        """Pending deliveries whose next attempt is at or before `now`, earliest first."""


class DeliveryQueue(ABC):
    @abstractmethod
    def schedule(self, delivery: Delivery) -> None:
        """Makes sure the delivery is attempted at its `next_attempt_at` (a row the loop polls
        needs only a wake-up; a queue gets a message, delayed as far as it allows)."""


class SecretBox(ABC):
    """Encrypts signing secrets at rest: they are used again at every delivery, so they cannot
    be hashed. `context` (the tenant and webhook) binds a sealed secret to its owner."""

    @abstractmethod
    def seal(self, secret: str, *, context: str) -> str: ...

    @abstractmethod
    def open(self, sealed: str, *, context: str) -> str: ...


class EventSink(ABC):
    """Where services report what settled. Implementations must be idempotent for one subject."""

    @abstractmethod
    def task_settled(self, task: Task, asset: Asset) -> None:
        """A task has ended (its asset as that write left it)."""

    @abstractmethod
    def emit(self, tenant_id: str, event: str, subject: str, data: dict[str, Any]) -> None:
        """Any other event (`index.reindexed`), once per subject."""


class NoEvents(EventSink):
    """For runtimes and tools that notify nobody."""

    def task_settled(self, task: Task, asset: Asset) -> None:
        pass

    def emit(self, tenant_id: str, event: str, subject: str, data: dict[str, Any]) -> None:
        pass
