"""WebhookRepository on SQLite: tables `webhooks` and `webhook_deliveries` (migration 005). The
delivery rows double as the local delivery queue (`due`)."""

from __future__ import annotations

from datetime import datetime

from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.domain.webhooks import Delivery, DeliveryState, Webhook
from mediaindex.ports.webhooks import DueDeliveries, WebhookRepository


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class SqliteWebhookRepository(WebhookRepository, DueDeliveries):
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, webhook: Webhook) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO webhooks (id, tenant_id, doc) VALUES (?, ?, ?)",
                (webhook.id, webhook.tenant_id, webhook.model_dump_json()),
            )

    def update(self, webhook: Webhook) -> bool:
        with self._db.transaction() as tx:
            cur = tx.execute(
                "UPDATE webhooks SET doc = ? WHERE id = ? AND tenant_id = ?",
                (webhook.model_dump_json(), webhook.id, webhook.tenant_id),
            )
            return cur.rowcount == 1

    def get(self, tenant_id: str, webhook_id: str) -> Webhook | None:
        row = (
            self._db.connection()
            .execute("SELECT doc FROM webhooks WHERE id = ? AND tenant_id = ?", (webhook_id, tenant_id))
            .fetchone()
        )
        return Webhook.model_validate_json(row[0]) if row else None

    def list_webhooks(self, tenant_id: str) -> list[Webhook]:
        rows = (
            self._db.connection()
            .execute("SELECT doc FROM webhooks WHERE tenant_id = ? ORDER BY id", (tenant_id,))
            .fetchall()
        )
        return [Webhook.model_validate_json(r[0]) for r in rows]

    def delete(self, tenant_id: str, webhook_id: str) -> bool:
        with self._db.transaction() as tx:
            # Its deliveries go by ON DELETE CASCADE (the metadata file enforces foreign keys).
            cur = tx.execute("DELETE FROM webhooks WHERE id = ? AND tenant_id = ?", (webhook_id, tenant_id))
            return cur.rowcount == 1

    def add_delivery(self, delivery: Delivery) -> bool:
        with self._db.transaction() as tx:
            cur = tx.execute(
                "INSERT INTO webhook_deliveries"
                " (id, tenant_id, webhook_id, state, next_attempt_at, created_at, doc)"
                " SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?)"
                " ON CONFLICT (id) DO NOTHING",
                (
                    delivery.id,
                    delivery.tenant_id,
                    delivery.webhook_id,
                    str(delivery.state),
                    _ts(delivery.next_attempt_at),
                    delivery.created_at.timestamp(),
                    delivery.model_dump_json(),
                    delivery.webhook_id,
                ),
            )
            return cur.rowcount == 1

    def get_delivery(self, tenant_id: str, webhook_id: str, delivery_id: str) -> Delivery | None:
        row = (
            self._db.connection()
            .execute(
                "SELECT doc FROM webhook_deliveries WHERE id = ? AND tenant_id = ? AND webhook_id = ?",
                (delivery_id, tenant_id, webhook_id),
            )
            .fetchone()
        )
        return Delivery.model_validate_json(row[0]) if row else None

    def save_delivery(self, delivery: Delivery) -> None:
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE webhook_deliveries SET state = ?, next_attempt_at = ?, doc = ?"
                " WHERE id = ? AND tenant_id = ?",
                (
                    str(delivery.state),
                    _ts(delivery.next_attempt_at),
                    delivery.model_dump_json(),
                    delivery.id,
                    delivery.tenant_id,
                ),
            )

    def list_deliveries(self, tenant_id: str, webhook_id: str, *, limit: int) -> list[Delivery]:
        rows = (
            self._db.connection()
            .execute(
                "SELECT doc FROM webhook_deliveries WHERE webhook_id = ? AND tenant_id = ?"
                " ORDER BY created_at DESC, id LIMIT ?",
                (webhook_id, tenant_id, limit),
            )
            .fetchall()
        )
        return [Delivery.model_validate_json(r[0]) for r in rows]

    def due(self, now: datetime, *, limit: int) -> list[Delivery]:
        rows = (
            self._db.connection()
            .execute(
                "SELECT doc FROM webhook_deliveries WHERE state = ? AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at LIMIT ?",
                (str(DeliveryState.PENDING), now.timestamp(), limit),
            )
            .fetchall()
        )
        return [Delivery.model_validate_json(r[0]) for r in rows]
