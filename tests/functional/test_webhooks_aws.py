"""Webhooks on the AWS runtime under moto: DynamoDB rows, the secret sealed by KMS, the SQS delivery
queue, the pipeline-events path (PipelineRunner.finish_task) and the delivery Lambda's code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from starlette.testclient import TestClient

from functions.webhook_delivery import handler as delivery_handler
from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.aws import build_aws_runner
from mediaindex.domain.models import ErrorInfo
from mediaindex.domain.webhooks import DeliveryState
from tests.apiclient import Api, error_code
from tests.aws_runtime import REGION, build_aws_test_services
from tests.functional.conftest import BASE_URL
from tests.functional.test_webhooks import Receiver, docs_verifier
from tests.functional.test_webhooks import receiver as receiver

pytestmark = pytest.mark.aws


@pytest.fixture
def aws_hooks(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Runtime, str]]:
    with mock_aws():
        key_id = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["KeyId"]
        queue_url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="mi-webhooks")["QueueUrl"]
        monkeypatch.setenv("MEDIAINDEX_WEBHOOK_QUEUE_URL", queue_url)
        monkeypatch.setenv("MEDIAINDEX_WEBHOOK_KMS_KEY_ID", key_id)
        runtime = build_aws_test_services(data_dir, allow_private_urls=True)
        try:
            yield runtime, queue_url
        finally:
            runtime.close()


def drain(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    out: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append({"messageId": m["MessageId"], "body": m["Body"]})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def test_a_settled_task_is_delivered_through_the_queue_and_the_lambda(
    aws_hooks: tuple[Runtime, str],
    receiver: Receiver,
) -> None:
    runtime, queue_url = aws_hooks
    assert runtime.webhooks is not None
    with TestClient(build_app(runtime), base_url=BASE_URL, raise_server_exceptions=False) as c:
        tenant, _, raw = runtime.services.keys.create_key("acme")
        api = Api(c, raw)
        created = api.ok(
            "POST", "/v1/webhooks", 201, json={"url": receiver.url, "events": ["asset.failed", "task.failed"]}
        )
        assert "secret" not in api.ok("GET", "/v1/webhooks")["data"][0]
        asset = api.upload(api.index()["id"], "clip.mp4", b"not a video at all")
        (task,) = api.ok("GET", "/v1/tasks", params={"asset_id": asset["id"]})["data"]

    # DynamoDB holds the secret sealed by KMS only.
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=runtime.settings.table_name)["Items"]
    assert created["secret"] not in json.dumps(items)
    assert any(created["id"] in json.dumps(i) for i in items)

    # What the state machine's Catch and its last state make the pipeline-events Lambda do.
    runner = build_aws_runner(runtime.settings, clients=runtime.aws_clients)
    runner.fail_step(tenant.id, task["id"], "probe", ErrorInfo(code="media_corrupt", message="no streams"))
    runner.finish_task(tenant.id, task["id"])
    runner.finish_task(tenant.id, task["id"])  # reported twice: still one delivery each
    messages = drain(queue_url)
    # A delivery not yet attempted is queued again (a crash may have lost the first message): the
    # copies name the same two deliveries, and only the first of each sends anything.
    assert len({json.loads(m["body"])["delivery_id"] for m in messages}) == 2

    delivery_handler.configure(runtime.webhooks.deliverer)
    assert delivery_handler.process({"Records": messages}) == {"batchItemFailures": []}
    assert sorted(receiver.events()) == ["asset.failed", "task.failed"]
    verify = docs_verifier()
    for got in receiver.got:
        assert verify(created["secret"], got.headers["mediaindex-signature"], got.body)
    failed = json.loads(next(r.body for r in receiver.got if r.headers["mediaindex-event"] == "asset.failed"))
    assert failed["data"]["error"]["code"] == "media_corrupt"
    log = runtime.webhooks.service.deliveries(tenant.id, created["id"], limit=10)
    assert {(d.event, d.state, d.attempts) for d in log} == {
        ("asset.failed", DeliveryState.SUCCEEDED, 1),
        ("task.failed", DeliveryState.SUCCEEDED, 1),
    }
    runner.finish_task(tenant.id, task["id"])
    assert drain(queue_url) == []  # settled deliveries are not queued again


def test_a_failed_attempt_is_queued_again_with_its_delay(
    aws_hooks: tuple[Runtime, str],
    receiver: Receiver,
) -> None:
    runtime, queue_url = aws_hooks
    assert runtime.webhooks is not None
    receiver.status = 503
    webhook, _ = runtime.webhooks.service.create("ten_a", receiver.url, ["task.completed"])
    runtime.webhooks.notifier.emit("ten_a", "task.completed", "tsk_1", {})
    delivery_handler.configure(runtime.webhooks.deliverer)
    assert delivery_handler.process({"Records": drain(queue_url)}) == {"batchItemFailures": []}
    (d,) = runtime.webhooks.service.deliveries("ten_a", webhook.id, limit=5)
    assert (d.state, d.attempts, d.last_status_code) == (DeliveryState.PENDING, 1, 503)
    sqs = boto3.client("sqs", region_name=REGION)
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )
    assert attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"  # ~30 s away
    # A message that arrives before its delivery is due goes back; nothing is sent.
    early = {
        "messageId": "m1",
        "body": json.dumps({"tenant_id": "ten_a", "webhook_id": webhook.id, "delivery_id": d.id}),
    }
    assert delivery_handler.process({"Records": [early]}) == {"batchItemFailures": []}
    assert len(receiver.got) == 1
    garbage = {"messageId": "m2", "body": "{}"}
    assert delivery_handler.process({"Records": [garbage]}) == {"batchItemFailures": []}


def test_an_attempt_that_cannot_run_is_left_to_sqs(
    aws_hooks: tuple[Runtime, str], receiver: Receiver
) -> None:
    runtime, queue_url = aws_hooks
    assert runtime.webhooks is not None
    runtime.webhooks.service.create("ten_a", receiver.url, ["task.completed"])
    runtime.webhooks.notifier.emit("ten_a", "task.completed", "tsk_1", {})
    delivery_handler.configure(runtime.webhooks.deliverer)
    (message,) = drain(queue_url)
    # The store is gone (an outage): the attempt cannot run, so SQS is to deliver the message again.
    boto3.client("dynamodb", region_name=REGION).delete_table(TableName=runtime.settings.table_name)
    assert delivery_handler.process({"Records": [message]}) == {
        "batchItemFailures": [{"itemIdentifier": message["messageId"]}]
    }
    assert receiver.got == []


def test_without_a_queue_and_key_the_api_says_webhooks_are_unavailable(data_dir: Path) -> None:
    runtime = build_aws_test_services(data_dir)
    try:
        assert runtime.webhooks is None
        with TestClient(build_app(runtime), base_url=BASE_URL, raise_server_exceptions=False) as c:
            api = Api(c, runtime.services.keys.create_key("acme")[2])
            resp = api.call("GET", "/v1/webhooks")
            assert (resp.status_code, error_code(resp)) == (503, "webhooks_unavailable")
    finally:
        runtime.close()


def test_the_delivery_function_needs_its_queue_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDIAINDEX_WEBHOOK_QUEUE_URL", raising=False)
    monkeypatch.delenv("MEDIAINDEX_WEBHOOK_KMS_KEY_ID", raising=False)
    monkeypatch.setattr(delivery_handler, "_state", {})
    with pytest.raises(RuntimeError, match="MEDIAINDEX_WEBHOOK_QUEUE_URL"):
        delivery_handler.configure()


def test_the_aws_deliverer_has_no_rows_to_poll(aws_hooks: tuple[Runtime, str]) -> None:
    runtime, _ = aws_hooks
    assert runtime.webhooks is not None
    with pytest.raises(RuntimeError, match="elsewhere"):
        runtime.webhooks.deliverer.run_due()
