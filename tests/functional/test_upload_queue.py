"""`serve --runtime aws` without a state machine learns of uploads from S3 -> SQS: `aws init` makes the
queue and the bucket's notification, and the runtime's UploadQueueWatcher hands each notification to
the upload-event Lambda's own logic. Driven over real HTTP against a ThreadedMotoServer: the bytes go
to the presigned URL the API hands out, exactly as a browser sends them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws
from starlette.testclient import TestClient

from mediaindex.adapters.aws.provision import UPLOAD_NOTIFICATION_ID, provision
from mediaindex.adapters.aws.upload_queue import UploadQueueWatcher, object_created_records
from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.app import build_app
from mediaindex.bootstrap.aws import build_aws
from mediaindex.cli import main
from tests.apiclient import Api
from tests.aws_runtime import aws_test_settings, shared_clients
from tests.moto_server import moto_server

pytestmark = pytest.mark.aws


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def serve(endpoint: str, tmp_path: Path, *, start_workers: bool) -> Runtime:
    """What `aws init` then `serve --runtime aws` make, under names of this test's own (the server
    keeps its state across tests)."""
    clients = shared_clients(endpoint)
    suffix = uuid.uuid4().hex[:8]
    names = {"table_name": f"mi-{suffix}", "bucket_name": f"mi-media-{suffix}"}
    queue = f"mi-uploads-{suffix}"
    provision(
        clients, table=names["table_name"], bucket=names["bucket_name"], queue_name=queue, cors_origins=[]
    )
    settings = aws_test_settings(tmp_path, **names, upload_queue_name=queue, start_workers=start_workers)
    return build_aws(settings, clients=clients)


def put_original(api: Api, index_id: str, data: bytes) -> tuple[dict[str, Any], str]:
    """Creates an asset through the API and PUTs its bytes to the presigned S3 URL (moto, over HTTP)."""
    created = api.ok(
        "POST",
        "/v1/assets",
        201,
        json={
            "index_id": index_id,
            "name": "still.png",
            "size_bytes": len(data),
            "content_type": "image/png",
        },
    )
    up = created["upload"]
    resp = httpx.put(up["url"], content=data, headers=up["headers"], timeout=10)
    assert resp.status_code == 200, resp.text
    return created["asset"], up["url"]


def poll_until(watcher: UploadQueueWatcher, status: str, tries: int = 5) -> list[dict[str, Any]]:
    """Outcomes of receives until one has `status` (S3's test event may come first, on its own)."""
    seen: list[dict[str, Any]] = []
    for _ in range(tries):
        seen += watcher.poll_once()
        if any(o["status"] == status for o in seen):
            return seen
    raise AssertionError(f"no {status!r} outcome in {seen}")


def test_an_upload_to_the_presigned_url_starts_its_ingest_once(
    endpoint: str, tmp_path: Path, small_image: Path
) -> None:
    # Given the aws runtime without a state machine, after `aws init`
    runtime = serve(endpoint, tmp_path, start_workers=False)
    try:
        watcher = runtime.upload_watcher
        api = Api(TestClient(build_app(runtime)), runtime.services.keys.create_key("acme")[2])
        index = api.index(default_features=["proxy"])
        # When the original is PUT to its presigned URL and the watcher reads the queue
        asset, url = put_original(api, index["id"], small_image.read_bytes())
        started = poll_until(watcher, "started")
        # Then the upload Lambda's logic started the ingest, and the pipeline takes the asset to ready
        assert [o["asset_id"] for o in started if o["status"] == "started"] == [asset["id"]]
        runtime.executor.pool.run_until_idle()
        done = api.ok("GET", f"/v1/assets/{asset['id']}")
        assert done["status"] == "ready"
        assert done["features"]["proxy"]["state"] == "completed"

        # When the same original is PUT again (a client's retry: S3 notifies a second time)
        assert httpx.put(url, content=small_image.read_bytes(), timeout=10).status_code == 200
        again = poll_until(watcher, "duplicate")
        # Then nothing starts twice: still the one ingest task, and the queue is drained
        assert [o["status"] for o in again] == ["duplicate"]
        tasks = api.ok("GET", "/v1/tasks", params={"asset_id": asset["id"]})["data"]
        assert [t["kind"] for t in tasks] == ["ingest"]
        assert watcher.poll_once() == []
    finally:
        runtime.close()


def test_the_watcher_thread_runs_while_serving_and_stops_promptly(
    endpoint: str, tmp_path: Path, small_image: Path
) -> None:
    # Given the runtime as `serve` builds it: workers and the watcher on their threads
    runtime = serve(endpoint, tmp_path, start_workers=True)
    api = Api(TestClient(build_app(runtime)), runtime.services.keys.create_key("acme")[2])
    index = api.index(default_features=["proxy"])
    try:
        # When an original is PUT to its presigned URL
        asset, _ = put_original(api, index["id"], small_image.read_bytes())
        # Then, with nobody calling the API, the asset becomes ready
        deadline = time.monotonic() + 15
        status = "awaiting_upload"
        while time.monotonic() < deadline and status not in ("ready", "failed"):
            time.sleep(0.2)
            status = api.ok("GET", f"/v1/assets/{asset['id']}")["status"]
        assert status == "ready"
    finally:
        # And shutting down waits out at most the long poll in flight
        began = time.monotonic()
        runtime.close()
        assert time.monotonic() - began < 8


def test_notifications_of_other_keys_and_foreign_messages_are_dropped(endpoint: str, tmp_path: Path) -> None:
    runtime = serve(endpoint, tmp_path, start_workers=False)
    try:
        watcher = runtime.upload_watcher
        sqs = runtime.aws_clients.get("sqs")
        # Given an object under originals/ that is no original's key, and a message that is no S3 event
        s3 = runtime.aws_clients.s3
        s3.put_object(Bucket=runtime.settings.bucket_name, Key="originals/ten_x/notes.txt", Body=b"x")
        sqs.send_message(QueueUrl=watcher.queue_url, MessageBody="not json")
        # When the watcher reads the queue
        outcomes = poll_until(watcher, "ignored")
        outcomes += watcher.poll_once()
        # Then the key is dropped, nothing started, and neither message is left to come back
        assert outcomes == [{"status": "ignored", "reason": "key"}]
        attrs = sqs.get_queue_attributes(
            QueueUrl=watcher.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    finally:
        runtime.close()


def test_s3_test_events_and_other_event_kinds_carry_no_records() -> None:
    assert object_created_records(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []
    removed = {"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete", "s3": {}}
    created = {"eventSource": "aws:s3", "eventName": "ObjectCreated:CompleteMultipartUpload", "s3": {}}
    assert object_created_records(json.dumps({"Records": [removed, created]})) == [created]
    assert object_created_records("[1, 2]") is None
    assert object_created_records("{") is None


def test_aws_init_makes_the_queue_and_notification_once_and_keeps_other_rules(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "MEDIAINDEX_AWS_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    argv = ["aws", "init", "--table", "mi-table", "--bucket", "mi-media", "--queue", "mi-uploads"]
    with mock_aws():
        # Given a first `aws init`, and a rule of someone else's added to the bucket afterwards
        assert main(argv) == 0
        first = json.loads(capsys.readouterr().out)["upload_queue"]
        s3: Any = boto3.client("s3", region_name="eu-west-1")
        sqs: Any = boto3.client("sqs", region_name="eu-west-1")
        other_url = sqs.create_queue(QueueName="audit")["QueueUrl"]
        other_arn = sqs.get_queue_attributes(QueueUrl=other_url, AttributeNames=["QueueArn"])["Attributes"]
        config = s3.get_bucket_notification_configuration(Bucket="mi-media")
        config.pop("ResponseMetadata")
        audit = {"Id": "audit", "QueueArn": other_arn["QueueArn"], "Events": ["s3:ObjectRemoved:*"]}
        config["QueueConfigurations"].append(audit)
        s3.put_bucket_notification_configuration(Bucket="mi-media", NotificationConfiguration=config)
        # When it runs again
        assert main(argv) == 0
        second = json.loads(capsys.readouterr().out)["upload_queue"]
        # Then the first made the queue and the rule, the second found both as they were
        assert (first["created"], first["notification_set"]) == (True, True)
        assert (second["created"], second["notification_set"]) == (False, False)
        assert second["url"] == first["url"] == sqs.get_queue_url(QueueName="mi-uploads")["QueueUrl"]
        rules = s3.get_bucket_notification_configuration(Bucket="mi-media")["QueueConfigurations"]
        assert sorted(r["Id"] for r in rules) == sorted([UPLOAD_NOTIFICATION_ID, "audit"])
        [ours] = [r for r in rules if r["Id"] == UPLOAD_NOTIFICATION_ID]
        assert ours["Events"] == ["s3:ObjectCreated:*"]
        assert ours["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "originals/"}]
        # And the queue lets this bucket (only) send to it, as AWS requires
        policy = sqs.get_queue_attributes(QueueUrl=first["url"], AttributeNames=["Policy"])["Attributes"]
        [statement] = json.loads(policy["Policy"])["Statement"]
        assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::mi-media"}}
