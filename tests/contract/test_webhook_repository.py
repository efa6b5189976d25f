"""WebhookRepository: the same contract on SQLite and DynamoDB (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws

from mediaindex.adapters.aws.dynamo.schema import table_definition
from mediaindex.adapters.aws.dynamo.table import Table
from mediaindex.adapters.aws.dynamo.webhooks import DynamoWebhookRepository
from mediaindex.adapters.local.sqlite.database import Database
from mediaindex.adapters.local.sqlite.webhooks import SqliteWebhookRepository
from mediaindex.domain.webhooks import Delivery, DeliveryState, Webhook, WebhookEvent, delivery_id
from mediaindex.ports.webhooks import WebhookRepository
from tests.contract.conftest import METADATA_TABLE

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "dynamodb"])
def repo(
    request: pytest.FixtureRequest, metadata_sqlite_db: Database, metadata_dynamodb_client: Any
) -> Iterator[WebhookRepository]:
    if request.param == "sqlite":
        metadata_sqlite_db.migrate()
        yield SqliteWebhookRepository(metadata_sqlite_db)
        return
    with mock_aws():
        metadata_dynamodb_client.create_table(**table_definition(METADATA_TABLE))
        yield DynamoWebhookRepository(Table(METADATA_TABLE, metadata_dynamodb_client))


def webhook(tenant: str = "ten_a", wid: str = "whk_1") -> Webhook:
    return Webhook(
        id=wid,
        tenant_id=tenant,
        url="https://example.com/h",
        events=[WebhookEvent.ASSET_READY],
        secret_sealed="v1:x",
    )


def delivery(
    wid: str = "whk_1", subject: str = "tsk_1", *, at: datetime = T0, tenant: str = "ten_a"
) -> Delivery:
    did = delivery_id(wid, WebhookEvent.ASSET_READY, subject)
    return Delivery(
        id=did,
        tenant_id=tenant,
        webhook_id=wid,
        event=WebhookEvent.ASSET_READY,
        body="{}",
        next_attempt_at=at,
        created_at=at,
        updated_at=at,
    )


def test_webhooks_are_kept_per_tenant(repo: WebhookRepository) -> None:
    repo.add(webhook())
    repo.add(webhook(wid="whk_2"))
    repo.add(webhook("ten_b", "whk_3"))
    assert [w.id for w in repo.list_webhooks("ten_a")] == ["whk_1", "whk_2"]
    assert repo.get("ten_b", "whk_1") is None
    changed = webhook().model_copy(update={"enabled": False, "disabled_reason": "r"})
    assert repo.update(changed)
    stored = repo.get("ten_a", "whk_1")
    assert stored is not None and (stored.enabled, stored.disabled_reason) == (False, "r")
    assert not repo.delete("ten_b", "whk_1")
    assert repo.delete("ten_a", "whk_1")
    assert not repo.delete("ten_a", "whk_1")
    assert not repo.update(changed)  # a deleted webhook is never brought back
    assert repo.get("ten_a", "whk_1") is None


def test_a_delivery_is_added_once_and_goes_with_its_webhook(repo: WebhookRepository) -> None:
    repo.add(webhook())
    first = delivery()
    assert repo.add_delivery(first)
    assert not repo.add_delivery(first.model_copy(update={"body": "other"}))
    got = repo.get_delivery("ten_a", "whk_1", first.id)
    assert got is not None and got.body == "{}"
    assert repo.get_delivery("ten_b", "whk_1", first.id) is None
    done = first.model_copy(update={"state": DeliveryState.SUCCEEDED, "attempts": 1, "next_attempt_at": None})
    repo.save_delivery(done)
    got = repo.get_delivery("ten_a", "whk_1", first.id)
    assert got is not None and (got.state, got.attempts) == (DeliveryState.SUCCEEDED, 1)
    later = delivery(subject="tsk_2", at=T0 + timedelta(minutes=1))
    assert repo.add_delivery(later)
    assert [d.id for d in repo.list_deliveries("ten_a", "whk_1", limit=10)] == [later.id, first.id]
    assert [d.id for d in repo.list_deliveries("ten_a", "whk_1", limit=1)] == [later.id]
    assert repo.list_deliveries("ten_b", "whk_1", limit=10) == []
    repo.delete("ten_a", "whk_1")
    assert repo.get_delivery("ten_a", "whk_1", first.id) is None
    assert repo.list_deliveries("ten_a", "whk_1", limit=10) == []


def test_sqlite_rows_are_the_queue_of_due_deliveries(metadata_sqlite_db: Database) -> None:
    metadata_sqlite_db.migrate()
    repo = SqliteWebhookRepository(metadata_sqlite_db)
    repo.add(webhook())
    assert not repo.add_delivery(delivery(wid="whk_gone"))  # no webhook: nothing to deliver
    due_now, due_later = delivery(subject="a", at=T0), delivery(subject="b", at=T0 + timedelta(seconds=30))
    for d in (due_later, due_now):
        repo.add_delivery(d)
    assert [d.id for d in repo.due(T0, limit=10)] == [due_now.id]
    assert [d.id for d in repo.due(T0 + timedelta(seconds=30), limit=10)] == [due_now.id, due_later.id]
    repo.save_delivery(due_now.model_copy(update={"state": DeliveryState.SUCCEEDED, "next_attempt_at": None}))
    assert [d.id for d in repo.due(T0 + timedelta(hours=1), limit=10)] == [due_later.id]
