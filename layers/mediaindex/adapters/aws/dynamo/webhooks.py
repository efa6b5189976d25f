"""WebhookRepository on DynamoDB. A webhook lives in its tenant's partition; its deliveries in a
partition of their own, each with a TTL (`expires_at_epoch`, DELIVERY_TTL_S after it was made),
so a delivery log stays bounded without a sweep.

| Item     | pk                  | sk                    |
|----------|---------------------|-----------------------|
| webhook  | TENANT#{tenant}     | WEBHOOK#{webhook}     |
| delivery | WEBHOOK#{webhook}   | DELIVERY#{delivery}   |

Deliveries are not queried by due time here: the SQS queue holds them until they are due."""

from __future__ import annotations

import contextlib
import math

from mediaindex.adapters.aws.dynamo import schema as ks
from mediaindex.adapters.aws.dynamo.items import tenant_pk
from mediaindex.adapters.aws.dynamo.table import ConditionFailed, Item, Table, doc, n, s
from mediaindex.adapters.aws.dynamo.table import key as primary_key
from mediaindex.domain.webhooks import Delivery, Webhook
from mediaindex.ports.webhooks import WebhookRepository

DELIVERY_TTL_S = 30 * 24 * 3600
_WEBHOOK = "WEBHOOK#"
_DELIVERY = "DELIVERY#"


def _delivery_pk(webhook_id: str) -> str:
    return f"{_WEBHOOK}{webhook_id}"


def _webhook_item(webhook: Webhook) -> Item:
    return {
        **primary_key(tenant_pk(webhook.tenant_id), _WEBHOOK + webhook.id),
        "type": s("webhook"),
        "doc": s(webhook.model_dump_json()),
    }


def _delivery_item(delivery: Delivery) -> Item:
    return {
        **primary_key(_delivery_pk(delivery.webhook_id), _DELIVERY + delivery.id),
        "type": s("webhook_delivery"),
        "tenant_id": s(delivery.tenant_id),
        "created_at": n(delivery.created_at.timestamp()),
        ks.TTL_ATTRIBUTE: n(math.ceil(delivery.created_at.timestamp()) + DELIVERY_TTL_S),
        "doc": s(delivery.model_dump_json()),
    }


def _tenant_matches(item: Item | None, tenant_id: str) -> bool:
    return item is not None and item.get("tenant_id", {}).get("S") == tenant_id


class DynamoWebhookRepository(WebhookRepository):
    def __init__(self, table: Table) -> None:
        self._t = table

    def add(self, webhook: Webhook) -> None:
        self._t.put(_webhook_item(webhook), "attribute_not_exists(pk)")

    def update(self, webhook: Webhook) -> bool:
        try:
            self._t.put(_webhook_item(webhook), "attribute_exists(pk)")
        except ConditionFailed:
            return False
        return True

    def get(self, tenant_id: str, webhook_id: str) -> Webhook | None:
        item = self._t.get(tenant_pk(tenant_id), _WEBHOOK + webhook_id)
        return Webhook.model_validate_json(doc(item)) if item else None

    def list_webhooks(self, tenant_id: str) -> list[Webhook]:
        items = self._t.partition(tenant_pk(tenant_id), prefix=_WEBHOOK)
        return [Webhook.model_validate_json(doc(i)) for i in items]

    def delete(self, tenant_id: str, webhook_id: str) -> bool:
        try:
            self._t.delete(tenant_pk(tenant_id), _WEBHOOK + webhook_id, "attribute_exists(pk)", {})
        except ConditionFailed:
            return False
        self._t.batch_delete(self._t.partition(_delivery_pk(webhook_id), keys_only=True))
        return True

    def add_delivery(self, delivery: Delivery) -> bool:
        try:
            self._t.put(_delivery_item(delivery), "attribute_not_exists(pk)")
        except ConditionFailed:
            return False
        return True

    def get_delivery(self, tenant_id: str, webhook_id: str, delivery_id: str) -> Delivery | None:
        item = self._t.get(_delivery_pk(webhook_id), _DELIVERY + delivery_id)
        if item is None or not _tenant_matches(item, tenant_id):
            return None
        return Delivery.model_validate_json(doc(item))

    def save_delivery(self, delivery: Delivery) -> None:
        with contextlib.suppress(ConditionFailed):  # deleted with its webhook meanwhile
            self._t.put(_delivery_item(delivery), "attribute_exists(pk)")

    def list_deliveries(self, tenant_id: str, webhook_id: str, *, limit: int) -> list[Delivery]:
        items = [i for i in self._t.partition(_delivery_pk(webhook_id)) if _tenant_matches(i, tenant_id)]
        items.sort(key=lambda i: float(i["created_at"]["N"]), reverse=True)
        return [Delivery.model_validate_json(doc(i)) for i in items[:limit]]
