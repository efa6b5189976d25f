"""The AWS runtime for tests: DynamoDB, S3 and Step Functions under moto, wired by mediaindex.bootstrap.aws.

`build_aws_test_services(tmp_path)` runs in-process under `mock_aws` (started here, stopped by
`runtime.close()`; inside a test's own `mock_aws` block it nests). boto3 clients are made once per
process (each costs ~100 ms) and shared by every call. The presigned URLs the app hands out cannot
reach moto through a Starlette TestClient (it sends every URL to the app), so the runtime carries a
small stand-in for S3's presigned endpoint, mounted by the app like the local blob router: a PUT
stores the object through boto3 (moto) and then delivers the "Object Created" event to the upload
Lambda's own code, as EventBridge would; a GET returns the object. Signatures and expiry are not
checked (moto does not either): those rules are tested against the local adapter.

`build_aws_test_services(tmp_path, endpoint_url=...)` talks to a ThreadedMotoServer over real HTTP
instead (presigned PUTs from httpx); each call gets its own table, bucket and state machine, and
tests deliver upload events with `deliver_upload_event`.

`orchestrator="inprocess"` wires the fallback executor (local worker pool over the AWS adapters):
`runtime.executor.pool.run_until_idle()` then runs the pipeline for real."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.config import Config
from fastapi import APIRouter, Request, Response
from moto import mock_aws  # imported before any client is made, so clients carry moto's hook

from mediaindex.adapters.aws.clients import AwsClients, make_client
from mediaindex.adapters.aws.provision import ensure_bucket, ensure_table
from mediaindex.bootstrap import Runtime
from mediaindex.bootstrap.aws import build_aws
from mediaindex.settings import Settings

REGION = "us-east-1"
ACCOUNT = "123456789012"
TABLE = "mediaindex-test"
BUCKET = "mediaindex-test-media"
STATE_MACHINE = "mediaindex-test-pipeline"
# The state machine only has to accept executions: moto does not run them unless configured to.
_DEFINITION = json.dumps(
    {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}
)

_clients: dict[str | None, AwsClients] = {}
_lock = threading.Lock()


def shared_clients(endpoint_url: str | None = None) -> AwsClients:
    """One set of clients per endpoint for the whole test process, with moto's dummy credentials."""
    with _lock:
        if endpoint_url not in _clients:
            session = boto3.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # moto's dummy credentials
                region_name=REGION,
            )
            clients = AwsClients(region=REGION, endpoint_url=endpoint_url, session=session)
            for service in ("dynamodb", "s3", "stepfunctions"):
                # Path-style S3 URLs (/<bucket>/<key>), which the presigned stand-in below serves.
                config = Config(s3={"addressing_style": "path"}) if service == "s3" else None
                clients.made[service] = make_client(
                    service, region=REGION, endpoint_url=endpoint_url, session=session, config=config
                )
            _clients[endpoint_url] = clients
        return _clients[endpoint_url]


def aws_test_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "runtime": "aws",
        "data_dir": tmp_path,
        "start_workers": False,
        "rate_limit_per_minute": 0,
        "job_retry_backoff_s": 0,
        "aws_region": REGION,
        "table_name": TABLE,
        "bucket_name": BUCKET,
        "opensearch_url": None,
        **overrides,
    }
    return Settings(**values)


def build_aws_test_services(
    tmp_path: Path,
    *,
    endpoint_url: str | None = None,
    orchestrator: Literal["stepfunctions", "inprocess"] = "stepfunctions",
    **settings_overrides: Any,
) -> Runtime:
    mock = None
    if endpoint_url is None:
        mock = mock_aws()
        mock.start()
        suffix = ""
    else:
        suffix = "-" + uuid.uuid4().hex[:8]  # a moto server keeps its state across tests
    try:
        clients = shared_clients(endpoint_url)
        table, bucket = TABLE + suffix, BUCKET + suffix
        ensure_table(clients.dynamodb, table)
        ensure_bucket(clients.s3, bucket, region=REGION, cors_origins=[])
        arn = None
        if orchestrator == "stepfunctions":
            arn = clients.stepfunctions.create_state_machine(
                name=STATE_MACHINE + suffix,
                definition=_DEFINITION,
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/mediaindex-test-pipeline",
            )["stateMachineArn"]
        settings = aws_test_settings(
            tmp_path, table_name=table, bucket_name=bucket, state_machine_arn=arn, **settings_overrides
        )
        runtime = build_aws(settings, clients=clients)
    except BaseException:
        if mock is not None:
            mock.stop()
        raise
    if mock is not None:
        # First in, last out: the backends reset only after everything else has closed.
        runtime.closers.insert(0, mock.stop)
        runtime.routers.append(presigned_s3_router(runtime, clients.s3))
    return runtime


def executions(runtime: Runtime) -> list[dict[str, Any]]:
    """The Step Functions executions started so far (newest first)."""
    arn = runtime.settings.state_machine_arn
    assert arn, "this runtime runs the pipeline in-process"
    assert runtime.aws_clients is not None
    sfn = runtime.aws_clients.stepfunctions
    return list(sfn.list_executions(stateMachineArn=arn)["executions"])


def object_created_event(bucket: str, key: str, size: int, etag: str) -> dict[str, Any]:
    """An EventBridge "Object Created" event as S3 sends it (key URL-encoded)."""
    from urllib.parse import quote_plus

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": "2025-01-01T00:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": quote_plus(key, safe="/"), "size": size, "etag": etag, "sequencer": "0"},
            "request-id": "TEST",
            "requester": ACCOUNT,
            "reason": "PutObject",
        },
    }


def deliver_upload_event(runtime: Runtime, key: str) -> dict[str, Any]:
    """Runs the upload Lambda's code on an Object Created event for `key`, as EventBridge would."""
    from functions.upload_event import handler as upload_handler

    info = runtime.blobs.head(key)
    assert info is not None, f"no object {key}"
    upload_handler.configure(runtime.services.ingest, runtime.settings.bucket_name, runtime.blobs)
    result: dict[str, Any] = upload_handler.process(
        object_created_event(runtime.settings.bucket_name, key, info.size, info.etag)
    )
    return result


def presigned_s3_router(runtime: Runtime, s3: Any) -> APIRouter:
    """S3's presigned PUT/GET (path-style URLs: /<bucket>/<key>) served by the app under test."""
    router = APIRouter()
    bucket = runtime.settings.bucket_name

    @router.put(f"/{bucket}/{{key:path}}")
    async def put(key: str, request: Request) -> Response:
        body = await request.body()
        upload_id, part = request.query_params.get("uploadId"), request.query_params.get("partNumber")
        if upload_id and part:
            resp = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=int(part), Body=body)
            return Response(status_code=200, headers={"ETag": resp["ETag"]})
        content_type = request.headers.get("content-type", "application/octet-stream")
        # The signed one-shot condition, as S3 applies it: a second PUT of the key is 412.
        once = {"IfNoneMatch": "*"} if request.headers.get("if-none-match") == "*" else {}
        try:
            resp = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, **once)
        except s3.exceptions.ClientError as e:
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
            return Response(status_code=status)
        deliver_upload_event(runtime, key)
        return Response(status_code=200, headers={"ETag": resp["ETag"]})

    @router.get(f"/{bucket}/{{key:path}}")
    def get(key: str) -> Response:
        try:
            obj = s3.get_object(Bucket=bucket, Key=key)
        except s3.exceptions.NoSuchKey:
            return Response(status_code=404)
        return Response(obj["Body"].read(), media_type=obj.get("ContentType"))

    return router
