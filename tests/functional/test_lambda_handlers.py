"""The Lambda entrypoints, driven with canned events (tests/fixtures/events) over the AWS adapters
under moto: the API through Mangum, the S3 upload event, the state machine's pipeline events."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from functions.api import handler as api_handler
from functions.pipeline_events import handler as events_handler
from functions.upload_event import handler as upload_handler
from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.aws import build_aws_runner
from tests.aws_runtime import build_aws_test_services, executions

pytestmark = pytest.mark.aws

EVENTS = Path(__file__).resolve().parent.parent / "fixtures" / "events"


def canned(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


@dataclass
class LambdaContext:
    function_name: str = "mediaindex-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:mediaindex-test"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"


CTX = LambdaContext()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_aws_test_services(tmp_path)
    api_handler.configure(runtime)
    upload_handler.configure(runtime.services.ingest, runtime.settings.bucket_name, runtime.blobs)
    events_handler.configure(build_aws_runner(runtime.settings, clients=runtime.aws_clients))
    yield runtime
    runtime.close()


@pytest.fixture
def api_key(runtime: Runtime) -> str:
    return runtime.services.keys.create_key("acme")[2]


def http(method: str, path: str, *, key: str | None = None, body: Any = None) -> dict[str, Any]:
    """Sends one API Gateway HTTP API (v2) request through the API Lambda; returns the response."""
    event = copy.deepcopy(canned("apigw_v2_health.json"))
    event["rawPath"] = path
    event["requestContext"]["http"].update(method=method, path=path)
    if key:
        event["headers"]["authorization"] = f"Bearer {key}"
    if body is not None:
        event["headers"]["content-type"] = "application/json"
        event["body"] = json.dumps(body)
    response: dict[str, Any] = api_handler.handler(event, CTX)
    return response


def json_body(response: dict[str, Any]) -> Any:
    raw = response["body"]
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    return json.loads(raw)


def uploaded_asset(runtime: Runtime, key: str) -> dict[str, Any]:
    """An asset created through the API whose original is in S3 (no event delivered yet)."""
    index = json_body(http("POST", "/v1/indexes", key=key, body={"name": "clips"}))
    created = json_body(
        http(
            "POST",
            "/v1/assets",
            key=key,
            body={"index_id": index["id"], "name": "talk.mp4", "size_bytes": 10},
        )
    )
    asset = created["asset"]
    original = runtime.stores.assets.get(tenant_of(runtime, key), asset["id"])
    assert original is not None and original.upload is not None
    runtime.blobs.put_bytes(original.upload.key, b"0123456789", "video/mp4")
    return {**asset, "key": original.upload.key}


def tenant_of(runtime: Runtime, api_key: str) -> str:
    return runtime.services.keys.authenticate(api_key).tenant_id


def upload_event(runtime: Runtime, key: str) -> dict[str, Any]:
    event = canned("eventbridge_s3_object_created.json")
    event["detail"]["bucket"]["name"] = runtime.settings.bucket_name
    event["detail"]["object"]["key"] = key
    return event


# ---- API -------------------------------------------------------------------------------------
def test_health_through_the_api_lambda(runtime: Runtime) -> None:
    # Given the canned API Gateway v2 request for /v1/health
    # When the API Lambda handles it
    response = http("GET", "/v1/health")
    # Then it answers like the local server, tagged with API Gateway's request id
    assert response["statusCode"] == 200
    assert json_body(response)["status"] == "ok"
    assert json_body(response)["runtime"] == "aws"
    assert response["headers"]["x-request-id"] == "JKJaXmPLvHcESHA="


def test_create_index_through_the_api_lambda(runtime: Runtime, api_key: str) -> None:
    response = http("POST", "/v1/indexes", key=api_key, body={"name": "clips", "default_features": ["proxy"]})
    assert response["statusCode"] == 201
    index = json_body(response)
    assert index["id"].startswith("idx_")
    assert index["default_features"] == ["proxy"]
    # And it is stored in DynamoDB
    listed = json_body(http("GET", "/v1/indexes", key=api_key))
    assert [i["id"] for i in listed["data"]] == [index["id"]]


def test_missing_index_answers_the_contract_error_body(runtime: Runtime, api_key: str) -> None:
    response = http("GET", "/v1/indexes/idx_01jnmissing0000000000000000", key=api_key)
    assert response["statusCode"] == 404
    body = json_body(response)
    assert set(body) == {"error"}
    assert body["error"]["code"] == "index_not_found"
    assert body["error"]["request_id"] == "JKJaXmPLvHcESHA="


# ---- upload events ---------------------------------------------------------------------------
def test_an_upload_event_delivered_twice_starts_one_execution(runtime: Runtime, api_key: str) -> None:
    # Given an asset whose original has landed in S3
    asset = uploaded_asset(runtime, api_key)
    event = upload_event(runtime, asset["key"])
    # When EventBridge delivers its Object Created event twice
    first = upload_handler.handler(event, CTX)
    second = upload_handler.handler(event, CTX)
    # Then one ingest task started, as one Step Functions execution named after it
    assert first["status"] == "started"
    assert second["status"] == "duplicate"
    runs = executions(runtime)
    assert [r["name"] for r in runs] == [first["task_id"]]
    stored = runtime.stores.assets.get(tenant_of(runtime, api_key), asset["id"])
    assert stored is not None and stored.status == "processing" and stored.size_bytes == 10


def test_an_url_encoded_key_is_decoded(runtime: Runtime, api_key: str) -> None:
    asset = uploaded_asset(runtime, api_key)
    event = upload_event(runtime, asset["key"].replace("/", "%2F"))
    assert upload_handler.handler(event, CTX)["status"] == "started"


@pytest.mark.parametrize(
    "key", ["derived/ten_x/ast_y/proxy.mp4", "originals/only-two/parts", "tmp/upload.bin"]
)
def test_an_event_for_an_unknown_key_is_logged_and_dropped(
    runtime: Runtime, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    result = upload_handler.handler(upload_event(runtime, key), CTX)
    assert result == {"status": "ignored", "reason": "key"}
    assert executions(runtime) == []
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert [(r.levelname, getattr(r, "key", None)) for r in dropped] == [("WARNING", key)]


def test_an_event_from_another_bucket_is_dropped(runtime: Runtime, api_key: str) -> None:
    asset = uploaded_asset(runtime, api_key)
    event = upload_event(runtime, asset["key"])
    event["detail"]["bucket"]["name"] = "someone-elses-bucket"
    assert upload_handler.handler(event, CTX)["status"] == "ignored"
    assert executions(runtime) == []


# ---- pipeline events -------------------------------------------------------------------------
def started_task(runtime: Runtime, api_key: str) -> str:
    asset = uploaded_asset(runtime, api_key)
    result = upload_handler.handler(upload_event(runtime, asset["key"]), CTX)
    return str(result["task_id"])


def test_feature_failed_marks_only_that_feature(runtime: Runtime, api_key: str) -> None:
    # Given a running ingest task
    task_id = started_task(runtime, api_key)
    # When the state machine's Catch reports the transcription job failed (canned Batch cause)
    event = canned("sfn_catch_feature_failed.json")
    event["tenant_id"], event["task_id"] = tenant_of(runtime, api_key), task_id
    assert events_handler.handler(event, CTX)["status"] == "recorded"
    # Then transcription alone failed; the other features are still waiting for their jobs
    task = runtime.stores.tasks.get(tenant_of(runtime, api_key), task_id)
    assert task is not None
    states = {str(f): fs.state for f, fs in task.features.items()}
    assert states == {
        "proxy": "queued",
        "preview": "queued",
        "transcription": "failed",
        "embedding": "queued",
    }
    assert task.features["transcription"].error == "step_failed"  # type: ignore[index]


def test_task_finished_settles_what_no_step_finished(runtime: Runtime, api_key: str) -> None:
    task_id = started_task(runtime, api_key)
    event = canned("sfn_task_finished.json")
    event["tenant_id"], event["task_id"] = tenant_of(runtime, api_key), task_id
    assert events_handler.handler(event, CTX) == {"status": "finished", "task_id": task_id}
    task = runtime.stores.tasks.get(tenant_of(runtime, api_key), task_id)
    assert task is not None
    assert {fs.state for fs in task.features.values()} == {"failed"}


def test_a_batch_cause_becomes_a_short_message() -> None:
    error = events_handler.error_from_catch(canned("sfn_catch_feature_failed.json")["error"])
    assert error.code == "step_failed"
    assert error.message == "Essential container in task exited (exit code 1)"
    assert events_handler.error_from_catch({"Error": "States.Timeout", "Cause": ""}).code == "step_timeout"
    blocked = events_handler.error_from_catch(
        {"Error": "UpstreamFailed", "Cause": "embedding needs transcription"}
    )
    assert (blocked.code, blocked.message) == ("upstream_failed", "embedding needs transcription")
